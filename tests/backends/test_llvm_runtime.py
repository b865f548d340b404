"""The llvm backend's runtime: one compiled function for every batch size, and several
Python threads calling it at once each get their own correct results."""

import threading

import numpy as np
import pytest

import graphc as gc

rng = np.random.default_rng(0)


def test_one_compiled_function_serves_every_batch_size():
    N = gc.dim("N")
    x = gc.input("x", (N, 3))
    W = gc.param("W", (3, 2), seed=0)
    y = gc.softmax(gc.tanh(x @ W) * 2.0)
    f = gc.compile([x], y, backend="llvm")
    ref = gc.compile([x], y)
    for n in (1, 5, 64, 3):
        xs = rng.standard_normal((n, 3)).astype(np.float32)
        np.testing.assert_allclose(f(xs), ref(xs), rtol=1e-6)


def test_four_threads_calling_one_function_get_correct_results():
    N = gc.dim("N")
    x = gc.input("x", (N, 16))
    W = gc.param("W", (16, 8), seed=1)
    y = gc.logsumexp(gc.relu(x @ W) - x[:, :8], axis=1)
    f = gc.compile([x], y, backend="llvm")
    ref = gc.compile([x], y)
    # two threads per shape (one plan, one size binding), each with its own data
    inputs = [rng.standard_normal((n, 16)).astype(np.float32) for n in (3000, 3000, 7, 7)]
    expected = [ref(xs) for xs in inputs]
    errors = []

    def hammer(k: int) -> None:
        for _ in range(100):
            got = f(inputs[k])
            if got.shape != expected[k].shape or not np.allclose(got, expected[k], rtol=1e-5):
                errors.append((k, got))

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_bounds_check_mode_traps_an_index_outside_a_buffer(monkeypatch):
    from llvmlite import ir

    from backends.llvm import codegen

    monkeypatch.setattr(codegen, "BOUNDS_CHECK", True)
    x = gc.input("x", (4, 3))
    y = gc.exp(x) + 1.0
    ok = gc.compile([x], y, backend="llvm")  # correct code passes the checks
    xs = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(ok(xs), np.exp(xs) + 1.0, rtol=1e-6)
    original = codegen.ModuleBuilder.offset

    def off_by_one(self, b, shape, index, loops):  # a deliberately wrong index
        return b.add(original(self, b, shape, index, loops), ir.Constant(codegen.I64, 1))

    monkeypatch.setattr(codegen.ModuleBuilder, "offset", off_by_one)
    broken = gc.compile([x], y, backend="llvm")
    with pytest.raises(gc.ExecutionError, match=r"kernel k0 .* indexed outside a buffer"):
        broken(xs)


def test_object_code_is_cached_on_disk_and_a_corrupt_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    x = gc.input("x", (5,))
    y = gc.tanh(x) * 3.0 - x
    xs = rng.standard_normal(5).astype(np.float32)
    first = gc.compile([x], y, backend="llvm")
    assert not first.executable.cache_hit
    (entry,) = tmp_path.glob("*.o")
    second = gc.compile([x], y, backend="llvm")
    assert second.executable.cache_hit
    np.testing.assert_allclose(second(xs), np.tanh(xs) * 3.0 - xs, rtol=1e-6)
    entry.write_bytes(entry.read_bytes()[:-7] + b"garbage")  # a corrupt (or truncated) entry
    third = gc.compile([x], y, backend="llvm")
    assert not third.executable.cache_hit  # detected, rebuilt, never trusted
    np.testing.assert_allclose(third(xs), np.tanh(xs) * 3.0 - xs, rtol=1e-6)
    assert gc.compile([x], y, backend="llvm").executable.cache_hit  # and written again


def test_every_returned_array_is_the_callers_own():
    N = gc.dim("N")
    x = gc.input("x", (N, 3), dtype="float64")
    W = gc.param("W", (3,), value=np.ones(3), dtype="float64")
    y = gc.tanh(x * W)
    new_W = W - 0.1 * gc.sum(y, axis=0)
    f = gc.compile(
        [x], [y, y, gc.reshape(y, (N * 3,)), x, new_W], updates={W: new_W}, backend="llvm"
    )
    a = np.arange(6.0).reshape(2, 3) / 10
    first = f(a)
    kept = [np.array(v) for v in first]
    second = f(a + 1)
    for before, now in zip(kept, first):  # the second call wrote new arrays
        np.testing.assert_array_equal(before, now)
    y1, y2, flat, x_back, w_out = second
    assert not np.shares_memory(y1, y2) and not np.shares_memory(y1, flat)
    assert not np.shares_memory(x_back, a + 1) and not np.shares_memory(w_out, W.value)
    np.testing.assert_allclose(y1, np.tanh((a + 1) * kept[4]), rtol=1e-12)
    w_out[:] = 123.0  # the caller's copy: the parameter is untouched
    assert not np.any(W.value == 123.0)


def test_a_result_nobody_holds_is_reused_and_one_still_held_never_is():
    x = gc.input("x", (1000,), dtype="float64")
    f = gc.compile([x], gc.exp(x) * 2.0, backend="llvm")
    a = np.linspace(-1, 1, 1000)
    y = f(a)
    address = y.ctypes.data
    del y  # dropped: its memory is used again
    assert f(a).ctypes.data == address
    held = f(a)
    part = held[10:20]
    del held  # a view still holds it
    again = f(a + 1)
    assert again.ctypes.data != part.base.ctypes.data
    np.testing.assert_allclose(part, 2 * np.exp(a[10:20]), rtol=1e-12)
    np.testing.assert_allclose(again, 2 * np.exp(a + 1), rtol=1e-12)


def test_sgd_steps_with_reused_arrays_equal_the_numpy_backend():
    results = {}
    for backend in ("numpy", "llvm"):
        x = gc.input("x", (8, 3), dtype="float64")
        W = gc.param("W", (3, 2), value=np.full((3, 2), 0.5), dtype="float64")
        loss = gc.sum(gc.tanh(x @ W) ** 2)
        f = gc.compile([x], loss, updates={W: W - 0.1 * gc.grad(loss, W)}, backend=backend)
        data = np.random.default_rng(0).normal(size=(8, 3))
        results[backend] = [float(f(data)) for _ in range(6)] + [W.value.copy()]
    np.testing.assert_allclose(results["llvm"][:6], results["numpy"][:6], rtol=1e-12)
    np.testing.assert_allclose(results["llvm"][6], results["numpy"][6], rtol=1e-12)
