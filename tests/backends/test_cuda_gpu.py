"""backend="cuda" on a GPU: every kernel kind agrees with the numpy backend, an MLP trains
with its parameters on the device, cupy arrays go in and come out. Skipped without a GPU
(cupy.is_available() false), as in CI; test_cuda_emulated.py runs the same kernels on the CPU."""

import numpy as np
import pytest

import graphc as gc

from .test_cuda_emulated import CASES

cupy = pytest.importorskip("cupy")
pytestmark = pytest.mark.skipif(not cupy.is_available(), reason="no CUDA GPU (cupy.is_available())")


@pytest.mark.parametrize("name", list(CASES))
def test_every_kernel_kind_agrees_with_numpy(name):
    build, arg = CASES[name]
    inputs, outputs, feeds = build(arg)
    fast = gc.compile(inputs, outputs, backend="cuda")
    ref = gc.compile(inputs, outputs)
    for arrays in feeds:
        for a, b in zip(fast(*arrays), ref(*arrays)):
            assert a.dtype == b.dtype and a.shape == b.shape
            tol = 1e-4 if a.dtype == np.float32 else 1e-11
            scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)


def test_an_mlp_step_keeps_parameters_on_the_device_and_takes_cupy_arrays():
    from graphc.models import mlp

    losses = {}
    for backend in ("numpy", "cuda"):
        model = mlp((12, 16, 10), seed=3)
        grads = gc.grad(model.loss, model.params)
        updates = {p: p - 0.1 * g for p, g in zip(model.params, grads)}
        step = gc.compile([model.x, model.t], model.loss, updates, backend=backend)
        data = np.random.default_rng(1)
        x = data.standard_normal((32, 12)).astype(np.float32)
        t = data.integers(0, 10, 32).astype(np.int32)
        if backend == "cuda":
            x, t = cupy.asarray(x), cupy.asarray(t)
            found = [step(x, t, device_output=True) for _ in range(3)]
            assert isinstance(found[0], cupy.ndarray)
            losses[backend] = [float(v) for v in found]
        else:
            losses[backend] = [float(step(x, t)) for _ in range(3)]
        losses[backend + " W1"] = model.params[0].value
    np.testing.assert_allclose(losses["cuda"], losses["numpy"], rtol=1e-4)
    np.testing.assert_allclose(losses["cuda W1"], losses["numpy W1"], rtol=1e-4, atol=1e-6)
