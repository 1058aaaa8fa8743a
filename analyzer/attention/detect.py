"""Unfused attention as exporters emit it, anchored on ``Softmax``:

    MatMul(Q, Kᵀ) → [Mul/Div scale] → [Div → Tanh → Mul softcap] → [Add/Where mask]
                  → Softmax → [Cast/Identity/Dropout] → MatMul(·, V)

with ``Cast``/``Identity``/``Reshape`` noise anywhere on the way (dynamo exports,
opset < 13 coerced-2-D softmax). The walk back from the softmax to the QK
product classifies every node it passes — scale factor, softcap, mask term —
so the layer knows exactly which nodes form it. A softmax that does not sit
between two activation products (a classifier head, an MoE router) is not
attention.

Per layer: heads (scores' head axis or the Q head split), kv heads (the K head
split, before GQA repetition), d_k, model width (the Q projection's input), the
applied scale (every constant factor on the scores and on Q/K), softcap and
RoPE.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import dims as D
from ..tokenflow.deps import ALL
from .graphwalk import (
    fold_scalar,
    head_split,
    is_constant,
    layer_name,
    prescale_factors,
    projection_input_width,
    repeated_heads,
    repetition_factor,
    rope_kind,
    same_sequence,
)
from .masks import HIDDEN_BELOW, MaskReader, MaskRequest, MaskTerm, seq_symbols
from .model import NO_MASK, AttentionLayer, MaskInfo

if TYPE_CHECKING:
    from ..context import AnalysisContext
    from ..graph import ModelGraph, Node

PASS_THROUGH = frozenset({"Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten"})
"""Ops between the QK product and the softmax that change nothing per key."""
AFTER_SOFTMAX = frozenset({"Cast", "Identity", "Dropout", "Reshape", "Squeeze", "Unsqueeze", "Slice"})
"""``Slice`` drops attention-sink columns (GPT-OSS: ``probs[..., :-1]``)."""
MAX_CHAIN = 24
QK_PRODUCTS = frozenset({("", "MatMul"), ("com.microsoft", "FusedMatMul")})
"""Where the walk back from the softmax ends: the product of Q and Kᵀ."""


@dataclass
class _Chain:
    """What the walk from the softmax back to the QK product found."""

    qk: Node
    nodes: list[Node] = field(default_factory=list)
    factors: list[float] = field(default_factory=list)
    """Constant factors on the scores, innermost (next to QK) first."""
    tanh_at: int | None = None
    """Number of factors inside the Tanh of a softcap."""
    terms: list[MaskTerm] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reshaped: bool = False
    scale_unknown: bool = False
    shift: str | None = None
    """The ``x - ReduceMax(x)`` stabiliser node, if any."""


def detect_unfused(ctx: AnalysisContext, reader: MaskReader, problems: list[str]) -> list[AttentionLayer]:
    layers: list[AttentionLayer] = []
    for node in ctx.graph.walk():
        if node.op_type != "Softmax" or node.domain:
            continue
        try:
            layer = _from_softmax(ctx, node, reader)
        except Exception as exc:  # never let one odd softmax sink the analysis
            problems.append(f"softmax {node.name!r}: {type(exc).__name__}: {exc}")
            continue
        if layer is not None:
            layers.append(layer)
        elif _looks_like_attention(node):
            problems.append(f"softmax {node.name!r} normalises a product of two activations that feeds another "
                            "such product, but its score layout was not understood (banded or chunked scores, "
                            "e.g. Longformer's sliding chunks?): no mask or window is claimed for it; its "
                            "positions are followed op by op (the reach marks say where that is an upper bound)")
    return layers


PRODUCTS = frozenset({"MatMul", "Einsum", "FusedMatMul"})
LOOKS_DEPTH = 40


def _looks_like_attention(sm: Node) -> bool:
    """A softmax with a product of two activations behind it and a product with
    another activation after it (bounded walks): attention we could not read, as
    opposed to a classifier head or an MoE router (products with weights)."""
    g = sm.graph
    if _feeds_topk(sm):
        return False  # an MoE router: probabilities over experts, then the top k of them

    def product_of_activations(node: Node, used: str) -> bool:
        return (node.op_type in PRODUCTS and len(node.inputs) >= 2
                and all(x and not is_constant(g, x) for x in node.inputs[:2] if x != used)
                and (node.op_type != "Einsum" or len(node.inputs) == 2))

    seen: set[str] = set()
    stack = [(sm.input(0), 0)]
    behind = False
    while stack and not behind:
        t, depth = stack.pop()
        node = g.producer(t)
        if node is None or node.id in seen or depth > LOOKS_DEPTH:
            continue
        seen.add(node.id)
        if product_of_activations(node, ""):
            behind = True
            break
        if node.op_type in PRODUCTS or node.op_type == "Gemm":
            continue  # a projection with weights: the walk ends here
        stack.extend((x, depth + 1) for x in node.inputs if x and not is_constant(g, x))
    if not behind:
        return False
    seen.clear()
    queue = [(sm.outputs[0], 0)]
    while queue:
        t, depth = queue.pop()
        for c in g.consumers(t):
            if c.id in seen or depth > LOOKS_DEPTH:
                continue
            seen.add(c.id)
            if product_of_activations(c, t):
                return True
            if c.op_type in PRODUCTS:
                continue
            queue.extend((o, depth + 1) for o in c.outputs if o)
    return False


def _feeds_topk(sm: Node, depth: int = 3) -> bool:
    """Does the softmax's output reach a ``TopK`` within a few element-wise ops?"""
    frontier = [sm.outputs[0]]
    for _ in range(depth):
        nxt: list[str] = []
        for t in frontier:
            for c in sm.graph.consumers(t):
                if c.op_type == "TopK":
                    return True
                if c.op_type in ("Cast", "Identity", "Reshape", "Div", "Mul", "Add"):
                    nxt.extend(o for o in c.outputs if o)
        frontier = nxt
    return False


