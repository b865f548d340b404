"""backend="cuda-emulated": the generated CUDA C, compiled for the CPU with the emulation
header (backends/cuda/emulate.h), agrees with the numpy backend on every kernel kind, runs
an MLP training step and a conv net's gradients, and runs the differential fuzzer's graphs.

CASES is shared with test_cuda_render.py, which compiles the same kernels with NVRTC."""

import shutil

import numpy as np
import pytest

import graphc as gc

from ..fuzz.check import Case, compare

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="cuda-emulated needs g++")
rng = np.random.default_rng(0)


def normal(*shape, dtype="float64"):
    return rng.standard_normal(shape).astype(dtype)


def elementwise(dtype):
    N = gc.dim("N")
    x = gc.input("x", (N, 5), dtype)
    b = gc.input("b", (5,), dtype)
    s = gc.input("s", (N, 1), dtype)
    k = gc.input("k", (N, 5), "int32")
    y = gc.maximum(x * 2.0 + b, 0.0) - gc.abs(x) / (1.0 + s * s) + gc.where(x > b, x, s)
    y = y + gc.exp(-x * x) + gc.log(1.0 + x * x) + gc.tanh(x) + gc.sqrt(gc.abs(b))
    z = gc.sigmoid(x * 30.0) + gc.softplus(x * 50.0) + gc.relu(x) ** 3 + x**-2.0
    ints = (k * 3 + 1) ** 2 - gc.abs(k)
    outs = [y, z, ints, x < s, gc.minimum(k, 2)]
    feeds = [
        (
            normal(n, 5, dtype=dtype),
            normal(5, dtype=dtype),
            normal(n, 1, dtype=dtype),
            rng.integers(-5, 5, (n, 5)).astype(np.int32),
        )
        for n in (1, 7)
    ]
    return [x, b, s, k], outs, feeds


def reductions(dtype):
    N = gc.dim("N")
    x = gc.input("x", (N, 5), dtype)
    b = gc.input("b", (5,), dtype)
    k = gc.input("k", (N, 5), "int32")
    outs = [
        gc.mean((x - b) ** 2, axis=0),
        gc.sum(x),
        gc.max(x, axis=1, keepdims=True) * 3.0,
        gc.sum(x * x, axis=(0, 1), keepdims=True) + 1.0,
        gc.sum(k, axis=0),
        gc.max(k),
    ]
    feeds = [
        (
            normal(n, 5, dtype=dtype),
            normal(5, dtype=dtype),
            rng.integers(-9, 9, (n, 5)).astype(np.int32),
        )
        for n in (3, 300)  # 300 rows: more than one block's threads reduce axis 0
    ]
    return [x, b, k], outs, feeds


def matmuls(dtype):
    N = gc.dim("N")
    x = gc.input("x", (N, 5), dtype)
    W = gc.input("W", (5, 3), dtype)
    B = gc.input("B", (2, 3, 4), dtype)
    v = gc.input("v", (5,), dtype)
    h = gc.relu(x @ W + 1.0)
    outs = [h, x.T @ h, h @ W.T, B @ B.transpose((0, 2, 1)), x @ v, v @ W, B @ normal(4, 2)]
    feeds = [
        (
            normal(n, 5, dtype=dtype),
            normal(5, 3, dtype=dtype),
            normal(2, 3, 4, dtype=dtype),
            normal(5, dtype=dtype),
        )
        for n in (1, 37)
    ]
    return [x, W, B, v], outs, feeds


def rowwise(dtype):
    z = gc.input("z", (5, 4), dtype)
    t = gc.input("t", (5,), "int32")
    q = gc.input("q", (5, 4), dtype)
    outs = [
        gc.softmax(z),
        gc.log_softmax(z, 0),
        gc.logsumexp(z, 1),
        gc.logsumexp(z, keepdims=True),
        gc.softmax_cross_entropy(z, t),
        gc.softmax_cross_entropy(z, t, label_smoothing=0.1),
        gc.softmax_cross_entropy(z, q, label_smoothing=0.2),
        gc.one_hot(t, 4) * 2.0,
        gc.mse(z, q),
        gc.mse(z, q, reduction="none") + 1.0,
        gc.mse(z, q, reduction="sum"),
    ]
    logits = normal(5, 4, dtype=dtype) * 5
    logits[0] = [1e4, -1e4, 0, 3]  # extreme logits stay finite
    labels = rng.integers(0, 4, 5).astype(np.int32)
    return [z, t, q], outs, [(logits, labels, rng.random((5, 4)).astype(dtype))]


