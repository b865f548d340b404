"""Helpers for the pass tests: run one pass on nodes, compare compiled values."""

import importlib

import numpy as np

import graphc as gc
from graphc.tensor import unwrap

# the pass modules (by their module names: graphc.passes may export functions of those names)
canon = importlib.import_module("graphc.passes.canonicalize")
simp = importlib.import_module("graphc.passes.simplify")
chains = importlib.import_module("graphc.passes.chains")
dce = importlib.import_module("graphc.passes.dce")


def run_pass(run, *roots):
    """(new roots, logged lines) of pass function `run` on the nodes (or Tensors) `roots`."""
    lines = []
    new = run([unwrap(r) for r in roots], lines.append)
    return new, lines


def feeds_for(inputs, dtype_seed=0):
    """Random arrays for input nodes (symbolic dims bound to 5)."""
    rng = np.random.default_rng(dtype_seed)
    arrays = []
    for node in inputs:
        node = unwrap(node)
        shape = tuple(int(d) if d.is_number else 5 for d in node.shape)
        if node.dtype.startswith("int"):
            arrays.append(rng.integers(0, int(node.shape[-1]) if node.shape else 3, size=shape))
            arrays[-1] = arrays[-1].astype(node.dtype)
        else:
            arrays.append(rng.standard_normal(shape).astype(node.dtype))
    return arrays


def assert_same_values(inputs, outputs, arrays=None, rtol=None):
    """compile(optimize=False) and compile(optimize=True) agree on the numpy backend; returns
    the optimized Function (for its explain())."""
    arrays = feeds_for(inputs) if arrays is None else arrays
    plain = gc.compile(list(inputs), list(outputs), optimize=False)
    fast = gc.compile(list(inputs), list(outputs))
    for a, b, out in zip(plain(*arrays), fast(*arrays), outputs):
        tol = rtol or (1e-5 if unwrap(out).dtype == "float32" else 1e-12)
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)
    return fast
