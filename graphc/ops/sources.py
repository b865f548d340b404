"""Leaves of the graph: inputs (fed at call time), parameters (state), constants."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy

from graphc import init as initializers
from graphc.node import ConstValue, Node, ParamState, as_dtype
from graphc.ops.registry import apply, op, promote
from graphc.shapes import ShapeError, as_shape, is_concrete, shape_str, user_location

_uids = itertools.count(1)


def _infer_input(inputs: tuple, attrs: dict) -> tuple:
    raise TypeError("inputs and params are made by gc.input and gc.param only")


@op("input", _infer_input, kind="source", doc="a placeholder fed at call time")
def _input_impl(ctx: Any) -> np.ndarray:
    raise RuntimeError(f"input {ctx.attrs['name']!r} was not fed")


@op("param", _infer_input, kind="source", doc="a trainable parameter; its value is state")
def _param_impl(ctx: Any) -> np.ndarray:
    return ctx.attrs["state"].value


def _infer_constant(inputs: tuple, attrs: dict) -> tuple:
    array = attrs["value"].array
    return as_shape(array.shape), array.dtype.name


@op("constant", _infer_constant, kind="source", doc="a constant array")
def _constant_impl(ctx: Any) -> np.ndarray:
    return ctx.attrs["value"].array


def input(name: str, shape: Sequence[Any], dtype: Any = "float32") -> Node:
    """A placeholder for an array given when the compiled function is called."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"gc.input: name must be a non-empty string, got {name!r}")
    shape = as_shape(shape)
    dtype = as_dtype(dtype)
    attrs = {"name": name, "uid": next(_uids)}
    return Node.make("input", (), attrs, shape, dtype, where=user_location())


def param(
    name: str,
    shape: Sequence[Any] | None = None,
    init: str | Callable = "glorot_uniform",
    seed: int | None = None,
    value: Any = None,
    dtype: Any = "float32",
) -> Node:
    """A parameter: a named array that compiled functions read and `updates` replace.

    Either `value=` (an array, whose shape is taken) or `shape` with `init=` (a
    name from graphc.init or a function (shape, rng) -> array) and `seed=`.
    """
    dtype = as_dtype(dtype)
    if value is not None:
        array = np.array(value, dtype=dtype)
        if shape is not None and tuple(as_shape(shape)) != as_shape(array.shape):
            raise ShapeError(
                f"param {name!r}: shape {shape_str(as_shape(shape))} does not match "
                f"value of shape {array.shape}, built at {user_location()}"
            )
    else:
        if shape is None:
            raise ValueError(f"gc.param {name!r}: give a shape or a value=")
        shape = as_shape(shape)
        if not is_concrete(shape):
            raise ShapeError(
                f"param {name!r}: shape {shape_str(shape)} must be concrete (no gc.dim), "
                f"built at {user_location()}"
            )
        concrete = tuple(int(d) for d in shape)
        rng = np.random.default_rng(seed)
        array = np.asarray(initializers.get(init)(concrete, rng), dtype=dtype)
    state = ParamState(name, array)
    attrs = {"name": name, "uid": next(_uids), "state": state}
    return Node.make("param", (), attrs, as_shape(array.shape), dtype, where=user_location())


def constant(value: Any, dtype: Any = None) -> Node:
    """A constant array; python floats default to float32 and ints to int32 (as JAX)."""
    if dtype is None:
        if isinstance(value, bool):
            dtype = "bool"
        elif isinstance(value, int):
            dtype = "int32"
        elif isinstance(value, float):
            dtype = "float32"
        else:
            dtype = np.asarray(value).dtype
    dtype = as_dtype(dtype)
    return apply("constant", (), value=ConstValue(np.asarray(value, dtype=dtype)))


def is_scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float, np.generic))


def weak_dtype(value: Any, strong: str) -> str:
    """The dtype a python scalar takes next to tensors of dtype `strong` (weak typing)."""
    if isinstance(value, (bool, np.bool_)):
        return strong
    if isinstance(value, (float, np.floating)) and strong not in ("float32", "float64"):
        return "float32"
    if isinstance(value, (int, np.integer)) and strong == "bool":
        return "int32"
    return strong


def coerce(values: Sequence[Any], op_name: str) -> list:
    """Operands as Nodes: tensors kept, arrays made constants, scalars weakly typed."""
    nodes: list = []
    for v in values:
        if isinstance(v, Node):
            nodes.append(v)
        elif isinstance(v, np.ndarray):
            nodes.append(constant(v))
        elif not is_scalar(v):
            raise TypeError(f"{op_name}: cannot use a {type(v).__name__} as a tensor operand")
        else:
            nodes.append(None)
    strong = [n.dtype for n in nodes if n is not None]
    base = promote(*strong) if strong else None
    for k, v in enumerate(values):
        if nodes[k] is None:
            dtype = weak_dtype(v, base) if base else None
            nodes[k] = constant(v, dtype)
    return nodes


# a size as a value: the count a mean divides by when it is symbolic (N, N*H*W) -------------


def _infer_dim_value(inputs: tuple, attrs: dict) -> tuple:
    return (), attrs["dtype"]


@op("dim_value", _infer_dim_value, kind="source", doc="a symbolic size's value at run time")
def _dim_value_impl(ctx: Any) -> np.ndarray:
    if ctx.bindings is None:
        raise ValueError(f"the size {ctx.attrs['expr']} needs the call's symbol bindings")
    return np.asarray(ctx.bindings.evaluate(ctx.attrs["expr"]), dtype=ctx.dtype)


def size_value(expr: Any, dtype: str) -> Node:
    """The scalar value of a size expression: a constant when it is a number."""
    expr = sympy.sympify(expr)
    if expr.is_number:
        return constant(float(expr), dtype)
    return apply("dim_value", (), expr=expr, dtype=as_dtype(dtype))
