"""Winograd's F(m, r) (graphc/ops/winograd.py): the Cook-Toom matrices, the tile ops against
their definition written as loops, their adjointness, and the convolution lowered with them
(algo="winograd") against the direct one on the numpy and llvm backends."""

import itertools

import numpy as np
import pytest

import graphc as gc
from graphc.ops import winograd
from graphc.ops.registry import get

BACKENDS = ["numpy", "llvm"]


@pytest.mark.parametrize("m, r", [(2, 3), (4, 3), (6, 3), (2, 5), (4, 5), (2, 7), (3, 2)])
def test_matrices_compute_a_correlation(m, r):
    at, g, bt = (np.asarray(a) for a in winograd.matrices(m, r))
    rng = np.random.default_rng(m * 10 + r)
    d, k = rng.standard_normal(m + r - 1), rng.standard_normal(r)
    want = np.array([d[i : i + r] @ k for i in range(m)])
    np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), want, rtol=1e-12, atol=1e-12)


def test_too_many_points_is_an_error():
    with pytest.raises(ValueError, match="F\\(9, 5\\)"):
        winograd.matrices(9, 5)


def _tiles_by_loops(x, mats, step, origin, count):
    n, c = x.shape[:2]
    out = np.zeros((len(mats[0]) * len(mats[1]), c, n * count[0] * count[1]))
    for nn, cc, i, j in itertools.product(range(n), range(c), range(count[0]), range(count[1])):
        patch = np.zeros((len(mats[0][0]), len(mats[1][0])))
        for u, v in np.ndindex(*patch.shape):
            y, z = origin[0] + i * step[0] + u, origin[1] + j * step[1] + v
            if 0 <= y < x.shape[2] and 0 <= z < x.shape[3]:
                patch[u, v] = x[nn, cc, y, z]
        t = np.asarray(mats[0]) @ patch @ np.asarray(mats[1]).T
        out[:, cc, nn * count[0] * count[1] + i * count[1] + j] = t.ravel()
    return out


LAYOUTS = [  # (mats from F(m, r), step, origin, tile count) per axis
    ((4, 3), (4, 4), (-1, -1), (3, 2)),  # a 'same' convolution's tiles
    ((2, 5), (2, 3), (-2, 1), (4, 3)),  # overlapping and gapped, one axis from inside
    ((2, 3), (5, 1), (0, -3), (2, 5)),
]


def _mats(fr, which):
    return tuple(winograd.matrices(*fr)[which] for _ in range(2))


@pytest.mark.parametrize("fr, step, origin, count", LAYOUTS)
def test_tiles_follow_their_definition(fr, step, origin, count):
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((2, 3, 9, 7))
    mats = _mats(fr, 2)
    x = gc.input("x", xs.shape, "float64")
    v = gc.lift(winograd.tiles)(x, mats, step, origin, count)
    got = gc.compile([x], [v])(xs)[0]
    np.testing.assert_allclose(got, _tiles_by_loops(xs, mats, step, origin, count), atol=1e-12)


@pytest.mark.parametrize("fr, step, origin, count", LAYOUTS)
def test_untiles_is_the_adjoint_of_tiles(fr, step, origin, count):
    # <tiles(x; M), v> = <x, untiles(v; M^T)> for every x, v
    rng = np.random.default_rng(1)
    mats = _mats(fr, 2)
    xs = rng.standard_normal((2, 3, 9, 7))
    x = gc.input("x", xs.shape, "float64")
    t = gc.compile([x], [gc.lift(winograd.tiles)(x, mats, step, origin, count)])(xs)[0]
    vs = rng.standard_normal(t.shape)
    v = gc.input("v", vs.shape, "float64")
    back = tuple(winograd.transpose(m) for m in mats)
    u = gc.lift(winograd.untiles)(v, back, step, origin, count, (9, 7))
    xt = gc.compile([v], [u])(vs)[0]
    assert float(np.sum(t * vs)) == pytest.approx(float(np.sum(xs * xt)), rel=1e-12)


def _conv_pair(xs, ws, backend, **options):
    x = gc.input("x", xs.shape, str(xs.dtype))
    w = gc.input("w", ws.shape, str(ws.dtype))
    y = gc.conv(x, w, algo="winograd", **options)
    y_ref = gc.conv(x, w, algo="direct", **options)
    dys = np.random.default_rng(2).standard_normal(tuple(int(d) for d in y.shape))
    dy = gc.input("dy", dys.shape, str(xs.dtype))
    dx = gc.vjp([y], [x], [dy])[0]
    dx_ref = gc.vjp([y_ref], [x], [dy])[0]
    f = gc.compile([x, w, dy], [y, dx], backend=backend)
    g = gc.compile([x, w, dy], [y_ref, dx_ref], backend="numpy", optimize=False)
    feeds = (xs, ws, dys.astype(xs.dtype))
    return f, f(*feeds), g(*feeds)


