"""Core output formats, registered through the same hook plugins use.

Each renderer module is imported when a report is rendered in its format, not when the
formats are listed (``--help`` names them; ``model-analyze plugins`` lists them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..descriptors import Format
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..report import Report


def _text(report: Report, formulas: bool = False) -> str:
    from .text import render

    return render(report, formulas)


def _json(report: Report) -> str:
    from .json import render

    return render(report)


def _sarif(report: Report) -> str:
    from .sarif import render

    return render(report)


def _markdown(report: Report) -> str:
    from .markdown import render

    return render(report)


def _html(report: Report, formulas: bool = False) -> str:
    from .html import render

    return render(report, formulas)


@hookimpl
def model_analyze_formats() -> list[Format]:
    return [
        Format("text", _text, ".txt", "human-readable, 80 columns (default)"),
        Format("json", _json, ".json", "machine-readable; schema in schema/report.schema.json"),
        Format("sarif", _sarif, ".sarif", "SARIF 2.1.0 for code-scanning UIs and CI annotations"),
        Format("markdown", _markdown, ".md", "GitHub-flavoured Markdown (PR comments)"),
        Format("html", _html, ".html", "self-contained HTML with RF-growth and FLOPs-per-layer charts"),
    ]
