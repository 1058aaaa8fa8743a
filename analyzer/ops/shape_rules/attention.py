"""Shape rules of fused attention ops (ONNX and com.microsoft) and other sequence ops."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import dims as D
from ...dims import Dim
from ...graph import TensorType
from ..registry import MS

if TYPE_CHECKING:
    from ...shapes import ShapeCtx
from .common import SHAPE, Out, T, norm_axis


# -- attention ops -------------------------------------------------------------------
@SHAPE.rule("Attention")
def onnx_attention(ctx: ShapeCtx) -> Out:
    q, v = ctx.shape(0), ctx.shape(2)
    if q is None or v is None:
        return [TensorType(ctx.dtype(0), None)]
    y: tuple[Dim | None, ...]
    if len(q) == 4:
        y = (q[0], q[1], q[2], v[3] if len(v) == 4 else None)
    else:
        hq, hkv = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
        dv = v[-1] if len(v) == 4 else (D.floordiv(v[2], hkv) if hkv and v[2] is not None else None)
        y = (q[0], q[1], D.mul(dv, hq) if dv is not None and hq else None)
    outs: Out = [TensorType(ctx.dtype(0), y)]
    return outs


@SHAPE.rule("Attention", domain=MS)
def ms_attention(ctx: ShapeCtx) -> Out:
    x, w = ctx.shape(0), ctx.shape(1)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    sizes = ctx.attr("qkv_hidden_sizes")
    hv = sizes[2] if sizes else (D.floordiv(w[1], 3) if w is not None and w[1] is not None else None)
    return [TensorType(ctx.dtype(0), (x[0], x[1], hv))]


@SHAPE.rule("MultiHeadAttention", "DecoderMaskedMultiHeadAttention", "PackedMultiHeadAttention",
            domain=MS)
def ms_mha(ctx: ShapeCtx) -> Out:
    q, v = ctx.shape(0), ctx.shape(2)
    if q is None:
        return [TensorType(ctx.dtype(0), None)]
    h = ctx.attr("num_heads")
    if v is not None and len(v) == 3:
        dv = v[2]
    elif v is not None and len(v) == 4 and v[3] is not None and h:
        dv = D.mul(v[3], h)
    else:
        dv = q[-1] if len(q) == 3 else None
    return [TensorType(ctx.dtype(0), (*q[:-1], dv) if len(q) == 3 else None)]


@SHAPE.rule("GroupQueryAttention", "SparseAttention", "PagedAttention", domain=MS)
def ms_gqa(ctx: ShapeCtx) -> Out:
    q = ctx.shape(0)
    h, hkv = ctx.attr("num_heads"), ctx.attr("kv_num_heads")
    if q is None or len(q) != 3 or q[2] is None or not h:
        return [TensorType(ctx.dtype(0), None)]
    packed = not ctx.has(1)
    head = D.floordiv(q[2], h + 2 * hkv) if packed and hkv else D.floordiv(q[2], h)
    return [TensorType(ctx.dtype(0), (q[0], q[1], D.mul(head, h)))]


@SHAPE.rule("PackedAttention", "LongformerAttention", domain=MS)
def ms_packed(ctx: ShapeCtx) -> Out:
    x, w = ctx.shape(0), ctx.shape(1)
    if x is None or w is None or w[-1] is None:
        return [TensorType(ctx.dtype(0), None)]
    return [TensorType(ctx.dtype(0), (*x[:-1], D.floordiv(w[-1], 3)))]


@SHAPE.rule("EmbedLayerNormalization", domain=MS)
def ms_embed_ln(ctx: ShapeCtx) -> Out:
    ids, word = ctx.shape(0), ctx.shape(2)
    if ids is None or word is None:
        return [TensorType(ctx.dtype(2), None)]
    return [TensorType(ctx.dtype(2), (ids[0], ids[1], word[1])), TensorType(T.INT32, (ids[0],))]


@SHAPE.rule("GatherBlockQuantized", domain=MS)
def ms_gather_bq(ctx: ShapeCtx) -> Out:
    """Gather along ``gather_axis`` of block-quantized data; uint8 data packs 8/bits values
    per byte along ``quantize_axis``, which the dequantized output unpacks."""
    data, idx = ctx.shape(0), ctx.shape(1)
    dtype = ctx.dtype(2) or T.FLOAT
    if data is None or idx is None:
        return [TensorType(dtype, None)]
    dims = list(data)
    q_axis = norm_axis(ctx.attr("quantize_axis", 1), len(dims))
    bits = int(ctx.attr("bits", 4))
    packed = dims[q_axis]
    if ctx.dtype(0) == T.UINT8 and bits < 8 and packed is not None:
        dims[q_axis] = D.mul(packed, 8 // bits)
    axis = norm_axis(ctx.attr("gather_axis", 0), len(dims))
    return [TensorType(dtype, tuple(dims[:axis]) + tuple(idx) + tuple(dims[axis + 1:]))]


@SHAPE.rule("LinearAttention")
def linear_attention(ctx: ShapeCtx) -> Out:
    """Packed [B, T, H·D] in; output [B, T, q_heads · d_v], state [B, kv_heads, d_k, d_v]."""
    q, k, v = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    hq, hkv = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
    if q is None or v is None or not hq or not hkv or v[2] is None:
        return [TensorType(ctx.dtype(0), None), None]
    dv = D.floordiv(v[2], hkv)
    dk = D.floordiv(k[2], hkv) if k is not None and k[2] is not None else None
    return [TensorType(ctx.dtype(0), (q[0], q[1], D.mul(dv, hq))),
            TensorType(ctx.dtype(0), (q[0], hkv, dk, dv))]


@SHAPE.rule("FlexAttention", domain="ai.onnx.preview")
def flex_attention(ctx: ShapeCtx) -> Out:
    q, v = ctx.shape(0), ctx.shape(2)
    if q is None or v is None or len(q) != 4 or len(v) != 4:
        return [TensorType(ctx.dtype(0), None)]
    return [TensorType(ctx.dtype(0), (q[0], q[1], q[2], v[3]))]
