"""The LLVM kernels of the Winograd convolution's tile ops (graphc/ops/winograd.py), 2-D.

winograd_tiles: per (n, c, tile row), a loop over the tiles of the row loads each tile's
alpha x alpha inputs, applies the constant matrix on both axes (unrolled here: zero
coefficients vanish, +-1 are adds) and stores alpha^2 values; consecutive tiles store to
consecutive addresses, so LLVM vectorises the loop across tiles. Tiles wholly inside x run
without bounds tests; the others (at the borders, in the padding) load through a test.

winograd_untiles: the reverse walk: per tile the transformed values are loaded (contiguous
across tiles), transformed and stored as an m x m block through the kernel's epilogue. The
backend computes the non-overlapping layout the lowering makes (step = the block's size,
tiles covering the output); overlapping tiles (the adjoint of winograd_tiles, which only a
derivative of an already lowered graph would need) raise NotImplementedError.

Methods of codegen.ModuleBuilder written as functions.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from backends.llvm import parallel
from backends.llvm.irutil import I64, convert, for_range, llvm_type
from backends.llvm.ops import _finish
from backends.llvm.shape_ops import _address
from graphc.kernels import Kernel

BOOL = ir.IntType(1)


def _const(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _combine(b: ir.IRBuilder, coeffs: tuple, values: list, ty: ir.Type, name: str) -> ir.Value:
    """sum_k coeffs[k] * values[k] for constant coefficients: zeros skipped, +-1 as adds."""
    total = None
    for coef, value in zip(coeffs, values):
        if coef == 0.0:
            continue
        if coef == 1.0:
            term = value
        elif coef == -1.0:
            term = b.fneg(value, name=f"{name}.neg")
        else:
            term = b.fmul(ir.Constant(ty, coef), value, name=f"{name}.mul")
        total = term if total is None else b.fadd(total, term, name=name)
    return ir.Constant(ty, 0.0) if total is None else total


def _separable(b: ir.IRBuilder, rows: tuple, cols: tuple, tile: list, ty: ir.Type) -> list:
    """rows @ tile @ cols^T for a tile given as a list of rows of values."""
    inner = len(tile[0])
    half = [[_combine(b, r, [t[v] for t in tile], ty, "wh") for v in range(inner)] for r in rows]
    return [[_combine(b, c, h, ty, "ww") for c in cols] for h in half]


def _unsupported(kernel: Kernel) -> None:
    anchor = kernel.anchor
    if len(anchor.attrs["tiles"]) != 2:
        raise NotImplementedError(
            f"llvm backend: {anchor.op} with {len(anchor.attrs['tiles'])} spatial axes "
            f"(built at {anchor.where}); the kernel is 2-D"
        )


def _tile_ranges(self, b, origin: int, step: int, taps: int, extent, count) -> tuple:  # noqa: ANN001
    """[lo, hi): the tiles t of an axis whose taps origin + t*step + u (u < taps) all lie
    in [0, extent), clamped to [0, count) with lo <= hi."""
    lo = max(0, -(origin // step)) if origin < 0 else 0  # ceil(-origin / step)
    last = b.sub(extent, _const(origin + taps), name="last")  # t*step <= extent - origin - taps
    hi = b.add(b.sdiv(last, _const(step), name="hq"), _const(1), name="hi")
    hi = b.select(b.icmp_signed("<", last, _const(0)), _const(0), hi, name="hi.neg")
    hi = b.select(b.icmp_signed(">", hi, count), count, hi, name="hi.cap")
    lo_v = b.select(b.icmp_signed(">", _const(lo), hi), hi, _const(lo), name="lo")
    return lo_v, hi


def _span(b: ir.IRBuilder, lo: ir.Value, hi: ir.Value, body: Callable, name: str) -> None:
    with for_range(b, b.sub(hi, lo, name=f"{name}.n"), name) as i:
        body(b.add(lo, i, name=f"{name}.t"))


def tiles(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # v[(a, a'), c, n*T + i*tw + j] = sum_{u, u'} M0[a, u] M1[a', u'] x[n, c, o0 + i*s0 + u,
    # o1 + j*s1 + u'] with x = 0 outside
    _unsupported(kernel)
    anchor = kernel.anchor
    (x,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    a = anchor.attrs
    (m0, m1), (s0, s1), (o0, o1), (th, tw) = a["mats"], a["step"], a["origin"], a["tiles"]
    taps0, taps1 = len(m0[0]), len(m1[0])
    zero = ir.Constant(ty, 0.0)

    def row(loops: list) -> None:
        n, c, i = loops
        height, width = self.size(b, x.shape[2]), self.size(b, x.shape[3])
        base = b.mul(n, _const(th * tw), name="nt")
        base = b.add(base, b.mul(i, _const(tw), name="itw"), name="base")
        top = b.add(b.mul(i, _const(s0), name="is"), _const(o0), name="top")
        rows_ok = []
        for u in range(taps0):
            y = b.add(top, _const(u), name="y")
            ok = b.and_(
                b.icmp_signed(">=", y, _const(0)), b.icmp_signed("<", y, height), name="rok"
            )
            rows_ok.append((ok, b.select(ok, y, _const(0), name="yc")))
        lo, hi = _tile_ranges(self, b, o1, s1, taps1, width, _const(tw))

        def tile(j: ir.Value, checked: bool) -> None:
            left = b.add(b.mul(j, _const(s1), name="js"), _const(o1), name="left")
            values = []
            for ok, y in rows_ok:
                line = []
                for v in range(taps1):
                    col = b.add(left, _const(v), name="col")
                    if checked:
                        inside = b.and_(
                            b.icmp_signed(">=", col, _const(0)),
                            b.icmp_signed("<", col, width),
                            name="cok",
                        )
                        inside = b.and_(inside, ok, name="in")
                        col = b.select(inside, col, _const(0), name="cc")
                        y_at = b.select(inside, y, _const(0), name="yy")
                        at = _address(self, b, x, [n, c, y_at, col])
                        loaded = convert(b, b.load(at, name="ld"), ty, "cv")
                        line.append(b.select(inside, loaded, zero, name="xv"))
                    else:
                        at = _address(self, b, x, [n, c, y, col])
                        line.append(convert(b, b.load(at, name="ld"), ty, "cv"))
                values.append(line)
            out = _separable(b, m0, m1, values, ty)
            flat = b.add(base, j, name="p")
            for r, line in enumerate(out):
                for q, value in enumerate(line):
                    _finish(self, b, kernel, value, [_const(r * len(m1) + q), c, flat])

        all_rows = rows_ok[0][0]
        for ok, _ in rows_ok[1:]:
            all_rows = b.and_(all_rows, ok, name="rows")
        with b.if_else(all_rows) as (fast, slow):
            with fast:
                _span(b, _const(0), lo, lambda j: tile(j, True), "jl")
                _span(b, lo, hi, lambda j: tile(j, False), "jm")
                _span(b, hi, _const(tw), lambda j: tile(j, True), "jr")
            with slow:
                _span(b, _const(0), _const(tw), lambda j: tile(j, True), "jc")

    work = (taps0 * taps1 + len(m0) * len(m1)) * tw
    parallel.nest(self, b, (x.shape[0], x.shape[1], th), row, "wt", work, collapse=2)


def untiles(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # y[n, c, o0 + i*s0 + u, o1 + j*s1 + u'] = sum_{a, a'} M0[u, a] M1[u', a'] v[(a, a'), c,
    # n*T + i*tw + j], each position from exactly one tile (no overlap, full cover)
    _unsupported(kernel)
    anchor = kernel.anchor
    (v,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    a = anchor.attrs
    (m0, m1), (s0, s1), (o0, o1), (th, tw) = a["mats"], a["step"], a["origin"], a["tiles"]
    size0, size1 = a["size"]
    for mat, step, origin, count, size in zip(
        a["mats"], a["step"], a["origin"], a["tiles"], a["size"]
    ):
        if step != len(mat) or origin > 0 or origin + count * step < size:
            raise NotImplementedError(
                f"llvm backend: {anchor.op} with overlapping or gapped tiles (step {step}, "
                f"{len(mat)} outputs a tile, origin {origin}; built at {anchor.where}); "
                "the kernel places non-overlapping tiles that cover the output"
            )
    ins1 = len(m1[0])

    def row(loops: list) -> None:
        n, c, i = loops
        base = b.mul(n, _const(th * tw), name="nt")
        base = b.add(base, b.mul(i, _const(tw), name="itw"), name="base")
        top = b.add(b.mul(i, _const(s0), name="is"), _const(o0), name="top")
        rows_ok = []
        for u in range(len(m0)):
            y = b.add(top, _const(u), name="y")
            ok = b.and_(
                b.icmp_signed(">=", y, _const(0)), b.icmp_signed("<", y, _const(size0)), name="rok"
            )
            rows_ok.append((ok, y))
        lo, hi = _tile_ranges(self, b, o1, s1, len(m1), _const(size1), _const(tw))

        def tile(j: ir.Value, checked: bool) -> None:
            flat = b.add(base, j, name="p")
            values = []
            for r in range(len(m0[0])):
                line = []
                for q in range(ins1):
                    at = _address(self, b, v, [_const(r * ins1 + q), c, flat])
                    line.append(convert(b, b.load(at, name="ld"), ty, "cv"))
                values.append(line)
            out = _separable(b, m0, m1, values, ty)
            left = b.add(b.mul(j, _const(s1), name="js"), _const(o1), name="left")
            for (ok, y), line in zip(rows_ok, out):
                for q, value in enumerate(line):
                    col = b.add(left, _const(q), name="col")
                    if not checked:
                        _finish(self, b, kernel, value, [n, c, y, col])
                        continue
                    inside = b.and_(
                        b.icmp_signed(">=", col, _const(0)),
                        b.icmp_signed("<", col, _const(size1)),
                        name="cok",
                    )
                    with b.if_then(b.and_(inside, ok, name="in")):
                        _finish(self, b, kernel, value, [n, c, y, col])

        all_rows = rows_ok[0][0]
        for ok, _ in rows_ok[1:]:
            all_rows = b.and_(all_rows, ok, name="rows")
        with b.if_else(all_rows) as (fast, slow):
            with fast:
                _span(b, _const(0), lo, lambda j: tile(j, True), "jl")
                _span(b, lo, hi, lambda j: tile(j, False), "jm")
                _span(b, hi, _const(tw), lambda j: tile(j, True), "jr")
            with slow:
                _span(b, _const(0), _const(tw), lambda j: tile(j, True), "jc")

    work = (len(m0[0]) * ins1 + len(m0) * len(m1)) * tw
    n_axis = anchor.shape[0]
    parallel.nest(self, b, (n_axis, anchor.shape[1], th), row, "wu", work, collapse=2)