def data_movement(dtype):
    N = gc.dim("N")
    x = gc.input("x", (N, 5, 4), dtype)
    c = gc.input("c", (N, 2, 4), dtype)
    parts = [
        gc.pad(x, ((2, 3), (0, 3), (2, 1)), mode) * 2.0
        for mode in ("constant", "reflect", "circular", "edge")
    ]
    slices = [x[::-1, 1:5, ::2], x[-2:, ::-2, 3] + 1.0, x[:, 2, :][:, ::-1], x[-1]]
    joined = gc.concat([x, c, x[:, :1]], axis=1)
    taken = gc.take(gc.reshape(x, (-1,)), np.array([[0, 3], [2, 2]]))
    loss = sum(gc.sum(gc.tanh(p)) for p in parts + slices + [joined, taken])
    outs = parts + slices + [joined, taken, gc.grad(loss, x)]
    feeds = [(normal(n, 5, 4, dtype=dtype), normal(n, 2, 4, dtype=dtype)) for n in (2, 6)]
    return [x, c], outs, feeds


def convolutions(d):
    spatial = {1: (9,), 2: (7, 6), 3: (5, 4, 4)}[d]
    kernel = {1: (3,), 2: (3, 2), 3: (2, 2, 3)}[d]
    x = gc.input("x", (2, 4, *spatial), "float64")
    w = gc.input("w", (6, 2, *kernel), "float64")
    outs = []
    for algo in ("direct", "gemm"):
        for stride, padding, dilation, mode in [
            (1, 0, 1, "zeros"),
            (2, 1, 2, "zeros"),
            (1, 1, 1, "reflect"),
        ]:
            y = gc.conv(x, w, stride, padding, mode, dilation, groups=2, algo=algo)
            outs += [y, *gc.grad(gc.sum(gc.tanh(y) * y), [x, w])]
    return [x, w], outs, [(normal(2, 4, *spatial), normal(6, 2, *kernel))]


def pooling(d):
    spatial = (8, 6, 4)[:d]
    xs = rng.permutation(np.prod((2, 3, *spatial))).reshape(2, 3, *spatial) / 7.0  # no ties
    x = gc.input("x", xs.shape, "float64")
    outs = []
    for window, stride, padding in [(2, None, 0), (3, 2, 1)]:
        y, indices = gc.max_pool(x, window, stride, padding, return_indices=True)
        a = gc.avg_pool(x, window, stride, padding)
        up = gc.unpool(
            y,
            window,
            indices=indices,
            output_shape=spatial,
            stride=stride or window,
            padding=padding,
        )
        loss = gc.sum(gc.tanh(y) * y) + gc.sum(a * a)
        outs += [y, indices, a, up, gc.grad(loss, x)]
    return [x], outs, [(xs,)]


CASES = {
    **{f"elementwise-{t}": (elementwise, t) for t in ("float32", "float64")},
    **{f"reductions-{t}": (reductions, t) for t in ("float32", "float64")},
    **{f"matmul-{t}": (matmuls, t) for t in ("float32", "float64")},
    **{f"rowwise-{t}": (rowwise, t) for t in ("float32", "float64")},
    **{f"data-movement-{t}": (data_movement, t) for t in ("float32", "float64")},
    **{f"conv-{d}d": (convolutions, d) for d in (1, 2, 3)},
    **{f"pool-{d}d": (pooling, d) for d in (1, 2, 3)},
}


