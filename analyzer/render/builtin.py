"""Core output formats, registered through the same hook plugins use."""

from __future__ import annotations

from ..descriptors import Format
from ..hookspecs import hookimpl


@hookimpl
def model_analyze_formats() -> list[Format]:
    from . import html, json, markdown, sarif, text

    return [
        Format("text", text.render, ".txt", "human-readable, 80 columns (default)"),
        Format("json", json.render, ".json", "machine-readable; schema in schema/report.schema.json"),
        Format("sarif", sarif.render, ".sarif", "SARIF 2.1.0 for code-scanning UIs and CI annotations"),
        Format("markdown", markdown.render, ".md", "GitHub-flavoured Markdown (PR comments)"),
        Format("html", html.render, ".html", "self-contained HTML with RF-growth and FLOPs-per-layer charts"),
    ]
