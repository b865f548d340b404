"""backends/llvm/parallel.py: kernels split over threads give the numpy backend's results for
every thread count and size (0, 1, fewer rows than threads, odd), really run on started
threads, report errors flagged in any chunk, and stay correct under concurrent Python threads
and fork."""

import functools
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import graphc as gc

rng = np.random.default_rng(7)


@pytest.fixture
def threads(monkeypatch):
    """Set GRAPHC_NUM_THREADS; every kernel gets split (the work threshold is 1)."""
    monkeypatch.setenv("GRAPHC_PARALLEL_MIN_WORK", "1")

    def use(count: int) -> None:
        monkeypatch.setenv("GRAPHC_NUM_THREADS", str(count))

    return use


@functools.cache
def row_graph(dtype: str) -> tuple:
    """(llvm, numpy) functions of x (N, 5) and int labels (N,): elementwise, reductions over
    kept and over the batch axis, and the softmax family."""
    N = gc.dim("N")
    x = gc.input("x", (N, 5), dtype)
    labels = gc.input("labels", (N,), "int64")
    b = gc.constant(np.linspace(-1, 1, 5).astype(dtype))
    h = gc.tanh(x * 1.5 + b) * gc.sigmoid(x) + x
    outs = [
        h,
        gc.sum(gc.exp(x * 0.5), axis=1),
        gc.sum(x * x, axis=0),
        gc.max(x, axis=1, keepdims=True) * 2.0,
        gc.mean(h, axis=1),
        gc.softmax(x, axis=1),
        gc.log_softmax(x * 2.0, axis=1),
        gc.logsumexp(x, axis=1),
        gc.softmax_cross_entropy(x, labels),
        gc.softmax_cross_entropy(x, labels, label_smoothing=0.1),
    ]
    return gc.compile([x, labels], outs, backend="llvm"), gc.compile([x, labels], outs)


@functools.cache
def image_graph() -> tuple:
    """Direct convolutions and pooling on (N, 4, 7, 6) float64, with their gradients."""
    N = gc.dim("N")
    x = gc.input("x", (N, 4, 7, 6), "float64")
    w = gc.input("w", (6, 2, 3, 2), "float64")
    y = gc.conv(x, w, 1, 1, groups=2, algo="direct")
    m, where = gc.max_pool(y, 2, return_indices=True)
    a = gc.avg_pool(x, 3, 2, 1)
    loss = gc.sum(gc.tanh(m) * m) + gc.sum(a * a)
    outs = [y, m, where, a, *gc.grad(loss, [x, w])]
    return gc.compile([x, w], outs, backend="llvm"), gc.compile([x, w], outs)


@functools.cache
def transform_graph() -> tuple:
    """FFT (conv algo="fft": rfft, fft, transposes to the bins-first layout), Winograd tiles,
    im2col/col2im, batched GEMMs, and 3-D transposes, on (N, 3, 9, 10) float64."""
    N = gc.dim("N")
    x = gc.input("x", (N, 3, 9, 10), "float64")
    w = gc.input("w", (4, 3, 3, 3), "float64")
    a = gc.input("a", (3, 64, 64), "float64")
    outs = [
        gc.conv(x, w, padding="same", algo="fft"),
        gc.conv(x, w, padding=1, algo="winograd"),
        gc.conv(x, w, padding=(1, 2), algo="gemm"),  # im2col, and col2im in the gradient
        gc.transpose(x, (0, 3, 1, 2)) * 2.0,
        gc.transpose(x, (1, 0, 2, 3)) + 1.0,
        gc.matmul(a, a),  # a batch of three generated 64^3 GEMMs
    ]
    outs += gc.grad(gc.sum(outs[0] * outs[1]) + gc.sum(gc.tanh(outs[2])), [x, w])
    return gc.compile([x, w, a], outs, backend="llvm"), gc.compile([x, w, a], outs)


