"""Lowerings of the convolution family: direct, im2col + GEMM, FFT; "auto" asks the cost model.

conv(x, w) with algo:
  "direct"  the conv node itself: the backend loops over the kernel window.
  "gemm"    im2col(x) -> (N, g, C/g*K, P) columns, then one matmul with w as a
            (g, C_out/g, C/g*K) matrix; a 1x1 kernel with stride 1 and no padding is a
            plain matmul on reshaped x (no im2col).
  "fft"     zero-pad, rfft of input and flipped kernel over the spatial axes, mix the
            channels: per frequency bin (and group) one complex matrix product
            (N x C/g) @ (C/g x C_out/g), all bins in one batched matmul (BLAS cgemm/zgemm on
            llvm) between transposes to and from the bins-first layout (a constant kernel's
            spectrum and its transpose are folded by fold_weights); irfft, crop (and
            subsample for stride > 1), each axis cropped right after its inverse transform.
  "winograd" F(m, r) on each axis (graphc/ops/winograd.py): winograd_tiles(x) -> (alpha^2,
            C, N*T) transformed tiles, the kernel's transform (folded when constant), alpha^2
            GEMMs (C_out x C) @ (C x N*T) in one batched matmul, winograd_untiles -> y;
            2-D, stride 1, dilation 1, one group; conv_transpose too (a correlation with
            the kernel rotated and its channels swapped).
conv_transpose and conv_wgrad (the derivatives) lower to GEMM forms too: col2im(w^T y)
and y im2col(x)^T; and, for stride 1, to FFT forms mixed the same way: per bin
(N x C_out/g) @ (C_out/g x C/g) (a full convolution of y with w) and
(C_out/g x N) @ (N x C/g) of conj(y) and x (a correlation, kept at the kernel's lags).
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
from graphc.ops import winograd
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
    crop = [
        (int(kd) - 1, int(kd) - 1 + s_ * (int(m) - 1) + 1, s_)
        for kd, s_, m in zip(w.shape[2:], a["stride"], node.shape[2:])
    ]
    y = _irfftn_cropped(_mix_channels(xf, wf, node), sizes, crop)
    return ew_ops.cast(y, node.dtype)


def _irfftn_cropped(spectra: Node, sizes: tuple, crop: list) -> Node:
    """irfftn over the spatial axes (2, 3, ...) keeping only the (start, stop, step) window
    `crop` of each: each axis is cropped as soon as its inverse is done, so the transforms
    after it run on fewer rows."""
    out = spectra
    last = len(sizes) + 1
    for axis, n, window in zip(range(2, last + 1), sizes, crop):
        if axis < last:
            out = fft_ops.ifft(out, n, axis)
        else:
            out = fft_ops.irfft(out, n, axis)
        slices = tuple(window if q == axis else (None, None, 1) for q in range(out.rank))
        out = apply("slice", (out,), slices=slices, index_axes=())
    return out


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


def _per_bin(t: Node, g: int, split: int, rows: int, cols: int) -> Node:
    """Spectra t (A0, A1, *bins) as matrices (*bins, [g], A_rows, A_cols): axis `split` holds
    the groups (split into (g, A/g) when g > 1); rows and cols name axes 0 and 1."""
    d = t.rank - 2
    lead = 0
    if g > 1:
        shape = list(t.shape)
        t = shp.reshape(t, (*shape[:split], g, shape[split] / g, *shape[split + 1 :]))
        lead = 1

    def position(axis: int) -> int:  # where axis 0 or 1 went after the split
        return axis + lead if axis >= split else axis

    front = tuple(range(2 + lead, 2 + lead + d))
    return shp.transpose(t, (*front, *(split,) * lead, position(rows), position(cols)))


def _from_bins(m: Node, g: int, into: int) -> Node:
    """Matrices m (*bins, [g], R, C) back to spectra (A0, A1, *bins): (R, C) with the groups
    merged into axis `into` (0: A0 = g*R, 1: A1 = g*C)."""
    lead = 1 if g > 1 else 0
    d = m.rank - 2 - lead
    r, c = d + lead, d + lead + 1
    groups = (d,) * lead
    axes = (*groups, r, c) if into == 0 else (r, *groups, c)
    y = shp.transpose(m, (*axes, *range(d)))
    rows, cols = m.shape[r], m.shape[c]
    shape = (g * rows, cols) if into == 0 else (rows, g * cols)
    return shp.reshape(y, (*shape, *m.shape[:d])) if g > 1 else y


def _mix_channels(xf: Node, wf: Node, node: Node) -> Node:
    """sum over input channels (per group) of the spectra's products: (N, C_out, *bins), as
    one complex matrix product per bin and group, all of them in one batched matmul."""
    g = node.attrs["groups"]
    xt = _per_bin(xf, g, 1, 0, 1)  # (*bins, [g], N, C/g)
    wt = _per_bin(wf, g, 0, 1, 0)  # (*bins, [g], C/g, C_out/g): folded when w is constant
    return _from_bins(matmul(xt, wt), g, 1)  # y[b] = x[b] @ w[b]


def _mix_outputs(yf: Node, wf: Node, node: Node) -> Node:
    """sum over output channels of the spectra's products: (N, C_in, *bins)."""
    g = node.attrs["groups"]
    yt = _per_bin(yf, g, 1, 0, 1)  # (*bins, [g], N, C_out/g)
    wt = _per_bin(wf, g, 0, 0, 1)  # (*bins, [g], C_out/g, C/g)
    return _from_bins(matmul(yt, wt), g, 1)  # x[b] = y[b] @ w[b]


