"""Architecture review: the questions reviewers ask that need attention, token
flow and cost together.

1. Depth vs width — L attention layers, width d_x, and the transition of Levine
   et al. ("The Depth-to-Width Interplay in Self-Attention", NeurIPS 2020):
   depth beyond about log₃(d_x) gives diminishing returns for the parameter
   budget. Stated as that paper's heuristic, with the numbers — not a verdict.
2. Heads and d_k — h, kv heads, d_k = d_model/h vs the graph's head dim, the
   applied scale vs 1/sqrt(d_k), heads too narrow to be full-rank.
3. Context coverage at the bound sequence length N — does the last token see
   the first, after how many layers, what fraction of pairs is reachable, and
   for sliding windows the depth that would cover N.
4. Cost shape — which share of FLOPs grows with N² and the N above which it
   dominates.

The plugin also adds ``model-analyze compare A B`` (see :mod:`.compare`).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from model_analyze import dims as D
from model_analyze.attention import AttentionLayer, attention_layers
from model_analyze.bindings import sequence_dim
from model_analyze.context import AnalysisContext
from model_analyze.plugin_api import Column, Metric, Section, Severity, Table
from model_analyze.tokenflow.coverage import Coverage, coverage

LOW_RANK_DK = 32


def levine(depth: int, width: int) -> dict[str, Any]:
    """Levine et al. 2020: depth-efficient while L <= log₃(d_x), width-limited above."""
    log3 = math.log(width) / math.log(3)
    return {"depth": depth, "width": width, "log3_width": round(log3, 2),
            "regime": "width-limited" if depth > log3 else "depth-efficient"}


def _mode(values: list[Any]) -> Any:
    values = [v for v in values if v is not None]
    return Counter(values).most_common(1)[0][0] if values else None


def model_width(layers: list[AttentionLayer]) -> int | None:
    width = _mode([D.as_int(la.model_dim) for la in layers])
    if width is None:
        width = _mode([la.heads * d for la in layers if la.heads and (d := D.as_int(la.head_dim))])
    return width


def cost_model_or_none(ctx: AnalysisContext, section: Section | None = None) -> Any:
    """The cost model, or None when it failed — then said (R003 in ``section``): the review
    degrades without costs, never silently."""
    from model_analyze.cost.engine import cost_model

    try:
        return cost_model(ctx)
    except Exception as exc:
        if section is not None:
            section.add("R003", Severity.ERROR, f"the cost model failed ({type(exc).__name__}: {exc}): the "
                        "review has no "
                        "cost figures (FLOPs shares, parameters per layer)")
        return None


def params_per_layer(cost: Any) -> int | None:
    """Median parameters over the exporter's numbered layer scopes."""
    if cost is None:
        return None
    import re

    counts = sorted(n for name, n in cost.params.by_layer().items()
                    if name and re.search(r"(^|[./_])\d+$", name) and n > 0)
    return counts[len(counts) // 2] if counts else None


# -- 1. depth vs width ------------------------------------------------------------------
def depth_width(section: Section, layers: list[AttentionLayer], cost: Any) -> dict[str, Any] | None:
    width = model_width(layers)
    depth = sum(1 for la in layers if la.self_attention)
    if not width or width < 1 or not depth:  # a width of -3 (a fuzzed dim) has no log
        return None
    info = levine(depth, width)
    info["params_per_layer"] = params_per_layer(cost)
    info["parameters"] = cost.params.elements("parameter") if cost is not None else None
    section.metrics += [
        Metric("arch.depth", "Depth L (self-attention layers)", depth),
        Metric("arch.width", "Width d_x (model dim)", width),
        Metric("arch.log3_width", "log₃(d_x)", info["log3_width"]),
        Metric("arch.regime", "Levine et al. regime", info["regime"], note="heuristic, not a verdict"),
    ]
    if info["params_per_layer"]:
        section.metrics.append(Metric("arch.params_per_layer", "Parameters per layer", info["params_per_layer"]))
    relation = ">" if info["regime"] == "width-limited" else "≤"
    section.add("AR001", Severity.INFO,
                f"Levine et al. (NeurIPS 2020) heuristic: depth L={depth} {relation} log₃(d_x)="
                f"{info['log3_width']} (d_x={width}) → {info['regime']} regime"
                + ("; for this parameter budget more depth gives diminishing returns"
                   if info["regime"] == "width-limited" else "; added depth is still efficient")
                + " (a heuristic from that paper, not a verdict)")
    return info


# -- 2. heads and d_k ---------------------------------------------------------------------
def _ranges(idx: list[int]) -> str:
    out: list[str] = []
    start = prev = idx[0]
    for k in idx[1:] + [None]:
        if k is not None and k == prev + 1:
            prev = k
            continue
        out.append(str(start) if start == prev else f"{start}–{prev}")
        if k is not None:
            start = prev = k
    return ",".join(out)


def _scale_check(la: AttentionLayer) -> str:
    exp = la.expected_scale
    if la.scale is None:
        return "unknown"
    if exp is None:
        return f"{la.scale:.4g}"
    ratio = la.scale / exp
    return "1/√d_k" if abs(ratio - 1) < 1e-3 else f"×{ratio:.3g}"


def heads(section: Section, layers: list[AttentionLayer]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[AttentionLayer]] = {}
    for la in layers:
        key = (la.heads, la.kv_heads, D.as_int(la.head_dim), D.as_int(la.model_dim), _scale_check(la))
        groups.setdefault(key, []).append(la)
    table = Table("heads", "Heads and d_k", [
        Column("layers", "layers"), Column("h", "h", "right"), Column("kv", "kv", "right"),
        Column("gqa", "h/kv", "right"), Column("dk", "d_k", "right"), Column("dm_h", "d_model/h", "right"),
        Column("scale", "scale")])
    rows = []
    for (h, kv, dk, dm, scale), group in groups.items():
        expected = dm // h if dm and h and dm % h == 0 else (dm / h if dm and h else None)
        ratio = (h // kv) if h and kv and h % kv == 0 else None
        idx = [la.index for la in group]
        table.rows.append([_ranges(idx), h, kv, ratio, dk, expected, scale])
        rows.append({"layers": idx, "heads": h, "kv_heads": kv, "gqa_ratio": ratio, "head_dim": dk,
                     "d_model_over_h": expected, "scale": scale})
        where = f"layers {_ranges(idx)}"
        if dk and expected and dk != expected:
            section.add("AR002", Severity.WARNING,
                        f"{where}: head dim in the graph is {dk}, not d_model/h = {dm}/{h} = {expected}", None)
        if dk and dk < LOW_RANK_DK:
            section.add("AR003", Severity.WARNING,
                        f"{where}: d_k = {dk} < {LOW_RANK_DK}: each head's QKᵀ has rank ≤ {dk} "
                        "(low-rank attention per head)", None)
    section.tables.append(table)
    return rows


# -- 3. context coverage -------------------------------------------------------------------------
def min_depth_to_cover(layers: list[AttentionLayer], n: int) -> tuple[int | None, int | None]:
    """(window W, least L with L·(W-1)+1 >= n) when every self-attention layer
    is the same sliding window."""
    selfs = [la for la in layers if la.self_attention]
    windows = {la.mask.params.get("window") for la in selfs if la.mask.family == "sliding_window"}
    if not selfs or len(windows) != 1 or any(la.mask.family != "sliding_window" for la in selfs) \
            or None in windows:
        return None, None
    w = int(windows.pop() or 0)
    return w, (math.ceil((n - 1) / (w - 1)) if w > 1 else None)


def context(ctx: AnalysisContext, section: Section, layers: list[AttentionLayer]) -> dict[str, Any] | None:
    cov: Coverage | None = coverage(ctx)
    if cov is None:
        return None
    seq = sequence_dim(ctx.graph, ctx.input_types())
    bound = seq in ctx.dims.bound if seq else False
    n = cov.n
    w, need = min_depth_to_cover(layers, n)
    depth = sum(1 for la in layers if la.self_attention)
    data = {"n": n, "bound": bound, "reach_last": cov.reach_last, "covers": cov.covers,
            "first_layer": cov.first_layer, "pair_fraction": round(cov.pair_fraction, 6), "causal": cov.causal,
            "window": w, "min_depth_to_cover": need, "depth": depth, "reach_bound": cov.bound,
            "approximated_at": [a.data() for a in cov.approx]}
    at = f"n={n:,}" + ("" if bound else " (default; bind with --seq-len)")
    # Upper bounds when the engine approximated on the path (the node named), exact otherwise.
    why = f"{cov.upper_note}" if cov.bound else ""
    section.metrics += [
        Metric("coverage.n", "Sequence length N", n, note="bound" if bound else "default"),
        Metric("coverage.reach_last", "Inputs the last token sees", cov.reach_last, note=why, bound=cov.bound),
        Metric("coverage.covers", "Last token sees the first", cov.covers,
               note=why.removeprefix("an upper bound: ") if cov.covers else "",
               bound=cov.bound if cov.covers else None),
        Metric("coverage.first_layer", "…first after layer", cov.first_layer if cov.covers else "never"),
        Metric("coverage.pair_fraction", "Reachable (query, key) pairs", cov.pairs_text(),
               note=("of pairs with key ≤ query" if cov.causal else "of all pairs")
               + (", sampled" if cov.sampled else "") + (f"; {why}" if why else ""), bound=cov.bound),
    ]
    if w is not None:
        section.metrics.append(Metric("coverage.min_depth", f"Depth to cover N with window {w}", need,
                                      note=f"L·(W−1)+1 ≥ N; model has {depth}"))
    if not cov.covers:
        extra = ""
        if w is not None and need is not None:
            extra = (f"; with a window of {w} each layer adds {w - 1} tokens: {depth}·{w - 1}+1 = "
                     f"{depth * (w - 1) + 1:,} < {n:,}, at least {need} layers are needed")
        most = "at most " if cov.bound else ""
        section.add("AR004", Severity.WARNING,
                    f"at {at} the last token sees only {most}{cov.reach_last:,} of {n:,} tokens: the model cannot "
                    f"relate the first and the last token{extra}")
    else:
        how = ""
        if w is not None and cov.first_layer:
            how = f" ({cov.first_layer}·{w - 1}+1 = {cov.first_layer * (w - 1) + 1:,} ≥ {n:,})"
        upto = "at most " if cov.bound else ""
        after = f" after {cov.first_layer} attention layer(s)" if cov.first_layer else ""
        section.add("AR005", Severity.INFO,
                    f"at {at} the last token {'perhaps ' if cov.bound else ''}first sees the first one"
                    f"{after}{how}; {upto}{100 * cov.pair_fraction:.1f}% of "
                    f"{'causal ' if cov.causal else ''}pairs are reachable" + (f" ({why})" if why else ""))
    return data


# -- 4. cost shape ---------------------------------------------------------------------------------
def seq_polynomial(ctx: AnalysisContext, poly: Any, seq: str) -> dict[int, float] | None:
    """Coefficients by power of ``seq`` with every other dim at its binding."""
    if poly is None:
        return None
    from model_analyze.cost.poly import atom_values

    others = {a for a in poly.atoms() if a != seq}
    values = atom_values(others, ctx.bindings)
    coef: dict[int, float] = {}
    for mono, c in poly.terms.items():
        power, v = 0, float(c)
        for atom, p in mono:
            if atom == seq:
                power += p
            elif atom in values:
                v *= float(values[atom]) ** p
            else:
                return None
        coef[power] = coef.get(power, 0.0) + v
    return coef


def crossover(coef: dict[int, float]) -> float | None:
    """N where the N² part equals the rest (c + a·N = b·N²)."""
    b, a, c = coef.get(2, 0.0), coef.get(1, 0.0), coef.get(0, 0.0)
    if b <= 0 or any(p > 2 for p in coef):
        return None
    disc = a * a + 4 * b * c
    return (a + math.sqrt(disc)) / (2 * b) if disc >= 0 else None


def cost_shape(ctx: AnalysisContext, section: Section, cost: Any, n: int | None) -> dict[str, Any] | None:
    seq = sequence_dim(ctx.graph, ctx.input_types())
    if cost is None or seq is None:
        return None
    out: dict[str, Any] = {"seq": seq}
    table = Table("cost_shape", "Cost shape in N", [
        Column("flops", "FLOPs"), Column("quad", "share ∝ N² at N", "right"),
        Column("cross", "N² part dominates above", "right")],
        note="the rest grows linearly with N (projections, MLP, windowed attention) or is constant")
    for label, poly in (("dense", cost.graph.flops), ("mask-aware", cost.effective_flops)):
        coef = seq_polynomial(ctx, poly, seq)
        if coef is None or n is None:
            continue
        total = sum(v * n ** p for p, v in coef.items())
        quad = coef.get(2, 0.0) * n * n
        lin = coef.get(1, 0.0) * n
        cross = crossover(coef)
        share = quad / total if total else 0.0
        out[label] = {"coefficients": {str(p): v for p, v in sorted(coef.items())}, "quadratic_share": share,
                      "linear_share": lin / total if total else 0.0, "crossover": cross}
        table.rows.append([label, f"{100 * share:.1f}%", f"{cross:,.0f}" if cross else "never"])
    if table.rows:
        section.tables.append(table)
        dense = out.get("dense")
        if dense and dense["crossover"]:
            eff = out.get("mask-aware")
            tail = ""
            if eff is not None and not eff["crossover"]:
                tail = "; with the model's mask the attention cost stays linear in N, so it never dominates"
            section.add("AR006", Severity.INFO,
                        f"at N={n:,} {100 * dense['quadratic_share']:.1f}% of dense FLOPs grow with N² "
                        f"(attention scores); they dominate above N ≈ {dense['crossover']:,.0f}{tail}")
    return out


def run(ctx: AnalysisContext) -> Section:
    section = Section("architecture", "Architecture review")
    layers = attention_layers(ctx)
    if not layers:
        section.summary = "no attention layers: the transformer architecture review does not apply"
        return section
    cost = cost_model_or_none(ctx, section)
    data: dict[str, Any] = {}
    data["depth_width"] = depth_width(section, layers, cost)
    data["heads"] = heads(section, layers)
    data["coverage"] = context(ctx, section, layers)
    n = data["coverage"]["n"] if data["coverage"] else None
    data["cost_shape"] = cost_shape(ctx, section, cost, n)
    section.data = data
    dw, cov = data["depth_width"], data["coverage"]
    parts = []
    if dw:
        parts.append(f"L={dw['depth']}, d_x={dw['width']} ({dw['regime']} per Levine et al.)")
    if cov:
        parts.append(f"last token sees {cov['reach_last']:,} of {cov['n']:,}"
                     + (f", first after layer {cov['first_layer']}" if cov["covers"] else " (not covered)"))
    section.summary = "; ".join(parts)
    return section
