"""Fused attention ops: the mask is stated by attributes and inputs.

Semantics, from the op specifications (each reader cites what it relies on):

- ONNX ``Attention`` (opset 23/24): ``is_causal`` → ``j <= i`` (bottom-right
  aligned, offset 0 without a cache); opset 25 adds ``left_window_size`` /
  ``right_window_size``: keys ``i - left <= j <= i + right`` (−1 = unbounded),
  still capped at ``i`` when causal. ``attn_mask`` is boolean (True = attend)
  or additive float; default scale ``1/sqrt(head_size)``.
- com.microsoft ``GroupQueryAttention`` / ``PagedAttention``:
  ``local_window_size = w`` → keys ``i - w < j <= i``, **w keys including the
  current one**: onnxruntime redefined it so in PR #25927 (Sept 2025, "Fix
  Local Attention off by 1 bug", to match HF ``sliding_window``), and the
  installed onnxruntime's CPU kernel attends exactly w keys (tested). Older
  runtimes (and METRICS.md) attend w + 1; the mask note says which convention
  was used. ``causal``/``is_causal`` default 1.
- com.microsoft ``Attention``, ``QAttention``, ``MultiHeadAttention``:
  ``unidirectional`` → causal; ``mask_index``/``key_padding_mask`` are padding
  masks (input-driven); ``attention_bias`` is additive.
- com.microsoft ``SparseAttention``: always causal; the block layout is the CSR
  pair ``block_row_indices``/``block_col_indices`` (one layout per head group,
  used cyclically) in blocks of ``sparse_block_size``.
- com.microsoft ``LongformerAttention``: each token sees ``window`` keys on each
  side, and tokens flagged by the ``global`` input see and are seen by all.
- ``PackedAttention``/``PackedMultiHeadAttention``: bidirectional within each
  packed sequence (boundaries are input-driven).
- ``DecoderMaskedMultiHeadAttention``/``DecoderMaskedSelfAttention``: one
  decoding step over the cache, i.e. causal.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import dims as D
from ..onnxproto import TensorProto
from ..tokenflow.deps import ALL, CAUSAL
from . import maskeval, maskfit
from .detect import mask_request
from .graphwalk import layer_name, prescale_factors, repetition_factor, rope_kind, same_sequence
from .masks import MaskReader, MaskTerm, unknown_mask
from .model import AttentionLayer, MaskInfo

if TYPE_CHECKING:
    from ..context import AnalysisContext
    from ..descriptors import AttentionClaim
    from ..graph import ModelGraph, Node
    from ..manager import PluginManager

MS = "com.microsoft"
Reader = Callable[["AnalysisContext", "Node", MaskReader, AttentionLayer], None]


def detect_fused(ctx: AnalysisContext, reader: MaskReader, problems: list[str]) -> list[AttentionLayer]:
    """Every fused attention node: the ops :data:`READERS` knows, and the nodes a plugin
    claims (``model_analyze_attention``; a claim goes before the core's own reader)."""
    claims = ctx.plugins if ctx.plugins is not None and ctx.plugins.implemented(CLAIM_HOOK) else None
    layers = []
    for node in ctx.graph.walk():
        claim = _claim(ctx, claims, node, problems) if claims is not None and node.domain not in ("", "ai.onnx") \
            else None
        fn: Reader | None = functools.partial(_claimed, claim) if claim is not None else \
            READERS.get((node.domain, node.op_type))
        if fn is None:
            continue
        kind = node.op_type if not node.domain else f"{'ms' if node.domain == MS else node.domain}.{node.op_type}"
        layer = AttentionLayer(index=0, name="", kind=kind, nodes=(node.id,), mask=MaskInfo("bidirectional",
                               ALL, source="attribute"), fused_node=node.id)
        layer.name, layer.stack = layer_name(node)
        try:
            fn(ctx, node, reader, layer)
        except Exception as exc:  # an odd fused node is reported, never fatal
            problems.append(f"{node.op_type} {node.name!r}: {type(exc).__name__}: {exc}")
            layer.mask = unknown_mask(f"could not read the {node.op_type} node: {type(exc).__name__}")
        layers.append(layer)
    return layers


# -- nodes a plugin claims -------------------------------------------------------------------
CLAIM_HOOK = "model_analyze_attention"


def _claim(ctx: AnalysisContext, plugins: PluginManager, node: Node,
           problems: list[str]) -> tuple[str, AttentionClaim] | None:
    """The first plugin's claim on ``node``; a plugin that fails is a problem, not a claim."""
    from ..descriptors import AttentionClaim

    claim, failures = plugins.first(CLAIM_HOOK, AttentionClaim, node=node, ctx=ctx)
    problems += [f"{node.op_type} {node.name!r}: plugin {f.plugin!r} failed to claim it: {f.error}"
                 for f in failures]
    return claim


def _claimed(claim: tuple[str, AttentionClaim], ctx: AnalysisContext, node: Node, reader: MaskReader,
             layer: AttentionLayer) -> None:
    """Fill ``layer`` from a plugin's claim: what the plugin states, nothing assumed."""
    plugin, c = claim
    for role, index in (("query", c.query), ("key", c.key), ("value", c.value)):
        if not 0 <= index < len(node.inputs) or not node.input(index):
            raise ValueError(f"plugin {plugin!r} claims input {index} as the {role}; the node has no such input")
    layer.q_tensor, layer.k_tensor, layer.v_tensor = node.input(c.query), node.input(c.key), node.input(c.value)
    layer.q_seq_axis = layer.k_seq_axis = layer.v_seq_axis = c.seq_axis
    layer.heads, layer.kv_heads, layer.head_dim = c.heads, c.kv_heads or c.heads, c.head_dim
    layer.v_head_dim = c.head_dim
    if c.heads and c.head_dim:
        layer.model_dim = c.heads * c.head_dim
    _lengths(layer, _shape(ctx, layer.q_tensor), _shape(ctx, layer.k_tensor), c.seq_axis, c.seq_axis)
    layer.scale, layer.scale_note = c.scale, "" if c.scale is not None else f"not stated by plugin {plugin!r}"
    structural = _band_mask(c.left, c.right)
    structural.note = "; ".join(x for x in (f"claimed by plugin {plugin!r}", c.note) if x)
    layer.mask = _combine(ctx, node, reader, layer, structural, [], [])


# -- shared helpers ---------------------------------------------------------------------
def _shape(ctx: AnalysisContext, t: str) -> tuple[Any, ...] | None:
    return ctx.shapes.shape(t) if t else None


def _div(a: Any, b: Any) -> Any:
    ai, bi = D.as_int(a), D.as_int(b)
    if ai is not None and bi:
        return ai // bi if ai % bi == 0 else None
    if a is not None and bi:
        return D.floordiv(a, bi)
    return None


def _opt_int(node: Node, name: str, default: int) -> int:
    v = node.attr(name, default)
    return int(v) if isinstance(v, (int, float)) else default


def _scale(layer: AttentionLayer, node: Node, ctx: AnalysisContext, graph: ModelGraph) -> None:
    """``scale`` attribute, or the documented default 1/sqrt(head_size) (0 means
    default for the com.microsoft ops); constant factors on the Q/K inputs count too."""
    d = D.as_int(layer.head_dim)
    attr = node.attr("scale")
    if isinstance(attr, float) and attr != 0.0:
        scale, note = attr, ""
    elif d:
        scale, note = d ** -0.5, "default 1/sqrt(d_k)"
    else:
        layer.scale_note = "default 1/sqrt(d_k), d_k unknown"
        return
    pre: list[float] = []
    for t in {layer.q_tensor, layer.k_tensor} - {None, ""}:
        f, _ = prescale_factors(ctx, graph, t)  # type: ignore[arg-type]
        pre += f
    if pre:
        scale *= math.prod(pre)
        note = (note + ", " if note else "") + "Q/K pre-scaled"
    layer.scale, layer.scale_note = scale, note
    cap = node.attr("softcap")
    if isinstance(cap, float) and cap > 0:
        layer.softcap = cap


def _rope(layer: AttentionLayer, node: Node, graph: ModelGraph) -> None:
    if node.attr("do_rotary", 0):
        layer.rope = "do_rotary"
    elif layer.q_tensor:
        layer.rope = rope_kind(graph, layer.q_tensor)


def _drivers(graph: ModelGraph, tensors: list[str]) -> tuple[str, ...]:
    """Graph inputs whose values reach ``tensors`` (padding masks, seqlens)."""
    out: list[str] = []
    for t in tensors:
        if not t:
            continue
        if t in graph.inputs:
            out.append(t)
            continue
        sl = maskeval.extract(graph, (t,))
        out += [x for x in sl.value_inputs if x not in out]
    return tuple(dict.fromkeys(out))


def _band_mask(left: int | None, right: int | None, source: str = "attribute") -> MaskInfo:
    fit = maskfit.band_family(left, right)
    return MaskInfo(fit.family, fit.keys, dict(fit.params), source=source)


def _combine(ctx: AnalysisContext, node: Node, reader: MaskReader, layer: AttentionLayer,
             structural: MaskInfo, terms: list[MaskTerm], padding: list[str]) -> MaskInfo:
    """The op's attribute pattern, intersected with in-graph mask terms (evaluated)
    and with padding inputs (input-driven: analyzed as no padding)."""
    graph = node.graph
    inputs = _drivers(graph, padding)
    graph_terms = []
    for term in terms:
        if term.tensor in graph.inputs:
            inputs = tuple(dict.fromkeys((*inputs, term.tensor)))
        else:
            graph_terms.append(term)
    if graph_terms:
        keys = structural.keys
        req = mask_request(graph, tuple(graph_terms), 4, 2, 3, layer)
        if req.cross is None:
            req.structural = lambda n: maskfit.pattern_matrix(keys, n)
            req.structural_key = structural.keys.describe()
        elif structural.family != "bidirectional":
            return unknown_mask("a cross-attention mask with a causal/window attribute is not fitted")
        info = reader.read(req)
    else:
        info = MaskInfo(structural.family, structural.keys, dict(structural.params), source=structural.source,
                        note=structural.note)
    if inputs:
        info = MaskInfo(info.family, info.keys, dict(info.params), source="input-driven",
                        input_driven=tuple(dict.fromkeys((*info.input_driven, *inputs))),
                        evaluated_at=info.evaluated_at,
                        note="; ".join(x for x in (info.note, "padding from " + ", ".join(inputs)
                                                  + " analyzed as no padding") if x),
                        sees_future=info.sees_future, per_head=info.per_head, mixed_causal=info.mixed_causal,
                        future_example=info.future_example, future_fraction=info.future_fraction)
    if info.family in ("bidirectional", "band") or info.params.get("right"):
        info.sees_future = True
    return info


def _mask_kind(ctx: AnalysisContext, tensor: str) -> str:
    return "keep" if ctx.shapes.dtype(tensor) == TensorProto.BOOL else "additive"


def _lengths(layer: AttentionLayer, q_shape: Any, k_shape: Any, q_axis: int, k_axis: int) -> None:
    if q_shape and len(q_shape) > q_axis:
        layer.q_len = q_shape[q_axis]
        layer.batch = q_shape[0]
    if k_shape and len(k_shape) > k_axis:
        layer.k_len = k_shape[k_axis]
    if layer.q_len is not None and layer.k_len is not None:
        layer.self_attention = same_sequence(layer.q_len, layer.k_len)


# -- ONNX Attention ----------------------------------------------------------------------
def _onnx_attention(ctx: AnalysisContext, node: Node, reader: MaskReader, layer: AttentionLayer) -> None:
    g = node.graph
    q, k, v = node.input(0), node.input(1), node.input(2)
    layer.q_tensor, layer.k_tensor, layer.v_tensor = q, k, v
    qs, ks, vs = _shape(ctx, q), _shape(ctx, k), _shape(ctx, v)
    if qs is not None and len(qs) == 4:
        layer.heads, layer.head_dim = D.as_int(qs[1]), qs[3]
        layer.q_seq_axis = layer.k_seq_axis = layer.v_seq_axis = 2
        if ks is not None and len(ks) == 4:
            layer.kv_heads = D.as_int(ks[1])
            # HF's SDPA path repeats K/V heads (repeat_kv) before the op: the
            # model's kv heads are the ones before that repetition.
            rep = repetition_factor(ctx, g, k)
            if layer.kv_heads and rep > 1 and layer.kv_heads % rep == 0:
                layer.kv_heads //= rep
        if vs is not None and len(vs) == 4:
            layer.v_head_dim = vs[3]
        _lengths(layer, qs, ks, 2, 2)
        layer.model_dim = D.mul(qs[1], qs[3]) if layer.heads else None
    else:
        layer.heads = _opt_int(node, "q_num_heads", 0) or None
        layer.kv_heads = _opt_int(node, "kv_num_heads", 0) or None
        layer.q_seq_axis = layer.k_seq_axis = layer.v_seq_axis = 1
        if qs is not None and len(qs) == 3:
            layer.model_dim = qs[2]
            layer.head_dim = _div(qs[2], layer.heads) if layer.heads else None
        if vs is not None and len(vs) == 3 and layer.kv_heads:
            layer.v_head_dim = _div(vs[2], layer.kv_heads)
        _lengths(layer, qs, ks, 1, 1)
    _scale(layer, node, ctx, g)
    _rope(layer, node, g)
    causal = bool(_opt_int(node, "is_causal", 0))
    opset = ctx.model.opset("")
    left = _opt_int(node, "left_window_size", -1) if opset >= 25 else -1
    right = _opt_int(node, "right_window_size", -1) if opset >= 25 else -1
    lo = left if left >= 0 else None
    hi: int | None = right if right >= 0 else None
    if causal:
        hi = 0 if hi is None else min(hi, 0)
    # A draft of opset 25 named it local_window_size: keys 0 <= p - j < W.
    local = _opt_int(node, "local_window_size", -1) if opset >= 25 else -1
    if local > 0:
        lo = local - 1 if lo is None else min(lo, local - 1)
    structural = _band_mask(lo, hi)
    if past := node.input(4):
        layer.notes.append(f"past_key {past!r}: keys are offset by the cache (analyzed with past 0)")
    terms = []
    if mask := node.input(3):
        layer.mask_tensors = (mask,)
        terms.append(MaskTerm(mask, _mask_kind(ctx, mask)))
    layer.mask = _combine(ctx, node, reader, layer, structural, terms, [node.input(6)])


# -- com.microsoft ---------------------------------------------------------------------------
def _ms_attention(ctx: AnalysisContext, node: Node, reader: MaskReader, layer: AttentionLayer) -> None:
    """Attention / QAttention: one input, merged QKV weights."""
    g = node.graph
    x = node.input(0)
    layer.q_tensor = layer.k_tensor = layer.v_tensor = x
    layer.q_seq_axis = layer.k_seq_axis = layer.v_seq_axis = 1
    xs, ws = _shape(ctx, x), _shape(ctx, node.input(1))
    layer.heads = layer.kv_heads = _opt_int(node, "num_heads", 0) or None
    sizes = node.attr("qkv_hidden_sizes")
    hidden = sizes[0] if sizes else (_div(ws[1], 3) if ws is not None and len(ws) == 2 else None)
    v_hidden = sizes[2] if sizes else hidden
    if layer.heads:
        layer.head_dim = _div(hidden, layer.heads) if hidden is not None else None
        layer.v_head_dim = _div(v_hidden, layer.heads) if v_hidden is not None else None
    if xs is not None and len(xs) == 3:
        layer.model_dim = xs[2]
        _lengths(layer, xs, xs, 1, 1)
    _scale(layer, node, ctx, g)
    _rope(layer, node, g)
    structural = _band_mask(None, 0 if _opt_int(node, "unidirectional", 0) else None)
    mask_index = node.input(3 if node.op_type == "Attention" else 5)
    bias = node.input(5) if node.op_type == "Attention" else ""
    terms, padding = [], []
    if mask_index:
        layer.mask_tensors += (mask_index,)
        if (ctx.shapes.rank(mask_index) or 0) >= 3 and mask_index not in g.inputs:
            terms.append(MaskTerm(mask_index, "keep"))
        else:
            padding.append(mask_index)
    if bias:
        layer.mask_tensors += (bias,)
        terms.append(MaskTerm(bias, "additive"))
    layer.mask = _combine(ctx, node, reader, layer, structural, terms, padding)


def _ms_mha(ctx: AnalysisContext, node: Node, reader: MaskReader, layer: AttentionLayer) -> None:
    g = node.graph
    q, k, v = node.input(0), node.input(1), node.input(2)
    layer.q_tensor, layer.k_tensor, layer.v_tensor = q, k or q, v or q
    qs, ks = _shape(ctx, q), _shape(ctx, k)
    layer.heads = layer.kv_heads = _opt_int(node, "num_heads", 0) or None
    layer.q_seq_axis = 1
    layer.k_seq_axis = layer.v_seq_axis = 2 if ks is not None and len(ks) == 4 else 1
    if qs is not None and len(qs) == 3 and layer.heads:
        layer.model_dim = qs[2]
        layer.head_dim = _div(qs[2], layer.heads)
    elif qs is not None and len(qs) == 5:  # packed QKV [B, S, N, 3, H]
        layer.head_dim = qs[4]
    layer.v_head_dim = layer.head_dim
    _lengths(layer, qs, ks if k else qs, 1, layer.k_seq_axis)
    _scale(layer, node, ctx, g)
    _rope(layer, node, g)
    structural = _band_mask(None, 0 if _opt_int(node, "unidirectional", 0) else None)
    terms, padding = [], []
    if pad := node.input(4):
        layer.mask_tensors += (pad,)
        padding.append(pad)
    if bias := node.input(5):
        layer.mask_tensors += (bias,)
        terms.append(MaskTerm(bias, "additive"))
    layer.mask = _combine(ctx, node, reader, layer, structural, terms, padding)


def _ms_gqa(ctx: AnalysisContext, node: Node, reader: MaskReader, layer: AttentionLayer) -> None:
    """GroupQueryAttention and PagedAttention (same head/window attributes)."""
    g = node.graph
    q, k, v = node.input(0), node.input(1), node.input(2)
    layer.q_tensor, layer.k_tensor, layer.v_tensor = q, k or q, v or q
    paged = node.op_type == "PagedAttention"
    seq_axis = 0 if paged else 1
    layer.q_seq_axis = layer.k_seq_axis = layer.v_seq_axis = seq_axis
    layer.heads = _opt_int(node, "num_heads", 0) or None
    layer.kv_heads = _opt_int(node, "kv_num_heads", 0) or None
    qs, ks = _shape(ctx, q), _shape(ctx, k)
    if qs is not None and layer.heads:
        width = qs[-1]
        denom = layer.heads if k else layer.heads + 2 * (layer.kv_heads or 0)
        layer.head_dim = _div(width, denom)
        layer.model_dim = D.mul(layer.heads, layer.head_dim) if layer.head_dim is not None else None
    layer.v_head_dim = layer.head_dim
    _lengths(layer, qs, ks if k else qs, seq_axis, seq_axis)
    _scale(layer, node, ctx, g)
    _rope(layer, node, g)
    causal = bool(_opt_int(node, "is_causal" if paged else "causal", 1))
    w = _opt_int(node, "local_window_size", -1)
    # w keys including the current one (onnxruntime >= PR #25927; see module doc).
    structural = _band_mask(w - 1 if w > 0 else None, 0 if causal else None)
    if w > 0:
        structural.params["local_window_size"] = w
        structural.note = (f"local_window_size {w} read as {w} keys including the current one "
                           f"(onnxruntime since PR #25927; older runtimes attend {w + 1})")
    terms = []
    bias_index = 10 if node.op_type == "GroupQueryAttention" else -1
    if bias_index >= 0 and (bias := node.input(bias_index)):
        layer.mask_tensors += (bias,)
        terms.append(MaskTerm(bias, "additive"))
    padding = [node.input(5)] if node.op_type == "GroupQueryAttention" else [node.input(5), node.input(6)]
    layer.mask = _combine(ctx, node, reader, layer, structural, terms, padding)


def _ms_sparse(ctx: AnalysisContext, node: Node, reader: MaskReader, layer: AttentionLayer) -> None:
    import numpy as np

    from ..tokenflow.deps import BlockSparse

    g = node.graph
    _ms_gqa_heads(ctx, node, layer)
    _scale(layer, node, ctx, g)
    _rope(layer, node, g)
    block = _opt_int(node, "sparse_block_size", 0)
    rows = g.constant_value(node.input(5))
    cols = g.constant_value(node.input(6))
    if block <= 0 or rows is None or cols is None:
        layer.mask = unknown_mask("SparseAttention block layout is not a constant")
        return
    rows, cols = np.atleast_2d(rows), np.atleast_2d(cols)
    n_blocks = rows.shape[1] - 1
    layout: list[set[int]] = [set() for _ in range(n_blocks)]
    for r, c in zip(rows, cols, strict=False):  # union over the per-head layouts
        for qb in range(n_blocks):
            layout[qb].update(int(x) for x in c[int(r[qb]):int(r[qb + 1])] if 0 <= x <= qb)
    tup = tuple(tuple(sorted(s)) for s in layout)
    note = f"{rows.shape[0]} layout(s), union over heads" if rows.shape[0] > 1 else ""
    layer.mask = MaskInfo("block_sparse", BlockSparse(block, tup, True),
                          {"block": block, "layout": [list(r) for r in tup], "causal": True},
                          source="attribute", note=note)
    layer.mask_tensors = (node.input(5), node.input(6))
    if drivers := _drivers(g, [node.input(8)]):
        layer.mask.source = "input-driven"
        layer.mask.input_driven = drivers


def _ms_gqa_heads(ctx: AnalysisContext, node: Node, layer: AttentionLayer) -> None:
    q, k, v = node.input(0), node.input(1), node.input(2)
    layer.q_tensor, layer.k_tensor, layer.v_tensor = q, k or q, v or q
    layer.q_seq_axis = layer.k_seq_axis = layer.v_seq_axis = 1
    layer.heads = _opt_int(node, "num_heads", 0) or None
    layer.kv_heads = _opt_int(node, "kv_num_heads", 0) or layer.heads
    qs = _shape(ctx, q)
    if qs is not None and layer.heads:
        denom = layer.heads if k else layer.heads + 2 * (layer.kv_heads or 0)
        layer.head_dim = _div(qs[-1], denom)
        layer.model_dim = D.mul(layer.heads, layer.head_dim) if layer.head_dim is not None else None
    layer.v_head_dim = layer.head_dim
    _lengths(layer, qs, qs, 1, 1)


def _ms_longformer(ctx: AnalysisContext, node: Node, reader: MaskReader, layer: AttentionLayer) -> None:
    from ..tokenflow.deps import GlobalLocal

    g = node.graph
    x = node.input(0)
    layer.q_tensor = layer.k_tensor = layer.v_tensor = x
    layer.q_seq_axis = layer.k_seq_axis = layer.v_seq_axis = 1
    layer.heads = layer.kv_heads = _opt_int(node, "num_heads", 0) or None
    xs = _shape(ctx, x)
    if xs is not None and len(xs) == 3 and layer.heads:
        layer.model_dim = xs[2]
        layer.head_dim = layer.v_head_dim = _div(xs[2], layer.heads)
    _lengths(layer, xs, xs, 1, 1)
    _scale(layer, node, ctx, g)
    w = _opt_int(node, "window", 0)
    glob = node.input(6)
    flags = g.constant_value(glob) if glob else None
    if flags is not None:
        idx = tuple(int(i) for i in sorted(set(flags.reshape(flags.shape[0], -1)[0].nonzero()[0])))
        keys: Any = GlobalLocal(w, w, idx, False)
        layer.mask = MaskInfo("global_local", keys, {"left": w, "right": w, "globals": list(idx),
                                                     "window": w}, source="attribute")
    else:
        fit = maskfit.band_family(w, w)
        layer.mask = MaskInfo(fit.family, fit.keys, {**fit.params, "one_sided_window": w}, source="attribute")
        if glob:
            layer.mask.source = "input-driven"
            layer.mask.input_driven = _drivers(g, [glob]) or (glob,)
            layer.mask.note = (f"global tokens are chosen by {glob!r}: analyzed with none; any global "
                               "token sees and is seen by every position")
    layer.mask.sees_future = True
    layer.mask_tensors = tuple(t for t in (node.input(3), glob) if t)
    if pad := _drivers(g, [node.input(3)]):
        layer.mask.input_driven = tuple(dict.fromkeys((*layer.mask.input_driven, *pad)))
        layer.mask.source = "input-driven"


def _ms_packed(ctx: AnalysisContext, node: Node, reader: MaskReader, layer: AttentionLayer) -> None:
    """PackedAttention/PackedMultiHeadAttention: tokens of all sequences packed on
    axis 0; each sequence attends to itself bidirectionally."""
    g = node.graph
    x = node.input(0)
    layer.q_tensor = x
    layer.k_tensor = node.input(1) if node.op_type == "PackedMultiHeadAttention" and node.input(1) else x
    layer.v_tensor = node.input(2) if node.op_type == "PackedMultiHeadAttention" and node.input(2) else x
    layer.q_seq_axis = layer.k_seq_axis = layer.v_seq_axis = 0
    layer.heads = layer.kv_heads = _opt_int(node, "num_heads", 0) or None
    sizes = node.attr("qkv_hidden_sizes")
    xs = _shape(ctx, x)
    hidden = sizes[0] if sizes else (xs[-1] if xs is not None and node.op_type == "PackedMultiHeadAttention"
                                     and len(xs) == 2 else None)
    if hidden is not None and layer.heads:
        layer.head_dim = layer.v_head_dim = _div(hidden, layer.heads)
    if xs is not None:
        layer.model_dim = xs[-1] if node.op_type == "PackedAttention" else hidden
        layer.q_len = layer.k_len = xs[0]
    _scale(layer, node, ctx, g)
    cum = node.input(4 if node.op_type == "PackedAttention" else 6)
    layer.mask = MaskInfo("bidirectional", ALL, source="input-driven",
                          input_driven=_drivers(g, [cum, node.input(3 if node.op_type == "PackedAttention" else 5)]),
                          note="packed sequences: each attends to itself; boundaries come from the inputs",
                          sees_future=True)


def _ms_decoder_masked(ctx: AnalysisContext, node: Node, reader: MaskReader, layer: AttentionLayer) -> None:
    """One decoding step: the new token attends to the whole cache (causal)."""
    g = node.graph
    q = node.input(0)
    layer.q_tensor = q
    layer.k_tensor = node.input(1) or q
    layer.v_tensor = node.input(2) or q
    layer.q_seq_axis = layer.k_seq_axis = layer.v_seq_axis = 1
    layer.heads = layer.kv_heads = _opt_int(node, "num_heads", 0) or None
    qs = _shape(ctx, q)
    if qs is not None and len(qs) == 3 and layer.heads and node.op_type == "DecoderMaskedMultiHeadAttention":
        layer.model_dim = qs[2]
        layer.head_dim = layer.v_head_dim = _div(qs[2], layer.heads)
    _scale(layer, node, ctx, g)
    _rope(layer, node, g)
    layer.mask = MaskInfo("causal", CAUSAL, source="attribute",
                          note="decoding step: one query over the cache")


READERS: dict[tuple[str, str], Reader] = {
    ("", "Attention"): _onnx_attention,
    (MS, "Attention"): _ms_attention,
    (MS, "QAttention"): _ms_attention,
    (MS, "MultiHeadAttention"): _ms_mha,
    (MS, "GroupQueryAttention"): _ms_gqa,
    (MS, "PagedAttention"): _ms_gqa,
    (MS, "SparseAttention"): _ms_sparse,
    (MS, "LongformerAttention"): _ms_longformer,
    (MS, "PackedAttention"): _ms_packed,
    (MS, "PackedMultiHeadAttention"): _ms_packed,
    (MS, "DecoderMaskedMultiHeadAttention"): _ms_decoder_masked,
    (MS, "DecoderMaskedSelfAttention"): _ms_decoder_masked,
}
"""Which reader understands which fused op (the op semantics live in the readers)."""
