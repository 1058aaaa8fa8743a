"""The verdict's "next" row names the most actionable finding, decided by the registry's data.

Each registered code says what the user can do (``Code.action``: fix / bind / extend /
none); the verdict ranks by that, then severity, and never proposes a code that needs no
action. The renderer names no code: changing a code's ``action`` in the registry changes
the pick (checked below by patching the registry's data, not the renderer).
"""

from __future__ import annotations

import dataclasses

import pytest

from conftest import SHARED_MODELS
from model_analyze import codes
from model_analyze.codespec import ACTIONS, Code
from model_analyze.render.verdict import next_step
from model_analyze.report import DimInfo, Finding, ModelInfo, Report, Severity
from model_analyze.runner import AnalyzeOptions, analyze

NOTHING = "nothing to fix at this binding; the details follow"


def _report(*findings: Finding) -> Report:
    info = ModelInfo("m.onnx", "test", 10, {"ai.onnx": 17}, 1, 0, [], [])
    report = Report(info, DimInfo())
    report.findings = list(findings)
    return report


# A loader note the analysis does not need (L014: the weights file is missing, weights are
# never read), a missing cost rule (HS001: extend) and a leak in the model's mask (AT020:
# fix the export). The user can act on AT020 first; L014 asks nothing of anyone.
L014 = Finding("L014", Severity.WARNING, "external data file 'm.onnx.data' is missing")
HS001 = Finding("HS001", Severity.WARNING, "custom::Op: no cost rule for 1 node", source="hotspots")
AT030 = Finding("AT030", Severity.WARNING, "reach 2,048 < seq 4,096", source="attention")


def test_next_prefers_what_the_user_can_fix():
    assert next_step(_report(L014, HS001, AT030)).startswith("look at AT030:")
    assert next_step(_report(L014, HS001)).startswith("look at HS001:")
    assert next_step(_report(L014)) == NOTHING


def test_the_pick_follows_the_registry_data(monkeypatch):
    """Re-grade AT030 as needing no action in the registry: the same report now points at HS001."""
    real = codes.lookup

    def patched(code: str, pm=None) -> Code | None:
        entry = real(code, pm)
        return dataclasses.replace(entry, action="none") if entry is not None and entry.code == "AT030" else entry

    monkeypatch.setattr(codes, "lookup", patched)
    assert next_step(_report(L014, HS001, AT030)).startswith("look at HS001:")


def test_every_code_states_an_action_its_fix_agrees_with():
    """``none`` is only for codes whose own fix text says there is nothing to do."""
    for c in codes.registry().values():
        assert c.action in ACTIONS, c.code
        if c.action == "none":
            assert c.fix.startswith("Nothing"), (c.code, c.fix)
    with pytest.raises(ValueError):
        Code("ZZ001", "x", Severity.INFO, "s", "e", "f", "ex", action="maybe")


def test_mistral_next_is_not_the_missing_weights_file():
    """Mistral-7B at seq 4096: its only warning is L014 (graph-only export, weights never
    read); every other finding is an info. Nothing in it asks the user to act."""
    path = SHARED_MODELS / "mistral-7b.onnx"
    if not path.exists():
        pytest.skip("shared models not present")
    report = analyze(str(path), AnalyzeOptions(seq_len=4096))
    warnings = {f.code for f in report.all_findings() if f.severity >= Severity.WARNING}
    assert warnings == {"L014"}
    assert next_step(report) == NOTHING
