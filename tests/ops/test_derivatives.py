"""Derivatives of every op against central finite differences, in float64.

One table row per op (several per op for its variants): a builder (input Tensors -> output
Tensor), one operand per input with its shape and a sampler of its domain (positive for
log/sqrt, away from zero for denominators, away from the kinks of relu/abs/maximum/minimum/
max where finite differences are invalid). Each row is checked twice:

- reverse mode: gc.check_grad(gc.sum(out * W), inputs, feed), W fixed random weights, so
  the scalar depends on every element of the output;
- forward mode: gc.check_jvp(out, inputs, feed).

Rows whose shapes use the symbolic size N run with N = 1 and N = 7. Rows named "grad:..."
differentiate a gradient again (that is how slice_grad, pad_grad and dim_value are reached).
The table is in tests/ops/derivative_cases.py; `test_every_op_is_covered` fails when an op
is added to graphc.ops.OPS without a row there.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphc as gc
from graphc.node import toposort
from graphc.ops.registry import JVP_RULES, VJP_RULES
from graphc.tensor import unwrap

from .derivative_cases import CASES, N_VALUES, SOURCES, TOL, Case, distinct

# the checks -------------------------------------------------------------------------------------


def _ops_in(c: Case) -> set:
    """The ops of row c's graph (built on fresh inputs)."""
    inputs = [gc.input(f"x{k}", a.shape, dtype=a.dtype) for k, a in enumerate(c.args)]
    return {node.op for node in toposort([unwrap(c.build(*inputs))])}


def _params() -> list:
    params = []
    for c in CASES:
        for n in N_VALUES if c.symbolic else (None,):
            params.append(pytest.param(c, n, id=c.id if n is None else f"{c.id}-N={n}"))
    return params


def _seed(c: Case, n: int | None) -> int:
    return zlib.crc32(f"{c.id}/{n}".encode())


def prepare(c: Case, n: int | None) -> tuple:
    """(inputs, output, feed, wrt, concrete output shape) of row c with N = n; the output
    is computed once on the numpy backend and checked to be finite at the sampled point."""
    r = np.random.default_rng(_seed(c, n))
    inputs = [gc.input(f"x{k}", a.shape, dtype=a.dtype) for k, a in enumerate(c.args)]
    feed = {t: a.sample(r, a.concrete(n), a.dtype) for t, a in zip(inputs, c.args)}
    out = c.build(*inputs)
    assert out.dtype in ("float32", "float64"), (c.id, out.dtype)
    wrt = [t for t, a in zip(inputs, c.args) if a.differentiable]
    value = gc.compile(inputs, [out], backend="numpy")(*(feed[t] for t in inputs))[0]
    assert np.all(np.isfinite(value)), f"{c.id}: the sampled point gives a non-finite output"
    return inputs, out, feed, wrt, np.asarray(value).shape


def error(check: Callable, *args: object) -> float:
    """check(*args) (gc.check_grad or gc.check_jvp) over 3 random directions, and where that
    exceeds TOL, the smaller of it and the error over 3 other directions.

    check_jvp of a scalar output divides by |J d|, which a direction nearly orthogonal to the
    gradient makes tiny: one unlucky draw can fail a correct rule by roundoff alone (1e-10
    absolute over J d ~ 1e-4), while a wrong rule fails along every direction. (check_grad
    scales by |grad| |d| and is immune.)"""
    worst = check(*args, seed=0)
    return worst if worst <= TOL else min(worst, check(*args, seed=1))


@pytest.mark.parametrize("c, n", _params())
def test_derivatives_match_finite_differences(c: Case, n: int | None) -> None:
    inputs, out, feed, wrt, out_shape = prepare(c, n)
    r = np.random.default_rng(_seed(c, n) + 1)
    if all(sympy.sympify(d).is_number for d in out.shape):
        w = gc.constant(r.standard_normal(out_shape))
    else:  # a symbolic output shape: the weights are an input that is not differentiated
        w = gc.input("w", out.shape, dtype="float64")
        feed[w] = r.standard_normal(out_shape)
    reverse = error(gc.check_grad, gc.sum(out * w), wrt, feed)
    assert reverse <= TOL, f"{c.id} (N={n}): reverse mode off by {reverse:.3g}"
    forward = error(gc.check_jvp, out, wrt, feed)
    assert forward <= TOL, f"{c.id} (N={n}): forward mode off by {forward:.3g}"


