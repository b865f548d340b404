"""The generated GEMM of the LLVM backend: packed, tiled, vectorised loop nests (BLIS's
structure) for C = op(A) @ op(B), compiled once per process as a library.

Tiles are MR x NR with an explicit-vector FMA micro-kernel (8 x 32 floats with AVX-512,
6 x 16 with AVX2), depth blocks of KC; panels of A and B are packed first (a plain copy
where the layout allows). `library_gemm` compiles the gemm for a (dtype, transposition)
once per process (kept in the disk cache too) and declares it in each module that calls it,
so a model's compile does not optimise it again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache

from llvmlite import binding as llvm
from llvmlite import ir

from backends.llvm.irutil import I1, I8P, I32, I64, convert, for_range

VOID = ir.VoidType()

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
        name = _library_name(ty, ta, tb, trans_a, trans_b)
        fn, b = _function(self.module, name, _library_args(ty, ta, tb))
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


# the generated GEMM as a library: compiled once per process (and kept in the disk cache),
# declared in each module that calls it, so a model's compile does not optimise it again
_library: dict = {}
_library_lock = threading.Lock()


def library_gemm(
    module: ir.Module, ty: ir.Type, ta: ir.Type, tb: ir.Type, trans_a: bool, trans_b: bool
) -> ir.Function:
    """The generated gemm for these types and transpositions, declared in `module`."""
    key = (str(ty), str(ta), str(tb), trans_a, trans_b, tiling(ty))  # TILING may be overridden
    with _library_lock:
        if key not in _library:
            _library[key] = _compile_library(ty, ta, tb, trans_a, trans_b)
    name, signature = _library[key][:2]
    found = module.globals.get(name)
    if found is None:
        found = ir.Function(module, signature, name=name)
    return found


def _library_name(ty: ir.Type, ta: ir.Type, tb: ir.Type, trans_a: bool, trans_b: bool) -> str:
    t = tiling(ty)
    layout = f"{'t' if trans_a else 'n'}{'t' if trans_b else 'n'}"
    # one symbol per tiling
    return f"graphc.gemm.{layout}.{_suffix(ty)}.{_suffix(ta)}.{_suffix(tb)}.{t.mr}x{t.nr}.k{t.kc}"


def _library_args(ty: ir.Type, ta: ir.Type, tb: ir.Type) -> list:
    """gemm(m, n, k, A, rsa, csa, B, rsb, csb, C, ldc)."""
    return [
        I64,
        I64,
        I64,
        ta.as_pointer(),
        I64,
        I64,
        tb.as_pointer(),
        I64,
        I64,
        ty.as_pointer(),
        I64,
    ]


def _compile_library(ty: ir.Type, ta: ir.Type, tb: ir.Type, trans_a: bool, trans_b: bool) -> tuple:
    """The library gemm's (name, type, engine): its object code from the disk cache under a
    key of its name, tiling and this generator's source (no IR is built then: that took
    75 ms of a warm compile), else generated, optimised and compiled."""
    from backends.llvm import jit

    name = _library_name(ty, ta, tb, trans_a, trans_b)
    t = tiling(ty)

    def source() -> str:
        library = ir.Module(name="graphc.gemm.library")
        fn = Generated(library).gemm(ty, ta, tb, trans_a, trans_b)
        fn.linkage = "external"
        return str(library)

    from backends.llvm import cache as disk

    digest = disk.source_digest("gemm_generated.py", "irutil.py", "jit.py")
    identity = f"{name} {t} {digest}"
    # -O1 (with the vectorisers): the kernel is written as vectors already; -O3 took twice
    # the compile time (0.13 s a variant) for the same GEMM speed
    tm = jit.target_machine()
    engine = jit.library_engine(identity, source, tm, level=1)
    address = engine.get_function_address(name)
    llvm.add_symbol(name, address)  # resolves the declarations in every later module
    signature = ir.FunctionType(ir.VoidType(), _library_args(ty, ta, tb))
    return name, signature, engine  # the engine keeps the code alive
