"""Time each convolution algorithm on the numpy backend and check the cost model's choice.

For kernel sizes 3, 5, 7, 11, 15 and image sizes 28, 56, 128 (a batch of 2 images with
3 channels into 4 channels, float32, 'same' zero padding), prints the best-of-7 time of
"direct", "gemm" and "fft", the algorithm "auto" chose, and the ratio of auto's time to
the best. Run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_algos.py [--calibrate]

--calibrate first re-measures the cost model's unit costs (graphc.passes.costs.calibrate).

OpenBLAS runs single-threaded here (OPENBLAS_NUM_THREADS=1 unless set): with two threads on
this 2-core machine the thin GEMMs of im2col (4 x 27 by 27 x 16384) are bimodal between
processes (0.6 ms in one, 1.4 ms in the next), which no cost model can predict.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS

import numpy as np

import graphc as gc
from graphc.passes import conv as conv_lowerings
from graphc.passes import costs
from graphc.tensor import unwrap

KERNELS = (3, 5, 7, 11, 15)
IMAGES = (28, 56, 128)
BATCH, C_IN, C_OUT = 2, 3, 4


def best_time(f, x: np.ndarray, repeat: int = 7) -> float:
    f(x)
    f(x)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f(x)
        times.append(time.perf_counter() - start)
    return min(times)


def chosen(f) -> str:
    for line in f.pass_log:
        if "auto chose" in line:
            return line.split("auto chose ")[1].split(" ")[0]
    return "?"


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="re-measure the unit costs")
    parser.add_argument("--estimates", action="store_true", help="print the model's estimates")
    args = parser.parse_args(argv)
    if args.calibrate:
        print("calibrated unit costs:", costs.calibrate())
    algos = ["direct", "gemm"] + (["fft"] if conv_lowerings.FFT else [])
    rng = np.random.default_rng(0)
    threads = os.environ["OPENBLAS_NUM_THREADS"]
    print(
        f"conv of ({BATCH}, {C_IN}, n, n) with ({C_OUT}, {C_IN}, k, k), float32, 'same', "
        f"numpy backend, OPENBLAS_NUM_THREADS={threads}"
    )
    header = f"{'k':>3} {'n':>4}" + "".join(f"{a:>11}" for a in algos)
    print(header + f"{'auto':>8}{'auto/best':>11}")
    worst = 0.0
    for k in KERNELS:
        for n in IMAGES:
            x = gc.input("x", (BATCH, C_IN, n, n))
            w = gc.param("w", (C_OUT, C_IN, k, k), seed=0)
            xs = rng.standard_normal((BATCH, C_IN, n, n)).astype(np.float32)
            times = {}
            for algo in algos:
                f = gc.compile([x], gc.conv(x, w, padding="same", algo=algo))
                times[algo] = best_time(f, xs)
            auto = gc.compile([x], gc.conv(x, w, padding="same", algo="auto"))
            pick = chosen(auto)
            ratio = times[pick] / min(times.values())
            worst = max(worst, ratio)
            cells = "".join(f"{times[a] * 1e3:>9.2f}ms" for a in algos)
            print(f"{k:>3} {n:>4}{cells}{pick:>8}{ratio:>10.2f}x")
            if args.estimates:
                node = unwrap(gc.conv(x, w, padding="same"))
                guesses = "".join(f"{costs.estimate(node, a) * 1e3:>9.2f}ms" for a in algos)
                print(f"{'model':>8}{guesses}")
    print(f"worst auto/best: {worst:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
