"""One SGD training step of the 784-16-16-10 MLP (softmax cross-entropy, lr 0.1): graphc's
llvm and numpy backends against PyTorch eager, jax.jit and PyTensor (its default mode, in
its own venv), measured in the same run, with 1 and 2 threads.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/mlp_step.py [--threads 1,2]

Every peer starts from graphc's initial weights and must compute graphc's loss on the same
batch before it is timed. Median of --repeat steps; "best peer/llvm" > 1 means graphc's
llvm backend is faster than the fastest peer.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import harness
import numpy as np

import graphc as gc
from graphc.models import mlp

SIZES = (784, 16, 16, 10)
PEERS = ("torch", "jax", "pytensor")


def initial_params() -> list:
    """The initial [W1, b1, W2, b2, W3, b3] of graphc's model, as float32 arrays."""
    return [np.array(p.value) for p in mlp(SIZES).params]


def graphc_step(backend: str, xs: np.ndarray, ts: np.ndarray) -> tuple:
    model = mlp(SIZES)
    grads = gc.grad(model.loss, model.params)
    updates = {p: p - 0.1 * g for p, g in zip(model.params, grads)}
    f = gc.compile([model.x, model.t], model.loss, updates=updates, backend=backend)
    first = float(f(xs, ts))
    return first, lambda: f(xs, ts)


def torch_step(torch, xs: np.ndarray, ts: np.ndarray) -> tuple:  # noqa: ANN001
    weights = initial_params()
    layers = []
    for k in range(len(SIZES) - 1):
        linear = torch.nn.Linear(SIZES[k], SIZES[k + 1])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weights[2 * k].T.copy()))
            linear.bias.copy_(torch.from_numpy(weights[2 * k + 1]))
        layers += [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, t = torch.from_numpy(xs), torch.from_numpy(ts.astype(np.int64))

    def step() -> float:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), t)
        loss.backward()
        opt.step()
        return loss.detach()

    return float(step()), step


def jax_step(jax, xs: np.ndarray, ts: np.ndarray) -> tuple:  # noqa: ANN001
    jnp = jax.numpy

    def loss_fn(params: list, x, t):  # noqa: ANN001, ANN202
        h = x
        for k in range(len(SIZES) - 1):
            h = h @ params[2 * k] + params[2 * k + 1]
            if k < len(SIZES) - 2:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=1))

    @jax.jit
    def update(params: list, x, t):  # noqa: ANN001, ANN202
        loss, grads = jax.value_and_grad(loss_fn)(params, x, t)
        return loss, [p - 0.1 * g for p, g in zip(params, grads)]

    state = [jnp.asarray(w) for w in initial_params()]
    x, t = jnp.asarray(xs), jnp.asarray(ts)

    def step() -> object:
        loss, state[:] = update(state, x, t)
        return loss.block_until_ready()

    return float(step()), step


def pytensor_result(python: str, xs: np.ndarray, ts: np.ndarray, repeat: int, n: int) -> dict:
    """The PyTensor peer's JSON (loss of its first step, median us), run in its own venv."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "mlp.npz"
        weights = initial_params()
        arrays = {"x": xs, "t": ts}
        for k in range(len(SIZES) - 1):
            arrays[f"W{k + 1}"], arrays[f"b{k + 1}"] = weights[2 * k], weights[2 * k + 1]
        np.savez(data, **arrays)
        out = harness.run_peer(
            python, "pytensor_mlp.py", [str(data), str(repeat), harness.clock_name], n
        )
    return json.loads(out.strip().splitlines()[-1])


def measure(n: int, args: argparse.Namespace) -> None:
    torch = harness.load_torch(n) if "torch" in args.peers else None
    jax = harness.load_jax() if "jax" in args.peers else None
    python, why = harness.pytensor_python()
    if "pytensor" not in args.peers:
        python, why = None, "not asked for (--peers)"
    rng = np.random.default_rng(0)
    peer_note = "no pytensor"
    timing = f"median {harness.clock_name} time of {args.repeat} (us)"
    print(f"\n{n} thread(s): 784-16-16-10 SGD step, float32, {timing}")
    if torch is None and "torch" in args.peers:
        print("torch: skipped (not installed; pip install -e '.[bench]')")
    if jax is None and "jax" in args.peers:
        print("jax: skipped (not installed; pip install -e '.[bench]')")
    if python is None:
        print(f"pytensor: skipped ({why})")
    columns = ("llvm", "numpy", "torch", "jax", "pytensor")
    print(f"{'batch':>6}" + "".join(f"{c:>10}" for c in columns) + f"{'best peer/llvm':>16}")
    for batch in args.batches:
        xs = rng.random((batch, SIZES[0])).astype(np.float32)
        ts = rng.integers(0, SIZES[-1], batch).astype(np.int32)
        times = dict.fromkeys(columns, float("nan"))
        steps: dict = {}
        want, steps["llvm"] = graphc_step("llvm", xs, ts)
        loss, steps["numpy"] = graphc_step("numpy", xs, ts)
        harness.same_loss("graphc numpy", loss, want)
        for name, module, build in (("torch", torch, torch_step), ("jax", jax, jax_step)):
            if module is not None:
                loss, steps[name] = build(module, xs, ts)
                harness.same_loss(name, loss, want)
        times.update(harness.interleaved_us(steps, args.repeat))
        if python is not None:
            result = pytensor_result(python, xs, ts, args.repeat, n)
            harness.same_loss("pytensor", result["loss"], want)
            times["pytensor"] = result["us"]
            peer_note = f"pytensor {result['version']}, {result['linker']}"
        peers = [times[p] for p in PEERS if times[p] == times[p]]
        best = min(peers) if peers else float("nan")
        cells = "".join(f"{times[c]:>10.0f}" for c in columns)
        print(f"{batch:>6}{cells}{harness.ratio(times['llvm'], best):>16}")
    print(f"(every peer's first loss matched graphc's; {peer_note})")
    sys.stdout.flush()


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_common_args(parser)
    parser.add_argument("--peers", default=",".join(PEERS), help="torch,jax,pytensor or none")
    args = parser.parse_args(argv)
    harness.use_clock(args.clock)
    args.peers = args.peers.split(",")
    args.batches = (8,) if args.quick else (64, 1024)
    args.repeat = 3 if args.quick else 200
    harness.per_thread_count(harness.parse_threads(args.threads), lambda n: measure(n, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
