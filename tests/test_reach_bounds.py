"""Reach figures are marked upper bounds (``≤``, the node where precision was lost named)
exactly when the token-flow engine approximated on the path from the token input to the
output; exact figures stay unmarked."""

from __future__ import annotations

import json

import attention_builders as ab
import onnx
import pytest
from onnx import helper

from conftest import SAMPLES, shared_model
from model_analyze.runner import AnalyzeOptions, analyze, prepare
from model_analyze.tokenflow.coverage import coverage

ZOO = SAMPLES / "zoo"


def test_mamba2_chunked_reach_is_an_upper_bound_named_at_the_chunk():
    # Mamba-2, chunk 4, n = 16: a scan, so the truth is causal — position t sees 0..t, i.e.
    # 16·17/2 = 136 of the 256 pairs (the onnxruntime oracle agrees: test_flow_families
    # test_mamba2_chunked_scan_is_causal_by_chunk). Inside a chunk the per-axis map keeps
    # the chunk whole (the in-chunk cumulative sum and the sums gated by the triangular
    # decay cannot narrow it), so the figure is above the truth and must say so.
    cov = coverage(prepare(str(ZOO / "mamba2-eager-dynamo.onnx"), AnalyzeOptions(seq_len=16)))
    assert cov is not None and cov.n == 16
    assert cov.pairs_reachable > 136  # the figure exceeds the truth: it can only be a bound
    assert cov.bound == "upper"
    first = cov.approx[0]
    # the SSD's first in-chunk cumulative sum (segsum of the decay) is where the order is lost
    assert (first.node, first.op) == ("node_cumsum", "CumSum")
    assert "node_cumsum" in cov.upper_note and cov.upper_note.startswith("an upper bound")
    assert any(a.op == "Einsum" for a in cov.approx)  # the gated chunk sums are named too


@pytest.mark.parametrize("name", [
    "mixtral-moe-eager-dynamo.onnx",         # MoE combine [T·k] -> [T, k] then a sum over k
    "mixtral-moe-eager-torchscript.onnx",
    "llama4-chunked-moe-eager-dynamo.onnx",  # router scatter along the expert axis
    "mistral-swa-sdpa-dynamo-op23.onnx",
    "bigbird-s32-eager-torchscript.onnx",    # blocks split [T] -> [T/2, 2], each mixed whole
])
def test_oracle_exact_fixtures_stay_unmarked(name):
    # Each is sound and tight (tightness 1.00) against the onnxruntime oracle in
    # test_flow_families: a ≤ there would be a false caveat.
    n = None if name.startswith("bigbird") else 16
    cov = coverage(prepare(str(ZOO / name), AnalyzeOptions(seq_len=n)))
    assert cov is not None
    assert cov.bound is None and cov.approx == [] and cov.upper_note == ""


def test_exact_sliding_window_model_is_unmarked_everywhere(cli_run):
    # tiny-mistral-swa: window 8, 2 layers: reach 2·(8−1)+1 = 15 at seq 40 (models README,
    # checked there by perturbation). Exact: no ≤ in the verdict, the metrics or the JSON.
    path = shared_model("tiny-mistral-swa.onnx")
    report = analyze(str(path), AnalyzeOptions(seq_len=40))
    reach = report.headline("reach")
    assert reach.value == 15 and reach.bound is None and "upper bound" not in reach.note
    assert report.headline("coverage").bound is None
    attention = report.section("attention")
    assert attention.metric("reach.pairs").bound is None
    assert attention.data["reach"]["reach_bound"] is None and attention.data["reach"]["approximated_at"] == []
    text = cli_run(path, "--seq-len", "40").stdout
    sees = next(ln for ln in text.splitlines() if ln.strip().startswith("sees"))
    assert "≤" not in sees and "reach 15 tokens" in sees


def _window_stack(mystery: str | None) -> onnx.ModelProto:
    """One attention layer of window 3 over ``seq`` tokens; with ``mystery="path"`` an op
    no flow rule knows (``test.custom::Mystery``) is added back into the output (a
    residual ``h + Mystery(h)``), with ``"side"`` it feeds only a second graph output."""
    model = ab.attention_stack([ab.window(3)])
    if mystery is None:
        return model
    g = model.graph
    out = g.output[0]
    producer = next(n for n in g.node if out.name in n.output)
    producer.output[list(producer.output).index(out.name)] = "h"
    dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    elem = out.type.tensor_type.elem_type
    g.node.append(helper.make_node("Mystery", ["h"], ["m"], name="the_mystery", domain="test.custom"))
    g.value_info.append(helper.make_tensor_value_info("m", elem, dims))
    if mystery == "path":
        g.node.append(helper.make_node("Add", ["h", "m"], [out.name], name="mix_back"))
    else:
        g.node.append(helper.make_node("Identity", ["h"], [out.name], name="out"))
        g.output.append(helper.make_tensor_value_info("m", elem, dims))
    model.opset_import.append(helper.make_opsetid("test.custom", 1))
    return model


