"""Finite-difference checks of derivatives, in float64, along random directions.

The graph is cloned with every float leaf in float64 (inputs and params become
float64 placeholders, constants are widened, ops re-applied so their dtypes
follow), then central differences (f(w + eps d) - f(w - eps d)) / (2 eps) are
compared with the derivative graph's <grad, d> (reverse mode) or J d (forward).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.node import COMPLEX_DTYPES, FLOAT_DTYPES, Node, toposort
from graphc.ops import registry
from graphc.ops.sources import constant
from graphc.ops.sources import input as make_input
from graphc.tensor import unwrap


def _widen(dtype: str) -> str:
    if dtype in COMPLEX_DTYPES:
        return "complex128"
    return "float64" if dtype in FLOAT_DTYPES else dtype


def float64_clone(roots: list) -> tuple:
    """(mapping old node -> new node, leaves): every float leaf is a float64 placeholder.

    `leaves` maps each new placeholder to the old input or param it stands for.
    """
    mapping: dict = {}
    leaves: dict = {}
    for node in toposort(roots):
        if node.op in ("input", "param"):
            if node.dtype in FLOAT_DTYPES or node.op == "param":
                new = make_input(node.attrs["name"], node.shape, _widen(node.dtype))
            else:
                new = make_input(node.attrs["name"], node.shape, node.dtype)
            leaves[new] = node
        elif node.op == "constant":
            array = node.attrs["value"].array
            new = constant(array.astype(_widen(array.dtype.name)))
        else:
            attrs = dict(node.attrs)
            if "dtype" in attrs:
                attrs["dtype"] = _widen(attrs["dtype"])
            new = registry.apply(node.op, [mapping[i] for i in node.inputs], **attrs)
        mapping[node] = new
    return mapping, leaves


def _leaf_value(old: Node, feed: dict) -> np.ndarray:
    if old.op == "param":
        return np.asarray(old.attrs["state"].value, dtype=np.float64)
    if old not in feed:
        raise ValueError(f"check: no value in feed for input {old.attrs['name']!r}")
    value = np.asarray(feed[old])
    return value.astype(np.float64) if old.dtype in FLOAT_DTYPES else value


def _relative(a: np.ndarray, b: np.ndarray, floor: float = 0.0) -> float:
    """max|a - b| over the larger of max|a|, max|b| and `floor`."""
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    scale = max(scale, floor)
    diff = float(np.max(np.abs(a - b), initial=0.0))
    return diff / scale if scale > 0 else diff


def directional_check(
    y: Any, wrt: Any, feed: dict, eps: float, seed: int, directions: int, mode: str
) -> float:
    """The worst relative error over `directions` random directions (see module doc)."""
    from graphc.autodiff import DifferentiationError, jvp_nodes, vjp_nodes
    from graphc.compile import Function

    outs = [unwrap(o) for o in (y if isinstance(y, (list, tuple)) else [y])]
    wrt_old = [unwrap(w) for w in (wrt if isinstance(wrt, (list, tuple)) else [wrt])]
    for w in wrt_old:
        if w.op not in ("input", "param") or w.dtype not in FLOAT_DTYPES:
            raise DifferentiationError(
                f"check: can only perturb float inputs and params, not {w.label()}"
            )
    mapping, leaves = float64_clone(outs)
    new_outs = [mapping[o] for o in outs]
    wrt_new = [mapping.get(w) for w in wrt_old]
    if any(w is None for w in wrt_new):
        raise DifferentiationError("check: the outputs do not depend on every tensor in wrt")
    placeholders = list(leaves)
    values = {p: _leaf_value(leaves[p], feed) for p in placeholders}
    rng = np.random.default_rng(seed)

    if mode == "vjp":
        (out,) = new_outs
        one = constant(1.0, "float64")
        derivative = vjp_nodes([out], [one], wrt_new)
        roots = [out] + [d for d in derivative if d is not None]
        tangent_inputs: list = []
    else:
        tangent_inputs = [make_input(f"d_{k}", w.shape, "float64") for k, w in enumerate(wrt_new)]
        derivative = jvp_nodes(new_outs, wrt_new, tangent_inputs)
        roots = new_outs + [d for d in derivative if d is not None]
    f = Function(placeholders + tangent_inputs, list(roots), backend="numpy")
    values_list = [values[p] for p in placeholders]
    shapes = [values[w].shape for w in wrt_new]

    def run(shift: list, tangent: list) -> list:
        args = []
        for p, v in zip(placeholders, values_list):
            if p in wrt_new:
                v = v + shift[wrt_new.index(p)]
            args.append(v)
        return list(f(*(args + tangent)))

    worst = 0.0
    for _ in range(directions):
        d = [rng.standard_normal(s) for s in shapes]
        tangent = d if mode == "jvp" else []
        plus = run([eps * x for x in d], tangent)
        minus = run([-eps * x for x in d], tangent)
        center = run([np.zeros(s) for s in shapes], tangent)
        n = len(new_outs)
        derivs = iter(center[n:])
        if mode == "vjp":
            fd = (plus[0] - minus[0]) / (2 * eps)
            analytic = 0.0
            g_squared = d_squared = 0.0  # |g| |d| bounds <g, d>: the scale of round-off
            for k, dk in enumerate(derivative):
                if dk is not None:
                    gk = next(derivs)
                    analytic += float(np.sum(gk * d[k]))
                    g_squared += float(np.sum(np.abs(gk) ** 2))
                    d_squared += float(np.sum(d[k] ** 2))
            # a direction nearly orthogonal to the gradient makes <g, d> tiny: relative to
            # |g| |d| a correct gradient still scores ~1e-9 and a wrong one does not
            worst = max(
                worst,
                _relative(np.asarray(fd), np.asarray(analytic), (g_squared * d_squared) ** 0.5),
            )
        else:
            for k, dk in enumerate(derivative):
                fd = (plus[k] - minus[k]) / (2 * eps)
                analytic = next(derivs) if dk is not None else np.zeros_like(fd)
                worst = max(worst, _relative(fd, analytic))
    return worst
