"""Symbolic shape propagation."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

import builders
from conftest import shared_model
from model_analyze import dims as D
from model_analyze.graph import ModelGraph
from model_analyze.loader import load_model
from model_analyze.ops.core import default_registry
from model_analyze.runner import AnalyzeOptions, prepare
from model_analyze.shapes import infer_shapes


def test_conv_output_is_a_formula_in_symbolic_size():
    b = builders.GraphBuilder()
    x = b.input("img", TensorProto.FLOAT, [1, 3, "H", "W"])
    y = builders.conv(b, x, 3, 8, 3, stride=2, pad=1, name="c")
    b.op("MaxPool", [y], name="p", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    b.output("p")
    ctx = prepare(b.model())
    h = ctx.shapes.shape("c")[2]
    assert D.free_symbols(h) == {"H"}
    # PyTorch's formula floor((H + 2p - k)/s) + 1 at H=224: floor(223/2)+1 = 112; at H=7: 4.
    assert D.subs(h, {"H": 224}) == 112 and D.subs(h, {"H": 7}) == 4
    # ResNet stem: 224 → conv s2 → 112 → maxpool 3/2/1 → 56.
    assert D.subs(ctx.shapes.shape("p")[2], {"H": 224}) == 56


def test_reshape_minus_one_and_concat_stay_symbolic():
    b = builders.GraphBuilder()
    x = b.input("x", TensorProto.FLOAT, [1, "seq", 64])
    y = b.input("y", TensorProto.FLOAT, [1, 1, 64])
    r = b.op("Reshape", [x, b.const([1, -1, 4, 16], dtype="int64")], name="r")
    c = b.op("Concat", [x, y], name="cat", axis=1)
    b.output(r)
    b.output(c)
    ctx = prepare(b.model())
    seq = D.symbol("seq")
    assert ctx.shapes.shape("r") == (1, seq, 4, 16)
    assert ctx.shapes.shape("cat") == (1, seq + 1, 64)


@pytest.mark.parametrize("name", ["tiny-llama.onnx", "tiny-mistral-swa.onnx", "tiny-bert.onnx",
                                  "mistral-7b.onnx"])
def test_exporter_shapes_reproduced_without_value_info(name):
    """Strip the exporter's value_info and infer every shape ourselves: the
    exporter's own annotations are the oracle."""
    path = shared_model(name)
    loaded = load_model(path)
    declared = ModelGraph(loaded.proto.graph).declared
    proto = onnx.ModelProto()
    proto.CopyFrom(loaded.proto)
    del proto.graph.value_info[:]
    g = ModelGraph(proto.graph)
    table = infer_shapes(g, default_registry(), loaded.opsets)
    checked = 0
    for node in g.walk():
        for out in node.outputs:
            want, got = declared.get(out), table.type(out)
            if want is None or want.shape is None:
                continue
            assert got is not None and got.shape is not None, out
            assert len(got.shape) == len(want.shape), out
            for a, b in zip(got.shape, want.shape, strict=True):
                if b is None:
                    continue
                # BERT's position ids are sliced from a 512-long buffer: we infer
                # Min(512, seq) where the exporter assumed seq <= 512.
                assert D.equal(a, b) or (D.free_symbols(a) and D.subs(a, {"seq": 100}) == D.subs(b, {"seq": 100})), \
                    (out, got.shape, want.shape)
            checked += 1
    assert checked > 90


def test_unnamed_dims_get_names_and_input_shape_fixes_them(cli_run, save_model):
    """PaddleOCR-style input [p2o.DynamicDimension.0, 3, ?, p2o.DynamicDimension.1]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["p2o.DynamicDimension.0", 3, None,
                                                              "p2o.DynamicDimension.1"])
    x.type.tensor_type.shape.dim[2].dim_param = "?"
    w = onnx.numpy_helper.from_array(builders.np.ones((4, 3, 3, 3), "float32"), "w")
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2])
    path = save_model(helper.make_model(helper.make_graph([node], "g", [x], [y], [w])))
    ctx = prepare(str(path))
    assert ctx.dims.free == ["p2o.DynamicDimension.0", "x_d2", "p2o.DynamicDimension.1"]
    ctx = prepare(str(path), AnalyzeOptions(input_shapes={"x": [1, 3, 48, 320]}))
    assert ctx.shapes.shape("y") == (1, 4, 23, 159)  # floor((48-3)/2)+1, floor((320-3)/2)+1
    assert ctx.dims.free == []
    r = cli_run(path, "--input-shape", "x=1,3,48,320", "--format", "json")
    assert '"x": [\n        1,\n        3,\n        48,\n        320' in r.stdout


def test_dim_params_are_never_evaluated():
    evil = "__import__('os').system('touch /tmp/pwned')"
    d = D.parse_dim_param(evil)
    assert D.free_symbols(d) == {evil}
    assert D.parse_dim_param("seq + 1") == D.symbol("seq") + 1
    assert D.parse_dim_param("2*s0") == 2 * D.symbol("s0")


def test_bindings_defaults_and_seq_len():
    from conftest import SAMPLES

    ctx = prepare(str(SAMPLES / "tiny_transformer.onnx"), AnalyzeOptions(seq_len=512))
    assert ctx.dims.bound == {"seq": 512} and ctx.dims.free == []
    assert ctx.evaluate(ctx.shapes.shape("logits")[1]) == 512
    ctx = prepare(str(SAMPLES / "convnet.onnx"))
    assert ctx.dims.defaults == {"batch": 1}


@pytest.mark.parametrize("policy, want", [("not_larger", (1, 1, 5, 7)), ("not_smaller", (1, 1, 15, 20)),
                                          ("stretch", (1, 1, 5, 20))])
def test_resize_keep_aspect_ratio_policy(policy, want):
    # ONNX spec: scale = min/max(sizes[i] / in[d]) = min/max(5/9, 20/12); out = round_int(scale · in):
    # not_larger: 5/9 -> (5, round(6.67) = 7); not_smaller: 5/3 -> (15, 20). onnxruntime agrees.
    import numpy as np

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 9, 12])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    sizes = onnx.numpy_helper.from_array(np.array([5, 20], np.int64), "sizes")
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], axes=[2, 3], keep_aspect_ratio_policy=policy)
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], [sizes]),
                              opset_imports=[helper.make_opsetid("", 19)])
    assert prepare(model).shapes.shape("y") == want
