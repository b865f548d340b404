"""Structured operators K(theta) = mat(Q theta) learned by gradient descent.

A circulant K (periodic convolution: n parameters, not n^2) and a Toeplitz K (2n - 1) are
recovered from input/output pairs y = K x by minimising the mean squared error; an
antisymmetric generator A(theta) gives a rotation exp(A) whose transpose is its inverse.

    python examples/parametric.py
"""

import numpy as np

import graphc as gc

rng = np.random.default_rng(0)
n, m = 16, 64
X = rng.normal(size=(n, m))

for name, make, size in [
    ("circulant", lambda p: gc.structured.circulant(p), n),
    ("toeplitz", lambda p: gc.structured.toeplitz(p[:n], gc.concat([p[:1], p[n:]], 0)), 2 * n - 1),
]:
    truth = rng.normal(size=size)
    theta_true = gc.constant(truth)
    Y = gc.compile([], make(theta_true) @ X)()
    theta = gc.param(f"theta_{name}", value=np.zeros(size), dtype="float64")
    loss = gc.mse(make(theta) @ X, Y)
    (g,) = gc.grad(loss, [theta])
    step = gc.compile([], loss, updates={theta: theta - 0.4 * g})  # circulant: FFTs (numpy)
    losses = [float(step()) for _ in range(400)]
    error = np.max(np.abs(theta.value - truth))
    print(
        f"{name} K(theta), {size} parameters for a {n}x{n} operator: loss "
        f"{losses[0]:.3f} -> {losses[-1]:.2e}, max |theta - theta_true| = {error:.1e}"
    )
    assert error < 1e-4

# an antisymmetric A(theta): A^T = -A, so exp(A) (by its Taylor series) is orthogonal
A = gc.structured.antisymmetric(gc.constant(rng.normal(scale=0.3, size=3)), 3)  # n(n-1)/2
R = gc.compile([], A)()
rotation = np.eye(3)
term = np.eye(3)
for k in range(1, 30):
    term = term @ R / k
    rotation = rotation + term
print(
    f"antisymmetric A(theta): |A + A^T| = {np.abs(R + R.T).max():.1e}, "
    f"|exp(A)^T exp(A) - I| = {np.abs(rotation.T @ rotation - np.eye(3)).max():.1e}"
)
assert np.allclose(R, -R.T) and np.allclose(rotation.T @ rotation, np.eye(3))
