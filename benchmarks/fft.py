"""The llvm backend's generated FFT against numpy.fft (pocketfft), measured in the same run.

For the shapes of the FFT convolution of a (8, 64, 56, 56) float32 batch with 64 x 64 kernels
(k x k, padded to the fast sizes 60, 64, 72): rfft2 and irfft2 over the last two axes, and the
spectrum product summed over the 64 input channels (the conv's channel mixing). Each graphc
column is a compiled Function (so it includes the per-call overhead and the copy of the
result handed back); numpy's column is np.fft.rfftn / irfftn (numpy >= 2 transforms float32
in float32) and, for the product, the same broadcast multiply and sum. Median of repeats (the
machine is shared, timings are noisy). Run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/fft.py
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS

import numpy as np

import graphc as gc

BATCH, CHANNELS = 8, 64
SIZES = (60, 64, 72)  # 56 + k - 1 padded to 5-smooth lengths (k = 5, 9, 17)


def median_time(fn, *args, budget: float = 1.5, least: int = 5) -> float:  # noqa: ANN001
    fn(*args)
    times = []
    started = time.perf_counter()
    while len(times) < least or time.perf_counter() - started < budget:
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
        if len(times) >= 100:
            break
    return float(np.median(times))


def _check(got: np.ndarray, want: np.ndarray) -> None:
    error = np.abs(got - want).max() / np.abs(want).max()
    if error > 1e-4:
        raise AssertionError(f"llvm disagrees with numpy: relative error {error:.2e}")


def row(label: str, ours: float, theirs: float) -> str:
    return f"{label:<44}{theirs * 1e3:>10.2f}{ours * 1e3:>10.2f}{theirs / ours:>9.2f}x"


def main() -> int:
    rng = np.random.default_rng(0)
    print(f"median ms per call, float32, 1 thread; numpy {np.__version__} (pocketfft)")
    print(f"{'':<44}{'numpy':>10}{'llvm':>10}{'np/llvm':>10}")
    for s in SIZES:
        bins = s // 2 + 1
        x_np = rng.standard_normal((BATCH, CHANNELS, s, s)).astype(np.float32)
        x = gc.input("x", x_np.shape, "float32")
        started = time.perf_counter()
        f = gc.compile([x], gc.rfftn(x, axes=(2, 3)), backend="llvm")
        built = time.perf_counter() - started
        _check(f(x_np), np.fft.rfftn(x_np, axes=(2, 3)))
        ours = median_time(f, x_np)
        theirs = median_time(lambda a: np.fft.rfftn(a, axes=(2, 3)), x_np)
        print(row(f"rfft2  {x_np.shape} (compile {built:.1f} s)", ours, theirs))

        spec_np = np.fft.rfftn(x_np, axes=(2, 3)).astype(np.complex64)
        spec = gc.input("X", spec_np.shape, "complex64")
        g = gc.compile([spec], gc.irfftn(spec, s=(s, s), axes=(2, 3)), backend="llvm")
        _check(g(spec_np), np.fft.irfftn(spec_np, s=(s, s), axes=(2, 3)))
        ours = median_time(g, spec_np)
        theirs = median_time(np.fft.irfftn, spec_np, (s, s), (2, 3))
        print(row(f"irfft2 {spec_np.shape}", ours, theirs))

        w_np = (
            rng.standard_normal((CHANNELS, CHANNELS, s, bins))
            + 1j * rng.standard_normal((CHANNELS, CHANNELS, s, bins))
        ).astype(np.complex64)
        w = gc.input("W", w_np.shape, "complex64")
        mixed = gc.sum(gc.reshape(spec, (BATCH, 1, CHANNELS, s, bins)) * w, axis=2)
        h = gc.compile([spec, w], mixed, backend="llvm")

        def reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return (a[:, None] * b).sum(2)

        _check(h(spec_np, w_np), reference(spec_np, w_np))
        ours = median_time(h, spec_np, w_np)
        theirs = median_time(reference, spec_np, w_np)
        print(row(f"sum_c X[n,c] W[o,c] -> {(BATCH, CHANNELS, s, bins)}", ours, theirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
