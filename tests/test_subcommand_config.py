"""`reach` and `verify` read the project config as `model-analyze PATH` does.

One `[tool.model-analyze]` table (plus per-path overrides) gives every command the same
bindings: a config dim/seq-len a model lacks is skipped and said, the command line wins,
`--isolated` reads nothing, `--config FILE` reads that file, and a bad config is exit 2
with one line naming file and key.
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import SAMPLES

CONFIG = """[tool.model-analyze]
seq-len = 32
dims = { batch = 2 }

[[tool.model-analyze.overrides]]
paths = ["models/llm/*.onnx"]
seq-len = 48
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A repository with a causal LM under models/llm/ and a CNN under models/, and the config above."""
    (tmp_path / "models" / "llm").mkdir(parents=True)
    shutil.copy(SAMPLES / "tiny_transformer.onnx", tmp_path / "models" / "llm" / "lm.onnx")
    shutil.copy(SAMPLES / "convnet.onnx", tmp_path / "models" / "cnn.onnx")
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _reach(cli_run, *args):
    r = cli_run("reach", "models/llm/lm.onnx", "--at", "3", "--format", "json", *args)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_reach_honours_the_config_and_its_per_path_override(project, cli_run):
    # tiny_transformer is a causal LM over input_ids[1, seq]: position 3 sees 0..3,
    # of a source as long as the bound seq. The override (models/llm/*.onnx) says 48, over
    # the global 32; the model has no 'batch' dim, so dims.batch is skipped and said.
    d = _reach(cli_run)
    assert d["bindings"] == {"seq": 48} and d["source_length"] == 48
    assert d["intervals"] == [[0, 3]]
    assert d["config"] == ["pyproject.toml", "pyproject.toml overrides[1]"]
    assert d["skipped"] == ["dims.batch = 2 (pyproject.toml) skipped: the model has no dim 'batch' (its dims: seq)"]
    text = cli_run("reach", "models/llm/lm.onnx", "--at", "3").stdout
    assert "(4 of 48) at seq=48" in text and "note: dims.batch = 2 (pyproject.toml) skipped" in text


def test_reach_command_line_wins_isolated_reads_nothing(project, cli_run):
    assert _reach(cli_run, "--seq-len", "20")["bindings"] == {"seq": 20}
    d = _reach(cli_run, "--isolated")
    assert d["config"] == [] and d["skipped"] == [] and d["bindings"] == {"seq": 128}  # the stated default
    other = project / "other.toml"
    other.write_text("seq-len = 64\n")
    assert _reach(cli_run, "--config", str(other))["bindings"] == {"seq": 64}


def test_a_typed_dim_the_model_lacks_is_still_an_error(project, cli_run):
    r = cli_run("reach", "models/llm/lm.onnx", "--at", "3", "--dim", "batch=2")
    assert r.exit_code == 2 and "--dim" in r.stderr and "batch" in r.stderr


@pytest.mark.parametrize("command", ["reach", "verify"])
def test_a_bad_config_is_one_line_naming_file_and_key(project, cli_run, command):
    (project / "pyproject.toml").write_text('[tool.model-analyze]\nseq-len = "x"\n')
    r = cli_run(command, "models/llm/lm.onnx", *(["--at", "3"] if command == "reach" else []))
    assert r.exit_code == 2 and r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and f"{project / 'pyproject.toml'}: [tool.model-analyze] seq-len" in line


def test_verify_runs_at_the_config_binding(project, cli_run):
    """onnxruntime is fed the config's batch: the synthesised input is [2, 3, 64, 64]."""
    r = cli_run("verify", "models/cnn.onnx", "--seeds", "1", "--positions", "2", "--format", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["bindings"] == {"batch": 2} and d["inputs"]["image"].startswith("float32[2,3,64,64]")
    assert d["config"] == ["pyproject.toml"] and d["sound"]
    assert d["skipped"] and d["skipped"][0].startswith("seq-len = 32 (pyproject.toml) skipped")
    d = json.loads(cli_run("verify", "models/cnn.onnx", "--seeds", "1", "--positions", "2", "--format", "json",
                           "--isolated").stdout)
    assert d["bindings"] == {"batch": 1} and d["inputs"]["image"].startswith("float32[1,3,64,64]")