def _mix_examples(xf: Node, yf: Node, node: Node) -> Node:
    """sum over examples of conj(y)'s and x's spectra's products: (C_out, C/g, *bins)."""
    g = node.attrs["groups"]
    yt = _per_bin(ew_ops.conj(yf), g, 1, 1, 0)  # (*bins, [g], C_out/g, N)
    xt = _per_bin(xf, g, 1, 0, 1)  # (*bins, [g], N, C/g)
    return _from_bins(matmul(yt, xt), g, 0)  # w[b] = y[b]^H @ x[b]


def conv_transpose_fft(node: Node) -> Node:
    # x_padded[t] = sum_o sum_j y[t - dil*j] w[j]: the full convolution of y with the dilated
    # kernel, irfft(rfft(y) * rfft(w)) over L >= the padded input size (no wrap), cropped
    y, w = node.inputs
    a = node.attrs
    spatial = tuple(range(2, w.rank))
    size = [int(n) for n in a["input_size"]]
    sizes = tuple(costs.fast_length(n + p0 + p1) for n, (p0, p1) in zip(size, a["padding"]))
    w = _dilated(w, a["dilation"])
    yf = fft_ops.rfftn(y, sizes, spatial)  # (N, C_out, *bins)
    wf = fft_ops.rfftn(w, sizes, spatial)  # (C_out, C/g, *bins)
    crop = [(p0, p0 + n, 1) for n, (p0, _) in zip(size, a["padding"])]
    x = _irfftn_cropped(_mix_outputs(yf, wf, node), sizes, crop)
    return ew_ops.cast(x, node.dtype)


def conv_wgrad_fft(node: Node) -> Node:
    # w[j] = sum_n sum_i x_padded[i + dil*j] y[i]: the correlation of x_padded with y,
    # irfft(rfft(x) * conj(rfft(y))) over L >= the padded size (no wrap), at lags dil*j
    x, y = node.inputs
    a = node.attrs
    spatial = tuple(range(2, x.rank))
    if any(p != (0, 0) for p in a["padding"]):
        x = shp.pad(x, ((0, 0), (0, 0), *a["padding"]))
    sizes = tuple(costs.fast_length(int(n)) for n in x.shape[2:])
    xf = fft_ops.rfftn(x, sizes, spatial)  # (N, C, *bins)
    yf = fft_ops.rfftn(y, sizes, spatial)  # (N, C_out, *bins)
    lags = [(0, dil * (int(k) - 1) + 1, dil) for k, dil in zip(a["kernel_size"], a["dilation"])]
    w = _irfftn_cropped(_mix_examples(xf, yf, node), sizes, lags)
    return ew_ops.cast(w, node.dtype)


def lower_conv_fft(node: Node) -> Node:
    source = _periodic_source(node)
    if source is not None:
        return conv_fft_periodic(node, source)
    return conv_fft(node)


FFT: dict = {
    "conv": lower_conv_fft,
    "conv_transpose": conv_transpose_fft,
    "conv_wgrad": conv_wgrad_fft,
}


def winograd_tile(r: int) -> int:
    """m of F(m, r): 4 outputs a tile for kernels up to 5 taps (alpha 6 or 8), else 2."""
    return 4 if r <= 5 else 2


def winograd_possible(node: Node) -> bool:
    """conv or conv_transpose in 2-D with stride 1, dilation 1, one group, concrete spatial
    sizes, kernels of 2 to 7 taps (1 x 1 is a plain matmul), padding the transpose can mirror."""
    a = node.attrs
    data, w = node.inputs
    kernel = w.shape[2:]
    if len(kernel) != 2 or a["groups"] != 1:
        return False
    if any(s_ != 1 for s_ in a["stride"]) or any(d_ != 1 for d_ in a["dilation"]):
        return False
    sizes = [*data.shape[2:], *kernel, *a.get("input_size", ())]
    if not all(sympy.sympify(n).is_number for n in sizes):
        return False
    if not all(2 <= int(k) <= 7 for k in kernel):
        return False
    if node.op == "conv_transpose":
        return all(0 <= p <= int(k) - 1 for k, pads in zip(kernel, a["padding"]) for p in pads)
    return True


WINOGRAD_MIN_CHANNELS = 16


