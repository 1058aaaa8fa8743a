"""Attention span: every attention layer, its mask family and span at the bound length.

One row per layer (fused op or unfused pattern): kind, heads/kv heads, d_k, the
scale check, the mask family read from the graph and the per-layer span at the
sequence length the report is computed at (docs/metrics.md "Attention span").
Findings (codes in the README): AT001 unexpected scale, AT002 missing scale,
AT003 scale not constant, AT010 mask not understood, AT011 mask fits no
family, AT012 input-driven mask, AT013 candidate size above the evaluation
limit, AT020 future-token leak, AT090 an attention-like node could not be read.
AT030 (reach shorter than the bound length) belongs to the token-reach report.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from model_analyze import dims as D
from model_analyze.attention import AttentionLayer, attention_layers, attention_problems
from model_analyze.attention.checks import future_leaks, scale_check
from model_analyze.context import AnalysisContext
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
from model_analyze.render import fold_label


def _n(ctx: AnalysisContext, layers: list[AttentionLayer]) -> int | None:
    """The sequence length spans are computed at: the layers' key length at the bindings."""
    for la in layers:
        for d in (la.k_len, la.q_len):
            v = ctx.evaluate(d) if d is not None else None
            if isinstance(v, int) and v > 0:
                return v
    return None


def _kind(kind: str) -> str:
    for long, short in (("GroupQueryAttention", "GQA"), ("MultiHeadAttention", "MHA"), ("Attention", "Attn")):
        if long in kind and kind != "Attention":
            return kind.replace(long, short)
    return kind


def _mask_text(la: AttentionLayer) -> str:
    m = la.mask
    p = m.params
    text = {
        "bidirectional": "bidirectional",
        "causal": "causal",
        "sliding_window": f"window {p.get('window')}" + (f"+{p['right']}" if p.get("right") else ""),
        "chunked": f"chunked {p.get('chunk')}",
        "global_local": f"global+local {len(p.get('globals', []))}g",
        "dilated": f"dilated {p.get('w')}×{p.get('dilation')}",
        # Global + band + random blocks per query block row (BigBird's layout).
        "block_sparse": (f"block {p.get('block')}: {p['global_blocks']}g+{p['band_blocks']}b+{p['random_blocks']}r"
                         if "band_blocks" in p else f"block-sparse {p.get('block')}"),
        "pattern": f"pattern@{p.get('n')}",
        "band": "band " + "/".join(f"{k}{v}" for k, v in (("-", p.get("left", "∞")), ("+", p.get("right", "∞")))),
        "unknown": "unknown",
    }.get(m.family, m.family)
    return text + ("*" if m.source == "input-driven" else "")


def _span(la: AttentionLayer, n: int | None) -> int | str | None:
    if n is None or la.mask.family == "unknown":
        return None
    try:
        return la.mask.span(n)
    except ValueError:  # a concrete pattern is only known at its own length
        n0 = la.mask.params.get("n")
        return f"{la.mask.span(n0)}@{n0}" if n0 else None


def _scale_text(la: AttentionLayer) -> str:
    chk = scale_check(la)
    if chk.verdict == "ok":
        return "ok"
    if chk.verdict == "missing":
        return "none"
    if chk.ratio is not None:
        return f"×{chk.ratio:.3g}"
    return "?"


def _fmt(d: Any) -> Any:
    return None if d is None else (d if isinstance(d, (int, float)) else D.fmt(d))


def _layer_data(la: AttentionLayer, n: int | None) -> dict[str, Any]:
    m = la.mask
    chk = scale_check(la)
    return {
        "index": la.index, "name": la.name, "kind": la.kind, "stack": la.stack, "nodes": list(la.nodes),
        "qk_node": la.qk_node, "softmax_node": la.softmax_node, "av_node": la.av_node, "fused_node": la.fused_node,
        "heads": la.heads, "kv_heads": la.kv_heads, "head_dim": _fmt(la.head_dim), "v_head_dim": _fmt(la.v_head_dim),
        "model_dim": _fmt(la.model_dim), "q_len": _fmt(la.q_len), "k_len": _fmt(la.k_len),
        "self_attention": la.self_attention,
        "scale": la.scale, "expected_scale": chk.expected, "scale_check": chk.verdict, "scale_note": la.scale_note,
        "softcap": la.softcap, "rope": la.rope,
        "tensors": {"q": la.q_tensor, "k": la.k_tensor, "v": la.v_tensor, "mask": list(la.mask_tensors)},
        "axes": {"softmax": la.softmax_axis, "probs_input": la.probs_input, "q_seq": la.q_seq_axis,
                 "k_seq": la.k_seq_axis, "v_seq": la.v_seq_axis},
        "mask": {"family": m.family, "keys": m.keys.describe(), "params": m.params, "source": m.source,
                 "input_driven": list(m.input_driven), "evaluated_at": list(m.evaluated_at), "note": m.note,
                 "sees_future": m.sees_future, "per_head": m.per_head, "span": _span(la, n)},
        "notes": list(la.notes),
    }


