"""The README's tour runs as written."""

import os
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_two_setup_commands():
    text = README.read_text()
    first_block = re.search(r"```\n(.*?)```", text, re.S).group(1).strip().splitlines()
    assert first_block == [
        'pip install -e ".[dev]" && graphc demo',
        'pip install -e ".[dev]" && pytest',
    ]


def test_readme_tour_runs(tmp_path, capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
    assert (tmp_path / "loss.dot").exists()
