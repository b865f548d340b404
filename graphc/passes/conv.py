"""Lowerings of the convolution family: direct, im2col + GEMM, FFT; "auto" asks the cost model.

conv(x, w) with algo:
  "direct"  the conv node itself: the backend loops over the kernel window.
  "gemm"    im2col(x) -> (N, g, C/g*K, P) columns, then one matmul with w as a
            (g, C_out/g, C/g*K) matrix; a 1x1 kernel with stride 1 and no padding is a
            plain matmul on reshaped x (no im2col).
  "fft"     zero-pad, rfft of input and flipped kernel over the spatial axes, multiply and
            sum over input channels, irfft, crop (and subsample for stride > 1).
conv_transpose and conv_wgrad (the derivatives) lower to GEMM forms too: col2im(w^T y)
and y im2col(x)^T.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy

from graphc.node import Node
from graphc.ops import conv as conv_ops
from graphc.ops import elementwise as ew_ops
from graphc.ops import fft as fft_ops
from graphc.ops import reduce as red
from graphc.ops import shape as shp
from graphc.ops.linalg import matmul
from graphc.ops.registry import apply
from graphc.passes import costs
from graphc.passes.lower import lowering


def _w_matrix(w: Node, groups: int) -> Node:
    """(C_out, C_in/g, *k) -> (g, C_out/g, C_in/g*K)."""
    c_out = w.shape[0]
    return shp.reshape(w, (groups, c_out / groups, sympy.prod(w.shape[1:])))


def _swap(m: Node) -> Node:
    axes = list(range(m.rank))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return shp.transpose(m, axes)


def _is_pointwise(node: Node, kernel: tuple) -> bool:
    a = node.attrs
    return (
        all(k == 1 for k in kernel)
        and all(s == 1 for s in a["stride"])
        and all(p == (0, 0) for p in a["padding"])
    )


def _patch_attrs(node: Node, kernel: tuple) -> dict:
    attrs = dict(node.attrs)
    attrs["kernel_size"] = tuple(kernel)
    return attrs


def conv_gemm(node: Node) -> Node:
    x, w = node.inputs
    g = node.attrs["groups"]
    kernel = tuple(w.shape[2:])
    n, c_in = x.shape[0], x.shape[1]
    if _is_pointwise(node, kernel):
        cols = shp.reshape(x, (n, g, c_in / g, sympy.prod(x.shape[2:])))
    else:
        cols = conv_ops.im2col(x, _patch_attrs(node, kernel))
    y = matmul(_w_matrix(w, g), cols)  # (g, Co/g, C/g*K) @ (N, g, C/g*K, P) -> (N, g, Co/g, P)
    return shp.reshape(y, node.shape)


def conv_transpose_gemm(node: Node) -> Node:
    y, w = node.inputs
    g = node.attrs["groups"]
    kernel = tuple(w.shape[2:])
    n = y.shape[0]
    y2 = shp.reshape(y, (n, g, y.shape[1] / g, sympy.prod(y.shape[2:])))
    cols = matmul(_swap(_w_matrix(w, g)), y2)  # (N, g, C/g*K, P)
    if _is_pointwise(node, kernel):
        return shp.reshape(cols, node.shape)
    return conv_ops.col2im(cols, node.attrs["input_size"], _patch_attrs(node, kernel))


def conv_wgrad_gemm(node: Node) -> Node:
    x, y = node.inputs
    g = node.attrs["groups"]
    kernel = node.attrs["kernel_size"]
    n, c_in = x.shape[0], x.shape[1]
    if _is_pointwise(node, kernel):
        cols = shp.reshape(x, (n, g, c_in / g, sympy.prod(x.shape[2:])))
    else:
        cols = conv_ops.im2col(x, _patch_attrs(node, kernel))
    y2 = shp.reshape(y, (n, g, y.shape[1] / g, sympy.prod(y.shape[2:])))
    per_example = matmul(y2, _swap(cols))  # (N, g, Co/g, C/g*K)
    return shp.reshape(red.sum(per_example, 0), node.shape)


GEMM: dict = {
    "conv": conv_gemm,
    "conv_transpose": conv_transpose_gemm,
    "conv_wgrad": conv_wgrad_gemm,
}


def conv_fft(node: Node) -> Node:
    # correlation with w = convolution with w flipped: y = irfft(rfft(x_padded) * rfft(flip(w)))
    # over the padded size L (circular, but outputs kd-1 .. L-1 never wrap), cropped and
    # subsampled by the stride; a dilated kernel is the kernel with zeros between its taps
    x, w = node.inputs
    a = node.attrs
    d = w.rank - 2
    spatial = tuple(range(2, 2 + d))
    if any(p != (0, 0) for p in a["padding"]):
        x = shp.pad(x, ((0, 0), (0, 0), *a["padding"]))
    # any FFT size >= L works (the extra zeros are cropped): take a fast one (2^a 3^b 5^c)
    sizes = tuple(costs.fast_length(int(n)) for n in x.shape[2:])
    w = _dilated(w, a["dilation"])
    flipped = shp.getitem(w, (slice(None), slice(None)) + (slice(None, None, -1),) * d)
    xf = fft_ops.rfftn(x, sizes, spatial)  # (N, C, *bins)
    wf = fft_ops.rfftn(flipped, sizes, spatial)  # (C_out, C/g, *bins)
    y = fft_ops.irfftn(_mix_channels(xf, wf, node), sizes, spatial)
    crop = [(None, None, 1)] * 2
    for kd, s_, m in zip(w.shape[2:], a["stride"], node.shape[2:]):
        crop.append((int(kd) - 1, int(kd) - 1 + s_ * (int(m) - 1) + 1, s_))
    y = apply("slice", (y,), slices=tuple(crop), index_axes=())
    return ew_ops.cast(y, node.dtype)


def _periodic_source(node: Node) -> Node | None:
    """x when node is conv(pad(x, mode="circular"), w) with a 'same'-sized periodic window:
    a convolution on the circle, which an FFT of x's own size computes exactly."""
    padded, w = node.inputs
    a = node.attrs
    if padded.op != "pad" or padded.attrs["mode"] != "circular":
        return None
    widths = padded.attrs["widths"]
    if widths[0] != (0, 0) or widths[1] != (0, 0) or any(p != (0, 0) for p in a["padding"]):
        return None
    source = padded.inputs[0]
    for n, (p0, p1), k, dil in zip(source.shape[2:], widths[2:], w.shape[2:], a["dilation"]):
        if not (n.is_number and k.is_number) or p0 + p1 != dil * (int(k) - 1):
            return None
        if dil * (int(k) - 1) + 1 > int(n):
            return None  # the window wraps more than once around the circle
    return source


