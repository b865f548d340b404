"""graphc.shapes: symbolic dims, broadcasting with symbols, shape errors naming the user's line."""

import os

import numpy as np
import pytest
import sympy

import graphc as gc
from graphc.shapes import (
    BindError,
    Bindings,
    ShapeError,
    as_dim,
    as_shape,
    broadcast_shapes,
    normalize_axes,
    normalize_axis,
)

N = gc.dim("N")
M = gc.dim("M")
HERE = os.path.abspath(__file__)


def test_dim_is_a_positive_integer_symbol_equal_by_name():
    assert isinstance(N, sympy.Symbol)
    assert N.is_integer and N.is_positive
    assert gc.dim("N") == N
    with pytest.raises(ValueError, match="identifier"):
        gc.dim("not a name")


def test_shape_is_a_tuple_of_sympy_expressions():
    x = gc.input("x", (N, 28, 28))
    assert isinstance(x.shape, tuple)
    assert all(isinstance(d, sympy.Expr) for d in x.shape)
    assert x.shape == (N, 28, 28)
    assert x.ndim == 3
    assert gc.input("s", ()).shape == ()


def test_reshape_to_symbolic_product():
    x = gc.input("x", (N, 28, 28))
    y = x.reshape(N * 28, 28)
    assert y.shape == (N * 28, 28)
    assert y.shape[0] - 28 * N == 0
    assert x.reshape(-1, 28).shape == (28 * N, 28)
    assert x.reshape((N, 784)).shape == (N, 784)
    f = gc.compile([x], y)
    data = np.arange(3 * 28 * 28, dtype=np.float32).reshape(3, 28, 28)
    np.testing.assert_array_equal(f(data), data.reshape(84, 28))


def test_reshape_size_mismatch_is_a_shape_error():
    x = gc.input("x", (N, 28, 28))
    with pytest.raises(ShapeError, match=r"reshape.*\(N, 28, 28\).*\(N, 780\)"):
        x.reshape(N, 780)


def test_broadcasting_with_symbols():
    a = gc.input("a", (N, 1, 3))
    b = gc.input("b", (4, 1))
    assert (a + b).shape == (N, 4, 3)
    c = gc.input("c", (N, 3))
    assert (c + gc.input("row", (1, 3))).shape == (N, 3)
    assert (c + gc.input("vec", (3,))).shape == (N, 3)
    assert (c * 2.0).shape == (N, 3)
    assert (gc.input("col", (N, 1)) + gc.input("r", (1, M))).shape == (N, M)
    assert (gc.input("p", (2 * N,)) + gc.input("q", (N + N,))).shape == (2 * N,)


def test_symbols_never_broadcast_against_other_sizes():
    c = gc.input("c", (N, 3))
    with pytest.raises(ShapeError, match="do not broadcast"):
        c + gc.input("d", (M, 3))
    with pytest.raises(ShapeError, match="do not broadcast"):
        c + gc.input("e", (5, 3))
    assert broadcast_shapes("add", (N, 1), (1, 3), (3,)) == (N, 3)
    assert broadcast_shapes("add") == ()


def _bad_matmul():
    x = gc.input("x", (N, 784))
    W = gc.param("W", (10, 3))
    return x @ W  # <- the line the error must name


def test_shape_error_names_op_shapes_file_and_line():
    line = _bad_matmul.__code__.co_firstlineno + 3
    with pytest.raises(ShapeError) as info:
        _bad_matmul()
    message = str(info.value)
    assert "matmul" in message
    assert "(N, 784)" in message and "(10, 3)" in message
    assert f"{HERE}:{line}" in message


def test_shape_error_from_broadcasting_names_the_callers_line():
    a = gc.input("a", (N, 3))
    b = gc.input("b", (4,))
    with pytest.raises(ShapeError) as info:
        gc.maximum(a, b)
    line = info.traceback[0].lineno + 1  # traceback lines are 0-based
    message = str(info.value)
    assert message.startswith("maximum:")
    assert "(N, 3)" in message and "(4,)" in message
    assert f"{HERE}:{line}" in message


def test_shape_error_is_a_value_error():
    assert issubclass(gc.ShapeError, ValueError)
    assert issubclass(gc.BindError, ValueError)


def test_nodes_remember_where_they_were_built():
    x = gc.input("x", (N, 3))
    y = gc.tanh(x + 5.0)
    line = test_nodes_remember_where_they_were_built.__code__.co_firstlineno + 2
    assert y.node.where == f"{HERE}:{line}"
    assert y.node.inputs[0].where == f"{HERE}:{line}"


