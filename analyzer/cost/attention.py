"""Dense and mask-aware (effective) attention cost per attention layer.

METRICS.md: QKᵀ and AV each cost 2·B·H·n_q·n_k·d FLOPs dense; the *effective*
cost replaces n_q·n_k by the number of (query, key) pairs the mask leaves
visible (causal n(n+1)/2, window W: Σ min(i+1, W), …). The layers and their
masks come from the attention service (``model_analyze.attention``); fused ops
that service did not report still get their mask from their own attributes
(``is_causal``, ``unidirectional``, ``local_window_size``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import dims as D
from ..failures import describe
from .model import GraphCost, NodeCost
from .poly import Poly, from_dim

if TYPE_CHECKING:
    from ..attention.model import AttentionLayer, MaskInfo
    from ..context import AnalysisContext


@dataclass
class AttentionCost:
    """One attention layer's contraction cost (QKᵀ + AV only)."""

    name: str
    kind: str
    nodes: tuple[str, ...]
    family: str
    mask_params: dict[str, Any]
    dense_macs: Poly
    effective_macs: Poly | None
    """Formula of the effective MACs; for a window W it holds for n ≥ W."""
    dense_value: Any
    effective_value: Any
    formula_note: str = ""
    note: str = ""
    valid_for: dict[str, list[int | None]] | None = None
    """Where ``effective_macs`` holds, as data: ``{"seq": [4096, None]}`` (n ≥ W); None
    when it holds everywhere. Outside the range the formula is wrong (a window's formula
    at n < W goes negative), so consumers must check it."""
    below: str = ""
    """What holds outside ``valid_for`` (``causal``: n(n+1)/2 visible pairs)."""


def detected_layers(ctx: AnalysisContext) -> tuple[list[AttentionLayer], str]:
    """Attention layers from the attention service (or injected into the cache),
    and a note when the service is missing or failed (never raises)."""
    def detect() -> list[AttentionLayer] | None:
        try:
            from ..attention import attention_layers
        except ImportError:
            return None
        return attention_layers(ctx)

    try:
        layers = ctx.cached("attention.layers", detect)
    except Exception as exc:  # the attention service must not sink the cost report
        return [], f"attention detection failed ({type(exc).__name__}: {exc}); attention counted dense"
    if layers is None:
        return [], "attention detection unavailable; attention counted dense"
    return list(layers), ""


def _mask_from_hint(hint: tuple[str, dict[str, Any]]) -> MaskInfo | None:
    from ..attention.model import MaskInfo
    from ..tokenflow.deps import CAUSAL, window

    family, params = hint
    if family == "causal":
        return MaskInfo("causal", CAUSAL, source="attribute")
    if family == "sliding_window":
        return MaskInfo("sliding_window", window(int(params["window"])), dict(params), source="attribute")
    return None


def _visible(mask: MaskInfo, n_q: Poly, engine: Any) -> tuple[Poly | None, Any, str]:
    """(formula of visible pairs, value at the binding, note on the formula)."""
    n_val = engine.evaluate(n_q)
    value = mask.visible_pairs(int(n_val)) if n_val is not None else None
    formula: Poly | None = None
    note = ""
    try:
        expr = mask.visible_pairs_formula(n_q if not n_q.is_const else int(n_q.const_value))
    except Exception as exc:  # the value at the binding stands; the missing formula is said
        expr = None
        note = f"no formula for the visible pairs ({describe(exc)})"
    if expr is not None:
        formula = from_dim(expr)
    if mask.family == "sliding_window" and expr is not None:
        w = int(mask.params["window"])
        note = f"formula for {n_q.fmt()} ≥ {w}; causal below"
    return formula, value, note


