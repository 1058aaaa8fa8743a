"""Export a zoo of tiny Hugging Face transformers to ONNX, with both exporters.

Why: the analyzer is judged on real exports it has never seen. This script builds
every model from a tiny config (random weights, nothing downloaded), exports it with
``torch.onnx.export(dynamo=True)`` and the TorchScript exporter (``dynamo=False``),
each with a dynamic sequence axis, and writes a ``manifest.json`` of the facts the
configs state (layers, heads, kv heads, head dim, window, causal, parameters) so the
analyzer's answers can be compared with the truth.

Needs ``torch`` and ``transformers`` (plus ``onnxscript`` for dynamo); never imported
by the tests. Usage::

    python samples/zoo/export_transformers.py OUTDIR [--only gpt2,llama] \
        [--exporter dynamo,torchscript] [--attn eager,sdpa] [--optimize] [--kv]

``--optimize`` also runs onnxruntime's transformer optimizer on the BERT and GPT-2
exports (fused com.microsoft Attention / SkipLayerNormalization / FastGelu …).
"""

from __future__ import annotations

import argparse
import json
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

SEQ = 8
"""Example sequence length (the exported axis stays dynamic)."""
VOCAB = 128


@dataclass
class Spec:
    """One zoo entry: how to build the model and what its config says."""

    name: str
    build: Callable[[str], Any]
    """attn_implementation -> torch model (random weights)."""
    inputs: str = "text"
    """text | text+mask | text+global (Longformer, token 0 global) | encdec | vision | vision-dynhw
    (dynamic H and W) | audio"""
    attns: tuple[str, ...] = ("eager", "sdpa")
    facts: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None
    """A static sequence length (no dynamic axis): exports whose layout is fixed per
    length (BigBird's block-sparse plan) or that unroll a recurrence over it (Mamba's
    and RecurrentGemma's scans under the TorchScript exporter)."""
    tune: Callable[[Any], None] | None = None
    """Adjust the random weights after :func:`_randomize` (slow state decay, so that
    the perturbation oracle can see a recurrence's whole reach above float noise)."""


def _tf() -> Any:
    import transformers

    return transformers


def _causal_lm(cfg_name: str, model_name: str, **cfg: Any) -> Callable[[str], Any]:
    def build(attn: str) -> Any:
        t = _tf()
        config = getattr(t, cfg_name)(**cfg)
        config._attn_implementation = attn
        config.use_cache = False
        return getattr(t, model_name).from_config(config, attn_implementation=attn) \
            if hasattr(getattr(t, model_name), "from_config") else getattr(t, model_name)(config)

    return build


def _slow_decay(name: str, value: float) -> Callable[[Any], None]:
    """Set every parameter called ``name`` to ``value``: Mamba's ``A_log`` or
    RecurrentGemma's ``recurrent_param`` near -inf keeps the state's decay per step
    near 1 (with random weights it is ~e^-1.3, and position t-8 changes position t by
    less than float noise — the oracle would miss a dependency that is there)."""
    def tune(model: Any) -> None:
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname.endswith(name):
                    p.fill_(value)

    return tune


def _calibrated(image: int) -> Callable[[Any], None]:
    """BatchNorm statistics of random images (``export_vision.calibrate_norms``):
    randomized running stats make an untrained conv stack's output constant, and
    the perturbation oracle then observes nothing."""
    def tune(model: Any) -> None:
        from export_vision import calibrate_norms

        calibrate_norms(model.model if hasattr(model, "model") else model, (1, 3, image, image))

    return tune


def _auto(cfg_name: str, model_name: str, **cfg: Any) -> Callable[[str], Any]:
    def build(attn: str) -> Any:
        t = _tf()
        config = getattr(t, cfg_name)(**cfg)
        model_cls = getattr(t, model_name)
        try:
            return model_cls._from_config(config, attn_implementation=attn)
        except (ValueError, TypeError):
            if attn != "eager":
                raise
            return model_cls(config)

    return build


DEC = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)

SMALL = dict(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
             num_key_value_heads=1, max_position_embeddings=64)
"""Fixture size (a few hundred KB even from the dynamo exporter)."""

