"""`graphc bench`: measure the machine's limits, time every case of the chosen suites on a
backend and on the installed peers, print each row as a fraction of the limit and as ratios
to the peers, and write the JSON and the plots."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from graphc.bench.cases import Case, Measured, Skip
from graphc.bench.limits import Limits, measure_limits
from graphc.bench.timing import Timing, measure

SUITES = ("kernels", "models", "conv")
PEERS = ("torch", "jax", "pytensor")
THREAD_VARIABLES = (
    "GRAPHC_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "XLA_FLAGS",
)


def cases_of(suite: str, threads: int, quick: bool) -> list:
    if suite == "kernels":
        from graphc.bench.kernels import kernel_cases

        return kernel_cases(threads, quick)
    if suite == "models":
        from graphc.bench.models import model_cases

        return model_cases(threads, quick)
    from graphc.bench.conv import conv_cases

    return conv_cases(threads, quick)


def _timing_json(t: Timing) -> dict:
    return {"median_s": t.median, "q1_s": t.q1, "q3_s": t.q3, "samples_s": list(t.samples)}


def _arrays(value: object) -> list:
    values = value if isinstance(value, (tuple, list)) else (value,)
    return [np.asarray(v, dtype=np.float64) for v in values]


def _agree(ours: object, reference: object) -> str | None:
    """Why graphc's result differs from a peer's (float32 tolerances), or None."""
    for x, y in zip(_arrays(ours), _arrays(reference)):
        if x.shape != y.shape:
            return f"shape {x.shape} vs {y.shape}"
        scale = max(float(np.max(np.abs(y))) if y.size else 0.0, 1e-6)
        err = float(np.max(np.abs(x - y))) if y.size else 0.0
        if err > 1e-3 * scale:
            return f"max error {err:.3g} (scale {scale:.3g})"
    return None


def run_case(case: Case, backend: str, peers: tuple, limits: Limits, budget: float) -> dict:
    call = case.graphc(backend)
    ours = call()
    timing = measure(call, budget=budget)
    row = {
        "name": case.name,
        "suite": case.suite,
        "flops": case.flops,
        "bytes": case.bytes,
        "graphc": _timing_json(timing),
        "peers": {},
    }
    seconds = timing.median
    roof = limits.roof(case.flops / case.bytes)
    row["gflops"] = case.flops / seconds / 1e9
    row["gbytes"] = case.bytes / seconds / 1e9
    row["fraction_of_roof"] = case.flops / seconds / roof if roof > 0 else None
    for peer in ("numpy",) + peers:
        make = case.peers.get(peer)
        if make is None:
            row["peers"][peer] = {"skipped": f"no {peer} version of this case"}
            continue
        try:
            fn = make()
            reference = fn.first if isinstance(fn, Measured) else fn()
        except Skip as why:
            row["peers"][peer] = {"skipped": str(why)}
            continue
        problem = _agree(ours, reference)
        if problem is not None:
            raise RuntimeError(f"bench {case.name}: graphc disagrees with {peer}: {problem}")
        t = fn.timing if isinstance(fn, Measured) else measure(fn, budget=budget)
        row["peers"][peer] = {**_timing_json(t), "ratio": t.median / seconds}
    return row


def describe_row(row: dict, peers: tuple) -> str:
    g = row["graphc"]
    spread = (g["q3_s"] - g["q1_s"]) / g["median_s"] * 100
    fraction = row["fraction_of_roof"]
    text = (
        f"{row['name']:<34}{g['median_s'] * 1e3:>10.3f} ms ±{spread:>4.1f}%"
        f"{row['gflops']:>9.2f}{row['gbytes']:>9.2f}"
        f"{(fraction * 100 if fraction is not None else float('nan')):>8.1f}%"
    )
    for peer in ("numpy",) + peers:
        found = row["peers"].get(peer, {})
        text += f"{found['ratio']:>9.2f}x" if "ratio" in found else f"{'skip':>10}"
    return text


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for module in ("numpy", "llvmlite", "sympy", "torch", "jax", "scipy"):
        found = sys.modules.get(module)
        if found is not None:
            versions[module] = getattr(found, "__version__", "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "threads": {v: os.environ.get(v) for v in THREAD_VARIABLES},
    }


def bench(
    backend: str = "llvm",
    suites: tuple = SUITES,
    peers: tuple = ("torch", "jax"),
    threads: int = 1,
    quick: bool = False,
    out: Callable[[str], None] = print,
) -> dict:
    """Measure and return the report (also printed line by line through `out`)."""
    budget = 0.2 if quick else 1.0
    limits = measure_limits(backend, quick)
    out(f"graphc bench: backend {backend}, {threads} thread(s), suites {', '.join(suites)}")
    out(
        f"limits: copy kernel {limits.bandwidth / 1e9:.1f} GB/s, FMA loop "
        f"{limits.flops / 1e9:.1f} GFLOP/s, BLAS GEMM {limits.gemm / 1e9:.1f} GFLOP/s"
    )
    head = f"{'case':<34}{'graphc':>13}{'spread':>7}{'GFLOP/s':>9}{'GB/s':>9}{'of roof':>9}"
    head += "".join(f"{'/' + p:>10}" for p in ("numpy",) + peers)
    rows = []
    for suite in suites:
        out(f"\n[{suite}]  ratios: peer time / graphc time (> 1: graphc is faster)")
        out(head)
        for case in cases_of(suite, threads, quick):
            try:
                row = run_case(case, backend, peers, limits, budget)
            except NotImplementedError as why:  # a kernel this backend cannot generate yet
                out(f"{case.name:<34}  not run on {backend}: {why}")
                continue
            rows.append(row)
            out(describe_row(row, peers))
    skipped = {
        peer: why
        for row in rows
        for peer, found in row["peers"].items()
        if "skipped" in found
        for why in [found["skipped"]]
    }
    for peer, why in skipped.items():
        out(f"{peer}: skipped ({why})")
    return {
        "machine": machine(),
        "backend": backend,
        "threads": threads,
        "limits": {
            "copy_bytes_per_s": limits.bandwidth,
            "fma_flops_per_s": limits.flops,
            "blas_gemm_flops_per_s": limits.gemm,
        },
        "rows": rows,
    }


def write_json(report: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    return path


__all__ = ["PEERS", "SUITES", "bench", "write_json"]
