"""Receptive field of conv/pool stacks (docs/metrics.md, Araujo et al. Distill 2019).

Reported for every graph output and for the *final feature maps* — the tensors
whose spatial positions are still distinguishable right before a node (global
pool, flatten, reduction) mixes them away. Sizes are theoretical (borders
ignored); stride is the jump between neighbouring output positions; ``pad`` is
the effective left padding (output 0's field starts at input coordinate -pad).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from model_analyze import dims as D
from model_analyze.context import AnalysisContext
from model_analyze.graph import is_float
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
from model_analyze.tokenflow import flow, source_length
from model_analyze.tokenflow.deps import Dep
from model_analyze.tokenflow.engine import FlowResult, Source
from model_analyze.tokenflow.rf import RF, covers_axis, positional, receptive_field
from model_analyze.tokenflow.state import SourceAxis

MERGE_OPS = {"Add", "Sum", "Mul", "Sub", "Div", "Max", "Min", "Mean", "Where", "Concat"}
POOL_OPS = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "ReduceMean", "ReduceMax", "ReduceSum",
            "ReduceMin", "ReduceL2", "ReduceLogSumExp", "AveragePool", "MaxPool", "Flatten"}
"""Consumers that end a map by pooling it into a vector (or flattening it for the head)."""
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


IMAGE_AXES = ("H", "W", "D")


def axis_unit(ctx: AnalysisContext, name: str, src: SourceAxis) -> str:
    """What one position along ``src`` is, so a field is never printed in pixels along time.

    ``px`` on an image axis (one of an input's 2 or 3 spatial axes: H/W, D/H/W). On a lone
    1-D axis, ``samples`` when the input is a raw signal — a float tensor with no other axis
    than a batch and at most one channel (``[T]``, ``[B, T]``, ``[B, 1, T]``: audio like
    silero VAD or wav2vec); otherwise ``positions`` (feature frames, time steps)."""
    if name.rsplit(".", 1)[-1] in IMAGE_AXES:
        return "px"
    t = ctx.shapes.type(src[0])
    if t is None or t.shape is None or not is_float(t.dtype):
        return "positions"
    rank, k = len(t.shape), src[1]
    if k == rank - 1 and (rank <= 2 or (rank == 3 and D.is_int(t.shape[1]) and int(t.shape[1]) == 1)):
        return "samples"
    return "positions"


WHOLE = {"px": "image", "samples": "signal", "positions": "input"}
"""What "the whole …" is along an axis of each unit (never "the whole image" of an audio clip)."""
SINGULAR = {"px": "px", "samples": "sample", "positions": "position"}


def axis_deps(result: FlowResult, tensor: str, src: SourceAxis) -> list[tuple[int, Dep]]:
    st = result.states.get(tensor)
    if st is None or st.axes is None:
        return []
    return [(k, ax[src]) for k, ax in enumerate(st.axes) if src in ax and positional(ax[src])]


def field(result: FlowResult, tensor: str, src: SourceAxis, length: int | None = None) -> RF | None:
    """RF of ``tensor`` w.r.t. ``src`` (global when only position-independent deps remain).

    With the source ``length`` known, whole-axis context is told apart from the local
    field: a squeeze-excite gate (global pool → Mul) makes every position of a map depend
    on the whole image, yet the conv path still has its Distill RF — both are reported
    (``RF.context``), neither hides the other."""
    deps = axis_deps(result, tensor, src)
    st = result.states.get(tensor)
    if deps:
        fixed = st.fixed.get(src) if st is not None else None
        return receptive_field(deps[0][1], length, context=fixed is not None and covers_axis(fixed, length))
    if st is not None and (src in st.fixed or any(src in ax for ax in st.axes or ())):
        return RF(None, None, None, None, global_=True)
    return None


def is_map(result: FlowResult, tensor: str, spatial: list[SourceAxis]) -> bool:
    """Is ``tensor`` a spatial map: some source axis still positional, and no tensor axis
    holding positions of one spatial source also depends on another? A flatten of H×W
    into tokens or anchors (ViT's patch sequence, a detection head's ``[N, H·W·A, K]``)
    keeps H's rows as a fractional "position" of the merged axis and W only as a whole:
    not a map, and a receptive field read from it is meaningless (stride 8/7 px)."""
    st = result.states.get(tensor)
    if st is None or st.axes is None:
        return False
    found = False
    for ax in st.axes:
        mine = [src for src in spatial if src in ax and positional(ax[src])]
        if not mine:
            continue
        if len([src for src in spatial if src in ax]) > 1:
            return False
        found = True
    return found


def _carries(ctx: AnalysisContext, result: FlowResult, tensor: str, spatial: list[SourceAxis]) -> bool:
    """A map whose positions are still distinguishable at the binding: some axis holding a
    spatial source's positions has more than one position. A pool or conv that leaves one
    position (the model zoo's 7×7 ``AveragePool`` on a 7×7 map) is a global pool."""
    if not is_map(result, tensor, spatial):
        return False
    st = result.states.get(tensor)
    shape = ctx.shapes.shape(tensor)
    if st is None or st.axes is None or shape is None or len(shape) != len(st.axes):
        return True
    for k, ax in enumerate(st.axes):
        if any(src in ax and positional(ax[src]) for src in spatial):
            n = ctx.evaluate(shape[k]) if shape[k] is not None else None
            if n is None or n != 1:
                return True
    return False


def _reads(result: FlowResult, tensor: str, src: SourceAxis) -> bool:
    """Does ``tensor`` depend on ``src`` at all (positionally or not)? ``Shape`` does not."""
    st = result.states.get(tensor)
    return st is not None and src in st.sources()


def final_maps(ctx: AnalysisContext, result: FlowResult, spatial: list[SourceAxis]) -> list[tuple[str, str]]:
    """(tensor, consumer) pairs where spatial positions are last distinguishable.

    A tensor is a final map when a consumer mixes its positions away (global pool,
    flatten, reduction: the output still depends on the source, no longer by position)
    and no consumer carries them on. So a squeeze-excite pool inside a block, or a
    ``Shape`` read by a TorchScript export's dynamic ``chunk``, does not end the map."""
    out: list[tuple[str, str]] = []
    tensors = list(ctx.graph.inputs) + [t for node in ctx.graph.topo_order() for t in node.outputs if t]
    for t in tensors:
        if not _carries(ctx, result, t, spatial):
            continue
        users = ctx.graph.consumers(t)
        if any(_carries(ctx, result, o, spatial) for u in users for o in u.outputs if o):
            continue
        if any(u.id in result.conservative for u in users):
            continue  # positions lost (no rule, or it raised), not mixed away: see lost_maps()
        mixer = next((u for u in users if any(_reads(result, o, src) for o in u.outputs if o for src in spatial)),
                     None)
        if mixer is not None:
            out.append((t, mixer.name))
    return out


def refolded_maps(ctx: AnalysisContext, result: FlowResult, spatial: list[SourceAxis],
                  maps: list[str]) -> set[str]:
    """The maps in ``maps`` below which some tensor is a map again: MobileViT unfolds
    its map into patch tokens (the patch grid is a "final map" there, stride 2× the
    network's) and folds it back. Its field is then not the model's: the map below is."""
    if not maps:
        return set()
    below: dict[str, bool] = {}  # tensor -> a map is computed from it (itself excluded)
    for node in reversed(ctx.graph.topo_order()):
        hit = any(o and (_carries(ctx, result, o, spatial) or below.get(o, False)) for o in node.outputs)
        if hit:
            for t in node.inputs:
                if t:
                    below[t] = True
    return {t for t in maps if below.get(t, False)}


def lost_maps(ctx: AnalysisContext, result: FlowResult, spatial: list[SourceAxis]) -> list[tuple[str, Any]]:
    """(map, node) pairs where a map enters a node treated conservatively (no flow rule, or
    its rule raised). Beyond it the field is not known: its fields are lower bounds of the
    final map's (a field never shrinks along a path), never the final map's own."""
    out = []
    for node in ctx.graph.topo_order():
        if node.id not in result.conservative:
            continue
        for t in node.inputs:
            if t and _carries(ctx, result, t, spatial):
                out.append((t, node))
    return out


def _covering(result: FlowResult, tensor: str, src: SourceAxis, length: int | None) -> bool:
    st = result.states.get(tensor)
    dep = st.fixed.get(src) if st is not None else None
    return dep is not None and covers_axis(dep, length)


def context_nodes(ctx: AnalysisContext, result: FlowResult, tensor: str, src: SourceAxis,
                  length: int | None) -> list[Any]:
    """The nodes where whole-image context enters ``tensor``'s position-independent deps
    (a squeeze-excite ``GlobalAveragePool``, a window reshape): walked back from ``tensor``
    along inputs that carry it, stopping at nodes none of whose inputs do."""
    found: list[Any] = []
    seen: set[str] = set()
    stack = [tensor]
    while stack:
        t = stack.pop()
        node = ctx.graph.producer(t)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        carrying = [i for i in node.inputs if i and _covering(result, i, src, length)]
        if carrying:
            stack.extend(carrying)
        else:
            found.append(node)
    return found


def fmt(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 3)
    return v


def rf_row(where: str, axis: str, rf: RF, length: int | None) -> list[Any]:
    if rf.global_:
        return [where, axis, "global", "—", "—", "—", "yes"]
    covers = "yes" if rf.covers(length) else ("no" if length is not None else "?")
    if rf.context and covers != "yes":
        covers = "context"
    # No size and not global: offsets that stay symbolic at the binding (a roll by a
    # dynamic shift) — unknown, not a bound.
    size = "?" if rf.size is None else (fmt(rf.size) if rf.exact else f"≤{fmt(rf.size)}")
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


def growth(ctx: AnalysisContext, result: FlowResult, src: SourceAxis, length: int | None) -> list[dict[str, Any]]:
    rows = []
    for node in ctx.graph.topo_order():
        if node.op_type not in STAGE_OPS or not node.outputs or not node.outputs[0]:
            continue
        rf = field(result, node.outputs[0], src, length)
        if rf is None or rf.global_:
            continue
        shape = ctx.shapes.shape(node.outputs[0])
        rows.append({"node": node.name, "op": node.op_type, "rf": fmt(rf.size), "stride": fmt(rf.stride),
                     "pad": fmt(rf.pad), "shape": [D.fmt(d) for d in shape] if shape else None})
    return rows


INTEGER_DTYPES = frozenset({2, 3, 4, 5, 6, 7, 9, 12, 13})
"""ONNX TensorProto element types uint8, int8, uint16, int16, int32, int64, bool, uint32, uint64."""


def token_ids(ctx: AnalysisContext, src: Source) -> bool:
    """An integer input (token ids read through an embedding) is a sequence, not a
    map: a convolution over it (Mamba's causal conv1d) has a reach, which the
    attention/reach sections report, but no geometry to centre or align."""
    return ctx.shapes.dtype(src.axis[0]) in INTEGER_DTYPES


@dataclass
class FieldResult:
    """What the receptive-field analysis found, before any wording (the compute step)."""

    result: FlowResult
    spatial: list[SourceAxis]
    names: dict[SourceAxis, str]
    lengths: dict[SourceAxis, int | None]
    maps: list[tuple[str, str]]
    """Final maps: (tensor, the consumer that mixes its positions away)."""
    rows: list[list[Any]] = dataclasses.field(default_factory=list)
    """The per-axis table, one row per (tensor, axis) with a field."""
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    best: RF | None = None
    best_at: tuple[str, SourceAxis] | None = None
    """The map (and source axis) of the reported field: the largest local field of a final map."""
    refolded: set[str] = dataclasses.field(default_factory=set)
    """Final maps whose positions come back as a map further down (a patch grid unfolded
    into tokens and folded again): listed, but not the model's final map."""
    lower_at: Any = None
    """The first node positions are lost at (no flow rule, or it raised): the field is then ≥."""
    stages: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    units: dict[SourceAxis, str] = dataclasses.field(default_factory=dict)
    """What a position along each axis is: ``px``, ``samples`` or ``positions`` (:func:`axis_unit`)."""


def compute(ctx: AnalysisContext, result: FlowResult, spatial_src: list[Source]) -> FieldResult:
    """Fields of the final maps and outputs, the reported one, and the growth along the first axis."""
    spatial = [s.axis for s in spatial_src]
    f = FieldResult(result, spatial, axis_names(spatial_src), {s.axis: source_length(ctx, s) for s in spatial_src},
                    final_maps(ctx, result, spatial))
    f.units = {src: axis_unit(ctx, f.names[src], src) for src in spatial}
    f.refolded = refolded_maps(ctx, result, spatial, [t for t, _ in f.maps])
    f.data = {"axes": {f.names[s]: {"input": s[0], "axis": s[1], "unit": f.units[s]} for s in spatial},
              "final_maps": [], "outputs": [],
              "growth": {}}
    for kind, items in (("final_maps", f.maps), ("outputs", [(o, "") for o in ctx.graph.outputs])):
        for tensor, consumer in items:
            f.data[kind].append(_entry(f, kind, tensor, consumer))
    if f.best is None:  # nothing but refolded grids: the largest of them, as before
        for tensor in f.refolded:
            for src in spatial:
                _consider(f, field(result, tensor, src, f.lengths[src]), tensor, src)
    lost = lost_maps(ctx, result, spatial)
    f.lower_at = lost[0][1] if lost else None  # the field continues past it: whatever we report is ≥
    for tensor, _node in lost:
        for src in spatial:
            _consider(f, field(result, tensor, src, f.lengths[src]), tensor, src)
    first = spatial[0]
    f.stages = growth(ctx, result, first, f.lengths[first])
    f.data["growth"] = {f.names[first]: f.stages}
    return f


def _consider(f: FieldResult, rf: RF | None, tensor: str, src: SourceAxis) -> None:
    """Keep ``rf`` as the reported field when it is the largest local one so far."""
    if rf is not None and not rf.global_ and rf.size is not None and (f.best is None or rf.size > (f.best.size or 0)):
        f.best, f.best_at = rf, (tensor, src)


def _entry(f: FieldResult, kind: str, tensor: str, consumer: str) -> dict[str, Any]:
    """One map's (or output's) fields per axis, for the JSON; its table rows as a side effect."""
    entry: dict[str, Any] = {"tensor": tensor, "consumer": consumer, "axes": {}}
    for src in f.spatial:
        rf = field(f.result, tensor, src, f.lengths[src])
        if rf is None:
            continue
        f.rows.append(rf_row(tensor, f.names[src], rf, f.lengths[src]))
        entry["axes"][f.names[src]] = {"global": rf.global_, "size": fmt(rf.size), "stride": fmt(rf.stride),
                                       "pad": fmt(rf.pad), "center": fmt(rf.center), "exact": rf.exact,
                                       "context": rf.context}
        # Dense prediction (segmentation): no map is pooled away, the outputs are the maps —
        # and so when every final map is folded back into a map later (MobileViT's patch grids).
        refolded_only = len(f.refolded) == len(f.maps)
        if (kind == "final_maps" and tensor not in f.refolded) or (
                kind == "outputs" and refolded_only and is_map(f.result, tensor, f.spatial)):
            _consider(f, rf, tensor, src)
    return entry


def run(ctx: AnalysisContext) -> Section:
    result = flow(ctx)
    section = Section("receptive-field", "Receptive field")
    for fail in result.failures:
        section.add("R002", Severity.ERROR,
                    fail.message("its outputs are treated as depending on every position (the field past it "
                                 "is not known; a size reported is then a lower bound)"),
                    NodeRef(fail.node, fail.op.rsplit("::", 1)[-1], fail.graph))
    spatial_src = sorted((s for s in result.sources.values() if "spatial" in s.kinds and not token_ids(ctx, s)),
                         key=lambda s: s.axis)
    if not spatial_src:
        section.summary = _no_field(ctx, result)
        return section
    f = compute(ctx, result, spatial_src)
    present(ctx, section, f)
    return section


def _no_field(ctx: AnalysisContext, result: FlowResult) -> str:
    """Why there is no receptive field to report — and where what the positions see is
    reported instead: the reach rows of the attention section, which has them for every
    model with a sequence input, attention layers or not (``sequence_coverage``)."""
    from model_analyze.tokenflow.coverage import coverage, sequence_coverage

    hidden = [f for f in result.failures if f.op in STAGE_OPS]  # a conv/pool whose rule raised
    if hidden:
        stuck = hidden[0]
        return (f"receptive field unknown: positions are not followed through {stuck.op} {stuck.node} "
                "(its flow rule raised), so no map could be tracked")
    cov = sequence_coverage(ctx) or coverage(ctx)
    where = (f"; what each position sees along {cov.source}: the reach rows under Attention, and "
             "`model-analyze reach`" if cov is not None else "")
    if any("spatial" in s.kinds for s in result.sources.values()):
        return "convolutions run only over token-id inputs, a sequence: receptive field does not apply" + where
    return "no convolution or pooling runs over an input axis: receptive field does not apply" + where


def present(ctx: AnalysisContext, section: Section, f: FieldResult) -> None:
    """The section from the computed fields: tables, the growth chart, metrics, findings, summary."""
    section.tables.append(Table("rf", "Receptive field per axis", RF_COLUMNS, f.rows, note=RF_NOTE))
    _present_growth(section, f)
    if f.best is not None:
        _present_metrics(section, f, f.best)
    _beyond_input(ctx, section, f)
    misaligned(ctx, f.result, f.spatial, section, f.names)
    if f.result.unknown_ops:
        section.add("RF003", Severity.WARNING,
                    "ops without a token-flow rule were treated as mixing every position (the field is an "
                    "over-approximation): " + ", ".join(f"{k}×{v}" for k, v in sorted(f.result.unknown_ops.items())))
    section.data = f.data
    mixer_note = _merged_map(ctx, section, f)
    context = _context(ctx, section, f)
    section.summary = _summary(f, context, mixer_note)


RF_COLUMNS = [Column("tensor", "tensor"), Column("axis", "axis"), Column("size", "size", "right"),
              Column("stride", "stride", "right"), Column("pad", "pad", "right"), Column("center", "centre", "right"),
              Column("covers", "covers input", "right")]
RF_NOTE = ("size/stride/pad in input positions; pad = effective left padding (output 0's field starts at -pad); "
           "centre = input coordinate of output 0's field centre. covers input 'context': every position also "
           "sees the whole input through a position-independent path (RF004); size/stride/pad are then the "
           "local field's.")


def _present_growth(section: Section, f: FieldResult) -> None:
    """The RF growth along the first spatial axis: a line chart node by node, a table by stride stage."""
    axis, stages = f.names[f.spatial[0]], f.stages
    stage_rows: list[list[Any]] = []
    for k, row in enumerate(stages):
        if k + 1 == len(stages) or stages[k + 1]["stride"] != row["stride"]:
            stage_rows.append([len(stage_rows) + 1, row["node"], row["op"], row["stride"], row["rf"]])
    if len(stages) >= 2:
        section.charts.append(Chart(
            "rf_growth", "line", f"Receptive field along {axis}, conv/pool node by node",
            "conv/pool node, in graph order", "receptive field", y_unit=f.units[f.spatial[0]], log_y=True,
            series=[Series(axis, [Point(r["node"], r["rf"], f"{r['op']}, stride {r['stride']}") for r in stages])]))
    if stage_rows:
        section.tables.append(Table("growth", f"RF growth along {axis} (end of each stride stage)",
                                    [Column("stage", "stage", "right"), Column("node", "last node"),
                                     Column("op", "op"), Column("stride", "stride", "right"),
                                     Column("rf", "RF", "right")], stage_rows))


def _present_metrics(section: Section, f: FieldResult, best: RF) -> None:
    src = f.best_at[1] if f.best_at is not None else f.spatial[0]
    length = f.lengths[src]
    sees = f"stride {fmt(best.stride)} along {f.names[src]}"
    unit = f.units[src]
    if length is not None:
        sees += f", {'covers' if best.covers(length) else 'inside'} the {length:,}-{SINGULAR[unit]} input"
    section.metrics.append(Metric("rf.size", "Receptive field (final map)", best.size, unit,
                                  note=sees + (f"; local field, whole {WHOLE[unit]} through context (RF004)"
                                               if best.context else ""), headline="receptive_field",
                                  bound="lower" if f.lower_at is not None else (None if best.exact else "upper")))
    section.metrics.append(Metric("rf.stride", "Output stride", best.stride, unit))
    section.metrics.append(Metric("rf.pad", "Effective left padding", best.pad, unit))


def _beyond_input(ctx: AnalysisContext, section: Section, f: FieldResult) -> None:
    """RF002: each axis against its own length (a video's 15-px H field is not "beyond" its 8 frames)."""
    if f.best is None or f.best_at is None:
        return
    per_axis = {src: field(f.result, f.best_at[0], src, f.lengths[src]) for src in f.spatial}
    beyond = {src: rf for src, rf in per_axis.items() if rf is not None and rf.size is not None
              and (n := f.lengths[src]) is not None and rf.size > n}
    if not beyond:
        return

    def how(src: SourceAxis) -> str:
        length = f.result.sources[src].length
        kind = "" if D.is_int(length) else (" (bound)" if ctx.is_bound(length) else " (default)")
        return f"{f.names[src]} {f.lengths[src]}{kind}"

    sizes = ", ".join(f"{f.names[s]} {fmt(rf.size)}" for s, rf in beyond.items())
    section.add("RF002", Severity.INFO,
                f"receptive field ({sizes}) exceeds the input size ({', '.join(how(s) for s in beyond)}): "
                f"every final-map position sees the whole {WHOLE[f.units[next(iter(beyond))]]} along "
                f"{'that axis' if len(beyond) == 1 else 'those axes'}")


def _merged_map(ctx: AnalysisContext, section: Section, f: FieldResult) -> str:
    """RF005 when the last tracked map is merged into tokens, windows or a vector; the summary's note."""
    merger = dict(f.maps).get(f.best_at[0]) if f.best_at is not None else None
    mixer = next((n for n in ctx.graph.topo_order() if n.name == merger), None) if merger else None
    if mixer is None or mixer.op_type in POOL_OPS or f.best_at is None:
        return ""
    section.add("RF005", Severity.INFO,
                f"the positions of the last tracked map {f.best_at[0]} are merged by {mixer.op_type} "
                f"{mixer.name} (into tokens, windows or a flat vector): later tensors keep no map this "
                "analysis can follow position by position, so they are reported as seeing the whole input. "
                "For a windowed or token model (Swin, MaxViT, ViT) the size above is that of the stem "
                "before the merge, not the model's field", mixer.ref())
    return f"; then merged by {mixer.op_type} {mixer.name}, beyond which no map is tracked"


def _context(ctx: AnalysisContext, section: Section, f: FieldResult) -> str:
    """RF004 when every position also sees the whole input through position-independent paths."""
    if f.best is None or not f.best.context or f.best_at is None:
        return ""
    tensor, src = f.best_at
    nodes = context_nodes(ctx, f.result, tensor, src, f.lengths[src])
    ops = sorted({n.op_type for n in nodes})
    section.add("RF004", Severity.INFO,
                f"every position of the final map {tensor} also depends on the whole input along "
                f"{f.names[src]} through {len(nodes)} position-independent path(s) ({', '.join(ops)}"
                f"{', first ' + nodes[-1].name if nodes else ''}), e.g. squeeze-excite pooling: the "
                f"size {f.best.size} is the local, position-dependent field (Distill's RF of the conv path)",
                nodes[-1].ref() if nodes else None)
    return f"; every position also sees the whole {WHOLE[f.units[src]]} through position-independent paths"


def _summary(f: FieldResult, context: str, mixer_note: str) -> str:
    best, at = f.best, f.best_at
    if best is None:
        return "every spatial position is mixed before the outputs (global receptive field)"
    axis = f.names[at[1]] if at is not None else f.names[f.spatial[0]]
    if f.lower_at is not None:
        why = f.result.conservative.get(f.lower_at.id, "")
        return (f"final feature map unknown: RF ≥ {fmt(best.size)} along {axis} (at {at[0] if at else '?'}); "
                f"positions are not followed through {f.lower_at.op_type} {f.lower_at.name} ({why}), so every "
                "later tensor is treated as seeing the whole input (an over-approximation)")
    what = "final feature map" if f.maps else "dense output"
    size = fmt(best.size) if best.exact else f"≤{fmt(best.size)}"
    return (f"{what}: RF {size} (stride {fmt(best.stride)}, effective padding {fmt(best.pad)}) along "
            f"{axis}{context}{mixer_note}")
