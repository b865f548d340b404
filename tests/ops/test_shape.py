"""Shape ops against numpy: transpose, reshape, broadcast_to, concat, pad, basic slicing."""

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphc as gc

from .oracle import FLOATS, assert_close, assert_shape_error, dtypes, normal, rng, run

N = gc.dim("N")


def sample(shape, dtype, seed=0):
    return normal()(rng(seed), shape, dtype)


def exact(got, want):
    """Shape ops move data: the result is bit-for-bit numpy's, with its dtype."""
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(got, want)


# transpose ----------------------------------------------------------------------------------


@dtypes
@pytest.mark.parametrize(
    "shape, axes",
    [
        ((3, 4), None),
        ((3, 4), (1, 0)),
        ((3, 4), (0, 1)),
        ((2, 3, 4), None),
        ((2, 3, 4), (1, 2, 0)),
        ((2, 3, 4), (-1, 0, -2)),
        ((2, 1, 3, 4), (3, 1, 0, 2)),
        ((5,), None),
        ((), None),
    ],
)
def test_transpose_matches_np_transpose(shape, axes, dtype):
    a = sample(shape, dtype)
    exact(run(lambda x: gc.transpose(x, axes), a), np.transpose(a, axes))
    if axes is not None:
        exact(run(lambda x: x.transpose(axes), a), np.transpose(a, axes))
        exact(run(lambda x: x.transpose(*axes), a), a.transpose(*axes))


@dtypes
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (5,), ()])
def test_dot_T_reverses_axes(shape, dtype):
    a = sample(shape, dtype)
    exact(run(lambda x: x.T, a), a.T)


def test_transpose_errors():
    x = gc.input("x", (2, 3, 4))
    assert_shape_error(lambda: gc.transpose(x, (0, 1)), "transpose", (2, 3, 4))
    assert_shape_error(lambda: gc.transpose(x, (0, 0, 1)), "transpose", (2, 3, 4))
    assert_shape_error(lambda: gc.transpose(x, (0, 1, 3)), "transpose")


# reshape ------------------------------------------------------------------------------------


@dtypes
@pytest.mark.parametrize(
    "shape, target",
    [
        ((3, 4), (4, 3)),
        ((3, 4), (12,)),
        ((3, 4), (-1,)),
        ((3, 4), (2, -1)),
        ((2, 3, 4), (-1, 4)),
        ((2, 3, 4), (6, 1, -1)),
        ((12,), (2, 2, 3)),
        ((1,), ()),
        ((), (1, 1)),
        ((0, 3), (-1, 3)),
    ],
)
def test_reshape_matches_numpy(shape, target, dtype):
    a = sample(shape, dtype)
    exact(run(lambda x: gc.reshape(x, target), a), a.reshape(target))
    exact(run(lambda x: x.reshape(target), a), a.reshape(target))
    if target:
        exact(run(lambda x: x.reshape(*target), a), a.reshape(*target))


def test_reshape_accepts_numpy_integers():
    a = sample((3, 4), "float32")
    exact(run(lambda x: x.reshape(np.int64(-1), np.int32(2)), a), a.reshape(-1, 2))


@pytest.mark.parametrize("n", [1, 1000])
def test_reshape_symbolic_n(n):
    a = sample((n, 28, 28), "float32")
    out = run(lambda x: x.reshape(N * 28, 28), a, shapes=[(N, 28, 28)])
    exact(out, a.reshape(n * 28, 28))
    exact(run(lambda x: x.reshape(-1, 784), a, shapes=[(N, 28, 28)]), a.reshape(-1, 784))
    exact(run(lambda x: x.reshape(-1), a, shapes=[(N, 28, 28)]), a.reshape(-1))
    flat = run(lambda x: x.reshape(N * 28, 28).reshape(N, -1), a, shapes=[(N, 28, 28)])
    exact(flat, a.reshape(n, -1))
    x = gc.input("x", (N, 28, 28))
    assert x.reshape(-1, 784).shape == (N, 784)
    assert x.reshape(-1, 28).shape == (28 * N, 28)


