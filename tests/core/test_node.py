"""graphc.node: frozen, interned nodes; CSE by hash-consing; one Tensor per node."""

import copy
import gc as pygc
import pickle
import threading
import weakref

import numpy as np
import pytest

import graphc as gc
from graphc.node import Attrs, ConstValue, Node, as_dtype, format_graph, toposort


@pytest.fixture
def model():
    N = gc.dim("N")
    x = gc.input("x", (N, 4))
    W = gc.param("W", (4, 3), seed=0)
    b = gc.param("b", (3,), init="zeros")
    return x, W, b


def test_same_expression_twice_is_one_node(model):
    x, W, b = model
    assert (x @ W + b).node is (x @ W + b).node
    assert gc.relu(x @ W + b).node is gc.relu(x @ W + b).node


def test_different_expressions_are_different_nodes(model):
    x, W, b = model
    assert (x @ W + b).node is not (x @ W - b).node
    assert (x @ W + b).node is not (b + x @ W).node  # structural, not algebraic, equality


def test_one_tensor_per_node(model):
    x, W, b = model
    y = x @ W + b
    assert x @ W + b is y
    assert gc.Tensor(y.node) is y
    assert {y: 1}[x @ W + b] == 1  # Tensors key dicts by identity


def test_tensor_eq_is_identity_not_elementwise(model):
    x, W, _ = model
    assert (x @ W == x @ W) is True
    assert x != W


def test_nodes_are_immutable(model):
    x, W, b = model
    node = (x @ W + b).node
    for name, value in [("op", "sub"), ("shape", ()), ("inputs", ()), ("where", "here")]:
        with pytest.raises(AttributeError, match="immutable"):
            setattr(node, name, value)
    with pytest.raises(TypeError):
        node.attrs["x"] = 1  # Attrs is a read-only mapping
    with pytest.raises(AttributeError, match="read-only"):
        (x @ W).node = node
    assert isinstance(node.inputs, tuple) and isinstance(node.shape, tuple)


def test_nodes_are_not_pickled_but_copy_is_identity(model):
    x, W, b = model
    y = x @ W + b
    with pytest.raises(TypeError, match="interned"):
        pickle.dumps(y.node)
    assert copy.copy(y.node) is y.node
    assert copy.deepcopy(y.node) is y.node
    assert copy.deepcopy({"out": y}) == {"out": y}


def test_equal_names_do_not_merge_inputs_or_params():
    a = gc.input("x", (3,))
    b = gc.input("x", (3,))
    assert a.node is not b.node
    assert (a + 1.0).node is not (b + 1.0).node
    p = gc.param("W", value=np.zeros(3))
    q = gc.param("W", value=np.zeros(3))
    assert p.node is not q.node
    p.value = np.ones(3)
    assert q.value.sum() == 0  # separate state


def test_constants_equal_by_value_intern_to_one_node():
    a = gc.constant(np.arange(6.0).reshape(2, 3))
    b = gc.constant(np.arange(6.0).reshape(2, 3))
    assert a.node is b.node
    assert (
        gc.constant(np.array([1.0, 2.0], np.float32)).node
        is not gc.constant(np.array([1.0, 2.0], np.float64)).node
    )  # the dtype is part of the value
    assert gc.constant(np.zeros((2, 3))).node is not gc.constant(np.zeros((3, 2))).node
    assert gc.constant(0.0).node is not gc.constant(-0.0).node
    assert gc.constant(float("nan")).node is gc.constant(float("nan")).node
    x = gc.input("x", (3,))
    assert (x * 2.5).node is (x * 2.5).node  # scalar operands become one constant


def test_constant_values_are_read_only():
    c = gc.constant(np.arange(3.0))
    with pytest.raises(ValueError):
        c.value[0] = 5.0
    source = np.arange(3.0)
    d = gc.constant(source)
    source[0] = 99.0  # the node took a copy
    assert d.value[0] == 0.0


def test_attrs_are_compared_with_their_types():
    # True == 1 == 1.0 and 0.0 == -0.0 in python, but they are different attributes
    made = [Node.make("probe", (), {"k": v}, (), "float32") for v in (True, 1, 1.0, 0.0, -0.0)]
    assert len({id(n) for n in made}) == 5
    nan1 = Node.make("probe", (), {"k": float("nan")}, (), "float32")
    nan2 = Node.make("probe", (), {"k": float("nan")}, (), "float32")
    assert nan1 is nan2
    assert Attrs({"a": [1, 2], "b": np.array([1.0])}) == Attrs({"b": np.array([1.0]), "a": (1, 2)})
    assert isinstance(Attrs({"b": np.array([1.0])})["b"], ConstValue)
    with pytest.raises(TypeError, match="hashable"):
        Attrs({"a": {"nested": "dict"}})


def test_node_make_checks_inputs():
    with pytest.raises(TypeError, match="inputs must be Nodes"):
        Node.make("probe", (np.zeros(3),), {}, (3,), "float32")


def test_dead_nodes_leave_the_intern_table():
    node = Node.make("probe", (), {"tag": "short-lived"}, (), "float32")
    ref = weakref.ref(node)
    del node
    pygc.collect()
    assert ref() is None


def test_interning_is_thread_safe():
    x = gc.input("x", (5,))
    results = []

    def build():
        for k in range(200):
            results.append((k, gc.tanh(x * float(k) + 1.0).node))

    threads = [threading.Thread(target=build) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    by_k: dict = {}
    for k, node in results:
        assert by_k.setdefault(k, node) is node


def test_toposort_puts_inputs_first_and_visits_shared_nodes_once(model):
    x, W, b = model
    h = x @ W + b
    y = h * h + h
    order = toposort([y.node])
    position = {n: i for i, n in enumerate(order)}
    assert len(order) == len(set(order))
    for node in order:
        for i in node.inputs:
            assert position[i] < position[node]
    assert order[-1] is y.node


def test_toposort_handles_deep_chains_without_recursion():
    x = gc.input("x", (2,))
    y = x
    for _ in range(3000):
        y = y + 1.0
    assert len(toposort([y.node])) == 3000 + 2  # x, the constant 1.0, the adds


def test_format_graph_lists_every_op(model):
    x, W, b = model
    text = format_graph([(x @ W + b).node])
    assert "matmul(%0, %1) : (N, 3) float32" in text
    assert "param b() : (3,) float32" in text
    assert text.splitlines()[-1] == "return %4"
    assert "Node matmul (N, 3) float32" in repr((x @ W).node)


def test_as_dtype():
    assert as_dtype(np.float32) == "float32"
    assert as_dtype("int64") == "int64"
    assert as_dtype(np.dtype(bool)) == "bool"
    with pytest.raises(TypeError, match="unsupported dtype float16"):
        as_dtype("float16")
    with pytest.raises(TypeError, match="unknown dtype"):
        as_dtype("floaty")


def test_constants_are_stored_in_native_byte_order():
    swapped = ConstValue(np.array([1.0, 2.0], ">f8"))
    assert swapped == ConstValue(np.array([1.0, 2.0]))
    assert swapped.array.dtype.isnative
