"""Losses and regularizers against numpy formulas (and PyTorch when it is installed);
gradients and subgradients against finite differences / hand-computed values."""

import numpy as np
import pytest

import graphc as gc
from graphc import nn

rng = np.random.default_rng(3)


def value(t):
    return gc.compile([], t)()


def test_binary_cross_entropy_with_logits_is_stable_and_correct():
    z = np.array([-800.0, -3.0, 0.0, 2.5, 900.0])
    y = np.array([0.0, 1.0, 0.5, 0.0, 1.0])
    got = value(nn.binary_cross_entropy_with_logits(gc.constant(z), y))
    p = 1 / (1 + np.exp(-z[1:4]))
    middle = -(y[1:4] * np.log(p) + (1 - y[1:4]) * np.log(1 - p))
    want = np.mean(np.concatenate([[0.0], middle, [0.0]]))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bce_gradient_is_sigmoid_minus_target():
    z = gc.param("z", value=rng.normal(size=(4, 3)), dtype="float64")
    y = rng.random((4, 3))
    loss = nn.binary_cross_entropy_with_logits(z, y)
    (g,) = value(gc.grad(loss, [z]))
    np.testing.assert_allclose(g, (1 / (1 + np.exp(-z.value)) - y) / 12, rtol=1e-12)
    assert gc.check_grad(loss, [z]) < 1e-7


def test_cross_entropy_with_label_smoothing_and_mse():
    logits = rng.normal(size=(5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    got = value(nn.softmax_cross_entropy(gc.constant(logits), labels, label_smoothing=0.1))
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    q = 0.9 * np.eye(4)[labels] + 0.1 / 4
    np.testing.assert_allclose(got, np.mean(-(q * log_p).sum(1)), rtol=1e-12)
    a, b = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    got = value(nn.mean_squared_error(gc.constant(a), b))
    np.testing.assert_allclose(got, ((a - b) ** 2).mean())


def test_regularizers_values_and_subgradients():
    W = gc.param("W", value=np.array([[1.0, -2.0], [0.0, 3.0]]), dtype="float64")
    b = gc.param("b", value=np.array([0.5, -0.5]), dtype="float64")
    np.testing.assert_allclose(value(nn.l2([W, b], 0.1)), 0.05 * (14 + 0.5))
    np.testing.assert_allclose(value(nn.l1([W, b], 0.1)), 0.1 * (6 + 1))
    np.testing.assert_allclose(value(nn.elastic_net([W, b], 0.1, 0.2)), 0.7 + 0.1 * 14.5)
    g_l2, _ = value(gc.grad(nn.l2([W, b], 0.1), [W, b]))
    np.testing.assert_allclose(g_l2, 0.1 * W.value)  # weight decay
    g_l1, _ = value(gc.grad(nn.l1([W, b], 0.1), [W, b]))
    np.testing.assert_allclose(g_l1, 0.1 * np.sign(W.value))  # 0 at W = 0
    g_en, _ = value(gc.grad(nn.elastic_net([W, b], 0.1, 0.2), [W, b]))
    np.testing.assert_allclose(g_en, 0.1 * np.sign(W.value) + 0.2 * W.value)
    with pytest.raises(ValueError, match="no parameters"):
        nn.l2([], 0.1)
    with pytest.raises(ValueError, match="unknown loss"):
        nn.losses.get("hinge")


def test_losses_match_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: oracle skipped")
    F = torch.nn.functional
    z, y = rng.normal(size=(6, 3)), rng.random((6, 3))
    got = value(nn.binary_cross_entropy_with_logits(gc.constant(z), y))
    want = F.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(y)).item()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    labels = rng.integers(0, 3, size=6)
    got = value(nn.softmax_cross_entropy(gc.constant(z), labels, 0.2))
    want = F.cross_entropy(torch.tensor(z), torch.tensor(labels), label_smoothing=0.2).item()
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_fans_of_dense_and_conv_kernels():
    assert gc.init.fans((784, 16)) == (784, 16)
    assert gc.init.fans((96, 3, 11, 11)) == (3 * 121, 96 * 121)  # (C_out, C_in, kh, kw)
    assert gc.init.fans((8, 4, 3)) == (12, 24)
    assert gc.init.fans((8, 4, 3, 3, 3)) == (108, 216)


@pytest.mark.parametrize(
    "name, std",
    [
        ("glorot_normal", np.sqrt(2 / (200 * 9 + 100 * 9))),
        ("glorot_uniform", np.sqrt(6 / (200 * 9 + 100 * 9)) / np.sqrt(3)),
        ("he_normal", np.sqrt(2 / (200 * 9))),
    ],
)
def test_initializer_scales_for_a_conv_kernel(name, std):
    w = gc.init.get(name)((100, 200, 3, 3), np.random.default_rng(0))
    assert w.shape == (100, 200, 3, 3)
    assert abs(w.std() / std - 1) < 0.02 and abs(w.mean()) < 0.01 * std * 10
    if name == "glorot_uniform":
        assert np.abs(w).max() <= np.sqrt(6 / (200 * 9 + 100 * 9))
    assert not gc.init.zeros((2, 3), None).any()


def test_layers_match_torch_modules():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: oracle skipped")
    conv = nn.Conv(3, 4, (3, 3), stride=2, padding=1, seed=0, dtype="float64")
    conv.b.value = rng.normal(size=4)
    bn = nn.BatchNorm(4, dtype="float64")
    model = nn.Sequential([conv, bn, nn.ReLU(), nn.AvgPool(2)])
    xs = rng.normal(size=(5, 3, 8, 8))
    x = gc.input("x", xs.shape, "float64")
    built = model.build(x, "train")
    got = gc.compile([x], built.output, updates=built.updates)(xs)
    tconv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1).double()
    tconv.weight.data = torch.tensor(conv.W.value)
    tconv.bias.data = torch.tensor(conv.b.value)
    tbn = torch.nn.BatchNorm2d(4).double()
    tmodel = torch.nn.Sequential(tconv, tbn, torch.nn.ReLU(), torch.nn.AvgPool2d(2))
    want = tmodel(torch.tensor(xs)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean.value, tbn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.value, tbn.running_var.numpy(), rtol=1e-12)
    ln = nn.LayerNorm(8, dtype="float64")
    got = gc.compile([x], ln.build(x).output)(xs)
    want = torch.nn.LayerNorm(8).double()(torch.tensor(xs)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
