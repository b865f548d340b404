"""graphc.annotate: values and derivatives on the picture of a graph, and gc.latex."""

import html
import re
import shutil

import numpy as np
import pytest
import sympy

import graphc as gc
from graphc.annotate import number_text, to_sympy


def classic():
    x, y, z = (gc.input(n, (), dtype="float64") for n in "xyz")
    q = x + y
    return x, y, z, q, q * z


def labels(text):
    """{first label line: (value text, grad text)} of an annotated DOT graph."""
    found = {}
    for label in re.findall(r"label=<(.*?)>\];", text):
        rows = label.split("<br/>")
        value = re.search(r"value = ([^<]*)<", label)
        grad = re.search(r"grad = ([^<]*)<", label)
        found[rows[0]] = (value.group(1), grad.group(1) if grad else None)
    return found


def test_the_classic_backprop_picture_of_f_equals_x_plus_y_times_z():
    x, y, z, q, f = classic()
    text = gc.to_dot(f, feed={x: -2.0, y: 5.0, z: -4.0}, grads=True)
    assert labels(text) == {
        "input x": ("-2", "-4"),
        "input y": ("5", "-4"),
        "input z": ("-4", "3"),
        "add": ("3", "-4"),  # q = x + y, df/dq = z
        "mul": ("-12", "1"),  # f = q z
    }


def test_values_alone_without_derivatives():
    x, y, z, q, f = classic()
    found = labels(gc.to_dot([f], feed={x: 1.0, y: 2.0, z: 3.0}))
    assert found["add"] == ("3", None) and found["mul"] == ("9", None)


def test_derivatives_of_a_vector_graph_match_gc_grad():
    rng = np.random.default_rng(0)
    x = gc.input("x", (3,), dtype="float64")
    W = gc.param("W", (2, 3), value=rng.normal(size=(2, 3)))
    h = gc.tanh(W @ x)
    loss = gc.sum(h * h)
    xv = rng.normal(size=3)
    from graphc.annotate import annotations
    from graphc.tensor import unwrap

    notes = annotations([unwrap(loss)], {x: xv}, grads=True)
    gx, gW, gh = gc.compile([x], gc.grad(loss, [x, W, h]))(xv)
    np.testing.assert_allclose(notes[unwrap(x)][1], gx, rtol=1e-12)
    np.testing.assert_allclose(notes[unwrap(W)][1], gW, rtol=1e-12)
    np.testing.assert_allclose(notes[unwrap(h)][1], gh, rtol=1e-12)
    np.testing.assert_allclose(notes[unwrap(h)][0], np.tanh(W.value @ xv), rtol=1e-12)
    np.testing.assert_allclose(notes[unwrap(h)][1], 2 * np.tanh(W.value @ xv), rtol=1e-12)


def test_bad_requests_are_refused_clearly():
    x, y, z, q, f = classic()
    with pytest.raises(ValueError, match="no value for input.*z"):
        gc.to_dot(f, feed={x: 1.0, y: 2.0})
    with pytest.raises(ValueError, match="needs feed"):
        gc.to_dot(f, grads=True)
    v = gc.input("v", (3,), dtype="float64")
    with pytest.raises(ValueError, match="one scalar float output"):
        gc.to_dot(v * 2.0, feed={v: np.ones(3)}, grads=True)


def test_number_text():
    assert number_text(np.float32(-12.0)) == "-12"
    assert number_text(np.array([1.5, 2.0])) == "[1.5, 2]"
    assert number_text(np.arange(10.0)) == "mean 4.5, max |.| 9"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
def test_the_annotated_picture_renders(tmp_path):
    x, y, z, q, f = classic()
    path = gc.save_graph(f, tmp_path / "backprop.svg", feed={x: -2.0, y: 5.0, z: -4.0}, grads=True)
    svg = html.unescape(path.read_text())  # dot writes minus signs as &#45;
    assert "value = -12" in svg and "grad = -4" in svg and "grad = 3" in svg


# gc.latex -----------------------------------------------------------------------------------


def test_latex_of_derivatives():
    x, y, z, q, f = classic()
    assert gc.latex(gc.grad(f, x)) == "z"
    assert gc.latex(gc.grad(x**3, x)) == "3 x^{2}"
    assert gc.latex(gc.grad(gc.exp(x) * y, x)) == "y e^{x}"


@pytest.mark.parametrize(
    "build, formula",
    [
        (lambda x, y: gc.sigmoid(x * y), lambda x, y: 1 / (1 + sympy.exp(-x * y))),
        (lambda x, y: gc.tanh(x) * gc.log(y), lambda x, y: sympy.tanh(x) * sympy.log(y)),
        (lambda x, y: gc.softplus(x - y), lambda x, y: sympy.log(1 + sympy.exp(x - y))),
        (lambda x, y: x / y + gc.sqrt(y), lambda x, y: x / y + sympy.sqrt(y)),
    ],
)
def test_the_symbolic_gradient_is_the_derivative_of_the_formula(build, formula):
    x, y = gc.input("x", (), dtype="float64"), gc.input("y", (), dtype="float64")
    sx, sy = sympy.symbols("x y", real=True)
    from graphc.ops.elementwise import textbook

    for wrt, s in ((x, sx), (y, sy)):
        got = textbook(to_sympy(gc.grad(build(x, y), wrt)))
        expected = sympy.diff(formula(sx, sy), s)
        value = {sx: 0.7, sy: 1.3}
        assert abs(float(got.subs(value)) - float(expected.subs(value))) < 1e-12
    assert isinstance(gc.latex(gc.grad(build(x, y), x)), str)


def test_latex_refuses_tensors_that_are_not_scalars():
    v = gc.input("v", (3,), dtype="float64")
    with pytest.raises(ValueError, match=r"shape \(3,\).*only graphs of scalars"):
        gc.latex(gc.sum(v * v))
