"""The generator's foundations: shapes with a symbolic N, values with magnitude bounds,
the generated graph, leaf samplers, and the builder's leaves, pool and operand choice.

Values stay in sane ranges: every value carries a bound on its magnitude (leaves are
uniform in [-s, s]; each step bounds its result), and a value whose bound passes LIMIT is
rescaled by a python scalar before anything uses it. The graph is float32 or float64
throughout (python scalars are weakly typed); integer labels and boolean conditions appear
where ops take them. Half of the graphs use a symbolic batch size N = gc.dim("N") (always
on axis 0 of the leaves that have it; transposes, reshapes and concats move it around),
bound at call time to 1 and to another size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

import graphc as gc
from graphc.node import format_graph
from graphc.tensor import unwrap

N = gc.dim("N")
LIMIT = 20.0  # a value whose magnitude bound exceeds this is rescaled before it is used
MAX_ELEMENTS = 192  # per value, with N = 4
N_PROBE = 4  # the N used to size values while generating
MAX_RANK = 4
SCALARS = (0.5, -0.5, 1.5, 2.0, -1.0, 3.0, 0.25)


def dims(t: gc.Tensor) -> tuple:
    """t's shape with numeric dims as ints (symbolic ones stay sympy expressions)."""
    return tuple(int(d) if d.is_number else d for d in t.shape)


def concrete(shape: tuple, n: int) -> tuple:
    return tuple(int(d) if isinstance(d, int) else int(sympy.sympify(d).subs(N, n)) for d in shape)


def numel(shape: tuple, n: int = N_PROBE) -> int:
    return math.prod(concrete(shape, n))


def is_int(d: Any) -> bool:
    return isinstance(d, int)


def broadcast(a: tuple, b: tuple) -> tuple | None:
    """numpy's broadcast of two shapes with graphc's rule for symbolic dims (N only matches N
    or 1), or None when they do not broadcast."""
    out = []
    for k in range(1, max(len(a), len(b)) + 1):
        d = a[-k] if k <= len(a) else 1
        e = b[-k] if k <= len(b) else 1
        if d == e or e == 1:
            out.append(d)
        elif d == 1:
            out.append(e)
        else:
            return None
    return tuple(reversed(out))


@dataclass
class Val:
    """A float tensor of the graph and a bound on the magnitude of its values."""

    t: gc.Tensor
    bound: float

    @property
    def shape(self) -> tuple:
        return dims(self.t)

    @property
    def rank(self) -> int:
        return self.t.ndim


@dataclass
class FuzzGraph:
    seed: int
    dtype: str
    inputs: list  # gc.input Tensors in call order
    samplers: list  # one per input: (rng, concrete shape) -> array
    wrt: list  # the float inputs and params: gc.grad of the loss w.r.t. each
    outputs: list  # float Tensors, compared to the relative tolerance
    extras: list  # bool / int Tensors, compared exactly
    loss: gc.Tensor
    grads: list
    steps: list  # what the generator did, one entry per step ("conv:fft", "pad:reflect", ...)
    n_values: tuple  # the sizes N is bound to (a single None when N is not used)
    variant: int = 0

    @property
    def roots(self) -> list:
        return self.outputs + self.extras + self.grads

    def root_names(self) -> list:
        names = [f"output {k} ({o.op})" for k, o in enumerate(self.outputs)]
        names += [f"extra output {k} ({o.op}, {o.dtype})" for k, o in enumerate(self.extras)]
        for w in self.wrt:
            names.append(f"gradient of the loss w.r.t. {w.name}")
        return names

    def sample(self, rng: np.random.Generator, n: int | None) -> list:
        out = []
        for t, sampler in zip(self.inputs, self.samplers):
            out.append(sampler(rng, concrete(dims(t), n or 1)))
        return out

    def listing(self) -> str:
        """The forward graph (outputs and extra outputs), then the loss built on it."""
        forward = unwrap(self.outputs + self.extras)
        text = format_graph(forward)
        lines = [
            f"graph of seed {self.seed}{f' (variant {self.variant})' if self.variant else ''} "
            f"({self.dtype}; N bound to {self.n_values}; "
            f"steps: {', '.join(self.steps)}):",
            text,
            f"loss (differentiated w.r.t. {', '.join(w.name for w in self.wrt) or 'nothing'}):",
            format_graph([unwrap(self.loss)]),
        ]
        return "\n".join(lines)


# samplers: (rng, concrete shape) -> array ---------------------------------------------------


def uniform_sampler(scale: float, dtype: str) -> Callable:
    def sample(r: np.random.Generator, shape: tuple) -> np.ndarray:
        return r.uniform(-scale, scale, shape).astype(dtype)

    return sample


def label_sampler(depth: int, dtype: str) -> Callable:
    def sample(r: np.random.Generator, shape: tuple) -> np.ndarray:
        return r.integers(0, depth, shape).astype(dtype)

    return sample


def probability_sampler(dtype: str) -> Callable:
    def sample(r: np.random.Generator, shape: tuple) -> np.ndarray:
        p = r.uniform(0.1, 1.0, shape)
        return (p / p.sum(axis=-1, keepdims=True)).astype(dtype)

    return sample


# the generator ------------------------------------------------------------------------------


