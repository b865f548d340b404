"""The op table: every op is one OpDef with its shape rule and numpy reference beside it.

`infer(inputs, attrs) -> (shape, dtype)` checks the inputs when the graph is
built and raises ShapeError (naming the op, the shapes and the user's line).
`impl(ctx, *arrays) -> ndarray` is the numpy reference: the oracle every
backend is tested against. `vjp` and `jvp` rules live beside them (autodiff).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import sympy

from graphc.node import COMPLEX_DTYPES, INEXACT_DTYPES, Attrs, Node
from graphc.shapes import as_dim, shape_error, user_location


class ImplContext(NamedTuple):
    """What a numpy reference needs besides its input arrays."""

    attrs: Attrs
    shape: tuple  # the concrete output shape
    dtype: str
    node: Node
    bindings: Any = None  # graphc.shapes.Bindings: values of the symbolic sizes for this call


@dataclass(frozen=True)
class OpDef:
    name: str
    infer: Callable[[tuple, dict], tuple]
    impl: Callable[..., np.ndarray]
    kind: str = "other"  # "source", "elementwise", "reduce", "shape", "linalg", "nn"
    vjp: Callable | None = None
    jvp: Callable | None = None
    doc: str = ""


OPS: dict = {}


def register(opdef: OpDef) -> OpDef:
    if opdef.name in OPS:
        raise ValueError(f"op {opdef.name!r} is registered twice")
    OPS[opdef.name] = opdef
    return opdef


def op(
    name: str, infer: Callable, kind: str = "other", doc: str = ""
) -> Callable[[Callable], Callable]:
    """Decorator: register the decorated numpy reference as the impl of op `name`."""

    def wrap(impl: Callable) -> Callable:
        register(OpDef(name=name, infer=infer, impl=impl, kind=kind, doc=doc))
        return impl

    return wrap


class UnknownOpError(KeyError, ValueError):
    """An op name that is not in the table (a KeyError for lookups, a ValueError for users)."""

    def __str__(self) -> str:
        return str(self.args[0])


def get(name: str) -> OpDef:
    """The OpDef of `name`; a clear error listing the known ops otherwise."""
    try:
        return OPS[name]
    except KeyError:
        known = ", ".join(sorted(OPS))
        raise UnknownOpError(f"unknown op {name!r}; known ops: {known}") from None


def apply(op_name: str, inputs: Sequence[Node], /, **attrs: Any) -> Node:
    """Build (or find, by interning) the node `op_name(inputs, attrs)` after checking shapes.

    The first two parameters are positional-only so that attrs may be called anything
    (`name=` labels a user's elementwise op).
    """
    return make(op_name, inputs, attrs, user_location())


def make(op_name: str, inputs: Sequence[Node], attrs: dict, where: str) -> Node:
    """apply() with the source location given: a rewrite keeps the user's line."""
    opdef = get(op_name)
    if op_name not in COMPLEX_OK and any(i.dtype in COMPLEX_DTYPES for i in inputs):
        dtypes = ", ".join(i.dtype for i in inputs)
        raise shape_error(
            op_name,
            f"complex operands ({dtypes}) are not supported; ops that take complex values: "
            f"{', '.join(sorted(COMPLEX_OK))}",
            *(i.shape for i in inputs),
        )
    shape, dtype = opdef.infer(tuple(inputs), attrs)
    shape = tuple(d if isinstance(d, sympy.Basic) else as_dim(d) for d in shape)  # ints -> dims
    return Node.make(op_name, inputs, attrs, shape, dtype, where=where)


# dtype promotion ---------------------------------------------------------------------------

_RANK = {
    "bool": 0,
    "int32": 1,
    "int64": 2,
    "float32": 3,
    "float64": 4,
    "complex64": 5,
    "complex128": 6,
}

# ops whose operands may be complex (filled by `accepts_complex`); apply rejects the others
COMPLEX_OK: set = set()


def accepts_complex(*names: str) -> None:
    """Declare that ops `names` take complex operands (their rules handle them)."""
    COMPLEX_OK.update(names)


def promote(*dtypes: str) -> str:
    """Result dtype of mixing tensors: the widest, complex above floats above ints above bool
    (as JAX); float64 with complex64 is complex128."""
    best = max(dtypes, key=lambda d: _RANK[d])
    if best == "complex64" and "float64" in dtypes:
        return "complex128"
    return best


def float_of(dtype: str) -> str:
    """The float dtype an op that needs floats computes in (ints and bools -> float32;
    complex stays complex)."""
    return dtype if dtype in INEXACT_DTYPES else "float32"


def complex_of(dtype: str) -> str:
    """The complex dtype of the same precision (float64 -> complex128, others complex64)."""
    return "complex128" if dtype in ("float64", "complex128") else "complex64"


def real_of(dtype: str) -> str:
    """The real float dtype of the same precision (complex128 -> float64)."""
    return "float64" if dtype in ("float64", "complex128") else "float32"


# derivative rules ----------------------------------------------------------------------------
# vjp rule: (node, g) -> one cotangent Node or None (zero) per input of node.
# jvp rule: (node, tangents) -> the tangent Node of node's output, or None; tangents has one
# Node or None per input and at least one is not None.

VJP_RULES: dict = {}
JVP_RULES: dict = {}


def defvjp(*names: str) -> Callable[[Callable], Callable]:
    def wrap(rule: Callable) -> Callable:
        for name in names:
            VJP_RULES[name] = rule
        return rule

    return wrap


def defjvp(*names: str) -> Callable[[Callable], Callable]:
    def wrap(rule: Callable) -> Callable:
        for name in names:
            JVP_RULES[name] = rule
        return rule

    return wrap
