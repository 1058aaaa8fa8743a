"""Per-op cost rules on small hand-built graphs.

Every expected number is derived by hand in the comment next to it (the
formulas of METRICS.md "Compute", or the per-element constants METRICS.md asks
the catalog to state, e.g. Softmax = 5: max, sub, exp, sum, div).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from builders import FLOAT, INT64, GraphBuilder
from model_analyze import dims as D
from model_analyze.cost import OpCost, cost_model
from model_analyze.cost.poly import Poly, atom_values, from_dim
from model_analyze.ops.registry import MS, OpRule
from model_analyze.plugins import hotspots
from model_analyze.runner import AnalyzeOptions, prepare


def analyze(model: onnx.ModelProto, **dims: int):
    ctx = prepare(model, AnalyzeOptions(dims=dims))
    return ctx, cost_model(ctx)


def node(m, name: str):
    return next(nc for nc in m.graph.nodes if nc.node.name == name)


def single(op: str, inputs: list[tuple[str, int, list]], out_shape=None, domain: str = "", opset: int = 17,
           consts: dict | None = None, **attrs):
    """One node ``op`` over graph inputs (name, dtype, shape) and constants."""
    b = GraphBuilder("t", opset=opset)
    names = []
    for name, dtype, shape in inputs:
        if consts and name in consts:
            names.append(b.const(consts[name], name))
        elif name == "":
            names.append("")
        else:
            names.append(b.input(name, dtype, shape))
    b.op(op, names, name="n", domain=domain, **attrs)
    b.output("n", FLOAT, out_shape)
    extra = [(domain, 1)] if domain else []
    return b.model(extra)


# -- convolutions ------------------------------------------------------------------
def test_conv_groups_dilation():
    # x [1, 8, 10, 10], W [16, 8/4, 3, 3], group 4, dilation 2, pads 2 → out [1, 16, 10, 10]
    # MACs = N·C_out·Π(out)·(C_in/g)·Π(k) = 1·16·100·2·9 = 28,800; FLOPs = 2·MACs
    b = GraphBuilder("conv")
    x = b.input("x", FLOAT, [1, 8, 10, 10])
    b.op("Conv", [x, b.weight([16, 2, 3, 3])], name="c", group=4, dilations=[2, 2], pads=[2, 2, 2, 2],
         kernel_shape=[3, 3])
    b.output("c", FLOAT, None)
    _, m = analyze(b.model())
    assert node(m, "c").macs == 28_800 and node(m, "c").flops == 57_600


def test_conv_stride_and_batch_symbolic():
    # x [batch, 3, 9, 9], W [4, 3, 3, 3] stride 2 no pad → out 4×4: MACs = batch·4·16·27 = 1,728·batch
    b = GraphBuilder("conv")
    x = b.input("x", FLOAT, ["batch", 3, 9, 9])
    b.op("Conv", [x, b.weight([4, 3, 3, 3])], name="c", strides=[2, 2], kernel_shape=[3, 3])
    b.output("c", FLOAT, None)
    _, m = analyze(b.model(), batch=2)
    assert node(m, "c").macs.fmt() == "1,728·batch"
    assert m.value(m.graph.macs) == 3456


def test_conv_transpose():
    # x [1, 4, 5, 5], W [C_in=4, C_out/g=3, 3, 3]: every input element meets 3·9 weights
    # MACs = 1·4·25·27 = 2,700
    b = GraphBuilder("convT")
    x = b.input("x", FLOAT, [1, 4, 5, 5])
    b.op("ConvTranspose", [x, b.weight([4, 3, 3, 3])], name="c", strides=[2, 2], kernel_shape=[3, 3])
    b.output("c", FLOAT, None)
    _, m = analyze(b.model())
    assert node(m, "c").macs == 2_700


# -- contractions -------------------------------------------------------------------------
def test_matmul_broadcast_batch():
    # [2, 1, 5, 6] × [3, 6, 7] → [2, 3, 5, 7]: MACs = 2·3·5·7·6 = 1,260
    model = single("MatMul", [("a", FLOAT, [2, 1, 5, 6]), ("b", FLOAT, [3, 6, 7])])
    _, m = analyze(model)
    assert node(m, "n").macs == 1_260


def test_matmul_vector():
    # [6] × [6, 7] → [7]: MACs = 7·6 = 42
    _, m = analyze(single("MatMul", [("a", FLOAT, [6]), ("b", FLOAT, [6, 7])]))
    assert node(m, "n").macs == 42


def test_gemm_trans_a():
    # A [6, 5] with transA → M = 5, K = 6; B [6, 7]: MACs = 5·7·6 = 210
    _, m = analyze(single("Gemm", [("a", FLOAT, [6, 5]), ("b", FLOAT, [6, 7])], transA=1))
    assert node(m, "n").macs == 210


@pytest.mark.parametrize("eq, shapes, macs, flops", [
    ("bij,bjk->bik", [[2, 3, 4], [2, 4, 5]], 120, 240),           # b·i·j·k = 2·3·4·5
    ("...ij,...jk->...ik", [[2, 3, 4], [2, 4, 5]], 120, 240),     # same with an ellipsis
    ("ij,jk,kl->il", [[2, 3], [3, 4], [4, 5]], 64, 128),          # (i·j·k = 24) + (i·k·l = 40)
    ("ij->i", [[3, 4]], 0, 12),                                   # a row sum: 12 adds
    ("ij->ji", [[3, 4]], 0, 0),                                   # a transpose: no arithmetic
])
def test_einsum(eq, shapes, macs, flops):
    inputs = [(f"x{k}", FLOAT, s) for k, s in enumerate(shapes)]
    _, m = analyze(single("Einsum", inputs, equation=eq))
    assert (node(m, "n").macs, node(m, "n").flops) == (macs, flops)


# -- element-wise families dispatch on the registry ------------------------------------------
def test_softmax_and_reduce():
    # Softmax [2, 5]: 5 FLOPs per element (METRICS constant) = 50; ReduceMean over [4, 8]:
    # one add per input element = 32
    b = GraphBuilder("ew")
    x = b.input("x", FLOAT, [2, 5])
    y = b.input("y", FLOAT, [4, 8])
    b.op("Softmax", [x], name="s", axis=-1)
    b.op("ReduceMean", [y], name="r", axes=[1], keepdims=0)
    b.output("s", FLOAT, None)
    b.output("r", FLOAT, None)
    _, m = analyze(b.model())
    assert node(m, "s").flops == 50 and node(m, "r").flops == 32


def test_variadic_and_where():
    # Sum of 4 tensors [3, 4]: 3 adds per element = 36; Where [3, 4]: one select each = 12
    b = GraphBuilder("v")
    xs = [b.input(f"x{k}", FLOAT, [3, 4]) for k in range(4)]
    c = b.input("c", TensorProto.BOOL, [3, 4])
    b.op("Sum", xs, name="sum")
    b.op("Where", [c, xs[0], xs[1]], name="where")
    b.output("sum", FLOAT, None)
    b.output("where", FLOAT, None)
    _, m = analyze(b.model())
    assert node(m, "sum").flops == 36 and node(m, "where").flops == 12


def test_registry_constant_is_what_counts():
    # Override Gelu's per-element constant in the registry: 11 FLOPs × 6 elements = 66.
    ctx = prepare(single("Gelu", [("x", FLOAT, [2, 3])], opset=20))
    ctx.registry.add(OpRule("Gelu", "", category="elementwise", flops_per_element=11))
    assert node(cost_model(ctx), "n").flops == 66


def test_plugin_op_by_category():
    # A plugin op with only category/flops_per_element (as samples/example_plugin registers
    # Swish2): 5 FLOPs × 2·3 elements = 30; without the rule it is unknown (zero, listed).
    model = single("Swish2", [("x", FLOAT, [2, 3])], domain="example.com")
    ctx = prepare(model)
    m = cost_model(ctx)
    assert node(m, "n").status == "unknown" and m.graph.unknown_ops == {"example.com::Swish2": 1}
    section = hotspots.run(ctx)
    assert any(f.code == "HS001" and "Swish2" in f.message for f in section.findings)
    ctx = prepare(model)
    ctx.registry.add(OpRule("Swish2", "example.com", category="elementwise", flops_per_element=5))
    assert node(cost_model(ctx), "n").flops == 30


def test_plugin_cost_rule_wins():
    # A plugin's own cost function overrides the family rule.
    ctx = prepare(single("Relu", [("x", FLOAT, [2, 3])]))
    ctx.registry.add(OpRule("Relu", "", cost=lambda c: OpCost(macs=7)))
    nc = node(cost_model(ctx), "n")
    assert (nc.macs, nc.flops) == (7, 14)


# -- pooling / resize ---------------------------------------------------------------------------
def test_pools():
    # MaxPool 3×3/2 on [1, 2, 7, 7] → [1, 2, 3, 3]: 18 outputs × 9 = 162;
    # GlobalAveragePool reads 98 elements: 98
    b = GraphBuilder("pool")
    x = b.input("x", FLOAT, [1, 2, 7, 7])
    b.op("MaxPool", [x], name="mp", kernel_shape=[3, 3], strides=[2, 2])
    b.op("GlobalAveragePool", [x], name="gap")
    b.output("mp", FLOAT, None)
    b.output("gap", FLOAT, None)
    _, m = analyze(b.model())
    assert node(m, "mp").flops == 162 and node(m, "gap").flops == 98


@pytest.mark.parametrize("mode, flops", [("linear", 384), ("nearest", 0), ("cubic", 896)])
def test_resize(mode, flops):
    # [1, 1, 4, 4] → [1, 1, 8, 8]: 64 outputs × 2 resized axes × (lerp 3 | copy 0 | 4-tap 7)
    b = GraphBuilder("resize")
    x = b.input("x", FLOAT, [1, 1, 4, 4])
    scales = b.const(np.array([1, 1, 2, 2], np.float32))
    b.op("Resize", [x, "", scales], name="r", mode=mode)
    b.output("r", FLOAT, None)
    _, m = analyze(b.model())
    assert node(m, "r").flops == flops


# -- recurrent ------------------------------------------------------------------------------------
def test_lstm_macs():
    # X [seq 5, batch 2, I 3], hidden 4, one direction: 4 gates × H × (I + H) per step
    # MACs = 5·2·4·4·(3 + 4) = 1,120
    b = GraphBuilder("lstm")
    x = b.input("x", FLOAT, [5, 2, 3])
    b.op("LSTM", [x, b.weight([1, 16, 3]), b.weight([1, 16, 4])], n_out=1, name="l", hidden_size=4)
    b.output("l", FLOAT, None)
    _, m = analyze(b.model())
    nc = node(m, "l")
    assert nc.macs == 1_120
    assert m.value(nc.flops) > 2 * 1_120  # gate activations and the cell update on top


# -- control flow ---------------------------------------------------------------------------------
def _matmul_body(trip_inputs: bool = True) -> onnx.GraphProto:
    """Loop body: y = x[2,3] @ w[3,4] (24 MACs per iteration)."""
    w = helper.make_tensor("w", FLOAT, [3, 4], np.zeros(12, np.float32).tolist())
    nodes = [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="body_mm")]
    return helper.make_graph(
        nodes, "body",
        [helper.make_tensor_value_info("i", INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("y", FLOAT, [2, 4])], [w])


def _loop_model(trips: str) -> onnx.ModelProto:
    b = GraphBuilder("loop")
    b.input("x", FLOAT, [2, 3])
    seq = b.input("tokens", FLOAT, ["seq"])
    if trips == "const":
        m = b.const(np.array(10, np.int64))
    elif trips == "seq":
        m = b.op("Squeeze", [b.op("Shape", [seq])], name="trip")
    else:
        m = ""
    cond = b.const(np.array(True))
    b.op("Loop", [m, cond], n_out=1, name="loop", body=_matmul_body())
    b.output("loop", FLOAT, None)
    return b.model()


def test_loop_constant_trip_count():
    # 10 iterations × 24 MACs = 240
    _, m = analyze(_loop_model("const"))
    assert node(m, "loop").macs == 240


def test_loop_symbolic_trip_count():
    # M = seq (from Shape): 24·seq MACs
    _, m = analyze(_loop_model("seq"), seq=7)
    assert node(m, "loop").macs.fmt() == "24·seq" and m.value(m.graph.macs) == 168


def test_loop_unknown_trip_count_is_a_stated_lower_bound():
    ctx, m = analyze(_loop_model("none"))
    assert node(m, "loop").macs == 24
    section = hotspots.run(ctx)
    assert any(f.code == "HS004" and "lower bound" in f.message for f in section.findings)


def _if_model(else_unknown: bool, cond: bool | None = None) -> onnx.ModelProto:
    """then: MatMul [2,3]x[3,4] = 24 MACs; else: MatMul [2,3]x[3,2] = 12 MACs, or an unknown op."""
    b = GraphBuilder("if")
    b.input("x", FLOAT, [2, 3])
    if cond is None:
        c = b.input("c", TensorProto.BOOL, [])
    else:
        c = b.const(np.array(cond), "c")
    w = helper.make_tensor("w", FLOAT, [3, 4], np.zeros(12, np.float32).tolist())
    v = helper.make_tensor("v", FLOAT, [3, 2], np.zeros(6, np.float32).tolist())
    then = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", FLOAT, [2, 4])], [w])
    other_node = helper.make_node("Mystery", ["x"], ["e"], domain="x.y") if else_unknown else \
        helper.make_node("MatMul", ["x", "v"], ["e"])
    other = helper.make_graph([other_node], "else", [], [helper.make_tensor_value_info("e", FLOAT, [2, 3])],
                              [] if else_unknown else [v])
    b.op("If", [c], name="if", then_branch=then, else_branch=other)
    b.output("if", FLOAT, None)
    return b.model([("x.y", 1)])


def test_if_counts_the_costlier_branch_and_says_so():
    # both branches costed, condition an input: max(24, 12) = 24, an upper bound (HS003)
    ctx, m = analyze(_if_model(False))
    assert node(m, "if").macs == 24 and m.graph.total_bound == "upper"
    section = hotspots.run(ctx)
    assert any(f.code == "HS003" and "then_branch" in f.message for f in section.findings)
    assert next(x for x in section.metrics if x.key == "macs").bound == "upper"


def test_if_with_an_uncosted_branch_counts_the_cheaper_as_a_lower_bound():
    # else has an op with no rule (0 counted, its true cost unknown): max(24, 0) = 24 is no upper
    # bound and could exceed what runs when else runs (≥ 0). The cheaper count, 0, never exceeds
    # what runs: a lower bound, marked.
    ctx, m = analyze(_if_model(True))
    assert node(m, "if").macs == 0 and m.graph.total_bound == "lower"
    section = hotspots.run(ctx)
    assert any(f.code == "HS004" and "lower bound" in f.message for f in section.findings)
    assert any(f.code == "HS001" and "x.y::Mystery" in f.message for f in section.findings)
    assert next(x for x in section.metrics if x.key == "macs").bound == "lower"


@pytest.mark.parametrize(("cond", "macs"), [(True, 24), (False, 12)])
def test_if_with_a_known_condition_counts_the_branch_that_runs(cond, macs):
    ctx, m = analyze(_if_model(False, cond))
    assert node(m, "if").macs == macs and m.graph.total_bound is None
    assert not any(f.code in ("HS003", "HS004") for f in hotspots.run(ctx).findings)


def test_scan_body_times_length():
    # Scan over x [seq, 3] rows; body: row [3] @ w [3, 4] = 12 MACs → 12·seq
    w = helper.make_tensor("w", FLOAT, [3, 4], np.zeros(12, np.float32).tolist())
    body = helper.make_graph(
        [helper.make_node("Identity", ["s_in"], ["s_out"]), helper.make_node("MatMul", ["row", "w"], ["y"])],
        "body", [helper.make_tensor_value_info("s_in", FLOAT, [1]), helper.make_tensor_value_info("row", FLOAT, [3])],
        [helper.make_tensor_value_info("s_out", FLOAT, [1]), helper.make_tensor_value_info("y", FLOAT, [4])], [w])
    b = GraphBuilder("scan")
    s0 = b.input("s0", FLOAT, [1])
    x = b.input("x", FLOAT, ["seq", 3])
    b.op("Scan", [s0, x], n_out=2, name="scan", body=body, num_scan_inputs=1)
    b.output("scan_out1", FLOAT, None)
    _, m = analyze(b.model(), seq=5)
    assert node(m, "scan").macs.fmt() == "12·seq" and m.value(m.graph.macs) == 60


# -- never crash, never silent ------------------------------------------------------------------
def test_unknown_shape_is_partial_with_reason():
    b = GraphBuilder("odd")
    b.inputs.append(helper.make_tensor_value_info("x", FLOAT, None))  # rank unknown
    b.op("MatMul", ["x", b.weight([3, 4])], name="mm")
    b.output("mm", FLOAT, None)
    ctx, m = analyze(b.model())
    nc = node(m, "mm")
    assert nc.status == "partial" and "unknown" in nc.reason
    section = hotspots.run(ctx)
    assert any(f.code == "HS002" for f in section.findings)


# -- fused attention --------------------------------------------------------------------------------
def _gqa(window: int = -1):
    # query [1, seq, 4·8], key/value [1, seq, 2·8]: H 4, H_kv 2, d 8, no past
    b = GraphBuilder("gqa", opset=17)
    q = b.input("q", FLOAT, [1, "seq", 32])
    k = b.input("k", FLOAT, [1, "seq", 16])
    v = b.input("v", FLOAT, [1, "seq", 16])
    b.op("GroupQueryAttention", [q, k, v], n_out=3, name="gqa", domain=MS, num_heads=4, kv_num_heads=2,
         local_window_size=window)
    b.output("gqa_out0", FLOAT, None)
    return b.model([(MS, 1)])


def test_group_query_attention_dense_and_causal():
    # dense MACs = B·H·n²·(d_qk + d_v) = 1·4·seq²·16 = 64·seq²
    # causal effective MACs = 64·seq(seq+1)/2 → at seq 4096: 64·4096·4097/2
    _, m = analyze(_gqa(), seq=4096)
    assert node(m, "gqa").macs.fmt() == "64·seq²"
    (a,) = m.attention
    assert a.family == "causal"
    assert a.effective_value == 64 * 4096 * 4097 // 2
    assert a.effective_value / a.dense_value == pytest.approx(0.5, abs=2e-4)  # (n+1)/2n


def test_group_query_attention_local_window():
    # local_window_size 7 → 7 keys per query including itself (onnxruntime since PR #25927;
    # METRICS.md's "w + 1" is the older kernel): pairs = 7·8/2 + (n - 7)·7 = 28 + 7·93 at n 100
    _, m = analyze(_gqa(window=7), seq=100)
    (a,) = m.attention
    assert a.effective_value == 64 * (28 + 7 * 93)


def test_ms_attention_counts_the_projection():
    # input [2, 5, 16] × W [16, 48]: projection 2·5·16·48 = 7,680 MACs;
    # 4 heads, d = 16/4 = 4: attention 2·4·25·(4 + 4) = 1,600 MACs → 9,280
    b = GraphBuilder("att")
    x = b.input("x", FLOAT, [2, 5, 16])
    b.op("Attention", [x, b.weight([16, 48]), b.const(np.zeros(48, np.float32))], name="att", domain=MS,
         num_heads=4)
    b.output("att", FLOAT, None)
    _, m = analyze(b.model([(MS, 1)]))
    assert node(m, "att").macs == 9_280


def test_onnx_attention_is_causal():
    # Q/K/V [1, 2, n, 8] (4-D: B, H, n, d): dense 1·2·n²·16 = 32·n²
    b = GraphBuilder("att", opset=23)
    q = b.input("q", FLOAT, [1, 2, "seq", 8])
    k = b.input("k", FLOAT, [1, 2, "seq", 8])
    v = b.input("v", FLOAT, [1, 2, "seq", 8])
    b.op("Attention", [q, k, v], name="att", is_causal=1)
    b.output("att", FLOAT, None)
    _, m = analyze(b.model(), seq=10)
    assert node(m, "att").macs.fmt() == "32·seq²"
    (a,) = m.attention
    assert a.effective_value == 32 * 55  # 10·11/2 visible pairs


# -- quantized weights ------------------------------------------------------------------------------
def test_matmul_nbits():
    # A [1, seq, 64], K 64, N 32, 4-bit, block 32: B uint8 [32, 2, 16]
    # MACs = seq·64·32 = 2,048·seq; B holds 32·64 = 2,048 weights in 1,024 bytes
    b = GraphBuilder("nbits")
    a = b.input("a", FLOAT, [1, "seq", 64])
    w = b.const(np.zeros((32, 2, 16), np.uint8), "B")
    s = b.const(np.ones(64, np.float32), "scales")
    b.op("MatMulNBits", [a, w, s], name="mm", domain=MS, K=64, N=32, bits=4, block_size=32)
    b.output("mm", FLOAT, None)
    _, m = analyze(b.model([(MS, 1)]), seq=3)
    assert node(m, "mm").macs.fmt() == "2,048·seq"
    t = {t.name: t for t in m.params.tensors}
    assert (t["B"].role, t["B"].numel, t["B"].nbytes) == ("parameter", 2048, 1024)
    assert "int4" in t["B"].label and t["scales"].role == "quantization"


def test_dequantize_linear_weight_and_int4_bytes():
    # int8 W [64, 32] → DequantizeLinear (constant inputs: folded at load, not counted) → MatMul
    # parameter: 2,048 int8 elements = 2,048 bytes; an INT4 [64, 32] tensor is 1,024 bytes
    b = GraphBuilder("qdq", opset=21)
    x = b.input("x", FLOAT, [1, 64])
    w = b.const(np.zeros((64, 32), np.int8), "W")
    dq = b.op("DequantizeLinear", [w, b.const(np.array(0.1, np.float32), "scale")], name="dq")
    b.op("MatMul", [x, dq], name="mm")
    w4 = helper.make_tensor("W4", TensorProto.INT4, [64, 32], np.zeros(64 * 32, np.int8).tolist())
    b.inits.append(w4)
    b.op("MatMul", [x, b.op("DequantizeLinear", ["W4", "scale"], name="dq4")], name="mm4")
    b.output("mm", FLOAT, None)
    b.output("mm4", FLOAT, None)
    _, m = analyze(b.model())
    assert node(m, "dq").status == "folded" and node(m, "mm").macs == 64 * 32
    t = {t.name: t for t in m.params.tensors}
    assert (t["W"].role, t["W"].numel, t["W"].nbytes) == ("parameter", 2048, 2048)
    assert (t["W4"].role, t["W4"].nbytes) == ("parameter", 1024)
    assert t["scale"].role == "quantization"


# -- parameters --------------------------------------------------------------------------------------
def test_shared_buffer_and_tied_embeddings():
    # E [100, 16] is the embedding table and, through a Transpose, the LM head: counted once.
    # BN running mean/var are buffers; the shared W [16, 16] feeds two MatMuls: once.
    # parameters = 100·16 + 16·16 + 2·16 (BN scale, bias) = 1,888; buffers = 2·16 = 32
    b = GraphBuilder("tied")
    ids = b.input("ids", INT64, [1, "seq"])
    e = b.weight([100, 16], "E")
    h = b.op("Gather", [e, ids], name="embed")
    w = b.weight([16, 16], "W")
    h = b.op("MatMul", [b.op("MatMul", [h, w], name="mm1"), w], name="mm2")
    t = b.op("Transpose", [b.op("Unsqueeze", [h, b.const(np.array([3], np.int64))])], perm=[0, 2, 1, 3])
    bn = b.op("BatchNormalization", [t, b.const(np.ones(16, np.float32), "g"), b.const(np.zeros(16, np.float32), "bb"),
                                     b.const(np.zeros(16, np.float32), "mean"),
                                     b.const(np.ones(16, np.float32), "var")], name="bn")
    h = b.op("Squeeze", [b.op("Transpose", [bn], perm=[0, 2, 1, 3]), b.const(np.array([3], np.int64))])
    b.op("MatMul", [h, b.op("Transpose", [e], name="eT", perm=[1, 0])], name="lm_head")
    b.output("lm_head", FLOAT, None)
    ctx, m = analyze(b.model(), seq=4)
    assert m.params.elements("parameter") == 1_888
    assert m.params.elements("buffer") == 32
    assert m.params.tied == [("E", "embed", "lm_head")]
    section = hotspots.run(ctx)
    assert any(f.code == "HS005" for f in section.findings)


def test_poly_from_symbolic_dims():
    seq = D.symbol("seq")
    p = from_dim(seq * (seq + 1) * Fraction(1, 2))
    assert p.evaluate({"seq": 9}) == 45  # 9·10/2
    assert (Poly.atom("seq") * 3 + 1).fmt() == "1 + 3·seq"
    opaque = from_dim(D.floordiv(seq, 2) + 1)  # not a polynomial: one opaque atom
    assert opaque.evaluate(atom_values(opaque.atoms(), {"seq": 9})) == 5  # floor(9/2) + 1
