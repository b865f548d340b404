"""Data-movement and loss op kernels of the LLVM backend: pad, pad_grad, slice, slice_grad,
concat, take, take_grad and mse, each followed by its kernel's elementwise epilogue.

Like backends/llvm/ops.py these are methods of codegen.ModuleBuilder (`self`), written as
functions here. Gathers (pad, slice, concat, take, slice_grad) compute, per output element,
the source index on each axis with selects and run the epilogue on the value at once. The
scatter-adds (pad_grad, take_grad) zero the anchor's buffer, add every input element into
the element it copies, and only then, in a second pass over the output, run the epilogue
(an anchor that is not itself stored gets a scratch buffer the runtime allocates).
Sizes and slice bounds may be symbolic: they are run-time values (`self.size`), and the
clamping of python's slice.indices is done at run time. An integer index or a take index
outside its axis, or an empty axis to reflect/wrap/repeat, sets the kernel's status flag
(failure kind INDEX: the runtime raises) and the kernel skips its loops.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import sympy
from llvmlite import ir

from backends.llvm import complex_ops
from backends.llvm.irutil import I8, I64, convert, is_complex, is_float, llvm_type, part_type
from backends.llvm.ops import _finish
from graphc.kernels import LOOP_VARS, Kernel
from graphc.node import Node

INDEX = 3  # the failure kind (status[1]) of an index outside its axis; the runtime raises


def _c(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


def _constant(ty: ir.Type, value: float) -> ir.Constant:
    """`value` as a constant of type `ty`, as numpy's astype would make it."""
    if is_float(ty):
        return ir.Constant(ty, float(value))
    if is_complex(ty):
        part = part_type(ty)
        return ir.Constant(
            ty, [ir.Constant(part, complex(value).real), ir.Constant(part, complex(value).imag)]
        )
    if ty == I8:  # bool
        return ir.Constant(ty, int(value != 0))
    return ir.Constant(ty, int(value))


def _zero(ty: ir.Type) -> ir.Constant:
    return _constant(ty, 0)


def _select(b: ir.IRBuilder, cond: ir.Value, yes: ir.Value, no: ir.Value, name: str) -> ir.Value:
    return b.select(cond, yes, no, name=name)


def _lt(b: ir.IRBuilder, x: ir.Value, y: ir.Value, name: str = "lt") -> ir.Value:
    return b.icmp_signed("<", x, y, name=name)


def _ge(b: ir.IRBuilder, x: ir.Value, y: ir.Value, name: str = "ge") -> ir.Value:
    return b.icmp_signed(">=", x, y, name=name)


def _clamp(b: ir.IRBuilder, x: ir.Value, lo: ir.Value, hi: ir.Value) -> ir.Value:
    """min(max(x, lo), hi) for i64 values."""
    x = _select(b, _lt(b, x, lo), lo, x, "clamp.lo")
    return _select(b, b.icmp_signed(">", x, hi, name="gt"), hi, x, "clamp.hi")


def _positive_mod(b: ir.IRBuilder, x: ir.Value, m: ir.Value) -> ir.Value:
    """x mod m in [0, m) for m > 0 (python's %)."""
    r = b.srem(x, m, name="rem")
    return _select(b, _lt(b, r, _c(0)), b.add(r, m, name="rem.up"), r, "mod")


@contextmanager
def _unless(self, b: ir.IRBuilder, bad: ir.Value | None) -> Iterator[None]:  # noqa: ANN001
    """Emit the body only when `bad` (an i1, or None: never) is false; when it is true, flag
    the kernel (the runtime raises: an index outside its axis) and skip the body."""
    if bad is None:
        yield
        return
    self.fail(b, bad, INDEX)
    with b.if_then(b.not_(bad, name="ok")):
        yield


def _any(b: ir.IRBuilder, flags: list) -> ir.Value | None:
    out = None
    for flag in flags:
        out = flag if out is None else b.or_(out, flag, name="any")
    return out


# buffers --------------------------------------------------------------------------------------


def _address(self, b: ir.IRBuilder, node: Node, index: list) -> ir.Value:  # noqa: ANN001
    """The address of node's element at the i64 values `index` (one per axis)."""
    offset = self.offset(b, node.shape, tuple(LOOP_VARS[: len(index)]), list(index))
    offset = self.checked(b, node, offset)  # a no-op unless GRAPHC_BOUNDS_CHECK=1
    return b.gep(self.pointer(b, node), [offset], name="at")


def _read(self, b: ir.IRBuilder, node: Node, index: list, ty: ir.Type) -> ir.Value:  # noqa: ANN001
    return convert(b, b.load(_address(self, b, node, index), name="ld"), ty, "cv")


