"""Discrete Fourier transforms along one axis: rfft, irfft, fft, ifft (and rfftn/irfftn).

numpy's conventions (np.fft, norm="backward"): rfft(x)_k = sum_j x_j exp(-2 pi i jk/n)
for k = 0..n//2, irfft is its inverse on Hermitian spectra (1/n), fft/ifft the complex
pair. The length of the transformed axis must be a concrete number; the other axes may
be symbolic. The ops are canonical: `rfft` transforms its whole axis and `irfft` takes
exactly n//2+1 bins; the builders below crop or zero-pad (slice, pad) to numpy's `n=`.

Derivatives use JAX's convention for complex values: the cotangent of z = x + iy is
dL/dx - i dL/dy, so C-linear maps transpose without conjugation (fft's vjp is fft: the
DFT matrix is symmetric). rfft (real -> complex) gets Re(F^T g) = real(fft(g zero-padded
to n)); irfft gets (c_k / n) conj(rfft(g))_k with c_k = 1 for the DC and Nyquist bins (their
imaginary parts are ignored) and 2 for the others (each stands for itself and its mirror).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

from graphc.node import COMPLEX_DTYPES, FLOAT_DTYPES, Node
from graphc.ops import elementwise as ew_ops
from graphc.ops import shape as shp
from graphc.ops.registry import (
    accepts_complex,
    apply,
    complex_of,
    defjvp,
    defvjp,
    float_of,
    op,
    real_of,
)
from graphc.ops.sources import coerce, constant
from graphc.shapes import normalize_axis, shape_error

# shape rules --------------------------------------------------------------------------------


def _length(name: str, a: Node, axis: int) -> int:
    """The concrete length of a's axis, or a ShapeError."""
    if not 0 <= axis < a.rank:
        raise shape_error(name, f"axis {axis} is out of range for rank {a.rank}", a.shape)
    d = a.shape[axis]
    if not d.is_number:
        raise shape_error(name, f"the transformed axis {axis} must have a concrete size", a.shape)
    return int(d)


def _with(shape: tuple, axis: int, d: Any) -> tuple:
    return shape[:axis] + (sympy.Integer(d),) + shape[axis + 1 :]


