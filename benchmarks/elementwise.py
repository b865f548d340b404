"""Fused elementwise kernels on 16M float32: graphc's llvm backend against numpy and (when
installed) PyTorch eager, in one run. GB/s counts the useful traffic (inputs read once,
the output written once).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/elementwise.py
"""

from __future__ import annotations

import sys
import time

import numpy as np

import graphc as gc

N = 16 * 1024 * 1024


def best(fn, repeat: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(N).astype(np.float32) for _ in range(3))
    xs = [gc.input(name, (N,)) for name in ("x", "w", "b")]
    chain = gc.tanh(xs[0] * xs[1] + xs[2]) * gc.sigmoid(xs[0]) + xs[0]
    relu_fma = gc.maximum(xs[0] * xs[1] + xs[2], 0.0)
    copy = xs[0] + 0.0
    cases = [
        ("tanh(x*w+b)*sigmoid(x)+x", chain, 4, lambda: np.tanh(x * w + b) / (1 + np.exp(-x)) + x),
        ("max(a*b+c, 0)", relu_fma, 4, lambda: np.maximum(x * w + b, 0)),
        ("copy x+0", copy, 2, lambda: x + 0.0),
    ]
    try:
        import torch

        torch.set_num_threads(1)
        tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
        torch_fns = [
            lambda: torch.tanh(tx * tw + tb) * torch.sigmoid(tx) + tx,
            lambda: torch.clamp_min(tx * tw + tb, 0),
            lambda: tx + 0.0,
        ]
    except ImportError:
        torch_fns = [None] * 3
    print("16M float32, 1 thread, GB/s of useful traffic (higher is better)")
    print(f"{'kernel':<28}{'graphc llvm':>12}{'numpy':>8}{'torch':>8}{'llvm/numpy':>12}")
    for (name, out, arrays, numpy_fn), torch_fn in zip(cases, torch_fns):
        f = gc.compile(xs, out, backend="llvm")
        traffic = arrays * N * 4 / 1e9
        ours = traffic / best(lambda f=f: f(x, w, b))
        ref = traffic / best(numpy_fn)
        peer = traffic / best(torch_fn) if torch_fn is not None else float("nan")
        print(f"{name:<28}{ours:>12.2f}{ref:>8.2f}{peer:>8.2f}{ours / ref:>11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
