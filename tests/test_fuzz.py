"""Differential fuzzing: optimize=True must compute what optimize=False computes.

Each seed is one random graph (tests/fuzz/: elementwise ops with broadcasting and python
scalars, where with comparisons, matmul, shape ops, reductions, the softmax family, losses,
conv and pooling; float32 or float64; a symbolic batch size N bound to 1 and to another
size). Its outputs and the gradients of a random scalar loss w.r.t. every float input and
param are compiled with the reference interpreter (optimize=False) and through the pass
pipeline (optimize=True) and compared (tests/fuzz/check.py: float64 to 1e-9, float32 to
1e-4, relative to each result's magnitude; NaN, inf, bool and int exactly).

A failure names its seed and prints the graph, the first node whose value differs (or the
adjoint nearest to the loss that does), and the command that reruns it and shrinks it to a
standalone script:  python -m tests.fuzz.shrink SEED
GRAPHC_FUZZ_SEEDS=5000 (and GRAPHC_FUZZ_START=...) run other seeds.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

import graphc as gc
import graphc.passes
from graphc.node import toposort
from graphc.ops import registry
from graphc.tensor import unwrap, wrap

from .fuzz.check import check
from .fuzz.graphs import generate

START = int(os.environ.get("GRAPHC_FUZZ_START", "0"))
COUNT = int(os.environ.get("GRAPHC_FUZZ_SEEDS", "600"))
SEEDS = range(START, START + COUNT)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_optimized_matches_reference(seed: int) -> None:
    report = check(seed)
    if report is not None:
        pytest.fail(report, pytrace=False)


# the fuzzer itself ------------------------------------------------------------------------


def test_generator_covers_the_op_set() -> None:
    """The default seeds reach every op and variant the fuzzer is meant to exercise."""
    steps: Counter = Counter()
    ops: Counter = Counter()
    symbolic = 0
    if COUNT < 500:
        pytest.skip("coverage is asserted on the default seeds")
    for seed in SEEDS:
        g = generate(seed, 0)
        steps.update(s.split(":")[0] for s in g.steps)
        steps.update(s for s in g.steps if ":" in s)
        ops.update(n.op for n in toposort(unwrap(g.roots)))
        symbolic += g.n_values != (None,)
    expected_ops = (
        "exp log tanh sigmoid relu softplus abs sqrt maximum minimum where add sub mul div pow "
        "neg lt le gt ge eq ne matmul transpose reshape broadcast_to concat pad slice sum mean "
        "max logsumexp softmax log_softmax softmax_cross_entropy mse conv max_pool avg_pool "
        "pool_argmax param constant "
        # reached through the gradients
        "conv_transpose conv_wgrad pad_grad slice_grad avg_pool_grad pool_scatter"
    ).split()
    missing = [op for op in expected_ops if ops[op] < 3]
    assert not missing, f"ops reached fewer than 3 times: {missing}"
    expected_steps = [
        f"conv{d}d:{a}" for d in (1, 2) for a in ("direct", "gemm", "fft", "auto")
    ] + [f"pad:{m}" for m in ("constant", "reflect", "circular", "edge")]
    expected_steps += ["convolve", "matmul:batched", "matmul:2d", "matmul:left", "matmul:vector"]
    expected_steps += [f"softmax_cross_entropy:{k}" for k in ("labels", "probabilities")]
    missing = [s for s in expected_steps if steps[s] < 3]
    assert not missing, f"steps taken fewer than 3 times: {missing}"
    assert COUNT // 4 < symbolic < 3 * COUNT // 4


def _rewrite(roots: list, rule) -> list:  # noqa: ANN001
    """roots rebuilt bottom-up, each node replaced by rule(node) when that is not None."""
    new: dict = {}
    for node in toposort(roots):
        inputs = [new[i] for i in node.inputs]
        if any(a is not b for a, b in zip(inputs, node.inputs)):
            node_ = registry.apply(node.op, inputs, **dict(node.attrs))
        else:
            node_ = node
        new[node] = rule(node_) or node_
    return [new[r] for r in roots]


def _breaks(kind: str, node) -> bool:  # noqa: ANN001
    if kind == "pad":
        return node.op == "pad" and node.attrs["mode"] == "reflect"
    if kind == "conv":
        return node.op == "conv" and node.attrs["algo"] != "direct"
    return node.op == kind


def _sabotage(kind: str):  # noqa: ANN202
    """A pass that breaks one op the way a wrong rewrite or lowering would."""

    def broken(node):  # noqa: ANN001, ANN202
        if not _breaks(kind, node):
            return None
        if kind == "exp":
            return gc.multiply(wrap(node), 1.0 + 1e-6).node  # a constant off by 1e-6
        if kind == "pad":
            attrs = {**dict(node.attrs), "mode": "edge"}  # reflect and edge confused
            return registry.apply("pad", node.inputs, **attrs)
        x, w = node.inputs
        flip = (slice(None), slice(None)) + (slice(None, None, -1),) * (w.rank - 2)
        flipped = wrap(w)[flip].node  # convolution instead of cross-correlation
        return registry.apply("conv", (x, flipped), **dict(node.attrs))

    return lambda roots, log: _rewrite(roots, broken)


@pytest.mark.parametrize("kind", ["exp", "pad", "conv"])
def test_fuzzer_catches_a_broken_pass(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a sabotaged pass first in the pipeline, a seed that passes fails, with a report."""
    pipeline = graphc.passes.PIPELINE
    for seed in range(300):
        g = generate(seed, 0)
        forward = toposort(unwrap(g.outputs + g.extras))
        if not any(_breaks(kind, n) for n in forward) or check(seed) is not None:
            continue
        with monkeypatch.context() as patch:
            patch.setattr(graphc.passes, "PIPELINE", [("sabotage", _sabotage(kind)), *pipeline])
            report = check(seed)
        if report is not None:
            assert f"seed={seed}" in report and "return %" in report
            return
    pytest.fail(f"no seed caught the broken {kind} pass")
