"""Small helpers the derivative rules share: symbolic zeros, sums, unbroadcasting."""

from __future__ import annotations

from graphc.node import Node
from graphc.ops import elementwise as ew_ops
from graphc.ops import reduce as red
from graphc.ops import shape as shp
from graphc.ops.sources import constant


def zeros(shape: tuple, dtype: str) -> Node:
    """A zero tensor that costs a scalar: broadcast_to(0, shape)."""
    return shp.broadcast_to(constant(0, dtype), shape)


def add_any(a: Node | None, b: Node | None) -> Node | None:
    """a + b where None is the symbolic zero."""
    if a is None:
        return b
    if b is None:
        return a
    return ew_ops.ew("add", a, b)


def is_constant(node: Node, value: float) -> bool:
    if node.op != "constant":
        return False
    array = node.attrs["value"].array
    return array.ndim == 0 and array.item() == value  # item(): complex constants too


def times(g: Node, p: Node) -> Node:
    """g * p, without a node for p == 1 (g) or p == -1 (-g)."""
    if is_constant(p, 1.0):
        return g
    if is_constant(p, -1.0):
        return ew_ops.ew("neg", g)
    return ew_ops.ew("mul", g, p)


def unbroadcast(g: Node, shape: tuple) -> Node:
    """Sum g over the axes numpy broadcasting added or stretched to reach g's shape from `shape`."""
    extra = g.rank - len(shape)
    axes = list(range(extra))
    for k, d in enumerate(shape):
        if d == 1 and g.shape[extra + k] != 1:
            axes.append(extra + k)
    if axes:
        g = red.sum(g, tuple(axes))
    return shp.reshape(g, shape)


def with_shape(t: Node, shape: tuple) -> Node:
    """t broadcast to `shape` (a tangent of a broadcasting op)."""
    return shp.broadcast_to(t, shape) if t.shape != tuple(shape) else t
