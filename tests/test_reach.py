"""Model reach through all layers (METRICS.md): composed by the token-flow engine
from each layer's mask; checked against hand derivations, the models README and
the reach command."""

from __future__ import annotations

import json

import attention_builders as ab
import pytest

from conftest import shared_model
from model_analyze.runner import AnalyzeOptions, analyze, prepare
from model_analyze.tokenflow import flow, reach


def attention_reach(model, n: int, bound: bool = True):
    opts = AnalyzeOptions(seq_len=n) if bound else AnalyzeOptions()
    return analyze(model, AnalyzeOptions(seq_len=n, select=["attention"]) if bound else opts).section("attention")


def test_tiny_mistral_swa_reach_15():
    # models README: at seq 40, output 39 changes iff inputs 25..39 change: 2·(8-1)+1 = 15.
    s = attention_reach(str(shared_model("tiny-mistral-swa.onnx")), 40)
    r = s.data["reach"]
    assert (r["reach_last"], r["formula"], r["covers"]) == (15, "min(i+1, 15)", False)
    assert [x["reach"] for x in r["by_layer"]] == [8, 15]  # window 8, then 8 + 7
    at030 = [f for f in s.findings if f.code == "AT030"]
    assert at030 and at030[0].severity.name == "WARNING" and "15 < the bound seq=40" in at030[0].message


def test_tiny_llama_causal_and_bert_bidirectional():
    r = attention_reach(str(shared_model("tiny-llama.onnx")), 40).data["reach"]
    assert (r["formula"], r["covers"], r["first_layer"], r["causal"]) == ("i+1", True, 1, True)
    r = attention_reach(str(shared_model("tiny-bert.onnx")), 40).data["reach"]
    assert (r["formula"], r["covers"], r["causal"], r["pair_fraction"]) == ("n", True, False, 1.0)


def test_mistral_7b_reach_at_131072():
    # 32 sliding windows of 4096: layer k reaches k·4095 + 1; 32·4095 + 1 = 131,041 < 131,072.
    s = attention_reach(str(shared_model("mistral-7b.onnx")), 131072)
    r = s.data["reach"]
    assert r["reach_last"] == 131_041 and r["formula"] == "min(i+1, 131,041)"
    assert [x["reach"] for x in r["by_layer"]] == [k * 4095 + 1 for k in range(1, 33)]
    # The last 31 positions miss 1..31 tokens: 31·32/2 = 496 causal pairs unreachable.
    assert round((1 - r["pair_fraction"]) * 131072 * 131073 / 2) == 496


def test_alternating_local_global_stack():
    # local (W=4), global (causal), local (W=4): after layer 1 position t sees [t-3, t];
    # the global layer 2 then sees everything before t; layer 3 changes nothing.
    # So input 0 first reaches the last position after 2 layers; input t-3 after 1.
    model = ab.attention_stack([ab.window(4), ab.causal(), ab.window(4)])
    ctx = prepare(model, AnalyzeOptions(seq_len=24))
    assert reach(ctx, "hidden", 1, 23, ("input_ids", 1)) == {("input_ids", 1): [(0, 23)]}
    from model_analyze.tokenflow.query import hops

    assert hops(ctx, ("input_ids", 1), 0, 23) == 2
    assert hops(ctx, ("input_ids", 1), 20, 23) == 1
    # Three windows of 4 without a global layer: 3·3 + 1 = 10 inputs.
    ctx = prepare(ab.attention_stack([ab.window(4)] * 3), AnalyzeOptions(seq_len=24))
    assert reach(ctx, "hidden", 1, 23, ("input_ids", 1)) == {("input_ids", 1): [(14, 23)]}


def test_chunked_and_global_local_compose_exactly():
    # Two chunked layers (C = 6, causal): never beyond the chunk: position 20 sees 18..20.
    ctx = prepare(ab.attention_stack([ab.chunked(6)] * 2), AnalyzeOptions(seq_len=24))
    assert reach(ctx, "hidden", 1, 20, ("input_ids", 1)) == {("input_ids", 1): [(18, 20)]}
    # Global token 0 plus a band of ±1: one layer sees {0} ∪ [t-1, t+1]; two layers everything.
    one = prepare(ab.attention_stack([ab.global_local(1, 1, 1)]), AnalyzeOptions(seq_len=24))
    assert reach(one, "hidden", 1, 12, ("input_ids", 1)) == {("input_ids", 1): [(0, 0), (11, 13)]}
    two = prepare(ab.attention_stack([ab.global_local(1, 1, 1)] * 2), AnalyzeOptions(seq_len=24))
    assert reach(two, "hidden", 1, 12, ("input_ids", 1)) == {("input_ids", 1): [(0, 23)]}


def test_reach_command(cli_run):
    path = shared_model("tiny-mistral-swa.onnx")
    r = cli_run("reach", path, "--seq-len", "40", "--at", "39")
    assert "positions 25..39 (15 of 40)" in r.stdout
    # 39 - 32 = 7 <= W-1: one layer; 39 - 25 = 14 = 2·7: two layers; 39 - 24 = 15: never.
    assert "after 1 attention layer" in cli_run("reach", path, "--seq-len", "40", "--from", "32", "--to", "39").stdout
    assert "after 2 attention layer" in cli_run("reach", path, "--seq-len", "40", "--from", "25", "--to", "39").stdout
    out = json.loads(cli_run("reach", path, "--seq-len", "40", "--from", "24", "--to", "39", "--format", "json").stdout)
    assert (out["reachable"], out["hops"]) == (False, None)
    bad = cli_run("reach", path, "--seq-len", "40", "--at", "40")
    assert bad.exit_code == 2 and "outside" in bad.stderr


@pytest.mark.parametrize("n", [7, 33])
def test_flow_state_is_bound_independent(n):
    """The engine's result is symbolic: one run serves every length."""
    ctx = prepare(str(shared_model("tiny-mistral-swa.onnx")), AnalyzeOptions(seq_len=n))
    dep = flow(ctx).states["output"].axes[1][("input_ids", 1)]
    assert dep.describe() == "[i-14, i]"
