"""A regular (non-editable) install must contain the whole tool: build the wheel
and check that every module of analyzer/ and plugins/ and the JSON schema are in
it under their namespaced names, and that no bare top-level `plugins` lands."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ROOT


def test_wheel_contains_every_module(tmp_path):
    # Build from a fresh copy: setuptools reuses an in-tree build/ directory, which
    # would hide a package missing from pyproject.toml.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("analyzer", "plugins"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(src)], check=True, capture_output=True)
    wheel = next(Path(tmp_path).glob("model_analyze-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"model_analyze/{p.relative_to(ROOT / 'analyzer')}" for p in (ROOT / "analyzer").rglob("*.py")}
    expected |= {f"model_analyze/plugins/{p.relative_to(ROOT / 'plugins')}" for p in (ROOT / "plugins").rglob("*.py")}
    expected.add("model_analyze/schema/report.schema.json")
    missing = sorted(e for e in expected if e not in names and "__pycache__" not in e)
    assert missing == []
    assert not any(n.startswith("plugins/") for n in names)
    # Built-in plugins are registered by module name (manager.DEFAULT_PLUGINS), not entry points:
    # each one must be in the wheel, and none is listed twice as an entry point.
    from model_analyze.manager import DEFAULT_PLUGINS

    for _, module in DEFAULT_PLUGINS:
        path = module.replace(".", "/")
        assert f"{path}.py" in names or f"{path}/__init__.py" in names, module
    entry_points = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points[0]).decode() if entry_points else ""
    assert "[model_analyze]" not in text
