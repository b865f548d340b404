"""The GPU backend: kernels rendered as CUDA C, compiled by NVRTC through cupy, run on an
NVIDIA GPU; and its CPU emulation.

  backend="cuda"            backends/cuda/device.py: cupy arrays, RawModule, one stream;
                            parameters stay on the device; f(..., device_output=True)
                            returns cupy arrays. compile_only=True (or compile_source)
                            runs NVRTC with no GPU (backends/cuda/nvrtc.py).
  backend="cuda-emulated"   backends/cuda/emulate.py: the same CUDA C compiled as C++ by
                            g++ with a small header (CUDA threads as fibers), run on the
                            CPU, numpy arrays in and out.

The renderer (render.py, with gemm.py, ops.py, shape_ops.py, conv.py) turns the fused
KernelProgram into one translation unit and a launch plan; runtime.py runs the plan.
Options (gc.compile(..., **options)): gemm="auto"|"tiled"|"library", arch="sm_90"
(compile_only), compile_only=True. GRAPHC_DEBUG=3 prints the CUDA source; f.source holds it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from backends.cuda import emulate
from backends.cuda.nvrtc import CompileError, compile_source, nvrtc_available
from backends.cuda.render import render
from backends.cuda.runtime import Runtime
from graphc.backend import Program, register_backend

GEMM_MODES = ("auto", "tiled", "library")


class EmulatedDevice:
    """numpy arrays; kernels run by the emulation library."""

    def __init__(self, library: Any) -> None:
        self.library = library

    def empty(self, shape: tuple, dtype: str) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def input(self, array: np.ndarray) -> np.ndarray:
        return np.asarray(array, order="C")

    def param(self, node: Any) -> np.ndarray:
        return np.asarray(node.attrs["state"].value, order="C")

    def constant(self, node: Any) -> np.ndarray:
        return np.asarray(node.attrs["value"].array, order="C")

    def status(self) -> np.ndarray:
        return np.zeros(2, dtype=np.int32)

    def read_status(self, status: np.ndarray) -> tuple:
        return int(status[0]), int(status[1])

    def launch(self, step: Any, grid: tuple, args: list) -> None:
        emulate.launch(self.library, step, grid, args)

    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        out[...] = np.matmul(a, b)


def _options(program: Program) -> dict:
    options = dict(program.options)
    gemm = options.pop("gemm", "auto")
    if gemm not in GEMM_MODES:
        raise ValueError(f"cuda backend: gemm={gemm!r}; expected one of {', '.join(GEMM_MODES)}")
    known = {"compile_only", "arch"}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"cuda backend: unknown options {', '.join(sorted(unknown))}")
    return {"gemm": gemm, **options}


class CudaExecutable:
    """A compiled program for backend "cuda" or "cuda-emulated"."""

    def __init__(self, program: Program, backend: str) -> None:
        if program.kernels is None:
            raise ValueError(
                f"backend {backend!r} compiles the optimizer's kernels: use optimize=True"
            )
        options = _options(program)
        self.program = program
        self.backend = backend
        self.kernel_program = program.kernels
        self.kernels = list(self.kernel_program.kernels)
        self.rendered = render(self.kernel_program, options["gemm"])
        self.source = self.rendered.source
        if int(os.environ.get("GRAPHC_DEBUG", "0") or 0) >= 3:
            print(f"[graphc] CUDA source:\n{self.source}")
        self.compiled = None
        self.runtime = None
        if backend == "cuda-emulated":
            device = EmulatedDevice(emulate.build(self.rendered))
            self.runtime = Runtime(program, self.rendered, device, backend)
        elif options.get("compile_only"):
            self.compiled = compile_source(self.source, arch=options.get("arch", "sm_90"))
        else:
            from backends.cuda.device import CudaDevice

            device = CudaDevice(self.rendered, program)
            self.runtime = Runtime(program, self.rendered, device, backend)
            self.compiled = device.module

    @property
    def updates_params(self) -> bool:
        """On the GPU, run() applies the parameter updates itself (parameters live there)."""
        return self.backend == "cuda" and self.runtime is not None

    def run(self, feeds: dict, bindings: Any, device_output: bool = False) -> list:
        if self.runtime is None:
            raise RuntimeError(
                "this function was compiled with compile_only=True (NVRTC, no GPU): it cannot run"
            )
        if self.backend == "cuda":
            return self.runtime.device.run(self.runtime, feeds, bindings, device_output)
        arrays, layout = self.runtime.execute(feeds, bindings)
        return self.runtime.roots(arrays, layout)

    def explain(self) -> str:
        lines = [f"backend {self.backend}: {self.kernel_program.describe()}"]
        lines.append(
            f"{len(self.rendered.functions)} CUDA functions, {len(self.rendered.steps)} steps"
        )
        if self.compiled is not None and hasattr(self.compiled, "describe"):
            lines.append(self.compiled.describe())
        return "\n".join(lines)


def build_cuda(program: Program) -> CudaExecutable:
    return CudaExecutable(program, "cuda")


def build_emulated(program: Program) -> CudaExecutable:
    return CudaExecutable(program, "cuda-emulated")


register_backend("cuda", build_cuda)
register_backend("cuda-emulated", build_emulated)

__all__ = [
    "CompileError",
    "CudaExecutable",
    "build_cuda",
    "build_emulated",
    "compile_source",
    "nvrtc_available",
    "render",
]
