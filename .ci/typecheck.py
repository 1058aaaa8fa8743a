"""Type-check the installed package layout with mypy (strict; see ``[tool.mypy]`` in pyproject.toml).

Why a script: the source folders are ``analyzer/`` and ``plugins/`` but the package is
``model_analyze`` (``model_analyze.plugins``), a mapping only setuptools knows; mypy maps
module names from folder names. So this builds a tree of symlinks with the installed
layout under ``.ci/.typecheck/`` (stable path: mypy's cache stays warm between runs) and
checks it, plus the example plugins in ``samples/`` as a plugin author would write them.

    python .ci/typecheck.py            # exit status is mypy's
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / ".ci" / ".typecheck"


def link_tree() -> Path:
    """``TREE/model_analyze`` = analyzer/* + plugins/, rebuilt when files come or go."""
    pkg = TREE / "model_analyze"
    pkg.mkdir(parents=True, exist_ok=True)
    want = {p.name: p for p in (ROOT / "analyzer").iterdir() if p.name != "__pycache__"}
    want["plugins"] = ROOT / "plugins"
    for entry in pkg.iterdir():
        if entry.name not in want or not entry.is_symlink() or entry.resolve() != want[entry.name].resolve():
            entry.unlink()
    for name, target in want.items():
        link = pkg / name
        if not link.is_symlink():
            os.symlink(target, link)
    return TREE


def example_plugins() -> list[str]:
    """Each ``samples/*/pyproject.toml`` plugin's modules (what a plugin author writes)."""
    out = []
    for project in sorted((ROOT / "samples").glob("*/pyproject.toml")):
        out += [str(p) for p in sorted(project.parent.glob("*.py"))]
    return out


def main() -> int:
    tree = link_tree()
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
           "--cache-dir", str(ROOT / ".ci" / ".mypy_cache"), "model_analyze", *example_plugins()]
    env = dict(os.environ, MYPYPATH=str(tree))
    return subprocess.call(cmd, cwd=tree, env=env)


if __name__ == "__main__":
    sys.exit(main())
