"""A self-contained HTML report: the same sections as the text report, plus two
inline SVG charts — receptive-field growth per stride stage and FLOPs per layer.

No JavaScript, no external assets: the file can be attached to a review or a CI
artifact and opened anywhere.
"""

from __future__ import annotations

import html
import math
from typing import Any

from ..report import Finding, Report, Section, Status, Table
from . import cell, human

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:left}
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}.meta{color:#555}
.f-error{color:#b00020}.f-warning{color:#8a5a00}.f-info{color:#335}.failed{color:#b00020;font-weight:bold}
code{background:#f4f4f4;padding:0 .2em}svg{margin:.5em 0}
"""


def esc(x: Any) -> str:
    return html.escape(str(x))


def table(t: Table) -> str:
    head = "".join(f'<th class="{"r" if c.align == "right" else ""}">{esc(c.label)}</th>' for c in t.columns)
    rows = []
    for row in t.rows:
        cells = "".join(f'<td class="{"r" if c.align == "right" else ""}">{esc(cell(v))}</td>'
                        for c, v in zip(t.columns, row, strict=False))
        rows.append(f"<tr>{cells}</tr>")
    title = f"<h3>{esc(t.title)}</h3>" if t.title else ""
    note = f'<p class="meta">{esc(t.note)}</p>' if t.note else ""
    return f"{title}<table><tr>{head}</tr>{''.join(rows)}</table>{note}"


def finding(f: Finding) -> str:
    where = f" <code>{esc(f.node)}</code>" if f.node else ""
    return (f'<li class="f-{f.severity}"><b>{esc(f.severity)}</b> <code>{esc(f.code)}</code> '
            f"{esc(f.message)}{where}</li>")


def bar_chart(title: str, items: list[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars, one per item, scaled to the largest."""
    items = [(k, v) for k, v in items if isinstance(v, (int, float)) and v > 0][:20]
    if not items:
        return ""
    top = max(v for _, v in items)
    h, label_w, bar_w = 18, 260, 560
    rows = []
    for k, (name, v) in enumerate(items):
        w = max(1.0, bar_w * v / top)
        y = k * h
        rows.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" font-size="11">{esc(name[-40:])}</text>'
                    f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{h - 6}" fill="#4a78b5"/>'
                    f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="11">{esc(human(v, unit))}</text>')
    height = h * len(items)
    return (f"<h3>{esc(title)}</h3><svg width=\"{label_w + bar_w + 90}\" height=\"{height}\" "
            f"role=\"img\" aria-label=\"{esc(title)}\">{''.join(rows)}</svg>")


def line_chart(title: str, points: list[tuple[str, float]], ylabel: str) -> str:
    """Receptive field (log scale) along the conv/pool nodes in graph order."""
    pts = [(k, v) for k, v in points if isinstance(v, (int, float)) and v > 0]
    if len(pts) < 2:
        return ""
    w, h, pad = 760, 240, 40
    top = math.log2(max(v for _, v in pts)) or 1.0
    xy = [(pad + i * (w - 2 * pad) / (len(pts) - 1), h - pad - math.log2(v) / top * (h - 2 * pad))
          for i, (_, v) in enumerate(pts)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(xy))
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#4a78b5"><title>{esc(n)}: {v:g}</title>'
                   f'</circle>' for (x, y), (n, v) in zip(xy, pts, strict=True))
    last = (f'<text x="{xy[-1][0] - 4:.1f}" y="{xy[-1][1] - 8:.1f}" text-anchor="end" font-size="11">'
            f"{pts[-1][1]:g}</text>")
    axes = (f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#999"/>'
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#999"/>'
            f'<text x="{pad}" y="{pad - 8}" font-size="11">{esc(ylabel)} (log scale)</text>')
    return (f"<h3>{esc(title)}</h3><svg width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{esc(title)}\">"
            f'{axes}<path d="{path}" fill="none" stroke="#4a78b5" stroke-width="1.5"/>{dots}{last}</svg>')


def charts(s: Section) -> str:
    if s.analyzer == "receptive-field":
        growth = s.data.get("growth") or {}
        out = []
        for axis, rows in growth.items():
            out.append(line_chart(f"Receptive field along {axis} by conv/pool node",
                                  [(r["node"], r["rf"]) for r in rows], "RF"))
        return "".join(out)
    if s.analyzer == "hotspots":
        layers = [(r.get("name", ""), r.get("flops")) for r in s.data.get("layers", [])]
        layers.sort(key=lambda x: -(x[1] or 0) if isinstance(x[1], (int, float)) else 0)
        return bar_chart("FLOPs per layer (at the report's binding)", layers)
    return ""


def section(s: Section) -> str:
    out = [f'<h2 id="{esc(s.analyzer)}">{esc(s.title)}</h2>']
    if s.status is Status.FAILED:
        return "".join(out) + f'<p class="failed">failed: {esc(s.error)}</p>'
    if s.summary:
        out.append(f"<p>{esc(s.summary)}</p>")
    if s.metrics:
        rows = []
        for m in s.metrics:
            value = m.value if isinstance(m.value, str) else human(m.value, m.unit)
            extra = "; ".join(x for x in (m.formula or "", m.note) if x)
            rows.append(f'<tr><td>{esc(m.label)}</td><td class="r">{esc(value)}</td>'
                        f'<td class="meta">{esc(extra)}</td></tr>')
        out.append(f"<table>{''.join(rows)}</table>")
    out.append(charts(s))
    out += [table(t) for t in s.tables]
    if s.findings:
        out.append("<ul>" + "".join(finding(f) for f in s.findings) + "</ul>")
    return "".join(out)


def render(report: Report) -> str:
    m, d = report.model, report.dims
    dims = [f"{k}={v} (bound)" for k, v in d.bound.items()] + [f"{k}={v} (default)" for k, v in d.defaults.items()]
    io = "".join(f"<li>{label} <code>{esc(t.name)}</code> {esc(t.dtype)}[{esc(', '.join(t.shape))}]</li>"
                 for label, ts in (("input", m.inputs), ("output", m.outputs)) for t in ts)
    core = "<ul>" + "".join(finding(f) for f in report.findings) + "</ul>" if report.findings else ""
    toc = " · ".join(f'<a href="#{esc(s.analyzer)}">{esc(s.title)}</a>' for s in report.sections)
    body = (f"<h1>model-analyze report: <code>{esc(m.path)}</code></h1>"
            f'<p class="meta">{esc(m.producer or "unknown producer")} · IR {m.ir_version} · {m.nodes:,} nodes · '
            f"{m.initializers:,} initializers · dims: {esc(', '.join(dims) or 'all concrete')} · "
            f"model-analyze {esc(report.version)}</p><ul>{io}</ul>{core}<p>{toc}</p>"
            + "".join(section(s) for s in report.sections))
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>model-analyze: "
            f"{esc(m.path)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")
