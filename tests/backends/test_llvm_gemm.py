"""GEMM kernels of the llvm backend (backends/llvm/gemm.py): every shape np.matmul accepts,
operands read transposed, epilogues, float32/float64, on both paths (scipy's BLAS and the
generated tiled GEMM), against the numpy backend."""

import numpy as np
import pytest

import graphc as gc
from backends.llvm import gemm, gemm_generated
from graphc.models import mlp

rng = np.random.default_rng(0)
PATHS = ["blas", "generated"]


@pytest.fixture
def path(request, monkeypatch):
    monkeypatch.setattr(gemm, "FORCE", request.param)
    return request.param


def agree(inputs, outputs, *arrays, rtol=1e-5, updates=None):
    fast = gc.compile(inputs, outputs, backend="llvm")
    ref = gc.compile(inputs, outputs)
    got, want = fast(*arrays), ref(*arrays)
    if not isinstance(got, tuple):
        got, want = (got,), (want,)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
        scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)
    return fast


def data(dtype, *shapes):
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def paths_of(f):
    return f.explain().split("GEMM paths:\n")[1].splitlines()


@pytest.mark.parametrize("path", PATHS, indirect=True)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_matmul_shape_transposed_operands_and_epilogues(path, dtype):
    N = gc.dim("N")
    x = gc.input("x", (N, 37, 45), dtype)  # batched; edge tiles in every direction
    w = gc.input("w", (45, 70), dtype)
    m = gc.input("m", (37, 45), dtype)
    v = gc.input("v", (45,), dtype)
    u = gc.input("u", (37,), dtype)
    y = gc.input("y", (3, 1, 45, 6), dtype)  # broadcast batch axes on both sides
    z = gc.input("z", (N, 6, 45), dtype)
    q = gc.input("q", (37, 45), dtype)
    bias = gc.input("bias", (70,), dtype)
    outs = [
        m @ w,  # 2-D @ 2-D
        v @ w,  # 1-D @ 2-D
        m @ v,  # 2-D @ 1-D
        v @ v,  # 1-D @ 1-D
        u @ x,  # 1-D @ batched
        x @ v,  # batched @ 1-D
        x @ w,  # batched @ 2-D: the batch folds into the rows
        m @ y,  # 2-D @ 4-D
        x @ y,  # (N, 37, 45) @ (3, 1, 45, 6) -> (3, N, 37, 6)
        m.T @ m,  # operands read transposed by the GEMM kernel, batched ones too
        w.T @ q.T,
        x.transpose(0, 2, 1) @ x,
        x @ z.transpose(0, 2, 1),
        gc.relu(m @ w + bias),  # epilogues: bias, activation, residual
        gc.tanh(x @ w) * 2.0 + (x @ w),
        (m @ w) * 0.5 + bias,
    ]
    shapes = [(37, 45), (45, 70), (37, 45), (45,), (37,), (3, 1, 45, 6), (6, 45), (37, 45), (70,)]
    tol = 1e-4 if dtype == "float32" else 1e-11
    for n in (1, 3):
        arrays = data(dtype, (n, *shapes[0]), *shapes[1:6], (n, *shapes[6]), *shapes[7:])
        f = agree([x, w, m, v, u, y, z, q, bias], outs, *arrays, rtol=tol)
    lines = paths_of(f)
    assert len(lines) == f.program.kernels.count("library")
    label = "BLAS (forced" if path == "blas" else "generated (forced"
    assert all(label in line for line in lines), lines
    assert sum("^T" in line for line in lines) == 4, lines
    assert sum("batch folded" in line for line in lines) == 2, lines


