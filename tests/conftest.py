"""Shared fixtures: the CLI runner, sample/shared model paths, small model writers."""

from __future__ import annotations

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