def _wide(node: Node) -> bool:
    """auto considers Winograd only with at least WINOGRAD_MIN_CHANNELS channels on both
    sides: its transforms cost per channel and its saving is per pair of channels, so with
    few channels (LeNet's 1 -> 6 -> 16) im2col + GEMM is faster (measured: a LeNet-5 step
    6.5 ms with gemm, 10 ms with Winograd), and its rounding differs from a direct sum's
    (exact ties, e.g. of max pooling over zero padding, may break differently)."""
    channels = (node.inputs[0].shape[1], node.shape[1])
    return all(c.is_number and int(c) >= WINOGRAD_MIN_CHANNELS for c in channels)


def _winograd(x: Node, w: Node, padding: tuple, size: tuple, flip: bool, dtype: str) -> Node:
    """The 'same-family' correlation y[n, o] = sum_c x_padded[n, c] * k[o, c] by F(m, r) on
    each axis: k = w (C_out, C, r0, r1), or for flip, k[c, o] = w[o, c] rotated by 180 degrees
    (conv_transpose as a correlation), giving an output of spatial `size`."""
    x, w = ew_ops.cast(x, dtype), ew_ops.cast(w, dtype)  # both transforms in the conv's dtype
    rs = [int(k) for k in w.shape[2:]]
    ms = [winograd_tile(r) for r in rs]
    at, g, bt = zip(*(winograd.matrices(m, r) for m, r in zip(ms, rs)))
    counts = tuple(-(-int(n) // m) for n, m in zip(size, ms))
    origin = tuple(-p0 for p0, _ in padding)
    v = winograd.tiles(x, bt, ms, origin, counts)  # (A, C_in, N*T)
    if flip:  # the kernel reversed on each axis: G's columns reversed
        g = tuple(tuple(row[::-1] for row in mat) for mat in g)
    u = winograd.tiles(w, g, rs, (0, 0), (1, 1))  # (A, w.shape[1], w.shape[0])
    if not flip:
        u = _swap(u)  # (A, C_out, C_in); a constant kernel's is folded
    m = matmul(u, v)  # (A, C_out, N*T)
    return winograd.untiles(m, at, ms, (0, 0), counts, size)


def conv_winograd(node: Node) -> Node:
    x, w = node.inputs
    return _winograd(x, w, node.attrs["padding"], node.shape[2:], False, node.dtype)


def conv_transpose_winograd(node: Node) -> Node:
    # dx = the correlation of y with w rotated, channels swapped, padded by r - 1 - p
    y, w = node.inputs
    padding = tuple(
        (int(k) - 1 - p0, int(k) - 1 - p1)
        for k, (p0, p1) in zip(w.shape[2:], node.attrs["padding"])
    )
    return _winograd(y, w, padding, node.shape[2:], True, node.dtype)


WINOGRAD: dict = {"conv": conv_winograd, "conv_transpose": conv_transpose_winograd}


def _fft_possible(node: Node) -> bool:
    """FFT lengths must be concrete (the input's spatial sizes and the kernel's); the
    derivatives have FFT forms for stride 1 only."""
    a = node.attrs
    if node.op != "conv" and any(s_ != 1 for s_ in a["stride"]):
        return False
    a_in, b_in = node.inputs
    sizes = [*a_in.shape[2:], *b_in.shape[2:]]
    sizes += list(a.get("input_size", ())) + list(a.get("kernel_size", ()))
    return all(sympy.sympify(n).is_number for n in sizes)


def _choose(node: Node, log: Callable[[str], None]) -> str:
    algo = node.attrs["algo"]
    fft_ok = node.op in FFT and _fft_possible(node)
    if algo == "fft" and not fft_ok:
        why = "symbolic sizes" if node.op == "conv" else "symbolic sizes or stride > 1"
        log(f"{node.op} at {node.where}: no fft form ({why}), using gemm")
        return "gemm"
    winograd_ok = node.op in WINOGRAD and winograd_possible(node)
    if algo == "winograd" and not winograd_ok:
        log(
            f"{node.op} at {node.where}: no winograd form (it needs 2-D, stride 1, dilation 1, "
            "one group, concrete sizes, kernels of 2 to 7 taps), using gemm"
        )
        return "gemm"
    if algo != "auto":
        return algo
    options = ["direct", "gemm"] + (["fft"] if fft_ok else [])
    options += ["winograd"] if winograd_ok and _wide(node) else []
    choice, estimates = costs.choose(node, options)
    shown = ", ".join(f"{name} {t * 1e3:.3g} ms" for name, t in estimates.items())
    log(f"{node.op} {node.shape} at {node.where}: auto chose {choice} ({shown})")
    return choice


@lowering("conv", "conv_transpose", "conv_wgrad")
def lower_conv(node: Node, log: Callable[[str], None]) -> Node | None:
    algo = _choose(node, log)
    if algo == "direct":
        return None
    table = {"gemm": GEMM, "fft": FFT, "winograd": WINOGRAD}[algo]
    return table[node.op](node)
