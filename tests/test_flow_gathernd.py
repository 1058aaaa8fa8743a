"""GatherND's flow rule, checked by execution (onnxruntime perturbation oracle).

GatherND used to be treated as an unknown layout (every output position depends
on every input position). Falcon's dynamo export picks K and V out of its fused
projection with a GatherND on a non-sequence axis, so the whole model looked
bidirectional although it is causal. The rule keeps every non-indexed axis.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_analyze.verify import verify_model

pytest.importorskip("onnxruntime")


def _model(indices: np.ndarray, batch_dims: int, x_shape: list[int]) -> onnx.ModelProto:
    idx = numpy_helper.from_array(indices.astype(np.int64), "idx")
    node = helper.make_node("GatherND", ["x", "idx"], ["y"], batch_dims=batch_dims)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [idx])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _verify(tmp_path, model: onnx.ModelProto, n: int):
    path = tmp_path / "gnd.onnx"
    onnx.save(model, str(path))
    return verify_model(str(path), positions=n, seeds=2)


def test_gathernd_on_a_leading_axis_keeps_the_sequence_axis(tmp_path):
    # x [4, 12, 3]: pick rows 1 and 3 of axis 0 -> y [2, 12, 3]; y[:, i, :]
    # reads x[:, i, :] only (Falcon's K/V selection out of the fused projection).
    result = _verify(tmp_path, _model(np.array([[1], [3]]), 0, [4, 12, 3]), 12)
    pair = result.pair(("x", 1), "y")
    assert result.sound and pair.sound
    for i in range(12):
        assert pair.observed_at(i) == [i] == pair.predicted_at(i)


def test_gathernd_with_batch_dims_keeps_the_batch_aligned_axis(tmp_path):
    # x [10, 4, 3] with batch_dims=1 and indices [10, 1] (one row of axis 1 per
    # batch entry) -> y [10, 3]; y[b] reads x[b] only.
    idx = np.array([[b % 4] for b in range(10)])
    result = _verify(tmp_path, _model(idx, 1, [10, 4, 3]), 10)
    pair = result.pair(("x", 0), "y")
    assert result.sound and pair.sound
    for b in range(10):
        assert pair.observed_at(b) == [b] == pair.predicted_at(b)


def test_gathernd_indexing_the_sequence_axis_stays_sound(tmp_path):
    # Indexing axis 1 itself (y[j] = x[0, 7 - j]): a data-dependent position, which
    # the rule collapses: sound, not tight.
    idx = np.array([[0, 7 - j] for j in range(8)])
    result = _verify(tmp_path, _model(idx, 0, [2, 8, 3]), 8)
    assert result.sound
