"""Losses and encodings against numpy/scipy: one_hot, softmax_cross_entropy, mse."""

import numpy as np
import pytest
import scipy.special

import graphc as gc

from .oracle import as64, assert_close, assert_shape_error, dtypes, normal, rng, run

N = gc.dim("N")


# one_hot ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
@pytest.mark.parametrize("label_dtype", ["int32", "int64"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
def test_one_hot_matches_eye(shape, label_dtype, dtype):
    t = rng(1).integers(0, 4, shape).astype(label_dtype)
    got = run(lambda x: gc.one_hot(x, 4, dtype=dtype), t)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, np.eye(4, dtype=dtype)[t])


def test_one_hot_default_dtype_and_depth_types():
    t = np.array([0, 2, 1], np.int32)
    got = run(lambda x: gc.one_hot(x, np.int64(3)), t)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.eye(3)[t])
    got = run(lambda x: x + gc.one_hot(np.array([1, 0]), 2), np.zeros((2, 2), np.float32))
    np.testing.assert_array_equal(got, np.eye(2)[[1, 0]])
    # the depth is a dim like any other: later shape ops see a sympy integer
    assert run(lambda x: gc.pad(gc.one_hot(x, 3), 1), t).shape == (5, 5)


@pytest.mark.parametrize("n", [1, 1000])
def test_one_hot_symbolic(n):
    t = rng(2).integers(0, 10, n).astype(np.int32)
    got = run(lambda x: gc.one_hot(x, 10), t, shapes=[(N,)])
    np.testing.assert_array_equal(got, np.eye(10, dtype=np.float32)[t])


def test_one_hot_errors():
    t = gc.input("t", (3,), dtype="int32")
    x = gc.input("x", (3,))
    assert_shape_error(lambda: gc.one_hot(x, 4), "one_hot", (3,))
    assert_shape_error(lambda: gc.one_hot(t, 0), "one_hot", (3,))
    assert_shape_error(lambda: gc.one_hot(t, 2.0), "one_hot", (3,))
    f = gc.compile([t], gc.one_hot(t, 4), backend="numpy")
    with pytest.raises(RuntimeError, match=r"one_hot .*labels must lie in \[0, 4\), got \[4\]"):
        f(np.array([0, 4, 1], np.int32))


# softmax_cross_entropy ----------------------------------------------------------------------


def sce_ref(logits, target, eps=0.0):
    """-sum(q * log_softmax(z)), q = (1 - eps) * onehot + eps / K (PyTorch's label_smoothing)."""
    z = as64(logits)
    k = z.shape[-1]
    log_p = scipy.special.log_softmax(z, axis=-1)
    q = np.eye(k)[target] if np.issubdtype(target.dtype, np.integer) else as64(target)
    q = (1 - eps) * q + eps / k
    return -np.sum(q * log_p, axis=-1)


def sce_torch_form(logits, labels, eps):
    """PyTorch's documented form: (1 - eps) * nll + eps * mean over classes of -log p."""
    log_p = scipy.special.log_softmax(as64(logits), axis=-1)
    nll = -np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
    return (1 - eps) * nll + eps * np.mean(-log_p, axis=-1)


def probabilities(r, shape, dtype):
    return scipy.special.softmax(2 * r.standard_normal(shape), axis=-1).astype(dtype)


@dtypes
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("shape", [(6, 5), (5,), (2, 3, 4), (1, 1)], ids=str)
def test_sce_integer_labels(shape, eps, dtype):
    r = rng(3)
    z = normal(3)(r, shape, dtype)
    t = r.integers(0, shape[-1], shape[:-1]).astype(np.int32)
    got = run(lambda a, b: gc.softmax_cross_entropy(a, b, label_smoothing=eps), z, t)
    assert_close(got, sce_ref(z, t, eps), dtype)
    assert_close(got, sce_torch_form(z, t, eps), dtype)


@dtypes
@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("shape", [(6, 5), (5,), (2, 3, 4)], ids=str)
def test_sce_probability_targets(shape, eps, dtype):
    r = rng(4)
    z = normal(3)(r, shape, dtype)
    q = probabilities(r, shape, dtype)
    got = run(lambda a, b: gc.softmax_cross_entropy(a, b, label_smoothing=eps), z, q)
    assert_close(got, sce_ref(z, q, eps), dtype)


@dtypes
def test_sce_one_hot_targets_equal_integer_labels(dtype):
    r = rng(5)
    z = normal()(r, (8, 3), dtype)
    t = r.integers(0, 3, 8).astype(np.int64)
    by_label, by_prob = run(
        lambda a, b: [
            gc.softmax_cross_entropy(a, b, label_smoothing=0.1),
            gc.softmax_cross_entropy(a, gc.one_hot(b, 3, dtype=dtype), label_smoothing=0.1),
        ],
        z,
        t,
    )
    assert_close(by_label, by_prob.astype(np.float64), dtype)


