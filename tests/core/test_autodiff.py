"""graphc.autodiff: grad, vjp, jvp, hvp and the finite-difference checks, as graph transforms."""

import numpy as np
import pytest
import sympy

import graphc as gc
from graphc.models import mlp
from graphc.node import toposort
from graphc.ops import registry
from graphc.tensor import unwrap

rng = np.random.default_rng(0)


def run(inputs, outputs, *arrays):
    return gc.compile(inputs, outputs)(*arrays)


def nodes_of(tensors):
    return toposort([unwrap(t) for t in tensors])


# grad: shapes, zeros, errors ---------------------------------------------------------------


def test_grad_has_the_shape_of_each_wrt_entry():
    x = gc.input("x", (5, 4), "float64")
    W = gc.param("W", (4, 3), seed=0, dtype="float64")
    b = gc.param("b", (3,), init="zeros", dtype="float64")
    loss = gc.mean(gc.tanh(x @ W + b) ** 2)
    gW, gb = gc.grad(loss, [W, b])
    assert gW.shape == W.shape and gb.shape == b.shape
    assert isinstance(gc.grad(loss, W), gc.Tensor)  # one Tensor in, one out
    xs = rng.standard_normal((5, 4))
    h = np.tanh(xs @ W.value + b.value)
    dh = 2 * h / h.size * (1 - h**2)
    got_W, got_b = run([x], [gW, gb], xs)
    np.testing.assert_allclose(got_W, xs.T @ dh, rtol=1e-12)
    np.testing.assert_allclose(got_b, dh.sum(0), rtol=1e-12)


def test_sum_of_adjoints_where_a_node_feeds_several_consumers():
    x = gc.input("x", (3,), "float64")
    y = gc.sum(x * x + gc.exp(x) * x)
    (g,) = run([x], [gc.grad(y, x)], xs := rng.standard_normal(3))
    np.testing.assert_allclose(g, 2 * xs + np.exp(xs) * (1 + xs), rtol=1e-13)


def test_unrelated_wrt_gets_an_explicit_zero_that_costs_a_scalar():
    x = gc.input("x", (3,), "float64")
    V = gc.param("V", (2, 2), init="zeros", dtype="float64")
    gV = gc.grad(gc.sum(x**2), V)
    assert gV.shape == (2, 2)
    assert {n.op for n in nodes_of([gV])} == {"constant", "broadcast_to"}
    np.testing.assert_array_equal(run([x], gV, np.ones(3)), np.zeros((2, 2)))


def test_unused_branches_build_no_zero_tensors():
    # only the branch through W carries an adjoint: nothing is built for x's other uses
    x = gc.input("x", (4, 3), "float64")
    W = gc.param("W", (3, 2), seed=1, dtype="float64")
    loss = gc.sum(gc.tanh(x @ W)) + gc.sum(gc.exp(x)) * 2.0 + gc.max(x)
    gW = gc.grad(loss, W)
    ops = [n.op for n in nodes_of([gW])]
    assert "exp" not in ops and "max" not in ops  # the branches W does not reach
    zeros = [
        n
        for n in nodes_of([gW])
        if n.op == "constant" and not n.attrs["value"].array.any() and n.rank == 0
    ]
    assert zeros == []


def test_integer_inputs_are_not_differentiable():
    x = gc.input("x", (3,), "float32")
    t = gc.input("t", (3,), "int32")
    loss = gc.sum(x * gc.cast(t, "float32"))
    with pytest.raises(gc.DifferentiationError, match=r"'t'.*int32.*test_autodiff.py"):
        gc.grad(loss, [x, t])
    # but gradients flow past integer nodes without complaint
    assert gc.grad(loss, x).shape == (3,)


def test_grad_needs_a_scalar():
    x = gc.input("x", (3,), "float64")
    with pytest.raises(gc.DifferentiationError, match=r"scalar output.*\(3,\).*gc.vjp"):
        gc.grad(x * 2, x)


def test_vjp_and_jvp_check_their_vectors():
    x = gc.input("x", (3,), "float64")
    y = gc.tanh(x)
    with pytest.raises(gc.DifferentiationError, match="cotangent has shape"):
        gc.vjp([y], [x], [gc.input("w", (4,), "float64")])
    with pytest.raises(gc.DifferentiationError, match="1 inputs but 2 tangents"):
        gc.jvp([y], [x], [x, x])


def test_an_op_without_rules_is_a_clear_error(monkeypatch):
    x = gc.input("x", (3,), "float64")
    y = gc.sum(gc.tanh(x))
    monkeypatch.delitem(registry.VJP_RULES, "tanh")
    monkeypatch.delitem(registry.JVP_RULES, "tanh")
    with pytest.raises(gc.DifferentiationError, match="'tanh' has no vjp rule"):
        gc.grad(y, x)
    with pytest.raises(gc.DifferentiationError, match="'tanh' has no jvp rule"):
        gc.jvp([y], [x], [x])


