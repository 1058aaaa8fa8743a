"""Attention as the token-flow engine sees it: the key axis mixed into the query
axis *through the mask*, not whole.

For each :class:`~model_analyze.attention.AttentionLayer` we override the flow
rule of its nodes. Unfused: at the softmax over keys, query position q gains
the dependencies of the keys ``mask.keys(q)`` can see; at P·V, it gains those
of the visible values. Fused op: the same in one step from its Q, K, V inputs.
"""

from __future__ import annotations

from typing import Any

from ..attention.model import AttentionLayer
from .deps import Dep
from .engine import FlowCtx, FlowFn
from .rules import matmul_state
from .state import FlowState, merge, through


def _seq_axis(rank: int | None) -> int | None:
    return {3: 1, 4: 2}.get(rank or 0)


def softmax_override(keys: Dep, axis: int) -> FlowFn:
    def rule(ctx: FlowCtx) -> list[FlowState | None]:
        st = ctx.state(0)
        if st.axes is None or len(st.axes) < 2:
            return ctx.conservative()
        k = axis if axis >= 0 else axis + len(st.axes)
        if k != len(st.axes) - 1:
            return ctx.conservative()
        q = k - 1
        ctx.mark(st.axes[q], "sequence")
        ctx.mark(st.axes[k], "sequence")
        axes = [dict(a) for a in st.axes]
        axes[q] = merge(axes[q], through(keys, st.axes[k]))
        return [FlowState(tuple(axes), dict(st.fixed))]

    return rule


def av_override(keys: Dep, probs_input: int) -> FlowFn:
    def rule(ctx: FlowCtx) -> list[FlowState | None]:
        p, v = ctx.state(probs_input), ctx.state(1 - probs_input)
        psh, vsh = ctx.shape(probs_input), ctx.shape(1 - probs_input)
        if p.axes is None or v.axes is None or len(p.axes) < 2 or len(v.axes) < 2 or probs_input != 0:
            return ctx.conservative()
        # Contract P's key axis and V's key axis only over visible keys.
        p_masked = FlowState(tuple(dict(a) for a in p.axes[:-1]) + ({},), dict(p.fixed))
        v_masked = FlowState(tuple(dict(a) for a in v.axes[:-2]) + ({}, dict(v.axes[-1])), dict(v.fixed))
        out = matmul_state(p_masked, v_masked, psh, vsh, ctx.out_rank(0))
        if out is None or out.axes is None:
            return ctx.conservative()
        axes = [dict(a) for a in out.axes]
        ctx.mark(v.axes[-2], "sequence")
        axes[-2] = merge(axes[-2], through(keys, p.axes[-1]), through(keys, v.axes[-2]))
        return [FlowState(tuple(axes), out.fixed)]

    return rule


def fused_override(layer: AttentionLayer) -> FlowFn:
    keys = aligned_keys(layer)

    def rule(ctx: FlowCtx) -> list[FlowState | None]:
        names = list(ctx.node.inputs)
        q_name = layer.q_tensor or names[0]
        k_name = layer.k_tensor or q_name
        v_name = layer.v_tensor or k_name
        ix = {n: i for i, n in enumerate(names)}
        if any(n not in ix for n in (q_name, k_name, v_name)):
            return ctx.conservative()
        q, k, v = (ctx.state(ix[n]) for n in (q_name, k_name, v_name))
        qa, ka, va = (axis if axis is not None else _seq_axis(s.rank)
                      for axis, s in ((layer.q_seq_axis, q), (layer.k_seq_axis, k), (layer.v_seq_axis, v)))
        out_rank = ctx.out_rank(0)
        oa = _seq_axis(out_rank)
        if None in (qa, ka, va, oa) or q.axes is None or k.axes is None or v.axes is None:
            return ctx.conservative()
        seq = merge(q.axes[qa], through(keys, k.axes[ka]), through(keys, v.axes[va]))  # type: ignore[index]
        for s, a in ((q, qa), (k, ka), (v, va)):
            ctx.mark(s.axes[a], "sequence")  # type: ignore[index]
        other: list[Any] = [q.fixed, k.fixed, v.fixed]
        # Batch stays batch; features/heads mix; anything else the op reads
        # (masks from inputs, past keys/values) is position-independent here.
        for s, a, name in ((q, qa, q_name), (k, ka, k_name), (v, va, v_name)):
            shape = ctx.shapes.shape(name)
            for j, deps in enumerate(s.axes):  # type: ignore[arg-type]
                if j not in (0, a):
                    other.append(FlowState((deps,)).collapsed((shape[j],) if shape else None))
        for i, name in enumerate(names):
            if name and name not in (q_name, k_name, v_name):
                other.append(ctx.state(i).collapsed(ctx.shape(i)))
        axes: list[dict[Any, Dep]] = [{} for _ in range(out_rank or 0)]
        axes[0] = merge(q.axes[0], k.axes[0], v.axes[0])
        axes[oa] = seq  # type: ignore[index]
        outs: list[FlowState | None] = [FlowState(tuple(axes), merge(*other))]
        return outs + ctx.conservative(first=1)[1:]

    return rule


def aligned_keys(layer: AttentionLayer) -> Dep:
    """The mask's keys in the layer's own coordinates. Masks are read as square
    self-attention (a KV cache's past at 0); with ``k_len = q_len + past`` query
    ``i`` is position ``i + past`` of the keys (cache first, then the new
    tokens), so the keys of query ``i`` are the mask's keys of ``i + past``."""
    from .. import dims as D
    from .deps import affine, compose

    keys = layer.mask.keys
    if not layer.self_attention or layer.q_len is None or layer.k_len is None or keys.hull.is_all:
        return keys
    off = D.sub(layer.k_len, layer.q_len)
    if D.is_int(off) and off == 0:
        return keys
    return compose(affine(1, off, off), keys)


def overrides(layers: list[AttentionLayer]) -> dict[str, FlowFn]:
    """Engine overrides for every layer whose nodes and mask are known."""
    out: dict[str, FlowFn] = {}
    for layer in layers:
        keys = aligned_keys(layer)
        if layer.fused_node:
            out[layer.fused_node] = fused_override(layer)
            continue
        if layer.softmax_node and layer.av_node and layer.softmax_axis is not None:
            out[layer.softmax_node] = softmax_override(keys, layer.softmax_axis)
            out[layer.av_node] = av_override(keys, layer.probs_input)
            if layer.shift_node:
                out[layer.shift_node] = _first_input
    return out


def _first_input(ctx: FlowCtx) -> list[FlowState | None]:
    """``x - max(x)`` before a softmax: the maximum is over the keys the mask
    leaves visible (hidden scores are at the float minimum), which the softmax
    override adds anyway; the shift itself changes no probability."""
    return [ctx.state(0)]

