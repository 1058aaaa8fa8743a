"""Real transformer exports (``samples/zoo``): what the configs say, and what
onnxruntime measures, against what we read.

Every fixture was exported by ``samples/zoo/export_transformers.py`` from a tiny
Hugging Face config (random weights) with ``torch.onnx.export`` — dynamo or the
TorchScript exporter — and some were passed through onnxruntime's transformer
optimizer; ``samples/zoo/README.md`` lists the file, class, config and exporter.
The expected values below are the *config's* (layers, heads, kv heads,
``head_dim = hidden / heads``, window, causal) or the oracle's (``verify`` runs
the model with onnxruntime and perturbs one input position at a time), never
numbers read back from this code.
"""

from __future__ import annotations

from functools import cache

import pytest

from conftest import SAMPLES
from model_analyze.attention import AttentionLayer, attention_layers
from model_analyze.runner import AnalyzeOptions, prepare

ZOO = SAMPLES / "zoo"
N = 24
"""Sequence length the models are analyzed and run at (above every window)."""


@cache
def layers(name: str, n: int = N) -> tuple[AttentionLayer, ...]:
    ctx = prepare(str(ZOO / name), AnalyzeOptions(seq_len=n))
    return tuple(attention_layers(ctx))


@cache
def verified(name: str, n: int = N, **dims: int):
    pytest.importorskip("onnxruntime")
    from model_analyze.verify import verify_model

    opts = AnalyzeOptions(seq_len=n, dims=dict(dims))
    return verify_model(str(ZOO / name), opts, positions=n, seeds=2)


def causal_pairs(n: int) -> int:
    """(output i, input p) pairs with p <= i: n(n+1)/2."""
    return n * (n + 1) // 2


def assert_tight(name: str, source: str, pairs: int, n: int = N) -> None:
    """onnxruntime observed exactly ``pairs`` (i, p) dependencies and the static
    answer predicted exactly those (tightness 1.0, sound)."""
    result = verified(name, n)
    pair = next(p for p in result.pairs if p.label == source)
    assert pair.sound, pair.violations
    assert pair.observed == pairs, (name, source, pair.observed)
    assert pair.predicted == pairs and pair.tightness == 1.0, (name, source, pair.predicted)


# -- heads and kv heads ---------------------------------------------------------------------------
def test_falcon_new_architecture_kv_heads_from_the_grouped_projection():
    # FalconConfig(hidden 32, num_attention_heads 4, num_kv_heads 2,
    # new_decoder_architecture): qkv viewed [B, S, kv=2, 4/2 + 2, d=8]; K and V are
    # expanded from [.., 2, 1, 8] to [.., 2, 2, 8] and merged into 4 heads.
    got = layers("falcon-eager-dynamo.onnx")
    assert len(got) == 2
    assert [(la.heads, la.kv_heads, la.head_dim) for la in got] == [(4, 2, 8)] * 2
    assert all(la.mask.family == "causal" for la in got)


def test_falcon_k_selection_keeps_the_model_causal():
    # The dynamo export picks K/V out of the fused projection with GatherND; the
    # model is causal: output i depends on tokens 0..i (measured by onnxruntime).
    assert_tight("falcon-eager-dynamo.onnx", "input_ids[1]", causal_pairs(N))


def test_gpt_neox_fused_qkv_is_not_three_times_the_heads():
    # GPTNeoXConfig(hidden 32, heads 4): query_key_value [B, S, 96] viewed
    # [B, S, 4, 3·8] and split: 4 heads of 8, no GQA (kv heads = heads).
    got = layers("gpt-neox-eager-torchscript.onnx")
    assert [(la.heads, la.kv_heads, la.head_dim) for la in got] == [(4, 4, 8)] * 2
    assert all(la.mask.family == "causal" for la in got)


def test_gptj_rotary_table_repetition_is_not_gqa():
    # GPTJConfig(n_embd 32, n_head 4, rotary_dim 4): no GQA (kv heads = heads);
    # the interleaved rotary repeats its sin/cos table with an Expand
    # (repeat_interleave), which is not a repetition of K's heads.
    got = layers("gptj-eager-torchscript.onnx")
    assert [(la.heads, la.kv_heads, la.head_dim) for la in got] == [(4, 4, 8)] * 2
    assert_tight("gptj-eager-torchscript.onnx", "input_ids[1]", causal_pairs(N))


