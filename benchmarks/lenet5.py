"""One SGD training step of LeNet-5 on 1x28x28 images (conv 6@5x5 pad 2, relu, 2x2 max pool,
conv 16@5x5, relu, pool, dense 120, 84, 10; mean softmax cross-entropy; lr 0.1): graphc's llvm
and numpy backends against PyTorch eager and jax.jit, with 1 and 2 threads.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lenet5.py [--threads 1,2]

The model is built with graphc's public API (gc.conv, gc.max_pool, matmul); every peer
starts from graphc's initial weights and must compute graphc's loss on the same batch before
it is timed. Median of --repeat steps; "best peer/llvm" > 1 means graphc's llvm backend is
faster than the fastest peer. --kernels also times each conv, pool and dense part alone.
"""

from __future__ import annotations

import argparse
import sys

import harness
import numpy as np

import graphc as gc

CONVS = ((6, 1, 5, 2), (16, 6, 5, 0))  # (C_out, C_in, k, padding)
DENSE = ((400, 120), (120, 84), (84, 10))
PEERS = ("torch", "jax")


def lenet5(x: gc.Tensor, t: gc.Tensor) -> tuple:
    """(loss, params) of LeNet-5 on x (N, 1, 28, 28) with labels t (N,)."""
    params = []
    h = x
    for k, (c_out, c_in, size, pad) in enumerate(CONVS):
        w = gc.param(f"c{k}", (c_out, c_in, size, size), init="glorot_uniform", seed=k)
        b = gc.param(f"cb{k}", (c_out, 1, 1), init="zeros")
        params += [w, b]
        h = gc.max_pool(gc.relu(gc.conv(h, w, padding=pad) + b), 2)
    h = gc.reshape(h, (x.shape[0], 400))
    for k, (m, n) in enumerate(DENSE):
        w = gc.param(f"W{k}", (m, n), init="glorot_uniform", seed=10 + k)
        b = gc.param(f"b{k}", (n,), init="zeros")
        params += [w, b]
        h = h @ w + b
        if k < len(DENSE) - 1:
            h = gc.relu(h)
    return gc.mean(gc.softmax_cross_entropy(h, t)), params


def graphc_step(backend: str, xs: np.ndarray, ts: np.ndarray) -> tuple:
    x = gc.input("x", (gc.dim("N"), 1, 28, 28))
    t = gc.input("t", (gc.dim("N"),), dtype="int32")
    loss, params = lenet5(x, t)
    grads = gc.grad(loss, params)
    updates = {p: p - 0.1 * g for p, g in zip(params, grads)}
    f = gc.compile([x, t], loss, updates=updates, backend=backend)
    initial = [np.array(p.value) for p in params]  # before the first step changes them
    first = float(f(xs, ts))
    return first, lambda: f(xs, ts), initial, f


def torch_step(torch, weights: list, xs: np.ndarray, ts: np.ndarray) -> tuple:  # noqa: ANN001
    F = torch.nn.functional
    params = [torch.tensor(w, requires_grad=True) for w in weights]
    x, t = torch.from_numpy(xs), torch.from_numpy(ts.astype(np.int64))

    def step() -> object:
        h = x
        for k, (_, _, _, pad) in enumerate(CONVS):
            w, b = params[2 * k], params[2 * k + 1]
            h = F.max_pool2d(F.relu(F.conv2d(h, w, padding=pad) + b), 2)
        h = h.reshape(h.shape[0], 400)
        for k in range(len(DENSE)):
            w, b = params[4 + 2 * k], params[5 + 2 * k]
            h = h @ w + b
            if k < len(DENSE) - 1:
                h = F.relu(h)
        loss = F.cross_entropy(h, t)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(0.1 * g)
        return loss.detach()

    return float(step()), step


def jax_step(jax, weights: list, xs: np.ndarray, ts: np.ndarray) -> tuple:  # noqa: ANN001
    jnp, lax = jax.numpy, jax.lax

    def loss_fn(params: list, x, t):  # noqa: ANN001, ANN202
        h = x
        for k, (_, _, _, pad) in enumerate(CONVS):
            w, b = params[2 * k], params[2 * k + 1]
            h = lax.conv_general_dilated(h, w, (1, 1), [(pad, pad)] * 2) + b
            h = jax.nn.relu(h)
            h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        h = h.reshape(h.shape[0], 400)
        for k in range(len(DENSE)):
            h = h @ params[4 + 2 * k] + params[5 + 2 * k]
            if k < len(DENSE) - 1:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=1))

    @jax.jit
    def update(params: list, x, t):  # noqa: ANN001, ANN202
        loss, grads = jax.value_and_grad(loss_fn)(params, x, t)
        return loss, [p - 0.1 * g for p, g in zip(params, grads)]

    state = [jnp.asarray(w) for w in weights]
    x, t = jnp.asarray(xs), jnp.asarray(ts)

    def step() -> object:
        loss, state[:] = update(state, x, t)
        return loss.block_until_ready()

    return float(step()), step


def measure(n: int, args: argparse.Namespace) -> None:
    torch = harness.load_torch(n) if "torch" in args.peers else None
    jax = harness.load_jax() if "jax" in args.peers else None
    rng = np.random.default_rng(0)
    timing = f"median {harness.clock_name} time of {args.repeat} (us)"
    print(f"\n{n} thread(s): LeNet-5 SGD step, float32, {timing}")
    for name, module in (("torch", torch), ("jax", jax)):
        if module is None and name in args.peers:
            print(f"{name}: skipped (not installed; pip install -e '.[bench]')")
    columns = ("llvm", "numpy", *PEERS)
    print(f"{'batch':>6}" + "".join(f"{c:>10}" for c in columns) + f"{'best peer/llvm':>16}")
    for batch in args.batches:
        xs = rng.random((batch, 1, 28, 28)).astype(np.float32)
        ts = rng.integers(0, 10, batch).astype(np.int32)
        times = dict.fromkeys(columns, float("nan"))
        steps: dict = {}
        want, steps["llvm"], weights, _ = graphc_step("llvm", xs, ts)
        loss, steps["numpy"], _, _ = graphc_step("numpy", xs, ts)
        harness.same_loss("graphc numpy", loss, want)
        for name, module, build in (("torch", torch, torch_step), ("jax", jax, jax_step)):
            if module is not None:
                loss, steps[name] = build(module, weights, xs, ts)
                harness.same_loss(name, loss, want)
        times.update(harness.interleaved_us(steps, args.repeat))
        peers = [times[p] for p in PEERS if times[p] == times[p]]
        best = min(peers) if peers else float("nan")
        cells = "".join(f"{times[c]:>10.0f}" for c in columns)
        print(f"{batch:>6}{cells}{harness.ratio(times['llvm'], best):>16}")
    print("(every peer's first loss matched graphc's)")
    sys.stdout.flush()


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    harness.add_common_args(parser)
    parser.add_argument("--peers", default=",".join(PEERS), help="torch,jax or none")
    args = parser.parse_args(argv)
    harness.use_clock(args.clock)
    args.peers = args.peers.split(",")
    args.batches = (4,) if args.quick else (64,)
    args.repeat = 3 if args.quick else 50
    harness.per_thread_count(harness.parse_threads(args.threads), lambda n: measure(n, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
