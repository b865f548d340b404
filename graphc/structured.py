"""Structured parametric operators K(theta) = mat(Q theta), as differentiable Tensors.

Each function returns an ordinary Tensor built from graph ops, so K can be multiplied,
differentiated (gc.grad, gc.jvp, gc.vjp, to any order) and compiled. The Jacobian of
theta -> K is the constant Q: J v = mat(Q v) and J^T w = Q^T vec(w).

    diagonal(theta)            K = diag(theta), n = len(theta)
    antisymmetric(theta, n)    theta: the n(n-1)/2 entries of the strict upper triangle
                               (row-major, np.triu_indices(n, 1)); K = A - A^T
    m_matrix(theta, n)         a rate matrix: see its docstring (theta -> softplus(theta))
    toeplitz(c, r=None)        first column c, first row r (r[0] ignored), scipy's
    circulant(c)               first column c, K_ij = c[(i - j) mod n], scipy's
    from_q(Q, theta, shape)    reshape(Q @ theta, shape) for a constant array Q

The selection structures (a 0/1 matrix Q with at most one 1 per row) are one `take`
(a gather with a constant index) from a short vector of parameters, never a dense Q.
`circulant(c)` is its own op: compile() lowers `circulant(c) @ y` (and the transposed
products its derivatives make) to FFTs, without the n x n matrix
(graphc/passes/circulant.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.node import Node
from graphc.ops import elementwise as ew_ops
from graphc.ops import reduce as red
from graphc.ops import shape as shp
from graphc.ops import structured as st
from graphc.ops.linalg import matmul
from graphc.ops.registry import float_of
from graphc.ops.sources import coerce, constant
from graphc.shapes import as_shape, numel, shape_error, shape_str
from graphc.tensor import lift

__all__ = [
    "antisymmetric",
    "circulant",
    "diagonal",
    "from_q",
    "m_matrix",
    "take",
    "toeplitz",
]


def _vector(name: str, value: Any) -> Node:
    (node,) = coerce([value], name)
    if node.rank != 1 or not node.shape[0].is_number:
        raise shape_error(name, "needs a 1-D tensor of concrete length", node.shape)
    return node


def _size(name: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise shape_error(name, f"n must be a positive int, got {n!r}")
    return int(n)


def _expect_length(name: str, theta: Node, expected: int, what: str) -> None:
    if int(theta.shape[0]) != expected:
        raise shape_error(
            name, f"theta must have {what} = {expected} entries, got {theta.shape[0]}", theta.shape
        )


def _zero(like: Node) -> Node:
    return constant(np.zeros(1, dtype=like.dtype))


def _diagonal(theta: Any) -> Node:
    """K = diag(theta): an (n, n) Tensor with theta on the diagonal, n = len(theta)."""
    theta = _vector("diagonal", theta)
    n = int(theta.shape[0])
    index = np.zeros((n, n), dtype=np.int64)  # entry 0 of [0, theta...] is the zero
    index[np.arange(n), np.arange(n)] = 1 + np.arange(n)
    return st.take(shp.concat([_zero(theta), theta]), index)


def _antisymmetric(theta: Any, n: int) -> Node:
    """K = A - A^T, A holding theta in its strict upper triangle.

    theta has n(n-1)/2 entries, the strict upper triangle in row-major order
    (np.triu_indices(n, 1)): K[i, j] = theta_k and K[j, i] = -theta_k for i < j. K is
    skew-symmetric, so its eigenvalues have zero real part (exp(tK) is orthogonal).
    """
    theta = _vector("antisymmetric", theta)
    n = _size("antisymmetric", n)
    m = n * (n - 1) // 2
    _expect_length("antisymmetric", theta, m, "n(n-1)/2")
    rows, cols = np.triu_indices(n, 1)
    index = np.zeros((n, n), dtype=np.int64)  # gathers from [0, theta, -theta]
    index[rows, cols] = 1 + np.arange(m)
    index[cols, rows] = 1 + m + np.arange(m)
    return st.take(shp.concat([_zero(theta), theta, ew_ops.ew("neg", theta)]), index)


def _m_matrix(theta: Any, n: int) -> Node:
    """A rate (M-) matrix: non-positive off-diagonals, rows summing to zero.

    theta has n(n-1) entries, one per off-diagonal entry, in row-major order (row i lists the
    columns j != i in order). They are reparameterised by softplus to non-negative rates:
    K[i, j] = -softplus(theta_k) <= 0 for i != j, and K[i, i] = sum over j != i of
    softplus(theta_k) (minus the sum of the row's off-diagonals), so every row sums to 0,
    like a discretised differential operator (a graph Laplacian, the negated generator of a
    Markov chain). K is a smooth function of unconstrained theta. It is mat(Q softplus(theta)),
    linear in the rates, not in theta.
    """
    theta = _vector("m_matrix", theta)
    n = _size("m_matrix", n)
    m = n * (n - 1)
    _expect_length("m_matrix", theta, m, "n(n-1)")
    rate = ew_ops.ew("softplus", theta)  # >= 0 (and > 0 unless it underflows)
    leaving = red.sum(shp.reshape(rate, (n, n - 1)), axis=1)  # row sums of the rates
    off = ~np.eye(n, dtype=bool)
    index = np.empty((n, n), dtype=np.int64)  # gathers from [-rate, leaving]
    index[off] = np.arange(m)  # row-major over the off-diagonal entries
    index[np.arange(n), np.arange(n)] = m + np.arange(n)
    return st.take(shp.concat([ew_ops.ew("neg", rate), leaving]), index)


def _toeplitz(c: Any, r: Any = None) -> Node:
    """The Toeplitz matrix with first column c and first row r (scipy.linalg.toeplitz).

    K[i, j] = c[i - j] for i >= j and r[j - i] for i < j; K has shape (len(c), len(r)); r[0]
    is ignored in favour of c[0]. Without r, r = c (a symmetric Toeplitz matrix).
    """
    c = _vector("toeplitz", c)
    m = int(c.shape[0])
    i = np.arange(m)
    if r is None:  # scipy: r = conj(c); a symmetric Toeplitz matrix for real c
        return st.take(c, np.abs(i[:, None] - i[None, :]))
    r = _vector("toeplitz", r)
    p = int(r.shape[0])
    j = np.arange(p)
    below = i[:, None] - j[None, :]  # c[i - j] on and below the diagonal
    index = np.where(below >= 0, below, m - 1 - below)  # r[j - i] = [c, r[1:]][m + j - i - 1]
    pieces = [c] if p == 1 else [c, shp.getitem(r, slice(1, None))]
    return st.take(shp.concat(pieces), index)


def _circulant(c: Any) -> Node:
    """The circulant matrix with first column c (scipy.linalg.circulant).

    K[i, j] = c[(i - j) mod n]. K = F^-1 diag(fft(c)) F, so compile() applies `circulant(c) @ y`
    (and the products its derivatives make) with FFTs in O(n log n), without building K.
    """
    return st.circulant(_vector("circulant", c))


def _selection(Q: np.ndarray) -> np.ndarray | None:
    """For a 0/1 matrix with at most one 1 per row: for each row, 1 + the column of its 1
    (0 for an empty row), gathering from [0, theta]; None for any other matrix."""
    if Q.ndim != 2 or not np.all((Q == 0) | (Q == 1)) or np.any(Q.sum(axis=1) > 1):
        return None
    return np.where(Q.any(axis=1), 1 + Q.argmax(axis=1), 0)


def _from_q(Q: Any, theta: Any, shape: Any) -> Node:
    """K = reshape(Q @ theta, shape) for a constant matrix Q of shape (prod(shape), len(theta)).

    Q is an array (cast to theta's float dtype) or a Tensor. A 0/1 array with at most one 1
    per row becomes a gather (take) instead of a dense product.
    """
    theta = _vector("from_q", theta)
    target = as_shape(shape)
    if isinstance(Q, Node):
        q_node, q_array = Q, None
    else:
        q_array = np.asarray(Q)
        if q_array.dtype.kind not in "biuf":
            raise TypeError(f"from_q: Q must be a real array, got {q_array.dtype}")
        q_array = q_array.astype(float_of(theta.dtype))
        q_node = None
    q_shape = as_shape(q_array.shape) if q_array is not None else q_node.shape
    if len(q_shape) != 2 or q_shape[1] != theta.shape[0] or q_shape[0] != numel(target):
        raise shape_error(
            "from_q",
            f"Q must be (prod(shape), len(theta)) = ({numel(target)}, {theta.shape[0]}), "
            f"got {shape_str(q_shape)}",
            q_shape,
            theta.shape,
        )
    if q_array is not None:
        picks = _selection(q_array)
        if picks is not None:  # a gather, not a dense product
            return st.take(shp.concat([_zero(theta), theta]), picks.reshape(target))
        q_node = constant(q_array)
    return shp.reshape(matmul(q_node, theta), target)


def _public(fn: Any, name: str) -> Any:
    """The Tensor-level function of a node-level builder, under its public name."""
    lifted = lift(fn)
    lifted.__name__ = lifted.__qualname__ = name
    return lifted


diagonal = _public(_diagonal, "diagonal")
antisymmetric = _public(_antisymmetric, "antisymmetric")
m_matrix = _public(_m_matrix, "m_matrix")
toeplitz = _public(_toeplitz, "toeplitz")
circulant = _public(_circulant, "circulant")
from_q = _public(_from_q, "from_q")
take = _public(st.take, "take")
