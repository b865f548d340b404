"""gc.as_networkx: a MultiDiGraph of the nodes, in topological order, with multi-edges."""

import networkx as nx
import pytest

import graphc as gc


@pytest.fixture
def linear():
    N = gc.dim("N")
    x = gc.input("x", (N, 4))
    W = gc.param("W", (4, 3), seed=0)
    b = gc.param("b", (3,), init="zeros")
    return x, W, b


def test_node_count_and_attributes(linear):
    x, W, b = linear
    g = gc.as_networkx(x @ W + b)
    assert isinstance(g, nx.MultiDiGraph)
    assert g.number_of_nodes() == 5  # x, W, matmul, b, add
    assert g.number_of_edges() == 4
    ops = sorted(data["op"] for _, data in g.nodes(data=True))
    assert ops == ["add", "input", "matmul", "param", "param"]
    (out,) = [n for n, data in g.nodes(data=True) if data["output"]]
    assert g.nodes[out]["node"] is (x @ W + b).node
    assert g.nodes[out]["shape"] == ("N", "3")
    assert g.nodes[out]["dtype"] == "float32"
    assert g.nodes[out]["label"] == "add"


def test_topological_order_agrees_with_data_flow(linear):
    x, W, b = linear
    h = gc.relu(x @ W + b)
    loss = gc.mean(h * h) + gc.sum(b)
    g = gc.as_networkx([loss, h])
    assert nx.is_directed_acyclic_graph(g)
    order = list(nx.topological_sort(g))
    position = {n: k for k, n in enumerate(order)}
    for u, v, data in g.edges(data=True):
        assert position[u] < position[v]
        assert u < v  # ids are topological positions too
        consumer = g.nodes[v]["node"]
        assert consumer.inputs[data["index"]] is g.nodes[u]["node"]
    sink = [n for n in g if g.out_degree(n) == 0]
    assert [g.nodes[n]["node"] for n in sink] == [loss.node]
    assert nx.ancestors(g, sink[0]) == set(g) - {sink[0]}
    assert sum(1 for _, d in g.nodes(data=True) if d["output"]) == 2


def test_x_times_x_has_two_edges(linear):
    x, _, _ = linear
    g = gc.as_networkx(x * x)
    assert g.number_of_nodes() == 2
    (src,) = [n for n, d in g.nodes(data=True) if d["op"] == "input"]
    (dst,) = [n for n, d in g.nodes(data=True) if d["op"] == "mul"]
    assert g.number_of_edges(src, dst) == 2
    assert sorted(d["index"] for _, _, d in g.edges(data=True)) == [0, 1]


def test_shared_subexpressions_appear_once(linear):
    x, W, b = linear
    g = gc.as_networkx([x @ W + b, gc.tanh(x @ W + b)])
    assert sum(1 for _, d in g.nodes(data=True) if d["op"] == "matmul") == 1


def test_rejects_non_tensors():
    with pytest.raises(TypeError, match="must be Tensors"):
        gc.as_networkx([1.0])
