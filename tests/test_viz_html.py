"""`graphc viz --optimized --grad --html`: the gradient drawn in its colour, and the page
(inline SVG, kernel table with sources) rendered by headless Chromium when it is installed."""

import re
import shutil
import subprocess

import pytest

import graphc as gc
from graphc.cli import main
from graphc.viz_html import page

MODEL = """
import graphc as gc

def build():
    N = gc.dim("N")
    x = gc.input("x", (N, 8))
    t = gc.input("t", (N,), dtype="int32")
    W = gc.param("W", (8, 4), init="glorot_uniform", seed=0)
    b = gc.param("b", (4,), init="zeros")
    return gc.mean(gc.softmax_cross_entropy(gc.relu(x @ W + b), t))
"""
VIOLET = "#7e22ce"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


def node_attrs(dot_text):
    return re.findall(r"^\s*n\d+ \[(.*)\];$", dot_text, re.M)


def test_grad_draws_the_gradient_nodes_in_their_own_colour(tmp_path, model_file):
    out = tmp_path / "g.dot"
    assert main(["viz", f"{model_file}:build", "--out", str(out), "--grad"]) == 0
    nodes = node_attrs(out.read_text())
    violet = [a for a in nodes if VIOLET in a]
    plain = [a for a in nodes if VIOLET not in a]
    assert violet and plain
    # the forward graph (inputs, params, matmul, the loss) is not violet; the gradients are
    assert any('label="param W' in a for a in plain)
    assert any('label="matmul' in a for a in plain)
    assert any("output 1" in a for a in violet) and any("output 2" in a for a in violet)


def test_optimized_draws_kernel_clusters(tmp_path, model_file):
    out = tmp_path / "g.dot"
    assert main(["viz", f"{model_file}:build", "--out", str(out), "--optimized", "--grad"]) == 0
    text = out.read_text()
    assert "subgraph cluster_k0" in text and VIOLET in text


def test_the_page_holds_the_svg_and_one_row_per_kernel(model_file):
    N = gc.dim("N")
    x = gc.input("x", (N, 8))
    W = gc.param("W", (8, 4), init="glorot_uniform", seed=0)
    loss = gc.mean(gc.tanh(x @ W))
    f = gc.compile([x], [loss, gc.grad(loss, W)], backend="llvm")
    text = page(f, title="t")
    assert text.count('<tr class="kernel">') == len(f.program.kernels.kernels)
    assert text.count("define internal void") == len(f.program.kernels.kernels)  # IR per kernel
    expected = int(re.search(r'data-expected="(\d+)"', text).group(1))
    assert expected == len(node_attrs(gc.to_dot(f)))
    if shutil.which("dot"):
        assert "<svg" in text and "<?xml" not in text


@needs_dot
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
def test_headless_chromium_renders_every_node_and_takes_a_screenshot(tmp_path, model_file):
    out = tmp_path / "g.svg"
    args = ["viz", f"{model_file}:build", "--out", str(out), "--grad", "--optimized", "--html"]
    assert main(args) == 0
    html_path = out.with_suffix(".html")
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = html_path.resolve().as_uri()
    dom = subprocess.run(
        flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
    found = re.search(r'<span id="node-count" data-expected="(\d+)">(\d+)</span>', dom)
    assert found, dom[:2000]
    assert int(found.group(2)) == int(found.group(1)) > 10  # every node of the graph was drawn
    shot = tmp_path / "page.png"
    subprocess.run(
        flags + [f"--screenshot={shot}", "--window-size=1200,900", url],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000