def test_as_dim_accepts_ints_numpy_ints_and_expressions():
    assert as_dim(3) == 3 and isinstance(as_dim(3), sympy.Integer)
    assert as_dim(np.int64(5)) == 5
    assert as_dim(sympy.Integer(2) * 3) == 6
    assert as_dim(N * 2) == 2 * N
    assert as_shape(np.int64(7)) == (7,)
    assert as_shape(4) == (4,)
    assert gc.input("v", np.int32(3)).shape == (3,)
    assert gc.input("w", [np.int64(2), N]).shape == (2, N)


def test_plain_sympy_symbols_mean_gc_dims():
    plain = sympy.Symbol("N")
    x = gc.input("x", (plain, 3))
    assert x.shape[0] == N
    assert (x + gc.input("y", (N, 3))).shape == (N, 3)


@pytest.mark.parametrize("bad", [-1, 2.5, True, "N", None, sympy.Rational(1, 2), sympy.Eq(N, 1)])
def test_as_dim_rejects_non_sizes(bad):
    with pytest.raises(ShapeError):
        as_dim(bad)


@pytest.mark.parametrize("bad", ["NC", None, 2.5])
def test_as_shape_rejects_non_shapes(bad):
    with pytest.raises(ShapeError):
        as_shape(bad)


def test_axes_accept_numpy_ints_and_reject_others():
    assert normalize_axis("sum", np.int64(-1), 3) == 2
    assert normalize_axes("sum", (np.int32(2), 0), 3) == (0, 2)
    assert normalize_axes("sum", None, 2) == (0, 1)
    assert normalize_axes("sum", [1], 2) == (1,)
    x = gc.input("x", (N, 3))
    assert x.sum(axis=np.int64(1)).shape == (N,)
    with pytest.raises(ShapeError, match="out of range"):
        normalize_axis("sum", 3, 3)
    with pytest.raises(ShapeError, match="must be an int"):
        normalize_axis("sum", True, 3)
    with pytest.raises(ShapeError, match="must be an int"):
        normalize_axis("sum", 1.0, 3)
    with pytest.raises(ShapeError, match="repeated"):
        normalize_axes("sum", (0, -2), 2)


def test_bindings_bind_solve_and_report_sources():
    b = Bindings()
    b.bind("x", (N, 4), (5, 4))
    assert b[N] == 5 and N in b
    assert b.sources[N] == "input 'x' axis 0"
    b.bind("y", (N * M,), (15,))  # one unknown: solved
    assert b[M] == 3
    assert b.evaluate(N * M + 1) == 16
    assert b.evaluate_shape((N, 2 * M)) == (5, 6)
    with pytest.raises(BindError, match=r"input 'z' axis 0: expected size N = 5, got 4"):
        b.bind("z", (N,), (4,))
    with pytest.raises(BindError, match=r"N=5 was bound by input 'x' axis 0"):
        b.bind("z", (N,), (4,))
    with pytest.raises(BindError, match=r"expected size 4, got 3"):
        b.bind("w", (4,), (3,))
    with pytest.raises(BindError, match=r"expected rank 2"):
        b.bind("w", (N, 4), (5,))


def test_bindings_do_not_depend_on_input_order():
    b = Bindings()
    b.bind_all([("flat", (N * M,), (6,)), ("grid", (N, M), (2, 3))])
    assert (b[N], b[M]) == (2, 3)
    b = Bindings()
    with pytest.raises(BindError, match="cannot be determined"):
        b.bind_all([("flat", (N * M,), (6,))])


def test_bindings_reject_sizes_that_do_not_fit():
    b = Bindings()
    with pytest.raises(BindError, match="does not fit"):
        b.bind("x", (2 * N,), (7,))
    b = Bindings()
    b.bind("x", (N,), (5,))
    with pytest.raises(BindError, match="not a non-negative integer"):
        b.evaluate(N / 2)
    with pytest.raises(BindError, match="not bound"):
        b.evaluate(M + 1)


def test_sizes_that_come_out_fractional_at_run_time_name_the_op():
    z = gc.input("z", (N,))
    halves = gc.compile([z], z.reshape(-1, 2))
    assert halves(np.zeros(4, np.float32)).shape == (2, 2)
    with pytest.raises(BindError, match=r"^reshape \(built at .*\): size N/2 = 5/2"):
        halves(np.zeros(5, np.float32))


def test_dims_equal_expands_polynomials_and_simplifies_the_rest():
    from graphc.shapes import dims_equal

    N, M = (
        sympy.Symbol("N", positive=True, integer=True),
        sympy.Symbol("M", positive=True, integer=True),
    )
    assert dims_equal(2 * (N + M), 2 * N + 2 * M)
    assert dims_equal((N + 1) ** 2, N**2 + 2 * N + 1)
    assert not dims_equal(N + 1, N) and not dims_equal(N * M, N + M)
    assert dims_equal(sympy.floor((N + 2) / 2), sympy.floor(N / 2) + 1)
    assert not dims_equal(sympy.floor(N / 2), sympy.floor(N / 3))
