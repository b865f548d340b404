"""Pooling and unpooling over the spatial axes of x (N, C, *spatial), 1, 2 or 3 of them.

PyTorch's conventions: the window slides with `stride` (default: the window) over x
padded by `padding` on both sides of each spatial axis (-inf for max_pool, zeros counted
in the divisor for avg_pool), and the output has floor((W + 2P - F) / S) + 1 positions
per axis (symbolic when W is). `padding` is at most half the window.

Primitives: max_pool, avg_pool and avg_pool_grad (avg_pool's adjoint), and three helpers
that route max_pool's derivatives to the arg-max: pool_argmax (int64 flat index into the
spatial plane of each (n, c), the first max of its window as PyTorch; no derivative),
pool_gather(x, indices) (x at the indices) and pool_scatter(g, indices, shape) (g added
at the indices of a zero tensor of spatial `shape`); gather and scatter are each other's
adjoints, so every derivative can be taken again. Max-unpooling is pool_scatter; nearest
and bed-of-nails unpooling are built from broadcast_to + reshape and slice_grad.
"""

from __future__ import annotations

import itertools
import operator
from typing import Any

import numpy as np
import sympy
from numpy.lib.stride_tricks import sliding_window_view

from graphc.node import FLOAT_DTYPES, Node
from graphc.ops import shape as shp
from graphc.ops.registry import apply, defjvp, defvjp, float_of, op
from graphc.ops.sources import coerce
from graphc.shapes import ShapeError, as_dim, dims_equal, shape_error

INDEX_DTYPES = ("int32", "int64")


# arguments ---------------------------------------------------------------------------------


def _spatial_rank(op_name: str, x: Node) -> int:
    if x.rank not in (3, 4, 5):
        raise shape_error(
            op_name,
            f"x must be (N, C, *spatial) with 1, 2 or 3 spatial axes, got rank {x.rank}",
            x.shape,
        )
    return x.rank - 2


def _ints(op_name: str, x: Node, name: str, value: Any, rank: int, minimum: int) -> tuple:
    """value (an int or one int per spatial axis) as a tuple of `rank` ints >= minimum."""
    items = value if isinstance(value, (tuple, list)) else (value,) * rank
    try:
        if any(isinstance(v, (bool, np.bool_)) for v in items):
            raise TypeError
        result = tuple(operator.index(v) for v in items)
    except TypeError:
        raise shape_error(
            op_name, f"{name} must be an int or a tuple of ints, got {value!r}", x.shape
        ) from None
    if len(result) != rank:
        raise shape_error(
            op_name,
            f"{name} {tuple(value)} has {len(result)} entries but x has {rank} spatial axes",
            x.shape,
        )
    if any(v < minimum for v in result):
        kind = "positive" if minimum > 0 else ">= 0"
        raise shape_error(op_name, f"{name} must be {kind}, got {value!r}", x.shape)
    return result


def _geometry(op_name: str, x: Node, window: Any, stride: Any, padding: Any) -> dict:
    """The attrs window, stride, padding as tuples of ints, checked (padding <= window // 2)."""
    rank = _spatial_rank(op_name, x)
    window = _ints(op_name, x, "window", window, rank, 1)
    stride = window if stride is None else _ints(op_name, x, "stride", stride, rank, 1)
    padding = _ints(op_name, x, "padding", padding, rank, 0)
    for k, (f, p) in enumerate(zip(window, padding)):
        if p > f // 2:
            raise shape_error(
                op_name,
                f"padding {p} on spatial axis {k} must be at most half the window {f} "
                f"(as PyTorch), i.e. <= {f // 2}",
                x.shape,
            )
    return {"window": window, "stride": stride, "padding": padding}


def pooled_size(size: sympy.Expr, window: int, stride: int, padding: int) -> sympy.Expr:
    """floor((W + 2P - F) / S) + 1, the number of window positions on one axis."""
    return sympy.floor((size + 2 * padding - window) / sympy.Integer(stride)) + 1


def _pooled_shape(op_name: str, x: Node, attrs: dict) -> tuple:
    """x's (N, C, *spatial) -> (N, C, *pooled); the window must fit in the padded input."""
    out = list(x.shape[:2])
    for k, (d, f, s, p) in enumerate(
        zip(x.shape[2:], attrs["window"], attrs["stride"], attrs["padding"])
    ):
        if d.is_number and int(d) + 2 * p < f:
            raise shape_error(
                op_name,
                f"window {f} is larger than the padded input {int(d)} + 2*{p} on spatial axis {k}",
                x.shape,
            )
        out.append(pooled_size(d, f, s, p))
    return tuple(out)


