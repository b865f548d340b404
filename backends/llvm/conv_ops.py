"""Convolution kernels of the LLVM backend: conv, conv_transpose, conv_wgrad (direct loops)
and im2col/col2im (the GEMM lowering's data movement), each followed by its epilogue.

Methods of codegen.ModuleBuilder written as functions. Every input position is computed
as out * stride + k * dilation - padding and checked against the input's extent; a
position in the zero padding contributes 0 and is never loaded (its index is replaced by
0 before the load), so the kernels read only inside their buffers.
"""

from __future__ import annotations

from math import prod

from llvmlite import ir

from backends.llvm import parallel
from backends.llvm.irutil import I64, convert, for_range, llvm_type
from backends.llvm.ops import _finish
from backends.llvm.shape_ops import _address
from graphc.kernels import Kernel
from graphc.node import Node


def _const(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _load_at(self, b: ir.IRBuilder, node: Node, index: list) -> ir.Value:  # noqa: ANN001
    """node[index] for i64 index values (row-major, bounds-checked in that mode)."""
    return b.load(_address(self, b, node, index), name="ld")


def covering(self, b, pos, k, extents, strides, dilations, befores):  # noqa: ANN001, ANN202
    """For input position `pos` and kernel tap `k` (one i64 per axis): the output position q
    whose window reads pos through k, i.e. pos + before - k*dilation = q*stride exactly with
    0 <= q < extent; as (clamped q per axis, whether such a q exists on every axis). The
    adjoints (conv_transpose, col2im, avg_pool_grad) gather through it."""
    inside = ir.Constant(ir.IntType(1), 1)
    index = []
    for p, kk, m, s, d, before in zip(pos, k, extents, strides, dilations, befores):
        at = b.sub(b.add(p, _const(before), name="pp"), b.mul(kk, _const(d), name="kd"), name="a")
        exact = b.icmp_signed("==", b.srem(at, _const(s), name="r"), _const(0), name="ex")
        q = b.sdiv(at, _const(s), name="q")
        in_range = b.and_(
            b.icmp_signed(">=", at, _const(0), name="ge"),
            b.icmp_signed("<", q, m, name="lt"),
            name="rng",
        )
        ok = b.and_(exact, in_range, name="ok")
        inside = b.and_(inside, ok, name="inside")
        index.append(b.select(ok, q, _const(0), name="safe"))
    return index, inside


def tap_source(self, b, pos, k, extents, strides, dilations, befores):  # noqa: ANN001, ANN202
    """(clamped index, inside?) of the input position out*stride + k*dilation - before of
    window tap k at output position pos (a conv's, or a pool's with dilation 1)."""
    inside = ir.Constant(ir.IntType(1), 1)
    index = []
    for p, kk, n, s, d, before in zip(pos, k, extents, strides, dilations, befores):
        at = b.sub(
            b.add(b.mul(p, _const(s), name="ps"), b.mul(kk, _const(d), name="kd"), name="pk"),
            _const(before),
            name="src",
        )
        ok = b.and_(
            b.icmp_signed(">=", at, _const(0), name="ge0"),
            b.icmp_signed("<", at, self.size(b, n), name="ltn"),
            name="in",
        )
        inside = b.and_(inside, ok, name="inside")
        index.append(b.select(ok, at, _const(0), name="safe"))
    return index, inside


def _source(self, b, attrs, pos, k, extent):  # noqa: ANN001, ANN202
    """tap_source with a conv's stride, dilation and padding."""
    befores = [before for before, _ in attrs["padding"]]
    return tap_source(self, b, pos, k, extent, attrs["stride"], attrs["dilation"], befores)


def _direct(self, b: ir.IRBuilder, kernel: Kernel, taps: tuple, prepare, operands) -> None:  # noqa: ANN001
    """A direct convolution kernel: each element of the anchor is the sum over the `taps`
    loops of products u * v, where (inside, u, v) = operands(state, inner) and state =
    prepare(loops), counting only taps whose input position lies inside; then the epilogue.
    The outer loops (batch and channels) split over threads."""
    ty = llvm_type(kernel.anchor.dtype)

    def element(loops: list) -> None:
        acc = parallel.entry_alloca(b, ty, "acc")
        state = prepare(loops)
        b.store(ir.Constant(ty, 0.0), acc)

        def tap(inner: list) -> None:
            inside, u, v = operands(state, inner)
            product = b.fmul(convert(b, u, ty, "u"), convert(b, v, ty, "v"), name="uv")
            term = b.select(inside, product, ir.Constant(ty, 0.0), name="term")
            b.store(b.fadd(b.load(acc, name="a"), term, name="sum", flags=["reassoc", "nsz"]), acc)

        self._nest(b, taps, tap, "t")
        _finish(self, b, kernel, b.load(acc, name="total"), loops)

    _outer(self, b, kernel, element, taps)


def conv(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # y[n, o, pos] = sum_{c, k} x[n, g*Cg + c, pos*s + k*d - p] w[o, c, k]
    anchor = kernel.anchor
    x, w = anchor.inputs
    groups = anchor.attrs["groups"]

    def prepare(loops: list) -> tuple:
        n, o, *pos = loops
        c_out_g = b.sdiv(self.size(b, w.shape[0]), _const(groups), name="cog")
        return n, o, pos, b.sdiv(o, c_out_g, name="g")

    def operands(state: tuple, inner: list) -> tuple:
        (n, o, pos, group), (c, *k) = state, inner
        index, inside = _source(self, b, anchor.attrs, pos, k, x.shape[2:])
        channel = b.add(b.mul(group, self.size(b, w.shape[1]), name="gc"), c, name="ch")
        xv = _load_at(self, b, x, [n, channel, *index])
        return inside, xv, _load_at(self, b, w, [o, c, *k])

    _direct(self, b, kernel, tuple(w.shape[1:]), prepare, operands)


def conv_wgrad(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # dw[o, c, k] = sum_{n, pos} x[n, g*Cg + c, pos*s + k*d - p] y[n, o, pos]
    anchor = kernel.anchor
    x, y = anchor.inputs
    groups = anchor.attrs["groups"]

    def prepare(loops: list) -> tuple:
        o, c, *k = loops
        c_out_g = b.sdiv(self.size(b, y.shape[1]), _const(groups), name="cog")
        group = b.sdiv(o, c_out_g, name="g")
        channel = b.add(b.mul(group, self.size(b, anchor.shape[1]), name="gc"), c, name="ch")
        return o, k, channel

    def operands(state: tuple, inner: list) -> tuple:
        (o, k, channel), (n, *pos) = state, inner
        index, inside = _source(self, b, anchor.attrs, pos, k, x.shape[2:])
        xv = _load_at(self, b, x, [n, channel, *index])
        return inside, xv, _load_at(self, b, y, [n, o, *pos])

    _direct(self, b, kernel, (y.shape[0], *y.shape[2:]), prepare, operands)


def conv_transpose(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # x[n, g*Cg + c, i] = sum_{o in group, k} y[n, o, (i + p - k*d) / s] w[o, c, k] where the
    # division is exact and the position lies inside y
    anchor = kernel.anchor
    y, w = anchor.inputs
    attrs = anchor.attrs
    groups = attrs["groups"]

    def prepare(loops: list) -> tuple:
        n, channel, *pos = loops
        c_in_g = self.size(b, w.shape[1])
        group = b.sdiv(channel, c_in_g, name="g")
        c = b.srem(channel, c_in_g, name="c")
        c_out_g = b.sdiv(self.size(b, w.shape[0]), _const(groups), name="cog")
        return n, pos, c, b.mul(group, c_out_g, name="go")

    def operands(state: tuple, inner: list) -> tuple:
        (n, pos, c, first), (oo, *k) = state, inner
        o = b.add(first, oo, name="o")
        extents = [self.size(b, m) for m in y.shape[2:]]
        befores = [before for before, _ in attrs["padding"]]
        index, inside = covering(
            self, b, pos, k, extents, attrs["stride"], attrs["dilation"], befores
        )
        yv = _load_at(self, b, y, [n, o, *index])
        return inside, yv, _load_at(self, b, w, [o, c, *k])

    _direct(self, b, kernel, (c_out_g_size(w, groups), *w.shape[2:]), prepare, operands)


def _outer(self, b, kernel, element, taps) -> None:  # noqa: ANN001
    """element(loops) over the anchor's shape, its first two axes (batch and channels, or
    both channel axes) split over threads; `taps` are the extents of its inner loops."""
    cost = 2 + parallel.cost(kernel.nodes)
    parallel.nest(self, b, kernel.anchor.shape, element, "o", cost, taps, collapse=2)


def c_out_g_size(w: Node, groups: int):  # noqa: ANN201
    return w.shape[0] / groups


def _split(b: ir.IRBuilder, flat: ir.Value, sizes: list, name: str) -> list:
    """Row-major coordinates of index `flat` in a box of i64 `sizes`."""
    coords = []
    for size in reversed(sizes):
        coords.append(b.srem(flat, size, name=f"{name}.r"))
        flat = b.sdiv(flat, size, name=f"{name}.q")
    return list(reversed(coords))


def _floor_div(b: ir.IRBuilder, a: ir.Value, s: int, name: str) -> ir.Value:
    """floor(a / s) for a positive constant s (sdiv truncates toward zero)."""
    q = b.sdiv(a, _const(s), name=f"{name}.q")
    negative_rest = b.icmp_signed("<", b.srem(a, _const(s), name=f"{name}.r"), _const(0))
    return b.sub(q, b.zext(negative_rest, I64, name=f"{name}.adj"), name=name)


def _clamp(b: ir.IRBuilder, v: ir.Value, lo: ir.Value, hi: ir.Value, name: str) -> ir.Value:
    v = b.select(b.icmp_signed("<", v, lo), lo, v, name=f"{name}.lo")
    return b.select(b.icmp_signed(">", v, hi), hi, v, name=name)


def _span(self, b, start: ir.Value, count: ir.Value, body, name: str) -> None:  # noqa: ANN001
    """for q in [start, start + count): body(q)."""
    with for_range(b, count, name) as i:
        body(b.add(start, i, name=f"{name}.q"))


def im2col(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # cols[n, g, c*K + k, p] = x[n, g*Cg + c, pos(p)*s + k*d - pad] (0 in the padding).
    # Loops run over (n, g, c, k, outer output axes) with the last output axis innermost: its
    # positions q whose input q*s + k*d - pad lies inside x form one range [lo, hi), copied
    # without a bounds test (a contiguous copy for stride 1); zeros are stored around it.
    anchor = kernel.anchor
    (x,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    attrs = anchor.attrs
    groups = attrs["groups"]
    kernel_sizes = taps = c_in_g = None

    def prepare() -> None:  # the values every row reads, made where the loops are built
        nonlocal kernel_sizes, taps, c_in_g
        kernel_sizes = [self.size(b, k) for k in attrs["kernel_size"]]
        taps = _const(1)
        for k in kernel_sizes:
            taps = b.mul(taps, k, name="taps")
        c_in_g = b.sdiv(self.size(b, x.shape[1]), _const(groups), name="cg")

    out_sizes = []
    for n_axis, k, s, d, (p0, p1) in zip(
        x.shape[2:], attrs["kernel_size"], attrs["stride"], attrs["dilation"], attrs["padding"]
    ):
        out_sizes.append((n_axis + p0 + p1 - d * (k - 1) - 1) // s + 1)
    stride, dilation = attrs["stride"][-1], attrs["dilation"][-1]
    before = attrs["padding"][-1][0]
    zero = ir.Constant(ty, 0.0)
    box = (x.shape[0], groups, x.shape[1] / groups, *attrs["kernel_size"], *out_sizes[:-1])

    def row(loops: list) -> None:
        rank = len(kernel_sizes)
        n, g, c = loops[:3]
        k, pos = loops[3 : 3 + rank], loops[3 + rank :]
        k_flat = _const(0)
        for kk, size in zip(k, kernel_sizes):
            k_flat = b.add(b.mul(k_flat, size, name="km"), kk, name="kf")
        r = b.add(b.mul(c, taps, name="ct"), k_flat, name="row")
        channel = b.add(b.mul(g, c_in_g, name="gc"), c, name="ch")
        outer, inside = _source(self, b, attrs, pos, k[:-1], x.shape[2:-1])
        p_base = _const(0)
        for q, m in zip(pos, out_sizes[:-1]):
            p_base = b.add(b.mul(p_base, self.size(b, m), name="pm"), q, name="pb")
        m = self.size(b, out_sizes[-1])
        p_base = b.mul(p_base, m, name="p0")
        # input position q*s + k*d - before is inside [0, n) for lo <= q < hi
        shift = b.sub(b.mul(k[-1], _const(dilation), name="kd"), _const(before), name="sh")
        lo = _floor_div(
            b, b.add(b.neg(shift, name="ns"), _const(stride - 1), name="c"), stride, "lo"
        )
        last = b.sub(b.sub(self.size(b, x.shape[-1]), _const(1), name="n1"), shift, name="l")
        hi = b.add(_floor_div(b, last, stride, "hf"), _const(1), name="hi")
        lo = b.select(inside, _clamp(b, lo, _const(0), m, "lo"), m, name="lo.in")
        hi = _clamp(b, hi, lo, m, "hi")

        def store(q: ir.Value, value: ir.Value) -> None:
            _finish(self, b, kernel, value, [n, g, r, b.add(p_base, q, name="p")])

        def copy(q: ir.Value) -> None:
            at = b.add(b.mul(q, _const(stride), name="qs"), shift, name="at")
            xv = _load_at(self, b, x, [n, channel, *outer, at])
            store(q, convert(b, xv, ty, "xv"))

        _span(self, b, _const(0), lo, lambda q: store(q, zero), "z0")
        _span(self, b, lo, b.sub(hi, lo, name="cnt"), copy, "cp")
        _span(self, b, hi, b.sub(m, hi, name="rest"), lambda q: store(q, zero), "z1")

    # rows of (n, g, c) split over threads
    parallel.nest(self, b, box, row, "o", 2, (out_sizes[-1],), collapse=3, before=prepare)


def _column_extents(self, b: ir.IRBuilder, attrs: dict) -> list:  # noqa: ANN001
    """The output positions per spatial axis of the convolution whose columns col2im sums
    back (i64 values)."""
    extents = []
    for n_axis, k, s, d, (p0, p1) in zip(
        attrs["input_size"],
        attrs["kernel_size"],
        attrs["stride"],
        attrs["dilation"],
        attrs["padding"],
    ):
        extents.append(self.size(b, (n_axis + p0 + p1 - d * (k - 1) - 1) // s + 1))
    return extents


def col2im(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # x[n, g*Cg + c, i] = sum_k cols[n, g, c*K + k, q] where i + pad - k*d = q*s exactly.
    # With stride 1 on the last axis, each row of x (n, c, outer position) is summed in a
    # stack row: per tap, the columns q = j + pad - k*d inside [0, m) form one range of j
    # (a vectorised row += cols segment); the row then goes through the epilogue.
    attrs = kernel.anchor.attrs
    if attrs["stride"][-1] != 1:
        _col2im_gather(self, b, kernel)
        return
    anchor = kernel.anchor
    (cols,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    kernel_sizes = [self.size(b, k) for k in attrs["kernel_size"]]
    taps = _const(1)
    for size in kernel_sizes:
        taps = b.mul(taps, size, name="taps")
    groups = attrs["groups"]
    kernel_sizes = taps = c_in_g = width = row = m = None
    out_sizes: list = []

    def prepare() -> None:  # the values every line reads, made where the loops are built
        nonlocal kernel_sizes, taps, c_in_g, width, row, m
        kernel_sizes = [self.size(b, k) for k in attrs["kernel_size"]]
        taps = _const(1)
        for size in kernel_sizes:
            taps = b.mul(taps, size, name="taps")
        c_in_g = b.sdiv(self.size(b, anchor.shape[1]), _const(groups), name="cg")
        out_sizes[:] = _column_extents(self, b, attrs)
        width = self.size(b, anchor.shape[-1])
        row = parallel.entry_alloca(b, ty, "row", width)
        m = out_sizes[-1]

    dilation, before = attrs["dilation"][-1], attrs["padding"][-1][0]
    befores = [p0 for p0, _ in attrs["padding"][:-1]]

    def line(loops: list) -> None:
        n, channel, *pos = loops
        g = b.sdiv(channel, c_in_g, name="g")
        c = b.srem(channel, c_in_g, name="c")
        with for_range(b, width, "zr") as j:
            b.store(ir.Constant(ty, 0.0), b.gep(row, [j], name="rz"))

        def tap(k: list) -> None:
            outer, inside = covering(
                self,
                b,
                pos,
                k[:-1],
                out_sizes[:-1],
                attrs["stride"][:-1],
                attrs["dilation"][:-1],
                befores,
            )
            k_flat = _const(0)
            for kk, size in zip(k, kernel_sizes):
                k_flat = b.add(b.mul(k_flat, size, name="km"), kk, name="kf")
            r = b.add(b.mul(c, taps, name="ct"), k_flat, name="row")
            q_base = _const(0)
            for q, size in zip(outer, out_sizes[:-1]):
                q_base = b.add(b.mul(q_base, size, name="qm"), q, name="qb")
            q_base = b.mul(q_base, m, name="q0")
            # q = j + shift is a column of cols for 0 <= q < m: j in [-shift, m - shift)
            shift = b.sub(_const(before), b.mul(k[-1], _const(dilation), name="kd"), name="sh")
            lo = _clamp(b, b.neg(shift, name="lo0"), _const(0), width, "lo")
            hi = _clamp(b, b.sub(m, shift, name="hi0"), lo, width, "hi")
            hi = b.select(inside, hi, lo, name="hi.in")

            def add(j: ir.Value) -> None:
                q = b.add(b.add(j, shift, name="q"), q_base, name="qf")
                v = convert(b, _load_at(self, b, cols, [n, g, r, q]), ty, "v")
                at = b.gep(row, [j], name="ra")
                b.store(b.fadd(b.load(at, name="acc"), v, name="sum"), at)

            _span(self, b, lo, b.sub(hi, lo, name="cnt"), add, "ad")

        self._nest(b, tuple(attrs["kernel_size"]), tap, "t")
        with for_range(b, width, "out") as j:
            value = b.load(b.gep(row, [j], name="rv"), name="x")
            _finish(self, b, kernel, value, [n, channel, *pos, j])

    per_line = 4 * prod(int(k) for k in attrs["kernel_size"])  # a load-add-store a tap
    inner = (anchor.shape[-1],)
    parallel.nest(self, b, anchor.shape[:-1], line, "o", per_line, inner, 2, before=prepare)


def _col2im_gather(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # x[n, g*Cg + c, i] = sum_k cols[n, g, c*K + k, q] where i + pad - k*d = q*s exactly
    anchor = kernel.anchor
    (cols,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    attrs = anchor.attrs
    kernel_sizes = [self.size(b, k) for k in attrs["kernel_size"]]
    groups = attrs["groups"]
    c_in_g = b.sdiv(self.size(b, anchor.shape[1]), _const(groups), name="cg")
    out_sizes = _column_extents(self, b, attrs)
    acc = b.alloca(ty, name="acc")

    def element(loops: list) -> None:
        n, channel, *pos = loops
        g = b.sdiv(channel, c_in_g, name="g")
        c = b.srem(channel, c_in_g, name="c")
        b.store(ir.Constant(ty, 0.0), acc)

        def tap(k: list) -> None:
            befores = [before for before, _ in attrs["padding"]]
            index, inside = covering(
                self, b, pos, k, out_sizes, attrs["stride"], attrs["dilation"], befores
            )
            q_flat = _const(0)
            for q, m in zip(index, out_sizes):
                q_flat = b.add(b.mul(q_flat, m, name="qm"), q, name="qf")
            k_flat = _const(0)
            for kk, size in zip(k, kernel_sizes):
                k_flat = b.add(b.mul(k_flat, size, name="km"), kk, name="kf")
            taps = _const(1)
            for size in kernel_sizes:
                taps = b.mul(taps, size, name="taps")
            row = b.add(b.mul(c, taps, name="ct"), k_flat, name="row")
            v = convert(b, _load_at(self, b, cols, [n, g, row, q_flat]), ty, "v")
            term = b.select(inside, v, ir.Constant(ty, 0.0), name="term")
            b.store(b.fadd(b.load(acc, name="s"), term, name="sum"), acc)

        self._nest(b, tuple(attrs["kernel_size"]), tap, "t")
        _finish(self, b, kernel, b.load(acc, name="x"), loops)

    self._nest(b, anchor.shape, element, "o")
