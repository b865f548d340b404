"""The IR: a frozen, interned Node (op, inputs, attrs, shape, dtype).

Nodes are hash-consed: building a node equal in structure to a live one returns
that same object, so structural equality is identity and common subexpressions
are shared for free. This module knows no op; `graphc.ops` gives ops meaning.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

DTYPES = ("float32", "float64", "int32", "int64", "bool", "complex64", "complex128")
FLOAT_DTYPES = ("float32", "float64")  # the real floats: what users differentiate
COMPLEX_DTYPES = ("complex64", "complex128")  # intermediates of FFTs (graphc/ops/fft.py)
INEXACT_DTYPES = FLOAT_DTYPES + COMPLEX_DTYPES  # what carries derivatives inside a graph


def as_dtype(dtype: object) -> str:
    """The canonical dtype name ('float32', ...) from a string, numpy dtype or type."""
    try:
        name = np.dtype(dtype).name  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}; graphc supports {', '.join(DTYPES)}") from None
    if name not in DTYPES:
        raise TypeError(f"unsupported dtype {name}; graphc supports {', '.join(DTYPES)}")
    return name


class ConstValue:
    """A read-only ndarray that compares and hashes by its contents (for constant nodes)."""

    __slots__ = ("array", "_hash")

    def __init__(self, array: np.ndarray) -> None:
        array = np.asarray(array)
        array = array.astype(array.dtype.newbyteorder("="), copy=True)  # native byte order
        array.setflags(write=False)
        self.array = array
        digest = hashlib.blake2b(array.tobytes(), digest_size=8).digest()
        self._hash = hash((array.dtype.str, array.shape, digest))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConstValue):
            return NotImplemented
        a, b = self.array, other.array
        return (
            self._hash == other._hash
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )

    def __repr__(self) -> str:
        if self.array.size <= 6:
            return np.array2string(self.array, precision=6, separator=", ")
        return f"<{self.array.dtype} array {self.array.shape}>"


class ParamState:
    """The mutable value of a parameter; nodes hold it, compiled functions update it."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: np.ndarray) -> None:
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"ParamState({self.name})"


def _freeze(value: Any) -> Any:
    """Attribute values made hashable: lists become tuples, arrays ConstValues."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.ndarray):
        return ConstValue(value)
    if isinstance(value, np.generic):
        return value.item()
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"op attributes must be hashable, got {type(value).__name__}") from None
    return value


def _typed(value: Any) -> Any:
    """The identity of an attribute value, typed: True, 1 and 1.0 (equal in python) differ,
    and so do 0.0 and -0.0; NaN equals NaN."""
    if isinstance(value, tuple):
        return tuple(_typed(v) for v in value)
    if isinstance(value, float):
        return (float, value.hex())
    if isinstance(value, (bool, int)):
        return (type(value), value)
    return value


def _first(item: tuple) -> Any:
    return item[0]


class Attrs(Mapping):
    """An immutable, hashable mapping of op attributes."""

    __slots__ = ("_items", "_dict", "_key", "_hash")

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        frozen = tuple(sorted(((k, _freeze(v)) for k, v in (items or {}).items()), key=_first))
        self._items = frozen
        self._dict = dict(frozen)
        self._key = tuple((k, _typed(v)) for k, v in frozen)
        self._hash = hash(self._key)

    def __getitem__(self, key: str) -> Any:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attrs):
            return NotImplemented
        return self._key == other._key

    def __repr__(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._items)


class Node:
    """One operation of the graph. Construct with `Node.make`; never mutate."""

    __slots__ = ("op", "inputs", "attrs", "shape", "dtype", "where", "_face", "__weakref__")
    _interned: weakref.WeakValueDictionary[tuple, Node] = weakref.WeakValueDictionary()
    _lock = threading.Lock()

    op: str
    inputs: tuple
    attrs: Attrs
    shape: tuple
    dtype: str
    where: str

    @classmethod
    def make(
        cls,
        op: str,
        inputs: Sequence[Node],
        attrs: Mapping[str, Any] | None,
        shape: Sequence[Any],
        dtype: str,
        where: str = "<unknown>",
    ) -> Node:
        """The unique node with this structure (an existing one when it is alive)."""
        inputs = tuple(inputs)
        for i in inputs:
            if not isinstance(i, Node):
                raise TypeError(f"{op}: inputs must be Nodes, got {type(i).__name__}")
        frozen = attrs if isinstance(attrs, Attrs) else Attrs(attrs)
        shape = tuple(shape)
        key = (op, inputs, frozen, shape, dtype)
        with cls._lock:  # two threads building the same node must get the same object
            node = cls._interned.get(key)
            if node is not None:
                return node
            node = object.__new__(cls)
            for name, value in zip(("op", "inputs", "attrs", "shape", "dtype"), key):
                object.__setattr__(node, name, value)
            object.__setattr__(node, "where", where)
            object.__setattr__(node, "_face", None)
            cls._interned[key] = node
        return node

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Node is immutable (tried to set {name})")

    def __reduce__(self) -> Any:
        raise TypeError("Nodes are interned and cannot be pickled")

    def __copy__(self) -> Node:
        return self  # immutable and interned: a copy is the node itself

    def __deepcopy__(self, memo: dict) -> Node:
        return self

    @property
    def rank(self) -> int:
        return len(self.shape)

    def label(self) -> str:
        """A short one-line description: op, name or attrs."""
        if "name" in self.attrs:
            return f"{self.op} {self.attrs['name']}"
        shown = [f"{k}={v!r}" for k, v in self.attrs.items() if k not in ("uid", "state")]
        return self.op + (f"[{', '.join(shown)}]" if shown else "")

    def __repr__(self) -> str:
        return f"<Node {self.label()} {_shape_text(self.shape)} {self.dtype}>"


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def toposort(outputs: Iterable[Node]) -> list:
    """Nodes reachable from `outputs`, each after all of its inputs (iterative DFS)."""
    order: list = []
    done: set = set()
    for root in outputs:
        if root in done:
            continue
        stack = [(root, iter(root.inputs))]
        visiting = {root}
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                visiting.discard(node)
                done.add(node)
                order.append(node)
            elif child not in done and child not in visiting:
                visiting.add(child)
                stack.append((child, iter(child.inputs)))
    return order


def node_ids(nodes: Iterable[Node]) -> dict:
    """Stable small integer ids (topological position) for printing and export."""
    return {node: i for i, node in enumerate(nodes)}


def format_graph(outputs: Sequence[Node]) -> str:
    """A readable listing: one line per node, `%id = op(inputs) attrs : shape dtype`."""
    order = toposort(outputs)
    ids = node_ids(order)
    lines = []
    for node in order:
        args = ", ".join(f"%{ids[i]}" for i in node.inputs)
        lines.append(
            f"%{ids[node]} = {node.label()}({args}) : {_shape_text(node.shape)} {node.dtype}"
        )
    outs = ", ".join(f"%{ids[o]}" for o in outputs)
    lines.append(f"return {outs}")
    return "\n".join(lines)
