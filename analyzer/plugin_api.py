"""The public API for plugin authors, in one import.

Everything a plugin needs — the analyzer and format descriptors, the report
dataclasses and the analysis context — is re-exported here, so a plugin never
depends on the core's internal module layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .codespec import Code
from .descriptors import Analyzer, Format
from .devices import Device
from .hookspecs import hookimpl
from .ops.registry import OpRule
from .options import option
from .report import (
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


def shape_like_input(ctx: ShapeCtx, index: int = 0) -> list[TensorType | None]:
    """Shape rule for ops whose output has the type of one input (element-wise ops)."""
    return [ctx.type(index)]


__all__ = [
    "Analyzer",
    "Chart",
    "Code",
    "Column",
    "Device",
    "Finding",
    "Format",
    "Metric",
    "NodeRef",
    "OpRule",
    "Point",
    "Report",
    "Section",
    "Series",
    "Severity",
    "Status",
    "Table",
    "flow_conservative",
    "flow_pointwise",
    "hookimpl",
    "option",
    "shape_like_input",
]
