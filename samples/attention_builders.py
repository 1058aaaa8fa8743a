"""Attention test graphs (``onnx.helper`` only): unfused stacks with any mask
family, and the fused attention ops.

Masks are built the way exporters build them — from ``Range`` over the runtime
sequence length and integer compare ops — so the analyzer has to *evaluate*
them; nothing is a constant ``[n, n]`` table. Every model runs in onnxruntime
(the tests use it as an oracle: perturb one input position, see which outputs move).

A mask builder is ``fn(b, i, j) -> visible`` where ``i`` is ``[seq, 1]`` (query
positions) and ``j`` is ``[1, seq]`` (key positions), int64, and ``visible`` is
a boolean tensor broadcastable to ``[1, heads, seq, seq]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from builders import FLOAT, INT64, GraphBuilder

MaskFn = Callable[[GraphBuilder, str, str], str]
MS = "com.microsoft"


# -- opset-portable helpers ---------------------------------------------------------
def i64(b: GraphBuilder, value: Any) -> str:
    return b.const(np.array(value, np.int64))


def unsqueeze(b: GraphBuilder, x: str, axes: Sequence[int]) -> str:
    if b.opset >= 13:
        return b.op("Unsqueeze", [x, i64(b, list(axes))])
    return b.op("Unsqueeze", [x], axes=list(axes))


def squeeze(b: GraphBuilder, x: str, axes: Sequence[int]) -> str:
    if b.opset >= 13:
        return b.op("Squeeze", [x, i64(b, list(axes))])
    return b.op("Squeeze", [x], axes=list(axes))


def seq_length(b: GraphBuilder, ids: str) -> str:
    """Scalar int64 length of axis 1 of ``ids`` ([1, seq])."""
    if b.opset >= 15:
        return squeeze(b, b.op("Shape", [ids], start=1, end=2), [0])
    return squeeze(b, b.op("Gather", [b.op("Shape", [ids]), i64(b, [1])], axis=0), [0])


def positions(b: GraphBuilder, n: str) -> tuple[str, str]:
    """``i`` [n, 1] and ``j`` [1, n]: query and key positions."""
    pos = b.op("Range", [i64(b, 0), n, i64(b, 1)])
    return unsqueeze(b, pos, [1]), unsqueeze(b, pos, [0])


# -- mask families ------------------------------------------------------------------
def causal() -> MaskFn:
    return lambda b, i, j: b.op("LessOrEqual", [j, i]) if b.opset >= 12 else b.op("Not", [b.op("Greater", [j, i])])


def window(w: int) -> MaskFn:
    """HF ``sliding_window=w``: keys ``i - w < j <= i``."""
    def fn(b: GraphBuilder, i: str, j: str) -> str:
        return b.op("And", [causal()(b, i, j), b.op("Greater", [j, b.op("Sub", [i, i64(b, w)])])])
    return fn


def lookahead(r: int) -> MaskFn:
    """Causal but off by ``r``: keys ``j <= i + r`` (a future-token leak)."""
    return lambda b, i, j: b.op("LessOrEqual", [j, b.op("Add", [i, i64(b, r)])])


def chunked(c: int, is_causal: bool = True) -> MaskFn:
    """Block-diagonal chunks of ``c``: ``i // c == j // c`` (and ``j <= i``)."""
    def fn(b: GraphBuilder, i: str, j: str) -> str:
        same = b.op("Equal", [b.op("Div", [i, i64(b, c)]), b.op("Div", [j, i64(b, c)])])
        return b.op("And", [same, causal()(b, i, j)]) if is_causal else same
    return fn


def global_local(left: int, right: int, n_globals: int) -> MaskFn:
    """Band ``i - left <= j <= i + right`` plus global tokens ``0 .. n_globals-1``."""
    def fn(b: GraphBuilder, i: str, j: str) -> str:
        band = b.op("And", [b.op("GreaterOrEqual", [j, b.op("Sub", [i, i64(b, left)])]),
                            b.op("LessOrEqual", [j, b.op("Add", [i, i64(b, right)])])])
        g = i64(b, n_globals)
        return b.op("Or", [b.op("Or", [band, b.op("Less", [i, g])]), b.op("Less", [j, g])])
    return fn


