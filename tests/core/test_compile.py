"""graphc.compile: Functions, updates, parameter values, and clear errors at call time."""

import os

import numpy as np
import pytest

import graphc as gc
from graphc.backend import ExecutionError
from graphc.node import toposort
from graphc.ops import registry

HERE = os.path.abspath(__file__)
rng = np.random.default_rng(0)


@pytest.fixture
def regression():
    N = gc.dim("N")
    x = gc.input("x", (N, 4))
    y = gc.input("y", (N, 3))
    W = gc.param("W", (4, 3), seed=0)
    b = gc.param("b", (3,), init="zeros")
    return x, y, W, b


def arrays(n, dtype=np.float32):
    return rng.normal(size=(n, 4)).astype(dtype), rng.normal(size=(n, 3)).astype(dtype)


# outputs -----------------------------------------------------------------------------------


def test_single_output_gives_an_array_and_a_list_gives_a_tuple(regression):
    x, y, W, b = regression
    xs, ys = arrays(5)
    pred = x @ W + b
    single = gc.compile([x], pred)(xs)
    assert isinstance(single, np.ndarray) and single.shape == (5, 3)
    np.testing.assert_allclose(single, xs @ W.value + b.value, rtol=1e-6)
    pair = gc.compile([x, y], [pred, gc.mean((pred - y) ** 2)])(xs, ys)
    assert isinstance(pair, tuple) and len(pair) == 2
    assert pair[1].shape == () and pair[1].dtype == np.float32
    (alone,) = gc.compile([x], [pred])(xs)
    np.testing.assert_array_equal(alone, single)
    assert gc.compile([x, y], (pred, y))(xs, ys)[1] is not ys  # outputs are copies


def test_inputs_by_keyword_and_a_single_tensor(regression):
    x, y, W, b = regression
    xs, ys = arrays(2)
    f = gc.compile([x, y], gc.sum(x @ W - y))
    assert f(x=xs, y=ys) == pytest.approx(f(xs, ys))
    assert f(xs, y=ys) == pytest.approx(f(xs, ys))
    g = gc.compile(x, x * 2.0)
    np.testing.assert_array_equal(g(xs), xs * 2)


def test_outputs_do_not_alias_inputs_or_params(regression):
    x, _, W, _ = regression
    xs, _ = arrays(2)
    out_x, out_w = gc.compile([x], [x, W])(xs)
    out_x[...] = 0
    out_w[...] = 0
    assert xs.any() and W.value.any()


# updates -----------------------------------------------------------------------------------


def test_sgd_on_least_squares_matches_numpy():
    N = gc.dim("N")
    x = gc.input("x", (N, 3), dtype="float64")
    t = gc.input("t", (N, 1), dtype="float64")
    W = gc.param("W", (3, 1), dtype="float64", seed=1)
    b = gc.param("b", (1,), dtype="float64", init="zeros")
    r = x @ W + b - t  # residuals
    loss = 0.5 * gc.sum(r * r)
    gW = x.T @ r  # d loss / dW, by hand
    gb = gc.sum(r, axis=0)  # d loss / db
    lr = 0.02
    step = gc.compile([x, t], loss, updates={W: W - lr * gW, b: b - lr * gb})

    xs = rng.normal(size=(20, 3))
    ts = xs @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    w_ref, b_ref = W.value.copy(), b.value.copy()
    for _ in range(100):
        res = xs @ w_ref + b_ref - ts
        loss_ref = 0.5 * np.sum(res * res)
        w_ref, b_ref = w_ref - lr * xs.T @ res, b_ref - lr * res.sum(axis=0)
        got = step(xs, ts)
        assert got == pytest.approx(loss_ref, rel=1e-12)
        np.testing.assert_allclose(W.value, w_ref, rtol=1e-12)
        np.testing.assert_allclose(b.value, b_ref, rtol=1e-12)
    assert W.value.dtype == np.float64
    np.testing.assert_allclose(W.value.ravel(), [1.0, -2.0, 0.5], atol=1e-6)
    assert b.value[0] == pytest.approx(0.3, abs=1e-6)


