"""Compute hotspots: where the MACs, FLOPs, bytes and parameters of a model go.

Every total is a formula in the model's free dims (``FLOPs(seq) = a·seq +
b·seq²``) evaluated at the binding the report states; attention also gets its
mask-aware *effective* cost (causal ≈ half of dense). Definitions: docs/metrics.md
"Compute". The numbers come from :mod:`model_analyze.cost`; this module only
turns them into a report section.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from model_analyze.context import AnalysisContext
from model_analyze.cost import Aggregate, CostModel, Poly, cost_model, node_bound
from model_analyze.cost.attention import AttentionCost, describe_mask
from model_analyze.cost.poly import atom_values
from model_analyze.plugin_api import (
    Chart,
    Column,
    Metric,
    NodeRef,
    Point,
    Section,
    Series,
    Severity,
    Table,
)
from model_analyze.readable import Namer, readable
from model_analyze.render import fold_label, human, mark
from model_analyze.report import Rows

if TYPE_CHECKING:
    from .hotspots import HotspotOptions

class _Formulas:
    """Readable formulas for one section (derived names defined once in ``section.symbols``)
    and their machine-readable twins for the JSON."""

    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.namer = Namer(ctx.dims.roles, set(ctx.bindings))
        self._values: dict[str, Any] = {}

    def values(self, p: Poly) -> dict[str, Any]:
        missing = p.atoms() - set(self._values)
        if missing:
            self._values.update(atom_values(missing, self.ctx.bindings))
        return self._values

    def metric(self, metric: Metric, p: Poly | None) -> Metric:
        if p is not None and p.atoms():
            metric.formula = readable(p, self.values(p), self.namer)
            metric.expr = p.expr()
        return metric


def _share(part: Any, whole: Any) -> str:
    if part is None or not whole:
        return "—"
    return _pct(100 * part / whole)


def _pct(x: float) -> str:
    return f"{x:.1f}%".replace("-0.0%", "0.0%")


def _jsonable(p: Poly | None, m: CostModel) -> dict[str, Any]:
    return {"value": m.value(p), "formula": p.fmt() if p is not None else None,
            "expr": p.expr() if p is not None else None}


def _bindings_text(ctx: AnalysisContext, atoms: Iterable[str]) -> str:
    """``seq=4096`` for the dims the totals depend on (through opaque ``floor`` atoms too)."""
    from model_analyze.cost.poly import _ATOMS
    from model_analyze.dims import free_symbols

    b = ctx.bindings
    names: set[str] = set()
    for a in atoms:
        names |= free_symbols(_ATOMS[a]) if a in _ATOMS else {a}
    parts = [f"{a}={b[a]}" + (" (default)" if a not in ctx.dims.bound else "") for a in sorted(names) if a in b]
    return ", ".join(parts)


def run(ctx: AnalysisContext, opts: HotspotOptions) -> Section:
    """The hotspots section; ``opts`` are the analyzer's options (:mod:`.hotspots` reads them
    from the context, so this module does not import its declaration back)."""
    m = cost_model(ctx)
    g = m.graph
    section = Section("hotspots", "Compute hotspots")
    flops_v, macs_v = m.value(g.flops), m.value(g.macs)
    fx = _Formulas(ctx)
    metrics = section.metrics
    metrics += _compute_metrics(fx, m, flops_v, macs_v)
    metrics += _param_metrics(m)
    metrics += _traffic_metrics(fx, m, flops_v)
    metrics += _memory_metrics(ctx, fx, m)
    metrics += _node_metrics(m, metrics)
    section.symbols = dict(fx.namer.defs)
    top_row = _tables(section, m, flops_v, opts)
    _findings(section, m)
    hotspot = _hotspot(m, m.counted, flops_v, top_row)
    if hotspot:
        metrics.append(Metric("hotspot", "Top hotspot", hotspot, "text", headline="hotspot"))
    chart = _layer_chart(m)
    if chart is not None:
        section.charts.append(chart)
    at = _bindings_text(ctx, g.flops.atoms() | g.macs.atoms() | m.memory.peak_formula.atoms())
    section.summary = _summary(m, macs_v, flops_v, m.params.elements("parameter"), at)
    section.data = _data(ctx, m, m.counted, g.read + g.written)
    ctx.publish("hotspots", m)  # the CostModel, for analyzers that require "hotspots"
    return section


def _compute_metrics(fx: _Formulas, m: CostModel, flops_v: Any, macs_v: Any) -> list[Metric]:
    """MACs and FLOPs at the binding; attention FLOPs dense and, when a mask hides keys, mask-aware."""
    g = m.graph
    out = [fx.metric(Metric("macs", "MACs", macs_v, "MAC", headline="macs"), g.macs),
           fx.metric(Metric("flops", "FLOPs (dense)", flops_v, "FLOP", note="2·MACs + element-wise",
                            headline="flops"), g.flops)]
    attn = list(m.attention)
    if not attn:
        return out
    dense = _sum(a.dense_macs for a in attn)
    eff_list = [a.effective_macs for a in attn]
    eff = None if any(e is None for e in eff_list) else _sum(e for e in eff_list if e is not None)
    out.append(fx.metric(Metric("attention.flops.dense", "Attention FLOPs (QKᵀ+AV, dense)",
                                _times2(_vsum(a.dense_value for a in attn)), "FLOP", headline="attention_flops"),
                         2 * dense))
    if all(a.family == "bidirectional" for a in attn):  # mask-aware = dense
        return out
    valid = _valid_for(attn)
    below = "; ".join(sorted({a.below for a in attn if a.below}))
    for key, label, value, poly in (
            ("attention.flops.effective", "Attention FLOPs (mask-aware)", _times2(_vsum(a.effective_value
                                                                                      for a in attn)),
             2 * eff if eff is not None else None),
            ("flops.effective", "FLOPs (mask-aware)", m.effective_value, m.effective_flops)):
        out.append(fx.metric(Metric(key, label, value, "FLOP", valid_for=valid, below=below), poly))
    return out


def _param_metrics(m: CostModel) -> list[Metric]:
    params = m.params
    return [Metric("params", "Parameters", params.elements("parameter"), "count", None, _role_note(params.by_role()),
                   headline="params"),
            Metric("params.bytes", "Parameter bytes", params.nbytes("parameter"), "B", None,
                   ", ".join(f"{k} {human(b, 'B')}" for k, (_, b) in params.by_dtype().items()),
                   headline="weight_bytes"),
            Metric("initializer_elements", "Stored initializer elements", params.stored_elements(), "count", None,
                   "parameters + buffers + constants, each tensor once")]


def _traffic_metrics(fx: _Formulas, m: CostModel, flops_v: Any) -> list[Metric]:
    moved = m.graph.read + m.graph.written
    moved_v = m.value(moved)
    intensity = (flops_v / moved_v) if flops_v is not None and moved_v else None
    # A tensor of unknown size moves zero bytes in the sum: the total is then a lower bound,
    # and a ratio of two bounds is neither.
    unsized = m.traffic_bound is not None
    ratio = "estimate" if unsized or m.graph.total_bound else None
    return [fx.metric(Metric("bytes.moved", "Bytes read + written (unfused)", moved_v, "B",
                             bound="lower" if unsized else None), moved),
            Metric("intensity", "Arithmetic intensity", _round(intensity), "FLOP/B", None,
                   "dense FLOPs / bytes moved", bound=ratio if intensity is not None else None)]


def _memory_metrics(ctx: AnalysisContext, fx: _Formulas, m: CostModel) -> list[Metric]:
    mem = m.memory
    unsized = "lower" if mem.unknown else None  # activations of unknown size are left out of the sums
    out = [fx.metric(Metric("memory.peak", "Peak activation memory", mem.peak_value, "B",
                            note=f"after {mem.peak_node}", headline="peak_activation", bound=unsized),
                     mem.peak_formula)]
    dominant = _peak_dominant(ctx, m)
    if dominant:
        out.append(Metric("memory.peak_dominant", "Peak dominated by", dominant, "text", headline="peak_tensor"))
    if mem.largest:
        name, lp, v = mem.largest
        out.append(fx.metric(Metric("memory.largest", "Largest activation", v, "B", note=name, bound=unsized), lp))
    return out


def _node_metrics(m: CostModel, metrics: list[Metric]) -> list[Metric]:
    """Folded and uncounted nodes; the MACs/FLOPs totals marked as bounds when they are."""
    g = m.graph
    out = []
    if g.folded:
        out.append(Metric("nodes.folded", "Constant-foldable nodes", len(g.folded), "count", None,
                          "weight preparation done once at load; not counted"))
    if g.total_bound:
        for metric in metrics:
            if metric.key in ("macs", "flops", "flops.effective"):
                metric.bound = g.total_bound  # uncosted nodes count zero; If/Loop counts may be bounds
    if g.unknown_ops or g.partial:
        out.append(Metric("nodes.uncounted", "Nodes not costed", sum(g.unknown_ops.values()) + len(g.partial),
                          "count", None, "counted as zero; see findings"))
    return out


def _tables(section: Section, m: CostModel, flops_v: Any, opts: HotspotOptions) -> Any:
    """The top-k tables (nodes, layers, op types), parameters and attention; the top layer row."""
    section.tables.append(_top_table(m, m.counted, flops_v, opts.top, opts.ridge))
    layer_table, top_row = _layer_table(m, flops_v, opts.top)
    section.tables.append(layer_table)
    section.tables.append(_op_table(m, flops_v, opts.top))
    section.tables.append(_param_table(m.params))
    if m.attention:
        section.tables.append(_attention_table(m, list(m.attention)))
    return top_row


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _sum(polys: Iterable[Poly]) -> Poly:
    out = Poly()
    for p in polys:
        out = out + p
    return out


def _vsum(values: Iterable[Any]) -> Any:
    total: Any = 0
    for v in values:
        if v is None:
            return None
        total += v
    return total


def _times2(v: Any) -> Any:
    return None if v is None else 2 * v


def _role_note(roles: dict[str, tuple[int, int, int]]) -> str:
    parts = []
    for role in ("buffer", "copy", "quantization", "constant"):
        if role in roles:
            c, n, _ = roles[role]
            parts.append(f"+{n:,} {role} elements ({c} tensor{'s' if c != 1 else ''})")
    return "; ".join(parts)


def _summary(m: CostModel, macs: Any, flops: Any, n_params: int, at: str) -> str:
    b = mark(m.graph.total_bound)
    text = f"{b}{human(macs)} MACs, {b}{human(flops)} FLOPs"
    if m.attention and m.effective_value is not None and m.effective_value != flops:
        text += f" ({b}{human(m.effective_value)} mask-aware)"
    peak = mark("lower" if m.memory.unknown else None) + human(m.memory.peak_value, "B")
    text += f", {human(n_params)} parameters, peak activations {peak}"
    return text + (f" at {at}" if at else "")


def _top_table(m: CostModel, counted: list[Any], total: Any, k: int, ridge: float) -> Table:
    t = Table("top_nodes", f"Top {k} nodes by FLOPs",
              [Column("node", "node"), Column("op", "op"), Column("layer", "layer"),
               Column("flops", "FLOPs", "right", bounded=True), Column("share", "share", "right"),
               Column("intensity", "FLOP/B", "right"), Column("bound", "bound")],
              note=f"bound: compute if FLOP/B ≥ {ridge:g} (a typical accelerator ridge point), else memory")
    ranked = sorted(((m.value(nc.flops) or 0, nc) for nc in counted), key=lambda x: -x[0])
    for v, nc in ranked[:k]:
        if not v:
            break
        moved = m.value((nc.read or Poly()) + (nc.written or Poly()))
        inten = v / moved if moved else None
        t.add([nc.node.name, nc.node.op_type, nc.layer, human(v), _share(v, total),
               _round(inten), "—" if inten is None else ("compute" if inten >= ridge else "memory")], node_bound(nc))
    return t


_INDEX = re.compile(r"^(.*\D)(\d+)$")


def _collapse(aggs: list[Aggregate], m: CostModel) -> list[tuple[str, int, Aggregate]]:
    """Runs of identical layers (``layers.0`` … ``layers.31`` with equal cost, parameters
    and bound kind) as one row ``layers.{0..31}`` ×32."""
    out: list[tuple[str, int, Aggregate]] = []
    groups: dict[tuple[str, Poly, int, str | None], list[tuple[int, Aggregate]]] = {}
    order: list[tuple[str, Poly, int, str | None]] = []
    for a in aggs:
        mt = _INDEX.match(a.key)
        if not mt:
            out.append((a.key, 1, a))
            continue
        key = (mt.group(1), a.flops, a.params, a.bound)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((int(mt.group(2)), a))
    for key in order:
        members = groups[key]
        if len(members) == 1:
            out.append((members[0][1].key, 1, members[0][1]))
            continue
        out.append((fold_label(key[0], [i for i, _ in members]), len(members), members[0][1]))
    return out


def _layer_table(m: CostModel, total: Any, k: int) -> tuple[Table, tuple[str, int, Aggregate] | None]:
    t = Table("layers", "By layer" + (f" ({m.layer_source})" if m.layer_source else ""),
              [Column("layer", "layer"), Column("count", "×", "right"), Column("nodes", "nodes", "right"),
               Column("flops", "FLOPs each", "right", bounded=True), Column("share", "share", "right"),
               Column("params", "params each", "right")])
    rows = _collapse(m.layers, m)
    rows.sort(key=lambda r: -(m.value(r[2].flops) or 0) * r[1])
    for label, count, a in rows[:k]:
        v = m.value(a.flops)
        t.add([label, count, a.nodes, human(v), _share(v * count if v is not None else None, total), a.params],
              a.bound)
    if len(rows) > k:
        t.note = f"{len(rows) - k} more rows in the JSON report (section data 'layers')"
    return t, (rows[0] if rows and len(rows) > 1 else None)


def _hotspot(m: CostModel, counted: list[Any], total: Any, top_row: tuple[str, int, Aggregate] | None) -> str:
    """Where the FLOPs go, in one line: the costliest (folded) layer group, else the top node."""
    if not total:
        return ""
    op_types = {a.key.rsplit("::", 1)[-1] for a in m.ops}
    # A "layer" named after an op type (Paddle2ONNX's p2o.Conv.12 scopes) groups by op,
    # not by place in the model: the top node says more.
    if top_row is not None and top_row[0].rsplit(".", 1)[-1] not in op_types:
        label, count, a = top_row
        v = m.value(a.flops)
        if v:
            share = _share(v * count, total)
            return f"{label}{f' ×{count}' if count > 1 else ''}: {share} of FLOPs"
    ranked = sorted(((m.value(nc.flops) or 0, nc) for nc in counted), key=lambda x: -x[0])
    if ranked and ranked[0][0]:
        v, nc = ranked[0]
        return f"{nc.node.name} ({nc.node.op_type}): {_share(v, total)} of FLOPs"
    return ""


def _layer_chart(m: CostModel) -> Chart | None:
    """FLOPs per layer in graph order: every layer that has FLOPs, none dropped."""
    points = [Point(a.key, m.value(a.flops), f"{a.nodes} nodes") for a in m.layers
              if isinstance(m.value(a.flops), (int, float)) and m.value(a.flops) > 0]
    if len(points) < 2:
        return None
    return Chart("flops_per_layer", "bar", "FLOPs per layer (at the report's binding)", "layer", "FLOPs",
                 y_unit="FLOP", series=[Series("FLOPs", points)])


def _valid_for(attn: list[AttentionCost]) -> dict[str, list[int | None]] | None:
    """Where the summed mask-aware formula holds: the intersection of the layers' ranges."""
    out: dict[str, list[int | None]] = {}
    for a in attn:
        for dim, (lo, hi) in (a.valid_for or {}).items():
            cur = out.get(dim, [lo, hi])
            out[dim] = [max(x for x in (cur[0], lo) if x is not None) if cur[0] is not None or lo is not None
                        else None, min(x for x in (cur[1], hi) if x is not None)
                        if cur[1] is not None or hi is not None else None]
    return out or None


