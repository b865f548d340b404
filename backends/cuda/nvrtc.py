"""NVRTC through cupy's low-level binding: compile CUDA C to PTX and a cubin with no GPU.

cupy's RawModule needs a device to load a module, but cupy_backends.cuda.libs.nvrtc
(createProgram / compileProgram / getPTX / getCUBIN) only needs libnvrtc, which the
nvidia-cuda-nvrtc wheel provides (pin 13.0: newer NVRTC emits PTX that CUDA 13.0 drivers
and ptxas reject). The options are cupy's: -arch=sm_XX, -ftz=true,
--device-as-default-execution-space, plus -Xptxas=-v so that ptxas reports each kernel's
registers and shared memory: more static shared memory than a block may have is an error
here, not at launch. A failed compile raises CompileError with the NVRTC log and the
generated source lines it points at. Results are cached per process by a hash of source,
architecture and options.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field

OPTIONS = ("-ftz=true", "--device-as-default-execution-space", "-Xptxas=-v")
SHARED_LIMIT = 48 * 1024  # static shared memory a block may use
_cache: dict = {}
_lock = threading.Lock()


class CompileError(RuntimeError):
    """NVRTC rejected generated code (or ptxas found a kernel using too much shared memory)."""


@dataclass
class Compiled:
    arch: str
    ptx: str
    cubin: bytes
    log: str
    usage: dict = field(default_factory=dict)  # kernel -> {"registers": n, "smem": bytes}

    def describe(self) -> str:
        rows = [
            f"  {name}: {u.get('registers', '?')} registers, {u.get('smem', 0)} bytes shared"
            for name, u in self.usage.items()
        ]
        return f"NVRTC {self.arch}: {len(self.usage)} kernels\n" + "\n".join(rows)


def _nvrtc():  # noqa: ANN202
    try:
        from cupy_backends.cuda.libs import nvrtc
    except ImportError as error:
        raise RuntimeError(
            f"NVRTC is not available ({error}); install the cuda extra: "
            f'pip install -e ".[cuda]" (cupy-cuda13x and nvidia-cuda-nvrtc==13.0.*)'
        ) from None
    return nvrtc


def nvrtc_available() -> tuple:
    """(True, version) when NVRTC can compile here, else (False, why)."""
    try:
        nvrtc = _nvrtc()
        return True, nvrtc.getVersion()
    except Exception as error:  # noqa: BLE001 - any failure to load means "not here"
        return False, f"{type(error).__name__}: {error}"


def _offending(source: str, log: str, context: int = 2) -> str:
    """The generated lines the log's `name(line): error` messages point at, numbered."""
    lines = source.splitlines()
    shown = []
    for match in re.finditer(r"\((\d+)\): (?:error|catastrophic error)", log):
        k = int(match.group(1))
        for n in range(max(1, k - context), min(len(lines), k + context) + 1):
            mark = ">>" if n == k else "  "
            shown.append(f"{mark} {n:5d} | {lines[n - 1]}")
        shown.append("   ...")
        if len(shown) > 60:
            break
    return "\n".join(shown)


def usage(log: str) -> dict:
    """Per kernel registers and shared memory, from ptxas's -v report."""
    found: dict = {}
    current = None
    for line in log.splitlines():
        entry = re.search(r"Compiling entry function '(\w+)'", line)
        if entry:
            current = entry.group(1)
            found[current] = {}
            continue
        if current is None:
            continue
        registers = re.search(r"Used (\d+) registers", line)
        if registers:
            found[current]["registers"] = int(registers.group(1))
            smem = re.search(r"(\d+) bytes smem", line)
            found[current]["smem"] = int(smem.group(1)) if smem else 0
    return found


def compile_source(source: str, arch: str = "sm_90", name: str = "graphc.cu") -> Compiled:
    """Compile CUDA C for `arch` with NVRTC (no GPU needed); CompileError on failure."""
    options = (f"-arch={arch}", *OPTIONS)
    key = hashlib.sha256("\0".join([source, *options]).encode()).hexdigest()
    with _lock:
        if key in _cache:
            return _cache[key]
    nvrtc = _nvrtc()
    program = nvrtc.createProgram(source, name, [], [])
    try:
        try:
            nvrtc.compileProgram(program, list(options))
        except Exception as error:  # noqa: BLE001 - NVRTCError: the log says why
            log = nvrtc.getProgramLog(program).replace("\x00", "")
            raise CompileError(
                f"NVRTC could not compile the generated CUDA C for {arch} ({error}):\n{log}\n"
                f"generated source:\n{_offending(source, log)}"
            ) from None
        log = nvrtc.getProgramLog(program).replace("\x00", "")
        compiled = Compiled(arch, nvrtc.getPTX(program), nvrtc.getCUBIN(program), log, usage(log))
    finally:
        nvrtc.destroyProgram(program)
    heavy = {k: u["smem"] for k, u in compiled.usage.items() if u.get("smem", 0) > SHARED_LIMIT}
    if heavy:
        raise CompileError(
            f"ptxas: kernels use more than {SHARED_LIMIT} bytes of shared memory: {heavy}"
        )
    with _lock:
        _cache[key] = compiled
    return compiled


__all__ = ["CompileError", "Compiled", "compile_source", "nvrtc_available", "usage"]
