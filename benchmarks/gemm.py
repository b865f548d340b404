"""GEMM throughput of the llvm backend's two paths against numpy, one thread.

For 1024^3 float32 (the headline), then a few other shapes, prints the best-of-N GFLOP/s of
numpy's matmul (OpenBLAS), the llvm backend's BLAS path (the same OpenBLAS's sgemm/dgemm,
called from the compiled kernel) and its generated tiled GEMM (gemm_generated.py), each
through a compiled graphc Function `x @ w` (so including the call and the output allocation,
as numpy allocates its result too). Run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gemm.py

OpenBLAS runs single-threaded (OPENBLAS_NUM_THREADS=1 unless set): the generated GEMM has one
thread, and two-thread OpenBLAS figures on this 2-core machine swing too much to compare.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS

import numpy as np
from llvmlite import binding as llvm

import graphc as gc
from backends.llvm import gemm, gemm_generated

SHAPES = [  # (m, n, k, dtype, transposed A)
    (1024, 1024, 1024, "float32", False),
    (1024, 1024, 1024, "float32", True),
    (1024, 1024, 1024, "float64", False),
    (256, 256, 256, "float32", False),
    (2000, 500, 700, "float32", False),
    (64, 16, 784, "float32", False),  # the MLP's first layer, batch 64
    (784, 16, 64, "float32", True),  # its weight gradient x^T @ g
]


def best_time(fn, *args, budget: float = 1.0, least: int = 5) -> float:  # noqa: ANN001
    fn(*args)
    times = []
    started = time.perf_counter()
    while len(times) < least or time.perf_counter() - started < budget:
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
        if len(times) >= 200:
            break
    return min(times)


def main() -> int:
    rng = np.random.default_rng(0)
    tiling = gemm_generated.tiling(gemm.llvm_type("float32"))
    print(
        f"GEMM GFLOP/s, best of runs, 1 thread (OPENBLAS_NUM_THREADS="
        f"{os.environ['OPENBLAS_NUM_THREADS']}); generated tiles {tiling.mr}x{tiling.nr}, "
        f"vectors of {tiling.vl} floats, kc {tiling.kc}; host CPU {llvm.get_host_cpu_name()}"
    )
    if gemm.blas_routines() is None:
        print("scipy is not installed: the BLAS path falls back to the generated GEMM")
    print(f"{'shape (m x n x k)':<26}{'numpy':>9}{'BLAS path':>11}{'generated':>11}  gen/numpy")
    for m, n, k, dtype, transposed in SHAPES:
        a_shape = (k, m) if transposed else (m, k)
        a_np = rng.standard_normal(a_shape).astype(dtype)
        w_np = rng.standard_normal((k, n)).astype(dtype)
        a = gc.input("a", a_shape, dtype)
        w = gc.input("w", (k, n), dtype)
        product = (a.T if transposed else a) @ w
        want = (a_np.T if transposed else a_np) @ w_np
        flops = 2.0 * m * n * k
        rates = [flops / best_time(np.matmul, a_np.T if transposed else a_np, w_np)]
        for path in ("blas", "generated"):
            gemm.FORCE = path
            f = gc.compile([a, w], product, backend="llvm")
            got = f(a_np, w_np)
            tol = 1e-3 if dtype == "float32" else 1e-9
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
            rates.append(flops / best_time(f, a_np, w_np))
        gemm.FORCE = None
        label = f"{m}x{n}x{k} {dtype}{' A^T' if transposed else ''}"
        print(
            f"{label:<26}{rates[0] / 1e9:>9.1f}{rates[1] / 1e9:>11.1f}{rates[2] / 1e9:>11.1f}"
            f"  {rates[2] / rates[0]:>8.2f}x"
        )
    tiny = gc.input("tiny", (1, 1))
    plus_one = gc.compile([tiny], tiny + 1.0, backend="llvm")
    overhead = best_time(plus_one, np.ones((1, 1), np.float32))
    print(
        f"(the graphc columns include a compiled Function's per-call overhead, {overhead * 1e6:.0f}"
        f" us for a 1 x 1 elementwise function: it dominates the small shapes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
