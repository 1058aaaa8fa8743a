"""Report rendering: JSON validates against the schema; text fits 80 columns."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from conftest import SAMPLES, SHARED_MODELS

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "analyzer" / "schema" /
                     "report.schema.json").read_text())


def models():
    out = [SAMPLES / "convnet.onnx", SAMPLES / "tiny_transformer.onnx"]
    # Shared models are parametrized only when present; test_shared_models_present
    # fails in CI if they are not.
    out += [SHARED_MODELS / n for n in ("tiny-llama.onnx", "tiny-mistral-swa.onnx", "tiny-bert.onnx")
            if (SHARED_MODELS / n).exists()]
    return out


@pytest.mark.parametrize("path", models(), ids=lambda p: p.name)
def test_json_matches_schema(path, cli_run):
    result = cli_run(path, "--format", "json")
    assert result.exit_code in (0, 1)
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["model"]["path"] == str(path)


@pytest.mark.parametrize("path", models(), ids=lambda p: p.name)
def test_text_fits_80_columns(path, cli_run):
    result = cli_run(path)
    too_wide = [ln for ln in result.stdout.splitlines() if len(ln) > 80]
    assert too_wide == []


def test_output_file(tmp_path, cli_run):
    out = tmp_path / "report.json"
    result = cli_run(SAMPLES / "convnet.onnx", "--format", "json", "-o", out)
    assert result.exit_code == 0 and result.stdout == ""
    jsonschema.validate(json.loads(out.read_text()), SCHEMA)


def test_schema_rejects_a_broken_report(cli_run):
    report = json.loads(cli_run(SAMPLES / "convnet.onnx", "--format", "json").stdout)
    report["findings"].append({"code": "bad code", "severity": "fatal", "message": "", "node": None,
                               "source": "x"})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, SCHEMA)


def test_fail_on_threshold(cli_run):
    # The D001 info finding (defaults used) trips --fail-on info, not the default.
    assert cli_run(SAMPLES / "convnet.onnx").exit_code == 0
    assert cli_run(SAMPLES / "convnet.onnx", "--fail-on", "info").exit_code == 1
    assert cli_run(SAMPLES / "convnet.onnx", "--dim", "batch=1", "--fail-on", "info").exit_code == 0


def test_shared_models_present():
    from conftest import shared_model

    for name in ("tiny-llama.onnx", "tiny-mistral-swa.onnx", "tiny-bert.onnx", "mistral-7b.onnx"):
        assert shared_model(name).exists()


def test_sarif_output(tmp_path, cli_run, save_model):
    from test_external_data import _external_model

    # A hostile external-data location gives an error finding pointing at a tensor.
    path = _external_model(tmp_path, "/etc/passwd")
    result = cli_run(path, "--format", "sarif")
    assert result.exit_code == 1
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "model-analyze"
    by_rule = {r["ruleId"]: r for r in run["results"]}
    l011 = by_rule["L011"]
    assert l011["level"] == "error"  # SARIF levels: note / warning / error
    # outside any repository: an absolute file URI (inside one: relative + %SRCROOT%, test_sarif.py)
    assert l011["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == path.as_uri()
    assert l011["locations"][0]["logicalLocations"][0]["name"]
    assert set(by_rule) <= {r["id"] for r in run["tool"]["driver"]["rules"]}  # rules: the whole registry


def test_markdown_output(cli_run):
    out = cli_run(SAMPLES / "convnet.onnx", "--format", "markdown").stdout
    assert out.startswith("# model-analyze report:")
    assert "## Receptive field" in out
    assert "| tensor | axis | size |" in out


def test_pyproject_config_sets_defaults_and_cli_wins(tmp_path, monkeypatch, cli_run):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.model-analyze]\nselect = ["structure"]\nfail-on = "info"\nformat = "json"\n')
    monkeypatch.chdir(tmp_path)
    r = cli_run(SAMPLES / "convnet.onnx")
    data = json.loads(r.stdout)
    assert [s["analyzer"] for s in data["sections"]] == ["structure"]
    assert r.exit_code == 1  # D001 (info) trips fail-on = "info"
    r = cli_run(SAMPLES / "convnet.onnx", "--fail-on", "error", "--format", "text")
    assert r.exit_code == 0 and r.stdout.startswith("model-analyze")


def test_pyproject_config_rejects_unknown_keys(tmp_path, monkeypatch, cli_run):
    (tmp_path / "pyproject.toml").write_text('[tool.model-analyze]\nfail_on = "info"\n')
    monkeypatch.chdir(tmp_path)
    r = cli_run(SAMPLES / "convnet.onnx")
    assert r.exit_code == 2 and "[tool.model-analyze] fail_on: unknown key — did you mean fail-on?" in r.stderr


def test_html_output_is_well_formed_and_has_charts(cli_run, tmp_path):
    from html.parser import HTMLParser

    import nets
    import onnx

    path = tmp_path / "resnet18.onnx"
    onnx.save(nets.resnet18(weights="shape"), str(path))
    out = tmp_path / "r.html"
    assert cli_run(path, "--format", "html", "-o", out, "--dim", "batch=1").exit_code == 0
    text = out.read_text()

    class Check(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.tags = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            if tag not in ("meta", "circle", "rect", "line", "path", "br"):
                self.stack.append(tag)

        def handle_endtag(self, tag):
            if tag in ("circle", "rect", "line", "path"):
                return
            assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
            self.stack.pop()

    c = Check()
    c.feed(text)
    assert c.stack == []
    assert c.tags.count("svg") == 2  # RF growth (first spatial axis) and FLOPs per layer
    assert "Receptive field along H" in text and ">435<" in text  # ResNet-18 RF (Distill 2019)
    assert "<script" not in text
