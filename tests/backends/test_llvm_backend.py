"""backend="llvm": the kernels it compiles agree with the numpy backend, and what it cannot
compile yet is a clear error at compile time."""

import numpy as np
import pytest

import graphc as gc

rng = np.random.default_rng(0)


def agree(inputs, outputs, *arrays, rtol=1e-5):
    fast = gc.compile(inputs, outputs, backend="llvm")
    ref = gc.compile(inputs, outputs)
    got, want = fast(*arrays), ref(*arrays)
    if not isinstance(got, tuple):
        got, want = (got,), (want,)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.max(np.abs(b))))
    return fast


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_elementwise_kernels_with_broadcasting_and_symbolic_sizes(dtype):
    N = gc.dim("N")
    x = gc.input("x", (N, 5), dtype)
    b = gc.input("b", (5,), dtype)
    s = gc.input("s", (N, 1), dtype)
    y = gc.maximum(x * 2.0 + b, 0.0) - gc.abs(x) / (1.0 + s * s) + gc.where(x > b, x, s)
    y = y + gc.exp(-x * x) + gc.log(1.0 + x * x) + gc.tanh(x) + gc.sqrt(gc.abs(b))
    for n in (1, 7):
        args = [rng.standard_normal(shape).astype(dtype) for shape in ((n, 5), (5,), (n, 1))]
        f = agree([x, b, s], y, *args)
    assert "graphc_main" in f.source


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_reductions_with_prologue_and_epilogue(dtype):
    x = gc.input("x", (6, 5), dtype)
    b = gc.input("b", (5,), dtype)
    outs = [
        gc.mean((x - b) ** 2, axis=0),
        gc.sum(x),
        gc.max(x, axis=1, keepdims=True) * 3.0,
        gc.sum(x * x, axis=(0, 1), keepdims=True) + 1.0,
    ]
    agree(
        [x, b],
        outs,
        rng.standard_normal((6, 5)).astype(dtype),
        rng.standard_normal(5).astype(dtype),
    )


def test_gemm_with_epilogue_and_transposed_operands():
    x = gc.input("x", (7, 5))
    W = gc.input("W", (5, 3))
    h = gc.relu(x @ W + 1.0)
    agree(
        [x, W],
        [h, x.T @ h, h @ W.T],
        rng.standard_normal((7, 5)).astype(np.float32),
        rng.standard_normal((5, 3)).astype(np.float32),
    )


def test_gradients_of_a_dense_layer_run_natively():
    x = gc.input("x", (8, 4), "float64")
    W = gc.param("W", (4, 3), seed=0, dtype="float64")
    b = gc.param("b", (3,), init="zeros", dtype="float64")
    loss = gc.mean(gc.tanh(x @ W + b) ** 2)
    agree([x], [loss, *gc.grad(loss, [W, b])], rng.standard_normal((8, 4)), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_family_cross_entropy_and_one_hot(dtype):
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
    ]
    logits = rng.standard_normal((5, 4)).astype(dtype) * 5
    logits[0] = [1e4, -1e4, 0, 3]  # extreme logits stay finite, as in the numpy reference
    labels = rng.integers(0, 4, 5).astype(np.int32)
    f = agree([z, t, q], outs, logits, labels, rng.random((5, 4)).astype(dtype))
    with pytest.raises(gc.ExecutionError, match=r"labels must lie in \[0, K\)"):
        f(logits, np.array([0, 1, 2, 3, 9], np.int32), rng.random((5, 4)).astype(dtype))


def test_unsupported_kernels_are_a_clear_compile_error():
    c = gc.input("c", (5,))
    with pytest.raises(NotImplementedError, match=r"llvm backend: kernel k\d+ \(op circulant"):
        gc.compile([c], gc.structured.circulant(c) * 2.0, backend="llvm")


def test_a_gemm_epilogue_with_several_outputs_of_other_ranks():
    # fuzz seed 207: a 1x1 conv lowered to a batched GEMM whose epilogue stores three outputs,
    # two of them through unit reshapes; each must be indexed by its own elements
    N = gc.dim("N")
    x = gc.input("x", (N, 4, 4), "float64")
    w = gc.input("w", (1, 4, 1), "float64")
    y = gc.conv(x, w, algo="gemm")
    s = gc.sqrt(y * y + 0.5)
    outs = [s, y, gc.grad(gc.sum(s * 0.3), x)]
    agree([x, w], outs, rng.standard_normal((4, 4, 4)), rng.standard_normal((1, 4, 1)), rtol=1e-12)


