"""Shared fixtures: the CLI runner, sample/shared model paths, small model writers."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SHARED_MODELS = Path(os.environ.get("MODEL_ANALYZE_SHARED", ROOT.parent / "shared")) / "models"
sys.path.insert(0, str(SAMPLES))  # `import builders`


@pytest.fixture
def cli_run():
    """Invoke the CLI in-process; returns the click Result (stdout, stderr, exit_code)."""
    from model_analyze.cli import get_cli

    def run(*args: str):
        runner = CliRunner()
        return runner.invoke(get_cli(), [str(a) for a in args], catch_exceptions=False)

    return run


def shared_model(name: str) -> Path:
    path = SHARED_MODELS / name
    if not path.exists():
        if os.environ.get("MODEL_ANALYZE_REQUIRE_SHARED"):
            pytest.fail(f"{path} not found, and MODEL_ANALYZE_REQUIRE_SHARED is set (CI)")
        pytest.skip(f"{path} not found: the exported models live in ../shared/models (CI always has them)")
    return path


@pytest.fixture
def save_model(tmp_path):
    """Write a ModelProto to tmp and return its path."""

    def save(model: onnx.ModelProto, name: str = "model.onnx") -> Path:
        path = tmp_path / name
        onnx.save(model, str(path))
        return path

    return save


@pytest.fixture(autouse=True, scope="session")
def _validate_every_json_report():
    """Every report the suite renders as JSON is validated: against the report schema,
    and each section's ``data`` against its analyzer's own schema."""
    import json

    import jsonschema

    from model_analyze.render import json as json_render

    schema = json.loads((ROOT / "analyzer" / "schema" / "report.schema.json").read_text())
    original = json_render.render

    def render(report):
        text = original(report)
        check_report_json(json.loads(text), schema, jsonschema)
        return text

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(json_render, "render", render)
        yield


@functools.cache
def analyzer_schemas() -> dict:
    from model_analyze.manager import get_plugin_manager
    from model_analyze.runner import available_analyzers

    analyzers, _ = available_analyzers(get_plugin_manager())
    return {name: an.data_schema for name, an in analyzers.items() if an.data_schema}


def check_report_json(data: dict, schema: dict, jsonschema) -> None:
    jsonschema.validate(data, schema)
    schemas = analyzer_schemas()
    for section in data["sections"]:
        if section["status"] == "ok" and section["analyzer"] in schemas:
            jsonschema.validate(section["data"], schemas[section["analyzer"]])
