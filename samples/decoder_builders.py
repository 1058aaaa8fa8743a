"""Llama-shaped decoder graphs (``onnx.helper`` only), with or without a KV cache.

The layout follows HF ``LlamaForCausalLM`` as the TorchScript exporter emits it with
eager attention: token embedding ``Gather``; per layer RMSNorm, q/k/v projections,
rotate-half RoPE, K/V concatenated after the cache (``past_key.i``/``past_value.i``
``[1, kv, past, d]`` inputs, ``present_*`` outputs) and repeated for GQA, QKᵀ scaled
by 1/√d, an additive causal (or sliding-window) mask built from ``Range`` over the
runtime lengths, softmax, AV, o_proj, residual; RMSNorm, SwiGLU MLP, residual; final
RMSNorm and ``lm_head``. ``weights="shape"`` stores dims and dtypes only (instant for
7 B parameters, never runnable); ``"random"`` is runnable in onnxruntime.

Llama-2-7B: ``llama(**LLAMA2_7B)`` — 32 layers, hidden 4096, 32 heads (no GQA),
intermediate 11008, vocab 32000: 6,738,415,616 parameters.
"""

from __future__ import annotations

import numpy as np
import onnx
from attention_builders import _repeat_kv, _rotate, causal, i64, unsqueeze, window
from nets import NetBuilder

from builders import FLOAT, INT64

LLAMA2_7B = dict(layers=32, hidden=4096, heads=32, kv_heads=32, ffn=11008, vocab=32000)


def llama(layers: int = 2, hidden: int = 64, heads: int = 4, kv_heads: int = 2, ffn: int = 128, vocab: int = 256,
          kv_cache: bool = False, sliding_window: int | None = None, weights: str = "random",
          seed: int = 0) -> onnx.ModelProto:
    b = NetBuilder("llama_kv" if kv_cache else "llama", opset=17, seed=seed, weights=weights)
    d = hidden // heads
    ids = b.input("input_ids", INT64, [1, "seq"])
    pasts = []
    if kv_cache:
        for li in range(layers):
            pasts.append((b.input(f"past_key.{li}", FLOAT, [1, kv_heads, "past", d]),
                          b.input(f"past_value.{li}", FLOAT, [1, kv_heads, "past", d])))
    x = b.op("Gather", [b.weight([vocab, hidden], "model.embed_tokens.weight", 0.02), ids], axis=0,
             name="/model/embed_tokens/Gather")
    seq = b.op("Squeeze", [b.op("Shape", [ids], start=1, end=2), i64(b, [0])])
    past = b.op("Squeeze", [b.op("Shape", [pasts[0][0]], start=2, end=3), i64(b, [0])]) if kv_cache else i64(b, 0)
    total = b.op("Add", [past, seq])
    q_pos = b.op("Range", [past, total, i64(b, 1)])                       # [seq]: past … past+seq−1
    k_pos = b.op("Range", [i64(b, 0), total, i64(b, 1)])                   # [past+seq]
    i, j = unsqueeze(b, q_pos, [1]), unsqueeze(b, k_pos, [0])
    mask_fn = window(sliding_window) if sliding_window else causal()
    visible = mask_fn(b, i, j)                                            # [seq, past+seq]
    bias = b.op("Where", [visible, b.const(np.array(0.0, np.float32)), b.const(np.array(-1e9, np.float32))],
                name="/model/mask")
    inv = b.const((1.0 / 10000 ** (np.arange(0, d, 2) / d)).astype(np.float32), "model.rotary_emb.inv_freq")
    ang = b.op("Mul", [b.op("Cast", [i], to=FLOAT), inv])
    emb = b.op("Concat", [ang, ang], axis=1)
    cos, sin = b.op("Cos", [emb]), b.op("Sin", [emb])
    scale = b.const(np.array(1.0 / np.sqrt(d), np.float32))

    def rms(t: str, name: str) -> str:
        var = b.op("ReduceMean", [b.op("Pow", [t, b.const(np.array(2.0, np.float32))])], axes=[-1], keepdims=1)
        norm = b.op("Div", [t, b.op("Sqrt", [b.op("Add", [var, b.const(np.array(1e-6, np.float32))])])])
        return b.op("Mul", [norm, b.vector(hidden, 1.0, f"{name}.weight")], name=f"/{name}/Mul")

    for li in range(layers):
        p = f"/model/layers.{li}"
        a = f"{p}/self_attn"
        h = rms(x, f"model.layers.{li}.input_layernorm")
        q = b.op("MatMul", [h, b.weight([hidden, heads * d])], name=f"{a}/q_proj/MatMul")
        k = b.op("MatMul", [h, b.weight([hidden, kv_heads * d])], name=f"{a}/k_proj/MatMul")
        v = b.op("MatMul", [h, b.weight([hidden, kv_heads * d])], name=f"{a}/v_proj/MatMul")
        q = b.op("Transpose", [b.op("Reshape", [q, i64(b, [1, -1, heads, d])])], perm=[0, 2, 1, 3])
        k = b.op("Transpose", [b.op("Reshape", [k, i64(b, [1, -1, kv_heads, d])])], perm=[0, 2, 1, 3])
        v = b.op("Transpose", [b.op("Reshape", [v, i64(b, [1, -1, kv_heads, d])])], perm=[0, 2, 1, 3])
        q, k = _rotate(b, q, cos, sin, d), _rotate(b, k, cos, sin, d)
        if kv_cache:
            k = b.op("Concat", [pasts[li][0], k], axis=2, name=f"present_key.{li}")
            v = b.op("Concat", [pasts[li][1], v], axis=2, name=f"present_value.{li}")
            b.output(k, FLOAT, [1, kv_heads, "past + seq", d])
            b.output(v, FLOAT, [1, kv_heads, "past + seq", d])
        if kv_heads != heads:
            k, v = _repeat_kv(b, k, heads, kv_heads, d), _repeat_kv(b, v, heads, kv_heads, d)
        scores = b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 1, 3, 2])], name=f"{a}/MatMul")
        scores = b.op("Add", [b.op("Mul", [scores, scale], name=f"{a}/Mul"), bias], name=f"{a}/Add")
        probs = b.op("Softmax", [scores], axis=-1, name=f"{a}/Softmax")
        ctx = b.op("MatMul", [probs, v], name=f"{a}/MatMul_1")
        ctx = b.op("Reshape", [b.op("Transpose", [ctx], perm=[0, 2, 1, 3]), i64(b, [1, -1, heads * d])])
        x = b.op("Add", [x, b.op("MatMul", [ctx, b.weight([heads * d, hidden])], name=f"{a}/o_proj/MatMul")])
        h = rms(x, f"model.layers.{li}.post_attention_layernorm")
        m = f"{p}/mlp"
        gate = b.op("MatMul", [h, b.weight([hidden, ffn])], name=f"{m}/gate_proj/MatMul")
        up = b.op("MatMul", [h, b.weight([hidden, ffn])], name=f"{m}/up_proj/MatMul")
        act = b.op("Mul", [gate, b.op("Sigmoid", [gate])], name=f"{m}/act_fn/Mul")
        x = b.op("Add", [x, b.op("MatMul", [b.op("Mul", [act, up]), b.weight([ffn, hidden])],
                                 name=f"{m}/down_proj/MatMul")])
    x = rms(x, "model.norm")
    b.op("MatMul", [x, b.weight([hidden, vocab], "lm_head.weight")], name="logits")
    b.outputs.insert(0, onnx.helper.make_tensor_value_info("logits", FLOAT, [1, "seq", vocab]))
    return b.model()
