"""dce: dead code elimination, and the account of what the optimizer removed.

Nodes are immutable and every pass rebuilds its graph from the roots, so a node that no
root reaches is already gone: after simplify, the inputs of a folded constant or the
softmax that log_softmax replaced are simply not part of the graph any more. This pass
makes that visible: it logs how many nodes the graph had when the optimizer started
(noted by canonicalize, or by simplify when canonicalize is skipped) and how many remain
live, with the ops that disappeared.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Callable, Sequence

from graphc.node import Node, toposort

_SOURCES = ("input", "param")
_state = threading.local()


def note_start(roots: Sequence[Node], nodes: Sequence[Node], first: bool) -> None:
    """Record the graph entering the optimizer (`first`: the first pass, which overwrites)."""
    if not first and getattr(_state, "start", None) is not None:
        return
    sources = weakref.WeakSet(n for n in nodes if n.op in _SOURCES)
    _state.start = (len(roots), sources, Counter(n.op for n in nodes))


def _take_start(roots: Sequence[Node], nodes: Sequence[Node]) -> Counter | None:
    """The op counts noted for this graph (None when the note belongs to another graph)."""
    start = getattr(_state, "start", None)
    _state.start = None
    if start is None:
        return None
    n_roots, sources, ops = start
    # passes never create inputs or params: a note of the same program knows all of ours
    if n_roots != len(roots) or any(n not in sources for n in nodes if n.op in _SOURCES):
        return None
    return ops


def dce(roots: Sequence[Node], log: Callable[[str], None]) -> list:
    nodes = toposort(roots)
    before = _take_start(roots, nodes)
    if before is None:
        log(f"{len(nodes)} nodes live")
        return list(roots)
    after = Counter(n.op for n in nodes)
    total = sum(before.values())
    gone = before - after
    added = after - before
    text = f"{total} nodes before optimization, {len(nodes)} live"
    if gone:
        text += "; no longer reachable: " + ", ".join(f"{gone[op]} {op}" for op in sorted(gone))
    if added:
        text += "; new: " + ", ".join(f"{added[op]} {op}" for op in sorted(added))
    log(text)
    return list(roots)