def _from_softmax(ctx: AnalysisContext, sm: Node, reader: MaskReader) -> AttentionLayer | None:
    g = sm.graph
    after = _probs_consumer(g, sm.outputs[0], 0)
    if after is None:
        return None
    av, probs_input, post = after
    if is_constant(g, av.input(1 - probs_input)):
        return None
    chain = _scores_chain(ctx, g, sm.input(0), 0)
    if chain is None:
        return None
    qk = chain.qk
    scores = qk.outputs[0]
    layer = AttentionLayer(index=0, name="", kind="unfused", nodes=(), mask=NO_MASK, qk_node=qk.id,
                           softmax_node=sm.id, av_node=av.id, probs_input=probs_input)
    layer.nodes = tuple(n.id for n in [qk, *chain.nodes, sm, *post, av])
    layer.shift_node = chain.shift
    layer.name, layer.stack = layer_name(qk)
    layer.notes += chain.notes
    layer.q_tensor, layer.k_tensor = qk.input(0), qk.input(1)
    layer.v_tensor = av.input(1 - probs_input)

    rank = ctx.shapes.rank(scores)
    own_axis, axis = _softmax_axis(ctx, sm, rank, chain.reshaped)
    layer.softmax_axis = own_axis
    shape = ctx.shapes.shape(scores)
    if rank is None or axis is None or shape is None or rank < 2:
        layer.notes.append("softmax axis over the scores not determined")
        layer.mask = MaskInfo("unknown", ALL, source="unknown",
                              note="the softmax does not normalise over one key axis of the scores")
        return _finish(ctx, g, layer, chain, qk)
    q_axis = rank - 2 if axis == rank - 1 else rank - 1
    transposed = axis != rank - 1  # scores laid out [.., k, q]: QK is MatMul(K, Qᵀ)
    qi, ki = (1, 0) if transposed else (0, 1)
    layer.q_tensor, layer.k_tensor = qk.input(qi), qk.input(ki)
    layer.v_tensor = av.input(1 - probs_input)
    q_rank, k_rank, v_rank = (ctx.shapes.rank(t) for t in (layer.q_tensor, layer.k_tensor, layer.v_tensor))
    if q_rank:
        layer.q_seq_axis = q_rank - 1 if transposed else q_rank - 2
    if k_rank:
        layer.k_seq_axis = k_rank - 2 if transposed else k_rank - 1
    if v_rank:
        layer.v_seq_axis = v_rank - 2 if probs_input == 0 else v_rank - 1
    layer.q_len, layer.k_len = shape[q_axis], shape[axis]
    if rank == 4:
        layer.batch = shape[0]
    q_shape = ctx.shapes.shape(layer.q_tensor)
    if q_shape:
        layer.head_dim = q_shape[-2] if transposed else q_shape[-1]
    v_shape = ctx.shapes.shape(layer.v_tensor)
    if v_shape:
        layer.v_head_dim = v_shape[-1] if probs_input == 0 else v_shape[-2]
    if rank == 4 and D.as_int(shape[1]):
        layer.heads = D.as_int(shape[1])
    layer.self_attention = same_sequence(layer.q_len, layer.k_len)
    layer.mask_tensors = tuple(t.tensor for t in chain.terms)
    if not chain.terms:
        layer.mask = MaskInfo("bidirectional", ALL, source="none", sees_future=True, future_fraction=1.0,
                              note="no mask term between the QK product and the softmax")
    else:
        req = mask_request(g, tuple(chain.terms), rank, q_axis, axis, layer)
        layer.mask = reader.read(req)
    return _finish(ctx, g, layer, chain, qk)


