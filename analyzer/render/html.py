"""A self-contained HTML report: the verdict on top, then every section with the charts
its analyzer asked for (:class:`~model_analyze.report.Chart`), and the definitions of
every number at the bottom (each metric links to its own).

No JavaScript, no external assets: the file can be attached to a review or a CI artifact
and opened anywhere. It knows no analyzer by name: bars, lines and heatmaps are drawn
from the chart specs alone. It fits an 800-px window: charts scale (SVG viewBox), long
names break anywhere, wide tables scroll inside themselves, never the page.
"""

from __future__ import annotations

import html
import math
from typing import Any

from ..report import HEADLINES, Chart, Finding, Metric, Report, Section, Status, Table
from . import SIZE_UNITS, clean, formula_text, human, middle, table_cells, value_text
from .verdict import verdict

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:1em auto;max-width:980px;padding:0 12px;color:#222}
h1{font-size:1.3em;overflow-wrap:anywhere}h2{font-size:1.15em;border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:1.6em}h3{font-size:1em;margin:1em 0 .3em}
.scroll{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:.4em 0}td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:left;
vertical-align:top}
td{overflow-wrap:anywhere}td:first-child{min-width:9em}td.r,th.r{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.meta{color:#555}.f-error{color:#b00020}.f-warning{color:#8a5a00}.f-info{color:#335}
.failed{color:#b00020;font-weight:bold}
code{background:#f4f4f4;padding:0 .2em;overflow-wrap:anywhere}
svg{display:block;width:100%;height:auto;margin:.3em 0}
.verdict{border:2px solid #4a78b5;border-radius:6px;padding:.5em .9em;margin:1em 0;background:#f6f9fd}
.verdict h2{margin-top:.2em}.verdict th{white-space:nowrap;color:#4a78b5}.warn{color:#8a5a00;font-weight:bold}
.chart{margin:.8em 0}.more{margin:.2em 0 .8em}
a{color:#2a5a9a}
"""

BAR_LIMIT = 48
"""Bars drawn per chart; the others are listed under "+N more"."""
LINE_LABELS = 12
"""x-axis labels per line chart (every point keeps its name as a tooltip)."""


def esc(x: Any) -> str:
    return html.escape(clean(x))


def table(t: Table) -> str:
    head = "".join(f'<th class="{"r" if c.align == "right" else ""}">{esc(c.label)}</th>' for c in t.columns)
    rows = []
    for row in table_cells(t):
        cells = "".join(f'<td class="{"r" if c.align == "right" else ""}">{esc(v)}</td>'
                        for c, v in zip(t.columns, row, strict=False))
        rows.append(f"<tr>{cells}</tr>")
    title = f"<h3>{esc(t.title)}</h3>" if t.title else ""
    note = f'<p class="meta">{esc(t.note)}</p>' if t.note else ""
    return f'{title}<div class="scroll"><table><tr>{head}</tr>{"".join(rows)}</table></div>{note}'


def finding(f: Finding) -> str:
    where = f" <code>{esc(f.node)}</code>" if f.node else ""
    return (f'<li class="f-{f.severity}"><b>{esc(f.severity)}</b> <code>{esc(f.code)}</code> '
            f"{esc(f.message)}{where}</li>")


# -- charts ------------------------------------------------------------------------------------
def _fmt(v: float, unit: str) -> str:
    return human(v, unit if unit in SIZE_UNITS else "")


def _svg(kind: str, key: str, title: str, w: int, h: int, body: str) -> str:
    return (f'<svg class="chart-{kind}" data-chart="{esc(key)}" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="{esc(title)}" font-size="11">{body}</svg>')


def _more_list(c: Chart, hidden: list[tuple[str, Any, str]]) -> str:
    parts = []
    if hidden:
        items = "".join(f"<tr><td>{esc(n)}</td><td class=\"r\">{esc(_fmt(v, c.y_unit) if v is not None else '?')}"
                        f"</td><td class=\"meta\">{esc(d)}</td></tr>" for n, v, d in hidden)
        parts.append(f'<details class="more"><summary>+{len(hidden)} more (not drawn)</summary>'
                     f'<div class="scroll"><table>{items}</table></div></details>')
    if c.more:
        parts.append(f'<p class="meta more">+{c.more} more not in the chart: {esc(c.more_note)}</p>')
    return "".join(parts)


def bar_chart(c: Chart) -> str:
    """Horizontal bars in the order given, labelled, scaled to the largest."""
    points = [(p.label, p.value, p.detail) for s in c.series[:1] for p in s.points]
    drawn = [(name, v, detail) for name, v, detail in points[:BAR_LIMIT] if isinstance(v, (int, float)) and v > 0]
    hidden = points[BAR_LIMIT:] + [x for x in points[:BAR_LIMIT] if x not in drawn]
    if not drawn:
        return _more_list(c, hidden)
    top = max(v for _, v, _ in drawn)
    bar_h, label_w, bar_w, pad_top = 18, 240, 420, 18
    rows = []
    for k, (name, v, detail) in enumerate(drawn):
        w = max(1.0, bar_w * v / top)
        y = pad_top + k * bar_h
        rows.append(f'<g class="bar"><title>{esc(name)}: {esc(_fmt(v, c.y_unit))} {esc(detail)}</title>'
                    f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{esc(middle(name, 36))}</text>'
                    f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="#4a78b5"/>'
                    f'<text x="{label_w + w + 4:.1f}" y="{y + 13}">{esc(_fmt(v, c.y_unit))}</text></g>')
    height = pad_top + bar_h * len(drawn) + 8
    axis = (f'<text x="{label_w}" y="12" fill="#555">{esc(c.y_label)}{f" ({c.y_unit})" if c.y_unit else ""} →'
            f'</text><text x="{label_w - 6}" y="12" text-anchor="end" fill="#555">{esc(c.x_label)}</text>')
    return _svg("bar", c.key, c.title, label_w + bar_w + 80, height, axis + "".join(rows)) + _more_list(c, hidden)


def line_chart(c: Chart) -> str:
    """Points in order along x (each labelled by name), y linear or log2."""
    pts = [(p.label, p.value, p.detail) for s in c.series[:1] for p in s.points
           if isinstance(p.value, (int, float)) and p.value > 0]
    if not pts:
        return ""
    w, h, left, right, top_pad, bottom = 760, 330, 60, 110, 20, 120
    vmax = max(v for _, v, _ in pts)

    def scale(v: float) -> float:
        if c.log_y:
            return math.log2(v) / (math.log2(vmax) or 1.0) if v >= 1 else 0.0
        return v / vmax

    n = len(pts)
    xs = [left + (i * (w - left - right) / (n - 1) if n > 1 else (w - left - right) / 2) for i in range(n)]
    ys = [h - bottom - scale(v) * (h - bottom - top_pad) for _, v, _ in pts]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(zip(xs, ys, strict=True)))
    dots = "".join(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#4a78b5"><title>{esc(name)}: '
                   f'{esc(_fmt(v, c.y_unit))} {esc(detail)}</title></circle>'
                   for x, y, (name, v, detail) in zip(xs, ys, pts, strict=True))
    ticks = []
    last_y = None
    for v in sorted({vmax, *([2 ** k for k in range(0, int(math.log2(vmax)) + 1, max(1, int(math.log2(vmax)) // 5))]
                             if c.log_y and vmax >= 2 else [vmax / 2])}, reverse=True):
        y = h - bottom - scale(v) * (h - bottom - top_pad)
        if last_y is not None and y - last_y < 12:  # labels would overlap
            continue
        last_y = y
        ticks.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#999"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(_fmt(v, ""))}</text>')
    step = max(1, math.ceil(n / LINE_LABELS))
    xlabels = "".join(f'<text transform="translate({x:.1f},{h - bottom + 12}) rotate(35)" fill="#555">'
                      f'{esc(middle(name, 20))}</text>' for i, (x, (name, _, _)) in enumerate(zip(xs, pts, strict=True))
                      if i % step == 0 or i == n - 1)
    axes = (f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="#999"/>'
            f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{h - bottom}" stroke="#999"/>'
            f'<text x="{left}" y="{top_pad - 6}" fill="#555">{esc(c.y_label)}'
            f'{f" ({c.y_unit})" if c.y_unit else ""}{" — log scale" if c.log_y else ""}</text>'
            f'<text x="{left}" y="{h - 4}" fill="#555">{esc(c.x_label)} →</text>')
    last = f'<text x="{xs[-1] - 4:.1f}" y="{ys[-1] - 8:.1f}" text-anchor="end">{esc(_fmt(pts[-1][1], c.y_unit))}</text>'
    body = axes + "".join(ticks) + xlabels + f'<path d="{path}" fill="none" stroke="#4a78b5" stroke-width="1.5"/>'
    return _svg("line", c.key, c.title, w, h, body + dots + last)


def heatmap(c: Chart) -> str:
    """One row per series, one cell per point; value in [0, 1] (shade), labelled axes."""
    rows = [s for s in c.series if s.points]
    if not rows:
        return ""
    cols = max(len(s.points) for s in rows)
    label_w, cell_w, cell_h, top_pad, bottom = 110, 600 / cols, max(4.0, min(16.0, 320 / len(rows))), 18, 34
    out = []
    for r, s in enumerate(rows):
        y = top_pad + r * cell_h
        if len(rows) <= 40 or r % math.ceil(len(rows) / 40) == 0 or r == len(rows) - 1:
            out.append(f'<text x="{label_w - 6}" y="{y + cell_h - 2:.1f}" text-anchor="end" font-size="10">'
                       f'{esc(middle(s.name, 18))}</text>')
        cells = []
        for k, p in enumerate(s.points):
            v = max(0.0, min(1.0, float(p.value or 0)))
            if v <= 0:
                continue
            cells.append(f'<rect class="cell" x="{label_w + k * cell_w:.2f}" y="{y:.2f}" width="{cell_w + .3:.2f}" '
                         f'height="{cell_h:.2f}" fill="#4a78b5" fill-opacity="{0.15 + 0.85 * v:.2f}">'
                         f'<title>{esc(s.name)}, {esc(p.label)}: {100 * v:.0f}%</title></rect>')
        out.append(f'<g class="row">{"".join(cells)}</g>')
    height = top_pad + len(rows) * cell_h + bottom
    first = rows[0].points[0].label
    last = rows[0].points[-1].label
    axes = (f'<rect x="{label_w}" y="{top_pad}" width="600" height="{len(rows) * cell_h:.1f}" fill="none" '
            f'stroke="#999"/><text x="{label_w}" y="{top_pad - 5}" fill="#555">{esc(c.y_label)} ↓</text>'
            f'<text x="{label_w}" y="{height - bottom + 14:.1f}">{esc(first)}</text>'
            f'<text x="{label_w + 600}" y="{height - bottom + 14:.1f}" text-anchor="end">{esc(last)}</text>'
            f'<text x="{label_w + 300}" y="{height - 6:.1f}" text-anchor="middle" fill="#555">{esc(c.x_label)}'
            f'{f" ({c.x_unit})" if c.x_unit else ""} →</text>')
    return _svg("heatmap", c.key, c.title, label_w + 600 + 20, int(height), axes + "".join(out))


DRAW = {"bar": bar_chart, "line": line_chart, "heatmap": heatmap}


def chart(c: Chart) -> str:
    draw = DRAW.get(c.kind)
    body = draw(c) if draw else f'<p class="meta">chart kind {esc(c.kind)!r} not drawn by this renderer</p>'
    note = f'<p class="meta">{esc(c.note)}</p>' if c.note else ""
    return f'<div class="chart"><h3>{esc(c.title)}</h3>{body}{note}</div>'


# -- sections ------------------------------------------------------------------------------------
def _doc_id(m: Metric) -> str:
    return "def-" + m.doc.rsplit("#", 1)[-1]


def metrics(ms: list[Metric], formulas: bool) -> str:
    rows = []
    for m in ms:
        extra = "; ".join(x for x in (formula_text(m.formula, m.valid_for, m.below) if formulas else "", m.note) if x)
        value = esc(value_text(m.value, m.unit, m.bound))
        if isinstance(m.value, str) and len(m.value) > 24:  # a sentence, not a number: let it wrap
            rows.append(f'<tr><td><a href="#{esc(_doc_id(m))}">{esc(m.label)}</a></td>'
                        f'<td colspan="2">{value}{" <span class=meta>(" + esc(extra) + ")</span>" if extra else ""}'
                        f"</td></tr>")
            continue
        rows.append(f'<tr><td><a href="#{esc(_doc_id(m))}">{esc(m.label)}</a></td>'
                    f'<td class="r">{value}</td><td class="meta">{esc(extra)}</td></tr>')
    return f'<div class="scroll"><table>{"".join(rows)}</table></div>'


def section(s: Section, formulas: bool) -> str:
    out = [f'<h2 id="{esc(s.analyzer)}">{esc(s.title)}</h2>']
    if s.status is Status.FAILED:
        return "".join(out) + f'<p class="failed">failed: {esc(s.error)}</p>'
    if s.summary:
        out.append(f"<p>{esc(s.summary)}</p>")
    if s.metrics:
        out.append(metrics(s.metrics, formulas))
    if formulas and s.symbols:
        out.append('<p class="meta">where ' + esc(", ".join(f"{k} = {v}" for k, v in s.symbols.items())) + "</p>")
    out += [chart(c) for c in s.charts]
    out += [table(t) for t in s.tables]
    if s.findings:
        out.append("<ul>" + "".join(finding(f) for f in s.findings) + "</ul>")
    return "".join(out)


def verdict_box(report: Report) -> str:
    v = verdict(report)
    rows = "".join(f"<tr><th>{esc(label)}</th><td>{esc(' · '.join(items))}</td></tr>" for label, items in v.rows)
    warn = (f'<p class="warn">warning: guessed defaults — bind with <code>{esc(v.warning)}</code></p>'
            if v.warning else "")
    return f'<div class="verdict" id="verdict"><h2>Verdict at {esc(v.binding)}</h2>{warn}<table>{rows}</table></div>'


def definitions(report: Report) -> str:
    """Every metric printed, with its unit and description: the targets of the links."""
    seen: dict[str, Metric] = {}
    for s in report.sections:
        for m in s.metrics:
            seen.setdefault(_doc_id(m), m)
    items = []
    for anchor, m in seen.items():
        head = HEADLINES.get(m.headline or "")
        desc = m.description or (head.description if head else "")
        items.append(f'<tr id="{esc(anchor)}"><td>{esc(m.label)}</td><td>{esc(m.unit)}</td>'
                     f'<td>{esc(desc)} <span class="meta">({esc(m.doc)})</span></td></tr>')
    return ('<h2 id="definitions">Definitions</h2><div class="scroll"><table><tr><th>metric</th><th>unit</th>'
            f'<th>meaning</th></tr>{"".join(items)}</table></div>')


def render(report: Report, formulas: bool = False) -> str:
    m, d = report.model, report.dims
    show = formulas or bool(d.guessed())
    dims = [f"{k}={v} (bound)" for k, v in d.bound.items()] + [f"{k}={v} (default)" for k, v in d.defaults.items()]
    def shape(t: Any, label: str) -> str:
        return ", ".join(str(x) for x in (t.at_binding if label == "output" and t.at_binding else t.shape))

    io = "".join(f"<li>{label} <code>{esc(t.name)}</code> {esc(t.dtype)}[{esc(shape(t, label))}]</li>"
                 for label, ts in (("input", m.inputs), ("output", m.outputs)) for t in ts)
    core = "<ul>" + "".join(finding(f) for f in report.findings) + "</ul>" if report.findings else ""
    toc = " · ".join(f'<a href="#{esc(s.analyzer)}">{esc(s.title)}</a>' for s in report.sections)
    body = (f"<h1>model-analyze report: <code>{esc(m.path)}</code></h1>"
            + verdict_box(report)
            + f'<p class="meta">{esc(m.producer or "unknown producer")} · IR {m.ir_version} · {m.nodes:,} nodes · '
            f"{m.initializers:,} initializers · dims: {esc(', '.join(dims) or 'all concrete')} · "
            f"model-analyze {esc(report.version)}</p><ul>{io}</ul>{core}<p>{toc} · "
            f'<a href="#definitions">Definitions</a></p>'
            + "".join(section(s, show) for s in report.sections) + definitions(report))
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>model-analyze: '
            f"{esc(m.path)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")
