"""Project defaults from ``[tool.model-analyze]`` in the nearest pyproject.toml.

A pre-deployment pipeline usually wants the same policy on every run (which
analyzers, the failure threshold, the sequence length it ships with); putting it
in pyproject.toml keeps the CI command short. Command-line options win::

    [tool.model-analyze]
    select = ["attention", "hotspots"]
    fail-on = "warning"
    seq-len = 4096
    dims = { batch = 1 }
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError

KEYS = {"select", "ignore", "fail-on", "format", "dims", "seq-len", "top", "device", "batch", "kv-dtype"}


@dataclass
class Config:
    path: str | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def find_pyproject(start: str) -> str | None:
    cur = os.path.abspath(start)
    while True:
        cand = os.path.join(cur, "pyproject.toml")
        if os.path.isfile(cand):
            return cand
        parent = os.path.dirname(cur)
        if parent == cur or os.path.isdir(os.path.join(cur, ".git")):
            return None
        cur = parent


def load_config(start: str | None = None) -> Config:
    path = find_pyproject(start or os.getcwd())
    if path is None:
        return Config()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: cannot read [tool.model-analyze]: {exc}") from None
    table = data.get("tool", {}).get("model-analyze", {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.model-analyze] must be a table")
    unknown = set(table) - KEYS
    if unknown:
        raise UsageError(f"{path}: unknown [tool.model-analyze] keys: {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(KEYS))})")
    dims = table.get("dims", {})
    if not isinstance(dims, dict) or not all(isinstance(v, int) for v in dims.values()):
        raise UsageError(f"{path}: [tool.model-analyze] dims must map names to integers")
    return Config(path, table)
