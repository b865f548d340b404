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
from backends.llvm.conv_ops import _clamp, _const
from backends.llvm.irutil import I32, convert, for_range, llvm_type
from backends.llvm.ops import _finish
from backends.llvm.shape_ops import _address
from graphc.kernels import Kernel

LANES = 16  # the tile loops run over multiples of this many tiles


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


def _stack(b: ir.IRBuilder, ty: ir.Type, count: int, name: str) -> ir.Value:
    """A stack buffer of `count` values (static, in the entry block: LLVM knows it aliases
    no data buffer, which lets the loops vectorise)."""
    return parallel.entry_alloca(b, ty, name, _const(count))


def _at(b: ir.IRBuilder, buf: ir.Value, index: ir.Value) -> ir.Value:
    return b.gep(buf, [index], name="sp")


def _span(b: ir.IRBuilder, lo: ir.Value, hi: ir.Value, body: Callable, name: str) -> None:
    """for t in [lo, hi): body(t) (nothing when hi <= lo)."""
    count = b.sub(hi, lo, name=f"{name}.n")
    count = b.select(b.icmp_signed("<", count, _const(0)), _const(0), count, name=f"{name}.c")
    with for_range(b, count, name) as i:
        body(b.add(lo, i, name=f"{name}.t"))


def _padded_row(self, b, x, lead: list, y: ir.Value, origin: int, width: int, row, ty) -> None:  # noqa: ANN001
    """row[k] = x[*lead, y, origin + k] for k < width, 0 outside x's last axis."""
    extent = self.size(b, x.shape[-1])
    lo = _const(min(max(-origin, 0), width))
    hi = _clamp(b, b.sub(extent, _const(origin), name="end"), _const(0), _const(width), "hi")
    hi = b.select(b.icmp_signed("<", hi, lo), lo, hi, name="hi.lo")
    _zeros(b, row, lo, ty)

    def copy(k: ir.Value) -> None:
        col = b.add(k, _const(origin), name="col")
        value = b.load(_address(self, b, x, [*lead, y, col]), name="ld")
        b.store(convert(b, value, ty, "cv"), _at(b, row, k))

    _span(b, lo, hi, copy, "cp")
    _zeros(b, _at(b, row, hi), b.sub(_const(width), hi, name="rest"), ty)


def _zeros(b: ir.IRBuilder, buf: ir.Value, count: ir.Value | int, ty: ir.Type) -> None:
    zero = ir.Constant(ty, 0.0)
    count = _const(count) if isinstance(count, int) else count
    _span(b, _const(0), count, lambda k: b.store(zero, _at(b, buf, k)), "z")


def _masked_copy(self, b, node, source, lanes: int, count: int, index: list) -> None:  # noqa: ANN001
    """node[index ...] (count consecutive elements) = source[0 .. count), as one vector of
    `lanes` loaded from the stack and stored under a mask of the first `count` lanes."""
    ty = llvm_type(node.dtype)
    vector = ir.VectorType(ty, lanes)
    value = b.load(b.bitcast(source, vector.as_pointer()), name="lanes", align=4)
    target = b.bitcast(_address(self, b, node, index), vector.as_pointer(), name="dst")
    mask_type = ir.VectorType(ir.IntType(1), lanes)
    mask = ir.Constant(mask_type, [int(k < count) for k in range(lanes)])
    name = f"llvm.masked.store.v{lanes}{'f32' if ty == ir.FloatType() else 'f64'}.p0"
    store = b.module.globals.get(name) or ir.Function(
        b.module, ir.FunctionType(ir.VoidType(), [vector, vector.as_pointer(), I32, mask_type]),
        name=name,
    )  # fmt: skip
    b.call(store, [value, target, ir.Constant(I32, 4), mask])


