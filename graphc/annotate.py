"""The graph that shows its work: every node's forward value and the derivative of the
output with respect to it, for the pictures of backpropagation (`to_dot(..., feed=...)`),
and graphs of scalars as sympy expressions, printed as LaTeX (`latex`).

Values come from the numpy reference run op by op (no rewrites, so every node drawn is a
node computed); derivatives from one reverse-mode pass with every float node as a `wrt`
(the adjoint of a node is d output / d node).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy

from graphc.autodiff import vjp_nodes
from graphc.node import INEXACT_DTYPES, Node, toposort
from graphc.ops.elementwise import SCALAR_OPS, textbook
from graphc.ops.sources import constant
from graphc.tensor import unwrap

_SHOWN = 6  # arrays with at most this many entries are printed in full


def number_text(value: Any) -> str:
    """A short text for a value: the number for a scalar, the entries of a small array, else
    its mean and largest magnitude."""
    array = np.asarray(value)
    if array.size == 1:
        return f"{array.reshape(()).item():.4g}"
    if array.size <= _SHOWN:
        return "[" + ", ".join(f"{v:.4g}" for v in array.reshape(-1).tolist()) + "]"
    return f"mean {float(np.mean(array)):.4g}, max |.| {float(np.max(np.abs(array))):.4g}"


def annotations(roots: list, feed: dict, grads: bool) -> dict:
    """node -> (value, derivative or None) for every node computing `roots`, evaluated at
    `feed` ({input Tensor: array}); derivatives of the single scalar root when grads."""
    from graphc.compile import compile as compile_fn  # compile imports this module's users

    order = toposort(roots)
    inputs = [n for n in order if n.op == "input"]
    fed = {unwrap(k): v for k, v in feed.items()}
    missing = [n.attrs["name"] for n in inputs if n not in fed]
    if missing:
        raise ValueError(f"to_dot: feed has no value for input(s) {', '.join(missing)}")
    outputs = list(order)
    wrt: list = []
    if grads:
        if len(roots) != 1 or roots[0].rank != 0 or roots[0].dtype not in INEXACT_DTYPES:
            shapes = ", ".join(f"{r.op} {r.shape} {r.dtype}" for r in roots)
            raise ValueError(
                f"to_dot(grads=True): needs one scalar float output to differentiate, got {shapes}"
            )
        wrt = [n for n in order if n.dtype in INEXACT_DTYPES]
        seed = constant(1, roots[0].dtype)
        adjoints = vjp_nodes([roots[0]], [seed], wrt)
        outputs += [a for a in adjoints if a is not None]
    f = compile_fn(inputs, outputs, optimize=False, backend="numpy")
    values = f(*[fed[n] for n in inputs])
    found = {n: (v, None) for n, v in zip(order, values)}
    if grads:
        extra = iter(values[len(order) :])
        for node, a in zip(wrt, adjoints):
            derivative = next(extra) if a is not None else np.zeros(node.shape, node.dtype)
            found[node] = (found[node][0], derivative)
    return found


# graphs of scalars -> sympy ------------------------------------------------------------------
_IDENTITIES = ("sum", "mean", "reshape", "broadcast_to", "cast", "max", "transpose")


def to_sympy(graph: Any) -> sympy.Expr:
    """The sympy expression a graph of one-element tensors computes: inputs and params are
    symbols named as in the graph, constants numbers, elementwise ops their table entries."""
    memo: dict = {}
    for node in toposort([unwrap(graph)]):
        memo[node] = _scalar(node, [memo[i] for i in node.inputs])
    return memo[unwrap(graph)]


def _scalar(node: Node, args: list) -> sympy.Expr:
    if any(not (d.is_number and int(d) == 1) for d in node.shape):
        raise ValueError(
            f"latex: {node.op} has shape {tuple(node.shape)} (built at {node.where}); "
            "only graphs of scalars (one-element tensors) have a scalar formula"
        )
    if node.op in ("input", "param"):
        return sympy.Symbol(node.attrs["name"], real=True)
    if node.op == "constant":
        value = np.asarray(node.attrs["value"].array).reshape(()).item()
        return sympy.nsimplify(value, rational=True) if float(value).is_integer() else value
    if node.op in SCALAR_OPS:
        return SCALAR_OPS[node.op].expr(*args)
    if node.op == "elementwise":
        return node.attrs["expr"](*args)
    if node.op in _IDENTITIES and len(args) == 1:
        return args[0]  # one element: summing, averaging, reshaping change nothing
    raise ValueError(
        f"latex: op {node.op!r} (built at {node.where}) has no scalar formula; "
        "use elementwise ops on scalars"
    )


def latex(graph: Any, simplify: bool = True) -> str:
    """LaTeX of the formula a small scalar graph computes (e.g. a gc.grad result: the
    symbolic derivative), with graphc's sigmoid/softplus/relu written out."""
    expr = textbook(to_sympy(graph))
    if simplify:
        expr = sympy.simplify(expr)
    return sympy.latex(expr)


__all__ = ["annotations", "latex", "number_text", "to_sympy"]
