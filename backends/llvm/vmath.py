"""Vectorizable elementwise math emitted as LLVM IR.

LLVM keeps a loop that calls ``llvm.exp.f32`` scalar (each element becomes a libm ``expf`` call),
so, like XLA, graphc emits its own implementations.  ``emit(module, name, ty)`` defines an
internal, ``alwaysinline`` function ``graphc.<name>.<f32|f64>`` whose body is straight-line code:
float arithmetic, ``fcmp`` + ``select``, bitcasts between float and integer, integer add/and/or/
shift, and the ``llvm.fmuladd`` / ``llvm.fabs`` / ``llvm.copysign`` intrinsics.  There are no
branches, loops or library calls, so after inlining a loop applying it auto-vectorizes at -O3.
No integer<->float conversion instructions are used either (the exponent travels through the
"add 1.5 * 2**p" magic-number trick), so f64 vectorizes on plain AVX2 as well as on AVX-512.

Methods
-------
* exp: ``k = rint(x / ln2)`` by one fma with the magic number (which leaves k in the low bits),
  ``r = x - k ln2`` by two fmas (Cody-Waite split ln2, ``|r| <= ln2/2``), a polynomial for
  ``expm1(r)`` (f32: degree 6 fitted on Chebyshev nodes; f64: Taylor degree 13), then
  ``(1 + p) * 2**(k -+ c) * 2**(+-c)``; the first power of two is built from k's bits, so the
  first product is exact and results in the subnormal range are rounded once (gradual
  underflow is kept, not flushed).
* expm1: same reduction, ``2 * (2**(k-1) * p + (2**(k-1) - 0.5))``: one rounding, exact near 0.
* log: subnormals are first scaled by ``2**p``; ``x = 2**k m`` with ``m`` in
  ``[sqrt(1/2), sqrt(2))``, ``f = m - 1`` (exact), ``s = f / (2 + f)`` and the fdlibm form
  ``log(1+f) = f - f*f/2 + s (f*f/2 + R(s*s))`` with ``R`` the atanh series (5 / 10 terms).
* log1p: ``u = 1 + x`` with its rounding error recovered exactly (Fast2Sum), ``log(u) + err/u``.
* tanh: ``u = expm1(-2|x|) / 2`` (one exp-like evaluation), ``tanh|x| = -u / (u + 1)``, sign
  copied from ``x`` (1 - 2 / (1 + exp(2x)) would lose the relative accuracy near 0).
* sigmoid: ``e = exp(-|x|)``, ``(x >= 0 ? 1 : e) / (1 + e)``.
* softplus: ``max(x, 0) + log1p(exp(-|x|))``, which cannot overflow.

Accuracy (measured by tests/backends/test_llvm_vmath.py against numpy in float64 on 10**5..10**6
points): max relative error is a few ulps: below 1e-6 for f32 and 1e-14 for f64 wherever the
result is a normal number.  Subnormal results (exp far left, sigmoid/softplus of very negative x)
are within about one subnormal ulp of the true value.

Special values: nan in -> nan out, for every function.  exp(-inf) = 0, exp(inf) = inf, and exp
overflows to inf / underflows to 0 where the true result rounds there.  expm1(-inf) = -1.
log(+-0) = -inf, log(x < 0) = nan, log(inf) = inf; log1p(-1) = -inf, log1p(x < -1) = nan.
tanh(+-inf) = +-1, sigmoid(-inf) = 0, sigmoid(inf) = 1, softplus(-inf) = 0, softplus(inf) = inf.
Saturation is exact: tanh is exactly +-1 and sigmoid exactly 1 once the true value rounds to it.
Signed zeros are kept by expm1, log1p and tanh (f(-0) = -0).
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

__all__ = ["FUNCTIONS", "emit", "emit_map_loop", "function_name"]

FUNCTIONS = ("exp", "expm1", "log", "log1p", "tanh", "sigmoid", "softplus")


@dataclass(frozen=True)
class _Spec:
    suffix: str
    bits: int  # width of the float and of the integer it is bitcast to
    mbits: int  # explicit mantissa bits
    bias: int  # exponent bias
    ln2_hi: float  # ln2 with trailing zero bits, so k * ln2_hi is exact
    ln2_lo: float  # ln2 - ln2_hi
    exp_lo: float  # exp(x) rounds to 0 below this
    exp_hi: float  # exp(x) overflows above this
    expm1_lo: float  # expm1(x) rounds to -1 below this
    exp_degree: int  # Taylor degree of expm1(r), |r| <= ln2/2
    log_terms: int  # atanh-series terms in R(z)

    @property
    def sqrt_half_bits(self) -> int:
        fmt = "<f" if self.bits == 32 else "<d"
        ifmt = "<I" if self.bits == 32 else "<Q"
        return struct.unpack(ifmt, struct.pack(fmt, math.sqrt(0.5)))[0]


_F32 = _Spec("f32", 32, 23, 127, 0.693359375, math.log(2) - 0.693359375, -104.0, 89.0, -30.0, 7, 5)
_F64 = _Spec(
    "f64", 64, 52, 1023, 6.93147180369123816490e-01, 1.90821492927058770002e-10,
    -746.0, 710.0, -60.0, 13, 10,
)  # fmt: skip


def _spec(ty: ir.Type) -> _Spec:
    if isinstance(ty, ir.FloatType):
        return _F32
    if isinstance(ty, ir.DoubleType):
        return _F64
    raise TypeError(f"vmath supports float and double, not {ty}")


def function_name(name: str, ty: ir.Type) -> str:
    """The symbol ``emit`` defines for ``name`` and ``ty``, e.g. ``graphc.exp.f32``."""
    return f"graphc.{name}.{_spec(ty).suffix}"


class _Emitter:
    """Straight-line IR building with constants of the float type and its same-width integer."""

    def __init__(self, builder: ir.IRBuilder, ty: ir.Type):
        self.b, self.ty, self.s = builder, ty, _spec(ty)
        self.ity = ir.IntType(self.s.bits)
        mod = builder.module
        self._fmuladd = mod.declare_intrinsic("llvm.fmuladd", [ty], ir.FunctionType(ty, [ty] * 3))
        self._fabs = mod.declare_intrinsic("llvm.fabs", [ty])
        self._copysign = mod.declare_intrinsic("llvm.copysign", [ty], ir.FunctionType(ty, [ty] * 2))

    # constants and thin wrappers -------------------------------------------------------------
    def c(self, v: float) -> ir.Constant:
        return ir.Constant(self.ty, v)

    def ci(self, v: int) -> ir.Constant:
        return ir.Constant(self.ity, v % (1 << self.s.bits))

    def _f(self, v):
        return self.c(v) if isinstance(v, (int, float)) else v

    def add(self, a, b, name):
        return self.b.fadd(self._f(a), self._f(b), name=name)

    def sub(self, a, b, name):
        return self.b.fsub(self._f(a), self._f(b), name=name)

    def mul(self, a, b, name):
        return self.b.fmul(self._f(a), self._f(b), name=name)

    def div(self, a, b, name):
        return self.b.fdiv(self._f(a), self._f(b), name=name)

    def fma(self, a, b, c, name):
        return self.b.call(self._fmuladd, [self._f(a), self._f(b), self._f(c)], name=name)

    def fabs(self, a, name):
        return self.b.call(self._fabs, [a], name=name)

    def copysign(self, a, sign, name):
        return self.b.call(self._copysign, [a, sign], name=name)

    def cmp(self, op, a, b, name):
        return self.b.fcmp_ordered(op, self._f(a), self._f(b), name=name)

    def ucmp(self, op, a, b, name):
        return self.b.fcmp_unordered(op, self._f(a), self._f(b), name=name)

    def sel(self, cond, a, b, name):
        return self.b.select(cond, self._f(a), self._f(b), name=name)

    def to_int(self, a, name):
        return self.b.bitcast(a, self.ity, name=name)

    def to_float(self, a, name):
        return self.b.bitcast(a, self.ty, name=name)

    def poly(self, x, coeffs, name):
        """Horner: coeffs[0] + x * (coeffs[1] + x * (...)), with fused multiply-adds."""
        acc = self.c(coeffs[-1])
        for i in range(len(coeffs) - 2, -1, -1):
            acc = self.fma(acc, x, coeffs[i], name=f"{name}.{i}")
        return acc

    def nan_passthrough(self, x, res, name):
        isnan = self.ucmp("uno", x, x, name=f"{name}.isnan")
        return self.sel(isnan, x, res, name=name)

    # building blocks ---------------------------------------------------------------------------
    def clamp(self, x, lo, hi, name):
        """x clamped to [lo, hi]; nan becomes hi (callers pass nan through at the end)."""
        above = self.ucmp(">", x, hi, name=f"{name}.above")
        x = self.sel(above, hi, x, name=f"{name}.hi")
        below = self.cmp("<", x, lo, name=f"{name}.below")
        return self.sel(below, lo, x, name=name)

    @property
    def magic(self) -> float:
        """1.5 * 2**p: adding it rounds to an integer that lands in the low mantissa bits."""
        return 1.5 * 2.0**self.s.mbits

    def reduce(self, x, name):
        """(k, bits, r) with x = k ln2 + r, |r| <= ln2/2 (x already clamped to a safe range);
        bits is the integer image of k + 1.5 * 2**p, whose low bits hold k (see pow2_of)."""
        t = self.fma(x, 1.0 / math.log(2), self.magic, f"{name}.kmagic")  # one rounding: k
        kf = self.sub(t, self.magic, f"{name}.k")
        # k ln2_hi is exact, so the first step is too; the second rounds once
        r = self.fma(kf, -self.s.ln2_hi, x, f"{name}.rhi")
        r = self.fma(kf, -self.s.ln2_lo, r, f"{name}.r")
        return kf, self.to_int(t, f"{name}.kbits"), r

    def pow2_of(self, kbits, offset, name):
        """2**(k + offset) from reduce's bits (k + offset a normal exponent): the magic number's
        bits shift out above the exponent field, leaving (k + offset + bias) << p."""
        biased = self.b.add(kbits, offset, name=f"{name}.biased")
        return self.to_float(self.b.shl(biased, self.ci(self.s.mbits), name=f"{name}.bits"), name)

    def expm1_poly(self, r, name):
        """expm1(r) = r + r^2 q(r), q fitted on |r| <= ln2/2 (see _expm1_coefficients)."""
        q = self.poly(r, _expm1_coefficients(self.s.exp_degree), f"{name}.q")
        r2 = self.mul(r, r, f"{name}.r2")
        return self.fma(r2, q, r, name)

    def exp(self, x, name="exp"):
        """exp without the nan select (nan comes out finite)."""
        xc = self.clamp(x, self.s.exp_lo, self.s.exp_hi, f"{name}.xc")
        kf, kbits, r = self.reduce(xc, name)
        y = self.add(self.expm1_poly(r, f"{name}.p"), 1.0, f"{name}.er")
        # 2**k as 2**(k -+ c) * 2**(+-c), c = (bias + 1) / 2 towards 0: both factors are normal,
        # (1 + p) * 2**(k -+ c) is exact and the second product rounds once, also into the
        # subnormals or to 0 / inf.
        c = (self.s.bias + 1) // 2
        negative = self.cmp("<", kf, 0.0, f"{name}.kneg")
        offset = self.b.select(negative, self.ci(self.s.bias + c), self.ci(self.s.bias - c),
                               name=f"{name}.off")  # fmt: skip
        y = self.mul(y, self.pow2_of(kbits, offset, f"{name}.s1"), f"{name}.y1")
        return self.mul(y, self.sel(negative, 2.0**-c, 2.0**c, f"{name}.s2"), name)

    def expm1_half(self, x, name="expm1"):
        """expm1(x) / 2 without nan / signed-zero selects (tanh's form; expm1 doubles it)."""
        xc = self.clamp(x, self.s.expm1_lo, self.s.exp_hi, f"{name}.xc")
        kf, kbits, r = self.reduce(xc, name)
        p = self.expm1_poly(r, f"{name}.p")
        # 2**k p + (2**k - 1) = 2 (h p + (h - 1/2)), h = 2**(k-1): h p and h - 1/2 are exact
        # (or negligible next to 1/2), so the sum is the only rounding.
        h = self.pow2_of(kbits, self.ci(self.s.bias - 1), f"{name}.h")
        hp = self.mul(h, p, f"{name}.hp")
        return self.add(hp, self.sub(h, 0.5, f"{name}.hm"), name)

    def expm1(self, x, name="expm1"):
        """expm1 without nan / signed-zero selects (*2 is exact or overflows)."""
        return self.mul(self.expm1_half(x, f"{name}.half"), 2.0, name)

    def log(self, x, name="log", subnormals=True):
        """log of a positive finite x (other inputs give garbage for the caller to select away)."""
        s = self.s
        kadj = None
        if subnormals:
            tiny = self.cmp("<", x, 2.0 ** (1 - s.bias), f"{name}.tiny")
            scaled = self.mul(x, 2.0**s.mbits, f"{name}.xscaled")
            x = self.sel(tiny, scaled, x, f"{name}.xn")
            kadj = self.sel(tiny, -float(s.mbits), 0.0, f"{name}.kadj")
        ix = self.to_int(x, f"{name}.ix")
        # Offset so the exponent field counts from sqrt(1/2): m = x / 2**k in [sqrt(1/2), sqrt(2)).
        t = self.b.add(ix, self.ci((s.bias << s.mbits) - s.sqrt_half_bits), name=f"{name}.t")
        kb = self.b.lshr(t, self.ci(s.mbits), name=f"{name}.kb")  # k + bias, in [0, 2 bias + 1]
        mant = self.b.and_(t, self.ci((1 << s.mbits) - 1), name=f"{name}.tm")
        mant = self.b.add(mant, self.ci(s.sqrt_half_bits), name=f"{name}.im")
        m = self.to_float(mant, f"{name}.m")
        # k as a float without sitofp: the bits of 2**p | kb are the float 2**p + kb.
        two_p = self.b.or_(kb, self.ci((s.bias + s.mbits) << s.mbits), name=f"{name}.kbits")
        kf = self.sub(self.to_float(two_p, f"{name}.kbf"), 2.0**s.mbits + s.bias, f"{name}.k0")
        if kadj is not None:
            kf = self.add(kf, kadj, f"{name}.k")
        f = self.sub(m, 1.0, f"{name}.f")
        sv = self.div(f, self.add(f, 2.0, f"{name}.f2"), f"{name}.s")
        z = self.mul(sv, sv, f"{name}.z")
        coeffs = [2.0 / (2 * n + 1) for n in range(1, s.log_terms + 1)]
        rz = self.mul(z, self.poly(z, coeffs, f"{name}.rp"), f"{name}.R")
        hfsq = self.mul(self.mul(f, f, f"{name}.ff"), 0.5, f"{name}.hfsq")
        # log(x) = k ln2_hi - ((hfsq - (s (hfsq + R) + k ln2_lo)) - f)   (fdlibm)
        corr = self.fma(sv, self.add(hfsq, rz, f"{name}.hR"), self.mul(kf, s.ln2_lo, f"{name}.klo"),
                        f"{name}.corr")  # fmt: skip
        lo = self.sub(self.sub(hfsq, corr, f"{name}.d1"), f, f"{name}.d2")
        return self.sub(self.mul(kf, s.ln2_hi, f"{name}.khi"), lo, name)

    def log1p(self, x, name="log1p", small=False):
        """log1p for x > -1 finite; ``small`` promises |x| <= 1."""
        u = self.add(x, 1.0, f"{name}.u")
        # err = (1 + x) - u exactly (Fast2Sum with the larger operand first).
        err = self.sub(x, self.sub(u, 1.0, f"{name}.um1"), f"{name}.err1")
        if not small:
            err_big = self.sub(1.0, self.sub(u, x, f"{name}.umx"), f"{name}.err2")
            ax = self.fabs(x, f"{name}.ax")
            err = self.sel(self.cmp("<=", ax, 1.0, f"{name}.le1"), err, err_big, f"{name}.err")
        lu = self.log(u, f"{name}.lu", subnormals=False)
        return self.add(lu, self.div(err, u, f"{name}.c"), name)


def _expm1_coefficients(degree: int) -> list:
    """q(r) with expm1(r) ~ r + r^2 q(r) on |r| <= ln2/2: Taylor (1/2!, 1/3!, ...) for f64
    (degree 13); for f32 (degree 7 in the table) one degree less, q fitted by least squares on
    Chebyshev nodes, whose error (~1e-8 of expm1 near ln2/2) is below half an f32 ulp."""
    taylor = [1.0 / math.factorial(n) for n in range(2, degree + 1)]
    if degree > 7:
        return taylor
    return _fitted_q(degree - 1)


@functools.cache
def _fitted_q(degree: int) -> list:
    half = math.log(2) / 2
    r = half * np.cos(np.pi * (np.arange(200) + 0.5) / 200)
    q = (np.expm1(r) - r) / (r * r)
    basis = np.vander(r, degree - 1, increasing=True)  # q has degree - 2 (r^0 .. r^(d-2))
    return [float(c) for c in np.linalg.lstsq(basis, q, rcond=None)[0]]


# function bodies: x -> result, each ending with the special-value selects ------------------------
def _body_exp(e: _Emitter, x):
    return e.nan_passthrough(x, e.exp(x), "res")


def _body_expm1(e: _Emitter, x):
    y = e.expm1(x)
    # expm1(x) rounds to x for tiny |x|; this also keeps -0 and avoids halving subnormals.
    tiny = e.cmp("<", e.fabs(x, "ax"), 2.0 ** -(e.s.mbits + 2), "istiny")
    y = e.sel(tiny, x, y, "y")
    return e.nan_passthrough(x, y, "res")


def _body_log(e: _Emitter, x):
    y = e.log(x)
    inf = float("inf")
    y = e.sel(e.cmp("==", x, 0.0, "iszero"), -inf, y, "y0")
    y = e.sel(e.cmp("<", x, 0.0, "isneg"), float("nan"), y, "y1")
    y = e.sel(e.cmp("==", x, inf, "isinf"), inf, y, "y2")
    return e.nan_passthrough(x, y, "res")


def _body_log1p(e: _Emitter, x):
    y = e.log1p(x)
    inf = float("inf")
    y = e.sel(e.cmp("==", x, 0.0, "iszero"), x, y, "y0")
    y = e.sel(e.cmp("==", x, -1.0, "ism1"), -inf, y, "y1")
    y = e.sel(e.cmp("<", x, -1.0, "islt"), float("nan"), y, "y2")
    y = e.sel(e.cmp("==", x, inf, "isinf"), inf, y, "y3")
    return e.nan_passthrough(x, y, "res")


def _body_tanh(e: _Emitter, x):
    a = e.fabs(x, "ax")
    # u = expm1(-2|x|) / 2 in [-1/2, 0]; tanh|x| = -2u / (2u + 2) = -u / (u + 1), and u is
    # exactly -1/2 once tanh rounds to 1
    u = e.expm1_half(e.mul(a, -2.0, "m2ax"), "u")
    t = e.div(e.b.fneg(u, name="negu"), e.add(u, 1.0, "up1"), "t")
    return e.nan_passthrough(x, e.copysign(t, x, "st"), "res")


def _body_sigmoid(e: _Emitter, x):
    ex = e.exp(e.b.fneg(e.fabs(x, "ax"), name="nax"), "ex")  # in [0, 1]
    pos = e.cmp(">=", x, 0.0, "pos")
    y = e.div(e.sel(pos, 1.0, ex, "num"), e.add(ex, 1.0, "den"), "y")
    return e.nan_passthrough(x, y, "res")


def _body_softplus(e: _Emitter, x):
    ex = e.exp(e.b.fneg(e.fabs(x, "ax"), name="nax"), "ex")  # in [0, 1]
    lp = e.log1p(ex, "lp", small=True)
    mx = e.sel(e.cmp(">", x, 0.0, "pos"), x, 0.0, "relu")
    return e.nan_passthrough(x, e.add(mx, lp, "y"), "res")


_BODIES = {
    "exp": _body_exp,
    "expm1": _body_expm1,
    "log": _body_log,
    "log1p": _body_log1p,
    "tanh": _body_tanh,
    "sigmoid": _body_sigmoid,
    "softplus": _body_softplus,
}


def emit(module: ir.Module, name: str, ty: ir.Type) -> ir.Function:
    """Define (once per module) ``T graphc.<name>.<f32|f64>(T x)`` and return it.

    The function is internal and ``alwaysinline``; its body has no branches, loops or calls
    other than vectorizable intrinsics, so loops that call it vectorize after inlining.
    """
    if name not in _BODIES:
        raise ValueError(f"unknown vmath function {name!r}; expected one of {FUNCTIONS}")
    fname = function_name(name, ty)
    existing = module.globals.get(fname)
    if existing is not None:
        return existing
    fn = ir.Function(module, ir.FunctionType(ty, [ty]), name=fname)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    fn.attributes.add("nounwind")
    (x,) = fn.args
    x.name = "x"
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    builder.ret(_BODIES[name](_Emitter(builder, ty), x))
    return fn


def emit_map_loop(
    module: ir.Module, fn: ir.Function, ty: ir.Type, name: str | None = None, noalias: bool = False
) -> ir.Function:
    """Define ``void name(T* in, T* out, i64 n)`` doing ``out[i] = fn(in[i])`` for i < n.

    ``noalias=True`` marks the pointers ``noalias`` (in and out must not overlap at all);
    otherwise LLVM vectorizes behind a runtime overlap check.
    """
    ptr, i64 = ir.PointerType(), ir.IntType(64)
    loop_fn = ir.Function(
        module, ir.FunctionType(ir.VoidType(), [ptr, ptr, i64]), name=name or f"map.{fn.name}"
    )
    src, dst, n = loop_fn.args
    src.name, dst.name, n.name = "src", "dst", "n"
    if noalias:
        src.add_attribute("noalias")
        dst.add_attribute("noalias")
    entry = loop_fn.append_basic_block("entry")
    body = loop_fn.append_basic_block("body")
    done = loop_fn.append_basic_block("done")
    b = ir.IRBuilder(entry)
    zero = ir.Constant(i64, 0)
    b.cbranch(b.icmp_signed(">", n, zero, name="nonempty"), body, done)
    b.position_at_end(body)
    i = b.phi(i64, name="i")
    val = b.load(b.gep(src, [i], inbounds=True, name="src.i", source_etype=ty), name="v", typ=ty)
    res = b.call(fn, [val], name="fv")
    b.store(res, b.gep(dst, [i], inbounds=True, name="dst.i", source_etype=ty))
    nxt = b.add(i, ir.Constant(i64, 1), name="i.next")
    i.add_incoming(zero, entry)
    i.add_incoming(nxt, body)
    b.cbranch(b.icmp_signed("<", nxt, n, name="more"), body, done)
    b.position_at_end(done)
    b.ret_void()
    return loop_fn
