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

from graphc.node import COMPLEX_DTYPES, FLOAT_DTYPES, INEXACT_DTYPES, Node
from graphc.ops.registry import (
    OpDef,
    accepts_complex,
    apply,
    complex_of,
    float_of,
    promote,
    real_of,
    register,
)
from graphc.ops.sources import coerce, constant
from graphc.shapes import broadcast_shapes, shape_error

x, y, z = sympy.symbols("x y z", real=True)


# Functions sympy lacks, as opaque sympy functions: their derivatives stay in terms of
# themselves (sigmoid' = s(1-s) reuses the forward node) and never overflow the way the
# textbook forms do (d/dx 1/(1+exp(-x)) = exp(-x)/(1+exp(-x))**2 is inf/inf for x << 0).
# `definition` is the textbook form, which the tests compare the numpy forms against.


class sigmoid(sympy.Function):  # noqa: N801 - printed (and lambdified) by this name
    definition = sympy.Lambda(x, 1 / (1 + sympy.exp(-x)))

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        s = sigmoid(self.args[0])
        return s * (1 - s)


class softplus(sympy.Function):  # noqa: N801
    definition = sympy.Lambda(x, sympy.log(1 + sympy.exp(x)))

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sigmoid(self.args[0])


class relu(sympy.Function):  # noqa: N801
    definition = sympy.Lambda(x, sympy.Max(x, 0))

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        # relu'(0) = 0, as PyTorch, JAX and TensorFlow
        return sympy.Heaviside(self.args[0], 0)


SYMPY_FUNCTIONS = {"sigmoid": sigmoid, "softplus": softplus, "relu": relu}


def textbook(expr: sympy.Basic) -> sympy.Basic:
    """expr with graphc's own sympy functions replaced by their textbook definitions."""
    for function in SYMPY_FUNCTIONS.values():
        expr = expr.replace(function, function.definition)
    return expr


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


def _relu_np(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0)  # python 0 is weakly typed: the dtype of a


def _softplus_np(a: np.ndarray) -> np.ndarray:
    return np.logaddexp(0, a)


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
        ScalarOp("sigmoid", sympy.Lambda((x,), sigmoid(x)), "float", _sigmoid_np),
        ScalarOp("relu", sympy.Lambda((x,), relu(x)), numpy=_relu_np),
        # log(1+exp(x)) overflows for x > 88 in float32; logaddexp(0, x) does not
        ScalarOp("softplus", sympy.Lambda((x,), softplus(x)), "float", _softplus_np),
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
_OWN = {"sigmoid": _sigmoid_np, "softplus": _softplus_np, "relu": _relu_np}


@functools.cache
def lambdified(expr: sympy.Lambda) -> Callable:
    """The numpy function of a scalar expression (cached per expression)."""
    return sympy.lambdify(expr.variables, expr.expr, modules=[_OWN, _MATH_ONLY, "numpy"])


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

    dtype = as_dtype(dtype)
    if a.dtype == dtype:
        return a
    return apply("cast", (a,), dtype=dtype)


def _infer_cast(inputs: tuple, attrs: dict) -> tuple:
    (a,) = inputs
    if a.dtype in COMPLEX_DTYPES and attrs["dtype"] not in COMPLEX_DTYPES:
        raise shape_error(
            "cast", f"{a.dtype} to {attrs['dtype']} would drop the imaginary part; use real()"
        )
    return a.shape, attrs["dtype"]


def _cast_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    return a.astype(ctx.dtype)


register(OpDef("cast", _infer_cast, _cast_impl, kind="elementwise", doc="convert dtype"))


# complex numbers: conj, real, imag (the intermediates of FFTs; see graphc/ops/fft.py) -------


def _infer_conj(inputs: tuple, attrs: dict) -> tuple:
    (a,) = inputs
    if a.dtype not in INEXACT_DTYPES:
        raise shape_error("conj", f"needs a float or complex operand, got {a.dtype}", a.shape)
    return a.shape, a.dtype


def _conj_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    return np.conj(a)


def _infer_real_imag(name: str) -> Callable:
    def infer(inputs: tuple, attrs: dict) -> tuple:
        (a,) = inputs
        if a.dtype not in INEXACT_DTYPES:
            raise shape_error(name, f"needs a float or complex operand, got {a.dtype}", a.shape)
        return a.shape, real_of(a.dtype)

    return infer


def _real_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    return np.real(a).astype(ctx.dtype, copy=False)


def _imag_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    return np.imag(a).astype(ctx.dtype, copy=False)


register(OpDef("conj", _infer_conj, _conj_impl, kind="elementwise", doc="complex conjugate"))
register(OpDef("real", _infer_real_imag("real"), _real_impl, kind="elementwise", doc="Re z"))
register(OpDef("imag", _infer_real_imag("imag"), _imag_impl, kind="elementwise", doc="Im z"))
accepts_complex("add", "sub", "mul", "div", "neg", "where", "cast", "conj", "real", "imag")


def conj(a: Any) -> Node:
    """The complex conjugate (a real tensor is its own conjugate)."""
    (node,) = coerce([a], "conj")
    return node if node.dtype in FLOAT_DTYPES else apply("conj", (node,))


def real(a: Any) -> Node:
    """The real part, a float tensor of the same precision."""
    (node,) = coerce([a], "real")
    return node if node.dtype in FLOAT_DTYPES else apply("real", (node,))


def imag(a: Any) -> Node:
    """The imaginary part, a float tensor of the same precision (zeros for a real tensor)."""
    (node,) = coerce([a], "imag")
    return apply("imag", (node,))


def to_complex(a: Node) -> Node:
    """a as a complex tensor of its precision (ints and bools -> complex64)."""
    return a if a.dtype in COMPLEX_DTYPES else cast(a, complex_of(float_of(a.dtype)))


