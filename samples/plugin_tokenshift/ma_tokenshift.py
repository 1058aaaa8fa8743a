"""Example plugin 2 — custom ops taught to the engines: shape, token flow and cost.

A model exported with ops of its own domain (``my.domain``) is opaque to model-analyze:
each such op is unknown (U001), counted as zero and treated as if every position saw
every position. This plugin describes them, so reach, receptive field and cost are exact:

* ``TokenShift(x, mix)`` — RWKV's token shift, ``y[t] = mix·x[t] + (1 − mix)·x[t − 1]``
  (``x[−1] = 0``): position ``t`` sees ``t − 1`` and ``t``;
* ``CausalConv(x)`` with ``kernel = K`` — a depthwise causal convolution over time: ``t − K + 1 .. t``;
* ``Stride(x)`` with ``stride = s`` — mean of each block of ``s`` positions: ``s·i .. s·i + s − 1``;
* ``Pick(x)`` with ``positions = [p0, p1, …]`` — output position ``j`` is input position ``p_j``;
* ``Summary(x)`` — the mean over time: every position;
* ``Gelu2(x)`` — element-wise: nothing moves (and its cost needs no code at all);
* ``LocalAttention(q, k, v)`` with ``window = W`` — single-head causal attention over the
  last ``W`` positions, ``softmax(q·kᵀ/√C + band)·v``: claimed as attention
  (``model_analyze_attention``), so the attention section reports a sliding window of
  ``W``, reach sees ``t − W + 1 .. t`` and the hotspots count the visible pairs only.

The time axis is ``axis`` (attribute, default 1: ``[batch, time, channels]``).
docs/plugins.md walks through it; tests/test_plugin_examples.py checks every reach
against a derivation by hand (and TokenShift's against onnxruntime running the same
computation written with standard ops).
"""

from __future__ import annotations

# The engine-side names (contexts, flow and cost helpers) are imported by model-analyze on
# first use; reading them off the module inside the rules keeps `model-analyze --help` as
# fast with this plugin installed as without it.
from model_analyze import plugin_api as ma

MODEL_ANALYZE_API = "1.1"   # model_analyze_attention and AttentionClaim are new in 1.1
DOMAIN = "my.domain"


def _axis(node_ctx: ma.ShapeCtx | ma.FlowCtx | ma.CostCtx) -> int:
    return node_ctx.node.int_attr("axis", 1)


def _with_time(ctx: ma.ShapeCtx, length: ma.dims.Dim | None) -> list[ma.TensorType | None]:
    """Input 0's type with its time axis ``length`` long."""
    x = ctx.type(0)
    if x is None or x.shape is None:
        return [ma.TensorType(ctx.dtype(0), None)]
    shape = list(x.shape)
    shape[_axis(ctx)] = length
    return [ma.TensorType(x.dtype, tuple(shape))]


# -- TokenShift: y[t] = mix·x[t] + (1 − mix)·x[t − 1] ------------------------------------------
def token_shift_flow(ctx: ma.FlowCtx) -> list[ma.FlowState | None]:
    shifted = ma.flow_shift(ctx.state(0), axis=_axis(ctx), lo=-1, hi=0)   # t reads t − 1 .. t
    mix = ma.flow_broadcast(ctx, inputs=[1])                               # mix is per channel
    return [shifted if mix is None else ma.flow_merge(shifted, mix)]


def token_shift_cost(ctx: ma.CostCtx) -> ma.OpCost:
    return ma.cost_per_element(ctx, 3)   # x[t−1] + mix·(x[t] − x[t−1]): a sub, a mul, an add


# -- CausalConv: y[t] = Σ_k w[k]·x[t − K + 1 + k] --------------------------------------------
def causal_conv_flow(ctx: ma.FlowCtx) -> list[ma.FlowState | None]:
    return [ma.flow_window(ctx.state(0), axis=_axis(ctx), size=ctx.node.int_attr("kernel", 1))]


def causal_conv_cost(ctx: ma.CostCtx) -> ma.OpCost:
    return ma.OpCost(macs=ctx.node.int_attr("kernel", 1) * ctx.out_numel(0))   # K MACs per output element


# -- Stride: y[i] = mean(x[s·i .. s·i + s − 1]) ----------------------------------------------
def stride_shape(ctx: ma.ShapeCtx) -> list[ma.TensorType | None]:
    x = ctx.shape(0)
    length = x[_axis(ctx)] if x is not None else None
    return _with_time(ctx, None if length is None else ma.dims.ceildiv(length, ctx.node.int_attr("stride", 1)))


