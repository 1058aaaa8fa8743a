"""Audio front-ends (conv/STFT over a waveform): a window longer than the input is said
(D002), never costed; signal-length dims are lengths, not batch; STFT and friends have
shape, cost and receptive-field rules. Expected numbers are hand-derived (comments) or
come from onnxruntime."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from model_analyze.runner import AnalyzeOptions, analyze


def _conv_frontend(kernel: int, stride: int, pads: tuple[int, int] = (0, 0), channels: int = 4,
                   signal: str = "samples", opset: int = 17) -> onnx.ModelProto:
    """``x float[batch, samples]`` → Unsqueeze → Conv1d(1 → channels, kernel, stride, pads):
    openwakeword's melspectrogram front-end in small."""
    w = numpy_helper.from_array(np.ones((channels, 1, kernel), np.float32), "w")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [helper.make_node("Unsqueeze", ["x", "axes"], ["x3"], name="unsq"),
             helper.make_node("Conv", ["x3", "w"], ["y"], name="conv", kernel_shape=[kernel], strides=[stride],
                              pads=list(pads))]
    g = helper.make_graph(nodes, "frontend",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", signal])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, axes])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _ort_runs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> bool:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    try:
        sess.run(None, feeds)
    except Exception:  # onnxruntime refuses the input: the model cannot run there
        return False
    return True


COST_WORDS = ("mac", "flop", "byte", "activation", "weights", "memory")


def _costs(data: dict[str, Any]) -> list[float]:
    """Every MAC/FLOP/byte figure of a JSON report: metrics by unit or key, table cells by
    column key/label."""
    out: list[float] = []
    for sec in data["sections"]:
        for m in sec["metrics"]:
            costy = m.get("unit") in ("MAC", "FLOP", "B") or any(w in m["key"].lower() for w in COST_WORDS)
            if costy and isinstance(m["value"], int | float) and not isinstance(m["value"], bool):
                out.append(m["value"])
        for t in sec["tables"]:
            cols = [k for k, c in enumerate(t["columns"])
                    if any(w in (c["key"] + c["label"]).lower() for w in COST_WORDS)]
            for row in t["rows"]:
                out += [row[k] for k in cols if k < len(row) and isinstance(row[k], int | float)
                        and not isinstance(row[k], bool)]
    return out


def _json(model: onnx.ModelProto, **kw: Any) -> dict[str, Any]:
    from model_analyze.render.json import render

    return json.loads(render(analyze(model, AnalyzeOptions(**kw))))


# -- item 1: never a negative size ---------------------------------------------------------------
def test_a_window_longer_than_the_bound_input_is_d002_with_the_smallest_input_and_no_cost():
    # Conv kernel 64, stride 16, no pads: output length floor((samples - 64)/16) + 1, which is
    # ≥ 1 exactly when samples ≥ 64. At samples=40 it is floor(-24/16) + 1 = -1.
    model = _conv_frontend(64, 16)
    assert not _ort_runs(model, {"x": np.zeros((1, 40), np.float32)})  # the oracle: it cannot run
    assert _ort_runs(model, {"x": np.zeros((1, 64), np.float32)})
    report = analyze(model, AnalyzeOptions(dims={"samples": 40}))
    d002 = [f for f in report.all_findings() if f.code == "D002"]
    assert len(d002) == 1 and d002[0].severity.name == "ERROR"
    assert "'conv'" in d002[0].message and "samples must be ≥ 64" in d002[0].message
    assert "= -1" in d002[0].message
    macs = report.headline("macs")
    assert macs is not None and macs.value is None  # "?" — no figure, and never -1·4·64
    assert all(x >= 0 for x in _costs(_json(model, dims={"samples": 40})))


def test_a_concrete_input_shorter_than_the_window_is_d002():
    # [1, 40] through the same conv: the shape engine meets floor((40 - 64)/16) + 1 = -1 concretely
    report = analyze(_conv_frontend(64, 16), AnalyzeOptions(input_shapes={"x": [1, 40]}))
    d002 = [f for f in report.all_findings() if f.code == "D002"]
    assert len(d002) == 1 and "length -1" in d002[0].message
    assert report.headline("macs").value is None


def test_a_guessed_default_below_the_window_is_raised_to_the_smallest_that_runs():
    # An image model whose first conv has a 300×300 kernel: the guessed H=W=224 cannot run
    # (floor((224 - 300)/1) + 1 = -75); the default becomes 300 along both axes, where the
    # output is 1×1 and the MACs are 300·300·3 (one output position, 2 filters → ×2).
    w = numpy_helper.from_array(np.ones((2, 3, 300, 300), np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="big", kernel_shape=[300, 300])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    report = analyze(model)
    assert report.dims.defaults["H"] == 300 and report.dims.defaults["W"] == 300
    assert "smallest input" in report.dims.default_from["H"]
    assert not any(f.code == "D002" for f in report.all_findings())
    assert report.headline("macs").value == 2 * 3 * 300 * 300
    assert _ort_runs(model, {"x": np.zeros((1, 3, 300, 300), np.float32)})
    assert not _ort_runs(model, {"x": np.zeros((1, 3, 299, 300), np.float32)})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kernel=st.integers(1, 40), stride=st.integers(1, 9), pad=st.integers(0, 6), samples=st.integers(1, 60))
def test_d002_exactly_when_onnxruntime_refuses_and_costs_never_negative(kernel, stride, pad, samples):
    model = _conv_frontend(kernel, stride, (pad, pad), channels=2)
    report = analyze(model, AnalyzeOptions(dims={"samples": samples}))
    runs = _ort_runs(model, {"x": np.zeros((1, samples), np.float32)})
    said = [f for f in report.all_findings() if f.code == "D002"]
    assert bool(said) == (not runs)
    macs = report.headline("macs").value
    if runs:
        # output length floor((samples + 2·pad - kernel)/stride) + 1, 2 filters of `kernel` taps
        length = (samples + 2 * pad - kernel) // stride + 1
        assert macs == 2 * kernel * length
    else:
        assert macs is None
        assert f"samples must be ≥ {kernel - 2 * pad}" in said[0].message