def _check_rank(op_name: str, x: Node, attrs: dict) -> None:
    if x.rank != 2 + len(attrs["window"]):
        raise shape_error(
            op_name,
            f"needs rank {2 + len(attrs['window'])} for a window {attrs['window']}",
            x.shape,
        )


# numpy helpers -----------------------------------------------------------------------------


def _lowest(dtype: np.dtype) -> Any:
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min


def _windows(a: np.ndarray, attrs: Any, fill: Any, op_name: str) -> np.ndarray:
    """(N, C, *pooled, F1 * ... * Fs): the windows of `a` padded with `fill`."""
    window, stride, padding = attrs["window"], attrs["stride"], attrs["padding"]
    rank = len(window)
    for k, (d, f, p) in enumerate(zip(a.shape[2:], window, padding)):
        if d + 2 * p < f:
            raise ValueError(
                f"{op_name}: window {f} is larger than the padded input {d} + 2*{p} "
                f"on spatial axis {k} (x of shape {a.shape})"
            )
    if any(padding):
        widths = ((0, 0), (0, 0)) + tuple((p, p) for p in padding)
        a = np.pad(a, widths, mode="constant", constant_values=fill)
    view = sliding_window_view(a, window, axis=tuple(range(2, 2 + rank)))
    view = view[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)]
    return view.reshape(view.shape[: 2 + rank] + (int(np.prod(window)),))


def _argmax(a: np.ndarray, attrs: Any) -> np.ndarray:
    """For each window, the flat spatial index of its first max (NaN counts as the max)."""
    values = _windows(a, attrs, _lowest(a.dtype), "max_pool")
    spatial = a.shape[2:]
    plane = np.arange(int(np.prod(spatial, dtype=np.int64)), dtype=np.int64).reshape(spatial)
    where = _windows(plane[None, None], attrs, -1, "max_pool")  # -1 marks the padding
    top = values.max(axis=-1, keepdims=True)
    hits = (where >= 0) & ((values == top) | (values != values))  # values != values: NaN
    first = np.argmax(hits, axis=-1)[..., None]
    where = np.broadcast_to(where, values.shape)
    return np.take_along_axis(where, first, axis=-1)[..., 0]


def _flat_offsets(indices: np.ndarray, plane: int, op_name: str) -> np.ndarray:
    """indices (N, C, ...) into planes of `plane` elements -> indices into the whole array."""
    if indices.size and (indices.min() < 0 or indices.max() >= plane):
        bad = indices[(indices < 0) | (indices >= plane)].ravel()[:5]
        raise ValueError(
            f"{op_name}: indices must lie in [0, {plane}) (the size of one spatial plane), "
            f"got {bad.tolist()}"
        )
    n, c = indices.shape[:2]
    base = (np.arange(n * c, dtype=np.int64) * plane).reshape((n, c) + (1,) * (indices.ndim - 2))
    return (base + indices).ravel()


# max_pool and its helpers ------------------------------------------------------------------


def _infer_max_pool(inputs: tuple, attrs: dict) -> tuple:
    (x,) = inputs
    _check_rank("max_pool", x, attrs)
    return _pooled_shape("max_pool", x, attrs), x.dtype


@op("max_pool", _infer_max_pool, kind="pool")
def _max_pool_impl(ctx: Any, x: np.ndarray) -> np.ndarray:
    return _windows(x, ctx.attrs, _lowest(x.dtype), "max_pool").max(axis=-1)


def _infer_argmax(inputs: tuple, attrs: dict) -> tuple:
    (x,) = inputs
    _check_rank("pool_argmax", x, attrs)
    return _pooled_shape("pool_argmax", x, attrs), "int64"


@op("pool_argmax", _infer_argmax, kind="pool", doc="flat spatial index of each window's max")
def _pool_argmax_impl(ctx: Any, x: np.ndarray) -> np.ndarray:
    return _argmax(x, ctx.attrs)