def stride_flow(ctx: ma.FlowCtx) -> list[ma.FlowState | None]:
    s = ctx.node.int_attr("stride", 1)
    return [ma.flow_affine(ctx.state(0), axis=_axis(ctx), stride=s, lo=0, hi=s - 1)]


def stride_cost(ctx: ma.CostCtx) -> ma.OpCost:
    return ma.cost_per_element(ctx, ctx.node.int_attr("stride", 1))   # s − 1 adds and a division per output


# -- Pick: y[j] = x[positions[j]] -------------------------------------------------------------
def pick_shape(ctx: ma.ShapeCtx) -> list[ma.TensorType | None]:
    return _with_time(ctx, len(ctx.node.ints_attr("positions")))


def pick_flow(ctx: ma.FlowCtx) -> list[ma.FlowState | None]:
    positions = ctx.node.ints_attr("positions")
    x = ctx.shape(0)
    if not positions or x is None:
        return ma.flow_conservative(ctx)   # nothing to go on: every position may be read
    return [ma.flow_gather(ctx.state(0), axis=_axis(ctx), positions=positions, length=x[_axis(ctx)])]


def pick_cost(ctx: ma.CostCtx) -> ma.OpCost:
    return ma.OpCost(macs=0, flops=0)   # moves data only (bytes read and written are counted)


# -- Summary: the mean over time --------------------------------------------------------------
def summary_shape(ctx: ma.ShapeCtx) -> list[ma.TensorType | None]:
    return _with_time(ctx, 1)


def summary_flow(ctx: ma.FlowCtx) -> list[ma.FlowState | None]:
    return [ma.flow_reduce(ctx.state(0), axes=[_axis(ctx)], shape=ctx.shape(0), keepdims=True)]


def summary_cost(ctx: ma.CostCtx) -> ma.OpCost:
    if ctx.shape(0) is None:
        raise ma.CostUnknown("input shape unknown")   # listed as uncounted, never a silent zero
    return ma.OpCost(flops=ctx.numel(0))   # T − 1 adds and a division per output: T·B·C = the input's size


# -- LocalAttention: softmax(q·kᵀ/√C + band)·v, keys t − W + 1 .. t ------------------------------
def local_attention_cost(ctx: ma.CostCtx) -> ma.OpCost:
    # q·kᵀ and the probabilities times v: C MACs each per (query, key) pair and batch row. The
    # pairs are the dense T·T; the core counts the ones the claimed mask leaves visible.
    batch, time, width = ctx.dim(0, 0), ctx.dim(0, 1), ctx.dim(0, 2)
    return ma.OpCost(macs=time * time * batch * width * 2, pairs=time * time, pair_macs=batch * width * 2)


@ma.hookimpl
def model_analyze_attention(node: ma.Node, ctx: ma.AnalysisContext) -> ma.AttentionClaim | None:
    if (node.domain, node.op_type) != (DOMAIN, "LocalAttention"):
        return None   # not ours: the next plugin (or the core's own reader) decides
    window = node.int_attr("window", 1)
    q = ctx.shapes.shape(node.input(0))
    width = q[-1] if q else None
    head_dim = width if isinstance(width, int) else None
    return ma.AttentionClaim(query=0, key=1, value=2, seq_axis=1, left=window - 1, right=0, heads=1,
                             head_dim=head_dim, scale=None if head_dim is None else head_dim ** -0.5,
                             note=f"window {window} keys including the current one")


@ma.hookimpl
def model_analyze_op_rules() -> list[ma.OpRule]:
    return [
        ma.OpRule("TokenShift", DOMAIN, shape=ma.shape_like_input, flow=token_shift_flow, cost=token_shift_cost),
        ma.OpRule("CausalConv", DOMAIN, shape=ma.shape_like_input, flow=causal_conv_flow, cost=causal_conv_cost),
        ma.OpRule("Stride", DOMAIN, shape=stride_shape, flow=stride_flow, cost=stride_cost),
        ma.OpRule("Pick", DOMAIN, shape=pick_shape, flow=pick_flow, cost=pick_cost),
        ma.OpRule("Summary", DOMAIN, shape=summary_shape, flow=summary_flow, cost=summary_cost),
        # Element-wise: a per-element constant is all the cost engine needs.
        ma.OpRule("Gelu2", DOMAIN, shape=ma.shape_like_input, flow=ma.flow_pointwise, category="elementwise",
                  flops_per_element=8),
        # Token flow comes from the attention claim below (keys gated by the window).
        ma.OpRule("LocalAttention", DOMAIN, shape=ma.shape_like_input, cost=local_attention_cost),
    ]
