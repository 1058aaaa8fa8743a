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


@dataclass(frozen=True)
class AttentionClaim:
    """A plugin's reading of one node of a custom op as a fused attention layer
    (``model_analyze_attention``): which inputs are Q, K and V, the axis that indexes
    positions, and the keys query ``i`` sees — ``i - left .. i + right``.

    Why a claim and not a flow rule: the core then treats the op as it treats
    onnxruntime's fused attention — the attention section reports its mask family,
    window and span, the token-flow engine gates keys by the mask (``reach`` is exact)
    and the hotspots count mask-aware effective FLOPs. ``left``/``right`` ``None``
    mean unbounded: ``right=0`` is causal, ``left=W - 1, right=0`` a sliding window of
    ``W`` keys including the current one, both ``None`` bidirectional."""

    query: int = 0
    """Input index of Q (``[batch, positions, features]`` or ``[batch, heads, positions, head_dim]``)."""
    key: int = 1
    """Input index of K (the same as ``query`` for packed or self-only ops)."""
    value: int = 2
    """Input index of V."""
    seq_axis: int = 1
    """Axis of Q, K and V that indexes positions."""
    left: int | None = None
    """Keys before the query a query sees (``None``: all of them)."""
    right: int | None = 0
    """Keys after the query a query sees (``0``: causal; ``None``: all of them)."""
    heads: int | None = None
    kv_heads: int | None = None
    """Key/value heads (grouped-query attention); ``None``: as many as ``heads``."""
    head_dim: int | None = None
    scale: float | None = None
    """The scale applied to QKᵀ, if the op states it (``None``: not stated; no default is assumed)."""
    note: str = ""
    """How the plugin read the op (shown with the mask)."""
