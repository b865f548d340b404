"""Symbolic shapes: dims are sympy expressions, shapes are tuples of them.

A shape is a tuple of sympy integers or expressions of symbols made by `dim`.
Broadcasting follows numpy: dims are aligned from the right, a dim of 1
stretches. A symbolic dim never broadcasts (like JAX's shape polymorphism): N
against 1 gives N, N against N gives N, N against M is an error at build time.
"""

from __future__ import annotations

import functools
import operator
import os
import sys
from collections.abc import Iterable, Sequence

import numpy as np
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
        if not isinstance(d, sympy.Expr):
            raise ShapeError(f"a dim must be an integer or a gc.dim expression, got {d!r}")
        # a plain sympy.Symbol("N") means gc.dim("N") (they differ in assumptions, so would
        # otherwise never compare equal and shapes would mismatch mysteriously)
        plain = {s: dim(s.name) for s in d.free_symbols if s != dim(s.name)}
        return d.xreplace(plain) if plain else d
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
    if isinstance(shape, (int, np.integer, sympy.Basic)):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Iterable):
        raise ShapeError(f"a shape must be a tuple of dims, got {shape!r}")
    return tuple(as_dim(d) for d in shape)


def dims_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """True when two dims are provably equal."""
    if a == b:
        return True
    return _difference_is_zero(a - b)


@functools.lru_cache(maxsize=4096)
def _difference_is_zero(d: sympy.Expr) -> bool:
    # a polynomial is zero iff its expanded form is; only floors and the like need simplify
    # (fusion asks thousands of times: simplify on each took seconds on a BatchNorm graph)
    d = sympy.expand(d)
    if d == 0:
        return True
    if d.is_polynomial():
        return False
    return sympy.simplify(d) == 0


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


def _as_axis(op: str, axis: object) -> int:
    if isinstance(axis, (bool, np.bool_)):
        raise shape_error(op, f"axis must be an int, got {axis!r}")
    try:
        return operator.index(axis)  # python and numpy ints
    except TypeError:
        raise shape_error(op, f"axis must be an int, got {axis!r}") from None


def normalize_axis(op: str, axis: object, rank: int) -> int:
    """axis in [-rank, rank) as a non-negative int; a ShapeError naming op otherwise."""
    axis = _as_axis(op, axis)
    if not -rank <= axis < rank:
        raise shape_error(op, f"axis {axis} is out of range for rank {rank}")
    return axis % rank


def normalize_axes(op: str, axis: object, rank: int) -> tuple:
    """None -> all axes, int -> (int,), tuple -> sorted tuple of distinct axes."""
    if axis is None:
        return tuple(range(rank))
    if not isinstance(axis, (tuple, list)):
        return (normalize_axis(op, axis, rank),)
    axes = tuple(normalize_axis(op, a, rank) for a in axis)
    if len(set(axes)) != len(axes):
        raise shape_error(op, f"repeated axis in {axis!r}")
    return tuple(sorted(axes))


