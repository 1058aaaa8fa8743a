"""The default text report, readable in an 80-column terminal.

It opens with the verdict (cost, sight, hotspot, findings, next step) and then the
sections. No line exceeds 80 columns and no name is hard-wrapped mid-word: a token too
long for a line is shortened in the middle (full names are in the JSON/HTML). Formulas
are printed only where they help: when the numbers rest on default dims, in their
readable form; with every dim bound, values only (``--formulas`` shows them anyway).
"""

from __future__ import annotations

import textwrap

from ..report import Finding, Report, Section, Severity, Status, Table, TensorSummary
from . import chart_pointer, clean, formula_text, human, middle, table_cells, value_text
from .verdict import MAX_LINES, verdict

WIDTH = 80


def wrap(text: str, width: int = WIDTH, indent: str = "", subsequent: str | None = None) -> list[str]:
    """Wrap at spaces only; a word longer than a line is shortened in its middle.
    Every line of prose passes here, so control characters of the model's names
    are escaped here (``render.clean``): a newline in a name cannot start a line."""
    text = clean(text)
    subsequent = indent if subsequent is None else subsequent
    room = width - max(len(indent), len(subsequent))
    words = [middle(w, room) for w in text.split(" ")]
    lines = textwrap.wrap(" ".join(words), width, initial_indent=indent, subsequent_indent=subsequent,
                          break_long_words=False, break_on_hyphens=False) or [indent.rstrip()]
    return [ln.replace(KEEP, " ") for ln in lines]


KEEP = "\u00a0"
"""A space wrap() never breaks at (a command line to copy stays on one line)."""


def render_table(table: Table, width: int = WIDTH, indent: str = "  ") -> list[str]:
    cols = table.columns
    rows = table_cells(table)
    widths = [max([len(c.label)] + [len(r[i]) for r in rows if i < len(r)]) for i, c in enumerate(cols)]
    avail = width - len(indent) - 2 * (len(cols) - 1)
    for floor in (8, 4, 1):
        while sum(widths) > avail:
            i = max(range(len(widths)), key=lambda k: widths[k])
            if widths[i] <= floor:
                break
            widths[i] -= 1

    def fit(text: str, w: int, align: str) -> str:
        text = middle(text, w)
        return text.rjust(w) if align == "right" else text.ljust(w)

    lines = []
    if table.title:
        lines += wrap(table.title, width, indent)
    lines.append(indent + "  ".join(fit(c.label, widths[i], c.align) for i, c in enumerate(cols)).rstrip())
    lines.append(indent + "  ".join("-" * w for w in widths))
    for r in rows:
        lines.append(indent + "  ".join(fit(r[i] if i < len(r) else "", widths[i], c.align)
                                        for i, c in enumerate(cols)).rstrip())
    if table.note:
        lines += wrap(table.note, width, indent)
    return lines


def render_finding(f: Finding, indent: str = "  ") -> list[str]:
    where = f" [{middle(str(f.node), 60)}]" if f.node else ""
    text = f"{f.severity!s:7} {f.code} {f.message}{where}"
    return wrap(text, WIDTH, indent, indent + "        ")


def render_section(s: Section, formulas: bool = False) -> list[str]:
    title = f"== {middle(s.title, WIDTH - 8)} "
    lines = ["", title + "=" * max(WIDTH - len(title), 3)]
    if s.status is Status.FAILED:
        lines += wrap(f"FAILED: {s.error}", WIDTH, "  ")
    elif s.summary:
        lines += wrap(s.summary, WIDTH, "  ")
    if s.metrics:
        label_w = min(max(len(m.label) for m in s.metrics), 34)
        for m in s.metrics:
            value = value_text(m.value, m.unit, m.bound)
            line = f"  {m.label.ljust(label_w)}  {value}"
            extra = []
            if formulas and m.formula and m.formula != value:
                extra.append(formula_text(m.formula, m.valid_for, m.below))
            if m.note:
                extra.append(m.note)
            if extra:
                line += f"   ({'; '.join(extra)})"
            lines += wrap(line, WIDTH, "", " " * (label_w + 4))
        used = [m.formula or "" for m in s.metrics]
        defs = [f"{k} = {v}" for k, v in s.symbols.items() if formulas and any(k in u for u in used)]
        if defs:
            lines += wrap("where " + ", ".join(defs), WIDTH, "  ", "        ")
    for t in s.tables:
        lines.append("")
        lines += render_table(t)
    for c in s.charts:
        note = chart_pointer(c)
        if note:
            lines += wrap(note, WIDTH, "  ")
    if s.findings and s.status is not Status.FAILED:
        lines.append("")
        for f in sorted(s.findings, key=lambda f: -f.severity):
            lines += render_finding(f)
    return lines