def mask_request(g: ModelGraph, terms: tuple[MaskTerm, ...], rank: int, q_axis: int, k_axis: int,
                 layer: AttentionLayer) -> MaskRequest:
    """What to evaluate for a layer: vary the sequence symbols (self-attention),
    or evaluate once at fixed shapes (a static model, a cross-attention)."""
    q, k = D.as_int(layer.q_len), D.as_int(layer.k_len)
    static = q if q is not None and q == k else None
    cross = (q, k) if q is not None and k is not None and q != k else None
    if cross is None and not layer.self_attention:
        layer.notes.append("cross-attention with symbolic lengths: evaluated with queries and keys of equal length")
    return MaskRequest(g, terms, rank, q_axis, k_axis, seq_symbols(layer.q_len, layer.k_len),
                       static_n=static, cross=cross)


def _finish(ctx: AnalysisContext, g: ModelGraph, layer: AttentionLayer, chain: _Chain, qk: Node) -> AttentionLayer:
    """Heads/kv heads/width from the head splits, then scale, softcap, RoPE."""
    d = D.as_int(layer.head_dim)
    if layer.q_tensor:
        split = head_split(ctx, g, layer.q_tensor)
        if split is not None:
            if layer.heads is None:
                layer.heads = split.heads(d)
            layer.model_dim = projection_input_width(ctx, g, split.source)
    if layer.heads is None:
        layer.heads = _merged_heads(ctx, qk)
    if layer.k_tensor:
        layer.kv_heads = _kv_heads(ctx, g, layer.k_tensor, layer.heads, d, layer.k_seq_axis)
    if layer.kv_heads is None:
        layer.kv_heads = layer.heads
    if layer.model_dim is None and layer.heads and layer.head_dim is not None:
        layer.model_dim = D.mul(layer.heads, layer.head_dim)
    _apply_scale(ctx, g, layer, chain)
    if layer.q_tensor:
        layer.rope = rope_kind(g, layer.q_tensor) or (rope_kind(g, layer.k_tensor) if layer.k_tensor else None)
    return layer


