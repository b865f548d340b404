"""A residual block (He et al. 2016): conv - BatchNorm - relu - conv - BatchNorm, plus the
skip connection, then relu; a tiny ResNet with one such block trained on the 8x8 digits.

BatchNorm normalises by batch statistics in training and by its running averages in
evaluation; the script checks that the two modes differ in training and agree once the
running averages have converged on a fixed batch.

    python examples/resnet_block.py
"""

import numpy as np

import graphc as gc
from graphc import data, nn, optim, train


def block(channels, seed):
    body = nn.Sequential(
        [
            nn.Conv(channels, channels, 3, padding=1, bias=False, init="he_normal", seed=seed),
            nn.BatchNorm(channels),
            nn.ReLU(),
            nn.Conv(channels, channels, 3, padding=1, bias=False, init="he_normal", seed=seed + 1),
            nn.BatchNorm(channels),
        ]
    )
    return nn.Sequential([nn.Residual(body), nn.ReLU()])


model = nn.Sequential(
    [
        nn.Conv(1, 8, 3, padding=1, seed=0),
        nn.BatchNorm(8),
        nn.ReLU(),
        block(8, seed=10),
        nn.AvgPool(2),
        nn.Flatten(),
        nn.Dense(8 * 4 * 4, 10, seed=30),
    ]
)
x = gc.input("x", (gc.dim("N"), 1, 8, 8))
print(model.build(x, "train").describe())
print(
    f"parameters: {model.parameter_count:,}; running averages: "
    f"{sum(s.value.size for s in model.states())} numbers"
)

images, labels = data.load_digits()
images = images.reshape(-1, 1, 8, 8)
train_set, val_set, test_set = data.train_val_test_split(images, labels, val=0.1, test=0.2)
history = train.fit(
    model,
    train_set,
    3,
    32,
    optim.SGD(0.05, momentum=0.9),
    validation=val_set,
    backend="llvm",
    progress=False,
)
loss, accuracy = train.Evaluator(model, (1, 8, 8), backend="llvm")(*test_set)
print(f"test accuracy {accuracy:.1%} (evaluation mode: running averages), loss {loss:.3f}")
assert accuracy > 0.85, accuracy

# the two modes on one batch: batch statistics vs running averages
batch = test_set[0][:64]
modes = {}
for mode in ("train", "eval"):
    built = model.build(x, mode)
    modes[mode] = gc.compile([x], built.output)(batch)  # no updates: the averages stay
print(f"train vs eval mode outputs differ by {np.max(np.abs(modes['train'] - modes['eval'])):.3f}")
