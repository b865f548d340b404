"""The peer benchmarks run end to end in --quick mode (tiny sizes, one thread), so they cannot
rot; peers that are not installed are skipped by the scripts themselves. No time is asserted."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICK = {
    # PyTensor's Numba compile alone takes ~20 s: its venv is pointed nowhere, to check the skip
    "mlp_step.py": ["--peers", "jax,pytensor"],  # torch: in the other two
    "lenet5.py": ["--peers", "torch"],
    "conv2d.py": ["--kernels", "3", "--algos", "auto,gemm,fft"],
}


@pytest.mark.parametrize("script", sorted(QUICK))
def test_benchmark_runs_quick(script):
    # GRAPHC_BENCH_THREADS: measure in this process (no child per thread count)
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRAPHC_BENCH_THREADS="1")
    env["GRAPHC_PYTENSOR_PYTHON"] = str(ROOT / "no-such-python")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--threads", "1"]
        + QUICK[script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 thread(s)" in done.stdout
    assert "differs" not in done.stdout
    if script == "mlp_step.py":
        assert "pytensor: skipped (no PyTensor venv at" in done.stdout
