"""Graph views: a networkx MultiDiGraph of the nodes reachable from some outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx

from graphc.node import Node, toposort
from graphc.tensor import unwrap


def as_networkx(outputs: Sequence[Any] | Any) -> nx.MultiDiGraph:
    """Nodes keyed by topological position; attributes op, label, shape, dtype, node.

    An edge u -> v carries `index`, the position of u among v's inputs (x * x has two).
    """
    roots = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    roots = [unwrap(r) for r in roots]
    for r in roots:
        if not isinstance(r, Node):
            raise TypeError(f"as_networkx: outputs must be Tensors, got {type(r).__name__}")
    outs = set(roots)
    order = toposort(roots)
    ids = {node: k for k, node in enumerate(order)}
    graph = nx.MultiDiGraph()
    for node in order:
        graph.add_node(
            ids[node],
            op=node.op,
            label=node.label(),
            shape=tuple(str(d) for d in node.shape),
            dtype=node.dtype,
            node=node,
            output=node in outs,
        )
        for index, source in enumerate(node.inputs):
            graph.add_edge(ids[source], ids[node], key=index, index=index)
    return graph
