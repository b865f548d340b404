"""Linear algebra: matmul with np.matmul's semantics (1-D operands, batched broadcasting)."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.node import Node
from graphc.ops.registry import accepts_complex, apply, op, promote
from graphc.ops.sources import coerce
from graphc.shapes import ShapeError, broadcast_shapes, dims_equal, shape_error, shape_str


def _infer_matmul(inputs: tuple, attrs: dict) -> tuple:
    a, b = inputs
    if a.rank == 0 or b.rank == 0:
        raise shape_error("matmul", "operands must have rank >= 1", a.shape, b.shape)
    if a.dtype == "bool" or b.dtype == "bool":
        raise shape_error("matmul", f"bool operands ({a.dtype}, {b.dtype}) are not supported")
    a_shape = (1,) + a.shape if a.rank == 1 else a.shape
    b_shape = b.shape + (1,) if b.rank == 1 else b.shape
    if not dims_equal(a_shape[-1], b_shape[-2]):
        raise shape_error(
            "matmul",
            f"inner dimensions differ ({a_shape[-1]} vs {b_shape[-2]})",
            a.shape,
            b.shape,
        )
    try:
        batch = broadcast_shapes("matmul", a_shape[:-2], b_shape[:-2])
    except ShapeError:
        raise shape_error(
            "matmul",
            f"batch dimensions {shape_str(a_shape[:-2])} and {shape_str(b_shape[:-2])} "
            f"do not broadcast",
            a.shape,
            b.shape,
        ) from None
    shape = batch
    if a.rank > 1:
        shape = shape + (a_shape[-2],)
    if b.rank > 1:
        shape = shape + (b_shape[-1],)
    return shape, promote(a.dtype, b.dtype)


@op("matmul", _infer_matmul, kind="linalg")
def _matmul_impl(ctx: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a.astype(ctx.dtype, copy=False), b.astype(ctx.dtype, copy=False))


accepts_complex("matmul")


def matmul(a: Any, b: Any) -> Node:
    """np.matmul: (..., n, k) @ (..., k, m); a 1-D operand is a vector."""
    a_node, b_node = coerce([a, b], "matmul")
    return apply("matmul", (a_node, b_node))


# derivative rules ---------------------------------------------------------------------------

from graphc.node import INEXACT_DTYPES  # noqa: E402
from graphc.ops import adjoint  # noqa: E402
from graphc.ops import shape as shp  # noqa: E402
from graphc.ops.registry import defjvp, defvjp  # noqa: E402


def _as_matrices(node: Node) -> tuple:
    """(a2, b2, batch): the operands with 1-D ones made (1, k) and (k, 1), and the batch."""
    a, b = node.inputs
    a2 = shp.reshape(a, (1,) + a.shape) if a.rank == 1 else a
    b2 = shp.reshape(b, b.shape + (1,)) if b.rank == 1 else b
    kept = (a.rank > 1) + (b.rank > 1)
    return a2, b2, node.shape[: node.rank - kept]


def _swap(m: Node) -> Node:
    """The matrix transpose of the last two axes."""
    axes = list(range(m.rank))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return shp.transpose(m, axes)


@defvjp("matmul")
def _matmul_vjp(node: Node, g: Node) -> list:
    # C = A B: dA = G B^T, dB = A^T G, each summed over the batch axes it was broadcast on
    a, b = node.inputs
    a2, b2, batch = _as_matrices(node)
    g2 = shp.reshape(g, batch + (a2.shape[-2], b2.shape[-1]))
    out = []
    if a.dtype in INEXACT_DTYPES:
        ga = adjoint.unbroadcast(matmul(g2, _swap(b2)), a2.shape)
        out.append(shp.reshape(ga, a.shape))
    else:
        out.append(None)
    if b.dtype in INEXACT_DTYPES:
        gb = adjoint.unbroadcast(matmul(_swap(a2), g2), b2.shape)
        out.append(shp.reshape(gb, b.shape))
    else:
        out.append(None)
    return out


@defjvp("matmul")
def _matmul_jvp(node: Node, tangents: tuple) -> Node:
    # d(A B) = dA B + A dB
    a, b = node.inputs
    ta, tb = tangents
    total = None if ta is None else matmul(ta, b)
    if tb is not None:
        total = adjoint.add_any(total, matmul(a, tb))
    return total
