"""A recurrent state's axis 1 is the batch, never the sequence (samples/vad_like.onnx).

The ONNX RNN/GRU/LSTM (layout 0) take X ``[seq, batch, input]`` and an initial state
``h0 [directions, batch, hidden]``. samples/vad_like.onnx feeds its LSTMs
``Unsqueeze(feat, 0)`` = ``[1, batch, 8]`` (a sequence of length 1, ``feat`` = x
``[batch, 8, 1]`` with its last axis squeezed) and ``h0 [1, batch, 16]``: ``batch`` is the
batch on every input, and the model has no sequence dim at all. Before, ``batch`` was taken
for the sequence (axis 1 of a rank-3 float input: h0), defaulted to 128 and the verdict told
the user to bind it with ``--seq-len N``.
"""

from __future__ import annotations

from onnx import TensorProto, helper

from conftest import ROOT
from model_analyze.bindings import sequence_dim
from model_analyze.graph import ModelGraph
from model_analyze.render.text import render
from model_analyze.report import Severity
from model_analyze.runner import AnalyzeOptions, analyze

VAD = ROOT / "samples" / "vad_like.onnx"


def test_vad_like_binds_batch_as_a_batch():
    report = analyze(str(VAD), AnalyzeOptions())
    assert report.dims.defaults == {"batch": 1} and report.dims.roles == {"batch": "batch"}
    assert not report.dims.guessed() and not report.dims.suggestion
    first = render(report).splitlines()[1]
    assert "batch=1" in first and "seq" not in first, first
    assert not [f for f in report.all_findings() if f.code == "D001" and f.severity >= Severity.WARNING]
    # at batch 1, one step of an LSTM (hidden 16, input 8): 4 gates · 16 · (8 + 16) = 1,536 MACs;
    # the costlier branch of the data-dependent If also projects feat first, [1,8]×[8,8] = 64:
    # ≤ 1,600 MACs (an upper bound: the If may take the cheaper branch)
    macs = report.headline("macs")
    assert (macs.value, macs.bound) == (1600, "upper")


def test_vad_like_refuses_seq_len(cli_run):
    r = cli_run(VAD, "--seq-len", "16", "--isolated")
    assert r.exit_code == 2 and "cannot tell which dim is the sequence" in r.stderr, r.stderr


def test_a_plain_rank3_float_input_still_gives_its_sequence():
    """features [b, t, 80] (not a state): axis 1 is the sequence, as before."""
    graph = helper.make_graph([helper.make_node("Identity", ["features"], ["y"])], "g",
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["b", "t", 80]),
                               helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, "b", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    g = ModelGraph(graph)
    assert sequence_dim(g, g.declared) == "t"
    # the state alone names no sequence
    only_state = helper.make_graph([helper.make_node("Identity", ["h0"], ["y"])], "g",
                                   [helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, "b", 16])],
                                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    g2 = ModelGraph(only_state)
    assert sequence_dim(g2, g2.declared) is None
