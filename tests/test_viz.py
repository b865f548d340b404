"""graphc.viz: DOT text of graphs, and SVG/PNG through Graphviz's `dot`."""

import re
import shutil
import subprocess

import numpy as np
import pytest

import graphc as gc
from graphc import viz

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz `dot` not installed (apt-get install graphviz)"
)


def mlp_graph():
    N = gc.dim("N")
    x = gc.input("x", (N, 8))
    t = gc.input("t", (N,), dtype="int32")
    W = gc.param("W", (8, 4), init="glorot_uniform", seed=0)
    b = gc.param("b", (4,), init="zeros")
    logits = gc.relu(x @ W + b) * 2.0
    loss = gc.mean(gc.softmax_cross_entropy(logits, t))
    return x, t, W, b, logits, loss


def node_lines(text):
    """{node id: its attribute text} from DOT text."""
    return dict(re.findall(r"^\s*(n\d+) \[(.*)\];$", text, re.M))


def line_of(text, label_start):
    nodes = node_lines(text)
    found = [attrs for attrs in nodes.values() if f'label="{label_start}' in attrs]
    assert len(found) == 1, (label_start, text)
    return found[0]


def test_dot_text_names_every_op_shape_and_dtype():
    *_, logits, loss = mlp_graph()
    text = gc.to_dot([loss])
    assert text.startswith('digraph "graphc" {') and text.rstrip().endswith("}")
    assert "(N, 4) float32" in line_of(text, "add")
    for expected in [
        "input x\\n(N, 8) float32",
        "input t\\n(N,) int32",
        "param W\\n(8, 4) float32",
        "param b\\n(4,) float32",
        "matmul\\n(N, 4) float32",
        "relu\\n(N, 4) float32",
        "mul\\n(N, 4) float32",
        "constant 2.\\n() float32",
        "softmax_cross_entropy",
        "(N,) float32",
        "mean\\naxes=(0,), keepdims=False\\n() float32",
    ]:
        assert expected in text, expected
    # one DOT node per graph node, one edge per operand
    order = gc.node.toposort([loss.node])
    assert len(node_lines(text)) == len(order)
    assert text.count("->") == sum(len(n.inputs) for n in order)


def test_inputs_params_constants_outputs_are_styled_apart():
    *_, logits, loss = mlp_graph()
    text = gc.to_dot([loss, logits])
    x_attrs = line_of(text, "input x")
    w_attrs = line_of(text, "param W")
    c_attrs = line_of(text, "constant")
    op_attrs = line_of(text, "matmul")
    out_attrs = line_of(text, "mean")

    def get(attrs, key):
        return re.search(rf'\b{key}="([^"]*)"', attrs).group(1)

    shapes = {get(a, "shape") for a in (x_attrs, w_attrs, op_attrs)}
    assert len(shapes) == 3
    fills = {get(a, "fillcolor") for a in (x_attrs, w_attrs, c_attrs, op_attrs, out_attrs)}
    assert len(fills) == 5
    assert "dashed" in get(c_attrs, "style")
    assert get(out_attrs, "peripheries") == "2" and "output 0" in out_attrs
    assert "output 1" in line_of(text, "mul")
    assert "peripheries" not in op_attrs


def test_edges_follow_data_flow():
    N = gc.dim("N")
    x = gc.input("x", (N, 3))
    y = gc.exp(x) - x
    text = gc.to_dot(y)
    ids = {label: node for node, label in re.findall(r'(n\d+) \[.*?label="(\w+)', text)}
    assert f'{ids["input"]} -> {ids["exp"]} [label="(N, 3)"];' in text
    assert f'{ids["exp"]} -> {ids["sub"]} [label="0: (N, 3)"];' in text
    assert f'{ids["input"]} -> {ids["sub"]} [label="1: (N, 3)"];' in text


