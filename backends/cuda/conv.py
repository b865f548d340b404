"""Convolution and pooling kernels of the CUDA backend, each followed by its epilogue:
conv, conv_transpose, conv_wgrad (direct), im2col/col2im (the GEMM lowering's data
movement), max_pool, pool_argmax, pool_gather, pool_scatter, avg_pool, avg_pool_grad.

One thread per output element, looping over its taps, as the LLVM backend's loops
(backends/llvm/conv_ops.py, pool_ops.py): an input position is out*stride + k*dilation -
padding, checked against the input's extent; a position in the padding contributes 0 (-inf
for max) and is never loaded. The adjoints gather through `covering` (which output window
reads this input through tap k). pool_scatter is a scatter-add (shape_ops.scatter).
"""

from __future__ import annotations

from backends.cuda.render import INDEX, Function, Renderer, numel
from backends.cuda.scalar import convert, ctype, literal
from backends.cuda.shape_ops import scatter
from graphc.kernels import Kernel


def _source(fn: Function, strides, dilations, befores, pos: list, k: list, extent) -> tuple:  # noqa: ANN001
    """(clamped index, inside) of input position pos*stride + k*dilation - before per axis."""
    index, inside = [], []
    for p, kk, n, s, d, before in zip(pos, k, extent, strides, dilations, befores):
        at = fn.let("long long", f"(long long){p} * {s} + (long long){kk} * {d} - {before}", "at")
        ok = fn.let("bool", f"{at} >= 0 && {at} < {fn.size(n)}", "ok")
        inside.append(ok)
        index.append(fn.let("long long", f"{ok} ? {at} : 0", "safe"))
    return index, " && ".join(inside) or "true"


def _covering(fn: Function, pos: list, k: list, extents, strides, dilations, befores) -> tuple:  # noqa: ANN001
    """The output position q whose window reads input pos through tap k: pos + before -
    k*dilation = q*stride exactly with 0 <= q < extent; (clamped q per axis, exists?)."""
    index, inside = [], []
    for p, kk, m, s, d, before in zip(pos, k, extents, strides, dilations, befores):
        at = fn.let("long long", f"(long long){p} + {before} - (long long){kk} * {d}", "a")
        q = fn.let("long long", f"{at} / {s}", "q")
        ok = fn.let("bool", f"{at} % {s} == 0 && {at} >= 0 && {q} < {fn.size(m)}", "ok")
        inside.append(ok)
        index.append(fn.let("long long", f"{ok} ? {q} : 0", "safe"))
    return index, " && ".join(inside) or "true"


def _read(fn: Function, node, index: list, ty: str, inside: str, otherwise: str) -> str:  # noqa: ANN001
    value = convert(fn.at(node, index), ctype(node.dtype), ty)
    return f"(({inside}) ? {value} : {otherwise})"


def _pads(attrs: dict) -> list:
    return [before for before, _ in attrs["padding"]]


