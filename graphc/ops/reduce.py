"""Reductions and the ops built on them: sum, mean, max, logsumexp, softmax, log_softmax.

softmax, log_softmax and logsumexp are primitives (not compositions) so that
their numpy references and derivative rules can be written for stability:
they subtract the running max before exponentiating.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.node import Node
from graphc.ops.registry import accepts_complex, apply, float_of, op
from graphc.shapes import normalize_axes, normalize_axis, shape_error


def reduced_shape(shape: tuple, axes: tuple, keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if k in axes else d for k, d in enumerate(shape))
    return tuple(d for k, d in enumerate(shape) if k not in axes)


def _reduce_infer(result: str):
    def infer(inputs: tuple, attrs: dict) -> tuple:
        (a,) = inputs
        shape = reduced_shape(a.shape, attrs["axes"], attrs["keepdims"])
        if result == "float":
            return shape, float_of(a.dtype)
        if a.dtype == "bool":
            return shape, "int32"
        return shape, a.dtype

    return infer


@op("sum", _reduce_infer("same"), kind="reduce")
def _sum_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    return np.sum(a, axis=ctx.attrs["axes"], keepdims=ctx.attrs["keepdims"], dtype=ctx.dtype)


@op("mean", _reduce_infer("float"), kind="reduce")
def _mean_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    axes = ctx.attrs["axes"]
    if any(a.shape[k] == 0 for k in axes):
        raise ValueError(f"mean over an empty axis (array shape {a.shape}, axes {axes})")
    return np.mean(a, axis=axes, keepdims=ctx.attrs["keepdims"], dtype=ctx.dtype)


@op("max", _reduce_infer("same"), kind="reduce")
def _max_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    axes = ctx.attrs["axes"]
    if any(a.shape[k] == 0 for k in axes):
        raise ValueError(f"max over an empty axis (array shape {a.shape}, axes {axes})")
    return np.max(a, axis=axes, keepdims=ctx.attrs["keepdims"]).astype(ctx.dtype, copy=False)


def _stable_logsumexp(a: np.ndarray, axes: tuple, keepdims: bool) -> np.ndarray:
    m = np.max(a, axis=axes, keepdims=True, initial=-np.inf)  # empty: log(0) = -inf
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(a - m), axis=axes, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axes)


@op("logsumexp", _reduce_infer("float"), kind="reduce")
def _logsumexp_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    a = a.astype(ctx.dtype, copy=False)
    with np.errstate(divide="ignore"):
        return _stable_logsumexp(a, ctx.attrs["axes"], ctx.attrs["keepdims"])


accepts_complex("sum", "mean")


def _reduce(name: str, a: Node, axis: Any, keepdims: bool) -> Node:
    axes = normalize_axes(name, axis, a.rank)
    if not axes and (name == "max" or (name == "sum" and a.dtype != "bool")):
        return a  # nothing to reduce (a bool sum still counts: bool -> int32)
    return apply(name, (a,), axes=axes, keepdims=bool(keepdims))


def sum(a: Node, axis: Any = None, keepdims: bool = False) -> Node:  # noqa: A001
    return _reduce("sum", a, axis, keepdims)


def mean(a: Node, axis: Any = None, keepdims: bool = False) -> Node:
    return _reduce("mean", a, axis, keepdims)


def max(a: Node, axis: Any = None, keepdims: bool = False) -> Node:  # noqa: A001
    return _reduce("max", a, axis, keepdims)


def logsumexp(a: Node, axis: Any = None, keepdims: bool = False) -> Node:
    """log(sum(exp(a))) over `axis` (None: all), computed stably."""
    return _reduce("logsumexp", a, axis, keepdims)


def _infer_softmax(inputs: tuple, attrs: dict) -> tuple:
    (a,) = inputs
    if a.rank == 0:
        raise shape_error("softmax", "needs rank >= 1", a.shape)
    return a.shape, float_of(a.dtype)


@op("softmax", _infer_softmax, kind="reduce")
def _softmax_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    axis = ctx.attrs["axis"]
    a = a.astype(ctx.dtype, copy=False)
    shifted = a - np.max(a, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


@op("log_softmax", _infer_softmax, kind="reduce")
def _log_softmax_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    axis = ctx.attrs["axis"]
    a = a.astype(ctx.dtype, copy=False)
    shifted = a - np.max(a, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(a: Node, axis: int = -1) -> Node:
    """exp(a) / sum(exp(a)) along `axis` (default the last), computed stably."""
    return apply("softmax", (a,), axis=normalize_axis("softmax", axis, a.rank))


def log_softmax(a: Node, axis: int = -1) -> Node:
    """a - logsumexp(a) along `axis` (default the last), computed stably."""
    return apply("log_softmax", (a,), axis=normalize_axis("log_softmax", axis, a.rank))


# derivative rules ---------------------------------------------------------------------------

from graphc.node import INEXACT_DTYPES  # noqa: E402 - the rules need modules that import this one
from graphc.ops import elementwise as ew_ops  # noqa: E402
from graphc.ops import shape as shp  # noqa: E402
from graphc.ops.registry import defjvp, defvjp  # noqa: E402
from graphc.ops.sources import size_value  # noqa: E402
from graphc.shapes import numel  # noqa: E402


def _ew(name: str, *operands: Node) -> Node:
    return ew_ops.ew(name, *operands)


def _kept(node: Node, value: Node) -> Node:
    """value (shaped like node) reshaped with the reduced axes kept as size 1."""
    (a,) = node.inputs
    return shp.reshape(value, reduced_shape(a.shape, node.attrs["axes"], True))


def _spread(node: Node, g: Node) -> Node:
    """g (shaped like node) broadcast back over the reduced axes to the input's shape."""
    if g.rank == 0:
        return shp.broadcast_to(g, node.inputs[0].shape)
    return shp.broadcast_to(_kept(node, g), node.inputs[0].shape)


