"""Architecture review and `compare`, on built stacks and the shared models."""

from __future__ import annotations

import json
import math

import pytest

import builders
from conftest import shared_model
from model_analyze.plugins import architecture_analysis as arch
from model_analyze.runner import AnalyzeOptions, analyze


@pytest.mark.parametrize("width, log3", [(768, 6.05), (12288, 8.57), (4096, 7.57)])
def test_levine_transition(width, log3):
    # The examples: log3(768) = 6.05, log3(12288) = 8.57, log3(4096) = 7.57.
    info = arch.levine(12, width)
    assert info["log3_width"] == log3
    assert info["regime"] == ("width-limited" if log3 < 12 else "depth-efficient")


def test_crossover_root():
    # c + a·N = b·N² with c = 0, a = 1000, b = 2  ->  N = a / b = 500.
    assert arch.crossover({0: 0.0, 1: 1000.0, 2: 2.0}) == pytest.approx(500)
    assert arch.crossover({1: 5.0}) is None


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """The issue's motivating shapes: 3 heads × 15 layers and 5 heads × 30 layers
    (d_k 64), with full causal attention and with a sliding window of 128."""
    import onnx

    d = tmp_path_factory.mktemp("stacks")
    out = {}
    for layers, heads in ((15, 3), (30, 5)):
        for window in (None, 128):
            m = builders.transformer(layers=layers, heads=heads, d_model=64 * heads,
                                     mask="window" if window else "causal", window=window)
            path = d / f"s{heads}x{layers}_{window or 'full'}.onnx"
            onnx.save(m, str(path))
            out[(heads, layers, window)] = str(path)
    return out


def review(path, n):
    report = analyze(path, AnalyzeOptions(seq_len=n, select=["architecture"]))
    return report.section("architecture")


def test_window_128_fifteen_layers_never_cover_2048(stacks):
    # Each window layer adds W-1 = 127 tokens: 15 layers reach 15·127 + 1 = 1,906 < 2,048;
    # covering needs ceil(2047 / 127) = 17 layers.
    s = review(stacks[(3, 15, 128)], 2048)
    cov = s.data["coverage"]
    assert (cov["reach_last"], cov["covers"], cov["min_depth_to_cover"]) == (1906, False, 17)
    ar004 = [f for f in s.findings if f.code == "AR004"]
    assert ar004 and "15·127+1 = 1,906 < 2,048" in ar004[0].message and "at least 17 layers" in ar004[0].message


def test_window_128_thirty_layers_cover_after_17(stacks):
    # 16·127 + 1 = 2,033 < 2,048 <= 17·127 + 1 = 2,160: first covered after layer 17.
    s = review(stacks[(5, 30, 128)], 2048)
    cov = s.data["coverage"]
    assert (cov["covers"], cov["first_layer"], cov["reach_last"]) == (True, 17, 2048)
    assert any(f.code == "AR005" and "17·127+1 = 2,160" in f.message for f in s.findings)


@pytest.mark.parametrize("heads, layers", [(3, 15), (5, 30)])
def test_full_causal_relates_first_and_last_in_one_layer(stacks, heads, layers):
    cov = review(stacks[(heads, layers, None)], 2048).data["coverage"]
    assert (cov["covers"], cov["first_layer"], cov["causal"]) == (True, 1, True)
    assert cov["pair_fraction"] == 1.0


def test_depth_width_and_heads_of_a_stack(stacks):
    s = review(stacks[(3, 15, None)], 128)
    dw = s.data["depth_width"]
    # d_x = 3·64 = 192, log3(192) = ln 192 / ln 3 = 4.79 < 15 -> width-limited.
    assert (dw["depth"], dw["width"], dw["log3_width"], dw["regime"]) == (15, 192, 4.79, "width-limited")
    # Parameters per layer: q, k, v, o (4·192²) + up/down (2·192·768) = 147,456 + 294,912 = 442,368
    # (the builder shares one LayerNorm gamma/beta across layers, outside the layer scopes).
    assert dw["params_per_layer"] == 442_368
    heads = s.data["heads"]
    assert heads == [{"layers": list(range(15)), "heads": 3, "kv_heads": 3, "gqa_ratio": 1, "head_dim": 64,
                      "d_model_over_h": 64, "scale": "1/√d_k"}]


def test_cost_shape_quadratic_coefficient(stacks):
    # N² FLOPs per layer: QKᵀ and AV, 2·h·d_k·N² each = 4·3·64 = 768, plus the element-wise
    # passes over the h×N×N scores (scale Mul 1 + mask Add 1 + Softmax 5 per element = 7·3 = 21);
    # once for the causal mask itself: LessOrEqual 1 + Where 1 = 2.  15·(768 + 21) + 2 = 11,837.
    s = review(stacks[(3, 15, None)], 2048)
    coef = s.data["cost_shape"]["dense"]["coefficients"]
    assert coef["2"] == pytest.approx(11_837)


def test_compare_text_json_markdown(stacks, cli_run):
    a, b = stacks[(3, 15, 128)], stacks[(5, 30, 128)]
    text = cli_run("compare", a, b, "--seq-len", "2048")
    assert text.exit_code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert max(len(ln) for ln in lines) <= 80
    reach = next(ln for ln in lines if ln.strip().startswith("last token's reach"))
    assert "1,906" in reach and "2,048" in reach and "B sees 1.07× further" in reach  # 2048 / 1906 = 1.0745
    assert "…after layer" in text.stdout and "never" in text.stdout
    data = json.loads(cli_run("compare", a, b, "--seq-len", "2048", "--format", "json").stdout)
    rows = {r["key"]: r for r in data["rows"]}
    assert (rows["depth"]["a"], rows["depth"]["b"]) == (15, 30)
    assert (rows["first_layer"]["a"], rows["first_layer"]["b"]) == ("never", 17)
    ratio = rows["flops"]["b"] / rows["flops"]["a"]
    assert data["verdict"] == f"B sees 1.07× further at {ratio:.2f}× the FLOPs".replace(".00×", "×")
    md = cli_run("compare", a, b, "--seq-len", "2048", "--format", "markdown").stdout
    assert md.startswith("# compare") and "| last token's reach | 1,906 | 2,048 |" in md


def test_mistral_7b_review():
    path = shared_model("mistral-7b.onnx")
    s = review(str(path), 131072)
    dw, cov = s.data["depth_width"], s.data["coverage"]
    # Mistral-7B config: 32 layers, hidden 4096 (log3 = 7.57), 32 heads, 8 kv heads, head dim 128.
    assert (dw["depth"], dw["width"], dw["log3_width"], dw["regime"]) == (32, 4096, 7.57, "width-limited")
    assert [(h["heads"], h["kv_heads"], h["gqa_ratio"], h["head_dim"]) for h in s.data["heads"]] == [(32, 8, 4, 128)]
    # 32·4095 + 1 = 131,041 < 131,072: not covered; ceil(131071 / 4095) = 33 layers would be.
    assert (cov["reach_last"], cov["covers"], cov["window"], cov["min_depth_to_cover"]) == (131041, False, 4096,
                                                                                          math.ceil(131071 / 4095))


def test_tiny_bert_bidirectional_and_narrow_heads():
    s = review(str(shared_model("tiny-bert.onnx")), 32)
    cov = s.data["coverage"]
    assert (cov["covers"], cov["first_layer"], cov["causal"], cov["pair_fraction"]) == (True, 1, False, 1.0)
    # hidden 64 / 4 heads = d_k 16 < 32.
    assert any(f.code == "AR003" and "d_k = 16" in f.message for f in s.findings)
