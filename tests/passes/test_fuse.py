"""fuse: which nodes share a kernel, where a group ends, and that kernels give the same values."""

import numpy as np
import sympy

import graphc as gc
from graphc.kernels import LOOP_VARS
from graphc.models import mlp
from graphc.passes.fuse import fuse
from graphc.tensor import unwrap

rng = np.random.default_rng(0)
i0, i1 = LOOP_VARS[:2]


def kernels_of(*outputs):
    return fuse([unwrap(o) for o in outputs])


def same_values(inputs, outputs, *arrays):
    fused = gc.compile(inputs, outputs)(*arrays)
    plain = gc.compile(inputs, outputs, optimize=False)(*arrays)
    for a, b in zip(
        fused if isinstance(fused, tuple) else [fused],
        plain if isinstance(plain, tuple) else [plain],
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_an_elementwise_dag_is_one_kernel_with_no_intermediate_buffers():
    x = gc.input("x", (5, 3), "float64")
    y = gc.tanh(x) * gc.sigmoid(x) + gc.exp(x * 2.0) - x
    program = kernels_of(y)
    (kernel,) = program.kernels
    assert kernel.kind == "elementwise" and kernel.outputs == [unwrap(y)]
    assert [b.node for b in program.temps()] == [unwrap(y)]
    same_values([x], y, rng.standard_normal((5, 3)))


def test_broadcast_operands_are_read_through_affine_indices():
    N = gc.dim("N")
    x = gc.input("x", (N, 3), "float64")
    b = gc.input("b", (3,), "float64")
    s = gc.input("s", (N, 1), "float64")
    (kernel,) = kernels_of(gc.relu(x + b) * s).kernels
    index = {node.attrs["name"]: load.index for node, load in kernel.loads.items()}
    assert index == {"x": (i0, i1), "b": (i1,), "s": (i0, sympy.Integer(0))}
    assert kernel.domain == (N, 3)


def test_an_elementwise_prologue_fuses_into_a_reduction():
    x = gc.input("x", (4, 6), "float64")
    y = gc.mean((x - 1.0) ** 2)
    (kernel,) = kernels_of(y).kernels
    assert kernel.kind == "reduce" and kernel.ops()[-1] == "mean"
    assert kernel.reduce_axes == (0, 1) and kernel.domain == (4, 6)
    same_values([x], y, rng.standard_normal((4, 6)))


def test_a_reduction_feeding_a_broadcast_ends_a_group():
    x = gc.input("x", (4, 6), "float64")
    y = gc.exp(x - gc.max(x, axis=1, keepdims=True))  # the reduction must finish first
    program = kernels_of(y)
    assert [k.kind for k in program.kernels] == ["reduce", "elementwise"]
    assert program.kernels[0].outputs[0].op == "max"
    same_values([x], y, rng.standard_normal((4, 6)))


def test_gemm_epilogues_bias_activation_and_residual():
    x = gc.input("x", (8, 5), "float64")
    W = gc.param("W", (5, 5), seed=0, dtype="float64")
    b = gc.param("b", (5,), seed=1, dtype="float64", init="glorot_uniform")
    h = gc.relu(x @ W + b) + x  # bias, activation, residual
    V = gc.param("V", (5, 2), seed=2, dtype="float64")
    out = h @ V
    program = kernels_of(out)
    assert [k.ops() for k in program.kernels] == [["matmul", "add", "relu", "add"], ["matmul"]]
    assert all(k.kind == "library" for k in program.kernels)
    same_values([x], out, rng.standard_normal((8, 5)))


def test_a_transposed_gemm_operand_is_read_in_place():
    x = gc.input("x", (8, 5), "float64")
    y = gc.input("y", (8, 3), "float64")
    (kernel,) = kernels_of(x.T @ y).kernels
    assert kernel.ops() == ["transpose", "matmul"]
    assert kernel.loads[unwrap(x)].index == (i1, i0)  # read with the axes swapped
    same_values([x, y], x.T @ y, rng.standard_normal((8, 5)), rng.standard_normal((8, 3)))


def test_a_value_read_by_several_kernels_is_materialized_and_says_why():
    x = gc.input("x", (4, 4), "float64")
    a = gc.exp(x)
    program = kernels_of(gc.sum(a, 0), a @ x)
    (producer,) = [k for k in program.kernels if unwrap(a) in k.outputs]
    assert "read by 2 op(s) of other kernels" in producer.why
    same_values([x], [gc.sum(a, 0), a @ x], rng.standard_normal((4, 4)))


def test_siblings_reading_one_input_become_one_multi_output_kernel():
    x = gc.input("x", (3, 4), "float64")
    outs = [gc.tanh(x), gc.exp(x) * 2.0]
    (kernel,) = kernels_of(*outs).kernels
    assert set(kernel.outputs) == {unwrap(o) for o in outs}
    same_values([x], outs, rng.standard_normal((3, 4)))


def test_forward_and_backward_of_an_elementwise_op_share_a_kernel():
    x = gc.input("x", (6,), "float64")
    w = gc.input("w", (6,), "float64")
    y = gc.tanh(x)
    g = gc.grad(gc.sum(y * w), x)
    (kernel,) = kernels_of(y, g).kernels
    assert set(kernel.outputs) == {unwrap(y), unwrap(g)}
    same_values([x, w], [y, g], rng.standard_normal(6), rng.standard_normal(6))


def test_kernels_run_in_an_order_where_every_read_was_written():
    x = gc.input("x", (6, 4), "float64")
    W = gc.param("W", (4, 4), seed=0, dtype="float64")
    h = x
    for _ in range(4):
        h = gc.tanh(h @ W) + h
    loss = gc.sum(h * h)
    program = kernels_of(loss, *gc.grad(loss, [W, x]))
    written = {b.node for b in program.buffers.values() if b.kind in ("input", "param", "constant")}
    for kernel in program.kernels:
        for node in kernel.loads:
            while program.buffers[node].kind == "view":
                node = node.inputs[0]
            assert node in written, (kernel.name, node)
        written.update(kernel.outputs)


def mlp_training_step():
    model = mlp((784, 16, 16, 10))
    grads = gc.grad(model.loss, model.params)
    updates = {p: p - 0.1 * g for p, g in zip(model.params, grads)}
    return model.x, model.t, model.params, model.loss, updates


def test_the_mlp_training_step_fuses_to_few_kernels_and_explains_them():
    x, t, params, loss, updates = mlp_training_step()
    f = gc.compile([x, t], loss, updates=updates)
    program = f.program.kernels
    gemms = program.count("library")
    others = len(program.kernels) - gemms
    assert gemms == 8 and others <= 12, program.describe()
    xs = rng.random((64, 784)).astype(np.float32)
    ts = rng.integers(0, 10, 64)
    f(xs, ts)
    text = f.explain()
    assert "memory plan" in text and "peak" in text
    for kernel in program.kernels:
        assert f"{kernel.name} [{kernel.kind}]" in text
    assert "ops: matmul add relu" in text  # a GEMM with its epilogue
    assert f.executable.memory_plan.peak <= f.executable.memory_plan.naive


def test_the_fused_training_step_trains_exactly_like_the_op_by_op_one():
    x, t, params, loss, updates = mlp_training_step()
    xs = rng.random((32, 784)).astype(np.float32)
    ts = rng.integers(0, 10, 32)
    start = [p.value.copy() for p in params]
    fused = gc.compile([x, t], loss, updates=updates)
    fused_losses = [float(fused(xs, ts)) for _ in range(3)]
    after = [p.value.copy() for p in params]
    for p, v in zip(params, start):
        p.value = v
    plain = gc.compile([x, t], loss, updates=updates, optimize=False)
    plain_losses = [float(plain(xs, ts)) for _ in range(3)]
    np.testing.assert_allclose(fused_losses, plain_losses, rtol=1e-5)
    for p, v in zip(params, after):
        np.testing.assert_allclose(p.value, v, rtol=1e-4, atol=1e-6)