SPECS: list[Spec] = [
    Spec("gpt2", _auto("GPT2Config", "GPT2LMHeadModel", vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4,
                       n_positions=64),
         facts=dict(layers=2, heads=4, kv_heads=4, head_dim=8, mask="causal")),
    Spec("llama", _auto("LlamaConfig", "LlamaForCausalLM", **DEC),
         facts=dict(layers=2, heads=4, kv_heads=2, head_dim=8, mask="causal")),
    Spec("llama-padmask", _auto("LlamaConfig", "LlamaForCausalLM", **DEC), inputs="text+mask",
         facts=dict(layers=2, heads=4, kv_heads=2, head_dim=8, mask="causal + padding input")),
    Spec("mistral-swa", _auto("MistralConfig", "MistralForCausalLM", sliding_window=5, **DEC),
         facts=dict(layers=2, heads=4, kv_heads=2, head_dim=8, mask="sliding_window", window=5)),
    Spec("qwen2-swa", _auto("Qwen2Config", "Qwen2ForCausalLM", use_sliding_window=True, sliding_window=6,
                            max_window_layers=1, **DEC),
         facts=dict(layers=2, heads=4, kv_heads=2, head_dim=8, mask="layer 0 causal, layer 1 window 6")),
    Spec("gemma2", _auto("Gemma2Config", "Gemma2ForCausalLM", sliding_window=4, attn_logit_softcapping=50.0,
                         final_logit_softcapping=30.0, query_pre_attn_scalar=16, head_dim=8, **DEC),
         facts=dict(layers=2, heads=4, kv_heads=2, head_dim=8, scale=16 ** -0.5, softcap=50.0,
                    mask="layer 0 window 4, layer 1 causal")),
    Spec("gemma3", _auto("Gemma3TextConfig", "Gemma3ForCausalLM", sliding_window=4, head_dim=8,
                         query_pre_attn_scalar=8, **{**DEC, "num_hidden_layers": 3},
                         layer_types=["sliding_attention", "full_attention", "sliding_attention"]),
         facts=dict(layers=3, heads=4, kv_heads=2, head_dim=8, mask="window 4 / causal / window 4")),
    Spec("phi3-swa", _auto("Phi3Config", "Phi3ForCausalLM", sliding_window=5, pad_token_id=0, **DEC),
         facts=dict(layers=2, heads=4, kv_heads=2, head_dim=8, mask="sliding_window", window=5)),
    Spec("gpt-neox", _auto("GPTNeoXConfig", "GPTNeoXForCausalLM", vocab_size=VOCAB, hidden_size=32,
                           intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           max_position_embeddings=256, rotary_pct=0.5),
         facts=dict(layers=2, heads=4, kv_heads=4, head_dim=8, mask="causal")),
    Spec("opt", _auto("OPTConfig", "OPTForCausalLM", vocab_size=VOCAB, hidden_size=32, ffn_dim=64,
                      num_hidden_layers=2, num_attention_heads=4, word_embed_proj_dim=32,
                      max_position_embeddings=256),
         facts=dict(layers=2, heads=4, kv_heads=4, head_dim=8, mask="causal")),
    Spec("falcon", _auto("FalconConfig", "FalconForCausalLM", vocab_size=VOCAB, hidden_size=32,
                         num_hidden_layers=2, num_attention_heads=4, new_decoder_architecture=True,
                         num_kv_heads=2),
         facts=dict(layers=2, heads=4, kv_heads=2, head_dim=8, mask="causal")),
    Spec("falcon-alibi", _auto("FalconConfig", "FalconForCausalLM", vocab_size=VOCAB, hidden_size=32,
                               num_hidden_layers=2, num_attention_heads=4, alibi=True, multi_query=True),
         facts=dict(layers=2, heads=4, kv_heads=1, head_dim=8, mask="causal (ALiBi bias)")),
    Spec("bloom", _auto("BloomConfig", "BloomForCausalLM", vocab_size=VOCAB, hidden_size=32, n_layer=2,
                        n_head=4),
         facts=dict(layers=2, heads=4, kv_heads=4, head_dim=8, mask="causal (ALiBi bias)")),
    Spec("mpt", _auto("MptConfig", "MptForCausalLM", vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=4,
                      expansion_ratio=2, max_seq_len=256),
         facts=dict(layers=2, heads=4, kv_heads=4, head_dim=8, mask="causal (ALiBi bias)")),
    Spec("gpt-bigcode", _auto("GPTBigCodeConfig", "GPTBigCodeForCausalLM", vocab_size=VOCAB, n_embd=32,
                              n_layer=2, n_head=4, n_positions=256, multi_query=True),
         facts=dict(layers=2, heads=4, kv_heads=1, head_dim=8, mask="causal")),
    Spec("gptj", _auto("GPTJConfig", "GPTJForCausalLM", vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4,
                       n_positions=256, rotary_dim=4),
         facts=dict(layers=2, heads=4, kv_heads=4, head_dim=8, mask="causal")),
    Spec("starcoder2-swa", _auto("Starcoder2Config", "Starcoder2ForCausalLM", sliding_window=5, **DEC),
         facts=dict(layers=2, heads=4, kv_heads=2, head_dim=8, mask="sliding_window", window=5)),
    Spec("mixtral-swa", _auto("MixtralConfig", "MixtralForCausalLM", sliding_window=5, num_local_experts=4,
                              num_experts_per_tok=2, experts_implementation="eager", **DEC),
         facts=dict(layers=2, heads=4, kv_heads=2, head_dim=8, mask="sliding_window", window=5,
                    note="MoE router softmax is not attention")),
    Spec("llama4-chunked", _auto("Llama4TextConfig", "Llama4ForCausalLM", attention_chunk_size=4,
                                 num_local_experts=2, num_experts_per_tok=1, intermediate_size_mlp=64,
                                 head_dim=8, no_rope_layers=[1, 0],
                                 **DEC),
         facts=dict(layers=2, heads=4, kv_heads=2, head_dim=8, mask="layer 0 chunked 4, layer 1 causal")),
    Spec("qwen3", _auto("Qwen3Config", "Qwen3ForCausalLM", head_dim=8, **DEC),
         facts=dict(layers=2, heads=4, kv_heads=2, head_dim=8, mask="causal", note="QK-norm")),
    Spec("gpt-oss", _auto("GptOssConfig", "GptOssForCausalLM", head_dim=8, sliding_window=4,
                          num_local_experts=2, num_experts_per_tok=1, experts_implementation="eager",
                          layer_types=["sliding_attention", "full_attention"], **DEC),
         attns=("eager",),
         facts=dict(layers=2, heads=4, kv_heads=2, head_dim=8, mask="layer 0 window 4, layer 1 causal",
                    note="attention sinks: a learned logit column concatenated before the softmax")),
    Spec("bert", _auto("BertConfig", "BertModel", vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=4, intermediate_size=64, max_position_embeddings=64),
         inputs="text+mask", facts=dict(layers=2, heads=4, kv_heads=4, head_dim=8, mask="bidirectional")),
    Spec("roberta", _auto("RobertaConfig", "RobertaModel", vocab_size=VOCAB, hidden_size=32,
                          num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                          max_position_embeddings=64),
         inputs="text+mask", facts=dict(layers=2, heads=4, kv_heads=4, head_dim=8, mask="bidirectional")),
    Spec("distilbert", _auto("DistilBertConfig", "DistilBertModel", vocab_size=VOCAB, dim=32, n_layers=2,
                             n_heads=4, hidden_dim=64, max_position_embeddings=64),
         inputs="text+mask", facts=dict(layers=2, heads=4, kv_heads=4, head_dim=8, mask="bidirectional")),
    Spec("deberta-v2", _auto("DebertaV2Config", "DebertaV2Model", vocab_size=VOCAB, hidden_size=32,
                             num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                             max_position_embeddings=64, relative_attention=True,
                             pos_att_type=["p2c", "c2p"], position_buckets=8),
         inputs="text+mask", attns=("eager",),
         facts=dict(layers=2, heads=4, kv_heads=4, head_dim=8, mask="bidirectional",
                    scale=(8 * 3) ** -0.5)),
    Spec("modernbert", _auto("ModernBertConfig", "ModernBertModel", vocab_size=VOCAB, hidden_size=32,
                             num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                             global_attn_every_n_layers=3, local_attention=6, pad_token_id=0,
                             max_position_embeddings=256),
         inputs="text+mask",
         facts=dict(layers=3, heads=4, kv_heads=4, head_dim=8,
                    mask="layer 0 global, layers 1-2 local window 6 (3 each side)")),
    Spec("t5", _auto("T5Config", "T5Model", vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                     num_heads=4, relative_attention_num_buckets=8, decoder_start_token_id=0),
         inputs="encdec", attns=("eager",),
         facts=dict(layers="2 enc self + 2 dec self + 2 cross", heads=4, head_dim=8, scale=1.0,
                    mask="enc bidirectional, dec causal, cross full")),
    Spec("bart", _auto("BartConfig", "BartModel", vocab_size=VOCAB, d_model=32, encoder_layers=2,
                       decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                       encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64),
         inputs="encdec",
         facts=dict(layers="2 enc self + 2 dec self + 2 cross", heads=4, head_dim=8,
                    mask="enc bidirectional, dec causal, cross full")),
    Spec("whisper", _auto("WhisperConfig", "WhisperModel", vocab_size=VOCAB, d_model=32, encoder_layers=2,
                          decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                          encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=8,
                          max_source_positions=16, max_target_positions=64, pad_token_id=0,
                          bos_token_id=1, eos_token_id=2, decoder_start_token_id=1),
         inputs="audio",
         facts=dict(layers="2 enc self + 2 dec self + 2 cross", heads=4, head_dim=8,
                    mask="enc bidirectional (16 frames), dec causal, cross full")),
    Spec("vit", _auto("ViTConfig", "ViTModel", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, image_size=32, patch_size=8, num_channels=3),
         inputs="vision",
         facts=dict(layers=2, heads=4, kv_heads=4, head_dim=8, mask="bidirectional (17 tokens)")),
    Spec("longformer", _auto("LongformerConfig", "LongformerModel", vocab_size=VOCAB, hidden_size=32,
                             num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                             attention_window=4, max_position_embeddings=260, pad_token_id=1),
         inputs="text+mask", attns=("eager",),
         facts=dict(layers=2, heads=4, head_dim=8, mask="local window 4 (2 each side) + global")),
    Spec("longformer-tiny", _auto("LongformerConfig", "LongformerModel", vocab_size=VOCAB, hidden_size=16,
                                  num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                  attention_window=4, max_position_embeddings=260, pad_token_id=1),
         inputs="text+mask", attns=("eager",),
         facts=dict(layers=1, heads=2, head_dim=8, mask="local window 4 (2 each side), no global token")),
    Spec("bigbird", _auto("BigBirdConfig", "BigBirdModel", vocab_size=VOCAB, hidden_size=32,
                          num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                          attention_type="block_sparse", block_size=2, num_random_blocks=1,
                          max_position_embeddings=256),
         inputs="text+mask", attns=("eager",),
         facts=dict(layers=2, heads=4, head_dim=8, mask="block sparse (falls back to full when short)")),
    Spec("mamba", _auto("MambaConfig", "MambaForCausalLM", vocab_size=VOCAB, hidden_size=32, state_size=4,
                        num_hidden_layers=2, expand=2, conv_kernel=4),
         attns=("eager",), facts=dict(layers=0, mask="no attention; causal conv + scan")),
    Spec("mobilevit", _auto("MobileViTConfig", "MobileViTModel", num_channels=3, image_size=64, patch_size=2,
                            hidden_sizes=[16, 24, 32], neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64],
                            num_attention_heads=2, mlp_ratio=2.0, expand_ratio=2.0),
         inputs="vision", attns=("eager",), tune=_calibrated(64),
         facts=dict(layers=9, heads=2, mask="bidirectional over 2x2-patch groups (unfold/fold reshapes)")),
    Spec("mobilevit-dynhw", _auto("MobileViTConfig", "MobileViTModel", num_channels=3, image_size=64, patch_size=2,
                                  hidden_sizes=[16, 24, 32], neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64],
                                  num_attention_heads=2, mlp_ratio=2.0, expand_ratio=2.0),
         inputs="vision-dynhw", attns=("eager",), tune=_calibrated(64),
         facts=dict(layers=9, heads=2, mask="as mobilevit, exported with dynamic H and W")),
    # -- issue 12: MoE routing, block-sparse layouts, unrolled recurrences ------------------------
    Spec("mixtral-moe", _auto("MixtralConfig", "MixtralForCausalLM", sliding_window=5, num_local_experts=4,
                              num_experts_per_tok=2, experts_implementation="batched_mm", **SMALL),
         attns=("eager",),
         facts=dict(layers=2, heads=2, kv_heads=1, head_dim=8, mask="sliding_window", window=5,
                    note="batched_mm experts: combine is a ReduceSum over the top-k axis")),
    Spec("llama4-chunked-moe", _auto("Llama4TextConfig", "Llama4ForCausalLM", attention_chunk_size=4,
                                     num_local_experts=2, num_experts_per_tok=1, intermediate_size_mlp=32,
                                     head_dim=8, no_rope_layers=[0, 0],
                                     layer_types=["chunked_attention", "chunked_attention"], **SMALL),
         attns=("eager",),
         facts=dict(layers=2, heads=2, kv_heads=1, head_dim=8, mask="chunked 4 (both layers)",
                    note="NoPE layers: the complex RoPE does not export")),
    Spec("llama4-chunked-causal-moe", _auto("Llama4TextConfig", "Llama4ForCausalLM", attention_chunk_size=4,
                                            num_local_experts=2, num_experts_per_tok=1,
                                            intermediate_size_mlp=32, head_dim=8, no_rope_layers=[0, 0],
                                            layer_types=["chunked_attention", "full_attention"], **SMALL),
         attns=("eager",),
         facts=dict(layers=2, heads=2, kv_heads=1, head_dim=8, mask="layer 0 chunked 4, layer 1 causal")),
    Spec("bigbird-s32", _auto("BigBirdConfig", "BigBirdModel", vocab_size=VOCAB, hidden_size=16,
                              num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                              attention_type="block_sparse", block_size=2, num_random_blocks=1,
                              max_position_embeddings=64),
         inputs="text+mask", attns=("eager",), seq=32,
         facts=dict(layers=1, heads=2, head_dim=8, block=2,
                    mask="block sparse: first/last block global, 3-block band, random blocks off in eval")),
    Spec("bigbird-s32-l2", _auto("BigBirdConfig", "BigBirdModel", vocab_size=VOCAB, hidden_size=16,
                                 num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                                 attention_type="block_sparse", block_size=2, num_random_blocks=1,
                                 max_position_embeddings=64),
         inputs="text+mask", attns=("eager",), seq=32,
         facts=dict(layers=2, heads=2, head_dim=8, block=2, mask="block sparse (as bigbird-s32), 2 layers")),
    Spec("mamba-s16", _auto("MambaConfig", "MambaForCausalLM", vocab_size=VOCAB, hidden_size=16, state_size=4,
                            num_hidden_layers=1, expand=2, conv_kernel=4),
         attns=("eager",), seq=16, tune=_slow_decay("A_log", -6.0),
         facts=dict(layers=0, mask="no attention; causal conv + unrolled scan")),
    Spec("recurrent-gemma-s16", _auto("RecurrentGemmaConfig", "RecurrentGemmaForCausalLM", vocab_size=VOCAB,
                                      hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=1, head_dim=8,
                                      lru_width=16, attention_window_size=4, conv1d_width=4,
                                      block_types=["recurrent", "attention"]),
         attns=("eager",), seq=16, tune=_slow_decay("recurrent_param", -9.0),
         facts=dict(layers=1, mask="recurrent block (causal conv + RG-LRU scan), then local attention 4")),
    # Chunked SSD (state-space duality): the scan is computed in chunks of 4 (segsum masks
    # within a chunk, a cumulative state between chunks) — causal, however it is grouped.
    Spec("mamba2", _auto("Mamba2Config", "Mamba2ForCausalLM", vocab_size=VOCAB, hidden_size=16, num_heads=4,
                         head_dim=8, state_size=4, n_groups=1, expand=2, conv_kernel=4, chunk_size=4,
                         num_hidden_layers=1),
         attns=("eager",), tune=_slow_decay("A_log", -6.0),
         facts=dict(layers=0, mask="no attention; causal conv + chunked SSD (chunk 4)")),
    Spec("bamba", _auto("BambaConfig", "BambaForCausalLM", vocab_size=VOCAB, hidden_size=16,
                        intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                        attn_layer_indices=[1], mamba_n_heads=4, mamba_d_head=8, mamba_n_groups=1,
                        mamba_d_state=4, mamba_d_conv=4, mamba_expand=2, mamba_chunk_size=4,
                        max_position_embeddings=64),
         attns=("eager",), tune=_slow_decay("A_log", -6.0),
         facts=dict(layers=1, mask="layer 0 Mamba2 (chunked SSD, chunk 4), layer 1 causal attention")),
]