# vjp and jvp ---------------------------------------------------------------------------------


def test_vjp_and_jvp_are_transposes_of_each_other():
    # <w, J v> == <J^T w, v> for a map R^(4x3) x R^3 -> R^(5x3)
    x = gc.input("x", (4, 3), "float64")
    b = gc.input("b", (3,), "float64")
    A = gc.constant(rng.standard_normal((5, 4)))
    y = gc.softplus(A @ x + b) * gc.sigmoid(b)
    v1, v2 = gc.input("v1", (4, 3), "float64"), gc.input("v2", (3,), "float64")
    w = gc.input("w", (5, 3), "float64")
    (jv,) = gc.jvp([y], [x, b], [v1, v2])
    wj1, wj2 = gc.vjp([y], [x, b], [w])
    xs, bs = rng.standard_normal((4, 3)), rng.standard_normal(3)
    vs1, vs2, ws = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((5, 3))
    f = gc.compile([x, b, v1, v2, w], [jv, wj1, wj2])
    jv_val, a1, a2 = f(xs, bs, vs1, vs2, ws)
    np.testing.assert_allclose(np.sum(ws * jv_val), np.sum(a1 * vs1) + np.sum(a2 * vs2), rtol=1e-12)


def test_jvp_is_forward_mode_not_a_double_vjp():
    x = gc.input("x", (3,), "float64")
    (t,) = gc.jvp([gc.exp(x)], [x], [v := gc.input("v", (3,), "float64")])
    ops = {n.op for n in nodes_of([t])}
    assert ops == {"input", "exp", "mul"}  # exp(x) * v: no transposed ops, no adjoint seeds
    xs, vs = rng.standard_normal(3), rng.standard_normal(3)
    np.testing.assert_allclose(run([x, v], t, xs, vs), np.exp(xs) * vs, rtol=1e-14)


def test_linear_parametric_operator_k_of_theta():
    # K(θ) = mat(Qθ): the Jacobian of θ -> K is Q itself, so J v = mat(Q v), J^T w = Q^T vec(w)
    n, m, p = 4, 3, 5
    Qs = rng.standard_normal((n * m, p))
    theta = gc.input("theta", (p,), "float64")
    K = gc.reshape(gc.constant(Qs) @ theta, (n, m))
    v, w = gc.input("v", (p,), "float64"), gc.input("w", (n, m), "float64")
    (Jv,) = gc.jvp([K], [theta], [v])
    (JTw,) = gc.vjp([K], [theta], [w])
    ts, vs, ws = rng.standard_normal(p), rng.standard_normal(p), rng.standard_normal((n, m))
    Jv_val, JTw_val = gc.compile([theta, v, w], [Jv, JTw])(ts, vs, ws)
    np.testing.assert_allclose(Jv_val, (Qs @ vs).reshape(n, m), rtol=1e-13)
    np.testing.assert_allclose(JTw_val, Qs.T @ ws.ravel(), rtol=1e-13)
    # and through a model that uses K: y = K x, loss = |y|^2 / 2, dloss/dθ = Q^T vec(y x^T)
    x = gc.input("x", (m,), "float64")
    y = K @ x
    g = gc.grad(gc.sum(y * y) / 2, theta)
    xs = rng.standard_normal(m)
    ys = (Qs @ ts).reshape(n, m) @ xs
    np.testing.assert_allclose(run([theta, x], g, ts, xs), Qs.T @ np.outer(ys, xs).ravel())


# higher derivatives ----------------------------------------------------------------------------


HIGHER = {
    # name: (function, [f', f'', f'''] as numpy functions), checked on a grid
    "tanh": (
        gc.tanh,
        [
            lambda a: 1 - np.tanh(a) ** 2,
            lambda a: -2 * np.tanh(a) * (1 - np.tanh(a) ** 2),
            lambda a: (1 - np.tanh(a) ** 2) * (6 * np.tanh(a) ** 2 - 2),
        ],
    ),
    "sigmoid": (
        gc.sigmoid,
        [
            lambda a: (s := 1 / (1 + np.exp(-a))) * (1 - s),
            lambda a: (s := 1 / (1 + np.exp(-a))) * (1 - s) * (1 - 2 * s),
            lambda a: (s := 1 / (1 + np.exp(-a))) * (1 - s) * (1 - 6 * s + 6 * s * s),
        ],
    ),
    "exp(x)*x": (
        lambda x: gc.exp(x) * x,
        [
            lambda a: np.exp(a) * (a + 1),
            lambda a: np.exp(a) * (a + 2),
            lambda a: np.exp(a) * (a + 3),
        ],
    ),
    "log": (
        gc.log,
        [lambda a: 1 / a, lambda a: -1 / a**2, lambda a: 2 / a**3],
    ),
    "x**3": (lambda x: x**3, [lambda a: 3 * a**2, lambda a: 6 * a, lambda a: 6 + 0 * a]),
}


