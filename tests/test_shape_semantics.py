"""Shapes that follow the runtime: control flow that keeps shapes, broadcasts that never
hide a contradiction, ONNX's integer semantics. Every expected value is onnxruntime's."""

from __future__ import annotations

import numpy as np
import onnx
import ort_oracle as O
import pytest
from onnx import TensorProto as T
from onnx import helper as h

from conftest import SAMPLES
from model_analyze.cost.engine import cost_model
from model_analyze.runner import AnalyzeOptions, analyze, prepare

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("first_rate", [True, False])
def test_if_branches_get_outer_shapes_and_the_count_bounds_the_branch_that_runs(first_rate):
    # silero-vad's decoder in miniature (samples/builders.py vad_like): before, the LSTMs in the
    # branches counted zero (a shape inside the branch unknown) and the "max of the branches"
    # was below the branch that runs.
    model = O.named(onnx.load(str(SAMPLES / "vad_like.onnx")))
    feeds = {"x": np.ones((2, 8, 1), np.float32), "h0": np.zeros((1, 2, 16), np.float32),
             "first_rate": np.array(first_rate)}
    (events,) = O.Session(model).run([feeds])
    mine = O.ours(model, {"batch": 2})
    chk = O.compare(model, events, mine)
    assert chk.problems() == [] and chk.shape_unknown == []
    assert any(e.op == "LSTM" for e in events) and chk.macs_checked >= 1
    # the data-dependent If counts its costlier branch (b: MatMul + LSTM): ≥ what runs, = when b runs
    assert mine.bound == "upper" and mine.total >= chk.executed_total
    assert (mine.total == chk.executed_total) == (not first_rate)
    # the shape-decided If took its branch without running the model
    assert len(mine.ctx.shapes.branch_taken) == 1


def _add_model(a: list, b: list) -> onnx.ModelProto:
    g = h.make_graph([h.make_node("Add", ["x", "y"], ["z"], name="add")], "g",
                     [h.make_tensor_value_info("x", T.FLOAT, a), h.make_tensor_value_info("y", T.FLOAT, b)],
                     [h.make_tensor_value_info("z", T.FLOAT, None)])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])


def test_broadcast_of_unequal_dims_is_a_contradiction_not_a_max():
    # x [1, H] + y [1, W]: the model runs only where H = W. At H = W = 5 nothing to say; at
    # H = 5, W = 7 onnxruntime refuses — the report says so (R005) instead of printing max(H, W).
    model = _add_model([1, "H"], [1, "W"])
    ok = analyze(model, AnalyzeOptions(dims={"H": 5, "W": 5}))
    assert ok.model.outputs[0].shape == ["1", "H"] and not [f for f in ok.findings if f.code == "R005"]
    bad = analyze(model, AnalyzeOptions(dims={"H": 5, "W": 7}))
    r005 = [f for f in bad.findings if f.code == "R005"]
    assert len(r005) == 1 and "H = 5" in r005[0].message and "W = 7" in r005[0].message
    import onnxruntime as ort

    with pytest.raises(Exception):  # noqa: B017 - onnxruntime's own refusal is the oracle
        ort.InferenceSession(model.SerializeToString()).run(
            None, {"x": np.zeros((1, 5), np.float32), "y": np.zeros((1, 7), np.float32)})


def test_broadcast_prefers_the_concrete_dim():
    # anchors baked for one size (2100) + predictions 21·H·W: the concrete dim is what runs
    model = _add_model([1, 2, "A"], [1, 2, 2100])
    ctx = prepare(model, AnalyzeOptions(dims={"A": 2100}))
    assert ctx.shapes.shape("z") == (1, 2, 2100)


