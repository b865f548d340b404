"""The cost model that picks a convolution algorithm for algo="auto".

Each algorithm's time is estimated from its work, counted on the node's shapes, times
per-unit costs of the machine:

  direct  K window offsets, each one contraction over C_in/g at `einsum` seconds per
          multiply-add plus `offset_direct` seconds of overhead, and an accumulation of the
          output at `stream` seconds per element;
  gemm    im2col copies N*C_in*K*P elements (`copy` s each, `copy_big` for buffers beyond
          the caches; `offset_gemm` per offset), then one matmul of N*C_out*C_in/g*K*P
          multiply-adds at `gemm` seconds each;
  fft     transforms of size F (the padded input) for N*C_in inputs, C_out*C_in/g kernels
          (none for a constant kernel: folded at compile time) and N*C_out outputs at `fft`
          seconds per F*log2(F); the channel mixing, one batched complex matmul of
          (N x C_in/g) @ (C_in/g x C_out/g) per bin of the B-bin half spectrum and group, is
          N*C_out*C_in/g*B complex multiply-adds at `cgemm` seconds each, and the transposes
          around it copy (N*C_in + N*C_out + C_out*C_in/g)*B complex numbers (2 floats each,
          `copy`; no weights for a constant kernel). conv_transpose and conv_wgrad (stride 1)
          have the same counts: their mixing sums over C_out and over N.
  winograd  F(m, r) on each axis, alpha = m + r - 1: alpha^2 GEMMs of C_out x C_in x T (T tiles
          of m x m outputs over the batch) at `gemm` seconds per multiply-add, and
          alpha^2 (C_in + C_out) T values through the tile transforms at `wino` seconds each
          (plus the kernel's alpha^2 C_in C_out when it is not a constant).

Fixed costs (the backend's per-op overheads) and per-offset overheads come from timing tiny
convolutions of each algorithm. The unit costs come from `calibrate()`, a measurement of
about a second that writes them
to ~/.cache/graphc/costs.json; until a user runs it, the defaults below (measured on a
2-core AVX-512 machine with numpy and OpenBLAS) are used. Symbolic sizes are taken as 1
for the batch (every algorithm is linear in N) and as 32 for spatial axes.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import sympy

from graphc.node import Node

DEFAULTS = {
    # fixed costs of one convolution on the backend (its ops' overheads), per algorithm
    "base_direct": 7.4e-05,
    "base_gemm": 3.6e-05,
    "base_fft": 0.00029,
    "base_winograd": 6e-05,
    # per kernel offset: the direct loop's contraction call, im2col's gather of one slot
    "offset_direct": 4.8e-06,
    "offset_gemm": 6.9e-06,
    # per unit of work
    "einsum": 2.1e-10,  # seconds per multiply-add of an einsum over a strided window
    "stream": 8.3e-11,  # seconds per output element accumulated (the direct loop's +=)
    "copy": 1.4e-10,  # seconds per element gathered by im2col, into a cached buffer
    "copy_big": 6.1e-10,  # the same into a buffer larger than the caches (fresh pages)
    "gemm": 1.9e-11,  # seconds per multiply-add in a BLAS matmul
    "fft": 3.7e-10,  # seconds per F*log2(F) unit of a real FFT
    "cgemm": 2.5e-10,
    # seconds per value through a Winograd tile transform (written by the input's, read by
    # the output's), measured on the llvm kernels (calibrate() keeps this default)
    "wino": 1e-9,  # seconds per complex multiply-add in a batched complex64 BLAS matmul
}
BIG = 2_000_000  # elements (8 MB of float32) above which a buffer no longer fits the caches
CACHE = Path(os.environ.get("GRAPHC_CACHE", Path.home() / ".cache" / "graphc")) / "costs.json"
_units: dict = {}


def units() -> dict:
    """The unit costs in use: calibrated ones when a calibration was saved, else DEFAULTS."""
    if not _units:
        _units.update(DEFAULTS)
        try:
            saved = json.loads(CACHE.read_text())
            _units.update({k: float(v) for k, v in saved.items() if k in DEFAULTS})
        except (OSError, ValueError):
            pass
    return _units


def fast_length(n: int) -> int:
    """The smallest m >= n whose prime factors are 2, 3 and 5: FFTs of such sizes are fast
    (an FFT of a prime size such as 131 costs several times one of 135)."""
    m = max(int(n), 1)
    while True:
        rest = m
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return m
        m += 1


def _size(d: sympy.Expr, default: int) -> int:
    return int(d) if d.is_number else default


def _work(node: Node) -> dict:
    """Counts for conv-family node: N, C_in, C_out, groups, K, P (outputs), F (padded input),
    B (bins of its half spectrum)."""
    a = node.attrs
    if node.op == "conv":
        x, w = node.inputs
        y_shape, x_shape, kernel = node.shape, x.shape, w.shape[2:]
    elif node.op == "conv_transpose":
        y, w = node.inputs
        y_shape, x_shape, kernel = y.shape, node.shape, w.shape[2:]
    else:
        x, y = node.inputs
        y_shape, x_shape, kernel = y.shape, x.shape, node.shape[2:]
    spatial_in = [_size(n, 32) for n in x_shape[2:]]
    padded = [fast_length(n + p0 + p1) for n, (p0, p1) in zip(spatial_in, a["padding"])]
    bins = math.prod(padded[:-1]) * (padded[-1] // 2 + 1) if padded else 1
    return {
        "N": _size(x_shape[0], 1),
        "C_in": _size(x_shape[1], 1),
        "C_out": _size(y_shape[1], 1),
        "g": a["groups"],
        "K": math.prod(_size(k, 3) for k in kernel),
        "P": math.prod(_size(m, 32) for m in y_shape[2:]),
        "F": math.prod(padded),
        "B": bins,
    }


def _constant_weight(node: Node) -> bool:
    """conv(x, w) whose w is a constant: fold_weights computes its spectrum ahead of time."""
    return node.op == "conv" and node.inputs[1].op == "constant"


def estimate(node: Node, algo: str) -> float:
    """Estimated seconds for `node` (conv, conv_transpose or conv_wgrad) computed by `algo`."""
    u = units()
    c = _work(node)
    n, c_in, c_out, g, k, p, f = (c[key] for key in ("N", "C_in", "C_out", "g", "K", "P", "F"))
    macs = n * c_out * (c_in // g) * k * p
    if algo == "direct":
        per_offset = u["offset_direct"] + n * c_out * p * u["stream"]
        return u["base_direct"] + k * per_offset + macs * u["einsum"]
    if algo == "gemm":
        gathered = n * c_in * k * p
        copy = u["copy_big"] if gathered > BIG else u["copy"]
        return u["base_gemm"] + k * u["offset_gemm"] + gathered * copy + macs * u["gemm"]
    if algo == "fft":
        # a constant weight's transforms are folded at compile time (passes/simplify.py)
        weights = 0 if _constant_weight(node) else c_out * (c_in // g)
        transforms = n * c_in + weights + n * c_out
        bins = c["B"]
        # floats through the transposes to and from the per-bin layout (a constant weight's
        # is folded)
        moved = 2 * (n * c_in + n * c_out + (weights and c_out * (c_in // g))) * bins
        copy = u["copy_big"] if moved > BIG else u["copy"]
        return (
            u["base_fft"]
            + transforms * f * math.log2(max(f, 2)) * u["fft"]
            + n * c_out * (c_in // g) * bins * u["cgemm"]
            + moved * copy
        )
    if algo == "winograd":
        return _winograd_estimate(node, u, c)
    raise ValueError(f"unknown convolution algorithm {algo!r}")


def _winograd_estimate(node: Node, u: dict, c: dict) -> float:
    """alpha^2 GEMMs over the tiles, and the transforms' traffic (the tiles op writes
    alpha^2 values per tile and input channel, untiles reads them per output channel)."""
    from graphc.passes.conv import winograd_tile  # the lowering's choice of m

    rs = [int(k) for k in node.inputs[1].shape[2:]]
    ms = [winograd_tile(r) for r in rs]
    alpha = math.prod(m + r - 1 for m, r in zip(ms, rs))
    tiles = c["N"] * math.prod(-(-_size(n, 32) // m) for n, m in zip(node.shape[2:], ms))
    c_in, c_out = c["C_in"], c["C_out"]
    moved = alpha * (c_in + c_out) * tiles
    weights = 0 if _constant_weight(node) else alpha * c_in * c_out
    return (
        u["base_winograd"]
        + alpha * c_in * c_out * tiles * u["gemm"]
        + (moved + weights) * u["wino"]
    )


def choose(node: Node, options: list) -> tuple:
    """(the cheapest algorithm, {algorithm: estimated seconds})."""
    estimates = {algo: estimate(node, algo) for algo in options}
    return min(estimates, key=estimates.get), estimates


# calibration -----------------------------------------------------------------------------------


def _best(fn, repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _conv_seconds(algo: str, k: int) -> float:
    """Best time of a tiny convolution, (1, 1, 8, 8) by (1, 1, k, k), computed by `algo`."""
    from graphc.compile import Function
    from graphc.ops import conv as conv_ops
    from graphc.ops.sources import constant
    from graphc.ops.sources import input as make_input

    x = make_input("x", (1, 1, 8, 8), "float32")
    w = constant(np.ones((1, 1, k, k), np.float32))
    f = Function([x], conv_ops.conv(x, w, padding="same", algo=algo))
    a = np.ones((1, 1, 8, 8), np.float32)
    return _best(lambda: f(a), 20)


def calibrate(save: bool = True) -> dict:
    """Measure the unit costs on this machine (about a second) and, with save, keep them."""
    rng = np.random.default_rng(0)
    measured = {}
    for algo in ("direct", "gemm"):  # fixed cost, and the slope per kernel offset
        one, many = _conv_seconds(algo, 1), _conv_seconds(algo, 7)
        measured[f"offset_{algo}"] = max(many - one, 0.0) / 48
        measured[f"base_{algo}"] = max(one - measured[f"offset_{algo}"], 0.0)
    measured["base_fft"] = _conv_seconds("fft", 3)
    measured["base_winograd"] = _conv_seconds("winograd", 3)
    spec = "ngcxy,goc->ngoxy"
    padded = rng.standard_normal((4, 1, 8, 70, 70)).astype(np.float32)
    patch = padded[..., 3:67, 2:66]  # a window of the padded input, as the direct loop cuts
    wk = rng.standard_normal((1, 8, 8)).astype(np.float32)
    t = _best(lambda: np.einsum(spec, patch, wk))
    measured["einsum"] = t / (4 * 8 * 8 * 64 * 64)
    out = np.zeros((4, 1, 8, 64, 64), np.float32)
    measured["stream"] = _best(lambda: np.add(out, out, out=out)) / out.size
    image = rng.standard_normal((4, 8, 70, 70)).astype(np.float32)
    cols = np.empty((4, 8, 64, 64), np.float32)
    t = _best(lambda: np.copyto(cols, image[:, :, 3:67:1, 2:66:1]))
    measured["copy"] = t / cols.size
    source = rng.standard_normal((2, 3, 142, 142)).astype(np.float32)

    def gather_fresh() -> None:  # im2col of a 15x15 kernel over a 128x128 image
        out = np.empty((2, 3, 225, 128, 128), np.float32)
        for j in range(225):
            out[:, :, j] = source[:, :, j // 15 : j // 15 + 128, j % 15 : j % 15 + 128]

    measured["copy_big"] = _best(gather_fresh, 3) / (2 * 3 * 225 * 128 * 128)
    a = rng.standard_normal((256, 512)).astype(np.float32)
    b = rng.standard_normal((512, 1024)).astype(np.float32)
    measured["gemm"] = _best(lambda: a @ b) / (256 * 512 * 1024)
    signal = rng.standard_normal((16, 64, 64)).astype(np.float32)
    t = _best(lambda: np.fft.irfftn(np.fft.rfftn(signal, axes=(1, 2)), (64, 64), axes=(1, 2)))
    measured["fft"] = t / (2 * 16 * 4096 * 12)
    # the FFT's channel mixing: per bin, (N x C) @ (C x C_out), the weights beyond the caches
    spectra = (rng.standard_normal((512, 8, 64)) + 1j).astype(np.complex64)
    kern = (rng.standard_normal((512, 64, 64)) + 1j).astype(np.complex64)
    t = _best(lambda: np.matmul(spectra, kern))
    measured["cgemm"] = t / (512 * 8 * 64 * 64)
    # the Winograd tile transform: every 6 x 6 tile (step 4) of a batch of images, B^T d B
    from graphc.ops import winograd

    bt = np.asarray(winograd.matrices(4, 3)[2], np.float32)
    planes = rng.standard_normal((4, 8, 66, 66)).astype(np.float32)
    starts = 4 * np.arange(16)[:, None] + np.arange(6)[None, :]

    def transform() -> np.ndarray:
        tiles = planes[:, :, starts][:, :, :, :, starts]  # (4, 8, 16, 6, 16, 6)
        return np.einsum("au,bv,ncxuyv->abcnxy", bt, bt, tiles, optimize=True)

    measured["wino"] = _best(transform) / (36 * 8 * 4 * 256)
    _units.clear()
    _units.update(measured)
    if save:
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(json.dumps(measured, indent=1))
    return dict(measured)
