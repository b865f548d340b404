"""Generated complex FFTs of static lengths: Stockham autosort, mixed radix, over a batch of
rows at once.

`transform(module, n, ty, sign)` emits (once per module) a function

    void fft(T* re0, T* im0, T* re1, T* im1, i64 rows)

that transforms `rows` signals of length n stored planar and row-interleaved: element i of
row r is (re0[i*rows + r], im0[i*rows + r]). It computes X_k = sum_j x_j e^{sign 2 pi i jk/n}
(no 1/n) and leaves the result in (re0, im0) or (re1, im1) as its Plan says; both pairs are
work arrays of plan.work * rows elements. Keeping the rows innermost makes every butterfly
loop unit-stride over the rows, so LLVM vectorises it however short the transform.

  Stockham  n = p1 p2 ... with radices 4, 2, 3, 5, 7, 11, 13: one pass per radix, from
            array to array, the output in natural order (no bit reversal). Pass with radix p
            on sub-length L (s = n/L rows of sub-transforms done): for j < L/p and q < s*rows,
            y[q + S(pj + t)] = w_L^{jt} sum_r x[q + S(j + r L/p)] w_p^{rt}, S = s*rows.
            Odd radices use the symmetric pairs a_r +- a_{p-r} (half the multiplies).
  Bluestein a length with a prime factor above 13: X_k = c_k sum_j (x_j c_j) conj(c_{k-j}),
            c_j = e^{sign pi i j^2/n}, a circular convolution of length M = 2^k >= 2n - 1 done
            by two Stockham FFTs of length M; the kernel's spectrum (scaled by 1/M) is a
            constant. Its work arrays have M * rows elements.

Twiddles and chirps are computed in float64 by numpy at compile time and stored as constant
globals of the element type. The passes (one function per radix, sign and type, with the
pass's sizes and twiddle tables as arguments) are compiled once per process as a library, as
the generated GEMM; a length's transform is a driver of a few calls in the model's module.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir

from backends.llvm.irutil import I64, for_range

VOID = ir.VoidType()
RADICES = (4, 2, 3, 5, 7, 11, 13)


@dataclass(frozen=True)
class Plan:
    n: int
    work: int  # length of each work array, per row (n, or Bluestein's M)
    in_second: bool  # the result is in (re1, im1)
    radices: tuple  # () for Bluestein (its inner length's radices are in `inner`)
    inner: int = 0  # Bluestein's M


def factors(n: int) -> list | None:
    """n's radices in pass order, or None when a prime factor is above 13."""
    out = []
    for p in RADICES:
        while n % p == 0:
            out.append(p)
            n //= p
    return out if n == 1 else None


def plan(n: int) -> Plan:
    radices = factors(n)
    if radices is not None:
        return Plan(n, n, len(radices) % 2 == 1, tuple(radices))
    m = 1
    while m < 2 * n - 1:
        m *= 2
    return Plan(n, m, False, (), m)