def _ranges(indices: list[int]) -> str:
    parts: list[tuple[int, int]] = []
    for i in sorted(indices):
        if parts and parts[-1][1] == i - 1:
            parts[-1] = (parts[-1][0], i)
        else:
            parts.append((i, i))
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in parts)


def _fold(layers: list[AttentionLayer], n: int | None) -> list[tuple[list[int], list[str], list[Any]]]:
    """Runs of layers whose rows are identical but for index and name, as one row each
    (Mistral's 32 sliding-window layers are one row ``layers.{0..31} ×32``)."""
    out: list[tuple[list[int], list[str], list[Any]]] = []
    for la in layers:
        heads = f"{la.heads or '?'}/{la.kv_heads or '?'}"
        row = [_kind(la.kind), heads, _fmt(la.head_dim), _scale_text(la), _mask_text(la), _span(la, n)]
        if out and out[-1][2] == row:
            out[-1][0].append(la.index)
            out[-1][1].append(la.name)
        else:
            out.append(([la.index], [la.name], row))
    return out


def _fold_name(names: list[str], indices: list[int]) -> str:
    """``layers.{0..31} ×32`` when the names differ only by a trailing number."""
    import re

    parts = [re.match(r"^(.*\D)(\d+)$", x) for x in names]
    if all(parts) and len({mt.group(1) for mt in parts if mt}) == 1:
        prefix = parts[0].group(1)  # type: ignore[union-attr]
        return f"{fold_label(prefix, [int(mt.group(2)) for mt in parts if mt])} ×{len(names)}"
    return f"{names[0]} … {names[-1]} ×{len(names)}"


def _families(layers: list[AttentionLayer]) -> str:
    """``32 layers: sliding window 4096 ×32`` — the verdict's attention line."""
    fams = Counter(_mask_text(la).rstrip("*") for la in layers)
    text = ", ".join(f"{k} ×{v}" for k, v in fams.most_common())
    return f"{len(layers)} attention layer{'s' if len(layers) != 1 else ''}: {text}"


def _ref(ctx: AnalysisContext, la: AttentionLayer) -> NodeRef | None:
    nid = la.fused_node or la.qk_node
    for node in ctx.graph.walk():
        if node.id == nid:
            return node.ref()
    return None


def _findings(ctx: AnalysisContext, section: Section, layers: list[AttentionLayer]) -> None:
    """One finding per distinct message, naming the layers it applies to."""
    groups: dict[tuple[str, Severity, str], list[AttentionLayer]] = {}

    def add(code: str, sev: Severity, msg: str, la: AttentionLayer) -> None:
        groups.setdefault((code, sev, msg), []).append(la)

    for la in layers:
        chk = scale_check(la)
        if chk.verdict == "different":
            add("AT001", Severity.WARNING, f"scores scaled by {chk.applied:.4g}, expected 1/sqrt(d_k) = "
                f"{chk.expected:.4g} (d_k {D.fmt(la.head_dim)})", la)
        elif chk.verdict == "missing":
            add("AT002", Severity.WARNING, f"no scaling of QKᵀ found; expected 1/sqrt(d_k) = {chk.expected:.4g}", la)
        elif la.scale is None and la.scale_note:
            add("AT003", Severity.INFO, f"scale not read: {la.scale_note}", la)
        m = la.mask
        if m.family == "unknown":
            add("AT010", Severity.WARNING, f"mask not understood ({m.note or 'no reason given'}); every key is "
                "assumed visible", la)
        elif m.family == "pattern":
            add("AT011", Severity.WARNING, f"mask fits no family: {m.note}", la)
        if m.source == "input-driven":
            add("AT012", Severity.INFO, "mask built from graph input(s) " + ", ".join(m.input_driven)
                + "; analyzed as if all ones (no padding)", la)
        limit = [part for part in m.note.split("; ") if part.startswith("sizes above")]
        if limit:
            add("AT013", Severity.INFO, f"mask {limit[0]}", la)
    for idx, reason in future_leaks(layers).items():
        add("AT020", Severity.ERROR, f"future-token leak: {reason}", layers[idx])
    for (code, sev, msg), members in groups.items():
        names = members[0].name if len(members) == 1 else f"layers {_ranges([m.index for m in members])}"
        section.add(code, sev, f"{names}: {msg}", _ref(ctx, members[0]))
    for problem in attention_problems(ctx):
        section.add("AT090", Severity.WARNING, f"attention-like node not read: {problem}")