def dilated(w: int, d: int) -> MaskFn:
    """Keys ``i, i - d, …, i - d(w-1)``."""
    def fn(b: GraphBuilder, i: str, j: str) -> str:
        diff = b.op("Sub", [i, j])
        in_range = b.op("And", [b.op("GreaterOrEqual", [diff, i64(b, 0)]),
                                b.op("LessOrEqual", [diff, i64(b, d * (w - 1))])])
        return b.op("And", [in_range, b.op("Equal", [b.op("Mod", [diff, i64(b, d)]), i64(b, 0)])])
    return fn


def block_sparse(block: int, layout: Sequence[Sequence[int]], is_causal: bool = False) -> MaskFn:
    """Query block ``qb`` sees key blocks ``layout[qb]`` (a constant table of
    ``len(layout)`` blocks, so lengths up to ``len(layout) * block``)."""
    nb = len(layout)
    table = np.zeros((nb, nb), bool)
    for qb, kbs in enumerate(layout):
        table[qb, list(kbs)] = True

    def fn(b: GraphBuilder, i: str, j: str) -> str:
        qb = b.op("Div", [squeeze(b, i, [1]), i64(b, block)])                       # [n]
        kb = b.op("Div", [j, i64(b, block)])                                        # [1, n]
        rows = b.op("Gather", [b.const(table), qb], axis=0)                          # [n, nb]
        n2 = b.op("Concat", [b.op("Shape", [qb]), b.op("Shape", [qb])], axis=0)
        vis = b.op("GatherElements", [rows, b.op("Expand", [kb, n2])], axis=1)      # [n, n]
        return b.op("And", [vis, causal()(b, i, j)]) if is_causal else vis
    return fn


def pattern() -> MaskFn:
    """``(7i + 3j) mod 5 == 0 or i == j``: no family describes it."""
    def fn(b: GraphBuilder, i: str, j: str) -> str:
        s = b.op("Add", [b.op("Mul", [i, i64(b, 7)]), b.op("Mul", [j, i64(b, 3)])])
        return b.op("Or", [b.op("Equal", [b.op("Mod", [s, i64(b, 5)]), i64(b, 0)]), b.op("Equal", [i, j])])
    return fn


def per_head(fns: Sequence[MaskFn]) -> MaskFn:
    """A [1, heads, n, n] mask: head h uses ``fns[h]``."""
    def fn(b: GraphBuilder, i: str, j: str) -> str:
        parts = [unsqueeze(b, f(b, i, j), [0, 1]) for f in fns]
        return b.op("Concat", parts, axis=1)
    return fn


