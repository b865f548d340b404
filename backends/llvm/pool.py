"""A process-wide pool of worker threads for graphc.parallel_for (backends/llvm/parallel.py).

Starting and joining threads for every split kernel cost ~70 us a call; the pool's workers
outlive the call. One small library module (compiled once per process, kept in the disk
cache like the generated GEMM) defines

    i1 graphc.pool_run(TASK* tasks, i64 chunks)

which runs chunk 0 on the calling thread and chunks 1 .. chunks-1 on workers 1 .. chunks-1
(started on first need, never stopped), and returns 1; or returns 0 at once, having run
nothing, when the pool is busy (another thread's call holds it) or a worker cannot be
started: parallel_for then starts threads of its own as before.

A call publishes the tasks and bumps a 32-bit generation (release); a worker that sees a new
generation runs its chunk and counts it done (release); the caller spins until all are done.
Between calls a worker spins (x86 `pause`) for a short while, then sleeps in futex(2) on the
generation: a caller that finds sleepers wakes them. The sleeper count and the generation are
sequentially consistent, so a wake-up is never lost. After fork() the child has none of the
parent's workers: the pool notices that getpid() changed and starts new ones.
"""

from __future__ import annotations

import ctypes
import platform
import threading

from llvmlite import binding as llvm
from llvmlite import ir

from backends.llvm.irutil import I8P, I32, I64

SYMBOL = "graphc.pool_run"
MAX_WORKERS = 256
SPIN = 20000  # pause iterations (~0.3 ms) before a worker sleeps
FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE = 128, 129
VOID = ir.VoidType()
I1 = ir.IntType(1)

_lock = threading.Lock()
_engine = None


def available() -> bool:
    """The pool needs the futex system call's number for this machine."""
    return FUTEX is not None


def declare(module: ir.Module, task_ptr: ir.Type) -> ir.Function:
    """graphc.pool_run declared in `module` (the library is compiled on first use)."""
    ensure()
    found = module.globals.get(SYMBOL)
    if found is None:
        found = ir.Function(module, ir.FunctionType(I1, [task_ptr, I64]), name=SYMBOL)
    return found


def ensure() -> None:
    """Compile the pool library once per process and publish its symbol."""
    global _engine
    with _lock:
        if _engine is not None:
            return
        from backends.llvm import cache, jit

        tm = jit.target_machine()
        digest = cache.source_digest("pool.py", "parallel.py", "jit.py")
        engine = jit.library_engine(f"pool {SPIN} {MAX_WORKERS} {digest}", _source, tm)
        llvm.add_symbol(SYMBOL, engine.get_function_address(SYMBOL))
        # workers run this code until the process ends: the engine is never freed
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(engine))
        _engine = engine


def _source() -> str:
    from backends.llvm import jit, parallel

    tm = jit.target_machine()
    module = ir.Module(name="graphc.pool")
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    _Library(module, parallel.TASK, parallel.BODY).emit()
    return str(module)


