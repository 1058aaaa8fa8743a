"""A Scan whose body mixes dtypes files each MatMul's work under its own dtype, × the steps.

The serving bound divides each dtype's 2·MACs by that dtype's peak (fp16 runs at twice the
fp32/TF32 rate on an A100). A body with an fp32 and an fp16 MatMul used to fall back to the
Scan's output dtype for all of it — fp32 — which files half the work at the wrong peak.
"""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_analyze.render import json as json_render
from model_analyze.runner import AnalyzeOptions, analyze

F, H = TensorProto.FLOAT, TensorProto.FLOAT16


def scan_model(steps: int = 3) -> onnx.ModelProto:
    """xs float[steps, 2, 8] scanned on axis 0; body: a = x_t·W (fp32 MatMul [2,8]·[8,8]),
    b = float(half(x_t)·Wh) (fp16 MatMul [2,8]·[8,8]), y_t = a + b; ys float[steps, 2, 8]."""
    body = helper.make_graph([
        helper.make_node("MatMul", ["x_t", "W"], ["a"], name="mm32"),
        helper.make_node("Cast", ["x_t"], ["xh"], to=H, name="to_half"),
        helper.make_node("MatMul", ["xh", "Wh"], ["bh"], name="mm16"),
        helper.make_node("Cast", ["bh"], ["b"], to=F, name="to_float"),
        helper.make_node("Add", ["a", "b"], ["y_t"], name="add")], "body",
        [helper.make_tensor_value_info("x_t", F, [2, 8])], [helper.make_tensor_value_info("y_t", F, [2, 8])])
    g = helper.make_graph(
        [helper.make_node("Scan", ["xs"], ["ys"], name="scan", body=body, num_scan_inputs=1)], "g",
        [helper.make_tensor_value_info("xs", F, [steps, 2, 8])],
        [helper.make_tensor_value_info("ys", F, [steps, 2, 8])],
        [numpy_helper.from_array(np.ones((8, 8), np.float32), "W"),
         numpy_helper.from_array(np.ones((8, 8), np.float16), "Wh")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


# By hand: each MatMul [2,8]·[8,8] is 2·8·8 = 128 MACs per step; 3 steps: 384 MACs each,
# 2·384 = 768 FLOP of fp32 work and 768 of fp16 work (1,536 in all, 768 MACs).
SPLIT = {"fp32": 768, "fp16": 768}


def _serving(path: str, device: str | None = None) -> dict:
    params = {"device": device} if device else {}
    data = json.loads(json_render.render(analyze(path, AnalyzeOptions(select=["serving"], params=params))))
    return next(s for s in data["sections"] if s["analyzer"] == "serving")


def test_scan_body_work_split_per_dtype_times_the_steps(tmp_path):
    path = str(tmp_path / "scan.onnx")
    onnx.save(scan_model(), path)
    s = _serving(path)
    assert s["data"]["phases"]["forward"]["mma_flops"] == SPLIT


def test_scan_split_reaches_the_bound_at_each_dtypes_peak(tmp_path):
    """Inline device: fp32 peak 1 GFLOP/s, fp16 2 GFLOP/s, a cache that holds it all (compute
    alone): 768 / 1e9 + 768 / 2e9 = 768 + 384 = 1,152 ns. Filed all under fp32 it read
    1,536 / 1e9 = 1,536 ns."""
    path = str(tmp_path / "scan.onnx")
    onnx.save(scan_model(), path)
    s = _serving(path, "fp32=1G,fp16=2G,bandwidth=1G,cache=1M")
    b1 = next(x for x in s["data"]["bounds"]["forward"] if x["batch"] == 1)
    assert b1["time_s"] == pytest.approx(1152e-9) and b1["time_bound"] == "lower"


def test_scan_macs_per_matmul_equal_onnxruntime_execution():
    """onnxruntime runs the body once per step: the MACs of every MatMul execution (output
    elements × the contracted length, from the shapes it ran) summed per node equal our split
    (halved: MACs, not 2·MACs); the fp16/fp32 attribution is the model's (mm16 reads
    float16 inputs)."""
    pytest.importorskip("onnxruntime")
    import ort_oracle as O

    model = O.named(scan_model())
    (events,) = O.Session(model).run([{"xs": np.ones((3, 2, 8), np.float32)}])
    ran = {"mm32": 0, "mm16": 0}
    for e in events:
        if e.node in ran:
            ran[e.node] += math.prod(e.outputs[0]) * e.inputs[0][-1]
    assert ran == {"mm32": SPLIT["fp32"] // 2, "mm16": SPLIT["fp16"] // 2}
    check = O.compare(model, events, O.ours(model, {}))
    assert check.problems() == [] and check.ours_total == check.executed_total == 768