class _Wrap(torch.nn.Module):
    """Plain tensor in, first tensor out: no cache, no ModelOutput."""

    def __init__(self, model: Any, kind: str) -> None:
        super().__init__()
        self.model = model
        self.kind = kind

    def forward(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        args = (a, b)
        kw: dict[str, Any] = {"return_dict": True}
        if self.kind in ("text", "text+mask", "text+global"):
            kw["input_ids"] = args[0]
            if self.kind != "text":
                kw["attention_mask"] = args[1]
            if self.kind == "text+global":  # Longformer: position 0 is a global token (a constant)
                glob = torch.zeros_like(args[0])
                glob[:, 0] = 1
                kw["global_attention_mask"] = glob
        elif self.kind == "encdec":
            kw["input_ids"], kw["decoder_input_ids"] = args
        elif self.kind == "audio":
            kw["input_features"], kw["decoder_input_ids"] = args
        elif self.kind.startswith("vision"):
            kw["pixel_values"] = args[0]
        if not self.kind.startswith("vision") and _accepts(self.model, "use_cache"):
            kw["use_cache"] = False
        out = self.model(**kw)
        return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


def _accepts(model: Any, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _randomize(model: Any) -> None:
    """Trained-looking weights: HF initialises biases to 0 and norms to 1, and the
    ONNX optimizer would then merge identical initializers, which no real
    checkpoint has (parameter counts would come out short)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05 + (1.0 if p.ndim == 1 else 0.0))


def example(spec: Spec, model: Any, kind: str) -> tuple[tuple[torch.Tensor, ...], list[str],
                                                         dict[str, dict[int, str]]]:
    """Example inputs, input names and the dynamic axes (sequence)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, VOCAB, (1, spec.seq or SEQ), generator=g)
    if spec.seq and kind == "text":  # static length: no dynamic axes
        return (ids,), ["input_ids"], {}
    if spec.seq and kind in ("text+mask", "text+global"):
        return (ids, torch.ones_like(ids)), ["input_ids", "attention_mask"], {}
    if kind == "text":
        return (ids,), ["input_ids"], {"input_ids": {1: "seq"}}
    if kind in ("text+mask", "text+global"):
        return (ids, torch.ones_like(ids)), ["input_ids", "attention_mask"], \
            {"input_ids": {1: "seq"}, "attention_mask": {1: "seq"}}
    if kind == "encdec":
        dec = torch.randint(3, VOCAB, (1, 5), generator=g)
        return (ids, dec), ["input_ids", "decoder_input_ids"], \
            {"input_ids": {1: "seq"}, "decoder_input_ids": {1: "dec_seq"}}
    if kind == "audio":
        cfg = model.config
        feats = torch.randn(1, cfg.num_mel_bins, 2 * cfg.max_source_positions, generator=g)
        dec = torch.randint(3, VOCAB, (1, 5), generator=g)
        return (feats, dec), ["input_features", "decoder_input_ids"], {"decoder_input_ids": {1: "dec_seq"}}
    if kind in ("vision", "vision-dynhw"):
        cfg = model.config
        px = torch.randn(1, cfg.num_channels, cfg.image_size, cfg.image_size, generator=g)
        return (px,), ["pixel_values"], {"pixel_values": {2: "height", 3: "width"}} if kind == "vision-dynhw" else {}
    raise ValueError(kind)


def export(spec: Spec, attn: str, exporter: str, out: Path, opset: int = 20) -> dict[str, Any]:
    torch.manual_seed(0)
    model = spec.build(attn).eval()
    _randomize(model)
    if spec.tune is not None:
        spec.tune(model)
    kind = spec.inputs
    if exporter == "torchscript" and kind == "text":
        # transformers >= 5 without an attention mask computes packed-sequence ids
        # (torch.diff, cumsum over bool) that the TorchScript exporter cannot
        # emit as a valid graph; optimum-style exports pass the mask anyway.
        kind = "text+mask"
    args, names, axes = example(spec, model, kind)
    wrap = _Wrap(model, kind).eval()
    params = sum(p.numel() for p in model.parameters())
    suffix = f"-op{opset}" if exporter == "dynamo" and opset != 20 else ""
    path = out / f"{spec.name}-{attn}-{exporter}{suffix}.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            dyn = {n: {ax: torch.export.Dim.DYNAMIC for ax in a} for n, a in axes.items()}
            dyn_shapes = tuple(dyn.get(n) for n in names)
            onnx_program = torch.onnx.export(wrap, args, dynamo=True, input_names=names,
                                             output_names=["output"], dynamic_shapes=dyn_shapes,
                                             opset_version=opset, external_data=False)
            onnx_program.save(str(path), external_data=False)
        else:
            torch.onnx.export(wrap, args, str(path), dynamo=False, input_names=names,
                              output_names=["output"], dynamic_axes=axes, opset_version=17,
                              external_data=False)
    cfg = model.config.to_diff_dict() if hasattr(model.config, "to_diff_dict") else {}
    return {"file": path.name, "model": spec.name, "class": type(model).__name__, "attn": attn,
            "exporter": exporter, "parameters": params, "facts": spec.facts,
            "config": {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool, list))},
            "bytes": path.stat().st_size}


