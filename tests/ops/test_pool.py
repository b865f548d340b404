"""max_pool, avg_pool, unpool against explicit numpy loops, PyTorch (when installed) and
finite differences; their derivatives (first and second) and their build-time errors."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import graphc as gc

from .oracle import assert_close, assert_shape_error, dtypes, rng, run

N, C, H, W = gc.dim("N"), gc.dim("C"), gc.dim("H"), gc.dim("W")
TOL = 1e-6
NO_TORCH = "PyTorch is an optional second oracle"


# the oracle: explicit loops over every output position and every window offset ------------


def out_size(w: int, f: int, s: int, p: int) -> int:
    return (w + 2 * p - f) // s + 1


def triple(value, rank: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank


def windows(x: np.ndarray, window, stride, padding):
    """Yield (n, c, output position, [(input position, value), ...] in window order)."""
    rank = x.ndim - 2
    f, s, p = triple(window, rank), triple(stride or window, rank), triple(padding, rank)
    spatial = x.shape[2:]
    pooled = tuple(out_size(*args) for args in zip(spatial, f, s, p))
    for n, c in np.ndindex(*x.shape[:2]):
        for o in np.ndindex(*pooled):
            cells = []
            for k in np.ndindex(*f):
                pos = tuple(oi * si - pi + ki for oi, si, pi, ki in zip(o, s, p, k))
                if all(0 <= q < d for q, d in zip(pos, spatial)):
                    cells.append((pos, x[(n, c) + pos]))
            yield n, c, o, cells, pooled, f


def ref_max_pool(x, window, stride=None, padding=0):
    """Values and flat indices (the first max of each window, as PyTorch)."""
    values = indices = None
    for n, c, o, cells, pooled, _ in windows(x, window, stride, padding):
        if values is None:
            values = np.zeros(x.shape[:2] + pooled, x.dtype)
            indices = np.zeros(x.shape[:2] + pooled, np.int64)
        best, where = -np.inf, None
        for pos, v in cells:
            if v > best or where is None:
                best, where = v, pos
        values[(n, c) + o] = best
        indices[(n, c) + o] = np.ravel_multi_index(where, x.shape[2:])
    return values, indices


def ref_avg_pool(x, window, stride=None, padding=0):
    out = None
    for n, c, o, cells, pooled, f in windows(x.astype(np.float64), window, stride, padding):
        if out is None:
            out = np.zeros(x.shape[:2] + pooled)
        out[(n, c) + o] = sum(v for _, v in cells) / np.prod(f)  # the padding counts
    return out


def ref_unpool(x, window, mode):
    f = triple(window, x.ndim - 2)
    out = np.zeros(x.shape[:2] + tuple(d * k for d, k in zip(x.shape[2:], f)), x.dtype)
    for pos in np.ndindex(*out.shape):
        spatial = pos[2:]
        if mode == "nearest" or all(q % k == 0 for q, k in zip(spatial, f)):
            out[pos] = x[pos[:2] + tuple(q // k for q, k in zip(spatial, f))]
    return out


def ref_max_unpool(x, indices, spatial):
    out = np.zeros(x.shape[:2] + tuple(spatial), x.dtype)
    for pos in np.ndindex(*x.shape):
        where = np.unravel_index(indices[pos], spatial)
        out[pos[:2] + where] += x[pos]
    return out


def distinct(shape, seed=0, dtype="float64") -> np.ndarray:
    """A shuffled grid over [-3, 3] plus noise of a fifth of its step: no two values closer
    than 0.6 step (>= 0.004 here, far above the checks' eps 1e-6), so max_pool has no kink."""
    r = rng(seed)
    size = int(np.prod(shape))
    step = 6 / size
    grid = np.linspace(-3, 3, size) + r.uniform(-0.2, 0.2, size) * step
    return r.permutation(grid).reshape(shape).astype(dtype)


# (x shape, window, stride, padding): 1-D, 2-D, 3-D, strides, padding, overlapping windows
GEOMETRIES = [
    ((2, 3, 9), 3, None, 0),
    ((2, 3, 10), 4, 3, 2),
    ((1, 2, 8), 2, 1, 1),
    ((2, 3, 7, 8), 2, None, 0),
    ((2, 2, 7, 8), 3, 2, 1),
    ((1, 2, 6, 9), (2, 3), (1, 2), (1, 0)),
    ((1, 2, 5, 6, 7), 2, None, 0),
    ((1, 2, 5, 6, 4), (3, 2, 2), (2, 1, 2), (1, 1, 0)),
]
GEOMETRY_IDS = [f"{len(g[0]) - 2}d-{i}" for i, g in enumerate(GEOMETRIES)]
geometries = pytest.mark.parametrize("shape, window, stride, padding", GEOMETRIES, ids=GEOMETRY_IDS)


# forward against the loops ------------------------------------------------------------------


@dtypes
@geometries
def test_max_pool_matches_loops(dtype, shape, window, stride, padding):
    x = rng(1).standard_normal(shape).astype(dtype)
    values, indices = run(lambda a: list(gc.max_pool(a, window, stride, padding, True)), x)
    want_values, want_indices = ref_max_pool(x, window, stride, padding)
    assert values.dtype == np.dtype(dtype) and indices.dtype == np.int64
    np.testing.assert_array_equal(values, want_values)  # a max is exact
    np.testing.assert_array_equal(indices, want_indices)
    alone = run(lambda a: gc.max_pool(a, window, stride, padding), x)
    np.testing.assert_array_equal(alone, want_values)


@dtypes
@geometries
def test_avg_pool_matches_loops(dtype, shape, window, stride, padding):
    x = rng(2).standard_normal(shape).astype(dtype)
    got = run(lambda a: gc.avg_pool(a, window, stride, padding), x)
    assert_close(got, ref_avg_pool(x, window, stride, padding), dtype)


@dtypes
@pytest.mark.parametrize("mode", ["nearest", "zeros"])
@pytest.mark.parametrize(
    "shape, window",
    [((2, 3, 4), 3), ((2, 2, 3, 4), 2), ((1, 2, 3, 2), (1, 3)), ((1, 2, 2, 3, 2), 2)],
)
def test_unpool_matches_loops(dtype, mode, shape, window):
    x = rng(3).standard_normal(shape).astype(dtype)
    got = run(lambda a: gc.unpool(a, window, mode), x)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, ref_unpool(x, window, mode))


