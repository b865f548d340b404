"""FFT kernels of the LLVM backend: rfft, irfft, fft, ifft along one axis, then the epilogue.

The operand is seen as rows: a row is the transformed axis at one index of all the other
axes (row r = o * inner + c, o over the axes before, c over the axes after; element i of
row r is at (o * n + i) * inner + c). Blocks of up to BLOCK_ROWS consecutive rows are
gathered into a scratch buffer (planar re / im, rows innermost), transformed together by
the generated FFT of backends/llvm/fft_generated.py, and scattered to the output with
numpy's normalisation (1/n for ifft and irfft) and the kernel's elementwise epilogue.

  fft, ifft  the complex transform of each row.
  rfft       a real row of even length n as n/2 complex numbers z_j = x_2j + i x_2j+1: Z =
             FFT_{n/2}(z), then X_k = (Z_k + conj Z_{n/2-k})/2 - i/2 w^k (Z_k - conj Z_{n/2-k}),
             w = e^{-2 pi i/n}, k <= n/2 (half the work); odd n: the complex FFT of (x, 0).
  irfft      the inverse: for even n, Z_k = (X_k + conj X_{n/2-k}) + i w^-k (X_k - conj
             X_{n/2-k}), k < n/2, inverse FFT_{n/2}, x_2j = Re z_j / n, x_2j+1 = Im z_j / n;
             odd n: the Hermitian extension X_{n-k} = conj X_k and a complex inverse FFT.
             As numpy, the imaginary parts of bin 0 and (n even) bin n/2 are ignored.

The scratch buffer is a temporary of the runtime's arena (4 work arrays of the block), so
no transform length can overflow the stack.
"""

from __future__ import annotations

import numpy as np
import sympy
from llvmlite import ir

from backends.llvm import complex_ops, fft_generated, ops, parallel
from backends.llvm.fft_generated import constant_table
from backends.llvm.irutil import I64, convert, for_range, llvm_type, part_type
from graphc.kernels import Kernel
from graphc.node import Node

OPS = ("rfft", "irfft", "fft", "ifft")
BLOCK_ELEMENTS = 2048  # complex elements per work array (rows x length): 4 arrays, 32 KB in float32
BLOCK_ROWS = 32
STACK_WORK = 1 << 18  # bytes: work arrays up to this size live on each thread's stack


def _c(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


def _product(dims: tuple) -> sympy.Expr:
    total = sympy.Integer(1)
    for d in dims:
        total = total * d
    return total


def _min(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y, name="lt"), x, y, name="min")


