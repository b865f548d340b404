"""schedule + memory plan: buffers reused once dead, planned per binding of the sizes."""

import numpy as np

import graphc as gc
from graphc.passes.fuse import fuse
from graphc.passes.memory import _nbytes, plan
from graphc.tensor import unwrap


def deep_chain(n_layers=6, width=32):
    N = gc.dim("N")
    x = gc.input("x", (N, width))
    h = x
    for k in range(n_layers):
        h = gc.tanh(h @ gc.param(f"W{k}", (width, width), seed=k))
    return x, h


def test_dead_buffers_are_reused_and_lifetimes_in_a_slot_never_overlap():
    x, h = deep_chain()
    program = fuse([unwrap(h)])
    memory = plan(program, {gc.dim("N"): 64})
    assert len(memory.slots) < len(memory.slot_of)  # reuse happened
    assert memory.peak < memory.naive
    by_slot: dict = {}
    for name, slot in memory.slot_of.items():
        by_slot.setdefault(slot, []).append(memory.lifetimes[name])
    for spans in by_slot.values():
        spans.sort()
        for (_, a1), (b0, _) in zip(spans, spans[1:]):
            assert a1 < b0  # the earlier buffer is dead before the next is written
    sizes = {b.name: _nbytes(b.node, {gc.dim("N"): 64}) for b in program.temps()}
    for name, slot in memory.slot_of.items():
        assert memory.slots[slot] >= sizes[name]


def test_the_plan_is_made_once_per_binding_of_the_sizes():
    x, h = deep_chain()
    f = gc.compile([x], h)
    for n in (64, 8, 64):
        f(np.ones((n, 32), np.float32))
    assert len(f.executable.plans) == 2
    assert f.executable.memory_plan.peak == 64 * 32 * 4 * 2  # two live (64, 32) buffers
    assert "peak 16,384 bytes" in f.explain()


def test_returned_values_stay_live_to_the_end():
    x = gc.input("x", (16,))
    a = gc.exp(x) @ gc.param("W", (16, 16), seed=0)
    b = gc.tanh(a) @ gc.param("V", (16, 16), seed=1)
    program = fuse([unwrap(a), unwrap(b)])
    memory = plan(program)
    last = len(program.kernels)
    assert memory.lifetimes[program.buffers[unwrap(a)].name][1] == last
