"""Per-op cost rules: MACs, FLOPs and (where the default is wrong) bytes moved.

Conventions (METRICS.md "Compute"):

* MACs = multiply-accumulates; FLOPs = 2 × MACs for MatMul/Gemm/Conv/attention
  contractions (bias adds, Gemm's alpha/beta folded in, as every published count
  does). Element-wise families count the registry's per-element constant
  (``ops/catalog.py``; a plugin's ``OpRule.flops_per_element`` overrides it) per
  output element — per *input* element for reductions.
* Bytes: by default a node reads every input and writes every output as
  declared; rules override where that is wrong (``Shape`` reads no data, a
  ``Gather`` reads the rows it gathers, not the whole table).

The generic families (element-wise, binary, normalize, reduce, movement, pool,
conv, matmul, resize) are dispatched on the registry's ``category`` by
:data:`FAMILY`, so a plugin op registered with ``category="elementwise",
flops_per_element=5`` is counted without any cost code. Specific ops attach
rules to :data:`COST` by decorator.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from ..ops.registry import MS, CostRule, RuleTable
from .model import CostCtx, CostUnknown, GraphCost, MaskSpec, OpCost, tensor_bytes
from .poly import ONE, ZERO, Poly, from_dim
from .poly import product as product_of

COST: RuleTable[CostRule] = RuleTable("cost")

Rule = Callable[[CostCtx], OpCost]


def _per(ctx: CostCtx, default: float | None = None) -> Fraction | int:
    """This op's per-element FLOP constant (catalog or plugin)."""
    value = ctx.flops_per_element
    if value is None:
        if default is None:
            raise CostUnknown(f"{ctx.op_type} has category {ctx.category!r} but no per-element FLOP constant")
        value = default
    return _as_fraction(value)


@functools.lru_cache(maxsize=256)
def _as_fraction(value: float) -> Fraction | int:
    """A per-element constant as an exact number (once per constant, not per node)."""
    f = Fraction(value).limit_denominator(1000)
    return int(f) if f.denominator == 1 else f


def _bytes(ctx: CostCtx, i: int) -> Poly:
    b = tensor_bytes(ctx.shape(i), ctx.dtype(i)) if ctx.has(i) else ZERO
    if b is None:
        raise ctx.unknown(f"size of input {i} unknown", ctx.node.input(i))
    return b


def _out_bytes(ctx: CostCtx, k: int = 0) -> Poly:
    name = ctx.node.outputs[k] if k < len(ctx.node.outputs) else ""
    b = tensor_bytes(ctx.out_shape(k), ctx.shapes.dtype(name)) if name else ZERO
    if b is None:
        raise ctx.unknown(f"size of output {k} unknown", name)
    return b


# -- generic families (dispatched on the registry's category) ------------------------
def _same_shape_elements(ctx: CostCtx) -> Poly:
    """Output elements of a shape-preserving op; its input's if the output's
    shape is unknown (a plugin op registered without a shape rule)."""
    if ctx.out_shape(0) is None and ctx.shape(0) is not None:
        return ctx.numel(0)
    return ctx.out_numel(0)


def elementwise(ctx: CostCtx) -> OpCost:
    """Unary ops and activations: the per-element constant × output elements."""
    return OpCost(flops=_per(ctx) * _same_shape_elements(ctx))


@functools.cache
def _variadic(domain: str, op_type: str, opset: int) -> bool | None:
    """Whether the ONNX schema declares the op's inputs variadic (``Sum``, ``Max``…);
    None when no schema answers (a plugin's op). Only asked for a node with 3+
    operands (with 2 the count is the same either way): onnx's import is costly."""
    import onnx.defs

    try:
        schema = onnx.defs.get_schema(op_type, opset, domain)
    except onnx.defs.SchemaError:
        return None
    variadic = onnx.defs.OpSchema.FormalParameterOption.Variadic
    return bool(schema.inputs) and schema.inputs[-1].option == variadic


def binary(ctx: CostCtx) -> OpCost:
    """Broadcasting binary ops: one application per output element; variadic ops
    (per the ONNX schema) one per extra operand (``Sum`` of 4 tensors: 3 adds per
    element). ``Where`` is one select per element. With more than two operands and no
    schema to say whether they are variadic, the count is not guessed."""
    applications = 1
    present = sum(1 for i in range(ctx.n_inputs) if ctx.has(i))
    if present > 2 and not (ctx.op_type == "Where" and not ctx.node.domain):  # a select: no schema needed
        variadic = _variadic(ctx.node.domain, ctx.op_type, ctx.opset)
        if variadic is None:
            raise CostUnknown(f"no schema says whether {ctx.op_type}'s {present} inputs are variadic")
        if variadic:
            applications = present - 1
    return OpCost(flops=_per(ctx) * ctx.out_numel(0) * applications)


