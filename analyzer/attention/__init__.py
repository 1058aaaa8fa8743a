"""Attention layers: detection (fused and unfused), mask reading and fitting.

:func:`attention_layers` is the core service every consumer calls; it is
computed once per analysis (``ctx.cached("attention.layers", …)``) so the
attention report, the token-flow engine and the hotspots analyzer share one
reading of the graph and one evaluation per distinct mask.

Modules: ``detect`` (unfused patterns anchored on Softmax), ``fused`` (fused
ops, mask from attributes), ``masks`` (mask terms → evaluated → family),
``maskeval`` (backward slice + reference evaluator), ``maskfit`` (families),
``graphwalk`` (bounded walks through exporter noise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import NO_MASK, AttentionLayer, MaskInfo

if TYPE_CHECKING:
    from ..context import AnalysisContext

__all__ = ["NO_MASK", "AttentionLayer", "MaskInfo", "attention_layers", "attention_problems"]


def attention_layers(ctx: AnalysisContext) -> list[AttentionLayer]:
    """Every attention layer of the model, in graph order (never raises on a model)."""
    return ctx.cached("attention.layers", lambda: _detect(ctx))


def attention_problems(ctx: AnalysisContext) -> list[str]:
    """Nodes that looked like attention but could not be read (for the report)."""
    attention_layers(ctx)
    return ctx.cached("attention.problems", list)


def _detect(ctx: AnalysisContext) -> list[AttentionLayer]:
    from .detect import detect_unfused
    from .fused import detect_fused
    from .masks import MaskReader

    problems: list[str] = ctx.cached("attention.problems", list)
    reader = MaskReader(ctx)
    layers = detect_fused(ctx, reader, problems) + detect_unfused(ctx, reader, problems)
    order = {node.id: k for k, node in enumerate(ctx.graph.walk())}
    layers.sort(key=lambda la: order.get(la.fused_node or la.qk_node or "", 0))
    for k, layer in enumerate(layers):
        layer.index = k
    ctx.cached("attention.mask_evaluations", lambda: reader.evaluations)
    return layers
