"""Small ONNX model builders (``onnx.helper`` only) for samples, tests and benchmarks.

Weights are random (seeded): analysis never reads them, but the runtime oracle
(``model-analyze verify``) executes these models, so they must be valid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


@dataclass
class GraphBuilder:
    """Accumulates nodes/initializers; ``op()`` returns the output name."""

    name: str = "graph"
    opset: int = 17
    seed: int = 0
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)
    inputs: list[onnx.ValueInfoProto] = field(default_factory=list)
    outputs: list[onnx.ValueInfoProto] = field(default_factory=list)
    _n: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def input(self, name: str, dtype: int, shape: Sequence[int | str | None]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, dtype, list(shape)))
        return name

    def output(self, name: str, dtype: int = FLOAT, shape: Sequence[int | str | None] | None = None) -> None:
        self.outputs.append(helper.make_tensor_value_info(name, dtype, shape))

    def const(self, value: Any, name: str | None = None, dtype: Any = None) -> str:
        arr = np.asarray(value, dtype=dtype)
        name = name or self.fresh("c")
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def weight(self, shape: Sequence[int], name: str | None = None, scale: float | None = None) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
        s = scale if scale is not None else 1.0 / math.sqrt(max(fan_in, 1))
        return self.const((self.rng.standard_normal(shape) * s).astype(np.float32), name or self.fresh("w"))

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, name: str | None = None,
           domain: str = "", **attrs: Any) -> Any:
        name = name or self.fresh(op_type.lower())
        outs = [name if n_out == 1 else f"{name}_out{k}" for k in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, domain=domain or None,
                                           **attrs))
        return outs[0] if n_out == 1 else outs

    def model(self, extra_opsets: Sequence[tuple[str, int]] = ()) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits)
        opsets = [helper.make_opsetid("", self.opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="model-analyze-samples")
        model.ir_version = min(model.ir_version, 10)
        return model


# -- conv nets --------------------------------------------------------------------
def conv(b: GraphBuilder, x: str, c_in: int, c_out: int, k: int | Sequence[int], stride: int = 1,
         pad: int | Sequence[int] | None = None, dilation: int = 1, group: int = 1, bias: bool = True,
         name: str | None = None) -> str:
    ks = [k, k] if isinstance(k, int) else list(k)
    if pad is None:
        pads = [dilation * (kk - 1) // 2 for kk in ks] * 2
    elif isinstance(pad, int):
        pads = [pad] * 4
    else:
        pads = list(pad)
    w = b.weight([c_out, c_in // group, *ks])
    ins = [x, w] + ([b.const(np.zeros(c_out, np.float32))] if bias else [])
    return b.op("Conv", ins, name=name, kernel_shape=ks, strides=[stride, stride], pads=pads,
                dilations=[dilation, dilation], group=group)


def tiny_convnet() -> onnx.ModelProto:
    """The README's sample conv net (RF derivation in tests/test_samples.py)."""
    b = GraphBuilder("tiny_convnet")
    x = b.input("image", FLOAT, ["batch", 3, 64, 64])
    x = b.op("Relu", [conv(b, x, 3, 16, 3, name="conv1")])
    x = b.op("MaxPool", [x], name="pool1", kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Relu", [conv(b, x, 16, 32, 3, name="conv2")])
    x = b.op("MaxPool", [x], name="pool2", kernel_shape=[2, 2], strides=[2, 2])
    x = b.op("Relu", [conv(b, x, 32, 64, 3, dilation=2, name="conv3_dilated")])
    x = b.op("GlobalAveragePool", [x], name="gap")
    x = b.op("Flatten", [x], name="flatten", axis=1)
    b.op("Gemm", [x, b.weight([10, 64]), b.const(np.zeros(10, np.float32))], name="logits", transB=1)
    b.output("logits", FLOAT, ["batch", 10])
    return b.model()


# -- transformers ---------------------------------------------------------------------
def mask_bias(b: GraphBuilder, seq_len: str, kind: str, window: int | None = None) -> str | None:
    """An additive [seq, seq] mask (0 visible, -1e9 hidden) built from Range/compare
    ops over the runtime sequence length, the way exporters build it."""
    if kind == "bidirectional":
        return None
    zero, one = b.const(np.array(0, np.int64)), b.const(np.array(1, np.int64))
    pos = b.op("Range", [zero, seq_len, one], name=b.fresh("positions"))
    q = b.op("Unsqueeze", [pos, b.const(np.array([1], np.int64))])   # [seq, 1]
    k = b.op("Unsqueeze", [pos, b.const(np.array([0], np.int64))])   # [1, seq]
    visible = b.op("LessOrEqual", [k, q])                            # j <= i
    if kind == "window":
        assert window is not None
        lo = b.op("Sub", [q, b.const(np.array(window, np.int64))])
        visible = b.op("And", [visible, b.op("Greater", [k, lo])])   # i - W < j
    elif kind != "causal":
        raise ValueError(kind)
    return b.op("Where", [visible, b.const(np.array(0.0, np.float32)),
                          b.const(np.array(-1e9, np.float32))], name=b.fresh("mask"))


def transformer(layers: int = 2, heads: int = 4, d_model: int = 32, ffn: int | None = None,
                vocab: int = 100, mask: str = "causal", window: int | None = None,
                kv_heads: int | None = None, scale: float | None = None, opset: int = 17,
                name: str = "tiny_transformer", seq: str = "seq") -> onnx.ModelProto:
    """A pre-norm decoder (or encoder with ``mask='bidirectional'``) of ``layers``
    blocks: unfused attention as exporters emit it (MatMul QKᵀ → Mul scale → Add
    mask → Softmax → MatMul V), GQA when ``kv_heads < heads``."""
    b = GraphBuilder(name, opset=opset)
    ffn = ffn or 4 * d_model
    kv_heads = kv_heads or heads
    dk = d_model // heads
    scale = 1.0 / math.sqrt(dk) if scale is None else scale
    ids = b.input("input_ids", INT64, [1, seq])
    x = b.op("Gather", [b.weight([vocab, d_model], "embed_tokens.weight", 0.02), ids], name="embed")
    seq_len = b.op("Squeeze", [b.op("Shape", [ids], start=1, end=2)], name="seq_len")
    bias = mask_bias(b, seq_len, mask, window)
    head_shape = b.const(np.array([1, -1, heads, dk], np.int64))
    kv_shape = b.const(np.array([1, -1, kv_heads, dk], np.int64))
    merge = b.const(np.array([1, -1, d_model], np.int64))
    gamma, beta = b.const(np.ones(d_model, np.float32)), b.const(np.zeros(d_model, np.float32))
    for layer in range(layers):
        p = f"layers.{layer}"
        h = b.op("LayerNormalization", [x, gamma, beta], name=f"/{p}/ln1", axis=-1)
        q = b.op("MatMul", [h, b.weight([d_model, d_model], f"{p}.q_proj.weight")], name=f"/{p}/q_proj")
        k = b.op("MatMul", [h, b.weight([d_model, kv_heads * dk], f"{p}.k_proj.weight")], name=f"/{p}/k_proj")
        v = b.op("MatMul", [h, b.weight([d_model, kv_heads * dk], f"{p}.v_proj.weight")], name=f"/{p}/v_proj")
        q = b.op("Transpose", [b.op("Reshape", [q, head_shape])], perm=[0, 2, 1, 3])
        k = b.op("Transpose", [b.op("Reshape", [k, kv_shape])], perm=[0, 2, 1, 3])
        v = b.op("Transpose", [b.op("Reshape", [v, kv_shape])], perm=[0, 2, 1, 3])
        if kv_heads != heads:  # repeat_kv: [1, kv, seq, dk] -> [1, heads, seq, dk]
            rep = heads // kv_heads
            tgt = b.op("Concat", [b.const(np.array([1, kv_heads, rep], np.int64)),
                                  b.op("Shape", [k], start=2, end=4)], axis=0)
            flat = b.const(np.array([1, heads, -1, dk], np.int64))
            k = b.op("Reshape", [b.op("Expand", [b.op("Unsqueeze", [k, b.const(np.array([2], np.int64))]), tgt]), flat])
            v = b.op("Reshape", [b.op("Expand", [b.op("Unsqueeze", [v, b.const(np.array([2], np.int64))]), tgt]), flat])
        kt = b.op("Transpose", [k], perm=[0, 1, 3, 2])
        scores = b.op("MatMul", [q, kt], name=f"/{p}/attn/qk")
        scores = b.op("Mul", [scores, b.const(np.array(scale, np.float32))], name=f"/{p}/attn/scale")
        if bias is not None:
            scores = b.op("Add", [scores, bias], name=f"/{p}/attn/mask")
        probs = b.op("Softmax", [scores], name=f"/{p}/attn/softmax", axis=-1)
        ctx = b.op("MatMul", [probs, v], name=f"/{p}/attn/av")
        ctx = b.op("Reshape", [b.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
        o = b.op("MatMul", [ctx, b.weight([d_model, d_model], f"{p}.o_proj.weight")], name=f"/{p}/o_proj")
        x = b.op("Add", [x, o], name=f"/{p}/residual1")
        h = b.op("LayerNormalization", [x, gamma, beta], name=f"/{p}/ln2", axis=-1)
        h = b.op("Relu", [b.op("MatMul", [h, b.weight([d_model, ffn], f"{p}.up.weight")], name=f"/{p}/up")])
        h = b.op("MatMul", [h, b.weight([ffn, d_model], f"{p}.down.weight")], name=f"/{p}/down")
        x = b.op("Add", [x, h], name=f"/{p}/residual2")
    b.op("MatMul", [x, b.weight([d_model, vocab], "lm_head.weight")], name="logits")
    b.output("logits", FLOAT, [1, seq, vocab])
    return b.model()


def vad_like(hidden: int = 16, feat: int = 8) -> onnx.ModelProto:
    """silero-vad's decoder in miniature: an ``If`` on a value computed from shapes
    (``Equal(Shape(x)[-1], 1)``: squeeze a length-1 axis, else pass through) feeding an
    ``If`` on *data* whose branches run different LSTMs on outer-scope tensors.

    The first ``If`` is decided without running the model; the second is not (its count is
    the costlier branch, an upper bound). Inside both branches every shape follows from
    the outer scope: the LSTM's input comes through ``Unsqueeze`` of the first ``If``.
    ONNX LSTM layout 0: X ``[seq, batch, input]`` = ``[1, batch, 8]`` (one step per call, as
    silero-vad runs), ``h0 [directions, batch, hidden]`` = ``[1, batch, 16]``: ``batch`` is
    the batch everywhere, and the model has no sequence dim."""
    rng = np.random.default_rng(0)

    def w(*shape: int) -> onnx.TensorProto:
        return helper.make_tensor(f"w{len(inits)}", TensorProto.FLOAT, list(shape),
                                  rng.standard_normal(shape).astype(np.float32).ravel().tolist())

    inits: list[onnx.TensorProto] = []
    for shape in ((1, 4 * hidden, feat), (1, 4 * hidden, hidden), (1, 4 * hidden, feat), (1, 4 * hidden, hidden),
                  (feat, feat)):
        inits.append(w(*shape))
    wa, ra, wb, rb, proj = (t.name for t in inits)
    i64 = lambda name, v: helper.make_tensor(name, TensorProto.INT64, [len(v)], v)  # noqa: E731
    inits += [i64("minus1", [-1]), i64("one", [1]), i64("zero", [0])]

    squeeze = helper.make_graph([helper.make_node("Squeeze", ["x", "minus1"], ["sq"])], "squeeze", [],
                                [helper.make_tensor_value_info("sq", TensorProto.FLOAT, None)])
    keep = helper.make_graph([helper.make_node("Identity", ["x"], ["kept"])], "keep", [],
                             [helper.make_tensor_value_info("kept", TensorProto.FLOAT, None)])

    def lstm_branch(name: str, w_in: str, r_in: str, pre: bool) -> onnx.GraphProto:
        nodes = []
        src = "feat"
        if pre:  # the second branch projects its input first: the branches cost differently
            nodes.append(helper.make_node("MatMul", ["feat", proj], [f"{name}_p"]))
            src = f"{name}_p"
        nodes += [helper.make_node("Unsqueeze", [src, "zero"], [f"{name}_seq"]),
                  helper.make_node("LSTM", [f"{name}_seq", w_in, r_in, "", "", "h0"], [f"{name}_y", f"{name}_h"],
                                   hidden_size=hidden),
                  helper.make_node("Squeeze", [f"{name}_h", "zero"], [f"{name}_out"])]
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT,
                                                                                 None)])

    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "minus1"], ["last"]),
        helper.make_node("Equal", ["last", "one"], ["is_one"]),
        helper.make_node("If", ["is_one"], ["feat"], name="decoder_if", then_branch=squeeze, else_branch=keep),
        helper.make_node("If", ["first_rate"], ["out"], name="rate_if",
                         then_branch=lstm_branch("a", wa, ra, False), else_branch=lstm_branch("b", wb, rb, True)),
    ]
    graph = helper.make_graph(
        nodes, "vad_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", feat, 1]),
         helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, "batch", hidden]),
         helper.make_tensor_value_info("first_rate", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", hidden])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="model-analyze samples")


def loop_like(width: int = 8) -> onnx.ModelProto:
    """A ``Loop`` over the rows of ``x [seq, width]`` (trip count ``Shape(x)[0]``): the body
    gathers row ``i`` from the outer scope, projects it (MatMul ``[width] × [width, width]``)
    and accumulates — body MACs × ``seq`` iterations, the scan output ``[seq, width]``."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [width, width],
                           rng.standard_normal((width, width)).astype(np.float32).ravel().tolist())
    body = helper.make_graph(
        [helper.make_node("Gather", ["x", "i"], ["row"], axis=0),
         helper.make_node("MatMul", ["row", "w"], ["y"], name="body_matmul"),
         helper.make_node("Add", ["acc_in", "y"], ["acc_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [width])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [width]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [width])])
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["trips"], axis=0),
        helper.make_node("Loop", ["trips", "true", "acc0"], ["acc", "ys"], name="rows", body=body),
    ]
    graph = helper.make_graph(
        nodes, "loop_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq", width])],
        [helper.make_tensor_value_info("acc", TensorProto.FLOAT, [width]),
         helper.make_tensor_value_info("ys", TensorProto.FLOAT, ["seq", width])],
        [w, helper.make_tensor("zero", TensorProto.INT64, [], [0]),
         helper.make_tensor("true", TensorProto.BOOL, [], [1]),
         helper.make_tensor("acc0", TensorProto.FLOAT, [width], [0.0] * width)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="model-analyze samples")
