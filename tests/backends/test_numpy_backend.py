"""The numpy reference backend: right values, freed intermediates, clear failures."""

import dataclasses
import weakref

import numpy as np
import pytest

import graphc as gc
from backends.numpy import Interpreter
from graphc.backend import ExecutionError, Program, get_backend
from graphc.ops import registry

rng = np.random.default_rng(0)


def mlp(dtype):
    N = gc.dim("N")
    x = gc.input("x", (N, 8), dtype=dtype)
    W1 = gc.param("W1", (8, 16), seed=1, dtype=dtype)
    b1 = gc.param("b1", value=rng.normal(size=16), dtype=dtype)
    W2 = gc.param("W2", (16, 4), seed=2, dtype=dtype)
    b2 = gc.param("b2", value=rng.normal(size=4), dtype=dtype)
    h = gc.relu(x @ W1 + b1)
    logits = h @ W2 + b2
    probs = gc.softmax(logits, axis=-1)
    return x, (W1, b1, W2, b2), logits, probs


def numpy_mlp(xs, W1, b1, W2, b2):
    h = np.maximum(xs @ W1 + b1, 0)
    logits = h @ W2 + b2
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return logits, e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-5), ("float64", 1e-12)])
def test_small_mlp_matches_handwritten_numpy(dtype, rtol):
    x, params, logits, probs = mlp(dtype)
    f = gc.compile([x], [logits, probs], backend="numpy")
    for n in (1, 5, 64):
        xs = rng.normal(size=(n, 8)).astype(dtype)
        got_logits, got_probs = f(xs)
        want_logits, want_probs = numpy_mlp(xs, *(p.value for p in params))
        assert got_logits.dtype == np.dtype(dtype) and got_probs.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got_logits, want_logits, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(got_probs, want_probs, rtol=rtol, atol=rtol)


def test_intermediates_are_freed_after_their_last_use(monkeypatch):
    alive = []  # weak references to every tanh result, in order
    seen = []  # how many earlier tanh results were alive at each tanh call
    opdef = registry.get("tanh")

    def spy(ctx, a):
        seen.append(sum(ref() is not None for ref in alive))
        out = opdef.impl(ctx, a)
        alive.append(weakref.ref(out))
        return out

    monkeypatch.setitem(registry.OPS, "tanh", dataclasses.replace(opdef, impl=spy))
    x = gc.input("x", (1000,))
    y = x
    for _ in range(20):
        y = gc.tanh(y)
    f = gc.compile([x], y, optimize=False)  # op by op (fused kernels: tests/backends/...kernels)
    xs = rng.normal(size=1000).astype(np.float32)
    out = f(xs)
    expected = xs
    for _ in range(20):
        expected = np.tanh(expected)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert seen[0] == 0
    assert max(seen) <= 1  # only the argument of the current tanh is still held
    assert f.executable.peak_live == 2
    assert sum(ref() is not None for ref in alive) == 0  # nothing kept after the call


def test_values_used_twice_live_until_their_last_use():
    x = gc.input("x", (3,))
    h = gc.exp(x)
    y = gc.sum(h * 2.0) + gc.sum(gc.tanh(h))
    f = gc.compile([x], y)
    xs = np.array([0.0, 1.0, -1.0], np.float32)
    assert f(xs) == pytest.approx(np.sum(np.exp(xs) * 2) + np.sum(np.tanh(np.exp(xs))))
    assert f.executable.peak_live < len(f.executable.order)


def test_roots_can_repeat_and_be_inputs_or_params():
    x = gc.input("x", (2,))
    W = gc.param("W", value=np.array([1.0, 2.0]))
    y = x * W
    f = gc.compile([x], [y, y, x, W], updates={W: W + y})
    xs = np.array([3.0, 4.0], np.float32)
    a, b, c, d = f(xs)
    np.testing.assert_array_equal(a, [3.0, 8.0])
    np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(c, xs)
    np.testing.assert_array_equal(d, [1.0, 2.0])
    np.testing.assert_array_equal(W.value, [4.0, 10.0])


def test_impls_receive_the_bindings(monkeypatch):
    received = []
    opdef = registry.get("relu")

    def spy(ctx, a):
        received.append(ctx)
        return opdef.impl(ctx, a)

    monkeypatch.setitem(registry.OPS, "relu", dataclasses.replace(opdef, impl=spy))
    N = gc.dim("N")
    x = gc.input("x", (N, 2))
    gc.compile([x], gc.relu(x))(np.zeros((7, 2), np.float32))
    (ctx,) = received
    assert ctx.shape == (7, 2) and ctx.dtype == "float32"
    assert ctx.bindings[N] == 7


def test_run_time_failures_name_the_op_and_where_it_was_built():
    t = gc.input("t", (3,), dtype="int32")
    f = gc.compile([t], gc.one_hot(t, 4))
    np.testing.assert_array_equal(f(np.array([0, 3, 1], np.int32)).sum(axis=0), [1, 1, 0, 1])
    with pytest.raises(ExecutionError, match=r"^one_hot \(built at .*test_numpy_backend.py:\d+\)"):
        f(np.array([0, 4, 1], np.int32))


def test_backend_is_found_by_name_and_explains_itself():
    build = get_backend("numpy")
    x = gc.input("x", (2,))
    program = Program(inputs=(x.node,), outputs=((x + 1.0).node,), updates=(), params=())
    executable = build(program)
    assert isinstance(executable, Interpreter)
    assert [n.op for n in executable.kernels] == ["add"]
    assert "add" in executable.source
    assert executable.explain().startswith("backend numpy: 1 ops")