def _check_indices(op_name: str, values: Node, indices: Node, what: str) -> None:
    if indices.dtype not in INDEX_DTYPES:
        raise shape_error(
            op_name, f"indices must be int32 or int64, got {indices.dtype}", indices.shape
        )
    same = indices.rank == values.rank and all(
        dims_equal(a, b) for a, b in zip(indices.shape, values.shape)
    )
    if not same:
        raise shape_error(
            op_name, f"indices must have the shape of {what}", values.shape, indices.shape
        )


def _infer_gather(inputs: tuple, attrs: dict) -> tuple:
    x, indices = inputs
    _spatial_rank("pool_gather", x)
    if indices.dtype not in INDEX_DTYPES or indices.rank != x.rank:
        raise shape_error(
            "pool_gather",
            f"indices must be int32 or int64 of x's rank, got {indices.dtype}",
            x.shape,
            indices.shape,
        )
    if not all(dims_equal(a, b) for a, b in zip(x.shape[:2], indices.shape[:2])):
        raise shape_error("pool_gather", "x and indices differ in N or C", x.shape, indices.shape)
    return tuple(x.shape[:2]) + tuple(indices.shape[2:]), x.dtype


@op("pool_gather", _infer_gather, kind="pool", doc="x[n, c].flat[indices[n, c]]")
def _pool_gather_impl(ctx: Any, x: np.ndarray, indices: np.ndarray) -> np.ndarray:
    plane = int(np.prod(x.shape[2:], dtype=np.int64))
    offsets = _flat_offsets(indices, plane, "pool_gather")
    return x.ravel()[offsets].reshape(ctx.shape)


def _infer_scatter(inputs: tuple, attrs: dict) -> tuple:
    g, indices = inputs
    rank = _spatial_rank("pool_scatter", g)
    _check_indices("pool_scatter", g, indices, "the values")
    if len(attrs["shape"]) != rank:
        raise shape_error(
            "pool_scatter", f"output spatial shape {attrs['shape']} must have {rank} axes", g.shape
        )
    return tuple(g.shape[:2]) + tuple(attrs["shape"]), g.dtype


@op("pool_scatter", _infer_scatter, kind="pool", doc="g added at indices of a zero tensor")
def _pool_scatter_impl(ctx: Any, g: np.ndarray, indices: np.ndarray) -> np.ndarray:
    plane = int(np.prod(ctx.shape[2:], dtype=np.int64))
    offsets = _flat_offsets(indices, plane, "pool_scatter")
    out = np.zeros(int(np.prod(ctx.shape, dtype=np.int64)), dtype=ctx.dtype)
    np.add.at(out, offsets, g.ravel())
    return out.reshape(ctx.shape)


def max_pool(
    x: Any, window: Any, stride: Any = None, padding: Any = 0, return_indices: bool = False
) -> Any:
    """The max over each window of x (N, C, *spatial), padded with -inf (PyTorch's max_pool).

    window, stride (default: window) and padding are ints or one int per spatial axis.
    return_indices=True also returns int64 indices: for each output position, the flat
    index of its max in the spatial plane of x[n, c] (the first max of the window on ties).
    """
    (x,) = coerce([x], "max_pool")
    attrs = _geometry("max_pool", x, window, stride, padding)
    out = apply("max_pool", (x,), **attrs)
    if return_indices:
        return out, apply("pool_argmax", (x,), **attrs)
    return out


# avg_pool ----------------------------------------------------------------------------------


def _infer_avg_pool(inputs: tuple, attrs: dict) -> tuple:
    (x,) = inputs
    _check_rank("avg_pool", x, attrs)
    return _pooled_shape("avg_pool", x, attrs), float_of(x.dtype)


@op("avg_pool", _infer_avg_pool, kind="pool")
def _avg_pool_impl(ctx: Any, x: np.ndarray) -> np.ndarray:
    x = x.astype(ctx.dtype, copy=False)
    total = _windows(x, ctx.attrs, 0, "avg_pool").sum(axis=-1)
    return (total / np.prod(ctx.attrs["window"])).astype(ctx.dtype, copy=False)


