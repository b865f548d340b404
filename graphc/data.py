"""Data sets and small numpy helpers: the bundled 8x8 digits, MNIST IDX files, splits, one-hot.

Nothing here downloads anything: `load_digits` reads the copy bundled with
scikit-learn, `load_mnist` reads IDX files you already have (gzipped or not).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# IDX type byte -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MNIST_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (n, rows, cols)
MNIST_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (n,)
MNIST_SUBSETS = ("train", "t10k")

PathLike = str | os.PathLike


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic number."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: corrupt gzip data ({error})") from None


def _parse_idx(data: bytes, path: Path) -> tuple:
    """(magic number, array) from the bytes of an IDX file, with every size checked."""
    if len(data) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(data)} bytes, truncated?)")
    zero, type_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: not an IDX file (bad magic number 0x{magic:08x}; IDX files start "
            "with two zero bytes, a type byte in 08 09 0B 0C 0D 0E and the number of dimensions)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{path}: truncated IDX header ({len(data)} bytes, {ndim} dimensions need {header})"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    dtype = IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    body = len(data) - header
    if body < expected:
        raise ValueError(
            f"{path}: truncated: the header declares shape {shape} ({expected} bytes of data), "
            f"the file holds {body}"
        )
    if body > expected:
        raise ValueError(
            f"{path}: {body - expected} unexpected bytes after the data of shape {shape} "
            "(corrupt or not an IDX file)"
        )
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header)
    return magic, array.reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: PathLike) -> np.ndarray:
    """The array stored in an IDX file (gzipped or not), in native byte order.

    Raises ValueError naming the file when it is not IDX, truncated or has trailing bytes.
    """
    path = Path(path)
    return _parse_idx(_read_bytes(path), path)[1]


def _read_mnist_pair(images_path: Path, labels_path: Path) -> tuple:
    magic, images = _parse_idx(_read_bytes(images_path), images_path)
    if magic != MNIST_IMAGES_MAGIC:
        raise ValueError(
            f"{images_path}: not an MNIST image file (magic number {magic}, expected "
            f"{MNIST_IMAGES_MAGIC}: unsigned bytes of shape (n, rows, cols))"
        )
    magic, labels = _parse_idx(_read_bytes(labels_path), labels_path)
    if magic != MNIST_LABELS_MAGIC:
        raise ValueError(
            f"{labels_path}: not an MNIST label file (magic number {magic}, expected "
            f"{MNIST_LABELS_MAGIC}: unsigned bytes of shape (n,))"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels; they must agree"
        )
    if labels.size and labels.max() > 9:
        bad = np.flatnonzero(labels > 9)
        raise ValueError(
            f"{labels_path}: labels must lie in 0..9, label {int(labels[bad[0]])} at "
            f"index {int(bad[0])} ({len(bad)} out of range)"
        )
    n, rows, cols = images.shape
    pixels = images.reshape(n, rows * cols).astype(np.float32) / np.float32(255.0)
    return pixels, labels.astype(np.int32)


def _find(directory: Path, prefix: str, kind: str) -> Path | None:
    magic = "idx3" if kind == "images" else "idx1"
    for name in (f"{prefix}-{kind}-{magic}-ubyte", f"{prefix}-{kind}.{magic}-ubyte"):
        for suffix in ("", ".gz"):
            candidate = directory / (name + suffix)
            if candidate.is_file():
                return candidate
    return None


def mnist_files(directory: PathLike) -> dict:
    """{"train"|"t10k": (images path, labels path)} for the MNIST files in `directory`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such file or directory")
    found = {}
    for prefix in MNIST_SUBSETS:
        images, labels = _find(directory, prefix, "images"), _find(directory, prefix, "labels")
        if images is None and labels is None:
            continue
        if images is None or labels is None:
            have, missing = (images, "labels") if images else (labels, "images")
            raise FileNotFoundError(
                f"{directory}: found {have.name} but no {prefix}-{missing}-"
                f"{'idx3' if missing == 'images' else 'idx1'}-ubyte[.gz] beside it"
            )
        found[prefix] = (images, labels)
    if not found:
        raise FileNotFoundError(
            f"{directory}: no MNIST files (expected t10k-images-idx3-ubyte[.gz] and "
            "t10k-labels-idx1-ubyte[.gz], or the train-* pair)"
        )
    return found