@dtypes
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_sce_is_stable_for_huge_logits(scale, dtype):
    r = rng(6)
    z = (scale * np.sign(r.standard_normal((6, 4))) + r.standard_normal((6, 4))).astype(dtype)
    t = r.integers(0, 4, 6).astype(np.int32)
    q = probabilities(r, (6, 4), dtype)
    by_label, by_prob, mean = run(
        lambda a, b, c: [
            gc.softmax_cross_entropy(a, b, label_smoothing=0.1),
            gc.softmax_cross_entropy(a, c),
            gc.mean(gc.softmax_cross_entropy(a, b)),
        ],
        z,
        t,
        q,
    )
    for got in (by_label, by_prob, mean):
        assert np.all(np.isfinite(got))
    assert_close(by_label, sce_ref(z, t, 0.1), dtype)
    assert_close(by_prob, sce_ref(z, q), dtype)
    assert_close(mean, np.mean(sce_ref(z, t)), dtype)


@pytest.mark.parametrize("n", [1, 1000])
def test_sce_symbolic_batch(n):
    r = rng(7)
    z = normal()(r, (n, 10), "float32")
    t = r.integers(0, 10, n).astype(np.int32)
    got = run(lambda a, b: gc.mean(gc.softmax_cross_entropy(a, b)), z, t, shapes=[(N, 10), (N,)])
    assert_close(got, np.mean(sce_ref(z, t)), "float32")


def test_sce_accepts_int64_labels_for_an_int32_input():
    z = normal()(rng(8), (3, 4), "float64")
    logits, labels = gc.input("z", (3, 4), dtype="float64"), gc.input("t", (3,), dtype="int32")
    f = gc.compile([logits, labels], gc.softmax_cross_entropy(logits, labels), backend="numpy")
    t = np.array([3, 0, 1], dtype=np.int64)
    assert_close(f(z, t), sce_ref(z, t), "float64")


def test_sce_errors():
    z = gc.input("z", (4, 5))
    assert_shape_error(
        lambda: gc.softmax_cross_entropy(z, gc.input("t", (5,), dtype="int32")),
        "softmax_cross_entropy",
        (4, 5),
        (5,),
    )
    bad_target = gc.input("q", (4, 3))
    assert_shape_error(
        lambda: gc.softmax_cross_entropy(z, bad_target), "softmax_cross_entropy", (4, 5), (4, 3)
    )
    s = gc.input("s", ())
    assert_shape_error(lambda: gc.softmax_cross_entropy(s, s), "softmax_cross_entropy", ())
    with pytest.raises(ValueError, match="label_smoothing"):
        gc.softmax_cross_entropy(z, bad_target, label_smoothing=1.5)
    t = gc.input("t", (4,), dtype="int32")
    f = gc.compile([z, t], gc.softmax_cross_entropy(z, t), backend="numpy")
    with pytest.raises(RuntimeError, match="labels must lie in"):
        f(np.zeros((4, 5), np.float32), np.array([0, 1, 5, 2], np.int32))


# mse ----------------------------------------------------------------------------------------

MSE = {
    "mean": lambda d: np.mean(d * d),
    "sum": lambda d: np.sum(d * d),
    "none": lambda d: d * d,
}


@dtypes
@pytest.mark.parametrize("reduction", MSE)
@pytest.mark.parametrize("shape", [(4, 3), (7,), (), (2, 1, 3)], ids=str)
def test_mse_matches_numpy(shape, reduction, dtype):
    r = rng(9)
    a, b = normal()(r, shape, dtype), normal()(r, shape, dtype)
    got = run(lambda x, y: gc.mse(x, y, reduction=reduction), a, b)
    assert_close(got, MSE[reduction](as64(a) - as64(b)), dtype)


@dtypes
def test_mse_default_is_mean(dtype):
    r = rng(10)
    a, b = normal()(r, (5, 2), dtype), normal()(r, (5, 2), dtype)
    assert_close(run(gc.mse, a, b), np.mean((as64(a) - as64(b)) ** 2), dtype)


def test_mse_dtypes():
    a32, a64 = np.ones(3, np.float32), np.zeros(3, np.float64)
    assert run(gc.mse, a32, a64).dtype == np.float64
    assert run(gc.mse, a32, a32).dtype == np.float32
    assert run(gc.mse, np.arange(3, dtype=np.int32), a32).dtype == np.float32


@pytest.mark.parametrize("n", [1, 1000])
def test_mse_symbolic(n):
    r = rng(11)
    a, b = normal()(r, (n, 3), "float64"), normal()(r, (n, 3), "float64")
    for reduction in MSE:
        got = run(lambda x, y, k=reduction: gc.mse(x, y, k), a, b, shapes=[(N, 3), (N, 3)])
        assert_close(got, MSE[reduction](a - b), "float64")


def test_mse_errors():
    a, b = gc.input("a", (4, 3)), gc.input("b", (4, 1))
    assert_shape_error(lambda: gc.mse(a, b), "mse", (4, 3), (4, 1))
    with pytest.raises(ValueError, match="reduction"):
        gc.mse(a, a, reduction="avg")