def attention_costs(ctx: AnalysisContext, graph_cost: GraphCost, engine: Any) -> tuple[list[AttentionCost], str]:
    layers, note = detected_layers(ctx)
    by_id: dict[str, NodeCost] = {nc.node.id: nc for nc in graph_cost.nodes}
    out: list[AttentionCost] = []
    covered: set[str] = set()
    for layer in layers:
        ac = _layer_cost(layer, by_id, engine)
        if ac is not None:
            out.append(ac)
            covered.update(ac.nodes)
    for nc in graph_cost.nodes:  # fused ops the service did not report
        if nc.node.id in covered or nc.pairs is None or nc.pair_macs is None or nc.status != "ok":
            continue
        mask = _mask_from_hint(nc.mask) if nc.mask else None
        out.append(_cost(nc.node.name, _kind(nc), (nc.node.id,), nc.pairs, nc.pair_macs, nc.pairs, mask, engine,
                         "mask from the op's attributes"))
    return out, note


def _kind(nc: NodeCost) -> str:
    return f"{nc.node.domain}::{nc.node.op_type}" if nc.node.domain else nc.node.op_type


def _layer_cost(layer: AttentionLayer, by_id: dict[str, NodeCost], engine: Any) -> AttentionCost | None:
    n_q, n_k = from_dim(layer.q_len), from_dim(layer.k_len)
    if layer.fused_node and layer.fused_node in by_id:
        nc = by_id[layer.fused_node]
        if nc.pairs is None or nc.pair_macs is None:
            return None
        pairs = nc.pairs
        return _cost(layer.name, layer.kind, (nc.node.id,), pairs, nc.pair_macs, n_q or pairs, layer.mask,
                     engine, "", square=n_q is not None and n_k is not None and n_q == n_k)
    nodes = [by_id[x] for x in (layer.qk_node, layer.av_node) if x and x in by_id]
    if not nodes or n_q is None or n_k is None:
        return None
    dense = nodes[0].macs
    for nc in nodes[1:]:
        dense = dense + nc.macs
    pairs = n_q * n_k
    per_pair = dense.div_exact(pairs)
    if per_pair is None:
        fields = [f for x in (layer.batch, layer.heads, layer.head_dim, layer.v_head_dim or layer.head_dim)
                  if (f := from_dim(x)) is not None]
        if len(fields) != 4:
            return None
        b, h, d, dv = fields
        per_pair = b * h * (d + dv)
    return _cost(layer.name, layer.kind, tuple(nc.node.id for nc in nodes), pairs, per_pair, n_q, layer.mask,
                 engine, "", square=n_q == n_k)


def _cost(name: str, kind: str, nodes: tuple[str, ...], pairs: Poly, per_pair: Poly, n_q: Poly,
          mask: MaskInfo | None, engine: Any, note: str, square: bool = True) -> AttentionCost:
    dense = pairs * per_pair
    dense_value = engine.evaluate(dense)
    family = mask.family if mask else "bidirectional"
    params = dict(mask.params) if mask else {}
    if mask is None or family == "bidirectional":
        return AttentionCost(name, kind, nodes, family, params, dense, dense, dense_value, dense_value, note=note)
    if not square:
        return AttentionCost(name, kind, nodes, family, params, dense, dense, dense_value, dense_value,
                             note="queries and keys differ in length: mask savings not applied")
    formula, visible, fnote = _visible(mask, n_q, engine)
    per_val = engine.evaluate(per_pair)
    eff_value = per_val * visible if per_val is not None and visible is not None else None
    eff = per_pair * formula if formula is not None else None
    valid, below = None, ""
    if family == "sliding_window" and formula is not None and not n_q.is_const:
        valid, below = {n_q.expr(): [int(mask.params["window"]), None]}, "causal"
    return AttentionCost(name, kind, nodes, family, params, dense, eff, dense_value, eff_value, fnote, note,
                         valid, below)


def describe_mask(family: str, params: dict[str, Any]) -> str:
    if family == "sliding_window":
        return f"sliding window {params.get('window')}"
    if params:
        return family + " " + ", ".join(f"{k}={D.fmt(v)}" for k, v in sorted(params.items()))
    return family
