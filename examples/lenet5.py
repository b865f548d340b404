"""A LeNet-5-style CNN (conv 6 - pool - conv 16 - pool - 120 - 84 - 10) trained with SGD.

Without --data it trains on scikit-learn's bundled 8x8 digits (3x3 kernels); with
--data DIR on MNIST IDX files (28x28, 5x5 kernels: the classic 61,706 parameters).

    python examples/lenet5.py [--data DIR] [--epochs 4] [--backend llvm]
"""

import argparse
import time

import numpy as np

import graphc as gc
from graphc import data, models, optim, train

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", help="a folder of MNIST IDX files")
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--backend", default="llvm")
args = parser.parse_args()

if args.data:
    images, labels = data.load_mnist(args.data)
    side = 28
else:
    images, labels = data.load_digits()
    side = 8
images = images.reshape(-1, 1, side, side)
train_set, val_set, test_set = data.train_val_test_split(images, labels, val=0.1, test=0.2)

model = models.lenet5(side, seed=0)
x = gc.input("x", (gc.dim("N"), 1, side, side))
print(model.build(x, "eval").describe())
print(f"parameters: {model.parameter_count:,}")

opt = optim.SGD(optim.InverseScaling(0.05, gamma=1e-3), momentum=0.9, nesterov=True)
started = time.perf_counter()
history = train.fit(
    model,
    train_set,
    args.epochs,
    32,
    opt,
    validation=val_set,
    early_stopping=3,
    backend=args.backend,
    progress=False,
)
seconds = time.perf_counter() - started
loss, accuracy = train.Evaluator(model, (1, side, side), backend=args.backend)(*test_set)
step_ms = 1e3 * float(np.median(history.step_seconds))
print(
    f"test accuracy {accuracy:.1%} (loss {loss:.3f}) after {len(history.epoch)} epochs; "
    f"{step_ms:.2f} ms per step on {args.backend}; {seconds:.1f} s in all"
)
assert accuracy > 0.85, accuracy
