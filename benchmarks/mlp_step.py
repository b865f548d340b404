"""One SGD training step of the 784-16-16-10 MLP (softmax cross-entropy): graphc's llvm and
numpy backends against PyTorch eager (when installed), measured in the same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/mlp_step.py

Single-threaded (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)); median of 200 steps.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import graphc as gc  # noqa: E402
from graphc.models import mlp  # noqa: E402

SIZES = (784, 16, 16, 10)


def median_us(step, repeat: int = 200) -> float:
    for _ in range(10):
        step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e6


def graphc_step(backend: str, xs: np.ndarray, ts: np.ndarray):  # noqa: ANN201
    model = mlp(SIZES)
    grads = gc.grad(model.loss, model.params)
    updates = {p: p - 0.1 * g for p, g in zip(model.params, grads)}
    f = gc.compile([model.x, model.t], model.loss, updates=updates, backend=backend)
    return lambda: f(xs, ts)


def torch_step(xs: np.ndarray, ts: np.ndarray):  # noqa: ANN201
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    layers = [torch.nn.Linear(m, n) for m, n in zip(SIZES[:-1], SIZES[1:])]
    model = torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(), layers[2])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, t = torch.from_numpy(xs), torch.from_numpy(ts.astype(np.int64))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), t).backward()
        opt.step()

    return step


def main() -> int:
    rng = np.random.default_rng(0)
    print("784-16-16-10 SGD step, float32, 1 thread, median microseconds")
    print(
        f"{'batch':>6}{'graphc llvm':>13}{'graphc numpy':>14}{'torch eager':>13}{'torch/llvm':>12}"
    )
    for batch in (64, 1024):
        xs = rng.random((batch, 784)).astype(np.float32)
        ts = rng.integers(0, 10, batch).astype(np.int32)
        llvm = median_us(graphc_step("llvm", xs, ts))
        numpy = median_us(graphc_step("numpy", xs, ts))
        step = torch_step(xs, ts)
        torch_us = median_us(step) if step is not None else float("nan")
        print(f"{batch:>6}{llvm:>13.0f}{numpy:>14.0f}{torch_us:>13.0f}{torch_us / llvm:>11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