@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_the_sgd_update_of_a_transposed_gemm_in_one_kernel(path):
    x = gc.input("x", (64, 50))
    g = gc.input("g", (64, 30))
    W = gc.param("W", (50, 30), seed=0)
    before = W.value.copy()
    xs, gs = data("float32", (64, 50), (64, 30))
    f = gc.compile([x, g], x.T @ g, updates={W: W - 0.1 * (x.T @ g)}, backend="llvm")
    (k,) = [k for k in f.program.kernels.kernels if k.kind == "library"]
    assert k.ops() == ["transpose", "matmul", "mul", "sub"]
    out = f(xs, gs)
    np.testing.assert_allclose(out, xs.T @ gs, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(W.value, before - 0.1 * (xs.T @ gs), rtol=1e-4, atol=1e-5)


def test_multiple_blocks_and_panels_with_a_small_tiling(monkeypatch):
    """The packed loop nest with every block loop running several times (and vectors of 4
    and 2, like an SSE machine's): the same code that 1024^3 runs with its real tiling."""
    monkeypatch.setattr(gemm, "FORCE", "generated")
    monkeypatch.setitem(
        gemm_generated.TILING, 4, gemm_generated.Tiling(vl=4, nv=2, mr=3, kc=7, nc=16, mc=9)
    )
    monkeypatch.setitem(
        gemm_generated.TILING, 8, gemm_generated.Tiling(vl=2, nv=3, mr=2, kc=5, nc=12, mc=6)
    )
    outs, inputs, arrays = [], [], []
    for dtype in ("float32", "float64"):
        a = gc.input(f"a{dtype}", (29, 23), dtype)
        b = gc.input(f"b{dtype}", (23, 41), dtype)
        inputs += [a, b]
        arrays += data(dtype, (29, 23), (23, 41))
        outs += [a @ b, gc.relu(a @ b + 1.0), b.T @ a.T, a.T @ a]
    agree(inputs, outs, *arrays, rtol=1e-4)


@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_mixed_dtypes_and_empty_sizes(path):
    a = gc.input("a", (6, 5), "float32")
    b = gc.input("b", (5, 4), "float64")
    i = gc.input("i", (5, 4), "int32")
    z = gc.input("z", (6, 0), "float32")
    zz = gc.input("zz", (0, 4), "float32")
    outs = [a @ b, a @ i, z @ zz, (a @ a.T).astype("float64") + 1.0]
    arrays = [*data("float32", (6, 5)), *data("float64", (5, 4))]
    arrays += [rng.integers(-3, 4, (5, 4)).astype(np.int32)]
    arrays += [np.zeros((6, 0), np.float32), np.zeros((0, 4), np.float32)]
    f = agree([a, b, i, z, zz], outs, *arrays)
    if path == "blas":  # BLAS takes one dtype: the others fall back to the generated GEMM
        mixed = [line for line in paths_of(f) if "mixed operand dtypes" in line]
        assert len(mixed) == 2 and all("generated" in line for line in mixed)


def test_integer_matmul_is_a_clear_compile_error():
    a = gc.input("a", (3, 4), "int32")
    b = gc.input("b", (4, 2), "int64")
    with pytest.raises(NotImplementedError, match=r"integer matmul \(int32 @ int64 -> int64"):
        gc.compile([a, b], a @ b, backend="llvm")


def test_auto_chooses_by_shape_at_compile_time_or_at_run_time(monkeypatch):
    monkeypatch.setattr(gemm, "FORCE", None)
    monkeypatch.setenv(gemm.ENV, "auto")
    monkeypatch.setattr(gemm, "BLAS_MIN_WORK", 1_000_000)
    N = gc.dim("N")
    x = gc.input("x", (N, 64))
    small = gc.input("small", (4, 4))
    square = gc.input("square", (64, 64))
    wide = gc.input("wide", (64, 300))
    w = gc.input("w", (64, 64))
    outs = [x @ w, small @ small, square @ w, gc.transpose(wide) @ square]
    shapes = ((64, 64), (4, 4), (64, 64), (64, 300), (64, 64))
    for n in (2, 100, 300):  # N < 64: BLAS, then the generated one, then 4096 N >= 1e6: BLAS
        f = agree([x, small, square, wide, w], outs, *data("float32", (n, 64), *shapes[1:]))
    text = "\n".join(paths_of(f))
    assert (
        "(N, 64) @ (64, 64) -> (N, 64) float32: BLAS or generated (generated when m, n, k" in text
    )
    if gemm.blas_routines() is not None:
        assert "(4, 4) -> (4, 4) float32: BLAS (m = 4, n = 4, k = 4 < 64" in text
        assert "(64, 64) -> (64, 64) float32: generated (m, n, k >= 64 and m*n*k = 262144" in text
        assert "-> (300, 64) float32: BLAS (m*n*k = 1228800 >= 1000000" in text


def test_the_environment_variable_forces_a_path(monkeypatch):
    monkeypatch.setattr(gemm, "FORCE", None)
    a = gc.input("a", (300, 300))
    for value, label in (("generated", "generated (forced"), ("blas", "BLAS (forced")):
        monkeypatch.setenv(gemm.ENV, value)
        f = agree([a], a @ a, *data("float32", (300, 300)), rtol=1e-4)
        assert label in paths_of(f)[0]
    monkeypatch.setenv(gemm.ENV, "fast")
    with pytest.raises(ValueError, match="GRAPHC_GEMM='fast'"):
        gc.compile([a], a @ a, backend="llvm")


@pytest.mark.parametrize("provider", ["numpy", "scipy"])
def test_both_blas_providers_agree_with_numpy(provider, monkeypatch):
    found = gemm._numpy_openblas() if provider == "numpy" else gemm._scipy_blas()
    if found is None:
        pytest.skip(f"no BLAS from {provider} here")
    assert found.int_type.width == (64 if provider == "numpy" else 32)
    monkeypatch.setattr(gemm, "FORCE", "blas")
    monkeypatch.setattr(gemm, "blas_routines", lambda: found)
    for dtype in ("float32", "float64", "complex64", "complex128"):
        a = gc.input("a", (37, 29), dtype=dtype)
        b = gc.input("b", (29, 41), dtype=dtype)
        rng_ = np.random.default_rng(3)
        xa = (rng_.standard_normal((37, 29)) + (1j if "complex" in dtype else 0)).astype(dtype)
        xb = (rng_.standard_normal((29, 41)) - (2j if "complex" in dtype else 0)).astype(dtype)
        f = gc.compile([a, b], [a @ b, a.T.T @ b], backend="llvm")
        assert "BLAS (forced" in f.explain()
        tol = 1e-4 if dtype in ("float32", "complex64") else 1e-12
        for got in f(xa, xb):
            np.testing.assert_allclose(got, xa @ xb, rtol=tol, atol=tol)


def test_without_blas_every_gemm_is_generated(monkeypatch):
    monkeypatch.setattr(gemm, "FORCE", "blas")
    monkeypatch.setattr(gemm, "blas_routines", lambda: None)
    a = gc.input("a", (40, 30))
    f = agree([a], [a.T @ a, gc.relu(a @ a.T)], *data("float32", (40, 30)))
    assert all("generated (no BLAS found" in line for line in paths_of(f))
    assert "graphc.sgemm" not in f.source


@pytest.mark.parametrize("path", PATHS, indirect=True)
def test_the_mlp_training_step_agrees_with_numpy(path):
    xs = rng.random((64, 784)).astype(np.float32)
    ts = rng.integers(0, 10, 64).astype(np.int32)
    finals = {}
    for backend in ("numpy", "llvm"):
        model = mlp((784, 16, 16, 10))
        grads = gc.grad(model.loss, model.params)
        updates = {p: p - 0.1 * g for p, g in zip(model.params, grads)}
        f = gc.compile([model.x, model.t], model.loss, updates=updates, backend=backend)
        losses = [float(f(xs, ts)) for _ in range(4)]
        finals[backend] = (losses, [p.value.copy() for p in model.params])
    np.testing.assert_allclose(finals["llvm"][0], finals["numpy"][0], rtol=1e-5)
    for a, b in zip(finals["llvm"][1], finals["numpy"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


KEEP: list = []  # engines of the test's library gemms: the process's symbol points into them


def test_the_library_gemm_loads_from_the_disk_cache_without_building_ir(monkeypatch, tmp_path):
    from llvmlite import ir

    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    f32 = ir.FloatType()
    first = gemm_generated._compile_library(f32, f32, f32, False, True)
    KEEP.append(first)  # each call points the gemm's symbol at its own engine's code
    assert list(tmp_path.glob("*.o"))  # stored

    def no_ir(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a cache hit must not generate the gemm's IR")

    monkeypatch.setattr(gemm_generated.Generated, "gemm", no_ir)
    second = gemm_generated._compile_library(f32, f32, f32, False, True)
    KEEP.append(second)
    assert second[0] == first[0] and str(second[1]) == str(first[1])
    assert second[2].get_function_address(second[0]) != 0
    # a corrupt entry is rebuilt, never trusted
    for entry in tmp_path.glob("*.o"):
        entry.write_bytes(entry.read_bytes()[:-7] + b"garbage")
    monkeypatch.undo()
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    third = gemm_generated._compile_library(f32, f32, f32, False, True)
    KEEP.append(third)
    assert third[2].get_function_address(third[0]) != 0
