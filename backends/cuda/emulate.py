"""backend="cuda-emulated": the generated CUDA C compiled as C++ for the CPU and run there.

The translation unit is emulate.h (CUDA's built-in variables, __syncthreads and warp
shuffles over ucontext fibers, atomics), the CUDA source as generated for the GPU, and one
`gcemu_launch_<kernel>` entry per kernel that unpacks cuLaunchKernel-style arguments (an
array of pointers to each argument's value) and runs the grid block by block. g++ builds a
shared library (-O1 -fPIC; GRAPHC_CUDA_EMU_FLAGS adds flags, e.g. "-g -fsanitize=address"
to debug a kernel with gdb or AddressSanitizer), cached by a hash of the source and flags in
GRAPHC_CACHE_DIR/cuda-emu (default ~/.cache/graphc/cuda-emu).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from backends.cuda.render import Launch, Rendered

HEADER = (Path(__file__).parent / "emulate.h").read_text()
FLAGS = ["-std=c++17", "-O1", "-fPIC", "-shared", "-w"]
_lock = threading.Lock()
_loaded: dict = {}  # path -> CDLL


def folder() -> Path:
    configured = os.environ.get("GRAPHC_CACHE_DIR")
    base = Path(configured) if configured else Path.home() / ".cache" / "graphc"
    return base / "cuda-emu"


def compiler() -> str:
    found = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not found:
        raise RuntimeError("backend 'cuda-emulated' needs a C++ compiler (g++); none was found")
    return found


def thunks(functions: list) -> str:
    """One C entry per kernel: gcemu_launch_<name>(grid, block, cooperative, args)."""
    out = []
    for name, params in functions:
        call = ", ".join(f"*({p.ctype}*)a[{k}]" for k, p in enumerate(params))
        out.append(
            f"static void gcemu_body_{name}(void** a) {{ {name}({call}); }}\n"
            f'extern "C" int gcemu_launch_{name}(unsigned gx, unsigned gy, unsigned gz, '
            f"unsigned bx, unsigned by, unsigned bz, int cooperative, void** a) {{\n"
            f"  return gcemu::launch(dim3(gx, gy, gz), dim3(bx, by, bz), cooperative, "
            f"gcemu_body_{name}, a);\n}}"
        )
    return "\n".join(out)


def translation_unit(rendered: Rendered) -> str:
    return "\n".join([HEADER, rendered.source, thunks(rendered.functions)])


def build(rendered: Rendered) -> ctypes.CDLL:
    """The shared library of a rendered program (compiled once per source and flags)."""
    text = translation_unit(rendered)
    extra = os.environ.get("GRAPHC_CUDA_EMU_FLAGS", "").split()
    cxx = compiler()
    digest = hashlib.sha256("\0".join([text, cxx, *FLAGS, *extra]).encode()).hexdigest()
    path = folder() / f"{digest[:32]}.so"
    with _lock:
        if str(path) in _loaded:
            return _loaded[str(path)]
        if not path.exists():
            _compile(cxx, text, path, extra)
        library = ctypes.CDLL(str(path))
        library.gcemu_error.restype = ctypes.c_char_p
        _loaded[str(path)] = library
        return library


def _compile(cxx: str, text: str, path: Path, extra: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "kernels.cu.cpp"
        source.write_text(text)
        output = Path(work) / "kernels.so"
        done = subprocess.run(
            [cxx, *FLAGS, *extra, str(source), "-o", str(output)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"cuda-emulated: g++ failed on the generated kernels:\n{done.stderr[-4000:]}"
            )
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(handle)
        shutil.copyfile(output, temporary)
        os.replace(temporary, path)


_CTYPES = {"long long": ctypes.c_longlong}


def launch(library: ctypes.CDLL, step: Launch, grid: tuple, args: list) -> None:
    """Run one kernel: `args` are numpy arrays (pointers) and ints (sizes), in param order."""
    values = []
    for param, arg in zip(step.params, args):
        if param.ctype.endswith("*"):
            values.append(ctypes.c_void_p(arg.ctypes.data))
        else:
            values.append(_CTYPES[param.ctype](arg))
    pointers = (ctypes.c_void_p * max(len(values), 1))()
    for k, value in enumerate(values):
        pointers[k] = ctypes.addressof(value)
    entry = getattr(library, f"gcemu_launch_{step.function}")
    code = entry(*grid, *step.block, int(step.cooperative), pointers)
    if code:
        why = library.gcemu_error().decode()
        raise RuntimeError(f"cuda-emulated: kernel {step.function}: {why}")


__all__ = ["build", "folder", "launch", "translation_unit"]
