"""Row-wise op kernels of the CUDA backend: softmax, log_softmax, logsumexp, softmax
cross-entropy, one_hot and mse, each followed by its kernel's elementwise epilogue.

A row (the elements a result depends on) is one block: its threads share the row's
elements, block reductions (warp shuffles, then shared memory) give the max and the sum of
exp(x - max), as the numpy references compute them (the max first: exp never overflows).
Labels outside [0, K) set the status flag (the runtime raises) and read class 0 instead.
"""

from __future__ import annotations

from backends.cuda.render import LABELS, Function, Renderer, numel, reduce_block
from backends.cuda.scalar import convert, ctype, literal
from graphc.kernels import Kernel


def _row_stats(r: Renderer, fn: Function, source, axes: list, outer: list, keep: list, ty: str):  # noqa: ANN001, ANN202
    """(max, sum of exp(x - max)) over `axes` of `source` at the kept variables `outer`, and
    full(inner) -> the source's loop variables, read(inner) -> x there (as `ty`)."""
    extent = tuple(source.shape[k] for k in axes)

    def full(inner: list) -> list:
        loops = [None] * source.rank
        for k, var in zip(keep, outer):
            loops[k] = var
        for k, var in zip(axes, inner):
            loops[k] = var
        return loops

    def read(inner: list) -> str:
        return convert(fn.load(source, full(inner)), ctype(source.dtype), ty)

    top = fn.var(ty, f"gc_lowest(({ty})0)", "top")
    with fn.strided(extent) as inner:
        fn.line(f"{top} = gc_max<{ty}>({top}, {read(inner)});")
    m = fn.let(ty, f"gc_block_reduce<{ty}>({top}, gc_maxop(), gc_lowest(({ty})0))", "max")
    total = fn.var(ty, literal(0, ty), "total")
    with fn.strided(extent) as inner:
        fn.line(f"{total} += gc_exp({read(inner)} - {m});")
    s = fn.let(ty, f"gc_block_reduce<{ty}>({total}, gc_sum(), ({ty})0)", "sum")
    return m, s, full, read, extent


def _rows(r: Renderer, fn: Function, shape: tuple, keep: list):  # noqa: ANN001, ANN202
    kept = tuple(shape[k] for k in keep)
    return kept, fn.grid_stride(fn.size(numel(kept)), "block")


