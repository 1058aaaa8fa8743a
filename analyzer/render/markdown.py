"""Markdown output: the same report as GitHub-flavoured tables (PR comments, wikis)."""

from __future__ import annotations

from ..report import Report, Section, Status, Table
from . import chart_pointer, clean, table_cells, value_text
from .verdict import verdict


def table(t: Table) -> list[str]:
    if not t.columns:
        return []
    out = [f"**{t.title}**", ""] if t.title else []
    out.append("| " + " | ".join(c.label for c in t.columns) + " |")
    out.append("|" + "|".join("---:" if c.align == "right" else "---" for c in t.columns) + "|")
    for row in table_cells(t):
        out.append("| " + " | ".join(text.replace("|", "\\|") for text in row) + " |")
    if t.note:
        out += ["", f"_{t.note}_"]
    return out + [""]


def section(s: Section) -> list[str]:
    out = [f"## {s.title}", ""]
    if s.status is Status.FAILED:
        return out + [f"**Failed:** `{s.error}`", ""]
    if s.summary:
        out += [s.summary, ""]
    if s.metrics:
        out += ["| metric | value |", "|---|---:|"]
        for m in s.metrics:
            value = value_text(m.value, m.unit, m.bound).replace("|", "\\|")
            out.append(f"| [{m.label}]({m.doc}) | {value} |")
        out.append("")
    for t in s.tables:
        out += table(t)
    notes = [f"_{n}_" for n in map(chart_pointer, s.charts) if n]
    if notes:
        out += [*notes, ""]
    if s.findings:
        out += [f"- **{f.severity}** `{f.code}` {f.message}" + (f" — `{f.node}`" if f.node else "")
                for f in s.findings]
        out.append("")
    return out


def render(report: Report) -> str:
    m = report.model
    d = report.dims
    bindings = [f"`{k}={v}`" for k, v in d.bound.items()] + [f"`{k}={v}` (default)" for k, v in d.defaults.items()]
    out = [f"# model-analyze report: `{m.path}`", "",
           f"{m.producer or 'unknown producer'} · IR {m.ir_version} · {m.nodes:,} nodes · "
           f"dims: {', '.join(bindings) or 'all concrete'}", ""]
    v = verdict(report)
    out += [f"**Verdict at {v.binding}**", ""]
    if v.warning:
        out += [f"> **warning**: guessed defaults — bind with `{v.warning}`", ""]
    out += [f"- **{label}**: {' · '.join(items)}" for label, items in v.rows] + [""]
    core = report.findings
    if core:
        out += [f"- **{f.severity}** `{f.code}` {f.message}" for f in core] + [""]
    for s in report.sections:
        out += section(s)
    # Each element of ``out`` is one line: control characters of the model's names are
    # escaped here, so a newline in a name cannot start a forged list item.
    return "\n".join(clean(line) for line in out).rstrip() + "\n"