def test_reshape_errors():
    x = gc.input("x", (3, 4))
    assert_shape_error(lambda: gc.reshape(x, (5, 2)), "reshape", (3, 4), (5, 2))
    assert_shape_error(lambda: x.reshape(-1, 5), "reshape", (3, 4))
    assert_shape_error(lambda: x.reshape(-1, -1), "reshape", (3, 4))
    y = gc.input("y", (N, 4))
    assert_shape_error(lambda: y.reshape(N, 5), "reshape", (N, 4), (N, 5))
    assert_shape_error(lambda: x.reshape(-2, 6), "reshape", (3, 4))
    assert_shape_error(lambda: x.reshape(2.5, 2), "reshape", (3, 4))


# broadcast_to -------------------------------------------------------------------------------


@dtypes
@pytest.mark.parametrize(
    "shape, target",
    [
        ((3, 1), (3, 4)),
        ((1,), (2, 3)),
        ((), (2, 3)),
        ((4,), (2, 3, 4)),
        ((2, 1, 4), (2, 5, 4)),
        ((3, 4), (3, 4)),
        ((1, 1), (1, 1)),
    ],
)
def test_broadcast_to_matches_numpy(shape, target, dtype):
    a = sample(shape, dtype)
    exact(run(lambda x: gc.broadcast_to(x, target), a), np.broadcast_to(a, target))


@pytest.mark.parametrize("n", [1, 1000])
def test_broadcast_to_symbolic(n):
    a = sample((1, 3), "float64")
    b = sample((n, 1), "float64", seed=1)
    got = run(lambda x, y: gc.broadcast_to(x, (N, 3)) + y, a, b, shapes=[(1, 3), (N, 1)])
    exact(got, np.broadcast_to(a, (n, 3)) + b)


def test_broadcast_to_errors():
    x = gc.input("x", (3, 4))
    assert_shape_error(lambda: gc.broadcast_to(x, (3, 5)), "broadcast_to", (3, 4), (3, 5))
    assert_shape_error(lambda: gc.broadcast_to(x, (4,)), "broadcast_to", (3, 4), (4,))
    assert_shape_error(lambda: gc.broadcast_to(x, (2, 4, 4)), "broadcast_to", (3, 4), (2, 4, 4))
    assert_shape_error(lambda: gc.broadcast_to(x, (-1, 4)), "broadcast_to", (3, 4))


# concat -------------------------------------------------------------------------------------


@dtypes
@pytest.mark.parametrize(
    "shapes, axis",
    [
        ([(2, 3), (4, 3)], 0),
        ([(2, 3), (2, 5)], 1),
        ([(2, 3), (2, 5)], -1),
        ([(2, 3, 4), (2, 1, 4), (2, 2, 4)], 1),
        ([(3,), (0,), (2,)], 0),
        ([(2, 2)], 0),
    ],
)
def test_concat_matches_np_concatenate(shapes, axis, dtype):
    arrays = [sample(s, dtype, seed=k) for k, s in enumerate(shapes)]
    got = run(lambda *xs: gc.concat(list(xs), axis=axis), *arrays)
    exact(got, np.concatenate(arrays, axis=axis))


def test_concat_promotes_dtypes_and_takes_constants():
    a, b = sample((2, 3), "float32"), sample((1, 3), "float64")
    exact(run(lambda x, y: gc.concat([x, y]), a, b), np.concatenate([a, b]))
    c = np.ones((1, 3), np.float32)
    exact(run(lambda x: gc.concat((x, c)), a), np.concatenate([a, c]))


@pytest.mark.parametrize("n", [1, 1000])
def test_concat_symbolic(n):
    a, b = sample((n, 3), "float32"), sample((2, 3), "float32", seed=1)
    got = run(lambda x, y: gc.concat([x, y, x], axis=0), a, b, shapes=[(N, 3), (2, 3)])
    exact(got, np.concatenate([a, b, a]))
    x = gc.input("x", (N, 3))
    assert gc.concat([x, x], axis=0).shape == (2 * N, 3)