def _peak_dominant(ctx: AnalysisContext, m: CostModel) -> str:
    """Which tensors make the peak: when attention score matrices (QKᵀ → softmax) are most
    of it, say so and what a fused kernel (FlashAttention, SDPA) that never stores them
    would leave."""
    mem = m.memory
    if not mem.peak_value or not mem.peak_tensors:
        return ""
    scores: set[str] = set()
    try:
        from model_analyze.attention import attention_layers

        layers = attention_layers(ctx)
    except Exception:  # attention detection failing must not sink the cost report
        layers = []
    by_id = ctx.graph.node_by_id
    for la in layers:
        if la.fused_node:
            continue
        for nid in la.nodes:
            node = by_id.get(nid)
            if node is not None and nid != la.av_node:
                scores.update(t for t in node.outputs if t)
    live_scores = [(t, v) for t, v in mem.peak_tensors if t in scores]
    top_name, top_bytes = mem.peak_tensors[0]
    if live_scores:
        s_bytes = sum(v for _, v in live_scores)
        if s_bytes >= 0.5 * mem.peak_value:
            rest = mem.peak_value - s_bytes
            return (f"unfused attention scores ({len(live_scores)} × {human(live_scores[0][1], 'B')}, "
                    f"{_share(s_bytes, mem.peak_value)} of the peak); a fused attention kernel never stores "
                    f"them: ≈ {human(rest, 'B')} without them")
    if top_bytes >= 0.5 * mem.peak_value:
        return f"{top_name} ({human(top_bytes, 'B')}, {_share(top_bytes, mem.peak_value)} of the peak)"
    return ""


