"""The user's Tensor: a face on a Node with numpy-like operators and methods.

There is one Tensor per Node, so `Tensor`s compare and hash by identity and can
key dicts (`updates={W: ...}`, `feed={x: ...}`). `==` is identity, not an
elementwise comparison: use `gc.equal` for that.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc import ops
from graphc.node import Node
from graphc.ops import elementwise as ew_ops
from graphc.ops import linalg, reduce, shape


class Tensor:
    __slots__ = ("node",)
    __array_ufunc__ = None  # numpy defers to our reflected operators: ndarray * Tensor -> Tensor
    node: Node

    def __new__(cls, node: Node) -> Tensor:
        if not isinstance(node, Node):
            raise TypeError(f"Tensor wraps a Node, got {type(node).__name__}")
        face = node._face
        if face is None:
            face = object.__new__(cls)
            object.__setattr__(face, "node", node)
            object.__setattr__(node, "_face", face)
        return face

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "value":
            type(self).value.fset(self, value)  # type: ignore[attr-defined]
            return
        raise AttributeError(f"Tensor attributes are read-only (tried to set {name})")

    # description ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.node.shape

    @property
    def dtype(self) -> str:
        return self.node.dtype

    @property
    def ndim(self) -> int:
        return self.node.rank

    @property
    def op(self) -> str:
        return self.node.op

    @property
    def name(self) -> str | None:
        return self.node.attrs.get("name")

    @property
    def value(self) -> np.ndarray:
        """A parameter's current value (or a constant's)."""
        if self.node.op == "param":
            return self.node.attrs["state"].value
        if self.node.op == "constant":
            return self.node.attrs["value"].array
        op = self.node.op
        raise AttributeError(f"{op} tensors have no value until a compiled function runs")

    @value.setter
    def value(self, array: Any) -> None:
        if self.node.op != "param":
            raise AttributeError(f"only params have a settable value, not {self.node.op}")
        new = np.array(array, dtype=self.node.dtype)
        expected = tuple(int(d) for d in self.node.shape)
        if new.shape != expected:
            raise ValueError(
                f"param {self.name!r}: value must have shape {expected}, got {new.shape}"
            )
        self.node.attrs["state"].value = new

    def __repr__(self) -> str:
        dims = ", ".join(str(d) for d in self.node.shape)
        return f"Tensor({self.node.label()}, shape=({dims}), dtype={self.node.dtype})"

    def __copy__(self) -> Tensor:
        return self  # one Tensor per Node, and Nodes are immutable

    def __deepcopy__(self, memo: dict) -> Tensor:
        return self

    def __bool__(self) -> bool:
        raise TypeError("a symbolic Tensor has no truth value; use gc.where for conditions")

    def __iter__(self) -> Any:
        raise TypeError("a symbolic Tensor cannot be iterated; index it with t[i]")

    # arithmetic ----------------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "add", self, other)

    def __radd__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "add", other, self)

    def __sub__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "sub", self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "sub", other, self)

    def __mul__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "mul", self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "mul", other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "div", self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "div", other, self)

    def __pow__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "pow", self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "pow", other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return apply_op(linalg.matmul, self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return apply_op(linalg.matmul, other, self)

    def __neg__(self) -> Tensor:
        return apply_op(ew_ops.ew, "neg", self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return apply_op(ew_ops.ew, "abs", self)

    def __lt__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "lt", self, other)

    def __le__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "le", self, other)

    def __gt__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "gt", self, other)

    def __ge__(self, other: Any) -> Tensor:
        return apply_op(ew_ops.ew, "ge", self, other)

    __hash__ = object.__hash__

    # shape methods -------------------------------------------------------------------------
    def __getitem__(self, index: Any) -> Tensor:
        return apply_op(shape.getitem, self, index)

    @property
    def T(self) -> Tensor:  # noqa: N802
        return apply_op(shape.transpose, self)

    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return apply_op(shape.transpose, self, axes or None)

    def reshape(self, *new_shape: Any) -> Tensor:
        if len(new_shape) == 1 and isinstance(new_shape[0], (tuple, list)):
            new_shape = tuple(new_shape[0])
        return apply_op(shape.reshape, self, new_shape)

    def astype(self, dtype: Any) -> Tensor:
        return apply_op(ew_ops.cast, self, dtype)

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return apply_op(reduce.sum, self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return apply_op(reduce.mean, self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return apply_op(reduce.max, self, axis, keepdims)


def unwrap(value: Any) -> Any:
    """Tensors (also inside lists and tuples) to their Nodes."""
    if isinstance(value, Tensor):
        return value.node
    if isinstance(value, (list, tuple)):
        return type(value)(unwrap(v) for v in value)
    return value


def wrap(value: Any) -> Any:
    """Nodes (also inside lists and tuples) to their Tensors."""
    if isinstance(value, Node):
        return Tensor(value)
    if isinstance(value, (list, tuple)):
        return type(value)(wrap(v) for v in value)
    return value


def apply_op(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call a node-level op builder with Tensors unwrapped and wrap what it returns."""
    args = tuple(unwrap(a) for a in args)
    kwargs = {k: unwrap(v) for k, v in kwargs.items()}
    return wrap(fn(*args, **kwargs))


def lift(fn: Callable) -> Callable:
    """The Tensor-level version of a node-level op builder (same name and doc)."""

    @functools.wraps(fn)
    def lifted(*args: Any, **kwargs: Any) -> Any:
        return apply_op(fn, *args, **kwargs)

    return lifted


def as_tensor(value: Any) -> Tensor:
    """A Tensor from a Tensor, an array or a python scalar (a constant)."""
    if isinstance(value, Tensor):
        return value
    return Tensor(ops.sources.coerce([value], "as_tensor")[0])
