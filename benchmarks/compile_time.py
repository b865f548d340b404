"""Compile time of the 784-16-16-10 training step (forward, backward, SGD update), per pass.

    python benchmarks/compile_time.py

Prints the time to build the graph and its gradient, to compile it (passes, fusion,
scheduling, the backend), the per-pass timings from f.explain(), and the kernel count.
"""

from __future__ import annotations

import sys
import time

import graphc as gc
from graphc.models import mlp


def build() -> tuple:
    model = mlp((784, 16, 16, 10))
    grads = gc.grad(model.loss, model.params)
    updates = {p: p - 0.1 * g for p, g in zip(model.params, grads)}
    return model.x, model.t, model.loss, updates


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
