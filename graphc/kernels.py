"""The kernel IR: what every backend consumes after the optimizer.

A Kernel is a loop nest over an iteration domain (a tuple of sympy sizes, symbolic
when the graph's are), reading named Buffers through affine index expressions in its
loop variables, computing a body of scalar statements, and storing some of them.

  kind "elementwise"  one loop nest over `domain`; every statement is a scalar op.
  kind "reduce"       a prologue of scalar statements over `domain`, a reduction
                      (sum, mean or max) over `reduce_axes`, an epilogue over the
                      reduced domain.
  kind "library"      one call the backend may map to a library (GEMM, FFT, conv) or its
                      own code, then an epilogue of scalar statements over its output.
  kind "op"           any other op (softmax, pad, concat, pooling...), then an epilogue.

Statements keep the graph node they compute (its op, attrs and dtype), so a backend
lowers each one from the op table: the scalar ops are sympy expressions
(graphc/ops/elementwise.py). A Buffer is a graph node whose value is materialized:
inputs, params, constants, and kernel outputs read by another kernel or returned.
A `view` (reshape) aliases its operand's buffer and costs no kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from graphc.node import Node
from graphc.shapes import shape_str

LOOP_VARS = sympy.symbols("i0:8", integer=True, nonnegative=True)


@dataclass(frozen=True)
class Buffer:
    name: str
    node: Node
    kind: str  # "input" | "param" | "constant" | "temp" | "view"

    @property
    def shape(self) -> tuple:
        return self.node.shape

    @property
    def dtype(self) -> str:
        return self.node.dtype


@dataclass(frozen=True)
class Load:
    """Read `buffer` at `index` (sympy expressions in LOOP_VARS) inside a kernel's loop nest."""

    buffer: Buffer
    index: tuple


@dataclass
class Kernel:
    name: str
    kind: str  # "elementwise" | "reduce" | "library" | "op"
    domain: tuple  # sizes of the loop nest (for "reduce": before reducing)
    nodes: list  # the graph nodes it computes, in order: the body's statements
    outputs: list  # the nodes it stores (materialized buffers)
    anchor: Node | None = None  # the reduction, library call or op the kernel is built on
    reduce_axes: tuple = ()
    loads: dict = field(default_factory=dict)  # input Node -> Load
    why: str = ""  # where the group ended and why (shown by explain)

    @property
    def inputs(self) -> list:
        return list(self.loads)

    def ops(self) -> list:
        return [n.op for n in self.nodes]

    def describe(self, buffers: dict) -> str:
        reads = ", ".join(buffers[n].name for n in self.loads)
        writes = ", ".join(buffers[n].name for n in self.outputs)
        fused = " ".join(self.ops())
        head = f"{self.name} [{self.kind}] domain {shape_str(self.domain)}"
        if self.reduce_axes:
            head += f" reduce axes {self.reduce_axes}"
        return f"{head}\n    ops: {fused}\n    reads {reads or '-'} -> writes {writes}" + (
            f"\n    ends: {self.why}" if self.why else ""
        )


def broadcast_index(shape: tuple, domain: tuple) -> tuple:
    """The affine index of an operand of `shape` broadcast (numpy's rules) over `domain`:
    the loop variable of the aligned axis, or 0 where the operand has size 1."""
    offset = len(domain) - len(shape)
    index = []
    for k, d in enumerate(shape):
        axis = offset + k
        stretched = d == 1 and domain[axis] != 1
        index.append(sympy.Integer(0) if stretched else LOOP_VARS[axis])
    return tuple(index)


@dataclass
class KernelProgram:
    """The kernels of a compiled function in execution order, with their buffers."""

    kernels: list
    buffers: dict  # Node -> Buffer
    roots: tuple
    log: list = field(default_factory=list)

    def temps(self) -> list:
        return [b for b in self.buffers.values() if b.kind == "temp"]

    def describe(self) -> str:
        lines = [f"{len(self.kernels)} kernels ({self.count('library')} library calls):"]
        for kernel in self.kernels:
            lines.append("  " + kernel.describe(self.buffers).replace("\n", "\n  "))
        return "\n".join(lines)

    def count(self, kind: str) -> int:
        return sum(1 for k in self.kernels if k.kind == kind)
