"""dce: the account of what the optimizer left unreachable."""

import numpy as np

import graphc as gc
from graphc.node import toposort
from graphc.ops.elementwise import ew
from graphc.ops.sources import input
from graphc.tensor import unwrap
from tests.passes.passcheck import canon, dce, run_pass, simp


def _graph():
    x = input("x", (3,))
    return x, ew("mul", ew("log", ew("exp", x)), gc.constant(np.float32(1.0)).node)


def test_dce_keeps_the_roots_and_counts_the_live_nodes():
    x, root = _graph()
    (out,), lines = run_pass(dce.dce, root)
    assert out is root
    assert lines == [f"{len(toposort([root]))} nodes live"]


def test_dce_reports_what_the_passes_before_it_removed():
    x, root = _graph()
    roots, _ = run_pass(canon.canonicalize, root)
    roots, _ = run_pass(simp.simplify, *roots)
    assert roots == [x]
    _, lines = run_pass(dce.dce, *roots)
    assert lines == [
        "5 nodes before optimization, 1 live; no longer reachable: 1 constant, 1 exp, 1 log, 1 mul"
    ]


def test_simplify_notes_the_start_when_canonicalize_is_skipped():
    x, root = _graph()
    roots, _ = run_pass(simp.simplify, root)
    _, lines = run_pass(dce.dce, *roots)
    assert lines[0].startswith("5 nodes before optimization, 1 live")


def test_a_note_of_another_graph_is_not_used():
    _, root = _graph()
    run_pass(canon.canonicalize, root)  # its note is left behind (dce did not run)
    other = input("other", (2,))
    _, lines = run_pass(dce.dce, ew("neg", other))
    assert lines == ["2 nodes live"]


def test_explain_shows_the_account_and_the_pass_can_be_skipped():
    x = gc.input("x", (3,))
    out = gc.log(gc.exp(x)) * 1.0 + gc.sum(gc.broadcast_to(gc.constant(2.0), (4, 3)), axis=0)
    f = gc.compile([x], out)
    assert "dce: 9 nodes before optimization, 3 live; no longer reachable:" in f.explain()
    skipped = gc.compile([x], out, skip_passes=["dce"])
    assert "dce: skipped" in skipped.explain()
    xs = np.arange(3, dtype="float32")
    np.testing.assert_array_equal(f(xs), skipped(xs))
    assert unwrap(out) in toposort(gc.compile([x], out, optimize=False).program.outputs)
