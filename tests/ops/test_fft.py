"""graphc.ops.fft: rfft/irfft/fft/ifft/rfftn/irfftn against numpy, complex dtypes, and
derivatives: finite differences through real losses and JAX's convention for complex
cotangents (the cotangent of z is dL/dRe z - i dL/dIm z), checked exactly on linear maps."""

import numpy as np
import pytest

import graphc as gc
from graphc.autodiff import jvp_nodes, vjp_nodes
from graphc.node import Node
from graphc.ops import fft as fft_ops
from graphc.tensor import unwrap

rng = np.random.default_rng(0)


def run(inputs, outputs, *arrays, **options):
    return gc.compile(inputs, outputs, **options)(*arrays)


def crandn(*shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


# values against numpy ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [None, 5, 8, 13])
@pytest.mark.parametrize("axis", [0, -1])
def test_rfft_and_irfft_match_numpy(dtype, n, axis):
    xs = rng.standard_normal((8, 6)).astype(dtype)
    x = gc.input("x", xs.shape, dtype)
    X = gc.rfft(x, n, axis)
    back = gc.irfft(X, n, axis)
    complex_dtype = "complex64" if dtype == "float32" else "complex128"
    assert X.dtype == complex_dtype and back.dtype == dtype
    got_X, got_back = run([x], [X, back], xs)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got_X, np.fft.rfft(xs, n, axis), rtol=tol, atol=tol)
    ref = np.fft.irfft(np.fft.rfft(xs, n, axis), n, axis)
    np.testing.assert_allclose(got_back, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("n", [None, 4, 7, 12])
def test_irfft_of_any_bins_matches_numpy(n):
    # bins cropped or zero-padded to n//2+1; the imaginary parts of DC and Nyquist ignored
    Xs = crandn(3, 5)
    X = gc.constant(Xs)
    np.testing.assert_allclose(run([], gc.irfft(X, n)), np.fft.irfft(Xs, n), atol=1e-13)


def test_fft_ifft_rfftn_irfftn_match_numpy():
    xs = rng.standard_normal((4, 6, 5))
    x = gc.input("x", xs.shape, "float64")
    outs = [
        gc.fft(x),
        gc.ifft(x, 8, axis=1),
        gc.rfftn(x),
        gc.rfftn(x, s=(3, 8), axes=(0, 2)),
        gc.irfftn(gc.rfftn(x, axes=(1, 2)), s=(6, 5), axes=(1, 2)),
        gc.irfftn(gc.rfftn(x)),
    ]
    got = run([x], outs, xs)
    refs = [
        np.fft.fft(xs),
        np.fft.ifft(xs, 8, axis=1),
        np.fft.rfftn(xs),
        np.fft.rfftn(xs, s=(3, 8), axes=(0, 2)),
        np.fft.irfftn(np.fft.rfftn(xs, axes=(1, 2)), s=(6, 5), axes=(1, 2)),
        np.fft.irfftn(np.fft.rfftn(xs)),
    ]
    for g, r in zip(got, refs):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, atol=1e-12)


def test_complex_arithmetic_conj_real_imag():
    zs, ws, xs = crandn(3, 4), crandn(4, 2), rng.standard_normal(4)
    z, w = gc.input("z", (3, 4), "complex128"), gc.input("w", (4, 2), "complex128")
    x = gc.input("x", (4,), "float64")
    outs = [z * x + z / (x + 3) - (-z), gc.sum(z, axis=0), z @ w, gc.conj(z), gc.real(z)]
    outs += [gc.imag(z), gc.transpose(z)[1:, :2], gc.pad(z, 1), gc.concat([z, x.reshape(1, 4)])]
    got = run([z, w, x], outs, zs, ws, xs)
    refs = [zs * xs + zs / (xs + 3) + zs, zs.sum(0), zs @ ws, zs.conj(), zs.real, zs.imag]
    refs += [zs.T[1:, :2], np.pad(zs, 1), np.concatenate([zs, xs[None]])]
    for g, r in zip(got, refs):
        np.testing.assert_allclose(g, r, rtol=1e-14)
    assert (z * x).dtype == "complex128"
    assert (gc.input("a", (2,), "complex64") * gc.input("b", (2,), "float64")).dtype == "complex128"


