"""A length-1 axis merged into a longer one by a reshape keeps its deps for every element.

silero-vad's sequence export reduces each chunk's frame axis to length 1 with strided
convolutions, runs the LSTM over the chunks and flattens ``[1, 1, chunks]`` to
``[chunks]``. The reshape rule read the frame axis's deps (a window of samples, a function
of the frame index) at each *flattened* position, as if the axis were that long: chunk 4's
probability was said to depend on no sample at all — unsound, `verify` saw 128 changes the
engine did not predict. The model here is that pattern in five ops, checked against
onnxruntime by perturbation.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_analyze.runner import AnalyzeOptions

pytest.importorskip("onnxruntime")


def _chunked_model(path) -> None:
    """x [S, 4] → Unsqueeze → [S, 1, 4] → Conv k3 → [S, 1, 2] → Conv k2 → [S, 1, 1]
    → Transpose → [1, 1, S] → CumSum over S → Reshape → y [S].

    By hand: the two convolutions make each row's one frame a weighted sum of its 4
    columns (k3 then k2: columns 0..3), the cumulative sum adds rows 0..t, so y[t]
    depends on x[s, j] for every s ≤ t and every j — on all 4 positions of axis 1."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((1, 1, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((1, 1, 2)).astype(np.float32), "w2")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    along = numpy_helper.from_array(np.array(2, np.int64), "along")
    flat = numpy_helper.from_array(np.array([-1], np.int64), "flat")
    nodes = [
        helper.make_node("Unsqueeze", ["x", "axes"], ["u"]),
        helper.make_node("Conv", ["u", "w1"], ["c1"], kernel_shape=[3]),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], kernel_shape=[2]),
        helper.make_node("Transpose", ["c2"], ["t"], perm=[2, 1, 0]),
        helper.make_node("CumSum", ["t", "along"], ["s"]),
        helper.make_node("Reshape", ["s", "flat"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "chunks", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["S", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["S"])],
                              [w1, w2, axes, along, flat])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_a_length_one_axis_flattened_with_the_sequence_keeps_its_deps_everywhere(tmp_path):
    from model_analyze.verify import verify_model

    path = tmp_path / "chunks.onnx"
    _chunked_model(path)
    result = verify_model(str(path), AnalyzeOptions(dims={"S": 6}), positions=8, seeds=2)
    assert result.sound, [p.violation_count for p in result.pairs]
    columns = result.pair("x[1]", "y")
    rows = result.pair("x[0]", "y")
    for t in range(6):
        assert list(columns.observed_at(t)) == [0, 1, 2, 3]  # the runtime agrees with the hand derivation
        assert list(rows.observed_at(t)) == list(range(t + 1))
    assert columns.tightness == 1.0 and rows.tightness == 1.0
