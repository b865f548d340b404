"""Three autoencoders.

1. The 8-3-8 encoder (Rumelhart, Hinton & Williams 1986): 8 one-hot patterns squeezed
   through 3 sigmoid units and recovered; the hidden codes come out close to binary.
2. A linear autoencoder x -> W2 W1 x trained by SGD on the mean squared error spans the
   same subspace as the top principal components (Baldi & Hornik 1989): the principal
   angles between the decoder's columns and PCA's directions are ~0.
3. A convolutional autoencoder on the 8x8 digits: conv + max-pool down, unpool +
   conv_transpose up.

    python examples/autoencoder.py
"""

import numpy as np

import graphc as gc
from graphc import data, nn, optim, train

# 1. the 8-3-8 encoder ----------------------------------------------------------------------
encoder838 = nn.Sequential([nn.Dense(8, 3, seed=0), nn.Sigmoid(), nn.Dense(3, 8, seed=1)])
step = train.TrainStep(encoder838, optim.SGD(0.5, momentum=0.9), (8,), backend="llvm")
patterns, labels = np.eye(8, dtype=np.float32), np.arange(8)
for _ in range(3000):
    loss, logits = step(patterns, labels)
hidden = gc.compile([step.x], gc.sigmoid(step.x @ encoder838[0].W + encoder838[0].b))(patterns)
print(f"8-3-8: loss {loss:.4f}, every pattern recovered: {np.all(logits.argmax(1) == labels)}")
for k in range(8):
    print(f"  pattern {k} -> hidden code {np.round(hidden[k], 2)}")
assert np.all(logits.argmax(1) == labels)
assert len({tuple(np.round(h)) for h in hidden}) >= 7  # nearly a 3-bit binary code

# 2. a linear autoencoder finds PCA's subspace ----------------------------------------------
rng = np.random.default_rng(0)
basis = np.linalg.qr(rng.normal(size=(10, 3)))[0]
points = (rng.normal(size=(400, 3)) * [5.0, 3.0, 2.0]) @ basis.T + 0.1 * rng.normal(size=(400, 10))
points = points - points.mean(0)
linear = nn.Sequential(
    [
        nn.Dense(10, 3, bias=False, seed=2, dtype="float64"),
        nn.Dense(3, 10, bias=False, seed=3, dtype="float64"),
    ]
)
step = train.TrainStep(linear, optim.SGD(0.01, momentum=0.9), (10,), loss="mse", backend="llvm")
for _ in range(1500):
    loss, _ = step(points, points)
decoder = np.linalg.qr(linear[1].W.value.T)[0]  # an orthonormal basis of the decoder's span
pca = np.linalg.svd(points, full_matrices=False)[2][:3].T  # top 3 principal directions
cosines = np.linalg.svd(decoder.T @ pca, compute_uv=False)
angles = np.degrees(np.arccos(np.clip(cosines, -1, 1)))
print(
    f"linear autoencoder: mse {loss:.4f}; principal angles to PCA's subspace "
    f"{np.round(angles, 3)} degrees"
)
assert angles.max() < 1.0

# 3. a convolutional autoencoder with unpool and conv_transpose -----------------------------
images = data.load_digits()[0].reshape(-1, 1, 8, 8)
autoencoder = nn.Sequential(
    [
        nn.Conv(1, 8, 3, padding=1, seed=4),
        nn.ReLU(),
        nn.MaxPool(2),  # (8, 4, 4)
        nn.Conv(8, 2, 3, padding=1, seed=5),
        nn.ReLU(),  # code (2, 4, 4)
        nn.Unpool(2),  # (2, 8, 8)
        nn.ConvTranspose(2, 8, 3, padding=1, seed=6),
        nn.ReLU(),  # (8, 8, 8)
        nn.Conv(8, 1, 3, padding=1, seed=7),  # (1, 8, 8)
    ]
)
code_size = 2 * 4 * 4
history = train.fit(
    autoencoder,
    (images, images),
    4,
    32,
    optim.SGD(0.05, momentum=0.9),
    loss="mse",
    backend="llvm",
    progress=False,
)
baseline = float(np.mean((images - images.mean(0)) ** 2))
print(
    f"conv autoencoder ({code_size} numbers per 64-pixel image): mse per epoch "
    f"{np.round(history.loss, 4)}; predicting the mean image gives {baseline:.4f}"
)
assert history.loss[-1] < 0.5 * baseline
