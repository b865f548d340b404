"""Data-movement op kernels of the CUDA backend: pad, pad_grad, slice, slice_grad, concat,
take and take_grad, each followed by its kernel's elementwise epilogue.

Gathers (pad, slice, slice_grad, concat, take) are one thread per output element computing
the source index on each axis. The scatter-adds (pad_grad, take_grad; pool_scatter in
conv.py) are three functions: zero the anchor's buffer, add every input element into the
element it copies (atomicAdd), then run the epilogue over the anchor (an anchor that is not
stored gets a scratch buffer). Sizes and slice bounds may be symbolic (run-time arguments).
An index outside its axis, or an empty axis to reflect/wrap/repeat, sets the status flag
(the runtime raises) and the kernel does no work.
"""

from __future__ import annotations

import numpy as np
import sympy

from backends.cuda.render import INDEX, Function, Renderer, numel
from backends.cuda.scalar import convert, ctype, literal
from graphc.kernels import Kernel


def _value(fn: Function, node, index: list, ty: str) -> str:  # noqa: ANN001
    return convert(fn.load(node, index), ctype(node.dtype), ty)


def _guarded(fn: Function, node, index: list, ty: str, inside: str, otherwise: str) -> str:  # noqa: ANN001
    """node[index] where `inside` holds, else `otherwise`; nothing is read outside."""
    read = convert(fn.at(node, index), ctype(node.dtype), ty)
    return fn.let(ty, f"({inside}) ? {read} : {otherwise}", "pick")


def _unless(fn: Function, bad: str | None):  # noqa: ANN202
    """Flag the kernel when `bad` holds; the caller's body runs only when it does not."""
    if bad is None:
        return fn.block("")
    flag = fn.let("bool", bad, "bad")
    fn.fail(flag, INDEX)
    return fn.block(f"if (!{flag})")


# pad ------------------------------------------------------------------------------------------


def _pad_source(fn: Function, j: str, n: str, mode: str, concrete: bool) -> tuple:
    """(source index, inside flag or None) of padded position j (relative to the input)."""
    if mode == "constant":
        inside = fn.let("bool", f"{j} >= 0 && {j} < {n}", "inside")
        return fn.let("long long", f"{inside} ? {j} : 0", "src"), inside
    if mode == "edge":
        return fn.let("long long", f"gc_clamp<long long>({j}, 0, {n} - 1)", "src"), None
    if mode == "circular":
        if concrete:  # widths at most n: one wrap
            value = f"{j} < 0 ? {j} + {n} : ({j} >= {n} ? {j} - {n} : {j})"
            return fn.let("long long", value, "src"), None
        period = fn.let("long long", f"{n} < 1 ? 1 : {n}", "period")
        return fn.let("long long", f"gc_pmod<long long>({j}, {period})", "src"), None
    # reflect (numpy's: the edge is not repeated)
    if concrete:  # widths at most n - 1: one reflection
        value = f"{j} < 0 ? -{j} : ({j} >= {n} ? 2 * ({n} - 1) - {j} : {j})"
        return fn.let("long long", value, "src"), None
    period = fn.let("long long", f"{n} > 1 ? 2 * ({n} - 1) : 1", "period")
    m = fn.let("long long", f"gc_pmod<long long>({j}, {period})", "m")
    return fn.let("long long", f"{m} >= {n} ? {period} - {m} : {m}", "src"), None


def _empty_axes(fn: Function, shape: tuple, widths, mode: str) -> str | None:  # noqa: ANN001
    """Whether a padded symbolic axis is empty (numpy raises), or None if it cannot be."""
    if mode == "constant":
        return None
    flags = [
        f"{fn.size(d)} == 0"
        for d, (before, after) in zip(shape, widths)
        if (before or after) and not sympy.sympify(d).is_number
    ]
    return " || ".join(flags) if flags else None