def normalize(ctx: CostCtx) -> OpCost:
    """Softmax / LayerNorm / BatchNorm …: the per-element constant × output elements."""
    return OpCost(flops=_per(ctx) * _same_shape_elements(ctx))


def reduce_(ctx: CostCtx) -> OpCost:
    """Reductions: the per-element constant × *input* elements."""
    return OpCost(flops=_per(ctx) * ctx.numel(0))


def movement(ctx: CostCtx) -> OpCost:
    """Data movement: no arithmetic, bytes only."""
    return OpCost(flops=0)


def pool(ctx: CostCtx) -> OpCost:
    """Windowed pools: one FLOP (compare or add) per window element per output;
    global pools: one per input element."""
    kernel = ctx.attr("kernel_shape")
    if kernel:
        return OpCost(flops=ctx.out_numel(0) * math.prod(int(k) for k in kernel))
    return OpCost(flops=ctx.numel(0))


def _conv(ctx: CostCtx, x: int, w: int) -> Poly:
    """Conv MACs = N · C_out · Π(out spatial) · (C_in/group) · Π(kernel): the output
    elements times the weight's per-output-channel slice ``W[1:]``, which already
    carries ``C_in/group`` and the kernel (and so handles groups and depthwise)."""
    ws = ctx.need_shape(w)
    return ctx.out_numel(0) * ctx.prod_dims(ws[1:])


def conv(ctx: CostCtx) -> OpCost:
    return OpCost(macs=_conv(ctx, 0, 1))


def _matmul(ctx: CostCtx, a: int, b: int, trans_a: bool = False) -> Poly:
    """MatMul MACs = output elements × K (batched and broadcast alike; K is A's
    last axis, or its second-to-last when A is transposed)."""
    sa = ctx.need_shape(a)
    k_axis = -2 if trans_a and len(sa) >= 2 else -1
    return ctx.out_numel(0) * ctx.dim(a, k_axis)


def matmul(ctx: CostCtx) -> OpCost:
    return OpCost(macs=_matmul(ctx, 0, 1))


_RESIZE_PER_AXIS = {"nearest": 0, "linear": 3, "bilinear": 3, "trilinear": 3, "cubic": 7, "bicubic": 7}
"""FLOPs per output element per resized axis: nearest copies; linear is a lerp
(sub, mul, add); cubic a 4-tap filter (4 mul + 3 add). Separable evaluation."""


def resize(ctx: CostCtx) -> OpCost:
    mode = str(ctx.attr("mode", "nearest")).lower()
    per_axis = _RESIZE_PER_AXIS.get(mode)
    if per_axis is None:
        raise CostUnknown(f"resize mode {mode!r} has no cost constant")
    src, dst = ctx.need_shape(0), ctx.need_out_shape(0)
    if len(src) != len(dst):
        raise CostUnknown("input and output ranks differ")
    resized = sum(1 for a, b in zip(src, dst, strict=True) if from_dim(a) != from_dim(b))
    return OpCost(flops=ctx.out_numel(0) * (per_axis * resized))


FAMILY: dict[str, Rule] = {
    "elementwise": elementwise,
    "binary": binary,
    "normalize": normalize,
    "reduce": reduce_,
    "movement": movement,
    "pool": pool,
    "conv": conv,
    "matmul": matmul,
    "resize": resize,
}
"""Registry category → rule, for ops that have no rule of their own."""


# -- data movement with non-default traffic ------------------------------------------------
@COST.rule("Shape", "Size")
def metadata(ctx: CostCtx) -> OpCost:
    """Reads only the input's shape, never its data."""
    return OpCost(flops=0, read=0)


@COST.rule("Constant")
def constant(ctx: CostCtx) -> OpCost:
    return OpCost(flops=0, read=0)


@COST.rule("Gather", "GatherElements", "GatherND")
def gather(ctx: CostCtx) -> OpCost:
    """A gather reads the indices and the gathered elements — an embedding lookup
    of ``seq`` tokens reads ``seq`` rows, not the whole table."""
    return OpCost(flops=0, read=_bytes(ctx, 1) + _out_bytes(ctx, 0))


@COST.rule("Slice")
def slice_(ctx: CostCtx) -> OpCost:
    """A slice reads the elements it keeps (plus its small index inputs)."""
    extra = ZERO
    for i in range(1, ctx.n_inputs):
        extra = extra + _bytes(ctx, i)
    return OpCost(flops=0, read=_out_bytes(ctx, 0) + extra)


