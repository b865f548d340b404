"""simplify: each rule gives exactly the expected graph, keeps the values, can be switched off;
the stability rewrites turn inf/nan into the right finite values."""

import numpy as np
import pytest
import sympy

import graphc as gc
from graphc.node import toposort
from graphc.ops import reduce as red
from graphc.ops import shape as shp
from graphc.ops.elementwise import cast, ew
from graphc.ops.registry import apply
from graphc.ops.sources import constant, input, size_value
from graphc.tensor import unwrap
from tests.passes.passcheck import assert_same_values, canon, chains, dce, run_pass, simp

DTYPES = ["float32", "float64"]
N = gc.dim("N")


def c(value, dtype):
    return constant(np.asarray(value, dtype=dtype))


def simplified(*roots):
    return run_pass(simp.simplify, *roots)


def optimized(*roots):
    """The graph after canonicalize, simplify and dce (the graph-to-graph passes)."""
    roots = [unwrap(r) for r in roots]
    for run in (canon.canonicalize, simp.simplify, dce.dce):
        roots = run(roots, lambda text: None)
    return roots


def _probabilities(shape, seed=1):
    p = np.random.default_rng(seed).random(shape) + 0.1
    return p / p.sum(axis=-1, keepdims=True)


# one example per rule: (inputs, root, expected root, arrays for the inputs or None) -----


def _examples(dtype):
    x, y = input("x", (3, 4), dtype), input("y", (3, 4), dtype)
    s = input("s", (4,), dtype)
    sn = input("sn", (4,), dtype)
    z, q = input("z", (5, 4), dtype), input("q", (5, 4), dtype)
    logits_and_q = [np.random.default_rng(0).standard_normal((5, 4)).astype(dtype)]
    logits_and_q.append(_probabilities((5, 4)).astype(dtype))
    p = ew("mul", x, y)
    bn = shp.broadcast_to(sn, (N, 4))
    xn = input("xn", (N, 4), dtype)
    sm = red.softmax(z)
    h = ew("mul", q, ew("div", c(1, dtype), sm))
    x6 = input("x6", (6,), dtype)
    neg_splat = ew("neg", shp.broadcast_to(c(1, dtype), (3,)))
    return {
        # (1 + [1 2 3 4]) * x -> [2 3 4 5] * x
        "fold_constants": (
            [x],
            ew("mul", ew("add", c(1.0, dtype), c([1, 2, 3, 4], dtype)), x),
            ew("mul", c([2, 3, 4, 5], dtype), x),
            None,
        ),
        "mul_one": ([x], ew("mul", x, shp.broadcast_to(c(1, dtype), (3, 4))), x, None),
        "add_zero": ([x], ew("add", x, c(0, dtype)), x, None),
        "mul_minus_one": ([x], ew("mul", x, c(-1, dtype)), ew("neg", x), None),
        "pow_one": ([x], ew("pow", x, c(1, dtype)), x, None),
        "neg_neg": ([x], ew("neg", ew("neg", x)), x, None),
        "same_operands": ([x], ew("maximum", x, x), x, None),
        "log_exp": ([x], ew("log", ew("exp", x)), x, None),
        "exp_mul": (
            [x, y],
            ew("mul", ew("exp", x), ew("exp", y)),
            ew("exp", ew("add", x, y)),
            None,
        ),
        # sum over N copies of sn -> sn * N
        "sum_splat": (
            [sn, xn],
            ew("add", red.sum(bn, 0), red.sum(xn, 0)),
            ew("add", ew("mul", sn, size_value(N, dtype)), red.sum(xn, 0)),
            None,
        ),
        "mean_splat": ([s], red.mean(shp.broadcast_to(s, (3, 4)), 0), s, None),
        "reduce_unit": (
            [x],
            red.sum(shp.reshape(x, (3, 1, 4)), 1),
            shp.reshape(shp.reshape(x, (3, 1, 4)), (3, 4)),
            None,
        ),
        "log_softmax": ([x], ew("log", red.softmax(x)), red.log_softmax(x), None),
        "cross_entropy": (
            [z, q],
            ew("neg", red.sum(ew("mul", q, red.log_softmax(z)), -1)),
            apply("softmax_cross_entropy", (z, q), label_smoothing=0.0),
            logits_and_q,
        ),
        # the gradient of log(softmax(z)) -> log_softmax's: g - s*sum(g)
        "log_softmax_vjp": (
            [z, q],
            ew("mul", sm, ew("sub", h, red.sum(ew("mul", h, sm), 1, keepdims=True))),
            ew("sub", q, ew("mul", sm, red.sum(q, 1, keepdims=True))),
            None,
        ),
        # x6 + reshape(-splat(1)) -> x6 + (-1), once folding made the splat
        "splat_reshape": (
            [x6],
            ew("add", x6, shp.reshape(ew("neg", shp.broadcast_to(c(1, dtype), (2, 3))), (6,))),
            ew("add", x6, c(-1, dtype)),
            None,
        ),
        "broadcast_chain": (
            [x6],
            ew("add", x6, shp.reshape(shp.broadcast_to(neg_splat, (2, 3)), (6,))),
            ew("add", x6, c(-1, dtype)),
            None,
        ),
        "drop_splat": ([s, x], ew("mul", shp.broadcast_to(s, (3, 4)), x), ew("mul", s, x), None),
        "fold_sub": ([x, y], ew("add", x, ew("neg", y)), ew("sub", x, y), None),
        # x*y + (x*y)*2 -> 3*(x*y): sympy collects the terms
        "ew_chains": (
            [x, y],
            ew("add", p, ew("mul", p, c(2, dtype))),
            ew("mul", c(3, dtype), ew("mul", x, y)),
            None,
        ),
    }


