"""Shrink a failing fuzz case to a small graph and print it as a standalone script.

    python -m tests.fuzz.shrink SEED [SEED ...]

For each seed: the graph, the verdict of tests/fuzz/check.py, and when it fails, a
reduction: the roots (outputs and gradient nodes, flattened into one graph) are dropped
one by one, then nodes are cut (replaced by a new input fed with the node's reference
value) or bypassed (replaced by an input of the same shape and dtype), as long as the
optimized function still fails the same way (the same exception type, or a mismatch).
The result is printed as a python script that builds the small graph with
graphc.ops.registry.apply and compares optimize=False with optimize=True.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy

import graphc as gc
from graphc.node import ConstValue, Node, format_graph, toposort
from graphc.ops import registry
from graphc.tensor import unwrap

from .check import Case, check, compare

SOURCES = ("input", "param", "constant")


def outcome(inputs: list, roots: list, feeds: dict, dtype: str) -> str | None:
    """How optimize=True fails on this graph ("mismatch" or an exception type), or None."""
    args = [feeds[i] for i in inputs]
    try:
        ref = gc.compile(inputs, roots, optimize=False)(*args)
    except Exception:  # noqa: BLE001 - a reduction the reference cannot run is no reproducer
        return None
    try:
        opt = gc.compile(inputs, roots, optimize=True)(*args)
    except Exception as error:  # noqa: BLE001
        return type(error).__name__
    for r, o in zip(ref, opt):
        if compare(r, o, dtype):
            return "mismatch"
    return None


def substitute(roots: Sequence[Node], mapping: dict) -> list:
    """roots rebuilt with the nodes of `mapping` replaced."""
    new: dict = {}
    for node in toposort(roots):
        if node in mapping:
            new[node] = mapping[node]
            continue
        inputs = [new[i] for i in node.inputs]
        if all(a is b for a, b in zip(inputs, node.inputs)):
            new[node] = node
        else:
            new[node] = registry.apply(node.op, inputs, **dict(node.attrs))
    return [new[r] for r in roots]


class Shrinker:
    def __init__(self, inputs: list, roots: list, feeds: dict, dtype: str) -> None:
        self.inputs, self.roots, self.feeds, self.dtype = inputs, roots, feeds, dtype
        self.kind = outcome(inputs, roots, feeds, dtype)
        self.tries = 0
        self.fresh = 0

    def still_fails(self, roots: list, extra: dict) -> bool:
        self.tries += 1
        feeds = {**self.feeds, **extra}
        reachable = set(toposort(roots))
        inputs = [n for n in list(self.inputs) + list(extra) if n in reachable]
        if outcome(inputs, roots, feeds, self.dtype) != self.kind:
            return False
        self.roots, self.inputs, self.feeds = roots, inputs, {i: feeds[i] for i in inputs}
        return True

    def values(self) -> dict:
        """The reference value of every node of the current graph."""
        nodes = [n for n in toposort(self.roots) if n.op not in SOURCES]
        args = [self.feeds[i] for i in self.inputs]
        results = gc.compile(self.inputs, nodes, optimize=False)(*args)
        return dict(zip(nodes, results))

    def run(self, budget: int = 400) -> None:
        if self.kind is None:
            return
        progress = True
        while progress and self.tries < budget:
            progress = self.drop_roots() or self.cut_nodes(budget)

    def drop_roots(self) -> bool:
        for k in range(len(self.roots)):
            candidate = self.roots[:k] + self.roots[k + 1 :]
            if candidate and self.still_fails(candidate, {}):
                return True
        return False

    def cut_nodes(self, budget: int) -> bool:
        values = self.values()
        order = [n for n in reversed(toposort(self.roots)) if n.op not in SOURCES]
        for node in order:
            if self.tries >= budget:
                return False
            # bypass: an operand of the same shape and dtype stands in for the node
            for i in node.inputs:
                if i.shape == node.shape and i.dtype == node.dtype:
                    if self.still_fails(substitute(self.roots, {node: i}), {}):
                        return True
            if node in self.roots and len(self.roots) == 1:
                continue
            self.fresh += 1
            cut = unwrap(gc.input(f"c{self.fresh}", node.shape, dtype=node.dtype))
            if self.still_fails(substitute(self.roots, {node: cut}), {cut: values[node]}):
                return True
        return False


# the reproducer as a script -----------------------------------------------------------------


def _literal(value: Any) -> str:
    if isinstance(value, ConstValue):
        a = value.array
        return f"np.array({a.tolist()!r}, dtype={a.dtype.name!r})"
    if isinstance(value, sympy.Basic):
        return str(value)
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, float) and not np.isfinite(value):
        return f"float({str(value)!r})"
    return repr(value)


def script(inputs: list, roots: list, feeds: dict, dtype: str) -> str:
    order = toposort(roots)
    names = {n: f"n{k}" for k, n in enumerate(order)}
    lines = [
        "import numpy as np",
        "import graphc as gc",
        "from graphc.ops.registry import apply",
        "",
        'N = gc.dim("N")',
    ]
    for node in order:
        shape = _literal(tuple(node.shape))
        if node.op == "input":
            name = node.attrs["name"]
            lines.append(f"{names[node]} = gc.input({name!r}, {shape}, dtype={node.dtype!r}).node")
        elif node.op == "param":
            value = node.attrs["state"].value
            lines.append(
                f"{names[node]} = gc.param({node.attrs['name']!r}, "
                f"value=np.array({value.tolist()!r}), dtype={node.dtype!r}).node"
            )
        else:
            args = ", ".join(names[i] for i in node.inputs)
            args = f"({args},)" if len(node.inputs) == 1 else f"({args})"
            attrs = "".join(f", {k}={_literal(v)}" for k, v in node.attrs.items())
            lines.append(f"{names[node]} = apply({node.op!r}, {args}{attrs})  # {shape}")
    lines.append(f"inputs = [{', '.join(names[i] for i in inputs)}]")
    lines.append(f"roots = [{', '.join(names[r] for r in roots)}]")
    lines.append("feeds = [")
    for i in inputs:
        a = np.asarray(feeds[i])
        lines.append(f"    np.array({a.tolist()!r}, dtype={a.dtype.name!r}),")
    lines.append("]")
    tol = "1e-9" if dtype == "float64" else "1e-4"
    lines += [
        "ref = gc.compile(inputs, roots, optimize=False)(*feeds)",
        "opt = gc.compile(inputs, roots, optimize=True)(*feeds)",
        "for r, o in zip(ref, opt):",
        f"    np.testing.assert_allclose(o, r, rtol={tol}, atol={tol} * np.max(np.abs(r)))",
    ]
    return "\n".join(lines)


def shrink_seed(seed: int, budget: int = 400) -> str | None:
    """A small reproducer script for a failing seed (None when the seed passes)."""
    case = Case(seed)
    g = case.graph
    for n, (feeds, _) in zip(g.n_values, case.points):
        inputs = unwrap(g.inputs)
        roots = list(dict.fromkeys(unwrap(g.roots)))
        shrinker = Shrinker(inputs, roots, dict(zip(inputs, feeds)), g.dtype)
        if shrinker.kind is None:
            continue
        shrinker.run(budget)
        s = shrinker
        header = (
            f"# seed {seed} (N={n}): optimize=True fails ({s.kind}); reduced in {s.tries} tries\n"
            + "\n".join(f"# {line}" for line in format_graph(s.roots).splitlines())
        )
        return header + "\n" + script(s.inputs, s.roots, s.feeds, g.dtype)
    return None


def main(argv: list | None = None) -> None:
    for arg in argv if argv is not None else sys.argv[1:]:
        seed = int(arg)
        print(Case(seed).graph.listing())
        report = check(seed)
        print(report or f"seed {seed}: optimized and reference agree")
        if report:
            print(shrink_seed(seed) or "(the failure did not reproduce on the flattened graph)")


if __name__ == "__main__":
    main()