# -- convolutions -------------------------------------------------------------------------
@COST.rule("QLinearConv")
@COST.rule("QLinearConv", domain=MS)
def qlinear_conv(ctx: CostCtx) -> OpCost:
    """Inputs: x, x_scale, x_zp, w (3), …"""
    return OpCost(macs=_conv(ctx, 0, 3))


@COST.rule("ConvTranspose")
def conv_transpose(ctx: CostCtx) -> OpCost:
    """Every input element scatters into ``C_out/group · Π(kernel)`` outputs:
    MACs = N · C_in · Π(in spatial) · (C_out/group) · Π(kernel), W = [C_in, C_out/g, k…]."""
    ws = ctx.need_shape(1)
    return OpCost(macs=ctx.numel(0) * ctx.prod_dims(ws[1:]))


@COST.rule("DeformConv")
def deform_conv(ctx: CostCtx) -> OpCost:
    """Conv MACs plus a bilinear sample (4 mul + 3 add) per tap per input channel
    per output position: N · Π(out) · C_in · Π(kernel) · 7 FLOPs."""
    macs = _conv(ctx, 0, 1)
    ws = ctx.need_shape(1)
    out = ctx.need_out_shape(0)
    group = int(ctx.attr("group", 1))
    samples = ctx.prod_dims([out[0], *out[2:]]) * ctx.prod_dims(ws[1:]) * group
    return OpCost(macs=macs, flops=2 * macs + 7 * samples, note="bilinear offset sampling included")


@COST.rule("FusedConv", domain=MS)
def fused_conv(ctx: CostCtx) -> OpCost:
    """Conv + optional fused activation (its per-element constant from the catalog)."""
    macs = _conv(ctx, 0, 1)
    act = ctx.attr("activation")
    extra = ZERO
    if act:
        extra = ctx.out_numel(0) * Fraction(ctx.per_element(str(act), default=1)).limit_denominator(1000)
    return OpCost(macs=macs, flops=2 * macs + extra)


# -- contractions ---------------------------------------------------------------------------
@COST.rule("Gemm")
def gemm(ctx: CostCtx) -> OpCost:
    """Y[M, N] = A'[M, K] · B'[K, N]: MACs = M·N·K (alpha/beta/C folded in)."""
    return OpCost(macs=_matmul(ctx, 0, 1, trans_a=bool(ctx.attr("transA", 0))))


@COST.rule("QGemm", domain=MS)
def qgemm(ctx: CostCtx) -> OpCost:
    """Gemm with B at input 3: MACs = M·N·K."""
    return OpCost(macs=_matmul(ctx, 0, 3, trans_a=bool(ctx.attr("transA", 0))))


@COST.rule("QLinearMatMul")
def qlinear_matmul(ctx: CostCtx) -> OpCost:
    """Inputs: a, a_scale, a_zp, b (3), …"""
    return OpCost(macs=_matmul(ctx, 0, 3))


@COST.rule("FusedMatMul", domain=MS)
def fused_matmul(ctx: CostCtx) -> OpCost:
    return OpCost(macs=_matmul(ctx, 0, 1, trans_a=bool(ctx.attr("transA", 0))))


@COST.rule("MatMulNBits", domain=MS)
def matmul_nbits(ctx: CostCtx) -> OpCost:
    """A[…, K] × dequant(B)[K, N] with K, N as attributes; B is stored packed
    (``bits`` per weight), which the default byte count reads as stored."""
    k = int(ctx.attr("K", 0))
    if k <= 0:
        raise CostUnknown("MatMulNBits without a K attribute")
    return OpCost(macs=ctx.out_numel(0) * k,
                  note=f"{int(ctx.attr('bits', 4))}-bit weights dequantized in the kernel")


@COST.rule("GatherBlockQuantized", domain=MS)
def gather_block_quantized(ctx: CostCtx) -> OpCost:
    """Gather + dequantize (scale, zero point: 2 FLOPs) of the gathered rows only."""
    bits = int(ctx.attr("bits", 4))
    out = ctx.out_numel(0)
    return OpCost(flops=2 * out, read=_bytes(ctx, 1) + out * Fraction(bits, 8))


