"""PyTensor peer of benchmarks/mlp_step.py, run by the PyTensor venv's python in a subprocess.

    python pytensor_mlp.py DATA.npz REPEAT [wall|cpu]

DATA.npz holds x, t and the initial W1, b1, W2, b2, ... of the MLP. Builds one SGD step
(relu hidden layers, mean softmax cross-entropy, lr 0.1) with pytensor.function in its
default mode, and prints JSON: the first step's loss, the median step time in
microseconds, the linker, and the PyTensor version. Imports nothing from graphc.
"""

import json
import sys
import time

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import get_default_mode


def main() -> int:
    data = np.load(sys.argv[1])
    repeat = int(sys.argv[2])
    clock = time.process_time if sys.argv[3:] == ["cpu"] else time.perf_counter
    layers = len([k for k in data.files if k.startswith("W")])
    params = []
    for k in range(1, layers + 1):
        params.append(pytensor.shared(data[f"W{k}"], name=f"W{k}"))
        params.append(pytensor.shared(data[f"b{k}"], name=f"b{k}"))
    x = pt.matrix("x", dtype="float32")
    t = pt.vector("t", dtype="int32")
    h = x
    for k in range(layers):
        h = pt.dot(h, params[2 * k]) + params[2 * k + 1]
        if k < layers - 1:
            h = pt.maximum(h, 0)
    logp = h - pt.logsumexp(h, axis=1, keepdims=True)
    loss = -pt.mean(logp[pt.arange(t.shape[0]), t])
    grads = pytensor.grad(loss, params)
    lr = np.float32(0.1)
    updates = [(p, p - lr * g) for p, g in zip(params, grads)]
    step = pytensor.function([x, t], loss, updates=updates)
    xs, ts = data["x"], data["t"].astype(np.int32)
    first = float(step(xs, ts))
    for _ in range(5):
        step(xs, ts)
    times = []
    for _ in range(repeat):
        start = clock()
        step(xs, ts)
        times.append(clock() - start)
    times.sort()
    linker = type(get_default_mode().linker).__name__
    result = {
        "loss": first,
        "us": times[len(times) // 2] * 1e6,
        "linker": linker,
        "version": pytensor.__version__,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