def conv(r: Renderer, kernel: Kernel) -> list:
    # y[n, o, pos] = sum_{c, k} x[n, g*Cg + c, pos*s + k*d - p] w[o, c, k]
    anchor = kernel.anchor
    x, w = anchor.inputs
    ty = ctype(anchor.dtype)
    attrs = anchor.attrs
    fn = r.function()
    with fn.threads(anchor.shape, "o") as loops:
        n, o, *pos = loops
        c_out_g = f"({fn.size(w.shape[0])} / {attrs['groups']})"
        group = fn.let("long long", f"{o} / {c_out_g}", "g")
        acc = fn.var(ty, literal(0, ty), "acc")
        with fn.serial(tuple(w.shape[1:]), "t") as inner:
            c, *k = inner
            index, inside = _source(
                fn, attrs["stride"], attrs["dilation"], _pads(attrs), pos, k, x.shape[2:]
            )
            channel = f"{group} * {fn.size(w.shape[1])} + {c}"
            xv = _read(fn, x, [n, channel, *index], ty, inside, literal(0, ty))
            wv = convert(fn.at(w, [o, c, *k]), ctype(w.dtype), ty)
            fn.line(f"{acc} += {xv} * {wv};")
        r.finish(fn, kernel, acc, loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def conv_wgrad(r: Renderer, kernel: Kernel) -> list:
    # dw[o, c, k] = sum_{n, pos} x[n, g*Cg + c, pos*s + k*d - p] y[n, o, pos]
    anchor = kernel.anchor
    x, y = anchor.inputs
    ty = ctype(anchor.dtype)
    attrs = anchor.attrs
    fn = r.function()
    with fn.threads(anchor.shape, "o") as loops:
        o, c, *k = loops
        c_out_g = f"({fn.size(y.shape[1])} / {attrs['groups']})"
        group = fn.let("long long", f"{o} / {c_out_g}", "g")
        channel = fn.let("long long", f"{group} * {fn.size(anchor.shape[1])} + {c}", "ch")
        acc = fn.var(ty, literal(0, ty), "acc")
        with fn.serial((y.shape[0], *y.shape[2:]), "t") as inner:
            n, *pos = inner
            index, inside = _source(
                fn, attrs["stride"], attrs["dilation"], _pads(attrs), pos, k, x.shape[2:]
            )
            xv = _read(fn, x, [n, channel, *index], ty, inside, literal(0, ty))
            yv = convert(fn.at(y, [n, o, *pos]), ctype(y.dtype), ty)
            fn.line(f"{acc} += {xv} * {yv};")
        r.finish(fn, kernel, acc, loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def conv_transpose(r: Renderer, kernel: Kernel) -> list:
    # x[n, g*Cg + c, i] = sum_{o in group, k} y[n, o, (i + p - k*d) / s] w[o, c, k] where the
    # division is exact and the position lies inside y
    anchor = kernel.anchor
    y, w = anchor.inputs
    ty = ctype(anchor.dtype)
    attrs = anchor.attrs
    groups = attrs["groups"]
    fn = r.function()
    with fn.threads(anchor.shape, "o") as loops:
        n, channel, *pos = loops
        c_in_g = fn.size(w.shape[1])
        group = fn.let("long long", f"{channel} / {c_in_g}", "g")
        c = fn.let("long long", f"{channel} % {c_in_g}", "c")
        c_out_g = fn.let("long long", f"{fn.size(w.shape[0])} / {groups}", "cog")
        acc = fn.var(ty, literal(0, ty), "acc")
        with fn.serial((w.shape[0] / groups, *w.shape[2:]), "t") as inner:
            oo, *k = inner
            o = fn.let("long long", f"{group} * {c_out_g} + {oo}", "oc")
            index, inside = _covering(
                fn, pos, k, y.shape[2:], attrs["stride"], attrs["dilation"], _pads(attrs)
            )
            yv = _read(fn, y, [n, o, *index], ty, inside, literal(0, ty))
            wv = convert(fn.at(w, [o, c, *k]), ctype(w.dtype), ty)
            fn.line(f"{acc} += {yv} * {wv};")
        r.finish(fn, kernel, acc, loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def _out_sizes(attrs: dict, spatial) -> list:  # noqa: ANN001
    out = []
    for n_axis, k, s, d, (p0, p1) in zip(
        spatial, attrs["kernel_size"], attrs["stride"], attrs["dilation"], attrs["padding"]
    ):
        out.append((n_axis + p0 + p1 - d * (k - 1) - 1) // s + 1)
    return out


def im2col(r: Renderer, kernel: Kernel) -> list:
    # cols[n, g, c*K + k, p] = x[n, g*Cg + c, pos(p)*s + k*d - pad] (0 in the padding)
    anchor = kernel.anchor
    (x,) = anchor.inputs
    ty = ctype(anchor.dtype)
    attrs = anchor.attrs
    taps = numel(tuple(attrs["kernel_size"]))
    fn = r.function()
    with fn.threads(anchor.shape, "o") as loops:
        n, g, row, p = loops
        c = fn.let("long long", f"{row} / {fn.size(taps)}", "c")
        k = fn.split(f"({row} % {fn.size(taps)})", tuple(attrs["kernel_size"]), "k")
        pos = fn.split(p, tuple(_out_sizes(attrs, x.shape[2:])), "q")
        index, inside = _source(
            fn, attrs["stride"], attrs["dilation"], _pads(attrs), pos, k, x.shape[2:]
        )
        c_in_g = f"({fn.size(x.shape[1])} / {attrs['groups']})"
        channel = f"{g} * {c_in_g} + {c}"
        r.finish(fn, kernel, _read(fn, x, [n, channel, *index], ty, inside, literal(0, ty)), loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def col2im(r: Renderer, kernel: Kernel) -> list:
    # x[n, g*Cg + c, i] = sum_k cols[n, g, c*K + k, q] where i + pad - k*d = q*s exactly
    anchor = kernel.anchor
    (cols,) = anchor.inputs
    ty = ctype(anchor.dtype)
    attrs = anchor.attrs
    sizes = attrs["kernel_size"]
    taps = numel(tuple(sizes))
    out_sizes = _out_sizes(attrs, attrs["input_size"])
    fn = r.function()
    with fn.threads(anchor.shape, "o") as loops:
        n, channel, *pos = loops
        c_in_g = f"({fn.size(anchor.shape[1])} / {attrs['groups']})"
        g = fn.let("long long", f"{channel} / {c_in_g}", "g")
        c = fn.let("long long", f"{channel} % {c_in_g}", "c")
        acc = fn.var(ty, literal(0, ty), "acc")
        with fn.serial(tuple(sizes), "t") as k:
            index, inside = _covering(
                fn, pos, k, out_sizes, attrs["stride"], attrs["dilation"], _pads(attrs)
            )
            q_flat = fn.offset(tuple(out_sizes), index)
            k_flat = fn.offset(tuple(sizes), k)
            row = f"{c} * {fn.size(taps)} + {k_flat}"
            fn.line(f"{acc} += {_read(fn, cols, [n, g, row, q_flat], ty, inside, literal(0, ty))};")
        r.finish(fn, kernel, acc, loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


# pooling --------------------------------------------------------------------------------------


def _window(fn: Function, attrs: dict, pos: list, k: list, extent) -> tuple:  # noqa: ANN001
    ones = [1] * len(pos)
    return _source(fn, attrs["stride"], ones, attrs["padding"], pos, k, extent)


def max_pool(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (x,) = anchor.inputs
    ty = ctype(anchor.dtype)
    fn = r.function()
    with fn.threads(anchor.shape, "o") as loops:
        n, c, *pos = loops
        best = fn.var(ty, f"gc_lowest(({ty})0)", "best")
        with fn.serial(tuple(anchor.attrs["window"]), "k") as k:
            index, inside = _window(fn, anchor.attrs, pos, k, x.shape[2:])
            v = _read(fn, x, [n, c, *index], ty, inside, f"gc_lowest(({ty})0)")
            fn.line(f"{best} = gc_max<{ty}>({best}, {v});")  # nan wins its window
        r.finish(fn, kernel, best, loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def pool_argmax(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (x,) = anchor.inputs
    tx = ctype(x.dtype)
    fn = r.function()
    with fn.threads(anchor.shape, "o") as loops:
        n, c, *pos = loops
        best = fn.var(tx, f"gc_lowest(({tx})0)", "best")
        where = fn.var("long long", "-1", "where")
        with fn.serial(tuple(anchor.attrs["window"]), "k") as k:
            index, inside = _window(fn, anchor.attrs, pos, k, x.shape[2:])
            v = fn.let(tx, f"{fn.at(x, [n, c, *index])}", "v")
            # the first max; the first nan beats any number
            better = f"({v} > {best} || ({v} != {v} && {best} == {best}))"
            take = fn.let("bool", f"({inside}) && ({where} < 0 || {better})", "take")
            with fn.block(f"if ({take})"):
                fn.line(f"{best} = {v};")
                fn.line(f"{where} = {fn.offset(tuple(x.shape[2:]), index)};")
        r.finish(fn, kernel, convert(where, "long long", ctype(anchor.dtype)), loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def _plane_offset(fn: Function, node, n: str, c: str, flat: str, plane_shape) -> str:  # noqa: ANN001
    """The offset of (n, c, flat) in node's buffer, flagging a flat index outside the plane."""
    plane = fn.size(numel(tuple(plane_shape)))
    bad = fn.let("bool", f"{flat} < 0 || {flat} >= {plane}", "bad")
    fn.fail(bad, INDEX)
    safe = f"({bad} ? 0 : {flat})"
    return f"({n} * {fn.size(node.shape[1])} + {c}) * {plane} + {safe}"


def pool_gather(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    x, indices = anchor.inputs
    ty = ctype(anchor.dtype)
    fn = r.function()
    with fn.threads(anchor.shape, "o") as loops:
        n, c, *_ = loops
        flat = fn.let("long long", f"(long long){fn.at(indices, loops)}", "flat")
        offset = _plane_offset(fn, x, n, c, flat, x.shape[2:])
        value = convert(f"{fn.buf(x)}[{offset}]", ctype(x.dtype), ty)
        r.finish(fn, kernel, value, loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def pool_scatter(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    g, indices = anchor.inputs
    ty = ctype(anchor.dtype)
    plane = tuple(anchor.shape[2:])

    def body(fn: Function, loops: list) -> tuple:
        n, c, *_ = loops
        flat = fn.let("long long", f"(long long){fn.at(indices, loops)}", "flat")
        bad = fn.let("bool", f"{flat} < 0 || {flat} >= {fn.size(numel(plane))}", "bad")
        fn.fail(bad, INDEX)
        safe = fn.let("long long", f"{bad} ? 0 : {flat}", "safe")
        spatial = fn.split(safe, plane, "x")
        return [n, c, *spatial], convert(fn.at(g, loops), ctype(g.dtype), ty)

    return scatter(r, kernel, g.shape, body)


def avg_pool(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (x,) = anchor.inputs
    ty = ctype(anchor.dtype)
    window = tuple(anchor.attrs["window"])
    fn = r.function()
    with fn.threads(anchor.shape, "o") as loops:
        n, c, *pos = loops
        total = fn.var(ty, literal(0, ty), "total")
        with fn.serial(window, "k") as k:
            index, inside = _window(fn, anchor.attrs, pos, k, x.shape[2:])
            fn.line(f"{total} += {_read(fn, x, [n, c, *index], ty, inside, literal(0, ty))};")
        r.finish(fn, kernel, f"{total} / {literal(float(numel(window)), ty)}", loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def avg_pool_grad(r: Renderer, kernel: Kernel) -> list:
    # dx[n, c, i] = sum over windows q containing i (i + pad - k = q * stride) of g[n, c, q] / F
    anchor = kernel.anchor
    (g,) = anchor.inputs
    ty = ctype(anchor.dtype)
    attrs = anchor.attrs
    window = tuple(attrs["window"])
    fn = r.function()
    with fn.threads(anchor.shape, "o") as loops:
        n, c, *pos = loops
        total = fn.var(ty, literal(0, ty), "total")
        with fn.serial(window, "k") as k:
            ones = [1] * len(k)
            index, inside = _covering(
                fn, pos, k, g.shape[2:], attrs["stride"], ones, attrs["padding"]
            )
            fn.line(f"{total} += {_read(fn, g, [n, c, *index], ty, inside, literal(0, ty))};")
        r.finish(fn, kernel, f"{total} / {literal(float(numel(window)), ty)}", loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


KERNELS = {
    "conv": conv,
    "conv_transpose": conv_transpose,
    "conv_wgrad": conv_wgrad,
    "im2col": im2col,
    "col2im": col2im,
    "max_pool": max_pool,
    "pool_argmax": pool_argmax,
    "pool_gather": pool_gather,
    "pool_scatter": pool_scatter,
    "avg_pool": avg_pool,
    "avg_pool_grad": avg_pool_grad,
}

__all__ = ["KERNELS"]
