"""Ops that move data without arithmetic: reshape, transpose, broadcast_to, concat, pad, slice."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from graphc.node import Node
from graphc.ops.registry import accepts_complex, apply, op, promote
from graphc.ops.sources import coerce
from graphc.shapes import (
    ShapeError,
    as_shape,
    broadcast_shapes,
    dims_equal,
    normalize_axis,
    numel,
    shape_error,
)

# reshape -----------------------------------------------------------------------------------


def _infer_reshape(inputs: tuple, attrs: dict) -> tuple:
    (a,) = inputs
    target = attrs["shape"]
    if not dims_equal(numel(a.shape), numel(target)):
        raise shape_error("reshape", "cannot reshape: sizes differ", a.shape, target)
    return target, a.dtype


@op("reshape", _infer_reshape, kind="shape")
def _reshape_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    return a.reshape(ctx.shape)


def _target_shape(op_name: str, a: Node, shape: Any) -> tuple:
    """as_shape(shape), with a bad entry reported as op_name's error at the user's line."""
    try:
        return as_shape(shape)
    except ShapeError as error:
        raise shape_error(op_name, f"bad target shape {shape!r}: {error}", a.shape) from None


def reshape(a: Node, shape: Sequence[Any]) -> Node:
    """numpy's reshape (row-major); one entry may be -1; sizes may be symbolic."""
    dims = list(shape) if isinstance(shape, (tuple, list)) else [shape]
    dims = [int(d) if isinstance(d, np.integer) else d for d in dims]
    unknown = [k for k, d in enumerate(dims) if isinstance(d, int) and d == -1]
    if len(unknown) > 1:
        raise shape_error("reshape", f"only one -1 allowed in {tuple(dims)}", a.shape)
    others = _target_shape("reshape", a, [1 if k in unknown else d for k, d in enumerate(dims)])
    if unknown:
        known = numel(others)
        rest = sympy.simplify(numel(a.shape) / known) if known != 0 else sympy.Integer(0)
        if not (rest.is_integer or (rest.is_number and float(rest).is_integer())):
            if rest.is_number or rest.is_integer is False:
                raise shape_error("reshape", f"cannot infer -1 in {tuple(dims)}", a.shape)
        dims[unknown[0]] = rest
    target = as_shape(dims)
    if target == a.shape:
        return a
    return apply("reshape", (a,), shape=target)


# transpose ---------------------------------------------------------------------------------


def _infer_transpose(inputs: tuple, attrs: dict) -> tuple:
    (a,) = inputs
    return tuple(a.shape[k] for k in attrs["axes"]), a.dtype


@op("transpose", _infer_transpose, kind="shape")
def _transpose_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    return np.transpose(a, ctx.attrs["axes"])


def transpose(a: Node, axes: Sequence[int] | None = None) -> Node:
    """np.transpose: axes=None reverses the axes."""
    rank = a.rank
    if axes is None:
        axes = tuple(reversed(range(rank)))
    axes = tuple(normalize_axis("transpose", k, rank) for k in axes)
    if sorted(axes) != list(range(rank)):
        raise shape_error("transpose", f"axes {axes} are not a permutation of rank {rank}", a.shape)
    if axes == tuple(range(rank)):
        return a
    return apply("transpose", (a,), axes=axes)


# broadcast_to ------------------------------------------------------------------------------


def _infer_broadcast(inputs: tuple, attrs: dict) -> tuple:
    (a,) = inputs
    target = attrs["shape"]
    if len(target) < a.rank:
        raise shape_error("broadcast_to", "target has lower rank", a.shape, target)
    result = broadcast_shapes("broadcast_to", a.shape, target)
    if any(not dims_equal(r, t) for r, t in zip(result, target)):
        raise shape_error("broadcast_to", "cannot broadcast", a.shape, target)
    return target, a.dtype


@op("broadcast_to", _infer_broadcast, kind="shape")
def _broadcast_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    return np.broadcast_to(a, ctx.shape)


def broadcast_to(a: Node, shape: Sequence[Any]) -> Node:
    """np.broadcast_to: a's dims aligned from the right, size-1 dims stretched."""
    target = _target_shape("broadcast_to", a, shape)
    if target == a.shape:
        return a
    return apply("broadcast_to", (a,), shape=target)


# concat ------------------------------------------------------------------------------------


def _infer_concat(inputs: tuple, attrs: dict) -> tuple:
    axis = attrs["axis"]
    first = inputs[0]
    total = sympy.Integer(0)
    for other in inputs:
        if other.rank != first.rank:
            raise shape_error("concat", "operands differ in rank", first.shape, other.shape)
        for k, (d, e) in enumerate(zip(first.shape, other.shape)):
            if k != axis and not dims_equal(d, e):
                raise shape_error(
                    "concat",
                    f"sizes differ on axis {k} (concat axis {axis})",
                    first.shape,
                    other.shape,
                )
        total = total + other.shape[axis]
    shape = first.shape[:axis] + (total,) + first.shape[axis + 1 :]
    return shape, promote(*(i.dtype for i in inputs))


