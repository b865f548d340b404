"""Losses and encodings: one_hot, softmax_cross_entropy (with label smoothing), mse."""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy

from graphc.node import Node, as_dtype
from graphc.ops.registry import apply, float_of, op, promote
from graphc.ops.sources import coerce
from graphc.shapes import dims_equal, shape_error

INT_DTYPES = ("int32", "int64")


def _check_labels(op_name: str, labels: np.ndarray, depth: int) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= depth):
        bad = labels[(labels < 0) | (labels >= depth)].ravel()[:5]
        raise ValueError(
            f"{op_name}: labels must lie in [0, {depth}), got {bad.tolist()} "
            f"(labels of shape {labels.shape})"
        )


def _infer_one_hot(inputs: tuple, attrs: dict) -> tuple:
    (t,) = inputs
    if t.dtype not in INT_DTYPES:
        raise shape_error("one_hot", f"labels must be int32 or int64, got {t.dtype}", t.shape)
    return t.shape + (sympy.Integer(attrs["depth"]),), attrs["dtype"]


@op("one_hot", _infer_one_hot, kind="nn")
def _one_hot_impl(ctx: Any, t: np.ndarray) -> np.ndarray:
    depth = ctx.attrs["depth"]
    _check_labels("one_hot", t, depth)
    return (t[..., None] == np.arange(depth)).astype(ctx.dtype)


def one_hot(labels: Any, depth: int, dtype: Any = "float32") -> Node:
    """labels (..., ) of ints in [0, depth) -> (..., depth) indicator vectors."""
    (labels,) = coerce([labels], "one_hot")
    if isinstance(depth, (bool, np.bool_)) or not isinstance(depth, (int, np.integer)):
        raise shape_error("one_hot", f"depth must be a positive int, got {depth!r}", labels.shape)
    if depth <= 0:
        raise shape_error("one_hot", f"depth must be a positive int, got {depth!r}", labels.shape)
    return apply("one_hot", (labels,), depth=int(depth), dtype=as_dtype(dtype))


def _infer_sce(inputs: tuple, attrs: dict) -> tuple:
    logits, target = inputs
    if logits.rank == 0:
        raise shape_error("softmax_cross_entropy", "logits need rank >= 1", logits.shape)
    batch = logits.shape[:-1]
    if target.dtype in INT_DTYPES:
        ok = target.rank == len(batch) and all(
            dims_equal(a, b) for a, b in zip(target.shape, batch)
        )
        if not ok:
            raise shape_error(
                "softmax_cross_entropy",
                "integer labels must have the logits' shape without the last axis",
                logits.shape,
                target.shape,
            )
    else:
        ok = target.rank == logits.rank and all(
            dims_equal(a, b) for a, b in zip(target.shape, logits.shape)
        )
        if not ok:
            raise shape_error(
                "softmax_cross_entropy",
                "probability targets must have the logits' shape",
                logits.shape,
                target.shape,
            )
    return batch, float_of(logits.dtype)


@op("softmax_cross_entropy", _infer_sce, kind="nn")
def _sce_impl(ctx: Any, logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    z = logits.astype(ctx.dtype, copy=False)
    k = z.shape[-1]
    shifted = z - np.max(z, axis=-1, keepdims=True)
    log_p = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    if np.issubdtype(target.dtype, np.integer):
        _check_labels("softmax_cross_entropy", target, k)
        q = (target[..., None] == np.arange(k)).astype(ctx.dtype)
    else:
        q = target.astype(ctx.dtype, copy=False)
    eps = ctx.attrs["label_smoothing"]
    if eps:
        q = (1 - eps) * q + eps / k
    return -np.sum(q * log_p, axis=-1)


def softmax_cross_entropy(logits: Node, labels: Any, label_smoothing: float = 0.0) -> Node:
    """Per-example cross-entropy -sum(q * log_softmax(logits)) over the last axis.

    `labels` are class indices (int, the logits' shape less the last axis) or
    probabilities (float, the logits' shape). With label_smoothing e the target
    is q = (1 - e) * onehot + e / K, as in PyTorch. Average with gc.mean.
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"softmax_cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}"
        )
    (target,) = coerce([labels], "softmax_cross_entropy")
    return apply("softmax_cross_entropy", (logits, target), label_smoothing=float(label_smoothing))


def _infer_mse(inputs: tuple, attrs: dict) -> tuple:
    a, b = inputs
    if a.rank != b.rank or not all(dims_equal(d, e) for d, e in zip(a.shape, b.shape)):
        raise shape_error("mse", "prediction and target shapes differ", a.shape, b.shape)
    dtype = float_of(promote(a.dtype, b.dtype))
    if attrs["reduction"] == "none":
        return a.shape, dtype
    return (), dtype


@op("mse", _infer_mse, kind="nn")
def _mse_impl(ctx: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a.astype(ctx.dtype, copy=False) - b.astype(ctx.dtype, copy=False)
    sq = d * d
    reduction = ctx.attrs["reduction"]
    if reduction == "none":
        return sq
    if reduction == "sum":
        return np.sum(sq, dtype=ctx.dtype)
    return np.mean(sq, dtype=ctx.dtype)


def mse(prediction: Any, target: Any, reduction: str = "mean") -> Node:
    """Mean squared error; reduction "mean" (default, as PyTorch), "sum" or "none"."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"mse: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    a, b = coerce([prediction, target], "mse")
    return apply("mse", (a, b), reduction=reduction)
