"""Baselines and `compare --fail-on`: a regression built here (one more layer, a narrower
window) is flagged; the same model is not.

Models: ``builders.transformer`` (d_model 32, 4 heads of d_k 8, FFN 128, vocab 100,
sliding window W) at seq n = 32. By hand, MACs(L) = n·(12,288·L + 3,200) + 64·L·n²:
per layer and token Q, K, V, O 4·32·32 = 4,096 and up/down 2·32·128 = 8,192; the LM
head 32·100 = 3,200; QKᵀ and AV 4 heads · n² · 8 each. So
  2 layers: 32·27,776 + 128·1,024 = 1,019,904;  3 layers: 32·40,064 + 192·1,024 = 1,478,656
(+45.0 %). Reach of the last position through L window-W layers: L·(W−1)+1 — 2 layers of
W 4: 7; 3 layers: 10; 2 layers of W 3: 5.
"""

from __future__ import annotations

import json

import onnx
import pytest

import builders


def _model(path, layers: int, window: int):
    onnx.save(builders.transformer(layers=layers, mask="window", window=window), str(path))
    return path


def _all(report: dict) -> list[dict]:
    return report["findings"] + [f for s in report["sections"] for f in s["findings"]]


def _baseline_findings(stdout: str) -> list[tuple[str, str, str]]:
    return [(f["code"], f["severity"], f["message"]) for f in _all(json.loads(stdout)) if f["code"].startswith("BL")]


@pytest.fixture
def exported(tmp_path, cli_run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = _model(tmp_path / "model.onnx", 2, 4)
    r = cli_run(model, "--seq-len", "32", "--write-baseline", "baseline.json", "--select", "hotspots,attention")
    assert r.exit_code == 0, r.stderr
    return model


def test_baseline_file_holds_headlines_masks_and_bindings(exported, tmp_path):
    doc = json.loads((tmp_path / "baseline.json").read_text())
    assert doc["format"] == "model-analyze-baseline" and doc["format_version"] == 1
    entry = doc["models"]["model.onnx"]  # relative to the baseline's directory
    assert entry["bindings"] == {"seq": 32}
    assert entry["headlines"]["macs"]["value"] == 1_019_904
    assert entry["headlines"]["reach"]["value"] == 7
    assert entry["masks"] == {"layers.0": "sliding window 4", "layers.1": "sliding window 4"}


def test_same_export_is_clean(exported, cli_run):
    r = cli_run(exported, "--seq-len", "32", "--baseline", "baseline.json", "--select", "hotspots,attention",
                "--format", "json")
    assert r.exit_code == 0 and _baseline_findings(r.stdout) == []


def test_one_more_layer_is_a_cost_regression(exported, cli_run):
    _model(exported, 3, 4)  # the re-export overwrites the file the baseline names
    r = cli_run(exported, "--seq-len", "32", "--baseline", "baseline.json", "--select", "hotspots,attention",
                "--format", "json")
    assert r.exit_code == 1
    found = _baseline_findings(r.stdout)
    macs = [m for c, s, m in found if c == "BL001" and m.startswith("MACs ")]
    assert macs == ["MACs grew 45.0% against the baseline: 1.02 M [1,019,904] → 1.48 M [1,478,656] "
                    "(tolerance 1%)"]
    assert all(s == "error" for c, s, _ in found if c == "BL001")
    assert ("BL010", "info", "Reach grew against the baseline: 7 tokens → 10 tokens") in found
    assert any(c == "BL007" and "2 → 3 (added: layers.2 sliding window 4)" in m for c, _, m in found)
    # within a 50 % tolerance the costs pass (45.0 % MACs; parameters +12,288 of ~31 k)
    r = cli_run(exported, "--seq-len", "32", "--baseline", "baseline.json", "--select", "hotspots,attention",
                "--format", "json", "--baseline-tolerance", "50%")
    assert r.exit_code == 0 and not [c for c, _, _ in _baseline_findings(r.stdout) if c == "BL001"]


def test_narrower_window_is_a_sight_regression_and_a_mask_change(exported, cli_run, tmp_path):
    other = _model(tmp_path / "candidate.onnx", 2, 3)  # a one-model run vs a one-model baseline: any path
    r = cli_run(other, "--seq-len", "32", "--baseline", "baseline.json", "--select", "hotspots,attention",
                "--format", "json")
    assert r.exit_code == 1
    found = _baseline_findings(r.stdout)
    assert ("BL002", "error", "Reach shrank against the baseline: 7 tokens → 5 tokens (baseline entry model.onnx)"
            ) in found
    changed = sorted(m for c, _, m in found if c == "BL003")
    assert changed == [f"layers.{k} mask changed against the baseline: sliding window 4 → sliding window 3 "
                       "(baseline entry model.onnx)" for k in (0, 1)]
    assert not [c for c, _, _ in found if c == "BL001"]  # a window does not change dense MACs


def test_other_bindings_are_not_compared(exported, cli_run):
    r = cli_run(exported, "--seq-len", "64", "--baseline", "baseline.json", "--select", "hotspots,attention",
                "--format", "json")
    found = _baseline_findings(r.stdout)
    assert [c for c, _, _ in found] == ["BL006"] and "seq=64 now, seq=32 then" in found[0][2]


def test_compare_fail_on_and_config(tmp_path, cli_run, monkeypatch):
    a, b = _model(tmp_path / "a.onnx", 2, 4), _model(tmp_path / "b.onnx", 3, 4)
    (tmp_path / "model-analyze.toml").write_text("seq-len = 32\ndims = { batch = 1 }\n")
    monkeypatch.chdir(tmp_path)
    r = cli_run("compare", a, b, "--format", "json")
    assert r.exit_code == 0  # no --fail-on: compare reports, it does not judge
    doc = json.loads(r.stdout)
    assert doc["bindings"] == {"a": {"seq": 32}, "b": {"seq": 32}}  # the config's seq-len; batch skipped
    assert any(f["code"] == "BL001" and f["message"].startswith("MACs grew 45.0%") for f in doc["regressions"])
    r = cli_run("compare", a, b, "--fail-on", "error")
    assert r.exit_code == 1 and "B against A:" in r.stdout and "BL001 MACs grew 45.0%" in r.stdout
    assert cli_run("compare", a, a, "--fail-on", "error").exit_code == 0


def test_bad_baseline_file(tmp_path, cli_run):
    (tmp_path / "b.json").write_text('{"format": "something else"}')
    r = cli_run(tmp_path / "a.onnx", "--baseline", tmp_path / "b.json")
    assert r.exit_code == 2 and "not a model-analyze baseline" in r.stderr and r.stderr.count("\n") == 1