# -- unfused stacks -----------------------------------------------------------------
def attention_stack(masks: Sequence[MaskFn | str | None], heads: int = 2, d_model: int = 16,
                    kv_heads: int | None = None, vocab: int = 40, scale: float | None = None,
                    scale_mode: str = "mul", softcap: float | None = None, opset: int = 17,
                    mask_op: str = "add", coerce_softmax: bool = False, rope: bool = False,
                    name: str = "attention_stack", seed: int = 0) -> onnx.ModelProto:
    """One unfused attention layer per entry of ``masks`` (residual, no MLP).

    A mask entry is a :data:`MaskFn`, ``None`` (no mask), ``"padding"`` (the
    ``attention_mask`` graph input, a key padding mask), ``"padding+causal"`` or
    ``"learned"`` (a bias computed from activations), ``"learned-gate"`` (keys hidden
    where that bias is negative: a data-dependent mask). ``scale_mode``: ``mul``
    (scores × s), ``div`` (scores ÷ 1/s), ``pre_q`` (Q × s), ``pre_qk`` (Q and K
    × √s each), ``none``. Default ``s = 1/sqrt(d_k)``. ``coerce_softmax``: scores
    reshaped to [-1, n] around a 2-D softmax (opset < 13 exports).
    """
    b = GraphBuilder(name, opset=opset, seed=seed)
    kv_heads = kv_heads or heads
    dk = d_model // heads
    s = 1.0 / math.sqrt(dk) if scale is None else scale
    ids = b.input("input_ids", INT64, [1, "seq"])
    if any(isinstance(m, str) and m.startswith("padding") for m in masks):
        b.input("attention_mask", INT64, [1, "seq"])
    x = b.op("Gather", [b.weight([vocab, d_model], "embed.weight", 1.0), ids], axis=0, name="embed")
    n = seq_length(b, ids)
    i, j = positions(b, n)
    cos = sin = None
    if rope:
        inv = b.const((1.0 / 10000 ** (np.arange(0, dk, 2) / dk)).astype(np.float32))
        ang = b.op("Mul", [b.op("Cast", [i], to=FLOAT), inv])                        # [n, dk/2]
        emb = b.op("Concat", [ang, ang], axis=1)                                     # [n, dk]
        cos, sin = b.op("Cos", [emb]), b.op("Sin", [emb])
    for layer, mask in enumerate(masks):
        p = f"/layers.{layer}"
        q = b.op("MatMul", [x, b.weight([d_model, heads * dk])], name=f"{p}/q_proj")
        k = b.op("MatMul", [x, b.weight([d_model, kv_heads * dk])], name=f"{p}/k_proj")
        v = b.op("MatMul", [x, b.weight([d_model, kv_heads * dk])], name=f"{p}/v_proj")
        q = b.op("Transpose", [b.op("Reshape", [q, i64(b, [1, -1, heads, dk])])], perm=[0, 2, 1, 3])
        k = b.op("Transpose", [b.op("Reshape", [k, i64(b, [1, -1, kv_heads, dk])])], perm=[0, 2, 1, 3])
        v = b.op("Transpose", [b.op("Reshape", [v, i64(b, [1, -1, kv_heads, dk])])], perm=[0, 2, 1, 3])
        if rope:
            q, k = _rotate(b, q, cos, sin, dk), _rotate(b, k, cos, sin, dk)
        if kv_heads != heads:
            k, v = _repeat_kv(b, k, heads, kv_heads, dk), _repeat_kv(b, v, heads, kv_heads, dk)
        if scale_mode == "pre_q":
            q = b.op("Mul", [q, b.const(np.array(s, np.float32))])
        elif scale_mode == "pre_qk":
            root = b.const(np.array(math.sqrt(s), np.float32))
            q, k = b.op("Mul", [q, root]), b.op("Mul", [k, root])
        scores = b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 1, 3, 2])], name=f"{p}/qk")
        if scale_mode == "mul":
            scores = b.op("Mul", [scores, b.const(np.array(s, np.float32))], name=f"{p}/scale")
        elif scale_mode == "div":
            scores = b.op("Div", [scores, b.const(np.array(1.0 / s, np.float32))], name=f"{p}/scale")
        if softcap:
            cap = b.const(np.array(softcap, np.float32))
            scores = b.op("Mul", [b.op("Tanh", [b.op("Div", [scores, cap])]), cap], name=f"{p}/softcap")
        scores = _apply_mask(b, scores, mask, i, j, x, mask_op, p)
        probs = _softmax(b, scores, coerce_softmax, p)
        ctx = b.op("MatMul", [probs, v], name=f"{p}/av")
        ctx = b.op("Reshape", [b.op("Transpose", [ctx], perm=[0, 2, 1, 3]), i64(b, [1, -1, heads * dk])])
        x = b.op("Add", [x, b.op("MatMul", [ctx, b.weight([heads * dk, d_model])], name=f"{p}/o_proj")])
    b.op("Identity", [x], name="hidden")
    b.output("hidden", FLOAT, [1, "seq", d_model])
    return b.model()


def _rotate(b: GraphBuilder, x: str, cos: str | None, sin: str | None, dk: int) -> str:
    """RoPE, rotate-half form: x·cos + concat(-x2, x1)·sin."""
    assert cos is not None and sin is not None
    half = dk // 2
    x1 = b.op("Slice", [x, i64(b, [0]), i64(b, [half]), i64(b, [3])])
    x2 = b.op("Slice", [x, i64(b, [half]), i64(b, [dk]), i64(b, [3])])
    rot = b.op("Concat", [b.op("Neg", [x2]), x1], axis=-1)
    return b.op("Add", [b.op("Mul", [x, cos]), b.op("Mul", [rot, sin])])


