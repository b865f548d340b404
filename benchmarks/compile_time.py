"""Compile time of the 784-16-16-10 training step (forward, backward, SGD update), per pass.

    python benchmarks/compile_time.py

Prints the time to build the graph and its gradient, to compile it (passes, fusion,
scheduling, the backend), the per-pass timings from f.explain(), and the kernel count.
"""

from __future__ import annotations

import sys
import time

import graphc as gc


def build() -> tuple:
    N = gc.dim("N")
    x = gc.input("x", (N, 784))
    t = gc.input("t", (N,), "int32")
    params, h = [], x
    for k, (m, n) in enumerate([(784, 16), (16, 16), (16, 10)]):
        W = gc.param(f"W{k}", (m, n), seed=k)
        b = gc.param(f"b{k}", (n,), init="zeros")
        params += [W, b]
        h = h @ W + b
        if k < 2:
            h = gc.relu(h)
    loss = gc.mean(gc.softmax_cross_entropy(h, t))
    grads = gc.grad(loss, params)
    return x, t, loss, {p: p - 0.1 * g for p, g in zip(params, grads)}


def main() -> int:
    started = time.perf_counter()
    x, t, loss, updates = build()
    built = time.perf_counter()
    f = gc.compile([x, t], loss, updates=updates)
    compiled = time.perf_counter()
    kernels = f.program.kernels
    print(f"graph + gradient built in {(built - started) * 1e3:.1f} ms")
    print(f"compiled in {(compiled - built) * 1e3:.1f} ms (numpy backend)")
    for line in f.pass_log:
        if " ms" in line:
            print("  " + line)
    print(f"{len(kernels.kernels)} kernels, {kernels.count('library')} of them library calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
