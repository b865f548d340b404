"""@gc.function: trace once per signature (array shapes and dtypes, static values)."""

import numpy as np
import pytest

import graphc as gc
from graphc import trace

rng = np.random.default_rng(0)


def test_traces_once_per_signature_and_computes_right_values():
    calls = []

    @gc.function
    def g(a, b):
        calls.append((a.shape, a.dtype))
        return gc.tanh(a @ b)

    a, b = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
    np.testing.assert_allclose(g(a, b), np.tanh(a @ b), rtol=1e-5)
    g(a * 2, b)  # new values, same signature: no retrace
    g(a=a, b=b)
    assert g.traces == 1 and len(calls) == 1
    assert calls[0][1] == "float32" and tuple(int(d) for d in calls[0][0]) == (3, 4)
    assert isinstance(g.compiled(a, b), gc.Function)
    assert g.traces == 1


def test_retraces_on_shape_and_dtype_changes():
    @gc.function(backend="numpy")
    def double(a):
        return a * 2.0

    double(np.ones((2, 3), np.float32))
    double(np.ones((5, 3), np.float32))  # shape
    out = double(np.ones((5, 3), np.float64))  # dtype
    assert out.dtype == np.float64
    assert double.traces == 3
    double(np.zeros((2, 3), np.float32))
    assert double.traces == 3  # all three are cached


def test_retraces_on_static_argument_changes():
    @gc.function
    def scale(a, factor, mode="mul"):
        return a * factor if mode == "mul" else a + factor

    a = np.ones(3, np.float32)
    np.testing.assert_array_equal(scale(a, 2.0), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(scale(a, 3.0), [3.0, 3.0, 3.0])
    assert scale.traces == 2
    np.testing.assert_array_equal(scale(a, 3.0, mode="add"), [4.0, 4.0, 4.0])
    assert scale.traces == 3
    scale(a, 3)  # int 3 is a different static value from float 3.0
    assert scale.traces == 4
    scale(a, 3.0, "mul")  # defaults are applied: same as scale(a, 3.0)
    assert scale.traces == 4


def test_tuples_and_lists_come_back_as_such():
    @gc.function
    def both(a):
        return a + 1.0, gc.sum(a)

    @gc.function
    def as_list(a):
        return [a * 2.0]

    a = np.arange(3, dtype=np.float32)
    result = both(a)
    assert isinstance(result, tuple) and len(result) == 2
    np.testing.assert_array_equal(result[0], a + 1)
    assert result[1] == 3.0
    listed = as_list(a)
    assert isinstance(listed, list) and len(listed) == 1


def test_params_are_read_at_run_time_without_retracing():
    W = gc.param("W", value=np.eye(2, dtype=np.float32))

    @gc.function
    def apply(x):
        return x @ W

    x = np.array([[1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(apply(x), [[1.0, 2.0]])
    W.value = 2 * np.eye(2)
    np.testing.assert_array_equal(apply(x), [[2.0, 4.0]])
    assert apply.traces == 1


def test_lists_scalars_and_constant_results():
    @gc.function
    def f(a, n):
        return a.sum() * float(n)

    assert f([1.0, 2.0], 2) == 6.0  # a list is an array (float64 here)
    assert f(np.float32(1.5), 2) == 3.0  # a numpy scalar is a 0-d array

    @gc.function
    def const(a):
        return 5.0

    assert const(np.zeros(2)) == 5.0


def test_varargs_and_kwargs():
    @gc.function
    def total(*arrays, **scales):
        out = arrays[0]
        for a in arrays[1:]:
            out = out + a
        for name in sorted(scales):
            out = out * scales[name]
        return out

    ones = np.ones(2, np.float32)
    np.testing.assert_array_equal(total(ones, ones), [2.0, 2.0])
    np.testing.assert_array_equal(total(ones, ones, ones, k=2.0), [6.0, 6.0])
    assert total.traces == 2
    total(ones, 2 * ones, 3 * ones, k=2.0)
    assert total.traces == 2


def test_unhashable_static_arguments_are_refused_clearly():
    @gc.function
    def f(a, options):
        return a

    with pytest.raises(TypeError, match="argument options is static.*hashable.*dict"):
        f(np.zeros(2), {"x": 1})


def test_bad_calls_are_reported():
    @gc.function
    def f(a, b):
        return a + b

    with pytest.raises(TypeError):
        f(np.zeros(2))  # missing argument, as in python
    with pytest.raises(gc.ShapeError, match="add"):
        f(np.zeros(2), np.zeros(3))


def test_module_doc_says_what_retraces():
    doc = trace.__doc__
    assert "retrace" in doc
    for cause in ("shape", "dtype", "static"):
        assert cause in doc


def test_namedtuples_come_back_and_bad_results_are_reported():
    import collections

    Pair = collections.namedtuple("Pair", "double half")

    @gc.function
    def f(a):
        return Pair(a * 2.0, a / 2.0)

    result = f(np.ones(2, np.float32))
    assert isinstance(result, Pair)
    np.testing.assert_array_equal(result.half, [0.5, 0.5])

    @gc.function
    def nothing(a):
        return None

    with pytest.raises(TypeError, match="must return a Tensor"):
        nothing(np.ones(2))


def test_lists_of_tensors_are_not_arrays():
    W = gc.param("W", (2, 2))

    @gc.function
    def f(x, weights):
        return x @ weights[0]

    x = np.ones((1, 2), np.float32)
    with pytest.raises(TypeError, match="argument weights.*give static values as a tuple"):
        f(x, [W])
    np.testing.assert_allclose(f(x, (W,)), x @ W.value, rtol=1e-6)  # a tuple is static
