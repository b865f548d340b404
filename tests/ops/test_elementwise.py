"""Elementwise ops against numpy: values, dtypes, broadcasting, domains, stability, errors."""

import operator

import numpy as np
import pytest
import scipy.special
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphc as gc
from graphc.ops.elementwise import SCALAR_OPS, lambdified, textbook

from .oracle import (
    FLOATS,
    as64,
    assert_close,
    assert_shape_error,
    away_from_zero,
    booleans,
    dtypes,
    normal,
    rng,
    run,
    small_ints,
    uniform,
)

# name: (graphc function, numpy reference, sampler of the operand)
UNARY = {
    "exp": (gc.exp, np.exp, uniform(-20, 20)),
    "log": (gc.log, np.log, uniform(1e-3, 100)),
    "tanh": (gc.tanh, np.tanh, normal(3)),
    "sigmoid": (gc.sigmoid, scipy.special.expit, normal(8)),
    "relu": (gc.relu, lambda a: np.maximum(a, 0), normal()),
    "softplus": (gc.softplus, lambda a: np.logaddexp(0, a), normal(8)),
    "abs": (gc.abs, np.abs, normal()),
    "sqrt": (gc.sqrt, np.sqrt, uniform(0, 100)),
    "neg": (operator.neg, np.negative, normal()),
    "negative": (gc.negative, np.negative, normal()),
    "abs()": (abs, np.abs, normal()),
}

# name: (graphc function, numpy reference, sampler of the left and of the right operand)
BINARY = {
    "+": (operator.add, np.add, normal(), normal()),
    "-": (operator.sub, np.subtract, normal(), normal()),
    "*": (operator.mul, np.multiply, normal(), normal()),
    "/": (operator.truediv, np.true_divide, normal(), away_from_zero()),
    "**": (operator.pow, np.power, uniform(0.1, 4), uniform(-3, 3)),
    "add": (gc.add, np.add, normal(), normal()),
    "subtract": (gc.subtract, np.subtract, normal(), normal()),
    "multiply": (gc.multiply, np.multiply, normal(), normal()),
    "divide": (gc.divide, np.true_divide, normal(), away_from_zero()),
    "power": (gc.power, np.power, uniform(0.1, 4), uniform(-3, 3)),
    "maximum": (gc.maximum, np.maximum, small_ints(), small_ints()),
    "minimum": (gc.minimum, np.minimum, small_ints(), small_ints()),
}

COMPARE = {
    "<": (operator.lt, np.less),
    "<=": (operator.le, np.less_equal),
    ">": (operator.gt, np.greater),
    ">=": (operator.ge, np.greater_equal),
    "less": (gc.less, np.less),
    "less_equal": (gc.less_equal, np.less_equal),
    "greater": (gc.greater, np.greater),
    "greater_equal": (gc.greater_equal, np.greater_equal),
    "equal": (gc.equal, np.equal),
    "not_equal": (gc.not_equal, np.not_equal),
}

# pairs of operand shapes that broadcast: equal, (N,1) with (1,M), scalars, size-1 dims, ranks
BROADCASTS = [
    ((3, 4), (3, 4)),
    ((5, 1), (1, 4)),
    ((3, 4), ()),
    ((), (3, 4)),
    ((), ()),
    ((2, 1, 4), (3, 1)),
    ((1,), (4,)),
    ((4,), (2, 3, 1)),
    ((1, 1), (1, 1)),
    ((0, 3), (1, 3)),
]


@dtypes
@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("shape", [(3, 4), (), (1,), (2, 1, 3)])
def test_unary_matches_numpy(name, shape, dtype):
    fn, ref, sample = UNARY[name]
    a = sample(rng(1), shape, dtype)
    assert_close(run(fn, a), ref(as64(a)), dtype)


@dtypes
@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
def test_binary_matches_numpy_with_broadcasting(name, shapes, dtype):
    fn, ref, left, right = BINARY[name]
    r = rng(2)
    a, b = left(r, shapes[0], dtype), right(r, shapes[1], dtype)
    assert_close(run(fn, a, b), ref(as64(a), as64(b)), dtype)


@dtypes
@pytest.mark.parametrize("name", COMPARE)
@pytest.mark.parametrize("shapes", BROADCASTS[:6], ids=str)
def test_comparisons_give_bool_like_numpy(name, shapes, dtype):
    fn, ref = COMPARE[name]
    r = rng(3)
    a, b = small_ints()(r, shapes[0], dtype), small_ints()(r, shapes[1], dtype)  # with ties
    got = run(fn, a, b)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, ref(a, b))