def agree(got: list, expected: list, rtol: float) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("count", [1, 2, 3, 7])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_row_kernels_equal_numpy_for_every_thread_count(threads, count, dtype):
    threads(count)
    f, ref = row_graph(dtype)
    for n in (0, 1, 2, 3, 11, 64):
        x = rng.standard_normal((n, 5)).astype(dtype)
        labels = rng.integers(0, 5, n)
        agree(f(x, labels), ref(x, labels), 1e-5 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_convolutions_and_pooling_equal_numpy_for_every_thread_count(threads, count):
    threads(count)
    f, ref = image_graph()
    w = rng.standard_normal((6, 2, 3, 2))
    for n in (0, 1, 3):
        x = rng.permutation(n * 4 * 7 * 6).reshape(n, 4, 7, 6) / 50.0  # no ties for max
        agree(f(x, w), ref(x, w), 1e-12)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_transforms_and_batched_gemms_equal_numpy_for_every_thread_count(threads, count):
    threads(count)
    f, ref = transform_graph()
    w = rng.standard_normal((4, 3, 3, 3))
    a = rng.standard_normal((3, 64, 64))
    for n in (0, 1, 5):
        x = rng.standard_normal((n, 3, 9, 10))
        agree(f(x, w, a), ref(x, w, a), 1e-10)
    if count > 1:
        assert f.executable.last_call_workers > 0


def test_odd_sizes_and_unit_axes(threads):
    threads(3)
    x = gc.input("x", (1, 1001))
    v = gc.input("v", (1001,))
    y = [gc.sigmoid(x) * v - 1.0, gc.sum(x * v, axis=1), gc.sum(x, axis=0)]
    f, ref = gc.compile([x, v], y, backend="llvm"), gc.compile([x, v], y)
    xs, vs = rng.standard_normal((1, 1001)).astype(np.float32), rng.standard_normal(1001)
    agree(f(xs, vs.astype(np.float32)), ref(xs, vs.astype(np.float32)), 1e-5)
    assert f.executable.last_call_workers > 0  # the leading unit axis is not the split one


def test_kernels_really_run_on_started_threads(threads, monkeypatch):
    N = gc.dim("N")
    x = gc.input("x", (N, 8))
    f = gc.compile([x], gc.tanh(x) * 2.0, backend="llvm")  # one kernel
    workers = {}
    for count, n in [(1, 11), (3, 11), (7, 2), (2, 1), (3, 0)]:
        threads(count)
        xs = rng.standard_normal((n, 8)).astype(np.float32)
        np.testing.assert_allclose(f(xs), np.tanh(xs) * 2, rtol=1e-6)
        workers[count, n] = f.executable.last_call_workers
    # chunks = min(threads, rows): all but the caller's run on threads it started
    assert workers == {(1, 11): 0, (3, 11): 2, (7, 2): 1, (2, 1): 0, (3, 0): 0}
    monkeypatch.delenv("GRAPHC_PARALLEL_MIN_WORK")  # the default threshold
    f(rng.standard_normal((4, 8)).astype(np.float32))
    assert f.executable.last_call_workers == 0  # a small kernel stays on the calling thread
    threads(2)
    big = rng.standard_normal((1 << 16, 8)).astype(np.float32)
    np.testing.assert_allclose(f(big), np.tanh(big) * 2, rtol=1e-6)
    assert f.executable.last_call_workers == 1


def test_an_error_flagged_in_any_chunk_reaches_the_caller(threads):
    threads(3)
    N = gc.dim("N")
    x = gc.input("x", (N, 4))
    labels = gc.input("labels", (N,), "int64")
    f = gc.compile([x, labels], gc.softmax_cross_entropy(x, labels), backend="llvm")
    xs = rng.standard_normal((9, 4)).astype(np.float32)
    for bad_row in (0, 4, 8):  # the caller's chunk, a middle one, the last one
        labels_ = np.zeros(9, dtype=np.int64)
        labels_[bad_row] = 4
        with pytest.raises(gc.ExecutionError, match=r"labels must lie in \[0, K\)"):
            f(xs, labels_)
    assert f(xs, np.ones(9, dtype=np.int64)).shape == (9,)  # a clean call after a failure


def test_four_python_threads_with_threaded_kernels(threads):
    threads(2)
    N = gc.dim("N")
    x = gc.input("x", (N, 16))
    W = gc.param("W", (16, 8), seed=1)
    y = gc.logsumexp(gc.relu(x @ W) - x[:, :8], axis=1) + gc.mean(gc.softmax(x, axis=1), axis=1)
    f = gc.compile([x], y, backend="llvm")
    ref = gc.compile([x], y)
    inputs = [rng.standard_normal((n, 16)).astype(np.float32) for n in (3, 50, 1, 200)]
    expected = [ref(xs) for xs in inputs]
    errors, workers = [], []

    def hammer(k: int) -> None:
        for _ in range(100):
            got = f(inputs[k])
            if got.shape != expected[k].shape or not np.allclose(got, expected[k], rtol=1e-5):
                errors.append((k, got))
        workers.append(f.executable.last_call_workers)

    pool = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors
    assert sorted(workers)[-1] > 0  # the threads with several rows did split their kernels


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_threaded_kernels(threads):
    threads(2)
    x = gc.input("x", (64, 3))
    f = gc.compile([x], gc.exp(x) - 1.0, backend="llvm")
    xs = rng.standard_normal((64, 3)).astype(np.float32)
    expected = np.exp(xs) - 1
    np.testing.assert_allclose(f(xs), expected, rtol=1e-5, atol=1e-7)
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 when it computes the same with threads
        ok = np.allclose(f(xs), expected, rtol=1e-5) and f.executable.last_call_workers == 1
        os._exit(0 if ok else 1)
    _, code = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(code) == 0


def test_a_bad_thread_count_is_a_clear_error(monkeypatch):
    x = gc.input("x", (3,))
    f = gc.compile([x], x * 2.0, backend="llvm")
    for bad in ("zero", "0", "-2"):
        monkeypatch.setenv("GRAPHC_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="GRAPHC_NUM_THREADS"):
            f(np.ones(3, dtype=np.float32))


@pytest.mark.parametrize("count", [2, 3])
def test_a_lone_blas_product_split_in_row_blocks(threads, count):
    # (m x k) @ (k x n) below OpenBLAS's threading size runs as blocks of 128 rows over
    # graphc's threads; a ragged last block, a transposed operand and a fused epilogue
    threads(count)
    N = gc.dim("N")
    a = gc.input("a", (N, 200))
    b = gc.input("b", (48, 200))
    outs = [gc.relu(gc.matmul(a, gc.transpose(b)) + 1.0), gc.matmul(gc.transpose(a), a)]
    f, ref = gc.compile([a, b], outs, backend="llvm"), gc.compile([a, b], outs)
    bs = rng.standard_normal((48, 200)).astype(np.float32)
    for n in (0, 1, 300, 1000):
        xs = rng.standard_normal((n, 200)).astype(np.float32)
        agree(f(xs, bs), ref(xs, bs), 1e-4)
    assert f.executable.last_call_workers > 0


POOL_CHILD = """
import os, numpy as np, graphc as gc
x = gc.input("x", (64, 100))
f = gc.compile([x], [gc.exp(x) * 2.0], backend="llvm")
xs = np.ones((64, 100), np.float32)
before = len(os.listdir("/proc/self/task"))
f(xs)
after = len(os.listdir("/proc/self/task"))
for _ in range(20):
    f(xs)
print(before, after, len(os.listdir("/proc/self/task")), f.executable.last_call_workers)
"""


def test_workers_are_pooled_and_reused():
    # in a fresh process: the first threaded call starts the pool's two workers, which stay
    # (asleep) for the next calls: the thread count grows once, by two, and no more
    env = dict(os.environ, GRAPHC_NUM_THREADS="3", GRAPHC_PARALLEL_MIN_WORK="1")
    out = subprocess.run(
        [sys.executable, "-c", POOL_CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    before, after, later, workers = map(int, out.stdout.split())
    assert after == before + 2 and later == after and workers == 2