def test_ops_without_complex_support_say_so():
    z = gc.input("z", (3,), "complex128")
    with pytest.raises(gc.ShapeError, match="exp: complex operands"):
        gc.exp(z)
    with pytest.raises(gc.ShapeError, match="cast: complex128 to float64"):
        z.astype("float64")
    with pytest.raises(gc.ShapeError, match="rfft: needs a real operand"):
        gc.rfft(z)
    with pytest.raises(gc.ShapeError, match="concrete size"):
        gc.rfft(gc.input("x", (gc.dim("N"),), "float64"))
    with pytest.raises(gc.ShapeError, match="n must be a positive int"):
        gc.irfft(z, 0)
    with pytest.raises(gc.DifferentiationError, match="only float tensors"):
        gc.grad(gc.sum(gc.real(z)), z)  # user-facing wrt stay real


# derivatives: finite differences through real losses ------------------------------------------


@pytest.mark.parametrize("n", [7, 8])
def test_convolution_by_fft_gradients(n):
    # the circular convolution x * y = irfft(rfft(x) rfft(y)), in a real scalar loss
    x, y = gc.input("x", (3, n), "float64"), gc.input("y", (n,), "float64")
    W = gc.input("W", (3, n), "float64")
    z = gc.irfft(gc.rfft(x) * gc.rfft(y), n)
    feed = {
        x: rng.standard_normal((3, n)),
        y: rng.standard_normal(n),
        W: rng.standard_normal((3, n)),
    }
    assert gc.check_grad(gc.sum(z * W), [x, y], feed=feed) < 1e-6
    assert gc.check_jvp([z], [x, y], feed=feed) < 1e-6
    ys = feed[y]
    ref = np.real(np.fft.ifft(np.fft.fft(feed[x]) * np.fft.fft(ys)))
    np.testing.assert_allclose(run([x, y], z, feed[x], ys), ref, atol=1e-12)


def test_gradients_through_every_fft_op():
    x, W = gc.input("x", (6, 5), "float64"), gc.input("W", (6, 5), "float64")
    V, U = gc.input("V", (4, 7), "float64"), gc.input("U", (8, 5), "float64")
    spectrum = gc.rfftn(x * x, s=(4, 12))  # crop and pad
    terms = [
        gc.sum(gc.irfftn(spectrum * gc.conj(spectrum), s=(4, 7)) * V),
        gc.sum(gc.real(gc.fft(x, axis=0) * gc.ifft(gc.tanh(x), axis=0)) * W),
        gc.sum(gc.imag(gc.fft(gc.exp(x), 8, axis=0) * gc.fft(x, 8, axis=0)) * U),
        gc.sum(gc.irfft(gc.rfft(x, 3, axis=0) * gc.real(gc.rfft(x, 3, axis=0)), 6, axis=0) * W),
    ]
    feed = {x: rng.standard_normal((6, 5)), W: rng.standard_normal((6, 5))}
    feed[V], feed[U] = rng.standard_normal((4, 7)), rng.standard_normal((8, 5))
    for term in terms:
        assert gc.check_grad(term, x, feed=feed) < 1e-6
        assert gc.check_jvp([term], [x], feed=feed) < 1e-6


def test_second_derivatives_through_ffts():
    n = 6
    x, W = gc.input("x", (n,), "float64"), gc.input("W", (n,), "float64")
    X = gc.rfft(x)
    loss = gc.sum(gc.irfft(X * X * gc.conj(X), n) * W)
    (g,) = gc.grad(loss, [x])
    feed = {x: rng.standard_normal(n), W: rng.standard_normal(n)}
    assert gc.check_jvp([g], [x], feed=feed) < 1e-6  # the Hessian along random directions
    assert gc.check_grad(gc.sum(g * g), x, feed=feed) < 1e-6


