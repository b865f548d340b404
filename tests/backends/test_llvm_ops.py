"""backends/llvm/ops.py: the row-wise kernels (softmax, log_softmax, logsumexp, softmax
cross-entropy) agree with the numpy backend, on the unrolled path for short static rows
(vectorised across rows) and on the looped one, with fused epilogues, symbolic row counts
and threads."""

import numpy as np
import pytest

import graphc as gc

rng = np.random.default_rng(0)
RTOL = {"float32": 1e-6, "float64": 1e-12}


def agree(inputs, outputs, *arrays, dtype):
    fast = gc.compile(inputs, outputs, backend="llvm")
    ref = gc.compile(inputs, outputs)
    got, want = fast(*arrays), ref(*arrays)
    if not isinstance(got, tuple):
        got, want = (got,), (want,)
    rtol = RTOL[dtype]
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        finite = np.isfinite(b)
        np.testing.assert_array_equal(np.isfinite(a), finite)
        np.testing.assert_array_equal(a[~finite], b[~finite])  # the same infs and nans
        scale = max(1.0, np.max(np.abs(b[finite]), initial=0.0))
        np.testing.assert_allclose(a[finite], b[finite], rtol=rtol, atol=rtol * scale)
    return fast


def logits(shape, dtype):
    z = (rng.standard_normal(shape) * 5).astype(dtype)
    if shape[-1] >= 2:
        z.reshape(-1, shape[-1])[0, :2] = [1e4, -1e4]  # extreme logits stay finite
    return z


def row_ops(z, t, q):
    return [
        gc.softmax(z),
        gc.log_softmax(z),
        gc.logsumexp(z, -1),
        gc.logsumexp(z, -1, keepdims=True),
        gc.softmax_cross_entropy(z, t),
        gc.softmax_cross_entropy(z, t, label_smoothing=0.1),
        gc.softmax_cross_entropy(z, q, label_smoothing=0.2),
    ]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(37, 10), (16, 10), (5, 1), (40, 3), (9, 32), (11, 33), (7, 70)])
def test_rows_short_and_long_with_row_counts_off_the_vector_width(shape, dtype):
    # rows up to 32 long are unrolled (vectorised across rows); 33 and 70 take the loops
    z = gc.input("z", shape, dtype)
    t = gc.input("t", shape[:1], "int32")
    q = gc.input("q", shape, dtype)
    labels = rng.integers(0, shape[1], shape[0]).astype(np.int32)
    target = rng.random(shape).astype(dtype)
    agree([z, t, q], row_ops(z, t, q), logits(shape, dtype), labels, target, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_short_rows_of_a_symbolic_count_and_of_other_axes(dtype):
    N = gc.dim("N")
    z = gc.input("z", (N, 10), dtype)
    t = gc.input("t", (N,), "int32")
    q = gc.input("q", (N, 10), dtype)
    f = gc.compile([z, t, q], row_ops(z, t, q), backend="llvm")
    ref = gc.compile([z, t, q], row_ops(z, t, q))
    for n in (1, 17, 100):
        args = (logits((n, 10), dtype), rng.integers(0, 10, n).astype(np.int32),
                rng.random((n, 10)).astype(dtype))  # fmt: skip
        for a, b in zip(f(*args), ref(*args)):
            np.testing.assert_allclose(a, b, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e4)
    x = gc.input("x", (6, 5, 4), dtype)  # rows along a middle axis, and over two axes
    outs = [gc.softmax(x, 1), gc.log_softmax(x, 0), gc.logsumexp(x, (1, 2)), gc.logsumexp(x, 1)]
    agree([x], outs, logits((6, 5, 4), dtype), dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_epilogues_fused_after_short_row_kernels(dtype):
    n = 21
    z = gc.input("z", (n, 10), dtype)
    t = gc.input("t", (n,), "int32")
    b = gc.input("b", (10,), dtype)
    outs = [
        gc.softmax(z) - gc.one_hot(t, 10, dtype),  # the cross-entropy gradient
        gc.softmax(z) * 2.0 + b,
        gc.exp(gc.log_softmax(z)) * 3.0,
        gc.logsumexp(z, 1) * 0.5 + 1.0,
        gc.mean(gc.softmax_cross_entropy(z, t)),
    ]
    args = (logits((n, 10), dtype), rng.integers(0, 10, n).astype(np.int32),
            rng.standard_normal(10).astype(dtype))  # fmt: skip
    agree([z, t, b], outs, *args, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_infinite_logits_on_short_rows(dtype):
    z = gc.input("z", (4, 5), dtype)
    x = logits((4, 5), dtype)
    x[1, 2] = -np.inf  # one -inf entry: probability 0
    x[2] = -np.inf  # all -inf: logsumexp -inf, softmax nan, as numpy
    with np.errstate(invalid="ignore"):
        agree([z], [gc.softmax(z), gc.log_softmax(z), gc.logsumexp(z, 1)], x, dtype=dtype)


@pytest.mark.parametrize("classes", [10, 40])
def test_bad_labels_raise_on_both_paths(classes):
    z = gc.input("z", (5, classes), "float32")
    t = gc.input("t", (5,), "int32")
    f = gc.compile([z, t], gc.softmax_cross_entropy(z, t), backend="llvm")
    x = logits((5, classes), "float32")
    for bad in (classes, -1):
        with pytest.raises(gc.ExecutionError, match=r"labels must lie in \[0, K\)"):
            f(x, np.array([0, 1, bad, 3, 4], np.int32))


def test_short_rows_split_over_threads(monkeypatch):
    monkeypatch.setenv("GRAPHC_PARALLEL_MIN_WORK", "1")
    monkeypatch.setenv("GRAPHC_NUM_THREADS", "3")
    z = gc.input("z", (101, 10), "float64")
    t = gc.input("t", (101,), "int32")
    q = gc.input("q", (101, 10), "float64")
    args = (logits((101, 10), "float64"), rng.integers(0, 10, 101).astype(np.int32),
            rng.random((101, 10)))  # fmt: skip
    for out in row_ops(z, t, q):
        f = agree([z, t, q], out, *args, dtype="float64")
        assert f.executable.last_call_workers > 0