def _infer_avg_pool_grad(inputs: tuple, attrs: dict) -> tuple:
    (g,) = inputs
    _check_rank("avg_pool_grad", g, attrs)
    shape = tuple(g.shape[:2]) + tuple(attrs["shape"])
    pooled = [
        pooled_size(d, f, s, p)
        for d, f, s, p in zip(attrs["shape"], attrs["window"], attrs["stride"], attrs["padding"])
    ]
    if not all(dims_equal(a, b) for a, b in zip(g.shape[2:], pooled)):
        raise shape_error(
            "avg_pool_grad", "g does not have avg_pool's output shape", g.shape, shape
        )
    return shape, g.dtype


@op("avg_pool_grad", _infer_avg_pool_grad, kind="pool", doc="the adjoint of avg_pool")
def _avg_pool_grad_impl(ctx: Any, g: np.ndarray) -> np.ndarray:
    window, stride, padding = ctx.attrs["window"], ctx.attrs["stride"], ctx.attrs["padding"]
    padded = ctx.shape[:2] + tuple(d + 2 * p for d, p in zip(ctx.shape[2:], padding))
    out = np.zeros(padded, dtype=ctx.dtype)
    share = (g / np.prod(window)).astype(ctx.dtype, copy=False)
    pooled = g.shape[2:]
    for offset in itertools.product(*(range(f) for f in window)):
        # window position o covers padded index o * S + offset on each axis
        index = tuple(slice(k, k + s * (n - 1) + 1, s) for k, s, n in zip(offset, stride, pooled))
        out[(slice(None), slice(None)) + index] += share
    crop = tuple(slice(p, p + d) for p, d in zip(padding, ctx.shape[2:]))
    return out[(slice(None), slice(None)) + crop]


def avg_pool(x: Any, window: Any, stride: Any = None, padding: Any = 0) -> Node:
    """The mean over each window of x (N, C, *spatial); zero padding counts in the divisor
    (PyTorch's count_include_pad=True). Arguments as max_pool."""
    (x,) = coerce([x], "avg_pool")
    return apply("avg_pool", (x,), **_geometry("avg_pool", x, window, stride, padding))


# unpool ------------------------------------------------------------------------------------

UNPOOL_MODES = ("nearest", "zeros")


def _output_shape(x: Node, given: Any, attrs: dict) -> tuple:
    rank = x.rank - 2
    if given is None:
        return tuple(
            (d - 1) * s - 2 * p + f
            for d, f, s, p in zip(x.shape[2:], attrs["window"], attrs["stride"], attrs["padding"])
        )
    try:
        items = tuple(as_dim(d) for d in (given if isinstance(given, (tuple, list)) else [given]))
    except ShapeError as error:
        raise shape_error("unpool", f"bad output_shape {given!r}: {error}", x.shape) from None
    if len(items) == x.rank:  # the whole shape, as torch's output_size may be
        if not all(dims_equal(a, b) for a, b in zip(items[:2], x.shape[:2])):
            raise shape_error("unpool", "output_shape differs from x in N or C", x.shape, items)
        items = items[2:]
    if len(items) != rank:
        raise shape_error(
            "unpool", f"output_shape {tuple(given)} must have {rank} spatial sizes", x.shape
        )
    return items


def unpool(
    x: Any,
    window: Any,
    mode: str = "nearest",
    indices: Any = None,
    output_shape: Any = None,
    stride: Any = None,
    padding: Any = 0,
) -> Node:
    """Undo a pooling of x (N, C, *spatial) with `window`.

    mode "nearest" repeats each value over its window (F.interpolate(scale_factor=window,
    mode="nearest")); "zeros" puts it at the window's first position and zeros elsewhere
    (bed of nails). With `indices` (from max_pool(..., return_indices=True)) it is
    max-unpooling, mode ignored: each value goes to its recorded flat position in an output
    of spatial `output_shape` (default (in - 1) * stride - 2 * padding + window, as
    torch.nn.functional.max_unpool; stride and padding only matter here). Values that
    share a position are added (the adjoint of gathering at the indices).
    """
    (x,) = coerce([x], "unpool")
    if indices is not None:
        (indices,) = coerce([indices], "unpool")
        attrs = _geometry("unpool", x, window, stride, padding)
        _check_indices("unpool", x, indices, "x")
        shape = _output_shape(x, output_shape, attrs)
        return apply("pool_scatter", (x, indices), shape=shape)
    if mode not in UNPOOL_MODES:
        raise ValueError(f"unpool: unknown mode {mode!r}; known: {', '.join(UNPOOL_MODES)}")
    attrs = _geometry("unpool", x, window, stride, padding)
    if attrs["stride"] != attrs["window"] or any(attrs["padding"]):
        raise shape_error(
            "unpool", f"mode {mode!r} takes no stride or padding (only max-unpool does)", x.shape
        )
    if output_shape is not None:
        raise shape_error("unpool", f"mode {mode!r} takes no output_shape", x.shape)
    window = attrs["window"]
    if all(f == 1 for f in window):
        return x
    n, c, spatial = x.shape[0], x.shape[1], x.shape[2:]
    big = (n, c) + tuple(d * f for d, f in zip(spatial, window))
    if mode == "zeros":  # x at every window's first position: the adjoint of x[..., ::F]
        slices = ((None, None, 1),) * 2 + tuple((None, None, f) for f in window)
        return apply("slice_grad", (x,), slices=slices, shape=big)
    # nearest: (N, C, S1, 1, S2, 1) -> broadcast (N, C, S1, F1, S2, F2) -> (N, C, S1 F1, S2 F2)
    split = (n, c) + tuple(itertools.chain.from_iterable((d, 1) for d in spatial))
    spread = (n, c) + tuple(itertools.chain.from_iterable(zip(spatial, window)))
    return shp.reshape(shp.broadcast_to(shp.reshape(x, split), spread), big)


