"""fuse: group the optimized graph's nodes into kernels (graphc/kernels.py).

The rules, in the order they are applied:

1. Every reduction (sum, mean, max) and every other non-elementwise op starts a kernel:
   matmul, conv, FFTs are "library" kernels; softmax, pad, concat, pooling... are "op"
   kernels. Sources (inputs, params, constants) and reshapes (views) are buffers, no
   kernel.
2. Walking from the outputs back (consumers before producers), an elementwise node
   joins the kernel of its consumers when they all sit in one kernel that takes a
   prologue (an elementwise kernel, or a reduction's prologue); otherwise its value is
   materialized and it starts an elementwise kernel. So a group ends where a value is
   read by several kernels, feeds a library call or op (they read whole buffers), is
   reshaped, or is returned.
3. Epilogues: an elementwise kernel whose domain is exactly the output of a library, op or
   reduction kernel that it reads is merged into that kernel (bias add + relu after a
   GEMM, the SGD update after a gradient's reduction), unless that would make a cycle.
4. Siblings: elementwise kernels over the same domain that read a common buffer and do
   not depend on each other become one multi-output kernel.

Kernels are then scheduled (graphc/passes/memory.py) and every materialized value gets a
buffer.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy

from graphc.kernels import LOOP_VARS, Buffer, Kernel, KernelProgram, Load, broadcast_index
from graphc.node import Node, toposort
from graphc.ops import registry
from graphc.shapes import dims_equal

SOURCES = {"input", "param", "constant"}
VIEWS = {"reshape"}
REDUCTIONS = {"sum", "mean", "max"}
LIBRARY = {"matmul", "conv", "conv_transpose", "conv_wgrad", "rfft", "irfft", "fft", "ifft"}


def unit_reshape(node: Node) -> bool:
    """A reshape that only inserts or removes size-1 axes: an affine index map, fusible."""
    if node.op != "reshape":
        return False
    a, b = node.inputs[0].shape, node.shape
    return [d for d in a if d != 1] == [d for d in b if d != 1]


def category(node: Node) -> str:
    if node.op in SOURCES:
        return "source"
    if unit_reshape(node):
        return "elementwise"
    if node.op in VIEWS:
        return "view"
    if node.op in REDUCTIONS:
        return "reduce"
    if node.op in LIBRARY:
        return "library"
    if node.op == "dim_value" or node.op == "broadcast_to":
        return "elementwise"
    if registry.get(node.op).kind == "elementwise":
        return "elementwise"
    return "op"


class _Group:
    def __init__(self, kind: str, anchor: Node | None, domain: tuple) -> None:
        self.kind = kind
        self.anchor = anchor
        self.domain = domain
        self.members: set = set()
        self.epilogue = False

    def takes_prologue(self) -> bool:
        return self.kind in ("elementwise", "reduce")


def _same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(dims_equal(x, y) for x, y in zip(a, b))


class Fuser:
    def __init__(self, roots: Sequence[Node]) -> None:
        self.roots = tuple(roots)
        self.order = toposort(self.roots)
        self.position = {n: k for k, n in enumerate(self.order)}
        self.consumers: dict = {n: [] for n in self.order}
        for n in self.order:
            for i in n.inputs:
                self.consumers[i].append(n)
        self.group_of: dict = {}
        self.log: list = []

    # 1 + 2: seeds and prologues ----------------------------------------------------------------
    def assign(self) -> None:
        for node in reversed(self.order):
            kind = category(node)
            if kind in ("source", "view"):
                continue
            if node.op == "transpose" and self._feeds_gemm(node):
                # an operand of a GEMM read transposed: the library call takes it as it is
                (group,) = {self.group_of[c] for c in self.consumers[node]}
                self._join(node, group)
                continue
            if kind == "elementwise":
                groups = {self.group_of.get(c) for c in self.consumers[node]}
                if len(groups) == 1 and None not in groups:
                    (group,) = groups
                    if group.takes_prologue():  # a returned node is stored by the kernel too
                        self._join(node, group)
                        continue
                self._join(node, _Group("elementwise", None, node.shape))
            elif kind == "reduce":
                self._join(node, _Group("reduce", node, node.inputs[0].shape))
            else:
                self._join(node, _Group(kind, node, node.shape))

    def _feeds_gemm(self, node: Node) -> bool:
        """A transpose of the last two axes read only by matmuls of one kernel."""
        axes = node.attrs["axes"]
        rank = len(axes)
        swap = rank >= 2 and axes == (*range(rank - 2), rank - 1, rank - 2)
        users = self.consumers[node]
        groups = {id(self.group_of.get(c)) for c in users}
        return (
            swap
            and bool(users)
            and all(c.op == "matmul" and self.group_of.get(c) is not None for c in users)
            and len(groups) == 1
            and node not in self.roots
        )

    def _join(self, node: Node, group: _Group) -> None:
        group.members.add(node)
        self.group_of[node] = group

    # dependencies between groups ---------------------------------------------------------------
    def groups(self) -> list:
        seen: dict = {}
        for node in self.order:
            g = self.group_of.get(node)
            if g is not None and id(g) not in seen:
                seen[id(g)] = g
        return list(seen.values())

    def _producers(self, group: _Group) -> set:
        """Groups whose values `group` reads (through views too)."""
        found = set()
        for node in group.members:
            for i in node.inputs:
                src = self._through_views(i)
                g = self.group_of.get(src)
                if g is not None and g is not group:
                    found.add(id(g))
        return found

    def _through_views(self, node: Node) -> Node:
        while category(node) == "view":
            node = node.inputs[0]
        return node

    def _reaches(self, start: _Group, target: _Group, groups: dict) -> bool:
        """Whether `target` depends on `start` (a path start -> ... -> target)."""
        stack = [id(target)]
        seen = set()
        while stack:
            gid = stack.pop()
            if gid == id(start):
                return True
            if gid in seen:
                continue
            seen.add(gid)
            stack.extend(self._producers(groups[gid]))
        return False

    def _merge(self, into: _Group, other: _Group) -> None:
        for node in other.members:
            self._join(node, into)

    # 3: epilogues -----------------------------------------------------------------------------
    def fuse_epilogues(self) -> None:
        for group in self.groups():
            if group.kind != "elementwise" or not self._alive(group):
                continue
            groups = {id(g): g for g in self.groups()}
            for gid in sorted(self._producers(group), key=lambda g: self._first(groups[g])):
                producer = groups[gid]
                if producer.kind == "elementwise":
                    continue
                out_shape = producer.anchor.shape
                if not _same_shape(out_shape, group.domain) or self._via_view(group, producer):
                    continue
                # no other path producer -> ... -> group (merging would make a cycle)
                others = [groups[p] for p in self._producers(group) if p != gid]
                if any(self._reaches(producer, g, groups) for g in others):
                    continue
                self._merge(producer, group)
                producer.epilogue = True
                self.log.append(
                    f"epilogue: {' '.join(sorted(n.op for n in group.members))} "
                    f"fused after {producer.anchor.op} {tuple(out_shape)}"
                )
                break

    def _via_view(self, group: _Group, producer: _Group) -> bool:
        """Whether `group` reads a value of `producer` through a reshape (a view of a buffer:
        it can only be read once the producing kernel has stored it)."""
        for node in group.members:
            for i in node.inputs:
                view = category(i) == "view"
                if view and self.group_of.get(self._through_views(i)) is producer:
                    return True
        return False

    def _alive(self, group: _Group) -> bool:
        """False once the group was merged into another."""
        return all(self.group_of[n] is group for n in group.members)

    def _first(self, group: _Group) -> int:
        return min(self.position[n] for n in group.members)

    # 4: siblings ------------------------------------------------------------------------------
    def fuse_siblings(self) -> None:
        changed = True
        while changed:
            changed = False
            groups = {id(g): g for g in self.groups()}
            plain = [g for g in groups.values() if g.kind == "elementwise"]
            for a_index, a in enumerate(plain):
                for b in plain[a_index + 1 :]:
                    if not _same_shape(a.domain, b.domain):
                        continue
                    if not self._reads(a) & self._reads(b):
                        continue
                    if self._reaches(a, b, groups) or self._reaches(b, a, groups):
                        continue
                    self._merge(a, b)
                    self.log.append(f"siblings: two elementwise kernels over {tuple(a.domain)}")
                    changed = True
                    break
                if changed:
                    break

    def _reads(self, group: _Group) -> set:
        return {
            self._through_views(i)
            for n in group.members
            for i in n.inputs
            if self.group_of.get(self._through_views(i)) is not group
        }


def _ends(node: Node, group_members: set, consumers: list, roots: set) -> str:
    reasons = []
    if node in roots:
        reasons.append(f"{node.op} is returned")
    outside = [c for c in consumers if c not in group_members]
    if outside:
        readers = sorted({c.op for c in outside})
        reasons.append(
            f"{node.op} is read by {len(outside)} op(s) of other kernels ({', '.join(readers)})"
        )
    return "; ".join(reasons)


def fuse(roots: Sequence[Node]) -> KernelProgram:
    """The kernels computing `roots`, unscheduled (in a valid order), with their buffers."""
    from graphc.passes.memory import schedule

    fuser = Fuser(roots)
    fuser.assign()
    fuser.fuse_epilogues()
    fuser.fuse_siblings()
    root_set = set(roots)
    buffers: dict = {}
    names = {"temp": 0, "constant": 0}

    def buffer_of(node: Node, kind: str) -> Buffer:
        if node not in buffers:
            if node.op in ("input", "param"):
                name = node.attrs["name"]
            else:
                prefix = {"constant": "c", "view": "v"}.get(kind, "t")
                count = names.setdefault(kind, 0)
                names[kind] = count + 1
                name = f"{prefix}{count}"
            buffers[node] = Buffer(name, node, kind)
        return buffers[node]

    kernels = []
    for group in fuser.groups():
        members = sorted(group.members, key=fuser.position.get)
        outputs = [
            n
            for n in members
            if n in root_set or any(c not in group.members for c in fuser.consumers[n])
        ]
        loads = {}
        for n in members:
            for i in n.inputs:
                if i in group.members or i in loads:
                    continue
                if unit_reshape(n):  # the same elements: the output's loop variables, in order
                    index = _unit_reshape_index(i.shape, n.shape)
                elif category(n) == "elementwise":  # a scalar statement over n's own shape
                    index = broadcast_index(i.shape, n.shape)
                elif n.op == "transpose":  # read with the axes permuted
                    index = tuple(LOOP_VARS[n.attrs["axes"].index(k)] for k in range(i.rank))
                else:  # the library call or op reads the whole buffer
                    index = LOOP_VARS[: i.rank]
                loads[i] = Load(_buffer(i, buffer_of), tuple(index))
        why = "; ".join(
            filter(None, (_ends(n, group.members, fuser.consumers[n], root_set) for n in outputs))
        )
        kernels.append(
            Kernel(
                name="",
                kind=group.kind,
                domain=tuple(group.domain),
                nodes=members,
                outputs=outputs,
                anchor=group.anchor,
                reduce_axes=tuple(group.anchor.attrs["axes"]) if group.kind == "reduce" else (),
                loads=loads,
                why=why,
            )
        )
        for n in outputs:
            buffer_of(n, "temp")
    for node in roots:  # a root that is a leaf or a view is returned from its buffer
        _buffer(node, buffer_of)
    program = KernelProgram(kernels=kernels, buffers=buffers, roots=tuple(roots), log=fuser.log)
    schedule(program)
    for k, kernel in enumerate(program.kernels):
        kernel.name = f"k{k}"
    return program


def _unit_reshape_index(source: tuple, target: tuple) -> tuple:
    """Index into `source` for a loop over `target` when they differ only by size-1 axes."""
    variables = [LOOP_VARS[k] for k, d in enumerate(target) if d != 1]
    index = []
    for d in source:
        index.append(sympy.Integer(0) if d == 1 else variables.pop(0))
    return tuple(index)


def _buffer(node: Node, buffer_of) -> Buffer:  # noqa: ANN001
    if node.op in SOURCES:
        return buffer_of(node, "constant" if node.op == "constant" else node.op)
    if category(node) == "view":
        _buffer(node.inputs[0], buffer_of)
        return buffer_of(node, "view")
    return buffer_of(node, "temp")