def _count(node: Node) -> Node:
    (a,) = node.inputs
    return size_value(numel([a.shape[k] for k in node.attrs["axes"]]), node.dtype)


def _float_input(node: Node) -> bool:
    return node.inputs[0].dtype in INEXACT_DTYPES


@defvjp("sum")
def _sum_vjp(node: Node, g: Node) -> list:
    return [_spread(node, g) if _float_input(node) else None]


@defjvp("sum")
def _sum_jvp(node: Node, tangents: tuple) -> Node:
    return apply("sum", tangents, **node.attrs)


@defvjp("mean")
def _mean_vjp(node: Node, g: Node) -> list:
    if not _float_input(node):
        return [None]
    return [_spread(node, _ew("div", g, _count(node)))]


@defjvp("mean")
def _mean_jvp(node: Node, tangents: tuple) -> Node:
    return apply("mean", tangents, **node.attrs)


def _max_weights(node: Node) -> Node:
    """1/k on each of the k entries equal to the max, 0 elsewhere: ties share the gradient
    equally (as JAX and PyTorch's amax), so the max of equal values has derivative 1/k each."""
    (a,) = node.inputs
    axes = node.attrs["axes"]
    hits = ew_ops.cast(_ew("eq", a, _kept(node, node)), a.dtype)
    return _ew("div", hits, sum(hits, axes, keepdims=True))


@defvjp("max")
def _max_vjp(node: Node, g: Node) -> list:
    if not _float_input(node):
        return [None]
    return [_ew("mul", _spread(node, g), _max_weights(node))]


@defjvp("max")
def _max_jvp(node: Node, tangents: tuple) -> Node:
    weighted = _ew("mul", tangents[0], _max_weights(node))
    return sum(weighted, node.attrs["axes"], node.attrs["keepdims"])


def _lse_weights(node: Node) -> Node:
    """exp(a - logsumexp(a)): the softmax over the reduced axes, never overflowing."""
    (a,) = node.inputs
    return _ew("exp", _ew("sub", a, _kept(node, node)))


@defvjp("logsumexp")
def _logsumexp_vjp(node: Node, g: Node) -> list:
    if not _float_input(node):
        return [None]
    return [_ew("mul", _spread(node, g), _lse_weights(node))]


@defjvp("logsumexp")
def _logsumexp_jvp(node: Node, tangents: tuple) -> Node:
    weighted = _ew("mul", tangents[0], _lse_weights(node))
    return sum(weighted, node.attrs["axes"], node.attrs["keepdims"])


@defvjp("softmax")
def _softmax_vjp(node: Node, g: Node) -> list:
    # y * (g - sum(g * y)) with y = softmax(a)
    if not _float_input(node):
        return [None]
    inner = sum(_ew("mul", g, node), node.attrs["axis"], keepdims=True)
    return [_ew("mul", node, _ew("sub", g, inner))]


@defjvp("softmax")
def _softmax_jvp(node: Node, tangents: tuple) -> Node:
    (t,) = tangents
    inner = sum(_ew("mul", t, node), node.attrs["axis"], keepdims=True)
    return _ew("mul", node, _ew("sub", t, inner))


@defvjp("log_softmax")
def _log_softmax_vjp(node: Node, g: Node) -> list:
    # g - softmax(a) * sum(g)
    if not _float_input(node):
        return [None]
    axis = node.attrs["axis"]
    p = softmax(node.inputs[0], axis)
    return [_ew("sub", g, _ew("mul", p, sum(g, axis, keepdims=True)))]


@defjvp("log_softmax")
def _log_softmax_jvp(node: Node, tangents: tuple) -> Node:
    (t,) = tangents
    axis = node.attrs["axis"]
    p = softmax(node.inputs[0], axis)
    return _ew("sub", t, sum(_ew("mul", p, t), axis, keepdims=True))