def test_modernbert_fused_qkv_three_heads_axes():
    # ModernBertConfig(hidden 32, heads 4, 3 layers, global_attn_every_n_layers 3,
    # local_attention 6): Wqkv viewed [B, S, 3, 4, 8]. Layer 0 is global
    # (bidirectional); layers 1 and 2 see |i - j| <= 6 // 2 = 3, i.e. 7 keys.
    got = layers("modernbert-eager-dynamo.onnx")
    assert [(la.heads, la.kv_heads, la.head_dim) for la in got] == [(4, 4, 8)] * 3
    assert got[0].mask.family == "bidirectional"
    for la in got[1:]:
        assert la.mask.keys.at(10, N) == [(7, 13)]
        assert la.mask.span(N) == 7


def test_whisper_sdpa_encoder_keys_are_not_split_by_sequence():
    # WhisperConfig(d_model 32, 4 heads, 2 + 2 layers, max_source_positions 16):
    # the SDPA export reshapes K [B·H, d, 16] -> [B, H, d, 16]; that adds a leading
    # axis, it does not split 16 frames into 2 "heads" of 8.
    got = layers("whisper-sdpa-dynamo.onnx")
    assert len(got) == 6  # encoder self ×2, decoder self ×2, decoder cross ×2
    assert all((la.heads, la.kv_heads, la.head_dim) == (4, 4, 8) for la in got)
    # module paths encoder.layers.N.self_attn, decoder.layers.N.{self_attn, encoder_attn}
    assert [la.name for la in got] == ["encoder.layers.0", "encoder.layers.1", "decoder.layers.0.self",
                                       "decoder.layers.0.cross", "decoder.layers.1.self", "decoder.layers.1.cross"]
    enc = [la for la in got if la.self_attention and la.mask.family == "bidirectional"]
    dec = [la for la in got if la.mask.family == "causal"]
    cross = [la for la in got if not la.self_attention]
    assert (len(enc), len(dec), len(cross)) == (2, 2, 2)


# -- masks ------------------------------------------------------------------------------------------
def test_bloom_merged_head_scores_and_alibi_bias():
    # BloomConfig(hidden 32, n_head 4, 2 layers): scores are [B·H, q, k] from
    # baddbmm(alibi, q, k); the causal mask is added after viewing them [B, H, q, k].
    # ALiBi is a finite distance bias, not a mask: the model is causal.
    got = layers("bloom-eager-torchscript.onnx")
    assert [(la.heads, la.kv_heads, la.head_dim) for la in got] == [(4, 4, 8)] * 2
    assert all(la.mask.family == "causal" for la in got)
    assert_tight("bloom-eager-torchscript.onnx", "input_ids[1]", causal_pairs(N))


# -- onnxruntime's transformer optimizer --------------------------------------------------------------
def test_ort_optimized_bert_loads_and_shows_fused_attention():
    # onnxruntime.transformers.optimizer output imports ai.onnx.training 1 (which
    # the onnx package no longer knows) without using it; its two BERT layers are
    # com.microsoft Attention (num_heads 4, hidden 32) with the padding mask input.
    got = layers("bert-eager-torchscript-ortopt.onnx")
    assert [la.kind for la in got] == ["ms.Attention"] * 2
    assert all((la.heads, la.head_dim) == (4, 8) for la in got)
    assert all(la.mask.family == "bidirectional" and la.mask.input_driven for la in got)
    assert_tight("bert-eager-torchscript-ortopt.onnx", "input_ids[1]", N * N)


def test_deberta_relative_position_scores_are_biases_not_masks():
    # DebertaV2Config(hidden 32, heads 4, relative_attention, pos_att_type
    # [p2c, c2p]): scores = QKᵀ/sqrt(3·8) + c2p + p2c, then the padding mask. The
    # c2p/p2c terms are computed from activations (finite), the mask from the
    # attention_mask input: bidirectional. The scale is K / sqrt(d · (1 + 2)),
    # computed in the graph from K's shape.
    got = layers("deberta-v2-eager-torchscript.onnx")
    assert [(la.heads, la.kv_heads, la.head_dim) for la in got] == [(4, 4, 8)] * 2
    for la in got:
        assert la.mask.family == "bidirectional" and la.mask.input_driven == ("attention_mask",)
        assert "finite" in la.mask.note
        assert la.scale == pytest.approx((8 * 3) ** -0.5, rel=1e-6)
    assert_tight("deberta-v2-eager-torchscript.onnx", "input_ids[1]", N * N)


