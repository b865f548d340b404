"""The models suite: one SGD training step (forward, backward, update) of the 784-16-16-10
perceptron at batch 64 and 1024, and of LeNet-5 on 1x28x28 at batch 64; float32,
softmax cross-entropy, learning rate 0.01. Every peer starts from the same weights and
batch, and its first loss is checked against graphc's before any timing."""

from __future__ import annotations

import numpy as np

import graphc as gc
from graphc.bench.cases import Case, jax_modules, torch_module
from graphc.bench.pytensor_peer import pytensor_mlp_step

LR = 0.01


def _batch(shape: tuple, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    x = rng.random(shape, dtype=np.float32)
    t = rng.integers(0, 10, shape[0]).astype(np.int32)
    return x, t


# the networks, written once with graphc's ops --------------------------------------------------


def mlp_graph(sizes: tuple) -> tuple:
    N = gc.dim("N")
    x, t = gc.input("x", (N, sizes[0])), gc.input("t", (N,), dtype="int32")
    params, h = [], x
    for k in range(len(sizes) - 1):
        W = gc.param(f"W{k}", (sizes[k], sizes[k + 1]), init="glorot_uniform", seed=k)
        b = gc.param(f"b{k}", (sizes[k + 1],), init="zeros")
        params += [W, b]
        h = h @ W + b
        if k < len(sizes) - 2:
            h = gc.relu(h)
    return x, t, params, gc.mean(gc.softmax_cross_entropy(h, t))


LENET = (  # (name, shape): conv weights (C_out, C_in, k, k), dense (in, out)
    ("c1", (6, 1, 5, 5)),
    ("c2", (16, 6, 5, 5)),
    ("f1", (400, 120)),
    ("f2", (120, 84)),
    ("f3", (84, 10)),
)


def lenet_graph() -> tuple:
    N = gc.dim("N")
    x, t = gc.input("x", (N, 1, 28, 28)), gc.input("t", (N,), dtype="int32")
    params = []
    for k, (name, shape) in enumerate(LENET):
        params.append(gc.param(f"{name}.w", shape, init="glorot_uniform", seed=k))
        bias = (shape[0] if len(shape) == 4 else shape[1],)
        params.append(gc.param(f"{name}.b", bias, init="zeros"))
    w1, b1, w2, b2, f1, g1, f2, g2, f3, g3 = params
    h = gc.relu(gc.conv(x, w1, padding=2) + gc.reshape(b1, (6, 1, 1)))  # 6x28x28
    h = gc.max_pool(h, 2)  # 6x14x14
    h = gc.relu(gc.conv(h, w2) + gc.reshape(b2, (16, 1, 1)))  # 16x10x10
    h = gc.reshape(gc.max_pool(h, 2), (N, 400))  # 16x5x5
    h = gc.relu(h @ f1 + g1)
    h = gc.relu(h @ f2 + g2)
    return x, t, params, gc.mean(gc.softmax_cross_entropy(h @ f3 + g3, t))


def graphc_step(build, batch: tuple):  # noqa: ANN001, ANN201
    def make(backend: str):  # noqa: ANN202
        x, t, params, loss = build()
        grads = gc.grad(loss, params)
        f = gc.compile(
            [x, t], loss, updates={p: p - LR * g for p, g in zip(params, grads)}, backend=backend
        )
        return lambda: f(*batch)

    return make


def initial_weights(build) -> list:  # noqa: ANN001
    return [np.array(p.value) for p in build()[2]]


# peers -----------------------------------------------------------------------------------------


def torch_step(build, batch: tuple, threads: int, lenet: bool):  # noqa: ANN001, ANN201
    def make():  # noqa: ANN202
        torch = torch_module(threads)
        F = torch.nn.functional
        params = [torch.tensor(w, requires_grad=True) for w in initial_weights(build)]
        x, t = torch.from_numpy(batch[0]), torch.from_numpy(batch[1]).long()

        def forward():  # noqa: ANN202
            if not lenet:
                h = x
                for k in range(0, len(params), 2):
                    h = h @ params[k] + params[k + 1]
                    if k < len(params) - 2:
                        h = torch.relu(h)
                return F.cross_entropy(h, t)
            w1, b1, w2, b2, f1, g1, f2, g2, f3, g3 = params
            h = F.max_pool2d(torch.relu(F.conv2d(x, w1, b1, padding=2)), 2)
            h = F.max_pool2d(torch.relu(F.conv2d(h, w2, b2)), 2).reshape(-1, 400)
            h = torch.relu(torch.relu(h @ f1 + g1) @ f2 + g2)
            return F.cross_entropy(h @ f3 + g3, t)

        def step():  # noqa: ANN202
            loss = forward()
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p -= LR * g
            return loss.detach().numpy()

        return step

    return make


def jax_step(build, batch: tuple, lenet: bool):  # noqa: ANN001, ANN201
    def make():  # noqa: ANN202
        jax, jnp = jax_modules()
        params = [jnp.asarray(w) for w in initial_weights(build)]
        x, t = jnp.asarray(batch[0]), jnp.asarray(batch[1])

        def loss_fn(params):  # noqa: ANN001, ANN202
            if not lenet:
                h = x
                for k in range(0, len(params), 2):
                    h = h @ params[k] + params[k + 1]
                    if k < len(params) - 2:
                        h = jax.nn.relu(h)
            else:
                w1, b1, w2, b2, f1, g1, f2, g2, f3, g3 = params
                conv = jax.lax.conv_general_dilated
                pool = lambda h: jax.lax.reduce_window(  # noqa: E731
                    h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID"
                )
                h = conv(x, w1, (1, 1), ((2, 2), (2, 2))) + b1.reshape(6, 1, 1)
                h = pool(jax.nn.relu(h))
                h = pool(jax.nn.relu(conv(h, w2, (1, 1), "VALID") + b2.reshape(16, 1, 1)))
                h = h.reshape(-1, 400)
                h = jax.nn.relu(jax.nn.relu(h @ f1 + g1) @ f2 + g2)
                h = h @ f3 + g3
            logp = jax.nn.log_softmax(h, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=1))

        @jax.jit
        def update(params):  # noqa: ANN001, ANN202
            loss, grads = jax.value_and_grad(loss_fn)(params)
            return loss, [p - LR * g for p, g in zip(params, grads)]

        state = {"params": params}

        def step():  # noqa: ANN202
            loss, state["params"] = update(state["params"])
            return np.asarray(loss.block_until_ready())

        return step

    return make