@op("concat", _infer_concat, kind="shape")
def _concat_impl(ctx: Any, *arrays: np.ndarray) -> np.ndarray:
    return np.concatenate([a.astype(ctx.dtype, copy=False) for a in arrays], axis=ctx.attrs["axis"])


def concat(tensors: Sequence[Any], axis: int = 0) -> Node:
    nodes = coerce(list(tensors), "concat")
    if not nodes:
        raise shape_error("concat", "needs at least one operand")
    axis = normalize_axis("concat", axis, nodes[0].rank)
    if len(nodes) == 1:
        return nodes[0]
    return apply("concat", tuple(nodes), axis=axis)


# pad ---------------------------------------------------------------------------------------

PAD_MODES = {"constant": "constant", "reflect": "reflect", "circular": "wrap", "edge": "edge"}


def _infer_pad(inputs: tuple, attrs: dict) -> tuple:
    (a,) = inputs
    widths = attrs["widths"]
    mode = attrs["mode"]
    shape = []
    for k, ((before, after), d) in enumerate(zip(widths, a.shape)):
        if d.is_number and (before or after):
            limit = int(d) - 1 if mode == "reflect" else int(d)
            if mode != "constant" and max(before, after) > limit:
                raise shape_error(
                    "pad",
                    f"{mode} padding ({before}, {after}) on axis {k} needs at most {limit} "
                    f"(the axis has size {d})",
                    a.shape,
                )
        shape.append(d + before + after)
    return tuple(shape), a.dtype


@op("pad", _infer_pad, kind="shape")
def _pad_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    mode = PAD_MODES[ctx.attrs["mode"]]
    widths = ctx.attrs["widths"]
    if mode == "constant":
        return np.pad(a, widths, mode="constant", constant_values=ctx.attrs["value"])
    return np.pad(a, widths, mode=mode)


def pad(a: Node, pad_width: Any, mode: str = "constant", value: float = 0.0) -> Node:
    """np.pad: pad_width is an int, a (before, after) pair, or one pair per axis.

    mode: "constant" (with `value`), "reflect" (mirror without repeating the edge),
    "circular" (periodic, numpy's "wrap"), "edge" (repeat the border).
    """
    if mode not in PAD_MODES:
        raise ValueError(f"pad: unknown mode {mode!r}; known: {', '.join(PAD_MODES)}")
    try:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=object), (a.rank, 2))
        pairs = tuple((operator.index(b), operator.index(e)) for b, e in widths)
    except (TypeError, ValueError):
        raise shape_error(
            "pad",
            f"pad_width must be an int, a (before, after) pair or one pair per axis "
            f"({a.rank} axes), got {pad_width!r}",
            a.shape,
        ) from None
    if any(b < 0 or e < 0 for b, e in pairs):
        raise shape_error("pad", f"pad_width must be >= 0, got {pad_width!r}", a.shape)
    if all(b == 0 and e == 0 for b, e in pairs):
        return a
    return apply("pad", (a,), widths=pairs, mode=mode, value=float(value))


# slice -------------------------------------------------------------------------------------


def _slice_length(start: Any, stop: Any, step: int, n: sympy.Expr) -> sympy.Expr:
    """Length of range(n)[start:stop:step], also for symbolic n or bounds (python's clamping,
    exactly: x[:5] on an axis of size N has length Min(5, N)). Symbolic bounds (the pieces a
    concat's gradient cuts out) are offsets from the start, never negative."""
    bounds = (start, stop)
    if n.is_number and all(b is None or isinstance(b, int) for b in bounds):
        return sympy.Integer(len(range(int(n))[slice(start, stop, step)]))

    def bound(v: Any, default: Any, lo: Any, hi: Any) -> sympy.Expr:
        if v is None:
            return sympy.sympify(default)
        v = sympy.sympify(v)
        return sympy.Min(sympy.Max(v if not v.is_negative else n + v, lo), hi)

    if step > 0:
        lo, hi = bound(start, 0, 0, n), bound(stop, n, 0, n)
        return sympy.Max(0, sympy.ceiling((hi - lo) / step))
    lo, hi = bound(start, n - 1, -1, n - 1), bound(stop, -1, -1, n - 1)
    return sympy.Max(0, sympy.ceiling((lo - hi) / -step))


def _concrete_slices(ctx: Any) -> tuple:
    """The slices of ctx's node with symbolic bounds evaluated for this call."""
    result = []
    for start, stop, step in ctx.attrs["slices"]:
        bounds = []
        for b in (start, stop):
            if isinstance(b, sympy.Basic):
                b = ctx.bindings.evaluate(b) if not b.is_number else int(b)
            bounds.append(b)
        result.append(slice(bounds[0], bounds[1], step))
    return tuple(result)


