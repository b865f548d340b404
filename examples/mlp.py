"""The classic perceptrons 784-16-16-10 and 784-50-10 trained with SGD + Nesterov momentum.

With --data DIR (MNIST IDX files, e.g. t10k-images-idx3-ubyte.gz) the inputs are 784
pixels; without it, scikit-learn's bundled 8x8 digits (64 pixels: 64-16-16-10, 64-50-10).

    python examples/mlp.py [--data DIR] [--epochs 5] [--backend llvm]
"""

import argparse
import time

import numpy as np

from graphc import data, models, optim, train

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", help="a folder of MNIST IDX files")
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--backend", default="llvm")
args = parser.parse_args()

if args.data:
    images, labels = data.load_mnist(args.data)
    source = f"MNIST ({args.data})"
else:
    images, labels = data.load_digits()
    source = "the bundled 8x8 digits"
train_set, val_set, test_set = data.train_val_test_split(images, labels, val=0.1, test=0.2)
pixels = images.shape[1]
print(
    f"{source}: {len(train_set[0])} training, {len(val_set[0])} validation, "
    f"{len(test_set[0])} test images of {pixels} pixels"
)

for hidden in ((16, 16), (50,)):
    sizes = (pixels, *hidden, 10)
    model = models.perceptron(sizes, seed=0)
    opt = optim.SGD(0.05, momentum=0.9, nesterov=True)
    started = time.perf_counter()
    history = train.fit(
        model,
        train_set,
        args.epochs,
        32,
        opt,
        validation=val_set,
        backend=args.backend,
        progress=False,
    )
    seconds = time.perf_counter() - started
    evaluate = train.Evaluator(model, (pixels,), backend=args.backend)
    loss, accuracy = evaluate(*test_set)
    step_us = 1e6 * float(np.median(history.step_seconds))
    print(
        f"{'-'.join(map(str, sizes))}: {model.parameter_count:,} parameters, "
        f"test accuracy {accuracy:.1%} (loss {loss:.3f}) after {args.epochs} epochs, "
        f"{step_us:.0f} us per step on {args.backend}, {seconds:.1f} s in all"
    )
    assert accuracy > 0.85, accuracy
