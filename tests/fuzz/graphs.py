"""Random graphs for the differential fuzz test (tests/test_fuzz.py).

`generate(seed)` builds a small random graph (3-15 steps, tests/fuzz/steps.py) from
graphc's op set through the public API, seeded, so a seed names one graph for ever (as
long as the generator does not change); then a random scalar loss of its outputs and the
gradients of the loss w.r.t. every float input and param.
"""

from __future__ import annotations

from functools import cache

import numpy as np

import graphc as gc
from graphc.tensor import unwrap

from .base import FuzzGraph, Reject, dims, is_int
from .steps import Steps


class Builder(Steps):
    def build(self) -> FuzzGraph:
        r = self.r
        for _ in range(self.randint(1, 2)):
            self.add(self.leaf(self.random_shape()))
        target = self.randint(3, 15)
        names = list(self.STEPS)
        weights = np.array([self.STEPS[k] for k in names], dtype=float)
        done = tries = 0
        while done < target and tries < 200:
            tries += 1
            name = names[int(r.choice(len(names), p=weights / weights.sum()))]
            marks = (len(self.steps), len(self.inputs), len(self.wrt), len(self.extras))
            try:
                v = getattr(self, f"step_{name}")()
                if v.t.dtype != self.dtype:
                    raise AssertionError(f"step {name} made {v.t.dtype} in a {self.dtype} graph")
                self.add(v)
                done += 1
            except (Reject, gc.ShapeError):
                # undo what the failed step registered
                del self.steps[marks[0] :], self.inputs[marks[1] :], self.samplers[marks[1] :]
                del self.wrt[marks[2] :], self.extras[marks[3] :]
        outputs = self.choose_outputs()
        loss = self.make_loss(outputs)
        grads = gc.grad(loss, self.wrt) if self.wrt else []
        symbolic = any(not is_int(d) for t in self.inputs for d in dims(t))
        n_values = (1, self.randint(2, 4)) if symbolic else (None,)
        return FuzzGraph(
            seed=self.seed,
            dtype=self.dtype,
            inputs=self.inputs,
            samplers=self.samplers,
            wrt=self.wrt,
            outputs=outputs,
            extras=self.extras,
            loss=loss,
            grads=list(grads),
            steps=self.steps,
            n_values=n_values,
        )

    def choose_outputs(self) -> list:
        """The last value and up to two others, preferring values nothing else uses."""
        computed = [v for v in self.pool if v.t.op not in ("input", "param", "constant")]
        if not computed:
            computed = self.pool
        used = {i for v in computed for i in unwrap(v.t).inputs}
        sinks = [v for v in computed if unwrap(v.t) not in used]
        outputs = [computed[-1]]
        for _ in range(self.randint(0, 2)):
            candidates = [v for v in (sinks if self.chance(0.7) else computed) if v not in outputs]
            if candidates:
                outputs.append(self.choice(candidates))
        return [v.t for v in outputs]

    def make_loss(self, outputs: list) -> gc.Tensor:
        """A random scalar that depends on every element of every output."""
        terms = []
        for o in outputs:
            kind = self.choice(("weights", "weights", "tanh", "square"))
            if kind == "weights":
                shape = tuple(d if is_int(d) else 1 for d in dims(o))
                w = gc.constant(self.r.uniform(-1, 1, shape).astype(self.dtype))
                terms.append(gc.sum(o * w))
            elif kind == "tanh":
                terms.append(gc.mean(gc.tanh(o)))
            else:
                terms.append(gc.sum(o * o) * 0.1)
        loss = terms[0]
        for t in terms[1:]:
            loss = loss + t
        return loss


@cache
def generate(seed: int, variant: int = 0) -> FuzzGraph:
    """The random graph of `seed` (built once per process). The test moves on to the next
    variant when no sampled point of a graph keeps away from its discontinuities."""
    r = np.random.default_rng([seed, variant, 0x6772617068])
    g = Builder(seed, r).build()
    g.variant = variant
    return g