def model_cases(threads: int, quick: bool = False) -> list:
    cases = []
    mlp_sizes = (784, 16, 16, 10)
    mlp_params = sum(a * b + b for a, b in zip(mlp_sizes, mlp_sizes[1:]))
    for batch_size in (64,) if quick else (64, 1024):
        batch = _batch((batch_size, 784), batch_size)

        def build(sizes=mlp_sizes):  # noqa: ANN202
            return mlp_graph(sizes)

        cases.append(
            Case(
                f"MLP 784-16-16-10 step b{batch_size}",
                "models",
                6 * batch_size * mlp_params,
                batch[0].nbytes + 3 * 4 * mlp_params,
                graphc_step(build, batch),
                {
                    "numpy": graphc_numpy(build, batch),
                    "torch": torch_step(build, batch, threads, lenet=False),
                    "jax": jax_step(build, batch, lenet=False),
                    "pytensor": pytensor_mlp_step(mlp_sizes, batch, initial_weights(build), LR),
                },
            )
        )
    batch = _batch((16 if quick else 64, 1, 28, 28), 7)
    n = batch[0].shape[0]
    conv_flops = 2 * n * (6 * 25 * 28 * 28 + 16 * 6 * 25 * 10 * 10)
    dense_flops = 2 * n * (400 * 120 + 120 * 84 + 84 * 10)
    lenet_params = sum(int(np.prod(s)) + s[0] for _, s in LENET)
    cases.append(
        Case(
            f"LeNet-5 step b{n}",
            "models",
            3 * (conv_flops + dense_flops),
            batch[0].nbytes + 3 * 4 * lenet_params,
            graphc_step(lenet_graph, batch),
            {
                "numpy": graphc_numpy(lenet_graph, batch),
                "torch": torch_step(lenet_graph, batch, threads, lenet=True),
                "jax": jax_step(lenet_graph, batch, lenet=True),
            },
        )
    )
    return cases


def graphc_numpy(build, batch: tuple):  # noqa: ANN001, ANN201
    """graphc's numpy backend (the reference) as the 'numpy' peer of a training step."""
    make = graphc_step(build, batch)
    return lambda: make("numpy")


__all__ = ["lenet_graph", "mlp_graph", "model_cases"]
