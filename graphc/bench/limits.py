"""The machine's own limits, measured first so every figure is also a fraction of a limit:
the bandwidth of a copy kernel the backend generates, the GFLOP/s of a generated FMA loop,
and BLAS GEMM GFLOP/s (numpy's matmul)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import graphc as gc
from graphc.bench.timing import measure

COPY_ELEMENTS = 16 * 1024 * 1024  # 64 MB of float32: far beyond the caches
FMA_ELEMENTS = 16384  # 64 KB: stays in L2
FMA_STEPS = 32  # y <- y*a + b, 2 flops each, in each of
FMA_CHAINS = 12  # independent chains
GEMM_N = 1024


@dataclass(frozen=True)
class Limits:
    bandwidth: float  # bytes/s of the generated copy kernel (read + write)
    flops: float  # flop/s of the generated FMA loop
    gemm: float  # flop/s of numpy's (BLAS) float32 matmul, GEMM_N^3

    @property
    def compute(self) -> float:
        """The compute ceiling: the best flop/s measured here (BLAS or the FMA loop)."""
        return max(self.flops, self.gemm)

    def roof(self, intensity: float) -> float:
        """The attainable flop/s at `intensity` flops per byte."""
        return min(self.compute, self.bandwidth * intensity)


def copy_bandwidth(backend: str, elements: int = COPY_ELEMENTS) -> float:
    x = gc.input("x", (elements,))
    s = gc.input("s", ())  # x + s with s = 0 at run time: a copy that no rewrite removes
    f = gc.compile([x, s], x + s, backend=backend)
    data = np.random.default_rng(0).standard_normal(elements).astype(np.float32)
    zero = np.float32(0)
    seconds = measure(lambda: f(data, zero), budget=0.5).median
    return 2 * data.nbytes / seconds


def fma_flops(backend: str) -> float:
    x, a, b = gc.input("x", (FMA_ELEMENTS,)), gc.input("a", ()), gc.input("b", ())
    total = None
    for chain in range(FMA_CHAINS):  # independent chains: the FMA units, not their latency
        y = x + float(chain)
        for _ in range(FMA_STEPS):
            y = y * a + b  # a, b are inputs: nothing folds; one fused kernel of FMAs
        total = y if total is None else total + y
    f = gc.compile([x, a, b], total, backend=backend)
    data = np.random.default_rng(0).random(FMA_ELEMENTS).astype(np.float32)
    a_value, b_value = np.float32(0.999), np.float32(0.001)
    seconds = measure(lambda: f(data, a_value, b_value), budget=0.5).median
    return (2 * FMA_STEPS + 2) * FMA_CHAINS * FMA_ELEMENTS / seconds


def blas_flops() -> float:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((GEMM_N, GEMM_N)).astype(np.float32) for _ in range(2))
    seconds = measure(lambda: a @ b, budget=1.0).median
    return 2 * GEMM_N**3 / seconds


def measure_limits(backend: str, quick: bool = False) -> Limits:
    """The limits; quick: a 16 MB copy (a rough figure, for smoke tests)."""
    elements = COPY_ELEMENTS // 4 if quick else COPY_ELEMENTS
    return Limits(copy_bandwidth(backend, elements), fma_flops(backend), blas_flops())


__all__ = ["Limits", "measure_limits"]
