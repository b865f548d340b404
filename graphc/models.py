"""Model builders written with the public API (used by `graphc demo` and the examples)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import graphc as gc

ACTIVATIONS = ("relu", "sigmoid", "tanh")


@dataclass
class MLP:
    """A multilayer perceptron's graph: placeholders, parameters and results."""

    sizes: tuple  # layer widths, input first: (64, 16, 16, 10)
    activation: str
    x: gc.Tensor  # (N, sizes[0]) float32 images
    t: gc.Tensor  # (N,) int32 labels
    params: list  # [W1, b1, W2, b2, ...]
    logits: gc.Tensor  # (N, sizes[-1])
    loss: gc.Tensor  # () mean softmax cross-entropy

    @property
    def parameter_count(self) -> int:
        return sum(int(p.value.size) for p in self.params)

    def describe(self) -> str:
        """The architecture, one line per layer, with parameter shapes and counts."""
        lines = []
        for k in range(len(self.sizes) - 1):
            W, b = self.params[2 * k], self.params[2 * k + 1]
            last = k == len(self.sizes) - 2
            act = "softmax cross-entropy" if last else self.activation
            count = int(W.value.size + b.value.size)
            lines.append(
                f"  layer {k + 1}: {self.sizes[k]:>4} -> {self.sizes[k + 1]:<4} {act:<22}"
                f"{W.name} {tuple(W.value.shape)}, {b.name} {tuple(b.value.shape)}: "
                f"{count:,} parameters"
            )
        return "\n".join(lines)


def mlp(
    sizes: Sequence[int] = (64, 16, 16, 10),
    activation: str = "relu",
    seed: int = 0,
) -> MLP:
    """The classic multilayer perceptron: x @ W + b and an activation per hidden layer.

    Weights are Glorot-uniform (seeded: layer k uses seed + k), biases zero; the loss
    is the mean softmax cross-entropy of the last layer's logits against int labels t.
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"mlp: need at least two positive layer sizes, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"mlp: activation must be one of {', '.join(ACTIVATIONS)}")
    act: Any = getattr(gc, activation)
    N = gc.dim("N")
    x = gc.input("x", (N, sizes[0]))
    t = gc.input("t", (N,), dtype="int32")
    h = x
    params = []
    for k in range(len(sizes) - 1):
        W = gc.param(f"W{k + 1}", (sizes[k], sizes[k + 1]), init="glorot_uniform", seed=seed + k)
        b = gc.param(f"b{k + 1}", (sizes[k + 1],), init="zeros")
        params += [W, b]
        h = h @ W + b
        if k < len(sizes) - 2:
            h = act(h)
    loss = gc.mean(gc.softmax_cross_entropy(h, t))
    return MLP(sizes, activation, x, t, params, h, loss)


# graphc.nn models -----------------------------------------------------------------------------


def perceptron(
    sizes: Sequence[int] = (784, 16, 16, 10),
    activation: str = "relu",
    seed: int = 0,
    dtype: str = "float32",
) -> Any:
    """The multilayer perceptron as an nn.Sequential: Dense layers (Glorot-uniform, layer k
    seeded seed + k) with `activation` between them; the last layer gives the logits."""
    from graphc import nn

    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"perceptron: need at least two positive layer sizes, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"perceptron: activation must be one of {', '.join(ACTIVATIONS)}")
    layers: list = []
    for k in range(len(sizes) - 1):
        layers.append(
            nn.Dense(sizes[k], sizes[k + 1], seed=seed + k, dtype=dtype, name=f"fc{k + 1}")
        )
        if k < len(sizes) - 2:
            layers.append(nn.Lambda(getattr(gc, activation), name=f"{activation}{k + 1}"))
    return nn.Sequential(layers, name="perceptron")


def lenet5(
    image_size: int = 28,
    activation: str = "relu",
    pool: str = "max",
    seed: int = 0,
    dtype: str = "float32",
) -> Any:
    """A LeNet-5-style CNN (LeCun et al. 1998) on (N, 1, image_size, image_size) images.

    28x28 (MNIST): conv 6@5x5 (padded by 2) - pool 2 - conv 16@5x5 - pool 2 - 400 - 120 -
    84 - 10. 8x8 (the bundled digits): the same with 3x3 kernels, both padded by 1, so
    16 x 2 x 2 = 64 features reach the dense layers.
    """
    from graphc import nn

    if image_size >= 28:
        kernel, pad2 = 5, 0
    elif image_size >= 8:
        kernel, pad2 = 3, 1
    else:
        raise ValueError(f"lenet5: images must be at least 8x8, got {image_size}")
    pad1 = kernel // 2
    Pool = nn.MaxPool if pool == "max" else nn.AvgPool
    act = getattr(gc, activation)
    side = (image_size + 2 * pad1 - kernel + 1) // 2
    side = (side + 2 * pad2 - kernel + 1) // 2
    features = 16 * side * side
    return nn.Sequential(
        [
            nn.Conv(1, 6, kernel, padding=pad1, seed=seed, dtype=dtype, name="c1"),
            nn.Lambda(act, name="act1"),
            Pool(2, name="s2"),
            nn.Conv(6, 16, kernel, padding=pad2, seed=seed + 1, dtype=dtype, name="c3"),
            nn.Lambda(act, name="act3"),
            Pool(2, name="s4"),
            nn.Flatten(name="flatten"),
            nn.Dense(features, 120, seed=seed + 2, dtype=dtype, name="c5"),
            nn.Lambda(act, name="act5"),
            nn.Dense(120, 84, seed=seed + 3, dtype=dtype, name="f6"),
            nn.Lambda(act, name="act6"),
            nn.Dense(84, 10, seed=seed + 4, dtype=dtype, name="output"),
        ],
        name="lenet5",
    )