def test_concat_errors():
    x, y, z = gc.input("x", (2, 3)), gc.input("y", (2, 4)), gc.input("z", (2, 3, 1))
    assert_shape_error(lambda: gc.concat([x, y], axis=0), "concat", (2, 3), (2, 4))
    assert_shape_error(lambda: gc.concat([x, z], axis=0), "concat", (2, 3), (2, 3, 1))
    assert_shape_error(lambda: gc.concat([x, x], axis=2), "concat")


# pad ----------------------------------------------------------------------------------------

PAD_MODES = {"constant": "constant", "reflect": "reflect", "circular": "wrap", "edge": "edge"}


@dtypes
@pytest.mark.parametrize("mode", PAD_MODES)
@pytest.mark.parametrize(
    "shape, width",
    [
        ((5,), 2),
        ((5,), (1, 3)),
        ((4, 5), 1),
        ((4, 5), (2, 1)),
        ((4, 5), ((0, 3), (2, 0))),
        ((3, 4, 5), ((1, 1), (0, 0), (3, 4))),
        ((4, 5), ((3, 3), (4, 4))),  # reflect's limit: size - 1
    ],
)
def test_pad_matches_np_pad(shape, width, mode, dtype):
    a = sample(shape, dtype)
    got = run(lambda x: gc.pad(x, width, mode=mode), a)
    exact(got, np.pad(a, width, mode=PAD_MODES[mode]))


@dtypes
def test_pad_constant_value(dtype):
    a = sample((3, 4), dtype)
    got = run(lambda x: gc.pad(x, ((1, 2), (0, 1)), mode="constant", value=-2.5), a)
    exact(got, np.pad(a, ((1, 2), (0, 1)), constant_values=-2.5))


def test_pad_circular_up_to_the_size():
    a = sample((3, 4), "float64")
    exact(run(lambda x: gc.pad(x, ((3, 3), (4, 0)), mode="circular"), a),
          np.pad(a, ((3, 3), (4, 0)), mode="wrap"))  # fmt: skip


@pytest.mark.parametrize("n", [2, 1000])
@pytest.mark.parametrize("mode", PAD_MODES)
def test_pad_symbolic_axis(n, mode):
    a = sample((n, 3), "float32")
    got = run(lambda x: gc.pad(x, ((1, 1), (2, 1)), mode=mode), a, shapes=[(N, 3)])
    exact(got, np.pad(a, ((1, 1), (2, 1)), mode=PAD_MODES[mode]))
    assert gc.pad(gc.input("x", (N, 3)), 1).shape == (N + 2, 5)


def test_pad_errors():
    x = gc.input("x", (3, 4))
    assert_shape_error(lambda: gc.pad(x, ((3, 0), (0, 0)), mode="reflect"), "pad", (3, 4))
    assert_shape_error(lambda: gc.pad(x, ((0, 0), (0, 5)), mode="circular"), "pad", (3, 4))
    assert_shape_error(lambda: gc.pad(x, -1), "pad", (3, 4))
    assert_shape_error(lambda: gc.pad(x, 1.5), "pad", (3, 4))
    assert_shape_error(lambda: gc.pad(x, ((1, 1), (1, 1), (1, 1))), "pad", (3, 4))
    with pytest.raises(ValueError, match="unknown mode 'wrap'"):
        gc.pad(x, 1, mode="wrap")


# basic slicing ------------------------------------------------------------------------------

INDICES = [
    (slice(1, 3), slice(None, None, 2)),
    (slice(None, None, -1),),
    (slice(None), slice(4, 0, -2)),
    (2,),
    (-1,),
    (-1, -2),
    (0, slice(1, None)),
    (slice(-3, -1), 3),
    (None,),
    (None, slice(None), None, 1),
    (Ellipsis, 1),
    (Ellipsis, None),
    (1, Ellipsis, None),
    (Ellipsis,),
    (slice(10, 20),),  # empty
    (slice(-100, 100),),  # clamped
    (np.int64(1), slice(np.int32(1), None)),
]