@COST.rule("Einsum")
def einsum(ctx: CostCtx) -> OpCost:
    """Pairwise left-to-right contraction: each step costs the product of the sizes
    of every index it touches (``bij,bjk->bik`` = b·i·j·k MACs). A single operand
    that sums indices away costs one add per input element."""
    eq = str(ctx.attr("equation", "")).replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    shapes = [ctx.need_shape(i) for i in range(len(terms))]
    ell_rank = max((len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes, strict=True)
                    if "..." in t), default=0)
    ell = [chr(0x3B1 + k) for k in range(ell_rank)]  # Greek letters stand for "..." axes
    sizes: dict[str, Poly] = {}
    subs: list[list[str]] = []
    for t, s in zip(terms, shapes, strict=True):
        head, dots, tail = t.partition("...")
        n_ell = len(s) - len(head) - len(tail) if dots else 0
        letters = list(head) + (ell[ell_rank - n_ell:] if dots else []) + list(tail)
        if len(letters) != len(s):
            raise CostUnknown(f"einsum term {t!r} does not match rank {len(s)}")
        for letter, d in zip(letters, s, strict=True):
            p = from_dim(d)
            if p is None:
                raise CostUnknown(f"einsum index {letter!r} has unknown size")
            if letter not in sizes or sizes[letter] == ONE:
                sizes[letter] = p
        subs.append(letters)
    if arrow:
        out = [*ell, *rhs.replace("...", "")] if "..." in rhs else list(rhs)
    else:
        counts: dict[str, int] = {}
        for letters in subs:
            for letter in letters:
                counts[letter] = counts.get(letter, 0) + 1
        out = ell + sorted(c for c, n in counts.items() if n == 1 and c not in ell)
    if len(subs) == 1:
        reduces = set(subs[0]) - set(out)
        return OpCost(flops=ctx.numel(0) if reduces else 0)
    macs = ZERO
    cur = set(subs[0])
    for k in range(1, len(subs)):
        touched = cur | set(subs[k])
        step = ONE
        for letter in touched:
            step = step * sizes[letter]
        macs = macs + step
        later = set(out).union(*[set(s) for s in subs[k + 1:]])
        cur = touched & later
    return OpCost(macs=macs)


# -- attention ---------------------------------------------------------------------------------
def _heads_dim(ctx: CostCtx, width: Poly, heads: int, what: str) -> Poly:
    if heads <= 0:
        raise CostUnknown(f"{what}: number of heads unknown")
    d = width * Fraction(1, heads)
    if any(isinstance(c, Fraction) for c in d.terms.values()):
        raise CostUnknown(f"{what}: width {width.fmt()} is not divisible by {heads} heads")
    return d


def _attention_cost(ctx: CostCtx, batch: Poly, heads: Poly, n_q: Poly, n_k: Poly, d_qk: Poly, d_v: Poly,
                    extra: Poly = ZERO, mask: MaskSpec | None = None,
                    masked: bool = False, note: str = "") -> OpCost:
    """QKᵀ and AV: 2·B·H·n_q·n_k·d FLOPs each (METRICS). Softmax (catalog constant),
    the 1/√d scale and an additive mask are counted per score element on top."""
    pairs = n_q * n_k
    pair_macs = batch * heads * (d_qk + d_v)
    macs = pairs * pair_macs + extra
    scores = batch * heads * pairs
    soft = Fraction(ctx.per_element("Softmax", default=5)).limit_denominator(1000)
    flops = 2 * macs + scores * (soft + 1 + (1 if masked else 0))
    return OpCost(macs=macs, flops=flops, pairs=pairs, pair_macs=pair_macs, mask=mask, note=note)


@COST.rule("Attention")
def onnx_attention(ctx: CostCtx) -> OpCost:
    """ONNX ``Attention`` (opset 23): Q/K/V 4-D ``[B, H, n, d]`` or 3-D
    ``[B, n, H·d]`` with ``q_num_heads``/``kv_num_heads``; ``past_key`` (input 4)
    extends the key length."""
    q, k, v = ctx.need_shape(0), ctx.need_shape(1), ctx.need_shape(2)
    hq = int(ctx.attr("q_num_heads", 0))
    hk = int(ctx.attr("kv_num_heads", 0))
    batch = ctx.dim(0, 0)
    if len(q) == 4:
        heads, n_q, d = ctx.dim(0, 1), ctx.dim(0, 2), ctx.dim(0, 3)
    else:
        heads, n_q = Poly.const(hq), ctx.dim(0, 1)
        d = _heads_dim(ctx, ctx.dim(0, 2), hq, "query")
    n_k = ctx.dim(1, 2) if len(k) == 4 else ctx.dim(1, 1)
    d_v = ctx.dim(2, 3) if len(v) == 4 else _heads_dim(ctx, ctx.dim(2, 2), hk, "value")
    if ctx.has(4):
        n_k = n_k + ctx.dim(4, 2)
    mask: MaskSpec | None = ("causal", {}) if int(ctx.attr("is_causal", 0)) else None
    return _attention_cost(ctx, batch, heads, n_q, n_k, d, d_v, mask=mask, masked=ctx.has(3))