@pytest.mark.parametrize("algo", ["direct", "gemm"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_convolutions_and_their_gradients(algo, d):
    spatial = {1: (9,), 2: (7, 6), 3: (5, 4, 4)}[d]
    kernel = {1: (3,), 2: (3, 2), 3: (2, 2, 3)}[d]
    x = gc.input("x", (2, 4, *spatial), "float64")
    w = gc.input("w", (6, 2, *kernel), "float64")
    for stride, padding, dilation, mode in [
        (1, 0, 1, "zeros"),
        (2, 1, 2, "zeros"),
        (1, 1, 1, "reflect"),
    ]:
        y = gc.conv(x, w, stride, padding, mode, dilation, groups=2, algo=algo)
        outs = [y, *gc.grad(gc.sum(gc.tanh(y) * y), [x, w])]
        agree(
            [x, w],
            outs,
            rng.standard_normal((2, 4, *spatial)),
            rng.standard_normal((6, 2, *kernel)),
            rtol=1e-12,
        )


@pytest.mark.parametrize("d", [1, 2, 3])
def test_pooling_unpooling_and_their_gradients(d):
    spatial = (8, 6, 4)[:d]
    xs = rng.permutation(np.prod((2, 3, *spatial))).reshape(2, 3, *spatial) / 7.0  # no ties
    x = gc.input("x", xs.shape, "float64")
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
        agree([x], [y, indices, a, up, gc.grad(loss, x)], xs, rtol=1e-12)


def test_bad_max_unpool_indices_are_an_error_not_a_wild_write():
    y = gc.input("y", (1, 1, 2))
    indices = gc.input("i", (1, 1, 2), "int64")
    f = gc.compile(
        [y, indices], gc.unpool(y, 2, indices=indices, output_shape=(4,)), backend="llvm"
    )
    np.testing.assert_array_equal(
        f(np.ones((1, 1, 2), np.float32), np.array([[[1, 2]]])), [[[0, 1, 1, 0]]]
    )
    with pytest.raises(gc.ExecutionError):
        f(np.ones((1, 1, 2), np.float32), np.array([[[1, 99]]]))


def test_a_chain_of_800_elementwise_ops_is_one_kernel_without_recursion_limits():
    x, a, b = gc.input("x", (33,), dtype="float64"), gc.input("a", ()), gc.input("b", ())
    y = x
    for _ in range(400):
        y = y * a + b  # a, b are inputs: the chain stays 800 ops long
    f = gc.compile([x, a, b], y, backend="llvm")
    assert len(f.program.kernels.kernels) == 1
    xv = np.linspace(-1, 1, 33)
    expected = xv.copy()
    for _ in range(400):
        expected = expected * np.float32(0.999) + np.float32(0.001)
    np.testing.assert_allclose(f(xv, np.float32(0.999), np.float32(0.001)), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "shape, axes",
    [
        ((37, 50), (1, 0)),  # tiles with remainders on both edges
        ((5, 16, 33), (2, 0, 1)),
        ((3, 1, 17, 40), (2, 3, 1, 0)),  # a size-1 axis among the outer ones
        ((2, 3, 19, 21), (2, 3, 0, 1)),
        ((7, 9, 11), (0, 2, 1)),
        ((4, 6, 8), (1, 0, 2)),  # the last axis stays last: no tiles
    ],
)
def test_transposes_in_tiles_with_an_epilogue(shape, axes):
    N = gc.dim("N")
    x = gc.input("x", (N, *shape[1:]), dtype="float64")
    y = gc.transpose(x, axes) * 2.0 + 1.0
    f = gc.compile([x], y, backend="llvm")
    assert any(
        k.anchor is not None and k.anchor.op == "transpose" for k in f.program.kernels.kernels
    )
    for n in (shape[0], 1):
        xv = np.random.default_rng(n).normal(size=(n, *shape[1:]))
        np.testing.assert_array_equal(f(xv), np.transpose(xv, axes) * 2.0 + 1.0)
