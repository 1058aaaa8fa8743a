"""The typed graph over networkx: nodes, tensor edges, subgraphs, functions."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import builders
from conftest import SAMPLES
from model_analyze.errors import ModelError
from model_analyze.graph import build_graph
from model_analyze.loader import load_model


def _graph(model):
    return build_graph(load_model(model))


def test_nodes_edges_and_endpoints():
    g = _graph(builders.tiny_convnet())
    assert len(g.nodes) == 11
    # One edge per tensor use, keyed by tensor name.
    assert g.nx.has_edge("conv1", g.producer("conv1").id) is False
    relu = g.consumers("conv1")[0]
    assert relu.op_type == "Relu"
    assert ("conv1", relu.id, "conv1") in g.nx.edges(keys=True)
    assert g.nx.nodes["input:image"]["kind"] == "input"
    assert any(k == "image" for _, _, k in g.nx.out_edges("input:image", keys=True))
    assert g.nx.has_node("output:logits")
    assert {n for n in g.nx.predecessors("conv1") if n.startswith("init:")}
    order = [n.name for n in g.topo_order()]
    assert order.index("conv1") < order.index("pool1") < order.index("logits")


def test_unsorted_file_is_sorted_topologically():
    model = builders.tiny_convnet()
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    order = [n.name for n in _graph(model).topo_order()]
    assert order.index("conv1") < order.index("gap") < order.index("logits")


def test_duplicate_producer_is_refused():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="a"), helper.make_node("Neg", ["x"], ["y"], name="b")]
    with pytest.raises(ModelError, match="produced twice"):
        _graph(helper.make_model(helper.make_graph(nodes, "g", [x], [y])))


def _if_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    c = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    outer = helper.make_node("Relu", ["x"], ["rx"], name="outer_relu")
    then_out = helper.make_tensor_value_info("t", TensorProto.FLOAT, None)
    else_out = helper.make_tensor_value_info("e", TensorProto.FLOAT, None)
    then_g = helper.make_graph([helper.make_node("Neg", ["rx"], ["t"], name="neg")], "then", [], [then_out])
    else_g = helper.make_graph([helper.make_node("Abs", ["x"], ["e"], name="abs")], "else", [], [else_out])
    if_node = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_g, else_branch=else_g)
    return helper.make_model(helper.make_graph([if_node, outer], "g", [x, c], [y]))


def test_subgraphs_resolve_outer_scope():
    g = _graph(_if_model())
    node = g.node_by_id["branch"]
    then_g = node.subgraphs["then_branch"][0]
    assert then_g.outer_refs == {"rx"}
    assert then_g.path == "branch/then_branch"
    # The outer-scope read is an implicit edge, so Relu is ordered before If
    # although the file lists it after.
    assert g.nx.has_edge("outer_relu", "branch")
    assert [n.name for n in g.topo_order()] == ["outer_relu", "branch"]
    walked = [n.name for n in g.walk()]
    assert walked[:2] == ["outer_relu", "branch"] and sorted(walked[2:]) == ["abs", "neg"]


def test_subgraph_dangling_reference_is_refused():
    model = _if_model()
    model.graph.node[0].attribute[0].g.node[0].input[0] = "nowhere"
    with pytest.raises(ModelError, match="'nowhere' that nothing produces"):
        _graph(model)


def test_model_local_functions_are_inlined():
    fn = helper.make_function("custom", "Swishy", ["a"], ["b"], [
        helper.make_node("Sigmoid", ["a"], ["s"]), helper.make_node("Mul", ["a", "s"], ["b"])],
        opset_imports=[helper.make_opsetid("", 17)])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    node = helper.make_node("Swishy", ["x"], ["y"], domain="custom")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), functions=[fn],
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)])
    loaded = load_model(model)
    assert loaded.inlined_functions == 1
    assert sorted(n.op_type for n in build_graph(loaded).nodes) == ["Mul", "Sigmoid"]


def test_recursive_function_is_refused():
    fn = helper.make_function("custom", "Loopy", ["a"], ["b"], [helper.make_node("Loopy", ["a"], ["b"],
                                                                                 domain="custom")],
                              opset_imports=[helper.make_opsetid("custom", 1)])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    node = helper.make_node("Loopy", ["x"], ["y"], domain="custom")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), functions=[fn],
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)])
    with pytest.raises(ModelError, match="recursive"):
        load_model(model)


def test_constant_node_values_and_initializer_metadata():
    b = builders.GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, [2, 6])
    shape = b.op("Constant", [], name="shape", value=onnx.numpy_helper.from_array(np.array([3, 4], np.int64)))
    b.op("Reshape", [x, shape], name="y")
    b.output("y")
    g = _graph(b.model())
    assert g.constant_value("shape").tolist() == [3, 4]
    assert g.constant_value("x") is None


def test_adjacency_without_networkx_matches_its_view():
    """The plain adjacency (topological order, predecessors, weak components) agrees
    with networkx on every sample and zoo model (networkx is the oracle)."""
    import glob

    import networkx as nx

    from model_analyze.plugins.structure_analysis import longest_path, weak_components
    from model_analyze.runner import prepare

    for path in sorted(glob.glob(str(SAMPLES / "*.onnx")) + glob.glob(str(SAMPLES / "zoo" / "*.onnx"))):
        ctx = prepare(path)
        g = ctx.graph
        assert weak_components(ctx) == nx.number_weakly_connected_components(g.nx), path
        node_dag = nx.DiGraph(g.nx.subgraph(n.id for n in g.nodes))
        assert longest_path(ctx) == (nx.dag_longest_path_length(node_dag) + 1 if g.nodes else 0), path
        position = {n.id: i for i, n in enumerate(g.topo_order())}
        for node in g.nodes:
            preds = {u for u, _ in g.nx.in_edges(node.id) if g.nx.nodes[u]["kind"] == "node"}
            assert {p.id for p in g.predecessors(node)} == preds
            assert all(position[p] < position[node.id] for p in preds)


def test_consumers_one_or_many_and_order_out_of_file_order():
    """A tensor read once keeps its reader without a list; read twice (here by the same
    node, as ``Mul(x, x)``) both uses are listed; a file whose nodes come before their
    inputs' producers is still sorted (the file-order shortcut is not taken)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    nodes = [helper.make_node("Mul", ["a", "a"], ["b"], name="sq"),
             helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("Neg", ["b"], ["y"], name="neg")]
    g = _graph(helper.make_model(helper.make_graph(nodes, "g", [x], [y])))
    assert [n.name for n in g.consumers("a")] == ["sq", "sq"]
    assert [n.name for n in g.consumers("x")] == ["relu"]
    assert g.consumers("y") == []
    g.consumers("x").append(g.nodes[0])  # a copy: the graph's map is not changed by a caller
    assert [n.name for n in g.consumers("x")] == ["relu"]
    assert [n.name for n in g.topo_order()] == ["relu", "sq", "neg"]
    assert g.nodes[1].proto.name == "relu"  # the message is fetched by index
