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
