"""Scalar code for one elementwise statement: the op's sympy expression as a CUDA C expression.

The elementwise table (graphc/ops/elementwise.py) is the single source of truth, as for the
LLVM backend (backends/llvm/scalar.py, which this mirrors head by head): each sympy head
becomes a C operator or a prelude function (prelude.cuh: gc_exp, gc_sigmoid, gc_max...,
overloaded for float and double). Float constants are printed exactly (repr of a double)
and cast to the computing type, as the LLVM backend rounds them.
"""

from __future__ import annotations

import sympy

from graphc.node import Node
from graphc.ops import elementwise as ew
from graphc.ops.registry import promote

CTYPES = {
    "float32": "float",
    "float64": "double",
    "int32": "int",
    "int64": "long long",
    "bool": "bool",
}
FLOATS = ("float", "double")
_COMPARE = {
    sympy.StrictLessThan: "<",
    sympy.LessThan: "<=",
    sympy.StrictGreaterThan: ">",
    sympy.GreaterThan: ">=",
    sympy.Equality: "==",
    sympy.Unequality: "!=",
}
_CALLS = {
    sympy.exp: "gc_exp",
    sympy.log: "gc_log",
    sympy.tanh: "gc_tanh",
    sympy.sin: "gc_sin",
    sympy.cos: "gc_cos",
    sympy.erf: "gc_erf",
    sympy.erfc: "gc_erfc",
    ew.sigmoid: "gc_sigmoid",
    ew.softplus: "gc_softplus",
}


def ctype(dtype: str) -> str:
    try:
        return CTYPES[dtype]
    except KeyError:
        raise NotImplementedError(f"cuda backend: dtype {dtype} is not supported yet") from None


def literal(value: float | int, ty: str) -> str:
    """A C constant of type `ty` with numpy's value (inf and nan through the prelude)."""
    if ty in FLOATS:
        v = float(value)
        if v != v:
            return f"gc_nan(({ty})0)"
        if v in (float("inf"), float("-inf")):
            return f"{'-' if v < 0 else ''}gc_inf(({ty})0)"
        return f"(({ty}){v!r})"
    if ty == "bool":
        return "true" if value else "false"
    return f"(({ty}){int(value)}LL)"


def convert(expr: str, source: str, target: str) -> str:
    """expr (of C type `source`) as `target`, as numpy's astype."""
    if source == target:
        return expr
    if target == "bool":
        return f"(({expr}) != 0)"
    return f"(({target})({expr}))"


class Emitter:
    """Prints one sympy expression at C type `ty`, its symbols bound to C expressions."""

    def __init__(self, ty: str, env: dict) -> None:
        self.ty = ty
        self.env = env
        self.float = ty in FLOATS

    def emit(self, e: sympy.Basic) -> str:  # noqa: C901 - one case per sympy head
        if e in self.env:
            return self.env[e]
        if e is sympy.true or e is sympy.false:
            return "true" if e is sympy.true else "false"
        if e.is_Number:
            if e in (sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
                return literal(float(e) if e is not sympy.zoo else float("nan"), self.ty)
            return literal(float(e) if self.float else int(e), self.ty)
        if isinstance(e, sympy.Add):
            return "(" + " + ".join(self.emit(a) for a in e.args) + ")"
        if isinstance(e, sympy.Mul):
            return self._mul(e)
        if isinstance(e, sympy.Pow):
            return self._pow(e.base, e.exp)
        if type(e) in _CALLS:
            return f"{_CALLS[type(e)]}({self.emit(e.args[0])})"
        if isinstance(e, ew.relu):  # x < 0 ? 0 : x keeps a nan
            x = self.emit(e.args[0])
            return f"({x} < {literal(0, self.ty)} ? {literal(0, self.ty)} : {x})"
        if isinstance(e, sympy.Abs):
            x = self.emit(e.args[0])
            return f"gc_fabs({x})" if self.float else f"({x} < 0 ? -{x} : {x})"
        if isinstance(e, (sympy.Max, sympy.Min)):
            name = "gc_max" if isinstance(e, sympy.Max) else "gc_min"
            out = self.emit(e.args[0])
            for a in e.args[1:]:
                out = f"{name}<{self.ty}>({out}, {self.emit(a)})"
            return out
        if isinstance(e, sympy.Piecewise):
            return self._piecewise(e)
        if type(e) in _COMPARE:
            left, right = self.emit(e.args[0]), self.emit(e.args[1])
            return f"({left} {_COMPARE[type(e)]} {right})"
        raise NotImplementedError(f"cuda backend: cannot emit {type(e).__name__} in {e}")

    def _mul(self, e: sympy.Mul) -> str:
        numer, denom = [], []
        for factor in e.args:
            base, power = factor.as_base_exp()
            if power.is_number and power < 0 and self.float:
                denom.append(sympy.Pow(base, -power))
            else:
                numer.append(factor)
        top = " * ".join(self.emit(f) for f in numer) if numer else literal(1, self.ty)
        if denom:
            return f"(({top}) / {self.emit(sympy.Mul(*denom))})"
        return f"({top})"

    def _pow(self, base: sympy.Expr, power: sympy.Expr) -> str:
        if power == sympy.Rational(1, 2):
            return f"gc_sqrt({self.emit(base)})"
        if power.is_Integer and 0 < int(power) <= 4:
            x = self.emit(base)
            return "(" + " * ".join([x] * int(power)) + ")"
        if power.is_number and power < 0 and self.float:
            return f"({literal(1, self.ty)} / {self._pow(base, -power)})"
        if not self.float:
            return f"gc_ipow<{self.ty}>({self.emit(base)}, {self.emit(power)})"
        return f"gc_pow({self.emit(base)}, {self.emit(power)})"

    def _piecewise(self, e: sympy.Piecewise) -> str:
        (value, condition), *rest = e.args
        if not rest or condition == sympy.true:
            return self.emit(value)
        otherwise = self.emit(sympy.Piecewise(*rest))
        return f"({self.emit(condition)} ? {self.emit(value)} : {otherwise})"


def compute_type(node: Node) -> str:
    """The C type a statement computes in: the node's, or its operands' for a comparison."""
    if node.op in ew.SCALAR_OPS and ew.SCALAR_OPS[node.op].result == "bool":
        return ctype(promote(*(i.dtype for i in node.inputs)))
    return ctype(node.dtype)


def lower(node: Node, args: list, size) -> str:  # noqa: ANN001
    """The C expression of elementwise statement `node` from its operands' C expressions
    `args`; size(expr) is the C expression of a (symbolic) size."""
    out = ctype(node.dtype)
    if node.op == "cast":
        return convert(args[0], ctype(node.inputs[0].dtype), out)
    if node.op in ("broadcast_to", "reshape"):
        return args[0]
    if node.op == "dim_value":
        return convert(size(node.attrs["expr"]), "long long", out)
    ty = compute_type(node)
    lam = ew.scalar_expr(node)
    env = {}
    for k, (symbol, value, operand) in enumerate(zip(lam.variables, args, node.inputs)):
        keep_bool = node.op == "where" and k == 0
        env[symbol] = value if keep_bool else convert(value, ctype(operand.dtype), ty)
    value = Emitter(ty, env).emit(lam.expr)
    result = "bool" if isinstance(lam.expr, tuple(_COMPARE)) else ty
    return convert(value, result, out)


__all__ = ["CTYPES", "Emitter", "compute_type", "convert", "ctype", "literal", "lower"]
