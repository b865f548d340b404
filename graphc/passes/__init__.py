"""The optimizer: one flat list of named passes, each (roots, log) -> new roots.

`optimize(roots, skip=())` runs them in order and returns the new roots and the
decisions the passes logged (shown by Function.explain()). GRAPHC_DEBUG>=1 prints them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from graphc.node import Node, toposort
from graphc.passes import canonicalize, dce, simplify  # modules (their rules are tested)
from graphc.passes import circulant as _circulant_lowerings  # noqa: F401 - registers them
from graphc.passes import conv as _conv_lowerings  # noqa: F401 - registers them
from graphc.passes.lower import lower

PIPELINE = [
    ("canonicalize", canonicalize.canonicalize),
    ("simplify", simplify.simplify),
    ("lower", lower),
    ("fold_weights", simplify.fold_weights),
    ("dce", dce.dce),
]


def optimize(roots: Sequence[Node], skip: Sequence[str] = ()) -> tuple:
    """(new roots, log lines) after every pass of PIPELINE not named in `skip`."""
    unknown = set(skip) - {name for name, _ in PIPELINE}
    if unknown:
        known = ", ".join(name for name, _ in PIPELINE)
        raise ValueError(f"unknown passes {sorted(unknown)}; the passes are: {known}")
    lines: list = []
    debug = int(os.environ.get("GRAPHC_DEBUG", "0") or 0)
    roots = list(roots)
    for name, run in PIPELINE:
        if name in skip:
            lines.append(f"{name}: skipped")
            continue

        def log(text: str, name: str = name) -> None:
            line = f"{name}: {text}"
            lines.append(line)
            if debug >= 1:
                print(f"[graphc] {line}")

        started = time.perf_counter()
        before = len(toposort(roots))
        roots = run(roots, log)
        spent = (time.perf_counter() - started) * 1e3
        lines.append(f"{name}: {before} -> {len(toposort(roots))} nodes in {spent:.1f} ms")
    return roots, lines


__all__ = ["PIPELINE", "optimize"]