@dtypes
@geometries
def test_max_unpool_matches_loops(dtype, shape, window, stride, padding):
    x = rng(4).standard_normal(shape).astype(dtype)

    def build(a):
        y, i = gc.max_pool(a, window, stride, padding, return_indices=True)
        return gc.unpool(y * 2.0, window, indices=i, output_shape=a.shape[2:])

    values, indices = ref_max_pool(x, window, stride, padding)
    assert_close(run(build, x), ref_max_unpool(2 * values, indices, shape[2:]), dtype)


def test_max_unpool_default_output_shape_and_full_output_shape():
    x = rng(5).standard_normal((2, 3, 4, 6))
    y, i = ref_max_pool(x, 2)
    got = run(lambda a, b: gc.unpool(a, 2, indices=b), y, i)  # (in - 1) * 2 + 2 = in * 2
    np.testing.assert_array_equal(got, ref_max_unpool(y, i, (4, 6)))
    x = rng(5).standard_normal((2, 3, 5, 7))
    y, i = ref_max_pool(x, 3, 2, 1)
    got = run(lambda a, b: gc.unpool(a, 3, indices=b, stride=2, padding=1), y, i)
    assert got.shape == (2, 3, 5, 7)  # (3 - 1) * 2 - 2 + 3, (4 - 1) * 2 - 2 + 3
    got = run(
        lambda a, b: gc.unpool(a, 3, indices=b.astype("int32"), output_shape=(2, 3, 5, 7)), y, i
    )
    np.testing.assert_array_equal(got, ref_max_unpool(y, i, (5, 7)))


def test_ties_take_the_first_max_and_padding_never_wins():
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [-np.inf, -np.inf, -np.inf]]]])
    values, indices = run(lambda a: list(gc.max_pool(a, 2, 1, 1, return_indices=True)), x)
    # windows at the corners hold one real cell; the bottom row's windows see only -inf
    # and padding, and answer with their first real cell (as PyTorch)
    np.testing.assert_array_equal(
        values[0, 0], [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [-np.inf] * 4]
    )
    np.testing.assert_array_equal(
        indices[0, 0], [[0, 0, 1, 2], [0, 0, 1, 2], [3, 3, 4, 5], [6, 6, 7, 8]]
    )