def _guarded_read(self, b, node, index, ty, inside, otherwise):  # noqa: ANN001, ANN202
    """node[index] where `inside` holds, else `otherwise`; nothing is read outside."""
    with b.goto_entry_block():  # a static alloca: mem2reg makes it a phi
        slot = b.alloca(ty, name="pick")
    b.store(otherwise, slot)
    with b.if_then(inside):
        b.store(_read(self, b, node, index, ty), slot)
    return b.load(slot, name="picked")


# pad ------------------------------------------------------------------------------------------


def _pad_source(b, j, n, mode, before, after, concrete):  # noqa: ANN001, ANN202
    """The input index that padded position j (relative to the input's start: i - before)
    copies on an axis of size n, and whether it is inside (constant mode)."""
    if mode == "constant":
        inside = b.and_(_ge(b, j, _c(0)), _lt(b, j, n), name="inside")
        return _select(b, inside, j, _c(0), "src"), inside
    if mode == "edge":
        return _clamp(b, j, _c(0), b.sub(n, _c(1), name="last")), None
    if mode == "circular":
        if concrete:  # the widths are at most n (checked when the op was built): one wrap
            low = _select(b, _lt(b, j, _c(0)), b.add(j, n, name="wrap.lo"), j, "src")
            return _select(b, _ge(b, j, n), b.sub(j, n, name="wrap.hi"), low, "src"), None
        period = _select(b, _lt(b, n, _c(1)), _c(1), n, "period")
        return _positive_mod(b, j, period), None
    # reflect (numpy's: the edge is not repeated)
    last = b.sub(n, _c(1), name="last")
    if concrete:  # the widths are at most n - 1: one reflection
        low = _select(b, _lt(b, j, _c(0)), b.neg(j, name="mirror.lo"), j, "src")
        high = b.sub(b.add(last, last, name="twice"), j, name="mirror.hi")
        return _select(b, _ge(b, j, n), high, low, "src"), None
    period = _select(
        b, b.icmp_signed(">", n, _c(1), name="long"), b.add(last, last, name="p"), _c(1), "period"
    )
    m = _positive_mod(b, j, period)
    return _select(b, _ge(b, m, n), b.sub(period, m, name="back"), m, "src"), None


def _empty_axes(self, b, shape, widths, mode):  # noqa: ANN001, ANN202
    """Whether a padded symbolic axis is empty (nothing to reflect, wrap or repeat: numpy
    raises), or None when that cannot happen."""
    if mode == "constant":
        return None
    flags = [
        b.icmp_signed("==", self.size(b, d), _c(0), name="empty")
        for d, (before, after) in zip(shape, widths)
        if (before or after) and not d.is_number
    ]
    return _any(b, flags)


def _pad_sources(self, b, loops, in_shape, widths, mode):  # noqa: ANN001, ANN202
    """(source index per axis, inside flag or None) of the padded element at `loops`."""
    sources, inside = [], None
    for var, d, (before, after) in zip(loops, in_shape, widths):
        n = self.size(b, d)
        if before == 0 and after == 0:
            sources.append(var)
            continue
        j = b.sub(var, _c(before), name="j")
        src, ok = _pad_source(b, j, n, mode, before, after, sympy.sympify(d).is_number)
        sources.append(src)
        if ok is not None:
            inside = ok if inside is None else b.and_(inside, ok, name="inside")
    return sources, inside


