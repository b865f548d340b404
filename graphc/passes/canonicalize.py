"""canonicalize: one form for equivalent graphs, so that interning shares them and later
rules match one pattern instead of several.

Every rule here is exact (bit-for-bit the same values, NaN and infinities included; the one
exception is the sign of a zero from maximum/minimum of +0 and -0, whose operands are
reordered):

  sub(a, b)                 -> add(a, neg(b))            a - b is a + (-b) in IEEE arithmetic
  div(a, c)                 -> mul(a, 1/c)               only for c a constant power of two:
                                                         1/c is exact and so is a * (1/c);
                                                         any other c would differ by an ulp
  add mul maximum minimum eq ne: operands ordered by a stable structural key, constants last
  transpose(transpose(x))   -> one transpose (or x)      the permutations composed
  reshape(reshape(x))       -> one reshape (or x)        row-major reshapes compose
  broadcast_to(broadcast_to(x)) -> one broadcast_to
  reshape(broadcast_to(s))  -> broadcast_to(s)           s of one element
  cast(x, dtype of x)       -> x
  cast(cast(x, U), V)       -> cast(x, V)                when U holds every value of x exactly

The order key is a digest of a node's structure (op, attrs but the uid counter of inputs
and params, shape, dtype, inputs' digests): the same in every run of the same program, and
whatever was built before it in the process; never an id(). `DISABLED` holds the names of
rules switched off (tests, debugging); skip_passes=["canonicalize"] switches off them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy

from graphc.node import ConstValue, Node, ParamState, toposort
from graphc.ops import shape as shp
from graphc.ops.elementwise import cast, ew
from graphc.ops.registry import apply
from graphc.ops.sources import constant
from graphc.passes.dce import note_start
from graphc.passes.rewrite import rewrite

DISABLED: set = set()
COMMUTATIVE = ("add", "mul", "maximum", "minimum", "eq", "ne")
REAL_FLOATS = ("float32", "float64")

# (from, to): every value of `from` is exactly a value of `to`, so casting back is lossless
EXACT_CASTS = {
    ("bool", "int32"),
    ("bool", "int64"),
    ("bool", "float32"),
    ("bool", "float64"),
    ("int32", "int64"),
    ("int32", "float64"),
    ("float32", "float64"),
    ("float32", "complex64"),
    ("float32", "complex128"),
    ("float64", "complex128"),
    ("complex64", "complex128"),
}


# helpers shared with simplify -----------------------------------------------------------


def const_array(node: Node) -> np.ndarray | None:
    """The small array behind a constant or a broadcast of one (a splat), else None."""
    if node.op == "broadcast_to":
        node = node.inputs[0]
    if node.op == "constant":
        return node.attrs["value"].array
    return None


def is_splat(node: Node) -> bool:
    return node.op == "broadcast_to" and node.inputs[0].op == "constant"


def const_like(array: np.ndarray, node: Node) -> Node:
    """A constant of `array` (whose shape broadcasts to node's), broadcast as node is."""
    c = constant(np.asarray(array))
    return shp.broadcast_to(c, node.shape) if node.op == "broadcast_to" else c


def _attr_text(value: Any) -> str:
    if isinstance(value, ConstValue):
        a = value.array
        digest = hashlib.blake2b(a.tobytes(), digest_size=8).hexdigest()
        return f"C{a.dtype.str}{a.shape}{digest}"
    if isinstance(value, ParamState):
        return f"P{value.name}"
    if isinstance(value, tuple):
        return "(" + ",".join(_attr_text(v) for v in value) + ")"
    if isinstance(value, float):
        return f"f{value.hex()}"
    if isinstance(value, sympy.Basic):
        return f"S{sympy.srepr(value)}"
    return f"{type(value).__name__}:{value!r}"


class Keys:
    """Stable structural digests of nodes, memoized (one instance per pass run)."""

    def __init__(self) -> None:
        self.memo: dict = {}

    def digest(self, node: Node) -> str:
        found = self.memo.get(node)
        if found is not None:
            return found
        stack = [node]
        while stack:  # iterative: gradient graphs can be deeper than python's recursion
            top = stack[-1]
            missing = [i for i in top.inputs if i not in self.memo]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            if top in self.memo:
                continue
            text = "|".join(
                [
                    top.op,
                    # not the uid of inputs and params: a counter, so it depends on history
                    ";".join(f"{k}={_attr_text(v)}" for k, v in top.attrs.items() if k != "uid"),
                    ",".join(str(d) for d in top.shape),
                    top.dtype,
                    *(self.memo[i] for i in top.inputs),
                ]
            )
            self.memo[top] = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
        return self.memo[node]

    def key(self, node: Node) -> tuple:
        """Sort key: computed values first, constants (and splats of them) last."""
        constant_like = node.op == "constant" or is_splat(node)
        return (constant_like, self.digest(node))


# the rules ------------------------------------------------------------------------------


def sub_to_add(node: Node, keys: Keys) -> Node | None:
    # a - b -> a + (-b)
    if node.op != "sub" or node.dtype == "bool":
        return None
    a, b = node.inputs
    return ew("add", a, ew("neg", b))


def _exact_reciprocal(c: np.ndarray) -> np.ndarray | None:
    """1/c when every entry of c is a power of two whose reciprocal is one too, else None."""
    if c.dtype.name not in REAL_FLOATS or c.size == 0:
        return None
    with np.errstate(all="ignore"):
        r = np.reciprocal(c)
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(r)) and np.all(c != 0)):
        return None
    # a power of two has mantissa exactly 1/2 in frexp's form; subnormals included
    if np.all(np.abs(np.frexp(c)[0]) == 0.5) and np.all(np.abs(np.frexp(r)[0]) == 0.5):
        return r
    return None


