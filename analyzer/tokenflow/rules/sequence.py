"""Flow rules of control flow (conservative), fused attention without a detected
mask (bidirectional), and sequence ops with their own causality."""

from __future__ import annotations

from ... import dims as D
from ...ops import catalog
from ...ops.registry import MS
from ..deps import CAUSAL, affine
from ..engine import FlowCtx
from ..state import FlowState, collapse, merge, through
from .common import FLOW, Out


# -- control flow (sound, not precise) ------------------------------------------------------------
@FLOW.rule("If", "Loop", "Scan", "SequenceMap")
def control_flow(ctx: FlowCtx) -> Out:
    return ctx.conservative()


def default_attention(ctx: FlowCtx) -> Out:
    """A fused attention op the attention detector did not claim: every query
    may see every key (bidirectional) — sound for any mask."""
    return ctx.conservative()


@FLOW.rule("CausalConvWithState")
def causal_conv_with_state(ctx: FlowCtx) -> Out:
    """Depthwise causal conv along L: output t sees inputs t-k+1..t (and, through
    the carried state, positions before this call — a separate input)."""
    st, w, x = ctx.state(0), ctx.shape(1), ctx.shape(0)
    k = D.as_int(w[2]) if w is not None and len(w) == 3 else None
    if st.axes is None or len(st.axes) != 3 or k is None or x is None:
        return ctx.conservative()
    ctx.mark(st.axes[2], "sequence")
    axes = (dict(st.axes[0]), dict(st.axes[1]), through(affine(1, 1 - k, 0), st.axes[2]))
    others = merge(*(ctx.state(i).collapsed(ctx.shape(i)) for i in (1, 2, 3) if ctx.has(i)))
    out = FlowState(axes, merge(st.fixed, others))
    return [out, FlowState((dict(st.axes[0]), dict(st.axes[1]), {}), merge(st.fixed, others,
                                                                           collapse(st.axes[2], x[2])))]


@FLOW.rule("LinearAttention")
def linear_attention(ctx: FlowCtx) -> Out:
    """A recurrence over time: output t sees queries at t and keys/values (and
    decay/beta) at 0..t — causal, like a forward RNN."""
    q = ctx.state(0)
    if q.axes is None or len(q.axes) != 3:
        return ctx.conservative()
    seq = dict(q.axes[1])
    fixed = [q.fixed, collapse(q.axes[2], None)]
    for i in (1, 2, 4, 5):
        st = ctx.state(i)
        if st.axes is None or len(st.axes) != 3:
            fixed.append(st.collapsed(ctx.shape(i)))
            continue
        ctx.mark(st.axes[1], "sequence")
        seq = merge(seq, through(CAUSAL, st.axes[1]))
        fixed += [st.fixed, collapse(st.axes[2], None)]
    if ctx.has(3):
        fixed.append(ctx.state(3).collapsed(ctx.shape(3)))
    out = FlowState((dict(q.axes[0]), seq, {}), merge(*fixed))
    return [out] + ctx.conservative(first=1)[1:]


FLOW.add(["Attention"], default_attention)
FLOW.add(["FlexAttention"], default_attention, "ai.onnx.preview")
FLOW.add(catalog.MS_ATTENTION, default_attention, MS)