def tiles(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # v[(a, a'), c, n*T + i*tw + j] = sum_{u, u'} M0[a, u] M1[a', u'] x[n, c, o0 + i*s0 + u,
    # o1 + j*s1 + u'] with x = 0 outside. Per tile row: the alpha input rows into a padded
    # stack buffer, the tiles' transforms into another (alpha^2 rows of tw), copied out.
    _unsupported(kernel)
    anchor = kernel.anchor
    (x,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    a = anchor.attrs
    (m0, m1), (s0, s1), (o0, o1), (th, tw) = a["mats"], a["step"], a["origin"], a["tiles"]
    taps0, taps1 = len(m0[0]), len(m1[0])
    outs = len(m0) * len(m1)
    # the tile loop runs over whole vectors (16 lanes): the last ones are transforms of
    # zeros past the image, computed and never stored (a row of 14 tiles ran as scalars)
    stride = -(-tw // LANES) * LANES
    width = (stride - 1) * s1 + taps1

    def row(loops: list) -> None:
        n, c, i = loops
        rows = _stack(b, ty, taps0 * width, "rows")
        block = _stack(b, ty, outs * stride, "block")
        height = self.size(b, x.shape[2])
        top = b.add(b.mul(i, _const(s0), name="is"), _const(o0), name="top")
        for u in range(taps0):
            y = b.add(top, _const(u), name="y")
            ok = b.and_(
                b.icmp_signed(">=", y, _const(0)), b.icmp_signed("<", y, height), name="rok"
            )
            line = _at(b, rows, _const(u * width))
            with b.if_else(ok) as (inside, outside):
                with inside:
                    _padded_row(self, b, x, [n, c], y, o1, width, line, ty)
                with outside:
                    _zeros(b, line, width, ty)

        def tile(j: ir.Value) -> None:
            left = b.mul(j, _const(s1), name="left")
            values = []
            for u in range(taps0):
                line = []
                for v in range(taps1):
                    k = b.add(left, _const(u * width + v), name="k")
                    line.append(b.load(_at(b, rows, k), name="d"))
                values.append(line)
            for r, out in enumerate(_separable(b, m0, m1, values, ty)):
                for q, value in enumerate(out):
                    at = b.add(j, _const((r * len(m1) + q) * stride), name="o")
                    b.store(value, _at(b, block, at))

        _span(b, _const(0), _const(stride), tile, "j")
        base = b.mul(n, _const(th * tw), name="nt")
        base = b.add(base, b.mul(i, _const(tw), name="itw"), name="base")
        direct = kernel.outputs == [anchor] and not kernel.split()[1] and stride <= 64
        for ab in range(outs):
            if direct:  # the row's tw values in one masked vector store
                _masked_copy(self, b, anchor, _at(b, block, _const(ab * stride)), stride, tw,
                             [_const(ab), c, base])  # fmt: skip
                continue

            def store(j: ir.Value, ab: int = ab) -> None:
                value = b.load(_at(b, block, b.add(j, _const(ab * stride), name="o")), name="t")
                _finish(self, b, kernel, value, [_const(ab), c, b.add(base, j, name="p")])

            _span(b, _const(0), _const(tw), store, "st")

    work = (taps0 * taps1 + 2 * outs) * tw
    parallel.nest(self, b, (x.shape[0], x.shape[1], th), row, "wt", work, collapse=2)


def _interleaved_row(self, b, kernel, out, u: int, lead: list, stride: int) -> bool:  # noqa: ANN001
    """_place_row for origin 0 and 2 or 4 planes: the planes loaded as vectors, interleaved
    by one shufflevector into a stack row (column j*s1 + q = plane q's element j), the row
    then stored through the epilogue by a contiguous loop. A loop storing each tile's s1
    values strides by s1, which LLVM made masked scatters. False when it does not apply."""
    a = kernel.anchor.attrs
    s1, o1, size1 = a["step"][1], a["origin"][1], a["size"][1]
    if o1 != 0 or s1 not in (2, 4) or stride * s1 > 256:
        return False
    ty = llvm_type(kernel.anchor.dtype)
    vector = ir.VectorType(ty, stride)
    parts = []
    for q in range(s1):
        at = b.bitcast(_at(b, out, _const((u * s1 + q) * stride)), vector.as_pointer())
        parts.append(b.load(at, name=f"plane{q}", align=4))  # the stack row: 4-byte aligned
    while len(parts) > 1:  # concatenate: [plane 0 | plane 1 | ...]
        width = len(parts[0].type)
        mask = ir.Constant(ir.VectorType(I32, 2 * width), list(range(2 * width)))
        parts = [
            b.shuffle_vector(parts[k], parts[k + 1], mask, name="cat")
            for k in range(0, len(parts), 2)
        ]
    (whole,) = parts
    order = [q * stride + j for j in range(stride) for q in range(s1)]
    mask = ir.Constant(ir.VectorType(I32, len(order)), order)
    mixed = b.shuffle_vector(whole, ir.Constant(whole.type, None), mask, name="interleaved")
    row = _stack(b, ty, stride * s1, "line")
    b.store(mixed, b.bitcast(row, mixed.type.as_pointer(), name="line.v"), align=4)

    def place(col: ir.Value) -> None:
        _finish(self, b, kernel, b.load(_at(b, row, col), name="yv"), [*lead, col])

    _span(b, _const(0), _const(size1), place, "pc")
    return True


def _place_row(self, b, kernel, out, u: int, lead: list, stride: int) -> None:  # noqa: ANN001
    """Output row `lead` (n, c, y) from the planes (u, q) of the block: column o1 + j*s1 + q
    is out[(u*s1 + q)*stride + j]; tiles wholly inside the row store without tests."""
    if _interleaved_row(self, b, kernel, out, u, lead, stride):
        return
    a = kernel.anchor.attrs
    s1, o1, tw, size1 = a["step"][1], a["origin"][1], a["tiles"][1], a["size"][1]
    first = -(o1 // s1) if o1 < 0 else 0  # ceil(-o1 / s1)
    last = min(tw, (size1 - o1) // s1)  # tiles j < last end inside the row
    first = min(first, last)

    def tile(j: ir.Value, checked: bool) -> None:
        left = b.add(b.mul(j, _const(s1), name="js"), _const(o1), name="left")
        for q in range(s1):
            col = b.add(left, _const(q), name="col")
            value = b.load(_at(b, out, b.add(j, _const((u * s1 + q) * stride))), name="yv")
            if not checked:
                _finish(self, b, kernel, value, [*lead, col])
                continue
            inside = b.and_(
                b.icmp_signed(">=", col, _const(0)),
                b.icmp_signed("<", col, _const(size1)),
                name="cok",
            )
            with b.if_then(inside):
                _finish(self, b, kernel, value, [*lead, col])

    _span(b, _const(0), _const(first), lambda j: tile(j, True), "pl")
    _span(b, _const(first), _const(last), lambda j: tile(j, False), "pm")
    _span(b, _const(last), _const(tw), lambda j: tile(j, True), "pr")


def untiles(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # y[n, c, o0 + i*s0 + u, o1 + j*s1 + u'] = sum_{a, a'} M0[u, a] M1[u', a'] v[(a, a'), c,
    # n*T + i*tw + j], each position from exactly one tile (no overlap, full cover). Per tile
    # row: the alpha^2 rows of v into a stack buffer, the blocks into another, rows out.
    _unsupported(kernel)
    anchor = kernel.anchor
    (v,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    a = anchor.attrs
    (m0, m1), s0, o0, (th, tw) = a["mats"], a["step"][0], a["origin"][0], a["tiles"]
    size0 = a["size"][0]
    for mat, step, origin, count, size in zip(
        a["mats"], a["step"], a["origin"], a["tiles"], a["size"]
    ):
        if step != len(mat) or origin > 0 or origin + count * step < size:
            raise NotImplementedError(
                f"llvm backend: {anchor.op} with overlapping or gapped tiles (step {step}, "
                f"{len(mat)} outputs a tile, origin {origin}; built at {anchor.where}); "
                "the kernel places non-overlapping tiles that cover the output"
            )
    ins0, ins1 = len(m0[0]), len(m1[0])
    stride = -(-tw // LANES) * LANES

    def row(loops: list) -> None:
        n, c, i = loops
        block = _stack(b, ty, ins0 * ins1 * stride, "block")
        out = _stack(b, ty, len(m0) * len(m1) * stride, "out")  # planes (u, u') of tw
        base = b.mul(n, _const(th * tw), name="nt")
        base = b.add(base, b.mul(i, _const(tw), name="itw"), name="base")
        for ab in range(ins0 * ins1):

            def load(j: ir.Value, ab: int = ab) -> None:
                at = _address(self, b, v, [_const(ab), c, b.add(base, j, name="p")])
                value = convert(b, b.load(at, name="ld"), ty, "cv")
                b.store(value, _at(b, block, b.add(j, _const(ab * stride), name="o")))

            _span(b, _const(0), _const(tw), load, "ld")
            _zeros(b, _at(b, block, _const(ab * stride + tw)), stride - tw, ty)  # idle lanes

        def tile(j: ir.Value) -> None:
            values = []
            for r in range(ins0):
                line = []
                for q in range(ins1):
                    at = b.add(j, _const((r * ins1 + q) * stride), name="o")
                    line.append(b.load(_at(b, block, at), name="m"))
                values.append(line)
            for u, line in enumerate(_separable(b, m0, m1, values, ty)):
                for q, value in enumerate(line):
                    k = b.add(j, _const((u * len(m1) + q) * stride), name="k")
                    b.store(value, _at(b, out, k))

        _span(b, _const(0), _const(stride), tile, "j")
        top = b.add(b.mul(i, _const(s0), name="is"), _const(o0), name="top")
        for u in range(len(m0)):
            y = b.add(top, _const(u), name="y")
            ok = b.and_(
                b.icmp_signed(">=", y, _const(0)), b.icmp_signed("<", y, _const(size0)), name="rok"
            )
            with b.if_then(ok):
                _place_row(self, b, kernel, out, u, [n, c, y], stride)

    work = (ins0 * ins1 * 2 + len(m0) * len(m1)) * tw
    parallel.nest(self, b, (anchor.shape[0], anchor.shape[1], th), row, "wu", work, collapse=2)