def run(ctx: AnalysisContext) -> Section:
    layers = attention_layers(ctx)
    section = Section("attention", "Attention")
    n = _n(ctx, layers)
    if not layers:
        problems = attention_problems(ctx)
        for problem in problems:
            section.add("AT090", Severity.WARNING, f"attention-like node not read: {problem}")
        section.data = {"n": n, "layers": [], **_attention_free(ctx, section, unread=len(problems))}
        return section
    fams = Counter(la.mask.family for la in layers)
    kinds = Counter(la.kind for la in layers)
    section.summary = (f"{len(layers)} attention layer{'s' if len(layers) != 1 else ''} ("
                       + ", ".join(f"{k} ×{v}" for k, v in kinds.items()) + "); masks: "
                       + ", ".join(f"{k} ×{v}" for k, v in fams.items()))
    section.metrics.append(Metric("layers", "Attention layers", len(layers)))
    if n is not None:
        section.metrics.append(Metric("n", "Sequence length n", n, note="spans are computed at this length"))
    span_col = f"span@{n}" if n is not None else "span"
    table = Table("layers", "Attention layers", [
        Column("i", "#", "right"), Column("layer", "layer (×count)"), Column("kind", "kind"),
        Column("heads", "heads"), Column("d_k", "d_k", "right"), Column("scale", "scale"),
        Column("mask", "mask"), Column("span", span_col, "right")],
        note="heads = query heads/kv heads; scale: ok = 1/sqrt(d_k), ×r = r times it, none = "
             "no scaling; * = input-driven mask analyzed as all ones")
    for indices, names, row in _fold(layers, n):
        label = names[0] if len(names) == 1 else _fold_name(names, indices)
        first = str(indices[0]) if len(indices) == 1 else f"{indices[0]}–{indices[-1]}" \
            if indices == list(range(indices[0], indices[-1] + 1)) else _ranges(indices)
        table.rows.append([first, label, *row])
    section.tables.append(table)
    section.metrics.insert(0, Metric("attention.summary", "Attention", _families(layers), "text",
                                     headline="attention"))
    evaluations = ctx.cached("attention.mask_evaluations", lambda: 0)
    section.data = {"n": n, "layers": [_layer_data(la, n) for la in layers], "mask_evaluations": evaluations}
    _findings(ctx, section, layers)
    section.data["reach"] = _reach(ctx, section)
    return section


def _attention_free(ctx: AnalysisContext, section: Section, unread: int = 0) -> dict[str, Any]:
    """A model without attention layers still mixes its sequence — a recurrence (LSTM, GRU,
    an unrolled scan: Mamba, RWKV, RecurrentGemma's RG-LRU), a cumulative sum, a convolution
    over tokens or frames. The token-flow engine follows those as it follows masks, so the
    reach, coverage and causality are reported the same way, over a sequence input only
    (token ids, frames; never an image, whose field is the receptive field). Returns the
    section data it adds: the reach and the length it is computed at.

    ``unread``: attention-like nodes that could not be read (AT090, Longformer's chunked
    attention). The model then has attention, followed op by op: the summary says so and
    does not name what mixed the sequence (the unread attention did, as much as anything)."""
    from model_analyze.tokenflow.coverage import sequence_coverage

    cov = sequence_coverage(ctx)
    head = (f"{unread} attention-like node{'s' if unread != 1 else ''} not read (AT090), followed op by op"
            if unread else "no attention layer found")
    section.summary = head
    if cov is None:
        return {}
    from model_analyze.tokenflow import flow

    reach = _reach(ctx, section)
    upper = "≤ " if reach is not None and reach["reach_bound"] else ""
    kinds = next((s.kinds for s in flow(ctx).sources.values() if s.label == cov.source), set())
    # What the engine saw mix the positions: ops that run along a sequence (recurrences,
    # scans, cumulative sums mark it ``sequence``) and sliding kernels (``spatial``).
    mixers = [text for kind, text in (("sequence", "recurrences, scans or cumulative sums"),
                                      ("spatial", "convolutions")) if kind in kinds] or ["other ops"]
    mixed_by = "" if unread else f" is mixed by {' and '.join(mixers)}"
    section.summary = (f"{head}; the sequence {cov.source}{mixed_by}: {cov.causal_text}, the last position sees "
                       f"{upper}{cov.reach_last:,} of {cov.n:,} positions")
    return {"n": cov.n, "reach": reach}


