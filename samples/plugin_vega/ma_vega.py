"""Example plugin 3 — an output format: every chart of a report as one Vega-Lite spec.

Analyzers put :class:`Chart` specs in their sections (FLOPs per layer, receptive-field
growth, which positions each layer sees, a plugin's own); the built-in HTML report draws
them, and this format hands the same charts to anything that reads Vega-Lite (the Vega
editor, notebooks, dashboards): ``model-analyze MODEL --format vega-lite -o charts.vl.json``.
It knows no analyzer by name — a new analyzer's charts appear without a change here — and
adds one chart of its own, the report's findings by severity.
"""

from __future__ import annotations

import json

from model_analyze.plugin_api import JSON, Chart, Finding, Format, Point, Report, Series, Severity, Status, hookimpl

MODEL_ANALYZE_API = "1.0"
VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"


def _title(label: str, unit: str) -> str:
    return f"{label} ({unit})" if unit else label


def _row(series: Series, k: int, point: Point) -> JSON:
    return {"series": series.name, "k": k, "label": point.label, "value": point.value, "detail": point.detail}


def _rows(chart: Chart) -> list[JSON]:
    """One data row per point: its series, position, label, value and detail."""
    return [_row(s, k, p) for s in chart.series for k, p in enumerate(s.points)]


def spec(section_title: str, chart: Chart) -> dict[str, JSON]:
    """A :class:`Chart` as a Vega-Lite unit spec: ``bar`` → horizontal bars in the order
    given, ``line`` → a line over the points in order, ``heatmap`` → one row per series."""
    value: dict[str, JSON] = {"field": "value", "type": "quantitative", "title": _title(chart.y_label, chart.y_unit)}
    if chart.log_y:
        value["scale"] = {"type": "log"}
    label: dict[str, JSON] = {"field": "label", "type": "ordinal", "sort": None,
                              "title": _title(chart.x_label, chart.x_unit)}
    tooltip: JSON = [{"field": "label"}, {"field": "value"}, {"field": "detail"}]
    out: dict[str, JSON] = {"title": f"{section_title}: {chart.title}", "data": {"values": _rows(chart)},
                            "width": 600}
    if chart.kind == "bar":
        out.update(mark="bar", encoding={"y": label, "x": value, "tooltip": tooltip})
    elif chart.kind == "line":
        out.update(mark={"type": "line", "point": True},
                   encoding={"x": {**label, "field": "k", "type": "quantitative"}, "y": value, "tooltip": tooltip})
    else:  # heatmap: one row per series, one cell per point (values in [0, 1])
        out.update(mark="rect", encoding={"x": {"field": "k", "type": "ordinal", "title": chart.x_label},
                                          "y": {"field": "series", "type": "nominal", "title": chart.y_label},
                                          "color": {"field": "value", "type": "quantitative"},
                                          "tooltip": tooltip})
    if chart.note:
        out["description"] = chart.note
    return out


def findings_spec(findings: list[Finding]) -> dict[str, JSON]:
    """The report's findings counted by severity (a chart this format adds)."""
    counts = {str(sev): sum(1 for f in findings if f.severity is sev) for sev in Severity}
    return {"title": "Findings by severity", "data": {"values": [{"severity": k, "count": v}
                                                                  for k, v in counts.items()]},
            "mark": "bar", "encoding": {"x": {"field": "severity", "type": "nominal", "sort": None},
                                        "y": {"field": "count", "type": "quantitative"}}}


def render(report: Report) -> str:
    charts: list[JSON] = [spec(s.title, c) for s in report.sections if s.status is Status.OK for c in s.charts]
    charts.append(findings_spec(report.all_findings()))
    doc: dict[str, JSON] = {"$schema": VEGA_LITE, "title": f"model-analyze: {report.model.path}",
                            "vconcat": charts}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


@hookimpl
def model_analyze_formats() -> list[Format]:
    return [Format("vega-lite", render, ".vl.json", "every chart of the report as one Vega-Lite spec")]
