"""graphc.nn layers against numpy references, on the numpy and llvm backends; gradients
against finite differences (float64)."""

import numpy as np
import pytest

import graphc as gc
from graphc import nn

BACKENDS = ["numpy", "llvm"]
rng = np.random.default_rng(0)


def run(model, xs, mode="train", backend="numpy", masks=()):
    x = gc.input("x", (gc.dim("N"),) + xs.shape[1:], model.dtype)
    built = model.build(x, mode)
    inputs = [x] + [m.input for m in built.masks]
    f = gc.compile(inputs, [built.output], updates=built.updates, backend=backend)
    return f(xs, *masks)[0], built


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_conv_pool_stack_matches_numpy(backend):
    conv = nn.Conv(2, 3, (3, 3), padding=1, seed=1, dtype="float64")
    conv.b.value = rng.normal(size=3)
    dense = nn.Dense(3 * 2 * 2, 4, seed=2, dtype="float64")
    dense.b.value = rng.normal(size=4)
    model = nn.Sequential([conv, nn.ReLU(), nn.MaxPool(2), nn.AvgPool(2), nn.Flatten(), dense])
    xs = rng.normal(size=(5, 2, 8, 8))
    got, built = run(model, xs, backend=backend)
    # numpy reference: padded cross-correlation, relu, 2x2 max, 2x2 mean, flatten, affine
    w = conv.W.value
    padded = np.pad(xs, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((5, 3, 8, 8))
    for i in range(3):
        for j in range(3):
            y += np.einsum("ncxy,oc->noxy", padded[:, :, i : i + 8, j : j + 8], w[:, :, i, j])
    y = np.maximum(y + conv.b.value[None, :, None, None], 0)
    y = y.reshape(5, 3, 4, 2, 4, 2).max(axis=(3, 5))
    y = y.reshape(5, 3, 2, 2, 2, 2).mean(axis=(3, 5))
    want = y.reshape(5, -1) @ dense.W.value + dense.b.value
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert [row[1] for row in built.trace] == [
        "conv",
        "relu",
        "maxpool",
        "avgpool",
        "flatten",
        "dense",
    ]
    assert built.trace[-1][2][1] == 4 and model.parameter_count == 3 * 2 * 9 + 3 + 12 * 4 + 4


@pytest.mark.parametrize("rank", [1, 3])
def test_conv_1d_and_3d_shapes_and_bias(rank):
    layer = nn.Conv(2, 4, (3,) * rank, stride=2, seed=0, dtype="float64")
    layer.b.value = np.arange(4.0)
    xs = rng.normal(size=(3, 2) + (7,) * rank)
    got, _ = run(layer, xs)
    bare = gc.compile([], gc.conv(gc.constant(xs), layer.W, stride=2))()
    expected = bare + np.arange(4.0).reshape((1, 4) + (1,) * rank)
    assert got.shape == (3, 4) + (3,) * rank
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_norm_training_statistics_and_running_averages(backend):
    bn = nn.BatchNorm(3, momentum=0.2, dtype="float64")
    bn.gamma.value = np.array([1.0, 2.0, 0.5])
    bn.beta.value = np.array([0.0, -1.0, 3.0])
    xs = rng.normal(2.0, 3.0, size=(4, 3, 5, 5))
    got, built = run(bn, xs, "train", backend)
    mean = xs.mean(axis=(0, 2, 3))
    var = xs.var(axis=(0, 2, 3))
    norm = (xs - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    want = norm * bn.gamma.value[None, :, None, None] + bn.beta.value[None, :, None, None]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    n = 4 * 25
    np.testing.assert_allclose(bn.running_mean.value, 0.2 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.value, 0.8 + 0.2 * var * n / (n - 1), rtol=1e-12)
    assert set(built.updates) == {bn.running_mean, bn.running_var}


def test_batch_norm_evaluation_uses_running_averages_and_updates_nothing():
    bn = nn.BatchNorm(4, dtype="float64")
    bn.running_mean.value = np.array([1.0, 2.0, 3.0, 4.0])
    bn.running_var.value = np.array([4.0, 1.0, 0.25, 9.0])
    xs = rng.normal(size=(6, 4))
    got, built = run(bn, xs, "eval")
    want = (xs - bn.running_mean.value) / np.sqrt(bn.running_var.value + 1e-5)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert built.updates == {}
    np.testing.assert_array_equal(bn.running_mean.value, [1.0, 2.0, 3.0, 4.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_norm_matches_numpy(backend):
    ln = nn.LayerNorm((3, 4), dtype="float64")
    ln.gamma.value = rng.normal(size=(3, 4))
    ln.beta.value = rng.normal(size=(3, 4))
    xs = rng.normal(size=(5, 3, 4))
    got, _ = run(ln, xs, backend=backend)
    mean = xs.mean(axis=(1, 2), keepdims=True)
    var = xs.var(axis=(1, 2), keepdims=True)
    want = (xs - mean) / np.sqrt(var + 1e-5) * ln.gamma.value + ln.beta.value
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_dropout_is_inverted_in_training_and_the_identity_in_evaluation():
    drop = nn.Dropout(0.25)
    xs = rng.normal(size=(4, 6)).astype(np.float32)
    same, built = run(drop, xs, "eval")
    assert built.masks == [] and np.array_equal(same, xs)
    mask = (rng.random((4, 6)) > 0.25).astype(np.float32)
    got, built = run(drop, xs, "train", masks=[mask])
    assert len(built.masks) == 1 and built.masks[0].rate == 0.25
    np.testing.assert_allclose(got, xs * mask / 0.75, rtol=1e-6)
    with pytest.raises(ValueError, match="rate"):
        nn.Dropout(1.0)


def test_residual_adds_the_shortcut_and_checks_shapes():
    dense = nn.Dense(4, 4, seed=0, dtype="float64")
    block = nn.Residual(nn.Sequential([dense, nn.Tanh()]))
    xs = rng.normal(size=(3, 4))
    got, _ = run(block, xs)
    np.testing.assert_allclose(got, np.tanh(xs @ dense.W.value) + xs, rtol=1e-12)
    assert block.parameters() == [dense.W, dense.b]
    wrong = nn.Residual(nn.Dense(4, 5, dtype="float64"))
    with pytest.raises(ValueError, match="shortcut"):
        run(wrong, xs)


def test_modes_and_input_checks_are_clear_errors():
    dense = nn.Dense(3, 2)
    with pytest.raises(ValueError, match="mode"):
        dense.build(gc.input("x", (2, 3)), "training")
    with pytest.raises(ValueError, match=r"dense\d+: expects \(\.\.\., 3\)"):
        dense.build(gc.input("x", (2, 4)))
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm(3).build(gc.input("x", (2, 4)))


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: nn.Sequential([nn.Dense(5, 3, seed=0, dtype="float64"), nn.Sigmoid()]), (4, 5)),
        (lambda: nn.Conv(2, 3, 3, padding=1, stride=2, seed=0, dtype="float64"), (3, 2, 5, 5)),
        (lambda: nn.Conv(2, 2, (3,), seed=0, dtype="float64"), (3, 2, 7)),
        (lambda: nn.BatchNorm(2, dtype="float64"), (4, 2, 3, 3)),
        (lambda: nn.LayerNorm(5, dtype="float64"), (4, 5)),
        (lambda: nn.ConvTranspose(2, 3, 2, stride=2, seed=0, dtype="float64"), (3, 2, 4, 4)),
    ],
    ids=["dense", "conv2d", "conv1d", "batchnorm", "layernorm", "conv_transpose"],
)
def test_layer_gradients_match_finite_differences(make, shape):
    model = make()
    for p in model.parameters():
        p.value = p.value + rng.normal(scale=0.3, size=p.value.shape)
    xs = rng.normal(size=shape)
    x = gc.input("x", shape, "float64")
    y = model.build(x, "train").output
    weights = rng.normal(size=tuple(int(d) for d in y.shape))
    loss = gc.sum(gc.tanh(y) * weights)
    assert gc.check_grad(loss, model.parameters(), feed={x: xs}) < 1e-6
    assert gc.check_grad(loss, [x], feed={x: xs}) < 1e-6