def test_every_op_is_covered() -> None:
    covered = set().union(*(_ops_in(c) for c in CASES))
    missing = sorted(set(gc.OPS) - set(SOURCES) - covered)
    assert not missing, f"ops without a derivative row in derivative_cases.py: {missing}"


def test_every_op_has_derivative_rules() -> None:
    for name, opdef in gc.OPS.items():
        if opdef.kind == "source":
            continue
        assert name in VJP_RULES, f"op {name!r} has no vjp rule"
        assert name in JVP_RULES, f"op {name!r} has no jvp rule"


def test_the_table_has_symbolic_rows_and_unique_ids() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate row ids"
    assert sum(c.symbolic for c in CASES) >= 10


# properties ------------------------------------------------------------------------------------

# smooth everywhere (no domain, no kink), so any composition can be checked anywhere
UNARY = [
    gc.tanh,
    gc.sigmoid,
    gc.softplus,
    lambda a: a * a,
    lambda a: -a,
    lambda a: gc.exp(gc.tanh(a)),
    gc.elementwise(lambda v: sympy.sin(v), name="sin"),
]
BINARY = [
    lambda a, b: a + b,
    lambda a, b: a - b,
    lambda a, b: a * b,
    lambda a, b: a / (1.0 + b * b),
    gc.elementwise(lambda u, v: u * sympy.cos(v) + sympy.exp(-u * u), name="mix"),
]


@settings(max_examples=25, deadline=None)
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, min_side=1, max_side=4),
    steps=st.lists(
        st.tuples(st.booleans(), st.integers(0, 100), st.integers(0, 100), st.integers(0, 100)),
        min_size=1,
        max_size=6,
    ),
    seed=st.integers(0, 2**16),
)
def test_random_elementwise_compositions(shapes, steps, seed) -> None:
    """Random chains of smooth elementwise ops on operands of random broadcast shapes."""
    (sa, sb), _ = shapes
    a = gc.input("a", sa, dtype="float64")
    b = gc.input("b", sb, dtype="float64")
    pool = [a, b]
    for binary, k, i, j in steps:
        if binary:
            pool.append(BINARY[k % len(BINARY)](pool[i % len(pool)], pool[j % len(pool)]))
        else:
            pool.append(UNARY[k % len(UNARY)](pool[i % len(pool)]))
    out = pool[-1]
    for t in pool[:-1]:  # make the output depend on both operands
        out = out + 0.5 * gc.tanh(t)
    r = np.random.default_rng(seed)
    feed = {a: r.standard_normal(sa), b: r.standard_normal(sb)}
    w = gc.constant(r.standard_normal(tuple(int(d) for d in out.shape)))
    assert error(gc.check_grad, gc.sum(out * w), [a, b], feed) <= TOL
    assert error(gc.check_jvp, out, [a, b], feed) <= TOL


@settings(max_examples=20, deadline=None)
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
    data=st.data(),
)
def test_random_reductions(shape, data) -> None:
    """sum/mean/max/logsumexp/softmax over random axes (None, an int, a tuple), keepdims."""
    rank = len(shape)
    axis = data.draw(
        st.one_of(
            st.none(),
            st.integers(-rank, rank - 1),
            st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True).map(tuple),
        )
    )
    keepdims = data.draw(st.booleans())
    name = data.draw(st.sampled_from(["sum", "mean", "max", "logsumexp", "softmax"]))
    x = gc.input("x", shape, dtype="float64")
    if name == "softmax":
        out = gc.softmax(x, axis=axis if isinstance(axis, int) else -1)
    else:
        out = getattr(gc, name)(x, axis=axis, keepdims=keepdims)
    r = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    feed = {x: distinct(r, shape, "float64")}
    w = gc.constant(r.standard_normal(tuple(int(d) for d in out.shape)))
    assert error(gc.check_grad, gc.sum(out * w), [x], feed) <= TOL
    assert error(gc.check_jvp, out, [x], feed) <= TOL