def _op_table(m: CostModel, total: Any, k: int) -> Table:
    t = Table("ops", "By op type", [Column("op", "op"), Column("nodes", "nodes", "right"),
                                    Column("flops", "FLOPs", "right", bounded=True),
                                    Column("share", "share", "right"),
                                    Column("bytes", "bytes moved", "right")])
    ranked = sorted(m.ops, key=lambda a: -(m.value(a.flops) or 0))
    for a in ranked[:k]:
        v = m.value(a.flops)
        t.add([a.key, a.nodes, human(v), _share(v, total), human(m.value(a.read + a.written), "B")], a.bound)
    if len(ranked) > k:
        t.note = f"{len(ranked) - k} more op types in the JSON report"
    return t


def _param_table(params: Any) -> Table:
    t = Table("params", "Stored tensors", [Column("kind", "kind"), Column("dtype", "dtype"),
                                           Column("tensors", "tensors", "right"),
                                           Column("elements", "elements", "right"),
                                           Column("bytes", "bytes", "right")])
    for role in ("parameter", "copy", "quantization", "buffer", "constant"):
        by: dict[str, list[int]] = {}
        for tensor in params.tensors:
            if tensor.role == role:
                row = by.setdefault(tensor.label, [0, 0, 0])
                row[0] += 1
                row[1] += tensor.numel
                row[2] += tensor.nbytes or 0
        for label, (c, n, b) in sorted(by.items()):
            t.rows.append([role, label, c, n, human(b, "B")])
    t.note = ("parameters: trained weights; buffers: running statistics / exporter-marked buffers; "
              "constants: integer tensors and scalars. Shared tensors are counted once.")
    return t


