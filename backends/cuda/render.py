"""KernelProgram -> CUDA C source and a launch plan (the host's list of steps).

Each kernel of graphc/kernels.py becomes one or more `extern "C" __global__` functions named
after it (k3, k3_scatter, ...) whose parameters are the buffers it reads and writes (typed
pointers), the run-time values of the symbolic sizes it uses (`long long`), and a status
array for bad input (labels outside [0, K)...). The plan says, per function, how to launch
it: "threads" (a grid-stride loop over `count` elements, 256 threads a block), "rows" (one
block per row and a block reduction: reductions, softmax, cross-entropy), or "gemm" (16x16
tiles). Large GEMMs are "library" steps (cupy.matmul on the GPU, numpy.matmul emulated)
followed by an epilogue function. Index math is 64-bit when a size is symbolic or a buffer
has 2**31 elements or more, else 32-bit.

Kernels lowered here: elementwise, reductions (sum, mean, max) with prologue and epilogue,
transpose; the others live beside this file (gemm.py, ops.py, shape_ops.py, conv.py).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sympy

from backends.cuda import scalar
from backends.cuda.scalar import ctype, literal
from graphc.kernels import (
    LOOP_VARS,
    Buffer,
    Kernel,
    KernelProgram,
    broadcast_index,
    operand_index,
    root_index,
    statement_indices,
)
from graphc.node import Node

PRELUDE = (Path(__file__).parent / "prelude.cuh").read_text()
THREADS = 256
LABELS, INDEX = 1, 3  # failure kinds in status[1], as the LLVM backend's


@dataclass(frozen=True)
class Param:
    kind: str  # "buffer" | "size" | "status"
    name: str
    ctype: str  # the C type of the argument: "float*", "long long", "int*"
    node: Node | None = None  # buffer: the node whose memory it is (views resolved)
    expr: sympy.Expr | None = None  # size


@dataclass
class Launch:
    function: str
    params: list
    kind: str  # "threads" | "rows" | "gemm"
    count: tuple  # threads/rows: (count,); gemm: (m, n, batch)
    block: tuple
    cooperative: bool  # uses __syncthreads or warp shuffles
    kernel: int  # the kernel's number (for errors)


@dataclass
class LibraryMatmul:
    """C = op(A) @ op(B) by the array library into `storage`, np.matmul's semantics."""

    a: Node  # the buffers read (a transposed operand's source)
    b: Node
    a_axes: tuple | None  # the transpose applied to a's buffer, or None
    b_axes: tuple | None
    storage: Node
    kernel: int


@dataclass
class Choice:
    """Run `library` steps when m*n*k >= threshold at run time, else `tiled` steps."""

    work: sympy.Expr
    threshold: int
    library: list
    tiled: list


@dataclass
class Rendered:
    source: str  # the whole CUDA C translation unit (prelude included)
    steps: list  # Launch | LibraryMatmul | Choice, in order
    buffers: list  # every Buffer the steps use: the program's, then scratch buffers
    functions: list = field(default_factory=list)  # (name, params) of each __global__ function


def numel(shape: tuple) -> sympy.Expr:
    total = sympy.Integer(1)
    for d in shape:
        total = total * d
    return total


def normal(shape: tuple, index: tuple) -> tuple:
    """`index` with 0 on the size-1 axes."""
    return tuple(sympy.Integer(0) if d == 1 else i for d, i in zip(shape, index))


