"""Many models in one output: the closing summary table, and the multi-model documents.

A run over a folder prints one block per model and then a table a reviewer scans:
model, MACs at the binding, parameters, peak memory, what the model sees (reach or
receptive field), the worst finding and the status. Values come only from headline
metrics (``Report.headline``); ``≥``/``≤``/``≈`` mark bounds and estimates and ``*`` a value taken at
stated default dims. Under the table, one line per model that failed says why.

JSON for many models is one document with a ``models`` list (schema
``schema/multi.schema.json``); each entry's ``report`` is exactly the single-model
report, so a consumer reads both shapes with one parser.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..report import Cell, Column, Finding, Metric, Report, Severity, Table
from . import mark

if TYPE_CHECKING:
    from ..batch import ModelResult

MULTI_FORMAT = "model-analyze-multi"
MULTI_VERSION = 1
STATUS = {"ok": "ok", "fail": "FAIL", "error": "ERROR", "timeout": "TIMEOUT", "memory": "OOM", "crashed": "CRASH"}
"""How each status reads in the table; the last three are models stopped by ``scan``'s worker limits."""


def compact(n: float | int, unit: str = "") -> str:
    """3 significant digits with a k/M/G/T/P prefix: the table has 80 columns for many models."""
    a = abs(n)
    for div, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{n / div:.3g} {prefix}{unit}"
    text = f"{n:.3g}" if isinstance(n, float) and not float(n).is_integer() else f"{int(n)}"
    return f"{text} {unit}".rstrip()


def _value(report: Report, key: str, unit: str = "") -> str:
    m = report.headline(key)
    if m is None or m.value is None or isinstance(m.value, (str, bool)):
        return "—"
    return _mark(m) + compact(m.value, unit) + ("*" if _at_defaults(report, m) else "")


def _mark(m: Metric) -> str:
    """The one bound mark (:func:`.mark`: ``≥``/``≤``/``≈``), unspaced: the table is narrow."""
    return mark(m.bound).rstrip()


def _at_defaults(report: Report, m: Metric) -> bool:
    """The value depends on dims and some dim is at a stated default (not bound by anyone)."""
    return bool(report.dims.defaults) and bool(m.formula)


def _sees(report: Report) -> str:
    reach = report.headline("reach")
    if reach is not None and isinstance(reach.value, (int, float)) and not isinstance(reach.value, bool):
        return f"{_mark(reach)}{compact(reach.value)} tok" + ("*" if report.dims.defaults else "")
    rf = report.headline("receptive_field")
    if rf is not None and isinstance(rf.value, (int, float)) and not isinstance(rf.value, bool):
        size = f"{rf.value:,}" if isinstance(rf.value, int) and rf.value < 10**5 else compact(rf.value)
        return f"RF {_mark(rf)}{size} {rf.unit or 'px'}"
    return "—"


def worst(report: Report) -> Finding | None:
    findings = report.all_findings()
    return max(findings, key=lambda f: f.severity) if findings else None


SHORT = {Severity.ERROR: "err", Severity.WARNING: "warn", Severity.INFO: "info"}


def common_dir(paths: list[str]) -> str:
    """The directory every model is under (said once above the table, cut from each row)."""
    dirs = [os.path.dirname(p) for p in paths]
    if len(paths) < 2 or not all(dirs):
        return ""
    try:
        common = os.path.commonpath(dirs)
    except ValueError:
        return ""
    return common + os.sep if common else ""


def name(path: str, prefix: str) -> str:
    short = path[len(prefix):] if prefix and path.startswith(prefix) else path
    return short[:-5] if short.endswith(".onnx") else short


def row(result: ModelResult, prefix: str = "") -> list[str]:
    r = result.report
    label = name(result.path, prefix)
    if r is None:
        return [label, "—", "—", "—", "—", "—", STATUS[result.status]]
    w = worst(r)
    return [label, _value(r, "macs"), _value(r, "params"), _value(r, "peak_activation", "B"), _sees(r),
            f"{SHORT[w.severity]} {w.code}" if w else "—", STATUS[result.status]]


def table(results: list[ModelResult], prefix: str = "") -> Table:
    cols = [Column("model", "model"), Column("macs", "MACs", "right"), Column("params", "params", "right"),
            Column("peak", "peak mem", "right"), Column("sees", "reach/RF", "right"), Column("worst", "worst"),
            Column("status", "status")]
    rows: list[list[Cell]] = [list(row(r, prefix)) for r in results]
    return Table("summary", "", cols, rows)