def _attention_table(m: CostModel, attn: list[AttentionCost]) -> Table:
    t = Table("attention", "Attention contractions (QKᵀ + AV)",
              [Column("kind", "kind"), Column("mask", "mask"), Column("layers", "layers", "right"),
               Column("dense", "dense FLOPs", "right"), Column("effective", "effective", "right"),
               Column("saved", "saved", "right")])
    groups: dict[tuple[str, str], list[AttentionCost]] = {}
    for a in attn:
        groups.setdefault((a.kind, describe_mask(a.family, a.mask_params)), []).append(a)
    for (kind, mask), items in groups.items():
        d, e = _vsum(a.dense_value for a in items), _vsum(a.effective_value for a in items)
        saved = _pct(100 * (1 - e / d)) if d and e is not None else "—"
        t.rows.append([kind, mask, len(items), human(_times2(d)), human(_times2(e)), saved])
    if m.attention_note:
        t.note = m.attention_note
    return t


def _findings(section: Section, m: CostModel) -> None:
    g = m.graph
    for op, n in sorted(g.unknown_ops.items()):
        section.add("HS001", Severity.WARNING,
                    f"{op}: no cost rule for {n} node{'s' if n > 1 else ''}; counted as zero compute")
    by_op: dict[tuple[bool, str], list[Any]] = {}
    for nc in g.partial:  # a size known only at run time (HS007) is not one a binding can give (HS002)
        by_op.setdefault((nc.node.id in m.engine.data_dependent, nc.node.op_type), []).append(nc)
    for (runtime, op), items in sorted(by_op.items()):
        many = f"{len(items)} node{'s' if len(items) > 1 else ''} not costed"
        if runtime:
            section.add("HS007", Severity.WARNING,
                        f"{op}: {many} ({items[0].reason}); counted as zero at any binding", items[0].node.ref())
        else:
            section.add("HS002", Severity.WARNING, f"{op}: {many} ({items[0].reason}); counted as zero",
                        items[0].node.ref())
    for fail in m.engine.failures:
        section.add("R003", Severity.ERROR, fail.message("the node is counted as zero (the totals are lower bounds)"),
                    NodeRef(fail.node, fail.op.rsplit("::", 1)[-1], fail.graph))
    for nc in g.bounds:
        lower = "lower bound" in nc.bound
        section.add("HS004" if lower else "HS003", Severity.WARNING if lower else Severity.INFO,
                    f"{nc.node.op_type} cost is a bound: {nc.bound}", nc.node.ref())
    for table, emb, head in m.params.tied:
        section.add("HS005", Severity.INFO,
                    f"tied embeddings: {table!r} feeds both the embedding {emb!r} and the output "
                    f"projection {head!r}; counted once")
    dense = _vsum(a.dense_value for a in m.attention)
    eff = _vsum(a.effective_value for a in m.attention)
    if m.attention and dense and eff is not None and eff < dense:
        section.add("HS006", Severity.INFO,
                    f"masks leave {100 * eff / dense:.1f}% of the attention (query, key) pairs visible: "
                    f"mask-aware attention FLOPs {human(2 * eff)} vs {human(2 * dense)} dense")


