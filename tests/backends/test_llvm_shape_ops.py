"""backend="llvm": the data-movement and loss op kernels (backends/llvm/shape_ops.py: pad,
pad_grad, slice, slice_grad, concat, take, take_grad, mse) agree with the numpy backend,
with symbolic sizes, their epilogues, and the gradients that produce the scatter kernels;
and the differential fuzzer's graphs compiled for llvm agree with the reference."""

import os

import numpy as np
import pytest

import graphc as gc
from graphc.node import ConstValue
from graphc.ops.registry import apply
from graphc.tensor import unwrap, wrap

from ..fuzz.check import Case, compare

rng = np.random.default_rng(0)
DTYPES = ["float32", "float64"]


def agree(inputs, outputs, *calls, rtol=None):
    """Compile for llvm and numpy once; every call (a tuple of arrays) agrees."""
    fast = gc.compile(inputs, outputs, backend="llvm")
    ref = gc.compile(inputs, outputs)
    for arrays in calls:
        got, want = fast(*arrays), ref(*arrays)
        if not isinstance(got, tuple):
            got, want = (got,), (want,)
        for a, b in zip(got, want):
            assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
            tol = rtol if rtol is not None else (1e-5 if a.dtype == np.float32 else 1e-12)
            scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)
    return fast


