"""Reproducibility against PyTorch: the same initial weights, the same minibatches and SGD
with Nesterov momentum give the same losses for 100 steps (float64), for the 784-16-16-10
perceptron and LeNet-5, on the numpy and llvm backends.

Uses the MNIST test set at ../shared/data/mnist when present, else random images (the
claim is about arithmetic, not accuracy)."""

from pathlib import Path

import numpy as np
import pytest

from graphc import data, models, optim, train

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install torch==2.13.0): oracle skipped"
)
MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
STEPS, LR, MOMENTUM = 100, 0.05, 0.9
BATCH = {"perceptron": 32, "lenet5": 16}


@pytest.fixture(scope="module")
def images():
    if (MNIST / "t10k-images-idx3-ubyte.gz").exists():
        x, y = data.load_mnist(MNIST)
        x, y = x[: STEPS * 32], y[: STEPS * 32]
    else:
        rng = np.random.default_rng(0)
        x = rng.random((STEPS * 32, 784), dtype=np.float32)
        y = rng.integers(0, 10, STEPS * 32).astype(np.int32)
    order = np.random.default_rng(1).permutation(len(x))
    return x.astype(np.float64), y, order


def torch_module(model):
    """The torch twin of a graphc Sequential of Dense/Conv/pool/activation/flatten layers."""
    layers = []
    for layer in model.children:
        kind = layer.kind
        if kind == "dense":
            twin = torch.nn.Linear(layer.n_in, layer.n_out).double()
            twin.weight.data = torch.tensor(layer.W.value.T.copy())
            twin.bias.data = torch.tensor(layer.b.value)
        elif kind == "conv":
            c_out, c_in, k, _ = layer.W.value.shape
            twin = torch.nn.Conv2d(c_in, c_out, k, padding=layer.options["padding"]).double()
            twin.weight.data = torch.tensor(layer.W.value)
            twin.bias.data = torch.tensor(layer.b.value)
        elif kind == "maxpool":
            twin = torch.nn.MaxPool2d(layer.window)
        elif kind == "flatten":
            twin = torch.nn.Flatten()
        else:
            twin = {"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh()}[kind]
        layers.append(twin)
    return torch.nn.Sequential(*layers)


def torch_losses(model, xs, ts, order, shape, batch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # float64 convolutions: 2 threads on 2 busy cores are slower
    try:
        return _torch_losses(model, xs, ts, order, shape, batch)
    finally:
        torch.set_num_threads(threads)


def _torch_losses(model, xs, ts, order, shape, batch):
    net = torch_module(model)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True)
    out = []
    for k in range(STEPS):
        index = order[k * batch : (k + 1) * batch]
        opt.zero_grad()
        logits = net(torch.tensor(xs[index].reshape((batch,) + shape)))
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(ts[index], dtype=torch.long))
        loss.backward()
        opt.step()
        out.append(loss.item())
    return np.array(out)


def graphc_losses(model, xs, ts, order, shape, batch, backend):
    step = train.TrainStep(model, optim.SGD(LR, MOMENTUM, nesterov=True), shape, backend=backend)
    out = []
    for k in range(STEPS):
        index = order[k * batch : (k + 1) * batch]
        out.append(step(xs[index].reshape((batch,) + shape), ts[index])[0])
    return np.array(out)


TORCH: dict = {}  # net -> PyTorch's losses, computed once for both backends


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("net", ["perceptron", "lenet5"])
def test_100_nesterov_steps_match_pytorch(images, net, backend):
    xs, ts, order = images
    if net == "perceptron":
        shape = (784,)
        make = lambda: models.perceptron((784, 16, 16, 10), seed=0, dtype="float64")  # noqa: E731
    else:
        shape = (1, 28, 28)
        make = lambda: models.lenet5(28, seed=0, dtype="float64")  # noqa: E731
    if net not in TORCH:
        TORCH[net] = torch_losses(make(), xs, ts, order, shape, BATCH[net])
    want = TORCH[net]
    got = graphc_losses(make(), xs, ts, order, shape, BATCH[net], backend)
    assert want[-1] < want[0]  # it trains
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert np.max(np.abs(got - want) / want) < 1e-9  # in fact equal to round-off