@pytest.mark.parametrize("name", list(HIGHER))
def test_second_and_third_derivatives_of_elementwise_functions(name):
    fn, derivatives = HIGHER[name]
    x = gc.input("x", (7,), "float64")
    xs = np.linspace(0.2, 3.0, 7) if name == "log" else np.linspace(-3, 3, 7)
    y = fn(x)
    for expected in derivatives:
        y = gc.grad(gc.sum(y), x)  # elementwise: the gradient of the sum is the derivative
        np.testing.assert_allclose(run([x], y, xs), expected(xs), rtol=1e-12, atol=1e-14)


def test_second_derivative_through_matmul_and_tanh():
    # f(W) = sum(tanh(x W)); the Hessian-vector product against finite differences of grads
    x = gc.input("x", (5, 4), "float64")
    W = gc.input("W", (4, 3), "float64")
    V = gc.input("V", (4, 3), "float64")
    loss = gc.sum(gc.tanh(x @ W))
    (hv,) = gc.hvp(loss, [W], [V])
    g = gc.grad(loss, W)
    xs, Ws, Vs = (
        rng.standard_normal((5, 4)),
        rng.standard_normal((4, 3)),
        rng.standard_normal((4, 3)),
    )
    grad_f = gc.compile([x, W], g)
    eps = 1e-5
    fd = (grad_f(xs, Ws + eps * Vs) - grad_f(xs, Ws - eps * Vs)) / (2 * eps)
    np.testing.assert_allclose(run([x, W, V], hv, xs, Ws, Vs), fd, rtol=1e-7, atol=1e-9)
    # the same second derivative by reverse over reverse: d/dW <grad, V>
    g2 = gc.grad(gc.sum(g * V), W)
    np.testing.assert_allclose(run([x, W, V], g2, xs, Ws, Vs), fd, rtol=1e-7, atol=1e-9)
    # and analytically: H V = x^T (-2 t (1 - t^2) * (x V)) with t = tanh(x W)
    t = np.tanh(xs @ Ws)
    exact = xs.T @ (-2 * t * (1 - t**2) * (xs @ Vs))
    np.testing.assert_allclose(run([x, W, V], hv, xs, Ws, Vs), exact, rtol=1e-12)


def test_hvp_of_a_quadratic_is_the_matrix():
    A = rng.standard_normal((4, 4))
    A = A + A.T
    x = gc.input("x", (4,), "float64")
    v = gc.input("v", (4,), "float64")
    (hv,) = gc.hvp(gc.sum(x * (gc.constant(A) @ x)) / 2, [x], [v])
    vs = rng.standard_normal(4)
    np.testing.assert_allclose(run([x, v], hv, rng.standard_normal(4), vs), A @ vs, rtol=1e-12)


# user elementwise ops, kinks, stability -----------------------------------------------------------


def test_a_users_elementwise_op_is_differentiable_with_no_extra_code():
    softsign = gc.elementwise(lambda v: v / (1 + sympy.Abs(v)), name="softsign")
    gelu = gc.elementwise(lambda v: v / 2 * (1 + sympy.erf(v / sympy.sqrt(2))), name="gelu")
    x = gc.input("x", (9,), "float64")
    xs = np.linspace(-4, 4, 9) + 0.1
    g1 = run([x], gc.grad(gc.sum(softsign(x)), x), xs)
    np.testing.assert_allclose(g1, 1 / (1 + np.abs(xs)) ** 2, rtol=1e-13)
    from math import erf

    phi = np.exp(-(xs**2) / 2) / np.sqrt(2 * np.pi)
    cdf = np.array([(1 + erf(a / np.sqrt(2))) / 2 for a in xs])
    g2 = run([x], gc.grad(gc.sum(gelu(x)), x), xs)
    np.testing.assert_allclose(g2, cdf + xs * phi, rtol=1e-12)
    assert gc.check_grad(gc.sum(gelu(x) * softsign(x)), [x], {x: xs}) < 1e-7


