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

from graphc.node import Attrs, Node
from graphc.shapes import as_dim, user_location


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
    opdef = get(op_name)
    shape, dtype = opdef.infer(tuple(inputs), attrs)
    shape = tuple(d if isinstance(d, sympy.Basic) else as_dim(d) for d in shape)  # ints -> dims
    return Node.make(op_name, inputs, attrs, shape, dtype, where=user_location())


# dtype promotion ---------------------------------------------------------------------------

_RANK = {"bool": 0, "int32": 1, "int64": 2, "float32": 3, "float64": 4}


def promote(*dtypes: str) -> str:
    """Result dtype of mixing tensors: the widest, floats above ints above bool (as JAX)."""
    return max(dtypes, key=lambda d: _RANK[d])


def float_of(dtype: str) -> str:
    """The float dtype an op that needs floats computes in (ints and bools -> float32)."""
    return dtype if dtype in ("float32", "float64") else "float32"


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