def softmax(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (source,) = anchor.inputs
    axis = anchor.attrs["axis"]
    ty = ctype(anchor.dtype)
    keep = [k for k in range(source.rank) if k != axis]
    fn = r.function(cooperative=True)
    kept, rows = _rows(r, fn, source.shape, keep)
    with rows as row:
        outer = fn.split(row, kept, "o")
        m, s, full, read, extent = _row_stats(r, fn, source, [axis], outer, keep, ty)
        with fn.strided(extent, "w") as inner:
            if anchor.op == "log_softmax":
                value = f"{read(inner)} - {m} - gc_log({s})"
            else:
                value = f"gc_exp({read(inner)} - {m}) / {s}"
            r.finish(fn, kernel, value, full(inner))
    return [r.launch(fn, "rows", (numel(kept),), (reduce_block(extent), 1, 1))]


def logsumexp(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (source,) = anchor.inputs
    axes = list(anchor.attrs["axes"])
    ty = ctype(anchor.dtype)
    keep = [k for k in range(source.rank) if k not in axes]
    fn = r.function(cooperative=True)
    kept, rows = _rows(r, fn, source.shape, keep)
    with rows as row:
        outer = fn.split(row, kept, "o")
        m, s, _, _, extent = _row_stats(r, fn, source, axes, outer, keep, ty)
        with fn.block("if (threadIdx.x == 0)"):
            # all -inf: log(0) = -inf, not nan
            shift = f"(gc_fabs({m}) < gc_inf(({ty})0) ? {m} : ({ty})0)"
            r.finish(fn, kernel, f"gc_log({s}) + {shift}", r.output_loops(anchor, outer, keep))
    return [r.launch(fn, "rows", (numel(kept),), (reduce_block(extent), 1, 1))]


def _label(fn: Function, labels, outer: list, classes: str) -> str:  # noqa: ANN001
    """The label at `outer` as a long long, 0 after flagging one outside [0, K)."""
    raw = fn.load(labels, outer)
    label = fn.let("long long", f"(long long)({raw})", "label")
    bad = fn.let("bool", f"{label} < 0 || {label} >= {classes}", "bad")
    fn.fail(bad, LABELS)
    return fn.let("long long", f"{bad} ? 0 : {label}", "safe")


def cross_entropy(r: Renderer, kernel: Kernel) -> list:
    # loss = sum_j q'_j (logZ - z_j), q' = (1 - e) q + e / K, logZ = max + log(sum exp(z - max))
    anchor = kernel.anchor
    logits, target = anchor.inputs
    ty = ctype(anchor.dtype)
    last = logits.rank - 1
    keep = list(range(last))
    eps = anchor.attrs["label_smoothing"]
    fn = r.function(cooperative=True)
    kept, rows = _rows(r, fn, logits.shape, keep)
    with rows as row:
        outer = fn.split(row, kept, "o")
        m, s, full, read, extent = _row_stats(r, fn, logits, [last], outer, keep, ty)
        log_z = fn.let(ty, f"{m} + gc_log({s})", "logz")
        classes = fn.size(logits.shape[last])
        spread = fn.let(ty, f"{literal(eps, ty)} / ({ty})({classes})", "spread")
        acc = fn.var(ty, literal(0, ty), "acc")
        if target.dtype.startswith("float"):
            with fn.strided(extent, "q") as inner:
                q = convert(fn.load(target, full(inner)), ctype(target.dtype), ty)
                q = f"({literal(1.0 - eps, ty)} * {q} + {spread})"
                fn.line(f"{acc} += {q} * ({log_z} - {read(inner)});")
            total = fn.let(ty, f"gc_block_reduce<{ty}>({acc}, gc_sum(), ({ty})0)", "loss")
            with fn.block("if (threadIdx.x == 0)"):
                r.finish(fn, kernel, total, outer)
        else:
            if eps:
                with fn.strided(extent, "z") as inner:
                    fn.line(f"{acc} += {read(inner)};")
            zsum = fn.let(ty, f"gc_block_reduce<{ty}>({acc}, gc_sum(), ({ty})0)", "zsum")
            with fn.block("if (threadIdx.x == 0)"):
                label = _label(fn, target, outer, classes)
                picked = convert(fn.load(logits, [*outer, label]), ctype(logits.dtype), ty)
                value = fn.let(ty, f"{literal(1.0 - eps, ty)} * ({log_z} - {picked})", "main")
                if eps:
                    mean_nll = f"({log_z} - {zsum} / ({ty})({classes}))"
                    value = fn.let(ty, f"{value} + {literal(eps, ty)} * {mean_nll}", "smooth")
                r.finish(fn, kernel, value, outer)
    return [r.launch(fn, "rows", (numel(kept),), (reduce_block(extent), 1, 1))]


def one_hot(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (labels,) = anchor.inputs
    ty = ctype(anchor.dtype)
    depth = anchor.attrs["depth"]
    fn = r.function()
    with fn.threads(anchor.shape, "o") as loops:
        label = _label(fn, labels, loops[:-1], fn.size(depth))
        value = f"({label} == {loops[-1]} ? {literal(1, ty)} : {literal(0, ty)})"
        r.finish(fn, kernel, value, loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def mse(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    x, y = anchor.inputs
    ty = ctype(anchor.dtype)
    reduction = anchor.attrs["reduction"]

    def square(fn: Function, loops: list) -> str:
        a = convert(fn.load(x, loops), ctype(x.dtype), ty)
        b = convert(fn.load(y, loops), ctype(y.dtype), ty)
        d = fn.let(ty, f"{a} - {b}", "d")
        return f"{d} * {d}"

    if reduction == "none":
        fn = r.function()
        with fn.threads(anchor.shape, "o") as loops:
            r.finish(fn, kernel, square(fn, loops), loops)
        return [r.launch(fn, "threads", (numel(anchor.shape),))]
    fn = r.function(cooperative=True)
    with fn.grid_stride("1", "block"):
        acc = fn.var(ty, literal(0, ty), "acc")
        with fn.strided(x.shape, "m") as loops:
            fn.line(f"{acc} += {square(fn, loops)};")
        total = fn.let(ty, f"gc_block_reduce<{ty}>({acc}, gc_sum(), ({ty})0)", "total")
        with fn.block("if (threadIdx.x == 0)"):
            if reduction == "mean":
                total = fn.let(ty, f"{total} / ({ty})({fn.size(numel(x.shape))})", "mean")
            r.finish(fn, kernel, total, [])
    return [r.launch(fn, "rows", (1,), (reduce_block(x.shape), 1, 1))]


KERNELS = {
    "softmax": softmax,
    "log_softmax": softmax,
    "logsumexp": logsumexp,
    "softmax_cross_entropy": cross_entropy,
    "one_hot": one_hot,
    "mse": mse,
}

__all__ = ["KERNELS"]
