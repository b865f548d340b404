"""The CPU backend: kernels to LLVM IR through llvmlite, JIT-compiled, one native entry point.

`gc.compile(..., backend="llvm")` fuses the graph (graphc/passes), builds one LLVM
module (backends/llvm/codegen.py), verifies it, optimises it at -O3 for the host CPU
and JIT-compiles it with MCJIT (backends/llvm/jit.py). A call takes the buffers of this
thread's arena for the bound sizes (allocated on the first call with those sizes) and runs
`graphc_main` once (ctypes releases the GIL).

Threads (backends/llvm/parallel.py): kernels with an independent outer loop (elementwise,
reductions over kept axes, the softmax family, direct convolutions and pooling) run it through
`graphc.parallel_for`, which splits it over up to GRAPHC_NUM_THREADS threads (default: the
cores this process may use), read at every call, when the work estimated from the run-time
sizes exceeds GRAPHC_PARALLEL_MIN_WORK per thread; smaller kernels run on the calling thread.
The threads are started and joined within the kernel (pthread_create), so no pool outlives a
call: concurrent Python threads and fork() need no care.

GRAPHC_DEBUG=3 prints the LLVM IR, =4 the assembly; `f.source` holds the IR. Object code
is cached on disk (backends/llvm/cache.py), so a second process skips LLVM.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backends.llvm import jit, parallel
from backends.llvm.codegen import BOUNDS, ModuleBuilder
from backends.llvm.shape_ops import INDEX
from graphc.backend import ExecutionError, Program, register_backend

_init_lock = threading.Lock()


def _address(array: np.ndarray) -> int:
    """The address of a row-major array's data: through the buffer protocol when it is
    writable (a third of the time of .ctypes.data, which the others take)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))
    except (TypeError, ValueError):  # read-only, or empty
        return array.ctypes.data


def _c_order(array: Any) -> np.ndarray:
    """The array, row-major (copied only if it is not); unlike np.ascontiguousarray, a 0-d
    array stays 0-d."""
    return np.asarray(array, order="C")


@dataclass
class _Plan:
    """What a call with one binding of the symbolic sizes needs, worked out once."""

    bindings: Any
    sizes: list  # the values of builder.size_list
    roots: list = field(default_factory=list)  # (source buffer's node, shape, copy?) per root
    temps: dict = field(default_factory=dict)  # arena temporaries: node -> shape
    fresh: list = field(default_factory=list)  # (slot, node, shape): results, new each call
    fed: list = field(default_factory=list)  # (slot, node, "input" | "param")


