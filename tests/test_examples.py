"""Every script in examples/ runs to completion with its default arguments (each asserts
its own claim: accuracy reached, shapes and counts of the published tables, ...)."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_the_examples_the_issue_lists_exist():
    names = {p.name for p in EXAMPLES}
    wanted = {
        "mlp.py",
        "lenet5.py",
        "resnet_block.py",
        "architectures.py",
        "autoencoder.py",
        "parametric.py",
        "separable.py",
    }
    assert wanted <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # whatever a script writes lands here
    monkeypatch.setattr(sys, "argv", [str(path)])  # the script's defaults, not pytest's flags
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out
