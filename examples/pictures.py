"""Graphs to draw: `graphc viz examples/pictures.py:mlp_loss --optimized --grad --out mlp.svg`
draws a small perceptron's loss with its gradient, fused into kernels; run as a script, it
also writes the classic backpropagation picture of f = (x + y) * z (values and derivatives
on every node) to backprop.svg."""

from __future__ import annotations

import sys

import graphc as gc


def mlp_loss() -> gc.Tensor:
    """The mean softmax cross-entropy of a 64-16-10 perceptron (symbolic batch N)."""
    N = gc.dim("N")
    x = gc.input("x", (N, 64))
    t = gc.input("t", (N,), dtype="int32")
    W1 = gc.param("W1", (64, 16), init="glorot_uniform", seed=0)
    b1 = gc.param("b1", (16,), init="zeros")
    W2 = gc.param("W2", (16, 10), init="glorot_uniform", seed=1)
    b2 = gc.param("b2", (10,), init="zeros")
    h = gc.relu(x @ W1 + b1)
    return gc.mean(gc.softmax_cross_entropy(h @ W2 + b2, t))


def backprop(path: str = "backprop.svg") -> None:
    """f = (x + y) z at x = -2, y = 5, z = -4: q = 3, f = -12; df/dq = -4, df/dz = 3,
    df/dx = df/dy = -4, written on the nodes."""
    x, y, z = (gc.input(name, (), dtype="float64") for name in "xyz")
    f = (x + y) * z
    print(f"wrote {gc.save_graph(f, path, feed={x: -2.0, y: 5.0, z: -4.0}, grads=True)}")
    print(
        "df/dx =",
        gc.latex(gc.grad(f, x)),
        " d/dx sigmoid(x y) =",
        gc.latex(gc.grad(gc.sigmoid(x * y), x)),
    )


if __name__ == "__main__":
    backprop(sys.argv[1] if len(sys.argv) > 1 else "backprop.svg")