@COST.rule("Attention", domain=MS)
def ms_attention(ctx: CostCtx) -> OpCost:
    """com.microsoft ``Attention``: input ``[B, S, D_in]`` × packed QKV weights
    ``[D_in, q+k+v]`` (projection counted), ``past`` ``[2, B, H, P, d]``."""
    heads = int(ctx.attr("num_heads", 0))
    batch, seq = ctx.dim(0, 0), ctx.dim(0, 1)
    d_in, d_out = ctx.dim(0, 2), ctx.dim(1, 1)
    sizes = ctx.attr("qkv_hidden_sizes")
    if sizes:
        hq, _hk, hv = (Poly.const(int(s)) for s in sizes)
    else:
        third = d_out * Fraction(1, 3)
        hq = hv = third
    d = _heads_dim(ctx, hq, heads, "query")
    d_v = _heads_dim(ctx, hv, heads, "value")
    n_k = seq + (ctx.dim(4, 3) if ctx.has(4) else ZERO)
    projection = batch * seq * d_in * d_out
    mask: MaskSpec | None = ("causal", {}) if int(ctx.attr("unidirectional", 0)) else None
    return _attention_cost(ctx, batch, Poly.const(heads), seq, n_k, d, d_v, extra=projection, mask=mask,
                           masked=ctx.has(3), note="includes the packed QKV projection")


@COST.rule("MultiHeadAttention", domain=MS)
def ms_mha(ctx: CostCtx) -> OpCost:
    """com.microsoft ``MultiHeadAttention``: query ``[B, S, H·d]`` (or packed QKV
    ``[B, S, H, 3, d]``); key ``[B, L, H·d]``, ``[B, H, L, d]`` or packed KV
    ``[B, L, H, 2, d]``; ``past_key`` (input 6) extends L."""
    heads = int(ctx.attr("num_heads", 0))
    q = ctx.need_shape(0)
    batch, seq = ctx.dim(0, 0), ctx.dim(0, 1)
    if len(q) == 5:
        d = d_v = ctx.dim(0, 4)
        n_k = seq
    else:
        d = _heads_dim(ctx, ctx.dim(0, 2), heads, "query")
        if not ctx.has(1):
            raise CostUnknown("query is not packed and key is absent")
        k = ctx.need_shape(1)
        n_k = ctx.dim(1, 2) if len(k) == 4 else ctx.dim(1, 1)
        if len(k) == 5:
            d_v = ctx.dim(1, 4)
        elif ctx.has(2):
            v = ctx.need_shape(2)
            d_v = ctx.dim(2, 3) if len(v) == 4 else _heads_dim(ctx, ctx.dim(2, 2), heads, "value")
        else:
            d_v = d
        if ctx.has(6) and len(k) == 3:
            n_k = n_k + ctx.dim(6, 2)
    mask: MaskSpec | None = ("causal", {}) if int(ctx.attr("unidirectional", 0)) else None
    return _attention_cost(ctx, batch, Poly.const(heads), seq, n_k, d, d_v, mask=mask,
                           masked=ctx.has(4) or ctx.has(5))


@COST.rule("GroupQueryAttention", "SparseAttention", domain=MS)
def ms_gqa(ctx: CostCtx) -> OpCost:
    """com.microsoft ``GroupQueryAttention`` (causal; ``local_window_size = w``
    → a window of w keys including the current one, as onnxruntime attends since
    its PR #25927 and as the attention service reads it; older runtimes attend
    w + 1): query ``[B, S, H·d]`` or packed
    ``[B, S, (H + 2·H_kv)·d]``; ``past_key`` ``[B, H_kv, P, d]`` (input 3).
    ``SparseAttention`` shares the layout; counted dense here, its block layout
    is the attention analyzer's to read."""
    heads = int(ctx.attr("num_heads", 0))
    kv_heads = int(ctx.attr("kv_num_heads", 0)) or heads
    batch, seq = ctx.dim(0, 0), ctx.dim(0, 1)
    packed = not ctx.has(1)
    d = _heads_dim(ctx, ctx.dim(0, 2), heads + 2 * kv_heads if packed else heads, "query")
    n_k = seq + (ctx.dim(3, 2) if ctx.has(3) else ZERO)
    window = int(ctx.attr("local_window_size", -1))
    mask: MaskSpec = ("sliding_window", {"window": window}) if window > 0 else ("causal", {})
    if int(ctx.attr("do_rotary", 0)):
        rope = Fraction(ctx.per_element("RotaryEmbedding", MS, default=3)).limit_denominator(1000)
        extra_flops = batch * seq * d * (heads + kv_heads) * rope
    else:
        extra_flops = ZERO
    cost = _attention_cost(ctx, batch, Poly.const(heads), seq, n_k, d, d, mask=mask, masked=False)
    if ctx.op_type == "SparseAttention":
        cost.mask, cost.note = None, "dense count; block-sparse layout not applied here"
    cost.flops = (cost.flops if cost.flops is not None else 2 * cost.macs) + extra_flops
    return cost


