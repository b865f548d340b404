"""fold_weights: a convolution with a constant weight computes no transform of that weight at run
time (no FFT, flip, pad or reshape of it, whatever its size), and gives the same values."""

import numpy as np
import pytest

import graphc as gc
from graphc.node import toposort
from graphc.passes import optimize
from graphc.tensor import unwrap
from tests.passes.passcheck import assert_same_values, run_pass, simp

FFT_OPS = ("rfft", "fft")


def _constant_weight(shape, dtype):
    rng = np.random.default_rng(1)
    return gc.constant(rng.standard_normal(shape).astype(dtype))


def _optimized(x, y):
    roots, _ = optimize([unwrap(y)])
    return toposort(roots)


def _computed_from_constant(nodes):
    """The non-constant nodes all of whose inputs are constants: transforms left to run time."""
    return [n for n in nodes if n.inputs and all(i.op == "constant" for i in n.inputs)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "kernel, options",
    [
        ((4, 3, 11, 11), {}),  # 1452 elements: the spectrum (4, 3, 32, 17) is past MAX_FOLD
        ((6, 3, 5, 5), {"dilation": 2}),  # slice_grad spreads the taps
        ((6, 1, 3, 3), {"groups": 3, "stride": 2}),
        ((4, 3, 7), {}),  # 1-D
    ],
)
def test_fft_conv_has_no_weight_fft_left(dtype, kernel, options):
    d = len(kernel) - 2
    groups = options.get("groups", 1)
    x = gc.input("x", (2, kernel[1] * groups) + (22,) * d, dtype=dtype)
    w = _constant_weight(kernel, dtype)
    y = gc.conv(x, w, padding="same" if "stride" not in options else 1, algo="fft", **options)
    nodes = _optimized(x, y)
    assert _computed_from_constant(nodes) == []
    # one forward transform per transformed axis, of x only
    assert sum(n.op in FFT_OPS for n in nodes) == d
    f = assert_same_values([x], [y], rtol=1e-4 if dtype == "float32" else 1e-10)
    assert "fold_weight: rfft" in f.explain()


@pytest.mark.parametrize("algo", ["gemm", "direct"])
def test_gemm_and_direct_read_the_folded_weight(algo):
    x = gc.input("x", (2, 3, 9, 9))
    w = _constant_weight((5, 3, 3, 3), "float32")
    y = gc.conv(x, w, padding=1, algo=algo)
    assert _computed_from_constant(_optimized(x, y)) == []
    assert_same_values([x], [y])


def test_a_parameter_weight_is_transformed_at_run_time():
    x = gc.input("x", (2, 3, 16, 16))
    w = gc.param("w", (4, 3, 5, 5), seed=0)
    nodes = _optimized(x, gc.conv(x, w, padding="same", algo="fft"))
    assert sum(n.op == "rfft" for n in nodes) == 2  # of x and of w


def test_fold_weights_folds_past_max_fold_and_logs():
    big = gc.constant(np.arange(2 * simp.MAX_FOLD, dtype=np.float32))
    y = gc.transpose(gc.reshape(big, (2, simp.MAX_FOLD)), (1, 0))
    (root,), lines = run_pass(simp.fold_weights, y)
    assert root.op == "constant"
    np.testing.assert_array_equal(
        root.attrs["value"].array, np.arange(2 * simp.MAX_FOLD).reshape(2, -1).T
    )
    assert lines == [
        "fold_weight: reshape (2, 4096) float32",
        "fold_weight: transpose (4096, 2) float32",
    ]
