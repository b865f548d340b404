"""The on-disk cache of compiled object code, so a second process skips LLVM.

An entry is keyed by a hash of the LLVM IR, the target (triple, CPU, features) and the
llvmlite/LLVM version; its file holds a magic tag, the SHA-256 of the object code and the
object code. A file that is truncated, corrupt or not ours is detected, removed and
rebuilt, never trusted. The folder is GRAPHC_CACHE_DIR, else ~/.cache/graphc/llvm.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

from llvmlite import __version__ as llvmlite_version
from llvmlite import binding as llvm

MAGIC = b"GRAPHC-OBJ-1\n"
# change it when the optimiser's options change
PIPELINE = "O3 loop-vectorize slp-vectorize no-unroll"


def folder() -> Path:
    configured = os.environ.get("GRAPHC_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "graphc" / "llvm"


def key(ir_text: str, tm: llvm.TargetMachine) -> str:
    parts = [
        PIPELINE,
        ir_text,
        tm.triple,
        llvm.get_host_cpu_name(),
        llvm.get_host_cpu_features().flatten(),
        llvmlite_version,
        ".".join(map(str, llvm.llvm_version_info)),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@functools.cache
def source_digest(*files: str) -> str:
    """A hash of backend source files (names in backends/llvm/): part of a library's cache
    key, so a change of the code that generates it rebuilds the cached object."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for file in files:
        digest.update((here / file).read_bytes())
    return digest.hexdigest()


def load(name: str) -> bytes | None:
    """The verified object code of entry `name`, or None (absent, or bad and now removed)."""
    path = folder() / f"{name}.o"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    digest_end = len(MAGIC) + 32
    body = data[digest_end:]
    if (
        data[: len(MAGIC)] != MAGIC
        or hashlib.sha256(body).digest() != data[len(MAGIC) : digest_end]
    ):
        try:
            path.unlink()
        except OSError:
            pass
        return None
    return body


def store(name: str, code: bytes) -> None:
    """Write entry `name` atomically (a concurrent reader sees the old file or the new one)."""
    where = folder()
    try:
        where.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=where, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(MAGIC + hashlib.sha256(code).digest() + code)
        os.replace(temporary, where / f"{name}.o")
    except OSError:
        pass  # a read-only or full disk only costs the next process a compile
