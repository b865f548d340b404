"""GEMM kernels of the LLVM backend: matmul with np.matmul's semantics, then the epilogue.

A matmul kernel is lowered as: for each batch index (np.matmul's broadcast batch axes; none
when the batch folds into the rows, as in (N, m, k) @ (k, n)), one 2-D product
C = op(A) @ op(B) into row-major storage, then one loop over the output running the kernel's
elementwise epilogue (bias, activation, residual, the SGD update...). C's storage is the
matmul's own buffer when another kernel reads it, else an epilogue output of its shape and
dtype (each element is read before it is overwritten), else a scratch buffer. An operand read
transposed (a `transpose` statement of the kernel) is a pair of strides, never a copy; a 1-D
operand is a 1 x k row or a k x 1 column. The 2-D product takes one of two paths:

  blas       scipy's OpenBLAS sgemm/dgemm (scipy.linalg.cython_blas), called through a
             global function pointer (`@graphc.sgemm`) that the runtime writes after
             JIT-compiling (`GemmState.link`): no address is baked into the code. Row-major
             C = A B is column-major C^T = B^T A^T, so the operands are passed swapped.
  generated  a packed, register-blocked GEMM emitted here (BLIS's loop nest: blocks of
             MC rows x KC depth x NC columns), specialised per transposition: B is packed in
             k-major panels of NR columns, A in panels of MR rows (rows of KC elements, or
             k-major when A is transposed, so that packing is a copy), and a micro-kernel keeps
             an MR x NR tile of C in vector registers, one broadcast and NR/VL FMAs per row and
             step of k (a narrower one for a last panel of <= VL columns). Tile sizes follow
             the host's vector registers (AVX-512: 32 of 16 floats, tiles 8 x 32; AVX2: 16 of
             8, tiles 6 x 16). n == 1 or m == 1 (matrix-vector) skip packing: dot products or
             axpys. Packing converts mixed operand dtypes. One thread.

`mode()`: GRAPHC_GEMM=blas|generated|auto (or the module switch FORCE) forces a path; auto
takes BLAS when m*n*k >= BLAS_MIN_WORK, decided at compile time for static sizes and at run
time for symbolic ones (BLAS also falls back to the generated code for sizes it cannot take:
0 or past 32-bit ints). Without scipy, or with operands of another dtype than the result,
every GEMM is generated. What each kernel chose is in `f.explain()` ("GEMM paths").
Integer matmul is not supported (NotImplementedError).
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from functools import cache

import sympy
from llvmlite import binding as llvm
from llvmlite import ir

from backends.llvm import ops
from backends.llvm.irutil import I1, I8, I8P, I32, I64, convert, for_range, is_float, llvm_type
from graphc.kernels import LOOP_VARS, Buffer, Kernel
from graphc.node import Node
from graphc.shapes import dims_equal, shape_str

VOID = ir.VoidType()
ENV = "GRAPHC_GEMM"
MODES = ("auto", "blas", "generated")
FORCE: str | None = None  # "blas" | "generated" | "auto": overrides GRAPHC_GEMM (tests)
# m*n*k from which auto calls BLAS. Below it the generated GEMM is within ~10% of OpenBLAS
# on one thread (ahead from ~128^3) and far ahead of OpenBLAS's threaded path, which on a
# loaded 2-core machine stalls between 128^3 and 384^3; above it BLAS's threads pay off.
BLAS_MIN_WORK = 1 << 26
INT_MAX = 2**31 - 1  # BLAS takes 32-bit ints


def mode() -> str:
    chosen = FORCE if FORCE is not None else os.environ.get(ENV, "") or "auto"
    if chosen not in MODES:
        raise ValueError(f"{ENV}={chosen!r}: expected one of {', '.join(MODES)}")
    return chosen


@cache
def blas_routines() -> dict | None:
    """{"sgemm": address, "dgemm": address} from scipy's cython_blas, or None without scipy."""
    try:
        from scipy.linalg import cython_blas
    except ImportError:
        return None
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    found = {}
    for routine in ("sgemm", "dgemm"):
        capsule = cython_blas.__pyx_capi__[routine]
        found[routine] = get_pointer(capsule, get_name(capsule))
    found["module"] = cython_blas  # keeps the library loaded
    return found


# tiling ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tiling:
    """Block sizes of the generated GEMM for one element type."""

    vl: int  # elements per vector register
    nv: int  # vectors per micro-tile row (NR = nv * vl columns)
    mr: int  # micro-tile rows
    kc: int  # depth of a packed block
    nc: int  # columns of a packed B block (stays in L2), a multiple of NR
    mc: int  # rows of a packed A block (stays in L3), a multiple of MR

    @property
    def nr(self) -> int:
        return self.nv * self.vl


TILING: dict = {}  # element bytes -> Tiling: overrides the host's (tests)


@cache
def _host_vector() -> tuple:
    """(vector bits, vector registers) of the host CPU."""
    features = llvm.get_host_cpu_features()
    if features.get("avx512f"):
        return 512, 32
    if features.get("avx2") or features.get("avx"):
        return 256, 16
    return 128, 16