def render_verdict(report: Report) -> list[str]:
    v = verdict(report)
    title = f"== Verdict at {v.binding} "
    lines = wrap(title + "=" * max(WIDTH - len(title), 3), WIDTH, "", "   ") if len(title) < WIDTH - 3 else \
        wrap(title, WIDTH, "", "   ")
    if v.warning:
        lines += wrap(f"warning: guessed defaults — bind with `{v.warning.replace(' ', KEEP)}`", WIDTH, "  ", "    ")
    rows = [wrap(f"  {label:9} {' · '.join(items)}", WIDTH, "", " " * 12) for label, items in v.rows]
    # A glance: each row at most two lines, and the whole block at most MAX_LINES; the
    # secondary rows shrink first, the findings and the next step are always shown.
    budget = [2] * len(rows)
    optional = [i for i, (label, _) in enumerate(v.rows) if label not in ("cost", "findings", "next")]
    while len(lines) + sum(min(b, len(r)) for b, r in zip(budget, rows, strict=True)) > MAX_LINES:
        shrink = next((i for i in reversed(optional) if budget[i] > 1 and len(rows[i]) > 1), None)
        if shrink is None:
            shrink = next((i for i in reversed(optional) if budget[i] > 0), None)
        if shrink is None:
            break
        budget[shrink] -= 1
    for b, r in zip(budget, rows, strict=True):
        lines += _clip(r, b)
    return lines


def _clip(lines: list[str], n: int) -> list[str]:
    """The first ``n`` lines, the last one ending in "…" when something was cut."""
    if len(lines) <= n:
        return lines
    if n == 0:
        return []
    out = lines[:n]
    out[-1] = out[-1][:WIDTH - 1].rstrip() + "…"
    return out


def _shape(t: TensorSummary, evaluated: bool) -> str:
    dims = [str(x) for x in t.at_binding] if evaluated and t.at_binding is not None else \
        [middle(x, 24) for x in t.shape]
    return f"{t.dtype}[{', '.join(dims)}]"


def render(report: Report, formulas: bool = False) -> str:
    m = report.model
    show_formulas = formulas or bool(report.dims.guessed())
    lines = [middle(clean(f"model-analyze {report.version} — {m.path}"), WIDTH)]
    lines += render_verdict(report)
    lines.append("")
    opsets = ", ".join(f"{k} {v}" for k, v in sorted(m.opsets.items()))
    info = f"{m.producer or 'unknown producer'} · IR {m.ir_version} · opset {opsets}"
    lines += wrap(info, WIDTH, "  ")
    lines.append(f"  {m.nodes:,} nodes · {m.initializers:,} initializers · "
                 f"{human(m.file_bytes, 'B')} on disk")
    for label, tensors, evaluated in (("inputs", m.inputs, False), ("outputs", m.outputs, True)):
        for i, t in enumerate(tensors[:8]):
            head = f"  {label + ':' if i == 0 else '':9}"
            lines += wrap(f"{head}{t.name} {_shape(t, evaluated)}", WIDTH, "", " " * 13)
        if len(tensors) > 8:
            lines.append(f"  {'':9}… {len(tensors) - 8} more")
    d = report.dims
    parts = [f"{k}={v} (bound)" for k, v in d.bound.items()]
    parts += [f"{k}={v} (default{', ' + d.default_from[k] if d.default_from.get(k, 'fallback') != 'fallback' else ''})"
              for k, v in d.defaults.items()]
    parts += [f"{k}={'×'.join(map(str, v))} (input shape)" for k, v in d.input_shapes.items()]
    lines += wrap("  dims:    " + (" · ".join(parts) if parts else "all concrete"), WIDTH, "", " " * 11)
    if report.model.unknown_ops:
        ops = ", ".join(f"{k}×{v}" for k, v in sorted(report.model.unknown_ops.items()))
        lines += wrap(f"  unknown: {ops}", WIDTH, "", " " * 11)
    core = report.findings  # every core finding: loading, bindings, config (C001), budgets, baseline
    if core:
        lines.append("")
        for f in sorted(core, key=lambda f: -f.severity):
            lines += render_finding(f)
    for s in report.sections:
        lines += render_section(s, show_formulas)
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
    return middle(text + f" · {report.elapsed_s:.2f} s", WIDTH)