@dtypes
@pytest.mark.parametrize(
    "expression, reference",
    [
        (lambda x: x + 2.0, lambda a: a + 2.0),
        (lambda x: 2.0 - x, lambda a: 2.0 - a),
        (lambda x: x * 3, lambda a: a * 3),
        (lambda x: 1 / x, lambda a: 1 / a),
        (lambda x: x / 4.0, lambda a: a / 4.0),
        (lambda x: x**2, lambda a: a**2),
        (lambda x: 2.0**x, lambda a: 2.0**a),
        (lambda x: -x + 0.5, lambda a: -a + 0.5),
        (lambda x: gc.maximum(x, 0.0), lambda a: np.maximum(a, 0.0)),
        (lambda x: gc.where(x > 0, x, 0.1 * x), lambda a: np.where(a > 0, a, 0.1 * a)),
        (lambda x: x * np.float64(1.5), lambda a: a * 1.5),
    ],
)
def test_python_scalars_are_weakly_typed_and_keep_the_dtype(expression, reference, dtype):
    a = away_from_zero()(rng(4), (3, 4), dtype)
    assert_close(run(expression, a), reference(as64(a)), dtype)


def test_dtype_promotion():
    f32 = np.ones(3, np.float32)
    f64 = np.ones(3, np.float64)
    i32 = np.ones(3, np.int32)
    assert run(operator.add, f32, f64).dtype == np.float64
    assert run(operator.add, f32, i32).dtype == np.float32
    assert run(operator.add, i32, i32).dtype == np.int32
    assert run(lambda a: a * 2, i32).dtype == np.int32
    assert run(lambda a: a * 2.5, i32).dtype == np.float32  # python float next to ints
    assert run(operator.truediv, i32, i32).dtype == np.float32  # division is float
    assert run(gc.exp, i32).dtype == np.float32  # float ops on ints compute in float32
    assert run(gc.sqrt, f64).dtype == np.float64
    assert run(gc.relu, i32).dtype == np.int32
    np.testing.assert_array_equal(run(lambda a: a + 1, i32), i32 + 1)
    assert gc.constant(2.0).dtype == "float32"  # python floats default to float32
    assert (gc.constant(2.0) + 1).dtype == "float32"


@dtypes
def test_where_broadcasts_all_three_operands(dtype):
    r = rng(5)
    c = booleans(r, (3, 1))
    a = normal()(r, (1, 4), dtype)
    b = normal()(r, (), dtype)
    got = run(gc.where, c, a, b)
    assert_close(got, np.where(c, as64(a), as64(b)), dtype)


def test_where_promotes_its_branches_and_needs_a_bool_condition():
    r = rng(6)
    c = booleans(r, (4,))
    a, b = np.arange(4, dtype=np.float32), np.arange(4, dtype=np.float64)
    got = run(gc.where, c, a, b)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, np.where(c, a, b))
    x = gc.input("x", (4,))
    with pytest.raises(gc.ShapeError, match="where: condition must be bool"):
        gc.where(x, x, x)


# gc.elementwise: a user's sympy function ----------------------------------------------------


@dtypes
def test_user_elementwise_unary(dtype):
    softsign = gc.elementwise(lambda v: v / (1 + sympy.Abs(v)))
    a = normal(3)(rng(7), (3, 5), dtype)
    assert_close(run(softsign, a), as64(a) / (1 + np.abs(as64(a))), dtype)


@dtypes
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((), (2, 3))], ids=str)
def test_user_elementwise_binary_broadcasts(shapes, dtype):
    fn = gc.elementwise(lambda u, v: u * sympy.exp(-(v**2)) + sympy.Max(u, v), name="bump")
    r = rng(8)
    a, b = normal()(r, shapes[0], dtype), normal()(r, shapes[1], dtype)
    a64, b64 = as64(a), as64(b)
    assert_close(run(fn, a, b), a64 * np.exp(-(b64**2)) + np.maximum(a64, b64), dtype)


def test_user_elementwise_computes_in_float_and_accepts_scalars():
    cube = gc.elementwise(lambda v: v**3 - 2 * v)
    i = np.arange(-3, 4, dtype=np.int32)
    got = run(cube, i)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, i.astype(np.float64) ** 3 - 2 * i)
    x = gc.input("x", (2,), dtype="float64")
    assert cube(x).dtype == "float64"
    assert (cube(x) + 1.0).dtype == "float64"
    with pytest.raises(TypeError, match="takes 1 operands"):
        cube(x, x)


