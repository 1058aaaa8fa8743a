"""The runtime oracle (`model-analyze verify`): the engine's answer checked by execution.

Every expected *observed* set below is a runtime fact derived by hand from the
architecture (or stated in ../shared/models/README.md), never taken from the
engine: the oracle must agree with arithmetic, and the engine with the oracle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import external_data_helper

import builders
from conftest import ROOT, SAMPLES, shared_model
from model_analyze.runner import AnalyzeOptions, prepare
from model_analyze.tokenflow import FlowState
from model_analyze.tokenflow.deps import affine
from model_analyze.verify import probe_positions, verify, verify_model

pytest.importorskip("onnxruntime")

def span(lo: int, hi: int) -> list[int]:
    return list(range(lo, hi + 1))


def clip(lo: int, hi: int, n: int) -> list[int]:
    return span(max(lo, 0), min(hi, n - 1))


def assert_sound(result) -> None:
    bad = [(p.label, p.output, p.violations) for p in result.pairs if not p.sound]
    assert result.sound and result.complete, bad


# -- conv nets ----------------------------------------------------------------------------
def test_convnet_sample_final_map_field_is_the_hand_derived_rf():
    """Final map = relu(conv3) before the global pool, 16×16 for a 64×64 image.

    Walking one row index back through the layers (pads as in builders.conv):
      conv3 (3×3, dilation 2, pad 2): row i reads pool2 rows i-2, i, i+2;
      pool2 (2, s2): row r reads conv2 rows 2r, 2r+1;
      conv2 (3×3, pad 1): row q reads pool1 rows q-1..q+1;
      pool1 (2, s2): row r reads conv1 rows 2r, 2r+1;
      conv1 (3×3, pad 1): row s reads image rows s-1..s+1.
    So pool2 row r sees image rows 4r-3..4r+6 (10 rows), and final row i sees
    [4i-11, 4i-2] ∪ [4i-3, 4i+6] ∪ [4i+5, 4i+14] = 4i-11..4i+14: RF 26
    (= 1 + 2·1 + 1·2 + 2·2 + 4·4), clipped to [0, 63] at the borders.
    One border subtlety the clipping alone misses: pool2 rows i±1 are dilation
    holes, so row 1 reads pool2 rows 1, 3 only (row -1 is padding) → image 1..18,
    not 0..18; row 14 reads pool2 rows 12, 14 (16 is padding) → image 45..62.
    """
    model = onnx.load(str(SAMPLES / "convnet.onnx"))
    final = next(n for n in model.graph.node if n.name == "gap").input[0]
    result = verify_model(str(SAMPLES / "convnet.onnx"), outputs=["logits", final], positions=64, seeds=2)
    assert_sound(result)
    for axis in (2, 3):
        pair = result.pair(("image", axis), final)
        assert pair.axis == axis and len(pair.positions) == 64
        for i in range(16):
            expected = clip(4 * i - 11, 4 * i + 14, 64)
            if i == 1:
                expected = span(1, 18)
            if i == 14:
                expected = span(45, 62)
            assert pair.observed_at(i) == expected, (axis, i)
            assert set(pair.observed_at(i)) <= set(pair.predicted_at(i))
        for i in range(3, 13):  # interior rows: the field is the full RF, and the engine is exact
            assert len(pair.observed_at(i)) == 26
            assert pair.predicted_at(i) == pair.observed_at(i)
        # The logits follow a global average pool: every image row influences them.
        logits = result.pair(("image", axis), "logits")
        assert logits.observed == logits.predicted == 64 and logits.tightness == 1.0


def _verify_built(tmp_path, model: onnx.ModelProto, n: int, **kw):
    path = tmp_path / "net.onnx"
    onnx.save(model, str(path))
    return verify_model(str(path), positions=n, seeds=2, **kw)


def test_dilated_conv_observed_taps_and_sound(tmp_path):
    """One 3×3 conv with dilation 2 (pad 2) on 16×16: row i reads exactly rows
    i-2, i, i+2 (three taps, clipped). The Distill RF is the hull, 5 rows; the
    engine predicts bands, so it must contain the taps (sound) but may not be tight."""
    b = builders.GraphBuilder("dilated")
    x = b.input("x", builders.FLOAT, [1, 2, 16, 16])
    b.op("Identity", [builders.conv(b, x, 2, 4, 3, dilation=2)], name="y")
    b.output("y")
    result = _verify_built(tmp_path, b.model(), 16)
    assert_sound(result)
    pair = result.pair(("x", 2), "y")
    for i in range(16):
        assert pair.observed_at(i) == [p for p in (i - 2, i, i + 2) if 0 <= p < 16]
        assert pair.predicted_at(i) == clip(i - 2, i + 2, 16)  # the RF-5 band


def test_strided_conv_then_conv_transpose(tmp_path):
    """Conv 3×3 stride 2 pad 1 (16 → 8), then ConvTranspose 3×3 stride 2 pads 1
    output_padding 1 (8 → 16). ConvTranspose output o receives input j when
    o = 2j - 1 + k for a tap k in 0..2:
      o even: k = 1, j = o/2            → conv rows 2j-1..2j+1 = o-1..o+1;
      o odd:  k ∈ {0, 2}, j = (o±1)/2   → o-2..o+2,
    with j ≤ 7 (so o = 15 only has j = 7 → 13..15) and everything clipped to [0, 15]."""
    b = builders.GraphBuilder("down_up")
    x = b.input("x", builders.FLOAT, [1, 2, 16, 16])
    h = builders.conv(b, x, 2, 4, 3, stride=2, pad=1)
    b.op("ConvTranspose", [h, b.weight([4, 3, 3, 3])], name="y", kernel_shape=[3, 3], strides=[2, 2],
         pads=[1, 1, 1, 1], output_padding=[1, 1])
    b.output("y")
    result = _verify_built(tmp_path, b.model(), 16)
    assert_sound(result)
    for axis in (2, 3):
        pair = result.pair(("x", axis), "y")
        for o in range(16):
            expected = clip(o - 1, o + 1, 16) if o % 2 == 0 else clip(o - 2, o + 2, 16)
            assert pair.observed_at(o) == expected, (axis, o)


def test_two_branch_add_is_the_union_of_misaligned_fields(tmp_path):
    """Branch A: 3×3 pad 1 → rows i-1..i+1; branch B: 3×3 padded only at the top/left
    (pads 2, 0) → rows i-2..i. Their sum sees the union i-2..i+1 (clipped)."""
    b = builders.GraphBuilder("two_branch")
    x = b.input("x", builders.FLOAT, [1, 2, 12, 12])
    a = builders.conv(b, x, 2, 3, 3, pad=1)
    c = builders.conv(b, x, 2, 3, 3, pad=[2, 2, 0, 0])
    b.op("Add", [a, c], name="y")
    b.output("y")
    result = _verify_built(tmp_path, b.model(), 12)
    assert_sound(result)
    for axis in (2, 3):
        pair = result.pair(("x", axis), "y")
        for i in range(12):
            assert pair.observed_at(i) == clip(i - 2, i + 1, 12)
        assert pair.tightness == 1.0  # a band union is exact here


def test_outputs_independent_of_a_source_are_checked(tmp_path):
    """Two inputs, two separate convs: the engine says y_a never depends on b; the
    oracle perturbs b anyway and sees nothing change (predicted 0, observed 0)."""
    b = builders.GraphBuilder("two_inputs")
    xa = b.input("a", builders.FLOAT, [1, 2, 8, 8])
    xb = b.input("b", builders.FLOAT, [1, 2, 8, 8])
    b.op("Identity", [builders.conv(b, xa, 2, 2, 3)], name="ya")
    b.op("Identity", [builders.conv(b, xb, 2, 2, 3)], name="yb")
    b.output("ya")
    b.output("yb")
    result = _verify_built(tmp_path, b.model(), 8)
    assert_sound(result)
    for source in ("b[2]", "b[3]", "b[1]"):
        pair = result.pair(source, "ya")
        assert pair.predicted == pair.observed == 0 and pair.tightness is None
    assert result.pair("b[2]", "yb").observed_at(4) == [3, 4, 5]


def test_oracle_catches_an_engine_that_forgets_a_branch(tmp_path, monkeypatch):
    """Teeth: if the engine claimed the two-branch sum saw only branch A
    ([i-1, i+1]), the oracle must report exactly the rows it forgot (i-2)."""
    b = builders.GraphBuilder("two_branch")
    x = b.input("x", builders.FLOAT, [1, 2, 12, 12])
    b.op("Add", [builders.conv(b, x, 2, 3, 3, pad=1), builders.conv(b, x, 2, 3, 3, pad=[2, 2, 0, 0])], name="y")
    b.output("y")
    path = tmp_path / "net.onnx"
    onnx.save(b.model(), str(path))
    ctx = prepare(str(path))
    from model_analyze.tokenflow import flow

    result = flow(ctx)
    st = result.states["y"]
    wrong = [dict(ax) for ax in st.axes]
    wrong[2][("x", 2)] = affine(1, -1, 1)
    result.states["y"] = FlowState(tuple(wrong), dict(st.fixed))
    out = verify(ctx, positions=12, seeds=1)
    assert not out.sound
    pair = out.pair(("x", 2), "y")
    assert pair.violation_count > 0
    assert {v.element[2] - v.position for v in pair.violations} == {2}  # position i-2 changed row i
    assert out.pair(("x", 3), "y").sound


# -- engine bugs the oracle found, kept as regressions (runtime facts derived by hand) ----
def _one_d(tmp_path, node: onnx.NodeProto, n: int, inits: list, rank: int = 3) -> str:
    shape = [1, 1, n] if rank == 3 else [1, 1, 1, n]
    graph = onnx.helper.make_graph([node], "g", [onnx.helper.make_tensor_value_info("x", builders.FLOAT, shape)],
                                   [onnx.helper.make_tensor_value_info("y", builders.FLOAT, None)], inits)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 19)])
    model.ir_version = 9
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return str(path)


def _ones(name: str, shape: list[int]) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(np.ones(shape, np.float32), name)



def test_conv_transpose_same_upper(tmp_path):
    """k=3, s=2, SAME_UPPER on 4 → 8: total pad = s(n-1) + (k-1) + 1 - n·s = 1 and
    SAME_UPPER puts total//2 = 0 at the beginning, so o = 2j + t (t < 3):
    output 2 receives j=1 (t=0) and j=0 (t=2)."""
    node = onnx.helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[3], strides=[2],
                                 auto_pad="SAME_UPPER")
    result = verify_model(_one_d(tmp_path, node, 4, [_ones("w", [1, 1, 3])]), positions=4, seeds=1)
    assert result.pair("x[2]", "y").observed_at(2) == [0, 1]
    assert_sound(result)


def test_conv_transpose_output_shape(tmp_path):
    """k=3, s=2, output_shape=[8] on 4: total pad 1, and with auto_pad NOTSET the spec
    puts total - total//2 = 1 at the beginning: o = 2j - 1 + t, so output 1
    receives j=0 (t=2) and j=1 (t=0)."""
    node = onnx.helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[3], strides=[2],
                                 output_shape=[8])
    result = verify_model(_one_d(tmp_path, node, 4, [_ones("w", [1, 1, 3])]), positions=4, seeds=1)
    assert result.pair("x[2]", "y").observed_at(1) == [0, 1]
    assert_sound(result)


def _resize(tmp_path, n: int, scale: float, **attrs) -> str:
    scales = onnx.numpy_helper.from_array(np.array([1, 1, 1, scale], np.float32), "scales")
    node = onnx.helper.make_node("Resize", ["x", "", "scales"], ["y"], **attrs)
    return _one_d(tmp_path, node, n, [scales], rank=4)


def test_resize_nearest_floor_clamps_at_the_border(tmp_path):
    """half_pixel, scale 2: x(0) = (0 + 0.5)/2 - 0.5 = -0.25, floor → -1, clamped to 0."""
    path = _resize(tmp_path, 4, 2.0, mode="nearest", nearest_mode="floor")
    result = verify_model(path, positions=4, seeds=1)
    assert result.pair("x[3]", "y").observed_at(0) == [0]
    assert_sound(result)


def test_resize_uses_the_given_scale(tmp_path):
    """7 × 0.6 → 4 outputs; the coordinate map uses the scale 0.6, not 4/7:
    x(3) = 3.5/0.6 - 0.5 = 5.33 → round → 5."""
    result = verify_model(_resize(tmp_path, 7, 0.6, mode="nearest"), positions=7, seeds=1)
    assert result.pair("x[3]", "y").observed_at(3) == [5]
    assert_sound(result)


def test_resize_antialias_widens_the_filter(tmp_path):
    """linear, antialias, scale 0.5 on 12: the triangle filter is stretched to
    radius 1/scale = 2 around x(1) = 1.5/0.5 - 0.5 = 2.5 → inputs 1..4."""
    result = verify_model(_resize(tmp_path, 12, 0.5, mode="linear", antialias=1), positions=12, seeds=1)
    assert result.pair("x[3]", "y").observed_at(1) == [1, 2, 3, 4]
    assert_sound(result)


# -- transformers ---------------------------------------------------------------------------
# Observed sets are runtime facts (the builders' masks, ../shared/models/README.md); the
# predicted sets must equal them once attention layers gate the key axis by their mask.
@pytest.fixture(scope="module")
def sample_at_16():
    return verify_model(str(SAMPLES / "tiny_transformer.onnx"), AnalyzeOptions(seq_len=16), positions=16, seeds=2)


def test_tiny_transformer_sample_is_causal(sample_at_16):
    """The sample is built with a causal mask (builders.mask_bias: j <= i)."""
    assert_sound(sample_at_16)
    pair = sample_at_16.pair("input_ids[1]", "logits")
    assert [pair.observed_at(t) for t in range(16)] == [span(0, t) for t in range(16)]


def test_tiny_transformer_sample_prediction_is_tight(sample_at_16):
    pair = sample_at_16.pair("input_ids[1]", "logits")
    assert [pair.predicted_at(t) for t in range(16)] == [span(0, t) for t in range(16)]
    assert pair.tightness == 1.0


@pytest.fixture(scope="module")
def mistral_at_40():
    path = shared_model("tiny-mistral-swa.onnx")
    return verify_model(str(path), AnalyzeOptions(seq_len=40), positions=40, seeds=2)


def test_tiny_mistral_swa_observed_reach(mistral_at_40):
    """README: at seq 40, output 39 changes when and only when inputs 25..39 change
    (2 layers of window 8: 2·(8-1)+1 = 15), and no output depends on a later token."""
    assert_sound(mistral_at_40)
    pair = mistral_at_40.pair("input_ids[1]", "output")
    assert len(pair.positions) == 40
    assert pair.observed_at(39) == span(25, 39)
    for t in range(40):
        assert pair.observed_at(t) == span(max(0, t - 14), t)


def test_tiny_mistral_swa_prediction_is_the_window(mistral_at_40):
    pair = mistral_at_40.pair("input_ids[1]", "output")
    assert pair.predicted_at(39) == span(25, 39)
    assert [pair.predicted_at(t) for t in range(40)] == [span(max(0, t - 14), t) for t in range(40)]
    assert pair.tightness == 1.0


@pytest.fixture(scope="module")
def llama_at_24():
    return verify_model(str(shared_model("tiny-llama.onnx")), AnalyzeOptions(seq_len=24), positions=24, seeds=2)


def test_tiny_llama_is_causal(llama_at_24):
    """README: output t depends on inputs 0..t."""
    assert_sound(llama_at_24)
    pair = llama_at_24.pair("input_ids[1]", "output")
    assert [pair.observed_at(t) for t in range(24)] == [span(0, t) for t in range(24)]


def test_tiny_llama_prediction_is_causal(llama_at_24):
    pair = llama_at_24.pair("input_ids[1]", "output")
    assert [pair.predicted_at(t) for t in range(24)] == [span(0, t) for t in range(24)]
    assert pair.tightness == 1.0


def test_tiny_bert_is_bidirectional_and_tight():
    """README: with a mask of ones every output depends on every input; zeroing a
    mask position changes every output too (that key disappears for everyone)."""
    path = shared_model("tiny-bert.onnx")
    result = verify_model(str(path), AnalyzeOptions(seq_len=20), positions=20, seeds=2)
    assert_sound(result)
    assert "all ones" in result.inputs["attention_mask"]
    assert "[0, " in result.inputs["input_ids"]
    for source in ("input_ids[1]", "attention_mask[1]"):
        pair = result.pair(source, "output")
        assert pair.axis == 1
        assert all(pair.observed_at(t) == span(0, 19) for t in range(20))
        assert pair.tightness == 1.0


# -- the command -------------------------------------------------------------------------
def test_cli_text_and_json(cli_run):
    text = cli_run("verify", SAMPLES / "convnet.onnx", "--positions", "8", "--seeds", "1")
    assert text.exit_code == 0, text.output
    assert "SOUND" in text.stdout and all(len(ln) <= 80 for ln in text.stdout.splitlines())
    js = cli_run("verify", SAMPLES / "tiny_transformer.onnx", "--seq-len", "12", "--format", "json")
    assert js.exit_code == 0
    data = json.loads(js.stdout)
    assert data["sound"] is True and data["seeds"] == [0, 1]
    (row,) = data["results"]
    assert row["source"] == "input_ids[1]" and row["positions_probed"] == 12 and row["violation_count"] == 0


def test_cli_unsound_exits_1(cli_run, monkeypatch):
    """A lying engine (every output claimed independent of everything) → exit 1."""
    import model_analyze.tokenflow as tf

    real = tf.flow

    def lying(ctx):
        result = real(ctx)
        for name in ctx.graph.outputs:
            st = result.states[name]
            result.states[name] = FlowState(tuple({} for _ in st.axes or ()), {})
        return result

    monkeypatch.setattr(tf, "flow", lying)
    out = cli_run("verify", SAMPLES / "convnet.onnx", "--positions", "4", "--seeds", "1")
    assert out.exit_code == 1
    assert "UNSOUND" in out.stdout and "VIOLATION" in out.stdout


def _one_line_exit_2(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_cli_without_onnxruntime(cli_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    _one_line_exit_2(cli_run("verify", SAMPLES / "convnet.onnx"), "pip install 'model-analyze[verify]'")


def _external(tmp_path) -> str:
    b = builders.GraphBuilder("ext")
    x = b.input("x", builders.FLOAT, [1, 2, 8, 8])
    b.op("Identity", [builders.conv(b, x, 2, 2, 3)], name="y")
    b.output("y")
    model = b.model()
    external_data_helper.convert_model_to_external_data(model, all_tensors_to_one_file=True,
                                                        location="w.bin", size_threshold=0)
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path))
    return str(path)


def test_external_weights_are_used_when_present(cli_run, tmp_path):
    assert cli_run("verify", _external(tmp_path), "--seeds", "1").exit_code == 0


def test_missing_external_weights_exit_2(cli_run, tmp_path):
    path = _external(tmp_path)
    os.remove(tmp_path / "w.bin")
    _one_line_exit_2(cli_run("verify", path), "weights are not available")


def test_hostile_external_location_is_never_run(cli_run, tmp_path):
    path = _external(tmp_path)
    m = onnx.load(path, load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../w.bin"
    onnx.save(m, path)
    _one_line_exit_2(cli_run("verify", path), "refusing to run", "L012")


def test_mistral_7b_without_its_data_exits_2(cli_run):
    _one_line_exit_2(cli_run("verify", shared_model("mistral-7b.onnx")), "weights are not available")


def test_op_onnxruntime_cannot_run_exits_2(cli_run, tmp_path):
    b = builders.GraphBuilder("custom")
    x = b.input("x", builders.FLOAT, [1, 4])
    b.op("MyGelu", [x], name="y", domain="my.domain")
    b.output("y")
    path = tmp_path / "custom.onnx"
    onnx.save(b.model(extra_opsets=[("my.domain", 1)]), str(path))
    _one_line_exit_2(cli_run("verify", path), "onnxruntime cannot load this model")


def test_a_perturbation_the_runtime_refuses_leaves_only_that_source_unchecked(cli_run, tmp_path):
    # Longformer traced with one global token breaks when that token is masked (a reshape
    # traced for its count). Here: y = Reshape(x, [Σ mask]) runs with the all-ones mask
    # (8 elements into [8]) and fails once a mask position is 0 (8 into [7]). x is
    # still checked; the mask's pair is unchecked, the first refused run named, and
    # the command exits 2 with one line (it used to end verify at the first refusal).
    b = builders.GraphBuilder("traced_count", opset=17)
    x = b.input("x", builders.FLOAT, [1, 8])
    mask = b.input("attention_mask", onnx.TensorProto.INT64, [1, 8])
    count = b.op("ReduceSum", [mask, b.const(np.array([1], np.int64))], keepdims=0)
    b.op("Reshape", [x, count], name="y")
    b.output("y")
    path = tmp_path / "traced_count.onnx"
    onnx.save(b.model(), str(path))
    result = verify_model(str(path), positions=8, seeds=1)
    ids = result.pair(("x", 1), "y")
    assert ids.checked and ids.sound and ids.observed > 0
    bad = result.pair(("attention_mask", 1), "y")
    assert not bad.checked and "position 0 perturbed (set to 0)" in bad.error
    assert not result.complete and result.sound  # nothing observed contradicts the engine
    _one_line_exit_2(cli_run("verify", path), "attention_mask[1] position 0 perturbed")


def test_unknown_output_and_oversized_input_exit_2(cli_run):
    _one_line_exit_2(cli_run("verify", SAMPLES / "convnet.onnx", "--output", "nope"), "'nope'")
    _one_line_exit_2(cli_run("verify", SAMPLES / "tiny_transformer.onnx", "--input-shape",
                             f"input_ids=2,{1 << 27}"), "too many")  # 2^28 elements; a dim is at most 2^27


def test_core_never_imports_onnxruntime():
    code = ("import sys; from model_analyze.cli import get_cli; from model_analyze.runner import analyze; "
            f"get_cli(); analyze({str(SAMPLES / 'convnet.onnx')!r}); "
            "assert 'onnxruntime' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize(("n", "budget"), [(5, 16), (64, 16), (4096, 8), (3, 1)])
def test_probe_positions_keep_borders(n, budget):
    picks = probe_positions(n, budget)
    assert picks == sorted(set(picks)) and picks[0] == 0 and picks[-1] == n - 1
    assert len(picks) == n if n <= budget else 3 <= len(picks) <= max(budget, 4)
    assert np.all(np.diff(picks) > 0)