def optimize(entry: dict[str, Any], out: Path, model_type: str, heads: int, hidden: int,
             mha: bool = False) -> dict[str, Any]:
    """onnxruntime's transformer optimizer: the fused graphs runtimes really use
    (``mha``: fuse to MultiHeadAttention instead of Attention)."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    src = out / entry["file"]
    dst = out / src.name.replace(".onnx", "-ortmha.onnx" if mha else "-ortopt.onnx")
    options = FusionOptions(model_type)
    options.use_multi_head_attention = mha
    opt = optimize_model(str(src), model_type=model_type, num_heads=heads, hidden_size=hidden, opt_level=1,
                         optimization_options=options)
    opt.save_model_to_file(str(dst))
    return {**entry, "file": dst.name, "exporter": entry["exporter"] + "+ort-optimizer",
            "fused_ops": sorted({n.op_type for n in opt.model.graph.node if n.domain == "com.microsoft"}),
            "bytes": dst.stat().st_size}


class KvWrapper(torch.nn.Module):
    """KV_WRAPPER: a decoder step with a cache, as deployment exports have it —
    ``DynamicCache`` built from flat ``past_key.N``/``past_value.N`` inputs, logits
    and the present keys/values out (optimum's ``with_past`` layout)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        for layer in range(len(past) // 2):
            cache.update(past[2 * layer], past[2 * layer + 1], layer)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, past_key_values=cache, use_cache=True)
        present = [t for lay in out.past_key_values.layers for t in (lay.keys, lay.values)]
        return (out.logits, *present)