def div_by_power_of_two(node: Node, keys: Keys) -> Node | None:
    # a / 2^k -> a * 2^-k (both exact: scaling by a power of two only moves the exponent)
    if node.op != "div":
        return None
    a, c = node.inputs
    value = const_array(c)
    if value is None or a.dtype not in REAL_FLOATS:
        return None
    r = _exact_reciprocal(value)
    if r is None:
        return None
    return ew("mul", a, const_like(r, c))


def commute(node: Node, keys: Keys) -> Node | None:
    # a op b -> b op a for op commutative, when key(b) < key(a)
    if node.op not in COMMUTATIVE or len(node.inputs) != 2:
        return None
    a, b = node.inputs
    if a is b or keys.key(a) <= keys.key(b):
        return None
    return apply(node.op, (b, a), **dict(node.attrs))


def transpose_chain(node: Node, keys: Keys) -> Node | None:
    # transpose(transpose(x, p), q) -> transpose(x, [p[k] for k in q])
    if node.op != "transpose" or node.inputs[0].op != "transpose":
        return None
    inner = node.inputs[0]
    p, q = inner.attrs["axes"], node.attrs["axes"]
    return shp.transpose(inner.inputs[0], tuple(p[k] for k in q))


def reshape_chain(node: Node, keys: Keys) -> Node | None:
    # reshape(reshape(x, s), t) -> reshape(x, t); reshape(x, shape of x) -> x
    if node.op != "reshape":
        return None
    x = node.inputs[0]
    if x.op == "reshape":
        return shp.reshape(x.inputs[0], node.shape)
    return x if x.shape == node.shape else None


def broadcast_chain(node: Node, keys: Keys) -> Node | None:
    # broadcast_to(broadcast_to(x, s), t) -> broadcast_to(x, t)
    if node.op != "broadcast_to":
        return None
    x = node.inputs[0]
    if x.op == "broadcast_to":
        return shp.broadcast_to(x.inputs[0], node.shape)
    return x if x.shape == node.shape else None


def splat_reshape(node: Node, keys: Keys) -> Node | None:
    # reshape(broadcast_to(s, t), u) -> broadcast_to(s, u) for s of one element
    if node.op != "reshape" or node.inputs[0].op != "broadcast_to":
        return None
    s = node.inputs[0].inputs[0]
    if any(d != 1 for d in s.shape):
        return None
    if s.rank > node.rank:
        s = shp.reshape(s, ())
    return shp.broadcast_to(s, node.shape)


def same_cast(node: Node, keys: Keys) -> Node | None:
    # cast(x: T, T) -> x
    if node.op == "cast" and node.inputs[0].dtype == node.dtype:
        return node.inputs[0]
    return None


def cast_of_exact_cast(node: Node, keys: Keys) -> Node | None:
    # cast(cast(x: T, U), V) -> cast(x, V) when every T value is exactly a U value
    if node.op != "cast" or node.inputs[0].op != "cast":
        return None
    inner = node.inputs[0]
    x = inner.inputs[0]
    if x.dtype == inner.dtype or (x.dtype, inner.dtype) in EXACT_CASTS:
        return cast(x, node.dtype)
    return None


RULES: list = [
    sub_to_add,
    div_by_power_of_two,
    commute,
    transpose_chain,
    reshape_chain,
    broadcast_chain,
    splat_reshape,
    same_cast,
    cast_of_exact_cast,
]


def _canonical(node: Node, keys: Keys, counts: dict) -> Node:
    """node with the rules applied until none fires (each replacement is re-examined)."""
    for _ in range(16):  # every rule shrinks or orders: a handful of steps at most
        for rule in RULES:
            if rule.__name__ in DISABLED:
                continue
            try:
                new = rule(node, keys)
            except (ValueError, TypeError):  # a rebuild the shape rules reject: keep the node
                new = None
            if new is not None and new is not node:
                if new.shape != node.shape or new.dtype != node.dtype:
                    continue
                counts[rule.__name__] = counts.get(rule.__name__, 0) + 1
                node = new
                break
        else:
            return node
    return node


def canonicalize(roots: Sequence[Node], log: Callable[[str], None]) -> list:
    note_start(roots, toposort(roots), first=True)
    keys = Keys()
    counts: dict = {}
    new = rewrite(roots, lambda node: _canonical(node, keys, counts))
    for name, count in counts.items():
        log(f"{name} x{count}")
    return new
