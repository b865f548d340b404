"""Lowerings of circulant products to FFTs: no n x n matrix, O(n log n) per column.

K = circulant(c) is diagonalised by the DFT: K = F^-1 diag(lam) F with lam = fft(c), so

  K @ y          = irfft(rfft(c) * rfft(y))          along y's row axis (circular convolution)
  K^T @ y        = irfft(conj(rfft(c)) * rfft(y))    (K^T is the circulant of c[-k mod n])
  y @ K          = (K^T y^T)^T                       along y's last axis
  circulant_grad(A @ B)_k = sum_{i-j = k mod n} (A B)_ij
                 = irfft(sum_l rfft(A[:, l]) * conj(rfft(B[l, :])))   (cross-correlation)

The last is the cotangent of c that matmul's vjp makes (A = g, B = y^T); the middle two
are the cotangent of y and the products of a circulant on the right. The result is an
ordinary graph of rfft/irfft ops, differentiable again. Real operands and a concrete n only.
"""

from __future__ import annotations

from collections.abc import Callable

from graphc.node import FLOAT_DTYPES, Node
from graphc.ops import elementwise as ew_ops
from graphc.ops import fft as fft_ops
from graphc.ops import reduce as red
from graphc.ops import shape as shp
from graphc.passes.lower import lowering

_REAL = FLOAT_DTYPES + ("int32", "int64")


def circulant_of(node: Node) -> tuple | None:
    """(c, transposed) when node is circulant(c) or its transpose (any number of times)."""
    transposed = False
    while node.op == "transpose" and node.attrs["axes"] == (1, 0):
        node, transposed = node.inputs[0], not transposed
    if node.op != "circulant":
        return None
    (c,) = node.inputs
    if c.dtype not in FLOAT_DTYPES or not c.shape[0].is_number:
        return None
    return c, transposed


def apply_circulant(c: Node, y: Node, axis: int, transposed: bool) -> Node:
    """circulant(c) (or its transpose) applied along `axis` of y, with FFTs."""
    n = int(c.shape[0])
    lam = fft_ops.rfft(c)  # the eigenvalues: lam_k = fft(c)_k, k <= n//2 (Hermitian)
    if transposed:
        lam = ew_ops.conj(lam)
    lam = shp.reshape(lam, lam.shape + (1,) * (y.rank - axis - 1))
    spectrum = ew_ops.ew("mul", fft_ops.rfft(y, axis=axis), lam)
    return fft_ops.irfft(spectrum, n, axis=axis)


def _matching(node: Node, log: Callable, text: str, n: int, result: Node) -> Node:
    if result.dtype != node.dtype:
        result = ew_ops.cast(result, node.dtype)
    log(f"{node.op} at {node.where}: {text}, n={n} (FFTs, no {n}x{n} matrix)")
    return result


@lowering("matmul")
def lower_circulant_matmul(node: Node, log: Callable) -> Node | None:
    a, b = node.inputs
    if a.dtype not in _REAL or b.dtype not in _REAL:
        return None
    left = circulant_of(a)
    if left is not None:
        c, transposed = left
        axis = 0 if b.rank == 1 else b.rank - 2
        name = "circulant(c)^T" if transposed else "circulant(c)"
        result = apply_circulant(c, b, axis, transposed)
        text = f"{name} @ y as irfft({'conj(lam)' if transposed else 'lam'} * rfft(y))"
        return _matching(node, log, text, int(c.shape[0]), result)
    right = circulant_of(b)
    if right is not None:
        c, transposed = right
        name = "circulant(c)^T" if transposed else "circulant(c)"
        result = apply_circulant(c, a, a.rank - 1, not transposed)
        text = f"y @ {name} as irfft({'lam' if transposed else 'conj(lam)'} * rfft(y))"
        return _matching(node, log, text, int(c.shape[0]), result)
    return None


def _swap(m: Node) -> Node:
    return shp.transpose(m, _swap_axes(m))


def _products(node: Node, sign: int = 1) -> list | None:
    """[(sign, A, B), ...] when node is a signed sum of products A @ B (each maybe summed over
    leading batch axes, or transposed: (A B)^T = B^T A^T) with the node's shape.
    circulant_grad is linear, so it lowers term by term (the jvp of a cotangent A @ B is
    dA @ B + A @ dB; a transposed circulant's cotangent is transposed). None otherwise."""
    if node.op in ("add", "sub") and all(i.shape == node.shape for i in node.inputs):
        left = _products(node.inputs[0], sign)
        right = _products(node.inputs[1], sign if node.op == "add" else -sign)
        return None if left is None or right is None else left + right
    if node.op == "neg":
        return _products(node.inputs[0], -sign)
    if node.op == "sum" and not node.attrs["keepdims"]:
        (inner,) = node.inputs
        if node.attrs["axes"] == tuple(range(inner.rank - 2)):
            return _products(inner, sign)  # every batch axis is summed in the end anyway
        return None
    if node.op == "transpose" and node.rank >= 2 and node.attrs["axes"] == _swap_axes(node):
        terms = _products(node.inputs[0], sign)
        return None if terms is None else [(s, _swap(b), _swap(a)) for s, a, b in terms]
    if node.op != "matmul" or any(i.rank < 2 or i.dtype not in _REAL for i in node.inputs):
        return None
    return [(sign, *node.inputs)]


def _swap_axes(node: Node) -> tuple:
    return tuple(range(node.rank - 2)) + (node.rank - 1, node.rank - 2)


def _cross_spectrum(a: Node, b: Node) -> Node:
    """sum over l (and batch) of rfft(A[:, l]) * conj(rfft(B[l, :])): (n//2+1,) bins."""
    fa = fft_ops.rfft(a, axis=a.rank - 2)  # (..., h, m): the columns of A
    fb = fft_ops.rfft(b, axis=b.rank - 1)  # (..., m, h): the rows of B
    cross = ew_ops.ew("mul", fa, ew_ops.conj(_swap(fb)))  # (..., h, m)
    rank = cross.rank
    return red.sum(cross, tuple(k for k in range(rank) if k != rank - 2))


@lowering("circulant_grad")
def lower_circulant_grad(node: Node, log: Callable) -> Node | None:
    (g,) = node.inputs
    if not node.shape[0].is_number or g.dtype not in FLOAT_DTYPES:
        return None
    terms = _products(g)
    if terms is None:
        return None
    n = int(node.shape[0])
    spectrum = None
    for sign, a, b in terms:
        term = _cross_spectrum(a, b)
        if spectrum is None:
            spectrum = term if sign > 0 else ew_ops.ew("neg", term)
        else:
            spectrum = ew_ops.ew("add" if sign > 0 else "sub", spectrum, term)
    result = fft_ops.irfft(spectrum, n)
    text = "circulant_grad(A @ B) as the cross-correlation irfft(sum rfft(A) conj(rfft(B)))"
    if len(terms) > 1:
        text += f" ({len(terms)} products)"
    return _matching(node, log, text, n, result)
