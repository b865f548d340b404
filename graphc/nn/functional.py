"""Normalisation and dropout as compositions of graph ops (so every backend runs them and
autodiff differentiates them with the rules already in the op tables).

batch_norm normalises over every axis but the channel axis 1 (N, C, *spatial) or the
feature axis of (N, F); layer_norm over the last `axes` axes of each example; dropout
multiplies by a 0/1 mask scaled by 1 / (1 - rate) (inverted dropout).
"""

from __future__ import annotations

from typing import Any

import graphc as gc
from graphc.shapes import shape_error
from graphc.tensor import Tensor


def _channel_view(v: Tensor, x: Tensor) -> Tensor:
    """A per-channel vector (C,) reshaped to broadcast against x (N, C, *spatial)."""
    return gc.reshape(v, (1, -1) + (1,) * (x.ndim - 2))


def _reduction_axes(x: Tensor) -> tuple:
    if x.ndim < 2:
        raise shape_error("batch_norm", "x must be (N, C) or (N, C, *spatial)", x.shape)
    return (0,) + tuple(range(2, x.ndim))


def moments(x: Tensor, axes: tuple) -> tuple:
    """(mean, biased variance) of x over `axes`, kept as broadcastable axes of size 1."""
    mean = gc.mean(x, axes, keepdims=True)
    centred = x - mean
    return mean, gc.mean(centred * centred, axes, keepdims=True)


def batch_norm(
    x: Any,
    gamma: Any,
    beta: Any,
    mean: Any = None,
    var: Any = None,
    eps: float = 1e-5,
) -> Tensor:
    """gamma * (x - mean) / sqrt(var + eps) + beta per channel (axis 1 of x).

    With mean and var None the batch statistics are used (training: the mean and biased
    variance over N and the spatial axes); otherwise the given (C,) vectors (evaluation:
    the running averages).
    """
    axes = _reduction_axes(x)
    if (mean is None) != (var is None):
        raise ValueError("batch_norm: give both mean and var (evaluation) or neither (training)")
    if mean is None:
        mu, sigma2 = moments(x, axes)
    else:
        mu, sigma2 = _channel_view(mean, x), _channel_view(var, x)
    normalised = (x - mu) / gc.sqrt(sigma2 + eps)
    return normalised * _channel_view(gamma, x) + _channel_view(beta, x)


def layer_norm(x: Any, gamma: Any, beta: Any, axes: int = 1, eps: float = 1e-5) -> Tensor:
    """Normalise each example over its last `axes` axes, then scale by gamma and shift by
    beta (both of x's shape on those axes), as torch.nn.LayerNorm."""
    if not 1 <= axes < x.ndim:
        raise shape_error(
            "layer_norm", f"axes must be in [1, rank - 1], got {axes} for rank {x.ndim}", x.shape
        )
    reduced = tuple(range(x.ndim - axes, x.ndim))
    mu, sigma2 = moments(x, reduced)
    return (x - mu) / gc.sqrt(sigma2 + eps) * gamma + beta


def dropout(x: Any, mask: Any, rate: float) -> Tensor:
    """Inverted dropout: x * mask / (1 - rate), mask a 0/1 tensor of x's shape (keep = 1)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    return x * mask * (1.0 / (1.0 - rate))