def _kv_heads(ctx: AnalysisContext, g: ModelGraph, k: str, heads: int | None, d: int | None,
              k_seq_axis: int | None) -> int | None:
    """K/V heads: the query heads over the repetition GQA applies to K (Llama's
    ``repeat_kv``, Falcon's expand), else the K head split's heads when they
    divide the query heads (a fused QKV split ``(h, 3d)`` does not count
    ``3h`` heads), else one head broadcast by the QK product (multi-query)."""
    if heads:
        rep = repetition_factor(ctx, g, k)
        if rep > 1 and heads % rep == 0:
            return heads // rep
    rep_heads = repeated_heads(ctx, g, k)
    if rep_heads:
        return rep_heads
    split = head_split(ctx, g, k)
    hk = split.heads(d) if split is not None else None
    if hk and (heads is None or (hk <= heads and heads % hk == 0)):
        return hk
    shape = ctx.shapes.shape(k)
    if heads and heads > 1 and shape is not None and len(shape) == 4 and D.as_int(shape[1]) == 1:
        return 1
    return None


def _merged_heads(ctx: AnalysisContext, qk: Node) -> int | None:
    """Heads of scores laid out ``[B·H, q, k]`` (Bloom's ``baddbmm``, GPT-J and
    TorchScript ``bmm`` exports): the leading dim per batch element."""
    shape = ctx.shapes.shape(qk.outputs[0])
    if shape is None or len(shape) != 3 or shape[0] is None:
        return None
    lead = shape[0]
    v = D.as_int(lead)
    if v is not None:
        batch = _graph_batch(ctx)
        return v // batch if batch and v % batch == 0 else None
    for sym in D.free_symbols(lead):
        per = D.as_int(D.divide(lead, D.symbol(sym)))
        if per:
            return per
    return None


def _graph_batch(ctx: AnalysisContext) -> int | None:
    """The batch size of the graph's inputs when it is a concrete (or bound) int."""
    for name in ctx.graph.inputs:
        shape = ctx.shapes.shape(name)
        if shape and len(shape) >= 2:
            b: int | float | None = D.as_int(shape[0])
            if b is None:
                b = ctx.evaluate(shape[0])
            return b if isinstance(b, int) and b > 0 else None
    return None


def _apply_scale(ctx: AnalysisContext, g: ModelGraph, layer: AttentionLayer, chain: _Chain) -> None:
    factors = list(chain.factors)
    if chain.qk.domain == "com.microsoft":
        factors.insert(0, float(chain.qk.attr("alpha", 1.0)))
    pre: list[float] = []
    for t in (layer.q_tensor, layer.k_tensor):
        if t:
            f, _ = prescale_factors(ctx, g, t)
            pre += f
    if chain.tanh_at is not None:
        inside, outside = factors[:chain.tanh_at], factors[chain.tanh_at:]
        cap = math.prod(outside) if outside else None
        layer.softcap = cap
        # cap · tanh(s · x / cap): the 1/cap inside cancels the cap outside.
        scale = math.prod(inside) * (cap or 1.0)
    else:
        scale = math.prod(factors)
    scale *= math.prod(pre)
    if chain.scale_unknown:
        layer.scale = None
        layer.scale_note = "a non-constant factor scales the scores"
        return
    layer.scale = scale
    parts = []
    if pre:
        parts.append("Q/K pre-scaled")
    if not factors and not pre:
        parts.append("no scale factor in the graph")
    layer.scale_note = ", ".join(parts)


