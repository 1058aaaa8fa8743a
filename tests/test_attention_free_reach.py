"""Sequence models without attention layers say what they see: reach, coverage, causality.

Mamba, an LSTM over frames, a convolution over token ids: the report's first screen (the
verdict's *sees* row) and the JSON state the last position's reach, whether it covers the
context and whether the model is causal — marked ``≤`` where the token-flow engine
over-approximated. Every expected figure comes from the onnxruntime perturbation oracle
(``verify``: perturb one input position, see which output positions change) or from a
hand derivation in the comment, never from the report itself. An image model states no
reach.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import SAMPLES, shared_model
from model_analyze.runner import AnalyzeOptions, prepare
from model_analyze.tokenflow.query import recurrent_state

pytest.importorskip("onnxruntime")

ZOO = SAMPLES / "zoo"


def oracle(path, source, output, n=None, positions=32):
    """The runtime truth for ``source`` → ``output``: rows of observed input positions."""
    from model_analyze.verify import verify_model

    result = verify_model(str(path), AnalyzeOptions(seq_len=n), outputs=[output], positions=positions, seeds=2)
    return result.pair(source, output)


def sees_row(cli_run, path, *args) -> str:
    """The verdict's *sees* row of the text report, its wrapped lines joined."""
    lines = cli_run(path, *args).stdout.split("\n\n", 1)[0].splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith("sees"))
    row = [lines[start].strip()]
    for ln in lines[start + 1:]:
        if not ln.startswith(" " * 12):  # a continuation is indented past the label column
            break
        row.append(ln.strip())
    return " ".join(row)


def reach_data(cli_run, path, *args) -> dict:
    data = json.loads(cli_run(path, *args, "--format", "json").stdout)  # schema-checked by conftest
    section = next(s for s in data["sections"] if s["analyzer"] == "attention")
    return section["data"]["reach"]


def truth(pair, n: int) -> tuple[int, bool, bool]:
    """(last position's reach, covers position 0, causal) as the oracle observed them."""
    last = pair.observed_at(n - 1)
    causal = all(max(pair.observed_at(t), default=-1) <= t for t in range(n))
    return len(last), 0 in last, causal


# -- unrolled scans: Mamba (no attention at all) and RecurrentGemma (recurrence + a window) ------
@pytest.mark.parametrize("name", ["mamba-s16-eager-torchscript.onnx", "recurrent-gemma-s16-eager-torchscript.onnx"])
def test_scan_model_prints_the_oracle_reach(cli_run, name):
    # A linear recurrence h_t = a_t·h_{t-1} + b_t·x_t stacked step by step (n = 16, fixed):
    # position t sees 0..t, so the last sees all 16 and position 0 only itself. The oracle
    # must show exactly that (the fixtures' decay is near 1), and the report must print it.
    path = ZOO / name
    pair = oracle(path, ("input_ids", 1), "output", positions=16)
    assert pair.observed_at(0) == [0] and pair.observed_at(15) == list(range(16))
    reach, covers, causal = truth(pair, 16)
    assert (reach, covers, causal) == (16, True, True)

    row = sees_row(cli_run, path)
    assert f"reach {reach} tokens (of n = 16, causal)" in row and "≤" not in row
    assert "covers the context: yes" in row
    data = reach_data(cli_run, path)
    assert data["source"] == "input_ids[1]"  # the token ids, not the attention_mask input
    assert (data["reach_last"], data["covers"], data["causal"]) == (reach, covers, causal)
    assert data["reach_bound"] is None and data["approximated_at"] == []


def test_mamba_section_says_no_attention_and_where_the_reach_is(cli_run):
    text = cli_run(ZOO / "mamba-s16-eager-torchscript.onnx").stdout
    attention = " ".join(text.split("== Attention", 1)[1].split("\n\n", 1)[0].split())
    assert attention.split("= ", 1)[-1].startswith("no attention layer found; the sequence input_ids[1]")
    field = " ".join(text.split("== Receptive field", 1)[1].split("\n\n", 1)[0].split())
    assert "reach rows under Attention" in field and "attention section and" not in field


