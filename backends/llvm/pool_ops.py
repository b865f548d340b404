"""Pooling kernels of the LLVM backend: max_pool, pool_argmax, pool_gather, pool_scatter,
avg_pool and avg_pool_grad (graphc/ops/pool.py), each followed by its epilogue.

Methods of codegen.ModuleBuilder written as functions. A window position is
out * stride + k - padding on each axis; positions in the padding count as -inf for max
(never chosen as the arg-max) and as 0 for the average (PyTorch's count_include_pad). An
index outside its plane (a user's indices for max-unpool) sets the status flag.
"""

from __future__ import annotations

import itertools

from llvmlite import ir

from backends.llvm import parallel
from backends.llvm.conv_ops import _const, _load_at, _outer, covering, tap_source
from backends.llvm.irutil import I1, I64, convert, is_float, llvm_type
from backends.llvm.ops import _finish
from backends.llvm.shape_ops import (
    INDEX,
    _add,
    _scatter_epilogue,
    _scatter_target,
    _zero_fill,
)
from graphc.kernels import Kernel


def _positions(self, b, attrs, pos, k, extent):  # noqa: ANN001, ANN202
    """(clamped index, inside?) of window tap k of output position pos."""
    ones = (1,) * len(pos)
    return tap_source(self, b, pos, k, extent, attrs["stride"], ones, attrs["padding"])


def _lowest(ty: ir.Type) -> ir.Constant:
    return (
        ir.Constant(ty, float("-inf")) if is_float(ty) else ir.Constant(ty, -(2 ** (ty.width - 1)))
    )


def _flat(self, b: ir.IRBuilder, index: list, shape: tuple) -> ir.Value:  # noqa: ANN001
    flat = _const(0)
    for i, d in zip(index, shape):
        flat = b.add(b.mul(flat, self.size(b, d), name="fm"), i, name="flat")
    return flat


def _taps(window: tuple) -> list:
    """Every tap of a window (its sizes are ints), in row-major order: the kernels unroll them
    at compile time, so the running max and arg-max stay in registers."""
    return [list(k) for k in itertools.product(*(range(f) for f in window))]


def _tap_positions(self, b, attrs, pos, k, extent):  # noqa: ANN001, ANN202
    """_positions for a constant tap k. Without padding every tap is inside the input
    (floor-mode windows end by the last element), so no test is emitted."""
    taps = [_const(kk) for kk in k]
    if any(attrs["padding"]):
        return _positions(self, b, attrs, pos, taps, extent)
    index = []
    for p, kk, s in zip(pos, taps, attrs["stride"]):
        index.append(b.add(b.mul(p, _const(s), name="ps"), kk, name="src"))
    return index, ir.Constant(I1, 1)


