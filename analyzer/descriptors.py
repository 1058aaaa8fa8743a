"""What plugins describe themselves with: :class:`Analyzer` and :class:`Format`.

A leaf module (it imports no other part of the core at run time), so the hook specs,
the plugin manager and the public API can all name these types without importing
each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from .codespec import Code
    from .context import AnalysisContext
    from .report import JSON, Report, Section


@dataclass
class Analyzer:
    """One analyzer: ``run(ctx)`` returns the :class:`Section` it owns."""

    name: str
    title: str
    run: Callable[[AnalysisContext], Section]
    description: str = ""
    requires: tuple[str, ...] = ()
    """Analyzers whose results (``ctx.result(name)``) this one reads; run first."""
    order: int = 100
    """Position in the report (lower first)."""
    codes: tuple[Code, ...] = ()
    """Every finding code this analyzer emits, documented (``model-analyze rules`` lists them,
    ``explain`` explains them, SARIF carries them as rules)."""
    plugin: str = ""
    """Set by the core: the plugin that provided this analyzer."""
    metrics: dict[str, str] = field(default_factory=dict)
    """Metric key → one-line description; the runner fills ``Metric.description`` from it
    when the analyzer left it empty (every metric in the JSON has one)."""
    data_schema: dict[str, JSON] | None = None
    """JSON Schema of ``Section.data`` (``json_schema(MyData)`` for a dataclass payload)."""
    options: type[DataclassInstance] | None = None
    """A dataclass of this analyzer's options (fields made with ``option(default, help)``):
    set in ``[tool.model-analyze.plugins.NAME]`` or with ``--option NAME.KEY=VALUE``,
    validated before any model runs, listed by ``model-analyze plugins``; ``run`` reads
    them with ``ctx.options_for(TheClass)``."""


@dataclass
class Format:
    """An output format: ``render(report) -> str``."""

    name: str
    render: Callable[[Report], str]
    suffix: str = ""
    description: str = ""