# derivative rules --------------------------------------------------------------------------
# d/dx_k of every scalar op is sympy.diff of its table entry, built back into graph nodes by
# from_sympy: the same expression gives the same nodes (exp' is the exp node itself). Scalar
# constant operands are substituted first, so d/dx x**2 is 2*x, not x**(2-1)*2.

from graphc.ops import adjoint  # noqa: E402
from graphc.ops.from_sympy import from_sympy  # noqa: E402
from graphc.ops.registry import defjvp, defvjp  # noqa: E402

_REAL_SCALARS = ("float32", "float64", "int32", "int64")


@functools.cache
def partial_exprs(expr: sympy.Lambda) -> tuple:
    """(d expr / d v for each variable v), simplified; DiracDelta (the derivative of a step,
    zero almost everywhere) is taken as 0, so relu'' = 0 and abs'' = 0."""
    partials = []
    for v in expr.variables:
        d = sympy.diff(expr.expr, v)
        d = d.replace(sympy.DiracDelta, lambda *args: sympy.Integer(0))
        partials.append(sympy.powsimp(d))
    return tuple(partials)


def _specialized(node: Node) -> tuple:
    """(Lambda, positions): node's expression with its scalar constant operands substituted,
    and the positions in node.inputs of the variables that remain."""
    lam = scalar_expr(node)
    variables, positions, values = [], [], {}
    for k, (v, operand) in enumerate(zip(lam.variables, node.inputs)):
        # (a complex constant stays an operand: sympy's symbols here are real)
        if operand.op == "constant" and operand.rank == 0 and operand.dtype in _REAL_SCALARS:
            values[v] = sympy.nsimplify(operand.attrs["value"].array.item(), rational=False)
        else:
            variables.append(v)
            positions.append(k)
    if not values:
        return lam, positions
    return sympy.Lambda(tuple(variables), lam.expr.subs(values)), positions


def _partials(node: Node) -> dict:
    """{position k: d node / d node.inputs[k] as a Node} for the operands that can vary."""
    lam, positions = _specialized(node)
    env = {v: node.inputs[k] for v, k in zip(lam.variables, positions)}
    result = {}
    for k, d in zip(positions, partial_exprs(lam)):
        if node.inputs[k].dtype in INEXACT_DTYPES and not d.is_zero:
            result[k] = from_sympy(d, env, node.dtype)
    return result


def _ew_vjp(node: Node, g: Node) -> list:
    # an operand used twice (x * x) gets one contribution per position; autodiff sums them
    partials = _partials(node)
    out = []
    for k, operand in enumerate(node.inputs):
        p = partials.get(k)
        out.append(None if p is None else adjoint.unbroadcast(adjoint.times(g, p), operand.shape))
    return out


def _ew_jvp(node: Node, tangents: tuple) -> Node | None:
    total = None
    for k, p in _partials(node).items():
        if tangents[k] is not None:
            total = adjoint.add_any(total, adjoint.times(tangents[k], p))
    return None if total is None else adjoint.with_shape(total, node.shape)


_DIFFERENTIABLE = [name for name, s in SCALAR_OPS.items() if s.result != "bool"]
defvjp(*_DIFFERENTIABLE, "elementwise")(_ew_vjp)
defjvp(*_DIFFERENTIABLE, "elementwise")(_ew_jvp)


@defvjp(*(name for name, s in SCALAR_OPS.items() if s.result == "bool"))
def _compare_vjp(node: Node, g: Node) -> list:
    return [None] * len(node.inputs)  # comparisons are piecewise constant


@defjvp(*(name for name, s in SCALAR_OPS.items() if s.result == "bool"))
def _compare_jvp(node: Node, tangents: tuple) -> None:
    return None


@defvjp("cast")
def _cast_vjp(node: Node, g: Node) -> list:
    # real -> complex: the cotangent of Re z is Re of z's cotangent (JAX's convention)
    (a,) = node.inputs
    if a.dtype not in INEXACT_DTYPES:
        return [None]
    if a.dtype in FLOAT_DTYPES and g.dtype in COMPLEX_DTYPES:
        g = real(g)
    return [cast(g, a.dtype)]


@defjvp("cast")
def _cast_jvp(node: Node, tangents: tuple) -> Node | None:
    return cast(tangents[0], node.dtype) if node.dtype in INEXACT_DTYPES else None


# With the cotangent of z = x + iy taken as dL/dx - i dL/dy (JAX's convention), holomorphic
# ops need no conjugates (the rules above hold as they are), and for the R-linear ones:
# conj: z -> conj(z) has cotangent conj(g); real: x = Re z gets g (as a complex value);
# imag: y = Im z gets -i g.


@defvjp("conj")
def _conj_vjp(node: Node, g: Node) -> list:
    return [conj(g)]


@defjvp("conj")
def _conj_jvp(node: Node, tangents: tuple) -> Node:
    return conj(tangents[0])


@defvjp("real")
def _real_vjp(node: Node, g: Node) -> list:
    return [cast(g, node.inputs[0].dtype)]


@defjvp("real")
def _real_jvp(node: Node, tangents: tuple) -> Node:
    return real(tangents[0])


@defvjp("imag")
def _imag_vjp(node: Node, g: Node) -> list:
    (a,) = node.inputs
    if a.dtype in FLOAT_DTYPES:
        return [None]  # Im of a real tensor is 0
    minus_i = constant(np.asarray(-1j, dtype=a.dtype))
    return [ew("mul", cast(g, a.dtype), minus_i)]


@defjvp("imag")
def _imag_jvp(node: Node, tangents: tuple) -> Node:
    return imag(tangents[0])