def _repeat_kv(b: GraphBuilder, x: str, heads: int, kv_heads: int, dk: int) -> str:
    """[1, kv, n, dk] → Unsqueeze → Expand [1, kv, rep, n, dk] → Reshape [1, heads, n, dk]."""
    target = b.op("Concat", [i64(b, [1, kv_heads, heads // kv_heads]),
                             b.op("Slice", [b.op("Shape", [x]), i64(b, [2]), i64(b, [4])])], axis=0)
    return b.op("Reshape", [b.op("Expand", [unsqueeze(b, x, [2]), target]), i64(b, [1, heads, -1, dk])])


def _apply_mask(b: GraphBuilder, scores: str, mask: MaskFn | str | None, i: str, j: str, x: str,
                mask_op: str, p: str) -> str:
    if mask is None:
        return scores
    neg = b.const(np.array(-1e9, np.float32))
    zero = b.const(np.array(0.0, np.float32))
    if mask in ("learned", "learned-gate"):  # a score bias computed from activations, [1, 1, n, n]
        bias = unsqueeze(b, b.op("MatMul", [x, b.op("Transpose", [x], perm=[0, 2, 1])]), [1])
        if mask == "learned-gate":  # keys hidden where the activations say so: data-dependent
            bias = b.op("Where", [b.op("Greater", [bias, zero]), zero, neg])
        return b.op("Add", [scores, bias], name=f"{p}/bias")
    if isinstance(mask, str) and mask.startswith("padding"):
        vis = unsqueeze(b, b.op("Cast", ["attention_mask"], to=onnx.TensorProto.BOOL), [1, 2])  # [1,1,1,n]
        if mask == "padding+causal":
            vis = b.op("And", [vis, causal()(b, i, j)])
    else:
        assert callable(mask)
        vis = mask(b, i, j)
    if mask_op == "where":
        return b.op("Where", [vis, scores, neg], name=f"{p}/mask")
    return b.op("Add", [scores, b.op("Where", [vis, zero, neg])], name=f"{p}/mask")


def _softmax(b: GraphBuilder, scores: str, coerce: bool, p: str) -> str:
    if not coerce:
        return b.op("Softmax", [scores], axis=-1 if b.opset >= 13 else 3, name=f"{p}/softmax")
    shape = b.op("Shape", [scores])
    last = b.op("Gather", [shape, i64(b, [3])], axis=0)
    flat = b.op("Reshape", [scores, b.op("Concat", [i64(b, [-1]), last], axis=0)])
    probs = b.op("Softmax", [flat], axis=1, name=f"{p}/softmax")
    return b.op("Reshape", [probs, shape])


# -- fused ops ------------------------------------------------------------------------
def onnx_attention(opset: int = 23, heads: int = 2, kv_heads: int | None = None, d: int = 8, rank: int = 4,
                   is_causal: int | None = None, left: int | None = None, right: int | None = None,
                   attn_mask: MaskFn | str | None = None, scale: float | None = None,
                   softcap: float | None = None, rope: bool = False) -> onnx.ModelProto:
    """One ONNX ``Attention`` node on graph inputs Q, K, V (so a test can
    perturb key rows). ``attn_mask``: a :data:`MaskFn` built in the graph
    (boolean), ``"input"`` (a boolean graph input) or None. ``rope``: Q and K
    pass through ONNX ``RotaryEmbedding`` (opset 23) first."""
    kv_heads = kv_heads or heads
    b = GraphBuilder("onnx_attention", opset=opset)
    if rank == 4:
        q = b.input("Q", FLOAT, [1, heads, "seq", d])
        k = b.input("K", FLOAT, [1, kv_heads, "seq", d])
        v = b.input("V", FLOAT, [1, kv_heads, "seq", d])
    else:
        q = b.input("Q", FLOAT, [1, "seq", heads * d])
        k = b.input("K", FLOAT, [1, "seq", kv_heads * d])
        v = b.input("V", FLOAT, [1, "seq", kv_heads * d])
    if rope:
        pos = b.input("position_ids", INT64, [1, "seq"])
        table = (np.arange(64)[:, None] * 0.01 * np.ones(d // 2)).astype(np.float32)
        cos, sin = b.const(np.cos(table)), b.const(np.sin(table))
        q = b.op("RotaryEmbedding", [q, cos, sin, pos])
        k = b.op("RotaryEmbedding", [k, cos, sin, pos])
    ins = [q, k, v]
    if attn_mask == "input":
        ins.append(b.input("attn_mask", onnx.TensorProto.BOOL, [1, 1, "seq", "seq"]))
    elif attn_mask is not None:
        assert callable(attn_mask)
        n = squeeze(b, b.op("Shape", [q], start=2 if rank == 4 else 1, end=3 if rank == 4 else 2), [0])
        i, j = positions(b, n)
        ins.append(attn_mask(b, i, j))
    attrs: dict[str, Any] = {}
    for key, val in (("is_causal", is_causal), ("left_window_size", left), ("right_window_size", right),
                     ("scale", scale), ("softcap", softcap)):
        if val is not None:
            attrs[key] = val
    if rank == 3:
        attrs.update(q_num_heads=heads, kv_num_heads=kv_heads)
    b.op("Attention", ins, name="attention", **attrs)
    b.output("attention", FLOAT, None)
    return b.model()


def ms_op(op: str, inputs: Sequence[tuple[str, int, Sequence[Any]] | str], consts: dict[int, Any] | None = None,
          n_out: int = 1, **attrs: Any) -> onnx.ModelProto:
    """One com.microsoft node. ``inputs``: ``(name, dtype, shape)`` graph inputs,
    ``""`` for an absent optional input; ``consts`` {input index: value}."""
    b = GraphBuilder(op, opset=17)
    names: list[str] = []
    consts = consts or {}
    for k, spec in enumerate(inputs):
        if k in consts:
            names.append(b.const(consts[k]))
        elif spec == "":
            names.append("")
        else:
            name, dtype, shape = spec  # type: ignore[misc]
            names.append(b.input(name, dtype, shape))
    out = b.op(op, names, n_out=n_out, name=op.lower(), domain=MS, **attrs)
    b.output(out if n_out == 1 else out[0], FLOAT, None)
    return b.model(extra_opsets=[(MS, 1)])


def gqa(local_window_size: int = -1, heads: int = 4, kv_heads: int = 2, d: int = 8, **attrs: Any) -> onnx.ModelProto:
    """com.microsoft GroupQueryAttention, prompt (no cache): query [1, seq, heads·d]."""
    return ms_op("GroupQueryAttention", [
        ("query", FLOAT, [1, "seq", heads * d]), ("key", FLOAT, [1, "seq", kv_heads * d]),
        ("value", FLOAT, [1, "seq", kv_heads * d]), "", "",
        ("seqlens_k", onnx.TensorProto.INT32, [1]), ("total_sequence_length", onnx.TensorProto.INT32, [])],
        n_out=3, num_heads=heads, kv_num_heads=kv_heads, local_window_size=local_window_size, **attrs)


def sparse_attention(block: int, layouts: Sequence[Sequence[Sequence[int]]], heads: int = 2, d: int = 8,
                     **attrs: Any) -> onnx.ModelProto:
    """com.microsoft SparseAttention with constant CSR layouts (one per head group)."""
    rows, cols = [], []
    width = max(sum(len(r) for r in lay) for lay in layouts)
    for lay in layouts:
        ptr = [0]
        flat: list[int] = []
        for r in lay:
            flat += list(r)
            ptr.append(len(flat))
        rows.append(ptr)
        cols.append(flat + [-1] * (width - len(flat)))
    return ms_op("SparseAttention", [
        ("query", FLOAT, [1, "seq", heads * d]), ("key", FLOAT, [1, "seq", heads * d]),
        ("value", FLOAT, [1, "seq", heads * d]), ("past_key", FLOAT, [1, heads, 64, d]),
        ("past_value", FLOAT, [1, heads, 64, d]), "rows", "cols",
        ("total_sequence_length", onnx.TensorProto.INT32, [1]),
        ("key_total_sequence_lengths", onnx.TensorProto.INT32, [1])],
        consts={5: np.array(rows, np.int32), 6: np.array(cols, np.int32)}, n_out=3,
        num_heads=heads, kv_num_heads=heads, sparse_block_size=block, **attrs)
