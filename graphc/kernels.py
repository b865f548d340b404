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

    def split(self) -> tuple:
        """(prologue, epilogue) of an anchored kernel: the members the anchor reads, and the
        rest (in order; some may not depend on the anchor at all)."""
        ancestors: set = set()
        stack = list(self.anchor.inputs)
        members = set(self.nodes)
        while stack:
            node = stack.pop()
            if node in members and node not in ancestors:
                ancestors.add(node)
                stack.extend(node.inputs)
        prologue = [n for n in self.nodes if n in ancestors]
        epilogue = [n for n in self.nodes if n is not self.anchor and n not in ancestors]
        return prologue, epilogue

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


# indices of a kernel's statements (every backend's lowering uses them) --------------------
def normal_index(shape: tuple, index: tuple) -> tuple:
    """`index` with 0 on the size-1 axes (where any loop variable is 0)."""
    return tuple(sympy.Integer(0) if d == 1 else i for d, i in zip(shape, index))


def root_index(shape: tuple, domain: tuple) -> tuple:
    """The index of a kernel output of `shape` in a loop over `domain`: the same elements in
    order when the two differ only by size-1 axes (a unit reshape changed the rank inside
    the kernel), numpy's right-aligned broadcasting otherwise."""
    if len(shape) != len(domain) and [d for d in shape if d != 1] == [d for d in domain if d != 1]:
        variables = [LOOP_VARS[k] for k, d in enumerate(domain) if d != 1]
        return tuple(sympy.Integer(0) if d == 1 else variables.pop(0) for d in shape)
    return broadcast_index(shape, domain)


def statement_indices(nodes: list, root) -> dict:  # noqa: ANN001
    """{statement: the index it is needed at} for a kernel's elementwise `nodes` (in order):
    a statement read by another of `nodes` is needed where its first consumer reads it,
    the others (the sinks) at root(statement)."""
    members = set(nodes)
    first: dict = {}
    for n in nodes:
        for i in n.inputs:
            if i in members:
                first.setdefault(i, n)
    own: dict = {}
    for n in reversed(nodes):  # consumers before their operands
        consumer = first.get(n)
        own[n] = root(n) if consumer is None else operand_index(consumer, n, own[consumer])
    return own


def operand_index(consumer: Node, operand: Node, index: tuple) -> tuple:
    """The index of `operand` of elementwise statement `consumer` evaluated at `index` (a
    tuple of loop variables or 0 per axis of consumer): the same elements for a unit
    reshape, numpy's right-aligned broadcasting otherwise."""
    if consumer.op == "reshape":
        kept = [i for i, d in zip(index, consumer.shape) if d != 1]
        return tuple(sympy.Integer(0) if d == 1 else kept.pop(0) for d in operand.shape)
    offset = len(index) - operand.rank
    return tuple(
        sympy.Integer(0) if d == 1 else index[offset + k] for k, d in enumerate(operand.shape)
    )


@dataclass
class MatmulOperand:
    """A matmul operand as a strided 2-D matrix (a fused transpose is a pair of strides)."""

    source: Node  # the buffer read
    transposed: bool
    rows: sympy.Expr  # of the logical 2-D matrix
    cols: sympy.Expr
    rs: sympy.Expr  # element strides of the logical matrix in the buffer
    cs: sympy.Expr
    batch: tuple  # the buffer's batch axes
    batch_strides: tuple


def matmul_operand(node: Node, kernel: Kernel, left: bool) -> MatmulOperand:
    members = set(kernel.nodes)
    transposed = node.op == "transpose" and node in members
    source = node.inputs[0] if transposed else node
    shape = source.shape
    one = sympy.Integer(1)
    if node.rank == 1:  # a row (1 x k) on the left, a column (k x 1) on the right
        k = shape[0]
        if left:
            return MatmulOperand(source, False, one, k, k, one, (), ())
        return MatmulOperand(source, False, k, one, one, one, (), ())
    last = shape[-1]
    rows, cols = (shape[-1], shape[-2]) if transposed else (shape[-2], shape[-1])
    rs, cs = (one, last) if transposed else (last, one)
    batch = shape[:-2]
    strides = []
    for axis in range(len(batch)):
        stride = one
        for d in shape[axis + 1 :]:
            stride = stride * d
        strides.append(stride)
    return MatmulOperand(source, transposed, rows, cols, rs, cs, batch, tuple(strides))


def batch_strides(operand: MatmulOperand, out_batch: tuple) -> list:
    """The operand's element stride per output batch axis (0 where broadcast)."""
    offset = len(out_batch) - len(operand.batch)
    strides = []
    for q, d in enumerate(out_batch):
        if q < offset:
            strides.append(sympy.Integer(0))
            continue
        mine = operand.batch[q - offset]
        strides.append(
            sympy.Integer(0) if mine == 1 and d != 1 else operand.batch_strides[q - offset]
        )
    return strides