def test_function_draws_outputs_and_updates():
    x, t, W, b, logits, loss = mlp_graph()
    f = gc.compile([x, t], [loss], updates={W: W * 0.5, b: b + 1.0})
    text = gc.to_dot(f)
    assert "new W" in text and "new b" in text
    assert text.count('label="update"') == 2
    ids = {label: node for node, label in re.findall(r'(n\d+) \[.*?label="([^"\\]+)', text)}
    assert f"{ids['param W']} [" in text
    assert re.search(rf"n\d+ -> {ids['param W']} \[style=dashed", text)
    assert "output" in line_of(text, "mean")


def test_a_compiled_function_draws_each_kernel_as_a_cluster():
    x, t, W, b, logits, loss = mlp_graph()
    gW, gb = gc.grad(loss, [W, b])
    f = gc.compile([x, t], [loss], updates={W: W - 0.1 * gW, b: b - 0.1 * gb})
    text = gc.to_dot(f)
    kernels = f.program.kernels.kernels
    assert text.count("subgraph cluster_") == len(kernels) > 1
    for kernel in kernels:
        assert f'label="{kernel.name}: {kernel.kind} kernel"' in text
    plain = gc.to_dot(gc.compile([x, t], [loss], optimize=False))
    assert "subgraph" not in plain


def test_quotes_and_backslashes_are_escaped():
    x = gc.input('odd "name" \\ here', (2,))
    text = gc.to_dot(gc.exp(x))
    assert 'input odd \\"name\\" \\\\ here' in text
    assert viz.quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_to_dot_rejects_non_tensors():
    with pytest.raises(TypeError, match="Tensor"):
        gc.to_dot([np.ones(3)])
    with pytest.raises(ValueError, match="rankdir"):
        gc.to_dot(gc.input("x", (1,)), rankdir="XY")


@needs_dot
def test_dot_accepts_the_text(tmp_path):
    x, t, W, b, logits, loss = mlp_graph()
    y = gc.input('q"uote', (3,))
    f = gc.compile([x, t], [loss, logits], updates={W: W - 0.1 * W})
    for graph in ([loss], f, [gc.exp(y) + np.arange(3, dtype=np.float32)]):
        done = subprocess.run(
            ["dot", "-Tsvg"], input=gc.to_dot(graph), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "<svg" in done.stdout


def test_save_graph_writes_dot(tmp_path):
    *_, loss = mlp_graph()
    path = gc.save_graph([loss], tmp_path / "loss.dot")
    assert path == tmp_path / "loss.dot"
    assert path.read_text() == gc.to_dot([loss])


@needs_dot
@pytest.mark.parametrize("suffix,magic", [(".svg", b"<svg"), (".png", b"\x89PNG")])
def test_save_graph_renders(tmp_path, suffix, magic):
    *_, loss = mlp_graph()
    path = gc.save_graph(loss, str(tmp_path / f"loss{suffix}"))
    assert path.exists() and magic in path.read_bytes()[:400]
    assert (tmp_path / "loss.dot").read_text() == gc.to_dot(loss)


def test_save_graph_without_dot_is_a_clear_error(tmp_path, monkeypatch):
    *_, loss = mlp_graph()
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz") as info:
        gc.save_graph([loss], tmp_path / "loss.svg")
    assert "loss.dot" in str(info.value)
    assert (tmp_path / "loss.dot").exists()
    assert not (tmp_path / "loss.svg").exists()
    assert not viz.dot_available()


def test_save_graph_without_dot_on_path(tmp_path, monkeypatch):
    *_, loss = mlp_graph()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match="not installed"):
        gc.save_graph([loss], tmp_path / "loss.png")
    assert (tmp_path / "loss.dot").exists()


def test_save_graph_unknown_extension(tmp_path):
    *_, loss = mlp_graph()
    with pytest.raises(ValueError, match=r"\.pdf"):
        gc.save_graph([loss], tmp_path / "loss.pdf")
    with pytest.raises(ValueError, match="none"):
        gc.save_graph([loss], tmp_path / "loss")
    assert list(tmp_path.iterdir()) == []


def test_dot_failure_is_reported(tmp_path, monkeypatch):
    *_, loss = mlp_graph()
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'syntax error' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="exit 3.*syntax error"):
        gc.save_graph([loss], tmp_path / "loss.svg")
