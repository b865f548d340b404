"""matmul against np.matmul: 1-D operands, batches with broadcasting, dtypes, symbolic sizes."""

import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc as gc

from .oracle import FLOATS, as64, assert_close, assert_shape_error, dtypes, normal, rng, run

N = gc.dim("N")

MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((1, 4), (4, 1)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((1, 3, 4), (6, 4, 2)),
    ((4,), (2, 4, 5)),
    ((2, 3, 4), (4,)),
    ((0, 4), (4, 3)),
    ((3, 0), (0, 2)),
]


@dtypes
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_matches_np_matmul(shapes, dtype):
    r = rng(1)
    a, b = normal()(r, shapes[0], dtype), normal()(r, shapes[1], dtype)
    want = np.matmul(as64(a), as64(b))
    assert_close(run(operator.matmul, a, b), want, dtype)
    assert_close(run(gc.matmul, a, b), want, dtype)


def test_matmul_promotes_and_takes_arrays():
    r = rng(2)
    a32 = normal()(r, (3, 4), "float32")
    b64 = normal()(r, (4, 2), "float64")
    got = run(gc.matmul, a32, b64)
    assert got.dtype == np.float64
    assert_close(got, as64(a32) @ b64, "float64")
    w = normal()(r, (4, 2), "float32")
    assert_close(run(lambda x: x @ w, a32), as64(a32) @ as64(w), "float32")
    assert_close(run(lambda x: w.T @ x.T, a32), as64(w).T @ as64(a32).T, "float32")
    i = np.arange(12, dtype=np.int32).reshape(3, 4)
    got = run(lambda x: x @ x.T, i)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, i @ i.T)


@pytest.mark.parametrize("n", [1, 1000])
@dtypes
def test_matmul_symbolic_batch(n, dtype):
    r = rng(3)
    a = normal()(r, (n, 6), dtype)
    w = normal()(r, (6, 3), dtype)
    got = run(lambda x, y: x @ y, a, w, shapes=[(N, 6), (6, 3)])
    assert_close(got, as64(a) @ as64(w), dtype)
    batched = normal()(r, (n, 2, 6), dtype)
    got = run(lambda x, y: x @ y, batched, w, shapes=[(N, 2, 6), (6, 3)])
    assert_close(got, as64(batched) @ as64(w), dtype)
    gram = run(lambda x: x.T @ x, a, shapes=[(N, 6)])  # contracts over the symbolic axis
    assert_close(gram, as64(a).T @ as64(a), dtype)


def test_matmul_errors():
    a, b = gc.input("a", (3, 4)), gc.input("b", (5, 2))
    assert_shape_error(lambda: a @ b, "matmul", (3, 4), (5, 2))
    v = gc.input("v", (5,))
    assert_shape_error(lambda: a @ v, "matmul", (3, 4), (5,))
    s = gc.input("s", ())
    assert_shape_error(lambda: gc.matmul(a, s), "matmul", (3, 4), ())
    p, q = gc.input("p", (2, 3, 4)), gc.input("q", (3, 4, 5))
    assert_shape_error(lambda: p @ q, "matmul", (2, 3, 4), (3, 4, 5))
    x, y = gc.input("x", (N, 4)), gc.input("y", (N, 4))
    assert_shape_error(lambda: x @ y, "matmul", (N, 4), (N, 4))


@settings(max_examples=40, deadline=None)
@given(
    batch_a=st.lists(st.integers(1, 3), max_size=2),
    batch_b=st.lists(st.integers(1, 3), max_size=2),
    n=st.integers(1, 4),
    k=st.integers(1, 4),
    m=st.integers(1, 4),
    vector=st.sampled_from(["", "a", "b", "ab"]),
    dtype=st.sampled_from(FLOATS),
)
def test_property_matmul_batches(batch_a, batch_b, n, k, m, vector, dtype):
    # make the batch shapes broadcastable: where they clash, one side becomes 1
    rank = max(len(batch_a), len(batch_b))
    ba = [1] * (rank - len(batch_a)) + batch_a
    bb = [1] * (rank - len(batch_b)) + batch_b
    bb = [y if x == y or x == 1 else 1 for x, y in zip(ba, bb)]
    shape_a = (k,) if "a" in vector else tuple(ba) + (n, k)
    shape_b = (k,) if "b" in vector else tuple(bb) + (k, m)
    r = rng(n * 100 + k * 10 + m)
    a, b = normal()(r, shape_a, dtype), normal()(r, shape_b, dtype)
    assert_close(run(operator.matmul, a, b), np.matmul(as64(a), as64(b)), dtype)
