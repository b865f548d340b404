"""Checkpoints that lose nothing: parameters, running averages, optimizer state, RNG states,
epoch and whatever the trainer adds, in one .npz file.

The file holds a JSON header (format name, version, epoch, names and shapes, optimizer
counters, RNG states, extra) and one array per tensor, plus a SHA-256 checksum over the
header and every array's dtype, shape and bytes. It is written to a temporary file in the
same folder, flushed to disk and renamed over the target (os.replace is atomic on POSIX
and Windows), so a crash mid-write leaves the previous checkpoint intact. Loading checks
the zip container, the format version, the checksum and every shape against the model,
and raises CheckpointError naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "graphc-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupt, of another version or of another model."""


@dataclass
class Checkpoint:
    """What load_checkpoint restored besides the tensors: the epoch and the extras."""

    path: Path
    epoch: int
    extra: dict
    arrays: dict  # the extra arrays saved with `extra_arrays`


def _digest(header: bytes, arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256(header)
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _tensors(model: Any, optimizer: Any) -> dict:
    """{"param/k", "state/k", "velocity/k": Tensor} in the model's fixed order."""
    params = list(model.parameters())
    found = {f"param/{k}": p for k, p in enumerate(params)}
    found.update({f"state/{k}": s for k, s in enumerate(model.states())})
    if optimizer is not None:
        found.update({f"velocity/{k}": v for k, v in enumerate(optimizer.velocities(params))})
    return found


def save_checkpoint(
    path: str | os.PathLike,
    model: Any,
    optimizer: Any = None,
    epoch: int = 0,
    rngs: Mapping[str, np.random.Generator] | None = None,
    extra: Mapping[str, Any] | None = None,
    extra_arrays: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write model parameters and states, optimizer velocities and step count, the states
    of the generators in `rngs`, `epoch` and `extra` (JSON-able) to `path` atomically."""
    path = Path(path)
    tensors = _tensors(model, optimizer)
    arrays = {key: np.asarray(t.value) for key, t in tensors.items()}
    for key, value in (extra_arrays or {}).items():
        arrays[f"extra/{key}"] = np.asarray(value)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": int(epoch),
        "names": {key: t.name for key, t in tensors.items()},
        "shapes": {key: list(a.shape) for key, a in arrays.items()},
        "optimizer": None if optimizer is None else {"iterations": optimizer.iterations},
        "rngs": {name: g.bit_generator.state for name, g in (rngs or {}).items()},
        "extra": dict(extra or {}),
    }
    header_bytes = json.dumps(header, sort_keys=True).encode()
    arrays["header"] = np.frombuffer(header_bytes, dtype=np.uint8)
    checksum = _digest(header_bytes, {k: v for k, v in arrays.items() if k != "header"})
    arrays["checksum"] = np.frombuffer(checksum.encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple:
    """(header dict, {key: array}) of a checkpoint file, verified; CheckpointError if not."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as error:
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or corrupt: {error})"
        ) from None
    if "header" not in arrays or "checksum" not in arrays:
        raise CheckpointError(f"{path}: not a graphc checkpoint (no header or checksum)")
    header_bytes = arrays.pop("header").tobytes()
    stored = arrays.pop("checksum").tobytes().decode(errors="replace")
    try:
        header = json.loads(header_bytes)
    except ValueError:
        raise CheckpointError(f"{path}: corrupt checkpoint header") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a graphc checkpoint (format {header.get('format')!r})")
    if header.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {header.get('version')}, this graphc reads "
            f"version {VERSION}"
        )
    if _digest(header_bytes, arrays) != stored:
        raise CheckpointError(f"{path}: checksum mismatch, the file is corrupt")
    return header, arrays


def load_checkpoint(
    path: str | os.PathLike,
    model: Any,
    optimizer: Any = None,
    rngs: Mapping[str, np.random.Generator] | None = None,
) -> Checkpoint:
    """Restore what save_checkpoint wrote into `model`, `optimizer` and the generators in
    `rngs`; nothing is changed unless the whole file is valid and matches the model."""
    path = Path(path)
    header, arrays = read_checkpoint(path)
    tensors = _tensors(model, optimizer)
    saved = {k for k in arrays if not k.startswith("extra/")}
    if optimizer is None:  # the model alone (for evaluation): velocities are not needed
        saved = {k for k in saved if not k.startswith("velocity/")}
    if saved != set(tensors):
        raise CheckpointError(
            f"{path}: holds {len(saved)} tensors ({_summary(saved)}), the model and optimizer "
            f"have {len(tensors)} ({_summary(set(tensors))}); was it written for another model?"
        )
    for key, tensor in tensors.items():
        expected = tuple(int(d) for d in tensor.shape)
        if arrays[key].shape != expected:
            raise CheckpointError(
                f"{path}: {key} ({header['names'].get(key)}) has shape {arrays[key].shape}, "
                f"the model's {tensor.name} has {expected}"
            )
    absent = sorted(set(rngs or {}) - set(header["rngs"]))
    if absent:
        raise CheckpointError(f"{path}: no state saved for the generators {absent}")
    for key, tensor in tensors.items():
        tensor.value = arrays[key]
    if optimizer is not None and header["optimizer"] is not None:
        optimizer.iterations = int(header["optimizer"]["iterations"])
    for name, generator in (rngs or {}).items():
        generator.bit_generator.state = header["rngs"][name]
    extras = {k[len("extra/") :]: v for k, v in arrays.items() if k.startswith("extra/")}
    return Checkpoint(path, int(header["epoch"]), header["extra"], extras)


def _summary(keys: set) -> str:
    kinds: dict = {}
    for key in keys:
        kind = key.split("/")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "none"