def _reach(ctx: AnalysisContext, section: Section) -> dict[str, Any] | None:
    """Model reach through all layers (docs/metrics.md): what the last position sees,
    after how many layers it first sees position 0, coverage of the pairs."""
    from model_analyze.tokenflow import dep_of, flow
    from model_analyze.tokenflow.coverage import coverage
    from model_analyze.tokenflow.deps import UnknownAtLength
    from model_analyze.tokenflow.query import layer_reach, reach_formula

    result = flow(ctx)
    for fail in result.failures:
        section.add("R002", Severity.ERROR,
                    fail.message("its outputs are treated as depending on every position (a reach is then "
                                 "an upper bound)"), NodeRef(fail.node, fail.op.rsplit("::", 1)[-1], fail.graph))
    cov = coverage(ctx)
    if cov is None:
        section.metrics.append(Metric("reach.last", "Model reach (last position)", None,
                                      note="not computable at this length (mask known only at another n)"))
        return None
    src = next(s for s in result.sources.values() if s.label == cov.source)
    formula = reach_formula(dep_of(result, cov.output, cov.axis, src.axis))
    try:
        growth_iv = layer_reach(ctx, src.axis, cov.n - 1)
    except UnknownAtLength:
        growth_iv = []
    growth = [(k, sum(hi - lo + 1 for lo, hi in iv)) for k, iv in growth_iv]
    bound = ctx.is_bound(src.length)
    mixed = _mixed_by_data(result, src.axis)
    section.metrics += _reach_metrics(cov, formula, mixed, _upper_note(result, src.axis, mixed))
    if len(growth) > 1:
        section.metrics.append(Metric("reach.growth", "Reach by layer (last position)", _growth_text(growth)))
    for chart in (_reach_chart(ctx, src, cov.n, growth_iv), _reach_matrix(ctx, cov, src)):
        if chart is not None:
            section.charts.append(chart)
    if not cov.covers:
        severity = Severity.WARNING if bound else Severity.INFO
        where = f"the bound seq={cov.n:,}" if bound else f"n={cov.n:,} (default length)"
        section.add("AT030", severity,
                    f"model reach {cov.reach_last:,} < {where}: the last position cannot see the first "
                    f"{cov.n - cov.reach_last:,} token(s), so the model cannot relate the first and last token")
    return {"output": cov.output, "axis": cov.axis, "source": cov.source, "n": cov.n, "bound": bound,
            "reach_last": cov.reach_last, "formula": formula, "covers": cov.covers,
            "first_layer": cov.first_layer, "pair_fraction": cov.pair_fraction, "causal": cov.causal_shown,
            "by_layer": [{"layer": k, "reach": c} for k, c in growth], "mixed_by_data": mixed,
            "reach_bound": "upper" if mixed or cov.bound else None, "approximated_at": [a.data() for a in cov.approx]}


def _mixed_by_data(result: Any, axis: Any) -> dict[str, int]:
    """Ops that move positions by data-dependent indices (or whose flow rule raised), with counts:
    where they are, the reach is an upper bound."""
    mixed = dict(result.mixed_ops(axis))
    for fail in result.failures:  # a raising flow rule mixes every position
        mixed[f"{fail.op} (rule raised)"] = mixed.get(f"{fail.op} (rule raised)", 0) + 1
    return mixed


def _upper_note(result: Any, axis: Any, mixed: dict[str, int]) -> str:
    if not mixed:
        return ""
    first = (result.mixed_nodes.get(axis) or [""])[0]
    return ("; an upper bound: positions moved by data-dependent indices count as all mixed ("
            + ", ".join(f"{op} ×{k}" for op, k in sorted(mixed.items())) + (f"; first {first}" if first else "")
            + ")")


