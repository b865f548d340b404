"""Elementwise ops: one table of scalar functions written as sympy expressions.

The table is the single source of truth: the numpy reference is the expression
lambdified (or, where the textbook formula overflows, a stable numpy form that
the tests check against the expression), and derivatives come from sympy.diff.
Operands broadcast as in numpy.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from graphc.node import Node
from graphc.ops.registry import OpDef, apply, float_of, promote, register
from graphc.ops.sources import coerce
from graphc.shapes import broadcast_shapes, shape_error

x, y, z = sympy.symbols("x y z", real=True)


@dataclass(frozen=True)
class ScalarOp:
    name: str
    expr: sympy.Lambda
    result: str = "same"  # "same": promoted inputs; "float": promoted to a float; "bool"
    numpy: Callable | None = None  # a stable numpy form of expr where lambdify overflows


def _where_np(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(c, a, b)


def _sigmoid_np(a: np.ndarray) -> np.ndarray:
    # 1/(1+exp(-a)) for a >= 0 and exp(a)/(1+exp(a)) for a < 0: exp never overflows and
    # the result is within a few ulps everywhere (exp(-logaddexp(0, -a)) loses |a| ulps)
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1, e) / (1 + e)


SCALAR_OPS: dict = {
    s.name: s
    for s in [
        ScalarOp("add", sympy.Lambda((x, y), x + y), numpy=np.add),
        ScalarOp("sub", sympy.Lambda((x, y), x - y), numpy=np.subtract),
        ScalarOp("mul", sympy.Lambda((x, y), x * y), numpy=np.multiply),
        ScalarOp("div", sympy.Lambda((x, y), x / y), "float", numpy=np.true_divide),
        ScalarOp("pow", sympy.Lambda((x, y), x**y), numpy=np.power),
        ScalarOp("neg", sympy.Lambda((x,), -x), numpy=np.negative),
        ScalarOp("exp", sympy.Lambda((x,), sympy.exp(x)), "float"),
        ScalarOp("log", sympy.Lambda((x,), sympy.log(x)), "float"),
        ScalarOp("tanh", sympy.Lambda((x,), sympy.tanh(x)), "float"),
        # 1/(1+exp(-x)); the numpy form avoids exp overflow for x << 0
        ScalarOp("sigmoid", sympy.Lambda((x,), 1 / (1 + sympy.exp(-x))), "float", _sigmoid_np),
        ScalarOp("relu", sympy.Lambda((x,), sympy.Max(x, 0)), numpy=lambda a: np.maximum(a, 0)),
        # log(1+exp(x)) overflows for x > 88 in float32; logaddexp(0, x) does not
        ScalarOp(
            "softplus",
            sympy.Lambda((x,), sympy.log(1 + sympy.exp(x))),
            "float",
            numpy=lambda a: np.logaddexp(a.dtype.type(0), a),
        ),
        ScalarOp("abs", sympy.Lambda((x,), sympy.Abs(x)), numpy=np.abs),
        ScalarOp("sqrt", sympy.Lambda((x,), sympy.sqrt(x)), "float"),
        ScalarOp("maximum", sympy.Lambda((x, y), sympy.Max(x, y)), numpy=np.maximum),
        ScalarOp("minimum", sympy.Lambda((x, y), sympy.Min(x, y)), numpy=np.minimum),
        ScalarOp(
            "where",
            sympy.Lambda((x, y, z), sympy.Piecewise((y, sympy.Ne(x, 0)), (z, True))),
            numpy=_where_np,
        ),
        ScalarOp("lt", sympy.Lambda((x, y), sympy.StrictLessThan(x, y)), "bool", numpy=np.less),
        ScalarOp("le", sympy.Lambda((x, y), sympy.LessThan(x, y)), "bool", numpy=np.less_equal),
        ScalarOp("gt", sympy.Lambda((x, y), sympy.StrictGreaterThan(x, y)), "bool", np.greater),
        ScalarOp("ge", sympy.Lambda((x, y), sympy.GreaterThan(x, y)), "bool", np.greater_equal),
        ScalarOp("eq", sympy.Lambda((x, y), sympy.Eq(x, y)), "bool", numpy=np.equal),
        ScalarOp("ne", sympy.Lambda((x, y), sympy.Ne(x, y)), "bool", numpy=np.not_equal),
    ]
}


def _vectorized(fn: Callable) -> Callable:
    """A math-module function over arrays; its domain errors become nan, overflows inf."""

    def safe(v: float) -> float:
        try:
            return fn(v)
        except ValueError:
            return math.nan
        except OverflowError:
            return math.inf

    return np.vectorize(safe, otypes=[np.float64])


# functions sympy's numpy printer writes by their math-module names (numpy has none): without
# these, lambdify calls math.erf on a whole array (a user's GELU, x/2 * (1 + erf(x/sqrt(2))))
_MATH_ONLY = {name: _vectorized(getattr(math, name)) for name in ("erf", "erfc", "gamma", "lgamma")}


@functools.cache
def lambdified(expr: sympy.Lambda) -> Callable:
    """The numpy function of a scalar expression (cached per expression)."""
    return sympy.lambdify(expr.variables, expr.expr, modules=[_MATH_ONLY, "numpy"])


def result_dtype(result: str, dtypes: tuple) -> str:
    if result == "bool":
        return "bool"
    dtype = promote(*dtypes)
    return float_of(dtype) if result == "float" else dtype


def scalar_expr(node: Node) -> sympy.Lambda:
    """The sympy Lambda a node of an elementwise op computes, named or user-defined."""
    if node.op == "elementwise":
        return node.attrs["expr"]
    return SCALAR_OPS[node.op].expr


def _make_infer(name: str, result: str, arity: int) -> Callable:
    def infer(inputs: tuple, attrs: dict) -> tuple:
        n = arity if arity >= 0 else len(attrs["expr"].variables)
        if len(inputs) != n:
            raise shape_error(name, f"takes {n} operands, got {len(inputs)}")
        shape = broadcast_shapes(name, *(i.shape for i in inputs))
        if name == "where":
            if inputs[0].dtype != "bool":
                raise shape_error(name, f"condition must be bool, got {inputs[0].dtype}")
            return shape, promote(inputs[1].dtype, inputs[2].dtype)
        return shape, result_dtype(result, tuple(i.dtype for i in inputs))

    return infer


def _make_impl(scalar: ScalarOp) -> Callable:
    fn = scalar.numpy or lambdified(scalar.expr)

    def impl(ctx: Any, *arrays: np.ndarray) -> np.ndarray:
        if scalar.result == "float":
            arrays = tuple(a.astype(ctx.dtype, copy=False) for a in arrays)
        with np.errstate(all="ignore"):
            out = fn(*arrays)
        return np.broadcast_to(np.asarray(out, dtype=ctx.dtype), ctx.shape)

    return impl


for _scalar in SCALAR_OPS.values():
    register(
        OpDef(
            name=_scalar.name,
            infer=_make_infer(_scalar.name, _scalar.result, len(_scalar.expr.variables)),
            impl=_make_impl(_scalar),
            kind="elementwise",
            doc=f"elementwise {_scalar.expr.expr}",
        )
    )


def _custom_impl(ctx: Any, *arrays: np.ndarray) -> np.ndarray:
    fn = lambdified(ctx.attrs["expr"])
    arrays = tuple(a.astype(ctx.dtype, copy=False) for a in arrays)
    with np.errstate(all="ignore"):
        out = fn(*arrays)
    return np.broadcast_to(np.asarray(out, dtype=ctx.dtype), ctx.shape)


register(
    OpDef(
        name="elementwise",
        infer=_make_infer("elementwise", "float", -1),
        impl=_custom_impl,
        kind="elementwise",
        doc="a user's scalar function of sympy symbols",
    )
)


def ew(name: str, *operands: Any) -> Node:
    """Apply the named scalar op to operands (tensors, arrays or python scalars)."""
    return apply(name, coerce(operands, name))


def where(cond: Any, a: Any, b: Any) -> Node:
    """Elementwise `a if cond else b` (cond is a bool tensor), broadcasting all three."""
    c = coerce([cond], "where")[0]
    a_node, b_node = coerce([a, b], "where")
    return apply("where", (c, a_node, b_node))


def elementwise(fn: Callable, name: str | None = None) -> Callable:
    """Turn a scalar function of sympy symbols into an elementwise op on tensors.

    `softsign = gc.elementwise(lambda v: v / (1 + sympy.Abs(v)))`; the result is
    computed in float and differentiated exactly through sympy.
    """
    arity = len(inspect.signature(fn).parameters)
    symbols = sympy.symbols(f"x0:{arity}", real=True)
    expr = sympy.sympify(fn(*symbols))
    if not isinstance(expr, sympy.Expr):
        raise TypeError(f"gc.elementwise: {fn!r} must return a sympy expression, got {expr!r}")
    extra = expr.free_symbols - set(symbols)
    if extra:
        raise ValueError(f"gc.elementwise: expression uses unknown symbols {extra}")
    lam = sympy.Lambda(symbols, expr)
    label = name or getattr(fn, "__name__", "elementwise")

    def apply_fn(*operands: Any) -> Node:
        if len(operands) != arity:
            raise TypeError(f"{label}: takes {arity} operands, got {len(operands)}")
        return apply("elementwise", coerce(operands, label), expr=lam, name=label)

    apply_fn.__name__ = label
    apply_fn.__doc__ = f"elementwise {expr}"
    return apply_fn


def cast(a: Node, dtype: str) -> Node:
    from graphc.node import as_dtype

    return apply("cast", (a,), dtype=as_dtype(dtype))


def _infer_cast(inputs: tuple, attrs: dict) -> tuple:
    return inputs[0].shape, attrs["dtype"]


def _cast_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    return a.astype(ctx.dtype)


register(OpDef("cast", _infer_cast, _cast_impl, kind="elementwise", doc="convert dtype"))