def test_unknown_op_on_the_path_marks_reach_upper_in_every_format(cli_run, save_model, tmp_path):
    # Window 3, n = 8: without the mystery op position 7 sees 5..7 (3 tokens), exact. An op
    # with no flow rule on the path is treated as mixing every position: reach 8, but only
    # an upper bound — the true dependency depends on what the op does.
    exact = analyze(str(save_model(_window_stack(None), "plain.onnx")), AnalyzeOptions(seq_len=8))
    assert exact.headline("reach").value == 3 and exact.headline("reach").bound is None

    path = save_model(_window_stack("path"), "mystery.onnx")
    report = analyze(str(path), AnalyzeOptions(seq_len=8))
    reach, covers = report.headline("reach"), report.headline("coverage")
    assert reach.value == 8 and reach.bound == "upper" and "the_mystery" in reach.note
    assert covers.value is True and covers.bound == "upper"
    pairs = report.section("attention").metric("reach.pairs")
    assert pairs.bound == "upper" and "the_mystery" in pairs.note
    arch = report.section("architecture")
    assert arch.metric("coverage.reach_last").bound == "upper"
    assert arch.metric("coverage.pair_fraction").bound == "upper"
    assert report.section("attention").data["reach"]["approximated_at"][0]["node"] == "the_mystery"

    text = cli_run(path, "--seq-len", "8").stdout
    sees = " ".join(ln.strip() for ln in text.split("== Verdict", 1)[1].split("serving", 1)[0].splitlines())
    assert "reach ≤ 8 tokens" in sees and "covers the context: perhaps" in sees
    assert "≤ 100.0%" in text and "the_mystery" in text
    data = json.loads(cli_run(path, "--seq-len", "8", "--format", "json").stdout)
    metrics = {m["key"]: m for s in data["sections"] for m in s.get("metrics", [])}
    assert metrics["reach.last"]["bound"] == "upper" and metrics["reach.pairs"]["bound"] == "upper"
    html = tmp_path / "out.html"
    cli_run(path, "--seq-len", "8", "--format", "html", "-o", html)
    assert "≤ 8" in html.read_text(encoding="utf-8")


def test_unknown_op_off_the_path_leaves_reach_exact(save_model):
    # The mystery op feeds only a second output: the first output's reach (window 3: 3 of 8)
    # never passes through it and stays exact.
    from model_analyze.tokenflow import flow

    path = save_model(_window_stack("side"), "side.onnx")
    assert [a.node for a in flow(prepare(str(path), AnalyzeOptions(seq_len=8))).approximations] == ["the_mystery"]
    report = analyze(str(path), AnalyzeOptions(seq_len=8))
    reach = report.headline("reach")
    assert reach.value == 3 and reach.bound is None


def test_reach_command_says_upper_bound_where_the_engine_approximated(cli_run):
    # Mamba-2 at n = 16: position 5 truly sees 0..5 (causal scan; the onnxruntime oracle in
    # test_flow_families); the engine's 0..7 (its chunk 4..7 kept whole) is said to be a
    # superset, the chunk's CumSum named. tiny-mistral-swa's 25..39 at seq 40 (models
    # README, by perturbation) is exact: no note.
    mamba = ZOO / "mamba2-eager-dynamo.onnx"
    text = cli_run("reach", mamba, "--seq-len", "16", "--at", "5").stdout
    assert "positions 0..7" in text and "upper bound" in text and "node_cumsum" in text
    data = json.loads(cli_run("reach", mamba, "--seq-len", "16", "--at", "5", "--format", "json").stdout)
    assert data["bound"] == "upper" and data["approximated_at"][0]["node"] == "node_cumsum"
    assert cli_run("reach", mamba, "--seq-len", "16", "--from", "6", "--to", "5").stdout.startswith("perhaps:")
    swa = shared_model("tiny-mistral-swa.onnx")
    data = json.loads(cli_run("reach", swa, "--seq-len", "40", "--at", "39", "--format", "json").stdout)
    assert data["intervals"] == [[25, 39]] and data["bound"] is None and data["approximated_at"] == []
    assert "note:" not in cli_run("reach", swa, "--seq-len", "40", "--at", "39").stdout
