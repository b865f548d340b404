"""The CPU backend: kernels to LLVM IR through llvmlite, JIT-compiled, one native entry point.

`gc.compile(..., backend="llvm")` fuses the graph (graphc/passes), builds one LLVM
module (backends/llvm/codegen.py), verifies it, optimises it at -O3 for the host CPU
and JIT-compiles it with MCJIT. A call binds the symbolic sizes, allocates the output
and temporary buffers, and runs `graphc_main` once (ctypes releases the GIL).
GRAPHC_DEBUG=3 prints the LLVM IR, =4 the assembly; `f.source` holds the IR.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

import numpy as np
from llvmlite import binding as llvm

from backends.llvm.codegen import ModuleBuilder
from graphc.backend import ExecutionError, Program, register_backend

_init_lock = threading.Lock()
_initialised = False


def _target_machine() -> llvm.TargetMachine:
    global _initialised
    with _init_lock:
        if not _initialised:
            llvm.initialize_native_target()  # llvm.initialize() raises in llvmlite 0.50
            llvm.initialize_native_asmprinter()
            _initialised = True
    target = llvm.Target.from_default_triple()
    features = llvm.get_host_cpu_features().flatten()
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=features, opt=3, codemodel="jitdefault"
    )


class LLVMExecutable:
    def __init__(self, program: Program) -> None:
        if program.kernels is None:
            raise ValueError("backend 'llvm' compiles the optimizer's kernels: use optimize=True")
        self.program = program
        self.kernel_program = program.kernels
        self.kernels = list(self.kernel_program.kernels)
        built = ModuleBuilder(self.kernel_program)
        self.builder = built
        self.tm = _target_machine()
        built.module.triple = self.tm.triple
        built.module.data_layout = str(self.tm.target_data)
        self.source = str(built.module)
        parsed = llvm.parse_assembly(self.source)
        parsed.verify()
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization = True
        pto.slp_vectorization = True
        pass_builder = llvm.create_pass_builder(self.tm, pto)
        pass_builder.getModulePassManager().run(parsed, pass_builder)
        self.optimized = parsed
        debug = int(os.environ.get("GRAPHC_DEBUG", "0") or 0)
        if debug >= 3:
            print(f"[graphc] LLVM IR:\n{parsed}")
        if debug >= 4:
            print(f"[graphc] assembly:\n{self.tm.emit_assembly(parsed)}")
        self.engine = llvm.create_mcjit_compiler(parsed, self.tm)
        self.engine.finalize_object()
        address = self.engine.get_function_address("graphc_main")
        prototype = ctypes.CFUNCTYPE(
            None,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_int64),
            ctypes.POINTER(ctypes.c_int64),
        )
        self.main = prototype(address)

    def assembly(self) -> str:
        return self.tm.emit_assembly(self.optimized)

    def run(self, feeds: dict, bindings: Any) -> list:
        buffers = self.builder.buffer_list
        arrays: dict = {}
        for buffer in buffers:
            node = buffer.node
            if buffer.kind == "input":
                arrays[node] = np.ascontiguousarray(feeds[node])
            elif buffer.kind == "param":
                arrays[node] = np.ascontiguousarray(node.attrs["state"].value)
            elif buffer.kind == "constant":
                value = node.attrs["value"].array
                arrays[node] = np.ascontiguousarray(np.broadcast_to(value, value.shape))
            elif buffer.kind == "temp":
                shape = bindings.evaluate_shape(node.shape)
                arrays[node] = np.empty(shape, dtype=node.dtype)
        pointers = (ctypes.c_void_p * max(len(buffers), 1))()
        for k, buffer in enumerate(buffers):
            if buffer.kind != "view":
                pointers[k] = arrays[buffer.node].ctypes.data
        sizes = (ctypes.c_int64 * max(len(self.builder.size_list), 1))()
        for k, expr in enumerate(self.builder.size_list):
            sizes[k] = bindings.evaluate(expr)
        status = (ctypes.c_int64 * 1)()
        self.main(pointers, sizes, status)
        if status[0]:
            kernel = self.kernels[status[0] - 1]
            anchor = kernel.anchor
            raise ExecutionError(
                f"{anchor.op} (built at {anchor.where}): labels must lie in [0, K) "
                f"(kernel {kernel.name} of the llvm backend met one outside)"
            )
        return [self._value(root, arrays, bindings) for root in self.program.roots]

    def _value(self, node: Any, arrays: dict, bindings: Any) -> np.ndarray:
        if node in arrays:
            return arrays[node]
        if node.op == "input":
            return arrays.get(node)
        source = node
        while self.kernel_program.buffers[source].kind == "view":
            source = source.inputs[0]
        return arrays[source].reshape(bindings.evaluate_shape(node.shape))

    def explain(self) -> str:
        return f"backend llvm: {self.kernel_program.describe()}"


def build(program: Program) -> LLVMExecutable:
    return LLVMExecutable(program)


register_backend("llvm", build)

__all__ = ["LLVMExecutable", "build"]
