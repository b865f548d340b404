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


# derivative rules ---------------------------------------------------------------------------

from graphc.node import FLOAT_DTYPES  # noqa: E402
from graphc.ops import elementwise as ew_ops  # noqa: E402
from graphc.ops import reduce as red  # noqa: E402
from graphc.ops import shape as shp  # noqa: E402
from graphc.ops.registry import defjvp, defvjp  # noqa: E402
from graphc.ops.sources import constant, size_value  # noqa: E402
from graphc.shapes import numel  # noqa: E402


@defvjp("one_hot")
def _one_hot_vjp(node: Node, g: Node) -> list:
    return [None]  # labels are integers: no derivative


@defjvp("one_hot")
def _one_hot_jvp(node: Node, tangents: tuple) -> None:
    return None


def _smoothed_target(node: Node) -> Node:
    """q = (1 - e) * target + e / K, the target as probabilities (e = label_smoothing)."""
    logits, target = node.inputs
    k = logits.shape[-1]
    if target.dtype in INT_DTYPES:
        if not k.is_number:
            raise ValueError(
                f"softmax_cross_entropy (built at {node.where}): the derivative with integer "
                f"labels needs a concrete number of classes, got {k}"
            )
        q = one_hot(target, int(k), node.dtype)
    else:
        q = target
    e = node.attrs["label_smoothing"]
    if e:
        scaled = ew_ops.ew("mul", constant(1.0 - e, node.dtype), q)
        q = ew_ops.ew(
            "add", scaled, ew_ops.ew("div", constant(e, node.dtype), size_value(k, node.dtype))
        )
    return q


def _sce_logit_grad(node: Node) -> Node:
    # d/dz -sum(q * log_softmax(z)) = softmax(z) * sum(q) - q  (= softmax(z) - q for one-hot q)
    logits, target = node.inputs
    q = _smoothed_target(node)
    p = red.softmax(logits, -1)
    if target.dtype in INT_DTYPES:
        return ew_ops.ew("sub", p, q)
    mass = red.sum(q, -1, keepdims=True)
    return ew_ops.ew("sub", ew_ops.ew("mul", p, mass), q)


def _sce_target_grad(node: Node) -> Node:
    # d/dq -sum(q' * log_softmax(z)) = -(1 - e) * log_softmax(z)
    logits, _ = node.inputs
    scale = constant(-(1.0 - node.attrs["label_smoothing"]), node.dtype)
    return ew_ops.ew("mul", scale, red.log_softmax(logits, -1))


def _last_axis(g: Node) -> Node:
    return shp.reshape(g, g.shape + (1,))


@defvjp("softmax_cross_entropy")
def _sce_vjp(node: Node, g: Node) -> list:
    logits, target = node.inputs
    g1 = _last_axis(g)
    out = [None, None]
    if logits.dtype in FLOAT_DTYPES:
        out[0] = ew_ops.ew("mul", g1, _sce_logit_grad(node))
    if target.dtype in FLOAT_DTYPES:
        out[1] = ew_ops.ew("mul", g1, _sce_target_grad(node))
    return out


@defjvp("softmax_cross_entropy")
def _sce_jvp(node: Node, tangents: tuple) -> Node:
    t_logits, t_target = tangents
    total = None
    if t_logits is not None:
        total = red.sum(ew_ops.ew("mul", t_logits, _sce_logit_grad(node)), -1)
    if t_target is not None:
        part = red.sum(ew_ops.ew("mul", t_target, _sce_target_grad(node)), -1)
        total = part if total is None else ew_ops.ew("add", total, part)
    return total


def _mse_scale(node: Node, g: Node) -> Node:
    """2 g for reduction "none"/"sum", 2 g / count for "mean", as a broadcastable factor."""
    two_g = ew_ops.ew("mul", constant(2.0, node.dtype), g)
    if node.attrs["reduction"] == "mean":
        count = size_value(numel(node.inputs[0].shape), node.dtype)
        return ew_ops.ew("div", two_g, count)
    return two_g


def _difference(node: Node) -> Node:
    a, b = node.inputs
    return ew_ops.ew("sub", ew_ops.cast(a, node.dtype), ew_ops.cast(b, node.dtype))


@defvjp("mse")
def _mse_vjp(node: Node, g: Node) -> list:
    # d/da mean((a - b)^2) = 2 (a - b) / count; d/db is its negative
    a, b = node.inputs
    da = ew_ops.ew("mul", _mse_scale(node, g), _difference(node))
    out = [da if a.dtype in FLOAT_DTYPES else None, None]
    if b.dtype in FLOAT_DTYPES:
        out[1] = ew_ops.ew("neg", da)
    return out


@defjvp("mse")
def _mse_jvp(node: Node, tangents: tuple) -> Node:
    ta, tb = tangents
    if ta is None:
        dt = ew_ops.ew("neg", tb)
    elif tb is None:
        dt = ta
    else:
        dt = ew_ops.ew("sub", ta, tb)
    one = constant(1.0, node.dtype)
    per_element = ew_ops.ew("mul", _mse_scale(node, one), ew_ops.ew("mul", _difference(node), dt))
    if node.attrs["reduction"] == "none":
        return per_element
    return red.sum(per_element)
