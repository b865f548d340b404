"""Row-wise op kernels of the LLVM backend: softmax, log_softmax, logsumexp, softmax
cross-entropy and one_hot, each followed by its kernel's elementwise epilogue.

They are methods of codegen.ModuleBuilder (`self`), written as functions here to keep
codegen.py short. Each computes, per row, the max, the sum of exp(x - max) and then the
result, as the numpy references do (subtracting the max first, so exp never overflows).
Labels outside [0, K) set the kernel's status flag, and the runtime raises.
"""

from __future__ import annotations

import sympy
from llvmlite import ir

from backends.llvm import parallel, scalar
from backends.llvm.irutil import I64, convert, for_range, is_float, llvm_type
from backends.llvm.scalar import Emitter
from graphc.kernels import (
    LOOP_VARS,
    Kernel,
    normal_index,
    operand_index,
    root_index,
    statement_indices,
)


def _math(self, b: ir.IRBuilder, ty: ir.Type) -> Emitter:  # noqa: ANN001
    return Emitter(b, ty, {}, self.math)


def _finish(self, b: ir.IRBuilder, kernel: Kernel, value: ir.Value, loops: list) -> None:  # noqa: ANN001
    """Run the kernel's epilogue on the anchor's value at `loops` and store the outputs.

    Epilogue statements may differ from the anchor's shape by size-1 axes (a unit reshape
    inserts or drops them) and by broadcasting, so each statement is evaluated at its own
    index, derived from its consumer's: the sinks of the epilogue (the statements nothing
    in the kernel reads) have the anchor's shape and take the loop variables as they are."""
    anchor = kernel.anchor
    epilogue = kernel.split()[1]
    members = set(epilogue)
    own = statement_indices(epilogue, lambda n: root_index(n.shape, anchor.shape))
    anchor_index = tuple(LOOP_VARS[: anchor.rank])
    cache = {(anchor, normal_index(anchor.shape, anchor_index)): value}

    def get(node, index: tuple) -> ir.Value:  # noqa: ANN001
        key = (node, normal_index(node.shape, index))
        if key in cache:
            return cache[key]
        if node is anchor:
            raise NotImplementedError(
                f"llvm backend: kernel {kernel.name}: its epilogue reads {anchor.op} at "
                f"{key[1]}, not where the loop computes it"
            )
        if node in members:
            args = [get(i, operand_index(node, i, index)) for i in node.inputs]
            found = scalar.lower(b, node, args, self.math, lambda e: self.size(b, e))
        else:
            found = self.load(b, node, key[1], loops)
        cache[key] = found
        return found

    for node in kernel.outputs:
        index = anchor_index if node is anchor else own[node]
        self.store(b, node, get(node, index), normal_index(node.shape, index), loops)


SHORT_ROW = 32  # static rows up to this length are emitted unrolled (see _short_row)


def _row_length(shape: tuple, axes: list) -> int | None:
    """The static element count of a row over `axes` when it is at most SHORT_ROW."""
    count = sympy.Integer(1)
    for k in axes:
        count *= sympy.sympify(shape[k])
    if count.is_Integer and int(count) <= SHORT_ROW:
        return int(count)
    return None


def _finite_or_zero(b: ir.IRBuilder, math: Emitter, m: ir.Value, ty: ir.Type) -> ir.Value:
    """m where it is finite, else 0 (the shift of logsumexp: an all -inf row gives log(0))."""
    finite = b.fcmp_ordered("<", math.call("fabs", m), ir.Constant(ty, float("inf")), name="fin")
    return b.select(finite, m, ir.Constant(ty, 0.0), name="shift")


def _short_row(self, b, source, axes, outer, keep, ty, finite=False):  # noqa: ANN001, ANN202
    """(max, sum of exp(x - max), per column: (loops, x, exp(x - max))) of a short static
    row, as straight-line code: the row loop around it becomes the innermost loop, which
    LLVM's loop vectoriser runs across rows (a 10-long row loop never fills a vector), and
    each exp is computed once. `finite`: exp(x - shift) with the max replaced by 0 where it
    is infinite (logsumexp's shift)."""
    math = _math(self, b, ty)
    index = tuple(LOOP_VARS[: source.rank])
    extent = [int(source.shape[k]) for k in axes]
    columns = []
    for flat in range(_row_length(source.shape, axes)):
        loops = [None] * source.rank
        for k, var in zip(keep, outer):
            loops[k] = var
        for k, size in reversed(list(zip(axes, extent))):
            loops[k] = ir.Constant(I64, flat % size)
            flat //= size
        columns.append((loops, convert(b, self.load(b, source, index, loops), ty, "x")))
    m = ir.Constant(ty, float("-inf"))
    for _, x in columns:
        m = math.call("maximum", m, x)
    shift = _finite_or_zero(b, math, m, ty) if finite else m
    total = ir.Constant(ty, 0.0)
    rows = []
    for loops, x in columns:
        e = math.call("exp", b.fsub(x, shift, name="shifted"))
        total = b.fadd(total, e, name="acc", flags=["reassoc", "nsz"])
        rows.append((loops, x, e))
    return m, total, rows


