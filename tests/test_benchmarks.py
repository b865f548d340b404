"""The peer benchmarks run end to end in --quick mode (tiny sizes, one thread), so they cannot
rot; peers that are not installed are skipped by the scripts themselves. No time is asserted."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc as gc

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


def test_kernel_profile_times_every_kernel_of_an_llvm_function(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from kernel_profile import profile

    x = gc.input("x", (4, 6))
    f = gc.compile(
        [x], [gc.sum(gc.tanh(x @ gc.constant(np.ones((6, 3), np.float32))))], backend="llvm"
    )
    rows = profile(f, np.ones((4, 6), np.float32), repeat=2)
    assert sorted(kernel.name for _, kernel in rows) == sorted(k.name for k in f.kernels)
    assert all(ms >= 0 for ms, _ in rows)
    assert "kernels:" in capsys.readouterr().out
    np.testing.assert_allclose(f(np.ones((4, 6), np.float32)), 4 * 3 * np.tanh(6.0), rtol=1e-5)