@dtypes
def test_user_elementwise_with_functions_numpy_lacks(dtype):
    # sympy prints erf, erfc, gamma, loggamma by their math-module names
    gelu = gc.elementwise(lambda v: v / 2 * (1 + sympy.erf(v / sympy.sqrt(2))), name="gelu")
    special = gc.elementwise(lambda v: sympy.erfc(v) + sympy.gamma(v) - sympy.loggamma(v))
    a = uniform(0.5, 4)(rng(13), (3, 4), dtype)
    got_gelu, got_special = run(lambda x: [gelu(x), special(x)], a)
    a64 = as64(a)
    want_gelu = a64 / 2 * (1 + scipy.special.erf(a64 / np.sqrt(2)))
    want_special = scipy.special.erfc(a64) + scipy.special.gamma(a64) - scipy.special.gammaln(a64)
    assert_close(got_gelu, want_gelu, dtype)
    assert_close(got_special, want_special, dtype)


def test_user_elementwise_constant_expression_has_the_operands_shape():
    one = gc.elementwise(lambda v: sympy.Integer(1) + 0 * v)
    got = run(one, np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(got, np.ones((2, 3), np.float32))


# cast / astype ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, target",
    [
        ("float32", "float64"),
        ("float64", "float32"),
        ("float32", "int32"),
        ("float64", "int64"),
        ("int32", "float32"),
        ("int64", "float64"),
        ("bool", "float32"),
        ("float32", "bool"),
        ("int32", "int64"),
    ],
)
def test_cast_and_astype_match_numpy_astype(source, target):
    r = rng(9)
    a = booleans(r, (3, 4)) if source == "bool" else (10 * r.standard_normal((3, 4)))
    a = a.astype(source)
    for build in (lambda x: gc.cast(x, target), lambda x: x.astype(target)):
        got = run(build, a)
        assert got.dtype == np.dtype(target)
        np.testing.assert_array_equal(got, a.astype(target))
    assert run(lambda x: x.astype(np.float64), a).dtype == np.float64


# the numpy forms in the table agree with the sympy expressions (the source of truth) ---------

# operands per op on a moderate range (bools for where's condition, ints for comparison ties)
OVERRIDE_DOMAINS = {
    "div": (uniform(-20, 20), away_from_zero(0.1, 20)),
    "pow": (uniform(0.1, 5), uniform(-4, 4)),
    "where": (booleans, uniform(-20, 20), uniform(-20, 20)),
}
OVERRIDDEN = [name for name, s in SCALAR_OPS.items() if s.numpy is not None]


def test_every_scalar_op_of_the_table_is_tested_here():
    x, y = gc.input("x", (2,)), gc.input("y", (2,))
    tested = {fn(x).op for fn, *_ in UNARY.values()}
    tested |= {fn(x, y).op for fn, *_ in BINARY.values()}
    tested |= {fn(x, y).op for fn, _ in COMPARE.values()}
    tested.add(gc.where(x > y, x, y).op)
    assert set(SCALAR_OPS) <= tested, set(SCALAR_OPS) - tested


def test_the_table_overrides_what_it_should():
    assert {"sigmoid", "softplus", "relu", "where", "add", "maximum"} <= set(OVERRIDDEN)


@pytest.mark.parametrize("name", OVERRIDDEN)
@pytest.mark.parametrize("dtype", FLOATS)
def test_numpy_override_agrees_with_sympy_expression(name, dtype):
    scalar = SCALAR_OPS[name]
    arity = len(scalar.expr.variables)
    default = small_ints(-20, 20) if scalar.result == "bool" else uniform(-20, 20)
    domains = OVERRIDE_DOMAINS.get(name, (default,) * arity)
    r = rng(10)
    args = [sample(r, (200,), dtype) for sample in domains]
    if scalar.result != "bool" and arity == 1:
        args[0][:3] = [0.0, -0.0, 1.0]  # kinks
    with np.errstate(all="ignore"):
        got = scalar.numpy(*args)
        want = lambdified(textbook(scalar.expr))(*[as64(a) for a in args])
    if scalar.result == "bool":
        np.testing.assert_array_equal(got, want)
    else:
        assert_close(np.asarray(got, dtype=dtype), np.asarray(want, dtype=np.float64), dtype)


@pytest.mark.parametrize("name", OVERRIDDEN)
def test_numpy_override_keeps_float32(name):
    scalar = SCALAR_OPS[name]
    if scalar.result == "bool" or name == "where":
        return
    args = [np.linspace(0.5, 2, 5, dtype=np.float32)] * len(scalar.expr.variables)
    assert np.asarray(scalar.numpy(*args)).dtype == np.float32


