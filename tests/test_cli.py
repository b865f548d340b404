"""The `graphc` command line: demo, viz, --help, python -m graphc."""

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from graphc.cli import main

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist"  # ../shared/data/mnist from the repo root
needs_mnist = pytest.mark.skipif(
    not (MNIST / "t10k-images-idx3-ubyte.gz").exists(),
    reason=f"the MNIST test set is not at {MNIST} (t10k-*-ubyte.gz)",
)
has_dot = shutil.which("dot") is not None


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out and "viz" in out


def test_subcommand_help(capsys):
    for command in ("demo", "viz"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
    assert "--data" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: graphc" in capsys.readouterr().out


def test_demo_trains_both_models_on_bundled_digits(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "2", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "1,797 images" in text and "backend 'llvm'" in text
    # 64*16 + 16 + 16*16 + 16 + 16*10 + 10; LeNet-5 with 3x3 kernels on 8x8 images
    assert "parameters: 1,482" in text and "parameters: 19,754" in text
    accuracies = [float(a) for a in re.findall(r"test accuracy (\d+\.\d+)%", text)]
    assert len(accuracies) == 2 and min(accuracies) > 40.0  # trained: chance is 10%
    assert len(re.findall(r"\d+\.\d+ ms per training step", text)) == 2
    for stem in ("mlp-64-16-16-10", "lenet5-8x8"):
        assert (out / f"{stem}-loss.png").read_bytes()[:4] == b"\x89PNG"
        dot = out / f"{stem}.dot"
        assert dot.exists() and "param" in dot.read_text()
        assert (out / f"{stem}.svg").exists() == has_dot
    assert "param fc1.W" in (out / "mlp-64-16-16-10.dot").read_text()
    assert str(out) in text


def test_demo_without_dot_still_writes_dot(tmp_path, capsys, monkeypatch):
    pytest.importorskip("sklearn")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    args = ["demo", "--out", str(tmp_path), "--activation", "sigmoid", "--epochs", "1"]
    assert main(args + ["--backend", "numpy", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "sigmoid" in text and "apt-get install graphviz" in text
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".dot", ".dot", ".png", ".png"]


@needs_mnist
def test_demo_on_real_mnist(tmp_path, capsys):
    args = ["demo", "--data", str(MNIST), "--out", str(tmp_path), "--epochs", "1", "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "784-16-16-10" in text and "lenet5-28x28" in text
    assert "parameters: 13,002" in text and "parameters: 61,706" in text
    assert "10,000 images" in text
    assert (tmp_path / "mlp-784-16-16-10.dot").exists()
    accuracies = [float(a) for a in re.findall(r"test accuracy (\d+\.\d+)%", text)]
    assert min(accuracies) > 70.0


def test_demo_bad_data_folder(tmp_path, capsys):
    assert main(["demo", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "t10k-images-idx3-ubyte" in capsys.readouterr().err


MODULE = textwrap.dedent(
    """
    import graphc as gc

    def build():
        x = gc.input("x", (gc.dim("N"), 3))
        W = gc.param("W", (3, 2), seed=0)
        return [gc.tanh(x @ W), gc.sum(x)]

    def single():
        return gc.exp(gc.input("z", (4,)))

    def compiled():
        x = gc.input("x", (2,))
        W = gc.param("W", (2,), init="ones")
        return gc.compile([x], [x * W], updates={W: W * 2.0})

    NOT_A_FUNCTION = 3
    """
)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(MODULE)
    return path


def test_viz_on_a_file(tmp_path, model_file, capsys):
    out = tmp_path / "graph.dot"
    assert main(["viz", f"{model_file}:build", "--out", str(out)]) == 0
    text = out.read_text()
    assert "tanh" in text and "matmul" in text and "param W" in text
    assert str(out) in capsys.readouterr().out


@pytest.mark.skipif(not has_dot, reason="Graphviz `dot` not installed (apt-get install graphviz)")
def test_viz_writes_svg(tmp_path, model_file):
    out = tmp_path / "pic.svg"
    assert main(["viz", f"{model_file}:single", "--out", str(out), "--rankdir", "LR"]) == 0
    assert b"<svg" in out.read_bytes()[:400]
    assert "rankdir=LR" in (tmp_path / "pic.dot").read_text()


def test_viz_on_a_module_name(tmp_path, model_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "my_model", raising=False)
    assert main(["viz", "my_model:compiled", "--out", "f.dot"]) == 0
    assert "new W" in (tmp_path / "f.dot").read_text()
    sys.modules.pop("my_model", None)


def test_viz_errors(tmp_path, model_file, capsys):
    assert main(["viz", "no_colon_here"]) == 1
    assert "MODULE:FUNCTION" in capsys.readouterr().err
    assert main(["viz", f"{model_file}:missing", "--out", str(tmp_path / "a.dot")]) == 1
    assert "missing" in capsys.readouterr().err
    assert main(["viz", f"{model_file}:NOT_A_FUNCTION", "--out", str(tmp_path / "a.dot")]) == 1
    assert "not callable" in capsys.readouterr().err
    assert main(["viz", f"{model_file}:build", "--out", str(tmp_path / "a.pdf")]) == 1
    assert ".pdf" in capsys.readouterr().err
    assert main(["viz", str(tmp_path / "absent.py") + ":f"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "graphc", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: graphc" in done.stdout
