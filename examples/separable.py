"""A separable 7x7 filter: the Gaussian kernel g g^T (7x7, 49 multiply-adds per pixel)
equals a 1x7 pass along rows followed by a 7x1 pass along columns (14 per pixel).

Any rank-1 kernel separates: its SVD gives the column and row factors, recovered here
from the 7x7 kernel alone.

    python examples/separable.py
"""

import time

import numpy as np

import graphc as gc

x = np.linspace(-3, 3, 7)
g = np.exp(-(x**2) / 2)
g /= g.sum()
kernel = np.outer(g, g)  # 7x7, rank 1

u, s, vt = np.linalg.svd(kernel)  # kernel = s0 u0 v0^T: the factors, from the kernel alone
column, row = u[:, 0] * np.sqrt(s[0]), vt[0] * np.sqrt(s[0])
print(f"7x7 kernel: singular values {np.round(s[:3], 6)} (rank 1, so it separates)")

images = np.random.default_rng(0).random((16, 1, 64, 64))
x_in = gc.input("x", (gc.dim("N"), 1, 64, 64), "float64")
full = gc.conv(x_in, gc.constant(kernel[None, None]), padding="same", algo="direct")
rows = gc.conv(x_in, gc.constant(row.reshape(1, 1, 1, 7)), padding="same", algo="direct")  # 1x7
both = gc.conv(
    rows, gc.constant(column.reshape(1, 1, 7, 1)), padding="same", algo="direct"
)  # then 7x1

f_full = gc.compile([x_in], full, backend="llvm")
f_separable = gc.compile([x_in], both, backend="llvm")
difference = np.max(np.abs(f_full(images) - f_separable(images)))
print(
    f"7x7 filter vs 1x7 then 7x1 on {len(images)} images of 64x64: max difference {difference:.1e}"
)


def median_seconds(f, repeats=20):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        f(images)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


print(
    f"multiply-adds per pixel: 49 vs 14; time (median of 20, noisy): "
    f"{1e3 * median_seconds(f_full):.2f} ms vs {1e3 * median_seconds(f_separable):.2f} ms"
)
assert difference < 1e-12
