"""Graph rewriting: rebuild a graph bottom-up, letting a rule replace each node.

Nodes are interned, so a rewrite never mutates: it maps old nodes to new ones in
topological order, rebuilding a node only when one of its inputs changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from graphc.node import Node, toposort
from graphc.ops import registry


def rebuild(node: Node, inputs: Sequence[Node]) -> Node:
    """node with new inputs (the same node when nothing changed)."""
    if all(a is b for a, b in zip(node.inputs, inputs)):
        return node
    return registry.make(node.op, list(inputs), dict(node.attrs), node.where)


def rewrite(roots: Sequence[Node], rule: Callable[[Node], Node | None]) -> list:
    """Apply `rule` to every node of the graph of `roots`, inputs first.

    `rule(node)` returns a replacement (whose shape and dtype must match) or None to keep
    the node. Returns the new roots.
    """
    new: dict = {}
    for node in toposort(roots):
        current = rebuild(node, [new[i] for i in node.inputs])
        replacement = rule(current)
        if replacement is not None and replacement is not current:
            if replacement.shape != current.shape or replacement.dtype != current.dtype:
                raise AssertionError(
                    f"rewrite of {current.label()} changed {current.shape} {current.dtype} "
                    f"into {replacement.shape} {replacement.dtype}"
                )
            current = replacement
        new[node] = current
    return [new[r] for r in roots]
