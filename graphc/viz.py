"""Pictures of graphs: Graphviz DOT text, and SVG/PNG through Graphviz's `dot` when installed.

Every node shows its op (inputs and params their name), its shape and its dtype.
Leaves and results are told apart by shape and colour:

- input placeholders: blue, a house pointing down (data comes in);
- params: yellow cylinders (state that lives between calls);
- constants: grey, dashed boxes, with the value when it is small;
- outputs: green, double border; the new values of a Function's updates: orange,
  double border, with a dashed "update" edge back to the param they replace.

Edges run in the direction data flows (from an operand to the op that reads it) and are
labelled with the tensor's shape; an op with several operands numbers its edges by argument
position.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from graphc.annotate import annotations, number_text
from graphc.compile import Function
from graphc.node import Node, toposort
from graphc.tensor import unwrap

DOT_TIMEOUT_S = 120
FORMATS = (".dot", ".svg", ".png")

_STYLE = {
    "input": {"shape": "invhouse", "style": "filled", "fillcolor": "#cfe2ff", "color": "#1c64c8"},
    "param": {"shape": "cylinder", "style": "filled", "fillcolor": "#fff3bf", "color": "#b08800"},
    "constant": {
        "shape": "box",
        "style": "filled,dashed",
        "fillcolor": "#eeeeee",
        "color": "#888888",
    },
    "op": {"shape": "box", "style": "rounded,filled", "fillcolor": "#ffffff", "color": "#444444"},
}
_OUTPUT = {"peripheries": "2", "penwidth": "1.6", "fillcolor": "#d3f9d8", "color": "#2b8a3e"}
_GRADIENT = {"fillcolor": "#f3e8ff", "color": "#7e22ce", "fontcolor": "#5b168f"}
_UPDATE = {"peripheries": "2", "penwidth": "1.6", "fillcolor": "#ffe8cc", "color": "#d9480f"}
_HIDDEN_ATTRS = ("name", "uid", "state", "value")
_MAX_ATTR_TEXT = 48
VALUE_COLOR, GRAD_COLOR = "#1c64c8", "#c92a2a"  # forward values, derivatives of the output


def quote(text: str) -> str:
    """A DOT double-quoted string holding `text` literally (newlines become line breaks)."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n") + '"'


def _attrs(attrs: dict) -> str:
    return ", ".join(f"{key}={quote(value)}" for key, value in attrs.items())


def _dims_text(node: Node) -> str:
    dims = ", ".join(str(d) for d in node.shape)
    return f"({dims}{',' if len(node.shape) == 1 else ''})"


def _shape_text(node: Node) -> str:
    return f"{_dims_text(node)} {node.dtype}"


def _head(node: Node) -> str:
    """The first line of a node's label: name for leaves, op and short attrs for ops."""
    if node.op in ("input", "param") and "name" in node.attrs:
        return f"{node.op} {node.attrs['name']}"
    if node.op == "constant":
        value = node.attrs.get("value")
        small = value is not None and np.size(getattr(value, "array", value)) <= 6
        return f"constant {value!r}" if small else "constant"
    shown = [f"{k}={v!r}" for k, v in node.attrs.items() if k not in _HIDDEN_ATTRS]
    if not shown:
        return node.op
    text = ", ".join(shown)
    if len(text) > _MAX_ATTR_TEXT:
        text = text[: _MAX_ATTR_TEXT - 3] + "..."
    return f"{node.op}\n{text}"


def _roots(outputs: Any) -> tuple[list, list, list]:
    """(extra leaves to draw, output nodes, (param, new value) update pairs)."""
    if isinstance(outputs, Function):  # the graph the backend runs (optimized, if it was)
        program = outputs.program
        return list(program.inputs), list(program.outputs), list(program.updates)
    items = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    nodes = [unwrap(item) for item in items]
    for item, node in zip(items, nodes):
        if not isinstance(node, Node):
            raise TypeError(
                "to_dot: expected a Tensor, a list of Tensors or a graphc.Function, "
                f"got {type(item).__name__}"
            )
    return [], nodes, []