def normal(shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def anchors(f):
    """{anchor op: [kernels]} of a compiled function's kernels."""
    found: dict = {}
    for kernel in f.executable.kernels:
        if kernel.anchor is not None:
            found.setdefault(kernel.anchor.op, []).append(kernel)
    return found


# pad ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["constant", "reflect", "circular", "edge"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pad_modes_with_widths_on_several_axes(mode, dtype):
    N = gc.dim("N")
    x = gc.input("x", (N, 5, 4), dtype)
    # axis 0 is symbolic: reflect and circular fold a width beyond the bound size (N = 1, 2)
    # as numpy does; axes 1 and 2 are concrete (one reflection or wrap)
    outs = [gc.pad(x, ((2, 3), (0, 3), (2, 1)), mode) * 2.0 + 1.0, gc.pad(x, 1, mode)]
    f = agree([x], outs, *[(normal((n, 5, 4), dtype),) for n in (1, 2, 6)])
    assert "pad" in anchors(f)


def test_pad_constant_value_and_an_int_tensor():
    x = gc.input("x", (3, 4), "int32")
    y = gc.input("y", (2, 3), "float64")
    outs = [gc.pad(x, ((1, 0), (2, 2)), value=7.0), gc.pad(y, (3, 1), value=-2.5)]
    agree([x, y], outs, (rng.integers(-9, 9, (3, 4)).astype(np.int32), normal((2, 3), "float64")))


def test_reflecting_an_empty_symbolic_axis_raises():
    N = gc.dim("N")
    x = gc.input("x", (N, 2))
    f = gc.compile([x], gc.pad(x, ((1, 1), (0, 0)), "reflect"), backend="llvm")
    assert f(np.ones((2, 2), np.float32)).shape == (4, 2)
    with pytest.raises(gc.ExecutionError, match="cannot reflect-pad an empty axis"):
        f(np.ones((0, 2), np.float32))
    g = gc.compile([x], gc.pad(x, ((1, 1), (0, 0))), backend="llvm")  # constant mode: fine
    np.testing.assert_array_equal(g(np.ones((0, 2), np.float32)), np.zeros((2, 2)))


# slice ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_slices_with_negative_steps_clamping_and_symbolic_sizes(dtype):
    N = gc.dim("N")
    x = gc.input("x", (N, 6, 5), dtype)
    outs = [
        x[::-1, 1:5, ::2],
        x[-2:, ::-2, 3] + 1.0,
        x[1:, :, -3:-1] * 2.0,
        x[:3, 5:1:-2, -1:-10:-3],
        x[-100:100, -7:, 4:0:-1],
        x[:, 2, :][:, ::-1],
        x[-1],  # an int index on the symbolic axis
    ]
    f = agree([x], outs, *[(normal((n, 6, 5), dtype),) for n in (1, 2, 7)])
    assert len(anchors(f)["slice"]) >= len(outs) - 1


def test_an_int_index_outside_a_symbolic_axis_raises():
    N = gc.dim("N")
    x = gc.input("x", (N, 3))
    f = gc.compile([x], x[3] * 2.0, backend="llvm")
    np.testing.assert_allclose(f(np.ones((5, 3), np.float32)), 2.0)
    with pytest.raises(gc.ExecutionError, match="index is out of range"):
        f(np.ones((2, 3), np.float32))


# concat and mse -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_concat_of_three_pieces_on_a_middle_axis(dtype):
    N = gc.dim("N")
    a = gc.input("a", (N, 2, 3), dtype)
    b = gc.input("b", (N, 1, 3), dtype)
    c = gc.input("c", (N, 4, 3), dtype)
    outs = [
        gc.concat([a, b, c], axis=1) * 3.0 - 1.0,
        gc.concat([a, a, a[:, ::-1]], axis=-1)[:, :, 1:],
    ]
    calls = [tuple(normal((n, k, 3), dtype) for k in (2, 1, 4)) for n in (1, 4)]
    f = agree([a, b, c], outs, *calls)
    assert "concat" in anchors(f)


def test_concat_promotes_mixed_dtypes():
    a = gc.input("a", (2, 3), "int32")
    b = gc.input("b", (2, 2), "float32")
    agree(
        [a, b],
        gc.concat([a, b, a], axis=1),
        (np.arange(6, dtype=np.int32).reshape(2, 3), normal((2, 2), "float32")),
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_reductions(dtype):
    N = gc.dim("N")
    p = gc.input("p", (N, 3), dtype)
    t = gc.input("t", (N, 3), dtype)
    outs = [gc.mse(p, t), gc.mse(p, t, "sum") * 2.0, gc.mse(p, gc.tanh(t), "none") + 1.0]
    f = agree([p, t], outs, *[(normal((n, 3), dtype), normal((n, 3), dtype)) for n in (1, 5)])
    assert len(anchors(f)["mse"]) == 3


# take -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_take_and_its_gradient(dtype):
    a = gc.input("a", (6,), dtype)
    index = np.array([[0, 5, 5], [2, 2, 2], [1, 0, 3]])
    y = gc.take(a, index) * 2.0
    loss = gc.sum(gc.tanh(y) * gc.take(a, index[::-1]))
    f = agree([a], [y, loss, *gc.grad(loss, [a])], (normal(6, dtype),))
    assert {"take", "take_grad"} <= set(anchors(f))


def test_a_take_index_outside_a_symbolic_size_raises():
    N = gc.dim("N")
    a = gc.input("a", (N,))
    f = gc.compile([a], gc.take(a, np.array([0, 3])), backend="llvm")
    np.testing.assert_array_equal(f(np.arange(5, dtype=np.float32)), [0.0, 3.0])
    with pytest.raises(gc.ExecutionError, match="index is out of range"):
        f(np.arange(3, dtype=np.float32))


# gradients: slice_grad and pad_grad --------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_of_pad_slice_and_concat_graphs(dtype):
    N = gc.dim("N")
    x = gc.input("x", (N, 5, 4), dtype)
    w = gc.input("w", (N, 2, 4), dtype)
    terms = [gc.pad(x, ((1, 2), (0, 3), (2, 1)), m) for m in ("reflect", "circular", "edge")]
    terms += [gc.pad(x, ((0, 1), (2, 0), (1, 1)), value=0.5)]
    both = gc.concat([x, w, x], axis=1)  # its gradient slices with symbolic offsets
    stacked = gc.concat([x, x], axis=0)  # ... and bounds N, 2N
    terms += [both[:, ::-2], both[::-1, 3:-1, 1::3], stacked[1:, ::2]]
    loss = sum(gc.sum(gc.tanh(t) * t) for t in terms)
    grads = gc.grad(loss, [x, w])
    calls = [(normal((n, 5, 4), dtype), normal((n, 2, 4), dtype)) for n in (1, 3)]
    f = agree([x, w], [loss, *grads], *calls)
    assert {"pad_grad", "slice_grad", "pad", "slice", "concat"} <= set(anchors(f))


@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_kernels_run_their_epilogue_after_the_scatter(dtype):
    """pad_grad and take_grad scatter-add: their epilogue runs in a second pass, from a
    scratch buffer when the kernel does not store the anchor itself."""
    g = gc.input("g", (7, 6), dtype)
    h = gc.input("h", (3, 2), dtype)
    scale = gc.input("s", (6,), dtype)
    folded = wrap(apply("pad_grad", (unwrap(g),), widths=((2, 1), (1, 2)), mode="reflect"))
    wrapped = wrap(apply("pad_grad", (unwrap(g),), widths=((3, 0), (0, 3)), mode="circular"))
    index = np.array([[4, 0], [4, 4], [1, 5]])
    summed = wrap(apply("take_grad", (unwrap(h),), index=ConstValue(index), size=6))
    cut = wrap(
        apply("slice_grad", (unwrap(h),), slices=((1, None, 2), (None, None, -3)), shape=(6, 6))
    )
    outs = [folded * scale[:3] + 1.0, wrapped, gc.exp(wrapped), summed * 2.0, cut * 3.0]
    f = agree([g, h, scale], outs, (normal((7, 6), dtype), normal((3, 2), dtype), normal(6, dtype)))
    kernels = anchors(f)
    scattered = kernels["pad_grad"] + kernels["take_grad"]
    assert any(k.anchor not in k.outputs for k in scattered)  # a scratch buffer
    assert any(k.anchor in k.outputs and len(k.outputs) > 1 for k in scattered)


def test_an_epilogue_through_unit_reshapes_reads_and_stores_at_each_statements_index():
    """An op kernel's epilogue with statements of another rank (unit reshapes): each one is
    evaluated and stored at its own index, not the anchor's."""
    x = gc.input("x", (4, 5))
    c = gc.input("c", (4,))
    s = x[:, 1:2]  # (4, 1)
    inner = gc.tanh(gc.reshape(s, (4,))) * c  # (4,): a unit reshape away from the anchor
    outs = [gc.reshape(inner - c, (4, 1)) * 2.0 + s, inner]
    f = agree([x, c], outs, (normal((4, 5), "float32"), normal(4, "float32")))
    (kernel,) = anchors(f)["slice"]
    assert len(kernel.outputs) == 2


# the differential fuzzer's graphs on backend="llvm" -------------------------------------------


# every seed of the differential fuzzer (GRAPHC_FUZZ_START, GRAPHC_FUZZ_SEEDS: as test_fuzz.py)
START = int(os.environ.get("GRAPHC_FUZZ_START", "0"))
SEEDS = range(START, START + int(os.environ.get("GRAPHC_FUZZ_SEEDS", "600")))


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_fuzz_graphs_agree_with_the_reference(seed):
    case = Case(seed)
    g = case.graph
    f = gc.compile(g.inputs, g.roots, backend="llvm")  # every graph, the FFT convolutions too
    for n, (feeds, results) in zip(g.n_values, case.points):
        for name, r, o in zip(g.root_names(), results, f(*feeds)):
            why = compare(r, o, g.dtype)
            assert why is None, f"seed={seed}, N={n}, {name}: {why}"


@pytest.mark.parametrize("seed", range(START, START + 20), ids=lambda s: f"seed={s}")
def test_fuzz_graphs_under_bounds_checks(seed, monkeypatch):
    """GRAPHC_BOUNDS_CHECK=1 code (every load and store of the elementwise, reduction, shape,
    conv and pool kernels checked) runs the fuzzer's graphs without a trap, with the same
    values; GEMM and FFT kernels address their packed panels and rows unchecked."""
    from backends.llvm import codegen

    monkeypatch.setattr(codegen, "BOUNDS_CHECK", True)
    case = Case(seed)
    g = case.graph
    f = gc.compile(g.inputs, g.roots, backend="llvm")
    assert "status.kind" in f.source or not f.program.kernels.kernels
    for n, (feeds, results) in zip(g.n_values, case.points):
        for name, r, o in zip(g.root_names(), results, f(*feeds)):
            why = compare(r, o, g.dtype)
            assert why is None, f"seed={seed}, N={n}, {name}: {why}"
