"""Headline metrics: the well-known quantities the verdict, the multi-model summary and
budgets read without knowing which analyzer produced them."""

from __future__ import annotations

from conftest import SAMPLES, shared_model
from model_analyze.report import HEADLINES
from model_analyze.runner import AnalyzeOptions, analyze


def test_mistral_headlines_at_4096():
    report = analyze(str(shared_model("mistral-7b.onnx")), AnalyzeOptions(seq_len=4096))
    n = 4096
    # hand derivation in test_hotspots.test_mistral_formula_by_hand: MACs per token
    # 7,110,393,856 and 262,144 per seq² (QKᵀ + AV over 32 layers × 32 heads × d_k 128)
    assert report.headline("macs").value == 7_110_393_856 * n + 262_144 * n * n
    # Mistral-7B-v0.1's published parameter count (weights, the rotary buffer excluded)
    assert report.headline("params").value == 7_241_732_096
    assert report.headline("weight_bytes").value == 4 * 7_241_732_096  # float32 export
    # dense QKᵀ + AV FLOPs: 2 · 2 · 32 layers · 32 heads · 128 · n²
    assert report.headline("attention_flops").value == 4 * 32 * 32 * 128 * n * n
    # window 4096 at n = 4096: the last position sees all 4096 positions, position 0 included
    assert report.headline("reach").value == n
    assert report.headline("coverage").value is True
    assert report.headline("receptive_field") is None  # no conv/pool
    for key in HEADLINES:
        metric = report.headline(key)
        assert metric is None or metric.headline == key


def test_convnet_receptive_field_headline():
    report = analyze(str(SAMPLES / "convnet.onnx"))
    # conv3 s1 p1 -> pool2 s2 -> conv3 s1 p1 -> pool2 s2 -> conv3 dilation 2 (k_eff 5) p2:
    # r = 1 + 2·1 + 1·1 + 2·2 + 1·2 + 4·4 = 26 (the same derivation as test_receptive_field)
    assert report.headline("receptive_field").value == 26
    assert report.headline("reach") is None