def _infer_slice(inputs: tuple, attrs: dict) -> tuple:
    (a,) = inputs
    points = attrs.get("index_axes", ())
    shape = []
    for axis, ((start, stop, step), d) in enumerate(zip(attrs["slices"], a.shape)):
        # an integer index selects exactly one element (or fails at run time)
        shape.append(sympy.Integer(1) if axis in points else _slice_length(start, stop, step, d))
    return tuple(shape), a.dtype


@op("slice", _infer_slice, kind="shape")
def _slice_impl(ctx: Any, a: np.ndarray) -> np.ndarray:
    slices = ctx.attrs["slices"]
    for axis in ctx.attrs.get("index_axes", ()):
        k, n = slices[axis][0], a.shape[axis]
        if not -n <= k < n:
            raise IndexError(f"slice: index {k} is out of range for axis {axis} of size {n}")
    return a[_concrete_slices(ctx)]


def getitem(a: Node, index: Any) -> Node:
    """Basic indexing: ints, slices with constant bounds, None (new axis) and Ellipsis."""
    items = index if isinstance(index, tuple) else (index,)
    if sum(1 for i in items if i is Ellipsis) > 1:
        raise shape_error("getitem", "only one Ellipsis allowed", a.shape)
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if used > a.rank:
        raise shape_error("getitem", f"too many indices ({used}) for rank {a.rank}", a.shape)
    expanded: list = []
    for i in items:
        if i is Ellipsis:
            expanded.extend([slice(None)] * (a.rank - used))
        else:
            expanded.append(i)
    if not any(i is Ellipsis for i in items):
        expanded.extend([slice(None)] * (a.rank - used))
    axis = 0
    slices = []
    index_axes: list = []  # axes indexed by an int (dropped from the result)
    out_dims: list = []  # ("keep", axis) | ("drop",) | ("new",)
    for i in expanded:
        if i is None:
            out_dims.append(("new",))
            continue
        if axis >= a.rank:
            break
        d = a.shape[axis]
        if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            k = int(i)
            if d.is_number:
                if not -int(d) <= k < int(d):
                    raise shape_error("getitem", f"index {k} out of range on axis {axis}", a.shape)
                k = k % int(d)
            slices.append((k, k + 1 if k != -1 else None, 1))
            index_axes.append(len(slices) - 1)
            out_dims.append(("drop",))
        elif isinstance(i, slice):
            parts = (i.start, i.stop, 1 if i.step is None else i.step)
            for p in parts:
                if p is not None and not isinstance(p, (int, np.integer)):
                    raise shape_error("getitem", f"slice bounds must be ints, got {i}", a.shape)
            if parts[2] == 0:
                raise shape_error("getitem", "slice step cannot be zero", a.shape)
            slices.append(tuple(None if p is None else int(p) for p in parts))
            out_dims.append(("keep",))
        else:
            raise shape_error("getitem", f"unsupported index {i!r} (basic slicing only)", a.shape)
        axis += 1
    result = a
    if any(s != (None, None, 1) for s in slices):
        result = apply("slice", (a,), slices=tuple(slices), index_axes=tuple(index_axes))
    if any(kind[0] != "keep" for kind in out_dims):
        shape = []
        axis = 0
        for kind in out_dims:
            if kind[0] == "new":
                shape.append(1)
            elif kind[0] == "keep":
                shape.append(result.shape[axis])
                axis += 1
            else:
                axis += 1
        shape.extend(result.shape[axis:])
        result = reshape(result, shape)
    return result


def slice_axis(a: Node, axis: int, start: Any, stop: Any) -> Node:
    """a[..., start:stop, ...] on one axis; start and stop may be symbolic offsets."""
    slices = [(None, None, 1)] * a.rank
    slices[axis] = (start, stop, 1)
    return apply("slice", (a,), slices=tuple(slices), index_axes=())


accepts_complex("reshape", "transpose", "broadcast_to", "concat", "pad", "slice")


# adjoints of slice and pad: scatter-add back into the input's shape ------------------------


def _infer_slice_grad(inputs: tuple, attrs: dict) -> tuple:
    return attrs["shape"], inputs[0].dtype


@op("slice_grad", _infer_slice_grad, kind="shape", doc="the adjoint of slice")
def _slice_grad_impl(ctx: Any, g: np.ndarray) -> np.ndarray:
    out = np.zeros(ctx.shape, dtype=ctx.dtype)
    out[_concrete_slices(ctx)] = g
    return out


