"""The hotspots analyzer against published figures and hand derivations.

Conv nets and the BERT encoder come from ``samples/nets.py`` (faithful builds of
the reference implementations, weights as metadata only); the LLMs are the
shared exports in ``../shared/models``. Each expected value is a published
figure or is derived by hand in the comment beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import nets
import pytest

from builders import transformer
from conftest import shared_model
from model_analyze.attention.model import AttentionLayer, MaskInfo
from model_analyze.cost import cost_model
from model_analyze.plugins import hotspots
from model_analyze.runner import AnalyzeOptions, prepare
from model_analyze.tokenflow.deps import CAUSAL, window

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "analyzer" / "schema" /
                     "report.schema.json").read_text())


def analyze(model, **dims):
    ctx = prepare(model, AnalyzeOptions(dims=dims))
    return ctx, cost_model(ctx)


# -- conv nets: published figures -------------------------------------------------------
@pytest.fixture(scope="module")
def conv_nets():
    return {name: analyze(nets.NETS[name](weights="shape"))[1]
            for name in ("alexnet", "vgg16", "resnet18", "resnet50", "resnet50_v1_slim", "mobilenet_v2")}


# name, published GMACs @224 (torchvision model card "GFLOPS", which are MACs), tolerance,
# published parameter count (torchvision weights table)
PUBLISHED = [
    ("resnet50", 4.09, 0.01, 25_557_032),
    ("resnet18", 1.81, 0.01, 11_689_512),
    ("vgg16", 15.47, 0.01, 138_357_544),
    ("alexnet", 0.71, 0.01, 61_100_840),
    ("mobilenet_v2", 0.31, 0.035, 3_504_872),  # METRICS: 0.30–0.32 G
]


@pytest.mark.parametrize("name, gmacs, tol, params", PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_conv_nets_match_published_figures(conv_nets, name, gmacs, tol, params):
    m = conv_nets[name]
    assert m.value(m.graph.macs) == pytest.approx(gmacs * 1e9, rel=tol)  # at the stated default batch = 1
    assert m.params.elements("parameter") == params
    assert not m.graph.unknown_ops and not m.graph.partial


def _bottleneck_macs(stride_in_last_unit: bool) -> int:
    """Independent tally of ResNet-50 conv MACs at 224 (fc included). A unit with
    input ``r_in``² × ``c_in``, base width b, output ``r_out``²: conv1 1×1
    r_in²·c_in·b (TF-slim / torchvision alike), conv2 3×3 r_out²·9·b², conv3 1×1
    r_out²·b·4b, projection shortcut r_out²·c_in·4b when the depth changes."""
    total = 112 * 112 * 3 * 64 * 49  # conv1 7×7/2
    r, c = 56, 64
    for blk, (b, units) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
        for u in range(units):
            if stride_in_last_unit:  # TF-slim: blocks 1-3 stride 2 in their last unit
                stride = 2 if (u == units - 1 and blk < 3) else 1
            else:  # torchvision v1.5: stages 2-4 stride 2 in their first unit
                stride = 2 if (u == 0 and blk > 0) else 1
            r_out = r // stride
            total += r * r * c * b + r_out * r_out * 9 * b * b + r_out * r_out * b * 4 * b
            if c != 4 * b:
                total += r_out * r_out * c * 4 * b
            r, c = r_out, 4 * b
    return total + 2048 * 1000


def test_resnet50_variants_by_independent_tally(conv_nets):
    assert conv_nets["resnet50"].value(conv_nets["resnet50"].graph.macs) == _bottleneck_macs(False)
    slim = conv_nets["resnet50_v1_slim"]
    assert slim.value(slim.graph.macs) == _bottleneck_macs(True)
    assert slim.params.elements("parameter") == 25_557_032  # same layers, other stride placement
    # BatchNorm running mean/var are buffers, not parameters: 2 × (BN channels 26,560)
    assert slim.params.elements("buffer") == 53_120


# -- BERT-base ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bert_base():
    return analyze(nets.bert(weights="shape"), seq=128, batch=1)


def test_bert_base_matches_published_figures(bert_base):
    _, m = bert_base
    # per token per layer: Q, K, V, O 4·768² + FFN 2·768·3072 = 7,077,888 MACs;
    # attention QKᵀ + AV per layer: 2·seq²·768; pooler: one 768×768 Gemm per sequence.
    # @128: 12·128·7,077,888 + 12·2·128²·768 + 768² = 11,174,215,680 ≈ 11.17 G
    assert m.value(m.graph.macs) == 11_174_215_680
    assert m.value(m.graph.macs) == pytest.approx(11.17e9, rel=0.01)
    assert m.graph.macs.fmt() == "589,824·batch + 84,934,656·batch·seq + 18,432·batch·seq²"
    # 109,482,240 = HF bert-base-uncased BertModel incl. the pooler (768·768 + 768):
    # embeddings 23,837,184 + 12 layers × 7,087,872 + pooler 590,592
    assert m.params.elements("parameter") == 109_482_240


# -- the shared exports: hand derivations from their configs -----------------------------
# Configs (models README; intermediate 128 and vocab 128 from the initializer shapes):
# hidden 64, 4 heads (d 16), 2 layers. MACs per token: Q,K,V,O + 3 MLP projections
# (+ the LM head, 64·128 = 8,192); attention QKᵀ + AV 2 layers · 2 · 4 heads · 16 = 256·seq².
# FLOPs = 2·MACs + element-wise ops, counted from the graph with the catalog constants
# (Sigmoid 4, Softmax 5, LayerNormalization 8, Gelu 6, everything else 1 per element):
#   tiny-llama, per token: 5 RMSNorms (Pow, ReduceMean over 64, Mul, Mul: 4·64, plus Add,
#   Sqrt, Reciprocal on one value) 5·259 = 1,295; RoPE q and k (Mul 64, Neg 32, Mul 64,
#   Add 64) 2 layers · 2 · 224 = 896; residual adds 2·2·64 = 256; SwiGLU (Sigmoid 4·128,
#   Mul 128, Mul 128) 2·768 = 1,536; the cos/sin table (Mul 8, Cos 16, Sin 16) 40; the
#   position/mask prelude on [seq] vectors 6 ops → 2·90,112 + 4,029 = 184,253 per token.
#   Quadratic: 2·256 + 2 layers · 4 heads · (scale Mul 1 + mask Add 1 + Softmax 5) + the
#   5 element-wise mask ops on [seq, seq] (Equal, And, LessOrEqual, And, Where) = 573.
#   Two scalar ops (a Sub and an Add on one element) give the constant 2.
#   tiny-mistral-swa: K/V have 2 heads (k_proj 64×32): MACs per layer 2·4,096 + 2·2,048 +
#   3·8,192 = 36,864; RoPE on k costs 112, not 224 (−224 per token); 7 prelude ops on
#   [seq]; 8 mask ops on [seq, seq] (the window adds Greater and And).
#   tiny-bert (BertModel, batch × seq tokens): MACs per token 2·(4·4,096 + 2·8,192)
#   = 65,536; element-wise per token: embeddings (2 adds 128, LayerNorm 8·64) 640; per
#   layer Q,K,V,O bias adds 256, FFN bias adds 128 + 64, residual adds 128, 2 LayerNorms
#   1,024, Gelu 6·128 = 768 → 2,368; + 1 (a Max over the mask) → 131,072 + 640 + 4,736 + 1
#   = 136,449; quadratic 512 + 2 layers · 4 heads · 7 + 2 mask ops (And, Where) = 570;
#   plus 2·seq (GreaterOrEqual, And on a [seq] vector).
SHARED = [
    ("tiny-llama.onnx", "90,112·seq + 256·seq²", "2 + 184,253·seq + 573·seq²", 98_368, 8),
    ("tiny-mistral-swa.onnx", "81,920·seq + 256·seq²", "2 + 167,646·seq + 576·seq²", 90_176, 8),
    ("tiny-bert.onnx", "65,536·batch·seq + 256·batch·seq²", "2·seq + 136,449·batch·seq + 570·batch·seq²",
     106_880, 512),
]
# Parameters: tiny-llama 128·64 embedding + 2·40,960 + 8,192 LM head + 64 — the exporter
# stored the five all-ones RMSNorm weights as one shared tensor (counted once); buffer:
# rotary inv_freq [d/2 = 8]. tiny-mistral-swa: 8,192 + 2·36,864 + 8,192 + 64.
# tiny-bert: embeddings 8,192 + 512·64 + 2·64, layers 2·32,768, and the exporter's shared
# LayerNorm weight (ones, 64), shared zero bias (64) and intermediate bias (128);
# buffer: position_ids [1, 512].


@pytest.mark.parametrize("name, macs, flops, params, buffers", SHARED, ids=[s[0] for s in SHARED])
def test_tiny_shared_models_by_hand(name, macs, flops, params, buffers):
    _, m = analyze(str(shared_model(name)))
    assert m.graph.macs.fmt() == macs
    assert m.graph.flops.fmt() == flops
    assert m.params.elements("parameter") == params
    assert m.params.elements("buffer") == buffers
    assert not m.graph.unknown_ops and not m.graph.partial


def test_tiny_mistral_window_from_the_attention_service():
    """Integration with attention detection: sliding window 8 (models README).
    Effective MACs per layer = 4 heads · 32 · visible pairs; at seq 40 the pairs are
    8·9/2 + 32·8 = 292 → 2 layers · 128 · 292 = 74,752."""
    pytest.importorskip("model_analyze.attention", reason="attention service")
    from model_analyze import attention

    if not hasattr(attention, "attention_layers"):
        pytest.skip("attention_layers not available yet")
    _, m = analyze(str(shared_model("tiny-mistral-swa.onnx")), seq=40)
    assert [a.family for a in m.attention] == ["sliding_window", "sliding_window"]
    assert sum(a.effective_value for a in m.attention) == 74_752


# -- mistral-7b ---------------------------------------------------------------------------
def _inject(ctx, mask: MaskInfo):
    """Attention layers as the attention service describes them: the QKᵀ MatMul has a
    [.., seq, seq] output, the AV MatMul a [.., seq, seq] first input."""
    order = ctx.graph.topo_order()

    def square(shape):
        return shape is not None and len(shape) >= 2 and shape[-1] == shape[-2] and not isinstance(shape[-1], int)

    qk = [n for n in order if n.op_type == "MatMul" and square(ctx.shapes.shape(n.outputs[0]))]
    av = [n for n in order if n.op_type == "MatMul" and square(ctx.shapes.shape(n.inputs[0]))]
    seq = ctx.shapes.shape(qk[0].outputs[0])[-1]
    layers = [AttentionLayer(i, f"layer {i}", "unfused", (q.id, a.id), mask, qk_node=q.id, av_node=a.id,
                             q_len=seq, k_len=seq) for i, (q, a) in enumerate(zip(qk, av, strict=True))]
    ctx.cached("attention.layers", lambda: layers)
    return layers


@pytest.fixture(scope="module")
def mistral():
    ctx = prepare(str(shared_model("mistral-7b.onnx")), AnalyzeOptions(dims={"seq": 4096}))
    _inject(ctx, MaskInfo("sliding_window", window(4096), {"window": 4096}, source="test"))
    return ctx, cost_model(ctx)


def test_mistral_parameters(mistral):
    _, m = mistral
    # Mistral-7B-v0.1: embed 32000·4096 + LM head 32000·4096 + 32 layers × (q, o 4096²,
    # k, v 4096·1024, gate/up/down 3·4096·14336, 2 norms 4096) + final norm 4096
    # = 7,241,732,096 weights; the rotary inv_freq [64] is a buffer (the exporter names it b_…)
    assert m.params.elements("parameter") == 7_241_732_096
    assert m.params.elements("buffer") == 64
    assert m.params.stored_elements() == 7_241_732_160
    assert m.params.nbytes("parameter") == 4 * 7_241_732_096


def test_mistral_formula_by_hand(mistral):
    _, m = mistral
    # MACs per token: 32 · (2·4096² + 2·4096·1024 + 3·4096·14336) + 4096·32000
    #   = 32 · 218,103,808 + 131,072,000 = 7,110,393,856
    # QKᵀ + AV: 32 layers · 2 · 32 heads · 128 = 262,144 per seq²
    lin, quad = 7_110_393_856, 262_144
    assert m.graph.macs.fmt() == f"{lin:,}·seq + {quad:,}·seq²"
    for n in (4096, 32768):
        assert m.graph.macs.evaluate({"seq": n}) == lin * n + quad * n * n
    # FLOPs per token: 2·MACs + per layer (2 RMSNorms 2·16,387; RoPE q 14,336, k 3,584;
    # residuals 8,192; SwiGLU 6·14,336) 144,902 · 32 + final norm 16,387 + rotary table
    # (Mul 64, Cos/Sin 128 each, 2 scaling Muls 128) 576 + 12 position/mask ops on [seq]
    flops_lin = 2 * lin + 144_902 * 32 + 16_387 + 576 + 12
    # per seq²: 2·262,144 + 32 layers · 32 heads · (scale 1 + mask add 1 + Softmax 5)
    # + 8 mask-building ops on [seq, seq] (Equal, And ×4, Greater, LessOrEqual, Where)
    flops_quad = 2 * quad + 32 * 32 * 7 + 8
    assert m.graph.flops.fmt() == f"2 + {flops_lin:,}·seq + {flops_quad:,}·seq²"
    for n in (4096, 32768):
        assert m.graph.flops.evaluate({"seq": n}) == 2 + flops_lin * n + flops_quad * n * n


def test_mistral_sliding_window_effective(mistral):
    _, m = mistral
    # window W = 4096: visible pairs W(W+1)/2 + (n - W)·W; per pair 32 heads · 256 MACs
    w = 4096
    dense = sum(a.dense_macs.evaluate({"seq": 32768}) for a in m.attention)
    eff = sum(a.effective_macs.evaluate({"seq": 32768}) for a in m.attention)
    pairs = w * (w + 1) // 2 + (32768 - w) * w
    assert dense == 32 * 32 * 256 * 32768 ** 2
    assert eff == 32 * 32 * 256 * pairs
    # at n = W the window is exactly causal: effective ≈ half of dense
    assert sum(a.effective_value for a in m.attention) == 32 * 32 * 256 * (w * (w + 1) // 2)


def test_mistral_report_section(mistral):
    ctx, _ = mistral
    section = hotspots.run(ctx)
    assert section.metric("params").value == 7_241_732_096
    assert section.metric("initializer_elements").value == 7_241_732_160
    assert section.metric("macs").formula == "262,144·seq² + 7,110,393,856·seq"
    assert section.metric("macs").expr == "7110393856*seq + 262144*seq**2"
    layers = section.table("layers").rows
    assert layers[0][:2] == ["m.model.layers.{0..31}", 32]  # 32 identical decoder layers
    assert section.data["totals"]["macs"]["expr"] == "7110393856*seq + 262144*seq**2"


# -- causal effective ≈ half of dense ---------------------------------------------------------
def test_causal_effective_is_half_at_large_n():
    ctx = prepare(transformer(layers=2, heads=4, d_model=32, mask="causal"), AnalyzeOptions(dims={"seq": 8192}))
    _inject(ctx, MaskInfo("causal", CAUSAL, source="test"))
    m = cost_model(ctx)
    dense = sum(a.dense_value for a in m.attention)
    eff = sum(a.effective_value for a in m.attention)
    assert eff / dense == pytest.approx(8193 / (2 * 8192))  # n(n+1)/2 of n² pairs
    assert eff / dense == pytest.approx(0.5, abs=1e-3)
    # the mask-aware total differs from the dense total by exactly twice the saved MACs
    assert m.value(m.graph.flops) - m.effective_value == 2 * (dense - eff)


# -- report shape -----------------------------------------------------------------------------
def test_cli_json_and_text(cli_run):
    path = shared_model("mistral-7b.onnx")
    text = cli_run(path, "--dim", "seq=32768", "--select", "hotspots").stdout
    assert [ln for ln in text.splitlines() if len(ln) > 80] == []
    flat = " ".join(text.split())
    # every dim bound: values only in the text; --formulas adds them
    assert "Compute hotspots" in flat and "262,144·seq²" not in flat
    text = cli_run(path, "--dim", "seq=32768", "--select", "hotspots", "--formulas").stdout
    assert "262,144·seq² + 7,110,393,856·seq" in " ".join(text.split())
    report = json.loads(cli_run(path, "--dim", "seq=32768", "--select", "hotspots", "--format", "json").stdout)
    jsonschema.validate(report, SCHEMA)
    (section,) = report["sections"]
    metrics = {m["key"]: m for m in section["metrics"]}
    assert metrics["macs"]["value"] == 7_110_393_856 * 32768 + 262_144 * 32768 ** 2


def test_conv_sample_has_no_symbolic_noise(cli_run):
    from conftest import SAMPLES

    report = json.loads(cli_run(SAMPLES / "convnet.onnx", "--format", "json", "--select", "hotspots").stdout)
    (section,) = report["sections"]
    assert section["status"] == "ok"
    # tiny_convnet @64×64, batch 1: conv1 3→16 3×3 64² + conv2 16→32 3×3 32² + conv3
    # 32→64 3×3 (dilated) 16², + Gemm 64·10: 1,769,472 + 4,718,592 + 4,718,592 + 640
    macs = next(m for m in section["metrics"] if m["key"] == "macs")
    assert macs["value"] == 11_207_296 and macs["formula"] == "11,207,296·batch"


def test_concrete_model_never_imports_sympy():
    """Costs are polynomials of our own; sympy is only for symbolic dims."""
    import subprocess
    import sys

    from conftest import SAMPLES

    code = (f"import sys; sys.path.insert(0, {str(SAMPLES)!r}); import nets\n"
            "from model_analyze.runner import analyze\n"
            "r = analyze(nets.resnet18(weights='shape', batch=1))\n"
            "s = r.section('hotspots')\n"
            "assert s.status.value == 'ok' and abs(s.metric('macs').value / 1.81e9 - 1) < 0.01, s\n"
            "print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
