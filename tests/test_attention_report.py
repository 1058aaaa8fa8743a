"""The ``attention`` report section: one row per layer, stable finding codes,
80-column text, schema-valid JSON."""

from __future__ import annotations

import json
from pathlib import Path

import attention_builders as ab
import jsonschema
import pytest

from conftest import shared_model

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "analyzer" / "schema" /
                     "report.schema.json").read_text())


def section(cli_run, save_model, model, *args):
    path = save_model(model)
    result = cli_run(path, "--select", "attention", *args)
    ours = result.stdout.split("== Attention", 1)[1].splitlines()  # the header holds the tmp path
    assert all(len(ln) <= 80 for ln in ours), result.stdout
    data = json.loads(cli_run(path, "--select", "attention", "--format", "json", *args).stdout)
    jsonschema.validate(data, SCHEMA)
    sec = next(s for s in data["sections"] if s["analyzer"] == "attention")
    assert sec["status"] == "ok"
    return result.stdout, sec


def codes(sec):
    return sorted(f["code"] for f in sec["findings"])


def test_clean_decoder_has_no_findings(cli_run, save_model):
    text, sec = section(cli_run, save_model, ab.attention_stack([ab.window(4), ab.causal()]), "--dim", "seq=64")
    assert codes(sec) == []
    assert [r["mask"]["span"] for r in sec["data"]["layers"]] == [4, 64]
    assert "window 4" in text and "span@64" in text


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"scale": 0.5}, "AT001"),            # 0.5 vs 1/√8
    ({"scale_mode": "none"}, "AT002"),    # no factor at all
])
def test_scale_findings(cli_run, save_model, kwargs, code):
    _, sec = section(cli_run, save_model, ab.attention_stack([ab.causal(), ab.causal()], **kwargs))
    assert codes(sec) == [code]  # one finding naming both layers
    assert "layers 0–1" in sec["findings"][0]["message"]


def test_mask_findings(cli_run, save_model):
    model = ab.attention_stack(["learned-gate", ab.pattern(), "padding"])
    _, sec = section(cli_run, save_model, model)
    assert codes(sec) == ["AT010", "AT011", "AT012"]
    assert [r["mask"]["family"] for r in sec["data"]["layers"]] == ["unknown", "pattern", "bidirectional"]


def test_size_above_the_limit_is_said(cli_run, save_model):
    # window 2·10000: probing 10000 → 5 and 7 gives windows 10 and 14, not 5+δ and 7+δ,
    # so the size is not read and the report says which constant was not checked
    def doubled(b, i, j):
        w = b.op("Mul", [ab.i64(b, 10000), ab.i64(b, 2)])
        return b.op("And", [ab.causal()(b, i, j), b.op("Greater", [j, b.op("Sub", [i, w])])])

    _, sec = section(cli_run, save_model, ab.attention_stack([doubled]))
    assert codes(sec) == ["AT013"] and "10000" in sec["findings"][0]["message"]


@pytest.mark.parametrize("masks", [
    # a decoder stack where one layer sees one key ahead
    pytest.param([ab.causal(), ab.lookahead(1), ab.causal()], id="one-layer"),
    # one head of a causal layer sees one key ahead
    pytest.param([ab.per_head([ab.causal(), ab.lookahead(1)])], id="one-head"),
    # a single layer that is causal but for one key of look-ahead
    pytest.param([ab.lookahead(1)], id="lookahead"),
])
def test_future_token_leak(cli_run, save_model, masks):
    _, sec = section(cli_run, save_model, ab.attention_stack(masks))
    leaks = [f for f in sec["findings"] if f["code"] == "AT020"]
    assert len(leaks) == 1 and leaks[0]["severity"] == "error"
    assert "query" in leaks[0]["message"] and "sees key" in leaks[0]["message"]


def test_encoders_do_not_leak(cli_run, save_model):
    _, sec = section(cli_run, save_model, ab.attention_stack(["padding", "padding"]))
    assert "AT020" not in codes(sec)
    _, sec = section(cli_run, save_model, ab.attention_stack([ab.global_local(2, 1, 1), ab.chunked(4, False)]))
    assert "AT020" not in codes(sec)


def test_fused_and_no_attention(cli_run, save_model):
    text, sec = section(cli_run, save_model, ab.gqa(local_window_size=4096))
    assert "ms.GQA" in text and sec["data"]["layers"][0]["mask"]["params"]["window"] == 4096
    from builders import FLOAT, GraphBuilder

    b = GraphBuilder("plain")
    x = b.input("x", FLOAT, [1, 4])
    b.op("Relu", [x], name="y")
    b.output("y", FLOAT, [1, 4])
    text, sec = section(cli_run, save_model, b.model())
    assert sec["summary"] == "no attention layer found" and sec["data"]["layers"] == []


def test_shared_tiny_models_report(cli_run):
    for name, family in (("tiny-llama.onnx", "causal"), ("tiny-mistral-swa.onnx", "sliding_window"),
                         ("tiny-bert.onnx", "bidirectional")):
        result = cli_run(shared_model(name), "--select", "attention", "--format", "json")
        sec = next(s for s in json.loads(result.stdout)["sections"] if s["analyzer"] == "attention")
        assert [la["mask"]["family"] for la in sec["data"]["layers"]] == [family] * 2
        assert "AT020" not in codes(sec)


def test_causal_mask_with_a_few_leaked_pairs(cli_run, save_model):
    # causal, plus query 3 sees key 9 (one later pair): no family fits the whole mask,
    # but without its later keys it is causal → a leak in a single-layer model
    def leaky(b, i, j):
        extra = b.op("And", [b.op("Equal", [i, ab.i64(b, 3)]), b.op("Equal", [j, ab.i64(b, 9)])])
        return b.op("Or", [ab.causal()(b, i, j), extra])

    _, sec = section(cli_run, save_model, ab.attention_stack([leaky]))
    assert sec["data"]["layers"][0]["mask"]["family"] == "pattern"
    assert "AT020" in codes(sec)
    assert any("query 3 sees key 9" in f["message"] for f in sec["findings"])