def render_rows(t: Table, width: int) -> list[str]:
    """The table in ``width`` columns; a model name too long for its cell gets a line of its own
    above its numbers (never cut: it is what the reader looks for)."""
    cols, rows = t.columns, [[str(c) for c in r] for r in t.rows]
    widths = [max([len(c.label)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    room = max(width - 2 - sum(widths[1:]) - 2 * (len(cols) - 1), 10)
    widths[0] = min(widths[0], room)

    def line(cells: list[str]) -> str:
        return "  " + "  ".join(c.rjust(w) if col.align == "right" else c.ljust(w)
                                for c, w, col in zip(cells, widths, cols, strict=True)).rstrip()

    out = [line([c.label for c in cols]), line(["-" * w for w in widths])]
    for r in rows:
        if len(r[0]) > widths[0]:
            name = r[0] if len(r[0]) <= width - 2 else "…" + r[0][len(r[0]) - (width - 3):]
            out.append("  " + name)
            out.append(line(["", *r[1:]]))
        else:
            out.append(line(r))
    return out


def verdict(results: list[ModelResult], exit_code: int) -> str:
    n = len(results)
    counts = {s: sum(1 for r in results if r.status == s) for s in STATUS}
    parts = [f"{counts['ok']} ok", f"{counts['fail']} failed"]
    stopped = {s: counts[s] for s in ("timeout", "memory", "crashed") if counts[s]}
    if counts["error"] or stopped:
        why = ", ".join(f"{k} {STOPPED[s]}" for s, k in stopped.items())
        parts.append(f"{counts['error'] + sum(stopped.values())} could not be analyzed" + (f" ({why})" if why else ""))
    return f"{n} model{'s' if n != 1 else ''}: {', '.join(parts)} · exit {exit_code}"


STOPPED = {"timeout": "timed out", "memory": "out of memory", "crashed": "crashed"}


def reasons(results: list[ModelResult], per_model: int = 3) -> list[str]:
    """One line per blocking finding (up to ``per_model``) and per model that could not be analyzed."""
    out = []
    for r in results:
        if r.exit_code == 2 or r.status in STOPPED:
            out.append(f"{r.status:<6} {r.error}")
        elif r.status == "fail" and r.report is not None:
            blocking = sorted(r.blocking(), key=lambda f: -f.severity)
            failed = r.report.failed_sections()
            for s in failed[:per_model]:
                out.append(f"fail   {r.path}: analyzer {s.analyzer} failed: {s.error}")
            for f in blocking[:max(per_model - len(failed), 0)]:
                out.append(f"fail   {r.path}: {f.severity} {f.code} {_one_line(f)}")
            extra = len(blocking) + len(failed) - per_model
            if extra > 0:
                out.append(f"fail   {r.path}: … {extra} more at or above fail-on = {r.fail_on}")
    return out


def _one_line(f: Finding) -> str:
    return " ".join(f.message.split())


def render_text(results: Sequence[ModelResult], exit_code: int, shown: Sequence[ModelResult] | None = None,
                note: str = "") -> str:
    """The closing block: the table of ``shown`` (default: every result, in order; ``scan`` passes
    them sorted and filtered, and a ``note`` saying how), then the verdict and reasons of all."""
    from .text import WIDTH

    results = list(results)
    shown = results if shown is None else list(shown)
    title = "== Summary "
    lines = [title + "=" * (WIDTH - len(title))]
    prefix = common_dir([r.path for r in shown])
    if prefix:
        lines.append(f"  models under {prefix}")
    if note:
        lines.append(f"  {note}")
    lines += render_rows(table(shown, prefix), WIDTH)
    lines.append("")
    lines.append(verdict(results, exit_code))
    lines += reasons(shown)
    if any("*" in c for r in shown for c in row(r)[1:5]):
        lines.append("* at stated default dims (bind them: --dim, --seq-len, or dims/seq-len in the config)")
    return "\n".join(lines) + "\n"


def render_markdown(results: list[ModelResult], exit_code: int) -> str:
    t = table(results)  # full paths: Markdown tables wrap
    out = ["## Summary", "", "| " + " | ".join(c.label for c in t.columns) + " |",
           "|" + "|".join("---:" if c.align == "right" else "---" for c in t.columns) + "|"]
    out += ["| " + " | ".join(str(v).replace("|", "\\|") for v in r) + " |" for r in t.rows]
    out += ["", f"**{verdict(results, exit_code)}**", ""]
    out += [f"- `{line}`" for line in reasons(results)]
    return "\n".join(out).rstrip() + "\n"


def summary_data(result: ModelResult) -> dict[str, Any]:
    """The headline values of one model, as numbers (JSON)."""
    r = result.report
    if r is None:
        return {}
    out: dict[str, Any] = {}
    from ..report import HEADLINES

    for key in HEADLINES:
        m = r.headline(key)
        if m is not None:
            out[key] = {"value": m.value, "unit": HEADLINES[key].unit, "bound": m.bound}
    w = worst(r)
    out["worst"] = {"code": w.code, "severity": str(w.severity)} if w else None
    return out


def model_entry(r: ModelResult) -> dict[str, Any]:
    """One model of the multi-model JSON; also one line of ``scan``'s JSON Lines."""
    return {"path": r.path, "status": r.status, "exit_code": r.exit_code, "error": r.error,
            "fail_on": r.fail_on, "config": r.config, "elapsed_s": round(r.elapsed_s, 4),
            "summary": summary_data(r), "report": r.report.to_dict() if r.report else None}


def multi_dict(results: list[ModelResult], exit_code: int, version: str) -> dict[str, Any]:
    return {
        "format": MULTI_FORMAT, "format_version": MULTI_VERSION, "tool": "model-analyze", "version": version,
        "exit_code": exit_code, "models": [model_entry(r) for r in results],
    }


def render_json(results: list[ModelResult], exit_code: int, version: str) -> str:
    return json.dumps(multi_dict(results, exit_code, version), indent=2, ensure_ascii=False) + "\n"


def error_block(result: ModelResult) -> str:
    return f"model-analyze — {result.path}\n  error: {result.error}\n"


def severity_counts(results: list[ModelResult]) -> dict[str, int]:
    counts = {str(s): 0 for s in Severity}
    for r in results:
        if r.report:
            for f in r.report.all_findings():
                counts[str(f.severity)] += 1
    return counts