def _reach_metrics(cov: Any, formula: str | None, mixed: dict[str, int], upper: str) -> list[Metric]:
    """The reach, coverage and pair metrics — each marked an upper bound (``≤``, the node where
    precision was lost named) when data-dependent routing or an approximation of the engine
    lies on the path from the token input to the output; unmarked when the figures are exact."""
    bound = "upper" if mixed or cov.bound else None
    why = upper or (f"; {cov.upper_note}" if cov.bound else "")
    perhaps = ""
    if cov.covers and bound:
        perhaps = ("; perhaps not: data-dependent indices count as all mixed" if mixed
                   else "; " + cov.upper_note.removeprefix("an upper bound: "))
    return [
        Metric("reach.last", "Model reach (last position)", cov.reach_last, "tokens", None,
               f"of n = {cov.n:,}, {cov.causal_text}" + (f"; |reach(i)| = {formula}" if formula else "") + why,
               headline="reach", bound=bound),
        Metric("reach.causal", "Causal", cov.causal_shown,
               note={True: "no position depends on a later one", False: "a position depends on a later one",
                     None: "not shown: the upper bounds see later positions, the truth may not"}[cov.causal_shown]),
        Metric("reach.covers", "Last position sees position 0", cov.covers,
               note=((f"after {cov.first_layer} layer(s)" if cov.covers and cov.first_layer else "")
                     + perhaps).removeprefix("; "),
               headline="coverage", bound=bound if cov.covers else None),
        Metric("reach.pairs", "Reachable (output, input) pairs", cov.pairs_text(),
               note=("pairs with input ≤ output" if cov.causal else "all pairs")
               + (", sampled" if cov.sampled else "") + why, bound=bound),
    ]


def _growth_text(growth: list[tuple[int, int]]) -> str:
    """``L1: 15, L2: 29, …, L32: 4,096``: the first three layers and the last two when there are many."""
    shown = growth if len(growth) <= 6 else growth[:3] + growth[-2:]
    text = ", ".join(f"L{k}: {c:,}" for k, c in shown)
    if len(growth) > 6:
        text = text.replace(f", L{shown[3][0]}", f", …, L{shown[3][0]}", 1)
    return text


REACH_BINS = 64
"""Columns of the reach picture: input positions grouped into this many bins."""


def _bins(intervals: list[tuple[int, int]], n: int) -> list[float]:
    """Fraction of each of REACH_BINS equal bins of [0, n) that the intervals cover."""
    k = min(REACH_BINS, n)
    out = []
    for b in range(k):
        lo, hi = b * n // k, (b + 1) * n // k - 1
        seen = sum(max(0, min(hi, h) - max(lo, lo2) + 1) for lo2, h in intervals)
        out.append(seen / (hi - lo + 1))
    return out


def _bin_labels(n: int, k: int) -> list[str]:
    spans = [(b * n // k, (b + 1) * n // k - 1) for b in range(k)]
    return [f"position {lo:,}" if lo == hi else f"positions {lo:,}–{hi:,}" for lo, hi in spans]


def _reach_chart(ctx: AnalysisContext, src: Any, n: int, growth: list[tuple[int, list[tuple[int, int]]]]
                 ) -> Chart | None:
    """Which input positions the last position sees after each attention layer: one row per
    layer, one cell per bin of input positions (shade = share of the bin seen)."""
    if not growth or n < 2:
        return None
    k = min(REACH_BINS, n)
    labels = _bin_labels(n, k)
    series = [Series(f"after layer {layer}", [Point(lab, v) for lab, v in zip(labels, _bins(iv, n), strict=True)])
              for layer, iv in growth]
    return Chart("reach_by_layer", "heatmap", f"What the last position sees, layer by layer (n = {n:,})",
                 f"input position 0 … {n - 1:,}", "attention layer", x_unit="tokens", series=series,
                 note=f"each cell is a bin of {n / k:,.0f} positions; shade = share of the bin the last position "
                      "depends on after that layer")


def _reach_matrix(ctx: AnalysisContext, cov: Any, src: Any) -> Chart | None:
    """Which input positions each output position sees through the whole model: one row
    per output position (the last of each of up to 32 bins), one cell per input bin."""
    from model_analyze.tokenflow import reach
    from model_analyze.tokenflow.deps import UnknownAtLength

    n = cov.n
    if n < 2:
        return None
    rows = min(32, n)
    k = min(REACH_BINS, n)
    labels = _bin_labels(n, k)
    series = []
    for r in range(rows):
        t = (r + 1) * n // rows - 1
        try:
            iv = reach(ctx, cov.output, cov.axis, t, src.axis).get(src.axis, [])
        except UnknownAtLength:
            return None
        series.append(Series(f"output {t:,}", [Point(lab, v) for lab, v in zip(labels, _bins(iv, n), strict=True)]))
    return Chart("reach_matrix", "heatmap", f"Which inputs each position sees through the model (n = {n:,})",
                 f"input position 0 … {n - 1:,}", "output position", x_unit="tokens", series=series,
                 note="rows: output positions (the last of each bin); shade = share of the input bin it depends on")
