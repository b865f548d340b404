"""backends/llvm/vmath.py: accuracy against numpy, special values, and that map loops vectorize.

Each function is compiled into a small module holding ``void apply(T* in, T* out, i64 n)``,
optimized at -O3 for the host CPU, JIT-compiled with MCJIT and called through ctypes.
"""

import ctypes
import functools
import re

import llvmlite.binding as llvm
import numpy as np
import pytest
from llvmlite import ir

import graphc as gc
from backends.llvm import vmath

DTYPES = {np.float32: ir.FloatType(), np.float64: ir.DoubleType()}
TOL = {np.float32: 1e-6, np.float64: 1e-14}
F32, F64 = np.float32, np.float64
INF, NAN = np.inf, np.nan
rng = np.random.default_rng(1234)


@functools.cache
def _target_machine():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3
    )


@functools.cache
def compiled(name, dtype):
    """(callable mapping a numpy array, optimized assembly) for vmath function ``name``."""
    tm, ty = _target_machine(), DTYPES[dtype]
    module = ir.Module(name=f"vmath_{name}")
    module.triple = llvm.get_default_triple()
    module.data_layout = str(tm.target_data)
    fn = vmath.emit(module, name, ty)
    vmath.emit_map_loop(module, fn, ty, name="apply")
    mod = llvm.parse_assembly(str(module))
    mod.verify()
    pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=3))
    pb.getModulePassManager().run(mod, pb)
    asm = tm.emit_assembly(mod)
    engine = llvm.create_mcjit_compiler(mod, tm)
    engine.finalize_object()
    cfunc = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(
        engine.get_function_address("apply")
    )

    def call(x):
        x = np.ascontiguousarray(x, dtype=dtype)
        out = np.empty_like(x)
        cfunc(x.ctypes.data, out.ctypes.data, x.size)
        return out

    call.engine = engine  # keep the JIT alive as long as the cached callable
    return call, asm


def errors(got, ref, dtype):
    """(max relative error where ref is normal, max abs error elsewhere in subnormal ulps)."""
    info = np.finfo(dtype)
    diff = np.abs(got.astype(F64) - ref)
    normal = np.abs(ref) >= info.smallest_normal
    rel = (diff[normal] / np.abs(ref[normal])).max(initial=0.0)
    sub = (diff[~normal] / info.smallest_subnormal).max(initial=0.0)
    return rel, sub


def logspace(lo, hi, n, signed=True):
    x = 10.0 ** rng.uniform(lo, hi, n)
    return np.concatenate([x, -x]) if signed else x


