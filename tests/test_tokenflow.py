"""Token-flow rules on small graphs; every expected set is derived by hand in the comment."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import builders
from builders import FLOAT, GraphBuilder
from model_analyze.runner import prepare
from model_analyze.tokenflow import flow, reach


def ctx_of(b: GraphBuilder, **dims):
    from model_analyze.runner import AnalyzeOptions

    return prepare(b.model(), AnalyzeOptions(dims=dims))


def at(ctx, tensor, axis, i, source):
    return reach(ctx, tensor, axis, i, source).get(source, [])


def image(b: GraphBuilder, h: int = 32, c: int = 1) -> str:
    return b.input("x", FLOAT, [1, c, h, h])


def test_dilated_conv_rf_5():
    # 3x3, dilation 2, pad 2: effective kernel 2·(3-1)+1 = 5; output i <- [i-2, i+2].
    b = GraphBuilder()
    y = builders.conv(b, image(b), 1, 1, 3, dilation=2, pad=2, name="y")
    b.output(y)
    ctx = ctx_of(b)
    assert at(ctx, "y", 2, 10, ("x", 2)) == [(8, 12)]
    assert at(ctx, "y", 3, 0, ("x", 3)) == [(0, 2)]  # clipped at the border


def test_strided_conv_then_transposed_conv():
    # conv k3 s2 p1: o1 <- [2·o1-1, 2·o1+1]. convT k3 s2 p1 (output_padding 1):
    # o2 = 2·i - 1 + t (t < 3) -> i in [(o2-1)/2, (o2+1)/2]:
    # even o2 = 10: i = 5 -> x 9..11 (3 positions); odd o2 = 11: i in {5, 6} -> x 9..13 (5).
    b = GraphBuilder()
    y = builders.conv(b, image(b), 1, 1, 3, stride=2, pad=1, name="down")
    b.op("ConvTranspose", [y, b.weight([1, 1, 3, 3])], name="up", kernel_shape=[3, 3], strides=[2, 2],
         pads=[1, 1, 1, 1], output_padding=[1, 1])
    b.output("up")
    ctx = ctx_of(b)
    assert ctx.shapes.shape("up") == (1, 1, 32, 32)
    assert at(ctx, "up", 2, 10, ("x", 2)) == [(9, 11)]
    assert at(ctx, "up", 2, 11, ("x", 2)) == [(9, 13)]


def test_resize_nearest_asymmetric_floor():
    # out o <- in floor(o / 2) with asymmetric coordinates and nearest_mode floor.
    b = GraphBuilder(opset=13)
    x = b.input("x", FLOAT, [1, 1, 8, 8])
    b.op("Resize", [x, "", b.const(np.array([1, 1, 2, 2], np.float32))], name="y", mode="nearest",
         coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    b.output("y")
    ctx = ctx_of(b)
    for o in (0, 5, 15):
        got = at(ctx, "y", 2, o, ("x", 2))
        assert got[0][0] <= o // 2 <= got[0][1]
        assert got[0][1] - got[0][0] <= 1  # sound, at most one extra neighbour


@pytest.mark.parametrize("direction, want", [("forward", (0, 6)), ("reverse", (6, 9)),
                                             ("bidirectional", (0, 9))])
def test_lstm_direction(direction, want):
    # Y[t] depends on X[0..t] (forward), X[t..n-1] (reverse), everything (bidirectional).
    b = GraphBuilder()
    x = b.input("x", FLOAT, [10, 1, 4])
    dirs = 2 if direction == "bidirectional" else 1
    b.op("LSTM", [x, b.weight([dirs, 12, 4]), b.weight([dirs, 12, 3])], n_out=1, name="y", hidden_size=3,
         direction=direction)
    b.output("y")
    ctx = ctx_of(b)
    assert at(ctx, "y", 0, 6, ("x", 0)) == [want]


def test_cumsum_is_causal():
    b = GraphBuilder()
    x = b.input("x", FLOAT, [1, "seq"])
    b.op("CumSum", [x, b.const(np.array(1, np.int64))], name="y")
    b.op("CumSum", [x, b.const(np.array(1, np.int64))], name="z", exclusive=1, reverse=1)
    b.output("y")
    b.output("z")
    ctx = ctx_of(b, seq=20)
    assert at(ctx, "y", 1, 7, ("x", 1)) == [(0, 7)]
    assert at(ctx, "z", 1, 7, ("x", 1)) == [(8, 19)]  # reverse exclusive: strictly after


def test_concat_prepended_token_and_slices():
    # [cls; x] along seq: out 0 is the constant, out i <- x[i-1].
    # x[:, 1::2]: out i <- x[1 + 2i].  x[:, -1:]: out 0 <- x[seq-1].
    b = GraphBuilder()
    x = b.input("x", FLOAT, [1, "seq", 4])
    b.op("Concat", [b.const(np.zeros((1, 1, 4), np.float32)), x], name="cat", axis=1)
    i64 = lambda v: b.const(np.array(v, np.int64))  # noqa: E731
    b.op("Slice", [x, i64([1]), i64([1 << 40]), i64([1]), i64([2])], name="odd")
    b.op("Slice", [x, i64([-1]), i64([1 << 40]), i64([1])], name="last")
    for t in ("cat", "odd", "last"):
        b.output(t)
    ctx = ctx_of(b, seq=10)
    src = ("x", 1)
    assert at(ctx, "cat", 1, 0, src) == []
    assert at(ctx, "cat", 1, 4, src) == [(3, 3)]
    assert at(ctx, "odd", 1, 2, src) == [(5, 5)]
    assert at(ctx, "last", 1, 0, src) == [(9, 9)]


def test_patchify_reshape_transpose():
    # Conv 4x4 stride 4 on 16x16 -> [1, 8, 4, 4]; Reshape [1, 8, 16]; Transpose -> tokens [1, 16, 8].
    # Token p = 4·h + w: its H field is rows 4·floor(p/4) .. +3, its W field columns
    # 4·(p mod 4) .. +3 (the merged axis reads the inner W axis at p mod 4). Token 5 is
    # h = 1, w = 1: rows 4..7 and columns 4..7.
    b = GraphBuilder()
    x = b.input("x", FLOAT, [1, 3, 16, 16])
    y = builders.conv(b, x, 3, 8, 4, stride=4, pad=0)
    r = b.op("Reshape", [y, b.const(np.array([1, 8, 16], np.int64))])
    b.op("Transpose", [r], name="tokens", perm=[0, 2, 1])
    b.output("tokens")
    ctx = ctx_of(b)
    assert at(ctx, "tokens", 1, 5, ("x", 2)) == [(4, 7)]
    assert at(ctx, "tokens", 1, 5, ("x", 3)) == [(4, 7)]
    assert at(ctx, "tokens", 1, 6, ("x", 3)) == [(8, 11)]


def test_reductions_and_contractions_mix_the_axis():
    b = GraphBuilder(opset=17)
    x = b.input("x", FLOAT, [1, "seq", 4])
    b.op("ReduceMean", [x], name="mean", axes=[1], keepdims=1)
    b.op("Softmax", [x], name="sm", axis=1)
    b.op("MatMul", [b.op("Transpose", [x], perm=[0, 2, 1]), x], name="gram")  # contracts seq
    for t in ("mean", "sm", "gram"):
        b.output(t)
    ctx = ctx_of(b, seq=12)
    src = ("x", 1)
    assert at(ctx, "mean", 1, 0, src) == [(0, 11)]
    assert at(ctx, "sm", 1, 3, src) == [(0, 11)]
    assert at(ctx, "gram", 1, 0, src) == [(0, 11)]


def test_gather_constant_index_picks_one_position():
    b = GraphBuilder()
    x = b.input("x", FLOAT, [1, "seq", 4])
    b.op("Gather", [x, b.const(np.array(3, np.int64))], name="tok3", axis=1)
    b.output("tok3")
    ctx = ctx_of(b, seq=8)
    result = flow(ctx)
    assert result.states["tok3"].fixed[("x", 1)].at(0, 8) == [(3, 3)]


def test_constant_pad_shifts_positions():
    b = GraphBuilder(opset=13)
    x = b.input("x", FLOAT, [1, 10])
    b.op("Pad", [x, b.const(np.array([0, 3, 0, 0], np.int64))], name="p")
    b.output("p")
    ctx = ctx_of(b)
    assert at(ctx, "p", 1, 2, ("x", 1)) == []        # padding sees nothing
    assert at(ctx, "p", 1, 5, ("x", 1)) == [(2, 2)]


def test_unknown_op_is_conservative_and_listed():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 16, 16])
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Mystery", ["c"], ["y"], domain="acme")]
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 3, 3], [0.1] * 9)
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("acme", 1)])
    model.graph.value_info.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 16, 16]))
    from model_analyze.runner import analyze

    ctx = prepare(model)
    assert flow(ctx).unknown_ops == {"acme::Mystery": 1}
    assert at(ctx, "y", 2, 0, ("x", 2)) == [(0, 15)]
    report = analyze(model)
    rf = report.section("receptive-field")
    assert any(f.code == "RF003" and "acme::Mystery" in f.message for f in rf.findings)


def test_causal_conv_with_state_and_linear_attention_are_causal():
    # CausalConvWithState (opset 27), k = 4: output t sees inputs t-3..t (ONNX spec: causal,
    # depthwise). LinearAttention: o_t reads the state built from k/v at 0..t (a recurrence).
    b = GraphBuilder(opset=27)
    x = b.input("x", FLOAT, [1, 2, "seq"])
    b.op("CausalConvWithState", [x, b.weight([2, 1, 4])], n_out=2, name="cc")
    q = b.input("q", FLOAT, [1, "seq", 8])
    b.op("LinearAttention", [q, q, q], n_out=2, name="la", q_num_heads=2, kv_num_heads=2)
    b.output("cc_out0")
    b.output("la_out0")
    ctx = ctx_of(b, seq=12)
    assert ctx.shapes.shape("cc_out1") == (1, 2, 3)          # the carried state: k - 1 positions
    assert at(ctx, "cc_out0", 2, 7, ("x", 2)) == [(4, 7)]
    assert at(ctx, "la_out0", 1, 7, ("q", 1)) == [(0, 7)]