def test_updates_all_read_the_old_values():
    a = gc.param("a", value=np.array([1.0, 2.0]))
    b = gc.param("b", value=np.array([10.0, 20.0]))
    x = gc.input("x", (2,))
    swap = gc.compile([x], x + a, updates={a: b, b: a})
    np.testing.assert_array_equal(swap(np.zeros(2, np.float32)), [1.0, 2.0])  # output: old a
    np.testing.assert_array_equal(a.value, [10.0, 20.0])
    np.testing.assert_array_equal(b.value, [1.0, 2.0])
    swap(np.zeros(2, np.float32))
    np.testing.assert_array_equal(a.value, [1.0, 2.0])


def test_updates_without_outputs_and_of_unread_params():
    counter = gc.param("count", value=np.zeros((), np.int32), dtype="int32")
    tick = gc.compile([], [], updates={counter: counter + 1})
    assert tick() == ()
    tick()
    assert counter.value == 2 and counter.value.dtype == np.int32


def test_param_value_getter_and_setter(regression):
    x, _, W, b = regression
    f = gc.compile([x], x @ W + b)
    assert W.value.shape == (4, 3) and W.value.dtype == np.float32
    W.value = np.eye(4, 3)
    assert W.value.dtype == np.float32  # converted to the param's dtype
    b.value = [1.0, 2.0, 3.0]
    xs, _ = arrays(2)
    np.testing.assert_allclose(f(xs), xs[:, :3] + [1.0, 2.0, 3.0], rtol=1e-6)
    with pytest.raises(ValueError, match=r"'W'.*shape \(4, 3\).*\(3, 4\)"):
        W.value = np.zeros((3, 4))
    with pytest.raises(AttributeError, match="only params"):
        x.value = np.zeros((2, 4))
    with pytest.raises(AttributeError, match="no value"):
        _ = x.value
    assert gc.constant(np.arange(3)).value.tolist() == [0, 1, 2]
    assert gc.param("v", value=[[1.0, 2.0]]).value.shape == (1, 2)


# compile options, introspection ------------------------------------------------------------


def test_optimize_false_gives_the_same_values(regression):
    x, y, W, b = regression
    xs, ys = arrays(7)
    loss = gc.mean((gc.tanh(x @ W + b) - y) ** 2)
    fast = gc.compile([x, y], loss)
    plain = gc.compile([x, y], loss, optimize=False)
    assert plain(xs, ys) == pytest.approx(fast(xs, ys), rel=1e-6)


def test_explain_and_source_list_the_ops(regression):
    x, y, W, b = regression
    f = gc.compile([x, y], gc.mean((gc.relu(x @ W + b) - y) ** 2))
    text = f.explain()
    for op in ("matmul", "add", "relu", "sub", "pow", "mean"):
        assert op in text and op in f.source
    assert "backend 'numpy'" in text
    assert "2 inputs" in text
    plain = gc.compile([x, y], gc.mean((gc.relu(x @ W + b) - y) ** 2), optimize=False)
    assert [k.op for k in plain.kernels] == ["matmul", "add", "relu", "sub", "pow", "mean"]
    # optimized: the GEMM, then one pass over its output computing the mean of squares
    assert [k.ops() for k in f.kernels] == [["matmul"], ["add", "relu", "sub", "pow", "mean"]]
    assert "numpy" in repr(f)


def test_one_function_for_any_n(regression):
    x, y, W, b = regression
    f = gc.compile([x, y], [x @ W + b, gc.mean((x @ W + b - y) ** 2)])
    for n in (1, 1000, 3):
        xs, ys = arrays(n)
        pred, loss = f(xs, ys)
        assert pred.shape == (n, 3)
        expected = xs @ W.value + b.value
        np.testing.assert_allclose(pred, expected, rtol=1e-5, atol=1e-6)
        assert loss == pytest.approx(np.mean((expected - ys) ** 2), rel=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float32_and_float64_models(dtype):
    N = gc.dim("N")
    x = gc.input("x", (N, 4), dtype=dtype)
    W = gc.param("W", (4, 2), dtype=dtype, seed=3)
    out = gc.sigmoid(x @ W) * 2.0  # python scalars keep the tensor's dtype
    assert out.dtype == dtype
    xs = rng.normal(size=(6, 4)).astype(dtype)
    got = gc.compile([x], out)(xs)
    assert got.dtype == np.dtype(dtype)
    want = 2.0 / (1.0 + np.exp(-(xs @ W.value)))
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-12)