class Reject(Exception):
    """This step does not apply here (no suitable operand, a size too big): try another."""


class BuilderBase:
    """Randomness, leaves and the pool of values the steps (tests/fuzz/steps.py) draw on."""

    def __init__(self, seed: int, r: np.random.Generator) -> None:
        self.seed = seed
        self.r = r
        self.dtype = "float64" if r.random() < 0.5 else "float32"
        self.use_n = r.random() < 0.5
        self.inputs: list = []
        self.samplers: list = []
        self.wrt: list = []
        self.pool: list = []
        self.extras: list = []
        self.steps: list = []

    # randomness helpers ----------------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return bool(self.r.random() < p)

    def choice(self, items: Any) -> Any:
        items = list(items)
        return items[int(self.r.integers(len(items)))]

    def randint(self, lo: int, hi: int) -> int:
        """An int in [lo, hi]."""
        return int(self.r.integers(lo, hi + 1))

    def scalar(self) -> float:
        return float(self.choice(SCALARS))

    # leaves ---------------------------------------------------------------------------------
    def leaf(self, shape: tuple, scale: float | None = None) -> Val:
        """A new float input (or, for concrete shapes, sometimes a param or a constant)."""
        if numel(shape) > MAX_ELEMENTS or len(shape) > MAX_RANK:
            raise Reject("leaf too big")
        scale = scale or self.choice((0.5, 1.0, 2.0))
        sampler = uniform_sampler(scale, self.dtype)
        symbolic = any(not is_int(d) for d in shape)
        kind = "input" if symbolic else self.choice(["input"] * 7 + ["param"] * 2 + ["constant"])
        if kind == "input":
            t = gc.input(f"x{len(self.inputs)}", shape, dtype=self.dtype)
            self.inputs.append(t)
            self.samplers.append(sampler)
            self.wrt.append(t)
        elif kind == "param":
            value = sampler(self.r, shape)
            t = gc.param(f"p{len(self.wrt)}", value=value, dtype=self.dtype)
            self.wrt.append(t)
        else:
            t = gc.constant(sampler(self.r, shape))
        return Val(t, scale)

    def int_input(self, shape: tuple, depth: int) -> gc.Tensor:
        dtype = self.choice(("int32", "int64"))
        t = gc.input(f"t{len(self.inputs)}", shape, dtype=dtype)
        self.inputs.append(t)
        self.samplers.append(label_sampler(depth, dtype))
        return t

    def prob_input(self, shape: tuple) -> gc.Tensor:
        t = gc.input(f"q{len(self.inputs)}", shape, dtype=self.dtype)
        self.inputs.append(t)
        self.samplers.append(probability_sampler(self.dtype))
        return t

    def random_shape(self, rank: int | None = None) -> tuple:
        rank = self.randint(1, 3) if rank is None else rank
        shape = [self.randint(1, 4) for _ in range(rank)]
        if self.use_n and rank and self.chance(0.7):
            shape[0] = N
        return tuple(shape)

    # the pool -------------------------------------------------------------------------------
    def add(self, v: Val) -> Val:
        if numel(v.shape) > MAX_ELEMENTS:
            raise Reject("value too big")
        if v.bound > LIMIT:
            v = Val(v.t * float(4.0 / v.bound), 4.0)
        self.pool.append(v)
        return v

    def pick(self, pred: Callable[[Val], bool] = lambda v: True) -> Val:
        """A value of the pool satisfying pred, recent ones more likely; else Reject."""
        found = [v for v in self.pool if pred(v)]
        if not found:
            raise Reject("no operand")
        weights = np.arange(1, len(found) + 1, dtype=float) ** 1.5
        return found[int(self.r.choice(len(found), p=weights / weights.sum()))]

    def pick_or_leaf(self, pred: Callable[[Val], bool], make_shape: Callable[[], tuple]) -> Val:
        try:
            if self.chance(0.75):
                return self.pick(pred)
        except Reject:
            pass
        return self.leaf(make_shape())

    def limited(self, v: Val, bound: float) -> Val:
        """v rescaled so that its magnitude is at most `bound`."""
        if v.bound <= bound:
            return v
        return Val(v.t * float(bound / v.bound), bound)

    def partner(self, a: Val, scalar_ok: bool = True) -> Val | float:
        """A second operand that broadcasts with a: a python scalar, a value of the pool, or
        a new leaf whose shape is a's with leading axes dropped, axes set to 1 or one added."""
        if scalar_ok and self.chance(0.2):
            return self.scalar()
        if self.chance(0.4):
            try:
                return self.pick(lambda v: v is not a and self.fits(a.shape, v.shape))
            except Reject:
                pass
        if self.chance(0.15):
            return a
        shape = list(a.shape)
        if shape and self.chance(0.3):
            shape = shape[self.randint(1, len(shape)) :]
        shape = [1 if self.chance(0.3) else d for d in shape]
        if len(shape) < MAX_RANK and self.chance(0.1):
            shape.insert(0, self.randint(2, 3))
        return self.leaf(tuple(shape))

    def fits(self, a: tuple, b: tuple) -> bool:
        out = broadcast(a, b)
        return out is not None and len(out) <= MAX_RANK and numel(out) <= MAX_ELEMENTS

    # steps ----------------------------------------------------------------------------------
