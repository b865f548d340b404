"""graphc bench: the report, its checks, the JSON and the plots (timings are never asserted)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from graphc.bench import measure
from graphc.bench.cases import Case, Skip
from graphc.bench.limits import Limits
from graphc.bench.pytensor_peer import pytensor_mlp_step
from graphc.bench.run import describe_row, run_case

LIMITS = Limits(bandwidth=10e9, flops=50e9, gemm=80e9)


def test_measure_repeats_within_its_bounds():
    calls = []
    t = measure(lambda: calls.append(1), warmup=3, least=7, most=9, budget=10.0)
    assert len(calls) == 3 + 9 and len(t.samples) == 9
    assert t.q1 <= t.median <= t.q3 and t.spread >= 0
    slow = measure(lambda: sum(range(20000)), warmup=0, least=2, most=10_000, budget=0.01)
    assert 2 <= len(slow.samples) < 10_000


def _case(graphc_result, numpy_result, peers=None):
    return Case(
        "toy",
        "kernels",
        flops=1e6,
        bytes=1e6,
        graphc=lambda backend: lambda: graphc_result,
        peers={"numpy": lambda: lambda: numpy_result, **(peers or {})},
    )


def test_a_row_has_its_fraction_of_the_roof_and_peer_ratios():
    def skipped():
        raise Skip("not here")

    case = _case(np.ones(3), np.ones(3), {"torch": skipped})
    row = run_case(case, "numpy", ("torch",), LIMITS, 0.01)
    assert row["peers"]["torch"] == {"skipped": "not here"}
    assert row["peers"]["numpy"]["ratio"] > 0 and 0 < row["fraction_of_roof"]
    text = describe_row(row, ("torch",))
    assert text.startswith("toy") and "skip" in text


def test_a_result_that_disagrees_with_a_peer_stops_the_bench():
    with pytest.raises(RuntimeError, match="graphc disagrees with numpy"):
        run_case(_case(np.ones(3), np.array([1.0, 1.0, 1.5])), "numpy", (), LIMITS, 0.01)
    with pytest.raises(RuntimeError, match="shape"):
        run_case(_case(np.ones(3), np.ones(4)), "numpy", (), LIMITS, 0.01)


def test_pytensor_without_its_environment_is_skipped(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_PYTENSOR_PYTHON", str(tmp_path / "missing" / "python"))
    make = pytensor_mlp_step((4, 2), (np.ones((1, 4), np.float32), np.zeros(1, np.int32)), [], 0.1)
    with pytest.raises(Skip, match="no PyTensor environment"):
        make()


def test_the_command_line_sets_threads_and_writes_its_files(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GRAPHC_NUM_THREADS"}
    out = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "graphc",
            "bench",
            "--suite",
            "kernels",
            "--quick",
            "--peers",
            "",
            "--threads",
            "1",
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "roof.png"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["threads"] == 1 and report["machine"]["threads"]["GRAPHC_NUM_THREADS"] == "1"
    names = [row["name"] for row in report["rows"]]
    assert len(names) == 6 and any(n.startswith("gemm") for n in names)
    for row in report["rows"]:
        assert row["graphc"]["median_s"] > 0 and len(row["graphc"]["samples_s"]) >= 5
        assert "ratio" in row["peers"]["numpy"]
    assert report["limits"]["copy_bytes_per_s"] > 0 and report["machine"]["cores"] >= 1
    for path in (tmp_path / "roof.png", tmp_path / "roof-ratios.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "limits: copy kernel" in done.stdout and "of roof" in done.stdout


def test_unknown_peers_are_refused(capsys):
    from graphc.cli import main

    env_ok = {
        "GRAPHC_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
    }
    old = {k: os.environ.get(k) for k in env_ok}
    os.environ.update(env_ok)
    try:
        assert main(["bench", "--peers", "tensorflow", "--threads", "1"]) == 1
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert "unknown peers tensorflow" in capsys.readouterr().err
