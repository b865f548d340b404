"""Convolution: every variant against an independent oracle, all algos agree, adjoints, errors."""

import itertools

import numpy as np
import pytest
import scipy.signal
import sympy

import graphc as gc
from graphc.node import toposort

rng = np.random.default_rng(0)
NP_MODES = {"zeros": "constant", "reflect": "reflect", "circular": "wrap", "edge": "edge"}


def reference_conv(x, w, stride, padding, mode, dilation, groups):
    """Explicit loops over output positions: pad, cut the dilated window, contract."""
    d = w.ndim - 2
    stride, dilation = (stride,) * d if np.isscalar(stride) else stride, dilation
    dilation = (dilation,) * d if np.isscalar(dilation) else dilation
    kernel = w.shape[2:]
    if padding == "valid":
        pads = [(0, 0)] * d
    elif padding == "same":
        spans = [dl * (k - 1) for k, dl in zip(kernel, dilation)]
        pads = [(s // 2, s - s // 2) for s in spans]
    elif padding == "full":
        pads = [(dl * (k - 1),) * 2 for k, dl in zip(kernel, dilation)]
    elif np.isscalar(padding):
        pads = [(padding, padding)] * d
    else:
        pads = [p if isinstance(p, tuple) else (p, p) for p in padding]
    xp = np.pad(x, [(0, 0), (0, 0)] + pads, mode=NP_MODES[mode])
    out = [
        (n - dl * (k - 1) - 1) // s + 1
        for n, k, s, dl in zip(xp.shape[2:], kernel, stride, dilation)
    ]
    c_in_g = x.shape[1] // groups
    c_out_g = w.shape[0] // groups
    y = np.zeros((x.shape[0], w.shape[0], *out))
    for pos in np.ndindex(*out):
        window = tuple(
            slice(p * s, p * s + dl * (k - 1) + 1, dl)
            for p, s, dl, k in zip(pos, stride, dilation, kernel)
        )
        for g in range(groups):
            patch = xp[(slice(None), slice(g * c_in_g, (g + 1) * c_in_g), *window)]
            wg = w[g * c_out_g : (g + 1) * c_out_g]
            y[(slice(None), slice(g * c_out_g, (g + 1) * c_out_g), *pos)] = np.tensordot(
                patch, wg, axes=(list(range(1, d + 2)), list(range(1, d + 2)))
            )
    return y


SPATIAL = {1: (11,), 2: (9, 8), 3: (7, 6, 5)}
KERNEL = {1: (4,), 2: (3, 2), 3: (3, 2, 2)}
VARIANTS = [
    (d, stride, padding, mode)
    for d, stride, padding, mode in itertools.product(
        [1, 2, 3],  # spatial rank
        [1, 2],  # stride
        [0, 1, "valid", "same", "full", "pairs"],  # padding
        ["zeros", "reflect", "circular", "edge"],  # padding_mode
    )
    if not (padding == "same" and stride != 1)  # as PyTorch: 'same' needs stride 1
]


def _padding(padding, d):
    return (
        tuple((1, 2) if k % 2 == 0 else (0, 1) for k in range(d)) if padding == "pairs" else padding
    )


@pytest.mark.parametrize("d, stride, padding, mode", VARIANTS)
def test_conv_matches_explicit_loops(d, stride, padding, mode):
    padding = _padding(padding, d)
    for dilation, groups in [(1, 1), (2, 2)]:
        xs = rng.standard_normal((2, 4, *SPATIAL[d]))
        ws = rng.standard_normal((6, 4 // groups, *KERNEL[d]))
        x = gc.input("x", xs.shape, "float64")
        w = gc.input("w", ws.shape, "float64")
        y = gc.conv(x, w, stride, padding, mode, dilation, groups, algo="direct")
        want = reference_conv(xs, ws, stride, padding, mode, dilation, groups)
        assert tuple(int(n) for n in y.shape) == want.shape
        np.testing.assert_allclose(gc.compile([x, w], y)(xs, ws), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d", [1, 2])
def test_single_channel_conv_is_scipy_correlate_and_convolve_is_scipy_convolve(d):
    xs = rng.standard_normal(SPATIAL[d])
    ws = rng.standard_normal(KERNEL[d])
    x = gc.input("x", (1, 1, *xs.shape), "float64")
    w = gc.constant(ws[None, None])
    f = gc.compile([x], [gc.conv(x, w), gc.convolve(x, w, padding="full")])
    valid, full = f(xs[None, None])
    np.testing.assert_allclose(valid[0, 0], scipy.signal.correlate(xs, ws, "valid"), rtol=1e-12)
    np.testing.assert_allclose(full[0, 0], scipy.signal.convolve(xs, ws, "full"), rtol=1e-12)


def test_output_sizes_are_symbolic_and_bind_at_call_time():
    N, H = gc.dim("N"), gc.dim("H")
    x = gc.input("x", (N, 3, H, 10))
    w = gc.param("w", (5, 3, 3, 3), seed=0)
    y = gc.conv(x, w, stride=2, padding=1)
    assert y.shape[2] - (sympy.floor((H - 1) / 2) + 1) == 0 and y.shape[3] == 5
    f = gc.compile([x], y)
    for n, h in [(1, 7), (3, 12)]:
        xs = rng.standard_normal((n, 3, h, 10)).astype(np.float32)
        want = reference_conv(
            xs.astype(np.float64), w.value.astype(np.float64), 2, 1, "zeros", 1, 1
        )
        np.testing.assert_allclose(f(xs), want, rtol=1e-4, atol=1e-5)


def test_same_padding_keeps_the_size_for_odd_and_even_kernels():
    x = gc.input("x", (1, 2, 10, 9))
    for k in (1, 2, 3, 4, 5):
        for dilation in (1, 2):
            y = gc.conv(x, gc.param("w", (3, 2, k, k), seed=k), padding="same", dilation=dilation)
            assert y.shape[2:] == (10, 9)


# the algorithms ---------------------------------------------------------------------------


def _algo_outputs(xs, ws, dtype, **options):
    x = gc.input("x", xs.shape, dtype)
    w = gc.input("w", ws.shape, dtype)
    results = {}
    for algo in ("direct", "gemm", "fft"):
        y = gc.conv(x, w, algo=algo, **options)
        gx, gw = gc.grad(gc.sum(y * y), [x, w])
        f = gc.compile([x, w], [y, gx, gw])
        results[algo] = f(xs.astype(dtype), ws.astype(dtype))
    return results


ALGO_CASES = [
    {"stride": 1, "padding": 0},
    {"stride": 2, "padding": 1},
    {"padding": "same", "padding_mode": "circular"},
    {"padding": "same", "dilation": 2, "groups": 2},
    {"padding": "full"},
]


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("case", range(len(ALGO_CASES)))
@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-4), ("float64", 1e-10)])
def test_all_algorithms_agree(d, case, dtype, rtol):
    options = ALGO_CASES[case]
    xs = rng.standard_normal((2, 4, *SPATIAL[d]))
    ws = rng.standard_normal((6, 4 // options.get("groups", 1), *KERNEL[d]))
    results = _algo_outputs(xs, ws, dtype, **options)
    for algo in ("gemm", "fft"):
        for got, want in zip(results[algo], results["direct"]):
            scale = np.max(np.abs(want))
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=algo)


def test_a_1x1_convolution_is_a_plain_matmul():
    x = gc.input("x", (2, 8, 5, 5))
    w = gc.param("w", (4, 8, 1, 1), seed=0)
    f = gc.compile([x], gc.conv(x, w, algo="gemm"))
    ops = {n.op for n in toposort(f.program.outputs)}
    assert "matmul" in ops and "im2col" not in ops and "conv" not in ops
    xs = rng.standard_normal((2, 8, 5, 5)).astype(np.float32)
    want = np.einsum("ncij,oc->noij", xs.astype(np.float64), w.value[:, :, 0, 0])
    np.testing.assert_allclose(f(xs), want, rtol=1e-5, atol=1e-6)


# conv_transpose ---------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize(
    "stride, padding, dilation, groups", [(1, 0, 1, 1), (2, 1, 1, 2), (3, 2, 2, 1)]
)
def test_conv_transpose_is_the_adjoint_of_conv(d, stride, padding, dilation, groups):
    xs = rng.standard_normal((2, 4, *SPATIAL[d]))
    ws = rng.standard_normal((6, 4 // groups, *KERNEL[d]))
    x = gc.input("x", xs.shape, "float64")
    w = gc.constant(ws)
    y = gc.conv(x, w, stride, padding, dilation=dilation, groups=groups)
    ys = rng.standard_normal(tuple(int(n) for n in y.shape))
    yt = gc.input("y", ys.shape, "float64")
    xt = gc.conv_transpose(yt, w, stride, padding, dilation, groups, output_shape=SPATIAL[d])
    conv_value = gc.compile([x], y)(xs)
    for algo in ("direct", "gemm"):
        xt = gc.conv_transpose(yt, w, stride, padding, dilation, groups, SPATIAL[d], algo=algo)
        transpose_value = gc.compile([yt], xt)(ys)
        np.testing.assert_allclose(
            np.sum(conv_value * ys), np.sum(xs * transpose_value), rtol=1e-12
        )


def test_conv_transpose_default_size_and_its_gradients():
    y = gc.input("y", (2, 3, 5, 4), "float64")
    w = gc.input("w", (3, 2, 3, 3), "float64")
    x = gc.conv_transpose(y, w, stride=2, padding=1)
    assert x.shape == (2, 2, 9, 7)  # (m - 1) * s - 2p + k
    feed = {y: rng.standard_normal((2, 3, 5, 4)), w: rng.standard_normal((3, 2, 3, 3))}
    weights = gc.constant(rng.standard_normal((2, 2, 9, 7)))
    assert gc.check_grad(gc.sum(x * weights), [y, w], feed) < 1e-7
    assert gc.check_jvp(x, [y, w], feed) < 1e-7


def test_conv_gradients_of_every_order():
    x = gc.input("x", (2, 2, 6, 5), "float64")
    w = gc.input("w", (3, 2, 3, 2), "float64")
    feed = {x: rng.standard_normal((2, 2, 6, 5)), w: rng.standard_normal((3, 2, 3, 2))}
    y = gc.conv(x, w, stride=(2, 1), padding=(1, (0, 1)), padding_mode="reflect")
    loss = gc.sum(gc.tanh(y) ** 2)
    assert gc.check_grad(loss, [x, w], feed) < 1e-7
    assert gc.check_jvp(y, [x, w], feed) < 1e-7
    # second order: the gradient's own gradient (conv_transpose and conv_wgrad differentiated)
    gx, gw = gc.grad(loss, [x, w])
    assert gc.check_grad(gc.sum(gx * gx) + gc.sum(gw * gw), [x, w], feed) < 1e-6


# separable filters --------------------------------------------------------------------------


def test_separable_low_pass_filter_is_two_1d_passes():
    taps = np.array([0.25, 0.5, 0.25])
    image = rng.standard_normal((1, 1, 12, 10))
    x = gc.input("x", image.shape, "float64")
    full = gc.conv(x, gc.constant(np.outer(taps, taps)[None, None]), padding=1)
    rows = gc.conv(x, gc.constant(taps.reshape(1, 1, 1, 3)), padding=(0, 1))
    both = gc.conv(rows, gc.constant(taps.reshape(1, 1, 3, 1)), padding=(1, 0))
    a, b = gc.compile([x], [full, both])(image)
    np.testing.assert_allclose(a, b, rtol=1e-13)


# errors -------------------------------------------------------------------------------------


def test_bad_convolutions_are_clear_errors():
    x = gc.input("x", (2, 3, 8, 8))
    with pytest.raises(gc.ShapeError, match=r"conv.*3 channels.*C_in/groups = 4.*test_conv.py"):
        gc.conv(x, gc.param("w", (5, 4, 3, 3), seed=0))
    with pytest.raises(gc.ShapeError, match="larger than the padded input"):
        gc.conv(x, gc.param("w", (5, 3, 9, 9), seed=0))
    with pytest.raises(gc.ShapeError, match="spatial axes"):
        gc.conv(gc.input("v", (2, 3, 8)), gc.param("w", (5, 3, 3, 3), seed=0))
    w = gc.param("w", (6, 3, 3, 3), seed=0)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        gc.conv(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match="unknown padding_mode 'mirror'"):
        gc.conv(x, w, padding_mode="mirror")
    with pytest.raises(ValueError, match="unknown algo 'toom'"):
        gc.conv(x, w, algo="toom")
    with pytest.raises(ValueError, match="stride must be"):
        gc.conv(x, w, stride=0)


# PyTorch as a second oracle ------------------------------------------------------------------


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed: second oracle skipped")


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
def test_conv_and_its_gradients_match_torch(d, mode):
    torch = _torch()
    xs = rng.standard_normal((2, 4, *SPATIAL[d]))
    ws = rng.standard_normal((6, 2, *KERNEL[d]))
    x = gc.input("x", xs.shape, "float64")
    w = gc.input("w", ws.shape, "float64")
    y = gc.conv(x, w, stride=2, padding=1, padding_mode=mode, dilation=1, groups=2)
    loss = gc.sum(y * y)
    got = gc.compile([x, w], [y, *gc.grad(loss, [x, w])])(xs, ws)
    layer = getattr(torch.nn, f"Conv{d}d")(4, 6, KERNEL[d], 2, 1, 1, 2, False, mode).double()
    layer.weight.data = torch.tensor(ws)
    xt = torch.tensor(xs, requires_grad=True)
    yt = layer(xt)
    (yt * yt).sum().backward()
    want = [yt.detach().numpy(), xt.grad.numpy(), layer.weight.grad.numpy()]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_transpose_matches_torch(d):
    torch = _torch()
    ys = rng.standard_normal((2, 6, *SPATIAL[d]))
    ws = rng.standard_normal((6, 2, *KERNEL[d]))
    transposed = getattr(torch.nn.functional, f"conv_transpose{d}d")
    want = transposed(torch.tensor(ys), torch.tensor(ws), None, 2, 1, 1, 2, 2).numpy()
    y = gc.input("y", ys.shape, "float64")
    size = want.shape[2:]  # with output_padding=1: one more than the smallest size
    x = gc.conv_transpose(
        y, gc.constant(ws), stride=2, padding=1, dilation=2, groups=2, output_shape=size
    )
    np.testing.assert_allclose(gc.compile([y], x)(ys), want, rtol=1e-12, atol=1e-12)


def test_each_algorithm_lowers_to_its_own_graph_and_auto_is_explained():
    x = gc.input("x", (2, 3, 16, 16))
    w = gc.param("w", (4, 3, 5, 5), seed=0)
    expected = {"direct": {"conv"}, "gemm": {"im2col", "matmul"}, "fft": {"rfft", "irfft"}}
    for algo, ops in expected.items():
        f = gc.compile([x], gc.conv(x, w, algo=algo))
        found = {n.op for n in toposort(f.program.outputs)}
        assert ops <= found, (algo, found)
        assert algo == "direct" or "conv" not in found
    f = gc.compile([x], gc.conv(x, w))
    assert "auto chose" in f.explain() and "direct" in f.explain() and "fft" in f.explain()
    # symbolic spatial sizes have no fft form: the lowering says so and uses gemm
    h = gc.dim("H")
    f = gc.compile([xh := gc.input("xh", (2, 3, h, 16))], gc.conv(xh, w, algo="fft"))
    assert "no fft form" in f.explain()


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("stride, dilation", [(1, 1), (2, 1), (1, 2)])
def test_periodic_convolution_is_an_fft_of_the_signals_own_size(d, stride, dilation):
    # conv with circular 'same' padding is a convolution on the circle: no padding, FFT of size n
    xs = rng.standard_normal((2, 4, *SPATIAL[d]))
    ws = rng.standard_normal((6, 2, *KERNEL[d]))
    x = gc.input("x", xs.shape, "float64")
    w = gc.constant(ws)
    options = {"padding": "same", "padding_mode": "circular", "dilation": dilation, "groups": 2}
    if stride != 1:  # 'same' needs stride 1: give the same (before, after) pairs explicitly
        spans = [dilation * (k - 1) for k in KERNEL[d]]
        options["padding"] = tuple((s // 2, s - s // 2) for s in spans)
    y_fft = gc.conv(x, w, stride=stride, algo="fft", **options)
    f = gc.compile([x], y_fft)
    found = {n.op for n in toposort(f.program.outputs)}
    assert "rfft" in found and "conv" not in found
    modes = {n.attrs["mode"] for n in toposort(f.program.outputs) if n.op == "pad"}
    assert "circular" not in modes  # only the kernel is zero-padded to the signal's size
    ffts = [n for n in toposort(f.program.outputs) if n.op == "rfft"]
    assert all(n.inputs[0].shape[-1] == SPATIAL[d][-1] for n in ffts)
    want = gc.compile([x], gc.conv(x, w, stride=stride, algo="direct", **options))(xs)
    np.testing.assert_allclose(f(xs), want, rtol=1e-10, atol=1e-10)
