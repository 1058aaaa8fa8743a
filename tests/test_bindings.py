"""Default bindings a user can trust: batch-like axes at 1, image sizes from the model when
it says them, and every material default a warning that names the binding to type."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from model_analyze.render import text as text_render
from model_analyze.report import Severity
from model_analyze.runner import AnalyzeOptions, analyze, prepare


def conv_model(dims: list, *, meta: dict[str, str] | None = None, doc: str = "", name: str = "images",
               sibling: list | None = None) -> onnx.ModelProto:
    """Conv 3→8, 3×3, stride 2, pad 1 over ``name`` (NCHW with the given dims)."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 3, 3, 3], [0.0] * 216)
    nodes = [helper.make_node("Conv", [name, "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])]
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if sibling is not None:
        inputs.append(helper.make_tensor_value_info("ref", TensorProto.FLOAT, sibling))
        nodes.append(helper.make_node("Identity", ["ref"], ["ref_out"]))
        outputs.append(helper.make_tensor_value_info("ref_out", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "g", inputs, outputs, [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], doc_string=doc)
    for k, v in (meta or {}).items():
        model.metadata_props.add(key=k, value=v)
    return model


def macs_at(h: int, w: int, n: int = 1) -> int:
    # output (ceil(h/2), ceil(w/2)) × 8 channels × 27 MACs each (3 in-channels × 3 × 3)
    return n * ((h + 1) // 2) * ((w + 1) // 2) * 8 * 27


def test_unnamed_batch_axis_defaults_to_one():
    # Paddle2ONNX names every dynamic axis p2o.DynamicDimension.k: axis 0 is the batch.
    model = conv_model(["p2o.DynamicDimension.0", 3, "p2o.DynamicDimension.1", "p2o.DynamicDimension.2"])
    report = analyze(model)
    assert report.dims.defaults == {"p2o.DynamicDimension.0": 1, "p2o.DynamicDimension.1": 224,
                                    "p2o.DynamicDimension.2": 224}
    assert report.headline("macs").value == macs_at(224, 224)
    d001 = [f for f in report.findings if f.code == "D001"]
    assert len(d001) == 1 and d001[0].severity is Severity.WARNING
    # the suggestion uses the model's real input name and rank
    # (H and W are placeholders: repeating our 224 guess would only silence the warning)
    assert "--input-shape images=1,3,H,W" in d001[0].message
    assert report.dims.suggestion == "--input-shape images=1,3,H,W"


def test_token_input_axis0_is_batch_and_seq_is_not():
    # magika-like: int32 [unk__214, 2048]; silero-like [sequence_length, 576] keeps its name's role
    ids = helper.make_tensor_value_info("bytes", TensorProto.INT32, ["unk__214", 2048])
    out = helper.make_tensor_value_info("o", TensorProto.INT32, None)
    g = helper.make_graph([helper.make_node("Identity", ["bytes"], ["o"])], "g", [ids], [out])
    ctx = prepare(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert ctx.dims.defaults == {"unk__214": 1} and ctx.dims.roles == {"unk__214": "batch"}
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["sequence_length", 576])
    g = helper.make_graph([helper.make_node("Identity", ["input"], ["o"])], "g", [x], [out])
    ctx = prepare(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert ctx.dims.roles == {"sequence_length": "seq"} and ctx.dims.defaults == {"sequence_length": 128}


def test_spatial_defaults_come_from_the_model():
    dims = ["batch", 3, "height", "width"]
    # Ultralytics stores the export size as metadata_props imgsz
    report = analyze(conv_model(dims, meta={"imgsz": "[320, 320]"}))
    assert report.dims.defaults == {"batch": 1, "height": 320, "width": 320}
    assert report.dims.default_from["height"] == "metadata_props['imgsz']"
    assert report.headline("macs").value == macs_at(320, 320)
    assert report.dims.suggestion == "--input-shape images=1,3,320,320"  # what the model said
    # an example shape in the doc_string
    report = analyze(conv_model(dims, doc="exported with example input 1x3x480x640"))
    assert (report.dims.defaults["height"], report.dims.defaults["width"]) == (480, 640)
    # a sibling image input of fixed size
    report = analyze(conv_model(dims, sibling=[1, 3, 256, 192]))
    assert (report.dims.defaults["height"], report.dims.defaults["width"]) == (256, 192)
    assert report.dims.default_from["height"] == "sibling input 'ref'"


def test_defaults_are_named_in_the_verdict_headline():
    report = analyze(conv_model(["N", 3, "H_in", "W_in"]))
    text = text_render.render(report)
    head = " ".join(text.splitlines()[1:4])
    assert "Verdict at defaults H=W=224" in head
    assert "bind with `--input-shape images=1,3,H,W`" in head
    # bound by the user: no warning, no formula noise
    report = analyze(conv_model(["N", 3, "H_in", "W_in"]), AnalyzeOptions(input_shapes={"images": [1, 3, 640, 640]}))
    assert report.headline("macs").value == macs_at(640, 640)
    assert not [f for f in report.findings if f.code == "D001"]
    assert text_render.render(report).splitlines()[1].startswith("== Verdict at images=1×3×640×640")


def test_batch_of_one_alone_is_info():
    report = analyze(conv_model(["batch", 3, 64, 64]))
    (d001,) = [f for f in report.findings if f.code == "D001"]
    assert d001.severity is Severity.INFO and "per-sample" in d001.message


def test_recurrent_state_axis1_is_batch():
    # silero-vad (spox export): input [d0, d1], state [2, d1', 128]: the state's axis 1 is
    # the batch of an LSTM state [layers·directions, batch, hidden]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["input_d0", "input_d1"])
    st = helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, "state_d1", 128])
    out = helper.make_tensor_value_info("o", TensorProto.FLOAT, None)
    out2 = helper.make_tensor_value_info("o2", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Identity", ["input"], ["o"]), helper.make_node("Identity", ["state"], ["o2"])]
    g = helper.make_graph(nodes, "g", [x, st], [out, out2])
    ctx = prepare(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert ctx.dims.roles == {"input_d0": "batch", "input_d1": "other", "state_d1": "batch"}
    assert ctx.dims.defaults == {"input_d0": 1, "input_d1": 128, "state_d1": 1}
    assert ctx.dims.suggestion == "--input-shape input=1,N"