@dtypes
@pytest.mark.parametrize("index", INDICES, ids=str)
def test_basic_slicing_matches_numpy(index, dtype):
    a = sample((4, 5, 3), dtype)
    exact(run(lambda x: x[index], a), a[index])


def test_slicing_rank0_and_rank1():
    a = sample((), "float64")
    exact(run(lambda x: x[None], a), a[None])
    exact(run(lambda x: x[...], a), a[...])
    v = sample((6,), "float32")
    for index in [-1, 0, slice(None, None, -3), slice(-2, None), (None, 3)]:
        exact(run(lambda x, i=index: x[i], v), v[index])


SYMBOLIC_INDICES = [
    slice(1, None),
    slice(None, -1),
    slice(None, None, 2),
    slice(None, 5),
    slice(-3, None),
    slice(2, None, -1),
    slice(None, None, -1),
    slice(1, -1, 3),
    slice(0, 1),
    0,
    -1,
    (None, Ellipsis, 1),
]


@pytest.mark.parametrize("n", [1, 1000])
@pytest.mark.parametrize("index", SYMBOLIC_INDICES, ids=str)
def test_slicing_symbolic_n(index, n):
    a = sample((n, 3), "float32")
    exact(run(lambda x: x[index], a, shapes=[(N, 3)]), a[index])


def test_symbolic_slice_shapes_are_exact():
    x = gc.input("x", (N, 3))
    assert x[1:].shape == (N - 1, 3)
    assert x[:-1].shape == (N - 1, 3)
    assert x[::-1].shape == (N, 3)
    assert x[:5].shape == (sympy.Min(5, N), 3)
    assert x[0].shape == (3,) and x[-1].shape == (3,) and x[7].shape == (3,)


def test_symbolic_index_out_of_range_fails_at_run_time():
    x = gc.input("x", (N, 3))
    f = gc.compile([x], x[2], backend="numpy")
    eye = np.eye(3, dtype=np.float32)
    exact(f(eye), eye[2])
    with pytest.raises(RuntimeError, match="index 2 is out of range"):
        f(eye[:2])


def test_slicing_errors():
    x = gc.input("x", (4, 5))
    assert_shape_error(lambda: x[4], "getitem", (4, 5))
    assert_shape_error(lambda: x[:, -6], "getitem", (4, 5))
    assert_shape_error(lambda: x[1, 2, 3], "getitem", (4, 5))
    assert_shape_error(lambda: x[..., ...], "getitem", (4, 5))
    assert_shape_error(lambda: x[::0], "getitem", (4, 5))
    assert_shape_error(lambda: x[1.5], "getitem", (4, 5))
    assert_shape_error(lambda: x[0.5:], "getitem", (4, 5))


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    dtype=st.sampled_from(FLOATS),
)
def test_property_basic_indices(data, shape, dtype):
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    a = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    exact(run(lambda x: x[index], a), a[index])


def test_shape_ops_keep_float32():
    a = sample((2, 3), "float32")
    for build in [
        lambda x: x.T,
        lambda x: x.reshape(-1),
        lambda x: gc.pad(x, 1),
        lambda x: x[::2],
        lambda x: gc.concat([x, x]),
        lambda x: gc.broadcast_to(x, (4, 2, 3)),
    ]:
        assert run(build, a).dtype == np.float32
    assert_close(run(lambda x: gc.pad(x, 1, value=1.0).sum(), a), np.sum(a) + 14.0, "float32")


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 7),
    start=st.none() | st.integers(-9, 9),
    stop=st.none() | st.integers(-9, 9),
    step=st.sampled_from([None, 1, 2, 3, -1, -2, -3]),
)
def test_property_symbolic_slice_lengths_follow_python(n, start, stop, step):
    a = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    index = slice(start, stop, step)
    exact(run(lambda x: x[index], a, shapes=[(N, 2)]), a[index])
