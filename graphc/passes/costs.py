"""The cost model that picks a convolution algorithm for algo="auto".

Each algorithm's time is estimated from its work, counted on the node's shapes, times
per-unit costs of the machine:

  direct  K window offsets, each one contraction over C_in/g at `einsum` seconds per
          multiply-add plus `call` seconds of overhead, and an accumulation of the output
          at `stream` seconds per element;
  gemm    im2col copies N*C_in*K*P elements (`copy` s each), then one matmul of
          N*C_out*C_in/g*K*P multiply-adds at `gemm` seconds each;
  fft     transforms of size F (the padded input) for N*C_in inputs, C_out*C_in/g kernels
          and N*C_out outputs at `fft` seconds per F*log2(F), and N*C_out*C_in/g*F/2
          complex multiply-adds at `cmac` seconds each.

The unit costs come from `calibrate()`, a measurement of about a second that writes them
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
    "call": 6e-6,  # seconds per numpy call
    "einsum": 1.0e-9,  # seconds per multiply-add in a small einsum contraction
    "stream": 1.0e-9,  # seconds per element read-modify-written
    "copy": 1.0e-9,  # seconds per element gathered by im2col
    "gemm": 4.0e-11,  # seconds per multiply-add in a BLAS matmul
    "fft": 3.0e-9,  # seconds per F*log2(F) unit of a real FFT
    "cmac": 3.0e-9,  # seconds per complex multiply-add (broadcast multiply + sum)
}
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


def _size(d: sympy.Expr, default: int) -> int:
    return int(d) if d.is_number else default


def _work(node: Node) -> dict:
    """Counts for conv-family node: N, C_in, C_out, groups, K, P (outputs), F (padded input)."""
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
    padded = [n + p0 + p1 for n, (p0, p1) in zip(spatial_in, a["padding"])]
    return {
        "N": _size(x_shape[0], 1),
        "C_in": _size(x_shape[1], 1),
        "C_out": _size(y_shape[1], 1),
        "g": a["groups"],
        "K": math.prod(_size(k, 3) for k in kernel),
        "P": math.prod(_size(m, 32) for m in y_shape[2:]),
        "F": math.prod(padded),
    }


def estimate(node: Node, algo: str) -> float:
    """Estimated seconds for `node` (conv, conv_transpose or conv_wgrad) computed by `algo`."""
    u = units()
    c = _work(node)
    n, c_in, c_out, g, k, p, f = (c[key] for key in ("N", "C_in", "C_out", "g", "K", "P", "F"))
    macs = n * c_out * (c_in // g) * k * p
    if algo == "direct":
        return k * (u["call"] * 2 + n * c_out * p * u["stream"]) + macs * u["einsum"]
    if algo == "gemm":
        return 4 * u["call"] + n * c_in * k * p * u["copy"] + macs * u["gemm"]
    if algo == "fft":
        transforms = n * c_in + c_out * (c_in // g) + n * c_out
        spectrum = f / 2 + 1
        return (
            8 * u["call"]
            + transforms * f * math.log2(max(f, 2)) * u["fft"]
            + n * c_out * (c_in // g) * spectrum * u["cmac"]
        )
    raise ValueError(f"unknown convolution algorithm {algo!r}")


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


def calibrate(save: bool = True) -> dict:
    """Measure the unit costs on this machine (about a second) and, with save, keep them."""
    rng = np.random.default_rng(0)
    measured = {}
    tiny = np.ones(4, np.float32)
    measured["call"] = _best(lambda: np.add(tiny, tiny), 50)
    patch = rng.standard_normal((4, 1, 8, 64, 64)).astype(np.float32)[..., ::1, ::1]
    wk = rng.standard_normal((1, 8, 8)).astype(np.float32)
    t = _best(lambda: np.einsum("ngcxy,goc->ngoxy", patch, wk))
    measured["einsum"] = t / (4 * 8 * 8 * 64 * 64)
    out = np.zeros((4, 1, 8, 64, 64), np.float32)
    measured["stream"] = _best(lambda: np.add(out, out, out=out)) / out.size
    image = rng.standard_normal((4, 8, 70, 70)).astype(np.float32)
    cols = np.empty((4, 8, 64, 64), np.float32)
    t = _best(lambda: np.copyto(cols, image[:, :, 3:67:1, 2:66:1]))
    measured["copy"] = t / cols.size
    a = rng.standard_normal((256, 512)).astype(np.float32)
    b = rng.standard_normal((512, 1024)).astype(np.float32)
    measured["gemm"] = _best(lambda: a @ b) / (256 * 512 * 1024)
    signal = rng.standard_normal((16, 64, 64)).astype(np.float32)
    t = _best(lambda: np.fft.irfftn(np.fft.rfftn(signal, axes=(1, 2)), (64, 64), axes=(1, 2)))
    measured["fft"] = t / (2 * 16 * 4096 * 12)
    spec = np.fft.rfftn(signal, axes=(1, 2))
    kern = np.fft.rfftn(rng.standard_normal((8, 16, 64, 64)), axes=(2, 3)).astype(np.complex64)
    t = _best(lambda: np.sum(spec[None] * kern, axis=1))
    measured["cmac"] = t / (8 * 16 * 64 * 33)
    _units.clear()
    _units.update(measured)
    if save:
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(json.dumps(measured, indent=1))
    return dict(measured)