def test_t5_encoder_decoder_layers_are_named_apart_and_unscaled():
    # T5Config(d_model 32, d_kv 8, 4 heads, 2 layers): encoder self-attention ×2
    # (bidirectional), decoder self-attention ×2 (causal), cross-attention ×2.
    # T5 does not scale QKᵀ (the scale is folded into its initialisation).
    from model_analyze.attention.checks import scale_check

    got = layers("t5-eager-torchscript.onnx")
    # Every one is `layer.0`/`layer.1` of some block: the names say which block
    # (module paths encoder.block.1.layer.0.SelfAttention, …, shortest unique prefix).
    assert [la.name for la in got] == [
        "encoder.block.0", "encoder.block.1", "decoder.block.0.layer.0", "decoder.block.0.layer.1",
        "decoder.block.1.layer.0", "decoder.block.1.layer.1"]
    assert [la.mask.family for la in got if la.self_attention] == ["bidirectional"] * 2 + ["causal"] * 2
    assert sum(not la.self_attention for la in got) == 2
    assert {scale_check(la).verdict for la in got} == {"missing"}


def test_t5_decoder_sees_every_encoder_token_and_its_own_past():
    # measured with onnxruntime at 24 encoder and 6 decoder tokens: decoder
    # position t changes with every encoder token (6·24 pairs) and with decoder
    # tokens 0..t (6·7/2 pairs), and the static answer is exactly that.
    result = verified("t5-eager-torchscript.onnx", N, dec_seq=6)
    by = {p.label: p for p in result.pairs}
    assert result.sound
    assert by["input_ids[1]"].observed == by["input_ids[1]"].predicted == 6 * N
    assert by["decoder_input_ids[1]"].observed == by["decoder_input_ids[1]"].predicted == 6 * 7 // 2


def test_longformer_sliding_chunks_are_reported_not_guessed():
    # LongformerConfig(hidden 16, 2 heads, 1 layer, attention_window 4): the
    # scores are built in a banded [B, S, H, 2w+1] layout by chunked matmuls and
    # ScatterND; that layout is not read, so the layer is not claimed with any
    # mask — it is reported (AT090) and its positions are followed op by op
    # (tests/test_longformer.py), which onnxruntime confirms is sound.
    from model_analyze.attention import attention_problems

    ctx = prepare(str(ZOO / "longformer-tiny-eager-torchscript.onnx"), AnalyzeOptions(seq_len=N))
    assert attention_layers(ctx) == []
    problems = attention_problems(ctx)
    assert len(problems) == 1 and "layer.0/attention/self/Softmax" in problems[0]
    assert verified("longformer-tiny-eager-torchscript.onnx").sound


# -- model reach ------------------------------------------------------------------------------------
def _coverage(name: str):
    from model_analyze.tokenflow.coverage import coverage

    return coverage(prepare(str(ZOO / name), AnalyzeOptions(seq_len=N)))


def test_bert_torchscript_reach_over_the_whole_sequence():
    # BertModel (TorchScript, 64 position embeddings): the exporter declares the
    # output length max(min(64, seq), seq), which is seq. Bidirectional with a
    # padding mask of ones: every output position sees all 24 tokens
    # (onnxruntime: 24·24 pairs).
    cov = _coverage("bert-eager-torchscript.onnx")
    assert cov is not None and cov.source == "input_ids[1]"
    assert (cov.reach_last, cov.covers, cov.causal, cov.pair_fraction) == (N, True, False, 1.0)
    assert_tight("bert-eager-torchscript.onnx", "input_ids[1]", N * N)


def test_causal_lm_reach_is_the_tokens_not_the_padding_mask():
    # OPTForCausalLM (TorchScript, input_ids + attention_mask): the reach is that
    # of the tokens, causal (output t sees tokens 0..t: onnxruntime measures
    # 24·25/2 pairs), even though the mask input's name sorts first.
    cov = _coverage("opt-eager-torchscript.onnx")
    assert cov is not None and cov.source == "input_ids[1]"
    assert (cov.reach_last, cov.causal, cov.pair_fraction) == (N, True, 1.0)
    assert_tight("opt-eager-torchscript.onnx", "input_ids[1]", causal_pairs(N))