RULE_NAMES = [rule.__name__ for rule in simp.RULES] + ["ew_chains"]


def test_every_rule_has_an_example():
    assert sorted(_examples("float32")) == sorted(RULE_NAMES)


@pytest.mark.parametrize("rule", RULE_NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rule_gives_the_expected_graph(rule, dtype):
    _, root, expected, _ = _examples(dtype)[rule]
    (out,), lines = simplified(root)
    assert out is expected
    assert any(line.startswith(rule + ":") for line in lines), lines


@pytest.mark.parametrize("rule", RULE_NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rule_keeps_the_values(rule, dtype):
    inputs, root, _, arrays = _examples(dtype)[rule]
    f = assert_same_values(inputs, [root], arrays)
    assert f"simplify: {rule}:" in f.explain()


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_every_rule_can_be_disabled(monkeypatch, rule):
    monkeypatch.setattr(simp, "DISABLED", {rule})
    _, root, expected, _ = _examples("float64")[rule]
    (out,), lines = simplified(root)
    assert out is not expected
    assert not any(line.startswith(rule + ":") for line in lines)


def test_skip_passes_switches_the_pass_off():
    x = gc.input("x", (3,))
    out = gc.log(gc.exp(x)) * 1.0
    f = gc.compile([x], out, skip_passes=["simplify"])
    assert "simplify: skipped" in f.explain()
    assert "log_exp" not in f.explain()
    assert "exp" in f.source
    assert "exp" not in gc.compile([x], out).source


def test_explain_shows_each_decision():
    x = gc.input("x", (3, 4))
    f = gc.compile([x], [gc.log(gc.exp(x)) * 1.0, x * 1.0])
    text = f.explain()
    assert "simplify: log_exp: log (3, 4) float32" in text
    assert "simplify: mul_one: mul (3, 4) float32 x2" in text


# the cases each rule must leave alone --------------------------------------------------


def test_ieee_unsafe_identities_are_not_applied():
    x = input("x", (3,), "float64")
    for node in (
        ew("mul", x, c(0.0, "float64")),  # inf * 0 is nan
        ew("exp", ew("log", x)),  # log(-1) is nan
        ew("sub", x, x),  # inf - inf is nan
        ew("div", x, x),  # 0/0 is nan
        ew("mul", x, ew("exp", ew("log", x))),  # sympy would make it x**2
    ):
        assert simplified(node)[0] == [node], node


def test_shared_exps_are_not_merged():
    x, y = input("x", (3,)), input("y", (3,))
    ex = ew("exp", x)
    prod = ew("mul", ex, ew("exp", y))
    (a, b), _ = simplified(prod, ex)
    assert a is prod and b is ex


def test_folding_keeps_constants_small_and_errors_for_run_time():
    big = constant(np.ones(5000, "float32"))
    node = ew("add", big, c(1.0, "float32"))
    assert simplified(node)[0] == [node]  # more than MAX_FOLD elements
    labels = constant(np.array([0, 2, 1], "int32"))
    hot = gc.one_hot(labels, 3)
    assert simplified(hot)[0] == [unwrap(hot)]  # a bigger constant than its operand
    empty = red.mean(constant(np.zeros((0,), "float32")), 0)
    assert simplified(empty)[0] == [empty]  # the error is raised when the function runs
    size = apply("dim_value", (), expr=sympy.Integer(6), dtype="float32")
    (out,), _ = simplified(size)
    assert out is c(6.0, "float32")
    symbolic = apply("dim_value", (), expr=N, dtype="float32")
    assert simplified(symbolic)[0] == [symbolic]


def test_elementwise_ops_of_splats_fold_to_a_splat():
    x = input("x", (1000, 3))
    splat = shp.broadcast_to(c([1.0, 2.0, 3.0], "float32"), (1000, 3))
    (out,), _ = simplified(ew("add", ew("exp", splat), x))
    assert out is ew("add", constant(np.exp(np.array([1, 2, 3], "float32"))), x)


def test_sums_of_empty_or_real_axes_stay():
    s = input("s", (3,))
    empty = red.sum(shp.broadcast_to(s, (0, 3)), 0)
    assert simplified(empty)[0] == [empty]  # 0 copies: 0, but inf * 0 would be nan
    x = input("x", (2, 3))
    real = red.sum(shp.broadcast_to(x, (4, 2, 3)), (0, 1))  # axis 1 is x's own
    assert simplified(real)[0] == [real]


def test_cross_entropy_with_label_indices_uses_them():
    z = input("z", (5, 4))
    t = input("t", (5,), "int32")
    hot = unwrap(gc.one_hot(t, 4))
    loss = ew("neg", red.sum(ew("mul", hot, red.log_softmax(z)), -1))
    (out,), _ = simplified(loss)
    assert out is apply("softmax_cross_entropy", (z, t), label_smoothing=0.0)


def test_cross_entropy_from_log_of_softmax_takes_both_rules():
    z, q = input("z", (5, 4)), input("q", (5, 4))
    loss = ew("neg", red.sum(ew("mul", q, ew("log", red.softmax(z))), -1))
    (out,) = optimized(loss)
    assert out is apply("softmax_cross_entropy", (z, q), label_smoothing=0.0)


def test_cross_entropy_needs_the_last_axis_and_matching_dtypes():
    z, q = input("z", (5, 4)), input("q", (5, 4))
    other_axis = ew("neg", red.sum(ew("mul", q, red.log_softmax(z, 0)), -1))
    assert simplified(other_axis)[0] == [other_axis]
    wide = input("w", (5, 4), "float64")
    mixed = ew("neg", red.sum(ew("mul", wide, red.log_softmax(z)), -1))
    assert simplified(mixed)[0] == [mixed]


# stability: extreme logits -------------------------------------------------------------


def _extreme_logits(dtype):
    z = np.array([[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4, 1e4, 1e4], [0.5, 1.0, -2.0, 0.0]])
    return z.astype(dtype)


def _reference_log_softmax(z):
    z = z.astype("float64")
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_of_softmax_is_finite_for_extreme_logits(dtype):
    z = gc.input("z", (3, 4), dtype)
    out = gc.log(gc.softmax(z))
    values = _extreme_logits(dtype)
    with np.errstate(all="ignore"):
        plain = gc.compile([z], out, optimize=False)(values)
    assert np.isinf(plain).any()  # softmax underflows to 0
    fast = gc.compile([z], out)(values)
    assert np.isfinite(fast).all()
    np.testing.assert_allclose(fast, _reference_log_softmax(values), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["log_softmax", "log(softmax)"])
def test_cross_entropy_is_finite_for_extreme_logits(dtype, form):
    z, q = gc.input("z", (3, 4), dtype), gc.input("q", (3, 4), dtype)
    log_p = gc.log_softmax(z) if form == "log_softmax" else gc.log(gc.softmax(z))
    loss = -gc.sum(q * log_p, axis=-1)
    values, targets = _extreme_logits(dtype), _probabilities((3, 4)).astype(dtype)
    targets[0] = [0.0, 0.0, 0.0, 1.0]  # 0 * log(0) is nan in the textbook form
    with np.errstate(all="ignore"):
        plain = gc.compile([z, q], loss, optimize=False)(values, targets)
    fast = gc.compile([z, q], loss)(values, targets)
    expected = -(targets * _reference_log_softmax(values)).sum(axis=-1)
    assert np.isfinite(fast).all()
    np.testing.assert_allclose(fast, expected, rtol=1e-6)
    if form == "log(softmax)":
        assert not np.isfinite(plain).all()
    ok = np.isfinite(plain)  # where the original was finite, the same values
    np.testing.assert_allclose(fast[ok], plain[ok], rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_of_log_of_softmax_is_finite_for_extreme_logits(dtype):
    z, q = gc.input("z", (3, 4), dtype), gc.input("q", (3, 4), dtype)
    loss = gc.sum(-gc.sum(q * gc.log(gc.softmax(z)), axis=-1))
    (grad,) = gc.grad(loss, [z])
    values, targets = _extreme_logits(dtype), _probabilities((3, 4)).astype(dtype)
    with np.errstate(all="ignore"):
        plain = gc.compile([z, q], grad, optimize=False)(values, targets)
    fast = gc.compile([z, q], grad)(values, targets)
    p = np.exp(_reference_log_softmax(values))
    expected = p * targets.sum(axis=-1, keepdims=True) - targets
    assert not np.isfinite(plain).all()  # q / softmax(z) with softmax(z) = 0
    np.testing.assert_allclose(fast, expected, rtol=1e-5, atol=1e-7)
    ok = np.isfinite(plain).all(axis=-1)  # rows where the original was finite: the same
    np.testing.assert_allclose(fast[ok], plain[ok], rtol=1e-5, atol=1e-6)


def test_log_of_exp_and_products_of_exps_do_not_overflow():
    x, y = gc.input("x", (3,)), gc.input("y", (3,))
    outs = [gc.log(gc.exp(x)), gc.exp(x) * gc.exp(y)]
    xs = np.array([100.0, -200.0, 1.5], "float32")
    ys = np.array([-100.0, 200.0, -0.5], "float32")
    with np.errstate(all="ignore"):
        plain = gc.compile([x, y], outs, optimize=False)(xs, ys)
    fast = gc.compile([x, y], outs)(xs, ys)
    assert not np.isfinite(plain[0][:2]).any() and not np.isfinite(plain[1][:2]).all()
    np.testing.assert_array_equal(fast[0], xs)
    np.testing.assert_allclose(fast[1], np.exp(xs.astype("float64") + ys), rtol=1e-6)


# elementwise chains through sympy ------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_of_sum_of_squared_tanh_is_as_small_as_the_hand_written_one(dtype):
    x = gc.input("x", (3, 4), dtype)
    (g,) = gc.grad(gc.sum(gc.tanh(x) ** 2), [x])
    t = gc.tanh(x)
    hand = 2 * t * (1 - t**2)
    roots = optimized(g)
    assert len(toposort(roots)) <= len(toposort([unwrap(hand)]))
    xs = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    value = gc.compile([x], g)(xs)
    th = np.tanh(xs.astype("float64"))
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(value, 2 * th * (1 - th**2), rtol=rtol)


def test_chains_keep_the_accurate_form():
    t = input("t", (3,))
    one = c(1.0, "float32")
    product = ew("mul", ew("mul", ew("sub", one, t), ew("add", one, t)), t)
    # t - t**3 is smaller but loses digits next to t = 1: it is not taken
    (out,), lines = run_pass(chains.simplify_chains, product)
    assert out is product


def test_chain_decisions_are_cached_and_bounded(monkeypatch):
    monkeypatch.setattr(chains, "_decisions", {})
    monkeypatch.setattr(chains, "MAX_DECISIONS", 1)
    x, y = input("x", (3,)), input("y", (3,))
    p, q = ew("mul", x, y), ew("mul", y, ew("exp", x))
    first = ew("add", p, ew("mul", p, c(2.0, "float32")))
    second = ew("add", q, ew("mul", q, c(2.0, "float32")))
    out, lines = run_pass(chains.simplify_chains, first, second)
    assert len(chains._decisions) == 1 and out[1] is second  # the budget stopped at one
    assert out[0] is not first and len(lines) == 1


def test_reductions_of_a_scalar_or_of_one_term_are_the_term():
    s = input("s", (), "float64")
    (out,), _ = simplified(red.mean(s))
    assert out is s
    flags = input("b", (1,), "bool")
    (out,), _ = simplified(red.sum(flags))
    assert out is cast(shp.reshape(flags, ()), "int32")  # counting one flag: the flag
