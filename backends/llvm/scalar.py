"""Scalar code for one elementwise statement: the op's sympy expression emitted as LLVM IR.

The elementwise table (graphc/ops/elementwise.py) is the single source of truth: a node's
expression is walked and each sympy head becomes one or two instructions. Transcendental
functions come from backends/llvm/vmath.py when it provides them (branch-free, so loops
vectorize), else from LLVM intrinsics or the C math library. Statements on complex values
(a {re, im} struct) are lowered by backends/llvm/complex_ops.py.
"""

from __future__ import annotations

import sympy
from llvmlite import ir

from backends.llvm import complex_ops
from backends.llvm.irutil import F64, I1, I8, convert, is_float, llvm_type
from graphc.node import Node
from graphc.ops import elementwise as ew
from graphc.ops.registry import promote

_FCMP = {
    sympy.StrictLessThan: "<",
    sympy.LessThan: "<=",
    sympy.StrictGreaterThan: ">",
    sympy.GreaterThan: ">=",
    sympy.Equality: "==",
}
_LIBM = {sympy.sin: "sin", sympy.cos: "cos", sympy.erf: "erf", sympy.erfc: "erfc"}


def intrinsic(module: ir.Module, name: str, ty: ir.Type, arity: int = 1) -> ir.Function:
    """The LLVM intrinsic `llvm.<name>.<f32|f64>` declared in `module`."""
    suffix = "f64" if isinstance(ty, ir.DoubleType) else "f32"
    full = f"llvm.{name}.{suffix}"
    found = module.globals.get(full)
    if found is None:
        found = ir.Function(module, ir.FunctionType(ty, [ty] * arity), name=full)
    return found


def libm(module: ir.Module, name: str, ty: ir.Type) -> ir.Function:
    symbol = name if isinstance(ty, ir.DoubleType) else f"{name}f"
    found = module.globals.get(symbol)
    if found is None:
        found = ir.Function(module, ir.FunctionType(ty, [ty]), name=symbol)
    return found


