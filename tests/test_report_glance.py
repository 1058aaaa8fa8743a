"""The report a person reads: verdict first, 80 columns, no formula noise, honest defaults.

Swept over every model we have (samples, zoo exports, shared models): each is analyzed
once and rendered as text and JSON; the text never exceeds 80 columns and opens with a
verdict of at most 12 lines, the JSON validates against the schema and every section's
``data`` against its analyzer's own schema.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from conftest import SAMPLES, SHARED_MODELS, check_report_json
from model_analyze.render import json as json_render
from model_analyze.render import text as text_render
from model_analyze.report import UNITS
from model_analyze.runner import AnalyzeOptions, analyze

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "analyzer" / "schema" /
                     "report.schema.json").read_text())

DOCS = (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text()
MODELS = sorted(SAMPLES.glob("*.onnx")) + sorted((SAMPLES / "zoo").glob("*.onnx"))
SHARED = ("tiny-llama.onnx", "tiny-mistral-swa.onnx", "tiny-bert.onnx", "mistral-7b.onnx")


def _models() -> list[Path]:
    out = list(MODELS)
    for name in SHARED:
        path = SHARED_MODELS / name
        if path.exists():
            out.append(path)
        elif os.environ.get("MODEL_ANALYZE_REQUIRE_SHARED"):
            pytest.fail(f"{path} missing and MODEL_ANALYZE_REQUIRE_SHARED is set")
    return out


def verdict_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("== Verdict"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].strip())
    return lines[start:end]


@pytest.mark.parametrize("path", _models(), ids=lambda p: p.name)
def test_every_model_reads_at_a_glance(path):
    opts = AnalyzeOptions(seq_len=4096) if path.name == "mistral-7b.onnx" else AnalyzeOptions()
    report = analyze(str(path), opts)
    text = text_render.render(report)
    wide = [ln for ln in text.splitlines() if len(ln) > 80]
    assert wide == [], f"{path.name}: lines over 80 columns"
    lines = text.splitlines()
    assert lines[1].startswith("== Verdict at "), "the report opens with the verdict"
    assert len(verdict_lines(text)) <= 12
    assert "None" not in text.replace("NonMaxSuppression", "")
    assert "-0.0%" not in text
    # Formulas only where they help: every dim bound (or only batch at 1) → values only.
    if not report.dims.guessed():
        assert "·seq²" not in text and "floor(" not in text
    data = json.loads(json_render.render(report))  # validated by conftest's hook too
    check_report_json(data, SCHEMA, jsonschema)
    # every metric has a unit, a description and a definition that exists in docs/metrics.md
    for section in data["sections"]:
        for m in section["metrics"]:
            assert m["unit"] in UNITS and m["description"], (section["analyzer"], m["key"])
            path, anchor = m["doc"].split("#")
            assert path == "docs/metrics.md" and f'<a id="{anchor}"></a>' in DOCS, m["doc"]
