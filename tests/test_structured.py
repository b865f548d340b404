"""gc.structured: K(theta) = mat(Q theta) operators, their values, derivatives and properties,
the take op, and the FFT lowering of circulant products (graphc/passes/circulant.py)."""

import numpy as np
import pytest

import graphc as gc
from graphc.node import toposort
from graphc.structured import _selection
from graphc.tensor import unwrap

rng = np.random.default_rng(0)
S = gc.structured


def run(inputs, outputs, *arrays, **options):
    return gc.compile(inputs, outputs, **options)(*arrays)


def f64(name, shape):
    return gc.input(name, shape, "float64")


def upper(n, values):
    """The reference antisymmetric matrix: values on np.triu_indices(n, 1), minus below."""
    A = np.zeros((n, n))
    A[np.triu_indices(n, 1)] = values
    return A - A.T


def softplus(v):
    return np.logaddexp(0, v)


def reference_m_matrix(theta, n):
    K = np.zeros((n, n))
    K[~np.eye(n, dtype=bool)] = -softplus(theta)
    K[np.diag_indices(n)] = -K.sum(axis=1)
    return K


# values ------------------------------------------------------------------------------------


def test_toeplitz_and_circulant_match_scipy():
    linalg = pytest.importorskip("scipy.linalg")
    for m, p in [(5, 5), (4, 6), (6, 3), (1, 4), (3, 1)]:
        cs, rs = rng.standard_normal(m), rng.standard_normal(p)
        c, r = f64("c", (m,)), f64("r", (p,))
        K, K_sym, C = run([c, r], [S.toeplitz(c, r), S.toeplitz(c), S.circulant(c)], cs, rs)
        np.testing.assert_array_equal(K, linalg.toeplitz(cs, rs))
        np.testing.assert_array_equal(K_sym, linalg.toeplitz(cs))
        np.testing.assert_array_equal(C, linalg.circulant(cs))