def max_pool(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    (x,) = anchor.inputs
    ty = llvm_type(anchor.dtype)

    def element(loops: list) -> None:
        best = parallel.entry_alloca(b, ty, "best")
        n, c, *pos = loops
        best = _lowest(ty)
        for k in _taps(anchor.attrs["window"]):
            index, inside = _tap_positions(self, b, anchor.attrs, pos, k, x.shape[2:])
            v = convert(b, _load_at(self, b, x, [n, c, *index]), ty, "v")
            v = b.select(inside, v, _lowest(ty), name="v")
            if is_float(ty):  # nan wins its window, as numpy's max
                wins = b.or_(
                    b.fcmp_ordered(">", v, best, name="gt"),
                    b.fcmp_unordered("uno", v, v, name="isnan"),
                    name="wins",
                )
                best = b.select(wins, v, best, name="mx")
            else:
                best = b.select(b.icmp_signed(">", v, best, name="gt"), v, best, name="mx")
        _finish(self, b, kernel, best, loops)

    _outer(self, b, kernel, element, anchor.attrs.get("window", ()))


def pool_argmax(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    (x,) = anchor.inputs
    ty = llvm_type(x.dtype)

    def element(loops: list) -> None:
        best = parallel.entry_alloca(b, ty, "best")
        where = parallel.entry_alloca(b, I64, "where")
        n, c, *pos = loops
        best, where = _lowest(ty), _const(-1)
        for k in _taps(anchor.attrs["window"]):
            index, inside = _tap_positions(self, b, anchor.attrs, pos, k, x.shape[2:])
            v = convert(b, _load_at(self, b, x, [n, c, *index]), ty, "v")
            first = b.icmp_signed("<", where, _const(0), name="first")
            if is_float(ty):  # the first max; the first nan beats any number
                better = b.fcmp_ordered(">", v, best, name="gt")
                nan = b.and_(
                    b.fcmp_unordered("uno", v, v, name="isnan"),
                    b.fcmp_ordered("ord", best, best, name="num"),
                    name="nan",
                )
                better = b.or_(better, nan, name="better")
            else:
                better = b.icmp_signed(">", v, best, name="better")
            take = b.and_(inside, b.or_(first, better, name="or"), name="take")
            best = b.select(take, v, best, name="nb")
            where = b.select(take, _flat(self, b, index, x.shape[2:]), where, name="nw")
        _finish(self, b, kernel, convert(b, where, llvm_type(anchor.dtype), "i"), loops)

    _outer(self, b, kernel, element, anchor.attrs.get("window", ()))


def _plane_offset(self, b, node, n, c, flat, plane_shape):  # noqa: ANN001, ANN202
    """The offset of (n, c, flat) in node's buffer, flagging a flat index outside the plane."""
    plane = _const(1)
    for d in plane_shape:
        plane = b.mul(plane, self.size(b, d), name="plane")
    bad = b.or_(
        b.icmp_signed("<", flat, _const(0), name="neg"),
        b.icmp_signed(">=", flat, plane, name="big"),
        name="bad",
    )
    self.fail(b, bad, INDEX)
    flat = b.select(bad, _const(0), flat, name="safe")
    row = b.add(b.mul(n, self.size(b, node.shape[1]), name="nc"), c, name="row")
    return b.add(b.mul(row, plane, name="rp"), flat, name="offset")


def pool_gather(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    x, indices = anchor.inputs
    ty = llvm_type(anchor.dtype)

    def element(loops: list) -> None:
        n, c, *_ = loops
        flat = convert(b, _load_at(self, b, indices, loops), I64, "flat")
        offset = _plane_offset(self, b, x, n, c, flat, x.shape[2:])
        value = b.load(b.gep(self.pointer(b, x), [self.checked(b, x, offset)], name="at"), name="v")
        _finish(self, b, kernel, convert(b, value, ty, "g"), loops)

    _outer(self, b, kernel, element, anchor.attrs.get("window", ()))


def pool_scatter(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    g, indices = anchor.inputs
    ty = llvm_type(anchor.dtype)
    target = _scatter_target(self, kernel)
    _zero_fill(self, b, target, ty)

    def element(loops: list) -> None:
        n, c, *_ = loops
        flat = convert(b, _load_at(self, b, indices, loops), I64, "flat")
        offset = _plane_offset(self, b, target, n, c, flat, target.shape[2:])
        at = b.gep(self.pointer(b, target), [self.checked(b, target, offset)], name="at")
        value = convert(b, _load_at(self, b, g, loops), ty, "g")
        b.store(_add(b, b.load(at, name="old"), value, ty), at)

    parallel.nest(self, b, g.shape, element, "s", 4, collapse=2)  # each (n, c) owns a plane
    _scatter_epilogue(self, b, kernel, ty)


def _count(window: tuple) -> int:
    total = 1
    for f in window:
        total *= f
    return total


def avg_pool(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    (x,) = anchor.inputs
    ty = llvm_type(anchor.dtype)

    def element(loops: list) -> None:
        total = parallel.entry_alloca(b, ty, "total")
        n, c, *pos = loops
        b.store(ir.Constant(ty, 0.0), total)

        def tap(k: list) -> None:
            index, inside = _positions(self, b, anchor.attrs, pos, k, x.shape[2:])
            v = convert(b, _load_at(self, b, x, [n, c, *index]), ty, "v")
            v = b.select(inside, v, ir.Constant(ty, 0.0), name="v0")
            b.store(b.fadd(b.load(total, name="t"), v, name="sum", flags=["reassoc", "nsz"]), total)

        self._nest(b, anchor.attrs["window"], tap, "k")
        mean = b.fdiv(
            b.load(total, name="s"),
            ir.Constant(ty, float(_count(anchor.attrs["window"]))),
            name="mean",
        )
        _finish(self, b, kernel, mean, loops)

    _outer(self, b, kernel, element, anchor.attrs.get("window", ()))


def avg_pool_grad(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # dx[n, c, i] = sum over windows q containing i (i + pad - k = q * stride) of g[n, c, q] / F
    anchor = kernel.anchor
    (g,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    attrs = anchor.attrs

    def element(loops: list) -> None:
        total = parallel.entry_alloca(b, ty, "total")
        n, c, *pos = loops
        b.store(ir.Constant(ty, 0.0), total)

        def tap(k: list) -> None:
            extents = [self.size(b, m) for m in g.shape[2:]]
            ones = (1,) * len(k)  # no dilation
            index, inside = covering(
                self, b, pos, k, extents, attrs["stride"], ones, attrs["padding"]
            )
            v = convert(b, _load_at(self, b, g, [n, c, *index]), ty, "v")
            v = b.select(inside, v, ir.Constant(ty, 0.0), name="v0")
            b.store(b.fadd(b.load(total, name="t"), v, name="sum", flags=["reassoc", "nsz"]), total)

        self._nest(b, attrs["window"], tap, "k")
        share = b.fdiv(
            b.load(total, name="s"), ir.Constant(ty, float(_count(attrs["window"]))), name="share"
        )
        _finish(self, b, kernel, share, loops)

    _outer(self, b, kernel, element, anchor.attrs.get("window", ()))