def test_integer_labels_of_any_width_that_fit():
    N = gc.dim("N")
    logits = gc.input("logits", (N, 3))
    t = gc.input("t", (N,), dtype="int32")
    f = gc.compile([logits, t], gc.softmax_cross_entropy(logits, t))
    zs = np.zeros((4, 3), np.float32)
    for labels in (
        np.array([0, 1, 2, 1], np.int64),
        np.array([0, 1, 2, 1], np.uint8),
        [0, 1, 2, 1],
    ):
        np.testing.assert_allclose(f(zs, labels), np.full(4, np.log(3.0)), rtol=1e-6)
    with pytest.raises(gc.BindError, match=r"input 't'.*int32.*outside"):
        f(zs, np.array([0, 1, 2, 2**40], np.int64))


def test_safe_casts_lists_and_byte_order_are_accepted():
    x = gc.input("x", (2,), dtype="float64")
    f = gc.compile([x], x * 2.0)
    np.testing.assert_array_equal(f(np.array([1.0, 2.0], np.float32)), [2.0, 4.0])
    np.testing.assert_array_equal(f([1, 2]), [2.0, 4.0])
    np.testing.assert_array_equal(f(np.array([1.0, 2.0], ">f8")), [2.0, 4.0])
    s = gc.input("s", ())
    assert gc.compile([s], s + 1.0)(2.5) == 3.5


# call-time errors --------------------------------------------------------------------------


def test_wrong_rank(regression):
    x, y, W, b = regression
    f = gc.compile([x], x @ W)
    with pytest.raises(gc.BindError, match=r"input 'x': expected rank 2 .*\(N, 4\).*rank 1"):
        f(np.zeros(4, np.float32))


def test_wrong_dtype(regression):
    x, y, W, b = regression
    f = gc.compile([x], x @ W)
    with pytest.raises(gc.BindError, match=r"input 'x': expected a float32 array, got float64"):
        f(np.zeros((2, 4)))
    t = gc.input("t", (3,), dtype="int32")
    g = gc.compile([t], t + 1)
    with pytest.raises(gc.BindError, match=r"expected an int32 array, got float32"):
        g(np.zeros(3, np.float32))
    with pytest.raises(gc.BindError, match="int32"):
        g([0.5, 1.5, 2.5])
    with pytest.raises(gc.BindError, match="input 't'"):
        g(["a", "b", "c"])


def test_inconsistent_sizes_name_the_input_that_bound_them(regression):
    x, y, W, b = regression
    f = gc.compile([x, y], gc.sum(x @ W - y))
    xs, _ = arrays(5)
    _, ys = arrays(6)
    with pytest.raises(gc.BindError) as info:
        f(xs, ys)
    message = str(info.value)
    assert "input 'y' axis 0" in message
    assert "N = 5, got 6" in message
    assert "N=5 was bound by input 'x' axis 0" in message
    with pytest.raises(gc.BindError, match=r"input 'x' axis 1: expected size 4, got 5"):
        f(np.zeros((5, 5), np.float32), ys)


def test_wrong_number_of_arrays_and_unknown_names(regression):
    x, y, W, b = regression
    f = gc.compile([x, y], gc.sum(x @ W - y))
    xs, ys = arrays(2)
    with pytest.raises(TypeError, match=r"expected 2 arrays \(x, y\), got 3"):
        f(xs, ys, ys)
    with pytest.raises(TypeError, match="missing arrays for inputs: y"):
        f(xs)
    with pytest.raises(TypeError, match="unknown input 'z'; inputs are x, y"):
        f(xs, z=ys)
    with pytest.raises(TypeError, match="given twice"):
        f(xs, ys, x=xs)