# -- recurrent ---------------------------------------------------------------------------------
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1, "DynamicQuantizeLSTM": 4}
_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"],
                 "DynamicQuantizeLSTM": ["Sigmoid", "Tanh", "Tanh"]}


@COST.rule("LSTM", "GRU", "RNN")
@COST.rule("DynamicQuantizeLSTM", domain=MS)
def recurrent(ctx: CostCtx) -> OpCost:
    """MACs = directions · seq · batch · gates · H · (I + H) (input and recurrent
    matrices; ``DynamicQuantizeLSTM``'s int8 W [dirs, I, 4H] is the same product).
    Per hidden unit per step, element-wise FLOPs: the gate sums
    (Wx + Rh, biases), the gate activations (catalog constants of the ops named
    in ``activations``) and the cell update (LSTM: 3 mul + 1 add; GRU: r⊙, z
    blend: 5; RNN: none)."""
    op = ctx.op_type
    gates = _GATES[op]
    layout = int(ctx.attr("layout", 0))
    seq, batch = (ctx.dim(0, 1), ctx.dim(0, 0)) if layout else (ctx.dim(0, 0), ctx.dim(0, 1))
    inp = ctx.dim(0, 2)
    w = ctx.need_shape(1)
    dirs = from_dim(w[0])
    hidden = ctx.attr("hidden_size")
    h = Poly.const(int(hidden)) if hidden else ctx.dim(2, 2)
    if dirs is None:
        raise CostUnknown("number of directions unknown")
    steps = dirs * seq * batch
    macs = steps * h * (inp + h) * gates
    acts = list(ctx.attr("activations") or _DEFAULT_ACTS[op])
    per = [Fraction(ctx.per_element(a, default=2)).limit_denominator(1000) for a in acts[:len(_DEFAULT_ACTS[op])]]
    bias = ctx.has(3)
    if op in ("LSTM", "DynamicQuantizeLSTM"):
        unit = gates + (8 if bias else 0) + 3 * per[0] + per[1] + per[2] + 4
        if ctx.has(7):
            macs = macs + steps * h * 3  # peepholes
    elif op == "GRU":
        unit = gates + (6 if bias else 0) + 2 * per[0] + per[1] + 5
    else:
        unit = gates + (2 if bias else 0) + per[0]
    note = "full sequence counted (sequence_lens may end rows earlier)" if ctx.has(4) else ""
    return OpCost(macs=macs, flops=2 * macs + steps * h * unit, note=note, bound="upper bound" if note else "")


# -- control flow ------------------------------------------------------------------------------
@COST.rule("If")
def if_(ctx: CostCtx) -> OpCost:
    """Only one branch runs. When its condition is known without running the model (a
    constant, or computed from shapes) that branch is counted, exactly. Otherwise the
    costlier branch at the binding is counted — an upper bound only if every node of both
    branches is costed; when one is not, the cheaper branch's count is the only number that
    provably does not exceed what runs (a lower bound, said)."""
    costs = []
    for attr in ("then_branch", "else_branch"):
        for sub in ctx.subgraphs(attr):
            costs.append((attr, ctx.body_cost(sub)))
    if not costs:
        raise CostUnknown("If without branches")
    taken = ctx.shapes.branch_taken.get(ctx.node.id) if hasattr(ctx.shapes, "branch_taken") else None
    if taken is not None and taken < len(costs):
        name, body = costs[taken]
        return OpCost(macs=body.macs, flops=body.flops, read=body.read, written=body.written, body=body,
                      note=f"condition known: {name} runs")

    def key(item: tuple[str, Any]) -> float:
        v = ctx.evaluate(item[1].flops)
        return float(v) if v is not None else -1.0

    seen = GraphCost()  # unknown/partial nodes of *every* branch stay reported
    for _, branch in costs:
        seen.absorb(branch)
    complete = all(not b.partial and not b.unknown_ops and not b.bounds for _, b in costs)
    name, body = max(costs, key=key) if complete else min(costs, key=key)
    bound = f"max of the branches at the binding ({name})" if complete else \
        f"a branch has uncosted nodes: the cheaper branch ({name}) is counted (a lower bound)"
    return OpCost(macs=body.macs, flops=body.flops, read=body.read, written=body.written, body=seen,
                  bound=bound)


