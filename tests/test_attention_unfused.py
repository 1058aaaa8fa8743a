"""Unfused attention: which nodes form a layer, heads, d_k, the applied scale,
softcap, RoPE, old-opset softmax — on graphs whose construction fixes the answer
(see each comment) — and graphs that are *not* attention or are malformed."""

from __future__ import annotations

import math

import attention_builders as ab
import numpy as np
import pytest
from onnx import TensorProto, helper

from builders import FLOAT, GraphBuilder
from model_analyze.attention import attention_layers, attention_problems
from model_analyze.attention.checks import scale_check
from model_analyze.runner import prepare

DK8 = 1 / math.sqrt(8)  # heads 2, d_model 16 → d_k 8


def only_layer(model):
    ctx = prepare(model)
    layers = attention_layers(ctx)
    assert len(layers) == 1, attention_problems(ctx)
    return ctx, layers[0]


def test_layer_nodes_and_tensors_are_exact():
    ctx, la = only_layer(ab.attention_stack([ab.causal()]))
    by_id = ctx.graph.node_by_id
    names = {by_id[n].name for n in la.nodes}
    # qk → scale → mask add → softmax → av: nothing of the projections or the mask slice
    assert names == {"/layers.0/qk", "/layers.0/scale", "/layers.0/mask", "/layers.0/softmax", "/layers.0/av"}
    qk, av = by_id[la.qk_node], by_id[la.av_node]
    assert (qk.name, by_id[la.softmax_node].name, av.name) == ("/layers.0/qk", "/layers.0/softmax", "/layers.0/av")
    assert (la.q_tensor, la.k_tensor) == qk.inputs and la.v_tensor == av.input(1)
    mask_add = next(by_id[n] for n in la.nodes if by_id[n].name == "/layers.0/mask")
    assert la.mask_tensors == (mask_add.input(1),)
    assert (la.softmax_axis, la.probs_input, la.q_seq_axis, la.k_seq_axis, la.v_seq_axis) == (3, 0, 2, 3, 2)
    assert (la.heads, la.kv_heads, la.head_dim, la.v_head_dim, la.model_dim) == (2, 2, 8, 8, 16)
    assert str(la.q_len) == "seq" and la.self_attention


@pytest.mark.parametrize(("kwargs", "applied", "verdict"), [
    ({"scale_mode": "mul"}, DK8, "ok"),                    # scores × 1/√8
    ({"scale_mode": "div"}, DK8, "ok"),                    # scores ÷ √8
    ({"scale_mode": "pre_q"}, DK8, "ok"),                  # Q × 1/√8 before QKᵀ
    ({"scale_mode": "pre_qk"}, DK8, "ok"),                 # Q and K × 8^-1/4 each: product 8^-1/2
    ({"scale_mode": "none"}, 1.0, "missing"),              # no factor anywhere
    ({"scale": 0.5}, 0.5, "different"),                    # 0.5 = √2 × 1/√8
    ({"scale": 0.5, "scale_mode": "div"}, 0.5, "different"),
])
def test_applied_scale(kwargs, applied, verdict):
    _, la = only_layer(ab.attention_stack([ab.causal()], **kwargs))
    assert la.scale == pytest.approx(applied, rel=1e-6)
    assert scale_check(la).verdict == verdict


def test_softcap_is_read_and_does_not_hide_the_scale():
    # scores × 1/√8 → 30·tanh(x/30): softcap 30, applied scale still 1/√8
    _, la = only_layer(ab.attention_stack([ab.window(5)], softcap=30.0))
    assert la.softcap == pytest.approx(30.0)
    assert la.scale == pytest.approx(DK8, rel=1e-6)
    assert la.mask.params == {"window": 5}


def test_opset_11_coerced_softmax():
    # opset 11: scores reshaped to [-1, n], Softmax(axis=1) over the flattened rows,
    # reshaped back — the key axis is 1 of the softmax's input (3 of the scores), and
    # the mask added to the [1, 2, n, n] scores is still read
    _, la = only_layer(ab.attention_stack([ab.causal()], opset=11, coerce_softmax=True))
    assert la.softmax_axis == 1
    assert la.mask.family == "causal"


