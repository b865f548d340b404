"""The pictures of a bench report: a roofline (arithmetic intensity against achieved GFLOP/s,
under the measured bandwidth and compute ceilings) and a bar chart of ratios to the peers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")  # files only: no screen needed
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | os.PathLike) -> Path:  # noqa: ANN001
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def roofline(report: dict, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    limits = report["limits"]
    bandwidth, fma = limits["copy_bytes_per_s"] / 1e9, limits["fma_flops_per_s"] / 1e9
    gemm = limits["blas_gemm_flops_per_s"] / 1e9
    ceiling = max(fma, gemm)  # as Limits.compute
    rows = report["rows"]
    intensities = [r["flops"] / r["bytes"] for r in rows]
    low = min(intensities + [ceiling / bandwidth]) / 4
    high = max(intensities + [ceiling / bandwidth]) * 4
    x = np.geomspace(low, high, 200)
    fig, ax = plt.subplots(figsize=(9, 6))
    ax.loglog(x, np.minimum(ceiling, bandwidth * x), color="black", lw=2, label="roof")
    ax.axhline(fma, color="gray", ls="--", lw=1, label=f"generated FMA loop {fma:.0f} GFLOP/s")
    ax.text(low * 1.1, bandwidth * low * 1.3, f"copy {bandwidth:.1f} GB/s", fontsize=8)
    best = "BLAS GEMM" if gemm >= fma else "FMA loop"
    ax.text(high / 3, ceiling * 1.08, f"{best} {ceiling:.0f} GFLOP/s", fontsize=8)
    markers = {"kernels": "o", "models": "s", "conv": "^"}
    for row, intensity in zip(rows, intensities):
        ax.scatter(intensity, row["gflops"], marker=markers.get(row["suite"], "o"), s=40, zorder=3)
        ax.annotate(
            row["name"],
            (intensity, row["gflops"]),
            fontsize=6,
            xytext=(4, 2),
            textcoords="offset points",
        )
    ax.set_xlabel("arithmetic intensity (flop / byte of useful traffic)")
    ax.set_ylabel("achieved GFLOP/s")
    machine = report["machine"]
    ax.set_title(
        f"graphc {report['backend']} roofline: {machine['cpu']}, {report['threads']} thread(s)",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(plt, fig, path)


def ratio_bars(report: dict, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    rows = report["rows"]
    peers = sorted({p for r in rows for p, v in r["peers"].items() if "ratio" in v})
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(rows) * max(len(peers), 1) + 1.5))
    height = 0.8 / max(len(peers), 1)
    for k, peer in enumerate(peers):
        ratios = [r["peers"].get(peer, {}).get("ratio", np.nan) for r in rows]
        ys = np.arange(len(rows)) + k * height
        ax.barh(ys, ratios, height=height, label=peer)
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(np.arange(len(rows)) + 0.4 - height / 2)
    ax.set_yticklabels([r["name"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("peer time / graphc time (> 1: graphc is faster)")
    ax.set_title(f"graphc {report['backend']} against peers, {report['threads']} thread(s)")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


__all__ = ["ratio_bars", "roofline"]
