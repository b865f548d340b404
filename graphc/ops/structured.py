"""Ops for structured matrices K(theta) = mat(Q theta): take (a gather), circulant.

`take(a, index)` gathers from a 1-D tensor with a constant integer index array: the
result has the index's shape, out[i] = a[index[i]]. It is the sparse form of a 0/1
matrix Q with one 1 per row, so every selection-structured K(theta) (diagonal,
antisymmetric, Toeplitz, ...) is one take from a vector of the parameters (see
graphc/structured.py). Its adjoint `take_grad` scatter-adds back (np.add.at), and the
adjoint of that is take again: both are differentiable to any order.

`circulant(c)` is its own op (first column c, K_ij = c[(i - j) mod n], as
scipy.linalg.circulant) so that the lowering pass can recognise `circulant(c) @ y` and
apply it with FFTs without building the n x n matrix (graphc/passes/circulant.py). Its
adjoint `circulant_grad` sums the wrapped diagonals of an (n, n) cotangent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy

from graphc.node import ConstValue, Node
from graphc.ops.registry import accepts_complex, apply, defjvp, defvjp, op
from graphc.ops.sources import coerce
from graphc.shapes import as_shape, shape_error

# take / take_grad -----------------------------------------------------------------------------


def _index(attrs: Any) -> np.ndarray:
    """The index attr as an array (apply's infer sees it before it is frozen to a ConstValue)."""
    value = attrs["index"]
    return value.array if isinstance(value, ConstValue) else np.asarray(value)


def _infer_take(inputs: tuple, attrs: dict) -> tuple:
    (a,) = inputs
    if a.rank != 1:
        raise shape_error("take", f"gathers from a 1-D tensor, got rank {a.rank}", a.shape)
    index = _index(attrs)
    if index.dtype.kind not in "iu":
        raise shape_error("take", f"the index must be an integer array, got {index.dtype}")
    if a.shape[0].is_number and index.size:
        n = int(a.shape[0])
        if index.min() < 0 or index.max() >= n:
            raise shape_error(
                "take",
                f"index values in [{index.min()}, {index.max()}] are out of range [0, {n})",
                a.shape,
            )
    return as_shape(index.shape), a.dtype


@op("take", _infer_take, kind="shape", doc="gather: out[i] = a[index[i]], a 1-D")
def _take_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    index = ctx.attrs["index"].array
    if index.size and index.max() >= a.shape[0]:
        raise IndexError(f"take: index {index.max()} is out of range for size {a.shape[0]}")
    return a[index]


def _infer_take_grad(inputs: tuple, attrs: dict) -> tuple:
    (g,) = inputs
    index = _index(attrs)
    if as_shape(index.shape) != g.shape:
        raise shape_error("take_grad", "g must have the index's shape", g.shape, index.shape)
    return (attrs["size"],), g.dtype


@op("take_grad", _infer_take_grad, kind="shape", doc="scatter-add: the adjoint of take")
def _take_grad_impl(ctx: Any, g: np.ndarray) -> np.ndarray:
    out = np.zeros(ctx.shape, dtype=ctx.dtype)
    np.add.at(out, ctx.attrs["index"].array.ravel(), g.ravel())
    return out


def take(a: Any, index: Any) -> Node:
    """a[index] for a 1-D tensor a and a constant integer array `index` of any shape, with
    values in [0, len(a)) (no negative indices); the result has the index's shape."""
    (node,) = coerce([a], "take")
    array = np.asarray(index)
    if array.dtype.kind not in "iu":
        raise shape_error("take", f"the index must be an integer array, got {array.dtype}")
    return apply("take", (node,), index=ConstValue(array.astype(np.int64)))


# circulant / circulant_grad -----------------------------------------------------------------


def _infer_circulant(inputs: tuple, attrs: dict) -> tuple:
    (c,) = inputs
    if c.rank != 1:
        raise shape_error("circulant", f"needs a 1-D first column, got rank {c.rank}", c.shape)
    if c.dtype == "bool":
        raise shape_error("circulant", "needs a numeric first column, got bool", c.shape)
    return (c.shape[0], c.shape[0]), c.dtype


def circulant_index(n: int) -> np.ndarray:
    """(i - j) mod n for i, j < n: K = c[circulant_index(n)]."""
    i = np.arange(n)
    return (i[:, None] - i[None, :]) % n


@op("circulant", _infer_circulant, kind="shape", doc="K_ij = c[(i - j) mod n]")
def _circulant_impl(ctx: Any, c: np.ndarray) -> np.ndarray:
    return c[circulant_index(c.shape[0])]


def _infer_circulant_grad(inputs: tuple, attrs: dict) -> tuple:
    (g,) = inputs
    if g.rank != 2 or sympy.simplify(g.shape[0] - g.shape[1]) != 0:
        raise shape_error("circulant_grad", "needs a square matrix", g.shape)
    return (g.shape[0],), g.dtype


@op("circulant_grad", _infer_circulant_grad, kind="shape", doc="sums of wrapped diagonals")
def _circulant_grad_impl(ctx: Any, g: np.ndarray) -> np.ndarray:
    # out[k] = sum_i g[i, (i - k) mod n]
    n = g.shape[0]
    i = np.arange(n)
    return g[i[:, None], (i[:, None] - i[None, :]) % n].sum(axis=0).astype(ctx.dtype)


def circulant(c: Any) -> Node:
    """The circulant matrix of first column c: K_ij = c[(i - j) mod n] (scipy's)."""
    (node,) = coerce([c], "circulant")
    return apply("circulant", (node,))


accepts_complex("take", "take_grad", "circulant", "circulant_grad")


# derivative rules (all four ops are linear: each one's adjoint is the other) -----------------


@defvjp("take")
def _take_vjp(node: Node, g: Node) -> list:
    return [apply("take_grad", (g,), index=node.attrs["index"], size=node.inputs[0].shape[0])]


@defjvp("take")
def _take_jvp(node: Node, tangents: tuple) -> Node:
    return apply("take", tangents, **node.attrs)


@defvjp("take_grad")
def _take_grad_vjp(node: Node, g: Node) -> list:
    return [apply("take", (g,), index=node.attrs["index"])]


@defjvp("take_grad")
def _take_grad_jvp(node: Node, tangents: tuple) -> Node:
    return apply("take_grad", tangents, **node.attrs)


@defvjp("circulant")
def _circulant_vjp(node: Node, g: Node) -> list:
    return [apply("circulant_grad", (g,))]


@defjvp("circulant")
def _circulant_jvp(node: Node, tangents: tuple) -> Node:
    return apply("circulant", tangents)


@defvjp("circulant_grad")
def _circulant_grad_vjp(node: Node, g: Node) -> list:
    return [apply("circulant", (g,))]


@defjvp("circulant_grad")
def _circulant_grad_jvp(node: Node, tangents: tuple) -> Node:
    return apply("circulant_grad", tangents)
