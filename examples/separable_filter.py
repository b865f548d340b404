"""A separable 2-D low-pass filter: the 3x3 kernel [1/4 1/2 1/4] (x) [1/4 1/2 1/4] equals a
1x3 pass along rows followed by a 3x1 pass along columns (6 multiply-adds per pixel, not 9).

    python examples/separable_filter.py
"""

import numpy as np

import graphc as gc

taps = np.array([0.25, 0.5, 0.25])
image = gc.data.load_digits()[0][:4].reshape(4, 1, 8, 8).astype(np.float64)

x = gc.input("x", (gc.dim("N"), 1, 8, 8), "float64")
full = gc.conv(x, gc.constant(np.outer(taps, taps)[None, None]), padding="same")
rows = gc.conv(x, gc.constant(taps.reshape(1, 1, 1, 3)), padding="same")  # 1x3 kernel
both = gc.conv(rows, gc.constant(taps.reshape(1, 1, 3, 1)), padding="same")  # then 3x1

smoothed_3x3, smoothed_twice_1d = gc.compile([x], [full, both])(image)
difference = np.max(np.abs(smoothed_3x3 - smoothed_twice_1d))
print(f"3x3 filter vs two 1-D passes on {len(image)} digits: max difference {difference:.1e}")
print("first digit, smoothed:")
print(np.array2string(smoothed_3x3[0, 0], precision=2, suppress_small=True))
assert difference < 1e-12
