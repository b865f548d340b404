"""Evaluate a Program node by node, in topological order, with the ops' numpy references.

Clarity over speed: it is the oracle every other backend is checked against. Each
intermediate value is dropped as soon as its last consumer has run (`peak_live`
records the most values held at once in the last run).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from graphc.backend import ExecutionError, Program
from graphc.node import format_graph, toposort
from graphc.ops.registry import ImplContext, get
from graphc.shapes import BindError, Bindings

__all__ = ["ExecutionError", "Interpreter", "build"]


class Interpreter:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.order = toposort(program.roots)
        self.uses = Counter(i for node in self.order for i in node.inputs)
        self.source = format_graph(list(program.roots))
        self.kernels = [node for node in self.order if get(node.op).kind != "source"]
        self.peak_live = 0

    def run(self, feeds: dict, bindings: Bindings) -> list:
        values: dict = {}
        remaining = Counter(self.uses)
        roots = set(self.program.roots)
        peak = 0
        for node in self.order:
            if node.op == "input":
                values[node] = feeds[node]
            elif node.op == "param":
                values[node] = node.attrs["state"].value
            else:
                values[node] = self._evaluate(node, [values[i] for i in node.inputs], bindings)
            peak = max(peak, len(values))
            for i in node.inputs:
                remaining[i] -= 1
                if remaining[i] == 0 and i not in roots:
                    del values[i]
        self.peak_live = peak
        return [values[root] for root in self.program.roots]

    def _evaluate(self, node: Any, args: list, bindings: Bindings) -> np.ndarray:
        try:
            shape = bindings.evaluate_shape(node.shape)
        except BindError as error:
            raise BindError(f"{node.op} (built at {node.where}): {error}") from None
        ctx = ImplContext(node.attrs, shape, node.dtype, node, bindings)
        try:
            out = get(node.op).impl(ctx, *args)
        except (ValueError, IndexError, TypeError, ArithmeticError) as error:
            detail = str(error).removeprefix(f"{node.op}: ")
            raise ExecutionError(f"{node.op} (built at {node.where}): {detail}") from None
        out = np.asarray(out)
        if out.shape != shape or out.dtype.name != node.dtype:
            raise ExecutionError(
                f"internal error: {node.op} (built at {node.where}) produced {out.dtype.name} "
                f"{out.shape}, expected {node.dtype} {shape}"
            )
        return out

    def explain(self) -> str:
        lines = [f"backend numpy: {len(self.kernels)} ops run one by one, in this order:"]
        lines.append(self.source)
        return "\n".join(lines)


def build(program: Program) -> Interpreter:
    """Kernels when the optimizer made them (optimize=True), else op by op."""
    if program.kernels is not None:
        from backends.numpy.kernels import KernelInterpreter

        return KernelInterpreter(program)
    return Interpreter(program)