def test_gqa_repetition_gives_kv_heads():
    # 4 query heads over 2 kv heads, d_model 16 → d_k 4; K/V repeated by Unsqueeze/Expand/Reshape
    _, la = only_layer(ab.attention_stack([ab.causal()], heads=4, kv_heads=2))
    assert (la.heads, la.kv_heads, la.head_dim, la.model_dim) == (4, 2, 4, 16)


def test_rope_rotate_half():
    _, la = only_layer(ab.attention_stack([ab.causal()], rope=True))
    assert la.rope == "rotate_half"
    _, la = only_layer(ab.attention_stack([ab.causal()]))
    assert la.rope is None


def _softmax_head() -> GraphBuilder:
    b = GraphBuilder("not_attention")
    x = b.input("x", FLOAT, [1, "seq", 8])
    logits = b.op("MatMul", [x, b.weight([8, 4])])
    return b, b.op("Softmax", [logits], axis=-1)


def test_classifier_and_router_softmax_are_not_attention():
    b, probs = _softmax_head()                     # classifier: Softmax(x·W)
    b.op("MatMul", [probs, b.weight([4, 8])], name="mix")  # router-style: probs·W (a weight)
    b.output("mix", FLOAT, None)
    ctx = prepare(b.model())
    assert attention_layers(ctx) == [] and attention_problems(ctx) == []


def _odd_graphs():
    # softmax over an activation product, but scores of unknown rank
    b = GraphBuilder("unknown_rank")
    q, k = "q", "k"
    b.inputs += [helper.make_tensor_value_info(t, FLOAT, None) for t in (q, k)]
    probs = b.op("Softmax", [b.op("MatMul", [q, k])], axis=-1)
    b.op("MatMul", [probs, q], name="out")
    b.output("out", FLOAT, None)
    yield "unknown-rank", b.model()
    # mask added from a graph input of unrelated shape
    b = GraphBuilder("bad_mask")
    q = b.input("q", FLOAT, [1, 2, "seq", 4])
    m = b.input("m", FLOAT, [3])
    probs = b.op("Softmax", [b.op("Add", [b.op("MatMul", [q, b.op("Transpose", [q], perm=[0, 1, 3, 2])]), m])])
    b.op("MatMul", [probs, q], name="out")
    b.output("out", FLOAT, None)
    yield "bad-mask", b.model()
    # a scale factor that is not a constant
    b = GraphBuilder("dynamic_scale")
    q = b.input("q", FLOAT, [1, 2, "seq", 4])
    t = b.input("t", FLOAT, [])
    s = b.op("Mul", [b.op("MatMul", [q, b.op("Transpose", [q], perm=[0, 1, 3, 2])]), t])
    b.op("MatMul", [b.op("Softmax", [s], axis=-1), q], name="out")
    b.output("out", FLOAT, None)
    yield "dynamic-scale", b.model()
    # a fused op missing its inputs and with nonsense attributes
    b = GraphBuilder("broken_fused")
    x = b.input("x", FLOAT, [1, "seq", 8])
    b.op("GroupQueryAttention", [x, "", ""], n_out=3, name="gqa", domain="com.microsoft",
         num_heads=0, kv_num_heads=-3, local_window_size=-7)
    b.output("gqa_out0", FLOAT, None)
    yield "broken-fused", b.model(extra_opsets=[("com.microsoft", 1)])
    b = GraphBuilder("broken_sparse")
    x = b.input("x", FLOAT, [1, "seq", 8])
    b.op("SparseAttention", [x, x, x, "", "", "", ""], n_out=3, name="sp", domain="com.microsoft",
         num_heads=2, kv_num_heads=2, sparse_block_size=4)
    b.output("sp_out0", FLOAT, None)
    yield "broken-sparse", b.model(extra_opsets=[("com.microsoft", 1)])


@pytest.mark.parametrize(("name", "model"), list(_odd_graphs()), ids=lambda v: v if isinstance(v, str) else "")
def test_odd_graphs_never_raise(name, model):
    ctx = prepare(model)
    layers = attention_layers(ctx)  # must not raise
    for la in layers:
        assert la.mask.family in ("unknown", "bidirectional", "causal", "sliding_window", "block_sparse")
    if name == "dynamic-scale":
        assert layers[0].scale is None and "non-constant" in layers[0].scale_note
    if name == "bad-mask":
        assert layers[0].mask.family == "unknown"