def agree(inputs, outputs, feeds, **options):
    fast = gc.compile(inputs, outputs, backend="cuda-emulated", **options)
    ref = gc.compile(inputs, outputs)
    for arrays in feeds:
        for a, b in zip(fast(*arrays), ref(*arrays)):
            assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
            tol = 1e-5 if a.dtype == np.float32 else 1e-12
            scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)
    return fast


@pytest.mark.parametrize("name", list(CASES))
def test_every_kernel_kind_agrees_with_numpy(name):
    build, arg = CASES[name]
    f = agree(*build(arg))
    assert "__global__ void k0" in f.source


def test_the_library_gemm_path_and_its_epilogue():
    inputs, outputs, feeds = matmuls("float64")
    f = agree(inputs, outputs, feeds, gemm="library")
    assert "k0_epilogue" in f.source or "_epilogue" in f.source
    assert "_tiled" not in f.source and "As[" not in f.source


def test_bad_labels_and_indices_raise():
    z = gc.input("z", (5, 4))
    t = gc.input("t", (5,), "int32")
    f = gc.compile([z, t], gc.softmax_cross_entropy(z, t), backend="cuda-emulated")
    logits = normal(5, 4, dtype="float32")
    assert f(logits, np.array([0, 1, 2, 3, 0], np.int32)).shape == (5,)
    with pytest.raises(gc.ExecutionError, match=r"labels must lie in \[0, K\).*cuda-emulated"):
        f(logits, np.array([0, 1, 2, 3, 9], np.int32))
    N = gc.dim("N")
    x = gc.input("x", (N, 2))
    g = gc.compile([x], gc.pad(x, ((1, 1), (0, 0)), "reflect"), backend="cuda-emulated")
    with pytest.raises(gc.ExecutionError, match="cannot reflect-pad an empty axis"):
        g(np.ones((0, 2), np.float32))


def test_an_mlp_trains_as_on_the_numpy_backend():
    from graphc.models import mlp

    def train(backend):
        model = mlp((12, 16, 10), seed=3)
        grads = gc.grad(model.loss, model.params)
        updates = {p: p - 0.1 * g for p, g in zip(model.params, grads)}
        step = gc.compile([model.x, model.t], model.loss, updates, backend=backend)
        data = np.random.default_rng(1)
        x = data.standard_normal((32, 12)).astype(np.float32)
        t = data.integers(0, 10, 32).astype(np.int32)
        losses = [float(step(x, t)) for _ in range(5)]
        return losses, [p.value for p in model.params]

    (want, want_params), (got, got_params) = train("numpy"), train("cuda-emulated")
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got[-1] < got[0]
    for a, b in zip(got_params, want_params):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_conv_net_gradient_matches_finite_differences():
    x = gc.input("x", (2, 1, 6, 6), "float64")
    w = gc.param("w", (3, 1, 3, 3), seed=0, dtype="float64")
    v = gc.param("v", (3 * 3 * 3, 4), seed=1, dtype="float64")
    h = gc.max_pool(gc.relu(gc.conv(x, w, padding=1)), 2)
    loss = gc.mean(gc.softplus(gc.reshape(h, (2, 27)) @ v))
    feeds = {x: normal(2, 1, 6, 6)}
    grads = gc.grad(loss, [w, v])
    f = gc.compile([x], grads, backend="cuda-emulated")
    ref = gc.compile([x], grads)
    for a, b in zip(f(feeds[x]), ref(feeds[x])):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# the differential fuzzer's graphs ------------------------------------------------------------

SEEDS = range(30)  # about 0.5 s of g++ per graph


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_fuzz_graphs_agree_with_the_reference(seed):
    case = Case(seed)
    g = case.graph
    try:
        f = gc.compile(g.inputs, g.roots, backend="cuda-emulated")
    except NotImplementedError as error:
        assert "complex values" in str(error), error
        pytest.skip("complex values (FFTs) are not supported by the cuda backend yet")
    for n, (feeds, results) in zip(g.n_values, case.points):
        for name, r, o in zip(g.root_names(), results, f(*feeds)):
            why = compare(r, o, g.dtype)
            assert why is None, f"seed={seed}, N={n}, {name}: {why}"
