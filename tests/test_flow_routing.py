"""Flow rules for MoE routing ops, checked by execution where they can be.

OneHot encodes each token's experts: output position i reads index i only (it
used to be treated as mixing every position). Ops that move positions to where
their *values* say (NonZero, ScatterND, a Gather by computed indices) stay
conservative, but are recorded, so the reach can say it is an upper bound.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import SAMPLES
from model_analyze.runner import AnalyzeOptions, prepare
from model_analyze.tokenflow import flow


def test_one_hot_reads_its_own_position(tmp_path):
    pytest.importorskip("onnxruntime")
    from model_analyze.verify import verify_model

    depth = numpy_helper.from_array(np.array(100, np.int64), "depth")
    values = numpy_helper.from_array(np.array([0.0, 1.0], np.float32), "values")
    node = helper.make_node("OneHot", ["ids", "depth", "values"], ["y"], axis=-1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [depth, values])
    path = tmp_path / "onehot.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    result = verify_model(str(path), positions=12, seeds=2)
    pair = result.pair(("ids", 1), "y")
    assert result.sound
    for i in range(12):
        assert pair.observed_at(i) == [i] == pair.predicted_at(i)


def test_gather_by_computed_indices_is_recorded_for_the_token_source():
    # gpt-oss (2 experts): each expert gathers the rows of the tokens routed to
    # it (indices from NonZero) — the input_ids positions are moved by data.
    ctx = prepare(str(SAMPLES / "zoo" / "gpt-oss-eager-torchscript.onnx"), AnalyzeOptions(seq_len=24))
    mixed = flow(ctx).mixed_ops(("input_ids", 1))
    assert mixed.get("NonZero", 0) >= 1 and mixed.get("Gather", 0) >= 1
    # OPT has no routing: nothing moves the token positions by data.
    ctx = prepare(str(SAMPLES / "zoo" / "opt-eager-torchscript.onnx"), AnalyzeOptions(seq_len=24))
    assert flow(ctx).mixed_ops(("input_ids", 1)) == {}
