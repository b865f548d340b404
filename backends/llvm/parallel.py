"""Threads for the LLVM backend: a kernel's outer loop split over a few POSIX threads.

`nest(self, b, domain, body, ...)` is codegen's `_nest` with its outer loop (the first
`collapse` axes, flattened) outlined into an internal function

    void kernel.K.par(i8** bufs, i64* sizes, i64* status, i64 start, i64 end)

that runs the iterations [start, end), and, in the kernel, a call to the module's
`graphc.parallel_for(body, bufs, sizes, status, n, work)`. `work` estimates the kernel's
cost (elements times a per-element cost from its ops) from the run-time sizes (symbolic
sizes are only known then). parallel_for runs the body on the calling thread when the
work is below the threshold or one thread is asked for; otherwise it cuts [0, n) into
T = min(threads, n, work / threshold) contiguous chunks and hands them to the process's
pool of workers (backends/llvm/pool.py: chunk 0 runs on the calling thread). When the pool
is busy (another Python thread's call holds it) or cannot start a worker, it starts T - 1
threads with pthread_create (resolved from the process), runs chunk 0 itself and joins
them; a failed pthread_create runs that chunk on the calling thread instead, so results
never depend on getting threads. A forked child's pool starts workers of its own.

Each chunk writes the error flags of codegen's `fail` into a private status pair; the
caller merges them after the join (a flagged chunk's code wins), so outlined bodies need no
atomics. The call's status array (i64, filled by the runtime in __init__.py) is:

    status[0], status[1]   error code and kind (codegen.fail)
    status[2]              threads to use (GRAPHC_NUM_THREADS, read at every call)
    status[3]              work threshold per thread (GRAPHC_PARALLEL_MIN_WORK)
    status[4]              out: chunks that ran on started threads (tests check it)
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable

import sympy
from llvmlite import binding as llvm
from llvmlite import ir

from backends.llvm import pool
from backends.llvm.irutil import I8P, I32, I64, for_range
from graphc.node import Node

THREADS, MIN_WORK, WORKERS = 2, 3, 4
STATUS_SLOTS = 5
MAX_THREADS = 256
DEFAULT_MIN_WORK = 1 << 17  # ~20-40 us a thread: handing a chunk to a pooled worker costs ~1-10 us
RUNTIME = "graphc.parallel_for"
# per-element cost of an elementwise op in the work estimate (1 for the others)
EXPENSIVE = {
    "exp": 8, "log": 8, "tanh": 10, "sigmoid": 8, "softplus": 12, "expm1": 8, "log1p": 10,
    "sin": 20, "cos": 20, "erf": 20, "erfc": 20, "pow": 20, "gelu": 20, "silu": 8,
    "divide": 2, "sqrt": 2, "rsqrt": 2, "reciprocal": 2,
}  # fmt: skip

VOID = ir.VoidType()
BODY = ir.FunctionType(VOID, [I8P.as_pointer(), I64.as_pointer(), I64.as_pointer(), I64, I64])
# one chunk: body, bufs, sizes, start, end, private status pair, pthread_t, started
PAIR = ir.ArrayType(I64, 2)
TASK = ir.LiteralStructType(
    [BODY.as_pointer(), I8P.as_pointer(), I64.as_pointer(), I64, I64, PAIR, I64, I64]
)


# run-time settings -----------------------------------------------------------------------------
@functools.cache
def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@functools.cache
def _parse(text: str | None, default: int, name: str) -> int:
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected a positive integer") from None
    if value < 1:
        raise ValueError(f"{name}={text!r}: expected a positive integer")
    return value


def num_threads() -> int:
    """GRAPHC_NUM_THREADS (read at each call), else the cores this process may run on."""
    found = _parse(os.environ.get("GRAPHC_NUM_THREADS"), _cores(), "GRAPHC_NUM_THREADS")
    return min(found, MAX_THREADS)


def min_work() -> int:
    """GRAPHC_PARALLEL_MIN_WORK: estimated work a thread must get (tests set it to 1)."""
    return _parse(
        os.environ.get("GRAPHC_PARALLEL_MIN_WORK"), DEFAULT_MIN_WORK, "GRAPHC_PARALLEL_MIN_WORK"
    )


@functools.cache
def link_symbols() -> None:
    """Point MCJIT at this process's pthread_create / pthread_join (it would search the
    process too; naming them makes a missing one fail here, not in the linker)."""
    process = ctypes.CDLL(None)
    for name in ("pthread_create", "pthread_join", "pthread_detach", "getpid", "syscall"):
        address = ctypes.cast(getattr(process, name), ctypes.c_void_p).value
        llvm.add_symbol(name, address)


# the cost model ------------------------------------------------------------------------------
def cost(nodes: list) -> int:
    """Estimated work per element of statements `nodes` (in units of an add)."""
    return max(1, sum(EXPENSIVE.get(n.op, 1) for n in nodes if isinstance(n, Node)))


# code generation -------------------------------------------------------------------------------
def nest(  # noqa: PLR0913
    self,  # noqa: ANN001 - the codegen.ModuleBuilder
    b: ir.IRBuilder,
    domain: tuple,
    body: Callable[[list], None],
    name: str,
    per_element: int,
    inner: tuple = (),
    collapse: int = 1,
    before: Callable[[], None] | None = None,
    interleave: int = 1,
) -> None:
    """Loops over `domain` around body(loops), like ModuleBuilder._nest, with the first
    `collapse` axes split over threads when the estimated work, prod(domain) * prod(inner)
    * per_element, is large enough. `body` must not use IR values made before this call
    (it is emitted into another function) except those `before()` makes: it runs where the
    loops are built, ahead of them; size-1 axes get the constant 0 for a variable.
    `interleave` > 1 hints the innermost loop to the vectoriser (irutil.interleave_hint)."""
    domain = tuple(sympy.sympify(d) for d in domain)
    outer = [k for k in range(min(collapse, len(domain))) if domain[k] != 1]
    if not outer:
        if before is not None:
            before()
        _serial(self, b, domain, [], body, name, interleave=interleave)
        return
    rest = domain[outer[-1] + 1 :]
    count = ir.Constant(I64, 1)
    for k in outer:
        count = b.mul(count, self.size(b, domain[k]), name=f"{name}.par.n")
    work = ir.Constant(I64, per_element)
    for d in rest + tuple(inner):
        work = b.mul(work, self.size(b, d), name=f"{name}.work")
    work = b.mul(work, count, name=f"{name}.work")
    runtime = _runtime(b.module)
    outlined = _outline(self, b, domain, outer, body, name, before, interleave)
    bufs, sizes, status = b.function.args[:3]
    b.call(runtime, [outlined, bufs, sizes, status, count, work])


def _outline(self, b, domain, outer, body, name, before=None, interleave=1):  # noqa: ANN001, ANN202
    """The function running iterations [start, end) of the flattened `outer` axes."""
    module = b.module
    fn = ir.Function(module, BODY, name=f"{b.function.name}.par.{len(module.functions)}")
    fn.linkage = "internal"
    bufs, sizes, status, start, end = fn.args
    bufs.name, sizes.name, status.name, start.name, end.name = (
        "bufs", "sizes", "status", "start", "end"
    )  # fmt: skip
    for arg in (bufs, sizes, status):
        arg.add_attribute("noalias")
    saved = b.block
    b.position_at_end(fn.append_basic_block("entry"))
    if before is not None:
        before()
    span = b.sub(end, start, name="span")
    rest = domain[outer[-1] + 1 :]
    innermost = all(d == 1 for d in rest)  # the chunk's loop is the innermost one
    with for_range(b, span, f"{name}.p", interleave if innermost else 1) as j:
        flat = b.add(start, j, name=f"{name}.flat")
        loops = [ir.Constant(I64, 0)] * (outer[-1] + 1)
        for k in reversed(outer[1:]):
            extent = self.size(b, domain[k])
            loops[k] = b.srem(flat, extent, name=f"{name}{k}")
            flat = b.sdiv(flat, extent, name=f"{name}.q")
        loops[outer[0]] = flat
        _serial(self, b, rest, loops, body, name, outer[-1] + 1, interleave)
    b.ret_void()
    b.position_at_end(saved)
    return fn


def _serial(self, b, domain, loops, body, name, first=0, interleave=1) -> None:  # noqa: ANN001
    """Loops over `domain` (variables after `loops`) around body; 0 for size-1 axes; the
    innermost loop gets the interleave hint."""
    if not domain:
        body(list(loops))
        return
    if domain[0] == 1:
        zero = ir.Constant(I64, 0)
        _serial(self, b, domain[1:], loops + [zero], body, name, first + 1, interleave)
        return
    hint = interleave if all(d == 1 for d in domain[1:]) else 1
    with for_range(b, self.size(b, domain[0]), f"{name}{first}", hint) as var:
        _serial(self, b, domain[1:], loops + [var], body, name, first + 1, interleave)


def entry_alloca(
    b: ir.IRBuilder, ty: ir.Type, name: str, count: ir.Value | None = None
) -> ir.Value:
    """A stack slot (or `count` of them) in the entry block of the function being built (a
    static alloca: one per call, promoted to a register by mem2reg; an alloca in a loop
    grows the stack)."""
    with b.goto_entry_block():
        return b.alloca(ty, size=count, name=name)


def _runtime(module: ir.Module) -> ir.Function:
    """graphc.parallel_for, defined once per module."""
    found = module.globals.get(RUNTIME)
    if found is not None:
        return found
    fn = ir.Function(
        module,
        ir.FunctionType(VOID, [BODY.as_pointer(), I8P.as_pointer(), I64.as_pointer(),
                               I64.as_pointer(), I64, I64]),
        name=RUNTIME,
    )  # fmt: skip
    fn.linkage = "internal"
    _emit_runtime(fn, _worker(module))
    return fn


def _worker(module: ir.Module) -> ir.Function:
    """i8* graphc.parallel_worker(i8* task): runs one chunk (the pthread start routine)."""
    fn = ir.Function(module, ir.FunctionType(I8P, [I8P]), name="graphc.parallel_worker")
    fn.linkage = "internal"
    (raw,) = fn.args
    raw.name = "raw"
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    task = b.bitcast(raw, TASK.as_pointer(), name="task")
    fields = [b.load(_field(b, task, k), name=f"f{k}") for k in range(5)]
    private = b.bitcast(_field(b, task, 5), I64.as_pointer(), name="status")
    body, bufs, sizes, start, end = fields
    b.call(body, [bufs, sizes, private, start, end])
    b.ret(ir.Constant(I8P, None))
    return fn


def _field(b: ir.IRBuilder, task: ir.Value, k: int) -> ir.Value:
    return b.gep(task, [ir.Constant(I32, 0), ir.Constant(I32, k)], name=f"task.{k}")


def _slot(b: ir.IRBuilder, status: ir.Value, k: int) -> ir.Value:
    return b.gep(status, [ir.Constant(I64, k)], name=f"status.{k}")


def _emit_runtime(fn: ir.Function, worker: ir.Function) -> None:
    module = fn.module
    tid_ptr = I64.as_pointer()
    create = module.globals.get("pthread_create") or ir.Function(
        module, ir.FunctionType(I32, [tid_ptr, I8P, worker.type, I8P]), name="pthread_create"
    )
    join = module.globals.get("pthread_join") or ir.Function(
        module, ir.FunctionType(I32, [I64, I8P.as_pointer()]), name="pthread_join"
    )
    body, bufs, sizes, status, n, work = fn.args
    for arg, text in zip(fn.args, ("body", "bufs", "sizes", "status", "n", "work")):
        arg.name = text
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    zero, one = ir.Constant(I64, 0), ir.Constant(I64, 1)
    threads = b.load(_slot(b, status, THREADS), name="threads")
    threshold = b.load(_slot(b, status, MIN_WORK), name="min.work")
    threshold = b.select(b.icmp_signed("<", threshold, one, name="lo"), one, threshold, name="thr")
    by_work = b.sdiv(work, threshold, name="by.work")
    chunks = _smin(b, _smin(b, threads, n, "t.n"), by_work, "chunks")
    serial = fn.append_basic_block("serial")
    split = fn.append_basic_block("split")
    b.cbranch(b.icmp_signed("<=", chunks, one, name="alone"), serial, split)

    b.position_at_end(serial)
    b.call(body, [bufs, sizes, status, zero, n])
    b.ret_void()

    b.position_at_end(split)
    tasks = b.alloca(TASK, size=chunks, name="tasks")
    null = ir.Constant(I8P, None)
    with for_range(b, chunks, "fill") as c:
        task = b.gep(tasks, [c], name="task")
        begin = b.sdiv(b.mul(n, c, name="nc"), chunks, name="begin")
        after = b.add(c, one, name="c1")
        finish = b.sdiv(b.mul(n, after, name="nc1"), chunks, name="finish")
        for k, value in enumerate((body, bufs, sizes, begin, finish)):
            b.store(value, _field(b, task, k))
        pair = _field(b, task, 5)
        for k in range(2):
            b.store(zero, b.gep(pair, [ir.Constant(I32, 0), ir.Constant(I32, k)], name="st"))
        b.store(zero, _field(b, task, 7))
    if pool.available():  # the process's workers, unless another call holds them
        pooled = b.call(pool.declare(module, TASK.as_pointer()), [tasks, chunks], name="pooled")
        with b.if_then(pooled):
            _merge(b, tasks, chunks, status)
            workers = _slot(b, status, WORKERS)
            ran = b.sub(chunks, one, name="ran")
            b.store(b.add(b.load(workers, name="w0"), ran, name="w1"), workers)
            b.ret_void()
    with for_range(b, b.sub(chunks, one, name="others"), "start") as c:
        task = b.gep(tasks, [b.add(c, one, name="c")], name="task")
        raw = b.bitcast(task, I8P, name="raw")
        rc = b.call(create, [_field(b, task, 6), null, worker, raw], name="rc")
        started = b.icmp_signed("==", rc, ir.Constant(I32, 0), name="started")
        b.store(b.zext(started, I64, name="ok"), _field(b, task, 7))
        with b.if_then(b.not_(started, name="failed")):  # no thread: run it here
            b.call(worker, [raw], name="inline")
    b.call(worker, [b.bitcast(tasks, I8P, name="first")], name="mine")
    count = b.alloca(I64, name="count")
    b.store(zero, count)
    with for_range(b, chunks, "join") as c:
        task = b.gep(tasks, [c], name="task")
        started = b.load(_field(b, task, 7), name="started")
        with b.if_then(b.icmp_signed("!=", started, zero, name="was")):
            tid = b.load(_field(b, task, 6), name="tid")
            b.call(join, [tid, ir.Constant(I8P.as_pointer(), None)], name="joined")
        b.store(b.add(b.load(count, name="n0"), started, name="n1"), count)
    _merge(b, tasks, chunks, status)
    workers = _slot(b, status, WORKERS)
    total = b.add(b.load(workers, name="w0"), b.load(count, name="ran"), name="w1")
    b.store(total, workers)
    b.ret_void()


def _merge(b: ir.IRBuilder, tasks: ir.Value, chunks: ir.Value, status: ir.Value) -> None:
    """The chunks' private error flags into the call's status (a flagged chunk's wins)."""
    zero = ir.Constant(I64, 0)
    with for_range(b, chunks, "merge") as c:
        pair = _field(b, b.gep(tasks, [c], name="task"), 5)
        code = b.load(b.gep(pair, [ir.Constant(I32, 0), ir.Constant(I32, 0)], name="c0"))
        with b.if_then(b.icmp_signed("!=", code, zero, name="flagged")):
            kind = b.load(b.gep(pair, [ir.Constant(I32, 0), ir.Constant(I32, 1)], name="c1"))
            b.store(code, _slot(b, status, 0))
            b.store(kind, _slot(b, status, 1))


def _smin(b: ir.IRBuilder, x: ir.Value, y: ir.Value, name: str) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y, name=f"{name}.lt"), x, y, name=name)


__all__ = ["entry_alloca", "min_work", "nest", "num_threads"]
