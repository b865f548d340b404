"""Losses (means over the batch) and regularizers (penalties on parameters).

softmax_cross_entropy(logits, labels, label_smoothing) and mse as gc's ops;
binary_cross_entropy_with_logits(z, y) = mean(softplus(z) - z y), the stable form of
-y log sigmoid(z) - (1 - y) log(1 - sigmoid(z)).
Regularizers: l2(params, lam) = lam / 2 * sum ||W||^2, whose gradient lam W is weight
decay; l1(params, lam) = lam * sum |W|, whose subgradient is lam sign(W) (0 at 0);
elastic_net = l1 + l2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import graphc as gc
from graphc.tensor import Tensor


def softmax_cross_entropy(logits: Any, labels: Any, label_smoothing: float = 0.0) -> Tensor:
    """The batch mean of the softmax cross-entropy (int labels or probability targets)."""
    return gc.mean(gc.softmax_cross_entropy(logits, labels, label_smoothing=label_smoothing))


def mean_squared_error(prediction: Any, target: Any) -> Tensor:
    """mean((prediction - target)^2) over every element (PyTorch's MSELoss)."""
    return gc.mse(prediction, target)


def binary_cross_entropy_with_logits(logits: Any, targets: Any) -> Tensor:
    """mean(softplus(z) - z y) over every element: BCE of sigmoid(z) against y in [0, 1]."""
    z = gc.as_tensor(logits)
    return gc.mean(gc.softplus(z) - z * targets)


def l2(params: Sequence[Any], lam: float) -> Tensor:
    """lam / 2 * sum of squares of the params (its gradient lam * W is weight decay)."""
    return _total([gc.sum(p * p) for p in params]) * (0.5 * lam)


def l1(params: Sequence[Any], lam: float) -> Tensor:
    """lam * sum |W| (subgradient lam * sign(W), 0 where W = 0)."""
    return _total([gc.sum(gc.abs(p)) for p in params]) * lam


def elastic_net(params: Sequence[Any], l1_lam: float, l2_lam: float) -> Tensor:
    """l1(params, l1_lam) + l2(params, l2_lam) (Zou & Hastie 2005)."""
    return l1(params, l1_lam) + l2(params, l2_lam)


def _total(terms: list) -> Tensor:
    if not terms:
        raise ValueError("regularizer: no parameters given")
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


LOSSES: dict = {
    "cross_entropy": softmax_cross_entropy,
    "mse": mean_squared_error,
    "bce": binary_cross_entropy_with_logits,
}


def get(loss: str | Callable) -> Callable:
    """A loss function (prediction, target) -> scalar Tensor, by name or as given."""
    if callable(loss):
        return loss
    try:
        return LOSSES[loss]
    except KeyError:
        raise ValueError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}") from None
