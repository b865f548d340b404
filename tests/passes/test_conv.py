"""The FFT lowerings of conv and of its derivatives conv_transpose and conv_wgrad
(graphc/passes/conv.py) mix channels with one batched complex matmul per bin (no reduction
over channels), and equal the direct convolution."""

import numpy as np
import pytest

import graphc as gc
from graphc.node import toposort
from graphc.ops.registry import get
from graphc.passes import optimize
from graphc.tensor import unwrap

SPATIAL = {1: (23,), 2: (13, 10), 3: (7, 6, 8)}
KERNEL = {1: (5,), 2: (4, 3), 3: (3, 2, 3)}


def _lowered(y):
    roots, _ = optimize([unwrap(y)])
    return toposort(roots)


def _case(d, groups, constant, padding_mode="zeros"):
    rng = np.random.default_rng(10 * d + groups)
    xs = rng.standard_normal((3, 4, *SPATIAL[d]))
    ws = rng.standard_normal((6, 4 // groups, *KERNEL[d]))
    x = gc.input("x", xs.shape, "float64")
    w = gc.constant(ws) if constant else gc.input("w", ws.shape, "float64")
    options = {"padding": "same", "groups": groups, "padding_mode": padding_mode}
    y_fft = gc.conv(x, w, algo="fft", **options)
    y_direct = gc.conv(x, w, algo="direct", **options)
    feeds = [xs] if constant else [xs, ws]
    inputs = [x] if constant else [x, w]
    return inputs, feeds, y_fft, y_direct


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_fft_conv_mixes_channels_with_one_batched_matmul(d, groups):
    _, _, y, _ = _case(d, groups, constant=False)
    nodes = _lowered(y)
    assert [n.op for n in nodes if get(n.op).kind == "reduce"] == []
    (mm,) = [n for n in nodes if n.op == "matmul"]
    bins = tuple(int(b) for b in mm.shape[:d])
    n, c_in, c_out = 3, 4, 6
    group_axis = (groups,) if groups > 1 else ()
    # (*bins, [g], N, C/g) @ (*bins, [g], C/g, C_out/g)
    assert tuple(mm.inputs[0].shape) == (*bins, *group_axis, n, c_in // groups)
    assert tuple(mm.inputs[1].shape) == (*bins, *group_axis, c_in // groups, c_out // groups)
    assert mm.dtype == "complex128"
    halves = [int(n.shape[-1]) for n in nodes if n.op == "rfft"]  # of x and of w
    assert halves == [bins[-1]] * 2


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_fft_conv_equals_direct_conv(d, groups, backend):
    for constant in (False, True):
        inputs, feeds, y_fft, y_direct = _case(d, groups, constant)
        f = gc.compile(inputs, [y_fft, y_direct], backend=backend)
        got, want = f(*feeds)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


@pytest.mark.parametrize("groups", [1, 2])
def test_periodic_fft_conv_equals_direct_conv(groups):
    inputs, feeds, y_fft, y_direct = _case(2, groups, True, padding_mode="circular")
    assert any(n.op == "matmul" for n in _lowered(y_fft))
    got, want = gc.compile(inputs, [y_fft, y_direct], backend="llvm")(*feeds)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


def _derivatives(d, groups, **options):
    """(inputs, feeds, {algo: [dx, dw]}) of conv's vjp, by fft and by direct convolutions."""
    rng = np.random.default_rng(d + 7 * groups)
    xs = rng.standard_normal((3, 4, *SPATIAL[d]))
    ws = rng.standard_normal((6, 4 // groups, *KERNEL[d]))
    x = gc.input("x", xs.shape, "float64")
    w = gc.input("w", ws.shape, "float64")
    shape = gc.conv(x, w, groups=groups, **options).shape
    dy = gc.input("dy", tuple(shape), "float64")
    grads = {}
    for algo in ("fft", "direct"):
        y = gc.conv(x, w, groups=groups, algo=algo, **options)
        grads[algo] = gc.vjp([y], [x, w], [dy])
    dys = rng.standard_normal(tuple(int(n) for n in shape))
    return [x, w, dy], [xs, ws, dys], grads


def _assert_close(got, want):
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())


@pytest.mark.parametrize("options", [{"padding": "same"}, {"padding": 1, "dilation": 2}])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_fft_derivatives_mix_with_matmuls_and_equal_direct_ones(d, groups, options):
    inputs, feeds, grads = _derivatives(d, groups, **options)
    nodes = _lowered(grads["fft"][0]) + _lowered(grads["fft"][1])
    assert not any(n.op.startswith("conv") or get(n.op).kind == "reduce" for n in nodes)
    assert sum(n.op == "matmul" for n in nodes) == 2  # conv_transpose's and conv_wgrad's
    f = gc.compile(inputs, grads["fft"] + grads["direct"], backend="llvm")
    dx, dw, dx_direct, dw_direct = f(*feeds)
    _assert_close([dx, dw], [dx_direct, dw_direct])


def test_strided_derivatives_have_no_fft_form_and_use_gemm():
    inputs, feeds, grads = _derivatives(2, 1, stride=2, padding=1)
    f = gc.compile(inputs, grads["fft"] + grads["direct"])
    why = "no fft form (symbolic sizes or stride > 1), using gemm"
    assert sum(why in line for line in f.pass_log) == 2
    dx, dw, dx_direct, dw_direct = f(*feeds)
    _assert_close([dx, dw], [dx_direct, dw_direct])
