"""The kernels suite: fused elementwise chains, a row reduction, softmax, GEMMs."""

from __future__ import annotations

import numpy as np

import graphc as gc
from graphc.bench.cases import Case, jax_modules, torch_module

EW = 16 * 1024 * 1024


def _f32(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def elementwise_cases(threads: int, scale: int) -> list:
    n = EW // scale
    rng = np.random.default_rng(0)
    x, w, b = (_f32(rng, (n,)) for _ in range(3))
    names = ("x", "w", "b")

    def chain(backend: str):  # noqa: ANN202
        xs = [gc.input(name, (n,)) for name in names]
        out = gc.tanh(xs[0] * xs[1] + xs[2]) * gc.sigmoid(xs[0]) + xs[0]
        f = gc.compile(xs, out, backend=backend)
        return lambda: f(x, w, b)

    def relu_fma(backend: str):  # noqa: ANN202
        xs = [gc.input(name, (n,)) for name in names]
        f = gc.compile(xs, gc.maximum(xs[0] * xs[1] + xs[2], 0.0), backend=backend)
        return lambda: f(x, w, b)

    def torch_chain():  # noqa: ANN202
        torch = torch_module(threads)
        tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
        return lambda: torch.tanh(tx * tw + tb) * torch.sigmoid(tx) + tx

    def jax_chain():  # noqa: ANN202
        jax, jnp = jax_modules()
        f = jax.jit(lambda x, w, b: jnp.tanh(x * w + b) * jax.nn.sigmoid(x) + x)
        args = [jax.device_put(a) for a in (x, w, b)]
        return lambda: f(*args).block_until_ready()

    def torch_relu():  # noqa: ANN202
        torch = torch_module(threads)
        tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
        return lambda: torch.clamp_min(tx * tw + tb, 0)

    def jax_relu():  # noqa: ANN202
        jax, jnp = jax_modules()
        f = jax.jit(lambda x, w, b: jnp.maximum(x * w + b, 0))
        args = [jax.device_put(a) for a in (x, w, b)]
        return lambda: f(*args).block_until_ready()

    return [
        Case(
            f"tanh(x*w+b)*sigmoid(x)+x {n // 2**20}M",
            "kernels",
            6 * n,
            16 * n,
            chain,
            {
                "numpy": lambda: lambda: np.tanh(x * w + b) / (1 + np.exp(-x)) + x,
                "torch": torch_chain,
                "jax": jax_chain,
            },
        ),
        Case(
            f"max(a*b+c, 0) {n // 2**20}M",
            "kernels",
            3 * n,
            16 * n,
            relu_fma,
            {
                "numpy": lambda: lambda: np.maximum(x * w + b, 0),
                "torch": torch_relu,
                "jax": jax_relu,
            },
        ),
    ]


def row_cases(threads: int, scale: int) -> list:
    rows = 4096 // scale
    rng = np.random.default_rng(1)
    a = _f32(rng, (rows, 4096))
    s = _f32(rng, (4 * rows, 1000))

    def graphc_sum(backend: str):  # noqa: ANN202
        x = gc.input("x", a.shape)
        f = gc.compile([x], gc.sum(x, axis=1), backend=backend)
        return lambda: f(a)

    def graphc_softmax(backend: str):  # noqa: ANN202
        x = gc.input("x", s.shape)
        f = gc.compile([x], gc.softmax(x, axis=1), backend=backend)
        return lambda: f(s)

    def numpy_softmax() -> np.ndarray:
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def torch_sum():  # noqa: ANN202
        torch = torch_module(threads)
        t = torch.from_numpy(a)
        return lambda: t.sum(dim=1)

    def torch_softmax():  # noqa: ANN202
        torch = torch_module(threads)
        t = torch.from_numpy(s)
        return lambda: torch.softmax(t, dim=1)

    def jax_sum():  # noqa: ANN202
        jax, jnp = jax_modules()
        f, t = jax.jit(lambda x: jnp.sum(x, axis=1)), jax.device_put(a)
        return lambda: f(t).block_until_ready()

    def jax_softmax():  # noqa: ANN202
        jax, jnp = jax_modules()
        f, t = jax.jit(lambda x: jax.nn.softmax(x, axis=1)), jax.device_put(s)
        return lambda: f(t).block_until_ready()

    return [
        Case(
            f"row sum {a.shape[0]}x{a.shape[1]}",
            "kernels",
            a.size,
            a.nbytes + 4 * a.shape[0],
            graphc_sum,
            {"numpy": lambda: lambda: a.sum(axis=1), "torch": torch_sum, "jax": jax_sum},
        ),
        Case(
            f"softmax rows {s.shape[0]}x{s.shape[1]}",
            "kernels",
            5 * s.size,
            2 * s.nbytes,
            graphc_softmax,
            {"numpy": lambda: numpy_softmax, "torch": torch_softmax, "jax": jax_softmax},
        ),
    ]


def gemm_cases(threads: int, sizes: tuple) -> list:
    cases = []
    for n in sizes:
        rng = np.random.default_rng(n)
        a, b = _f32(rng, (n, n)), _f32(rng, (n, n))

        def graphc_gemm(backend: str, a=a, b=b):  # noqa: ANN202
            x, y = gc.input("a", a.shape), gc.input("b", b.shape)
            f = gc.compile([x, y], x @ y, backend=backend)
            return lambda: f(a, b)

        def torch_gemm(a=a, b=b):  # noqa: ANN202
            torch = torch_module(threads)
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            return lambda: ta @ tb

        def jax_gemm(a=a, b=b):  # noqa: ANN202
            jax, jnp = jax_modules()
            f = jax.jit(jnp.matmul)
            ja, jb = jax.device_put(a), jax.device_put(b)
            return lambda: f(ja, jb).block_until_ready()

        cases.append(
            Case(
                f"gemm {n}^3 float32",
                "kernels",
                2 * n**3,
                3 * a.nbytes,
                graphc_gemm,
                {"numpy": lambda a=a, b=b: lambda: a @ b, "torch": torch_gemm, "jax": jax_gemm},
            )
        )
    return cases


def kernel_cases(threads: int, quick: bool = False) -> list:
    scale = 16 if quick else 1
    sizes = (128, 256) if quick else (256, 512, 1024)
    return (
        elementwise_cases(threads, scale) + row_cases(threads, scale) + gemm_cases(threads, sizes)
    )


__all__ = ["kernel_cases"]