def test_float32_ffts_differentiate_in_float32():
    x = gc.input("x", (8,), "float32")
    loss = gc.sum(gc.irfft(gc.rfft(x) * gc.rfft(x), 8))
    g = gc.grad(loss, x)
    assert g.dtype == "float32"
    xs = rng.standard_normal(8).astype(np.float32)
    # loss = sum(x conv x) = (sum x)^2, so the gradient is 2 sum(x) everywhere
    np.testing.assert_allclose(run([x], g, xs), np.full(8, 2 * xs.sum()), rtol=1e-4)
    assert gc.check_grad(loss, x, feed={x: xs}) < 1e-6  # rebuilt in float64


# derivatives: JAX's convention, exactly, on the linear ops -------------------------------------


def _jacobians(fn, shape, complex_in):
    """The real Jacobians d out / d Re z and d out / d Im z of a linear numpy map, by basis."""
    size = int(np.prod(shape))
    d_re, d_im = [], []
    for k in range(size):
        e = np.zeros(size)
        e[k] = 1
        d_re.append(np.ravel(fn(e.reshape(shape))))
        if complex_in:
            d_im.append(np.ravel(fn(1j * e.reshape(shape))))
    return np.array(d_re).T, (np.array(d_im).T if complex_in else None)


LINEAR = {
    # name: (graph builder, numpy map, input shape, complex input)
    "rfft": (lambda a: fft_ops.rfft(a, axis=0), lambda a: np.fft.rfft(a, axis=0), (6, 2), False),
    "rfft_odd_n": (lambda a: fft_ops.rfft(a, 9), lambda a: np.fft.rfft(a, 9), (2, 7), False),
    "irfft_even": (lambda a: fft_ops.irfft(a, 6), lambda a: np.fft.irfft(a, 6), (2, 4), True),
    "irfft_odd": (lambda a: fft_ops.irfft(a, 7), lambda a: np.fft.irfft(a, 7), (4,), True),
    "fft": (lambda a: fft_ops.fft(a), lambda a: np.fft.fft(a), (5,), True),
    "ifft": (lambda a: fft_ops.ifft(a, 6), lambda a: np.fft.ifft(a, 6), (3, 4), True),
    "conj": (lambda a: gc.conj(a).node, np.conj, (3,), True),
    "real": (lambda a: gc.real(a).node, np.real, (3,), True),
    "imag": (lambda a: gc.imag(a).node, np.imag, (3,), True),
}


@pytest.mark.parametrize("name", sorted(LINEAR))
def test_vjp_and_jvp_follow_jax_convention(name):
    build, fn, shape, complex_in = LINEAR[name]
    a = gc.input("a", shape, "complex128" if complex_in else "float64")
    out = build(unwrap(a))
    assert isinstance(out, Node)
    d_re, d_im = _jacobians(fn, shape, complex_in)
    # reverse: for L = Re <w, out> with out's cotangent w (complex when out is complex):
    # the cotangent of a is dL/dRe a - i dL/dIm a, so Re(w^T d_re) - i Re(w^T d_im)
    ws = crandn(*out.shape) if out.dtype.startswith("complex") else rng.standard_normal(out.shape)
    w = gc.input("w", out.shape, out.dtype)
    (ct,) = vjp_nodes([out], [unwrap(w)], [unwrap(a)])
    expected = np.real(ws.ravel() @ d_re)
    if complex_in:
        expected = expected - 1j * np.real(ws.ravel() @ d_im)
    np.testing.assert_allclose(
        np.ravel(run([a, w], gc.Tensor(ct), np.zeros(shape), ws)), expected, atol=1e-12
    )
    # forward: the tangent of out along t is d_re Re t + d_im Im t
    ts = crandn(*shape) if complex_in else rng.standard_normal(shape)
    t = gc.input("t", shape, a.dtype)
    (tangent,) = jvp_nodes([out], [unwrap(a)], [unwrap(t)])
    expected = d_re @ np.real(ts).ravel() + (d_im @ np.imag(ts).ravel() if complex_in else 0)
    got = run([a, t], gc.Tensor(tangent), np.zeros(shape), ts)
    np.testing.assert_allclose(np.ravel(got), expected, atol=1e-12)