def to_dot(
    outputs: Any,
    name: str = "graphc",
    rankdir: str = "TB",
    feed: dict | None = None,
    grads: bool = False,
    forward_outputs: int | None = None,
) -> str:
    """Graphviz DOT text of the graph computing `outputs`.

    outputs: a Tensor, a list of Tensors (or Nodes), or a compiled graphc.Function,
    whose outputs and parameter updates are drawn. rankdir: "TB" (top to bottom) or "LR".
    feed ({input: value}): every node also shows its value at that point (blue), and with
    grads=True the derivative of the (scalar) output with respect to it (red): the picture
    of backpropagation. forward_outputs=k: the outputs after the first k are gradients;
    the nodes only they need are drawn in the gradient colour (violet).
    """
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"to_dot: rankdir must be TB, LR, BT or RL, got {rankdir!r}")
    extra, results, updates = _roots(outputs)
    if grads and feed is None:
        raise ValueError("to_dot(grads=True) needs feed={input: value} to evaluate the graph at")
    notes = annotations(results, feed, grads) if feed is not None else {}
    order = toposort(extra + results + [new for _, new in updates])
    gradient: set = set()
    if forward_outputs is not None:
        gradient = set(order) - set(toposort(results[:forward_outputs]))
    ids = {node: f"n{k}" for k, node in enumerate(order)}
    output_index = {}
    for k, node in enumerate(results):
        output_index.setdefault(node, []).append(k)
    update_of = {}
    for param, new in updates:
        update_of.setdefault(new, []).append(param.attrs.get("name", param.label()))

    lines = [
        f"digraph {quote(name)} {{",
        f"  rankdir={rankdir};",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8, color="#555555", arrowsize=0.7];',
    ]
    cluster_of = _clusters(outputs)

    def line(node: Node) -> str:
        return _node_line(node, ids, results, output_index, update_of, notes, gradient)

    for node in order:
        if node in cluster_of:
            continue  # drawn inside its kernel's cluster below
        lines.append("  " + line(node))
    kernels = outputs.program.kernels.kernels if cluster_of else []
    for kernel in kernels:
        lines.append(f"  subgraph cluster_{kernel.name} {{")
        title = f"{kernel.name}: {kernel.kind} kernel"
        lines.append(
            f'    label={quote(title)}; style="rounded,dashed"; color="#7048e8"; '
            'fontcolor="#7048e8"; fontname="Helvetica"; fontsize=10;'
        )
        for node in kernel.nodes:
            lines.append("    " + line(node))
        lines.append("  }")
    for node in order:
        numbered = len(node.inputs) > 1
        for index, source in enumerate(node.inputs):
            size = _dims_text(source)  # the tensor that flows, and its operand position
            label = f"{index}: {size}" if numbered else size
            lines.append(f"  {ids[source]} -> {ids[node]} [label={quote(label)}];")
    for param, new in updates:
        lines.append(
            f'  {ids[new]} -> {ids[param]} [style=dashed, color="#d9480f", '
            'fontcolor="#d9480f", label="update", constraint=false];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_line(
    node: Node,
    ids: dict,
    results: list,
    output_index: dict,
    update_of: dict,
    notes: dict,
    gradient: set,
) -> str:
    kind = node.op if node.op in ("input", "param", "constant") else "op"
    label = [_head(node), _shape_text(node)]
    style = dict(_STYLE[kind])
    if node in output_index:
        marks = output_index[node]
        many = len(results) > 1
        label.append("output " + ", ".join(map(str, marks)) if many else "output")
        style.update(_OUTPUT)
    if node in update_of:
        label.append("new " + ", ".join(update_of[node]))
        style.update(_UPDATE)
    if node in gradient:
        style.update(_GRADIENT)  # outputs keep their double border, in the gradient's colour
    style["tooltip"] = f"built at {node.where}"
    if node not in notes:
        style["label"] = "\n".join(label)
        return f"{ids[node]} [{_attrs(style)}];"
    value, derivative = notes[node]  # an HTML-like label: black text, blue value, red grad
    rows = [html.escape(line) for text in label for line in text.split("\n")]
    rows.append(f'<font color="{VALUE_COLOR}">value = {html.escape(number_text(value))}</font>')
    if derivative is not None:
        text = html.escape(number_text(derivative))
        rows.append(f'<font color="{GRAD_COLOR}">grad = {text}</font>')
    return f"{ids[node]} [{_attrs(style)}, label=<{'<br/>'.join(rows)}>];"


def _clusters(outputs: Any) -> dict:
    """node -> kernel for a compiled Function whose optimizer made kernels (else empty)."""
    if not isinstance(outputs, Function) or outputs.program.kernels is None:
        return {}
    return {n: k for k in outputs.program.kernels.kernels for n in k.nodes}


def save_graph(outputs: Any, path: str | os.PathLike, **options: Any) -> Path:
    """Write a picture of the graph computing `outputs` to `path` and return it.

    path ending in .dot: the DOT text. .svg or .png: the DOT text is always written
    beside it (same name, .dot) and Graphviz's `dot` renders the picture; when `dot`
    is not installed a RuntimeError says so (the .dot file is there all the same).
    options go to `to_dot` (name, rankdir, feed, grads, forward_outputs).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"save_graph: unknown file type {path.suffix or '(none)'!r} for {str(path)!r}; "
            f"use one of {', '.join(FORMATS)}"
        )
    text = to_dot(outputs, **options)
    dot_path = path if suffix == ".dot" else path.with_suffix(".dot")
    dot_path.write_text(text)
    if suffix == ".dot":
        return path
    return render(dot_path, path)


def render(dot_path: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Run Graphviz's `dot` on a .dot file to make `path` (.svg or .png)."""
    dot_path, path = Path(dot_path), Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png"):
        raise ValueError(f"render: can make .svg or .png, not {path.suffix!r}")
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError(
            f"cannot write {path}: Graphviz's `dot` program is not installed "
            f"(install it with `apt-get install graphviz`, or `brew install graphviz`); "
            f"the DOT text was written to {dot_path}"
        )
    command = [exe, f"-T{fmt}", str(dot_path), "-o", str(path)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=DOT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"Graphviz `dot` took more than {DOT_TIMEOUT_S} s on {dot_path}; "
            f"the DOT text is in {dot_path}"
        ) from None
    if done.returncode != 0:
        raise RuntimeError(
            f"Graphviz `dot -T{fmt}` failed on {dot_path} (exit {done.returncode}): "
            f"{done.stderr.strip()}"
        )
    return path


def dot_available() -> bool:
    """Whether Graphviz's `dot` program is on the PATH."""
    return shutil.which("dot") is not None


__all__ = ["dot_available", "render", "save_graph", "to_dot"]
