"""Scalar sympy expressions back into graph nodes (used for derivatives of elementwise ops).

`from_sympy(expr, env, dtype)` builds the elementwise graph that computes `expr`,
where `env` maps each free symbol to a Node. Known functions become the named
ops of the table (so d/dx exp(x) is the very node exp(x): interning shares it);
anything else becomes one user-style `elementwise` node carrying the expression.

Conventions at kinks (documented in README): Heaviside(a) -> 1/2 at a == 0 (the
split of maximum/minimum at ties, as PyTorch and JAX), Heaviside(a, h0) -> h0
(relu uses h0 = 0: relu'(0) = 0), sign(0) = 0 (abs'(0) = 0).
"""

from __future__ import annotations

import sympy

from graphc.node import Node
from graphc.ops.elementwise import SYMPY_FUNCTIONS, ew, where
from graphc.ops.sources import constant

_RELATIONS = {
    sympy.StrictLessThan: "lt",
    sympy.LessThan: "le",
    sympy.StrictGreaterThan: "gt",
    sympy.GreaterThan: "ge",
    sympy.Equality: "eq",
    sympy.Unequality: "ne",
}


class _Builder:
    def __init__(self, env: dict, dtype: str) -> None:
        self.env = env
        self.dtype = dtype
        self.memo: dict = {}

    def const(self, value: object) -> Node:
        return constant(float(value), self.dtype)  # type: ignore[arg-type]

    def build(self, expr: sympy.Basic) -> Node:
        found = self.memo.get(expr)
        if found is None:
            found = self._build(expr)
            self.memo[expr] = found
        return found

    def _build(self, e: sympy.Basic) -> Node:  # noqa: C901 - one case per sympy head
        if e in self.env:
            return self.env[e]
        if e.is_Number or e in (sympy.pi, sympy.E):
            return self.const(e)
        if isinstance(e, sympy.Add):
            return self._add(e)
        if isinstance(e, sympy.Mul):
            return self._mul(e)
        if isinstance(e, sympy.Pow):
            return self._pow(e.base, e.exp)
        if isinstance(e, sympy.exp):
            return ew("exp", self.build(e.args[0]))
        if isinstance(e, sympy.log) and len(e.args) == 1:
            return ew("log", self.build(e.args[0]))
        if isinstance(e, sympy.tanh):
            return ew("tanh", self.build(e.args[0]))
        if isinstance(e, sympy.Abs):
            return ew("abs", self.build(e.args[0]))
        for name, function in SYMPY_FUNCTIONS.items():
            if isinstance(e, function):
                return ew(name, self.build(e.args[0]))
        if isinstance(e, (sympy.Max, sympy.Min)):
            name = "maximum" if isinstance(e, sympy.Max) else "minimum"
            args = [self.build(a) for a in e.args]
            result = args[0]
            for a in args[1:]:
                result = ew(name, result, a)
            return result
        if isinstance(e, sympy.Heaviside):
            return self._heaviside(e)
        if isinstance(e, sympy.sign):
            a = self.build(e.args[0])
            one, zero = self.const(1), self.const(0)
            return where(ew("gt", a, zero), one, where(ew("lt", a, zero), self.const(-1), zero))
        if isinstance(e, sympy.Piecewise):
            return self._piecewise(e)
        if type(e) in _RELATIONS:
            return self._relation(e)
        return self._fallback(e)

    def _add(self, e: sympy.Add) -> Node:
        positive = [t for t in e.args if not t.could_extract_minus_sign()]
        negative = [-t for t in e.args if t.could_extract_minus_sign()]
        terms = [self.build(t) for t in positive]
        result = terms[0] if terms else None
        for t in terms[1:]:
            result = ew("add", result, t)
        for t in negative:
            node = self.build(t)
            result = ew("neg", node) if result is None else ew("sub", result, node)
        return result  # type: ignore[return-value]

    def _mul(self, e: sympy.Mul) -> Node:
        coefficient, factors = e.as_coeff_mul()
        numerator, denominator = [], []
        for f in factors:
            base, power = f.as_base_exp()
            if power.is_number and power < 0:
                denominator.append(base if power == -1 else sympy.Pow(base, -power))
            else:
                numerator.append(f)
        result = None
        for f in numerator:
            node = self.build(f)
            result = node if result is None else ew("mul", result, node)
        if denominator:
            den = self.build(sympy.Mul(*denominator))
            top = result if result is not None else self.const(1)
            result = ew("div", top, den)
        if result is None:
            return self.const(coefficient)
        if coefficient == -1:
            return ew("neg", result)
        if coefficient != 1:
            return ew("mul", self.const(coefficient), result)
        return result

    def _pow(self, base: sympy.Expr, power: sympy.Expr) -> Node:
        if power == sympy.Rational(1, 2):
            return ew("sqrt", self.build(base))
        if power.is_number and power < 0:
            return ew("div", self.const(1), self.build(sympy.Pow(base, -power)))
        if power == 2:
            b = self.build(base)
            return ew("mul", b, b)
        return ew("pow", self.build(base), self.build(power))

    def _heaviside(self, e: sympy.Heaviside) -> Node:
        a = self.build(e.args[0])
        zero, one = self.const(0), self.const(1)
        at_zero = e.args[1] if len(e.args) > 1 else sympy.Rational(1, 2)
        step = where(ew("gt", a, zero), one, zero)
        if at_zero == 0:
            return step
        return where(ew("eq", a, zero), self.const(at_zero), step)

    def _piecewise(self, e: sympy.Piecewise) -> Node:
        (value, condition), *rest = e.args
        if not rest or condition == sympy.true:
            return self.build(value)
        otherwise = self.build(sympy.Piecewise(*rest))  # (v, True) alone evaluates to v
        return where(self._condition(condition), self.build(value), otherwise)

    def _condition(self, c: sympy.Basic) -> Node:
        # Ne(b, 0) of a bool operand is the operand itself (where's condition)
        if isinstance(c, sympy.Unequality) and c.args[1] == 0 and c.args[0] in self.env:
            node = self.env[c.args[0]]
            if node.dtype == "bool":
                return node
        return self.build(c)

    def _relation(self, e: sympy.Basic) -> Node:
        return ew(_RELATIONS[type(e)], self.build(e.args[0]), self.build(e.args[1]))

    def _fallback(self, e: sympy.Expr) -> Node:
        from graphc.ops.registry import apply

        symbols = sorted(e.free_symbols, key=str)
        lam = sympy.Lambda(tuple(symbols), e)
        inputs = [self.env[s] for s in symbols]
        return apply("elementwise", inputs, expr=lam, name="derivative")


def from_sympy(expr: sympy.Basic, env: dict, dtype: str) -> Node:
    """The graph computing scalar `expr` elementwise, with symbols bound by `env`."""
    return _Builder(env, dtype).build(sympy.sympify(expr))
