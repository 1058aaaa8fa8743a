"""Many models per run: a mixed folder (LLM, CNN, audio, a corrupt file) in ONE invocation
with ONE config holding per-path overrides and budgets.

Expected values are hand derivations, not read back from our output:
- tiny-llama at seq 64: MACs 90,112·seq + 256·seq² (test_hotspots derives it from the
  config) = 5,767,168 + 1,048,576 = 6,815,744; causal, so the last position sees all 64
  positions (models README); parameters 98,368.
- convnet at batch 1: 1,769,472 + 4,718,592 + 4,718,592 + 640 = 11,207,296 MACs
  (test_hotspots) > the 10 M budget → BG001; RF 26 (test_headlines) ≥ 26.
- whisper (zoo): 53,248 parameters (torch's count, test_zoo_transformers) ≤ 60 k.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, SAMPLES, shared_model

CONFIG = """\
[tool.model-analyze]
fail-on = "error"
ignore = ["AR001"]                  # the Levine heuristic: not wanted in CI logs
dims = { batch = 1 }                # only the CNN has `batch`: skipped (C001) elsewhere
seq-len = 128                       # the CNN has no sequence: skipped (C001)
budgets = { max-params = "1M", forbid-ops = ["Loop", "If"] }

[[tool.model-analyze.overrides]]
paths = ["llm/*.onnx"]
seq-len = 64
budgets = { max-macs = "10M", min-reach = 64, require-coverage = true }

[[tool.model-analyze.overrides]]
paths = ["cnn/*.onnx"]
budgets = { max-macs = "10M", min-receptive-field = 26 }

[[tool.model-analyze.overrides]]
paths = ["audio/**/*.onnx"]
seq-len = 16                        # decoder tokens = max_source_positions
severity = { AR003 = "info" }
budgets = { max-params = "60k" }
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    for sub, src in (("llm", shared_model("tiny-llama.onnx")), ("cnn", SAMPLES / "convnet.onnx"),
                     ("audio", SAMPLES / "zoo" / "whisper-sdpa-dynamo.onnx")):
        (root / sub).mkdir()
        shutil.copy(src, root / sub / src.name)
    (root / "broken.onnx").write_bytes((SAMPLES / "convnet.onnx").read_bytes()[:3000])
    (root / "pyproject.toml").write_text(CONFIG)
    return root