class Emitter:
    """Emits one sympy expression at type `ty`, its symbols bound to IR values in `env`."""

    def __init__(self, builder: ir.IRBuilder, ty: ir.Type, env: dict, math: object) -> None:
        self.b = builder
        self.ty = ty
        self.env = env
        self.math = math  # an object with .function(name, ty) -> ir.Function or None
        self.module = builder.module
        self.count = 0

    def name(self, what: str) -> str:
        self.count += 1
        return f"{what}{self.count}"

    def const(self, value: sympy.Expr) -> ir.Constant:
        if is_float(self.ty):
            return ir.Constant(self.ty, float(value))
        return ir.Constant(self.ty, int(value))

    def call(self, fname: str, *args: ir.Value) -> ir.Value:
        fn = self.math.function(fname, self.ty) if self.math is not None else None
        if fn is None:
            fn = intrinsic(self.module, fname, self.ty, len(args))
        return self.b.call(fn, list(args), name=self.name(fname))

    def emit(self, e: sympy.Basic) -> ir.Value:  # noqa: C901 - one case per sympy head
        b, f = self.b, is_float(self.ty)
        if e in self.env:
            return self.env[e]
        if e.is_Number:
            return self.const(e)
        if isinstance(e, sympy.Add):
            parts = [self.emit(a) for a in e.args]
            out = parts[0]
            for p in parts[1:]:
                out = (
                    b.fadd(out, p, name=self.name("add"))
                    if f
                    else b.add(out, p, name=self.name("add"))
                )
            return out
        if isinstance(e, sympy.Mul):
            return self._mul(e)
        if isinstance(e, sympy.Pow):
            return self._pow(e.base, e.exp)
        if isinstance(e, sympy.exp):
            return self.call("exp", self.emit(e.args[0]))
        if isinstance(e, sympy.log):
            return self.call("log", self.emit(e.args[0]))
        if isinstance(e, sympy.tanh):
            return self.call("tanh", self.emit(e.args[0]))
        if isinstance(e, ew.sigmoid):
            return self.call("sigmoid", self.emit(e.args[0]))
        if isinstance(e, ew.softplus):
            return self.call("softplus", self.emit(e.args[0]))
        if isinstance(e, ew.relu):
            x = self.emit(e.args[0])
            zero = self.const(0)
            if f:  # x < 0 ? 0 : x keeps a nan (numpy's maximum(nan, 0) is nan)
                negative = b.fcmp_ordered("<", x, zero, name=self.name("neg"))
            else:
                negative = b.icmp_signed("<", x, zero, name=self.name("neg"))
            return b.select(negative, zero, x, name=self.name("relu"))
        if isinstance(e, sympy.Abs):
            x = self.emit(e.args[0])
            if f:
                return self.call("fabs", x)
            negative = b.icmp_signed("<", x, self.const(0), name=self.name("neg"))
            return b.select(negative, b.neg(x, name=self.name("minus")), x, name=self.name("abs"))
        if isinstance(e, (sympy.Max, sympy.Min)):
            return self._extremum(e)
        if isinstance(e, sympy.Piecewise):
            return self._piecewise(e)
        if type(e) in _FCMP or isinstance(e, sympy.Unequality):
            return self._compare(e)
        if type(e) in _LIBM and f:
            fn = libm(self.module, _LIBM[type(e)], self.ty)
            return b.call(fn, [self.emit(e.args[0])], name=self.name(_LIBM[type(e)]))
        raise NotImplementedError(f"llvm backend: cannot emit {type(e).__name__} in {e}")

    def _mul(self, e: sympy.Mul) -> ir.Value:
        b, f = self.b, is_float(self.ty)
        numer, denom = [], []
        for factor in e.args:
            base, power = factor.as_base_exp()
            if power.is_number and power < 0 and f:
                denom.append(sympy.Pow(base, -power))
            else:
                numer.append(factor)
        out = None
        for factor in numer:
            v = self.emit(factor)
            out = (
                v
                if out is None
                else (
                    b.fmul(out, v, name=self.name("mul"))
                    if f
                    else b.mul(out, v, name=self.name("mul"))
                )
            )
        if denom:
            d = self.emit(sympy.Mul(*denom))
            out = b.fdiv(out if out is not None else self.const(1), d, name=self.name("div"))
        return out

    def _pow(self, base: sympy.Expr, power: sympy.Expr) -> ir.Value:
        b = self.b
        if power == sympy.Rational(1, 2):
            return self.call("sqrt", self.emit(base))
        if power.is_Integer and 0 < int(power) <= 4:
            x = self.emit(base)
            out = x
            for _ in range(int(power) - 1):
                out = (
                    b.fmul(out, x, name=self.name("sq"))
                    if is_float(self.ty)
                    else b.mul(out, x, name=self.name("sq"))
                )
            return out
        if power.is_number and power < 0 and is_float(self.ty):
            return b.fdiv(self.const(1), self._pow(base, -power), name=self.name("recip"))
        if not is_float(self.ty):
            raise NotImplementedError("llvm backend: integer powers other than 1..4")
        return self.call("pow", self.emit(base), self.emit(power))

    def _extremum(self, e: sympy.Basic) -> ir.Value:
        values = [self.emit(a) for a in e.args]
        is_max = isinstance(e, sympy.Max)
        out = values[0]
        for v in values[1:]:
            if is_float(self.ty):  # IEEE maximum/minimum propagate nan, as numpy does
                out = self.call("maximum" if is_max else "minimum", out, v)
            else:
                op = ">" if is_max else "<"
                pick = self.b.icmp_signed(op, out, v, name=self.name("cmp"))
                out = self.b.select(pick, out, v, name=self.name("ext"))
        return out

    def _piecewise(self, e: sympy.Piecewise) -> ir.Value:
        (value, condition), *rest = e.args
        if not rest or condition == sympy.true:
            return self.emit(value)
        otherwise = self.emit(sympy.Piecewise(*rest))  # (v, True) alone evaluates to v
        chosen = self.emit(value)
        return self.b.select(self._truth(condition), chosen, otherwise, name=self.name("where"))

    def _truth(self, c: sympy.Basic) -> ir.Value:
        """An i1 for a condition; a bool operand (i8) compared with 0 is the operand."""
        if isinstance(c, sympy.Unequality) and c.args[1] == 0 and c.args[0] in self.env:
            v = self.env[c.args[0]]
            if v.type == I8:
                return self.b.icmp_unsigned("!=", v, ir.Constant(I8, 0), name=self.name("cond"))
        return self._compare(c)

    def _compare(self, e: sympy.Basic) -> ir.Value:
        left, right = self.emit(e.args[0]), self.emit(e.args[1])
        if isinstance(e, sympy.Unequality):
            if is_float(self.ty):  # nan != x is true
                return self.b.fcmp_unordered("!=", left, right, name=self.name("ne"))
            return self.b.icmp_signed("!=", left, right, name=self.name("ne"))
        op = _FCMP[type(e)]
        if is_float(self.ty):
            return self.b.fcmp_ordered(op, left, right, name=self.name("cmp"))
        return self.b.icmp_signed(op, left, right, name=self.name("cmp"))


def compute_type(node: Node) -> ir.Type:
    """The type a statement computes in: the node's, or its operands' for a comparison."""
    if node.op in ew.SCALAR_OPS and ew.SCALAR_OPS[node.op].result == "bool":
        return llvm_type(promote(*(i.dtype for i in node.inputs)))
    return llvm_type(node.dtype)


def lower(builder: ir.IRBuilder, node: Node, args: list, math: object, size: object) -> ir.Value:
    """The IR value of elementwise statement `node` from its operands' values `args`."""
    if node.op in ("real", "imag", "conj") or complex_ops.involved(node):
        return complex_ops.lower(builder, node, args)
    out_ty = llvm_type(node.dtype)
    if node.op == "cast":
        return convert(builder, args[0], out_ty, f"{node.op}")
    if node.op in ("broadcast_to", "reshape"):
        return args[0]
    if node.op == "dim_value":
        return convert(builder, size(node.attrs["expr"]), out_ty, "dim")
    ty = compute_type(node)
    lam = ew.scalar_expr(node)
    env = {}
    for k, (symbol, value) in enumerate(zip(lam.variables, args)):
        keep_bool = node.op == "where" and k == 0
        env[symbol] = value if keep_bool else convert(builder, value, ty, f"arg{k}")
    value = Emitter(builder, ty, env, math).emit(lam.expr)
    if value.type == I1:
        return builder.zext(value, I8, name="bool")
    return convert(builder, value, out_ty, "result")


__all__ = ["F64", "compute_type", "lower"]
