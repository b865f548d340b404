"""backend="cuda" on an NVIDIA GPU: the rendered source compiled by NVRTC through cupy's
RawModule (cupy adds -arch for the device and caches the binary by source and options),
buffers as cupy arrays, every launch on one stream.

Inputs may be numpy arrays (copied to the device) or cupy arrays (read in place).
Temporaries are allocated once per binding of the symbolic sizes (runtime.py). Parameters
live on the device: each is uploaded when its host value changes (a new array assigned to
W.value), and a call writes the updates into the device arrays in place; W.value is then
the downloaded new value (one copy per parameter and call). Outputs are numpy arrays, or
cupy arrays with f(..., device_output=True).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.cuda.nvrtc import OPTIONS, CompileError, _offending
from backends.cuda.render import Rendered
from graphc.backend import Program


class CudaDevice:
    def __init__(self, rendered: Rendered, program: Program) -> None:
        import cupy

        if not cupy.is_available():
            raise RuntimeError(
                "backend 'cuda' needs an NVIDIA GPU (cupy.is_available() is false here); use "
                "backend='cuda-emulated' to run the generated kernels on the CPU, or "
                "compile_only=True to check them with NVRTC"
            )
        self.cp = cupy
        self.program = program
        options = tuple(o for o in OPTIONS if not o.startswith("-Xptxas"))
        self.module = cupy.RawModule(code=rendered.source, options=options)
        try:
            self.functions = {
                name: self.module.get_function(name) for name, _ in rendered.functions
            }
        except cupy.cuda.compiler.CompileException as error:
            log = str(error)
            raise CompileError(
                f"NVRTC could not compile the generated CUDA C:\n{log}\n"
                f"generated source:\n{_offending(rendered.source, log)}"
            ) from None
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.params: dict = {}  # param node -> (device array, the host array it mirrors)
        self.constants: dict = {}
        self._status = cupy.zeros(2, dtype=np.int32)

    # the Runtime's device interface -----------------------------------------------------------
    def empty(self, shape: tuple, dtype: str) -> Any:
        return self.cp.empty(shape, dtype=dtype)

    def input(self, array: Any) -> Any:
        if isinstance(array, self.cp.ndarray):
            return self.cp.ascontiguousarray(array)  # no copy when it already is
        return self.cp.asarray(np.asarray(array, order="C"))

    def param(self, node: Any) -> Any:
        host = node.attrs["state"].value
        found = self.params.get(node)
        if found is None or found[1] is not host:
            found = (self.cp.asarray(np.asarray(host, order="C")), host)
            self.params[node] = found
        return found[0]

    def constant(self, node: Any) -> Any:
        if node not in self.constants:
            self.constants[node] = self.cp.asarray(np.asarray(node.attrs["value"].array, order="C"))
        return self.constants[node]

    def status(self) -> Any:
        self._status.fill(0)
        return self._status

    def read_status(self, status: Any) -> tuple:
        code, kind = status.get()  # waits for the stream
        return int(code), int(kind)

    def launch(self, step: Any, grid: tuple, args: list) -> None:
        values = [np.int64(a) if p.kind == "size" else a for p, a in zip(step.params, args)]
        self.functions[step.function](grid, step.block, tuple(values))

    def matmul(self, a: Any, b: Any, out: Any) -> None:
        out[...] = self.cp.matmul(a, b)

    # a call ------------------------------------------------------------------------------------
    def run(self, runtime: Any, feeds: dict, bindings: Any, device_output: bool) -> list:
        """The outputs (numpy, or cupy with device_output); applies the parameter updates."""
        with self.stream:
            arrays, layout = runtime.execute(feeds, bindings)
            roots = runtime.roots(arrays, layout)
            n = len(self.program.outputs)
            if device_output:
                outputs = [r.copy() for r in roots[:n]]  # temporaries are reused by the next call
            else:
                outputs = [self.cp.asnumpy(r) for r in roots[:n]]
            new = [value.copy() for value in roots[n:]]  # all computed before any is assigned
            for (param, _), value in zip(self.program.updates, new):
                device = self.param(param)
                device[...] = value
                host = self.cp.asnumpy(device)
                param.attrs["state"].value = host
                self.params[param] = (device, host)
            self.stream.synchronize()
        return outputs


__all__ = ["CudaDevice"]
