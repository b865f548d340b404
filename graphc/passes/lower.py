"""lower: ops that have several implementations become the subgraph chosen for them.

A lowering is registered per op name (`@lowering("conv")`) as a function
`(node, log) -> Node | None`; `log(text)` records the decision for f.explain().
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from graphc.node import Node
from graphc.passes.rewrite import rewrite

LOWERINGS: dict = {}


def lowering(*names: str) -> Callable[[Callable], Callable]:
    def wrap(fn: Callable) -> Callable:
        for name in names:
            LOWERINGS[name] = fn
        return fn

    return wrap


def lower(roots: Sequence[Node], log: Callable[[str], None]) -> list:
    def rule(node: Node) -> Node | None:
        fn = LOWERINGS.get(node.op)
        return None if fn is None else fn(node, log)

    return rewrite(roots, rule)