def pad(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    (source,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    widths, mode = anchor.attrs["widths"], anchor.attrs["mode"]

    def element(loops: list) -> None:
        sources, inside = _pad_sources(self, b, loops, source.shape, widths, mode)
        if inside is None:
            value = _read(self, b, source, sources, ty)
        else:
            fill = _constant(ty, anchor.attrs["value"])
            value = _guarded_read(self, b, source, sources, ty, inside, fill)
        _finish(self, b, kernel, value, loops)

    with _unless(self, b, _empty_axes(self, b, source.shape, widths, mode)):
        self._nest(b, anchor.shape, element, "p")


def _scatter_target(self, kernel: Kernel) -> Node:  # noqa: ANN001
    """The node whose buffer a scatter accumulates into: the anchor (a scratch buffer when
    the kernel does not store it)."""
    anchor = kernel.anchor
    if anchor not in kernel.outputs:
        self.scratch(anchor)
    return anchor


def _zero_fill(self, b: ir.IRBuilder, node: Node, ty: ir.Type) -> None:  # noqa: ANN001
    self._nest(b, node.shape, lambda loops: b.store(_zero(ty), _address(self, b, node, loops)), "z")


def _add(b: ir.IRBuilder, x: ir.Value, y: ir.Value, ty: ir.Type) -> ir.Value:
    if is_float(ty):
        return b.fadd(x, y, name="acc")
    if is_complex(ty):
        return complex_ops.add(b, x, y)
    if ty == I8:  # bool: numpy's add is a logical or
        return b.or_(x, y, name="acc")
    return b.add(x, y, name="acc")


def _scatter_epilogue(self, b: ir.IRBuilder, kernel: Kernel, ty: ir.Type) -> None:  # noqa: ANN001
    """After a scatter into the anchor's buffer: the epilogue, element by element."""
    anchor = kernel.anchor
    if kernel.outputs == [anchor]:
        return

    def element(loops: list) -> None:
        value = b.load(_address(self, b, anchor, loops), name="scattered")
        _finish(self, b, kernel, value, loops)

    self._nest(b, anchor.shape, element, "e")


def pad_grad(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    (grad,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    widths, mode = anchor.attrs["widths"], anchor.attrs["mode"]
    target = _scatter_target(self, kernel)
    _zero_fill(self, b, target, ty)

    def element(loops: list) -> None:  # every padded position adds into the one it copies
        sources, _ = _pad_sources(self, b, loops, anchor.shape, widths, mode)
        at = _address(self, b, target, sources)
        g = convert(b, self.load(b, grad, tuple(LOOP_VARS[: grad.rank]), loops), ty, "g")
        b.store(_add(b, b.load(at, name="old"), g, ty), at)

    with _unless(self, b, _empty_axes(self, b, anchor.shape, widths, mode)):
        self._nest(b, grad.shape, element, "s")
        _scatter_epilogue(self, b, kernel, ty)


# slice ----------------------------------------------------------------------------------------


def _bound(self, b: ir.IRBuilder, value) -> ir.Value:  # noqa: ANN001
    return self.size(b, value if isinstance(value, sympy.Basic) else sympy.Integer(int(value)))


def _slice_start(self, b: ir.IRBuilder, start, step: int, n: ir.Value) -> ir.Value:  # noqa: ANN001
    """The first index python's slice(start, _, step).indices(n) visits."""
    if start is None:
        return _c(0) if step > 0 else b.sub(n, _c(1), name="start")
    s = _bound(self, b, start)
    negative = _lt(b, s, _c(0))
    s = _select(b, negative, b.add(s, n, name="from.end"), s, "start")
    if step > 0:
        return _clamp(b, s, _c(0), n)
    return _clamp(b, s, _c(-1), b.sub(n, _c(1), name="last"))


def _slice_starts(self, b: ir.IRBuilder, node: Node, shape: tuple) -> list:  # noqa: ANN001
    """(start, step) per axis of node's slices over an operand of `shape`."""
    out = []
    for (start, _, step), d in zip(node.attrs["slices"], shape):
        out.append((_slice_start(self, b, start, step, self.size(b, d)), step))
    return out


def slice_(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    (source,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    starts = _slice_starts(self, b, anchor, source.shape)
    bad = []
    for axis in anchor.attrs.get("index_axes", ()):  # a[k]: k must lie in [-n, n)
        n = self.size(b, source.shape[axis])
        k = _bound(self, b, anchor.attrs["slices"][axis][0])
        bad.append(b.or_(_lt(b, k, b.neg(n, name="minus.n")), _ge(b, k, n), name="outside"))

    def element(loops: list) -> None:
        index = [
            b.add(start, b.mul(var, _c(step), name="stride"), name="src")
            for var, (start, step) in zip(loops, starts)
        ]
        _finish(self, b, kernel, _read(self, b, source, index, ty), loops)

    with _unless(self, b, _any(b, bad)):
        self._nest(b, anchor.shape, element, "s")


def slice_grad(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    """out[o] = g[(o - start) / step] where o is a sliced position, else 0 (a gather)."""
    anchor = kernel.anchor
    (grad,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    starts = _slice_starts(self, b, anchor, anchor.shape)
    counts = [self.size(b, d) for d in grad.shape]

    def element(loops: list) -> None:
        index, inside = [], None
        for var, (start, step), count in zip(loops, starts, counts):
            delta = b.sub(var, start, name="delta")
            if step == 1:
                k, ok = delta, None
            elif step == -1:
                k, ok = b.neg(delta, name="k"), None
            else:
                k = b.sdiv(delta, _c(step), name="k")
                ok = b.icmp_signed("==", b.srem(delta, _c(step), name="r"), _c(0), name="on")
            within = b.and_(_ge(b, k, _c(0)), _lt(b, k, count), name="within")
            ok = within if ok is None else b.and_(ok, within, name="hit")
            inside = ok if inside is None else b.and_(inside, ok, name="inside")
            index.append(k)
        value = _guarded_read(self, b, grad, index, ty, inside, _zero(ty))
        _finish(self, b, kernel, value, loops)

    self._nest(b, anchor.shape, element, "o")


# concat ---------------------------------------------------------------------------------------


def concat(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    """One loop nest per operand, each writing its block of the output."""
    anchor = kernel.anchor
    axis = anchor.attrs["axis"]
    ty = llvm_type(anchor.dtype)
    offset = sympy.Integer(0)
    for k, piece in enumerate(anchor.inputs):
        shift = self.size(b, offset)

        def element(loops: list, piece: Node = piece, shift: ir.Value = shift) -> None:
            value = _read(self, b, piece, loops, ty)
            out = list(loops)
            out[axis] = b.add(loops[axis], shift, name="at.axis")
            _finish(self, b, kernel, value, out)

        self._nest(b, piece.shape, element, f"c{k}.")
        offset = offset + piece.shape[axis]


# take -----------------------------------------------------------------------------------------


def _index_table(self, b: ir.IRBuilder, index: np.ndarray) -> ir.GlobalVariable:  # noqa: ANN001
    flat = [int(v) for v in np.asarray(index).ravel()]
    ty = ir.ArrayType(I64, len(flat))
    table = ir.GlobalVariable(self.module, ty, name=self.module.get_unique_name("take.index"))
    table.global_constant = True
    table.linkage = "internal"
    table.initializer = ir.Constant(ty, flat)
    return table


def _take_index(self, b, table, shape, loops):  # noqa: ANN001, ANN202
    """index[loops] (a constant) as an i64."""
    flat = self.offset(b, shape, tuple(LOOP_VARS[: len(shape)]), loops)
    return b.load(b.gep(table, [_c(0), flat], inbounds=True, name="idx.at"), name="idx")


def _index_outside(b: ir.IRBuilder, index: np.ndarray, size: ir.Value) -> ir.Value | None:
    """Whether a value of the constant index lies outside [0, size) (a run-time size)."""
    if index.size == 0:
        return None
    if index.min() < 0:
        return ir.Constant(ir.IntType(1), 1)
    return _ge(b, _c(int(index.max())), size, "outside")


def take(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    (source,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    index = anchor.attrs["index"].array
    table = _index_table(self, b, index)
    size = self.size(b, source.shape[0])

    def element(loops: list) -> None:
        k = _take_index(self, b, table, anchor.shape, loops)
        _finish(self, b, kernel, _read(self, b, source, [k], ty), loops)

    with _unless(self, b, _index_outside(b, index, size)):
        self._nest(b, anchor.shape, element, "t")


def take_grad(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    (grad,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    index = anchor.attrs["index"].array
    table = _index_table(self, b, index)
    size = self.size(b, anchor.shape[0])
    target = _scatter_target(self, kernel)
    _zero_fill(self, b, target, ty)

    def element(loops: list) -> None:
        k = _take_index(self, b, table, grad.shape, loops)
        at = _address(self, b, target, [k])
        g = convert(b, self.load(b, grad, tuple(LOOP_VARS[: grad.rank]), loops), ty, "g")
        b.store(_add(b, b.load(at, name="old"), g, ty), at)

    with _unless(self, b, _index_outside(b, index, size)):
        self._nest(b, grad.shape, element, "t")
        _scatter_epilogue(self, b, kernel, ty)


# mse --------------------------------------------------------------------------------------


def mse(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    x, y = anchor.inputs
    ty = llvm_type(anchor.dtype)
    reduction = anchor.attrs["reduction"]

    def square(loops: list) -> ir.Value:
        d = b.fsub(_read(self, b, x, loops, ty), _read(self, b, y, loops, ty), name="d")
        return b.fmul(d, d, name="sq")

    if reduction == "none":
        self._nest(b, anchor.shape, lambda loops: _finish(self, b, kernel, square(loops), loops))
        return
    with b.goto_entry_block():
        acc = b.alloca(ty, name="acc")
    b.store(_zero(ty), acc)

    def add(loops: list) -> None:
        total = b.fadd(b.load(acc, name="old"), square(loops), name="sum", flags=["reassoc"])
        b.store(total, acc)

    self._nest(b, x.shape, add, "m")
    total = b.load(acc, name="total")
    if reduction == "mean":
        count = _c(1)
        for d in x.shape:
            count = b.mul(count, self.size(b, d), name="count")
        total = b.fdiv(total, b.sitofp(count, ty, name="n"), name="mean")
    _finish(self, b, kernel, total, [])