def sigmoid_ref(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softplus_ref(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


N = 200_000


def samples(name, dtype):
    """Inputs for the accuracy test: wide ranges plus dense sampling where errors are delicate."""
    f32 = dtype == F32
    if name == "exp":  # results normal and finite; the subnormal tail is tested separately
        lo, hi = (-87.33, 88.72) if f32 else (-708.39, 709.78)
        return np.concatenate([rng.uniform(lo, hi, N), logspace(-30, 0.5, N // 10)])
    if name == "expm1":
        lo, hi = (-30, 88.72) if f32 else (-60, 709.78)
        return np.concatenate([rng.uniform(lo, hi, N), rng.uniform(-2, 2, N), logspace(-40, 0, N)])
    if name == "log":  # every positive finite bit pattern, subnormals included, and values near 1
        if f32:
            bits = rng.integers(1, 0x7F800000, N, dtype=np.uint32).view(F32)
        else:
            bits = rng.integers(1, 0x7FF0000000000000, N, dtype=np.uint64).view(F64)
        return np.concatenate([bits, 1 + logspace(-7 if f32 else -15, -0.2, N // 2)])
    if name == "log1p":
        x = np.concatenate([logspace(-40, 30, N), rng.uniform(-1, 1, N)])
        return x[x > -1]
    if name == "tanh":
        return np.concatenate(
            [rng.uniform(-50, 50, N), rng.uniform(-5, 5, N), logspace(-40, 0.5, N // 2)]
        )
    if name == "sigmoid":
        lo = -87 if f32 else -708
        return np.concatenate([rng.uniform(lo, 50, N), logspace(-40, 1.5, N // 2)])
    if name == "softplus":
        lo = -87 if f32 else -708
        return np.concatenate([rng.uniform(lo, 100, N), logspace(-40, 30 if f32 else 300, N // 2)])
    raise AssertionError(name)


REFS = {
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "tanh": np.tanh,
    "sigmoid": sigmoid_ref,
    "softplus": softplus_ref,
}


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", vmath.FUNCTIONS)
def test_accuracy(name, dtype):
    f, _ = compiled(name, dtype)
    x = samples(name, dtype).astype(dtype)
    rel, sub = errors(f(x), REFS[name](x.astype(F64)), dtype)
    assert rel <= TOL[dtype], f"{name}: max relative error {rel:.3g}"
    assert sub <= 1.0, f"{name}: {sub} subnormal ulps off"


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_exp_tails(dtype):
    """Gradual underflow: subnormal results within one subnormal ulp; 0 and inf beyond."""
    f, _ = compiled("exp", dtype)
    info = np.finfo(dtype)
    lo_edge = np.log(float(info.smallest_subnormal)) - np.log(2)  # exp below this rounds to 0
    x = rng.uniform(lo_edge, np.log(float(info.smallest_normal)), N).astype(dtype)
    y = f(x)
    rel, sub = errors(y, np.exp(x.astype(F64)), dtype)
    assert sub <= 1.0  # the reference is rounded too, so one ulp apart at most
    assert (y > 0).mean() > 0.99 and (y < info.smallest_normal).all()
    for name in ("sigmoid", "softplus"):  # both equal exp(x) to working precision there
        assert errors(compiled(name, dtype)[0](x), REFS[name](x.astype(F64)), dtype)[1] <= 1.0
    below = np.array([lo_edge - 0.01, lo_edge - 5, -1e4, -info.max], dtype=dtype)
    assert (f(below) == 0).all()
    over = np.log(float(info.max))
    assert (f(np.array([over + 0.01, over + 5, 1e4, info.max], dtype=dtype)) == INF).all()
    assert np.isfinite(f(np.array([over - 1e-3], dtype=dtype))).all()


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_saturation_and_ranges(dtype):
    big = np.concatenate([rng.uniform(40, 1000, 1000), logspace(3, 30, 1000, signed=False)])
    big = np.concatenate([big, [np.finfo(dtype).max]]).astype(dtype)
    tanh, sigmoid, softplus = (compiled(n, dtype)[0] for n in ("tanh", "sigmoid", "softplus"))
    # tanh(x) == 1 exactly once 1 - tanh(x) < half an ulp below 1 (x >= 9.1 / 19.1)
    sat = np.array([9.5 if dtype == F32 else 19.5], dtype=dtype)
    assert (tanh(np.concatenate([sat, big])) == 1).all()
    assert (tanh(-np.concatenate([sat, big])) == -1).all()
    assert (sigmoid(np.concatenate([sat * 2, big])) == 1).all()  # x >= 17 / 37
    assert (softplus(big) == big).all()
    assert (softplus(-big[big > 800]) == 0).all()
    # outputs stay in range everywhere
    x = rng.uniform(-200, 200, N).astype(dtype)
    t, s, p = tanh(x), sigmoid(x), softplus(x)
    assert (np.abs(t) <= 1).all() and ((s >= 0) & (s <= 1)).all() and (p >= 0).all()
    assert np.isfinite(p).all()


SPECIALS = {
    # name: [(x, expected)], nan in -> nan out is checked for every function separately
    "exp": [(-INF, 0.0), (INF, INF), (0.0, 1.0), (-0.0, 1.0)],
    "expm1": [(-INF, -1.0), (INF, INF), (0.0, 0.0), (-0.0, -0.0), (-1e4, -1.0)],
    "log": [(0.0, -INF), (-0.0, -INF), (-1.0, NAN), (-INF, NAN), (INF, INF), (1.0, 0.0)],
    "log1p": [(-1.0, -INF), (-2.0, NAN), (-INF, NAN), (INF, INF), (0.0, 0.0), (-0.0, -0.0)],
    "tanh": [(-INF, -1.0), (INF, 1.0), (0.0, 0.0), (-0.0, -0.0)],
    "sigmoid": [(-INF, 0.0), (INF, 1.0), (0.0, 0.5), (-1e4, 0.0), (1e4, 1.0)],
    "softplus": [(-INF, 0.0), (INF, INF), (0.0, np.log(2)), (-1e4, 0.0), (1e4, 1e4)],
}


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", vmath.FUNCTIONS)
def test_special_values(name, dtype):
    f, _ = compiled(name, dtype)
    xs, expected = (np.array(v, dtype=dtype) for v in zip(*SPECIALS[name]))
    got = f(xs)
    np.testing.assert_array_equal(got, expected)  # nan == nan here
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))
    nans = np.array([NAN, -NAN], dtype=dtype)
    assert np.isnan(f(nans)).all()


def test_emitted_functions_are_straight_line():
    for ty in DTYPES.values():
        module = ir.Module()
        for name in vmath.FUNCTIONS:
            fn = vmath.emit(module, name, ty)
            assert vmath.emit(module, name, ty) is fn  # defined once per module
            assert fn.name == vmath.function_name(name, ty) == f"graphc.{name}.{ty.intrinsic_name}"
            assert fn.linkage == "internal" and "alwaysinline" in fn.attributes
            assert len(fn.blocks) == 1
            text = str(fn)
            assert re.search(r"\bbr\b|\bphi\b|\bswitch\b", text) is None
            callees = set(re.findall(r"call \S+ @\"?([\w.]+)", text))
            assert callees and all(c.startswith("llvm.") for c in callees), callees
            assert not re.search(r"%\"?\.?\d+\b", text)  # every value is named
        llvm.parse_assembly(str(module)).verify()
    with pytest.raises(ValueError):
        vmath.emit(ir.Module(), "cosh", ir.FloatType())
    with pytest.raises(TypeError):
        vmath.emit(ir.Module(), "exp", ir.HalfType())


def _is_x86_with_avx2_fma():
    features = llvm.get_host_cpu_features().flatten().split(",")
    x86 = llvm.get_default_triple().startswith("x86_64")
    return x86 and "+avx2" in features and "+fma" in features


@pytest.mark.skipif(not _is_x86_with_avx2_fma(), reason="checks x86 AVX2/FMA assembly")
@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", vmath.FUNCTIONS)
def test_map_loop_vectorizes(name, dtype):
    _, asm = compiled(name, dtype)
    suffix = "ps" if dtype == F32 else "pd"
    # packed fused multiply-adds on 256- or 512-bit registers, and no libm calls
    assert re.search(rf"\bvfn?m(add|sub)\d+{suffix}\s.*%[yz]mm", asm), asm[:2000]
    assert re.search(rf"\bvmul{suffix}\s.*%[yz]mm", asm)
    assert not re.search(r"\bcall", asm)


def test_loops_of_transcendental_math_are_interleaved_and_cheap_ones_not():
    # four vector chains in flight for a loop of tanh/sigmoid (latency-bound); a plain
    # multiply-add keeps LLVM's own choice
    x = gc.input("x", (4096,))
    heavy = gc.compile([x], [gc.tanh(x) * gc.sigmoid(x)], backend="llvm")
    light = gc.compile([x], [x * 2.0 + 1.0], backend="llvm")
    assert '!"llvm.loop.interleave.count", i32 4' in heavy.source
    assert "llvm.loop.interleave.count" not in light.source
    xs = np.linspace(-30, 30, 4096, dtype=np.float32)
    ref = np.tanh(xs) / (1 + np.exp(-xs))
    np.testing.assert_allclose(heavy(xs)[0], ref, rtol=2e-6, atol=1e-30)