class Function:
    """One __global__ function being written: its body lines and the parameters it uses."""

    def __init__(self, renderer: Renderer, name: str, cooperative: bool = False) -> None:
        self.r = renderer
        self.name = name
        self.cooperative = cooperative
        self.lines: list = []
        self.depth = 1
        self.params: list = []
        self._by_key: dict = {}
        self.count = 0

    # writing -----------------------------------------------------------------------------------
    def line(self, text: str) -> None:
        self.lines.append("  " * self.depth + text)

    @contextmanager
    def block(self, head: str):  # noqa: ANN201
        self.line(head + " {")
        self.depth += 1
        yield
        self.depth -= 1
        self.line("}")

    def tmp(self, prefix: str = "v") -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def let(self, ty: str, value: str, prefix: str = "v") -> str:
        name = self.tmp(prefix)
        self.line(f"const {ty} {name} = {value};")
        return name

    def var(self, ty: str, value: str, prefix: str = "a") -> str:
        name = self.tmp(prefix)
        self.line(f"{ty} {name} = {value};")
        return name

    # parameters --------------------------------------------------------------------------------
    def _param(self, key: tuple, make) -> str:  # noqa: ANN001
        if key not in self._by_key:
            param = make(f"P{len(self.params)}")
            self.params.append(param)
            self._by_key[key] = param
        return self._by_key[key].name

    def buf(self, node: Node) -> str:
        """The pointer parameter of node's buffer (a view's source), typed as node."""
        source = self.r.storage(node)
        ty = ctype(node.dtype)
        return self._param(("buf", source), lambda n: Param("buffer", n, f"{ty}*", node=source))

    def size(self, expr) -> str:  # noqa: ANN001
        """The C value of a size: a literal, or a parameter the host evaluates per call."""
        expr = sympy.sympify(expr)
        if expr.is_number:
            text = f"{int(expr)}LL" if self.r.idx == "long long" else str(int(expr))
            return f"({text})" if int(expr) < 0 else text
        return self._param(("size", expr), lambda n: Param("size", n, "long long", expr=expr))

    def status(self) -> str:
        return self._param(("status",), lambda n: Param("status", n, "int*"))

    def fail(self, condition: str, kind: int) -> None:
        self.line(f"if ({condition}) gc_fail({self.status()}, {self.r.number}, {kind});")

    # memory ------------------------------------------------------------------------------------
    def offset(self, shape: tuple, index: list) -> str:
        """Row-major offset of `index` (C expressions, "0" allowed) in a buffer of `shape`."""
        out = None
        for d, i in zip(shape, index):
            if out is None:
                out = str(i)
            else:
                out = f"({out}) * {self.size(d)} + {i}"
        return out if out is not None else "0"

    def at(self, node: Node, index: list) -> str:
        return f"{self.buf(node)}[{self.offset(node.shape, index)}]"

    def load(self, node: Node, index: list) -> str:
        return self.let(ctype(node.dtype), self.at(node, index), "ld")

    def store(self, node: Node, value: str, index: list) -> None:
        self.line(f"{self.at(node, index)} = {value};")

    def c_index(self, index: tuple, loops: list) -> list:
        """C expressions of an index of LOOP_VARS (or 0) given the C loop variables."""
        return ["0" if i == 0 else loops[LOOP_VARS.index(i)] for i in index]

    # loops -------------------------------------------------------------------------------------
    def split(self, flat: str, sizes: tuple, prefix: str) -> list:
        """Row-major coordinates (new variables) of `flat` in a box of `sizes`."""
        names = [self.tmp(prefix) for _ in sizes]
        rest = flat
        for k in reversed(range(len(sizes))):
            if k == 0:
                self.line(f"const {self.r.idx} {names[k]} = {rest};")
            else:
                self.line(f"const {self.r.idx} {names[k]} = {rest} % {self.size(sizes[k])};")
                rest = f"({rest} / {self.size(sizes[k])})"
        return names

    @contextmanager
    def grid_stride(self, count: str, unit: str):  # noqa: ANN201
        """for every element (unit "thread") or row (unit "block") of `count`, grid-stride."""
        idx = self.r.idx
        flat = self.tmp("e" if unit == "thread" else "row")
        if unit == "thread":
            start = f"({idx})blockIdx.x * blockDim.x + threadIdx.x"
            step = f"({idx})blockDim.x * gridDim.x"
        else:
            start, step = f"({idx})blockIdx.x", f"({idx})gridDim.x"
        with self.block(f"for ({idx} {flat} = {start}; {flat} < {count}; {flat} += {step})"):
            yield flat

    @contextmanager
    def threads(self, domain: tuple, prefix: str = "i"):  # noqa: ANN201
        """A grid-stride loop over the elements of `domain`; yields the loop variables."""
        with self.grid_stride(self.size(numel(domain)), "thread") as flat:
            yield self.split(flat, domain, prefix)

    @contextmanager
    def strided(self, domain: tuple, prefix: str = "j"):  # noqa: ANN201
        """The threads of a block share the elements of `domain` (a row): yields variables."""
        r = self.tmp("r")
        count, idx = self.size(numel(domain)), self.r.idx
        with self.block(f"for ({idx} {r} = threadIdx.x; {r} < {count}; {r} += ({idx})blockDim.x)"):
            yield self.split(r, domain, prefix)

    @contextmanager
    def serial(self, domain: tuple, prefix: str = "t"):  # noqa: ANN201
        """Nested loops (inside one thread) over `domain`; yields the loop variables."""
        names = []
        depth = 0
        for d in domain:
            name = self.tmp(prefix)
            names.append(name)
            self.line(f"for ({self.r.idx} {name} = 0; {name} < {self.size(d)}; ++{name}) {{")
            self.depth += 1
            depth += 1
        yield names
        for _ in range(depth):
            self.depth -= 1
            self.line("}")

    def text(self) -> str:
        signature = ", ".join(
            f"{p.ctype[:-1]}* __restrict__ {p.name}"
            if p.ctype.endswith("*")
            else f"{p.ctype} {p.name}"
            for p in self.params
        )
        head = f'extern "C" __global__ void {self.name}({signature}) {{'
        return "\n".join([head, *self.lines, "}"])


