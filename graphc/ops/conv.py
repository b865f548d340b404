"""Convolution as three primitives that are each other's derivatives.

`conv(x, w)` is cross-correlation, as the deep-learning frameworks compute it:
x is (N, C_in, *spatial), w is (C_out, C_in/groups, *kernel) with 1, 2 or 3 spatial
axes, and

    y[n, o, i] = sum_{c, k} x_padded[n, g*C_in/groups + c, i*stride + k*dilation] * w[o, c, k]

with output size floor((W + P_before + P_after - dilation*(F - 1) - 1) / stride) + 1.
The trilinear form T(x, w, y) = <conv(x, w), y> has three partial derivatives, and
each is a primitive here:

    conv(x, w)            = dT/dy   (the forward map)
    conv_transpose(y, w)  = dT/dx   (the adjoint in x: the "fractionally strided" conv)
    conv_wgrad(x, y)      = dT/dw   (the adjoint in w)

so the derivative of any of them is one of them again, and every order of
derivative stays in the family. Padding modes other than zeros are a pad node in
front (graphc/ops/shape.py), which has its own derivative. `algo` is kept on the
node for the lowering pass (graphc/passes/conv.py): "direct", "gemm", "fft", "winograd",
"auto".
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from graphc.node import FLOAT_DTYPES, Node
from graphc.ops import shape as shp
from graphc.ops.registry import apply, defjvp, defvjp, op, promote
from graphc.ops.sources import coerce
from graphc.shapes import dims_equal, shape_error

ALGOS = ("auto", "direct", "gemm", "fft", "winograd")
PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "circular": "circular", "edge": "edge"}
_ATTRS = ("stride", "padding", "dilation", "groups", "algo")


def out_size(n: Any, pads: tuple, k: Any, stride: int, dilation: int) -> sympy.Expr:
    """floor((n + P_before + P_after - dilation*(k - 1) - 1) / stride) + 1."""
    span = n + pads[0] + pads[1] - dilation * (k - 1) - 1
    return sympy.floor(sympy.sympify(span) / stride) + 1


def _spatial(node_shape: tuple) -> tuple:
    return tuple(node_shape[2:])


def _check_operands(name: str, x: Node, w: Node, groups: int, c_axis_x: int = 1) -> None:
    if w.rank not in (3, 4, 5):
        raise shape_error(
            name, "w must be (C_out, C_in/groups, *kernel) with 1-3 spatial axes", w.shape
        )
    if x.rank != w.rank:
        raise shape_error(
            name,
            f"x must be (N, C, *spatial) with {w.rank - 2} spatial axes like w",
            x.shape,
            w.shape,
        )
    if x.dtype not in FLOAT_DTYPES or w.dtype not in FLOAT_DTYPES:
        raise shape_error(name, f"needs float operands, got {x.dtype} and {w.dtype}")


def _infer_conv(inputs: tuple, attrs: dict) -> tuple:
    x, w = inputs
    groups = attrs["groups"]
    _check_operands("conv", x, w, groups)
    if not dims_equal(x.shape[1], w.shape[1] * groups):
        raise shape_error(
            "conv",
            f"x has {x.shape[1]} channels but w expects C_in/groups = {w.shape[1]} "
            f"with groups={groups}",
            x.shape,
            w.shape,
        )
    if w.shape[0].is_number and int(w.shape[0]) % groups:
        raise shape_error(
            "conv", f"C_out = {w.shape[0]} is not divisible by groups={groups}", w.shape
        )
    sizes = []
    for n, k, pads, s, d in zip(
        x.shape[2:], w.shape[2:], attrs["padding"], attrs["stride"], attrs["dilation"]
    ):
        m = out_size(n, pads, k, s, d)
        if m.is_number and m < 1:
            raise shape_error(
                "conv",
                f"the kernel (size {k}, dilation {d}) is larger than the padded input "
                f"({n} + {pads[0]} + {pads[1]})",
                x.shape,
                w.shape,
            )
        sizes.append(m)
    return (x.shape[0], w.shape[0], *sizes), promote(x.dtype, w.dtype)


def _infer_conv_transpose(inputs: tuple, attrs: dict) -> tuple:
    y, w = inputs
    groups = attrs["groups"]
    _check_operands("conv_transpose", y, w, groups)
    if not dims_equal(y.shape[1], w.shape[0]):
        raise shape_error(
            "conv_transpose",
            f"y has {y.shape[1]} channels, w has C_out = {w.shape[0]}",
            y.shape,
            w.shape,
        )
    size = attrs["input_size"]
    for n, m, k, pads, s, d in zip(
        size, y.shape[2:], w.shape[2:], attrs["padding"], attrs["stride"], attrs["dilation"]
    ):
        if not dims_equal(out_size(n, pads, k, s, d), m):
            raise shape_error(
                "conv_transpose",
                f"an input of size {n} does not convolve to size {m} "
                f"(kernel {k}, stride {s}, padding {pads}, dilation {d})",
                y.shape,
                w.shape,
            )
    return (y.shape[0], w.shape[1] * groups, *size), promote(y.dtype, w.dtype)


def _infer_conv_wgrad(inputs: tuple, attrs: dict) -> tuple:
    x, y = inputs
    groups = attrs["groups"]
    kernel = attrs["kernel_size"]
    if x.rank != y.rank or x.rank != len(kernel) + 2:
        raise shape_error(
            "conv_wgrad", "x and y must have the kernel's spatial rank", x.shape, y.shape
        )
    return (y.shape[1], x.shape[1] / groups, *kernel), promote(x.dtype, y.dtype)


# the numpy reference: a loop over kernel offsets, each a strided window of the padded input --


def _window(offset: tuple, stride: tuple, dilation: tuple, out: tuple) -> tuple:
    """The slices of the padded input that kernel offset `offset` meets, for every output."""
    return tuple(
        slice(k * d, k * d + s * (m - 1) + 1, s)
        for k, s, d, m in zip(offset, stride, dilation, out)
    )


def _subscripts(spec: str, d: int) -> str:
    """An einsum spec with * standing for the d spatial axes ("ngc*" -> "ngcxy" for d = 2)."""
    return spec.replace("*", "xyz"[:d])


def _grouped(a: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, *sp) -> (N, groups, C/groups, *sp)."""
    return a.reshape(a.shape[0], groups, a.shape[1] // groups, *a.shape[2:])


def _ungrouped(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], a.shape[1] * a.shape[2], *a.shape[3:])


