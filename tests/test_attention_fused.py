"""Fused attention ops: the mask from attributes and inputs.

Oracles, independent of the code under test:
- ONNX ``Attention``: onnx's reference implementation (``ReferenceEvaluator``),
  perturbing key/value row j and watching which output rows move; and, for
  onnx's own node tests, the op's *function body* (the ``_expanded`` models),
  which this analyzer reads as an unfused graph by evaluating its mask.
- com.microsoft ops that onnxruntime runs on CPU (GroupQueryAttention,
  MultiHeadAttention, Attention): onnxruntime, perturbed the same way.
- SparseAttention/LongformerAttention (no CPU kernel for these graphs): the
  layout derived by hand from the op documentation, in the comment.
"""

from __future__ import annotations

import warnings

import attention_builders as ab
import numpy as np
import onnxruntime as ort
import pytest
from onnx.reference import ReferenceEvaluator

from builders import FLOAT, INT64
from model_analyze.attention import attention_layers
from model_analyze.runner import prepare

N = 10


def only_layer(model):
    layers = attention_layers(prepare(model))
    assert len(layers) == 1
    return layers[0]


def keys_matrix(mask, n=N):
    out = np.zeros((n, n), bool)
    for i in range(n):
        for a, b in mask.keys.at(i, n):
            out[i, a:b + 1] = True
    return out


def perturbed(run, feeds, kv_names, seq_axis, n=N):
    """[n, n]: output row i moves when key/value row j moves."""
    base = run(feeds)
    out = np.zeros((n, n), bool)
    for j in range(n):
        moved = dict(feeds)
        for name in kv_names:
            arr = feeds[name].copy()
            idx = [slice(None)] * arr.ndim
            idx[seq_axis] = j
            arr[tuple(idx)] += 1.0
            moved[name] = arr
        diff = np.abs(run(moved) - base)
        out[:, j] = np.moveaxis(diff, seq_axis, 0).reshape(n, -1).max(axis=1) > 1e-6
    return out


def reference_visibility(model, heads=2, kv_heads=2, d=8, rank=4):
    ev = ReferenceEvaluator(model)
    rng = np.random.default_rng(0)

    def shape(h):
        return (1, h, N, d) if rank == 4 else (1, N, h * d)

    feeds = {"Q": rng.standard_normal(shape(heads)).astype(np.float32),
             "K": rng.standard_normal(shape(kv_heads)).astype(np.float32),
             "V": rng.standard_normal(shape(kv_heads)).astype(np.float32)}
    return perturbed(lambda f: ev.run(None, f)[0], feeds, ("K", "V"), 2 if rank == 4 else 1)


ONNX_CASES = [
    # opset 23, is_causal=1: j <= i
    pytest.param({"opset": 23, "is_causal": 1}, "causal", {}, id="causal"),
    # opset 24, nothing: every key
    pytest.param({"opset": 24}, "bidirectional", {}, id="bidirectional"),
    # opset 25, left_window_size 3: i-3 <= j <= i+∞ … right 0 → i-3..i, 4 keys
    pytest.param({"opset": 25, "left": 3, "right": 0}, "sliding_window", {"window": 4}, id="left3"),
    # opset 25, left 2 and right 1: i-2 <= j <= i+1
    pytest.param({"opset": 25, "left": 2, "right": 1}, "sliding_window", {"window": 3, "right": 1}, id="left2right1"),
    # opset 25, is_causal with right 2: the causal bound still excludes later keys
    pytest.param({"opset": 25, "is_causal": 1, "right": 2}, "causal", {}, id="causal-caps-right"),
    # is_causal ∧ block-diagonal attn_mask built in the graph (i//4 == j//4): causal chunks of 4
    pytest.param({"opset": 23, "is_causal": 1, "attn_mask": ab.chunked(4, False)}, "chunked",
                 {"chunk": 4, "causal": True}, id="causal-and-graph-mask"),
]


@pytest.mark.parametrize(("kwargs", "family", "params"), ONNX_CASES)
def test_onnx_attention_mask(kwargs, family, params):
    model = ab.onnx_attention(**kwargs)
    la = only_layer(model)
    assert la.kind == "Attention" and la.fused_node is not None
    assert (la.mask.family, {k: v for k, v in la.mask.params.items() if k != "probed"}) == (family, params)
    assert np.array_equal(keys_matrix(la.mask), reference_visibility(model))


def test_onnx_attention_heads_scale_softcap_3d():
    # 3-D inputs [1, n, heads·d] with q_num_heads 4, kv_num_heads 2, d 8 → width 32
    model = ab.onnx_attention(23, heads=4, kv_heads=2, rank=3, scale=0.1, softcap=5.0)
    la = only_layer(model)
    assert (la.heads, la.kv_heads, la.head_dim, la.model_dim) == (4, 2, 8, 32)
    assert (la.q_seq_axis, la.k_seq_axis, la.v_seq_axis) == (1, 1, 1)
    assert la.scale == pytest.approx(0.1) and la.softcap == pytest.approx(5.0)
    la = only_layer(ab.onnx_attention(23))
    assert la.scale == pytest.approx(8 ** -0.5) and la.scale_note.startswith("default")


