"""Project configuration: ``[tool.model-analyze]`` with per-path overrides, validated against a schema.

A pre-deployment pipeline wants one policy for a whole folder of different models:
which analyzers and codes, the failure threshold, the lengths each model ships with
and its budgets. One file holds it (ruff's model: global keys plus per-path blocks)::

    [tool.model-analyze]
    fail-on = "error"
    ignore = ["AR001"]
    dims = { batch = 1 }                      # skipped (and said) for models without `batch`

    [[tool.model-analyze.overrides]]
    paths = ["models/llm/*.onnx"]
    seq-len = 4096
    budgets = { max-macs = "40T", min-reach = 4096 }

Where it comes from: ``--config FILE``, else the nearest of ``model-analyze.toml``,
``.model-analyze.toml`` (top-level keys) or a ``pyproject.toml`` that has a
``[tool.model-analyze]`` table, searching upward from the current directory.
Override ``paths`` are globs relative to that file's directory (``**`` crosses
directories; a pattern without ``/`` matches the file name anywhere).

Every value is checked against :data:`SCHEMA` when the file is read: a wrong type
or an out-of-range value is exit 2 with one line naming the file, the key and what
was expected — never a traceback, never a silently accepted ``top = 1.5``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .budgets import BUDGETS
from .errors import UsageError
from .options import BadValue, OptionCatalog, OptionLayer, checked, installed_catalog

MAX_DIM = BUDGETS.dim_value
"""Largest dim a config may bind: the same limit as ``--dim``/``--seq-len`` (resource budgets)."""
FAIL_ON = ("info", "warning", "error", "never")
SEVERITIES = ("info", "warning", "error")
CONFIG_NAMES = ("model-analyze.toml", ".model-analyze.toml", "pyproject.toml")


class ConfigError(UsageError):
    """An invalid configuration value: exit 2 naming the file, the key and the expected type."""


class _Bad(ValueError):
    """Raised by a checker with the expected form; the loader adds file and key."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int(lo: int, hi: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise _Bad(f"an integer from {lo:,} to {hi:,}")
        return v
    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad("true or false")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise _Bad("a non-empty string")
    return v.strip()


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if not isinstance(v, str) or v not in options:
            raise _Bad("one of " + ", ".join(f'"{o}"' for o in options))
        return v
    return check


def _str_list(v: Any) -> list[str]:
    if isinstance(v, str):
        raise _Bad(f'a list of strings (write [{v!r}])'.replace("'", '"'))
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise _Bad("a list of non-empty strings")
    return [x.strip() for x in v]


def _table(value_check: Callable[[Any], Any], what: str) -> Callable[[Any], dict[str, Any]]:
    def check(v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise _Bad(f"a table of {what}")
        out = {}
        for k, x in v.items():
            try:
                out[k] = value_check(x)
            except _Bad as exc:
                raise _Bad(f"a table of {what}; {k!r}: expected {exc}, got {_show(x)}") from None
        return out
    return check


def _shape(v: Any) -> list[int]:
    if not isinstance(v, list) or not v or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_DIM for x in v):
        raise _Bad(f"a list of integers from 0 to {MAX_DIM:,}")
    return list(v)


def _budgets(v: Any) -> dict[str, Any]:
    from .model_budgets import parse_budgets

    if not isinstance(v, dict):
        raise _Bad("a table of budgets (max-macs, min-reach, ...)")
    try:
        return parse_budgets(v)
    except ValueError as exc:
        raise _Bad(str(exc)) from None


def _fraction(v: Any) -> float:
    from .units import parse_fraction

    try:
        return parse_fraction(v)
    except ValueError as exc:
        raise _Bad(str(exc)) from None


@dataclass(frozen=True)
class Key:
    check: Callable[[Any], Any]
    doc: str
    per_path: bool = True
    """May appear in an override block (else global only)."""