def _softmax_axis(ctx: AnalysisContext, sm: Node, scores_rank: int | None,
                  reshaped: bool) -> tuple[int | None, int | None]:
    """The key axis the softmax normalises over: on the softmax's own input
    (what a flow rule at that node sees; 1 for an opset < 13 ``[-1, n]``
    coercion) and on the QK scores (where the mask terms broadcast). None when
    it is not one axis (opset < 13 without coercion flattens ``axis..`` into one)."""
    opset = ctx.model.opset("")
    s_rank = ctx.shapes.rank(sm.input(0))
    if s_rank is None or scores_rank is None:
        return None, None
    axis = sm.attr("axis", -1 if opset >= 13 else 1)
    axis = axis + s_rank if axis < 0 else axis
    if not 0 <= axis < s_rank:
        return None, None
    if opset < 13 and axis < s_rank - 1:
        shape = ctx.shapes.shape(sm.input(0)) or ()
        inner = [D.as_int(d) for d in shape[axis:s_rank - 1]]
        if any(v != 1 for v in inner):
            return None, None  # normalises jointly over several axes
        axis = s_rank - 1
    if axis == s_rank - 1:
        return axis, scores_rank - 1
    if not reshaped and s_rank == scores_rank and axis == s_rank - 2:
        return axis, axis
    return None, None


def _probs_consumer(g: ModelGraph, tensor: str, depth: int) -> tuple[Node, int, list[Node]] | None:
    """The MatMul that applies the probabilities to V, through casts/dropout."""
    if depth > 6:
        return None
    for c in g.consumers(tensor):
        if c.domain:
            continue
        if c.op_type == "MatMul" and tensor in c.inputs[:2]:
            return c, c.inputs.index(tensor), []
    for c in g.consumers(tensor):
        if c.domain or not c.outputs:
            continue
        passes = c.op_type in AFTER_SOFTMAX and c.input(0) == tensor
        guard = c.op_type == "Where" and tensor in c.inputs[1:]  # fully-masked-row guard
        if not (passes or guard):
            continue
        found = _probs_consumer(g, c.outputs[0], depth + 1)
        if found is not None:
            return found[0], found[1], [c, *found[2]]
    return None


def _rank_if_reshaped(ctx: AnalysisContext, ch: _Chain, node: Node) -> int:
    """The rank a mask term is applied at, when a reshape on the way from QK
    changed it (0: the scores' own rank)."""
    if not ch.reshaped:
        return 0
    return ctx.shapes.rank(node.outputs[0]) or 0


_Step = Callable[["AnalysisContext", "ModelGraph", "Node", int], "_Chain | None"]
_STEPS: dict[str, _Step] = {}
"""What each op between the QK product and the softmax does to the scores, by op type: a
step continues the walk to QK through the right input and records the op on the chain
(a scale, a mask term, a softcap, a stabiliser, sinks); an op without a step ends it."""


def _step(*op_types: str) -> Callable[[_Step], _Step]:
    def deco(fn: _Step) -> _Step:
        for op in op_types:
            _STEPS[op] = fn
        return fn

    return deco


def _scores_chain(ctx: AnalysisContext, g: ModelGraph, tensor: str, depth: int) -> _Chain | None:
    """Walk from the softmax input back to the QK product (see module doc), one step per op."""
    node = g.producer(tensor)
    if node is None or depth > MAX_CHAIN:
        return None
    if (node.domain, node.op_type) in QK_PRODUCTS:
        a, b = node.input(0), node.input(1)
        if not a or not b or is_constant(g, a) or is_constant(g, b):
            return None
        return _Chain(node)
    step = None if node.domain else _STEPS.get(node.op_type)
    return step(ctx, g, node, depth) if step is not None else None


@_step(*PASS_THROUGH)
def _pass_through(ctx: AnalysisContext, g: ModelGraph, node: Node, depth: int) -> _Chain | None:
    ch = _scores_chain(ctx, g, node.input(0), depth + 1)
    if ch is not None:
        ch.nodes.append(node)
        ch.reshaped = ch.reshaped or node.op_type in ("Reshape", "Flatten")
    return ch