class LLVMExecutable:
    def __init__(self, program: Program) -> None:
        if program.kernels is None:
            raise ValueError("backend 'llvm' compiles the optimizer's kernels: use optimize=True")
        self.program = program
        self.kernel_program = program.kernels
        self.kernels = list(self.kernel_program.kernels)
        built = ModuleBuilder(self.kernel_program)
        self.builder = built
        self.tm = jit.target_machine()
        built.module.triple = self.tm.triple
        built.module.data_layout = str(self.tm.target_data)
        self.source = str(built.module)
        self.engine, parsed, self.cache_hit = jit.engine(self.source, self.tm)
        self.optimized = parsed
        debug = int(os.environ.get("GRAPHC_DEBUG", "0") or 0)
        if debug >= 3:
            print(f"[graphc] LLVM IR:\n{self.source}")
        if debug >= 4:
            print(f"[graphc] assembly:\n{self.tm.emit_assembly(parsed)}")
        gemm = getattr(built, "gemm_state", None)  # BLAS pointers into their globals
        if gemm is not None:
            gemm.link(self.engine)
        address = self.engine.get_function_address("graphc_main")
        prototype = ctypes.CFUNCTYPE(
            None,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_int64),
            ctypes.POINTER(ctypes.c_int64),
        )
        self.main = prototype(address)
        self._plans: dict = {}
        self._local = threading.local()
        self.fresh_results = True  # run() returns arrays nothing else holds: no copy needed

    def kernel_source(self, number: int) -> str:
        """The LLVM IR of kernel `number`'s function (before optimisation)."""
        return str(self.builder.kernel_functions[number])

    @property
    def last_call_workers(self) -> int:
        """Chunks of the last call on this Python thread that ran on threads it started."""
        return getattr(self._local, "workers", 0)

    def assembly(self) -> str:
        return self.tm.emit_assembly(self.optimized)

    def _source(self, node: Any) -> Any:
        """The node whose buffer `node` reads (itself unless it is a view)."""
        while self.kernel_program.buffers[node].kind == "view":
            node = node.inputs[0]
        return node

    def _plan(self, bindings: Any) -> _Plan:
        """Shapes and sizes for this call's bindings, worked out once per Bindings (the
        Function keeps one per shape signature; sympy is slow and a training loop repeats)."""
        found = self._plans.get(id(bindings))
        if found is not None and found.bindings is bindings:
            return found
        buffers = self.builder.buffer_list
        returned = {self._source(root) for root in self.program.roots}
        plan = _Plan(
            bindings=bindings, sizes=[bindings.evaluate(expr) for expr in self.builder.size_list]
        )
        for k, b in enumerate(buffers):
            if b.kind == "temp":
                shape = bindings.evaluate_shape(b.node.shape)
                if b.node in returned:
                    plan.fresh.append((k, b.node, shape))
                else:
                    plan.temps[b.node] = shape
            elif b.kind in ("input", "param"):
                plan.fed.append((k, b.node, b.kind))
        handed: set = set()
        for root in self.program.roots:
            source = self._source(root)
            fresh = self.kernel_program.buffers[source].kind == "temp"
            # not ours to give (an input, param or constant), or given already: a copy
            plan.roots.append(
                (source, bindings.evaluate_shape(root.shape), not fresh or source in handed)
            )
            handed.add(source)
        with _init_lock:
            if len(self._plans) >= 64:
                self._plans.clear()
            self._plans[id(bindings)] = plan
        return plan

    def _table(self, plan: _Plan) -> tuple:
        """This thread's (pointer table, sizes) for `plan`: temporaries (an arena allocated
        once and reused by every later call: a fresh 64 MB array costs milliseconds of page
        faults) and constants are filled in; inputs, params and results are set per call."""
        tables = getattr(self._local, "tables", None)
        if tables is None:
            tables = self._local.tables = {}
        found = tables.get(id(plan))
        if found is not None and found[0] is plan:
            return found[1], found[2]
        buffers = self.builder.buffer_list
        pointers = (ctypes.c_void_p * max(len(buffers), 1))()
        arena = {node: np.empty(shape, dtype=node.dtype) for node, shape in plan.temps.items()}
        for k, b in enumerate(buffers):
            if b.kind == "temp" and b.node in arena:
                pointers[k] = arena[b.node].ctypes.data
            elif b.kind == "constant":  # a row-major copy of a strided constant lives here too
                array = arena[b.node] = _c_order(b.node.attrs["value"].array)
                pointers[k] = array.ctypes.data
        sizes = (ctypes.c_int64 * max(len(plan.sizes), 1))(*plan.sizes)
        tables[id(plan)] = (plan, pointers, sizes, arena)  # the arena lives with its table
        return pointers, sizes

    def run(self, feeds: dict, bindings: Any) -> list:
        """The values of program.roots. Every array returned is the caller's own: results are
        written by the kernels into arrays made for this call, and a root that is an input, a
        param or a constant (or a view of one) is copied."""
        plan = self._plan(bindings)
        pointers, sizes = self._table(plan)
        held: dict = {}  # the arrays this call passes (alive until the call returns)
        for k, node, kind in plan.fed:
            array = feeds[node] if kind == "input" else node.attrs["state"].value
            array = held[node] = _c_order(array)
            pointers[k] = _address(array)
        for k, node, shape in plan.fresh:
            array = held[node] = self._result_array(node, shape)
            pointers[k] = _address(array)
        status = (ctypes.c_int64 * parallel.STATUS_SLOTS)()
        status[parallel.THREADS] = parallel.num_threads()
        status[parallel.MIN_WORK] = parallel.min_work()
        self.main(pointers, sizes, status)
        self._local.workers = status[parallel.WORKERS]
        if status[0]:
            raise self._failure(status[0] - 1, status[1])
        results = []
        for source, shape, copy in plan.roots:
            array = held[source] if source in held else _c_order(source.attrs["value"].array)
            value = array.reshape(shape)
            results.append(np.array(value, copy=True) if copy else value)
        return results

    def _result_array(self, node: Any, shape: tuple) -> np.ndarray:
        """An array for result `node`: one this thread handed out before and nobody holds any
        more (its pages are already mapped: a fresh 64 MB array costs milliseconds of page
        faults), else a new one. A caller's reference, a view or a parameter holding it
        keeps an array out of reach."""
        pools = getattr(self._local, "pools", None)
        if pools is None:
            pools = self._local.pools = {}
        pool = pools.setdefault(node, [])
        for array in pool:
            # references: the pool's list, this loop's variable, getrefcount's argument
            if sys.getrefcount(array) == 3 and array.shape == shape:
                return array
        array = np.empty(shape, dtype=node.dtype)
        pool.append(array)
        if len(pool) > 2:  # an update's new value and the param's current one alternate
            pool.pop(0)
        return array

    def _failure(self, number: int, kind: int) -> ExecutionError:
        kernel = self.kernels[number]
        anchor = kernel.anchor if kernel.anchor is not None else kernel.nodes[-1]
        where = f"{anchor.op} (built at {anchor.where})"
        if kind == BOUNDS:
            return ExecutionError(
                f"{where}: kernel {kernel.name} of the llvm backend indexed outside a buffer "
                f"(caught by GRAPHC_BOUNDS_CHECK=1); this is a graphc bug: please report it"
            )
        if kind == INDEX:
            what = (
                f"cannot {anchor.attrs['mode']}-pad an empty axis"
                if anchor.op in ("pad", "pad_grad")
                else "an index is out of range for its axis"
            )
            return ExecutionError(f"{where}: {what} (kernel {kernel.name} of the llvm backend)")
        return ExecutionError(
            f"{where}: labels must lie in [0, K) (kernel {kernel.name} of the llvm backend "
            f"met one outside)"
        )

    def explain(self) -> str:
        text = f"backend llvm: {self.kernel_program.describe()}"
        gemm = getattr(self.builder, "gemm_state", None)
        return text + "\n" + gemm.describe() if gemm is not None else text


def build(program: Program) -> LLVMExecutable:
    return LLVMExecutable(program)


register_backend("llvm", build)

__all__ = ["LLVMExecutable", "build"]
