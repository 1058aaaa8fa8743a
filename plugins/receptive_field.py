"""Receptive field of conv/pool stacks (METRICS.md, Araujo et al. Distill 2019).

Reported for every graph output and for the *final feature maps* — the tensors
whose spatial positions are still distinguishable right before a node (global
pool, flatten, reduction) mixes them away. Sizes are theoretical (borders
ignored); stride is the jump between neighbouring output positions; ``pad`` is
the effective left padding (output 0's field starts at input coordinate -pad).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from model_analyze import dims as D
from model_analyze.context import AnalysisContext
from model_analyze.plugin_api import Analyzer, Column, Metric, Section, Severity, Table, hookimpl
from model_analyze.tokenflow import flow, source_length
from model_analyze.tokenflow.deps import Dep
from model_analyze.tokenflow.engine import FlowResult, Source
from model_analyze.tokenflow.rf import RF, positional, receptive_field
from model_analyze.tokenflow.state import SourceAxis

MERGE_OPS = {"Add", "Sum", "Mul", "Sub", "Div", "Max", "Min", "Mean", "Where", "Concat"}
STAGE_OPS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "LpPool",
             "FusedConv"}


def axis_names(sources: list[Source]) -> dict[SourceAxis, str]:
    """H/W (D/H/W, L) names for the spatial axes of each input, in axis order."""
    by_input: dict[str, list[Source]] = defaultdict(list)
    for s in sources:
        by_input[s.axis[0]].append(s)
    names: dict[SourceAxis, str] = {}
    for inp, items in by_input.items():
        items.sort(key=lambda s: s.axis[1])
        labels = {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}.get(len(items))
        prefix = f"{inp}." if len(by_input) > 1 else ""
        for k, s in enumerate(items):
            names[s.axis] = prefix + (labels[k] if labels else f"axis{s.axis[1]}")
    return names


def axis_deps(result: FlowResult, tensor: str, src: SourceAxis) -> list[tuple[int, Dep]]:
    st = result.states.get(tensor)
    if st is None or st.axes is None:
        return []
    return [(k, ax[src]) for k, ax in enumerate(st.axes) if src in ax and positional(ax[src])]


def field(result: FlowResult, tensor: str, src: SourceAxis) -> RF | None:
    """RF of ``tensor`` w.r.t. ``src`` (global when only position-independent deps remain)."""
    deps = axis_deps(result, tensor, src)
    if deps:
        return receptive_field(deps[0][1])
    st = result.states.get(tensor)
    if st is not None and (src in st.fixed or any(src in ax for ax in st.axes or ())):
        return RF(None, None, None, None, global_=True)
    return None


def final_maps(ctx: AnalysisContext, result: FlowResult, spatial: list[SourceAxis]) -> list[tuple[str, str]]:
    """(tensor, consumer) pairs where spatial positions are last distinguishable."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for node in ctx.graph.topo_order():
        for t in node.inputs:
            if not t or t in seen:
                continue
            for src in spatial:
                if not axis_deps(result, t, src):
                    continue
                if any(axis_deps(result, o, src) for o in node.outputs if o):
                    continue
                out.append((t, node.name))
                seen.add(t)
                break
    return out


def fmt(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 3)
    return v


def rf_row(where: str, axis: str, rf: RF, length: int | None) -> list[Any]:
    if rf.global_:
        return [where, axis, "global", "—", "—", "—", "yes"]
    covers = "yes" if rf.covers(length) else ("no" if length is not None else "?")
    size = fmt(rf.size) if rf.exact else f"≤{fmt(rf.size)}"
    return [where, axis, size, fmt(rf.stride), fmt(rf.pad), fmt(rf.center), covers]


def misaligned(ctx: AnalysisContext, result: FlowResult, spatial: list[SourceAxis], section: Section,
               names: dict[SourceAxis, str]) -> None:
    for node in ctx.graph.topo_order():
        if node.op_type not in MERGE_OPS or node.domain:
            continue
        for src in spatial:
            fields = []
            for t in node.inputs:
                deps = axis_deps(result, t, src) if t else []
                if deps:
                    rf = receptive_field(deps[0][1])
                    if rf is not None and rf.exact and not rf.global_:
                        fields.append((t, rf))
            strides = {rf.stride for _, rf in fields}
            centers = {rf.center for _, rf in fields}
            if len(fields) >= 2 and (len(strides) > 1 or len(centers) > 1):
                detail = ", ".join(f"{t}: stride {fmt(rf.stride)} centre {fmt(rf.center)}" for t, rf in fields)
                section.add("RF001", Severity.WARNING,
                            f"branches meet misaligned along {names[src]} ({detail}); the union (hull) is reported",
                            node.ref())
                break


