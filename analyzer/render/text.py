"""The default text report, readable in an 80-column terminal."""

from __future__ import annotations

import textwrap

from ..report import Finding, Report, Section, Severity, Status, Table
from . import cell, human

WIDTH = 80


def render_table(table: Table, width: int = WIDTH, indent: str = "  ") -> list[str]:
    cols = table.columns
    rows = [[cell(v) for v in row] for row in table.rows]
    widths = [max([len(c.label)] + [len(r[i]) for r in rows if i < len(r)]) for i, c in enumerate(cols)]
    avail = width - len(indent) - 2 * (len(cols) - 1)
    while sum(widths) > avail:
        i = max(range(len(widths)), key=lambda k: widths[k])
        if widths[i] <= 8:
            break
        widths[i] -= 1

    def fit(text: str, w: int, align: str) -> str:
        if len(text) > w:
            # Keep both ends: names like "/layer4/layer4.2/relu_2/Relu_output_0"
            # carry their meaning at the start and at the end.
            head = max((w - 1) // 3, 0)
            text = text[:head] + "…" + text[len(text) - (w - 1 - head):] if w > 1 else text[:w]
        return text.rjust(w) if align == "right" else text.ljust(w)

    lines = []
    if table.title:
        lines.append(f"{indent}{table.title}")
    lines.append(indent + "  ".join(fit(c.label, widths[i], c.align) for i, c in enumerate(cols)).rstrip())
    lines.append(indent + "  ".join("-" * w for w in widths))
    for r in rows:
        lines.append(indent + "  ".join(fit(r[i] if i < len(r) else "", widths[i], c.align)
                                        for i, c in enumerate(cols)).rstrip())
    if table.note:
        lines += textwrap.wrap(table.note, width, initial_indent=indent, subsequent_indent=indent)
    return lines


def render_finding(f: Finding, indent: str = "  ") -> list[str]:
    where = f" [{f.node}]" if f.node else ""
    text = f"{f.severity!s:7} {f.code} {f.message}{where}"
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "        ")


def render_section(s: Section) -> list[str]:
    title = f"== {s.title} "
    lines = ["", title + "=" * max(WIDTH - len(title), 3)]
    if s.status is Status.FAILED:
        lines += textwrap.wrap(f"FAILED: {s.error}", WIDTH, initial_indent="  ", subsequent_indent="  ")
    elif s.summary:
        lines += textwrap.wrap(s.summary, WIDTH, initial_indent="  ", subsequent_indent="  ")
    if s.metrics:
        label_w = min(max(len(m.label) for m in s.metrics), 34)
        for m in s.metrics:
            value = human(m.value, m.unit) if not isinstance(m.value, str) else m.value
            line = f"  {m.label.ljust(label_w)}  {value}"
            extra = []
            if m.formula and m.formula != value:
                extra.append(m.formula)
            if m.note:
                extra.append(m.note)
            if extra:
                line += f"   ({'; '.join(extra)})"
            lines += textwrap.wrap(line, WIDTH, subsequent_indent=" " * (label_w + 4))
    for t in s.tables:
        lines.append("")
        lines += render_table(t)
    if s.findings and s.status is not Status.FAILED:
        lines.append("")
        for f in sorted(s.findings, key=lambda f: -f.severity):
            lines += render_finding(f)
    return lines


def render(report: Report) -> str:
    m = report.model
    lines = [f"model-analyze {report.version} — {m.path}"]
    opsets = ", ".join(f"{k} {v}" for k, v in sorted(m.opsets.items()))
    info = f"{m.producer or 'unknown producer'} · IR {m.ir_version} · opset {opsets}"
    lines += textwrap.wrap(info, WIDTH, initial_indent="  ", subsequent_indent="  ")
    lines.append(f"  {m.nodes:,} nodes · {m.initializers:,} initializers · "
                 f"{human(m.file_bytes, 'B')} on disk")
    for label, tensors in (("inputs", m.inputs), ("outputs", m.outputs)):
        for i, t in enumerate(tensors[:8]):
            head = f"  {label + ':' if i == 0 else '':9}"
            lines.append(f"{head}{t.name} {t.dtype}[{', '.join(t.shape)}]")
        if len(tensors) > 8:
            lines.append(f"  {'':9}… {len(tensors) - 8} more")
    d = report.dims
    parts = [f"{k}={v} (bound)" for k, v in d.bound.items()]
    parts += [f"{k}={v} (default)" for k, v in d.defaults.items()]
    parts += [f"{k}={'×'.join(map(str, v))} (input shape)" for k, v in d.input_shapes.items()]
    dim_line = "  dims:    " + (" · ".join(parts) if parts else "all concrete")
    lines += textwrap.wrap(dim_line, WIDTH, subsequent_indent=" " * 11)
    if report.model.unknown_ops:
        ops = ", ".join(f"{k}×{v}" for k, v in sorted(report.model.unknown_ops.items()))
        lines += textwrap.wrap(f"  unknown: {ops}", WIDTH, subsequent_indent=" " * 11)
    core = [f for f in report.findings if f.severity >= Severity.WARNING or f.code.startswith("D")]
    if core:
        lines.append("")
        for f in sorted(core, key=lambda f: -f.severity):
            lines += render_finding(f)
    for s in report.sections:
        lines += render_section(s)
    lines.append("")
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


def _summary(report: Report) -> str:
    counts = {sev: 0 for sev in Severity}
    for f in report.all_findings():
        counts[f.severity] += 1
    failed = report.failed_sections()
    parts = [f"{counts[s]} {s}{'s' if counts[s] != 1 else ''}" for s in reversed(Severity)]
    text = "findings: " + ", ".join(parts)
    if failed:
        text += f" · {len(failed)} analyzer(s) failed: " + ", ".join(s.analyzer for s in failed)
    return text + f" · {report.elapsed_s:.2f} s"