class Renderer:
    def __init__(self, program: KernelProgram, gemm_mode: str = "auto", prefix: str = "") -> None:
        self.program = program
        self.prefix = prefix  # of every global name: several programs can share a source
        self.gemm_mode = gemm_mode
        self.buffers = dict(program.buffers)
        self.idx = "long long" if self._needs_64_bits() else "int"
        self.functions: list = []
        self.globals: list = []  # constant tables (take's indices)
        self.steps: list = []
        self.number = 0
        for number, kernel in enumerate(program.kernels):
            self.number = number
            self.steps.extend(self.kernel(kernel))

    def _needs_64_bits(self) -> bool:
        for node in self.program.buffers:
            total = sympy.sympify(numel(node.shape))
            if not total.is_number or int(total) >= 2**31 - 1:
                return True
        return False

    def rendered(self) -> Rendered:
        body = "\n\n".join(self.globals + [f.text() for f in self.functions])
        return Rendered(
            source=PRELUDE + "\n" + body + "\n",
            steps=self.steps,
            buffers=list(self.buffers.values()),
            functions=[(f.name, f.params) for f in self.functions],
        )

    # buffers -----------------------------------------------------------------------------------
    def storage(self, node: Node) -> Node:
        """The node whose memory holds node's value (a view's source)."""
        while node in self.buffers and self.buffers[node].kind == "view":
            node = node.inputs[0]
        if node not in self.buffers:
            raise KeyError(f"cuda backend: {node.label()} has no buffer")
        return node

    def scratch(self, node: Node) -> None:
        """Give `node` a temporary buffer of its own (an anchor no kernel output stores)."""
        if node not in self.buffers:
            self.buffers[node] = Buffer(f"scratch{len(self.buffers)}", node, "temp")

    # functions and launches ----------------------------------------------------------------------
    def function(self, suffix: str = "", cooperative: bool = False) -> Function:
        fn = Function(self, f"{self.prefix}k{self.number}{suffix}", cooperative)
        self.functions.append(fn)
        return fn

    def launch(
        self, fn: Function, kind: str, count: tuple, block: tuple = (THREADS, 1, 1)
    ) -> Launch:
        return Launch(fn.name, fn.params, kind, count, block, fn.cooperative, self.number)

    def kernel(self, kernel: Kernel) -> list:
        from backends.cuda import conv, gemm, ops, shape_ops, winograd

        for node in kernel.nodes:
            if node.dtype.startswith("complex"):
                raise NotImplementedError(
                    f"cuda backend: kernel {kernel.name} ({node.op}, built at {node.where}) "
                    f"computes complex values, which are not supported yet; use backend='numpy'"
                )
        anchor = kernel.anchor
        if kernel.kind == "elementwise":
            return self.elementwise(kernel)
        if kernel.kind == "reduce":
            return self.reduce(kernel)
        if kernel.kind == "library" and anchor.op == "matmul":
            return gemm.matmul(self, kernel)
        if kernel.kind == "library" and anchor.op in conv.KERNELS:
            return conv.KERNELS[anchor.op](self, kernel)
        if kernel.kind == "op" and anchor.op == "transpose":
            return self.transpose(kernel)
        for table in (ops.KERNELS, shape_ops.KERNELS, conv.KERNELS, winograd.KERNELS):
            if kernel.kind == "op" and anchor.op in table:
                return table[anchor.op](self, kernel)
        op = anchor.op if anchor is not None else kernel.kind
        where = anchor.where if anchor is not None else "?"
        raise NotImplementedError(
            f"cuda backend: kernel {kernel.name} ({kernel.kind} {op}, built at {where}) is not "
            f"supported yet; use backend='numpy'"
        )

    # statements ----------------------------------------------------------------------------------
    def evaluator(self, fn: Function, nodes: list, known: dict, root, loops: list, at=None):  # noqa: ANN001, ANN201
        """(get, own) as the LLVM backend's: get(node, index) is the C variable holding
        elementwise statement `node` (or a load, or a value in `known`) at `index`, each
        operand at its own index; own[n] is the index n is needed at. A value in `known`
        exists only at its index in `at` (when given there)."""
        members = set(nodes)
        own = statement_indices(nodes, root)
        cache: dict = {}

        def get(node: Node, index: tuple) -> str:
            if node in known:
                if at and node in at and normal(node.shape, index) != at[node]:
                    raise NotImplementedError(
                        f"cuda backend: kernel k{self.number}: its epilogue reads {node.op} "
                        f"at {index}, not where the kernel computes it"
                    )
                return known[node]
            key = (node, normal(node.shape, index))
            if key not in cache:
                if node in members:
                    args = [get(i, operand_index(node, i, index)) for i in node.inputs]
                    value = scalar.lower(node, args, fn.size)
                    cache[key] = fn.let(ctype(node.dtype), value)
                else:
                    cache[key] = fn.load(node, fn.c_index(key[1], loops))
            return cache[key]

        return get, own

    def finish(self, fn: Function, kernel: Kernel, value: str, loops: list) -> None:
        """Run the kernel's epilogue on the anchor's value (a C expression) at `loops` (C
        expressions, one per anchor axis) and store the outputs."""
        anchor = kernel.anchor
        epilogue = kernel.split()[1]
        value = fn.let(ctype(anchor.dtype), value, "y")
        names = [fn.let(self.idx, str(v), "o") for v in loops]
        root = lambda n: root_index(n.shape, anchor.shape)  # noqa: E731
        anchor_index = tuple(LOOP_VARS[: anchor.rank])
        at = {anchor: normal(anchor.shape, anchor_index)}
        get, own = self.evaluator(fn, epilogue, {anchor: value}, root, names, at)
        for node in kernel.outputs:
            index = anchor_index if node is anchor else own[node]
            fn.store(node, get(node, index), fn.c_index(normal(node.shape, index), names))

    # elementwise and reductions ------------------------------------------------------------------
    def elementwise(self, kernel: Kernel) -> list:
        fn = self.function()
        domain = kernel.domain
        with fn.threads(domain) as loops:
            root = lambda n: root_index(n.shape, domain)  # noqa: E731
            get, own = self.evaluator(fn, kernel.nodes, {}, root, loops)
            for node in kernel.outputs:
                index = normal(node.shape, own[node])
                fn.store(node, get(node, index), fn.c_index(index, loops))
        return [self.launch(fn, "threads", (numel(domain),))]

    def reduce(self, kernel: Kernel) -> list:
        anchor = kernel.anchor
        prologue, epilogue = kernel.split()
        domain, axes = kernel.domain, kernel.reduce_axes
        keep = [k for k in range(len(domain)) if k not in axes]
        ty = ctype(anchor.dtype)
        (source,) = anchor.inputs
        early = [n for n in prologue if n in kernel.outputs]
        fn = self.function(cooperative=True)
        kept = tuple(domain[k] for k in keep)
        reduced = tuple(domain[k] for k in axes)
        identity = f"gc_lowest(({ty})0)" if anchor.op == "max" else literal(0, ty)
        op = "gc_maxop()" if anchor.op == "max" else "gc_sum()"
        with fn.grid_stride(fn.size(numel(kept)), "block") as row:
            outer = fn.split(row, kept, "o")
            acc = fn.var(ty, identity, "acc")
            count = fn.size(numel(reduced))
            with fn.strided(reduced) as inner:
                loops = [None] * len(domain)
                for k, var in zip(keep, outer):
                    loops[k] = var
                for k, var in zip(axes, inner):
                    loops[k] = var
                root = lambda n: root_index(n.shape, domain)  # noqa: E731
                get, own = self.evaluator(fn, prologue, {}, root, loops)
                for node in early:
                    index = normal(node.shape, own[node])
                    fn.store(node, get(node, index), fn.c_index(index, loops))
                v = get(source, broadcast_index(source.shape, domain))
                v = scalar.convert(v, ctype(source.dtype), ty)
                fn.line(f"{acc} = {op}({acc}, {v});")
            fn.line(f"{acc} = gc_block_reduce<{ty}>({acc}, {op}, {identity});")
            with fn.block("if (threadIdx.x == 0)"):
                total = acc
                if anchor.op == "mean":
                    total = fn.let(ty, f"{acc} / ({ty})({count})", "mean")
                out_loops = self.output_loops(anchor, outer, keep)
                out_domain = anchor.shape

                def root_out(n: Node) -> tuple:
                    if n.rank > len(out_domain):
                        return tuple(LOOP_VARS[: n.rank])
                    return root_index(n.shape, out_domain)

                get, own = self.evaluator(
                    fn, prologue + epilogue, {anchor: total}, root_out, out_loops
                )
                for node in kernel.outputs:
                    if node in early:
                        continue
                    index = normal(node.shape, own[node] if node in own else root_out(node))
                    fn.store(node, get(node, index), fn.c_index(index, out_loops))
        block = reduce_block(reduced)
        return [self.launch(fn, "rows", (numel(kept),), (block, 1, 1))]

    def output_loops(self, anchor: Node, outer: list, keep: list) -> list:
        """C variables indexing a reduction's output (kept axes; "0" on size-1 ones)."""
        if not anchor.attrs.get("keepdims", False):
            return list(outer)
        loops = ["0"] * len(anchor.inputs[0].shape)
        for k, var in zip(keep, outer):
            loops[k] = var
        return loops

    def transpose(self, kernel: Kernel) -> list:
        anchor = kernel.anchor
        (source,) = anchor.inputs
        axes = anchor.attrs["axes"]
        fn = self.function()
        with fn.threads(anchor.shape, "o") as loops:
            index = [None] * len(axes)
            for out_axis, in_axis in enumerate(axes):
                index[in_axis] = loops[out_axis]
            self.finish(fn, kernel, fn.load(source, index), loops)
        return [self.launch(fn, "threads", (numel(anchor.shape),))]


def reduce_block(reduced: tuple) -> int:
    """Threads of a block reducing `reduced` elements: fewer for a short static row."""
    total = sympy.sympify(numel(reduced))
    if total.is_number:
        n = int(total)
        block = 32
        while block < n and block < THREADS:
            block *= 2
        return block
    return THREADS


def render(program: KernelProgram, gemm_mode: str = "auto", prefix: str = "") -> Rendered:
    return Renderer(program, gemm_mode, prefix).rendered()


__all__ = ["Launch", "LibraryMatmul", "Param", "Rendered", "Renderer", "render"]
