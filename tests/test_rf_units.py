"""A receptive field is in pixels only along image axes: samples along a raw 1-D signal,
positions along another 1-D axis (feature frames). Decided from the input's shape and type.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_analyze.render import json as json_render
from model_analyze.render import text as text_render
from model_analyze.runner import AnalyzeOptions, analyze


def _conv1d(path: str, channels: int, rank: int = 3) -> None:
    """x → Conv(k3, s1) → Conv(k3, s2) → Conv(k5, s1) → GlobalAveragePool → y, over the last axis.

    ``rank`` 2 feeds a ``[1, 64]`` waveform through an Unsqueeze to ``[1, 1, 64]`` first."""
    f = TensorProto.FLOAT
    inits, nodes = [], []
    src = "x"
    if rank == 2:
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "ax"))
        nodes.append(helper.make_node("Unsqueeze", ["x", "ax"], ["x3"], name="unsq"))
        src = "x3"
    c_in = channels
    for i, (k, s) in enumerate(((3, 1), (3, 2), (5, 1))):
        inits.append(numpy_helper.from_array(np.zeros((4, c_in, k), np.float32), f"w{i}"))
        nodes.append(helper.make_node("Conv", [src, f"w{i}"], [f"c{i}"], name=f"conv{i}", kernel_shape=[k],
                                      strides=[s]))
        src, c_in = f"c{i}", 4
    nodes.append(helper.make_node("GlobalAveragePool", [src], ["y"], name="gap"))
    shape = [1, channels, 64] if rank == 3 else [1, 64]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", f, shape)],
                              [helper.make_tensor_value_info("y", f, [1, 4, 1])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


# Hand derivation (Distill's recurrence, no padding): RF 1 → 1 + 2·1 = 3 (stride 1) →
# 3 + 2·1 = 5 (stride 2) → 5 + 4·2 = 13 (stride 2). The field of the final map is 13
# positions along the 64-long axis, whatever the axis is.
@pytest.mark.parametrize(("channels", "rank", "unit", "one"), [
    (1, 3, "samples", "sample"),      # [1, 1, 64]: one channel, a raw signal (audio)
    (1, 2, "samples", "sample"),      # [1, 64]: a waveform, unsqueezed to one channel by the graph
    (8, 3, "positions", "position"),  # [1, 8, 64]: 8 features per step (mel frames, sensors)
])
def test_1d_field_is_not_in_pixels(tmp_path, channels, rank, unit, one):
    path = tmp_path / "conv1d.onnx"
    _conv1d(str(path), channels, rank)
    report = analyze(str(path), AnalyzeOptions())
    rf = report.headline("receptive_field")
    assert rf is not None and rf.value == 13 and rf.unit == unit
    s = report.section("receptive-field")
    assert s.metric("rf.stride").value == 2 and s.metric("rf.stride").unit == unit
    text = text_render.render(report)
    assert f"RF 13 {unit} (stride 2 along L, inside the 64-{one} input)" in text
    assert " px" not in text
    data = json.loads(json_render.render(report))
    sec = next(x for x in data["sections"] if x["analyzer"] == "receptive-field")
    assert sec["data"]["axes"]["L"]["unit"] == unit


def test_image_axes_stay_in_pixels(tmp_path):
    """The same stack as a 2-D conv over [1, 1, 64, 64]: H and W are image axes, px."""
    f = TensorProto.FLOAT
    w = numpy_helper.from_array(np.zeros((4, 1, 3, 3), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3]),
                               helper.make_node("GlobalAveragePool", ["c"], ["y"], name="gap")], "g",
                              [helper.make_tensor_value_info("x", f, [1, 1, 64, 64])],
                              [helper.make_tensor_value_info("y", f, [1, 4, 1, 1])], [w])
    path = tmp_path / "conv2d.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    rf = analyze(str(path), AnalyzeOptions()).headline("receptive_field")
    assert rf is not None and rf.value == 3 and rf.unit == "px"
