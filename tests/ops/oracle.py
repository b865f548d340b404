"""Shared helpers for the op tests: build on gc.inputs, run on the numpy backend, compare.

Every op is checked through the public API: `gc.input`s shaped like the test arrays
(or with symbolic dims), the op applied, `gc.compile(..., backend="numpy")`, and the
result compared with a plain numpy (or scipy) reference computed in float64.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import graphc as gc

FLOATS = ("float32", "float64")

# (rtol, atol) per result dtype; atol is scaled by the largest magnitude of the reference
TOL = {"float32": (1e-5, 1e-6), "float64": (1e-12, 1e-13)}

dtypes = pytest.mark.parametrize("dtype", FLOATS)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# domain samplers: each (rng, shape, dtype) -> array -----------------------------------------


def normal(scale: float = 1.0) -> Callable:
    def sample(r: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
        return (scale * r.standard_normal(shape)).astype(dtype)

    return sample


def uniform(lo: float, hi: float) -> Callable:
    def sample(r: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
        return r.uniform(lo, hi, shape).astype(dtype)

    return sample


def away_from_zero(lo: float = 0.5, hi: float = 3.0) -> Callable:
    """|value| in [lo, hi] with a random sign (denominators)."""

    def sample(r: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
        sign = np.where(r.random(shape) < 0.5, -1.0, 1.0)
        return (sign * r.uniform(lo, hi, shape)).astype(dtype)

    return sample


def small_ints(lo: int = -2, hi: int = 2) -> Callable:
    """Small integers as floats: comparisons and maximum/minimum meet ties."""

    def sample(r: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
        return r.integers(lo, hi + 1, shape).astype(dtype)

    return sample


def booleans(r: np.random.Generator, shape: tuple, dtype: str = "bool") -> np.ndarray:
    return np.asarray(r.random(shape) < 0.5)


# build, run, compare -------------------------------------------------------------------------


def inputs_like(arrays: Sequence[np.ndarray], shapes: Sequence[Any] | None = None) -> list:
    """One gc.input per array, with the array's dtype and shape (or the given shape)."""
    shapes = shapes or [a.shape for a in arrays]
    return [
        gc.input(f"a{k}", shape, dtype=a.dtype.name)
        for k, (a, shape) in enumerate(zip(arrays, shapes))
    ]


def run(build: Callable, *arrays: np.ndarray, shapes: Sequence[Any] | None = None) -> Any:
    """build(*inputs) compiled on the numpy backend and called with arrays.

    build may return one Tensor or a list; the result is an array or a tuple.
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    inputs = inputs_like(arrays, shapes)
    out = build(*inputs)
    f = gc.compile(inputs, out, backend="numpy")
    return f(*arrays)


def as64(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.astype(np.float64) if a.dtype.kind == "f" else a


def assert_close(
    got: Any, want: Any, dtype: str, scale: float | None = None, atol: float | None = None
) -> None:
    """got has dtype `dtype` and want's shape, and agrees within that dtype's tolerance.

    The absolute tolerance is the dtype's atol times `scale` (default: the largest finite
    magnitude of want, at least 1), or `atol` when given.
    """
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.dtype == np.dtype(dtype), f"dtype {got.dtype}, expected {dtype}"
    assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
    if dtype not in TOL:
        np.testing.assert_array_equal(got, want)
        return
    rtol, unit = TOL[dtype]
    if scale is None:
        finite = np.abs(want[np.isfinite(want)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
    atol = unit * scale if atol is None else atol
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


def here(fn: Callable) -> str:
    """'file.py:line' of a one-line lambda: where a test builds the failing node."""
    code = fn.__code__
    return f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"


def shape_text(shape: tuple) -> str:
    """A shape as graphc's messages print it: (3, 4), (3,), ()."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def assert_shape_error(build: Callable, op: str, *shapes: tuple) -> str:
    """build() raises gc.ShapeError naming op, every shape, and the lambda's own line."""
    with pytest.raises(gc.ShapeError) as info:
        build()
    message = str(info.value)
    assert op in message, message
    for s in shapes:
        assert shape_text(s) in message, (s, message)
    assert here(build) in message, (here(build), message)
    return message