# -- parameters -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "torch_params"), [
    # sum(p.numel() for p in model.parameters()) of the exported torch model:
    # FalconForCausalLM ties lm_head to the embedding; dynamo folds
    # Transpose(lm_head.weight) into a new initializer that its metadata still
    # names as that parameter: one table, counted once.
    ("falcon-eager-dynamo.onnx", 26944),
    # GPTNeoXForCausalLM: TorchScript stores the rotary inv_freq (2 values for
    # rotary_pct 0.5 of d 8) as an unmarked constant; it is a buffer.
    ("gpt-neox-eager-torchscript.onnx", 25344),
    ("modernbert-eager-dynamo.onnx", 35040),
    ("whisper-sdpa-dynamo.onnx", 53248),
    ("t5-eager-torchscript.onnx", 45504),
    ("deberta-v2-eager-torchscript.onnx", 28032),
    # BertModel has 24416, of which the pooler (32·32 + 32 = 1056) is not in the
    # graph: the export returns last_hidden_state.
    ("bert-eager-torchscript.onnx", 24416 - 1056),
    # ViTModel likewise (its pooler is unused); dynamo folds the all-zero
    # attention mask into a [1, 1, 17, 17] initializer, which is no weight.
    ("vit-eager-dynamo.onnx", 24960 - 1056),
])
def test_parameters_match_the_torch_model(name, torch_params):
    from model_analyze.cost import cost_model

    static = name.startswith("vit")  # fixed 32×32 image: no sequence dim to bind
    ctx = prepare(str(ZOO / name), AnalyzeOptions() if static else AnalyzeOptions(seq_len=N))
    assert cost_model(ctx).params.elements("parameter") == torch_params


def test_tied_copy_is_reported_as_tied_embeddings():
    from model_analyze.cost import cost_model

    ctx = prepare(str(ZOO / "falcon-eager-dynamo.onnx"), AnalyzeOptions(seq_len=N))
    params = cost_model(ctx).params
    assert [t for t, _, _ in params.tied] == ["model.lm_head.weight"]
    copies = [t for t in params.tensors if t.role == "copy"]
    assert len(copies) == 1 and copies[0].numel == 128 * 32  # vocab × hidden


# -- attention sinks ---------------------------------------------------------------------------------
def test_gpt_oss_sinks_window_and_global_layers():
    # GptOssConfig(hidden 32, 4 heads, 2 kv heads, head_dim 8, sliding_window 4,
    # layer_types [sliding, full]): scores get a learned sink column concatenated
    # before an explicit x - max(x) softmax and sliced off after it.
    got = layers("gpt-oss-eager-torchscript.onnx")
    assert [(la.heads, la.kv_heads, la.head_dim) for la in got] == [(4, 2, 8)] * 2
    assert got[0].mask.family == "sliding_window" and got[0].mask.params["window"] == 4
    assert got[1].mask.family == "causal"
    assert all(any("sinks" in note for note in la.notes) for la in got)


def test_gpt_oss_first_attention_output_is_exactly_the_window():
    # At layer 0's P·V output, onnxruntime sees query i change with tokens
    # i-3..i: Σ min(i+1, 4) = 1 + 2 + 3 + 4·21 = 90 pairs at n = 24. The row
    # maximum subtracted before the softmax does not widen that.
    pytest.importorskip("onnxruntime")
    from model_analyze.verify import verify_model

    name = "gpt-oss-eager-torchscript.onnx"
    ctx = prepare(str(ZOO / name), AnalyzeOptions(seq_len=N))
    av = next(n for n in ctx.graph.walk() if n.id == attention_layers(ctx)[0].av_node)
    result = verify_model(str(ZOO / name), AnalyzeOptions(seq_len=N), outputs=[av.outputs[0]], positions=N)
    pair = next(p for p in result.pairs if p.label == "input_ids[1]")
    assert pair.sound and pair.observed == pair.predicted == 1 + 2 + 3 + 4 * (N - 3)
    # The whole model is causal (onnxruntime: 24·25/2 pairs) and the answer sound.
    whole = verified(name)
    ids = next(p for p in whole.pairs if p.label == "input_ids[1]")
    assert ids.sound and ids.observed == causal_pairs(N)