KV_SPECS = ("llama", "mistral-swa")


def export_kv(spec: Spec, exporter: str, out: Path, past: int = 6, seq: int = 3) -> dict[str, Any]:
    """Export ``spec`` as one cached decoding step (eager attention)."""
    torch.manual_seed(0)
    model = spec.build("eager").eval()
    _randomize(model)
    cfg = model.config
    layers, kv = cfg.num_hidden_layers, cfg.num_key_value_heads
    d = cfg.hidden_size // cfg.num_attention_heads
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, VOCAB, (1, seq), generator=g)
    mask = torch.ones(1, past + seq, dtype=torch.long)
    cache = [torch.randn(1, kv, past, d, generator=g) for _ in range(2 * layers)]
    names = ["input_ids", "attention_mask"] + [f"past_{w}.{i}" for i in range(layers) for w in ("key", "value")]
    outs = ["logits"] + [f"present_{w}.{i}" for i in range(layers) for w in ("key", "value")]
    path = out / f"{spec.name}-kv-eager-{exporter}.onnx"
    wrap = KvWrapper(model).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            dyn = torch.export.Dim.DYNAMIC
            shapes = ({1: dyn}, {1: dyn}, *({2: dyn} for _ in cache))
            program = torch.onnx.export(wrap, (ids, mask, *cache), dynamo=True, input_names=names,
                                        output_names=outs, dynamic_shapes=shapes, opset_version=20,
                                        external_data=False)
            program.save(str(path), external_data=False)
        else:
            axes = {"input_ids": {1: "seq"}, "attention_mask": {1: "total"}}
            axes.update({n: {2: "past"} for n in names[2:]})
            torch.onnx.export(wrap, (ids, mask, *cache), str(path), dynamo=False, input_names=names,
                              output_names=outs, dynamic_axes=axes, opset_version=17)
    return {"file": path.name, "model": spec.name + "-kv", "class": type(model).__name__, "attn": "eager",
            "exporter": exporter, "parameters": sum(p.numel() for p in model.parameters()),
            "facts": {**spec.facts, "past": past, "seq": seq}, "bytes": path.stat().st_size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", default="")
    ap.add_argument("--exporter", default="dynamo,torchscript")
    ap.add_argument("--attn", default="eager,sdpa")
    ap.add_argument("--optimize", action="store_true")
    ap.add_argument("--opset", type=int, default=20,
                    help="dynamo opset (23+: SDPA becomes the ONNX Attention op; files get an -opN suffix)")
    ap.add_argument("--kv", action="store_true", help="also export cached decoding steps of " + ", ".join(KV_SPECS))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    only = {s for s in a.only.split(",") if s}
    manifest_path = a.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for spec in SPECS:
        if only and spec.name not in only:
            continue
        for attn in spec.attns:
            if attn not in a.attn.split(","):
                continue
            for exporter in a.exporter.split(","):
                key = f"{spec.name}-{attn}-{exporter}"
                try:
                    entry = export(spec, attn, exporter, a.out, a.opset)
                    key = entry["file"][:-5]
                    manifest[key] = entry
                    print(f"ok    {key}  {entry['bytes']:,} B  params {entry['parameters']:,}")
                except Exception as exc:
                    manifest[key] = {"model": spec.name, "attn": attn, "exporter": exporter,
                                     "error": f"{type(exc).__name__}: {str(exc)[:400]}"}
                    print(f"FAIL  {key}  {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
                    (a.out / f"{key}.err").write_text(traceback.format_exc())
                    continue
                if a.optimize and spec.name in ("bert", "gpt2") and attn == "eager":
                    mtype = "bert" if spec.name == "bert" else "gpt2"
                    for mha in (False, True) if mtype == "bert" else (False,):
                        try:
                            opt = optimize(entry, a.out, mtype, 4, 32, mha)
                            manifest[opt["file"][:-5]] = opt
                            print(f"ok    {opt['file']}  fused {opt['fused_ops']}")
                        except Exception as exc:
                            print(f"FAIL  optimize {key}: {type(exc).__name__}: {exc}")
    for spec in SPECS if a.kv else ():
        if spec.name not in KV_SPECS or (only and spec.name not in only):
            continue
        for exporter in a.exporter.split(","):
            key = f"{spec.name}-kv-eager-{exporter}"
            try:
                manifest[key] = export_kv(spec, exporter, a.out)
                print(f"ok    {key}")
            except Exception as exc:
                manifest[key] = {"model": spec.name + "-kv", "exporter": exporter,
                                 "error": f"{type(exc).__name__}: {str(exc)[:400]}"}
                print(f"FAIL  {key}  {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
