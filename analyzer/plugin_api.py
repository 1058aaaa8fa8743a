"""The public API for plugin authors, in one import.

Everything a plugin needs — the analyzer and format descriptors, the report
dataclasses and the analysis context — is re-exported here, so a plugin never
depends on the core's internal module layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .codes import Code
from .devices import Device
from .hookspecs import hookimpl
from .ops.registry import OpRule
from .report import (
    JSON,
    Chart,
    Column,
    Finding,
    Metric,
    NodeRef,
    Point,
    Report,
    Section,
    Series,
    Severity,
    Status,
    Table,
)

if TYPE_CHECKING:
    from .context import AnalysisContext
    from .graph import TensorType
    from .shapes import ShapeCtx
    from .tokenflow.rules import conservative as flow_conservative
    from .tokenflow.rules import pointwise as flow_pointwise


def __getattr__(name: str) -> object:
    """``flow_pointwise``/``flow_conservative`` on first use: the token-flow engine
    behind them is not imported by ``model-analyze --help`` or ``plugins``."""
    if name in ("flow_pointwise", "flow_conservative"):
        from .tokenflow import rules

        return getattr(rules, name.removeprefix("flow_"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    """Every finding code this analyzer emits, documented (``model-analyze rules`` lists them)."""
    plugin: str = ""
    """Set by the core: the plugin that provided this analyzer."""
    metrics: dict[str, str] = field(default_factory=dict)
    """Metric key → one-line description; the runner fills ``Metric.description`` from it
    when the analyzer left it empty (every metric in the JSON has one)."""
    data_schema: dict[str, JSON] | None = None
    """JSON Schema of ``Section.data`` (the JSON report's consumers validate against it)."""


@dataclass
class Format:
    """An output format: ``render(report) -> str``."""

    name: str
    render: Callable[[Report], str]
    suffix: str = ""
    description: str = ""


def shape_like_input(ctx: ShapeCtx, index: int = 0) -> list[TensorType | None]:
    """Shape rule for ops whose output has the type of one input (element-wise ops)."""
    return [ctx.type(index)]


__all__ = ["Analyzer", "Chart", "Code", "Column", "Device", "Finding", "Format", "Metric", "NodeRef", "OpRule", "Point",
           "Report", "Section", "Series", "Severity", "Status", "Table", "flow_conservative", "flow_pointwise",
           "hookimpl", "shape_like_input"]