SCHEMA: dict[str, Key] = {
    "select": Key(_str_list, "analyzers and finding codes/prefixes to report (default: all)"),
    "ignore": Key(_str_list, "analyzers and finding codes/prefixes to leave out"),
    "extend-select": Key(_str_list, "added to `select` (e.g. on top of a shared config)"),
    "severity": Key(_table(_choice(SEVERITIES), '"info", "warning" or "error" by code or prefix'),
                    "re-grade codes: { AT030 = \"error\" }"),
    "fail-on": Key(_choice(FAIL_ON), "exit 1 at this severity or worse (default error)"),
    "format": Key(_str, "output format (default text)", per_path=False),
    "seq-len": Key(_int(1, MAX_DIM), "the sequence length the model ships with (skipped for models without one)"),
    "dims": Key(_table(_int(0, MAX_DIM), f"integers from 0 to {MAX_DIM:,}"),
                "dim bindings { name = value } (skipped for models without the dim)"),
    "input-shapes": Key(_table(_shape, "shapes (lists of integers)"),
                        "whole input shapes { images = [1, 3, 640, 640] } (skipped for models without the input)"),
    "budgets": Key(_budgets, "limits at the binding: max-macs, max-flops, max-params, ..."),
    "plugins": Key(lambda v: v, "analyzer options: [tool.model-analyze.plugins.NAME] KEY = VALUE (checked "
                   "against the options each analyzer declares; `model-analyze plugins` lists them)"),
    "baseline-tolerance": Key(_fraction, "relative change a baseline tolerates (default 1%)"),
    "exclude": Key(_str_list, "globs of paths never analyzed when a directory is given", per_path=False),
    "overrides": Key(lambda v: v, "per-path blocks: [[tool.model-analyze.overrides]] paths = [...]",
                     per_path=False),
}
TABLE_KEYS = ("severity", "dims", "input-shapes", "budgets")
NESTED_KEYS = ("plugins",)
"""Tables of tables merged two levels deep (an override's ``plugins.serving.batch`` keeps the
global ``plugins.serving.device``)."""
"""Merged key by key when an override sets them (the override's entries win)."""
ADDITIVE_KEYS = ("ignore", "extend-select")
"""Added to, not replaced, by an override (like ruff's per-file-ignores)."""


@dataclass
class Override:
    paths: list[str]
    values: dict[str, Any]
    label: str
    """``pyproject.toml overrides[2]`` — said in the report when a value comes from here."""


@dataclass
class Config:
    """The validated configuration (empty when no file was found)."""

    path: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    overrides: list[Override] = field(default_factory=list)

    @property
    def root(self) -> str:
        """Directory override paths and excludes are relative to."""
        return os.path.dirname(os.path.abspath(self.path)) if self.path else os.getcwd()

    @property
    def label(self) -> str:
        return os.path.basename(self.path) if self.path else "config"

    @property
    def where(self) -> str:
        """How error lines name the global table: ``FILE: [tool.model-analyze]`` or ``FILE:``."""
        if not self.path:
            return "config"
        return f"{self.path}: [tool.model-analyze]" if os.path.basename(self.path) == "pyproject.toml" \
            else f"{self.path}:"

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def for_model(self, model_path: str) -> tuple[dict[str, Any], list[str]]:
        """The values that apply to one model (global, then matching overrides in order),
        and the labels of the overrides that matched."""
        values = self._global()
        applied: list[str] = []
        rel = _relative(model_path, self.root) if self.overrides else ""  # a scan asks this of every model
        for ov in self.overrides:
            if any(glob_match(p, rel) for p in ov.paths):
                applied.append(ov.label)
                _apply(values, ov)
        return values, applied

    def for_model_block(self, ov: Override) -> tuple[dict[str, Any], list[str]]:
        """The global values with one override block applied (to check the block up front)."""
        values = self._global()
        _apply(values, ov)
        return values, [ov.label]

    def sources(self, model_path: str) -> dict[str, str]:
        """Which file or override set each binding and budget for one model (``dims.batch`` →
        ``pyproject.toml``, ``budgets.max-macs`` → ``pyproject.toml overrides[1]``), for the
        lines that state them (a skipped binding's C001 names where it came from)."""
        _, applied = self.for_model(model_path)
        blocks = [(self.label, self.values)]
        blocks += [(ov.label, ov.values) for ov in self.overrides if ov.label in applied]
        out: dict[str, str] = {}
        for label, values in blocks:
            for key in ("dims", "input-shapes", "budgets"):
                for k in values.get(key, {}):
                    out[f"{key}.{k}"] = label
            if "seq-len" in values:
                out["seq-len"] = label
        return out

    def _global(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
                for k, v in self.values.items() if k != "overrides"}

    def excluded(self, path: str) -> bool:
        patterns = self.get("exclude", [])
        return bool(patterns) and any(glob_match(p, _relative(path, self.root)) for p in patterns)