def _row_stats(self, b, source, axes, outer, keep, ty, finite=False):  # noqa: ANN001, ANN202
    """(max, sum of exp(x - max)) over `axes` of `source` at the kept loop variables `outer`
    (`finite`: as in _short_row)."""
    math = _math(self, b, ty)
    rank = source.rank
    top = parallel.entry_alloca(b, ty, "top")
    total = parallel.entry_alloca(b, ty, "total")
    b.store(ir.Constant(ty, float("-inf")), top)
    b.store(ir.Constant(ty, 0.0), total)
    index = tuple(LOOP_VARS[:rank])

    def full(inner: list) -> list:
        loops = [None] * rank
        for k, var in zip(keep, outer):
            loops[k] = var
        for k, var in zip(axes, inner):
            loops[k] = var
        return loops

    def read(inner: list) -> ir.Value:
        return convert(b, self.load(b, source, index, full(inner)), ty, "x")

    extent = tuple(source.shape[k] for k in axes)
    self._nest(
        b,
        extent,
        lambda inner: b.store(math.call("maximum", b.load(top, name="m"), read(inner)), top),
        "a",
    )
    m = b.load(top, name="max")
    shift = _finite_or_zero(b, math, m, ty) if finite else m

    def add_exp(inner: list) -> None:
        shifted = b.fsub(read(inner), shift, name="shifted")
        b.store(
            b.fadd(
                b.load(total, name="s"),
                math.call("exp", shifted),
                name="acc",
                flags=["reassoc", "nsz"],
            ),
            total,
        )

    self._nest(b, extent, add_exp, "e")
    return m, b.load(total, name="sum"), full, read


