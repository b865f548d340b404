"""The differential check: a generated graph compiled with optimize=False (the numpy
reference, op by op) and optimize=True, run at points away from discontinuities, compared.

Float results must agree to 1e-9 (float64) or 1e-4 (float32) relative to the largest
magnitude of the reference result (no less than FLOOR); NaN and inf exactly; bool and int
results exactly.

The sampled point is kept away from discontinuities (comparisons, relu/abs kinks,
maximum/minimum and max/max_pool ties) by a margin wherever the optimizer may round
differently; a point too close is resampled, and a graph with no such point is replaced by
the seed's next variant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import graphc as gc
from graphc.node import node_ids, toposort
from graphc.tensor import unwrap, wrap

from .base import FuzzGraph
from .graphs import generate

RTOL = {"float64": 1e-9, "float32": 1e-4}
# the smallest scale an error is measured against: below it results are compared absolutely
# (a gradient that cancels to ~0 is rounding noise of terms of size ~1 in either path)
FLOOR = {"float64": 1e-3, "float32": 0.1}
RESAMPLES = 8
VARIANTS = 5


def compare(ref: np.ndarray, opt: np.ndarray, dtype: str) -> str | None:
    """Why opt does not match ref, or None."""
    ref, opt = np.asarray(ref), np.asarray(opt)
    if ref.shape != opt.shape or ref.dtype != opt.dtype:
        return f"optimized gives {opt.dtype} {opt.shape}, the reference {ref.dtype} {ref.shape}"
    if ref.dtype.kind not in "fc":
        bad = ref != opt
        if np.any(bad):
            k = tuple(int(i) for i in np.argwhere(bad)[0])
            return (
                f"{int(bad.sum())} of {ref.size} entries differ, e.g. at {k}: "
                f"reference {ref[k]}, optimized {opt[k]}"
            )
        return None
    nan_r, nan_o = np.isnan(ref), np.isnan(opt)
    if np.any(nan_r != nan_o):
        return f"NaN at {int(nan_r.sum())} entries in the reference, {int(nan_o.sum())} optimized"
    inf_r, inf_o = np.isinf(ref), np.isinf(opt)
    if np.any(inf_r != inf_o) or np.any(ref[inf_r] != opt[inf_r]):
        return "inf entries differ"
    finite = ~(nan_r | inf_r)
    if not np.any(finite):
        return None
    r, o = ref[finite].astype(np.float64), opt[finite].astype(np.float64)
    scale = max(float(np.max(np.abs(r))), FLOOR[dtype])
    err = np.abs(r - o)
    worst = int(np.argmax(err))
    if err[worst] > RTOL[dtype] * scale:
        index = tuple(int(i) for i in np.argwhere(finite)[worst])
        return (
            f"max error {err[worst]:.3g} > {RTOL[dtype] * scale:.3g} (= {RTOL[dtype]:g} x scale "
            f"{scale:.3g}) at {index}: "
            f"reference {float(r[worst])!r}, optimized {float(o[worst])!r}"
        )
    return None


class Case:
    """A generated graph compiled both ways, with sampled points away from discontinuities
    for every N it runs with (the seed's next variant when a graph has none)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        for variant in range(VARIANTS):
            self.graph = g = generate(seed, variant)
            self.rng = np.random.default_rng([seed, variant, 1])
            self.nodes, self.tainted = discontinuities(g.outputs + g.extras)
            self.probes = list(dict.fromkeys(i for n in self.nodes for i in n.inputs))
            self.ref = gc.compile(g.inputs, g.roots + self.probes, optimize=False)
            self.points = [self.point(n) for n in g.n_values]
            if all(feeds is not None for feeds, _ in self.points):
                break
        else:
            raise AssertionError(f"seed={seed}: no well-conditioned graph in {VARIANTS} variants")

    def point(self, n: int | None) -> tuple:
        """(feeds, reference results) at a well-conditioned point, or (None, reason)."""
        g = self.graph
        reason = None
        for _ in range(RESAMPLES):
            feeds = g.sample(self.rng, n)
            results = self.ref(*feeds)
            values = dict(zip(self.probes, results[len(g.roots) :]))
            reason = ill_conditioned(self.nodes, self.tainted, values, g.dtype)
            if reason is None:
                return feeds, results[: len(g.roots)]
        return None, reason


def first_divergence(g: FuzzGraph, feeds: list) -> str:
    """The first forward node whose optimized value differs from the reference; failing
    that, the adjoint (gradient of the loss w.r.t. a node) nearest to the loss that does."""
    forward = unwrap(g.outputs + g.extras)
    order = toposort(forward)
    ids = node_ids(order)
    computed = [n for n in order if n.inputs]
    try:
        ref = gc.compile(g.inputs, computed, optimize=False)(*feeds)
        opt = gc.compile(g.inputs, computed, optimize=True)(*feeds)
    except Exception as error:  # noqa: BLE001 - a diagnosis, not the test
        return f"(no diagnosis: {type(error).__name__}: {error})"
    for node, r, o in zip(computed, ref, opt):
        why = compare(r, o, g.dtype)
        if why:
            return f"first differing node: %{ids[node]} = {node.label()}: {why}"
    floats = [n for n in order if n.dtype == g.dtype]
    try:
        adjoints = gc.grad(g.loss, wrap(floats))
        ref = gc.compile(g.inputs, adjoints, optimize=False)(*feeds)
        opt = gc.compile(g.inputs, adjoints, optimize=True)(*feeds)
    except Exception as error:  # noqa: BLE001
        return f"(forward values agree; no adjoint diagnosis: {type(error).__name__}: {error})"
    for node, r, o in reversed(list(zip(floats, ref, opt))):
        why = compare(r, o, g.dtype)
        if why:
            users = ", ".join(f"%{ids[u]} {u.op}" for u in order if node in u.inputs)
            return (
                f"forward values agree; the adjoint nearest to the loss that differs is the "
                f"gradient w.r.t. %{ids[node]} = {node.label()} (look at the derivatives of "
                f"{users or 'the loss'}): {why}"
            )
    return "forward values and adjoints agree when compiled separately"


def check(seed: int) -> str | None:
    """None when optimized and reference agree on seed's graph, else a report."""
    case = Case(seed)  # the generator and the reference: their errors are the fuzzer's bugs
    g = case.graph

    def report(where: str, name: str, why: str, feeds: list) -> str:
        return (
            f"{where}: {name}: {why}\n"
            f"{first_divergence(g, feeds)}\n"
            f"{g.listing()}\n"
            f"rerun and shrink: python -m tests.fuzz.shrink {seed}   "
            f"(or pytest 'tests/test_fuzz.py::test_optimized_matches_reference[seed={seed}]')"
        )

    try:
        opt = gc.compile(g.inputs, g.roots, optimize=True)
    except Exception as error:  # noqa: BLE001 - reported with the graph
        why = f"{type(error).__name__}: {error}"
        return report(f"seed={seed}, {g.dtype}", "compile(optimize=True)", why, case.points[0][0])
    for n, (feeds, results) in zip(g.n_values, case.points):
        where = f"seed={seed}, {g.dtype}" + (f", N={n}" if n is not None else "")
        try:
            optimized = opt(*feeds)
        except Exception as error:  # noqa: BLE001 - reported with the graph
            return report(
                where, "the optimized function", f"{type(error).__name__}: {error}", feeds
            )
        for name, r, o in zip(g.root_names(), results, optimized):
            why = compare(r, o, g.dtype)
            if why:
                return report(where, name, why, feeds)
    return None


# conditioning: where the reference is too close to a discontinuity -------------------------

TIE_OPS = {"lt", "le", "gt", "ge", "eq", "ne", "maximum", "minimum"}
KINK_OPS = {"relu", "abs"}
WINDOW_OPS = {"max", "max_pool", "pool_argmax"}
# margins under which a rounding difference may flip a branch: relative to the operands'
# magnitude, for values the optimizer may compute differently (downstream of a conv lowered
# to GEMM or FFT: "tainted") and for the others (a few ulps apart at most)
MARGINS = {
    "float64": {"tainted": 1e-8, "clean": 1e-12},
    "float32": {"tainted": 1e-3, "clean": 1e-5},
}


def discontinuities(outputs: list) -> tuple:
    """(nodes of the forward graph with a discontinuity, nodes downstream of a lowered conv)."""
    order = toposort(unwrap(outputs))
    tainted: set = set()
    found = []
    for node in order:
        if node.op == "conv" and node.attrs["algo"] != "direct":
            tainted.add(node)
        elif any(i in tainted for i in node.inputs):
            tainted.add(node)
        if node.op in TIE_OPS | KINK_OPS | WINDOW_OPS and node.inputs[0].dtype in (
            "float32",
            "float64",
        ):
            found.append(node)
    return found, tainted


def _top_two_gap(windows: np.ndarray) -> np.ndarray:
    """For rows of candidates (last axis), the gap between the largest and the next."""
    if windows.shape[-1] < 2:
        return np.full(windows.shape[:-1], np.inf)
    top = -np.sort(-windows, axis=-1)[..., :2]
    with np.errstate(invalid="ignore"):
        gap = top[..., 0] - top[..., 1]
    return np.where(np.isneginf(top[..., 1]), np.inf, gap)


def margins(node: Any, values: list) -> tuple:
    """(smallest gap to the discontinuity, magnitude of the operands) of node at `values`."""
    from graphc.ops import pool as pool_ops

    a = np.asarray(values[0], dtype=np.float64)
    if node.op in TIE_OPS:
        b = np.asarray(values[1], dtype=np.float64)
        gap = np.abs(a - b)
        scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0))
    elif node.op in KINK_OPS:
        gap = np.abs(a)
        scale = np.max(np.abs(a), initial=0.0)
    elif node.op == "max":
        axes = node.attrs["axes"]
        moved = np.moveaxis(a, axes, tuple(range(-len(axes), 0)))
        rows = moved.reshape(moved.shape[: a.ndim - len(axes)] + (-1,))
        gap = _top_two_gap(rows)
        scale = np.max(np.abs(a), initial=0.0)
    else:  # max_pool, pool_argmax: windows padded with -inf
        windows = pool_ops._windows(a, node.attrs, -np.inf, node.op)
        gap = _top_two_gap(windows)
        scale = np.max(np.abs(a), initial=0.0)
    return gap, max(float(scale), 1.0)


def ill_conditioned(nodes: list, tainted: set, values: dict, dtype: str) -> str | None:
    """Why these reference values are too close to a discontinuity, or None: a gap smaller
    than the margin (exact ties are fine where the optimizer computes the operands the same
    way, and are not where it may not)."""
    for node in nodes:
        gap, scale = margins(node, [values[i] for i in node.inputs])
        kind = "tainted" if any(i in tainted for i in node.inputs) else "clean"
        near = gap < MARGINS[dtype][kind] * scale
        if kind == "clean":
            near &= gap > 0
        if np.any(near):
            return f"{node.label()}: gap {float(np.min(gap)):.3g} at scale {scale:.3g} ({kind})"
    return None
