"""Attention detection on the real dynamo exports in ../shared/models.

Expected values come from the models README (configs the exports were made
from, and facts measured with onnxruntime), not from this code:

- mistral-7b: 32 layers, hidden 4096, 32 heads, 8 kv heads (d_k = 4096/32 = 128),
  ``sliding_window=4096`` → HF keys ``i - 4096 < j <= i``, span 4096 at any n >= 4096.
- tiny-mistral-swa: 2 layers, hidden 64, 4 heads, 2 kv heads (d_k 16),
  ``sliding_window=8``; measured: output 39 depends on inputs 25..39 = 2·(8−1)+1
  positions, i.e. 8 keys per layer (32..39 for query 39).
- tiny-llama: causal (output t depends on inputs 0..t), 4 heads, hidden 64.
- tiny-bert: bidirectional, padding mask from the ``attention_mask`` input.
"""

from __future__ import annotations

import json
import math

import pytest

from conftest import shared_model
from model_analyze.attention import attention_layers
from model_analyze.runner import AnalyzeOptions, prepare


@pytest.fixture(scope="module")
def mistral7b():
    ctx = prepare(str(shared_model("mistral-7b.onnx")), AnalyzeOptions(dims={"seq": 131072}))
    return ctx, attention_layers(ctx)


def test_mistral_7b_layers(mistral7b):
    _, layers = mistral7b
    assert len(layers) == 32
    assert [la.name for la in layers] == [f"layers.{i}" for i in range(32)]
    for la in layers:
        assert la.kind == "unfused"
        assert (la.heads, la.kv_heads, la.head_dim, la.model_dim) == (32, 8, 128, 4096)
        assert la.scale == pytest.approx(1 / math.sqrt(128), rel=1e-6)
        assert la.rope == "rotate_half"
        assert la.softcap is None


def test_mistral_7b_window_from_the_slice_constant(mistral7b):
    _, layers = mistral7b
    mask = layers[0].mask
    # Mistral-7B-v0.1 config: sliding_window = 4096.
    assert mask.family == "sliding_window" and mask.params["window"] == 4096
    assert mask.source == "evaluated"
    # 4096 is above the direct-evaluation limit, so the slice constant was swapped
    # for two small probes (the window followed them one-to-one) and the result
    # re-checked against direct evaluations at small lengths: no n×n tensor
    # anywhere near 4096, let alone the 131072 target.
    assert mask.params.get("probed") is True and "substituting the slice constant 4096" in mask.note
    assert max(mask.evaluated_at) < 100
    assert len(mask.evaluated_at) >= 2
    assert mask.span(131072) == 4096
    assert mask.keys.at(131071, 131072) == [(131072 - 4096, 131071)]
    # all 32 layers share one mask tensor: one reading, one object
    assert all(la.mask is mask for la in layers)
    assert not mask.sees_future


def test_mistral_7b_layer_tensors(mistral7b):
    ctx, layers = mistral7b
    la = layers[0]
    g = ctx.graph
    qk, sm, av = (g.node_by_id[x] for x in (la.qk_node, la.softmax_node, la.av_node))
    assert (qk.op_type, sm.op_type, av.op_type) == ("MatMul", "Softmax", "MatMul")
    assert la.q_tensor == qk.input(0) and la.k_tensor == qk.input(1)
    assert la.v_tensor == av.input(1) and la.probs_input == 0
    # scores [1, 32, seq, seq]: softmax over axis 3; Q [1, 32, seq, 128] seq axis 2,
    # Kᵀ [1, 32, 128, seq] seq axis 3, V [1, 32, seq, 128] seq axis 2
    assert (la.softmax_axis, la.q_seq_axis, la.k_seq_axis, la.v_seq_axis) == (3, 2, 3, 2)
    assert la.mask_tensors == ("where",)
    assert set(la.nodes) >= {la.qk_node, la.softmax_node, la.av_node}
    assert {g.node_by_id[x].op_type for x in la.nodes} <= {"MatMul", "Mul", "Add", "Softmax", "Cast", "Identity"}


def test_tiny_mistral_swa_window_8():
    ctx = prepare(str(shared_model("tiny-mistral-swa.onnx")), AnalyzeOptions(dims={"seq": 40}))
    layers = attention_layers(ctx)
    assert len(layers) == 2
    for la in layers:
        assert (la.heads, la.kv_heads, la.head_dim, la.model_dim) == (4, 2, 16, 64)
        assert la.mask.family == "sliding_window" and la.mask.span(40) == 8
        assert la.mask.keys.at(39, 40) == [(32, 39)]  # query 39 sees 32..39
    # two layers of 8 keys: 2·(8−1)+1 = 15 positions, the README's measured reach
    lo = layers[0].mask.keys.at(layers[1].mask.keys.at(39, 40)[0][0], 40)[0][0]
    assert 39 - lo + 1 == 15


def test_tiny_llama_causal():
    ctx = prepare(str(shared_model("tiny-llama.onnx")))
    layers = attention_layers(ctx)
    assert len(layers) == 2
    for la in layers:
        assert la.mask.family == "causal"
        assert la.mask.keys.at(7, 20) == [(0, 7)]
        assert (la.heads, la.kv_heads, la.head_dim) == (4, 4, 16)


def test_tiny_bert_bidirectional_input_driven():
    ctx = prepare(str(shared_model("tiny-bert.onnx")))
    layers = attention_layers(ctx)
    assert len(layers) == 2
    for la in layers:
        assert la.mask.family == "bidirectional"
        assert la.mask.source == "input-driven"
        assert la.mask.input_driven == ("attention_mask",)
        assert la.rope is None
        assert (la.heads, la.head_dim, la.model_dim) == (4, 16, 64)


def test_mistral_7b_report(cli_run):
    path = shared_model("mistral-7b.onnx")
    result = cli_run(path, "--dim", "seq=131072", "--select", "attention")
    assert result.exit_code == 0
    # 32 identical layers fold into one row with their index range (like the layer table)
    rows = [ln for ln in result.stdout.splitlines() if "window 4096" in ln and "unfused" in ln]
    assert len(rows) == 1 and rows[0].split()[:3] == ["0–31", "layers.{0..31}", "×32"]
    assert rows[0].rstrip().endswith("4,096")
    assert "span@131072" in result.stdout
    assert all(len(ln) <= 80 for ln in result.stdout.splitlines())
    data = json.loads(cli_run(path, "--dim", "seq=131072", "--select", "attention", "--format", "json").stdout)
    section = next(s for s in data["sections"] if s["analyzer"] == "attention")
    assert section["data"]["n"] == 131072
    assert [la["mask"]["span"] for la in section["data"]["layers"]] == [4096] * 32
    # The layers themselves raise nothing; the one finding is the composed reach
    # 32·4095 + 1 = 131,041 < the bound 131,072 (AT030, a warning: exit code stays 0).
    assert [(f["code"], f["severity"]) for f in section["findings"]] == [("AT030", "warning")]


def test_tiny_bert_report_says_input_driven(cli_run):
    result = cli_run(shared_model("tiny-bert.onnx"), "--select", "attention")
    assert "AT012" in result.stdout and "attention_mask" in result.stdout