def test_integer_div_truncates_toward_zero_like_onnx():
    # (len(x) − 9) / 2 with len(x) = 4: ONNX Div on int64 gives trunc(−5/2) = −2 (floor: −3)
    nodes = [h.make_node("Shape", ["x"], ["s"]), h.make_node("Sub", ["s", "nine"], ["d"]),
             h.make_node("Div", ["d", "two"], ["q"])]
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, [4])],
                     [h.make_tensor_value_info("q", T.INT64, None)],
                     [h.make_tensor("nine", T.INT64, [1], [9]), h.make_tensor("two", T.INT64, [1], [2])])
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    import onnxruntime as ort

    (want,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": np.zeros(4, np.float32)})
    assert prepare(model).shapes.values["q"] == tuple(int(v) for v in want) == (-2,)


def test_vad_like_every_node_costed():
    ctx = prepare(str(SAMPLES / "vad_like.onnx"), AnalyzeOptions(dims={"batch": 1}))
    m = cost_model(ctx)
    assert not m.graph.partial and not m.graph.unknown_ops


def _yolo_anchor_model() -> onnx.ModelProto:
    """YOLOv8's anchors in miniature, as torch's TorchScript exporter writes them (nudenet's
    320n.onnx, a YOLOv8n from PyPI): a stride-2 conv's map, ``Range(0.0, float(w), 1.0)``
    over its width, and the exporter's value_info for the range in sympy's printing,
    ``floor(width/2 - 1/2) + 1`` (true division) — added back to the map's row."""
    w = h.make_tensor("w", T.FLOAT, [1, 1, 3], np.ones(3, np.float32).tolist())
    nodes = [
        h.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3], strides=[2], pads=[1, 1], name="conv"),
        h.make_node("Shape", ["y"], ["s"]), h.make_node("Gather", ["s", "two"], ["n"], axis=0),
        h.make_node("Cast", ["n"], ["nf"], to=T.FLOAT),
        h.make_node("Range", ["zero", "nf", "one"], ["anchors"], name="range"),
        h.make_node("Add", ["y", "anchors"], ["out"], name="add"),
    ]
    g = h.make_graph(nodes, "anchors", [h.make_tensor_value_info("x", T.FLOAT, [1, 1, "width"])],
                     [h.make_tensor_value_info("out", T.FLOAT, None)],
                     [w, h.make_tensor("two", T.INT64, [], [2]), h.make_tensor("zero", T.FLOAT, [], [0.0]),
                      h.make_tensor("one", T.FLOAT, [], [1.0])],
                     value_info=[h.make_tensor_value_info("anchors", T.FLOAT, ["floor(width/2 - 1/2) + 1"])])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)])


@pytest.mark.parametrize("width", [320, 321])
def test_yolo_anchor_axis_equals_onnxruntime(width):
    # Before: the exporter's "/" was read as floor division (⌊W/2⌋ + 1: 161 at 320, where
    # onnxruntime has 160) and the anchors' Range had no value of its own, so the declared
    # wrong dim stood; YOLOv8n@320 printed max(2100, 2243) anchors.
    model = O.named(_yolo_anchor_model())
    (events,) = O.Session(model).run([{"x": np.zeros((1, 1, width), np.float32)}])
    mine = O.ours(model, {"width": width})
    chk = O.compare(model, events, mine)
    assert chk.problems() == [] and chk.shape_checked == len(events)
    assert not mine.ctx.shapes.conflicts  # the map and the anchors agree symbolically
    rep = analyze(model, AnalyzeOptions(dims={"width": width}))
    assert not [f for f in rep.findings if f.code == "R005"]


@pytest.mark.parametrize("seq", [5, 9])
def test_loop_body_times_the_trips_onnxruntime_runs(seq):
    # samples/loop_like.onnx: a Loop over Shape(x)[0] rows, body MatMul [8]×[8, 8] = 64 MACs
    model = O.named(onnx.load(str(SAMPLES / "loop_like.onnx")))
    (events,) = O.Session(model).run([{"x": np.ones((seq, 8), np.float32)}])
    runs = [e for e in events if e.node == "body_matmul"]
    assert len(runs) == seq  # the trip count actually run
    mine = O.ours(model, {"seq": seq})
    chk = O.compare(model, events, mine)
    assert chk.problems() == [] and mine.bound == ""
    assert mine.total == chk.executed_total == 64 * seq