def test_kink_conventions():
    # relu'(0) = 0 and abs'(0) = 0 (as PyTorch, JAX); ties of maximum/minimum/max split evenly
    x = gc.input("x", (3,), "float64")
    xs = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(run([x], gc.grad(gc.sum(gc.relu(x)), x), xs), [0, 0, 1])
    np.testing.assert_array_equal(run([x], gc.grad(gc.sum(gc.abs(x)), x), xs), [-1, 0, 1])
    y = gc.input("y", (3,), "float64")
    gx, gy = gc.grad(gc.sum(gc.maximum(x, y)), [x, y])
    got_x, got_y = gc.compile([x, y], [gx, gy])(xs, np.array([0.0, 0.0, 0.0]))
    np.testing.assert_array_equal(got_x, [0, 0.5, 1])
    np.testing.assert_array_equal(got_y, [1, 0.5, 0])
    ties = run([x], gc.grad(gc.max(x), x), np.array([3.0, 1.0, 3.0]))
    np.testing.assert_array_equal(ties, [0.5, 0, 0.5])
    # second derivatives of the kinked functions are 0 almost everywhere
    np.testing.assert_array_equal(
        run([x], gc.grad(gc.sum(gc.grad(gc.sum(gc.relu(x)), x)), x), xs), [0, 0, 0]
    )


def test_derivatives_stay_finite_where_textbook_forms_overflow():
    x = gc.input("x", (4,), "float32")
    xs = np.array([-1000.0, -100.0, 100.0, 1000.0], np.float32)
    g = run([x], gc.grad(gc.sum(gc.sigmoid(x) + gc.softplus(x)), x), xs)
    np.testing.assert_allclose(g, [0, 0, 1, 1], atol=1e-30)
    logits = gc.input("z", (2, 3), "float32")
    t = gc.input("t", (2,), "int32")
    zs = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], np.float32)
    loss = gc.sum(gc.softmax_cross_entropy(logits, t)) + gc.sum(gc.logsumexp(logits, 1))
    loss = loss + gc.sum(gc.log_softmax(logits)) + gc.sum(gc.softmax(logits) ** 2)
    g = gc.compile([logits, t], gc.grad(loss, logits))(zs, np.array([1, 2], np.int32))
    assert np.all(np.isfinite(g))


# gradient checks ---------------------------------------------------------------------------------


def test_check_grad_and_check_jvp_pass_on_a_correct_model_and_catch_a_wrong_rule(monkeypatch):
    N = gc.dim("N")
    x = gc.input("x", (N, 6))
    t = gc.input("t", (N,), "int32")
    W1 = gc.param("W1", (6, 5), seed=0)
    b1 = gc.param("b1", (5,), init="zeros")
    W2 = gc.param("W2", (5, 3), seed=1)
    loss = gc.mean(gc.softmax_cross_entropy(gc.tanh(x @ W1 + b1) @ W2, t, label_smoothing=0.1))
    feed = {x: rng.standard_normal((4, 6)).astype(np.float32), t: np.array([0, 1, 2, 1])}
    assert gc.check_grad(loss, [W1, b1, W2], feed) < 1e-6
    assert gc.check_jvp(loss, [W1, b1, W2, x], feed) < 1e-6

    def wrong_tanh(node, g):  # forgets the (1 - tanh^2) factor
        return [g]

    monkeypatch.setitem(registry.VJP_RULES, "tanh", wrong_tanh)
    assert gc.check_grad(loss, [W1, b1, W2], feed) > 1e-2


def test_check_grad_rejects_what_it_cannot_perturb():
    x = gc.input("x", (3,))
    with pytest.raises(gc.DifferentiationError, match="only perturb float inputs and params"):
        gc.check_grad(gc.sum(gc.exp(x)), [gc.exp(x)], {x: np.ones(3)})
    with pytest.raises(ValueError, match="no value in feed for input 'x'"):
        gc.check_grad(gc.sum(gc.exp(x)), [x], {})


# gradients in training ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_a_compiled_sgd_step_lowers_the_loss(backend):
    data = gc.data.load_digits()
    images, labels = data[0][:200], data[1][:200]
    N = gc.dim("N")
    x = gc.input("x", (N, 64))
    t = gc.input("t", (N,), "int32")
    W = gc.param("W", (64, 10), seed=0)
    b = gc.param("b", (10,), init="zeros")
    loss = gc.mean(gc.softmax_cross_entropy(x @ W + b, t))
    gW, gb = gc.grad(loss, [W, b])
    step = gc.compile([x, t], loss, updates={W: W - 0.5 * gW, b: b - 0.5 * gb}, backend=backend)
    losses = [float(step(images, labels)) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]


def test_gradient_graph_of_the_mlp_is_linear_in_the_forward_graph():
    model = mlp((784, 16, 16, 10))
    grads = gc.grad(model.loss, model.params)
    forward = len(nodes_of([model.loss]))
    backward = len(nodes_of(grads))
    assert backward < 4 * forward, (forward, backward)