def test_mamba2_reach_is_printed_as_an_upper_bound(cli_run):
    # Mamba-2, chunk 4, n = 16: truth causal, the last position sees 0..15 (oracle). The
    # engine keeps each chunk of 4 whole (marked at the SSD's in-chunk CumSum), so the
    # figure is an upper bound: ≤ in the verdict, "causality not shown" (position 0 is
    # predicted to see 0..3, the truth does not), and JSON reach_bound "upper".
    path = ZOO / "mamba2-eager-dynamo.onnx"
    pair = oracle(path, ("input_ids", 1), "output", n=16, positions=16)
    reach, covers, causal = truth(pair, 16)
    assert (reach, covers, causal) == (16, True, True)

    row = sees_row(cli_run, path, "--seq-len", "16")
    assert f"reach ≤ {reach} tokens (of n = 16, causality not shown)" in row
    assert "covers the context: perhaps" in row
    data = reach_data(cli_run, path, "--seq-len", "16")
    assert data["reach_bound"] == "upper" and data["reach_last"] >= reach
    assert data["approximated_at"][0]["node"] == "node_cumsum" and data["approximated_at"][0]["op"] == "CumSum"
    assert data["causal"] is None  # not shown, not "no": the truth is causal


# -- an LSTM over frames, a convolution over token ids (built here) -----------------------------
T, F, H = 6, 3, 4


def lstm_model(direction: str) -> onnx.ModelProto:
    """``frames`` float [T, 1, F] → LSTM (hidden H, ``direction``) → ``out`` [T, 1, H]; the
    initial state ``h0`` [1, 1, H] is a graph input, as in streaming VAD exports."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (1, 4 * H, F)).astype(np.float32), "W")
    r = numpy_helper.from_array(rng.normal(0, 0.5, (1, 4 * H, H)).astype(np.float32), "R")
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    nodes = [helper.make_node("LSTM", ["frames", "W", "R", "", "", "h0"], ["y"], hidden_size=H,
                              direction=direction, name="lstm"),
             helper.make_node("Squeeze", ["y", "axes"], ["out"], name="squeeze")]
    graph = helper.make_graph(
        nodes, "lstm_frames",
        [helper.make_tensor_value_info("frames", TensorProto.FLOAT, [T, 1, F]),
         helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 1, H])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [T, 1, H])], [w, r, axes])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_lstm_initial_state_is_a_state_not_a_sequence():
    ctx = prepare(lstm_model("forward"))
    assert recurrent_state(ctx, "h0") and not recurrent_state(ctx, "frames")


V, D, K, N = 11, 4, 3, 8


def conv_text_model() -> onnx.ModelProto:
    """``ids`` int64 [1, N] → embedding [V, D] → Conv1d (kernel K, left padding K-1: causal)
    → ``out`` [1, N, D]. No recurrence, no attention: only a convolution mixes tokens."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(0, 1, (V, D)).astype(np.float32), "emb"),
             numpy_helper.from_array(rng.normal(0, 1, (D, D, K)).astype(np.float32), "wconv")]
    nodes = [helper.make_node("Gather", ["emb", "ids"], ["e"], name="embed"),
             helper.make_node("Transpose", ["e"], ["et"], perm=[0, 2, 1], name="to_channels"),
             helper.make_node("Conv", ["et", "wconv"], ["c"], pads=[K - 1, 0], kernel_shape=[K], name="conv"),
             helper.make_node("Transpose", ["c"], ["out"], perm=[0, 2, 1], name="to_tokens")]
    graph = helper.make_graph(nodes, "conv_text", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, N])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, N, D])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


BUILT = {
    # y_t = cell(x_t, y_{t-1}): frame t reaches outputs t..T-1, so output t sees 0..t — the
    # last (5) sees all 6 frames, causal.
    "lstm-forward": (lambda: lstm_model("forward"), ("frames", 0), T, (T, True, True)),
    # direction=reverse: y_t = cell(x_t, y_{t+1}), so output t sees t..T-1 — the last sees
    # only itself (reach 1, position 0 unseen) and output 0 sees later frames: not causal.
    "lstm-reverse": (lambda: lstm_model("reverse"), ("frames", 0), T, (1, False, False)),
    # Output t = Σ_k w_k·e_{t-K+1+k}: tokens t-2..t (K = 3, left-padded), so the last of
    # N = 8 sees 3 tokens, not position 0, and nothing later: causal, reach 3 < 8.
    "conv-text": (conv_text_model, ("ids", 1), N, (K, False, True)),
}