def softmax(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    (source,) = anchor.inputs
    axis = anchor.attrs["axis"]
    ty = llvm_type(anchor.dtype)
    keep = [k for k in range(source.rank) if k != axis]
    math = _math(self, b, ty)

    def short_row(outer: list) -> None:
        m, s, columns = _short_row(self, b, source, [axis], outer, keep, ty)
        log_s = math.call("log", s) if anchor.op == "log_softmax" else None
        for loops, x, e in columns:
            if anchor.op == "log_softmax":
                shifted = b.fsub(x, m, name="shifted")
                value = b.fsub(shifted, log_s, name="logp")
            else:
                value = b.fdiv(e, s, name="p")
            _finish(self, b, kernel, value, loops)

    def row(outer: list) -> None:
        m, s, full, read = _row_stats(self, b, source, [axis], outer, keep, ty)
        log_s = math.call("log", s) if anchor.op == "log_softmax" else None

        def write(inner: list) -> None:
            shifted = b.fsub(read(inner), m, name="shifted")
            if anchor.op == "log_softmax":
                value = b.fsub(shifted, log_s, name="logp")
            else:
                value = b.fdiv(math.call("exp", shifted), s, name="p")
            _finish(self, b, kernel, value, full(inner))

        self._nest(b, (source.shape[axis],), write, "w")

    rows = tuple(source.shape[k] for k in keep)
    short = _row_length(source.shape, [axis]) is not None
    parallel.nest(self, b, rows, short_row if short else row, "o", _ROW_COST, (source.shape[axis],))


def logsumexp(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    (source,) = anchor.inputs
    axes = list(anchor.attrs["axes"])
    ty = llvm_type(anchor.dtype)
    keep = [k for k in range(source.rank) if k not in axes]
    math = _math(self, b, ty)

    def row(outer: list) -> None:
        if _row_length(source.shape, axes) is not None:
            m, s, _ = _short_row(self, b, source, axes, outer, keep, ty, finite=True)
        else:
            m, s, _, _ = _row_stats(self, b, source, axes, outer, keep, ty, finite=True)
        shift = _finite_or_zero(b, math, m, ty)  # all -inf: log(0) + 0 = -inf
        value = b.fadd(math.call("log", s), shift, name="lse")
        _finish(self, b, kernel, value, self._output_loops(anchor, outer, keep))

    rows = tuple(source.shape[k] for k in keep)
    parallel.nest(self, b, rows, row, "o", _ROW_COST, tuple(source.shape[k] for k in axes))


_ROW_COST = 24  # per element of a row: two passes with exp, max, sums and the epilogue


def _label(self, b, labels, outer, classes):  # noqa: ANN001, ANN202
    """The int label at `outer` as an i64, clamped into [0, K) after flagging a bad one."""
    raw = self.load(b, labels, tuple(LOOP_VARS[: labels.rank]), outer)
    label = convert(b, raw, I64, "label")
    bad = b.or_(
        b.icmp_signed("<", label, ir.Constant(I64, 0), name="below"),
        b.icmp_signed(">=", label, classes, name="above"),
        name="bad",
    )
    self.fail(b, bad)
    return b.select(bad, ir.Constant(I64, 0), label, name="safe")


def cross_entropy(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    # loss = sum_j q'_j (logZ - z_j), q' = (1 - e) q + e / K, logZ = max + log(sum exp(z - max))
    anchor = kernel.anchor
    logits, target = anchor.inputs
    ty = llvm_type(anchor.dtype)
    last = logits.rank - 1
    keep = list(range(last))
    eps = anchor.attrs["label_smoothing"]
    math = _math(self, b, ty)
    short = _row_length(logits.shape, [last]) is not None

    def row(outer: list) -> None:
        classes = self.size(b, logits.shape[last])
        if short:
            m, s, columns = _short_row(self, b, logits, [last], outer, keep, ty)

            def each(fn) -> None:  # noqa: ANN001 - fn(loops, x) per element of the row
                for loops, x, _ in columns:
                    fn(loops, x)

        else:
            m, s, full, read = _row_stats(self, b, logits, [last], outer, keep, ty)

            def each(fn) -> None:  # noqa: ANN001
                self._nest(
                    b, (logits.shape[last],), lambda inner: fn(full(inner), read(inner)), "q"
                )

        log_z = b.fadd(m, math.call("log", s), name="logz")
        total = parallel.entry_alloca(b, ty, "loss.acc")
        b.store(ir.Constant(ty, 0.0), total)
        k_float = b.sitofp(classes, ty, name="k")
        spread = b.fdiv(ir.Constant(ty, eps), k_float, name="spread")
        if is_float(llvm_type(target.dtype)):

            def add(loops: list, x: ir.Value) -> None:
                q = convert(
                    b, self.load(b, target, tuple(LOOP_VARS[: target.rank]), loops), ty, "q"
                )
                q = b.fadd(b.fmul(ir.Constant(ty, 1.0 - eps), q, name="qs"), spread, name="q2")
                term = b.fmul(q, b.fsub(log_z, x, name="nll"), name="term")
                b.store(
                    b.fadd(b.load(total, name="t"), term, name="tsum", flags=["reassoc", "nsz"]),
                    total,
                )

            each(add)
            value = b.load(total, name="loss")
        else:
            label = _label(self, b, target, outer, classes)
            if short:  # selected among the row's values: an indexed load keeps LLVM from
                picked = ir.Constant(ty, 0.0)  # vectorising across rows (it may alias the output)
                for c, (_, x, _) in enumerate(columns):
                    hit = b.icmp_signed("==", label, ir.Constant(I64, c), name="hit")
                    picked = b.select(hit, x, picked, name="zt")
            else:
                picked = convert(
                    b,
                    self.load(b, logits, tuple(LOOP_VARS[: logits.rank]), list(outer) + [label]),
                    ty,
                    "zt",
                )
            value = b.fmul(
                ir.Constant(ty, 1.0 - eps), b.fsub(log_z, picked, name="nll"), name="main"
            )
            if eps:

                def add_z(loops: list, x: ir.Value) -> None:
                    b.store(
                        b.fadd(b.load(total, name="t"), x, name="zsum", flags=["reassoc", "nsz"]),
                        total,
                    )

                each(add_z)
                mean_nll = b.fsub(
                    log_z, b.fdiv(b.load(total, name="sz"), k_float, name="zm"), name="mnll"
                )
                value = b.fadd(
                    value, b.fmul(ir.Constant(ty, eps), mean_nll, name="smooth"), name="loss"
                )
        _finish(self, b, kernel, value, list(outer))

    rows = tuple(logits.shape[k] for k in keep)
    parallel.nest(self, b, rows, row, "o", _ROW_COST, (logits.shape[last],))


def one_hot(self, b: ir.IRBuilder, kernel: Kernel) -> None:  # noqa: ANN001
    anchor = kernel.anchor
    (labels,) = anchor.inputs
    ty = llvm_type(anchor.dtype)
    depth = ir.Constant(I64, anchor.attrs["depth"])

    def element(outer: list) -> None:
        label = _label(self, b, labels, outer, depth)
        with for_range(b, depth, "c") as c:
            hit = b.icmp_signed("==", label, c, name="hit")
            one, zero = (
                (ir.Constant(ty, 1.0), ir.Constant(ty, 0.0))
                if is_float(ty)
                else (ir.Constant(ty, 1), ir.Constant(ty, 0))
            )
            _finish(self, b, kernel, b.select(hit, one, zero, name="onehot"), list(outer) + [c])

    self._nest(b, labels.shape, element, "o")