def _infer_rfft(inputs: tuple, attrs: dict) -> tuple:
    (x,) = inputs
    if x.dtype not in FLOAT_DTYPES:
        raise shape_error("rfft", f"needs a real float operand, got {x.dtype}", x.shape)
    n = _length("rfft", x, attrs["axis"])
    if n < 1:
        raise shape_error("rfft", "the transformed axis is empty", x.shape)
    return _with(x.shape, attrs["axis"], n // 2 + 1), complex_of(x.dtype)


def _infer_irfft(inputs: tuple, attrs: dict) -> tuple:
    (X,) = inputs
    axis, n = attrs["axis"], attrs["n"]
    if X.dtype not in COMPLEX_DTYPES:
        raise shape_error("irfft", f"needs a complex operand, got {X.dtype}", X.shape)
    m = _length("irfft", X, axis)
    if not isinstance(n, int) or n < 1 or m != n // 2 + 1:
        raise shape_error("irfft", f"n={n!r} needs {n}//2+1 bins on axis {axis}", X.shape)
    return _with(X.shape, axis, n), real_of(X.dtype)


def _infer_fft(name: str):  # noqa: ANN202
    def infer(inputs: tuple, attrs: dict) -> tuple:
        (z,) = inputs
        if z.dtype not in COMPLEX_DTYPES:
            raise shape_error(name, f"needs a complex operand, got {z.dtype}", z.shape)
        if _length(name, z, attrs["axis"]) < 1:
            raise shape_error(name, "the transformed axis is empty", z.shape)
        return z.shape, z.dtype

    return infer


@op("rfft", _infer_rfft, kind="fft", doc="real-to-complex DFT along one axis (numpy's rfft)")
def _rfft_impl(ctx: Any, x: np.ndarray) -> np.ndarray:
    return np.fft.rfft(x, axis=ctx.attrs["axis"]).astype(ctx.dtype, copy=False)


@op("irfft", _infer_irfft, kind="fft", doc="inverse of rfft: n//2+1 bins to n reals")
def _irfft_impl(ctx: Any, X: np.ndarray) -> np.ndarray:
    out = np.fft.irfft(X, n=ctx.attrs["n"], axis=ctx.attrs["axis"])
    return out.astype(ctx.dtype, copy=False)


@op("fft", _infer_fft("fft"), kind="fft", doc="complex DFT along one axis")
def _fft_impl(ctx: Any, z: np.ndarray) -> np.ndarray:
    return np.fft.fft(z, axis=ctx.attrs["axis"]).astype(ctx.dtype, copy=False)


@op("ifft", _infer_fft("ifft"), kind="fft", doc="inverse complex DFT along one axis (1/n)")
def _ifft_impl(ctx: Any, z: np.ndarray) -> np.ndarray:
    return np.fft.ifft(z, axis=ctx.attrs["axis"]).astype(ctx.dtype, copy=False)


accepts_complex("irfft", "fft", "ifft")


# builders (numpy's signatures) ----------------------------------------------------------------


def _fit(a: Node, axis: int, size: int) -> Node:
    """a cropped or zero-padded at the end of `axis` to `size` (numpy's n=)."""
    have = int(a.shape[axis])
    if size < have:
        return shp.slice_axis(a, axis, 0, size)
    if size > have:
        widths = [(0, 0)] * a.rank
        widths[axis] = (0, size - have)
        return shp.pad(a, widths)
    return a


def _axis_and_n(name: str, a: Node, n: Any, axis: int) -> tuple:
    axis = normalize_axis(name, axis, a.rank)
    _length(name, a, axis)
    if n is not None and (not isinstance(n, (int, np.integer)) or n < 1):
        raise shape_error(name, f"n must be a positive int, got {n!r}", a.shape)
    return axis, None if n is None else int(n)


def _real_operand(name: str, x: Any) -> Node:
    (node,) = coerce([x], name)
    if node.dtype in COMPLEX_DTYPES:
        raise shape_error(name, f"needs a real operand, got {node.dtype} (use fft)", node.shape)
    return node if node.dtype in FLOAT_DTYPES else ew_ops.cast(node, float_of(node.dtype))


def rfft(x: Any, n: int | None = None, axis: int = -1) -> Node:
    """np.fft.rfft: the n//2+1 non-negative frequencies of a real signal along `axis`,
    cropped or zero-padded to length n first when n is given."""
    x = _real_operand("rfft", x)
    axis, n = _axis_and_n("rfft", x, n, axis)
    if n is not None:
        x = _fit(x, axis, n)
    return apply("rfft", (x,), axis=axis)


def irfft(X: Any, n: int | None = None, axis: int = -1) -> Node:
    """np.fft.irfft: n real samples (default 2*(m-1)) from m Hermitian bins along `axis`;
    the bins are cropped or zero-padded to n//2+1 first."""
    (X,) = coerce([X], "irfft")
    X = ew_ops.to_complex(X)
    axis, n = _axis_and_n("irfft", X, n, axis)
    if n is None:
        n = 2 * (int(X.shape[axis]) - 1)
        if n < 1:
            raise shape_error("irfft", "one bin needs an explicit n", X.shape)
    return apply("irfft", (_fit(X, axis, n // 2 + 1),), axis=axis, n=n)


def fft(z: Any, n: int | None = None, axis: int = -1) -> Node:
    """np.fft.fft along `axis` (a real operand is made complex)."""
    (z,) = coerce([z], "fft")
    z = ew_ops.to_complex(z)
    axis, n = _axis_and_n("fft", z, n, axis)
    return apply("fft", (z if n is None else _fit(z, axis, n),), axis=axis)


def ifft(z: Any, n: int | None = None, axis: int = -1) -> Node:
    """np.fft.ifft along `axis` (a real operand is made complex)."""
    (z,) = coerce([z], "ifft")
    z = ew_ops.to_complex(z)
    axis, n = _axis_and_n("ifft", z, n, axis)
    return apply("ifft", (z if n is None else _fit(z, axis, n),), axis=axis)


def _axes_and_sizes(name: str, a: Node, s: Sequence[int] | None, axes: Any) -> tuple:
    """numpy's defaults: axes = the last len(s) axes (all axes without s); s = their sizes."""
    if axes is None:
        axes = range(a.rank) if s is None else range(a.rank - len(s), a.rank)
    elif isinstance(axes, (int, np.integer)):
        axes = (axes,)
    axes = tuple(normalize_axis(name, k, a.rank) for k in axes)
    if not axes or len(set(axes)) != len(axes):
        raise shape_error(name, f"axes {axes} must be distinct and not empty", a.shape)
    if s is not None and len(s) != len(axes):
        raise shape_error(name, f"s={tuple(s)} and axes={axes} differ in length", a.shape)
    return axes, (None,) * len(axes) if s is None else tuple(s)


def rfftn(x: Any, s: Sequence[int] | None = None, axes: Any = None) -> Node:
    """np.fft.rfftn: rfft over the last of `axes`, then fft over the others."""
    x = _real_operand("rfftn", x)
    axes, sizes = _axes_and_sizes("rfftn", x, s, axes)
    out = rfft(x, sizes[-1], axes[-1])
    for axis, n in zip(axes[:-1], sizes[:-1]):
        out = fft(out, n, axis)
    return out


def irfftn(X: Any, s: Sequence[int] | None = None, axes: Any = None) -> Node:
    """np.fft.irfftn: ifft over all of `axes` but the last, then irfft over the last
    (its output length s[-1], default 2*(m-1))."""
    (X,) = coerce([X], "irfftn")
    axes, sizes = _axes_and_sizes("irfftn", X, s, axes)
    out = X
    for axis, n in zip(axes[:-1], sizes[:-1]):
        out = ifft(out, n, axis)
    return irfft(out, sizes[-1], axes[-1])


# derivative rules ------------------------------------------------------------------------------


def _bin_weights(n: int, rank: int, axis: int, dtype: str) -> Node:
    """c_k / n along `axis` (c = 1 for DC and, n even, Nyquist; 2 otherwise), broadcastable."""
    w = np.full(n // 2 + 1, 2.0 / n)
    w[0] = 1.0 / n
    if n % 2 == 0:
        w[-1] = 1.0 / n
    return constant(w.reshape((-1,) + (1,) * (rank - axis - 1)).astype(dtype))


@defvjp("rfft")
def _rfft_vjp(node: Node, g: Node) -> list:
    # X = F x with x real: x's cotangent is Re(F^T g) = Re(fft(g zero-padded to n))
    axis = node.attrs["axis"]
    n = int(node.inputs[0].shape[axis])
    return [ew_ops.real(fft(_fit(g, axis, n), axis=axis))]


@defjvp("rfft")
def _rfft_jvp(node: Node, tangents: tuple) -> Node:
    return apply("rfft", tangents, **node.attrs)


@defvjp("irfft")
def _irfft_vjp(node: Node, g: Node) -> list:
    # x_j = (1/n) sum_k c_k Re(X_k e^{2 pi i jk/n}): X_k's cotangent is (c_k/n) conj(rfft(g))_k
    axis, n = node.attrs["axis"], node.attrs["n"]
    weights = _bin_weights(n, node.rank, axis, real_of(node.dtype))
    return [ew_ops.ew("mul", ew_ops.conj(apply("rfft", (g,), axis=axis)), weights)]


@defjvp("irfft")
def _irfft_jvp(node: Node, tangents: tuple) -> Node:
    return apply("irfft", (ew_ops.to_complex(tangents[0]),), **node.attrs)


@defvjp("fft", "ifft")
def _fft_vjp(node: Node, g: Node) -> list:
    # C-linear with a symmetric matrix: the cotangent is the same transform of g
    return [apply(node.op, (ew_ops.to_complex(g),), **node.attrs)]


@defjvp("fft", "ifft")
def _fft_jvp(node: Node, tangents: tuple) -> Node:
    return apply(node.op, (ew_ops.to_complex(tangents[0]),), **node.attrs)