class _Layout:
    """How the kernel's rows, lengths and work arrays are laid out."""

    def __init__(self, anchor: Node) -> None:
        (source,) = anchor.inputs
        self.op = anchor.op
        self.axis = axis = anchor.attrs["axis"]
        self.n = anchor.attrs["n"] if anchor.op == "irfft" else int(source.shape[axis])
        self.n_in = int(source.shape[axis])
        self.n_out = int(anchor.shape[axis])
        # the real transforms of even length run a complex FFT of half the length
        self.half = anchor.op in ("rfft", "irfft") and self.n % 2 == 0
        self.length = self.n // 2 if self.half else self.n
        self.sign = -1 if anchor.op in ("rfft", "fft") else 1
        self.outer = anchor.shape[:axis]
        self.inner = anchor.shape[axis + 1 :]
        self.rows = _product(self.outer) * _product(self.inner)
        self.plan = fft_generated.plan(self.length)
        block = max(1, min(BLOCK_ROWS, BLOCK_ELEMENTS // self.plan.work))
        if self.rows.is_number:
            block = max(1, min(block, int(self.rows)))
        self.block = block


def fft(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    """The FFT kernel (a method of codegen.ModuleBuilder)."""
    anchor = kernel.anchor
    (source,) = anchor.inputs
    # gathers and scatters: compiled for size (a model may have dozens of FFT kernels; the
    # butterflies are the library's, optimised once), which measured no slower here
    b.function.attributes.add("optsize")
    b.function.attributes.add("minsize")
    lay = _Layout(anchor)
    part = part_type(llvm_type(anchor.dtype))
    fn, plan = fft_generated.transform(self.module, lay.length, part, lay.sign)
    size = 4 * plan.work * lay.block
    chunk = plan.work * lay.block
    direct = kernel.outputs == [anchor] and not kernel.split()[1]
    # blocks of rows split over threads, each with its work arrays on its stack, when they
    # are small; a large FFT's blocks run in turn in one scratch buffer of the arena
    threaded = size * (8 if part == ir.DoubleType() else 4) <= STACK_WORK
    if not threaded:
        real = "float64" if part == ir.DoubleType() else "float32"
        node = Node.make("fft_scratch", (), {"elements": size}, (sympy.Integer(size),), real)
        self.scratch(node)
        shared = b.bitcast(self.pointer(b, node), part.as_pointer(), name="scratch")

    def block(loops: list) -> None:
        (blk,) = loops
        if threaded:
            scratch = parallel.entry_alloca(b, part, "scratch", _c(size))
        else:
            scratch = shared
        work = [b.gep(scratch, [_c(k * chunk)], name=f"work{k}") for k in range(4)]
        rows = self.size(b, lay.rows)
        inner = self.size(b, _product(lay.inner))
        src = b.bitcast(self.pointer(b, source), part.as_pointer(), name="src")
        r0 = b.mul(blk, _c(lay.block), name="r0")
        width = _min(b, _c(lay.block), b.sub(rows, r0))
        bases = _row_bases(b, r0, width, inner, lay)
        _gather(b, lay, src, source.dtype, bases, inner, width, work[:2], part)
        b.call(fn, [*work, width])
        result = work[2:] if plan.in_second else work[:2]
        values = _Values(b, lay, result, width, part)
        if direct:
            dst = b.bitcast(self.pointer(b, anchor), part.as_pointer(), name="dst")
            _scatter_direct(b, lay, values, dst, anchor.dtype, bases, inner, width)
        else:
            _scatter_finish(self, b, kernel, lay, values, r0, width)

    count = (lay.rows + lay.block - 1) // lay.block
    if threaded:
        parallel.nest(self, b, (count,), block, "blk", 4 * chunk * max(plan.work.bit_length(), 1))
    else:
        self._nest(b, (count,), block, "blk")


def _row_bases(b: ir.IRBuilder, r0: ir.Value, width: ir.Value, inner: ir.Value, lay) -> ir.Value:  # noqa: ANN001
    """The block's rows as (o, c) pairs (row = o * inner + c): bases[2w] = o, [2w+1] = c."""
    bases = parallel.entry_alloca(b, ir.ArrayType(I64, 2 * lay.block), "rows")
    with for_range(b, width, "w") as w:
        r = b.add(r0, w, name="r")
        o = b.udiv(r, inner, name="o")
        c = b.urem(r, inner, name="c")
        b.store(o, b.gep(bases, [_c(0), b.mul(w, _c(2))], inbounds=True))
        b.store(c, b.gep(bases, [_c(0), b.add(b.mul(w, _c(2)), _c(1))], inbounds=True))
    return bases


def _base(b: ir.IRBuilder, bases: ir.Value, w: ir.Value, length: int, inner: ir.Value) -> ir.Value:
    """The element offset of row w's first element in a buffer whose axis has `length`."""
    o = b.load(b.gep(bases, [_c(0), b.mul(w, _c(2))], inbounds=True), name="o")
    c = b.load(b.gep(bases, [_c(0), b.add(b.mul(w, _c(2)), _c(1))], inbounds=True), name="c")
    return b.add(b.mul(b.mul(o, _c(length)), inner), c, name="base")


def _rows_then_length(b: ir.IRBuilder, width: ir.Value, length: int, body, name: str) -> None:
    """body(w, i) for every row w < width and i < length: row by row (a static inner loop,
    which LLVM may unroll; a static outer one it would copy the inner loop for)."""
    with for_range(b, width, f"{name}.w") as w:
        with for_range(b, _c(length), f"{name}.i") as i:
            body(w, i)


def _gather(b, lay, src, dtype, bases, inner, width, dst, part) -> None:  # noqa: ANN001
    """The block's rows into the work arrays dst (planar re, im; element i of row w at
    i*width + w), in the form the transform takes (see the module's docstring)."""
    complex_in = dtype in ("complex64", "complex128")
    src_part = ir.DoubleType() if dtype in ("float64", "complex128") else ir.FloatType()
    zero = ir.Constant(part, 0.0)

    def read(w: ir.Value, i: ir.Value, what: int = 0) -> ir.Value:
        """Part `what` (0 re, 1 im) of element i of row w (a real operand: the element)."""
        at = b.add(_base(b, bases, w, lay.n_in, inner), b.mul(i, inner), name="at")
        if complex_in:
            at = b.add(b.mul(at, _c(2)), _c(what), name="at.part")
        value = b.load(b.gep(src, [at], inbounds=True), name="x")
        return convert(b, value, part, "x") if src_part != part else value

    def put(w: ir.Value, i: ir.Value, re: ir.Value, im: ir.Value) -> None:
        at = b.add(b.mul(i, width), w, name="to")
        b.store(re, b.gep(dst[0], [at], inbounds=True))
        b.store(im, b.gep(dst[1], [at], inbounds=True))

    if lay.op in ("fft", "ifft"):
        _rows_then_length(b, width, lay.n, lambda w, i: put(w, i, read(w, i), read(w, i, 1)), "g")
    elif lay.op == "rfft" and lay.half:  # z_j = x_2j + i x_2j+1

        def pairs(w: ir.Value, j: ir.Value) -> None:
            even = b.mul(j, _c(2), name="even")
            put(w, j, read(w, even), read(w, b.add(even, _c(1), name="odd")))

        _rows_then_length(b, width, lay.length, pairs, "g")
    elif lay.op == "rfft":
        _rows_then_length(b, width, lay.n, lambda w, i: put(w, i, read(w, i), zero), "g")
    elif lay.half:
        _gather_irfft_half(b, lay, read, put, width, inner, part)
    else:
        _gather_irfft_full(b, lay, read, put, width, inner)


def _bin(b: ir.IRBuilder, lay, read, w: ir.Value, k: ir.Value) -> tuple:  # noqa: ANN001
    """Bin k of row w with numpy's irfft reading: Im of bin 0 and (n even) bin n/2 is 0."""
    re, im = read(w, k), read(w, k, 1)
    ignored = b.icmp_signed("==", k, _c(0), name="dc")
    if lay.n % 2 == 0:
        nyquist = b.icmp_signed("==", k, _c(lay.n // 2), name="nyquist")
        ignored = b.or_(ignored, nyquist, name="ignored")
    return re, b.select(ignored, ir.Constant(im.type, 0.0), im, name="im")


def _gather_irfft_full(b, lay, read, put, width, inner) -> None:  # noqa: ANN001
    # X_i for i < n//2 + 1, conj X_{n-i} above: the Hermitian spectrum of a real signal
    m = lay.n_in

    def body(w: ir.Value, i: ir.Value) -> None:
        low = b.icmp_signed("<", i, _c(m), name="low")
        k = b.select(low, i, b.sub(_c(lay.n), i), name="k")
        re, im = _bin(b, lay, read, w, k)
        put(w, i, re, b.select(low, im, b.fneg(im, name="conj"), name="im.h"))

    _rows_then_length(b, width, lay.n, body, "g")


def _half_twiddles(b: ir.IRBuilder, lay, part: ir.Type) -> tuple:  # noqa: ANN001
    """w^k = e^{sign 2 pi i k/n} for k <= n/2, as (re table, im table)."""
    w = fft_generated.roots(np.arange(lay.n // 2 + 1), lay.n, lay.sign)
    key = f"graphc.rfft.tw.{lay.n}.{'f64' if part == ir.DoubleType() else 'f32'}.{lay.sign}"
    module = b.module
    return (
        constant_table(module, key + ".re", part, w.real),
        constant_table(module, key + ".im", part, w.imag),
    )


def _table(b: ir.IRBuilder, tables: tuple, k: ir.Value) -> tuple:
    return tuple(b.load(b.gep(t, [_c(0), k], inbounds=True), name="w") for t in tables)


def _gather_irfft_half(b, lay, read, put, width, inner, part) -> None:  # noqa: ANN001
    # Z_k = (X_k + conj X_{h-k}) + i w^-k (X_k - conj X_{h-k}), h = n/2, k < h (w^-k: the
    # inverse's sign); the inverse FFT of length h then gives z_j = n (x_2j + i x_2j+1)/2
    tables = _half_twiddles(b, lay, part)
    h = lay.length

    def body(w: ir.Value, k: ir.Value) -> None:
        xr, xi = _bin(b, lay, read, w, k)
        yr, yi = _bin(b, lay, read, w, b.sub(_c(h), k, name="mirror"))
        yi = b.fneg(yi, name="conj")  # conj X_{h-k}
        sr, si = b.fadd(xr, yr, name="s.re"), b.fadd(xi, yi, name="s.im")
        dr, di = b.fsub(xr, yr, name="d.re"), b.fsub(xi, yi, name="d.im")
        cr, ci = _table(b, tables, k)
        tr, ti = complex_ops.mul_parts(b, (dr, di), (cr, ci))
        put(w, k, b.fsub(sr, ti, name="z.re"), b.fadd(si, tr, name="z.im"))  # s + i t

    _rows_then_length(b, width, h, body, "g")


class _Values:
    """The transformed block's output elements, normalised, as the anchor's scalars."""

    def __init__(self, b: ir.IRBuilder, lay, result: list, width: ir.Value, part: ir.Type) -> None:  # noqa: ANN001
        self.b, self.lay, self.result, self.width, self.part = b, lay, result, width, part
        self.tables = _half_twiddles(b, lay, part) if lay.op == "rfft" and lay.half else None
        self.scale = ir.Constant(part, 1.0 / lay.n) if lay.sign > 0 else None

    def _work(self, w: ir.Value, i: ir.Value) -> tuple:
        b = self.b
        at = b.add(b.mul(i, self.width), w, name="from")
        return tuple(b.load(b.gep(p, [at], inbounds=True), name="y") for p in self.result)

    def parts(self, w: ir.Value, k: ir.Value) -> tuple:
        """(re, im) of output element k of row w (im is None for irfft's real output)."""
        b, lay = self.b, self.lay
        if lay.op == "irfft" and lay.half:  # x_2j = Re z_j / n, x_2j+1 = Im z_j / n
            re, im = self._work(w, b.udiv(k, _c(2), name="j"))
            odd = b.trunc(b.urem(k, _c(2)), ir.IntType(1), name="odd")
            return b.fmul(b.select(odd, im, re, name="x"), self.scale, name="x.n"), None
        if lay.op == "rfft" and lay.half:
            return self._unpack(w, k)
        re, im = self._work(w, k)
        if self.scale is not None:
            re, im = b.fmul(re, self.scale, name="re.n"), b.fmul(im, self.scale, name="im.n")
        return (re, None) if lay.op == "irfft" else (re, im)

    def _unpack(self, w: ir.Value, k: ir.Value) -> tuple:
        # X_k = (Z_k + conj Z_{h-k})/2 - i/2 w^k (Z_k - conj Z_{h-k}), Z_h = Z_0
        b, h = self.b, self.lay.length
        mirror = b.sub(_c(h), k, name="mirror")
        zk = b.select(b.icmp_signed("==", k, _c(h)), _c(0), k, name="k.mod")
        zm = b.select(b.icmp_signed("==", mirror, _c(h)), _c(0), mirror, name="m.mod")
        xr, xi = self._work(w, zk)
        yr, yi = self._work(w, zm)
        yi = b.fneg(yi, name="conj")
        half = ir.Constant(self.part, 0.5)
        sr, si = b.fadd(xr, yr, name="s.re"), b.fadd(xi, yi, name="s.im")
        dr, di = b.fsub(xr, yr, name="d.re"), b.fsub(xi, yi, name="d.im")
        tr, ti = complex_ops.mul_parts(b, (dr, di), _table(b, self.tables, k))
        re = b.fmul(b.fadd(sr, ti, name="x.re"), half, name="X.re")  # s - i t: (sr + ti, si - tr)
        im = b.fmul(b.fsub(si, tr, name="x.im"), half, name="X.im")
        return re, im

    def scalar(self, w: ir.Value, k: ir.Value, ty: ir.Type) -> ir.Value:
        re, im = self.parts(w, k)
        if im is None:
            return convert(self.b, re, ty, "out")
        return complex_ops.pack(self.b, ty, re, im)


def _scatter_direct(b, lay, values, dst, dtype, bases, inner, width) -> None:  # noqa: ANN001
    """Store the block's outputs straight into the anchor's buffer (no epilogue)."""
    complex_out = dtype in ("complex64", "complex128")

    def body(w: ir.Value, k: ir.Value) -> None:
        at = b.add(_base(b, bases, w, lay.n_out, inner), b.mul(k, inner), name="at")
        re, im = values.parts(w, k)
        if complex_out:
            at = b.mul(at, _c(2), name="at.re")
            b.store(re, b.gep(dst, [at], inbounds=True))
            b.store(im, b.gep(dst, [b.add(at, _c(1), name="at.im")], inbounds=True))
        else:
            b.store(re, b.gep(dst, [at], inbounds=True))

    def pairs(w: ir.Value, j: ir.Value) -> None:  # irfft, n even: x_2j, x_2j+1 from z_j
        at = b.add(_base(b, bases, w, lay.n_out, inner), b.mul(j, b.add(inner, inner)), name="at")
        for value, offset in zip(values._work(w, j), (_c(0), inner)):
            x = convert(b, b.fmul(value, values.scale, name="x.n"), dst.type.pointee, "x")
            b.store(x, b.gep(dst, [b.add(at, offset, name="at.x")], inbounds=True))

    if lay.op == "irfft" and lay.half:
        _rows_then_length(b, width, lay.length, pairs, "s")
    else:
        _rows_then_length(b, width, lay.n_out, body, "s")


def _scatter_finish(self, b, kernel, lay, values, r0, width) -> None:  # noqa: ANN001
    """Each output element through the kernel's epilogue (ops._finish) at its full index."""
    anchor = kernel.anchor
    ty = llvm_type(anchor.dtype)
    with for_range(b, width, "e.w") as w:
        rest = b.add(r0, w, name="r")
        index: list = [None] * anchor.rank
        for axis in reversed(range(anchor.rank)):  # the row's index, innermost axis first
            if axis == lay.axis:
                continue
            d = self.size(b, anchor.shape[axis])
            index[axis] = b.urem(rest, d, name=f"ix{axis}")
            rest = b.udiv(rest, d, name=f"rest{axis}")
        with for_range(b, _c(lay.n_out), "e.k") as k:
            loops = list(index)
            loops[lay.axis] = k
            ops._finish(self, b, kernel, values.scalar(w, k, ty), loops)


__all__ = ["OPS", "fft"]
