"""schedule and memory plan: kernel order, buffer lifetimes, and buffers reused in place.

schedule: a topological order of the kernels chosen greedily to keep memory low: among the
kernels whose inputs are ready, run the one that frees the most bytes net of what it
allocates (sizes with symbolic dims taken at 64), ties by graph order.

plan: for concrete sizes (a call's bindings), every temporary buffer lives from the
kernel that writes it to the last kernel that reads it (returned values to the end); a
first-fit pass assigns each to an arena slot no longer live, so slots are reused. The
plan is computed once per distinct binding of the symbolic sizes; `peak` is the arena's
size in bytes, `naive` what one buffer per value would need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from graphc.kernels import KernelProgram
from graphc.node import Node


def _nbytes(node: Node, values: dict | None) -> int:
    size = 1
    for d in node.shape:
        d = d.subs(values) if values is not None and not d.is_number else d
        size *= int(d) if d.is_number else 64
    return size * np.dtype(node.dtype).itemsize


def _source(node: Node, program: KernelProgram) -> Node:
    while program.buffers.get(node) is not None and program.buffers[node].kind == "view":
        node = node.inputs[0]
    return node


def schedule(program: KernelProgram) -> None:
    """Reorder program.kernels in place: a topological order that keeps live bytes low."""
    writer = {}
    for k, kernel in enumerate(program.kernels):
        for n in kernel.outputs:
            writer[n] = k
    needs = []
    for kernel in program.kernels:
        deps = set()
        for n in kernel.loads:
            src = _source(n, program)
            if src in writer:
                deps.add(writer[src])
        needs.append(deps)
    readers: dict = {}
    for k, kernel in enumerate(program.kernels):
        for n in kernel.loads:
            readers.setdefault(_source(n, program), set()).add(k)
    roots = {_source(r, program) for r in program.roots}
    done: set = set()
    order = []
    while len(order) < len(program.kernels):
        ready = [k for k in range(len(program.kernels)) if k not in done and needs[k] <= done]
        if not ready:
            stuck = [k for k in range(len(program.kernels)) if k not in done]
            text = "\n".join(program.kernels[k].describe(program.buffers) for k in stuck)
            raise AssertionError(f"internal error: kernels that depend on each other:\n{text}")

        def gain(k: int) -> tuple:
            kernel = program.kernels[k]
            allocated = sum(_nbytes(n, None) for n in kernel.outputs)
            freed = 0
            for n in kernel.loads:
                src = _source(n, program)
                if src in writer and src not in roots and readers[src] - done == {k}:
                    freed += _nbytes(src, None)
            return (freed - allocated, -k)

        best = max(ready, key=gain)
        done.add(best)
        order.append(best)
    program.kernels = [program.kernels[k] for k in order]


@dataclass
class MemoryPlan:
    slots: list  # bytes of each arena slot
    slot_of: dict  # temp Buffer name -> slot index
    lifetimes: dict  # temp Buffer name -> (first kernel, last kernel)
    peak: int  # bytes: the sum of the slots
    naive: int  # bytes: one buffer per temp

    def describe(self) -> str:
        return (
            f"memory plan: {len(self.slot_of)} temporary buffers in {len(self.slots)} slots, "
            f"peak {self.peak:,} bytes (one buffer each: {self.naive:,} bytes)"
        )


def plan(program: KernelProgram, values: dict | None = None) -> MemoryPlan:
    """The arena for concrete sizes `values` ({symbol: int}); symbols left free count as 64."""
    values = {
        sympy.Symbol(str(k), integer=True, positive=True) if isinstance(k, str) else k: v
        for k, v in (values or {}).items()
    }
    last = len(program.kernels)
    lifetimes: dict = {}
    roots = {_source(r, program) for r in program.roots}
    for k, kernel in enumerate(program.kernels):
        for n in kernel.outputs:
            lifetimes[n] = [k, last if n in roots else k]
        for n in kernel.loads:
            src = _source(n, program)
            if src in lifetimes:
                lifetimes[src][1] = max(lifetimes[src][1], k)
    slots: list = []
    free_at: list = []  # the kernel after which each slot is free again
    slot_of = {}
    for node, (start, end) in sorted(lifetimes.items(), key=lambda item: item[1][0]):
        size = _nbytes(node, values)
        choice = None
        for s, (slot_size, free) in enumerate(zip(slots, free_at)):
            if free < start and (
                choice is None or abs(slot_size - size) < abs(slots[choice] - size)
            ):
                choice = s
        if choice is None:
            slots.append(size)
            free_at.append(end)
            choice = len(slots) - 1
        else:
            slots[choice] = max(slots[choice], size)
            free_at[choice] = end
        slot_of[program.buffers[node].name] = choice
    naive = sum(_nbytes(n, values) for n in lifetimes)
    named = {program.buffers[n].name: tuple(v) for n, v in lifetimes.items()}
    return MemoryPlan(slots, slot_of, named, sum(slots), naive)