def test_ort_optimized_bert_with_multi_head_attention():
    # The same BERT through the optimizer with use_multi_head_attention: two
    # com.microsoft MultiHeadAttention nodes (num_heads 4), Q/K/V projected
    # outside, the padding mask as mask_index from EmbedLayerNormalization.
    got = layers("bert-eager-torchscript-ortmha.onnx")
    assert [la.kind for la in got] == ["ms.MultiHeadAttention"] * 2
    assert all((la.heads, la.kv_heads, la.head_dim) == (4, 4, 8) for la in got)
    assert all(la.mask.family == "bidirectional" for la in got)
    assert_tight("bert-eager-torchscript-ortmha.onnx", "input_ids[1]", N * N)


# -- KV cache ----------------------------------------------------------------------------------------
KV_DIMS = {"seq": 3, "past": 6, "total": 9}
"""3 new tokens after 6 cached ones; the mask input covers all 9."""


def test_kv_cache_export_mask_is_read_with_its_total_length():
    # LlamaForCausalLM (hidden 32, 4 heads, 2 kv heads) exported with a
    # DynamicCache built from past_key/value inputs [1, 2, past, 8] and an
    # attention_mask [1, total]: TorchScript cannot say total = past + seq, so the
    # mask's own length symbol must follow the evaluated length. Causal.
    ctx = prepare(str(ZOO / "llama-kv-eager-torchscript.onnx"), AnalyzeOptions(dims=KV_DIMS))
    got = attention_layers(ctx)
    assert [(la.heads, la.kv_heads, la.head_dim) for la in got] == [(4, 2, 8)] * 2
    assert all(la.mask.family == "causal" for la in got)


def test_kv_cache_export_is_sound_including_the_kv_head_axis():
    # onnxruntime: perturbing either kv head of a past key changes the logits
    # (each feeds 2 of the 4 query heads, merged into the output projection). The
    # static answer used to keep only kv head 0 (GQA's head axis is longer than
    # the kv-head axis it reads).
    pytest.importorskip("onnxruntime")
    from model_analyze.verify import verify_model

    result = verify_model(str(ZOO / "llama-kv-eager-torchscript.onnx"), AnalyzeOptions(dims=KV_DIMS), seeds=2)
    assert result.sound and result.complete, [(p.label, p.output) for p in result.pairs if not p.sound]
    heads = next(p for p in result.pairs if p.label == "past_key.0[1]" and p.output == "logits")
    assert heads.observed == 2 and heads.observed_at(0) == [0, 1] == heads.predicted_at(0)


def test_kv_cache_queries_see_every_cached_token_and_their_own_past():
    # onnxruntime: each of the 3 new tokens' logits change with all 6 cached
    # positions (3·6 pairs) and with new tokens 0..i (3·4/2 pairs). The mask was
    # read with no cache (causal); query i is key position i + past, so the
    # static answer is exactly that, not "query i sees keys 0..i".
    pytest.importorskip("onnxruntime")
    from model_analyze.verify import verify_model

    result = verify_model(str(ZOO / "llama-kv-eager-torchscript.onnx"), AnalyzeOptions(dims=KV_DIMS),
                          positions=9, seeds=2)
    by = {(p.label, p.output): p for p in result.pairs}
    cached, new = by[("past_key.0[2]", "logits")], by[("input_ids[1]", "logits")]
    assert cached.sound and cached.observed == cached.predicted == 3 * 6
    assert new.sound and new.observed == new.predicted == 3 * 4 // 2


# -- ONNX Attention (opset 23) -------------------------------------------------------------------------
def test_dynamo_opset23_sdpa_is_the_onnx_attention_op():
    # MistralForCausalLM (4 heads, 2 kv heads, sliding_window 5), SDPA exported by
    # dynamo at opset 23: each layer is one ONNX Attention node whose K/V were
    # already repeated to 4 heads (repeat_kv) and whose attn_mask is built in the
    # graph. Two windows of 5: output i sees tokens i-8..i, Σ min(i+1, 9) = 180
    # pairs at n = 24 (onnxruntime).
    name = "mistral-swa-sdpa-dynamo-op23.onnx"
    got = layers(name)
    assert [la.kind for la in got] == ["Attention"] * 2
    assert [(la.heads, la.kv_heads, la.head_dim) for la in got] == [(4, 2, 8)] * 2
    assert all(la.mask.family == "sliding_window" and la.mask.params["window"] == 5 for la in got)
    assert_tight(name, "input_ids[1]", sum(min(i + 1, 9) for i in range(N)))