def _roll(a: Node, axis: int, shift: int) -> Node:
    """np.roll(a, shift, axis) for 0 <= shift < size, as two slices and a concat."""
    n = int(a.shape[axis])
    if shift % n == 0:
        return a
    head = shp.slice_axis(a, axis, n - shift, n)
    tail = shp.slice_axis(a, axis, 0, n - shift)
    return shp.concat([head, tail], axis)


def conv_fft_periodic(node: Node, x: Node) -> Node:
    # y[i] = sum_k x[(i + k*d - p0) mod n] w[k]: the circular cross-correlation of x with the
    # dilated kernel, irfft(rfft(x) * conj(rfft(w_dilated))), rolled by p0; stride subsamples
    padded, w = node.inputs
    a = node.attrs
    spatial = tuple(range(2, w.rank))
    sizes = tuple(int(n) for n in x.shape[2:])
    w = _dilated(w, a["dilation"])
    xf = fft_ops.rfftn(x, sizes, spatial)
    wf = ew_ops.conj(fft_ops.rfftn(w, sizes, spatial))
    y = fft_ops.irfftn(_mix_channels(xf, wf, node), sizes, spatial)
    for axis, (p0, _) in zip(spatial, padded.attrs["widths"][2:]):
        y = _roll(y, axis, p0)
    if any(s_ > 1 for s_ in a["stride"]):
        slices = ((None, None, 1),) * 2 + tuple((None, None, s_) for s_ in a["stride"])
        y = apply("slice", (y,), slices=slices, index_axes=())
    return ew_ops.cast(y, node.dtype)


