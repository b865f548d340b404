"""What every benchmark script shares: thread counts run in subprocesses, timing, peers.

A script calls `per_thread_count(threads, body)`: for each thread count n the script runs
again in a child process whose environment limits every library to n threads before any
of them loads (GRAPHC_NUM_THREADS, OPENBLAS/OMP/MKL_NUM_THREADS, XLA_FLAGS) and whose
CPU affinity is n cores; the child calls body(n). torch.set_num_threads(n) is called by
`load_torch`. Times are medians of repeats, the contenders timed in turns
(`interleaved_us`): other processes share this machine and its load drifts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

CHILD = "GRAPHC_BENCH_THREADS"  # set in a child: the thread count it measures
PYTENSOR_VENV = Path.home() / ".cache" / "graphc" / "pytensor-venv"
PEERS = Path(__file__).resolve().parent / "peers"
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter  # set by use_clock(): --clock wall (default) or cpu
clock_name = "wall"


def thread_env(n: int) -> dict:
    """The environment of a child that measures with n threads."""
    env = dict(os.environ)
    for name in ("GRAPHC_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env[name] = str(n)
    env["MKL_NUM_THREADS"] = str(n)
    env["NUMBA_NUM_THREADS"] = str(n)
    if n > 1:  # OpenMP threads that spin at barriers stall each other on a shared machine:
        env["OMP_WAIT_POLICY"] = "PASSIVE"  # torch's 2-thread LeNet step took 400 ms, not 12
    if n == 1:  # XLA's CPU client otherwise uses every core of the affinity mask
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    env[CHILD] = str(n)
    return env


def parse_threads(text: str) -> list:
    return [int(part) for part in text.split(",") if part.strip()]


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2 (default)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats (smoke)")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall time (default), or the process's CPU time: steadier on a shared machine, "
        "and equal to wall time for one thread when nothing else runs",
    )


def use_clock(name: str) -> None:
    global clock, clock_name
    clock, clock_name = CLOCKS[name], name


def per_thread_count(threads: list, body: Callable[[int], None]) -> None:
    """body(n) in a child process per thread count n (or here, when this is that child)."""
    mine = os.environ.get(CHILD)
    if mine is not None:
        n = int(mine)
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cpus[: max(n, 1)])
        body(n)
        return
    for n in threads:
        sys.stdout.flush()
        subprocess.run([sys.executable, *sys.argv], env=thread_env(n), check=True)


def median_us(step: Callable[[], object], repeat: int, warmup: int = 5) -> float:
    """Median microseconds of `repeat` calls of step, after `warmup` calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeat):
        start = clock()
        step()
        times.append(clock() - start)
    times.sort()
    return times[len(times) // 2] * 1e6


def interleaved_us(steps: dict, repeat: int, rounds: int = 5, warmup: int = 3) -> dict:
    """{name: median microseconds} of each step, timed in turns: `rounds` rounds, each of
    repeat/rounds calls of every step, so that a change of load on a shared machine falls
    on all of them alike rather than on whichever ran at the time."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    samples: dict = {name: [] for name in steps}
    per_round = max(repeat // rounds, 1)
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(per_round):
                start = clock()
                step()
                samples[name].append(clock() - start)
    result = {}
    for name, times in samples.items():
        times.sort()
        result[name] = times[len(times) // 2] * 1e6
    return result


def load_torch(threads: int):  # noqa: ANN201 - the torch module, or None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def load_jax():  # noqa: ANN201 - the jax module, or None
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_platforms", "cpu")
    return jax


def pytensor_python() -> tuple:
    """(path of the PyTensor venv's python, None) or (None, why it is skipped)."""
    chosen = os.environ.get("GRAPHC_PYTENSOR_PYTHON")
    python = Path(chosen) if chosen else PYTENSOR_VENV / "bin" / "python"
    if not python.exists():
        how = "python3 -m venv ~/.cache/graphc/pytensor-venv && "
        how += "~/.cache/graphc/pytensor-venv/bin/pip install pytensor"
        return None, f"no PyTensor venv at {python} (create it: {how})"
    return str(python), None


def run_peer(python: str, script: str, args: list, threads: int) -> str:
    """stdout of benchmarks/peers/<script> run by `python` with the thread environment."""
    env = thread_env(threads)
    env.pop("PYTHONPATH", None)  # the peer's own venv, not graphc's
    done = subprocess.run(
        [python, str(PEERS / script), *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def same_loss(name: str, got: float, want: float, rtol: float = 1e-4) -> None:
    """Stop the benchmark when a peer computes a different loss on the same data."""
    if abs(got - want) > rtol * max(abs(want), 1.0):
        raise SystemExit(f"{name}: loss {got!r} differs from graphc's {want!r}")


def ratio(ours: float, theirs: float) -> str:
    """theirs/ours as '2.10x' (> 1: graphc is faster), or '-' when a side is missing."""
    if ours != ours or theirs != theirs:  # nan: not measured
        return "-"
    return f"{theirs / ours:.2f}x"