@COST.rule("Loop")
def loop(ctx: CostCtx) -> OpCost:
    """Body × trip count ``M`` (symbolic when ``M`` is). Without a known ``M`` the
    body is counted once: a lower bound, stated."""
    bodies = ctx.subgraphs("body")
    if not bodies:
        raise CostUnknown("Loop without a body")
    body = ctx.body_cost(bodies[0])
    trips = ctx.scalar(0) if ctx.has(0) else None
    if trips is None:
        return OpCost(macs=body.macs, flops=body.flops, read=body.read, written=body.written, body=body,
                      bound="trip count unknown: body counted once (a lower bound)")
    cond = ctx.has(1) and ctx.value(1) != (1,)
    return OpCost(macs=body.macs * trips, flops=body.flops * trips, read=body.read * trips,
                  written=body.written * trips, body=body,
                  note=f"body × {trips.fmt()} iterations",
                  bound="M iterations; the loop condition may exit earlier (an upper bound)" if cond else "")


@COST.rule("Scan")
def scan(ctx: CostCtx) -> OpCost:
    """Body × the length of the scanned axis."""
    bodies = ctx.subgraphs("body")
    n_scan = int(ctx.attr("num_scan_inputs", 0))
    if not bodies or n_scan <= 0:
        raise CostUnknown("Scan without a body or scan inputs")
    body = ctx.body_cost(bodies[0])
    first = ctx.n_inputs - n_scan
    if ctx.opset < 9:  # Scan-8: sequence_lens input, batch axis 0, scan axis 1
        length = ctx.dim(first, 1) * ctx.dim(first, 0)
    else:
        axes = ctx.attr("scan_input_axes") or [0]
        length = ctx.dim(first, int(axes[0]))
    return OpCost(macs=body.macs * length, flops=body.flops * length, read=body.read * length,
                  written=body.written * length, body=body, note=f"body × {length.fmt()} steps")


# -- quantization --------------------------------------------------------------------------------
@COST.rule("DequantizeLinear")
def dequantize(ctx: CostCtx) -> OpCost:
    """(x - zero_point) · scale: the catalog's 2 FLOPs per element, one fewer
    when there is no zero point to subtract."""
    per = _per(ctx, 2)
    return OpCost(flops=(per if ctx.has(2) else max(per - 1, 1)) * ctx.out_numel(0))


@COST.rule("QuantizeLinear")
def quantize(ctx: CostCtx) -> OpCost:
    """x / scale, round, + zero_point, saturate: 4 FLOPs per element."""
    return OpCost(flops=_per(ctx, 4) * ctx.out_numel(0))


@COST.rule("DynamicQuantizeLinear")
def dynamic_quantize(ctx: CostCtx) -> OpCost:
    """min/max over the tensor (2 per element) then quantize (4 per element)."""
    return OpCost(flops=_per(ctx, 6) * ctx.numel(0))


# -- other ------------------------------------------------------------------------------------
@COST.rule("CumSum", "CumProd")
def cumsum(ctx: CostCtx) -> OpCost:
    return OpCost(flops=_per(ctx, 1) * ctx.out_numel(0))


@COST.rule("CausalConvWithState")
def causal_conv_with_state(ctx: CostCtx) -> OpCost:
    """Depthwise: k MACs per output element (B·C·L·k), like a grouped Conv."""
    w = ctx.shape(1)
    k = from_dim(w[2]) if w is not None and len(w) == 3 else None
    if k is None:
        raise CostUnknown("kernel size unknown")
    macs = ctx.out_numel(0) * k
    return OpCost(macs=macs, flops=2 * macs)


@COST.rule("LinearAttention")
def linear_attention(ctx: CostCtx) -> OpCost:
    """Per token: each kv head updates its d_k×d_v state (d_k·d_v MACs) and each
    query head reads it (d_k·d_v MACs): B·T·(H_kv + H_q)·d_k·d_v, gates and
    decays (element-wise on the state) not counted."""
    q, k, v = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    hq, hkv = ctx.node.attr("q_num_heads"), ctx.node.attr("kv_num_heads")
    if q is None or k is None or v is None or not hq or not hkv:
        raise CostUnknown("LinearAttention shapes or head counts unknown")
    bt = product_of((q[0], q[1]))
    dk = from_dim(k[2])
    dv = from_dim(v[2])
    if bt is None or dk is None or dv is None:
        raise CostUnknown("LinearAttention sizes unknown")
    macs = bt * (dk * dv) * Fraction(hkv + hq, hkv * hkv)
    return OpCost(macs=macs, flops=2 * macs, note="state update + read; gates/decay not counted")


@COST.rule("TopK")
def topk(ctx: CostCtx) -> OpCost:
    """Heap selection: ⌈log2(k + 1)⌉ comparisons per input element."""
    k = ctx.scalar(1)
    if k is None or not k.is_const:
        return OpCost(flops=ctx.numel(0), bound="k unknown: one comparison per element (a lower bound)")
    return OpCost(flops=ctx.numel(0) * max(1, math.ceil(math.log2(int(k.const_value) + 1))))


