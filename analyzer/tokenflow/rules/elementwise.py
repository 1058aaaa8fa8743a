"""Flow rules of element-wise families, normalisations and reductions: position-wise,
or mixing exactly the axes they normalise or reduce."""

from __future__ import annotations

import math
from typing import Any

from ...ops import catalog
from ...ops.registry import MS
from ..deps import Dep, affine
from ..engine import FlowCtx
from ..state import Deps, FlowState, collapse, merge, through
from .common import FLOW, Out, _norm, broadcast, mix_axes, no_content, pointwise

# -- element-wise families (from the catalog) --------------------------------------------
FLOW.add(catalog.UNARY, pointwise)
FLOW.add(catalog.MS_UNARY, pointwise, MS)
FLOW.add(catalog.MS_QLINEAR, pointwise, MS)
FLOW.add(catalog.BINARY, pointwise)
FLOW.add(catalog.GATED, pointwise)
FLOW.add(["Identity", "Cast", "CastLike", "BitCast", "Dropout", "Trilu", "QuantizeLinear", "DequantizeLinear",
          "DynamicQuantizeLinear", "BatchNormalization", "Clip"], pointwise)
FLOW.add(["DequantizeLinear"], pointwise, MS)
FLOW.add(["Shape", "Size", "ConstantOfShape", "Range", "EyeLike", "RandomNormal", "RandomUniform",
          "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial", "Constant",
          "BlackmanWindow", "HammingWindow", "HannWindow", "MelWeightMatrix"], no_content)


@FLOW.rule("Softmax", "LogSoftmax", "Hardmax", "LpNormalization")
def softmax(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None:
        return ctx.conservative()
    rank = len(shape)
    default = -1 if ctx.opset >= 13 or ctx.node.op_type == "LpNormalization" else 1
    axis = _norm(ctx.attr("axis", default), rank)
    mixed = {axis} if ctx.opset >= 13 or ctx.node.op_type == "LpNormalization" else set(range(axis, rank))
    return [mix_axes(st, shape, mixed)]


@FLOW.rule("LayerNormalization", "RMSNormalization", "SimplifiedLayerNormalization")
@FLOW.rule("LayerNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization",
           "SkipSimplifiedLayerNormalization", domain=MS)
def layer_norm(ctx: FlowCtx) -> Out:
    base = broadcast(ctx)
    shape = ctx.out_shape(0)
    if base is None or shape is None:
        return ctx.conservative()
    axis = _norm(ctx.attr("axis", -1), len(shape))
    out = mix_axes(base, shape, set(range(axis, len(shape))))
    extra: Out = [broadcast(ctx, out=k) for k in range(1, len(ctx.node.outputs))]
    return [out, *extra]


@FLOW.rule("EmbedLayerNormalization", domain=MS)
def embed_layer_norm(ctx: FlowCtx) -> Out:
    """onnxruntime's fused BERT embedding (word + position + segment, then
    LayerNorm): output ``[b, s, :]`` reads token ``s`` of ``input_ids``,
    ``segment_ids`` and ``position_ids`` only; ``mask_index[b]`` reduces the
    whole mask row. Without this rule an optimized BERT loses every position."""
    out_rank = ctx.out_rank(0)
    if out_rank != 3:
        return ctx.conservative()
    token: list[dict[Any, Dep]] = [{}, {}, {}]
    fixed: list[Deps] = []
    for i in (0, 1, 8):  # input_ids, segment_ids, position_ids: [B, S] (position_ids may be [1, S])
        if not ctx.has(i):
            continue
        st = ctx.state(i)
        if st.axes is None or len(st.axes) != 2:
            return ctx.conservative()
        token[0] = merge(token[0], st.axes[0])
        token[1] = merge(token[1], st.axes[1])
        fixed.append(st.fixed)
    for i in range(2, 7):  # embedding tables, gamma, beta: every element of a row
        if ctx.has(i):
            fixed.append(ctx.state(i).collapsed(ctx.shape(i)))
    out = FlowState(tuple(token), merge(*fixed))
    outs: Out = [out]
    if len(ctx.node.outputs) > 1:
        mask = ctx.state(7) if ctx.has(7) else None
        if mask is None or mask.axes is None or len(mask.axes) != 2:
            outs.append(None if mask is None else ctx.conservative(first=1)[1])
        else:
            shape = ctx.shape(7)
            outs.append(FlowState((dict(mask.axes[0]),),
                                  merge(mask.fixed, collapse(mask.axes[1], shape[1] if shape else None))))
    outs += [out for _ in ctx.node.outputs[2:]]
    return outs


@FLOW.rule("InstanceNormalization", "GroupNormalization", "MeanVarianceNormalization")
def spatial_norm(ctx: FlowCtx) -> Out:
    """Statistics over all spatial positions: every position sees all of them."""
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None:
        return ctx.conservative()
    if ctx.node.op_type == "MeanVarianceNormalization":
        mixed = {_norm(a, len(shape)) for a in ctx.attr("axes", [0, 2, 3])}
    else:
        mixed = set(range(2, len(shape))) | ({1} if ctx.node.op_type == "GroupNormalization" else set())
    return [mix_axes(st, shape, mixed)]


@FLOW.rule("LRN")
def lrn(ctx: FlowCtx) -> Out:
    st = ctx.state(0)
    if st.axes is None or len(st.axes) < 2:
        return [st]
    size = int(ctx.attr("size", 1))
    axes = list(dict(a) for a in st.axes)
    axes[1] = through(affine(1, -((size - 1) // 2), math.ceil((size - 1) / 2)), axes[1])
    return [FlowState(tuple(axes), dict(st.fixed))]


def reduced_axes(ctx: FlowCtx, rank: int) -> list[int] | None:
    op = ctx.node.op_type
    if op in ("ArgMax", "ArgMin"):
        return [_norm(ctx.attr("axis", 0), rank)]
    from_input = ctx.opset >= 18 or (op == "ReduceSum" and ctx.opset >= 13)
    axes = (ctx.ints(1) if ctx.has(1) else []) if from_input else ctx.attr("axes")
    if axes is None:
        return None
    if not axes:
        if from_input and ctx.attr("noop_with_empty_axes", 0):
            return []
        return list(range(rank))
    return sorted({_norm(a, rank) for a in axes})


def reduce(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None:
        return ctx.conservative()
    axes = reduced_axes(ctx, len(shape))
    if axes is None:
        return ctx.conservative()
    keep = ctx.attr("keepdims", 1)
    pooled = merge(st.fixed, *(collapse(st.axes[k], shape[k]) for k in axes))
    out = [dict(ax) if k not in axes else {} for k, ax in enumerate(st.axes) if keep or k not in axes]
    return [FlowState(tuple(out), pooled)]


FLOW.add(catalog.REDUCE, reduce)
