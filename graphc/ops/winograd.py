"""Winograd's minimal filtering F(m, r) and the two tile ops its convolution lowering uses.

F(m, r) computes m outputs of a correlation with an r-tap kernel from an alpha = m + r - 1
input tile with alpha multiplications instead of m*r (Lavin & Gray 2016):

    y = A^T [(G g) * (B^T d)]      (alpha x alpha matrices applied on each spatial axis in 2-D)

A^T (m x alpha), G (alpha x r), B^T (alpha x alpha) come from Cook-Toom: polynomial
evaluation at alpha - 1 points and infinity. `matrices(m, r)` builds them exactly with sympy
and checks the identity. A 2-D convolution becomes

    V = winograd_tiles(x; B^T)      (alpha^2, C, N*T): every tile of x, transformed
    U = winograd_tiles(w; G)        (alpha^2, C, C_out): the kernel, transformed
    M = U^T @ V                     alpha^2 GEMMs of (C_out x C) @ (C x N*T)
    y = winograd_untiles(M; A^T)    (N, C_out, H', W'): each tile's m x m outputs, placed

Both ops are linear and each is the other's adjoint (with the matrices transposed), so
they differentiate into each other. For a given tile layout:
  winograd_tiles(x)[a, c, n*T + t] = sum_u mats[a, u] x[n, c, origin + t*step + u]
      (per spatial axis; x is zero outside its extent), t in the `tiles` grid (row-major);
  winograd_untiles(v)[n, c, p] = sum over (t, u) with origin + t*step + u = p of
      sum_a mats[u, a] v[a, c, n*T + t]  (positions outside `size` are dropped).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import sympy

from graphc.node import Node
from graphc.ops.registry import apply, defjvp, defvjp, op
from graphc.shapes import shape_error

# the finite interpolation points, in the order that keeps the matrices' entries small
POINTS = (0, 1, -1, 2, -2, sympy.Rational(1, 2), sympy.Rational(-1, 2), 3, -3)


@functools.cache
def matrices(m: int, r: int) -> tuple:
    """(A^T, G, B^T) of F(m, r) as tuples of float rows, verified exactly."""
    alpha = m + r - 1
    if alpha - 1 > len(POINTS) or m < 1 or r < 1:
        raise ValueError(f"winograd: F({m}, {r}) is not supported (alpha = {alpha})")
    points = [sympy.Integer(p) if isinstance(p, int) else p for p in POINTS[: alpha - 1]]
    at = sympy.zeros(m, alpha)
    g = sympy.zeros(alpha, r)
    for j, p in enumerate(points):
        scale = sympy.prod([p - q for q in points if q != p])
        for i in range(m):
            at[i, j] = p**i
        for k in range(r):
            g[j, k] = p**k / scale
    at[m - 1, alpha - 1] = 1  # the point at infinity: the leading coefficients
    g[alpha - 1, r - 1] = 1
    # B^T solves sum_j A^T[i, j] G[j, k] B^T[j, l] = [l == i + k] for every i < m, k < r
    system = sympy.Matrix(
        [[at[i, j] * g[j, k] for j in range(alpha)] for i in range(m) for k in range(r)]
    )
    bt = sympy.zeros(alpha, alpha)
    for col in range(alpha):
        rhs = sympy.Matrix([1 if col == i + k else 0 for i in range(m) for k in range(r)])
        solution, free = system.gauss_jordan_solve(rhs)
        solution = solution.subs({s: 0 for s in free})
        bt[:, col] = solution
    for i in range(m):  # the identity, exactly
        for k in range(r):
            for col in range(alpha):
                total = sum(at[i, j] * g[j, k] * bt[j, col] for j in range(alpha))
                assert total == (1 if col == i + k else 0), (m, r)
    return _rows(at), _rows(g), _rows(bt)


def _rows(mat: sympy.Matrix) -> tuple:
    return tuple(tuple(float(v) for v in mat.row(i)) for i in range(mat.rows))


def transpose(mat: tuple) -> tuple:
    return tuple(zip(*mat))


# the tile ops --------------------------------------------------------------------------------


def _check(name: str, inputs: tuple, attrs: dict, rank: int) -> None:
    (a,) = inputs
    d = len(attrs["tiles"])
    if a.rank != rank:
        raise shape_error(name, f"expects rank {rank} for {d} spatial axes", a.shape)
    for key in ("mats", "step", "origin"):
        if len(attrs[key]) != d:
            raise shape_error(name, f"{key} needs one entry per spatial axis ({d})", a.shape)


def _infer_tiles(inputs: tuple, attrs: dict) -> tuple:
    _check("winograd_tiles", inputs, attrs, 2 + len(attrs["tiles"]))
    (x,) = inputs
    rows = math.prod(len(mat) for mat in attrs["mats"])
    return (rows, x.shape[1], x.shape[0] * math.prod(attrs["tiles"])), x.dtype


def _infer_untiles(inputs: tuple, attrs: dict) -> tuple:
    _check("winograd_untiles", inputs, attrs, 3)
    (v,) = inputs
    cols = math.prod(len(mat[0]) for mat in attrs["mats"])
    if v.shape[0] != cols:
        raise shape_error("winograd_untiles", f"expects {cols} transformed taps", v.shape)
    n = v.shape[2] / math.prod(attrs["tiles"])
    return (n, v.shape[1], *attrs["size"]), v.dtype


def _covering(origin: int, step: int, tiles: int, taps: int) -> tuple:
    """(lo, hi): the positions tiles reach, origin .. origin + (tiles - 1)*step + taps."""
    return origin, origin + (tiles - 1) * step + taps


def _apply_axis(a: np.ndarray, mat: tuple, axis: int) -> np.ndarray:
    """sum_u mat[i, u] a[..., u (at axis), ...] -> the new axis i at `axis`."""
    out = np.tensordot(np.asarray(mat, dtype=a.dtype), a, axes=([1], [axis]))
    return np.moveaxis(out, 0, axis)


@op(
    "winograd_tiles",
    _infer_tiles,
    kind="op",
    doc="transformed tiles of x: (N, C, *sp) -> (A, C, N*T)",
)
def _tiles_impl(ctx: Any, x: np.ndarray) -> np.ndarray:
    a = ctx.attrs
    d = len(a["tiles"])
    x = x.astype(ctx.dtype, copy=False)
    widths = [(0, 0), (0, 0)]
    starts = []
    for n, mat, step, origin, count in zip(
        x.shape[2:], a["mats"], a["step"], a["origin"], a["tiles"]
    ):
        lo, hi = _covering(origin, step, count, len(mat[0]))
        widths.append((max(-lo, 0), max(hi - n, 0)))  # zeros where tiles reach outside x
        starts.append(max(lo, 0))
    patches = np.pad(x, widths)
    for k, (start, mat, step, count) in enumerate(zip(starts, a["mats"], a["step"], a["tiles"])):
        idx = start + step * np.arange(count)[:, None] + np.arange(len(mat[0]))[None, :]
        patches = np.take(patches, idx, axis=2 + 2 * k)  # axis -> (tile, tap)
    # (N, C, t0, u0, t1, u1, ...) -> transform each u axis
    for k, mat in enumerate(a["mats"]):
        patches = _apply_axis(patches, mat, 3 + 2 * k)
    order = [3 + 2 * k for k in range(d)] + [1, 0] + [2 + 2 * k for k in range(d)]
    out = np.transpose(patches, order)
    return np.ascontiguousarray(out).reshape(ctx.shape).astype(ctx.dtype, copy=False)


@op(
    "winograd_untiles",
    _infer_untiles,
    kind="op",
    doc="tiles transformed and placed: (A, C, N*T) -> (N, C, *sp)",
)
def _untiles_impl(ctx: Any, v: np.ndarray) -> np.ndarray:
    a = ctx.attrs
    d = len(a["tiles"])
    n, c = ctx.shape[0], ctx.shape[1]
    ins = [len(mat[0]) for mat in a["mats"]]
    vals = v.astype(ctx.dtype, copy=False).reshape(*ins, c, n, *a["tiles"])
    for k, mat in enumerate(a["mats"]):
        vals = _apply_axis(vals, mat, k)  # (outs..., C, N, tiles...)
    vals = np.moveaxis(vals, (d, d + 1), (1, 0))  # (N, C, outs..., tiles...)
    spans = []
    for mat, step, origin, tiles in zip(a["mats"], a["step"], a["origin"], a["tiles"]):
        spans.append(_covering(origin, step, tiles, len(mat)))
    lows = [min(lo, 0) for lo, _ in spans]
    extent = [max(hi, size) - low for (_, hi), size, low in zip(spans, a["size"], lows)]
    full = np.zeros((n, c, *extent), dtype=ctx.dtype)
    outs = [len(mat) for mat in a["mats"]]
    for taps in np.ndindex(*outs):
        window = tuple(
            slice(o - low + u, o - low + u + step * (t - 1) + 1, step)
            for u, o, low, step, t in zip(taps, a["origin"], lows, a["step"], a["tiles"])
        )
        full[(slice(None), slice(None), *window)] += vals[(slice(None), slice(None), *taps)]
    crop = tuple(slice(-low, -low + size) for low, size in zip(lows, a["size"]))
    return full[(slice(None), slice(None), *crop)]


def tiles(x: Node, mats: tuple, step: tuple, origin: tuple, count: tuple) -> Node:
    """winograd_tiles: (N, C, *sp) -> (prod alpha_out, C, N*prod(count))."""
    return apply(
        "winograd_tiles",
        (x,),
        mats=tuple(mats),
        step=tuple(step),
        origin=tuple(origin),
        tiles=tuple(count),
    )


def untiles(v: Node, mats: tuple, step: tuple, origin: tuple, count: tuple, size: tuple) -> Node:
    """winograd_untiles: (prod alpha_in, C, N*prod(count)) -> (N, C, *size)."""
    return apply(
        "winograd_untiles",
        (v,),
        mats=tuple(mats),
        step=tuple(step),
        origin=tuple(origin),
        tiles=tuple(count),
        size=tuple(int(s) for s in size),
    )


@defvjp("winograd_tiles")
def _tiles_vjp(node: Node, g: Node) -> list:
    a = node.attrs
    mats = tuple(transpose(mat) for mat in a["mats"])
    size = tuple(node.inputs[0].shape[2:])
    return [untiles(g, mats, a["step"], a["origin"], a["tiles"], size)]


@defjvp("winograd_tiles")
def _tiles_jvp(node: Node, tangents: tuple) -> Node:
    a = node.attrs
    return tiles(tangents[0], a["mats"], a["step"], a["origin"], a["tiles"])


@defvjp("winograd_untiles")
def _untiles_vjp(node: Node, g: Node) -> list:
    a = node.attrs
    mats = tuple(transpose(mat) for mat in a["mats"])
    return [tiles(g, mats, a["step"], a["origin"], a["tiles"])]


@defjvp("winograd_untiles")
def _untiles_jvp(node: Node, tangents: tuple) -> Node:
    a = node.attrs
    return untiles(tangents[0], a["mats"], a["step"], a["origin"], a["tiles"], a["size"])