class Bindings:
    """Concrete values of the symbolic dims, and which input bound each one.

    A value, once bound, never changes, so evaluated sizes are remembered: a Function reuses
    one Bindings per shape signature of its arguments, and sympy runs once per size."""

    def __init__(self) -> None:
        self.values: dict = {}
        self.sources: dict = {}
        self._evaluated: dict = {}

    def __getitem__(self, symbol: sympy.Symbol) -> int:
        return self.values[symbol]

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.values

    def __repr__(self) -> str:
        shown = ", ".join(f"{s}={v}" for s, v in sorted(self.values.items(), key=str))
        return f"Bindings({shown})"

    def set(self, symbol: sympy.Symbol, value: int, source: str) -> None:
        self.values[symbol] = int(value)
        self.sources[symbol] = source

    def _origin(self, d: sympy.Expr) -> str:
        """'; N=3 was bound by input 'x' axis 0' for each bound symbol of d."""
        return "".join(
            f"; {s}={self.values[s]} was bound by {self.sources[s]}"
            for s in sorted(d.free_symbols, key=str)
            if s in self.values
        )

    def evaluate(self, d: sympy.Expr) -> int:
        """A dim's concrete value once its symbols are bound."""
        if not isinstance(d, sympy.Basic):
            d = as_dim(d)
        if d.is_Integer:
            return int(d)
        found = self._evaluated.get(d)
        if found is not None:
            return found
        value = d.subs(self.values)
        if not value.is_number:
            missing = ", ".join(sorted(str(s) for s in value.free_symbols))
            raise BindError(f"size {d} cannot be computed: symbols {missing} are not bound")
        if not value.is_integer or value < 0:
            raise BindError(f"size {d} = {value} is not a non-negative integer{self._origin(d)}")
        self._evaluated[d] = int(value)
        return int(value)

    def evaluate_shape(self, shape: Sequence[sympy.Expr]) -> tuple:
        return tuple(self.evaluate(d) for d in shape)

    def bind(self, name: str, shape: Sequence[sympy.Expr], actual: Sequence[int]) -> None:
        """Bind the symbols of one input's `shape` from its array's `actual` shape."""
        self.bind_all([(name, shape, actual)])

    def bind_all(self, items: Sequence[tuple]) -> None:
        """Bind symbols from several inputs' (name, shape, actual shape), checking consistency.

        Ranks are checked first, then every plain symbol binds (the first input that has it
        wins), then sizes that are expressions are checked, or solved for their one unbound
        symbol, until nothing changes; so the order of the inputs does not matter.
        """
        for name, shape, actual in items:
            if len(shape) != len(actual):
                raise BindError(
                    f"input '{name}': expected rank {len(shape)} with shape {shape_str(shape)}, "
                    f"got an array of rank {len(actual)} with shape {tuple(actual)}"
                )
        pending = []
        for name, shape, actual in items:
            shape = tuple(d if isinstance(d, sympy.Basic) else as_dim(d) for d in shape)
            for axis, (d, n) in enumerate(zip(shape, actual)):
                if d.is_Symbol and d not in self.values:
                    self.set(d, n, f"input '{name}' axis {axis}")
                else:
                    pending.append((name, shape, tuple(actual), axis, d, int(n)))
        while pending:
            waiting = []
            for item in pending:
                name, shape, actual, axis, d, n = item
                unbound = [s for s in d.free_symbols if s not in self.values]
                if len(unbound) == 1:
                    self._solve(name, axis, d, n, unbound[0])
                elif unbound:
                    waiting.append(item)
                else:
                    self._check(name, shape, actual, axis, d, n)
            if len(waiting) == len(pending):
                name, shape, actual, axis, d, n = waiting[0]
                missing = ", ".join(sorted(str(s) for s in d.free_symbols if s not in self))
                raise BindError(
                    f"input '{name}' axis {axis}: size {d} cannot be determined from the "
                    f"arrays given: no input binds {missing} on its own"
                )
            pending = waiting

    def _check(
        self, name: str, shape: Sequence, actual: tuple, axis: int, d: sympy.Expr, n: int
    ) -> None:
        expected = self.evaluate(d)
        if expected != n:
            size = str(expected) if d.is_Integer else f"{d} = {expected}"
            raise BindError(
                f"input '{name}' axis {axis}: expected size {size}, got {n} (expected shape "
                f"{shape_str(shape)}, got an array of shape {actual}){self._origin(d)}"
            )

    def _solve(self, name: str, axis: int, d: sympy.Expr, n: int, unknown: sympy.Symbol) -> None:
        solutions = sympy.solve(sympy.Eq(d.subs(self.values), n), unknown)
        good = [s for s in solutions if s.is_integer and s >= 0]
        if not good:
            raise BindError(
                f"input '{name}' axis {axis}: size {n} does not fit {d} "
                f"for an integer {unknown}{self._origin(d)}"
            )
        self.set(unknown, int(good[0]), f"input '{name}' axis {axis}")
