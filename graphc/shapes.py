"""Symbolic shapes: dims are sympy expressions, shapes are tuples of them.

A shape is a tuple of sympy integers or expressions of symbols made by `dim`.
Broadcasting follows numpy: dims are aligned from the right, a dim of 1
stretches. A symbolic dim never broadcasts (like JAX's shape polymorphism): N
against 1 gives N, N against N gives N, N against M is an error at build time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence

import sympy

Dim = sympy.Expr
Shape = tuple


class ShapeError(ValueError):
    """A shape mismatch found while building a graph or binding arrays to it."""


class BindError(ValueError):
    """Arrays given at call time disagree with the graph (rank, dtype, sizes)."""


def dim(name: str) -> sympy.Symbol:
    """A symbolic size, bound to a concrete integer when the graph runs."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"gc.dim: name must be an identifier, got {name!r}")
    return sympy.Symbol(name, integer=True, positive=True)


def as_dim(d: object) -> sympy.Expr:
    """One dim from an int, a sympy expression or a numpy integer."""
    if isinstance(d, bool):
        raise ShapeError(f"a dim must be an integer or a gc.dim expression, got {d!r}")
    if isinstance(d, sympy.Basic):
        d = sympy.sympify(d)
        if d.is_number:
            if not d.is_integer:
                raise ShapeError(f"a dim must be an integer, got {d}")
            return sympy.Integer(int(d))
        return d
    try:
        value = int(d)  # numpy integers, python ints
    except (TypeError, ValueError):
        raise ShapeError(f"a dim must be an integer or a gc.dim expression, got {d!r}") from None
    if value != d:
        raise ShapeError(f"a dim must be an integer, got {d!r}")
    if value < 0:
        raise ShapeError(f"a dim must be >= 0, got {value}")
    return sympy.Integer(value)


def as_shape(shape: Iterable[object] | object) -> tuple:
    """A shape tuple of sympy dims from ints, symbols or expressions."""
    if isinstance(shape, (int, sympy.Basic)):
        shape = (shape,)
    return tuple(as_dim(d) for d in shape)  # type: ignore[union-attr]


def dims_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """True when two dims are provably equal."""
    if a == b:
        return True
    return sympy.simplify(a - b) == 0


def is_concrete(shape: Sequence[sympy.Expr]) -> bool:
    return all(d.is_number for d in shape)


def numel(shape: Sequence[sympy.Expr]) -> sympy.Expr:
    total = sympy.Integer(1)
    for d in shape:
        total = total * d
    return total


def shape_str(shape: Sequence[sympy.Expr]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def user_location() -> str:
    """The file:line of the first stack frame outside graphc (where the user built a node)."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(here + os.sep):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def shape_error(op: str, message: str, *shapes: Sequence[sympy.Expr]) -> ShapeError:
    """A ShapeError naming the op, the shapes involved and the user's line."""
    shown = " and ".join(shape_str(s) for s in shapes)
    detail = f" (shapes {shown})" if shapes else ""
    return ShapeError(f"{op}: {message}{detail}, built at {user_location()}")


def broadcast_shapes(op: str, *shapes: Sequence[sympy.Expr]) -> tuple:
    """numpy broadcasting of several shapes; ShapeError naming op and shapes when impossible."""
    rank = max((len(s) for s in shapes), default=0)
    result = []
    for axis in range(rank):
        size = sympy.Integer(1)
        for s in shapes:
            k = axis - (rank - len(s))
            if k < 0:
                continue
            d = s[k]
            if d == 1:
                continue
            if size == 1:
                size = d
            elif not dims_equal(size, d):
                raise shape_error(op, "shapes do not broadcast", *shapes)
        result.append(size)
    return tuple(result)


def normalize_axis(op: str, axis: int, rank: int) -> int:
    if not isinstance(axis, (int,)) or isinstance(axis, bool):
        raise shape_error(op, f"axis must be an int, got {axis!r}")
    if not -rank <= axis < rank:
        raise shape_error(op, f"axis {axis} is out of range for rank {rank}")
    return axis % rank


def normalize_axes(op: str, axis: object, rank: int) -> tuple:
    """None -> all axes, int -> (int,), tuple -> sorted tuple of distinct axes."""
    if axis is None:
        return tuple(range(rank))
    if isinstance(axis, int) and not isinstance(axis, bool):
        return (normalize_axis(op, axis, rank),)
    axes = tuple(normalize_axis(op, a, rank) for a in axis)  # type: ignore[union-attr]
    if len(set(axes)) != len(axes):
        raise shape_error(op, f"repeated axis in {axis!r}")
    return tuple(sorted(axes))


class Bindings:
    """Concrete values of the symbolic dims, and which input bound each one."""

    def __init__(self) -> None:
        self.values: dict = {}
        self.sources: dict = {}

    def __getitem__(self, symbol: sympy.Symbol) -> int:
        return self.values[symbol]

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.values

    def set(self, symbol: sympy.Symbol, value: int, source: str) -> None:
        self.values[symbol] = int(value)
        self.sources[symbol] = source

    def evaluate(self, d: sympy.Expr) -> int:
        """A dim's concrete value once its symbols are bound."""
        if d.is_Integer:
            return int(d)
        value = d.subs(self.values)
        if not value.is_number:
            missing = ", ".join(sorted(str(s) for s in value.free_symbols))
            raise BindError(f"size {d} cannot be computed: symbols {missing} are not bound")
        return int(value)

    def evaluate_shape(self, shape: Sequence[sympy.Expr]) -> tuple:
        return tuple(self.evaluate(d) for d in shape)

    def bind(self, name: str, shape: Sequence[sympy.Expr], actual: Sequence[int]) -> None:
        """Bind the symbols of `shape` from the concrete `actual` shape, checking consistency.

        Plain symbols bind directly; an expression with one unbound symbol is solved for it.
        """
        if len(shape) != len(actual):
            raise BindError(
                f"input '{name}': expected rank {len(shape)} with shape {shape_str(shape)}, "
                f"got an array of rank {len(actual)} with shape {tuple(actual)}"
            )
        pending = []
        for axis, (d, n) in enumerate(zip(shape, actual)):
            if d.is_Symbol and d not in self.values:
                self.set(d, n, f"input '{name}' axis {axis}")
            else:
                pending.append((axis, d, int(n)))
        for axis, d, n in pending:
            unbound = [s for s in d.free_symbols if s not in self.values]
            if len(unbound) == 1:
                self._solve(name, axis, d, n, unbound[0])
                continue
            expected = self.evaluate(d)
            if expected != n:
                origin = "".join(
                    f"; {s}={self.values[s]} was bound by {self.sources[s]}"
                    for s in sorted(d.free_symbols, key=str)
                )
                raise BindError(
                    f"input '{name}' axis {axis}: expected size {d} = {expected}, got {n}{origin}"
                )

    def _solve(self, name: str, axis: int, d: sympy.Expr, n: int, unknown: sympy.Symbol) -> None:
        solutions = sympy.solve(sympy.Eq(d.subs(self.values), n), unknown)
        good = [s for s in solutions if s.is_integer and s > 0]
        if not good:
            raise BindError(
                f"input '{name}' axis {axis}: size {n} does not fit {d} "
                f"for a positive integer {unknown}"
            )
        self.set(unknown, int(good[0]), f"input '{name}' axis {axis}")
