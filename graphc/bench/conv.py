"""The conv suite: conv2d 64 -> 64 channels, 56x56, batch 8, kernels 3/5/7/11 ('same'
padding). Inference: the weights are constants (their transform folds at compile time) and
algo "auto" picks; training: the weights are an input and one call gives the output and
both gradients (for an upstream gradient g)."""

from __future__ import annotations

import numpy as np

import graphc as gc
from graphc.bench.cases import Case, Skip, jax_modules, torch_module


def _data(n: int, c: int, size: int, k: int) -> tuple:
    rng = np.random.default_rng(k)
    x = rng.standard_normal((n, c, size, size)).astype(np.float32)
    w = (rng.standard_normal((c, c, k, k)) / (c * k)).astype(np.float32)
    g = rng.standard_normal((n, c, size, size)).astype(np.float32)
    return x, w, g


def inference_case(n: int, c: int, size: int, k: int, threads: int) -> Case:
    x, w, _ = _data(n, c, size, k)

    def ours(backend: str):  # noqa: ANN202
        xs = gc.input("x", x.shape)
        f = gc.compile([xs], gc.conv(xs, gc.constant(w), padding="same"), backend=backend)
        return lambda: f(x)

    def torch_peer():  # noqa: ANN202
        torch = torch_module(threads)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        return lambda: torch.nn.functional.conv2d(tx, tw, padding="same")

    def jax_peer():  # noqa: ANN202
        jax, _ = jax_modules()
        f = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME"))
        jx, jw = jax.device_put(x), jax.device_put(w)
        return lambda: f(jx, jw).block_until_ready()

    flops = 2 * n * c * c * k * k * size * size
    return Case(
        f"conv2d {c}->{c} {size}x{size} k{k} infer",
        "conv",
        flops,
        x.nbytes * 2 + w.nbytes,
        ours,
        {"numpy": _no_numpy, "torch": torch_peer, "jax": jax_peer},
    )


def training_case(n: int, c: int, size: int, k: int, threads: int) -> Case:
    x, w, g = _data(n, c, size, k)

    def ours(backend: str):  # noqa: ANN202
        xs, ws, gs = gc.input("x", x.shape), gc.input("w", w.shape), gc.input("g", g.shape)
        y = gc.conv(xs, ws, padding="same")
        dx, dw = gc.vjp([y], [xs, ws], [gs])
        f = gc.compile([xs, ws, gs], [y, dx, dw], backend=backend)
        return lambda: f(x, w, g)

    def torch_peer():  # noqa: ANN202
        torch = torch_module(threads)
        tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, w))
        tg = torch.from_numpy(g)

        def step():  # noqa: ANN202
            y = torch.nn.functional.conv2d(tx, tw, padding="same")
            dx, dw = torch.autograd.grad(y, [tx, tw], tg)
            return y.detach(), dx, dw

        return step

    def jax_peer():  # noqa: ANN202
        jax, _ = jax_modules()

        def conv(x, w):  # noqa: ANN001, ANN202
            return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME")

        @jax.jit
        def step(x, w, g):  # noqa: ANN001, ANN202
            y, pullback = jax.vjp(conv, x, w)
            return (y, *pullback(g))

        args = [jax.device_put(a) for a in (x, w, g)]
        return lambda: tuple(v.block_until_ready() for v in step(*args))

    flops = 3 * 2 * n * c * c * k * k * size * size
    return Case(
        f"conv2d {c}->{c} {size}x{size} k{k} train",
        "conv",
        flops,
        x.nbytes * 4 + w.nbytes * 2,
        ours,
        {"numpy": _no_numpy, "torch": torch_peer, "jax": jax_peer},
    )


def _no_numpy():  # noqa: ANN202
    raise Skip("numpy has no convolution of this kind")


def conv_cases(threads: int, quick: bool = False) -> list:
    n, c, size = (2, 16, 28) if quick else (8, 64, 56)
    kernels = (3, 11) if quick else (3, 5, 7, 11)
    cases = [inference_case(n, c, size, k, threads) for k in kernels]
    return cases + [training_case(n, c, size, k, threads) for k in kernels]


__all__ = ["conv_cases"]