def tiling(ty: ir.Type) -> Tiling:
    size = 8 if ty == ir.DoubleType() else 4
    if size in TILING:
        return TILING[size]
    bits, registers = _host_vector()
    vl = bits // (8 * size)
    nv = 2
    mr = min((registers - nv - 1) // nv, 8)  # the accumulators, B's vectors, a broadcast
    kc = 384 if size == 4 else 256
    nc = max(nv * vl, (384 * 1024 // (kc * size)) // (nv * vl) * (nv * vl))
    mc = mr * (3072 // mr)
    return Tiling(vl, nv, mr, kc, nc, mc)


def _bytes(ty: ir.Type) -> int:
    return 8 if ty == ir.DoubleType() else 4


def _align(nbytes: int) -> int:
    """The alignment (power of two, at most 64) of packed data at multiples of nbytes from a
    64-byte aligned workspace."""
    return min(64, nbytes & -nbytes)


def _suffix(ty: ir.Type) -> str:
    return {"float": "f32", "double": "f64"}.get(str(ty), str(ty))


# IR helpers -----------------------------------------------------------------------------------


def _c(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


def _min(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y, name="lt"), x, y, name="min")


def _max(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed(">", x, y, name="gt"), x, y, name="max")


def _at(b: ir.IRBuilder, ptr: ir.Value, offset: ir.Value, name: str = "at") -> ir.Value:
    return b.gep(ptr, [offset], name=name)


class _Blocks:
    """for (start = 0; start < total; start += step): yields (start, min(step, total - start))."""

    def __init__(self, b: ir.IRBuilder, total: ir.Value, step: int, name: str) -> None:
        self.b, self.total, self.step, self.name = b, total, step, name

    def __enter__(self) -> tuple:
        b = self.b
        count = b.sdiv(b.add(self.total, _c(self.step - 1)), _c(self.step), name=f"{self.name}.n")
        self._loop = for_range(b, count, self.name)
        index = self._loop.__enter__()
        start = b.mul(index, _c(self.step), name=f"{self.name}.start")
        return start, _min(b, _c(self.step), b.sub(self.total, start))

    def __exit__(self, *exc: object) -> None:
        self._loop.__exit__(*exc)


def _function(module: ir.Module, name: str, args: list) -> tuple:
    fn = ir.Function(module, ir.FunctionType(VOID, args), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    fn.attributes.add("noinline")  # compiled once each, called per block
    return fn, ir.IRBuilder(fn.append_basic_block("entry"))


def _declare(module: ir.Module, name: str, ret: ir.Type, args: list) -> ir.Function:
    found = module.globals.get(name)
    if found is None:
        found = ir.Function(module, ir.FunctionType(ret, args), name=name)
    return found


# the generated GEMM ---------------------------------------------------------------------------


class Generated:
    """Emits, once per module, element types and transposition, `gemm(M, N, K, A, rsa, csa, B,
    rsb, csb, C, ldc)`: C[i*ldc + j] = sum_p A[i*rsa + p*csa] * B[p*rsb + j*csb] (C is
    overwritten). A not transposed has csa = 1, transposed rsa = 1; the same for B.

    Packing is a copy wherever the layout allows: A's panels are MR rows of KC elements when A
    is not transposed (each row copied), else k-major (MR contiguous elements per step of k);
    B's panels are k-major rows of NR elements (copied when B is not transposed)."""

    def __init__(self, module: ir.Module) -> None:
        self.module = module
        self.functions: dict = {}

    def gemm(self, ty: ir.Type, ta: ir.Type, tb: ir.Type, trans_a: bool, trans_b: bool):  # noqa: ANN201
        key = ("gemm", str(ty), str(ta), str(tb), trans_a, trans_b)
        if key not in self.functions:
            self.functions[key] = self._gemm(ty, ta, tb, trans_a, trans_b)
        return self.functions[key]

    def _once(self, key: tuple, name: str, args: list) -> tuple:
        """(function, builder) for a new helper, or (function, None) when already emitted."""
        if key in self.functions:
            return self.functions[key], None
        fn, b = _function(self.module, name, args)
        self.functions[key] = fn
        return fn, b

    def _micro(self, ty: ir.Type, rows_layout: bool, nv: int) -> ir.Function:
        """micro(kc, Ap, Bp, C, ldc, rows, cols, accumulate): the MR x (nv * VL) tile of C
        from a packed A panel and the first nv vectors of a B panel; C = tile (or C += tile),
        only rows x cols of it. nv < NV serves a narrow last panel."""
        t = tiling(ty)
        mr, vl, nr = t.mr, t.vl, t.nr  # B's panels are NR wide, whatever nv
        width = nv * vl
        size = _bytes(ty)
        vty = ir.VectorType(ty, vl)
        ptr = ty.as_pointer()
        layout = "rows" if rows_layout else "kmajor"
        fn, b = self._once(
            ("micro", str(ty), layout, nv),
            f"graphc.gemm.micro.{_suffix(ty)}.{layout}.{nv}",
            [I64, ptr, ptr, ptr, I64, I64, I64, I1],
        )
        if b is None:
            return fn
        kc, ap, bp, c, ldc, rows, cols, accumulate = fn.args
        for arg in (ap, bp, c):
            arg.add_attribute("noalias")
        fma = _declare(self.module, f"llvm.fma.v{vl}{_suffix(ty)}", vty, [vty] * 3)
        tile = b.bitcast(b.alloca(ir.ArrayType(ty, mr * width), name="tile"), ptr, name="tile.p")
        entry = b.block
        loop = fn.append_basic_block("k")
        done = fn.append_basic_block("store")
        b.branch(loop)
        b.position_at_end(loop)
        p = b.phi(I64, name="p")
        p.add_incoming(_c(0), entry)
        zero = ir.Constant(vty, None)
        accs = []
        for r in range(mr):
            row = []
            for v in range(nv):
                phi = b.phi(vty, name=f"c{r}.{v}")
                phi.add_incoming(zero, entry)
                row.append(phi)
            accs.append(row)
        b_row = _at(b, bp, b.mul(p, _c(nr)), "b.row")
        vectors = [
            b.load(
                b.bitcast(_at(b, b_row, _c(v * vl)), vty.as_pointer()),
                name=f"b{v}",
                align=_align(vl * size),
            )
            for v in range(nv)
        ]
        a_step = _at(b, ap, p if rows_layout else b.mul(p, _c(mr)), "a.step")
        undef = ir.Constant(vty, ir.Undefined)
        splat_mask = ir.Constant(ir.VectorType(I32, vl), [0] * vl)
        new = []
        for r in range(mr):
            a = b.load(_at(b, a_step, _c(r * t.kc if rows_layout else r)), name=f"a{r}")
            splat = b.shuffle_vector(
                b.insert_element(undef, a, ir.Constant(I32, 0)), undef, splat_mask, name=f"a{r}.s"
            )
            new.append([b.call(fma, [splat, vectors[v], accs[r][v]]) for v in range(nv)])
        following = b.add(p, _c(1), name="p.next", flags=["nsw"])
        p.add_incoming(following, loop)
        for r in range(mr):
            for v in range(nv):
                accs[r][v].add_incoming(new[r][v], loop)
        b.cbranch(b.icmp_signed("<", following, kc), loop, done)

        b.position_at_end(done)
        full = b.and_(
            b.icmp_signed("==", rows, _c(mr)), b.icmp_signed("==", cols, _c(width)), name="full"
        )
        with b.if_else(full, likely=True) as (whole, part):
            with whole:
                for r in range(mr):
                    c_row = _at(b, c, b.mul(_c(r), ldc), "c.row")
                    for v in range(nv):
                        at = b.bitcast(_at(b, c_row, _c(v * vl)), vty.as_pointer())
                        old = b.load(at, name="old", align=size)
                        total = b.select(accumulate, b.fadd(old, new[r][v]), new[r][v])
                        b.store(total, at, align=size)
            with part:  # an edge tile: through a local tile, only its valid part
                for r in range(mr):
                    for v in range(nv):
                        at = b.bitcast(_at(b, tile, _c(r * width + v * vl)), vty.as_pointer())
                        b.store(new[r][v], at, align=size)
                with for_range(b, rows, "r") as r:
                    with for_range(b, cols, "j") as j:
                        value = b.load(_at(b, tile, b.add(b.mul(r, _c(width)), j)), name="t")
                        at = _at(b, c, b.add(b.mul(r, ldc), j))
                        old = b.load(at, name="old")
                        b.store(b.select(accumulate, b.fadd(old, value), value), at)
        b.ret_void()
        return fn

    def _pack_a(self, ty: ir.Type, ta: ir.Type, transposed: bool) -> ir.Function:
        """pack_a(A, ld, mc, kc, Ap): A's mc x kc block in panels of MR rows; rows past mc are
        zeros. Not transposed (A[i*ld + p]): each panel is MR rows of KC elements, row r
        copied from A's row. Transposed (A[p*ld + i]): each panel is k-major, the MR
        elements of a step of k copied from contiguous memory."""
        t = tiling(ty)
        mr = t.mr
        layout = "t" if transposed else "n"
        fn, b = self._once(
            ("pack_a", str(ty), str(ta), transposed),
            f"graphc.gemm.pack_a.{layout}.{_suffix(ty)}.{_suffix(ta)}",
            [ta.as_pointer(), I64, I64, I64, ty.as_pointer()],
        )
        if b is None:
            return fn
        a, ld, mc, kc, ap = fn.args
        ap.add_attribute("noalias")
        zero = ir.Constant(ty, 0.0)
        if not transposed:
            with _Blocks(b, mc, mr, "panel") as (i0, rows):
                dst = _at(b, ap, b.mul(i0, _c(t.kc)), "dst")
                with for_range(b, rows, "r") as r:
                    source = _at(b, a, b.mul(b.add(i0, r), ld), "row")
                    out = _at(b, dst, b.mul(r, _c(t.kc)), "out")
                    with for_range(b, kc, "p") as p:
                        value = convert(b, b.load(_at(b, source, p), name="a"), ty, "a.cv")
                        b.store(value, _at(b, out, p))
                with for_range(b, b.sub(_c(mr), rows), "z") as z:
                    out = _at(b, dst, b.mul(b.add(rows, z), _c(t.kc)), "out")
                    with for_range(b, kc, "p") as p:
                        b.store(zero, _at(b, out, p))
            b.ret_void()
            return fn
        with _Blocks(b, mc, mr, "panel") as (i0, rows):
            dst = _at(b, ap, b.mul(i0, kc), "dst")
            first = _at(b, a, i0, "first")
            with b.if_else(b.icmp_signed("==", rows, _c(mr)), likely=True) as (whole, part):
                with whole:
                    with for_range(b, kc, "p") as p:
                        source = _at(b, first, b.mul(p, ld))
                        out = _at(b, dst, b.mul(p, _c(mr)))
                        for r in range(mr):
                            value = b.load(_at(b, source, _c(r)), name="a")
                            b.store(convert(b, value, ty, "a.cv"), _at(b, out, _c(r)))
                with part:
                    with for_range(b, kc, "p") as p:
                        source = _at(b, first, b.mul(p, ld))
                        out = _at(b, dst, b.mul(p, _c(mr)))
                        with for_range(b, _c(mr), "r") as r:
                            inside = b.icmp_signed("<", r, rows)
                            safe = b.select(inside, r, _c(0))
                            value = convert(b, b.load(_at(b, source, safe), name="a"), ty, "cv")
                            b.store(b.select(inside, value, zero), _at(b, out, r))
        b.ret_void()
        return fn

    def _pack_b(self, ty: ir.Type, tb: ir.Type, transposed: bool) -> ir.Function:
        """pack_b(B, ld, kc, nc, Bp): B's kc x nc block in k-major panels of NR columns
        (Bp[panel][p][j]); columns past nc are zeros. Not transposed (B[p*ld + j]): rows of NR
        elements copied; transposed (B[j*ld + p]): column by column."""
        t = tiling(ty)
        nr = t.nr
        size = _bytes(ty)
        layout = "t" if transposed else "n"
        fn, b = self._once(
            ("pack_b", str(ty), str(tb), transposed),
            f"graphc.gemm.pack_b.{layout}.{_suffix(ty)}.{_suffix(tb)}",
            [tb.as_pointer(), I64, I64, I64, ty.as_pointer()],
        )
        if b is None:
            return fn
        src, ld, kc, nc, bp = fn.args
        bp.add_attribute("noalias")
        zero = ir.Constant(ty, 0.0)
        with _Blocks(b, nc, nr, "panel") as (j0, cols):
            dst = _at(b, bp, b.mul(j0, kc), "dst")
            if transposed:
                first = _at(b, src, b.mul(j0, ld), "first")
                with for_range(b, cols, "j") as j:
                    column = _at(b, first, b.mul(j, ld), "column")
                    with for_range(b, kc, "p") as p:
                        value = convert(b, b.load(_at(b, column, p), name="b"), ty, "b.cv")
                        b.store(value, _at(b, dst, b.add(b.mul(p, _c(nr)), j)))
                with for_range(b, kc, "p") as p:
                    out = _at(b, dst, b.mul(p, _c(nr)))
                    with for_range(b, b.sub(_c(nr), cols), "z") as z:
                        b.store(zero, _at(b, out, b.add(cols, z)))
            else:
                first = _at(b, src, j0, "first")
                whole_panel = b.icmp_signed("==", cols, _c(nr))
                if tb != ty:
                    whole_panel = ir.Constant(I1, 0)
                with b.if_else(whole_panel, likely=True) as (whole, part):
                    with whole:  # rows of NR contiguous elements
                        vty = ir.VectorType(ty, nr)
                        with for_range(b, kc, "p") as p:
                            at = b.bitcast(_at(b, first, b.mul(p, ld)), vty.as_pointer())
                            row = b.load(at, name="row", align=size)
                            out = b.bitcast(_at(b, dst, b.mul(p, _c(nr))), vty.as_pointer())
                            b.store(row, out, align=_align(nr * size))
                    with part:
                        with for_range(b, kc, "p") as p:
                            source = _at(b, first, b.mul(p, ld))
                            out = _at(b, dst, b.mul(p, _c(nr)))
                            with for_range(b, cols, "j") as j:
                                value = b.load(_at(b, source, j), name="b")
                                b.store(convert(b, value, ty, "b.cv"), _at(b, out, j))
                            with for_range(b, b.sub(_c(nr), cols), "z") as z:
                                b.store(zero, _at(b, out, b.add(cols, z)))
        b.ret_void()
        return fn

    def _gemm(self, ty: ir.Type, ta: ir.Type, tb: ir.Type, trans_a: bool, trans_b: bool):  # noqa: ANN202
        t = tiling(ty)
        size = _bytes(ty)
        ptr = ty.as_pointer()
        fn, b = _function(
            self.module,
            f"graphc.gemm.{'t' if trans_a else 'n'}{'t' if trans_b else 'n'}.{_suffix(ty)}"
            f".{_suffix(ta)}.{_suffix(tb)}",
            [I64, I64, I64, ta.as_pointer(), I64, I64, tb.as_pointer(), I64, I64, ptr, I64],
        )
        m, n, k, a, rsa, csa, src_b, rsb, csb, c, ldc = fn.args
        for arg, name in zip(fn.args, "m n k a rsa csa b rsb csb c ldc".split()):
            arg.name = name
        c.add_attribute("noalias")
        acc = b.alloca(ty, name="acc")
        pack_a = self._pack_a(ty, ta, trans_a)
        pack_b = self._pack_b(ty, tb, trans_b)
        micro = self._micro(ty, not trans_a, t.nv)
        narrow = self._micro(ty, not trans_a, 1) if t.nv > 1 else micro
        lda, ldb = (csa if trans_a else rsa), (csb if trans_b else rsb)
        empty = b.or_(b.icmp_signed("<=", m, _c(0)), b.icmp_signed("<=", n, _c(0)), name="empty")
        with b.if_then(empty, likely=False):
            b.ret_void()
        with b.if_then(b.icmp_signed("<=", k, _c(0)), likely=False):  # C = 0
            with for_range(b, m, "i") as i:
                row = _at(b, c, b.mul(i, ldc))
                with for_range(b, n, "j") as j:
                    b.store(ir.Constant(ty, 0.0), _at(b, row, j))
            b.ret_void()
        _vector_products(b, ty, acc, fn.args, trans_a, trans_b)

        def rounded(x: ir.Value, step: int) -> ir.Value:
            return b.mul(b.sdiv(b.add(x, _c(step - 1)), _c(step)), _c(step))

        depth = _min(b, k, _c(t.kc))
        alloc = _declare(self.module, "aligned_alloc", I8P, [I64, I64])
        free = _declare(self.module, "free", VOID, [I8P])

        def workspace(elements: ir.Value, name: str) -> tuple:
            raw = b.call(alloc, [_c(64), rounded(b.mul(elements, _c(size)), 64)], name=name)
            return raw, b.bitcast(raw, ptr)

        a_depth = depth if trans_a else _c(t.kc)  # A's panels: k-major, or rows of KC
        raw_a, ap = workspace(b.mul(rounded(_min(b, m, _c(t.mc)), t.mr), a_depth), "ap")
        raw_b, bp = workspace(b.mul(rounded(_min(b, n, _c(t.nc)), t.nr), depth), "bp")
        with _Blocks(b, m, t.mc, "ic") as (ic, mc):
            with _Blocks(b, k, t.kc, "pc") as (pc, kc):
                block_a = _at(b, a, b.add(b.mul(ic, rsa), b.mul(pc, csa)), "block.a")
                b.call(pack_a, [block_a, lda, mc, kc, ap])
                accumulate = b.icmp_signed(">", pc, _c(0), name="accumulate")
                panel_stride = kc if trans_a else _c(t.kc)
                with _Blocks(b, n, t.nc, "jc") as (jc, nc):
                    block_b = _at(b, src_b, b.add(b.mul(pc, rsb), b.mul(jc, csb)), "block.b")
                    b.call(pack_b, [block_b, ldb, kc, nc, bp])
                    with _Blocks(b, mc, t.mr, "ir") as (ir_, rows):
                        panel_a = _at(b, ap, b.mul(ir_, panel_stride), "panel.a")
                        c_rows = _at(b, c, b.mul(b.add(ic, ir_), ldc), "c.rows")
                        with _Blocks(b, nc, t.nr, "jr") as (jr, cols):
                            panel_b = _at(b, bp, b.mul(jr, kc), "panel.b")
                            tile = _at(b, c_rows, b.add(jc, jr), "c.tile")
                            args = [kc, panel_a, panel_b, tile, ldc, rows, cols, accumulate]
                            thin = b.icmp_signed("<=", cols, _c(t.vl), name="thin")
                            with b.if_else(thin) as (last, wide):
                                with last:  # a last panel of at most VL columns
                                    b.call(narrow, args)
                                with wide:
                                    b.call(micro, args)
        b.call(free, [raw_a])
        b.call(free, [raw_b])
        b.ret_void()
        return fn


def _vector_products(
    b: ir.IRBuilder, ty: ir.Type, acc: ir.Value, args: tuple, trans_a: bool, trans_b: bool
) -> None:
    """n == 1 or m == 1 (matrix-vector, vector-matrix, dot): no packing, one loop nest whose
    inner loop is contiguous (a dot product or an axpy), which LLVM vectorizes. When n == 1
    the column of B is contiguous (rsb == 1), when m == 1 the row of A (csa == 1)."""
    m, n, k, a, rsa, csa, src_b, rsb, csb, c, ldc = args
    zero = ir.Constant(ty, 0.0)
    fast = ["reassoc", "contract", "nsz"]

    def value(ptr: ir.Value, offset: ir.Value, name: str) -> ir.Value:
        return convert(b, b.load(_at(b, ptr, offset), name=name), ty, f"{name}.cv")

    def dot(x: ir.Value, y: ir.Value) -> ir.Value:  # sum_p x[p] * y[p]
        b.store(zero, acc)
        with for_range(b, k, "p") as p:
            product = b.fmul(value(x, p, "x"), value(y, p, "y"), flags=fast)
            b.store(b.fadd(b.load(acc, name="s"), product, flags=fast), acc)
        return b.load(acc, name="dot")

    def axpy(count: ir.Value, stride: ir.Value, x_of, y_of) -> None:  # noqa: ANN001
        """C[j*stride] = sum_p x_of(p) * y_of(p)[j] for j < count, p outer."""
        with for_range(b, count, "z") as j:
            b.store(zero, _at(b, c, b.mul(j, stride)))
        with for_range(b, k, "p") as p:
            scale = x_of(p)
            row = y_of(p)
            with for_range(b, count, "j") as j:
                at = _at(b, c, b.mul(j, stride))
                product = b.fmul(scale, value(row, j, "y"), flags=fast)
                b.store(b.fadd(b.load(at, name="c"), product, flags=fast), at)

    with b.if_then(b.icmp_signed("==", n, _c(1)), likely=False):  # C (m x 1) = A b
        if trans_a:  # A[p*csa + i]: C += A[p, :] * b[p]
            axpy(m, ldc, lambda p: value(src_b, p, "b"), lambda p: _at(b, a, b.mul(p, csa)))
        else:
            with for_range(b, m, "i") as i:
                total = dot(_at(b, a, b.mul(i, rsa)), src_b)
                b.store(total, _at(b, c, b.mul(i, ldc)))
        b.ret_void()
    with b.if_then(b.icmp_signed("==", m, _c(1)), likely=False):  # C (1 x n) = a B
        if trans_b:  # B[j*csb + p]: one dot product per column
            with for_range(b, n, "j") as j:
                b.store(dot(a, _at(b, src_b, b.mul(j, csb))), _at(b, c, j))
        else:
            axpy(n, _c(1), lambda p: value(a, p, "a"), lambda p: _at(b, src_b, b.mul(p, rsb)))
        b.ret_void()


# BLAS -----------------------------------------------------------------------------------------


def _blas_call(
    state: GemmState, b: ir.IRBuilder, ty: ir.Type, slots: dict, args: tuple, trans: tuple
) -> None:
    """Row-major C = op(A) op(B) as column-major C^T = op(B)^T op(A)^T through ?gemm: a
    row-major matrix is its column-major transpose, so B goes first."""
    m, n, k, a, rsa, csa, src_b, rsb, csb, c, ldc = args
    a_trans, b_trans = trans
    routine = "sgemm" if ty == ir.FloatType() else "dgemm"
    ptr = ty.as_pointer()
    i32p = I32.as_pointer()
    fnty = ir.FunctionType(
        VOID, [I8P, I8P, i32p, i32p, i32p, ptr, ptr, i32p, ptr, i32p, ptr, ptr, i32p]
    )
    target = b.bitcast(b.load(state.blas_global(routine), name=routine), fnty.as_pointer())
    # B (k x n) not transposed is column-major n x k with ld rsb; transposed, k x n with ld csb
    # A (m x k) not transposed is column-major k x m with ld rsa; transposed, m x k with ld csa
    b.store(ir.Constant(I8, ord("T" if b_trans else "N")), slots["ta"])
    b.store(ir.Constant(I8, ord("T" if a_trans else "N")), slots["tb"])
    ld_b = _max(b, csb if b_trans else rsb, k if b_trans else n)
    ld_a = _max(b, csa if a_trans else rsa, m if a_trans else k)

    def int_arg(name: str, value: ir.Value) -> ir.Value:
        b.store(b.trunc(_max(b, value, _c(1)), I32), slots[name])
        return slots[name]

    b.store(ir.Constant(ty, 1.0), slots["alpha"])
    b.store(ir.Constant(ty, 0.0), slots["beta"])
    b.call(
        target,
        [
            slots["ta"],
            slots["tb"],
            int_arg("m", n),
            int_arg("n", m),
            int_arg("k", k),
            slots["alpha"],
            b.bitcast(src_b, ptr),
            int_arg("lda", ld_b),
            b.bitcast(a, ptr),
            int_arg("ldb", ld_a),
            slots["beta"],
            c,
            int_arg("ldc", _max(b, ldc, n)),
        ],
    )


class GemmState:
    """Per-module GEMM state: generated functions, BLAS pointer globals and what each GEMM
    kernel chose (explain)."""

    def __init__(self, module: ir.Module) -> None:
        self.module = module
        self.generated = Generated(module)
        self.blas_globals: dict = {}  # global name -> routine
        self.choices: list = []

    def blas_global(self, routine: str) -> ir.GlobalVariable:
        name = f"graphc.{routine}"
        if name not in self.blas_globals:
            var = ir.GlobalVariable(self.module, I8P, name=name)
            var.initializer = ir.Constant(I8P, None)  # external linkage: never folded
            self.blas_globals[name] = routine
        return self.module.globals[name]

    def link(self, engine: llvm.ExecutionEngine) -> None:
        """Write the BLAS routines' addresses into their globals (after finalize_object)."""
        if not self.blas_globals:
            return
        routines = blas_routines()
        for name, routine in self.blas_globals.items():
            address = engine.get_global_value_address(name)
            if not address:
                raise RuntimeError(f"llvm backend: the JIT lost the global @{name}")
            ctypes.c_void_p.from_address(address).value = routines[routine]

    def describe(self) -> str:
        if not self.choices:
            return ""
        return "GEMM paths:\n" + "\n".join(f"  {line}" for line in self.choices)


# the generated GEMM as a library: compiled once per process (and kept in the disk cache),
# declared in each module that calls it, so a model's compile does not optimise it again
_library: dict = {}
_library_lock = threading.Lock()


def library_gemm(
    module: ir.Module, ty: ir.Type, ta: ir.Type, tb: ir.Type, trans_a: bool, trans_b: bool
) -> ir.Function:
    """The generated gemm for these types and transpositions, declared in `module`."""
    key = (str(ty), str(ta), str(tb), trans_a, trans_b)
    with _library_lock:
        entry = _library.get(key)
        if entry is None:
            entry = _compile_library(ty, ta, tb, trans_a, trans_b)
            _library[key] = entry
    name, signature = entry[0], entry[1]
    found = module.globals.get(name)
    if found is None:
        found = ir.Function(module, signature, name=name)
    return found


def _compile_library(ty: ir.Type, ta: ir.Type, tb: ir.Type, trans_a: bool, trans_b: bool) -> tuple:
    from backends.llvm import jit

    library = ir.Module(name="graphc.gemm.library")
    fn = Generated(library).gemm(ty, ta, tb, trans_a, trans_b)
    fn.linkage = "external"
    tm = jit.target_machine()
    library.triple = tm.triple
    library.data_layout = str(tm.target_data)
    engine, _, _ = jit.engine(str(library), tm)
    address = engine.get_function_address(fn.name)
    llvm.add_symbol(fn.name, address)  # resolves the declarations in every later module
    return fn.name, fn.function_type, engine  # the engine keeps the code alive


def state(builder: object) -> GemmState:
    found = getattr(builder, "gemm_state", None)
    if found is None:
        found = GemmState(builder.module)
        builder.gemm_state = found
    return found


# the matmul kernel ----------------------------------------------------------------------------


@dataclass
class _Operand:
    source: Node  # the buffer read
    transposed: bool
    rows: sympy.Expr  # of the logical 2-D matrix
    cols: sympy.Expr
    rs: sympy.Expr  # element strides of the logical matrix in the buffer
    cs: sympy.Expr
    batch: tuple  # the buffer's batch axes
    batch_strides: tuple


def _operand(node: Node, kernel: Kernel, left: bool) -> _Operand:
    members = set(kernel.nodes)
    transposed = node.op == "transpose" and node in members
    source = node.inputs[0] if transposed else node
    shape = source.shape
    one = sympy.Integer(1)
    if node.rank == 1:  # a row (1 x k) on the left, a column (k x 1) on the right
        k = shape[0]
        if left:
            return _Operand(source, False, one, k, k, one, (), ())
        return _Operand(source, False, k, one, one, one, (), ())
    last = shape[-1]
    rows, cols = (shape[-1], shape[-2]) if transposed else (shape[-2], shape[-1])
    rs, cs = (one, last) if transposed else (last, one)
    batch = shape[:-2]
    strides = []
    for axis in range(len(batch)):
        stride = one
        for d in shape[axis + 1 :]:
            stride = stride * d
        strides.append(stride)
    return _Operand(source, transposed, rows, cols, rs, cs, batch, tuple(strides))


def _strides_over(operand: _Operand, out_batch: tuple) -> list:
    """The operand's element stride per output batch axis (0 where broadcast)."""
    offset = len(out_batch) - len(operand.batch)
    strides = []
    for q, d in enumerate(out_batch):
        if q < offset:
            strides.append(sympy.Integer(0))
            continue
        mine = operand.batch[q - offset]
        strides.append(
            sympy.Integer(0) if mine == 1 and d != 1 else operand.batch_strides[q - offset]
        )
    return strides


def _numel(shape: tuple) -> sympy.Expr:
    total = sympy.Integer(1)
    for d in shape:
        total = total * d
    return total


def matmul(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    """The matmul kernel (a method of codegen.ModuleBuilder): batched GEMMs, then the epilogue."""
    anchor = kernel.anchor
    x, y = anchor.inputs
    ty = llvm_type(anchor.dtype)
    if not is_float(ty):
        raise NotImplementedError(
            f"llvm backend: kernel {kernel.name}: integer matmul ({x.dtype} @ {y.dtype} -> "
            f"{anchor.dtype}, built at {anchor.where}) is not supported; use backend='numpy' "
            f"or float operands"
        )
    gs = state(self)
    # nothing writes the pointer and size arrays while the kernel runs: so LLVM may keep the
    # buffers' addresses out of the epilogue's loop (stores no longer "may alias" them), and
    # the loop vectorizes
    for arg in b.function.args[:2]:
        arg.add_attribute("noalias")
    left, right = _operand(x, kernel, True), _operand(y, kernel, False)
    kept = (x.rank > 1) + (y.rank > 1)
    out_batch = anchor.shape[: anchor.rank - kept]
    m, k, n = left.rows, left.cols, right.cols
    strides_a, strides_b = _strides_over(left, out_batch), _strides_over(right, out_batch)
    fold = (
        bool(out_batch)
        and not left.transposed
        and x.rank > 1
        and all(s == 0 for s in strides_b)
        and len(left.batch) == len(out_batch)
        and all(s != 0 for s in strides_a)  # A's batch is the output's: rows contiguous
    )
    if fold:  # (batch..., m, k) @ (k, n): one GEMM of prod(batch) * m rows
        m = _numel(out_batch) * m
        loop_batch, strides_a, strides_b = (), [], []
    else:
        loop_batch = out_batch
    ta, tb = llvm_type(left.source.dtype), llvm_type(right.source.dtype)

    # where C lives: the anchor's buffer, the kernel's only output when it has C's shape and
    # dtype (its value at an element is computed, reading C there, before it is stored), or
    # a scratch buffer (with several outputs a store could overwrite C before another
    # output reads it)
    epilogue = self.split(kernel)[1]
    same = [
        node
        for node in kernel.outputs
        if node.dtype == anchor.dtype
        and len(node.shape) == anchor.rank
        and all(dims_equal(p, q) for p, q in zip(node.shape, anchor.shape))
    ]
    only = len(kernel.outputs) == 1
    storage = anchor if anchor in kernel.outputs else (same[0] if same and only else None)
    if storage is None:
        storage = anchor
        if anchor not in self.buffer_index:
            self.buffer_index[anchor] = len(self.buffer_list)
            self.buffer_list.append(Buffer(f"scratch{len(self.buffer_list)}", anchor, "temp"))

    # the path
    chosen = mode()
    routines = blas_routines()
    eligible = routines is not None and ta == ty and tb == ty
    work = sympy.expand(m * n * k)
    if chosen == "generated" or not eligible:
        path = "generated"
        why = (
            "forced"
            if chosen == "generated"
            else ("scipy (BLAS) is not installed" if routines is None else "mixed operand dtypes")
        )
    elif chosen == "blas":
        path, why = "blas", "forced"
    elif work.is_number:
        path = "blas" if int(work) >= BLAS_MIN_WORK else "generated"
        why = f"m*n*k = {int(work)} {'>=' if path == 'blas' else '<'} {BLAS_MIN_WORK}"
    else:
        path, why = "runtime", f"BLAS when m*n*k = {work} >= {BLAS_MIN_WORK} at run time"
    label = {"blas": "BLAS", "generated": "generated", "runtime": "BLAS or generated"}[path]
    t = tiling(ty)
    tiles = f"tiles {t.mr}x{t.nr}, vectors of {t.vl}"
    shapes = " @ ".join(
        f"{shape_str(o.source.shape)}^T" if o.transposed else shape_str(node.shape)
        for o, node in ((left, x), (right, y))
    )
    gs.choices.append(
        f"{kernel.name} matmul {shapes} -> {shape_str(anchor.shape)} {anchor.dtype}: {label} "
        f"({why}{'; batch folded into rows' if fold else ''}"
        f"{'' if path == 'blas' else '; ' + tiles})"
    )

    slots = {}
    if path != "generated":
        for name in ("m", "n", "k", "lda", "ldb", "ldc"):
            slots[name] = b.alloca(I32, name=f"blas.{name}")
        for name in ("ta", "tb"):
            slots[name] = b.alloca(I8, name=f"blas.{name}")
        for name in ("alpha", "beta"):
            slots[name] = b.alloca(ty, name=f"blas.{name}")

    size = lambda e: self.size(b, e)  # noqa: E731
    mv, nv, kv = size(m), size(n), size(k)
    base_a = self.pointer(b, left.source)
    base_b = self.pointer(b, right.source)
    base_c = _storage_pointer(self, b, storage)
    rsa, csa, rsb, csb = size(left.rs), size(left.cs), size(right.rs), size(right.cs)
    ldc = nv

    dims = [sympy.sympify(e) for e in (m, n, k, left.rs, left.cs, right.rs, right.cs)]
    static_ok = all(e.is_number for e in dims) and all(0 < int(e) <= INT_MAX for e in dims)

    def product(loops: list) -> None:
        off_a, off_b, off_c = _c(0), _c(0), _c(0)
        c_stride = b.mul(mv, nv)
        for q in reversed(range(len(loops))):
            off_a = b.add(off_a, b.mul(loops[q], size(strides_a[q])))
            off_b = b.add(off_b, b.mul(loops[q], size(strides_b[q])))
        c_stride_total = c_stride
        for q in reversed(range(len(loops))):
            off_c = b.add(off_c, b.mul(loops[q], c_stride_total))
            c_stride_total = b.mul(c_stride_total, size(loop_batch[q]))
        args = (
            mv,
            nv,
            kv,
            _at(b, base_a, off_a),
            rsa,
            csa,
            _at(b, base_b, off_b),
            rsb,
            csb,
            _at(b, base_c, off_c),
            ldc,
        )
        generated = (
            (lambda *key: library_gemm(gs.module, *key))
            if path != "blas" or not static_ok
            else None
        )
        if path == "generated":
            b.call(generated(ty, ta, tb, left.transposed, right.transposed), list(args))
            return
        if path == "blas" and static_ok:  # sizes known to suit BLAS: no fallback
            _blas_call(gs, b, ty, slots, args, (left.transposed, right.transposed))
            return
        ok = ir.Constant(I1, 1)
        for value in (mv, nv, kv):  # BLAS: positive sizes that fit its 32-bit ints
            ok = b.and_(ok, b.icmp_signed(">", value, _c(0)))
        for value in (mv, nv, kv, rsa, csa, rsb, csb):
            ok = b.and_(ok, b.icmp_signed("<=", value, _c(INT_MAX)))
        if path == "runtime":
            big = b.icmp_signed(">=", b.mul(b.mul(mv, nv), kv), _c(BLAS_MIN_WORK))
            ok = b.and_(ok, big)
        with b.if_else(ok) as (blas, own):
            with blas:
                _blas_call(gs, b, ty, slots, args, (left.transposed, right.transposed))
            with own:  # a size BLAS cannot take (0, or past its 32-bit ints), or small
                b.call(generated(ty, ta, tb, left.transposed, right.transposed), list(args))

    self._nest(b, loop_batch, product, name="g")

    if not epilogue and storage is anchor and anchor in kernel.outputs:
        return

    def element(loops: list) -> None:
        offset = self.offset(b, anchor.shape, tuple(LOOP_VARS[: anchor.rank]), loops)
        known = {anchor: b.load(_at(b, base_c, offset), name="c")}
        root = lambda n: ops.root_index(n.shape, anchor.shape)  # noqa: E731
        get, own = self.evaluator(b, epilogue, known, root, loops)
        for node in kernel.outputs:
            if node is anchor and storage is anchor:
                continue
            index = ops._normal(node.shape, own[node] if node in own else root(node))
            self.store(b, node, get(node, index), index, loops)

    self._nest(b, anchor.shape, element, name="e")


def _storage_pointer(self, b: ir.IRBuilder, node: Node) -> ir.Value:  # noqa: ANN001
    if node in self.program.buffers:
        return self.pointer(b, node)
    bufs = b.function.args[0]
    slot = b.gep(bufs, [_c(self.buffer_index[node])], name="buf.ptr")
    raw = b.load(slot, name="buf.scratch")
    return b.bitcast(raw, llvm_type(node.dtype).as_pointer(), name="typed")


__all__ = ["BLAS_MIN_WORK", "ENV", "FORCE", "GemmState", "Tiling", "matmul", "mode", "state"]