def test_diagonal_antisymmetric_m_matrix_from_q_values():
    n = 5
    t1, t2, t3 = rng.standard_normal(n), rng.standard_normal(10), rng.standard_normal(20)
    Q, tq = rng.standard_normal((12, 4)), rng.standard_normal(4)
    a, b, c, q = f64("a", (n,)), f64("b", (10,)), f64("c", (20,)), f64("q", (4,))
    outs = [S.diagonal(a), S.antisymmetric(b, n), S.m_matrix(c, n), S.from_q(Q, q, (3, 4))]
    D, A, M, K = run([a, b, c, q], outs, t1, t2, t3, tq)
    np.testing.assert_array_equal(D, np.diag(t1))
    np.testing.assert_array_equal(A, upper(n, t2))
    np.testing.assert_allclose(M, reference_m_matrix(t3, n), rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(K, (Q @ tq).reshape(3, 4), rtol=1e-14)
    assert [o.shape for o in outs] == [(n, n), (n, n), (n, n), (3, 4)]


def test_from_q_with_a_selection_matrix_is_a_gather():
    # Q with at most one 1 per row (here: the upper triangle of a 3x3 matrix) is a take
    n = 3
    rows, cols = np.triu_indices(n, 1)
    Q = np.zeros((n * n, len(rows)))
    Q[rows * n + cols, np.arange(len(rows))] = 1
    assert _selection(Q) is not None and _selection(2 * Q) is None
    theta = f64("theta", (3,))
    K = S.from_q(Q, theta, (n, n))
    assert "matmul" not in {node.op for node in toposort([unwrap(K)])}
    ts = rng.standard_normal(3)
    np.testing.assert_array_equal(run([theta], K, ts), (Q @ ts).reshape(n, n))


def test_structured_dtypes_follow_theta():
    theta = gc.input("t", (3,), "float32")
    assert S.toeplitz(theta).dtype == "float32"
    assert S.from_q(rng.standard_normal((9, 3)), theta, (3, 3)).dtype == "float32"
    assert S.m_matrix(gc.input("m", (6,), "float32"), 3).dtype == "float32"


def test_bad_sizes_are_clear_errors():
    with pytest.raises(gc.ShapeError, match=r"antisymmetric: theta must have n\(n-1\)/2 = 6"):
        S.antisymmetric(f64("t", (5,)), 4)
    with pytest.raises(gc.ShapeError, match=r"m_matrix: theta must have n\(n-1\) = 12"):
        S.m_matrix(f64("t", (6,)), 4)
    with pytest.raises(gc.ShapeError, match="from_q: Q must be"):
        S.from_q(np.ones((6, 2)), f64("t", (3,)), (2, 3))
    with pytest.raises(gc.ShapeError, match="circulant: needs a 1-D tensor"):
        S.circulant(f64("t", (2, 2)))
    with pytest.raises(gc.ShapeError, match="concrete length"):
        S.diagonal(f64("t", (gc.dim("N"),)))


# take --------------------------------------------------------------------------------------


def test_take_gathers_and_its_adjoint_scatter_adds():
    index = np.array([[0, 2, 2], [1, 2, 0]])
    a = f64("a", (4,))
    out = gc.take(a, index)
    assert out.shape == (2, 3)
    (g,) = gc.vjp([out], [a], [w := f64("w", (2, 3))])
    xs, ws = rng.standard_normal(4), rng.standard_normal((2, 3))
    got, got_g = run([a, w], [out, g], xs, ws)
    np.testing.assert_array_equal(got, xs[index])
    expected = np.zeros(4)
    np.add.at(expected, index.ravel(), ws.ravel())
    np.testing.assert_allclose(got_g, expected)  # a repeated index accumulates, 3 gets 0
    # both directions are differentiable again (take_grad's vjp is take)
    loss = gc.sum(gc.tanh(g) * gc.take(a, index[0]).sum())
    assert gc.check_grad(loss, [a, w], feed={a: xs, w: ws}) < 1e-6
    assert gc.check_jvp([g, out], [a, w], feed={a: xs, w: ws}) < 1e-6
    with pytest.raises(gc.ShapeError, match="out of range"):
        gc.take(a, [4])
    with pytest.raises(gc.ShapeError, match="integer array"):
        gc.take(a, [0.5])
    with pytest.raises(gc.ShapeError, match="1-D"):
        gc.take(f64("b", (2, 2)), [0])


# derivatives -------------------------------------------------------------------------------

BUILDERS = {
    # name: (theta length, K from theta, the shape of K)
    "diagonal": (4, lambda t: S.diagonal(t), (4, 4)),
    "antisymmetric": (6, lambda t: S.antisymmetric(t, 4), (4, 4)),
    "m_matrix": (12, lambda t: S.m_matrix(t, 4), (4, 4)),
    "toeplitz": (7, lambda t: S.toeplitz(t[:4], t[3:]), (4, 4)),
    "toeplitz_rect": (5, lambda t: S.toeplitz(t[:2], t[1:]), (2, 4)),
    "circulant": (4, lambda t: S.circulant(t), (4, 4)),
    "from_q": (3, lambda t: S.from_q(np.arange(48.0).reshape(16, 3) % 5, t, (4, 4)), (4, 4)),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_gradients_of_every_structured_operator(name):
    p, build, (rows, cols) = BUILDERS[name]
    theta = gc.param("theta", value=rng.standard_normal(p), dtype="float64")
    y, W = f64("y", (cols, 2)), f64("W", (rows, 2))
    K = build(theta)
    feed = {y: rng.standard_normal((cols, 2)), W: rng.standard_normal((rows, 2))}
    loss = gc.sum((K @ y) * W)
    assert gc.check_grad(loss, [theta, y], feed=feed) < 1e-6
    assert gc.check_jvp([K @ y, K], [theta, y], feed=feed) < 1e-6
    # a nonlinear loss: second derivatives too (Hessian-vector products along directions)
    loss2 = gc.sum(gc.tanh(K @ y) * W)
    (g,) = gc.grad(loss2, [theta])
    assert gc.check_jvp([g], [theta], feed=feed) < 1e-6


def test_jacobian_of_from_q_is_q():
    # J v = mat(Q v), J^T w = Q^T vec(w), with gc.jvp and gc.vjp, for any Q
    Q = rng.standard_normal((6, 4))
    theta, v, w = f64("theta", (4,)), f64("v", (4,)), f64("w", (3, 2))
    K = S.from_q(Q, theta, (3, 2))
    (Jv,) = gc.jvp([K], [theta], [v])
    (JTw,) = gc.vjp([K], [theta], [w])
    ts, vs, ws = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal((3, 2))
    got_Jv, got_JTw = run([theta, v, w], [Jv, JTw], ts, vs, ws)
    np.testing.assert_allclose(got_Jv, (Q @ vs).reshape(3, 2), rtol=1e-13)
    np.testing.assert_allclose(got_JTw, Q.T @ ws.ravel(), rtol=1e-13)


# properties --------------------------------------------------------------------------------


def test_circulant_eigenvalues_are_the_fft_of_its_first_column():
    n = 9
    cs = rng.standard_normal(n)
    c = f64("c", (n,))
    K = run([c], S.circulant(c), cs)
    by_fft = np.sort_complex(np.round(np.fft.fft(cs), 9))
    by_eig = np.sort_complex(np.round(np.linalg.eigvals(K), 9))
    np.testing.assert_allclose(by_eig, by_fft, atol=1e-8)


def test_antisymmetric_eigenvalues_are_imaginary():
    n = 7
    t = f64("t", (n * (n - 1) // 2,))
    K = run([t], S.antisymmetric(t, n), 3 * rng.standard_normal(n * (n - 1) // 2))
    np.testing.assert_array_equal(K, -K.T)
    assert np.max(np.abs(np.linalg.eigvals(K).real)) < 1e-10


def test_m_matrix_rows_sum_to_zero_with_nonpositive_off_diagonals():
    n = 6
    t = f64("t", (n * (n - 1),))
    K = run([t], S.m_matrix(t, n), 5 * rng.standard_normal(n * (n - 1)))
    off = K[~np.eye(n, dtype=bool)]
    assert np.all(off <= 0) and np.all(np.diag(K) >= 0)
    np.testing.assert_allclose(K.sum(axis=1), 0, atol=1e-12)
    assert np.max(np.linalg.eigvals(K).real) >= -1e-10  # a singular M-matrix: Re(eig) >= 0


# the FFT lowering of circulant products ----------------------------------------------------


def _big_nodes(f, n):
    return [node for node in toposort(f.program.outputs) if list(node.shape).count(n) >= 2]


def test_grad_through_a_circulant_never_builds_the_matrix():
    n = 4096
    c = gc.param("c", value=rng.standard_normal(n), dtype="float64")
    y, W = f64("y", (n,)), f64("W", (n,))
    K = S.circulant(c)
    loss = gc.sum(gc.tanh(K @ y) * W)
    gc_, gy = gc.grad(loss, [c, y])
    f = gc.compile([y, W], [loss, gc_, gy])
    assert _big_nodes(f, n) == []
    assert any(node.op == "irfft" for node in toposort(f.program.outputs))
    assert "circulant(c) @ y" in f.explain() and "circulant_grad(A @ B)" in f.explain()
    assert "circulant(c)^T @ y" in f.explain()
    ys, Ws = rng.standard_normal(n), rng.standard_normal(n)
    value, g_c, g_y = f(ys, Ws)
    # the same thing by FFTs in numpy (no dense matrix here either)
    z = np.real(np.fft.ifft(np.fft.fft(c.value) * np.fft.fft(ys)))
    dz = (1 - np.tanh(z) ** 2) * Ws
    np.testing.assert_allclose(value, np.sum(np.tanh(z) * Ws), rtol=1e-10)
    corr = np.real(np.fft.ifft(np.fft.fft(dz) * np.conj(np.fft.fft(ys))))
    np.testing.assert_allclose(g_c, corr, atol=1e-9)
    K_t_dz = np.real(np.fft.ifft(np.conj(np.fft.fft(c.value)) * np.fft.fft(dz)))
    np.testing.assert_allclose(g_y, K_t_dz, atol=1e-9)


PRODUCTS = {
    # name: (y shape, the product), n = 6
    "K @ y": ((6,), lambda K, y: K @ y),
    "K @ Y": ((6, 3), lambda K, y: K @ y),
    "K.T @ Y": ((6, 3), lambda K, y: K.T @ y),
    "K @ batch": ((2, 6, 3), lambda K, y: K @ y),
    "Y @ K": ((3, 6), lambda K, y: y @ K),
    "y @ K.T": ((6,), lambda K, y: y @ K.T),
    "K.T.T @ y": ((6,), lambda K, y: K.T.T @ y),
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_lowered_circulant_products_match_the_dense_ones(name):
    shape, product = PRODUCTS[name]
    c = gc.param("c", value=rng.standard_normal(6), dtype="float64")
    y, W = f64("y", shape), f64("W", shape)
    z = product(S.circulant(c), y)
    loss = gc.sum(gc.tanh(z) * W)
    grads = gc.grad(loss, [c, y])
    hv = gc.hvp(loss, [c, y], [gc.constant(np.ones(6)), W])
    outs = [z, loss, *grads, *hv]
    lowered = gc.compile([y, W], outs)
    assert _big_nodes(lowered, 6) == []
    ys, Ws = rng.standard_normal(shape), rng.standard_normal(shape)
    dense = run([y, W], outs, ys, Ws, optimize=False)
    for got, ref in zip(lowered(ys, Ws), dense):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_lowering_keeps_dtypes_and_leaves_other_matmuls_alone():
    c = gc.input("c", (5,), "float32")
    y = gc.input("y", (5, 2), "float64")
    z = S.circulant(c) @ y
    f = gc.compile([c, y], z)
    assert z.dtype == "float64" and not _big_nodes(f, 5)
    cs, ys = rng.standard_normal(5).astype(np.float32), rng.standard_normal((5, 2))
    np.testing.assert_allclose(f(cs, ys), run([c, y], z, cs, ys, optimize=False), rtol=1e-6)
    M = f64("M", (5, 5))
    g = gc.compile([M, y], M @ y)
    assert "circulant" not in g.explain()