def test_unknown_backend_lists_the_known_ones(regression):
    x, _, W, _ = regression
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'; known backends: .*numpy"):
        gc.compile([x], x @ W, backend="tpu")
    assert "numpy" in gc.available_backends()


def test_unknown_op_name():
    with pytest.raises((KeyError, ValueError), match="unknown op 'nope'; known ops: .*matmul"):
        registry.get("nope")
    with pytest.raises((KeyError, ValueError), match="unknown op 'nope'"):
        registry.apply("nope", [])


def _labels_model():
    logits = gc.input("logits", (2, 3))
    t = gc.input("t", (2,), dtype="int32")
    return logits, t, gc.softmax_cross_entropy(logits, t)  # <- built here


def test_labels_out_of_range_name_the_op_and_where_it_was_built():
    logits, t, loss = _labels_model()
    f = gc.compile([logits, t], loss)
    with pytest.raises(ExecutionError) as info:
        f(np.zeros((2, 3), np.float32), np.array([0, 3], np.int32))
    message = str(info.value)
    line = _labels_model.__code__.co_firstlineno + 3
    assert message.startswith("softmax_cross_entropy (built at ")
    assert f"{HERE}:{line}" in message
    assert "[0, 3)" in message and "[3]" in message
    assert isinstance(info.value, RuntimeError)


def test_inputs_missing_from_compile(regression):
    x, y, W, b = regression
    with pytest.raises(ValueError, match=r"inputs not passed to compile: 'y' \(built at "):
        gc.compile([x], gc.sum(x @ W - y))
    with pytest.raises(ValueError, match="'x'"):
        gc.compile([y], [y], updates={W: W - gc.sum(x)})  # updates count too
    with pytest.raises(TypeError, match="must be gc.input placeholders"):
        gc.compile([x, W], x @ W)
    with pytest.raises(ValueError, match="listed twice"):
        gc.compile([x, x], x * 2.0)
    with pytest.raises(TypeError, match="must be a Tensor"):
        gc.compile([x], np.zeros(3))


def test_updates_must_match_the_param(regression):
    x, y, W, b = regression
    with pytest.raises(gc.ShapeError, match=r"param 'W' has shape \(3, 4\).*\(4, 3\)"):
        gc.compile([x], x @ W, updates={W: W.T})
    with pytest.raises(TypeError, match="update of param 'W' is float64, the param is float32"):
        gc.compile([x], x @ W, updates={W: W.astype("float64")})
    with pytest.raises(gc.ShapeError, match=r"param 'b' has shape \(N, 3\)"):
        gc.compile([x], x @ W, updates={b: x @ W})
    with pytest.raises(TypeError, match="keys must be params"):
        gc.compile([x], x @ W, updates={x: x})
    with pytest.raises(TypeError, match="must be a Tensor"):
        gc.compile([x], x @ W, updates={W: np.zeros((4, 3))})
    with pytest.raises(TypeError, match="must be a dict"):
        gc.compile([x], x @ W, updates=[(W, W)])


def test_inputs_with_equal_names_are_passed_by_position():
    a = gc.input("x", (2,))
    b = gc.input("x", (2,))
    f = gc.compile([a, b], a - b)
    np.testing.assert_array_equal(f(np.ones(2, np.float32), np.zeros(2, np.float32)), [1, 1])
    with pytest.raises(TypeError, match="2 inputs are named 'x'; pass their arrays by position"):
        f(x=np.ones(2, np.float32))


def test_run_time_errors_name_the_users_line_after_rewrites():
    t = gc.input("t", (3,), "int32")
    hot = gc.one_hot(t * 1, 4)  # simplify drops the *1 and rebuilds one_hot on t
    f = gc.compile([t], hot * 2.0)
    assert [n.op for n in toposort(f.program.outputs) if n.op == "mul"] == ["mul"]
    with pytest.raises(ExecutionError, match=r"one_hot \(built at .*test_compile.py:\d+\)"):
        f(np.array([0, 1, 7]))
