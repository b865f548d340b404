"""Reductions against numpy/scipy: sum, mean, max, logsumexp, softmax, log_softmax."""

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphc as gc

from .oracle import FLOATS, as64, assert_close, assert_shape_error, dtypes, normal, rng, run

N = gc.dim("N")


def logsumexp_ref(a, axis=None, keepdims=False):
    """scipy's logsumexp with numpy's result shape (scipy makes a rank-0 result 1-D)."""
    shape = np.sum(a, axis=axis, keepdims=keepdims).shape
    return np.reshape(scipy.special.logsumexp(a, axis=axis, keepdims=keepdims), shape)


# name: (graphc function, method name or None, reference on float64)
REDUCTIONS = {
    "sum": (gc.sum, "sum", np.sum),
    "mean": (gc.mean, "mean", np.mean),
    "max": (gc.max, "max", np.max),
    "logsumexp": (gc.logsumexp, None, logsumexp_ref),
}

AXES = [None, 0, 1, -1, -3, (0, 2), (2, 0), (-1, 0), (0, 1, 2), ()]


@dtypes
@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_matches_numpy(name, axis, keepdims, dtype):
    fn, method, ref = REDUCTIONS[name]
    a = normal(3)(rng(1), (3, 4, 5), dtype)
    want = np.asarray(ref(as64(a), axis=axis, keepdims=keepdims))
    assert_close(run(lambda x: fn(x, axis=axis, keepdims=keepdims), a), want, dtype)
    if method:
        got = run(lambda x: getattr(x, method)(axis=axis, keepdims=keepdims), a)
        assert_close(got, want, dtype)
        assert_close(run(lambda x: getattr(x, method)(axis, keepdims), a), want, dtype)


@dtypes
@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("shape, axis", [((), None), ((1,), 0), ((1, 1), None), ((4, 1), 1)])
def test_reduction_of_rank0_and_size1(name, shape, axis, dtype):
    fn, _, ref = REDUCTIONS[name]
    a = normal()(rng(2), shape, dtype)
    for keepdims in (False, True):
        want = np.asarray(ref(as64(a), axis=axis, keepdims=keepdims))
        assert_close(run(lambda x, k=keepdims: fn(x, axis=axis, keepdims=k), a), want, dtype)


def test_reduction_dtypes():
    i = np.arange(12, dtype=np.int32).reshape(3, 4)
    b = i % 3 == 0
    assert run(gc.sum, i).dtype == np.int32
    assert run(gc.max, i).dtype == np.int32
    assert run(gc.mean, i).dtype == np.float32  # float reductions of ints compute in float32
    assert run(gc.logsumexp, i).dtype == np.float32
    np.testing.assert_array_equal(run(lambda x: x.sum(axis=0), i), i.sum(axis=0))
    np.testing.assert_allclose(run(lambda x: x.mean(axis=1), i), i.mean(axis=1))
    counted = run(lambda x: x.sum(axis=1), b)
    assert counted.dtype == np.int32
    np.testing.assert_array_equal(counted, b.sum(axis=1))
    assert run(lambda x: x.sum(axis=()), b).dtype == np.int32  # a bool sum counts even over ()
    np.testing.assert_array_equal(run(lambda x: x.sum(axis=()), b), b.astype(np.int32))
    assert run(gc.sum, np.ones(3, np.float32)).dtype == np.float32


@pytest.mark.parametrize("n", [1, 1000])
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_over_symbolic_axis(name, n):
    fn, _, ref = REDUCTIONS[name]
    a = normal()(rng(3), (n, 7), "float64")
    for axis in (None, 0, 1):
        got = run(lambda x, ax=axis: fn(x, axis=ax, keepdims=True), a, shapes=[(N, 7)])
        assert_close(got, ref(a, axis=axis, keepdims=True), "float64")
    x = gc.input("x", (N, 7))
    assert fn(x, axis=0).shape == (7,)
    assert fn(x, axis=1, keepdims=True).shape == (N, 1)


def test_reduction_axis_errors():
    x = gc.input("x", (3, 4))
    for fn in (gc.sum, gc.mean, gc.max, gc.logsumexp):
        name = fn.__name__
        assert_shape_error(lambda f=fn: f(x, axis=2), name)
        assert_shape_error(lambda f=fn: f(x, axis=(0, -2)), name)
    assert_shape_error(lambda: x.sum(axis=1.0), "sum")


# softmax / log_softmax / logsumexp ----------------------------------------------------------

SOFTMAX = {
    "softmax": (gc.softmax, scipy.special.softmax),
    "log_softmax": (gc.log_softmax, scipy.special.log_softmax),
}