def test_readme_shows_the_config_this_test_uses():
    assert CONFIG in (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def mixed_json(folder):
    from click.testing import CliRunner

    from model_analyze.cli import get_cli

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        r = CliRunner().invoke(get_cli(), [".", "--format", "json"], catch_exceptions=False)
    finally:
        os.chdir(cwd)
    return r, json.loads(r.stdout)


def _findings(report):
    return report["findings"] + [f for s in report["sections"] for f in s["findings"]]


def test_mixed_folder_in_one_invocation(mixed_json):
    r, doc = mixed_json
    assert r.exit_code == 2  # the worst over models: the corrupt file
    assert doc["exit_code"] == 2 and doc["format"] == "model-analyze-multi"
    by = {m["path"]: m for m in doc["models"]}
    assert sorted(by) == ["audio/whisper-sdpa-dynamo.onnx", "broken.onnx", "cnn/convnet.onnx",
                          "llm/tiny-llama.onnx"]
    # the corrupt file: a row with exit-2 semantics, one line; the others complete
    assert by["broken.onnx"]["exit_code"] == 2 and by["broken.onnx"]["report"] is None
    assert "broken.onnx: not a valid ONNX protobuf" in by["broken.onnx"]["error"]
    assert "\n" not in by["broken.onnx"]["error"]
    assert r.stderr.count("model-analyze: error: broken.onnx:") == 1
    llama, cnn, audio = by["llm/tiny-llama.onnx"], by["cnn/convnet.onnx"], by["audio/whisper-sdpa-dynamo.onnx"]
    assert llama["summary"]["macs"]["value"] == 90_112 * 64 + 256 * 64 * 64 == 6_815_744
    assert llama["summary"]["reach"]["value"] == 64 and llama["summary"]["coverage"]["value"] is True
    assert llama["summary"]["params"]["value"] == 98_368
    assert cnn["summary"]["macs"]["value"] == 11_207_296 and cnn["summary"]["receptive_field"]["value"] == 26
    assert audio["summary"]["params"]["value"] == 53_248
    assert (llama["exit_code"], cnn["exit_code"], audio["exit_code"]) == (0, 1, 0)
    # per-path overrides applied, in order
    assert llama["config"] == ["pyproject.toml", "pyproject.toml overrides[1]"]
    assert audio["config"] == ["pyproject.toml", "pyproject.toml overrides[3]"]
    assert llama["report"]["dims"]["bound"] == {"seq": 64}
    assert audio["report"]["dims"]["bound"] == {"s20": 16}
    assert cnn["report"]["dims"]["bound"] == {"batch": 1}


def test_config_bindings_a_model_lacks_are_skipped_and_said(mixed_json):
    _, doc = mixed_json
    by = {m["path"]: m["report"] for m in doc["models"] if m["report"]}
    c001 = {p: [f["message"] for f in _findings(r) if f["code"] == "C001"] for p, r in by.items()}
    assert c001["llm/tiny-llama.onnx"] == [
        "dims.batch = 1 (pyproject.toml) skipped: the model has no dim 'batch' (its dims: seq)"]
    assert c001["audio/whisper-sdpa-dynamo.onnx"] == [
        "dims.batch = 1 (pyproject.toml) skipped: the model has no dim 'batch' (its dims: s20)"]
    assert c001["cnn/convnet.onnx"] == [
        "seq-len = 128 (pyproject.toml) skipped: the model has no sequence dim this tool can tell (its dims: batch)"]
    codes = {p: {f["code"] for f in _findings(r)} for p, r in by.items()}
    assert "AR001" not in set().union(*codes.values())  # global ignore
    audio = {f["code"]: f["severity"] for f in _findings(by["audio/whisper-sdpa-dynamo.onnx"])}
    assert audio.get("AR003") == "info"  # the audio override's severity


def test_budgets_hold_or_break_with_measured_and_allowed(mixed_json):
    _, doc = mixed_json
    by = {m["path"]: m["report"] for m in doc["models"] if m["report"]}
    bg = {p: [(f["code"], f["severity"], f["message"]) for f in _findings(r) if f["code"].startswith("BG")]
          for p, r in by.items()}
    assert bg["cnn/convnet.onnx"] == [
        ("BG001", "error", "MACs 11.2 M > max-macs 10 M (11,207,296 > 10,000,000) at batch=1 "
                           "[pyproject.toml overrides[2]]")]
    assert bg["llm/tiny-llama.onnx"] == []  # 6.8 M ≤ 10 M, reach 64 ≥ 64, covered, 98 k ≤ 1 M, no Loop/If
    assert bg["audio/whisper-sdpa-dynamo.onnx"] == []  # 53,248 ≤ 60 k


def test_summary_table_and_one_line_per_failure(folder, cli_run, monkeypatch):
    monkeypatch.chdir(folder)
    r = cli_run("llm", "cnn", "audio")  # the corrupt file left out: the budget breach decides
    assert r.exit_code == 1
    tail = r.stdout[r.stdout.index("== Summary "):]
    lines = tail.splitlines()
    assert lines[1].split() == ["model", "MACs", "params", "peak", "mem", "reach/RF", "worst", "status"]
    rows = {line.split()[0]: line.split() for line in lines[3:] if line.startswith("  ") and not
            line.startswith("   ")}
    assert rows["llm/tiny-llama"][1:3] == ["6.82", "M"] and rows["llm/tiny-llama"][-1] == "ok"
    assert rows["cnn/convnet"][1:3] == ["11.2", "M"] and rows["cnn/convnet"][-3:] == ["err", "BG001", "FAIL"]
    assert "3 models: 2 ok, 1 failed · exit 1" in tail
    fails = [line for line in lines if line.startswith("fail ")]
    assert fails == ["fail   cnn/convnet.onnx: error BG001 MACs 11.2 M > max-macs 10 M (11,207,296 > 10,000,000) "
                     "at batch=1 [pyproject.toml overrides[2]]"]
    # the table fits 80 columns; the reasons are one line each (grep-able), however long
    assert all(len(line) <= 80 for line in lines if not line.startswith("fail"))


def test_command_line_dim_the_model_lacks_is_a_usage_error(folder, cli_run, monkeypatch):
    monkeypatch.chdir(folder)
    r = cli_run("llm/tiny-llama.onnx", "--dim", "batch=1")
    assert r.exit_code == 2
    assert r.stderr == "model-analyze: error: --dim batch: the model has no dim 'batch' (its dims: seq)\n"
    r = cli_run("cnn/convnet.onnx", "--seq-len", "64")
    assert r.exit_code == 2 and r.stderr.startswith("model-analyze: error: --seq-len: cannot tell which dim")


def test_multi_json_validates_against_its_schema(mixed_json):
    import jsonschema
    from referencing import Registry, Resource

    schema_dir = ROOT / "analyzer" / "schema"
    report = json.loads((schema_dir / "report.schema.json").read_text())
    multi = json.loads((schema_dir / "multi.schema.json").read_text())
    registry = Registry().with_resource(report["$id"], Resource.from_contents(report))
    jsonschema.Draft202012Validator(multi, registry=registry).validate(mixed_json[1])
    broken = json.loads(json.dumps(mixed_json[1]))
    broken["models"][0]["report"]["model"]["nodes"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(multi, registry=registry).validate(broken)


def test_discovery_files_dirs_globs_excludes(folder, tmp_path):
    from model_analyze.batch import discover, is_batch
    from model_analyze.config import parse_config

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert [t.path for t in discover(["."])] == ["audio/whisper-sdpa-dynamo.onnx", "broken.onnx",
                                                      "cnn/convnet.onnx", "llm/tiny-llama.onnx"]
        assert [t.path for t in discover(["**/*conv*.onnx", "cnn/convnet.onnx"])] == ["cnn/convnet.onnx"]
        cfg = parse_config({"exclude": ["broken.onnx", "audio/"]}, str(folder / "model-analyze.toml"),
                           top_level=True)
        assert [t.path for t in discover(["."], cfg)] == ["cnn/convnet.onnx", "llm/tiny-llama.onnx"]
        assert [t.path for t in discover(["broken.onnx"], cfg)] == ["broken.onnx"]  # named: never excluded
        assert discover(["nothing-*.onnx"])[0].error == "nothing-*.onnx: no file matches this pattern"
        assert is_batch(["."]) and is_batch(["a.onnx", "b.onnx"]) and is_batch(["*.onnx"])
        assert not is_batch(["cnn/convnet.onnx"])
    finally:
        os.chdir(cwd)


def test_other_formats_for_many_models(folder, cli_run, tmp_path, monkeypatch):
    monkeypatch.chdir(folder)
    r = cli_run("cnn", "llm", "--format", "markdown", "--select", "structure")
    assert r.stdout.count("# model-analyze report:") == 2 and "## Summary" in r.stdout
    r = cli_run("cnn", "llm", "--format", "html", "--select", "structure")
    assert r.exit_code == 2 and "give -o DIR" in r.stderr
    out = tmp_path / "pages"
    r = cli_run("cnn", "llm", "--format", "html", "--select", "structure", "-o", f"{out}/", "--quiet")
    assert r.exit_code == 0  # hotspots not selected: max-macs is not checked (BG090, info), never a guess
    assert sorted(p.name for p in out.iterdir()) == ["convnet.html", "tiny-llama.html"]
    assert "== Summary" in r.stdout


def test_progress_bar_only_on_a_terminal(folder, cli_run, monkeypatch):
    """A pty as stderr: click's progress bar. --quiet on a terminal, or no terminal: none."""
    import pty

    def run(*extra):
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "model_analyze", "cnn", "llm", "--select", "structure",
                                 "--isolated", *extra], cwd=folder, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=120)
        os.close(master)
        return b"".join(chunks).decode(errors="replace")

    shown = run()
    assert "analyzing" in shown and "2/2" in shown

    import click

    from model_analyze import analyze_cmd

    bars = []
    monkeypatch.setattr(click, "progressbar", lambda *a, **k: bars.append(1) or pytest.fail("a bar"))
    monkeypatch.chdir(folder)
    assert cli_run("cnn", "llm", "--select", "structure", "--isolated").stderr == ""  # not a terminal
    monkeypatch.setattr(analyze_cmd, "_isatty", lambda stream: True)
    assert cli_run("cnn", "llm", "--select", "structure", "--isolated", "--quiet").exit_code == 0
    assert bars == []
