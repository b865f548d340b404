"""The LLVM max_pool and pool_argmax kernels (taps unrolled, no bounds test without padding)
on the values that decide a window: nan (wins its window), ties (the first tap wins the
arg-max), -inf, and padding; against the numpy backend."""

import numpy as np
import pytest

import graphc as gc


def _awkward(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.integers(-3, 4, size=shape).astype(dtype)  # many ties
    flat = xs.reshape(-1)
    flat[rng.choice(flat.size, flat.size // 9, replace=False)] = np.nan
    flat[rng.choice(flat.size, flat.size // 9, replace=False)] = -np.inf
    return xs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("window, stride, padding", [(2, None, 0), (3, 2, 1), ((2, 3), 1, 0)])
def test_max_pool_and_argmax_with_nan_ties_and_padding(dtype, window, stride, padding):
    x = gc.input("x", (2, 3, 9, 10), dtype)
    y, indices = gc.max_pool(x, window, stride, padding, return_indices=True)
    xs = _awkward((2, 3, 9, 10), dtype)
    fast = gc.compile([x], [y, indices], backend="llvm")
    ref = gc.compile([x], [y, indices])
    (got_y, got_i), (want_y, want_i) = fast(xs), ref(xs)
    np.testing.assert_array_equal(got_y, want_y)  # nan where numpy has nan
    np.testing.assert_array_equal(got_i, want_i)
    assert np.isnan(got_y).any()  # the case is exercised
