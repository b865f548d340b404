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
import threading
from typing import Any

import numpy as np

from backends.llvm import jit, parallel
from backends.llvm.codegen import BOUNDS, ModuleBuilder
from backends.llvm.shape_ops import INDEX
from graphc.backend import ExecutionError, Program, register_backend

_init_lock = threading.Lock()


def _c_order(array: Any) -> np.ndarray:
    """The array, row-major (copied only if it is not); unlike np.ascontiguousarray, a 0-d
    array stays 0-d."""
    return np.asarray(array, order="C")


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
        self._layouts: dict = {}
        self._local = threading.local()

    def kernel_source(self, number: int) -> str:
        """The LLVM IR of kernel `number`'s function (before optimisation)."""
        return str(self.builder.kernel_functions[number])

    @property
    def last_call_workers(self) -> int:
        """Chunks of the last call on this Python thread that ran on threads it started."""
        return getattr(self._local, "workers", 0)

    def assembly(self) -> str:
        return self.tm.emit_assembly(self.optimized)

    def _layout(self, bindings: Any) -> tuple:
        """(temporary shapes, size values, root shapes) for this call's sizes, worked out
        once per binding of the symbolic sizes (sympy is slow; a training loop repeats)."""
        key = tuple(sorted((str(s), v) for s, v in bindings.values.items()))
        found = self._layouts.get(key)
        if found is None:
            shapes = {
                b.node: bindings.evaluate_shape(b.node.shape)
                for b in self.builder.buffer_list
                if b.kind == "temp"
            }
            sizes = [bindings.evaluate(expr) for expr in self.builder.size_list]
            roots = [bindings.evaluate_shape(r.shape) for r in self.program.roots]
            found = (shapes, sizes, roots)
            with _init_lock:
                self._layouts[key] = found
        return found

    def _arena(self, shapes: dict) -> dict:
        """This thread's temporary buffers for these sizes, allocated once and reused by every
        later call (a fresh 64 MB array costs milliseconds of page faults). Results handed
        back are copied by the Function, so reuse is safe; each thread has its own arena."""
        arenas = getattr(self._local, "arenas", None)
        if arenas is None:
            arenas = self._local.arenas = {}
        key = id(shapes)
        found = arenas.get(key)
        if found is None:
            found = {node: np.empty(shape, dtype=node.dtype) for node, shape in shapes.items()}
            arenas[key] = found
        return found

    def run(self, feeds: dict, bindings: Any) -> list:
        buffers = self.builder.buffer_list
        shapes, size_values, root_shapes = self._layout(bindings)
        arena = self._arena(shapes)
        arrays: dict = {}
        for buffer in buffers:
            node = buffer.node
            if buffer.kind == "input":
                arrays[node] = _c_order(feeds[node])
            elif buffer.kind == "param":
                arrays[node] = _c_order(node.attrs["state"].value)
            elif buffer.kind == "constant":
                value = node.attrs["value"].array
                arrays[node] = _c_order(value)
            elif buffer.kind == "temp":
                arrays[node] = arena[node]
        pointers = (ctypes.c_void_p * max(len(buffers), 1))()
        for k, buffer in enumerate(buffers):
            if buffer.kind != "view":
                pointers[k] = arrays[buffer.node].ctypes.data
        sizes = (ctypes.c_int64 * max(len(self.builder.size_list), 1))()
        for k, value in enumerate(size_values):
            sizes[k] = value
        status = (ctypes.c_int64 * parallel.STATUS_SLOTS)()
        status[parallel.THREADS] = parallel.num_threads()
        status[parallel.MIN_WORK] = parallel.min_work()
        self.main(pointers, sizes, status)
        self._local.workers = status[parallel.WORKERS]
        if status[0]:
            raise self._failure(status[0] - 1, status[1])
        return [
            self._value(root, arrays, shape) for root, shape in zip(self.program.roots, root_shapes)
        ]

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

    def _value(self, node: Any, arrays: dict, shape: tuple) -> np.ndarray:
        if node in arrays:
            return arrays[node]
        if node.op == "input":
            return arrays.get(node)
        source = node
        while self.kernel_program.buffers[source].kind == "view":
            source = source.inputs[0]
        return arrays[source].reshape(shape)

    def explain(self) -> str:
        text = f"backend llvm: {self.kernel_program.describe()}"
        gemm = getattr(self.builder, "gemm_state", None)
        return text + "\n" + gemm.describe() if gemm is not None else text


def build(program: Program) -> LLVMExecutable:
    return LLVMExecutable(program)


register_backend("llvm", build)

__all__ = ["LLVMExecutable", "build"]
