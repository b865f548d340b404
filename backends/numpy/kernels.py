"""Run a KernelProgram (graphc/kernels.py) with the ops' numpy references.

Each kernel evaluates its statements in order, keeping the values inside the kernel
local (they are registers in a compiled backend), stores its outputs as buffers, and
buffers are dropped after their last reader. Views (reshapes) are taken when read.
The values are those of the op-by-op interpreter: this is the semantics every compiled
backend's kernels are tested against.
"""

from __future__ import annotations

from typing import Any

from backends.numpy.interpreter import Interpreter
from graphc.backend import Program
from graphc.passes.memory import plan


class KernelInterpreter(Interpreter):
    def __init__(self, program: Program) -> None:
        super().__init__(program)
        self.kernel_program = program.kernels
        self.kernels = list(self.kernel_program.kernels)
        self._last_reader = self._last_readers()
        self._local_drops = [self._drops_inside(kernel) for kernel in self.kernels]
        self._keep = set()  # the roots, and the buffers a returned view is taken of
        for node in self.program.roots:
            self._keep.add(node)
            while self._is_view(node):
                node = node.inputs[0]
                self._keep.add(node)
        self.plans: dict = {}
        self.memory_plan = None

    def _last_readers(self) -> dict:
        last: dict = {}
        for k, kernel in enumerate(self.kernels):
            for node in kernel.loads:
                while self._is_view(node):
                    last[node] = k
                    node = node.inputs[0]
                last[node] = k
        return last

    def _drops_inside(self, kernel: Any) -> list:
        """For each statement, the kernel-local values read for the last time by it."""
        last: dict = {}
        for s, node in enumerate(kernel.nodes):
            for i in node.inputs:
                last[i] = s
        keep = set(kernel.outputs)
        drops: list = [[] for _ in kernel.nodes]
        for node, s in last.items():
            if node in kernel.nodes and node not in keep:
                drops[s].append(node)
        return drops

    def run(self, feeds: dict, bindings: Any) -> list:
        key = tuple(sorted((str(s), v) for s, v in bindings.values.items()))
        if key not in self.plans:
            self.plans[key] = plan(self.kernel_program, bindings.values)
        self.memory_plan = self.plans[key]
        values: dict = {}
        roots = self._keep

        def value(node: Any) -> Any:
            found = values.get(node)
            if found is not None:
                return found
            if node.op == "input":
                found = feeds[node]
            elif node.op == "param":
                found = node.attrs["state"].value
            elif node.op == "constant":
                found = node.attrs["value"].array
            elif self.kernel_program.buffers[node].kind == "view":
                found = self._evaluate(node, [value(node.inputs[0])], bindings)
            else:
                raise RuntimeError(f"internal error: {node.label()} read before it was written")
            values[node] = found
            return found

        peak = 0
        for k, kernel in enumerate(self.kernels):
            local: dict = {}
            for node, drops in zip(kernel.nodes, self._local_drops[k]):
                args = [local[i] if i in local else value(i) for i in node.inputs]
                local[node] = self._evaluate(node, args, bindings)
                peak = max(peak, len(values) + len(local))
                del args
                for done in drops:
                    del local[done]
            for node in kernel.outputs:
                values[node] = local[node]
            del local
            for node in list(kernel.loads):
                self._drop(node, k, values, roots)
        self.peak_live = peak
        return [value(root) for root in self.program.roots]

    def _drop(self, node: Any, k: int, values: dict, roots: set) -> None:
        while True:
            if self._last_reader.get(node) == k and node not in roots:
                values.pop(node, None)
            if not self._is_view(node):
                return
            node = node.inputs[0]

    def _is_view(self, node: Any) -> bool:
        buffer = self.kernel_program.buffers.get(node)
        return buffer is not None and buffer.kind == "view"

    def explain(self) -> str:
        lines = [f"backend numpy: {self.kernel_program.describe()}"]
        if self.memory_plan is not None:
            lines.append(self.memory_plan.describe() + " (for the last call's sizes)")
        else:
            lines.append(plan(self.kernel_program).describe() + " (symbolic sizes at 64)")
        return "\n".join(lines)