def _data(ctx: AnalysisContext, m: CostModel, counted: list[Any], moved: Poly) -> dict[str, Any]:
    g = m.graph
    p = m.params
    mem = m.memory
    return {
        "bindings": dict(ctx.bindings),
        "totals": {"macs": _jsonable(g.macs, m), "flops": _jsonable(g.flops, m),
                   "flops_effective": _jsonable(m.effective_flops, m) | {
                       "value": m.effective_value, "note": m.effective_note,
                       "valid_for": _valid_for(m.attention),
                       "below": "; ".join(sorted({a.below for a in m.attention if a.below}))},
                   "bytes_read": _jsonable(g.read, m), "bytes_written": _jsonable(g.written, m),
                   "bytes_moved": _jsonable(moved, m)},
        "attention": [{"name": a.name, "kind": a.kind, "nodes": list(a.nodes), "mask": a.family,
                       "mask_params": a.mask_params, "dense_flops": _jsonable(2 * a.dense_macs, m),
                       "effective_flops": {"value": _times2(a.effective_value),
                                           "formula": (2 * a.effective_macs).fmt() if a.effective_macs else None,
                                           "expr": (2 * a.effective_macs).expr() if a.effective_macs else None,
                                           "valid_for": a.valid_for, "below": a.below,
                                           "note": a.formula_note}, "note": a.note}
                      for a in m.attention],
        "attention_note": m.attention_note,
        "params": {"parameters": p.elements("parameter"), "parameter_bytes": p.nbytes("parameter"),
                   "initializer_elements": p.stored_elements(),
                   "by_role": {k: {"tensors": c, "elements": n, "bytes": b} for k, (c, n, b) in p.by_role().items()},
                   "by_dtype": {k: {"elements": n, "bytes": b} for k, (n, b) in p.by_dtype().items()},
                   "tied": [{"table": t, "embedding": e, "head": h} for t, e, h in p.tied],
                   "tensors": [{"name": t.name, "role": t.role, "reason": t.reason, "dtype": t.label,
                                "elements": t.numel, "bytes": t.nbytes} for t in p.tensors if t.role != "constant"]},
        "memory": {"peak_bytes": mem.peak_value, "peak_formula": mem.peak_formula.fmt(), "peak_node": mem.peak_node,
                   "peak_tensors": [{"name": n, "bytes": v} for n, v in mem.peak_tensors],
                   "largest": ({"name": mem.largest[0], "bytes": mem.largest[2], "formula": mem.largest[1].fmt()}
                               if mem.largest else None),
                   "total_activation_bytes": _jsonable(mem.total, m), "unknown_size_tensors": mem.unknown,
                   "tensors": Rows(mem.tensors, _tensor_row)},
        "layers": [{"name": a.key, "nodes": a.nodes, "macs": m.value(a.macs), "flops": m.value(a.flops),
                    "flops_formula": a.flops.fmt(), "params": a.params} for a in m.layers],
        "layer_source": m.layer_source,
        "ops": [{"op": a.key, "nodes": a.nodes, "macs": m.value(a.macs), "flops": m.value(a.flops),
                 "bytes": m.value(a.read + a.written)} for a in m.ops],
        "nodes": Rows([nc for nc in counted if nc.status != "ok" or nc.flops != 0], partial(_node_row, m)),
        "unknown_ops": dict(g.unknown_ops),
        "folded_nodes": len(g.folded),
    }


def _node_row(m: CostModel, nc: Any) -> dict[str, Any]:
    return {"name": nc.node.name, "op": nc.node.op_type, "layer": nc.layer, "macs": m.value(nc.macs),
            "flops": m.value(nc.flops), "read": m.value(nc.read), "written": m.value(nc.written),
            "status": nc.status, **({"reason": nc.reason} if nc.reason else {}),
            **({"bound": nc.bound} if nc.bound else {})}


def _tensor_row(t: tuple[str, Poly, Any]) -> dict[str, Any]:
    name, p, v = t
    return {"name": name, "bytes": v, "formula": p.fmt()}