@dtypes
@pytest.mark.parametrize("name", SOFTMAX)
@pytest.mark.parametrize(
    "shape, axis",
    [((4, 6), -1), ((4, 6), 0), ((2, 3, 5), 1), ((2, 3, 5), -3), ((7,), 0), ((3, 1), 1)],
)
def test_softmax_matches_scipy(name, shape, axis, dtype):
    fn, ref = SOFTMAX[name]
    a = normal(4)(rng(4), shape, dtype)
    assert_close(run(lambda x: fn(x, axis=axis), a), ref(as64(a), axis=axis), dtype)


@dtypes
def test_softmax_default_axis_is_last(dtype):
    a = normal()(rng(5), (3, 4), dtype)
    assert_close(run(gc.softmax, a), scipy.special.softmax(as64(a), axis=-1), dtype)
    assert_close(run(gc.log_softmax, a), scipy.special.log_softmax(as64(a), axis=-1), dtype)
    got = run(gc.softmax, a).sum(axis=-1)
    assert_close(got, np.ones(3), dtype)


@dtypes
@pytest.mark.parametrize("scale", [1e4, -1e4, 3e4])
def test_softmax_family_is_stable_for_huge_logits(scale, dtype):
    r = rng(6)
    a = (scale * np.sign(r.standard_normal((5, 8))) + r.standard_normal((5, 8))).astype(dtype)
    a[0] = scale  # ties at the top
    a[1, 0] = -abs(scale)  # one tiny probability
    sm, lsm, lse, lse_all = run(
        lambda x: [gc.softmax(x), gc.log_softmax(x), gc.logsumexp(x, axis=-1), gc.logsumexp(x)],
        a,
    )
    for got in (sm, lsm, lse, lse_all):
        assert np.all(np.isfinite(got))
    a64 = as64(a)
    assert_close(sm, scipy.special.softmax(a64, axis=-1), dtype)
    # log-probabilities are ~1e4 in size: compare with a tolerance relative to that scale
    assert_close(lsm, scipy.special.log_softmax(a64, axis=-1), dtype)
    assert_close(lse, scipy.special.logsumexp(a64, axis=-1), dtype)
    assert_close(lse_all, scipy.special.logsumexp(a64), dtype)
    np.testing.assert_allclose(sm[0], np.full(8, 1 / 8), rtol=TOL_TIGHT[dtype])


TOL_TIGHT = {"float32": 1e-6, "float64": 1e-15}


def test_logsumexp_with_infinities_matches_scipy():
    a = np.array([[-np.inf, -np.inf], [np.inf, 0.0], [-np.inf, 1.0]])
    got = run(lambda x: gc.logsumexp(x, axis=1), a)
    np.testing.assert_array_equal(got, scipy.special.logsumexp(a, axis=1))


def test_logsumexp_of_nothing_is_minus_infinity():
    a = np.zeros((0, 3), np.float32)
    got = run(lambda x: [gc.logsumexp(x), gc.logsumexp(x, axis=0)], a)
    np.testing.assert_array_equal(got[0], np.float32(-np.inf))  # log(0)
    np.testing.assert_array_equal(got[1], np.full(3, -np.inf, np.float32))


@pytest.mark.parametrize("n", [1, 1000])
def test_softmax_symbolic_batch(n):
    a = normal(3)(rng(7), (n, 10), "float32")
    sm, lsm = run(lambda x: [gc.softmax(x), gc.log_softmax(x, axis=0)], a, shapes=[(N, 10)])
    assert_close(sm, scipy.special.softmax(as64(a), axis=-1), "float32")
    assert_close(lsm, scipy.special.log_softmax(as64(a), axis=0), "float32")


def test_softmax_errors():
    s = gc.input("s", ())
    x = gc.input("x", (3, 4))
    assert_shape_error(lambda: gc.softmax(s), "softmax")
    assert_shape_error(lambda: gc.log_softmax(x, axis=2), "log_softmax")


@settings(max_examples=40, deadline=None)
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4),
    data=st.data(),
    dtype=st.sampled_from(FLOATS),
    keepdims=st.booleans(),
)
def test_property_reductions_any_axes(shape, data, dtype, keepdims):
    axes = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), max_size=len(shape)))
    axes = tuple(dict.fromkeys(a % len(shape) for a in axes))  # distinct
    a = normal()(rng(len(shape)), shape, dtype)
    got = run(lambda x: [gc.sum(x, axes, keepdims), gc.max(x, axes, keepdims)], a)
    assert_close(got[0], np.sum(as64(a), axis=axes, keepdims=keepdims), dtype)
    assert_close(got[1], np.max(as64(a), axis=axes, keepdims=keepdims), dtype)
