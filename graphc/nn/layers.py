"""Layers: Dense, Conv (1-D/2-D/3-D by the kernel's rank), ConvTranspose, MaxPool, AvgPool,
Unpool, BatchNorm, LayerNorm, Dropout.

Parameters are gc.param Tensors created when a layer is built, seeded (`seed=`) so runs
are reproducible; a dense weight is (in, out) and y = x @ W + b, a conv weight
(C_out, C_in / groups, *kernel) as PyTorch's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import graphc as gc
from graphc.nn import functional as F
from graphc.nn.module import Context, Module, RandomMask
from graphc.ops.sources import size_value
from graphc.tensor import Tensor


def _tuple(value: Any, rank: int, what: str, layer: str) -> tuple:
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank
    if len(items) != rank or not all(isinstance(v, (int, np.integer)) and v > 0 for v in items):
        raise ValueError(f"{layer}: {what} must be a positive int or {rank} of them, got {value!r}")
    return tuple(int(v) for v in items)


class Dense(Module):
    """y = x @ W + b, W (in, out) initialised by `init` (Glorot-uniform), b zeros."""

    kind = "dense"

    def __init__(
        self,
        n_in: int,
        n_out: int,
        init: Any = "glorot_uniform",
        bias: bool = True,
        seed: int | None = None,
        dtype: str = "float32",
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.W = gc.param(f"{self.name}.W", (self.n_in, self.n_out), init, seed, dtype=dtype)
        self.b = gc.param(f"{self.name}.b", (self.n_out,), "zeros", dtype=dtype) if bias else None

    def parameters(self) -> list:
        return [self.W] if self.b is None else [self.W, self.b]

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        if x.ndim < 1 or str(x.shape[-1]) != str(self.n_in):
            raise ValueError(
                f"{self.name}: expects (..., {self.n_in}) inputs, got shape {tuple(x.shape)}"
            )
        y = x @ self.W
        return y if self.b is None else y + self.b


class Conv(Module):
    """Cross-correlation with C_out kernels of size `kernel` (its length: 1, 2 or 3 spatial
    axes), plus a bias per output channel; stride, padding, dilation, groups as gc.conv."""

    kind = "conv"

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int | Sequence[int],
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        init: Any = "glorot_uniform",
        bias: bool = True,
        seed: int | None = None,
        dtype: str = "float32",
        rank: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if rank is None:
            rank = len(kernel) if isinstance(kernel, (tuple, list)) else 2
        if rank not in (1, 2, 3):
            raise ValueError(f"{self.name}: 1, 2 or 3 spatial axes, got {rank}")
        self.kernel = _tuple(kernel, rank, "kernel", self.name)
        if c_in % groups or c_out % groups:
            raise ValueError(f"{self.name}: groups {groups} must divide c_in and c_out")
        shape = (int(c_out), int(c_in) // groups) + self.kernel
        self.W = gc.param(f"{self.name}.W", shape, init, seed, dtype=dtype)
        self.b = gc.param(f"{self.name}.b", (int(c_out),), "zeros", dtype=dtype) if bias else None
        self.options = {"stride": stride, "padding": padding, "dilation": dilation}
        self.groups = groups

    def parameters(self) -> list:
        return [self.W] if self.b is None else [self.W, self.b]

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        y = gc.conv(x, self.W, groups=self.groups, **self.options)
        if self.b is None:
            return y
        return y + gc.reshape(self.b, (1, -1) + (1,) * len(self.kernel))


class ConvTranspose(Module):
    """The adjoint of a Conv (gc.conv_transpose): upsamples by `stride`; W (C_in, C_out, *k)
    in the orientation of the conv it undoes, as torch.nn.ConvTranspose."""

    kind = "convT"

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int | Sequence[int],
        stride: Any = 1,
        padding: Any = 0,
        init: Any = "glorot_uniform",
        seed: int | None = None,
        dtype: str = "float32",
        rank: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if rank is None:
            rank = len(kernel) if isinstance(kernel, (tuple, list)) else 2
        self.kernel = _tuple(kernel, rank, "kernel", self.name)
        shape = (int(c_in), int(c_out)) + self.kernel
        self.W = gc.param(f"{self.name}.W", shape, init, seed, dtype=dtype)
        self.b = gc.param(f"{self.name}.b", (int(c_out),), "zeros", dtype=dtype)
        self.stride, self.padding = stride, padding

    def parameters(self) -> list:
        return [self.W, self.b]

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        y = gc.conv_transpose(x, self.W, stride=self.stride, padding=self.padding)
        return y + gc.reshape(self.b, (1, -1) + (1,) * len(self.kernel))


class MaxPool(Module):
    """The max over each window (gc.max_pool); stride defaults to the window."""

    kind = "maxpool"

    def __init__(
        self, window: Any, stride: Any = None, padding: Any = 0, name: str | None = None
    ) -> None:
        super().__init__(name)
        self.window, self.stride, self.padding = window, stride, padding

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        return gc.max_pool(x, self.window, self.stride, self.padding)


class AvgPool(MaxPool):
    """The mean over each window (gc.avg_pool)."""

    kind = "avgpool"

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        return gc.avg_pool(x, self.window, self.stride, self.padding)


class Unpool(Module):
    """Nearest-neighbour ("nearest") or bed-of-nails ("zeros") unpooling (gc.unpool)."""

    kind = "unpool"

    def __init__(self, window: Any, mode: str = "nearest", name: str | None = None) -> None:
        super().__init__(name)
        self.window, self.mode = window, mode

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        return gc.unpool(x, self.window, mode=self.mode)


class BatchNorm(Module):
    """Batch normalisation over axis 1 (features of (N, F), channels of (N, C, *spatial)).

    Training: normalise by the batch mean and biased variance and update the running
    averages, r <- (1 - momentum) r + momentum * batch statistic (the variance unbiased,
    n / (n - 1), as PyTorch); evaluation: normalise by the running averages.
    """

    kind = "batchnorm"

    def __init__(
        self,
        channels: int,
        momentum: float = 0.1,
        eps: float = 1e-5,
        dtype: str = "float32",
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        c = (int(channels),)
        self.gamma = gc.param(f"{self.name}.gamma", c, "ones", dtype=dtype)
        self.beta = gc.param(f"{self.name}.beta", c, "zeros", dtype=dtype)
        self.running_mean = gc.param(f"{self.name}.running_mean", c, "zeros", dtype=dtype)
        self.running_var = gc.param(f"{self.name}.running_var", c, "ones", dtype=dtype)
        self.momentum, self.eps = float(momentum), float(eps)

    def parameters(self) -> list:
        return [self.gamma, self.beta]

    def states(self) -> list:
        return [self.running_mean, self.running_var]

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        if x.ndim < 2 or str(x.shape[1]) != str(self.gamma.shape[0]):
            raise ValueError(
                f"{self.name}: expects {self.gamma.shape[0]} channels on axis 1, "
                f"got shape {tuple(x.shape)}"
            )
        if not ctx.training:
            return F.batch_norm(
                x, self.gamma, self.beta, self.running_mean, self.running_var, self.eps
            )
        axes = F._reduction_axes(x)
        mean, var = F.moments(x, axes)
        batch_mean = gc.reshape(mean, (-1,))
        unbiased = gc.reshape(var, (-1,)) * _count_ratio(x, axes)
        m = self.momentum
        ctx.updates[self.running_mean] = (1.0 - m) * self.running_mean + m * batch_mean
        ctx.updates[self.running_var] = (1.0 - m) * self.running_var + m * unbiased
        y = (x - mean) / gc.sqrt(var + self.eps)
        return y * F._channel_view(self.gamma, x) + F._channel_view(self.beta, x)


def _count_ratio(x: Tensor, axes: tuple) -> Tensor:
    """n / (n - 1) for n the number of elements a batch statistic averages (maybe symbolic)."""
    n = 1
    for a in axes:
        n = n * x.shape[a]
    count = Tensor(size_value(n, x.dtype))
    return count / (count - 1.0)


class LayerNorm(Module):
    """Normalise each example over its last len(shape) axes; gamma, beta of that shape."""

    kind = "layernorm"

    def __init__(
        self,
        shape: int | Sequence[int],
        eps: float = 1e-5,
        dtype: str = "float32",
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
        self.gamma = gc.param(f"{self.name}.gamma", self.shape, "ones", dtype=dtype)
        self.beta = gc.param(f"{self.name}.beta", self.shape, "zeros", dtype=dtype)
        self.eps = float(eps)

    def parameters(self) -> list:
        return [self.gamma, self.beta]

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        return F.layer_norm(x, self.gamma, self.beta, len(self.shape), self.eps)


class Dropout(Module):
    """Inverted dropout: in training each unit is kept with probability 1 - rate and scaled
    by 1 / (1 - rate); in evaluation the identity. The 0/1 mask is an input of the compiled
    function, drawn for each call from the caller's seeded generator (graphc.train does)."""

    kind = "dropout"

    def __init__(self, rate: float = 0.5, name: str | None = None) -> None:
        super().__init__(name)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{self.name}: rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        if not ctx.training or self.rate == 0.0:
            return x
        mask = gc.input(f"{self.name}.mask", x.shape, x.dtype)
        ctx.masks.append(RandomMask(mask, self.rate, self.name))
        return F.dropout(x, mask, self.rate)
