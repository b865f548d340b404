"""graphc.data: the IDX reader, MNIST, the bundled digits and the numpy helpers."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from graphc import data

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist"  # ../shared/data/mnist from the repo root
needs_mnist = pytest.mark.skipif(
    not (MNIST / "t10k-images-idx3-ubyte.gz").exists(),
    reason=f"the MNIST test set is not at {MNIST} (t10k-*-ubyte.gz)",
)


def idx_bytes(array, type_code=0x08):
    array = np.asarray(array)
    head = bytes([0, 0, type_code, array.ndim]) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    return head + array.astype(dtype[type_code]).tobytes()


def write(path, payload, gz=False):
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def make_mnist(folder, n=5, prefix="t10k", gz=False, rows=28, cols=28, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write(folder / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), gz)
    write(folder / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "type_code,values",
    [
        (0x08, np.arange(24).reshape(2, 3, 4)),
        (0x09, [-3, 0, 7]),
        (0x0B, [[-300, 2], [5, 30000]]),
        (0x0C, [1 << 20, -5]),
        (0x0D, [0.5, -1.25]),
        (0x0E, [[1e-300]]),
    ],
)
def test_read_idx_round_trips(tmp_path, gz, type_code, values):
    path = write(tmp_path / "a.idx", idx_bytes(values, type_code), gz)
    got = data.read_idx(path)
    np.testing.assert_array_equal(got, np.asarray(values))
    assert got.shape == np.asarray(values).shape
    assert got.dtype.isnative


def test_read_idx_errors_name_the_file(tmp_path):
    good = idx_bytes(np.arange(12).reshape(3, 4))
    cases = {
        "empty": b"",
        "badmagic": b"\x12\x34" + good[2:],
        "badtype": b"\x00\x00\x07\x02" + good[4:],
        "shortheader": good[:6],
        "truncated": good[:-1],
        "trailing": good + b"\x00",
    }
    messages = {
        "empty": "not an IDX",
        "badmagic": "bad magic",
        "badtype": "bad magic",
        "shortheader": "truncated IDX header",
        "truncated": "truncated",
        "trailing": "unexpected bytes",
    }
    for name, payload in cases.items():
        path = write(tmp_path / f"{name}.idx", payload)
        with pytest.raises(ValueError, match=messages[name]) as info:
            data.read_idx(path)
        assert str(path) in str(info.value)


def test_read_idx_corrupt_gzip(tmp_path):
    payload = gzip.compress(idx_bytes(np.arange(100)))
    path = write(tmp_path / "x.gz", payload[: len(payload) // 2])
    with pytest.raises(ValueError, match="gzip") as info:
        data.read_idx(path)
    assert "x.gz" in str(info.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        data.read_idx(tmp_path / "nope")


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_from_a_folder(tmp_path, gz):
    images, labels = make_mnist(tmp_path, n=7, gz=gz)
    x, y = data.load_mnist(tmp_path)
    assert x.shape == (7, 784) and x.dtype == np.float32
    assert y.shape == (7,) and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x, images.reshape(7, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_train_and_test(tmp_path):
    train = make_mnist(tmp_path, n=4, prefix="train", seed=1)
    test = make_mnist(tmp_path, n=3, prefix="t10k", gz=True, seed=2)
    x, y = data.load_mnist(tmp_path)
    assert x.shape == (7, 784)
    np.testing.assert_array_equal(y, np.concatenate([train[1], test[1]]))
    assert data.load_mnist(tmp_path, subset="train")[0].shape == (4, 784)
    assert data.load_mnist(tmp_path, subset="test")[0].shape == (3, 784)
    with pytest.raises(ValueError, match="subset"):
        data.load_mnist(tmp_path, subset="validation")


def test_load_mnist_from_a_pair_of_files(tmp_path):
    images, labels = make_mnist(tmp_path, n=2)
    pair = (tmp_path / "t10k-images-idx3-ubyte", tmp_path / "t10k-labels-idx1-ubyte")
    for x, y in (data.load_mnist(pair), data.load_mnist(*pair), data.load_mnist(pair[0])):
        assert x.shape == (2, 784)
        np.testing.assert_array_equal(y, labels)


def test_load_mnist_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        data.load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such"):
        data.load_mnist(tmp_path / "absent")
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((1, 28, 28))))
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        data.load_mnist(tmp_path)
    make_mnist(tmp_path, prefix="t10k")
    with pytest.raises(FileNotFoundError, match="train"):
        data.load_mnist(tmp_path, subset="train")


def test_load_mnist_count_mismatch(tmp_path):
    make_mnist(tmp_path, n=4)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.arange(3)))
    with pytest.raises(ValueError, match="4 images but .*3 labels"):
        data.load_mnist(tmp_path)


def test_load_mnist_label_out_of_range(tmp_path):
    make_mnist(tmp_path, n=4)
    path = write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes([1, 2, 10, 3]))
    with pytest.raises(ValueError, match=r"0\.\.9.*label 10 at index 2") as info:
        data.load_mnist(tmp_path)
    assert str(path) in str(info.value)


def test_load_mnist_wrong_magic(tmp_path):
    make_mnist(tmp_path, n=4)
    # labels where images belong: a valid IDX file, but magic 2049, not 2051
    path = write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(np.arange(4)))
    with pytest.raises(ValueError, match="2051") as info:
        data.load_mnist(tmp_path)
    assert str(path) in str(info.value)
    make_mnist(tmp_path, n=4)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.arange(4), type_code=0x0C))
    with pytest.raises(ValueError, match="2049"):
        data.load_mnist(tmp_path)


def test_load_mnist_truncated_images(tmp_path):
    make_mnist(tmp_path, n=4, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    write(path, raw[:-100], gz=True)
    with pytest.raises(ValueError, match="truncated") as info:
        data.load_mnist(tmp_path)
    assert str(path) in str(info.value)


@needs_mnist
def test_real_mnist_test_set():
    x, y = data.load_mnist(MNIST)
    assert x.shape == (10000, 784) and x.dtype == np.float32
    assert y.shape == (10000,) and y.dtype == np.int32
    assert x.min() == 0.0 and x.max() == 1.0
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    raw = data.read_idx(MNIST / "t10k-images-idx3-ubyte.gz")
    assert raw.shape == (10000, 28, 28) and raw.dtype == np.uint8


def test_load_digits():
    pytest.importorskip("sklearn")
    x, y = data.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int32
    assert x.min() == 0.0 and x.max() == 1.0
    assert sorted(set(y.tolist())) == list(range(10))


def test_one_hot():
    np.testing.assert_array_equal(data.one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    assert data.one_hot(np.zeros((2, 3), np.int32), 4).shape == (2, 3, 4)
    assert data.one_hot([1], 2).dtype == np.float32
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        data.one_hot([3], 3)
    with pytest.raises(TypeError, match="integers"):
        data.one_hot([0.5], 3)


def test_split_partitions_the_data():
    x = np.arange(100).reshape(50, 2)
    y = np.arange(50)
    parts = data.split(x, y, (0.6, 0.2, 0.2), seed=1)
    assert [len(p[1]) for p in parts] == [30, 10, 10]
    seen = np.concatenate([p[1] for p in parts])
    assert sorted(seen.tolist()) == list(range(50))
    for px, py in parts:
        np.testing.assert_array_equal(px[:, 0], 2 * py)
    again = data.split(x, y, (0.6, 0.2, 0.2), seed=1)
    np.testing.assert_array_equal(again[0][1], parts[0][1])
    ordered = data.split(x, y, (0.5, 0.5), shuffle=False)
    np.testing.assert_array_equal(ordered[0][1], np.arange(25))
    train, val, test = data.train_val_test_split(x, y, val=0.1, test=0.2)
    assert (len(train[1]), len(val[1]), len(test[1])) == (35, 5, 10)
    with pytest.raises(ValueError, match="sum to 1"):
        data.split(x, y, (0.5, 0.4))
    with pytest.raises(ValueError, match="examples"):
        data.split(x, y[:3])


def test_batches_cover_an_epoch():
    x = np.arange(10)
    got = list(data.batches(x, x * 10, 4, shuffle=True, seed=0))
    assert [len(b[0]) for b in got] == [4, 4, 2]
    assert sorted(np.concatenate([b[0] for b in got]).tolist()) == list(range(10))
    assert all((bx * 10 == by).all() for bx, by in got)
    assert len(list(data.batches(x, x, 4, drop_last=True))) == 2