def _apply(values: dict[str, Any], ov: Override) -> None:
    """One override block on top of ``values``: scalars and ``select`` replace, tables merge
    key by key (``plugins`` two levels deep), ``ignore``/``extend-select`` add."""
    for k, v in ov.values.items():
        if k in NESTED_KEYS:
            merged = {name: dict(t) for name, t in values.get(k, {}).items()}
            for name, table in v.items():
                merged[name] = {**merged.get(name, {}), **table}
            values[k] = merged
        elif k in TABLE_KEYS:
            values[k] = {**values.get(k, {}), **v}
        elif k in ADDITIVE_KEYS:
            values[k] = [*values.get(k, []), *v]
        else:
            values[k] = v


def _relative(path: str, root: str) -> str:
    rel = os.path.relpath(os.path.abspath(path), root)
    return rel.replace(os.sep, "/")


_glob_cache: dict[str, re.Pattern[str]] = {}


def glob_match(pattern: str, path: str) -> bool:
    """gitignore-like globs on ``/`` paths: ``*`` and ``?`` stay in one component, ``**``
    crosses components; a pattern without ``/`` matches the last component anywhere."""
    pattern = pattern.strip().removeprefix("./").rstrip("/")
    if "/" not in pattern:
        pattern = "**/" + pattern
    rx = _glob_cache.get(pattern)
    if rx is None:
        out, i = [], 0
        while i < len(pattern):
            ch = pattern[i]
            if pattern.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
                continue
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            if ch == "*":
                out.append("[^/]*")
            elif ch == "?":
                out.append("[^/]")
            elif ch == "[":
                j = pattern.find("]", i + 1)
                if j == -1:
                    out.append(re.escape(ch))
                else:
                    body = pattern[i + 1:j].replace("\\", "\\\\")
                    out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                    i = j
            else:
                out.append(re.escape(ch))
            i += 1
        rx = _glob_cache[pattern] = re.compile("".join(out) + "(?:/.*)?$")
    return rx.match(path) is not None


def find_config(start: str) -> str | None:
    """The nearest config file from ``start`` upward (a pyproject.toml counts only with our table)."""
    cur = os.path.abspath(start)
    while True:
        for name in CONFIG_NAMES:
            cand = os.path.join(cur, name)
            if os.path.isfile(cand) and (name != "pyproject.toml" or _has_table(cand)):
                return cand
        parent = os.path.dirname(cur)
        if parent == cur or os.path.exists(os.path.join(cur, ".git")):
            return None
        cur = parent


