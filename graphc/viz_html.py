"""One self-contained HTML page of a graph: the SVG picture inline and a table of the fused
kernels, each with its generated source a click away (`graphc viz --html`).

The page needs no network and no files beside it. A small script counts the drawn nodes
into #node-count, so a browser test can check what rendered.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from graphc.compile import Function
from graphc.viz import DOT_TIMEOUT_S, to_dot

_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
#graph svg { max-width: 100%; height: auto; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: top; text-align: left; }
pre { background: #f6f8fa; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
"""

_COUNT_SCRIPT = """
document.addEventListener("DOMContentLoaded", function () {
  var drawn = document.querySelectorAll("#graph svg g.node").length;
  document.getElementById("node-count").textContent = String(drawn);
});
"""


def svg_text(dot_text: str) -> str | None:
    """The SVG Graphviz draws for `dot_text`, or None when `dot` is not installed."""
    exe = shutil.which("dot")
    if exe is None:
        return None
    done = subprocess.run(
        [exe, "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=DOT_TIMEOUT_S
    )
    if done.returncode != 0:
        raise RuntimeError(f"Graphviz `dot -Tsvg` failed: {done.stderr.strip()}")
    start = done.stdout.find("<svg")  # drop the XML prolog and doctype: inline SVG
    return done.stdout[start:]


def kernel_rows(f: Function) -> list:
    """[(name, kind, what it computes, source)] of a compiled Function's kernels."""
    program = f.program.kernels
    if program is None:
        return []
    source_of = getattr(f.executable, "kernel_source", None)
    rows = []
    for number, kernel in enumerate(program.kernels):
        what = kernel.describe(program.buffers)
        source = source_of(number) if source_of is not None else what
        summary = " ".join(line.strip() for line in what.split("\n")[:2])  # head + ops
        rows.append((kernel.name, kernel.kind, summary, source))
    return rows


def page(outputs: Any, title: str = "graphc graph", **options: Any) -> str:
    """The HTML text of the page for `outputs` (see to_dot; options go to it)."""
    dot_text = to_dot(outputs, **options)
    nodes = len(re.findall(r"^\s*n\d+ \[", dot_text, re.M))  # node lines, not edges
    svg = svg_text(dot_text)
    picture = svg if svg is not None else f"<pre>{html.escape(dot_text)}</pre>"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>",
        f"<script>{_COUNT_SCRIPT}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p><span id="node-count" data-expected="{nodes}">?</span> nodes drawn '
        f"(of {nodes} in the graph).</p>",
        f'<div id="graph">{picture}</div>',
    ]
    if svg is None:
        parts.append("<p>Graphviz's <code>dot</code> is not installed: the DOT text is shown.</p>")
    rows = kernel_rows(outputs) if isinstance(outputs, Function) else []
    if rows:
        backend = html.escape(outputs.backend)
        parts.append(f"<h2>{len(rows)} kernels ({backend} backend)</h2>")
        parts.append("<table><tr><th>kernel</th><th>kind</th>")
        parts.append("<th>computes (click: source)</th></tr>")
        for name, kind, what, source in rows:
            parts.append(
                f'<tr class="kernel"><td>{html.escape(name)}</td><td>{html.escape(kind)}</td>'
                f"<td><details><summary>{html.escape(what)}</summary>"
                f"<pre>{html.escape(source)}</pre></details></td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def save_html(outputs: Any, path: str | os.PathLike, **options: Any) -> Path:
    """Write the page for `outputs` to `path` (.html) and return the path."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"save_html: {str(path)!r} should end in .html")
    path.write_text(page(outputs, **options))
    return path


__all__ = ["kernel_rows", "page", "save_html", "svg_text"]
