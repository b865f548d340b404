"""The LLVM im2col and col2im kernels (the GEMM lowering's data movement) on the cases their
fast paths split: the in-bounds range of the last axis, a stride on an outer axis only,
dilation, uneven padding, groups and a symbolic batch; against the numpy backend."""

import numpy as np
import pytest

import graphc as gc
from tests.backends.test_llvm_backend import agree

rng = np.random.default_rng(3)
CASES = [
    # (spatial, kernel, stride, padding, dilation, groups)
    ((9, 11), (3, 3), 1, 1, 1, 1),
    ((9, 11), (3, 4), (2, 1), ((1, 2), (0, 3)), 1, 2),  # stride on the outer axis only
    ((3, 8), (2, 5), 1, (0, 4), (2, 3), 1),  # dilated taps, kernel wider than the image
    ((7, 9), (5, 5), (1, 2), 2, 1, 1),  # stride on the last axis: the gather path
    ((12,), (4,), 1, ((3, 1),), 2, 2),  # 1-D
    ((4, 5, 6), (2, 3, 3), 1, 1, 1, 1),  # 3-D
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=[f"case{k}" for k in range(len(CASES))])
def test_gemm_convolution_and_both_gradients_match_numpy(case, dtype):
    spatial, kernel, stride, padding, dilation, groups = case
    N = gc.dim("N")
    x = gc.input("x", (N, 2 * groups, *spatial), dtype)
    w = gc.input("w", (3 * groups, 2, *kernel), dtype)
    y = gc.conv(x, w, stride, padding, dilation=dilation, groups=groups, algo="gemm")
    outs = [y, *gc.grad(gc.sum(gc.tanh(y) * y), [x, w])]
    xs = rng.standard_normal((3, 2 * groups, *spatial)).astype(dtype)
    ws = rng.standard_normal((3 * groups, 2, *kernel)).astype(dtype)
    agree([x, w], outs, xs, ws, rtol=1e-4 if dtype == "float32" else 1e-12)