def growth(ctx: AnalysisContext, result: FlowResult, src: SourceAxis) -> list[dict[str, Any]]:
    rows = []
    for node in ctx.graph.topo_order():
        if node.op_type not in STAGE_OPS or not node.outputs or not node.outputs[0]:
            continue
        rf = field(result, node.outputs[0], src)
        if rf is None or rf.global_:
            continue
        shape = ctx.shapes.shape(node.outputs[0])
        rows.append({"node": node.name, "op": node.op_type, "rf": fmt(rf.size), "stride": fmt(rf.stride),
                     "pad": fmt(rf.pad), "shape": [D.fmt(d) for d in shape] if shape else None})
    return rows


def run(ctx: AnalysisContext) -> Section:
    result = flow(ctx)
    section = Section("receptive-field", "Receptive field")
    spatial_src = sorted((s for s in result.sources.values() if "spatial" in s.kinds), key=lambda s: s.axis)
    if not spatial_src:
        section.summary = ("no convolution or pooling runs over an input axis: receptive field does not "
                           "apply (sequence reach is in the attention section)")
        return section
    names = axis_names(spatial_src)
    spatial = [s.axis for s in spatial_src]
    lengths = {s.axis: source_length(ctx, s) for s in spatial_src}
    table = Table("rf", "Receptive field per axis",
                  [Column("tensor", "tensor"), Column("axis", "axis"), Column("size", "size", "right"),
                   Column("stride", "stride", "right"), Column("pad", "pad", "right"),
                   Column("center", "centre", "right"), Column("covers", "covers input", "right")],
                  note="size/stride/pad in input positions; pad = effective left padding (output 0's field "
                       "starts at -pad); centre = input coordinate of output 0's field centre.")
    data: dict[str, Any] = {"axes": {names[s]: {"input": s[0], "axis": s[1]} for s in spatial},
                            "final_maps": [], "outputs": [], "growth": {}}
    maps = final_maps(ctx, result, spatial)
    best: RF | None = None
    for kind, items in (("final_maps", maps), ("outputs", [(o, "") for o in ctx.graph.outputs])):
        for tensor, consumer in items:
            entry: dict[str, Any] = {"tensor": tensor, "consumer": consumer, "axes": {}}
            for src in spatial:
                rf = field(result, tensor, src)
                if rf is None:
                    continue
                label = tensor
                table.rows.append(rf_row(label, names[src], rf, lengths[src]))
                entry["axes"][names[src]] = {"global": rf.global_, "size": fmt(rf.size), "stride": fmt(rf.stride),
                                             "pad": fmt(rf.pad), "center": fmt(rf.center), "exact": rf.exact}
                if kind == "final_maps" and not rf.global_ and (best is None or (rf.size or 0) > (best.size or 0)):
                    best = rf
            data[kind].append(entry)
    section.tables.append(table)
    first = spatial[0]
    stages = growth(ctx, result, first)
    data["growth"] = {names[first]: stages}
    stage_rows = []
    for k, row in enumerate(stages):
        if k + 1 == len(stages) or stages[k + 1]["stride"] != row["stride"]:
            stage_rows.append([len(stage_rows) + 1, row["node"], row["op"], row["stride"], row["rf"]])
    if stage_rows:
        section.tables.append(Table("growth", f"RF growth along {names[first]} (end of each stride stage)",
                                    [Column("stage", "stage", "right"), Column("node", "last node"),
                                     Column("op", "op"), Column("stride", "stride", "right"),
                                     Column("rf", "RF", "right")], stage_rows))
    if best is not None:
        section.metrics.append(Metric("rf.size", "Receptive field (final map)", best.size, "px"))
        section.metrics.append(Metric("rf.stride", "Output stride", best.stride))
        section.metrics.append(Metric("rf.pad", "Effective left padding", best.pad))
    beyond = [src for src in spatial if best is not None and best.size is not None
              and lengths[src] is not None and best.size > lengths[src]]  # type: ignore[operator]
    if beyond and best is not None:
        def how(src: SourceAxis) -> str:
            length = result.sources[src].length
            kind = "" if D.is_int(length) else (" (bound)" if ctx.is_bound(length) else " (default)")
            return f"{names[src]} {lengths[src]}{kind}"

        section.add("RF002", Severity.INFO,
                    f"receptive field {best.size} exceeds the input size ({', '.join(how(s) for s in beyond)}): "
                    "every final-map position sees the whole image")
    misaligned(ctx, result, spatial, section, names)
    unknown = {k: v for k, v in result.unknown_ops.items()}
    if unknown:
        section.add("RF003", Severity.WARNING,
                    "ops without a token-flow rule were treated as mixing every position (the field is an "
                    "over-approximation): " + ", ".join(f"{k}×{v}" for k, v in sorted(unknown.items())))
    section.data = data
    if best is not None:
        section.summary = (f"final feature map: RF {best.size} (stride {best.stride}, effective padding "
                           f"{best.pad}) along {names[first]}")
    else:
        section.summary = "every spatial position is mixed before the outputs (global receptive field)"
    return section


@hookimpl
def model_analyze_analyzers() -> list[Analyzer]:
    return [Analyzer("receptive-field", "Receptive field", run,
                     "receptive field size, stride and padding per spatial axis", order=20)]
