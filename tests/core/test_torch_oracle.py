"""PyTorch as a second oracle for gradients (optional: `pip install torch==2.13.0`, CPU build)."""

import numpy as np
import pytest

import graphc as gc

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install torch==2.13.0): second oracle skipped"
)
F = torch.nn.functional
rng = np.random.default_rng(1)


def mlp_graph(sizes, smoothing):
    N = gc.dim("N")
    x = gc.input("x", (N, sizes[0]), "float64")
    t = gc.input("t", (N,), "int32")
    params, h = [], x
    for k, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = gc.param(f"W{k}", (m, n), seed=k, dtype="float64")
        b = gc.param(f"b{k}", (n,), value=rng.normal(0, 0.1, n), dtype="float64")
        params += [W, b]
        h = h @ W + b
        if k < len(sizes) - 2:
            h = gc.relu(h)
    loss = gc.mean(gc.softmax_cross_entropy(h, t, label_smoothing=smoothing))
    return x, t, params, loss


def mlp_torch(params, xs, ts, smoothing):
    tensors = [torch.tensor(p.value, requires_grad=True) for p in params]
    h = torch.tensor(xs)
    for k in range(0, len(tensors), 2):
        h = h @ tensors[k] + tensors[k + 1]
        if k < len(tensors) - 2:
            h = torch.relu(h)
    loss = F.cross_entropy(h, torch.tensor(ts, dtype=torch.long), label_smoothing=smoothing)
    loss.backward()
    return loss.item(), [p.grad.numpy() for p in tensors]


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_mlp_gradients_match_torch_autograd(smoothing, backend):
    images, labels = gc.data.load_digits()[:2]
    xs, ts = images[:50].astype(np.float64), labels[:50]
    x, t, params, loss = mlp_graph([64, 16, 16, 10], smoothing)
    f = gc.compile([x, t], [loss, *gc.grad(loss, params)], backend=backend)
    ours = f(xs, ts)
    want_loss, want_grads = mlp_torch(params, xs, ts, smoothing)
    np.testing.assert_allclose(ours[0], want_loss, rtol=1e-12)
    for got, want in zip(ours[1:], want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_cross_entropy_with_probability_targets_matches_torch():
    z = rng.standard_normal((6, 5)) * 3
    q = rng.dirichlet(np.ones(5), size=6)
    logits = gc.input("z", (6, 5), "float64")
    target = gc.input("q", (6, 5), "float64")
    loss = gc.mean(gc.softmax_cross_entropy(logits, target, label_smoothing=0.2))
    gz, gq = gc.compile([logits, target], gc.grad(loss, [logits, target]))(z, q)
    zt = torch.tensor(z, requires_grad=True)
    qt = torch.tensor(q, requires_grad=True)
    F.cross_entropy(zt, qt, label_smoothing=0.2).backward()
    np.testing.assert_allclose(gz, zt.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gq, qt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("mode", ["reflect", "circular", "edge", "constant"])
def test_pad_gradients_match_torch(mode):
    xs = rng.standard_normal((2, 3, 7))
    ws = rng.standard_normal((2, 3, 7 + 3 + 2))
    x = gc.input("x", (2, 3, 7), "float64")
    y = gc.pad(x, ((0, 0), (0, 0), (3, 2)), mode=mode)
    g = gc.compile([x], gc.grad(gc.sum(y * gc.constant(ws)), x))(xs)
    xt = torch.tensor(xs, requires_grad=True)
    torch_mode = {"edge": "replicate"}.get(mode, mode)
    (F.pad(xt, (3, 2), mode=torch_mode) * torch.tensor(ws)).sum().backward()
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-13)


def test_softmax_family_and_reductions_match_torch():
    xs = rng.standard_normal((4, 6))
    xs[0, :2] = 5.0  # a tie for the max
    ws = rng.standard_normal((4, 6))
    x = gc.input("x", (4, 6), "float64")
    w = gc.constant(ws)
    y = gc.sum(gc.softmax(x, 0) * w) + gc.sum(gc.log_softmax(x) * w) + gc.sum(gc.logsumexp(x, 1))
    y = y + gc.sum(gc.max(x, 1)) + gc.mean(gc.sqrt(gc.abs(x) + 1)) + gc.mse(x, w)
    g = gc.compile([x], gc.grad(y, x))(xs)
    xt = torch.tensor(xs, requires_grad=True)
    wt = torch.tensor(ws)
    yt = (torch.softmax(xt, 0) * wt).sum() + (torch.log_softmax(xt, 1) * wt).sum()
    yt = yt + torch.logsumexp(xt, 1).sum() + torch.amax(xt, 1).sum()
    yt = yt + torch.sqrt(xt.abs() + 1).mean() + F.mse_loss(xt, wt)
    yt.backward()
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