def _grouped_w(w: np.ndarray, groups: int) -> np.ndarray:
    """(C_out, C_in/g, *k) -> (g, C_out/g, C_in/g, *k)."""
    return w.reshape(groups, w.shape[0] // groups, *w.shape[1:])


def _pad_widths(attrs: Any) -> list:
    return [(0, 0), (0, 0), (0, 0)] + [tuple(p) for p in attrs["padding"]]


@op("conv", _infer_conv, kind="conv", doc="cross-correlation (N, C_in, *sp) * (C_out, C_in/g, *k)")
def _conv_impl(ctx: Any, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    a = ctx.attrs
    g = a["groups"]
    xp = np.pad(_grouped(x.astype(ctx.dtype, copy=False), g), _pad_widths(a))
    wg = _grouped_w(w.astype(ctx.dtype, copy=False), g)
    out = ctx.shape[2:]
    y = np.zeros((x.shape[0], g, wg.shape[1], *out), dtype=ctx.dtype)
    for offset in np.ndindex(*w.shape[2:]):
        patch = xp[(Ellipsis, *_window(offset, a["stride"], a["dilation"], out))]
        y += np.einsum(_subscripts("ngc*,goc->ngo*", len(out)), patch, wg[(Ellipsis, *offset)])
    return _ungrouped(y)


@op("conv_transpose", _infer_conv_transpose, kind="conv", doc="the adjoint of conv in x")
def _conv_transpose_impl(ctx: Any, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    a = ctx.attrs
    g = a["groups"]
    yg = _grouped(y.astype(ctx.dtype, copy=False), g)
    wg = _grouped_w(w.astype(ctx.dtype, copy=False), g)
    size = ctx.shape[2:]
    padded = tuple(n + p0 + p1 for n, (p0, p1) in zip(size, a["padding"]))
    xp = np.zeros((y.shape[0], g, wg.shape[2], *padded), dtype=ctx.dtype)
    out = y.shape[2:]
    for offset in np.ndindex(*w.shape[2:]):
        window = _window(offset, a["stride"], a["dilation"], out)
        spec = _subscripts("ngo*,goc->ngc*", len(out))
        xp[(Ellipsis, *window)] += np.einsum(spec, yg, wg[(Ellipsis, *offset)])
    crop = tuple(slice(p0, p0 + n) for n, (p0, _) in zip(size, a["padding"]))
    return _ungrouped(xp[(Ellipsis, *crop)])


@op("conv_wgrad", _infer_conv_wgrad, kind="conv", doc="the adjoint of conv in w")
def _conv_wgrad_impl(ctx: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    a = ctx.attrs
    g = a["groups"]
    xp = np.pad(_grouped(x.astype(ctx.dtype, copy=False), g), _pad_widths(a))
    yg = _grouped(y.astype(ctx.dtype, copy=False), g)
    kernel = ctx.shape[2:]
    wg = np.zeros((g, yg.shape[2], xp.shape[2], *kernel), dtype=ctx.dtype)
    out = y.shape[2:]
    for offset in np.ndindex(*kernel):
        patch = xp[(Ellipsis, *_window(offset, a["stride"], a["dilation"], out))]
        wg[(Ellipsis, *offset)] = np.einsum(_subscripts("ngc*,ngo*->goc", len(out)), patch, yg)
    return wg.reshape(ctx.shape)


# the user's API ------------------------------------------------------------------------------


def _per_axis(name: str, what: str, value: Any, d: int) -> tuple:
    values = (value,) * d if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != d or any(not isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"{name}: {what} must be an int or {d} ints, got {value!r}")
    values = tuple(operator.index(v) for v in values)
    if any(v < 1 for v in values):
        raise ValueError(f"{name}: {what} must be >= 1, got {value!r}")
    return values


def _padding_pairs(name: str, padding: Any, kernel: tuple, dilation: tuple, stride: tuple) -> tuple:
    d = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * d
        if not all(k.is_number for k in kernel):
            raise ValueError(f"{name}: padding={padding!r} needs a concrete kernel size")
        spans = [dil * (int(k) - 1) for k, dil in zip(kernel, dilation)]
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' needs stride 1, got {stride}")
            # the extra padding of an even kernel goes at the end, as TensorFlow and PyTorch
            return tuple((span // 2, span - span // 2) for span in spans)
        if padding == "full":
            return tuple((span, span) for span in spans)
        raise ValueError(f"{name}: padding must be an int, a tuple, 'valid', 'same' or 'full'")
    if isinstance(padding, (int, np.integer)):
        padding = (padding,) * d
    pairs = []
    for p in tuple(padding):
        pair = (p, p) if isinstance(p, (int, np.integer)) else tuple(p)
        if len(pair) != 2 or any(not isinstance(v, (int, np.integer)) or v < 0 for v in pair):
            raise ValueError(f"{name}: bad padding {padding!r} (ints >= 0, one or a pair per axis)")
        pairs.append((int(pair[0]), int(pair[1])))
    if len(pairs) != d:
        raise ValueError(f"{name}: padding {padding!r} must give {d} spatial axes")
    return tuple(pairs)


def _settings(
    name: str, w: Node, stride: Any, padding: Any, dilation: Any, groups: Any, algo: str
) -> dict:
    d = w.rank - 2
    if d not in (1, 2, 3):
        raise shape_error(
            name, "w must be (C_out, C_in/groups, *kernel) with 1-3 spatial axes", w.shape
        )
    if algo not in ALGOS:
        raise ValueError(f"{name}: unknown algo {algo!r}; known: {', '.join(ALGOS)}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    stride = _per_axis(name, "stride", stride, d)
    dilation = _per_axis(name, "dilation", dilation, d)
    pairs = _padding_pairs(name, padding, tuple(w.shape[2:]), dilation, stride)
    return {
        "stride": stride,
        "padding": pairs,
        "dilation": dilation,
        "groups": int(groups),
        "algo": algo,
    }


def conv(
    x: Any,
    w: Any,
    stride: Any = 1,
    padding: Any = 0,
    padding_mode: str = "zeros",
    dilation: Any = 1,
    groups: int = 1,
    algo: str = "auto",
) -> Node:
    """Cross-correlation of x (N, C_in, *spatial) with w (C_out, C_in/groups, *kernel).

    padding: an int, one int or (before, after) pair per spatial axis, "valid" (none),
    "same" (output size = input size, stride 1; an even kernel pads one more at the end)
    or "full" (n + k - 1 outputs). padding_mode: "zeros", "reflect" (mirror),
    "circular" (periodic) or "edge". algo: "direct", "gemm" (im2col + matmul), "fft",
    "winograd" (F(4, 3)-style minimal filtering: 2-D, stride 1, kernels of 2 to 7 taps; other
    cases fall back to gemm) or "auto" (a cost model picks; f.explain() says which).
    """
    x, w = coerce([x, w], "conv")
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"conv: unknown padding_mode {padding_mode!r}; known: {', '.join(PADDING_MODES)}"
        )
    attrs = _settings("conv", w, stride, padding, dilation, groups, algo)
    if padding_mode != "zeros" and any(p != (0, 0) for p in attrs["padding"]):
        widths = ((0, 0), (0, 0), *attrs["padding"])
        x = shp.pad(x, widths, mode=PADDING_MODES[padding_mode])
        attrs["padding"] = ((0, 0),) * (w.rank - 2)
    return apply("conv", (x, w), **attrs)


def convolve(x: Any, w: Any, **options: Any) -> Node:
    """Convolution in the signal-processing sense: conv with the kernel flipped on every
    spatial axis, so convolve(x, w) = conv(x, w[..., ::-1, ::-1]) (the frameworks' "conv"
    is cross-correlation)."""
    x, w = coerce([x, w], "convolve")
    flip = (slice(None), slice(None)) + (slice(None, None, -1),) * (w.rank - 2)
    return conv(x, shp.getitem(w, flip), **options)


def conv_transpose(
    y: Any,
    w: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    output_shape: Sequence[Any] | None = None,
    algo: str = "auto",
) -> Node:
    """The adjoint of conv(x, w, stride, padding, dilation, groups) with zero padding, as a
    function of x: <conv(x, w), y> = <x, conv_transpose(y, w)>.

    output_shape is x's spatial size; by default the smallest one,
    (m - 1) * stride - P_before - P_after + dilation * (k - 1) + 1; give it when
    stride > 1 leaves it ambiguous (PyTorch's output_padding).
    """
    y, w = coerce([y, w], "conv_transpose")
    attrs = _settings("conv_transpose", w, stride, padding, dilation, groups, algo)
    d = w.rank - 2
    if output_shape is None:
        size = tuple(
            (m - 1) * s - p0 - p1 + dil * (k - 1) + 1
            for m, k, (p0, p1), s, dil in zip(
                y.shape[2:], w.shape[2:], attrs["padding"], attrs["stride"], attrs["dilation"]
            )
        )
    else:
        size = tuple(sympy.sympify(n) for n in output_shape)
        if len(size) != d:
            raise shape_error(
                "conv_transpose", f"output_shape must give {d} spatial sizes", y.shape
            )
    return apply(
        "conv_transpose", (y, w), input_size=tuple(sympy.sympify(n) for n in size), **attrs
    )


# derivative rules: T(x, w, y) = <conv(x, w), y> ----------------------------------------------


def _common(node: Node) -> dict:
    return {k: node.attrs[k] for k in _ATTRS}


def _conv(x: Node, w: Node, attrs: dict) -> Node:
    return apply("conv", (x, w), **attrs)


def _conv_t(y: Node, w: Node, size: tuple, attrs: dict) -> Node:
    return apply("conv_transpose", (y, w), input_size=tuple(size), **attrs)


def _conv_w(x: Node, y: Node, kernel: tuple, attrs: dict) -> Node:
    return apply("conv_wgrad", (x, y), kernel_size=tuple(kernel), **attrs)


def _add(a: Node | None, b: Node | None) -> Node | None:
    from graphc.ops.adjoint import add_any

    return add_any(a, b)


@defvjp("conv")
def _conv_vjp(node: Node, g: Node) -> list:
    x, w = node.inputs
    a = _common(node)
    return [_conv_t(g, w, _spatial(x.shape), a), _conv_w(x, g, _spatial(w.shape), a)]


@defjvp("conv")
def _conv_jvp(node: Node, tangents: tuple) -> Node | None:
    x, w = node.inputs
    tx, tw = tangents
    a = _common(node)
    return _add(None if tx is None else _conv(tx, w, a), None if tw is None else _conv(x, tw, a))


@defvjp("conv_transpose")
def _conv_transpose_vjp(node: Node, g: Node) -> list:
    y, w = node.inputs
    a = _common(node)
    return [_conv(g, w, a), _conv_w(g, y, _spatial(w.shape), a)]


@defjvp("conv_transpose")
def _conv_transpose_jvp(node: Node, tangents: tuple) -> Node | None:
    y, w = node.inputs
    ty, tw = tangents
    a = _common(node)
    size = node.attrs["input_size"]
    first = None if ty is None else _conv_t(ty, w, size, a)
    return _add(first, None if tw is None else _conv_t(y, tw, size, a))


@defvjp("conv_wgrad")
def _conv_wgrad_vjp(node: Node, g: Node) -> list:
    x, y = node.inputs
    a = _common(node)
    return [_conv_t(y, g, _spatial(x.shape), a), _conv(x, g, a)]


@defjvp("conv_wgrad")
def _conv_wgrad_jvp(node: Node, tangents: tuple) -> Node | None:
    x, y = node.inputs
    tx, ty = tangents
    a = _common(node)
    kernel = node.attrs["kernel_size"]
    first = None if tx is None else _conv_w(tx, y, kernel, a)
    return _add(first, None if ty is None else _conv_w(x, ty, kernel, a))


# im2col / col2im: the patches of x as matrix columns, and their adjoint ----------------------


def _infer_im2col(inputs: tuple, attrs: dict) -> tuple:
    (x,) = inputs
    g = attrs["groups"]
    kernel = attrs["kernel_size"]
    outs = [
        out_size(n, pads, k, s, d)
        for n, k, pads, s, d in zip(
            x.shape[2:], kernel, attrs["padding"], attrs["stride"], attrs["dilation"]
        )
    ]
    rows = x.shape[1] / g * sympy.prod(kernel)
    return (x.shape[0], sympy.Integer(g), rows, sympy.prod(outs)), x.dtype


@op("im2col", _infer_im2col, kind="conv", doc="patches of x: (N, C, *sp) -> (N, g, C/g*K, P)")
def _im2col_impl(ctx: Any, x: np.ndarray) -> np.ndarray:
    a = ctx.attrs
    g = a["groups"]
    kernel = a["kernel_size"]
    xp = np.pad(_grouped(x, g), _pad_widths(a))
    out = tuple(
        (n - d * (k - 1) - 1) // s + 1
        for n, k, s, d in zip(xp.shape[3:], kernel, a["stride"], a["dilation"])
    )
    cols = np.empty((x.shape[0], g, xp.shape[2], int(np.prod(kernel)), *out), dtype=ctx.dtype)
    for j, offset in enumerate(np.ndindex(*kernel)):
        cols[:, :, :, j] = xp[(Ellipsis, *_window(offset, a["stride"], a["dilation"], out))]
    return cols.reshape(ctx.shape)


def _infer_col2im(inputs: tuple, attrs: dict) -> tuple:
    (cols,) = inputs
    channels = cols.shape[1] * cols.shape[2] / sympy.prod(attrs["kernel_size"])
    return (cols.shape[0], channels, *attrs["input_size"]), cols.dtype


@op("col2im", _infer_col2im, kind="conv", doc="the adjoint of im2col: columns summed back")
def _col2im_impl(ctx: Any, cols: np.ndarray) -> np.ndarray:
    a = ctx.attrs
    g = a["groups"]
    kernel = a["kernel_size"]
    size = ctx.shape[2:]
    padded = tuple(n + p0 + p1 for n, (p0, p1) in zip(size, a["padding"]))
    out = tuple(
        (n - d * (k - 1) - 1) // s + 1
        for n, k, s, d in zip(padded, kernel, a["stride"], a["dilation"])
    )
    taps = int(np.prod(kernel))
    blocks = cols.reshape(cols.shape[0], g, cols.shape[2] // taps, taps, *out)  # N may be 0
    xp = np.zeros((cols.shape[0], g, blocks.shape[2], *padded), dtype=ctx.dtype)
    for j, offset in enumerate(np.ndindex(*kernel)):
        xp[(Ellipsis, *_window(offset, a["stride"], a["dilation"], out))] += blocks[:, :, :, j]
    crop = tuple(slice(p0, p0 + n) for n, (p0, _) in zip(size, a["padding"]))
    return _ungrouped(xp[(Ellipsis, *crop)])


_PATCH_ATTRS = ("kernel_size", "stride", "padding", "dilation", "groups")


def im2col(x: Node, attrs: dict) -> Node:
    return apply("im2col", (x,), **{k: attrs[k] for k in _PATCH_ATTRS})


def col2im(cols: Node, input_size: tuple, attrs: dict) -> Node:
    patch = {k: attrs[k] for k in _PATCH_ATTRS}
    return apply("col2im", (cols,), input_size=tuple(input_size), **patch)


@defvjp("im2col")
def _im2col_vjp(node: Node, g: Node) -> list:
    return [col2im(g, _spatial(node.inputs[0].shape), node.attrs)]


@defjvp("im2col")
def _im2col_jvp(node: Node, tangents: tuple) -> Node:
    return im2col(tangents[0], node.attrs)


@defvjp("col2im")
def _col2im_vjp(node: Node, g: Node) -> list:
    return [im2col(g, node.attrs)]


@defjvp("col2im")
def _col2im_jvp(node: Node, tangents: tuple) -> Node:
    return col2im(tangents[0], node.attrs["input_size"], node.attrs)