@pytest.mark.parametrize("case", list(BUILT))
def test_built_sequence_model_prints_the_oracle_reach(cli_run, save_model, case):
    build, source, n, derived = BUILT[case]
    path = save_model(build(), f"{case}.onnx")
    pair = oracle(path, source, "out", positions=n)
    reach, covers, causal = truth(pair, n)
    assert (reach, covers, causal) == derived  # the runtime agrees with the hand derivation
    row = sees_row(cli_run, path)
    unit = "token" if reach == 1 else "tokens"
    assert f"reach {reach} {unit} (of n = {n}, {'causal' if causal else 'not causal'})" in row
    assert f"covers the context: {'yes' if covers else 'no'}" in row and "≤" not in row
    data = reach_data(cli_run, path)
    assert data["source"] == f"{source[0]}[{source[1]}]"  # the frames, never the recurrent state h0
    assert (data["reach_last"], data["covers"], data["causal"]) == (reach, covers, causal)


# -- an image model states no reach -------------------------------------------------------------
def test_image_cnn_states_no_reach(cli_run):
    path = SAMPLES / "convnet.onnx"
    text = cli_run(path).stdout
    verdict = text.split("\n\n", 1)[0]
    assert "RF " in verdict and "reach" not in verdict and "covers the context" not in verdict
    data = json.loads(cli_run(path, "--format", "json").stdout)
    section = next(s for s in data["sections"] if s["analyzer"] == "attention")
    assert section["data"].get("reach") is None
    assert not [m for m in section["metrics"] if m["key"].startswith("reach.")]


def test_markdown_and_html_say_the_same_sees_row(cli_run, tmp_path):
    # Mamba s16: reach 16 of 16, causal (the oracle in test_scan_model_prints_the_oracle_reach).
    path = ZOO / "mamba-s16-eager-torchscript.onnx"
    md = cli_run(path, "--format", "markdown").stdout
    assert "**sees**: reach 16 tokens (of n = 16, causal) · covers the context: yes" in md
    out = tmp_path / "m.html"
    cli_run(path, "--format", "html", "-o", out)
    html = out.read_text(encoding="utf-8")
    assert "reach 16 tokens (of n = 16, causal)" in html


# -- attention models say it the same way ------------------------------------------------------
@pytest.mark.parametrize(("name", "word", "causal"), [
    ("tiny-llama.onnx", "causal", True),      # models README: output t depends on inputs 0..t
    ("tiny-bert.onnx", "not causal", False),  # models README: every output depends on every input
])
def test_attention_model_reach_says_whether_it_is_causal(cli_run, name, word, causal):
    path = shared_model(name)
    assert f"reach 16 tokens (of n = 16, {word})" in sees_row(cli_run, path, "--seq-len", "16")
    data = reach_data(cli_run, path, "--seq-len", "16")
    assert data["causal"] is causal and data["reach_bound"] is None


def test_unread_attention_is_said_not_taken_for_no_attention(cli_run):
    """Longformer's chunked attention is found but not read (AT090): the section says so,
    not "no attention layer found", and does not name recurrences as what mixed the
    sequence (its position ids' cumulative sum is not what makes it see)."""
    data = json.loads(cli_run(ZOO / "longformer-tiny-eager-torchscript.onnx", "--format", "json").stdout)
    section = next(s for s in data["sections"] if s["analyzer"] == "attention")
    unread = [f for f in section["findings"] if f["code"] == "AT090"]
    assert unread, "the fixture's attention is not read (README, Known limitations)"
    noun = "node" if len(unread) == 1 else "nodes"
    assert section["summary"].startswith(f"{len(unread)} attention-like {noun} not read (AT090)")
    assert "no attention layer found" not in section["summary"] and "recurrences" not in section["summary"]


def test_a_reach_of_one_reads_in_the_singular():
    """The reverse LSTM's last position sees itself only: "1 token", never "1 tokens"; the
    units that are not words stay as they are."""
    from model_analyze.render import human

    assert [human(1, "tokens"), human(16, "tokens"), human(1, "samples"), human(1, "px"), human(1, "B")] == \
        ["1 token", "16 tokens", "1 sample", "1 px", "1 B"]
