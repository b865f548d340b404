"""Convolution kernels of the LLVM backend: conv, conv_transpose, conv_wgrad (direct loops)
and im2col/col2im (the GEMM lowering's data movement), each followed by its epilogue.

Methods of codegen.ModuleBuilder written as functions. Every input position is computed
as out * stride + k * dilation - padding and checked against the input's extent; a
position in the zero padding contributes 0 and is never loaded (its index is replaced by
0 before the load), so the kernels read only inside their buffers.
"""

from __future__ import annotations

from llvmlite import ir

from backends.llvm import parallel
from backends.llvm.irutil import I64, convert, llvm_type
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


def _source(self, b, attrs, pos, k, extent):  # noqa: ANN001, ANN202
    """(clamped index, inside?) of the input position out*stride + k*dilation - pad_before."""
    inside = ir.Constant(ir.IntType(1), 1)
    index = []
    for p, kk, n, s, d, (before, _) in zip(
        pos, k, extent, attrs["stride"], attrs["dilation"], attrs["padding"]
    ):
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


def conv(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # y[n, o, pos] = sum_{c, k} x[n, g*Cg + c, pos*s + k*d - p] w[o, c, k]
    anchor = kernel.anchor
    x, w = anchor.inputs
    ty = llvm_type(anchor.dtype)
    groups = anchor.attrs["groups"]

    def element(loops: list) -> None:
        acc = parallel.entry_alloca(b, ty, "acc")
        n, o, *pos = loops
        c_out_g = b.sdiv(self.size(b, w.shape[0]), _const(groups), name="cog")
        group = b.sdiv(o, c_out_g, name="g")
        b.store(ir.Constant(ty, 0.0), acc)

        def tap(inner: list) -> None:
            c, *k = inner
            index, inside = _source(self, b, anchor.attrs, pos, k, x.shape[2:])
            channel = b.add(b.mul(group, self.size(b, w.shape[1]), name="gc"), c, name="ch")
            xv = convert(b, _load_at(self, b, x, [n, channel, *index]), ty, "xv")
            wv = convert(b, _load_at(self, b, w, [o, c, *k]), ty, "wv")
            term = b.select(inside, b.fmul(xv, wv, name="xw"), ir.Constant(ty, 0.0), name="term")
            b.store(b.fadd(b.load(acc, name="a"), term, name="sum", flags=["reassoc", "nsz"]), acc)

        self._nest(b, tuple(w.shape[1:]), tap, "t")
        _finish(self, b, kernel, b.load(acc, name="y"), loops)

    _outer(self, b, kernel, element, tuple(w.shape[1:]))


def conv_wgrad(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # dw[o, c, k] = sum_{n, pos} x[n, g*Cg + c, pos*s + k*d - p] y[n, o, pos]
    anchor = kernel.anchor
    x, y = anchor.inputs
    ty = llvm_type(anchor.dtype)
    groups = anchor.attrs["groups"]

    def element(loops: list) -> None:
        acc = parallel.entry_alloca(b, ty, "acc")
        o, c, *k = loops
        c_out_g = b.sdiv(self.size(b, y.shape[1]), _const(groups), name="cog")
        group = b.sdiv(o, c_out_g, name="g")
        channel = b.add(b.mul(group, self.size(b, anchor.shape[1]), name="gc"), c, name="ch")
        b.store(ir.Constant(ty, 0.0), acc)

        def tap(inner: list) -> None:
            n, *pos = inner
            index, inside = _source(self, b, anchor.attrs, pos, k, x.shape[2:])
            xv = convert(b, _load_at(self, b, x, [n, channel, *index]), ty, "xv")
            yv = convert(b, _load_at(self, b, y, [n, o, *pos]), ty, "yv")
            term = b.select(inside, b.fmul(xv, yv, name="xy"), ir.Constant(ty, 0.0), name="term")
            b.store(b.fadd(b.load(acc, name="a"), term, name="sum", flags=["reassoc", "nsz"]), acc)

        self._nest(b, (y.shape[0], *y.shape[2:]), tap, "t")
        _finish(self, b, kernel, b.load(acc, name="dw"), loops)

    _outer(self, b, kernel, element, (y.shape[0], *y.shape[2:]))


def conv_transpose(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # x[n, g*Cg + c, i] = sum_{o in group, k} y[n, o, (i + p - k*d) / s] w[o, c, k] where the
    # division is exact and the position lies inside y
    anchor = kernel.anchor
    y, w = anchor.inputs
    ty = llvm_type(anchor.dtype)
    attrs = anchor.attrs
    groups = attrs["groups"]

    def element(loops: list) -> None:
        acc = parallel.entry_alloca(b, ty, "acc")
        n, channel, *pos = loops
        c_in_g = self.size(b, w.shape[1])
        group = b.sdiv(channel, c_in_g, name="g")
        c = b.srem(channel, c_in_g, name="c")
        c_out_g = b.sdiv(self.size(b, w.shape[0]), _const(groups), name="cog")
        b.store(ir.Constant(ty, 0.0), acc)

        def tap(inner: list) -> None:
            oo, *k = inner
            o = b.add(b.mul(group, c_out_g, name="go"), oo, name="o")
            extents = [self.size(b, m) for m in y.shape[2:]]
            befores = [before for before, _ in attrs["padding"]]
            index, inside = covering(
                self, b, pos, k, extents, attrs["stride"], attrs["dilation"], befores
            )
            yv = convert(b, _load_at(self, b, y, [n, o, *index]), ty, "yv")
            wv = convert(b, _load_at(self, b, w, [o, c, *k]), ty, "wv")
            term = b.select(inside, b.fmul(yv, wv, name="yw"), ir.Constant(ty, 0.0), name="term")
            b.store(b.fadd(b.load(acc, name="a"), term, name="sum", flags=["reassoc", "nsz"]), acc)

        self._nest(b, (c_out_g_size(w, groups), *w.shape[2:]), tap, "t")
        _finish(self, b, kernel, b.load(acc, name="x"), loops)

    _outer(self, b, kernel, element, (c_out_g_size(w, groups), *w.shape[2:]))


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


def im2col(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # cols[n, g, c*K + k, p] = x[n, g*Cg + c, pos(p)*s + k*d - pad] (0 in the padding)
    anchor = kernel.anchor
    (x,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    attrs = anchor.attrs
    groups = attrs["groups"]

    def element(loops: list) -> None:
        kernel_sizes = [self.size(b, k) for k in attrs["kernel_size"]]
        taps = _const(1)
        for k in kernel_sizes:
            taps = b.mul(taps, k, name="taps")
        c_in_g = b.sdiv(self.size(b, x.shape[1]), _const(groups), name="cg")
        out_sizes = []
        for n_axis, k, s, d, (p0, p1) in zip(
            x.shape[2:], attrs["kernel_size"], attrs["stride"], attrs["dilation"], attrs["padding"]
        ):
            span = (n_axis + p0 + p1 - d * (k - 1) - 1) // s + 1
            out_sizes.append(self.size(b, span))
        n, g, row, p = loops
        c = b.sdiv(row, taps, name="c")
        k = _split(b, b.srem(row, taps, name="kf"), kernel_sizes, "k")
        pos = _split(b, p, out_sizes, "p")
        index, inside = _source(self, b, attrs, pos, k, x.shape[2:])
        channel = b.add(b.mul(g, c_in_g, name="gc"), c, name="ch")
        xv = convert(b, _load_at(self, b, x, [n, channel, *index]), ty, "xv")
        value = b.select(inside, xv, ir.Constant(ty, 0.0), name="col")
        _finish(self, b, kernel, value, loops)

    _outer(self, b, kernel, element, ())


def col2im(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # x[n, g*Cg + c, i] = sum_k cols[n, g, c*K + k, q] where i + pad - k*d = q*s exactly
    anchor = kernel.anchor
    (cols,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    attrs = anchor.attrs
    groups = attrs["groups"]

    def element(loops: list) -> None:
        kernel_sizes = [self.size(b, k) for k in attrs["kernel_size"]]
        c_in_g = b.sdiv(self.size(b, anchor.shape[1]), _const(groups), name="cg")
        out_sizes = []
        for n_axis, k, s, d, (p0, p1) in zip(
            attrs["input_size"],
            attrs["kernel_size"],
            attrs["stride"],
            attrs["dilation"],
            attrs["padding"],
        ):
            out_sizes.append(self.size(b, (n_axis + p0 + p1 - d * (k - 1) - 1) // s + 1))
        acc = parallel.entry_alloca(b, ty, "acc")
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
            b.store(b.fadd(b.load(acc, name="s"), term, name="sum", flags=["reassoc", "nsz"]), acc)

        self._nest(b, tuple(attrs["kernel_size"]), tap, "t")
        _finish(self, b, kernel, b.load(acc, name="x"), loops)

    _outer(self, b, kernel, element, tuple(attrs["kernel_size"]))