@_step("Sub")
def _stabiliser(ctx: AnalysisContext, g: ModelGraph, node: Node, depth: int) -> _Chain | None:
    """``x - max(x)`` over the keys (GPT-OSS's explicit softmax stabiliser): a per-row
    shift, which changes no probability."""
    if len(node.inputs) != 2:
        return None
    red = g.producer(node.input(1))
    if red is None or red.op_type != "ReduceMax" or red.domain or red.input(0) != node.input(0):
        return None
    ch = _scores_chain(ctx, g, node.input(0), depth + 1)
    if ch is not None:
        ch.nodes += [red, node]
        ch.shift = node.id
    return ch


@_step("Concat")
def _sinks(ctx: AnalysisContext, g: ModelGraph, node: Node, depth: int) -> _Chain | None:
    """Attention sinks: learned logit columns appended to the keys before the softmax
    (GPT-OSS) and sliced off after it; they attend to no position."""
    rank = ctx.shapes.rank(node.outputs[0])
    axis = node.attr("axis", 0)
    if len(node.inputs) < 2 or rank is None or axis not in (-1, rank - 1):
        return None
    for i, x in enumerate(node.inputs):
        ch = _scores_chain(ctx, g, x, depth + 1)
        if ch is None:
            continue
        sinks = [y for j, y in enumerate(node.inputs) if j != i and y]
        ch.notes.append(f"attention sinks: {len(sinks)} learned logit column tensor(s) concatenated to the "
                        "keys before the softmax (they absorb probability, they are no position)")
        ch.nodes.append(node)
        return ch
    return None


@_step("Tanh")
def _softcap(ctx: AnalysisContext, g: ModelGraph, node: Node, depth: int) -> _Chain | None:
    ch = _scores_chain(ctx, g, node.input(0), depth + 1)
    if ch is not None:
        ch.nodes.append(node)
        ch.tanh_at = len(ch.factors)
    return ch


@_step("Mul", "Div")
def _scale(ctx: AnalysisContext, g: ModelGraph, node: Node, depth: int) -> _Chain | None:
    op = node.op_type
    if len(node.inputs) != 2:
        return None
    for i in (0, 1) if op == "Mul" else (0,):
        ch = _scores_chain(ctx, g, node.input(i), depth + 1)
        if ch is None:
            continue
        c = fold_scalar(ctx, g, node.input(1 - i))
        if c is None or c == 0:
            ch.scale_unknown = True
            ch.notes.append(f"{op} {node.name!r} scales the scores by a non-constant")
        else:
            ch.factors.append(c if op == "Mul" else 1.0 / c)
        ch.nodes.append(node)
        return ch
    return None


@_step("Add")
def _additive_mask(ctx: AnalysisContext, g: ModelGraph, node: Node, depth: int) -> _Chain | None:
    if len(node.inputs) != 2:
        return None
    for i in (0, 1):
        ch = _scores_chain(ctx, g, node.input(i), depth + 1)
        if ch is not None:
            ch.terms.append(MaskTerm(node.input(1 - i), "additive", rank=_rank_if_reshaped(ctx, ch, node)))
            ch.nodes.append(node)
            return ch
    return None


@_step("Where")
def _selection_mask(ctx: AnalysisContext, g: ModelGraph, node: Node, depth: int) -> _Chain | None:
    """``Where(cond, scores, fill)`` (keep where true) or ``Where(cond, fill, scores)`` (drop)."""
    if len(node.inputs) != 3:
        return None
    for i in (1, 2):
        ch = _scores_chain(ctx, g, node.input(i), depth + 1)
        if ch is None:
            continue
        fill = node.input(3 - i)
        value = fold_scalar(ctx, g, fill)
        kind = "keep" if i == 1 else "drop"
        rank = _rank_if_reshaped(ctx, ch, node)
        if value is None:
            ch.terms.append(MaskTerm(node.input(0), kind, fill, rank))
        elif value <= HIDDEN_BELOW:
            ch.terms.append(MaskTerm(node.input(0), kind, rank=rank))
        else:
            ch.notes.append(f"Where {node.name!r} replaces scores by {value:g}, which hides no key")
        ch.nodes.append(node)
        return ch
    return None