# stability ---------------------------------------------------------------------------------


@dtypes
def test_sigmoid_and_softplus_are_finite_and_right_at_extremes(dtype):
    a = np.array([-1000, -100, -30, -1, 0, 1, 30, 100, 1000], dtype=dtype)
    with np.errstate(all="raise"):  # the references must not overflow either
        sig, sp = run(lambda x: [gc.sigmoid(x), gc.softplus(x)], a)
    assert np.all(np.isfinite(sig)) and np.all(np.isfinite(sp))
    want_sig = scipy.special.expit(as64(a))
    want_sp = np.logaddexp(0, as64(a))
    tiny = np.finfo(dtype).tiny  # relative error even for tiny values, down to subnormals
    assert_close(sig, want_sig, dtype, atol=tiny)
    assert_close(sp, want_sp, dtype, atol=tiny)
    assert sig[0] == 0 and sig[-1] == 1 and sp[-1] == 1000 and sp[0] >= 0


def test_sigmoid_is_accurate_in_the_tails_float32():
    a = np.linspace(-87, 87, 100_001, dtype=np.float32)
    got = run(gc.sigmoid, a)
    want = scipy.special.expit(a.astype(np.float64))
    assert np.max(np.abs(got - want) / want) < 4 * np.finfo(np.float32).eps


@dtypes
def test_exp_overflow_and_log_domain_follow_ieee(dtype):
    a = np.array([0.0, -1.0, 1e6], dtype=dtype)
    ex, lg, sq = run(lambda x: [gc.exp(x), gc.log(x), gc.sqrt(x)], a)
    assert ex[2] == np.inf and lg[0] == -np.inf and np.isnan(lg[1]) and np.isnan(sq[1])


# symbolic sizes ----------------------------------------------------------------------------


@dtypes
@pytest.mark.parametrize("n", [1, 1000])
def test_symbolic_broadcast_n1_with_1m(n, dtype):
    N, M = gc.dim("N"), gc.dim("M")
    r = rng(11)
    a, b = normal()(r, (n, 1), dtype), normal()(r, (1, 7), dtype)
    got = run(lambda x, y: gc.tanh(x * y + 1.0) - y, a, b, shapes=[(N, 1), (1, M)])
    assert_close(got, np.tanh(as64(a) * as64(b) + 1.0) - as64(b), dtype)
    x, y = gc.input("x", (N, 1)), gc.input("y", (1, M))
    assert (x + y).shape == (N, M)


@pytest.mark.parametrize("n", [1, 1000])
def test_symbolic_n_against_size_one(n):
    N = gc.dim("N")
    r = rng(12)
    a, b = normal()(r, (n, 3), "float32"), normal()(r, (1, 3), "float32")
    got = run(gc.maximum, a, b, shapes=[(N, 3), (1, 3)])
    assert_close(got, np.maximum(a, b).astype(np.float64), "float32")


# shape errors at build time -----------------------------------------------------------------


def test_broadcast_errors_name_op_shapes_and_line():
    x, y = gc.input("x", (3, 4)), gc.input("y", (5,))
    assert_shape_error(lambda: x + y, "add", (3, 4), (5,))
    assert_shape_error(lambda: gc.maximum(x, y), "maximum", (3, 4), (5,))
    assert_shape_error(lambda: x < y, "lt", (3, 4), (5,))
    assert_shape_error(lambda: gc.where(x > 0, x, y), "where", (3, 4), (5,))
    N, M = gc.dim("N"), gc.dim("M")
    a, b = gc.input("a", (N, 2)), gc.input("b", (M, 2))
    assert_shape_error(lambda: a * b, "mul", (N, 2), (M, 2))


# property: any broadcastable pair, any binary op ----------------------------------------------

PROPERTY_OPS = ["+", "-", "*", "maximum"]


@settings(max_examples=40, deadline=None)
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    name=st.sampled_from(PROPERTY_OPS),
    dtype=st.sampled_from(FLOATS),
    seed=st.integers(0, 2**16),
)
def test_property_binary_broadcasting(shapes, name, dtype, seed):
    fn, ref, left, right = BINARY[name]
    r = rng(seed)
    a, b = left(r, shapes.input_shapes[0], dtype), right(r, shapes.input_shapes[1], dtype)
    got = run(fn, a, b)
    assert got.shape == shapes.result_shape
    assert_close(got, ref(as64(a), as64(b)), dtype)
