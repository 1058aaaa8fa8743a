"""The serving bound files a control-flow node's work under the dtype of the work done.

An ``If``'s first input is its boolean condition; the matrix work it counts is its
branch's. The per-dtype split (``mma_flops``, the 2·MACs each device peak divides) must
show that work under the branch nodes' dtype, never under ``bool``.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model_analyze.render import json as json_render
from model_analyze.runner import AnalyzeOptions, analyze

F, H = TensorProto.FLOAT, TensorProto.FLOAT16


def _if_model(path: str, then_nodes: list[onnx.NodeProto], else_nodes: list[onnx.NodeProto],
              weights: list[onnx.TensorProto]) -> None:
    """x float[2,8], cond bool[] → If(cond) → y float[2,8]; each branch ends in ``t``/``e``."""
    then_g = helper.make_graph(then_nodes, "then", [], [helper.make_tensor_value_info("t", F, [2, 8])])
    else_g = helper.make_graph(else_nodes, "else", [], [helper.make_tensor_value_info("e", F, [2, 8])])
    g = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], name="gate", then_branch=then_g, else_branch=else_g)], "g",
        [helper.make_tensor_value_info("x", F, [2, 8]), helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", F, [2, 8])], weights)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def _mma(path: str) -> dict[str, float]:
    data = json.loads(json_render.render(analyze(path, AnalyzeOptions())))
    serving = next(s for s in data["sections"] if s["analyzer"] == "serving")
    return serving["data"]["phases"]["forward"]["mma_flops"]


def test_if_branch_matmuls_count_as_float_not_bool(tmp_path):
    """then: one MatMul x[2,8]·W[8,8] = 2·8·8 = 128 MACs; else: two of them, 256 MACs. The
    condition is an input (undecidable), so the costlier branch counts: 256 MACs, 2·MACs =
    512 FLOPs, all float32 work — fp32, nothing under bool."""
    w = numpy_helper.from_array(np.zeros((8, 8), np.float32), "W")
    path = str(tmp_path / "if_float.onnx")
    _if_model(path, [helper.make_node("MatMul", ["x", "W"], ["t"], name="then_mm")],
              [helper.make_node("MatMul", ["x", "W"], ["e1"], name="else_mm1"),
               helper.make_node("MatMul", ["e1", "W"], ["e"], name="else_mm2")], [w])
    assert _mma(path) == {"fp32": 512}


def test_if_branch_work_takes_the_branch_dtype_not_the_output_dtype(tmp_path):
    """then: Cast x to float16, MatMul with a float16 W[8,8] (2·8·8 = 128 MACs, fp16 work),
    Cast back to float; else: Identity (0 MACs). The costlier branch is then: 2·128 = 256
    FLOPs of fp16 work, although the If's output is float32."""
    wh = numpy_helper.from_array(np.zeros((8, 8), np.float16), "Wh")
    path = str(tmp_path / "if_half.onnx")
    _if_model(path, [helper.make_node("Cast", ["x"], ["xh"], to=H, name="to_half"),
                     helper.make_node("MatMul", ["xh", "Wh"], ["th"], name="then_mm"),
                     helper.make_node("Cast", ["th"], ["t"], to=F, name="to_float")],
              [helper.make_node("Identity", ["x"], ["e"], name="else_id")], [wh])
    assert _mma(path) == {"fp16": 256}