def _dilated(w: Node, dilation: tuple) -> Node:
    """w with dilation - 1 zeros between its taps on each spatial axis."""
    if all(dil == 1 for dil in dilation):
        return w
    sizes = tuple(dil * (int(k) - 1) + 1 for k, dil in zip(w.shape[2:], dilation))
    slices = ((None, None, 1),) * 2 + tuple((None, None, dil) for dil in dilation)
    return apply("slice_grad", (w,), slices=slices, shape=(*w.shape[:2], *sizes))


def _mix_channels(xf: Node, wf: Node, node: Node) -> Node:
    """sum over input channels (per group) of the spectra's products: (N, C_out, *bins), as
    one complex matrix product per bin and group, all of them in one batched matmul."""
    g = node.attrs["groups"]
    n, c_in, c_out = xf.shape[0], xf.shape[1], wf.shape[0]
    bins = tuple(xf.shape[2:])
    d = len(bins)
    if g > 1:  # a group axis: (N, g, C/g, *bins), (g, C_out/g, C/g, *bins)
        xf = shp.reshape(xf, (n, g, c_in / g, *bins))
        wf = shp.reshape(wf, (g, c_out / g, c_in / g, *bins))
    lead = xf.rank - d - 2  # 1 with a group axis, else 0
    front = tuple(range(lead + 2, lead + 2 + d))
    x_group, w_group = (1,) * lead, (0,) * lead
    xt = shp.transpose(xf, (*front, *x_group, 0, lead + 1))  # (*bins, [g], N, C/g)
    wt = shp.transpose(wf, (*front, *w_group, lead + 1, lead))  # (*bins, [g], C/g, C_out/g)
    yt = matmul(xt, wt)  # y[b] = x[b] @ w[b] per bin (and group): (*bins, [g], N, C_out/g)
    back = (d + lead, *range(d, d + lead), d + lead + 1, *range(d))
    y = shp.transpose(yt, back)  # (N, [g], C_out/g, *bins)
    return shp.reshape(y, (n, c_out, *bins)) if g > 1 else y


def lower_conv_fft(node: Node) -> Node:
    source = _periodic_source(node)
    if source is not None:
        return conv_fft_periodic(node, source)
    return conv_fft(node)


FFT: dict = {"conv": lower_conv_fft}


def _fft_possible(node: Node) -> bool:
    """FFT lengths must be concrete: the input's spatial sizes and the kernel's."""
    x, w = node.inputs
    return all(n.is_number for n in (*x.shape[2:], *w.shape[2:]))


def _choose(node: Node, log: Callable[[str], None]) -> str:
    algo = node.attrs["algo"]
    fft_ok = node.op in FFT and _fft_possible(node)
    if algo == "fft" and not fft_ok:
        log(f"{node.op} at {node.where}: no fft form (symbolic sizes or {node.op}), using gemm")
        return "gemm"
    if algo != "auto":
        return algo
    options = ["direct", "gemm"] + (["fft"] if fft_ok else [])
    choice, estimates = costs.choose(node, options)
    shown = ", ".join(f"{name} {t * 1e3:.3g} ms" for name, t in estimates.items())
    log(f"{node.op} {node.shape} at {node.where}: auto chose {choice} ({shown})")
    return choice


@lowering("conv", "conv_transpose", "conv_wgrad")
def lower_conv(node: Node, log: Callable[[str], None]) -> Node | None:
    algo = _choose(node, log)
    if algo == "direct":
        return None
    table = GEMM if algo == "gemm" else FFT
    return table[node.op](node)