def test_nan_wins_its_window_and_empty_batches_run():
    x = np.array([[[1.0, np.nan, 3.0, 2.0, np.nan, -1.0]]])
    values, indices = run(lambda a: list(gc.max_pool(a, 2, return_indices=True)), x)
    np.testing.assert_array_equal(values, [[[np.nan, 3.0, np.nan]]])  # as PyTorch
    np.testing.assert_array_equal(indices, [[[1, 2, 4]]])
    x = gc.input("x", (N, 2, 5), dtype="float64")
    y, i = gc.max_pool(x, 2, return_indices=True)
    outs = [y, i, gc.avg_pool(x, 3, 1, 1), gc.unpool(y, 2, indices=i), gc.grad(gc.sum(y * y), x)]
    got = gc.compile([x], outs, backend="numpy")(np.zeros((0, 2, 5)))
    assert [a.shape for a in got] == [(0, 2, 2), (0, 2, 2), (0, 2, 5), (0, 2, 4), (0, 2, 5)]


def test_int_inputs():
    x = rng(6).integers(-50, 50, (2, 3, 6, 4)).astype(np.int32)
    got = run(lambda a: gc.max_pool(a, 2, 2, 1), x)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, ref_max_pool(x, 2, 2, 1)[0])
    got = run(lambda a: gc.avg_pool(a, 2), x)
    assert_close(got, ref_avg_pool(x, 2), "float32")


def test_symbolic_sizes_bound_at_call_time():
    x = gc.input("x", (N, 3, H, W), dtype="float64")
    y, i = gc.max_pool(x, 3, 2, 1, return_indices=True)
    a = gc.avg_pool(x, (2, 3), (2, 1))
    u = gc.unpool(y, 3, indices=i, stride=2, padding=1, output_shape=(H, W))
    near = gc.unpool(a, (2, 3))
    nails = gc.unpool(a, 2, "zeros")
    assert str(y.shape[2]) == "floor(H/2 - 1/2) + 1" and a.shape[3] == W - 2
    assert u.shape == (N, 3, H, W) and near.shape[2:] == (2 * sympy.floor(H / 2), 3 * W - 6)
    f = gc.compile([x], [y, i, a, u, near, nails], backend="numpy")
    for n, h, w in [(1, 5, 6), (3, 8, 7), (2, 3, 3)]:
        xv = distinct((n, 3, h, w), seed=h)
        yv, iv, av, uv, nv, zv = f(xv)
        want_y, want_i = ref_max_pool(xv, 3, 2, 1)
        np.testing.assert_array_equal(yv, want_y)
        np.testing.assert_array_equal(iv, want_i)
        assert_close(av, ref_avg_pool(xv, (2, 3), (2, 1)), "float64")
        assert_close(uv, ref_max_unpool(want_y, want_i, (h, w)), "float64")
        assert_close(nv, ref_unpool(av, (2, 3), "nearest"), "float64")
        assert_close(zv, ref_unpool(av, 2, "zeros"), "float64")


def test_symbolic_input_too_small_fails_at_call_time():
    x = gc.input("x", (N, 3, H), dtype="float64")
    f = gc.compile([x], [gc.max_pool(x, 4)], backend="numpy")
    with pytest.raises(gc.ExecutionError, match=r"max_pool .*window 4 is larger than the padded"):
        f(np.zeros((2, 3, 3)))


def test_max_unpool_indices_out_of_range_fail_at_call_time():
    y = gc.input("y", (1, 1, 2))
    i = gc.input("i", (1, 1, 2), dtype="int64")
    f = gc.compile([y, i], [gc.unpool(y, 2, indices=i)], backend="numpy")
    with pytest.raises(gc.ExecutionError, match=r"pool_scatter .*\[0, 4\).*got \[4\]"):
        f(np.ones((1, 1, 2), np.float32), np.array([[[0, 4]]]))


# forward against PyTorch ----------------------------------------------------------------------


def _torch_pool(torch, kind: str, rank: int):
    return getattr(torch.nn.functional, f"{kind}{rank}d")