class _Library:
    """The pool's globals and functions in one module."""

    def __init__(self, module: ir.Module, task: ir.Type, body: ir.Type) -> None:
        self.module = module
        self.task = task
        self.body = body
        self.globals: dict = {}
        for name, ty in (
            ("lock", I64),
            ("gen", I32),
            ("done", I64),
            ("chunks", I64),
            ("workers", I64),
            ("pid", I32),
            ("sleepers", I64),
            ("tasks", task.as_pointer()),
            ("seen", ir.ArrayType(I32, MAX_WORKERS)),
        ):
            var = ir.GlobalVariable(module, ty, name=f"graphc.pool.{name}")
            var.linkage = "internal"
            var.initializer = ir.Constant(ty, None)
            self.globals[name] = var
        syscall_type = ir.FunctionType(I64, [I64], var_arg=True)
        self.syscall = ir.Function(module, syscall_type, name="syscall")
        self.getpid = ir.Function(module, ir.FunctionType(I32, []), name="getpid")
        start_type = ir.FunctionType(I8P, [I8P]).as_pointer()
        self.create = ir.Function(
            module,
            ir.FunctionType(I32, [I64.as_pointer(), I8P, start_type, I8P]),
            name="pthread_create",
        )
        self.detach = ir.Function(module, ir.FunctionType(I32, [I64]), name="pthread_detach")

    def g(self, name: str) -> ir.GlobalVariable:
        return self.globals[name]

    def pause(self, b: ir.IRBuilder) -> None:
        """A spin-wait hint to the core (x86's pause; elsewhere nothing)."""
        if platform.machine() != "x86_64":
            return
        name = "llvm.x86.sse2.pause"
        hint = self.module.globals.get(name) or ir.Function(
            self.module, ir.FunctionType(VOID, []), name=name
        )
        b.call(hint, [])

    def run_chunk(self, b: ir.IRBuilder, task: ir.Value) -> None:
        """task's body over its range, its errors into its private status pair."""
        fields = [
            b.load(b.gep(task, [ir.Constant(I32, 0), ir.Constant(I32, k)]), name=f"f{k}")
            for k in range(5)
        ]
        pair = b.gep(task, [ir.Constant(I32, 0), ir.Constant(I32, 5)], name="pair")
        private = b.bitcast(pair, I64.as_pointer(), name="private")
        body, bufs, sizes, start, end = fields
        b.call(body, [bufs, sizes, private, start, end])

    def emit(self) -> None:
        worker = self.worker()
        self.run(worker)

    def worker(self) -> ir.Function:
        """i8* graphc.pool.worker(i8* index): chunk `index` of every generation, forever."""
        fn = ir.Function(self.module, ir.FunctionType(I8P, [I8P]), name="graphc.pool.worker")
        fn.linkage = "internal"
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        index = b.ptrtoint(fn.args[0], I64, name="index")
        seen_at = b.gep(self.g("seen"), [ir.Constant(I64, 0), index], name="seen.at")
        seen = b.alloca(I32, name="seen")
        b.store(b.load_atomic(seen_at, "acquire", 4, name="seen0"), seen)
        spins = b.alloca(I64, name="spins")
        loop = fn.append_basic_block("loop")
        run = fn.append_basic_block("run")
        idle = fn.append_basic_block("idle")
        sleep = fn.append_basic_block("sleep")
        b.store(ir.Constant(I64, 0), spins)
        b.branch(loop)

        b.position_at_end(loop)
        gen = b.load_atomic(self.g("gen"), "acquire", 4, name="gen")
        b.cbranch(b.icmp_unsigned("!=", gen, b.load(seen, name="s")), run, idle)

        b.position_at_end(idle)
        count = b.add(b.load(spins, name="n"), ir.Constant(I64, 1), name="n1")
        b.store(count, spins)
        spin = fn.append_basic_block("spin")
        b.cbranch(b.icmp_signed("<", count, ir.Constant(I64, SPIN)), spin, sleep)
        b.position_at_end(spin)
        self.pause(b)
        b.branch(loop)

        b.position_at_end(sleep)
        b.atomic_rmw("add", self.g("sleepers"), ir.Constant(I64, 1), "seq_cst")
        again = b.load_atomic(self.g("gen"), "seq_cst", 4, name="again")
        with b.if_then(b.icmp_unsigned("==", again, b.load(seen, name="s2"))):
            futex_word = b.bitcast(self.g("gen"), I8P, name="word")
            args = [
                ir.Constant(I64, FUTEX),
                b.ptrtoint(futex_word, I64),
                ir.Constant(I64, FUTEX_WAIT_PRIVATE),
                b.zext(again, I64),
                ir.Constant(I64, 0),
            ]
            b.call(self.syscall, args, name="wait")
        b.atomic_rmw("sub", self.g("sleepers"), ir.Constant(I64, 1), "seq_cst")
        b.store(ir.Constant(I64, 0), spins)
        b.branch(loop)

        b.position_at_end(run)
        b.store(gen, seen)
        b.store(ir.Constant(I64, 0), spins)
        chunks = b.load(self.g("chunks"), name="chunks")
        with b.if_then(b.icmp_signed("<", index, chunks)):
            tasks = b.load(self.g("tasks"), name="tasks")
            self.run_chunk(b, b.gep(tasks, [index], name="task"))
            b.atomic_rmw("add", self.g("done"), ir.Constant(I64, 1), "release")
        b.branch(loop)
        return fn

    def run(self, worker: ir.Function) -> None:
        """i1 graphc.pool_run(TASK* tasks, i64 chunks)."""
        fn = ir.Function(
            self.module, ir.FunctionType(I1, [self.task.as_pointer(), I64]), name=SYMBOL
        )
        tasks, chunks = fn.args
        tasks.name, chunks.name = "tasks", "chunks"
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        zero, one = ir.Constant(I64, 0), ir.Constant(I64, 1)
        busy = fn.append_basic_block("busy")
        mine = fn.append_basic_block("mine")
        claimed = b.cmpxchg(self.g("lock"), zero, one, "acquire", "monotonic", name="claim")
        b.cbranch(b.extract_value(claimed, 1, name="won"), mine, busy)
        b.position_at_end(busy)
        b.ret(ir.Constant(I1, 0))

        b.position_at_end(mine)
        pid = b.call(self.getpid, [], name="pid")
        with b.if_then(b.icmp_signed("!=", pid, b.load(self.g("pid"), name="owner"))):
            b.store(zero, self.g("workers"))  # a forked child: the parent's workers are gone
            b.store(pid, self.g("pid"))
        need = b.sub(chunks, one, name="need")
        failed = fn.append_basic_block("failed")
        ready = fn.append_basic_block("ready")
        start_loop = fn.append_basic_block("start")
        b.branch(start_loop)
        b.position_at_end(start_loop)
        have = b.load(self.g("workers"), name="have")
        more = fn.append_basic_block("more")
        b.cbranch(b.icmp_signed("<", have, need), more, ready)
        b.position_at_end(more)
        index = b.add(have, one, name="index")
        seen_at = b.gep(self.g("seen"), [ir.Constant(I64, 0), index], name="seen.at")
        b.store_atomic(b.load_atomic(self.g("gen"), "acquire", 4), seen_at, "release", 4)
        tid = b.alloca(I64, name="tid")
        arg = b.inttoptr(index, I8P, name="arg")
        rc = b.call(self.create, [tid, ir.Constant(I8P, None), worker, arg], name="rc")
        started = fn.append_basic_block("started")
        b.cbranch(b.icmp_signed("==", rc, ir.Constant(I32, 0)), started, failed)
        b.position_at_end(started)
        b.call(self.detach, [b.load(tid, name="t")])
        b.store(index, self.g("workers"))
        b.branch(start_loop)

        b.position_at_end(failed)
        b.store_atomic(zero, self.g("lock"), "release", 8)
        b.ret(ir.Constant(I1, 0))

        b.position_at_end(ready)
        b.store(tasks, self.g("tasks"))
        b.store(chunks, self.g("chunks"))
        b.store(zero, self.g("done"))
        b.atomic_rmw("add", self.g("gen"), ir.Constant(I32, 1), "seq_cst")
        sleepers = b.load_atomic(self.g("sleepers"), "seq_cst", 8, name="sleepers")
        with b.if_then(b.icmp_signed(">", sleepers, zero)):
            word = b.bitcast(self.g("gen"), I8P, name="word")
            args = [
                ir.Constant(I64, FUTEX),
                b.ptrtoint(word, I64),
                ir.Constant(I64, FUTEX_WAKE_PRIVATE),
                ir.Constant(I64, 2**31 - 1),
            ]
            b.call(self.syscall, args, name="wake")
        self.run_chunk(b, tasks)
        wait = fn.append_basic_block("wait")
        finished = fn.append_basic_block("finished")
        b.branch(wait)
        b.position_at_end(wait)
        done = b.load_atomic(self.g("done"), "acquire", 8, name="done")
        spin = fn.append_basic_block("spin")
        b.cbranch(b.icmp_signed("<", done, need), spin, finished)
        b.position_at_end(spin)
        self.pause(b)
        b.branch(wait)
        b.position_at_end(finished)
        b.store_atomic(zero, self.g("lock"), "release", 8)
        b.ret(ir.Constant(I1, 1))


__all__ = ["available", "declare", "ensure"]
