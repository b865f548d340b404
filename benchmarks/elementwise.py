"""Fused elementwise kernels on 16M float32: graphc's llvm backend against numpy, PyTorch eager
and jax.jit (each when installed), with 1 and with 2 threads. GB/s counts the useful traffic
(inputs read once, the output written once); every timing is the median of repeats, calls
included end to end (graphc and jax return a fresh array, as numpy does).

Each thread count runs in its own process, pinned to that many cores, with
GRAPHC_NUM_THREADS, OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, torch.set_num_threads and
(one thread) XLA_FLAGS set to it; numpy is single-threaded in any case. "copy -x" is a
kernel of the same backend reading and writing once: max(a*b+c, 0) is compared with its
bandwidth.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/elementwise.py [--threads 1,2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

N = 16 * 1024 * 1024
REPEAT = 9
NAMES = ("tanh(x*w+b)*sigmoid(x)+x", "max(a*b+c, 0)", "copy -x")
TRAFFIC = (4, 4, 2)  # arrays of N float32 moved


def median_time(fn, repeat: int = REPEAT) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def graphc_fns(x, w, b) -> list:  # noqa: ANN001
    import graphc as gc

    xs = [gc.input(name, (N,)) for name in ("x", "w", "b")]
    outs = [
        gc.tanh(xs[0] * xs[1] + xs[2]) * gc.sigmoid(xs[0]) + xs[0],
        gc.maximum(xs[0] * xs[1] + xs[2], 0.0),
        -xs[0],
    ]
    fns = [gc.compile(xs, out, backend="llvm") for out in outs]
    return [lambda f=f: f(x, w, b) for f in fns]


def numpy_fns(x, w, b) -> list:  # noqa: ANN001
    return [
        lambda: np.tanh(x * w + b) / (1 + np.exp(-x)) + x,
        lambda: np.maximum(x * w + b, 0),
        lambda: -x,
    ]


def torch_fns(x, w, b, threads: int) -> list | None:  # noqa: ANN001
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    return [
        lambda: torch.tanh(tx * tw + tb) * torch.sigmoid(tx) + tx,
        lambda: torch.clamp_min(tx * tw + tb, 0),
        lambda: -tx,
    ]


def jax_fns(x, w, b) -> list | None:  # noqa: ANN001
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jx, jw, jb = (jax.device_put(a) for a in (x, w, b))
    chain = jax.jit(lambda x, w, b: jnp.tanh(x * w + b) * jax.nn.sigmoid(x) + x)
    relu = jax.jit(lambda x, w, b: jnp.maximum(x * w + b, 0))
    neg = jax.jit(lambda x, w, b: -x)
    return [lambda f=f: f(jx, jw, jb).block_until_ready() for f in (chain, relu, neg)]


def measure(threads: int) -> None:
    """One thread count, in this process: prints a table."""
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(N).astype(np.float32) for _ in range(3))
    # each peer is built right before it is timed, jax last: XLA's thread pool keeps threads
    # spinning after a call, which on a single pinned core halved the speed of whatever ran
    # next (measured: the llvm chain 22 -> 11 GB/s once jax had run)
    peers = {
        "graphc llvm": lambda: graphc_fns(x, w, b),
        "numpy": lambda: numpy_fns(x, w, b),
        "torch": lambda: torch_fns(x, w, b, threads),
        "jax.jit": lambda: jax_fns(x, w, b),
    }
    missing, rates = [], {}
    for name, build in peers.items():
        fns = build()
        if fns is None:
            missing.append(name)
            continue
        rates[name] = [t * N * 4 / 1e9 / median_time(f) for f, t in zip(fns, TRAFFIC)]
    print(f"{threads} thread(s): GB/s of useful traffic, median of {REPEAT} (higher is better)")
    columns = list(rates)
    head = "".join(f"{c:>13}" for c in columns)
    print(f"{'kernel':<26}{head}{'llvm/numpy':>12}{'llvm/jax':>10}")
    ours = rates["graphc llvm"]
    for k, name in enumerate(NAMES):
        cells = "".join(f"{rates[c][k]:>13.2f}" for c in columns)
        vs_jax = f"{ours[k] / rates['jax.jit'][k]:>9.2f}x" if "jax.jit" in rates else "  skipped"
        print(f"{name:<26}{cells}{ours[k] / rates['numpy'][k]:>11.2f}x{vs_jax}")
    print(f"max(a*b+c, 0) at {100 * ours[1] / ours[2]:.0f}% of the llvm copy kernel's bandwidth")
    for name in missing:
        print(f"{name}: skipped (not importable)")


def environment(threads: int) -> dict:
    env = dict(os.environ)
    for name in ("GRAPHC_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env[name] = str(threads)
    if threads == 1:
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        cores = sorted(os.sched_getaffinity(0))[: args.child]
        os.sched_setaffinity(0, cores)
        measure(args.child)
        return 0
    print(f"{N // (1024 * 1024)}M float32; each thread count in its own process")
    for threads in (int(t) for t in args.threads.split(",")):
        sys.stdout.flush()
        command = [sys.executable, __file__, "--child", str(threads)]
        done = subprocess.run(command, env=environment(threads), check=False)
        if done.returncode:
            print(f"{threads} thread(s): failed with exit status {done.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
