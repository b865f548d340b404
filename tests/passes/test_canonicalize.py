"""canonicalize: each rule gives exactly the expected graph and the same values."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.ops import shape as shp
from graphc.ops.elementwise import ew
from graphc.ops.registry import apply
from graphc.ops.sources import constant, input
from graphc.tensor import unwrap
from tests.passes.passcheck import assert_same_values, canon, run_pass

DTYPES = ["float32", "float64"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_commute(monkeypatch):
    """Rules on their own: operand order as built."""
    monkeypatch.setattr(canon, "DISABLED", {"commute"})


def canonical(*roots):
    return run_pass(canon.canonicalize, *roots)


def c(value, dtype):
    return constant(np.asarray(value, dtype=dtype))


# structure: the rewritten graph is exactly the expected one ----------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_sub_becomes_add_of_neg(no_commute, dtype):
    a, b = input("a", (3, 4), dtype), input("b", (4,), dtype)
    (out,), lines = canonical(ew("sub", a, b))
    assert out is ew("add", a, ew("neg", b))
    assert "sub_to_add x1" in lines


@pytest.mark.parametrize("dtype", DTYPES)
def test_division_by_a_power_of_two_becomes_a_product(no_commute, dtype):
    x = input("x", (3,), dtype)
    (out,), _ = canonical(ew("div", x, c(4.0, dtype)))
    assert out is ew("mul", x, c(0.25, dtype))
    powers = np.array([2.0, 0.5, -8.0], dtype)
    (out,), _ = canonical(ew("div", x, constant(powers)))
    assert out is ew("mul", x, constant(np.array([0.5, 2.0, -0.125], dtype)))
    splat = shp.broadcast_to(c(2.0, dtype), (3,))
    (out,), _ = canonical(ew("div", x, splat))
    assert out is ew("mul", x, shp.broadcast_to(c(0.5, dtype), (3,)))


@pytest.mark.parametrize("divisor", [3.0, 0.1, 0.0, np.inf, np.nan, [2.0, 3.0, 4.0]])
def test_division_by_anything_else_stays(divisor):
    # x/3 and x*(1/3) differ in the last bit for about a third of all x
    x = input("x", (3,), "float32")
    node = ew("div", x, constant(np.asarray(divisor, "float32")))
    assert canonical(node)[0] == [node]


def test_division_whose_reciprocal_is_not_representable_stays():
    x = input("x", (3,), "float32")
    tiny = constant(np.asarray(2.0**-140, "float32"))  # a subnormal: 2**140 overflows
    node = ew("div", x, tiny)
    assert canonical(node)[0] == [node]
    ints = input("i", (3,), "int32")
    node = ew("div", ints, constant(np.asarray(2.0, "float32")))
    assert canonical(node)[0] == [node]  # int operand: computed in float32 by the op


@pytest.mark.parametrize("op", canon.COMMUTATIVE)
def test_commutative_operands_have_one_order(op):
    a, b = input("a", (3,)), input("b", (3,))
    (ab, ba), lines = canonical(ew(op, a, b), ew(op, b, a))
    assert ab is ba
    assert ab.inputs in ((a, b), (b, a))
    assert any(line.startswith("commute") for line in lines)


def test_constants_come_last():
    x = input("x", (3,))
    two = constant(2.0)
    (out,), _ = canonical(ew("mul", two, x))
    assert out is ew("mul", x, two)
    splat = shp.broadcast_to(two, (3,))
    (out,), _ = canonical(ew("add", splat, ew("exp", x)))
    assert out is ew("add", ew("exp", x), splat)


def test_nested_sums_in_any_order_meet():
    a, b, d = input("a", (3,)), input("b", (3,)), input("d", (3,))
    one = ew("add", ew("mul", a, b), ew("sub", d, a))
    other = ew("add", ew("sub", d, a), ew("mul", b, a))
    (x, y), _ = canonical(one, other)
    assert x is y


def test_transposes_compose():
    x = input("x", (2, 3, 4))
    twice = shp.transpose(shp.transpose(x, (1, 2, 0)), (1, 0, 2))
    (out,), lines = canonical(twice)
    expected = np.transpose(np.transpose(np.zeros((2, 3, 4)), (1, 2, 0)), (1, 0, 2)).shape
    assert out is shp.transpose(x, (2, 1, 0))
    assert tuple(int(d) for d in out.shape) == expected
    assert "transpose_chain x1" in lines
    inverse = shp.transpose(shp.transpose(x, (1, 2, 0)), (2, 0, 1))
    assert canonical(inverse)[0] == [x]


def test_reshapes_collapse():
    x = input("x", (3, 4))
    (out,), _ = canonical(shp.reshape(shp.reshape(x, (6, 2)), (2, 2, 3)))
    assert out is shp.reshape(x, (2, 2, 3))
    (out,), _ = canonical(shp.reshape(shp.reshape(x, (12,)), (3, 4)))
    assert out is x


def test_broadcasts_collapse():
    x = input("x", (3,))
    (out,), _ = canonical(shp.broadcast_to(shp.broadcast_to(x, (2, 3)), (4, 2, 3)))
    assert out is shp.broadcast_to(x, (4, 2, 3))


def test_reshape_of_a_splat_is_a_splat():
    s = input("s", (1,))
    (out,), lines = canonical(shp.reshape(shp.broadcast_to(s, (6,)), (2, 3)))
    assert out is shp.broadcast_to(s, (2, 3))
    assert "splat_reshape x1" in lines
    v = input("v", (1, 1, 1))
    (out,), _ = canonical(shp.reshape(shp.broadcast_to(v, (1, 2, 3)), (6,)))
    assert out is shp.broadcast_to(shp.reshape(v, ()), (6,))


def test_casts_to_the_same_dtype_vanish():
    x = input("x", (3,), "float32")
    (out,), lines = canonical(ew("exp", apply("cast", (x,), dtype="float32")))
    assert out is ew("exp", x)
    assert "same_cast x1" in lines


def test_round_trips_through_a_wider_dtype_vanish():
    x = input("x", (3,), "float32")
    (out,), _ = canonical(gc.cast(gc.cast(x, "float64"), "float32"))
    assert out is x
    i = input("i", (3,), "int32")
    (out,), _ = canonical(gc.cast(gc.cast(i, "float64"), "float32"))
    assert out is unwrap(gc.cast(i, "float32"))  # int32 -> float64 is exact
    lossy = unwrap(gc.cast(gc.cast(input("y", (3,), "float64"), "float32"), "float64"))
    assert canonical(lossy)[0] == [lossy]


# values: the optimizer gives the same numbers as the op-by-op interpreter ---------------


def _graphs(dtype):
    x, y = gc.input("x", (3, 4), dtype), gc.input("y", (4,), dtype)
    return {
        "sub_to_add": ([x, y], [x - y, y - x]),
        "div_by_power_of_two": ([x], [x / 8.0, x / gc.constant(np.array([2, 4, 0.5, 1], dtype))]),
        "commute": ([x, y], [2.0 * x + y, gc.maximum(y, x), gc.equal(y, x)]),
        "transpose_chain": ([x], [x.T.T, gc.transpose(gc.reshape(x, (3, 2, 2)), (2, 0, 1)).T]),
        "reshape_chain": ([x], [x.reshape(6, 2).reshape(2, 6)]),
        "broadcast_chain": ([y], [gc.broadcast_to(gc.broadcast_to(y, (3, 4)), (2, 3, 4))]),
        "cast_of_exact_cast": ([x], [x.astype("float32").astype("float64").astype("float32")]),
    }


@pytest.mark.parametrize("rule", list(_graphs("float32")))
@pytest.mark.parametrize("dtype", DTYPES)
def test_rules_keep_the_values(rule, dtype):
    inputs, outputs = _graphs(dtype)[rule]
    f = assert_same_values(inputs, outputs)
    assert f"canonicalize: {rule} x" in f.explain()


@pytest.mark.parametrize("rule", [r.__name__ for r in canon.RULES])
def test_every_rule_can_be_disabled(monkeypatch, rule):
    monkeypatch.setattr(canon, "DISABLED", {rule})
    x = input("x", (3, 4))
    graph = ew("sub", shp.transpose(shp.transpose(x)), ew("div", constant(2.0), x))
    _, lines = canonical(graph)
    assert not any(line.startswith(rule + " ") for line in lines)


def test_skipping_the_pass_keeps_the_graph():
    x = gc.input("x", (3,))
    out = x - 2.0
    f = gc.compile([x], out, skip_passes=["canonicalize", "simplify"])
    assert "canonicalize: skipped" in f.explain()
    assert f.program.outputs[0] is unwrap(out)


SCRIPT = """
import graphc as gc
from graphc.node import format_graph
from graphc.passes.canonicalize import canonicalize
from graphc.tensor import unwrap
a, b = gc.input("a", (3,)), gc.input("b", (3,))
w = gc.param("w", (3,), seed=0)
out = gc.maximum(a * 2.0 - b / 4.0, w * a) + b * gc.exp(a)
print(format_graph(canonicalize([unwrap(out)], lambda text: None)))
"""


def test_canonical_order_is_the_same_in_every_run():
    # another process, with other string hashes and no nodes built before: the same order
    env = dict(os.environ, PYTHONHASHSEED=str(hash("seed") % 1000 + 1))
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    here: dict = {}
    exec(SCRIPT.replace("print(", "result = ("), here)  # noqa: S102 - our own script
    assert run.stdout == here["result"] + "\n"