@dtypes
@geometries
def test_pools_match_torch(dtype, shape, window, stride, padding):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    rank = len(shape) - 2
    x = rng(7).standard_normal(shape).astype(dtype)
    tx = torch.from_numpy(x)
    tv, ti = _torch_pool(torch, "max_pool", rank)(tx, window, stride, padding, return_indices=True)
    values, indices = run(lambda a: list(gc.max_pool(a, window, stride, padding, True)), x)
    np.testing.assert_array_equal(values, tv.numpy())
    np.testing.assert_array_equal(indices, ti.numpy())
    ta = _torch_pool(torch, "avg_pool", rank)(tx, window, stride, padding)
    assert_close(run(lambda a: gc.avg_pool(a, window, stride, padding), x), ta.numpy(), dtype)
    if stride is None or triple(stride, rank) == triple(window, rank):  # no overlaps: no sums
        tu = _torch_pool(torch, "max_unpool", rank)(tv, ti, window, stride, padding, shape[2:])
        got = run(
            lambda a, b: gc.unpool(
                a, window, indices=b, stride=stride, padding=padding, output_shape=shape[2:]
            ),
            tv.numpy(),
            ti.numpy(),
        )
        np.testing.assert_array_equal(got, tu.numpy())


def test_ties_match_torch():
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    x = rng(8).integers(0, 3, (2, 3, 7, 6)).astype(np.float32)  # many ties
    tv, ti = torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, 2, 1, return_indices=True)
    values, indices = run(lambda a: list(gc.max_pool(a, 3, 2, 1, True)), x)
    np.testing.assert_array_equal(values, tv.numpy())
    np.testing.assert_array_equal(indices, ti.numpy())


@dtypes
@pytest.mark.parametrize(
    "shape, window", [((2, 3, 5), 3), ((2, 2, 3, 4), (2, 3)), ((1, 2, 2, 3, 2), 2)]
)
def test_nearest_unpool_matches_torch_interpolate(dtype, shape, window):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    x = rng(9).standard_normal(shape).astype(dtype)
    factor = tuple(float(f) for f in triple(window, len(shape) - 2))
    want = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=factor, mode="nearest")
    np.testing.assert_array_equal(run(lambda a: gc.unpool(a, window), x), want.numpy())


# derivatives ------------------------------------------------------------------------------------


def _weights(shape, seed=11) -> np.ndarray:
    return rng(seed).standard_normal(tuple(int(d) for d in shape))


def _ops(window, stride, padding) -> dict:
    def max_unpool(a):
        y, i = gc.max_pool(a, window, stride, padding, return_indices=True)
        return gc.unpool(
            gc.tanh(y), window, indices=i, stride=stride, padding=padding, output_shape=a.shape[2:]
        )

    return {
        "max_pool": lambda a: gc.max_pool(a, window, stride, padding),
        "avg_pool": lambda a: gc.avg_pool(a, window, stride, padding),
        "max_unpool": max_unpool,
        "unpool_nearest": lambda a: gc.unpool(a, window),
        "unpool_zeros": lambda a: gc.unpool(a, window, "zeros"),
    }


OP_NAMES = ["max_pool", "avg_pool", "max_unpool", "unpool_nearest", "unpool_zeros"]


@pytest.mark.parametrize("name", OP_NAMES)
@pytest.mark.parametrize(
    "shape, window, stride, padding",
    [GEOMETRIES[1], GEOMETRIES[4], GEOMETRIES[7]],
    ids=[GEOMETRY_IDS[1], GEOMETRY_IDS[4], GEOMETRY_IDS[7]],
)
def test_first_derivatives_match_finite_differences(name, shape, window, stride, padding):
    if name.startswith("unpool"):
        stride, padding = None, 0
    build = _ops(window, stride, padding)[name]
    x = gc.input("x", shape, dtype="float64")
    y = build(x)
    feed = {x: distinct(shape, seed=12)}
    assert gc.check_grad(gc.sum(y * gc.constant(_weights(y.shape))), [x], feed) <= TOL
    assert gc.check_jvp(y, [x], feed) <= TOL