def roots(k: np.ndarray, n: int, sign: int) -> np.ndarray:
    """exp(sign 2 pi i k/n) in float64, exact (0, +-1, +-i) at multiples of a quarter turn."""
    k = np.asarray(k, dtype=np.int64) % n
    w = np.exp(sign * 2j * np.pi * k / n)
    quarter = (4 * k) % n == 0
    exact = np.array([1, sign * 1j, -1, -sign * 1j])[(4 * k[quarter]) // n % 4]
    w[quarter] = exact
    return w


def _suffix(ty: ir.Type) -> str:
    return "f64" if ty == ir.DoubleType() else "f32"


def _c(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


def _name(n: int, ty: ir.Type, sign: int) -> str:
    return f"graphc.fft.{n}.{_suffix(ty)}.{'inv' if sign > 0 else 'fwd'}"


def _signature(ty: ir.Type) -> ir.FunctionType:
    ptr = ty.as_pointer()
    return ir.FunctionType(VOID, [ptr, ptr, ptr, ptr, I64])


def _pass_signature(ty: ir.Type) -> ir.FunctionType:
    ptr = ty.as_pointer()
    return ir.FunctionType(VOID, [ptr, ptr, ptr, ptr, I64, I64, ptr, ptr])


# The passes as a library: one function per (radix, sign, type, twiddled), compiled once per
# process (and kept in the disk cache) and declared in each module that calls it; a length's
# transform is a short driver in the model's module calling them with its twiddle tables, so
# a model's compile optimises no butterflies.
_library: dict = {}
_library_lock = threading.Lock()


def _pass_name(p: int, ty: ir.Type, sign: int, twiddled: bool) -> str:
    kind = "tw" if twiddled else "plain"
    return f"graphc.fft.pass{p}.{_suffix(ty)}.{'inv' if sign > 0 else 'fwd'}.{kind}"


def _pass_function(module: ir.Module, p: int, ty: ir.Type, sign: int, twiddled: bool):  # noqa: ANN201
    """The radix-p pass, compiled in the library once, declared in `module`."""
    name = _pass_name(p, ty, sign, twiddled)
    with _library_lock:
        if name not in _library:
            _library[name] = _compile_pass(name, p, ty, sign, twiddled)
    found = module.globals.get(name)
    if found is None:
        found = ir.Function(module, _pass_signature(ty), name=name)
    return found


def _compile_pass(name: str, p: int, ty: ir.Type, sign: int, twiddled: bool) -> object:
    from backends.llvm import jit

    library = ir.Module(name=f"graphc.fft.library.{name}")
    fn = ir.Function(library, _pass_signature(ty), name=name)
    names = ("src.re", "src.im", "dst.re", "dst.im", "m", "S", "tw.re", "tw.im")
    for k, (arg, arg_name) in enumerate(zip(fn.args, names)):
        arg.name = arg_name
        if k < 4:
            arg.add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    _Pass(b, ty, p, sign, twiddled).emit(fn.args)
    b.ret_void()
    tm = jit.target_machine()
    library.triple = tm.triple
    library.data_layout = str(tm.target_data)
    engine, _, _ = jit.engine(str(library), tm)
    llvm.add_symbol(name, engine.get_function_address(name))
    return engine  # keeps the code alive


def transform(module: ir.Module, n: int, ty: ir.Type, sign: int) -> tuple:
    """(function, plan) of the length-n transform with this sign for element type `ty`: a
    driver emitted into `module` once (internal)."""
    p = plan(n)
    name = _name(n, ty, sign)
    found = module.globals.get(name)
    if found is not None:
        return found, p
    fn = ir.Function(module, _signature(ty), name=name)
    fn.linkage = "internal"
    for arg, arg_name in zip(fn.args, ("re0", "im0", "re1", "im1", "rows")):
        arg.name = arg_name
        if arg_name != "rows":
            arg.add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    if p.radices or n == 1:
        _stockham(b, ty, n, sign, fn.args)
    else:
        _bluestein(b, module, ty, n, sign, p.inner, fn.args)
    b.ret_void()
    return fn, p


def constant_table(module: ir.Module, name: str, ty: ir.Type, values: np.ndarray) -> ir.Value:
    """An internal constant global array of `ty` holding `values` (float64 rounded)."""
    found = module.globals.get(name)
    if found is None:
        array_ty = ir.ArrayType(ty, len(values))
        found = ir.GlobalVariable(module, array_ty, name=name)
        found.global_constant = True
        found.linkage = "internal"
        found.initializer = ir.Constant(array_ty, [float(v) for v in values])
    return found


def _load(b: ir.IRBuilder, table: ir.Value, index: ir.Value, name: str) -> ir.Value:
    return b.load(b.gep(table, [_c(0), index], inbounds=True), name=name)


def _stockham(b: ir.IRBuilder, ty: ir.Type, n: int, sign: int, args: tuple) -> None:
    """The passes of the length-n transform, from array pair to array pair."""
    re0, im0, re1, im1, rows = args
    module = b.module
    src, dst = (re0, im0), (re1, im1)
    length, done = n, 1
    null = ir.Constant(ty.as_pointer(), None)
    for number, p in enumerate(factors(n) or []):
        m = length // p
        stride = b.mul(_c(done), rows, name=f"S{number}")
        if m > 1:  # w_L^{jt}, j < L/p, 1 <= t < p, row j at j*(p-1)
            j, t = np.meshgrid(np.arange(m), np.arange(1, p), indexing="ij")
            w = roots(j * t, length, sign).reshape(-1)
            key = f"graphc.fft.tw.{n}.{number}.{_suffix(ty)}.{sign}"
            tables = [
                b.gep(constant_table(module, f"{key}.{part}", ty, v), [_c(0), _c(0)])
                for part, v in (("re", w.real), ("im", w.imag))
            ]
        else:
            tables = [null, null]
        fn = _pass_function(module, p, ty, sign, m > 1)
        b.call(fn, [*src, *dst, _c(m), stride, *tables])
        src, dst = dst, src
        length, done = m, done * p


class _Pass:
    """A Stockham pass of radix p: for j < m, q < S, y[q + S(pj + t)] = w^{jt} sum_r
    x[q + S(j + rm)] w_p^{rt}, the twiddles w^{jt} from tables (row j at j*(p-1))."""

    def __init__(self, b: ir.IRBuilder, ty: ir.Type, p: int, sign: int, twiddled: bool) -> None:
        self.b, self.ty, self.p, self.sign, self.twiddled = b, ty, p, sign, twiddled

    def emit(self, args: tuple) -> None:
        b, p = self.b, self.p
        src_re, src_im, dst_re, dst_im, m, stride, tw_re, tw_im = args
        with for_range(b, m, "j") as j:
            factors = []
            for t in range(1, p):
                if not self.twiddled:
                    factors.append(None)
                    continue
                at = b.add(b.mul(j, _c(p - 1)), _c(t - 1), name="tw.at")
                factors.append(
                    tuple(
                        b.load(b.gep(table, [at], inbounds=True), name="tw")
                        for table in (tw_re, tw_im)
                    )
                )
            reads = [b.mul(b.add(j, b.mul(m, _c(r))), stride, name=f"in{r}") for r in range(p)]
            writes = [
                b.mul(b.add(b.mul(j, _c(p)), _c(t)), stride, name=f"out{t}") for t in range(p)
            ]
            with for_range(b, stride, "q") as q:
                a = []
                for r in range(p):
                    at = b.add(reads[r], q, name="src.at")
                    a.append(
                        (
                            b.load(b.gep(src_re, [at], inbounds=True), name=f"a{r}.re"),
                            b.load(b.gep(src_im, [at], inbounds=True), name=f"a{r}.im"),
                        )
                    )
                out = self._butterfly(a)
                for t in range(p):
                    re, im = out[t]
                    if t > 0 and factors[t - 1] is not None:
                        re, im = _cmul(b, (re, im), factors[t - 1])
                    at = b.add(writes[t], q, name="dst.at")
                    b.store(re, b.gep(dst_re, [at], inbounds=True))
                    b.store(im, b.gep(dst_im, [at], inbounds=True))

    def _butterfly(self, a: list) -> list:
        """The length-p DFT (sign self.sign) of the pairs `a`."""
        b, p = self.b, len(a)
        if p == 2:
            return [_cadd(b, a[0], a[1]), _csub(b, a[0], a[1])]
        if p == 4:  # two radix-2 steps; w_4 = sign * i
            t0, t1 = _cadd(b, a[0], a[2]), _csub(b, a[0], a[2])
            t2, t3 = _cadd(b, a[1], a[3]), self._times_i(_csub(b, a[1], a[3]))
            return [_cadd(b, t0, t2), _cadd(b, t1, t3), _csub(b, t0, t2), _csub(b, t1, t3)]
        # odd p: b_t = a0 + sum_r (a_r + a_{p-r}) cos(2 pi rt/p) + sign i (a_r - a_{p-r}) sin(...)
        half = (p - 1) // 2
        sums = [_cadd(b, a[r], a[p - r]) for r in range(1, half + 1)]
        diffs = [_csub(b, a[r], a[p - r]) for r in range(1, half + 1)]
        total = a[0]
        for s in sums:
            total = _cadd(b, total, s)
        out = [total] + [None] * (p - 1)
        for t in range(1, half + 1):
            real, imag = a[0], None
            for r in range(1, half + 1):
                angle = 2 * np.pi * ((r * t) % p) / p
                real = _cadd(b, real, _cscale(b, sums[r - 1], np.cos(angle), self.ty))
                term = _cscale(b, diffs[r - 1], np.sin(angle), self.ty)
                imag = term if imag is None else _cadd(b, imag, term)
            rotated = self._times_i(imag)
            out[t] = _cadd(b, real, rotated)
            out[p - t] = _csub(b, real, rotated)
        return out

    def _times_i(self, z: tuple) -> tuple:
        """sign * i * z."""
        b = self.b
        re, im = z
        if self.sign > 0:
            return (b.fneg(im, name="ti.re"), re)
        return (im, b.fneg(re, name="ti.im"))


def _cadd(b: ir.IRBuilder, x: tuple, y: tuple) -> tuple:
    return (b.fadd(x[0], y[0], name="s.re"), b.fadd(x[1], y[1], name="s.im"))


def _csub(b: ir.IRBuilder, x: tuple, y: tuple) -> tuple:
    return (b.fsub(x[0], y[0], name="d.re"), b.fsub(x[1], y[1], name="d.im"))


def _cscale(b: ir.IRBuilder, x: tuple, factor: float, ty: ir.Type) -> tuple:
    c = ir.Constant(ty, float(factor))
    return (b.fmul(x[0], c, name="k.re"), b.fmul(x[1], c, name="k.im"))


def _cmul(b: ir.IRBuilder, x: tuple, y: tuple) -> tuple:
    re = b.fsub(b.fmul(x[0], y[0], name="ac"), b.fmul(x[1], y[1], name="bd"), name="m.re")
    im = b.fadd(b.fmul(x[0], y[1], name="ad"), b.fmul(x[1], y[0], name="bc"), name="m.im")
    return re, im


# Bluestein ------------------------------------------------------------------------------------


def _chirp(n: int, sign: int) -> np.ndarray:
    """c_j = exp(sign pi i j^2 / n), j < n (j^2 mod 2n in integers: exact angles)."""
    j = np.arange(n, dtype=np.int64)
    return np.exp(sign * 1j * np.pi * ((j * j) % (2 * n)) / n)


def _bluestein(b: ir.IRBuilder, module, ty: ir.Type, n: int, sign: int, m: int, args) -> None:  # noqa: ANN001
    re0, im0, re1, im1, rows = args
    chirp = _chirp(n, sign)
    kernel = np.zeros(m, dtype=np.complex128)
    kernel[:n] = np.conj(chirp)
    kernel[m - n + 1 :] = np.conj(chirp[1:])[::-1]
    spectrum = np.fft.fft(kernel) / m
    key = f"graphc.fft.bluestein.{n}.{_suffix(ty)}.{sign}"
    tables = {
        name: constant_table(module, f"{key}.{name}", ty, values)
        for name, values in (
            ("c.re", chirp.real),
            ("c.im", chirp.imag),
            ("k.re", spectrum.real),
            ("k.im", spectrum.imag),
        )
    }
    zero = ir.Constant(ty, 0.0)

    def rows_of(count: int, body, name: str) -> None:  # noqa: ANN001
        """body(i, at) for i < count and every row (at = i*rows + r)."""
        with for_range(b, _c(count), name) as i:
            base = b.mul(i, rows, name=f"{name}.base")
            with for_range(b, rows, f"{name}.r") as r:
                body(i, b.add(base, r, name=f"{name}.at"))

    def element(pair: tuple, at: ir.Value) -> tuple:
        return tuple(b.load(b.gep(p, [at], inbounds=True), name="v") for p in pair)

    def store(pair: tuple, at: ir.Value, value: tuple) -> None:
        for p, v in zip(pair, value):
            b.store(v, b.gep(p, [at], inbounds=True))

    def table(prefix: str, i: ir.Value) -> tuple:
        return (
            _load(b, tables[f"{prefix}.re"], i, "t.re"),
            _load(b, tables[f"{prefix}.im"], i, "t.im"),
        )

    first = (re0, im0)
    rows_of(n, lambda i, at: store(first, at, _cmul(b, element(first, at), table("c", i))), "bc")
    rows_of(m - n, lambda i, at: store(first, b.add(at, b.mul(_c(n), rows)), (zero, zero)), "bz")
    forward, p = transform(module, m, ty, -1)
    b.call(forward, [re0, im0, re1, im1, rows])
    spec, other = ((re1, im1), (re0, im0)) if p.in_second else ((re0, im0), (re1, im1))
    rows_of(m, lambda i, at: store(spec, at, _cmul(b, element(spec, at), table("k", i))), "bk")
    inverse, q = transform(module, m, ty, +1)
    b.call(inverse, [*spec, *other, rows])
    result = other if q.in_second else spec
    rows_of(n, lambda i, at: store(first, at, _cmul(b, element(result, at), table("c", i))), "bo")


__all__ = ["Plan", "constant_table", "factors", "plan", "roots", "transform"]