# derivative rules ---------------------------------------------------------------------------


def _geometry_of(node: Node) -> dict:
    return {k: node.attrs[k] for k in ("window", "stride", "padding")}


def _argmax_of(node: Node) -> Node:
    """pool_argmax of a max_pool node's input (interned: shared with return_indices)."""
    return apply("pool_argmax", node.inputs, **_geometry_of(node))


def _spatial(node: Node) -> tuple:
    return tuple(node.shape[2:])


@defvjp("max_pool")
def _max_pool_vjp(node: Node, g: Node) -> list:
    (x,) = node.inputs
    if x.dtype not in FLOAT_DTYPES:
        return [None]
    return [apply("pool_scatter", (g, _argmax_of(node)), shape=_spatial(x))]


@defjvp("max_pool")
def _max_pool_jvp(node: Node, tangents: tuple) -> Node:
    return apply("pool_gather", (tangents[0], _argmax_of(node)))


@defvjp("pool_argmax")
def _pool_argmax_vjp(node: Node, g: Node) -> list:
    return [None]  # piecewise constant


@defjvp("pool_argmax")
def _pool_argmax_jvp(node: Node, tangents: tuple) -> None:
    return None


@defvjp("pool_gather")
def _pool_gather_vjp(node: Node, g: Node) -> list:
    x, indices = node.inputs
    return [apply("pool_scatter", (g, indices), shape=_spatial(x)), None]


@defjvp("pool_gather")
def _pool_gather_jvp(node: Node, tangents: tuple) -> Node | None:
    t = tangents[0]
    return None if t is None else apply("pool_gather", (t, node.inputs[1]))


@defvjp("pool_scatter")
def _pool_scatter_vjp(node: Node, g: Node) -> list:
    return [apply("pool_gather", (g, node.inputs[1])), None]


@defjvp("pool_scatter")
def _pool_scatter_jvp(node: Node, tangents: tuple) -> Node | None:
    t = tangents[0]
    return None if t is None else apply("pool_scatter", (t, node.inputs[1]), **node.attrs)


@defvjp("avg_pool")
def _avg_pool_vjp(node: Node, g: Node) -> list:
    (x,) = node.inputs
    if x.dtype not in FLOAT_DTYPES:
        return [None]
    return [apply("avg_pool_grad", (g,), shape=_spatial(x), **_geometry_of(node))]


@defjvp("avg_pool")
def _avg_pool_jvp(node: Node, tangents: tuple) -> Node:
    return apply("avg_pool", tangents, **node.attrs)


@defvjp("avg_pool_grad")
def _avg_pool_grad_vjp(node: Node, g: Node) -> list:
    return [apply("avg_pool", (g,), **_geometry_of(node))]


@defjvp("avg_pool_grad")
def _avg_pool_grad_jvp(node: Node, tangents: tuple) -> Node:
    return apply("avg_pool_grad", tangents, **node.attrs)


__all__ = ["avg_pool", "max_pool", "pooled_size", "unpool"]
