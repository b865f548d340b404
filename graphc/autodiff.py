"""Derivatives as graphs: grad, vjp (reverse mode), jvp (forward mode), hvp, and checks.

Reverse mode walks the graph from the outputs in reverse topological order and
applies each op's vjp rule (graphc.ops.registry.VJP_RULES) to the adjoint of its
output, summing adjoints where a node feeds several consumers. Forward mode walks
in topological order and applies each op's jvp rule to the tangents of its
inputs. Both produce ordinary nodes, so results can be printed, compiled and
differentiated again. A zero adjoint or tangent is `None` (the symbolic zero):
rules are skipped for it and no zero tensor is built, except where the caller
asks for the derivative of something that does not depend on its input, which
is a broadcast scalar zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from graphc.node import COMPLEX_DTYPES, FLOAT_DTYPES, INEXACT_DTYPES, Node, toposort
from graphc.ops import registry
from graphc.ops.adjoint import add_any, zeros
from graphc.ops.elementwise import cast, real
from graphc.ops.sources import constant
from graphc.shapes import dims_equal, shape_str, user_location
from graphc.tensor import Tensor, unwrap, wrap


class DifferentiationError(TypeError):
    """Asking for a derivative that does not exist (integer inputs, non-scalar grad)."""


def _check_differentiable(node: Node, role: str) -> None:
    if node.dtype not in FLOAT_DTYPES:
        name = node.attrs.get("name", node.op)
        raise DifferentiationError(
            f"cannot differentiate with respect to {role} {name!r} of dtype {node.dtype} "
            f"(built at {node.where}): only float tensors have derivatives"
        )


def _check_same_shape(what: str, node: Node, other: Node) -> None:
    ok = node.rank == other.rank and all(dims_equal(a, b) for a, b in zip(node.shape, other.shape))
    if not ok:
        raise DifferentiationError(
            f"{what} has shape {shape_str(other.shape)} but its tensor has shape "
            f"{shape_str(node.shape)}, at {user_location()}"
        )


def _depends_on(order: list, sources: set) -> set:
    """Nodes of `order` that depend on any node of `sources` (sources included)."""
    found = set()
    for node in order:
        if node in sources or any(i in found for i in node.inputs):
            found.add(node)
    return found


def vjp_nodes(outputs: Sequence[Node], cotangents: Sequence[Node], wrt: Sequence[Node]) -> list:
    """Reverse mode on nodes: sum over outputs of J^T cotangent, for each wrt (None: zero)."""
    order = toposort(outputs)
    live = _depends_on(order, set(wrt))
    adjoint: dict = {}
    for out, cot in zip(outputs, cotangents):
        if out in live:
            adjoint[out] = add_any(adjoint.get(out), cot)
    wanted = set(wrt)
    results: dict = {}
    for node in reversed(order):
        g = adjoint.get(node) if node in wanted else adjoint.pop(node, None)
        if g is None or not node.inputs:
            continue
        if not any(i in live for i in node.inputs):
            continue
        rule = registry.VJP_RULES.get(node.op)
        if rule is None:
            raise DifferentiationError(f"op {node.op!r} has no vjp rule (built at {node.where})")
        contributions = rule(node, g)
        for inp, c in zip(node.inputs, contributions):
            if c is None or inp not in live or inp.dtype not in INEXACT_DTYPES:
                continue
            if c.dtype in COMPLEX_DTYPES and inp.dtype in FLOAT_DTYPES:
                c = real(c)  # a real input's cotangent is Re of the complex one (JAX's convention)
            if c.dtype != inp.dtype:
                c = cast(c, inp.dtype)
            adjoint[inp] = add_any(adjoint.get(inp), c)
    for node in wrt:
        results[node] = adjoint.get(node)
    return [results[node] for node in wrt]


def jvp_nodes(outputs: Sequence[Node], inputs: Sequence[Node], tangents: Sequence[Node]) -> list:
    """Forward mode on nodes: J tangent for each output (None: zero), by tangent propagation."""
    order = toposort(outputs)
    tangent: dict = dict(zip(inputs, tangents))
    given = set(inputs)
    for node in order:
        if node in given or not node.inputs:
            continue
        ts = tuple(tangent.get(i) for i in node.inputs)
        if all(t is None for t in ts):
            continue
        rule = registry.JVP_RULES.get(node.op)
        if rule is None:
            raise DifferentiationError(f"op {node.op!r} has no jvp rule (built at {node.where})")
        t = rule(node, ts)
        if t is not None and t.dtype in COMPLEX_DTYPES and node.dtype in FLOAT_DTYPES:
            t = real(t)
        if t is not None and node.dtype in INEXACT_DTYPES and t.dtype != node.dtype:
            t = cast(t, node.dtype)
        if t is not None and node.dtype in INEXACT_DTYPES:
            tangent[node] = t
    return [tangent.get(o) for o in outputs]


def _nodes(values: Any) -> list:
    items = values if isinstance(values, (list, tuple)) else [values]
    nodes = [unwrap(v) for v in items]
    for n in nodes:
        if not isinstance(n, Node):
            raise TypeError(f"expected Tensors, got {type(n).__name__}")
    return nodes


def _densify(results: list, like: list) -> list:
    return [zeros(n.shape, n.dtype) if r is None else r for r, n in zip(results, like)]


def grad(y: Any, wrt: Any) -> Any:
    """d y / d wrt for a scalar y: one Tensor per wrt entry, with that entry's shape.

    `wrt` is a Tensor (returns one Tensor) or a list of Tensors (returns a list).
    Entries y does not depend on get an explicit zero.
    """
    (y_node,) = _nodes(y)
    if y_node.rank != 0:
        raise DifferentiationError(
            f"grad needs a scalar output, got shape {shape_str(y_node.shape)} "
            f"(reduce it with gc.sum/gc.mean, or use gc.vjp), at {user_location()}"
        )
    _check_differentiable(y_node, "output")
    wrt_nodes = _nodes(wrt)
    for w in wrt_nodes:
        _check_differentiable(w, "input")
    seed = constant(1, y_node.dtype)
    results = _densify(vjp_nodes([y_node], [seed], wrt_nodes), wrt_nodes)
    out = wrap(results)
    return out if isinstance(wrt, (list, tuple)) else out[0]


def vjp(outputs: Any, inputs: Any, cotangents: Any) -> list:
    """Reverse mode: [sum_k J_k^T w_k for each input], J_k the Jacobian of outputs[k]."""
    out_nodes, in_nodes, cot_nodes = _nodes(outputs), _nodes(inputs), _nodes(cotangents)
    if len(cot_nodes) != len(out_nodes):
        raise DifferentiationError(
            f"vjp: {len(out_nodes)} outputs but {len(cot_nodes)} cotangents, at {user_location()}"
        )
    for o, w in zip(out_nodes, cot_nodes):
        _check_same_shape("vjp: a cotangent", o, w)
    for n in in_nodes:
        _check_differentiable(n, "input")
    return wrap(_densify(vjp_nodes(out_nodes, cot_nodes, in_nodes), in_nodes))


def jvp(outputs: Any, inputs: Any, tangents: Any) -> list:
    """Forward mode: [J_k v for each output k], v the tangents of inputs."""
    out_nodes, in_nodes, tan_nodes = _nodes(outputs), _nodes(inputs), _nodes(tangents)
    if len(tan_nodes) != len(in_nodes):
        raise DifferentiationError(
            f"jvp: {len(in_nodes)} inputs but {len(tan_nodes)} tangents, at {user_location()}"
        )
    for n, t in zip(in_nodes, tan_nodes):
        _check_differentiable(n, "input")
        _check_same_shape("jvp: a tangent", n, t)
    return wrap(_densify(jvp_nodes(out_nodes, in_nodes, tan_nodes), out_nodes))


def hvp(y: Any, wrt: Any, vectors: Any) -> list:
    """Hessian-vector products H v, forward over reverse: jvp of grad(y, wrt) along v."""
    wrt_list = wrt if isinstance(wrt, (list, tuple)) else [wrt]
    grads = grad(y, list(wrt_list))
    vec_list = vectors if isinstance(vectors, (list, tuple)) else [vectors]
    return jvp(grads, list(wrt_list), list(vec_list))


# finite-difference checks -------------------------------------------------------------------


def _float64_feed(feed: Mapping[Any, Any]) -> dict:
    return {unwrap(k): np.asarray(v) for k, v in (feed or {}).items()}


def check_grad(
    y: Any,
    wrt: Any,
    feed: Mapping[Any, Any] | None = None,
    eps: float = 1e-6,
    seed: int = 0,
    directions: int = 3,
) -> float:
    """Max relative error between grad(y, wrt) and central finite differences.

    The graph is rebuilt in float64 (see graphc.check), params in `wrt` are
    perturbed along random directions d: (y(w + eps d) - y(w - eps d)) / (2 eps)
    is compared with <grad, d>. `feed` gives arrays for the inputs.
    """
    from graphc.check import directional_check

    return directional_check(y, wrt, _float64_feed(feed), eps, seed, directions, mode="vjp")


def check_jvp(
    outputs: Any,
    wrt: Any,
    feed: Mapping[Any, Any] | None = None,
    eps: float = 1e-6,
    seed: int = 0,
    directions: int = 3,
) -> float:
    """Max relative error between jvp(outputs, wrt, d) and central finite differences."""
    from graphc.check import directional_check

    return directional_check(outputs, wrt, _float64_feed(feed), eps, seed, directions, mode="jvp")


__all__ = ["DifferentiationError", "Tensor", "check_grad", "check_jvp", "grad", "hvp", "jvp", "vjp"]