def _has_table(path: str) -> bool:
    """Cheap test before parsing: a pyproject.toml that never mentions us is not our config."""
    try:
        with open(path, "rb") as f:
            return b"model-analyze" in f.read(4 * 1024 * 1024)
    except OSError:
        return False


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            raw = f.read(4 * 1024 * 1024 + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > 4 * 1024 * 1024:
        raise ConfigError(f"{path}: larger than 4 MiB; not a configuration file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None


def _validate(table: dict[str, Any], where: str, *, in_override: bool,
              options: OptionCatalog | None) -> dict[str, Any]:
    flags = options.flags() if options is not None else {}
    out: dict[str, Any] = {}
    for key, value in table.items():
        if in_override and key == "paths":
            continue
        if key == "plugins":
            out[key] = _plugin_tables(value, where, options)
            continue
        spec = SCHEMA.get(key)
        if spec is None and key in flags:
            try:
                out[key] = flags[key].check(value)
            except BadValue as exc:
                raise ConfigError(f"{where} {key}: expected {exc}, got {_show(value)}") from None
            continue
        if spec is None:
            names = [k for k, s in SCHEMA.items() if s.per_path or not in_override] + sorted(flags)
            hint = _did_you_mean(key, [*SCHEMA, *flags])
            raise ConfigError(f"{where} {key}: unknown key{hint} (known: {', '.join(names)})")
        if in_override and not spec.per_path:
            raise ConfigError(f"{where} {key}: only allowed in the global table, not in an override")
        try:
            out[key] = spec.check(value)
        except _Bad as exc:
            raise ConfigError(f"{where} {key}: expected {exc}, got {_show(value)}") from None
    return out


def _plugin_tables(value: Any, where: str, options: OptionCatalog | None) -> dict[str, dict[str, Any]]:
    """``plugins = { NAME = { KEY = VALUE } }``: tables of tables, each value checked against
    the option the analyzer declares (when the installed analyzers are known)."""
    if not isinstance(value, dict) or not all(isinstance(t, dict) for t in value.values()):
        raise ConfigError(f"{where} plugins: expected a table of analyzer tables "
                          f"([tool.model-analyze.plugins.NAME]), got {_show(value)}")
    if options is None:
        return {name: dict(t) for name, t in value.items()}
    out: dict[str, dict[str, Any]] = {}
    try:
        for name, spec, v in checked(options, OptionLayer(where, per=value)):
            out.setdefault(name, {})[spec.key] = v
    except UsageError as exc:
        raise ConfigError(str(exc)) from None
    return out


def _did_you_mean(word: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word.replace("_", "-"), options, n=1, cutoff=0.6)
    return f" — did you mean {close[0]}?" if close else ""


def parse_config(data: dict[str, Any], path: str, *, top_level: bool,
                 options: OptionCatalog | None = None) -> Config:
    """Validate a parsed TOML document (``top_level``: model-analyze.toml, keys at the top).

    ``options``: the installed analyzers' options, which the ``plugins`` tables and the
    top-level flag keys (``top``, ``device``…) are checked against; without it those flag
    keys are unknown and the ``plugins`` tables are only checked for shape."""
    name = os.path.basename(path)
    if top_level:
        table, where = data, f"{path}:"
    else:
        table = data.get("tool", {}).get("model-analyze", {}) if isinstance(data.get("tool"), dict) else {}
        where = f"{path}: [tool.model-analyze]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    values = _validate({k: v for k, v in table.items() if k != "overrides"}, where, in_override=False,
                       options=options)
    overrides: list[Override] = []
    raw = table.get("overrides", [])
    if not isinstance(raw, list) or not all(isinstance(o, dict) for o in raw):
        raise ConfigError(f"{where} overrides: expected an array of tables ([[tool.model-analyze.overrides]]), "
                          f"got {_show(raw)}")
    for i, block in enumerate(raw, 1):
        label = f"overrides[{i}]"
        owhere = f"{where} {label}"
        if "paths" not in block:
            raise ConfigError(f"{owhere}: missing key paths (a list of globs the block applies to)")
        try:
            paths = _str_list(block["paths"])
        except _Bad as exc:
            raise ConfigError(f"{owhere} paths: expected {exc}, got {_show(block['paths'])}") from None
        if not paths:
            raise ConfigError(f"{owhere} paths: expected at least one glob")
        overrides.append(Override(paths, _validate(block, owhere, in_override=True, options=options),
                                  f"{name} {label}"))
    return Config(path, values, overrides)


def load_config(start: str | None = None, explicit: str | None = None,
                options: OptionCatalog | None = None) -> Config:
    """The configuration in force: ``explicit`` (``--config``) or the nearest file from ``start``,
    checked against ``options`` (default: the installed analyzers')."""
    path = explicit or find_config(start or os.getcwd())
    if path is None:
        return Config()
    if explicit and not os.path.isfile(explicit):
        raise ConfigError(f"--config {explicit}: no such file")
    data = _read_toml(path)
    top_level = os.path.basename(path) != "pyproject.toml"
    return parse_config(data, path, top_level=top_level,
                        options=options if options is not None else installed_catalog())