def test_onnx_attention_input_mask_is_input_driven():
    la = only_layer(ab.onnx_attention(23, is_causal=1, attn_mask="input"))
    assert la.mask.family == "causal" and la.mask.source == "input-driven"
    assert la.mask.input_driven == ("attn_mask",)


def _ort_visibility(model, feeds, kv_names, seq_axis=1):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return perturbed(lambda f: sess.run(None, f)[0], feeds, kv_names, seq_axis)


def _gqa_feeds(heads=4, kv=2, d=8):
    rng = np.random.default_rng(0)
    return {"query": rng.standard_normal((1, N, heads * d)).astype(np.float32),
            "key": rng.standard_normal((1, N, kv * d)).astype(np.float32),
            "value": rng.standard_normal((1, N, kv * d)).astype(np.float32),
            "seqlens_k": np.array([N - 1], np.int32), "total_sequence_length": np.array(N, np.int32)}


@pytest.mark.parametrize(("window", "family", "params"), [
    # local_window_size 3 → keys i-2..i: 3 keys including the current one
    # (onnxruntime since PR #25927; measured below with the installed runtime)
    (3, "sliding_window", {"window": 3, "local_window_size": 3}),
    (-1, "causal", {}),
])
def test_group_query_attention(window, family, params):
    model = ab.gqa(local_window_size=window)
    la = only_layer(model)
    assert la.kind == "ms.GroupQueryAttention"
    assert (la.heads, la.kv_heads, la.head_dim) == (4, 2, 8)
    assert (la.mask.family, la.mask.params) == (family, params)
    assert np.array_equal(keys_matrix(la.mask), _ort_visibility(model, _gqa_feeds(), ("key", "value")))
    if window > 0:
        assert "PR #25927" in la.mask.note


def test_group_query_attention_rotary_and_softcap():
    la = only_layer(ab.gqa(do_rotary=1, softcap=30.0, scale=0.2))
    assert la.rope == "do_rotary" and la.softcap == pytest.approx(30.0) and la.scale == pytest.approx(0.2)


def test_multi_head_attention_unidirectional():
    model = ab.ms_op("MultiHeadAttention", [("query", FLOAT, [1, "seq", 16]), ("key", FLOAT, [1, "seq", 16]),
                                            ("value", FLOAT, [1, "seq", 16])], num_heads=2, unidirectional=1)
    la = only_layer(model)
    assert (la.heads, la.head_dim, la.mask.family) == (2, 8, "causal")
    rng = np.random.default_rng(0)
    feeds = {k: rng.standard_normal((1, N, 16)).astype(np.float32) for k in ("query", "key", "value")}
    assert np.array_equal(keys_matrix(la.mask), _ort_visibility(model, feeds, ("key", "value")))


def test_ms_attention_with_padding_input():
    # merged QKV weights [16, 48] (small, so the softmax does not saturate and hide the
    # oracle's perturbations), bidirectional, key padding from the mask_index input
    rng = np.random.default_rng(0)
    model = ab.ms_op("Attention", [("input", FLOAT, [1, "seq", 16]), "w", "b",
                                   ("mask_index", ab.onnx.TensorProto.INT32, [1, "seq"])],
                     consts={1: (0.1 * rng.standard_normal((16, 48))).astype(np.float32),
                             2: np.zeros(48, np.float32)}, num_heads=2)
    la = only_layer(model)
    assert (la.heads, la.head_dim, la.model_dim) == (2, 8, 16)
    assert la.mask.family == "bidirectional" and la.mask.input_driven == ("mask_index",)
    feeds = {"input": rng.standard_normal((1, N, 16)).astype(np.float32), "mask_index": np.ones((1, N), np.int32)}
    assert np.array_equal(keys_matrix(la.mask), _ort_visibility(model, feeds, ("input",)))


def test_sparse_attention_layout_union():
    # blocks of 16; layout A: block 1 sees {1}, block 2 sees {0, 2}; layout B: block 1
    # sees {0, 1}, block 2 sees {2}. Heads use them cyclically, so the layer's keys
    # are the union: block 0 {0}, block 1 {0, 1}, block 2 {0, 2}; always causal.
    model = ab.sparse_attention(16, [[[0], [1], [0, 2]], [[0], [0, 1], [2]]])
    la = only_layer(model)
    assert la.mask.family == "block_sparse" and la.mask.params["layout"] == [[0], [0, 1], [0, 2]]
    assert la.mask.keys.at(40, 48) == [(0, 15), (32, 40)]   # query 40 in block 2, causal
    assert la.mask.keys.at(20, 48) == [(0, 20)]              # block 1: blocks 0, 1 up to itself


