"""backend="llvm": FFT kernels (rfft, irfft, fft, ifft and the n-d transforms built from them),
complex elementwise ops, sums and matmuls, and the FFT convolution with its gradients agree
with the numpy backend."""

import numpy as np
import pytest

import graphc as gc
from backends.llvm import fft_generated

rng = np.random.default_rng(0)
TOL = {"float32": 1e-4, "float64": 1e-11}
COMPLEX = {"float32": "complex64", "float64": "complex128"}
# powers of 2, 3, 5, their products, primes (7, 97: Bluestein above 13) and 1000 = 2^3 5^3
LENGTHS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 25, 27, 30, 49, 64, 97, 100, 128, 243, 1000)


def close(got, want, dtype, what=""):
    """Agreement relative to the largest magnitude of the reference (as FFT errors scale)."""
    assert got.dtype == want.dtype and got.shape == want.shape, what
    scale = max(np.max(np.abs(want)), 1e-30) if want.size else 1.0
    error = np.max(np.abs(got - want)) / scale if want.size else 0.0
    assert error <= TOL[dtype], f"{what}: relative error {error:.2e}"


def both(inputs, outputs):
    return gc.compile(inputs, outputs, backend="llvm"), gc.compile(inputs, outputs)


def random(shape, dtype):
    if dtype.startswith("complex"):
        part = "float32" if dtype == "complex64" else "float64"
        return (random(shape, part) + 1j * random(shape, part)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def test_plans_cover_every_length():
    assert fft_generated.factors(1000) == [4, 2, 5, 5, 5]
    assert fft_generated.plan(97).work == 256  # Bluestein: a power of 2 >= 2n - 1
    assert fft_generated.plan(7 * 13).radices == (7, 13)
    w = fft_generated.roots(np.arange(8), 8, -1)
    assert w[2] == -1j and w[4] == -1 and w[6] == 1j  # exact quarter turns


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_transform_over_many_lengths_and_batch_sizes(dtype):
    N = gc.dim("N")
    xs = [gc.input(f"x{n}", (N, n), dtype) for n in LENGTHS]
    # irfft of arbitrary bins: the imaginary parts of bin 0 and (even n) n/2 are ignored
    bins = [gc.input(f"b{n}", (N, n // 2 + 1), COMPLEX[dtype]) for n in LENGTHS]
    zs = [gc.input(f"z{n}", (N, n), COMPLEX[dtype]) for n in LENGTHS]
    outs, names = [], []
    for n, x, b, z in zip(LENGTHS, xs, bins, zs):
        outs += [gc.rfft(x), gc.irfft(b, n=n), gc.fft(z), gc.ifft(z)]
        names += [f"rfft n={n}", f"irfft n={n}", f"fft n={n}", f"ifft n={n}"]
    fast, ref = both(xs + bins + zs, outs)
    for batch in (1, 3):
        feeds = [random((batch, *v.shape[1:]), v.dtype) for v in xs + bins + zs]
        for got, want, name in zip(fast(*feeds), ref(*feeds), names):
            close(got, want, dtype, f"{name} N={batch}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_axes_n_d_transforms_and_epilogues(dtype):
    N = gc.dim("N")
    x = gc.input("x", (N, 6, 10, 5), dtype)
    t = gc.input("t", (6, N, 5), dtype)  # axis 0 transformed, the symbolic one in the middle
    spectrum = gc.rfftn(x, axes=(1, 2))  # rfft on a middle axis, then fft on axis 1
    outs = [
        gc.rfft(t, axis=0),
        gc.ifft(gc.rfft(t, axis=2), axis=0),
        gc.irfftn(gc.rfftn(t, axes=(0, 2)), s=(6, 5), axes=(0, 2)),
        gc.fft(x, axis=2),
        gc.ifft(x, n=7, axis=1),
        spectrum,
        gc.irfftn(spectrum, s=(6, 10), axes=(1, 2)),
        gc.irfftn(gc.rfftn(x, axes=(1, 3)), s=(6, 5), axes=(1, 3)),
        gc.real(gc.fft(x, axis=3)) * 2.0 + x,  # an epilogue after the FFT
        gc.imag(gc.rfft(x, n=12, axis=2)),
        gc.irfft(gc.rfft(x, axis=1), n=6, axis=1) * gc.abs(x),
    ]
    fast, ref = both([x, t], outs)
    for batch in (1, 4):
        feeds = [random((batch, 6, 10, 5), dtype), random((6, batch, 5), dtype)]
        for k, (got, want) in enumerate(zip(fast(*feeds), ref(*feeds))):
            close(got, want, dtype, f"output {k} N={batch}")
    assert fast.program.kernels.count("library") >= 12


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_complex_elementwise_sums_matmuls_and_data_movement(dtype):
    N = gc.dim("N")
    ct = COMPLEX[dtype]
    a = gc.input("a", (N, 5, 7), dtype)
    z = gc.input("z", (N, 5, 7), ct)
    c = gc.input("c", (7, 3), ct)
    outs = [
        z @ c,  # cgemm / zgemm
        a @ c,  # mixed dtypes: the plain loop
        gc.transpose(z, (0, 2, 1)) @ z,
        z * gc.conj(z) - z / (c[:, 0] + 1.0) + 2.0,
        gc.where(a > 0, z, -z),
        gc.real(z) * gc.imag(z) + gc.imag(a),
        gc.sum(z * a, axis=1),
        gc.mean(z, axis=(0, 2)),
        gc.transpose(z, (2, 0, 1)),
        z[:, 1:4, ::2],
        gc.pad(z, [(0, 0), (1, 2), (0, 1)]),
        gc.concat([z, gc.cast(a, ct)], axis=1),
        gc.reshape(z, (N, 35)) * 0.5,
    ]
    fast, ref = both([a, z, c], outs)
    for batch in (1, 3):
        feeds = [random((batch, 5, 7), dtype), random((batch, 5, 7), ct), random((7, 3), ct)]
        for k, (got, want) in enumerate(zip(fast(*feeds), ref(*feeds))):
            close(got, want, dtype, f"output {k} N={batch}")


def test_complex_division_by_zero_is_numpys():
    z = gc.input("z", (4,), "complex128")
    d = gc.input("d", (4,), "complex128")
    fast = gc.compile([z, d], z / d, backend="llvm")
    zv = np.array([1 + 1j, 0j, 3 - 2j, 1e300 + 1e300j])
    dv = np.array([0j, 0j, 1e-300 + 2e-300j, 1e300 - 1e300j])
    with np.errstate(all="ignore"):
        np.testing.assert_equal(fast(zv, dv), zv / dv)


CONVS = [  # (spatial, kernel, in/out channels, options)
    ((11,), (3,), (2, 3), {"stride": 2}),
    ((9, 10), (3, 2), (2, 3), {"padding": 2, "dilation": (2, 1)}),
    ((8, 7), (3, 3), (4, 4), {"groups": 2, "padding": "same"}),
    ((8, 9), (3, 3), (2, 3), {"padding": 1, "padding_mode": "circular", "stride": (1, 2)}),
    ((5, 6, 4), (2, 3, 2), (2, 2), {"padding": 1, "stride": 2}),
]


@pytest.mark.parametrize(
    ("case", "dtype"),
    [(k, "float64") for k in range(len(CONVS))] + [(1, "float32"), (3, "float32")],
)
def test_fft_convolutions_and_their_gradients(case, dtype):
    spatial, kernel, (c_in, c_out), options = CONVS[case]
    groups = options.get("groups", 1)
    N = gc.dim("N")
    x = gc.input("x", (N, c_in, *spatial), dtype)
    w = gc.input("w", (c_out, c_in // groups, *kernel), dtype)
    y = gc.conv(x, w, algo="fft", **options)
    loss = gc.sum(gc.tanh(y) * y)
    gx, gw = gc.grad(loss, [x, w])
    fast, ref = both([x, w], [y, gx, gw])
    assert fast.program.kernels.count("library") >= 3  # the FFTs
    for batch in (1, 2):
        feeds = [random((batch, c_in, *spatial), dtype), random(w.shape, dtype)]
        for name, got, want in zip(("y", "dx", "dw"), fast(*feeds), ref(*feeds)):
            close(got, want, dtype, f"{name} N={batch}")


def test_fft_convolution_gradient_against_finite_differences_on_llvm():
    # check_grad evaluates on numpy; here the loss and the gradient both come from llvm
    x = gc.input("x", (2, 3, 9, 8), "float64")
    w = gc.input("w", (4, 3, 3, 2), "float64")
    loss = gc.sum(gc.sigmoid(gc.conv(x, w, algo="fft", padding=1, stride=(2, 1))))
    gx, gw = gc.grad(loss, [x, w])
    f = gc.compile([x, w], [loss, gx, gw], backend="llvm")
    xv, wv = random(x.shape, "float64"), random(w.shape, "float64")
    _, dx, dw = f(xv, wv)
    eps = 1e-6
    for _ in range(3):
        u, v = random(x.shape, "float64"), random(w.shape, "float64")
        plus = f(xv + eps * u, wv + eps * v)[0]
        minus = f(xv - eps * u, wv - eps * v)[0]
        numeric = (plus - minus) / (2 * eps)
        exact = np.sum(dx * u) + np.sum(dw * v)
        assert abs(numeric - exact) <= 1e-6 * max(1.0, abs(exact))