def load_mnist(
    path: PathLike | Sequence[PathLike],
    labels_path: PathLike | None = None,
    subset: str = "all",
) -> tuple:
    """MNIST images (n, 784) float32 in [0, 1] and labels (n,) int32, from IDX files.

    path: a directory holding t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]
    and/or the train-* pair; or an images file with `labels_path`; or a pair
    (images file, labels file). subset, for a directory: "train", "test" or "all"
    (every pair present, train first). Corrupt files raise ValueError naming the file.
    """
    if isinstance(path, (list, tuple)):
        if len(path) != 2 or labels_path is not None:
            raise ValueError("load_mnist: give a pair (images file, labels file)")
        path, labels_path = path
    path = Path(path)
    if labels_path is not None or path.is_file():
        if labels_path is None:
            guess = path.name.replace("images-idx3", "labels-idx1").replace("images.", "labels.")
            if guess == path.name:
                raise ValueError(f"load_mnist: give the labels file that goes with {path}")
            labels_path = path.with_name(guess)
        return _read_mnist_pair(path, Path(labels_path))
    found = mnist_files(path)
    wanted = {"all": MNIST_SUBSETS, "train": ("train",), "test": ("t10k",)}
    if subset not in wanted:
        raise ValueError(f"load_mnist: subset must be 'train', 'test' or 'all', got {subset!r}")
    prefixes = [p for p in wanted[subset] if p in found]
    if not prefixes:
        raise FileNotFoundError(f"{path}: no MNIST {subset} files ({wanted[subset][0]}-*)")
    parts = [_read_mnist_pair(*found[p]) for p in prefixes]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def load_digits() -> tuple:
    """scikit-learn's bundled 8x8 digits: images (1797, 64) float32 in [0, 1], labels int32."""
    try:
        from sklearn import datasets
    except ImportError:
        raise ImportError(
            "load_digits needs scikit-learn (pip install scikit-learn, or pip install -e '.[dev]')"
        ) from None
    bunch = datasets.load_digits()
    images = np.asarray(bunch.data, dtype=np.float32) / np.float32(16.0)
    return images, np.asarray(bunch.target, dtype=np.int32)


def one_hot(labels: Any, k: int, dtype: Any = np.float32) -> np.ndarray:
    """labels (...,) of ints in [0, k) -> (..., k) indicator vectors."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"one_hot: labels must be integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(
            f"one_hot: labels must lie in [0, {k}), got {labels.min()}..{labels.max()}"
        )
    return (labels[..., None] == np.arange(k)).astype(dtype)


def split(
    x: np.ndarray,
    y: np.ndarray,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int | None = 0,
    shuffle: bool = True,
) -> list:
    """[(x_part, y_part), ...], one pair per fraction (they must sum to 1).

    The examples are shuffled with `seed` first unless shuffle=False; part sizes are
    rounded so that every example lands in exactly one part.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"split: x has {len(x)} examples, y has {len(y)}")
    fractions = [float(f) for f in fractions]
    if not fractions or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split: fractions must be >= 0 and sum to 1, got {fractions}")
    n = len(x)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    bounds = np.rint(np.cumsum([0.0] + fractions) * n).astype(int)
    bounds[-1] = n
    return [(x[order[a:b]], y[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]


def train_val_test_split(
    x: np.ndarray, y: np.ndarray, val: float = 0.1, test: float = 0.1, seed: int | None = 0
) -> tuple:
    """((x_train, y_train), (x_val, y_val), (x_test, y_test)), shuffled with `seed`."""
    return tuple(split(x, y, (1.0 - val - test, val, test), seed=seed))


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int | None = None,
    drop_last: bool = False,
) -> Iterator[tuple]:
    """(x_batch, y_batch) pairs covering the data once (an epoch)."""
    if batch_size <= 0:
        raise ValueError(f"batches: batch_size must be positive, got {batch_size}")
    n = len(x)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]
        yield x[index], y[index]