def _pad_sources(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each position of an axis padded by (before, after), the input index it copies."""
    return np.pad(np.arange(n), (before, after), mode=PAD_MODES[mode])


def _infer_pad_grad(inputs: tuple, attrs: dict) -> tuple:
    (g,) = inputs
    shape = tuple(d - b - e for d, (b, e) in zip(g.shape, attrs["widths"]))
    return shape, g.dtype


@op("pad_grad", _infer_pad_grad, kind="shape", doc="the adjoint of reflect/circular/edge pad")
def _pad_grad_impl(ctx: Any, g: np.ndarray) -> np.ndarray:
    out = g
    for axis, ((before, after), n) in enumerate(zip(ctx.attrs["widths"], ctx.shape)):
        if before == 0 and after == 0:
            continue
        sources = _pad_sources(n, before, after, ctx.attrs["mode"])
        shape = list(out.shape)
        shape[axis] = n
        folded = np.zeros(shape, dtype=ctx.dtype)
        index = (slice(None),) * axis + (sources,)
        np.add.at(folded, index, out)  # every padded copy adds to the element it copied
        out = folded
    return out


accepts_complex("slice_grad", "pad_grad")


# derivative rules ---------------------------------------------------------------------------

from graphc.ops import adjoint  # noqa: E402 - adjoint imports this module
from graphc.ops.registry import defjvp, defvjp  # noqa: E402


@defvjp("reshape")
def _reshape_vjp(node: Node, g: Node) -> list:
    return [reshape(g, node.inputs[0].shape)]


@defjvp("reshape")
def _reshape_jvp(node: Node, tangents: tuple) -> Node:
    return reshape(tangents[0], node.shape)


@defvjp("transpose")
def _transpose_vjp(node: Node, g: Node) -> list:
    axes = node.attrs["axes"]
    inverse = tuple(sorted(range(len(axes)), key=lambda k: axes[k]))
    return [transpose(g, inverse)]


@defjvp("transpose")
def _transpose_jvp(node: Node, tangents: tuple) -> Node:
    return transpose(tangents[0], node.attrs["axes"])


@defvjp("broadcast_to")
def _broadcast_vjp(node: Node, g: Node) -> list:
    # sum over the axes broadcasting added or stretched
    return [adjoint.unbroadcast(g, node.inputs[0].shape)]


@defjvp("broadcast_to")
def _broadcast_jvp(node: Node, tangents: tuple) -> Node:
    return broadcast_to(tangents[0], node.shape)


@defvjp("concat")
def _concat_vjp(node: Node, g: Node) -> list:
    axis = node.attrs["axis"]
    out = []
    offset = sympy.Integer(0)
    for a in node.inputs:
        piece = slice_axis(g, axis, offset, offset + a.shape[axis])
        out.append(reshape(piece, a.shape))  # the same shape, written as the input's
        offset = offset + a.shape[axis]
    return out


@defjvp("concat")
def _concat_jvp(node: Node, tangents: tuple) -> Node:
    pieces = []
    for a, t in zip(node.inputs, tangents):
        pieces.append(adjoint.zeros(a.shape, node.dtype) if t is None else t)
    return concat(pieces, node.attrs["axis"])


@defvjp("pad")
def _pad_vjp(node: Node, g: Node) -> list:
    widths = node.attrs["widths"]
    if node.attrs["mode"] == "constant":  # the border is a constant: cut it off
        slices = tuple((b, -e if e else None, 1) for b, e in widths)
        return [apply("slice", (g,), slices=slices, index_axes=())]
    return [apply("pad_grad", (g,), widths=widths, mode=node.attrs["mode"])]


@defjvp("pad")
def _pad_jvp(node: Node, tangents: tuple) -> Node:
    # a constant border has zero tangent; the other modes copy tangents as they copy values
    return pad(tangents[0], node.attrs["widths"], node.attrs["mode"], 0.0)


@defvjp("pad_grad")
def _pad_grad_vjp(node: Node, g: Node) -> list:
    return [pad(g, node.attrs["widths"], node.attrs["mode"])]


@defjvp("pad_grad")
def _pad_grad_jvp(node: Node, tangents: tuple) -> Node:
    return apply("pad_grad", (tangents[0],), **node.attrs)


@defvjp("slice")
def _slice_vjp(node: Node, g: Node) -> list:
    (a,) = node.inputs
    attrs = node.attrs
    return [apply("slice_grad", (g,), slices=attrs["slices"], shape=a.shape)]


@defjvp("slice")
def _slice_jvp(node: Node, tangents: tuple) -> Node:
    return apply("slice", (tangents[0],), **node.attrs)


@defvjp("slice_grad")
def _slice_grad_vjp(node: Node, g: Node) -> list:
    return [apply("slice", (g,), slices=node.attrs["slices"], index_axes=())]


@defjvp("slice_grad")
def _slice_grad_jvp(node: Node, tangents: tuple) -> Node:
    return apply("slice_grad", (tangents[0],), **node.attrs)
