"""PyTensor as a peer, from its own virtual environment (it pulls in a Numba that needs an
older llvmlite than graphc's): the step is built and timed in a subprocess that prints
JSON. The interpreter is GRAPHC_PYTENSOR_PYTHON, else ~/.cache/graphc/pytensor-venv, made by

    python3 -m venv ~/.cache/graphc/pytensor-venv
    ~/.cache/graphc/pytensor-venv/bin/pip install pytensor
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from graphc.bench.cases import Measured, Skip
from graphc.bench.timing import Timing

SCRIPT = r"""
import json, sys, time
import numpy as np
import pytensor
import pytensor.tensor as pt

data = np.load(sys.argv[1])
lr, budget = float(sys.argv[2]), float(sys.argv[3])
x_value, t_value = data["x"], data["t"]
weights = [data[f"w{k}"] for k in range(int(data["count"]))]
x, t = pt.matrix("x", dtype="float32"), pt.ivector("t")
params = [pytensor.shared(w) for w in weights]
h = x
for k in range(0, len(params), 2):
    h = pt.dot(h, params[k]) + params[k + 1]
    if k < len(params) - 2:
        h = pt.maximum(h, 0)
logp = h - pt.logsumexp(h, axis=1, keepdims=True)
loss = -pt.mean(logp[pt.arange(t.shape[0]), t])
grads = pytensor.grad(loss, params)
updates = [(p, p - np.float32(lr) * g) for p, g in zip(params, grads)]
step = pytensor.function([x, t], loss, updates=updates)
first = float(step(x_value, t_value))
for _ in range(3):
    step(x_value, t_value)
samples, spent = [], 0.0
while len(samples) < 5 or (spent < budget and len(samples) < 500):
    start = time.perf_counter()
    step(x_value, t_value)
    took = time.perf_counter() - start
    samples.append(took)
    spent += took
found = {"first": first, "samples": samples, "version": pytensor.__version__}
print(json.dumps({**found, "mode": pytensor.config.mode}))
"""


def interpreter() -> Path | None:
    configured = os.environ.get("GRAPHC_PYTENSOR_PYTHON")
    default = Path.home() / ".cache/graphc/pytensor-venv/bin/python"
    path = Path(configured) if configured else default
    return path if path.exists() else None


def pytensor_mlp_step(sizes: tuple, batch: tuple, weights: list, lr: float, budget: float = 1.0):  # noqa: ANN201
    """A peer factory: runs the MLP step in PyTensor's environment and returns Measured."""

    def make() -> Measured:
        python = interpreter()
        if python is None:
            raise Skip(
                "no PyTensor environment (python3 -m venv ~/.cache/graphc/pytensor-venv && "
                "~/.cache/graphc/pytensor-venv/bin/pip install pytensor; or GRAPHC_PYTENSOR_PYTHON)"
            )
        with tempfile.TemporaryDirectory() as folder:
            data = Path(folder) / "step.npz"
            arrays = {f"w{k}": w for k, w in enumerate(weights)}
            np.savez(data, x=batch[0], t=batch[1], count=len(weights), **arrays)
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            done = subprocess.run(
                [str(python), "-c", SCRIPT, str(data), str(lr), str(budget)],
                capture_output=True,
                text=True,
                timeout=600,
                env=env,
            )
        if done.returncode != 0:
            raise Skip(f"PyTensor failed: {done.stderr.strip().splitlines()[-1:]}")
        found = json.loads(done.stdout.strip().splitlines()[-1])
        samples = found["samples"]
        q1, median, q3 = np.percentile(samples, [25, 50, 75])
        return Measured(np.float32(found["first"]), Timing(median, q1, q3, tuple(samples)))

    return make


__all__ = ["interpreter", "pytensor_mlp_step"]
