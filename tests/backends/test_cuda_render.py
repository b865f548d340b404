"""backend="cuda" without a GPU: every kernel the renderer generates (every kernel kind of
test_cuda_emulated.CASES, the example models, the differential fuzzer's graphs) compiles with
NVRTC for sm_90, within the shared-memory limit ptxas reports; a compile error names the
NVRTC log and the generated lines. Skipped where NVRTC is not installed (the cuda extra).
With a GPU, test_cuda_gpu.py runs the same kernels."""

import numpy as np
import pytest

import graphc as gc
from backends.cuda import CompileError, compile_source, nvrtc_available
from backends.cuda.nvrtc import usage
from backends.cuda.render import PRELUDE, render

from ..fuzz.check import Case
from .test_cuda_emulated import CASES

available, why = nvrtc_available()
pytestmark = pytest.mark.skipif(
    not available, reason=f'NVRTC missing (pip install -e ".[cuda]"): {why}'
)


def compile_only(inputs, outputs, updates=None, **options):
    f = gc.compile(
        inputs, outputs, updates, backend="cuda", compile_only=True, arch="sm_90", **options
    )
    compiled = f.executable.compiled
    names = [name for name, _ in f.executable.rendered.functions]
    assert sorted(compiled.usage) == sorted(names)  # every kernel reached ptxas
    return f


@pytest.mark.parametrize("name", list(CASES))
def test_every_kernel_kind_compiles_for_sm_90(name):
    build, arg = CASES[name]
    inputs, outputs, _ = build(arg)
    compile_only(inputs, outputs)


def test_both_gemm_paths_and_a_symbolic_choice_compile():
    from .test_cuda_emulated import matmuls

    inputs, outputs, _ = matmuls("float32")
    for gemm in ("tiled", "library", "auto"):
        f = compile_only(inputs, outputs, gemm=gemm)
        assert ("As[" in f.source) == (gemm != "library")


def test_the_mlp_training_step_compiles():
    from graphc.models import mlp

    model = mlp((784, 128, 10))
    grads = gc.grad(model.loss, model.params)
    updates = {p: p - 0.1 * g for p, g in zip(model.params, grads)}
    f = compile_only([model.x, model.t], model.loss, updates)
    assert "gc_block_reduce" in f.source and "long long" in f.source  # N is symbolic
    with pytest.raises(RuntimeError, match="compile_only=True"):
        f(np.zeros((2, 784), np.float32), np.zeros(2, np.int32))


FUZZ_SEEDS = range(20)  # NVRTC and ptxas take ~0.5 s per graph


def test_the_fuzzers_graphs_compile():
    """Every kernel of the fuzzer's graphs, in one translation unit (one NVRTC run)."""
    parts, kernels = [], 0
    for seed in FUZZ_SEEDS:
        g = Case(seed).graph
        program = gc.compile(g.inputs, g.roots).program  # the optimizer's kernels
        try:
            rendered = render(program.kernels, prefix=f"g{seed}_")
        except NotImplementedError as error:
            assert "complex values" in str(error), error
            continue
        parts.append(rendered.source[len(PRELUDE) :])
        kernels += len(rendered.functions)
    compiled = compile_source(PRELUDE + "\n".join(parts), arch="sm_90")
    assert len(compiled.usage) == kernels > 100


def test_a_compile_error_shows_the_log_and_the_generated_lines():
    source = 'extern "C" __global__ void k0(float* x) {\n  x[0] = undefined_name;\n}\n'
    with pytest.raises(
        CompileError, match=r"undefined_name(.|\n)*>> +2 \| +x\[0\] = undefined_name"
    ):
        compile_source(source)


def test_shared_memory_overuse_is_an_error():
    source = (
        'extern "C" __global__ void k0(float* x) {\n'
        "  __shared__ float big[16384];\n  big[threadIdx.x] = x[threadIdx.x];\n"
        "  __syncthreads();\n  x[threadIdx.x] = big[threadIdx.x + 1];\n}\n"
    )
    with pytest.raises(CompileError, match="too much shared data"):
        compile_source(source)


def test_ptxas_usage_is_parsed():
    log = (
        "ptxas info    : Compiling entry function 'k3' for 'sm_90'\n"
        "ptxas info    : Used 18 registers, used 1 barriers, 1024 bytes smem\n"
    )
    assert usage(log) == {"k3": {"registers": 18, "smem": 1024}}