def test_longformer_window():
    # window 2 on each side: keys i-2..i+2 (5 keys); global flags come from an input
    model = ab.ms_op("LongformerAttention", [
        ("input", FLOAT, [1, "seq", 16]), ("weight", FLOAT, [16, 48]), ("bias", FLOAT, [48]),
        ("mask", FLOAT, [1, "seq"]), ("global_weight", FLOAT, [16, 48]), ("global_bias", FLOAT, [48]),
        ("global", ab.onnx.TensorProto.INT32, [1, "seq"])], num_heads=2, window=2)
    la = only_layer(model)
    assert (la.mask.family, la.mask.params["window"], la.mask.params["right"]) == ("sliding_window", 3, 2)
    assert la.mask.source == "input-driven" and "global" in la.mask.input_driven
    assert la.mask.span(100) == 5


def test_longformer_constant_globals():
    # same op with token 0 flagged global by a constant: global+local
    flags = np.zeros((1, 12), np.int32)
    flags[0, 0] = 1
    model = ab.ms_op("LongformerAttention", [
        ("input", FLOAT, [1, 12, 16]), ("weight", FLOAT, [16, 48]), ("bias", FLOAT, [48]),
        ("mask", FLOAT, [1, 12]), ("global_weight", FLOAT, [16, 48]), ("global_bias", FLOAT, [48]), "g"],
        consts={6: flags}, num_heads=2, window=2)
    la = only_layer(model)
    assert la.mask.family == "global_local" and la.mask.params["globals"] == [0]
    assert la.mask.keys.at(8, 12) == [(0, 0), (6, 10)]


def test_packed_attention_is_bidirectional_per_sequence():
    model = ab.ms_op("PackedAttention", [
        ("input", FLOAT, ["tokens", 16]), ("weights", FLOAT, [16, 48]), ("bias", FLOAT, [48]),
        ("token_offset", ab.onnx.TensorProto.INT32, [1, "seq"]),
        ("cumulative_sequence_length", ab.onnx.TensorProto.INT32, [2])], num_heads=2)
    la = only_layer(model)
    assert la.mask.family == "bidirectional" and "cumulative_sequence_length" in la.mask.input_driven
    assert (la.heads, la.q_seq_axis) == (2, 0)


# -- onnx's node tests: the fused op against its own function body ---------------------
@pytest.fixture(scope="module")
def attention_node_tests():
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = {c.name: c for c in collect_testcases(None) if c.name.startswith("test_attention")}
    return cases


def test_fused_reading_agrees_with_the_function_body(attention_node_tests):
    compared = 0
    for name, case in attention_node_tests.items():
        expanded = attention_node_tests.get(name + "_expanded")
        if expanded is None:
            continue
        fused = attention_layers(prepare(case.model))
        body = attention_layers(prepare(expanded.model))
        assert len(fused) == len(body) == 1, name
        f, b = fused[0], body[0]
        assert (f.heads, f.kv_heads, f.head_dim) == (b.heads, b.kv_heads, b.head_dim), name
        assert f.scale == pytest.approx(b.scale, rel=5e-3), name  # bf16/fp16 bodies round the scale
        assert (f.softcap is None) == (b.softcap is None), name
        if not f.self_attention or f.mask.family == "unknown" or b.mask.family == "unknown":
            continue
        n = int(f.q_len)
        assert np.array_equal(keys_matrix(f.mask, n), keys_matrix(b.mask, n)), name
        compared += 1
    assert compared >= 5


def test_int64_padding_input_in_unfused_body_is_full_length():
    # an integer "seqlens"-like input is fed its full length, not ones
    from builders import GraphBuilder

    b = GraphBuilder("seqlen_mask")
    q = b.input("q", FLOAT, [1, 2, "seq", 4])
    lens = b.input("nonpad_kv_seqlen", INT64, [1])
    n = ab.squeeze(b, b.op("Shape", [q], start=2, end=3), [0])
    _, j = ab.positions(b, n)
    vis = b.op("Less", [j, lens])                         # key j < length
    scores = b.op("MatMul", [q, b.op("Transpose", [q], perm=[0, 1, 3, 2])])
    probs = b.op("Softmax", [b.op("Where", [vis, scores, b.const(np.array(-1e9, np.float32))])], axis=-1)
    b.op("MatMul", [probs, q], name="out")
    b.output("out", FLOAT, None)
    la = only_layer(b.model())
    assert la.mask.family == "bidirectional" and la.mask.input_driven == ("nonpad_kv_seqlen",)


def test_onnx_rotary_embedding_before_attention():
    la = only_layer(ab.onnx_attention(23, is_causal=1, rope=True))
    assert la.rope == "RotaryEmbedding" and la.mask.family == "causal"
