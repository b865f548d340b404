"""The convolution cost model: deterministic choices from fixed unit costs, and calibration."""

import math

import pytest

import graphc as gc
from graphc.passes import costs
from graphc.tensor import unwrap


@pytest.fixture
def default_units(monkeypatch):
    monkeypatch.setattr(costs, "_units", dict(costs.DEFAULTS))


def conv_node(n, k, **options):
    x = gc.input("x", (2, 3, n, n))
    w = gc.param("w", (4, 3, k, k), seed=0)
    return unwrap(gc.conv(x, w, padding="same", **options))


def test_small_kernels_choose_gemm_and_large_kernels_fft(default_units):
    assert costs.choose(conv_node(56, 3), ["direct", "gemm", "fft"])[0] == "gemm"
    assert costs.choose(conv_node(128, 15), ["direct", "gemm", "fft"])[0] == "fft"


def test_estimates_grow_with_the_work(default_units):
    for algo in ("direct", "gemm", "fft"):
        small, large = (
            costs.estimate(conv_node(28, 5), algo),
            costs.estimate(conv_node(128, 5), algo),
        )
        assert 0 < small < large
    assert costs.estimate(conv_node(28, 3), "direct") < costs.estimate(conv_node(28, 11), "direct")


def test_a_constant_kernel_costs_no_transform_of_its_own(default_units):
    x = gc.input("x", (8, 64, 56, 56))
    w = gc.param("w", (64, 64, 11, 11), seed=0)
    trained = unwrap(gc.conv(x, w, padding="same"))
    fixed = unwrap(gc.conv(x, gc.constant(w.value), padding="same"))
    saved = costs.estimate(trained, "fft") - costs.estimate(fixed, "fft")
    f = costs.fast_length(66) ** 2
    transforms = 64 * 64 * f * math.log2(f) * costs.DEFAULTS["fft"]
    bins = 72 * 37  # the weight's spectrum moved into the per-bin layout (2 floats a bin)
    layout = 2 * 64 * 64 * bins * costs.DEFAULTS["copy_big"]
    assert saved == pytest.approx(transforms + layout)
    assert costs.estimate(trained, "gemm") == costs.estimate(fixed, "gemm")


def test_fast_lengths_have_only_small_prime_factors():
    assert [costs.fast_length(n) for n in (1, 7, 13, 131, 142)] == [1, 8, 15, 135, 144]
    for n in range(1, 300):
        m = costs.fast_length(n)
        assert m >= n and all(p in (2, 3, 5) for p in _factors(m))


def _factors(m):
    found, p = [], 2
    while m > 1:
        while m % p == 0:
            found.append(p)
            m //= p
        p += 1
    return found


def test_calibration_measures_every_unit_cost(monkeypatch, tmp_path):
    monkeypatch.setattr(costs, "_units", {})
    monkeypatch.setattr(costs, "CACHE", tmp_path / "costs.json")
    measured = costs.calibrate(save=True)
    assert set(measured) == set(costs.DEFAULTS)
    assert all(math.isfinite(v) and v >= 0 for v in measured.values())
    costs._units.clear()
    assert costs.units() == pytest.approx(measured)  # read back from the saved file


def test_symbolic_sizes_still_get_an_estimate(default_units):
    N = gc.dim("N")
    x = gc.input("x", (N, 3, 32, 32))
    node = unwrap(gc.conv(x, gc.param("w", (4, 3, 3, 3), seed=0)))
    assert costs.choose(node, ["direct", "gemm"])[0] in ("direct", "gemm")