@COST.rule("NonMaxSuppression")
def nms(ctx: CostCtx) -> OpCost:
    """Worst case: every pair of boxes per class compared, 12 FLOPs per IoU."""
    boxes = ctx.need_shape(0)
    scores = ctx.need_shape(1)
    b, n, c = from_dim(boxes[0]), from_dim(boxes[1]), from_dim(scores[1])
    if b is None or n is None or c is None:
        raise CostUnknown("box or class count unknown")
    return OpCost(flops=b * c * n * n * 6, bound="upper bound: all box pairs compared")


def _fft_flops(n: Poly, what: str) -> Poly:
    if not n.is_const:
        raise CostUnknown(f"{what} length is symbolic (n·log2 n is not a polynomial)")
    size = int(n.const_value)
    return Poly.const(round(5 * size * math.log2(size))) if size > 1 else ZERO


@COST.rule("DFT")
def dft(ctx: CostCtx) -> OpCost:
    """Cooley–Tukey: 5·n·log2(n) FLOPs per complex transform of length n."""
    s = ctx.need_shape(0)
    axis = int(ctx.attr("axis", -2 if ctx.opset >= 20 else 1))
    length = ctx.scalar(1) if ctx.has(1) else None
    n = length if length is not None else ctx.dim(0, axis)
    per = _fft_flops(n, "DFT")
    transforms = ctx.numel(0).div_exact(ctx.dim(0, axis) * ctx.dim(0, len(s) - 1))
    if transforms is None:
        raise CostUnknown("cannot count transforms")
    return OpCost(flops=transforms * per)


@COST.rule("STFT")
def stft(ctx: CostCtx) -> OpCost:
    """Per frame: window multiply (n) + FFT (5·n·log2 n)."""
    frames = ctx.out_dim(0, 1)
    batch = ctx.out_dim(0, 0)
    n = ctx.scalar(3) if ctx.has(3) else (ctx.dim(2, 0) if ctx.has(2) else None)
    if n is None:
        raise CostUnknown("frame length unknown")
    per = _fft_flops(n, "STFT frame") + n
    return OpCost(flops=batch * frames * per)


@COST.rule("MelWeightMatrix")
def mel(ctx: CostCtx) -> OpCost:
    return OpCost(flops=ctx.out_numel(0))


@COST.rule("Det")
def det(ctx: CostCtx) -> OpCost:
    """LU decomposition: (2/3)·n³ FLOPs per matrix."""
    n = ctx.dim(0, -1)
    batch = ctx.numel(0).div_exact(n * n)
    if batch is None:
        raise CostUnknown("cannot count matrices")
    return OpCost(flops=batch * n * n * n * Fraction(2, 3))


@COST.rule("RoiAlign")
def roi_align(ctx: CostCtx) -> OpCost:
    """sampling_ratio² bilinear samples (7 FLOPs) + the average (1) per output."""
    s = int(ctx.attr("sampling_ratio", 0))
    bound = ""
    if s <= 0:
        s, bound = 2, "adaptive sampling (data-dependent): 2×2 samples assumed"
    return OpCost(flops=ctx.out_numel(0) * (s * s * 8), bound=bound)


@COST.rule("MaxRoiPool")
def max_roi_pool(ctx: CostCtx) -> OpCost:
    return OpCost(flops=ctx.out_numel(0), bound="RoI size is data-dependent: one comparison per output (a lower bound)")


@COST.rule("GridSample")
def grid_sample(ctx: CostCtx) -> OpCost:
    """Per output element: un-normalize the coordinate (2 per spatial axis) and
    interpolate: linear 3·(2^r − 1) (lerps), cubic 7·(4^r − 1)/3 (4-tap filters)."""
    mode = str(ctx.attr("mode", "linear")).lower()
    r = len(ctx.need_out_shape(0)) - 2
    interp = {"nearest": 0, "linear": 3 * (2 ** r - 1), "bilinear": 3 * (2 ** r - 1),
              "cubic": 7 * (4 ** r - 1) // 3, "bicubic": 7 * (4 ** r - 1) // 3}.get(mode)
    if interp is None:
        raise CostUnknown(f"grid_sample mode {mode!r} has no cost constant")
    return OpCost(flops=ctx.out_numel(0) * (2 * r + interp))


@COST.rule("AffineGrid")
def affine_grid(ctx: CostCtx) -> OpCost:
    """Each output coordinate is a dot of a θ row with (x, y[, z], 1)."""
    r = ctx.out_dim(0, -1)
    return OpCost(macs=ctx.out_numel(0) * (r + 1))