@pytest.mark.parametrize("name", OP_NAMES)
def test_second_derivatives_match_finite_differences_of_the_gradient(name):
    shape = (2, 2, 6, 5)
    build = (
        _ops(3, 2, 1)[name]
        if name in ("max_pool", "avg_pool", "max_unpool")
        else (_ops(2, None, 0)[name])
    )
    x = gc.input("x", shape, dtype="float64")
    y = build(x)
    g = gc.grad(gc.sum(gc.tanh(y) * gc.constant(_weights(y.shape))), x)  # curved: tanh
    feed = {x: distinct(shape, seed=13)}
    assert gc.check_grad(gc.sum(g * gc.constant(_weights(shape, 14))), [x], feed) <= TOL
    assert gc.check_jvp(g, [x], feed) <= TOL
    v = gc.input("v", shape, dtype="float64")
    (hv,) = gc.hvp(gc.sum(gc.tanh(y) * gc.constant(_weights(y.shape))), [x], [v])
    assert hv.shape == x.shape


def test_symbolic_derivatives():
    x = gc.input("x", (N, 2, H), dtype="float64")
    for name, build in _ops(3, 2, 1).items():
        if name.startswith("unpool"):
            build = _ops(2, None, 0)[name]
        y = build(x)
        w = gc.input("w", y.shape, dtype="float64")
        for n, h in [(1, 5), (2, 8)]:
            xv = distinct((n, 2, h), seed=h)
            wv = _weights(gc.compile([x], [y], backend="numpy")(xv)[0].shape)
            feed = {x: xv, w: wv}
            assert gc.check_grad(gc.sum(y * w), [x], feed) <= TOL, name
            assert gc.check_jvp(y, [x], feed) <= TOL, name


def test_max_pool_gradient_is_nonzero_only_at_the_argmax():
    x = np.array(
        [
            [
                [
                    [1.0, 5.0, 2.0, 0.0],
                    [3.0, 4.0, 7.0, 6.0],
                    [9.0, 8.0, -1.0, -2.0],
                    [0.5, 2.5, -3.0, -0.5],
                ]
            ]
        ]
    )
    xs = gc.input("x", x.shape, dtype="float64")
    w = np.array([[[[10.0, 20.0], [30.0, 40.0]]]])
    (g,) = gc.compile([xs], [gc.grad(gc.sum(gc.max_pool(xs, 2) * w), xs)], backend="numpy")(x)
    np.testing.assert_array_equal(
        g[0, 0],
        [[0, 10, 0, 0], [0, 0, 20, 0], [30, 0, 0, 0], [0, 0, 0, 40]],
    )
    # overlapping windows: a cell that is the max of two windows collects both
    x1 = np.array([[[1.0, 3.0, 2.0, 0.0]]])
    xs = gc.input("x1", x1.shape, dtype="float64")
    (g,) = gc.compile([xs], [gc.grad(gc.sum(gc.max_pool(xs, 2, 1)), xs)], backend="numpy")(x1)
    np.testing.assert_array_equal(g, [[[0, 2, 1, 0]]])


def test_return_indices_and_the_gradient_share_one_argmax():
    x = gc.input("x", (1, 2, 6, 6), dtype="float64")
    y, i = gc.max_pool(x, 2, return_indices=True)
    g = gc.grad(gc.sum(y * y), x)
    assert i.node in g.node.inputs and i.node.op == "pool_argmax"


def _torch_grads(torch, kind, rank, x, w, window, stride, padding):
    tx = torch.tensor(x, requires_grad=True)
    y = _torch_pool(torch, kind, rank)(tx, window, stride, padding)
    (g1,) = torch.autograd.grad((y * y * torch.from_numpy(w)).sum(), tx, create_graph=True)
    v = _weights(x.shape, 15)
    (g2,) = torch.autograd.grad((g1 * torch.from_numpy(v)).sum(), tx)
    return g1.detach().numpy(), g2.numpy(), v


@pytest.mark.parametrize("kind", ["max_pool", "avg_pool"])
@geometries
def test_gradients_match_torch_autograd(kind, shape, window, stride, padding):
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    rank = len(shape) - 2
    x = distinct(shape, seed=16)
    xs = gc.input("x", shape, dtype="float64")
    build = getattr(gc, kind)
    y = build(xs, window, stride, padding)
    w = _weights(y.shape)
    g1 = gc.grad(gc.sum(y * y * w), xs)
    want1, want2, v = _torch_grads(torch, kind, rank, x, w, window, stride, padding)
    g2 = gc.grad(gc.sum(g1 * v), xs)
    got1, got2 = gc.compile([xs], [g1, g2], backend="numpy")(x)
    assert_close(got1, want1, "float64")
    assert_close(got2, want2, "float64")