CONVS = [  # (input spatial, kernel, padding)
    ((10, 10), (3, 3), 1),
    ((11, 9), (3, 3), "same"),
    ((12, 13), (5, 5), 2),
    ((7, 8), (5, 5), "valid"),
    ((9, 9), (4, 4), 1),
    ((6, 6), (7, 7), 3),
    ((8, 11), (3, 5), "full"),
    ((5, 9), (2, 3), ((1, 0), (2, 1))),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spatial, kernel, padding", CONVS)
def test_winograd_conv_and_its_transpose_equal_direct(spatial, kernel, padding, backend):
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((2, 3, *spatial))
    ws = rng.standard_normal((4, 3, *kernel))
    f, got, want = _conv_pair(xs, ws, backend, padding=padding)
    ops = {k.anchor.op for k in f.program.kernels.kernels}
    assert {"winograd_tiles", "winograd_untiles"} <= ops
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("backend", BACKENDS)
def test_winograd_in_float32_is_as_close_as_its_rounding_allows(backend):
    # F(4, 3) in float32: errors a few times those of a direct sum (Lavin & Gray)
    rng = np.random.default_rng(4)
    xs = rng.standard_normal((2, 16, 20, 20)).astype(np.float32)
    ws = (rng.standard_normal((8, 16, 3, 3)) / 12).astype(np.float32)
    _, got, want = _conv_pair(xs, ws, backend, padding="same")
    for a, b in zip(got, want):
        assert a.dtype == np.float32
        assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


def test_epilogue_fuses_into_the_output_transform():
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((2, 4, 12, 12)).astype(np.float32)
    ws = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    bs = rng.standard_normal((5, 1, 1)).astype(np.float32)
    x = gc.input("x", xs.shape)
    y = gc.relu(gc.conv(x, gc.constant(ws), padding="same", algo="winograd") + gc.constant(bs))
    f = gc.compile([x], [y], backend="llvm")
    ref = gc.compile([x], [y], backend="numpy")
    np.testing.assert_allclose(f(xs)[0], ref(xs)[0], rtol=1e-5, atol=1e-5)
    kinds = [k.anchor.op for k in f.program.kernels.kernels]
    assert kinds == ["winograd_tiles", "matmul", "winograd_untiles"]  # the kernel's is folded


def test_no_winograd_form_falls_back_to_gemm_and_says_so():
    rng = np.random.default_rng(6)
    xs = rng.standard_normal((1, 2, 9, 9))
    ws = rng.standard_normal((3, 2, 3, 3))
    x = gc.input("x", xs.shape, "float64")
    y = gc.conv(x, gc.constant(ws), stride=2, algo="winograd")
    f = gc.compile([x], [y], backend="llvm")
    assert any("no winograd form" in line for line in f.pass_log)
    want = gc.compile([x], [gc.conv(x, gc.constant(ws), stride=2)], backend="numpy")(xs)[0]
    np.testing.assert_allclose(f(xs)[0], want, rtol=1e-12)


def test_auto_picks_winograd_for_many_channels_and_a_small_kernel():
    x = gc.input("x", (8, 64, 56, 56))
    w = gc.constant(np.zeros((64, 64, 3, 3), np.float32))
    f = gc.compile([x], [gc.conv(x, w, padding="same")], backend="numpy")
    assert any("auto chose winograd" in line for line in f.pass_log)


def test_llvm_refuses_overlapping_untiles_with_a_clear_error():
    mats = tuple(winograd.transpose(winograd.matrices(4, 3)[2]) for _ in range(2))
    v = gc.input("v", (36, 2, 4))
    y = gc.lift(winograd.untiles)(v, mats, (4, 4), (-1, -1), (2, 2), (8, 8))
    with pytest.raises(NotImplementedError, match="winograd_untiles with overlapping"):
        gc.compile([v], [y], backend="llvm")


@pytest.mark.parametrize("spatial, kernel, padding", [CONVS[1], CONVS[7]])
def test_cuda_emulated_runs_the_winograd_convolution(spatial, kernel, padding):
    rng = np.random.default_rng(7)
    xs = rng.standard_normal((2, 3, *spatial))
    ws = rng.standard_normal((4, 3, *kernel))
    _, got, want = _conv_pair(xs, ws, "cuda-emulated", padding=padding)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


def test_cuda_emulated_sums_overlapping_untiles():
    # the adjoint of tiles (tiles of 6 every 4): the CUDA kernel gathers from every tile
    mats = tuple(winograd.transpose(winograd.matrices(4, 3)[2]) for _ in range(2))
    vs = np.random.default_rng(8).standard_normal((36, 2, 8))
    v = gc.input("v", vs.shape, "float64")
    y = gc.lift(winograd.untiles)(v, mats, (4, 4), (-1, -1), (2, 2), (8, 8))
    got = gc.compile([v], [y], backend="cuda-emulated")(vs)[0]
    np.testing.assert_allclose(got, gc.compile([v], [y])(vs)[0], rtol=1e-12, atol=1e-12)


def test_the_tile_ops_are_registered_with_both_derivatives():
    for name in ("winograd_tiles", "winograd_untiles"):
        assert get(name).kind == "op"


def test_llvm_tile_kernels_with_an_epilogue_and_an_offset_origin():
    # tiles followed by elementwise math (the epilogue path of the tiles kernel), and
    # untiles whose tiles start before the output (origin -1: the tested, unvectorised path)
    rng = np.random.default_rng(9)
    bt = winograd.matrices(4, 3)[2]
    at = winograd.matrices(4, 3)[0]
    xs = rng.standard_normal((2, 3, 11, 9)).astype(np.float32)
    x = gc.input("x", xs.shape)
    v = gc.tanh(gc.lift(winograd.tiles)(x, (bt, bt), (4, 4), (-1, -1), (3, 3)) * 0.5)
    vs = rng.standard_normal((36, 3, 2 * 9)).astype(np.float32)
    w = gc.input("w", vs.shape)
    y = gc.lift(winograd.untiles)(w, (at, at), (4, 4), (-1, -2), (3, 3), (10, 9)) + 1.0
    f = gc.compile([x, w], [v, y], backend="llvm")
    ref = gc.compile([x, w], [v, y], backend="numpy")
    for got, want in zip(f(xs, vs), ref(xs, vs)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
