"""Audio front-ends (conv/STFT over a waveform): a window longer than the input is said
(D002), never costed; signal-length dims are lengths, not batch; STFT and friends have
shape, cost and receptive-field rules. Expected numbers are hand-derived (comments) or
come from onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
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


# -- item 2: a signal length is a length, not a batch --------------------------------------------
def test_a_waveform_axis_feeding_a_conv_is_a_length_defaulted_to_one_second_at_16_khz():
    # onnx-asr names the samples axis "N", which the batch guesser took for a batch of 1
    model = _conv_frontend(64, 16, signal="N")
    report = analyze(model)
    d = report.dims
    assert d.roles == {"batch": "batch", "N": "seq"}
    assert d.defaults == {"batch": 1, "N": 16_000}
    d001 = [f for f in report.all_findings() if f.code == "D001"]
    assert len(d001) == 1 and d001[0].severity.name == "WARNING"
    assert "N=16000" in d001[0].message and "--seq-len N" in d001[0].message
    # 4 filters × 64 taps × (⌊(16000 - 64)/16⌋ + 1 = 997) output positions
    assert report.headline("macs").value == 4 * 64 * 997
    assert _ort_runs(model, {"x": np.zeros((1, 16_000), np.float32)})


def test_a_front_end_window_longer_than_a_second_raises_the_signal_default():
    # a 20,000-tap window needs N ≥ 20,000: the 16,000 guess is raised to the smallest that runs
    model = _conv_frontend(20_000, 1000, channels=1, signal="N")
    report = analyze(model)
    assert report.dims.defaults["N"] == 20_000
    assert report.headline("macs").value == 20_000  # one output position, one filter
    assert not any(f.code == "D002" for f in report.all_findings())


def test_a_float_matrix_that_feeds_no_window_is_not_a_signal():
    # x[batch, N] → ReduceSum: nothing slides along N, so the old guess (batch-like name) stays
    g = helper.make_graph([helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "N"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    report = analyze(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert report.dims.roles["N"] != "seq" and report.dims.defaults["N"] == 1


# -- item 3: STFT, DFT, window ops, MelWeightMatrix --------------------------------------------------
def _stft_model(window: int, hop: int, onesided: int = 1, frame_length_input: bool = False) -> onnx.ModelProto:
    """``x float[batch, N]`` → STFT(hop, hann window of ``window``): the nemo/whisper front-end."""
    inits = [numpy_helper.from_array(np.array(hop, np.int64), "hop"),
             numpy_helper.from_array(np.array(window, np.int64), "wsize")]
    stft_in = ["x", "hop", "win", "wsize"] if frame_length_input else ["x", "hop", "win"]
    nodes = [helper.make_node("HannWindow", ["wsize"], ["win"], name="hann"),
             helper.make_node("STFT", stft_in, ["spec"], name="stft", onesided=onesided)]
    g = helper.make_graph(nodes, "stft",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "N"])],
                          [helper.make_tensor_value_info("spec", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("win", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _stft_conv_twin(window: int, hop: int) -> onnx.ModelProto:
    """The same spectrum as a Conv (onnx-asr's ``*_conv.onnx``): weights ``[2·bins, 1, window]``
    (cos and sin rows of the windowed basis), stride ``hop``."""
    bins = window // 2 + 1
    return _conv_frontend(window, hop, channels=2 * bins, signal="N")


def _ours_vs_ort(model: onnx.ModelProto, binding: dict[str, int]) -> tuple[Any, list[str]]:
    import ort_oracle as O

    from model_analyze import dims as D
    from model_analyze.runner import prepare

    model = O.named(model)
    ctx = prepare(model)
    shapes = {n: tuple(int(D.subs(d, binding)) for d in ctx.shapes.shape(n)) for n in ctx.graph.inputs}
    events = O.Session(model).run([O.feeds_for(model, shapes)])[0]
    chk = O.compare(model, events, O.ours_at(ctx, binding))
    return chk, chk.problems()


@pytest.mark.parametrize(("window", "hop", "onesided", "n"), [(512, 160, 1, 16_000), (400, 160, 1, 1_000),
                                                               (64, 16, 0, 300), (64, 64, 1, 64)])
def test_stft_shapes_equal_onnxruntime_and_macs_are_the_direct_dft(window, hop, onesided, n):
    chk, problems = _ours_vs_ort(_stft_model(window, hop, onesided), {"batch": 2, "N": n})
    assert problems == [] and chk.shape_checked >= 2 and not chk.shape_unknown
    report = analyze(_stft_model(window, hop, onesided), AnalyzeOptions(dims={"batch": 2, "N": n}))
    # per frame a direct real DFT: bins × window × 2 real MACs; frames = ⌊(n - window)/hop⌋ + 1
    frames = (n - window) // hop + 1
    bins = window // 2 + 1 if onesided else window
    assert report.headline("macs").value == 2 * frames * bins * window * 2


def test_stft_and_its_conv_twin_report_the_same_macs_rf_and_stride():
    # nemo80.onnx's geometry: hann window 512 (= n_fft), hop 160 → a Conv [514, 1, 512] stride 160
    # (onnx-asr's nemo80_conv.onnx has exactly this weight, stft_conv_weights_nemo [514, 1, 512]).
    # RF of one frame: 512 samples; stride 160. MACs at N=16,000: (⌊15488/160⌋ + 1 = 97) frames
    # × 257 bins × 512 taps × 2 (cos and sin) = 25,524,224.
    stft = analyze(_stft_model(512, 160))
    conv = analyze(_stft_conv_twin(512, 160))
    for r in (stft, conv):
        assert r.dims.defaults["N"] == 16_000
        assert r.headline("macs").value == 97 * 257 * 512 * 2
        rf = r.headline("receptive_field")
        assert rf is not None and rf.value == 512 and "stride 160" in rf.note


def test_nemo80_real_front_end_against_onnxruntime_and_by_hand():
    # tests/fixtures/audio/nemo80.onnx (onnx-asr 0.12.0, MIT): preemphasis y[t] = x[t] - 0.97·x[t-1]
    # (2 taps), Pad 256 each side, STFT hann window 512 hop 160. RF = 512 + 1 = 513 samples,
    # stride 160. At N=16,000 the STFT sees 16,512 samples: ⌊(16512 - 512)/160⌋ + 1 = 101 frames,
    # × 257 bins × 512 × 2 = 26,580,992 MACs in the STFT node.
    path = Path(__file__).parent / "fixtures" / "audio" / "nemo80.onnx"
    model = onnx.load(str(path))
    chk, problems = _ours_vs_ort(model, {"batch_size": 1, "N": 16_000})
    assert problems == [] and chk.shape_checked > 20 and not chk.shape_unknown
    report = analyze(str(path))
    assert report.dims.roles["N"] == "seq" and report.dims.defaults["N"] == 16_000
    rf = report.headline("receptive_field")
    assert rf.value == 513 and "stride 160" in rf.note
    from model_analyze.cost.engine import cost_model
    from model_analyze.runner import prepare

    ctx = prepare(str(path))
    cm = cost_model(ctx)
    stft = next(nc for nc in cm.graph.nodes if nc.node.op_type == "STFT")
    assert cm.value(stft.macs) == 101 * 257 * 512 * 2
    assert not [f for f in report.all_findings() if f.code.startswith("HS")]


@pytest.mark.parametrize(("opset", "axis", "onesided", "dft_length"), [(17, 1, 1, None), (17, 1, 0, 32),
                                                                      (20, -2, 1, None), (20, 1, 0, 32)])
def test_dft_shapes_equal_onnxruntime_and_macs_are_direct(opset, axis, onesided, dft_length):
    # x [batch=3, n=24, 1] real; DFT along axis 1 of length n (or dft_length: zero-padded)
    inits = []
    inputs = ["x"]
    if dft_length is not None:
        inits.append(numpy_helper.from_array(np.array(dft_length, np.int64), "len"))
        inputs.append("len")
    kw = {"onesided": onesided}
    if opset >= 20:
        inits.append(numpy_helper.from_array(np.array(axis, np.int64), "axis"))
        inputs += ([] if dft_length is not None else [""]) + ["axis"]
    else:
        kw["axis"] = axis
    g = helper.make_graph([helper.make_node("DFT", inputs, ["y"], name="dft", **kw)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n", 1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    chk, problems = _ours_vs_ort(model, {"batch": 3, "n": 24})
    assert problems == [] and chk.shape_checked == 1 and not chk.shape_unknown
    n = dft_length or 24
    bins = n // 2 + 1 if onesided else n
    report = analyze(model, AnalyzeOptions(dims={"batch": 3, "n": 24}))
    assert report.headline("macs").value == 3 * bins * n * 2  # real input: 2 MACs per (sample, bin)


def test_window_ops_and_mel_weight_matrix_shapes_equal_onnxruntime():
    c = [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in
         (("size", 10), ("bins", 8), ("dft", 64), ("rate", 16000))]
    c += [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in (("lo", 0.0), ("hi", 8000.0))]
    nodes = [helper.make_node(op, ["size"], [op.lower()], name=op) for op in
             ("HannWindow", "HammingWindow", "BlackmanWindow")]
    nodes.append(helper.make_node("MelWeightMatrix", ["bins", "dft", "rate", "lo", "hi"], ["mel"], name="mel"))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    add = helper.make_node("Add", ["x", "x"], ["y"], name="add")  # an input, so the graph runs
    g = helper.make_graph([*nodes, add], "g", [x], [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                                                    for o in ("hannwindow", "hammingwindow", "blackmanwindow",
                                                              "mel", "y")], c)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = [o.shape for o in sess.run(None, {"x": np.zeros(1, np.float32)})]
    assert got[:4] == [(10,), (10,), (10,), (33, 8)]  # mel: ⌊64/2⌋ + 1 = 33 bins × 8 mel
    from model_analyze.runner import prepare

    ctx = prepare(model)
    assert [ctx.shapes.shape(o) for o in ("hannwindow", "hammingwindow", "blackmanwindow", "mel")] == \
        [(10,), (10,), (10,), (33, 8)]