def _pad_sources(fn: Function, loops: list, in_shape: tuple, widths, mode: str) -> tuple:  # noqa: ANN001
    sources, inside = [], []
    for var, d, (before, after) in zip(loops, in_shape, widths):
        if before == 0 and after == 0:
            sources.append(var)
            continue
        j = fn.let("long long", f"(long long){var} - {before}", "j")
        concrete = sympy.sympify(d).is_number
        src, ok = _pad_source(fn, j, f"(long long){fn.size(d)}", mode, concrete)
        sources.append(src)
        if ok is not None:
            inside.append(ok)
    return sources, " && ".join(inside) if inside else None


def pad(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (source,) = anchor.inputs
    ty = ctype(anchor.dtype)
    widths, mode = anchor.attrs["widths"], anchor.attrs["mode"]
    fn = r.function()
    with _unless(fn, _empty_axes(fn, source.shape, widths, mode)):
        with fn.threads(anchor.shape, "p") as loops:
            sources, inside = _pad_sources(fn, loops, source.shape, widths, mode)
            if inside is None:
                value = _value(fn, source, sources, ty)
            else:
                fill = literal(anchor.attrs["value"], ty)
                value = _guarded(fn, source, sources, ty, inside, fill)
            r.finish(fn, kernel, value, loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def scatter(r: Renderer, kernel: Kernel, domain: tuple, body, bad=None) -> list:  # noqa: ANN001
    """The three functions of a scatter-add into the anchor: zero it, body(fn, loops) over
    `domain` (it returns (target index, value) for an atomic add), then the epilogue."""
    anchor = kernel.anchor
    ty = ctype(anchor.dtype)
    if anchor not in kernel.outputs:
        r.scratch(anchor)
    zero = r.function("_zero")
    with zero.threads(anchor.shape, "z") as loops:
        zero.store(anchor, literal(0, ty), loops)
    add = r.function("_scatter")
    with _unless(add, bad(add) if bad else None):
        with add.threads(domain, "s") as loops:
            index, value = body(add, loops)
            add.line(f"gc_atomic_add(&{add.at(anchor, index)}, {value});")
    steps = [
        r.launch(zero, "threads", (numel(anchor.shape),)),
        r.launch(add, "threads", (numel(domain),)),
    ]
    if kernel.outputs != [anchor]:
        fn = r.function("_epilogue")
        with fn.threads(anchor.shape, "e") as loops:
            r.finish(fn, kernel, fn.load(anchor, loops), loops)
        steps.append(r.launch(fn, "threads", (numel(anchor.shape),)))
    return steps


def pad_grad(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (grad,) = anchor.inputs
    ty = ctype(anchor.dtype)
    widths, mode = anchor.attrs["widths"], anchor.attrs["mode"]

    def body(fn: Function, loops: list) -> tuple:  # every padded position adds into its source
        sources, _ = _pad_sources(fn, loops, anchor.shape, widths, mode)
        return sources, _value(fn, grad, loops, ty)

    bad = lambda fn: _empty_axes(fn, anchor.shape, widths, mode)  # noqa: E731
    return scatter(r, kernel, grad.shape, body, bad)


# slice ----------------------------------------------------------------------------------------


def _bound(fn: Function, value) -> str:  # noqa: ANN001
    return f"(long long){fn.size(value if isinstance(value, sympy.Basic) else int(value))}"


def _starts(fn: Function, node, shape: tuple) -> list:  # noqa: ANN001
    """(start, step) per axis of node's slices over an operand of `shape`."""
    out = []
    for (start, _, step), d in zip(node.attrs["slices"], shape):
        n = f"(long long){fn.size(d)}"
        if start is None:
            first = "0LL" if step > 0 else f"({n} - 1)"
        else:
            first = f"gc_slice_start({_bound(fn, start)}, {n}, {'true' if step > 0 else 'false'})"
        out.append((fn.let("long long", first, "start"), step))
    return out


def slice_(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (source,) = anchor.inputs
    ty = ctype(anchor.dtype)
    fn = r.function()
    starts = _starts(fn, anchor, source.shape)
    bad = []
    for axis in anchor.attrs.get("index_axes", ()):  # a[k]: k must lie in [-n, n)
        n = f"(long long){fn.size(source.shape[axis])}"
        k = _bound(fn, anchor.attrs["slices"][axis][0])
        bad.append(f"({k} < -{n} || {k} >= {n})")
    with _unless(fn, " || ".join(bad) if bad else None):
        with fn.threads(anchor.shape, "s") as loops:
            index = [f"{start} + {var} * {step}LL" for var, (start, step) in zip(loops, starts)]
            r.finish(fn, kernel, _value(fn, source, index, ty), loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def slice_grad(r: Renderer, kernel: Kernel) -> list:
    """out[o] = g[(o - start) / step] where o is a sliced position, else 0 (a gather)."""
    anchor = kernel.anchor
    (grad,) = anchor.inputs
    ty = ctype(anchor.dtype)
    fn = r.function()
    starts = _starts(fn, anchor, anchor.shape)
    with fn.threads(anchor.shape, "o") as loops:
        index, inside = [], []
        for var, (start, step), count in zip(loops, starts, grad.shape):
            delta = fn.let("long long", f"{var} - {start}", "delta")
            k = fn.let("long long", f"{delta} / {step}LL", "k")
            if step not in (1, -1):
                inside.append(f"{delta} % {step}LL == 0")
            inside.append(f"{k} >= 0 && {k} < {fn.size(count)}")
            index.append(k)
        value = _guarded(fn, grad, index, ty, " && ".join(inside), literal(0, ty))
        r.finish(fn, kernel, value, loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


# concat ---------------------------------------------------------------------------------------


def concat(r: Renderer, kernel: Kernel) -> list:
    """One grid-stride loop per operand, each writing its block of the output."""
    anchor = kernel.anchor
    axis = anchor.attrs["axis"]
    ty = ctype(anchor.dtype)
    fn = r.function()
    offset = sympy.Integer(0)
    for piece in anchor.inputs:
        with fn.threads(piece.shape, "c") as loops:
            value = _value(fn, piece, loops, ty)
            out = list(loops)
            out[axis] = f"{loops[axis]} + {fn.size(offset)}"
            r.finish(fn, kernel, value, out)
        offset = offset + piece.shape[axis]
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


# take -----------------------------------------------------------------------------------------


def _table(r: Renderer, index: np.ndarray) -> str:
    name = f"gc_take_{r.prefix}k{r.number}_{len(r.globals)}"
    flat = [str(int(v)) for v in np.asarray(index).ravel()] or ["0"]
    r.globals.append(f"__device__ const long long {name}[{len(flat)}] = {{{', '.join(flat)}}};")
    return name


def _outside(fn: Function, index: np.ndarray, size) -> str | None:  # noqa: ANN001
    if index.size == 0:
        return None
    if index.min() < 0:
        return "true"
    return f"{int(index.max())}LL >= (long long){fn.size(size)}"


def take(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (source,) = anchor.inputs
    ty = ctype(anchor.dtype)
    index = anchor.attrs["index"].array
    table = _table(r, index)
    fn = r.function()
    with _unless(fn, _outside(fn, index, source.shape[0])):
        with fn.threads(anchor.shape, "t") as loops:
            k = fn.let("long long", f"{table}[{fn.offset(anchor.shape, loops)}]", "k")
            r.finish(fn, kernel, _value(fn, source, [k], ty), loops)
    return [r.launch(fn, "threads", (numel(anchor.shape),))]


def take_grad(r: Renderer, kernel: Kernel) -> list:
    anchor = kernel.anchor
    (grad,) = anchor.inputs
    ty = ctype(anchor.dtype)
    index = anchor.attrs["index"].array
    table = _table(r, index)

    def body(fn: Function, loops: list) -> tuple:
        k = fn.let("long long", f"{table}[{fn.offset(grad.shape, loops)}]", "k")
        return [k], _value(fn, grad, loops, ty)

    return scatter(r, kernel, grad.shape, body, lambda fn: _outside(fn, index, anchor.shape[0]))


KERNELS = {
    "pad": pad,
    "pad_grad": pad_grad,
    "slice": slice_,
    "slice_grad": slice_grad,
    "concat": concat,
    "take": take,
    "take_grad": take_grad,
}

__all__ = ["KERNELS", "scatter"]