def test_attention_inside_a_subgraph_is_found():
    # the same attention chain in an If branch; its mask reads the outer sequence length
    inner = GraphBuilder("then")
    q = "q"
    scores = inner.op("MatMul", [q, inner.op("Transpose", [q], perm=[0, 1, 3, 2])])
    inner.op("MatMul", [inner.op("Softmax", [scores], axis=-1), q], name="then_out")
    then_graph = helper.make_graph(inner.nodes, "then", [], [helper.make_tensor_value_info("then_out", FLOAT, None)],
                                   inner.inits)
    b = GraphBuilder("outer")
    b.input("q", FLOAT, [1, 2, "seq", 4])
    cond = b.input("c", TensorProto.BOOL, [])
    b.op("If", [cond], name="branch", then_branch=then_graph, else_branch=then_graph)
    b.output("branch", FLOAT, None)
    ctx = prepare(b.model())
    layers = attention_layers(ctx)
    assert len(layers) == 2 and all(la.mask.family == "bidirectional" for la in layers)


def test_mask_slice_with_external_data_is_unknown(tmp_path):
    # a mask that reads an initializer stored as external data: never opened → unknown
    model = ab.attention_stack([ab.window(3)])
    import onnx

    init = next(t for t in model.graph.initializer if t.data_type == TensorProto.INT64
                and list(np.frombuffer(t.raw_data, np.int64)) == [3])
    init.data_location = TensorProto.EXTERNAL
    init.ClearField("raw_data")
    entry = init.external_data.add()
    entry.key, entry.value = "location", "missing.bin"
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    ctx = prepare(str(path))
    la = attention_layers(ctx)[0]
    assert la.mask.family == "unknown" and "external" in la.mask.note


def test_kv_cache_layer_is_read_with_an_empty_cache():
    # keys = concat(past, new): k_len = past + seq; the mask compares absolute positions
    # (i + past) with key positions j: window 6 (j > i + past - 6, j <= i + past).
    # With the stated default past = 0 it is self-attention with an HF window of 6.
    b = GraphBuilder("kv_cache")
    q = b.input("q", FLOAT, [1, 2, "seq", 4])
    pk = b.input("past_key", FLOAT, [1, 2, "past_sequence_length", 4])
    k = b.op("Concat", [pk, q], axis=2)
    n = ab.squeeze(b, b.op("Shape", [q], start=2, end=3), [0])
    past = ab.squeeze(b, b.op("Shape", [pk], start=2, end=3), [0])
    i = ab.unsqueeze(b, b.op("Add", [b.op("Range", [ab.i64(b, 0), n, ab.i64(b, 1)]), past]), [1])
    j = ab.unsqueeze(b, b.op("Range", [ab.i64(b, 0), b.op("Add", [n, past]), ab.i64(b, 1)]), [0])
    vis = b.op("And", [b.op("LessOrEqual", [j, i]), b.op("Greater", [j, b.op("Sub", [i, ab.i64(b, 6)])])])
    scores = b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 1, 3, 2])])
    probs = b.op("Softmax", [b.op("Where", [vis, scores, b.const(np.array(-1e9, np.float32))])], axis=-1)
    b.op("MatMul", [probs, k], name="out")
    b.output("out", FLOAT, None)
    _, la = only_layer(b.model())
    assert str(la.k_len) == "past_sequence_length + seq" and la.self_attention
    assert (la.mask.family, la.mask.params) == ("sliding_window", {"window": 6})


def test_mask_slice_that_would_allocate_too_much_is_refused():
    # a mask built from Range(0, 10^12): refused before evaluation, reported as unknown
    def huge(b, i, j):
        r = b.op("Range", [ab.i64(b, 0), ab.i64(b, 10**12), ab.i64(b, 1)])
        total = b.op("ReduceMax", [r], keepdims=0)
        return b.op("LessOrEqual", [j, b.op("Add", [i, total])])

    _, la = only_layer(ab.attention_stack([huge]))
    assert la.mask.family == "unknown" and "Range" in la.mask.note
