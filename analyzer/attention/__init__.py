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

from typing import TYPE_CHECKING, Any

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


def _unique_names(layers: list[AttentionLayer], nodes: dict[str, Any]) -> None:
    """Layers whose short names collide (T5's ``layer.0`` in every block, BART's
    encoder and decoder ``layers.0``) are named by the shortest prefix of their
    module path that tells them apart: ``encoder.block.1``,
    ``decoder.block.0.layer.1``, ``decoder.layers.0.cross`` (a trailing
    attention module is shortened to ``self``/``cross``), short enough for a
    table column."""
    from collections import Counter

    from .graphwalk import scope_path

    seen = Counter(la.name for la in layers)
    paths: dict[int, list[str]] = {}
    for la in layers:
        node = nodes.get(la.fused_node or la.qk_node or "")
        if seen[la.name] > 1 and node is not None:
            path = scope_path(node)
            if path and la.name in path:
                paths[la.index] = path.split(".")
    full = Counter(".".join(p) for p in paths.values())
    for la in layers:
        parts = paths.get(la.index)
        if parts is None or full[".".join(parts)] > 1:
            continue
        for k in range(1, len(parts) + 1):
            prefix = parts[:k]
            if sum(p[:k] == prefix for p in paths.values()) == 1 and any(c.isdigit() for c in prefix[-1]):
                break
            if k == len(parts):
                prefix = parts[:-1] + [_module_kind(parts[-1])]
        la.name = ".".join(prefix)


def _module_kind(name: str) -> str:
    low = name.lower()
    if any(k in low for k in ("cross", "encdec", "encoder_attn", "enc_dec")):
        return "cross"
    if "self" in low:
        return "self"
    return name


def _detect(ctx: AnalysisContext) -> list[AttentionLayer]:
    from .detect import detect_unfused
    from .fused import detect_fused
    from .masks import MaskReader

    problems: list[str] = ctx.cached("attention.problems", list)
    reader = MaskReader(ctx)
    from .blocksparse import group_block_sparse

    layers = detect_fused(ctx, reader, problems) + group_block_sparse(ctx, detect_unfused(ctx, reader, problems),
                                                                      problems)
    nodes = {node.id: node for node in ctx.graph.walk()}
    order = {nid: k for k, nid in enumerate(nodes)}
    layers.sort(key=lambda la: order.get(la.fused_node or la.qk_node or "", 0))
    for k, layer in enumerate(layers):
        layer.index = k
    _unique_names(layers, nodes)
    ctx.cached("attention.mask_evaluations", lambda: reader.evaluations)
    return layers