# build-time errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["max_pool", "avg_pool"])
def test_errors_name_the_op_and_the_shapes(op):
    x = gc.input("x", (2, 3, 5, 5))
    x2 = gc.input("x2", (2, 3))
    x6 = gc.input("x6", (1, 1, 2, 2, 2, 2))
    fn = getattr(gc, op)
    message = assert_shape_error(lambda: fn(x2, 2), op, (2, 3))
    assert "rank 2" in message
    assert_shape_error(lambda: fn(x6, 2), op, (1, 1, 2, 2, 2, 2))
    message = assert_shape_error(lambda: fn(x, 6), op, (2, 3, 5, 5))
    assert "window 6 is larger than the padded input 5 + 2*0" in message
    message = assert_shape_error(lambda: fn(x, 3, padding=2), op, (2, 3, 5, 5))
    assert "padding 2 on spatial axis 0 must be at most half the window 3" in message
    assert "window must be positive" in assert_shape_error(lambda: fn(x, 0), op, (2, 3, 5, 5))
    message = assert_shape_error(lambda: fn(x, (2, -1)), op, (2, 3, 5, 5))
    assert "window must be positive" in message
    message = assert_shape_error(lambda: fn(x, 2, stride=0), op, (2, 3, 5, 5))
    assert "stride must be positive" in message
    message = assert_shape_error(lambda: fn(x, 2, padding=-1), op, (2, 3, 5, 5))
    assert "padding must be >= 0" in message
    message = assert_shape_error(lambda: fn(x, (2, 2, 2)), op, (2, 3, 5, 5))
    assert "window (2, 2, 2) has 3 entries but x has 2 spatial axes" in message
    message = assert_shape_error(lambda: fn(x, 2.5), op, (2, 3, 5, 5))
    assert "window must be an int or a tuple of ints" in message


def test_unpool_errors():
    y = gc.input("y", (2, 3, 4, 4))
    good = gc.input("good", (2, 3, 4, 4), dtype="int64")
    as_float = gc.input("f", (2, 3, 4, 4))
    wrong = gc.input("wrong", (2, 3, 4, 5), dtype="int64")
    message = assert_shape_error(lambda: gc.unpool(y, 2, indices=as_float), "unpool", (2, 3, 4, 4))
    assert "indices must be int32 or int64, got float32" in message
    message = assert_shape_error(
        lambda: gc.unpool(y, 2, indices=wrong), "unpool", (2, 3, 4, 4), (2, 3, 4, 5)
    )
    assert "indices must have the shape of x" in message
    message = assert_shape_error(
        lambda: gc.unpool(y, 2, indices=good, output_shape=(8,)), "unpool", (2, 3, 4, 4)
    )
    assert "must have 2 spatial sizes" in message
    message = assert_shape_error(
        lambda: gc.unpool(y, 2, indices=good, output_shape=(2, 4, 8, 8)), "unpool", (2, 3, 4, 4)
    )
    assert "differs from x in N or C" in message
    assert_shape_error(lambda: gc.unpool(y, 0), "unpool", (2, 3, 4, 4))
    assert_shape_error(lambda: gc.unpool(y, 2, stride=1), "unpool", (2, 3, 4, 4))
    assert_shape_error(lambda: gc.unpool(y, 2, output_shape=(8, 8)), "unpool", (2, 3, 4, 4))
    assert_shape_error(lambda: gc.unpool(gc.input("v", (4, 4)), 2), "unpool", (4, 4))
    with pytest.raises(ValueError, match="unpool: unknown mode 'bilinear'"):
        gc.unpool(y, 2, "bilinear")


def test_every_pool_op_has_both_rules():
    from graphc.ops.registry import JVP_RULES, VJP_RULES

    names = ["max_pool", "avg_pool", "avg_pool_grad", "pool_argmax", "pool_gather", "pool_scatter"]
    for name in names:
        assert name in gc.OPS and name in VJP_RULES and name in JVP_RULES, name


def test_window_one_is_the_identity():
    x = rng(17).standard_normal((2, 3, 4))
    for build in (lambda a: gc.max_pool(a, 1), lambda a: gc.avg_pool(a, 1)):
        np.testing.assert_array_equal(run(build, x), x)
    xs = gc.input("x", (2, 3, 4))
    assert gc.unpool(xs, 1) is xs and gc.unpool(xs, 1, "zeros") is xs
