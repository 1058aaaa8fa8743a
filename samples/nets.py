"""Faithful ``onnx.helper`` builds of published networks, for tests and benchmarks.

Each builder reproduces the reference implementation's layer order, kernel,
stride, padding and bias placement exactly, and names nodes the way the
TorchScript exporter does (``/layer1/layer1.0/conv1/Conv``), so the analyzers
see what users export:

* torchvision AlexNet, VGG-16, ResNet-18, ResNet-50 (v1.5: the stride is on the
  3×3 conv of a bottleneck), MobileNetV2;
* TF-slim ResNet-50 v1 (``research/slim/nets/resnet_v1.py``): the stride of each
  block is in its *last* unit, on that unit's 3×3 conv (``conv2d_same``: explicit
  symmetric padding, VALID conv), whose shortcut is a 1×1 stride-2 max-pool
  (``subsample``); ``pool1`` is a 3×3/2 max-pool with TF 'SAME' padding (the extra
  pad row at the end); a 1×1 ``logits`` conv with bias follows the global mean;
* a BERT-base-shaped encoder (HF ``BertModel``: embeddings + LayerNorm, 12 post-norm
  layers with erf-GELU, pooler), sequence length symbolic.

BatchNormalization nodes are kept (inference form, with running mean/var), as an
exporter emits them without optimisation.

``weights`` selects how initializers are filled: ``"random"`` (seeded, runnable),
``"zeros"`` (runnable, fast to build) or ``"shape"`` (dims and dtype only — enough
for static analysis, which never reads weights, and instant for 138 M parameters;
not runnable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto

from builders import FLOAT, INT64, GraphBuilder, conv

Dim = int | str


@dataclass
class NetBuilder(GraphBuilder):
    """A GraphBuilder whose weights are random, zeros or metadata only."""

    weights: str = "random"

    def weight(self, shape: Sequence[int], name: str | None = None, scale: float | None = None) -> str:
        if self.weights == "random":
            return super().weight(shape, name, scale)
        name = name or self.fresh("w")
        if self.weights == "zeros":
            return self.const(np.zeros(shape, np.float32), name)
        if self.weights != "shape":
            raise ValueError(f"weights must be random, zeros or shape, not {self.weights!r}")
        t = TensorProto(name=name, data_type=FLOAT, dims=list(shape))
        self.inits.append(t)
        return name

    def vector(self, n: int, value: float, name: str | None = None) -> str:
        """A per-channel parameter (BN/LayerNorm scale or shift, bias)."""
        if self.weights == "shape":
            name = name or self.fresh("p")
            self.inits.append(TensorProto(name=name, data_type=FLOAT, dims=[n]))
            return name
        return self.const(np.full(n, value, np.float32), name)


def _bn(b: NetBuilder, x: str, c: int, name: str) -> str:
    """Inference BatchNormalization: scale, bias (trained) + running mean, var."""
    return b.op("BatchNormalization", [x, b.vector(c, 1.0), b.vector(c, 0.0), b.vector(c, 0.0),
                                       b.vector(c, 1.0)], name=name, epsilon=1e-5)


def _linear(b: NetBuilder, x: str, n_in: int, n_out: int, name: str) -> str:
    """torch ``Linear`` on a 2-D input exports as Gemm(transB=1)."""
    return b.op("Gemm", [x, b.weight([n_out, n_in]), b.vector(n_out, 0.0)], name=name, transB=1)


def _image_input(b: NetBuilder, batch: Dim, size: int) -> str:
    return b.input("input", FLOAT, [batch, 3, size, size])


def _head(b: NetBuilder, x: str, batch: Dim) -> None:
    b.output(x, FLOAT, [batch, 1000])


# -- torchvision AlexNet ------------------------------------------------------------
def alexnet(weights: str = "random", batch: Dim = "batch", size: int = 224) -> onnx.ModelProto:
    """torchvision ``alexnet``: 61,100,840 parameters."""
    b = NetBuilder("alexnet", weights=weights)
    x = _image_input(b, batch, size)
    spec = [(0, 3, 64, 11, 4, 2), (3, 64, 192, 5, 1, 2), (6, 192, 384, 3, 1, 1), (8, 384, 256, 3, 1, 1),
            (10, 256, 256, 3, 1, 1)]
    pools_after = {0: 2, 3: 5, 10: 12}
    for i, c_in, c_out, k, s, p in spec:
        x = conv(b, x, c_in, c_out, k, stride=s, pad=p, name=f"/features/features.{i}/Conv")
        x = b.op("Relu", [x], name=f"/features/features.{i + 1}/Relu")
        if i in pools_after:
            j = pools_after[i]
            x = b.op("MaxPool", [x], name=f"/features/features.{j}/MaxPool", kernel_shape=[3, 3], strides=[2, 2])
    # AdaptiveAvgPool2d((6, 6)) on a 6×6 map exports as a 1×1 average pool.
    x = b.op("AveragePool", [x], name="/avgpool/AveragePool", kernel_shape=[1, 1], strides=[1, 1])
    x = b.op("Flatten", [x], name="/Flatten", axis=1)
    x = b.op("Relu", [_linear(b, x, 256 * 6 * 6, 4096, "/classifier/classifier.1/Gemm")],
             name="/classifier/classifier.2/Relu")
    x = b.op("Relu", [_linear(b, x, 4096, 4096, "/classifier/classifier.4/Gemm")],
             name="/classifier/classifier.5/Relu")
    x = _linear(b, x, 4096, 1000, "/classifier/classifier.6/Gemm")
    _head(b, x, batch)
    return b.model()


# -- torchvision VGG-16 -------------------------------------------------------------
VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                              512, 512, 512, "M"]


def vgg16(weights: str = "random", batch: Dim = "batch", size: int = 224) -> onnx.ModelProto:
    """torchvision ``vgg16`` (configuration "D", no BN): 138,357,544 parameters."""
    b = NetBuilder("vgg16", weights=weights)
    x = _image_input(b, batch, size)
    c_in, i = 3, 0
    for v in VGG16_CFG:
        if v == "M":
            x = b.op("MaxPool", [x], name=f"/features/features.{i}/MaxPool", kernel_shape=[2, 2], strides=[2, 2])
            i += 1
            continue
        x = conv(b, x, c_in, int(v), 3, pad=1, name=f"/features/features.{i}/Conv")
        x = b.op("Relu", [x], name=f"/features/features.{i + 1}/Relu")
        c_in, i = int(v), i + 2
    x = b.op("AveragePool", [x], name="/avgpool/AveragePool", kernel_shape=[1, 1], strides=[1, 1])
    x = b.op("Flatten", [x], name="/Flatten", axis=1)
    x = b.op("Relu", [_linear(b, x, 512 * 7 * 7, 4096, "/classifier/classifier.0/Gemm")],
             name="/classifier/classifier.1/Relu")
    x = b.op("Relu", [_linear(b, x, 4096, 4096, "/classifier/classifier.3/Gemm")],
             name="/classifier/classifier.4/Relu")
    x = _linear(b, x, 4096, 1000, "/classifier/classifier.6/Gemm")
    _head(b, x, batch)
    return b.model()


# -- torchvision ResNets ---------------------------------------------------------------
def _conv_bn(b: NetBuilder, x: str, c_in: int, c_out: int, k: int, stride: int, pad: int | Sequence[int],
             scope: str, conv_name: str, bn_name: str) -> str:
    x = conv(b, x, c_in, c_out, k, stride=stride, pad=pad, bias=False, name=f"{scope}/{conv_name}/Conv")
    return _bn(b, x, c_out, f"{scope}/{bn_name}/BatchNormalization")


def _basic(b: NetBuilder, x: str, c_in: int, planes: int, stride: int, scope: str) -> tuple[str, int]:
    """torchvision BasicBlock: 3×3 (stride) → 3×3, projection when the shape changes."""
    y = b.op("Relu", [_conv_bn(b, x, c_in, planes, 3, stride, 1, scope, "conv1", "bn1")], name=f"{scope}/relu/Relu")
    y = _conv_bn(b, y, planes, planes, 3, 1, 1, scope, "conv2", "bn2")
    if stride != 1 or c_in != planes:
        x = _conv_bn(b, x, c_in, planes, 1, stride, 0, f"{scope}/downsample", "downsample.0", "downsample.1")
    y = b.op("Add", [y, x], name=f"{scope}/Add")
    return b.op("Relu", [y], name=f"{scope}/relu_1/Relu"), planes


def _bottleneck(b: NetBuilder, x: str, c_in: int, planes: int, stride: int, scope: str) -> tuple[str, int]:
    """torchvision Bottleneck (ResNet v1.5): 1×1 → 3×3 (stride) → 1×1 (×4)."""
    out = planes * 4
    y = b.op("Relu", [_conv_bn(b, x, c_in, planes, 1, 1, 0, scope, "conv1", "bn1")], name=f"{scope}/relu/Relu")
    y = b.op("Relu", [_conv_bn(b, y, planes, planes, 3, stride, 1, scope, "conv2", "bn2")],
             name=f"{scope}/relu_1/Relu")
    y = _conv_bn(b, y, planes, out, 1, 1, 0, scope, "conv3", "bn3")
    if stride != 1 or c_in != out:
        x = _conv_bn(b, x, c_in, out, 1, stride, 0, f"{scope}/downsample", "downsample.0", "downsample.1")
    y = b.op("Add", [y, x], name=f"{scope}/Add")
    return b.op("Relu", [y], name=f"{scope}/relu_2/Relu"), out


def _resnet(name: str, block: str, layers: Sequence[int], weights: str, batch: Dim, size: int) -> onnx.ModelProto:
    b = NetBuilder(name, weights=weights)
    x = _image_input(b, batch, size)
    x = b.op("Relu", [_conv_bn(b, x, 3, 64, 7, 2, 3, "", "conv1", "bn1")], name="/relu/Relu")
    x = b.op("MaxPool", [x], name="/maxpool/MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    unit = _basic if block == "basic" else _bottleneck
    c = 64
    for stage, (n, planes) in enumerate(zip(layers, (64, 128, 256, 512), strict=True), start=1):
        for k in range(n):
            stride = 2 if stage > 1 and k == 0 else 1
            x, c = unit(b, x, c, planes, stride, f"/layer{stage}/layer{stage}.{k}")
    x = b.op("GlobalAveragePool", [x], name="/avgpool/GlobalAveragePool")
    x = b.op("Flatten", [x], name="/Flatten", axis=1)
    _head(b, _linear(b, x, c, 1000, "/fc/Gemm"), batch)
    return b.model()


def resnet18(weights: str = "random", batch: Dim = "batch", size: int = 224) -> onnx.ModelProto:
    """torchvision ``resnet18``: 11,689,512 parameters."""
    return _resnet("resnet18", "basic", [2, 2, 2, 2], weights, batch, size)


def resnet50(weights: str = "random", batch: Dim = "batch", size: int = 224) -> onnx.ModelProto:
    """torchvision ``resnet50`` (v1.5, stride on the 3×3): 25,557,032 parameters."""
    return _resnet("resnet50", "bottleneck", [3, 4, 6, 3], weights, batch, size)


# -- TF-slim ResNet-50 v1 ------------------------------------------------------------------
def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TF 'SAME': out = ceil(size / s); the odd pad goes at the end."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _slim_unit(b: NetBuilder, x: str, c_in: int, base: int, stride: int, scope: str, size: int) -> tuple[str, int]:
    """TF-slim ``bottleneck``: shortcut = 1×1 conv (depth changes, stride = the
    unit's) or ``subsample`` (1×1 max-pool, stride); residual = conv1 1×1 →
    conv2 = ``conv2d_same`` 3×3 with the stride → conv3 1×1 (no ReLU)."""
    depth = base * 4
    s = f"{scope}/bottleneck_v1"
    if c_in == depth:
        shortcut = x if stride == 1 else b.op("MaxPool", [x], name=f"{s}/shortcut/MaxPool",
                                              kernel_shape=[1, 1], strides=[stride, stride])
    else:
        shortcut = _conv_bn(b, x, c_in, depth, 1, stride, 0, s, "shortcut", "shortcut/BatchNorm")
    y = b.op("Relu", [_conv_bn(b, x, c_in, base, 1, 1, 0, s, "conv1", "conv1/BatchNorm")], name=f"{s}/conv1/Relu")
    # conv2d_same: stride 1 → SAME padding (1, 1); stride > 1 → explicit pad (k-1)//2 each side, VALID.
    pad = _same_pads(size, 3, 1) if stride == 1 else (1, 1)
    y = _conv_bn(b, y, base, base, 3, stride, [pad[0], pad[0], pad[1], pad[1]], s, "conv2", "conv2/BatchNorm")
    y = b.op("Relu", [y], name=f"{s}/conv2/Relu")
    y = _conv_bn(b, y, base, depth, 1, 1, 0, s, "conv3", "conv3/BatchNorm")
    y = b.op("Add", [shortcut, y], name=f"{s}/add")
    return b.op("Relu", [y], name=f"{s}/Relu"), depth


def resnet50_v1_slim(weights: str = "random", batch: Dim = "batch", size: int = 224) -> onnx.ModelProto:
    """TF-slim ``resnet_v1_50`` (1000 classes), NCHW: 25,557,032 parameters (same
    layers as torchvision's; only the stride placement differs)."""
    b = NetBuilder("resnet_v1_50", weights=weights)
    x = _image_input(b, batch, size)
    root = "resnet_v1_50"
    x = b.op("Relu", [_conv_bn(b, x, 3, 64, 7, 2, 3, root, "conv1", "conv1/BatchNorm")], name=f"{root}/conv1/Relu")
    hw = (size + 6 - 7) // 2 + 1
    lo, hi = _same_pads(hw, 3, 2)
    x = b.op("MaxPool", [x], name=f"{root}/pool1/MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[lo, lo, hi, hi])
    hw = -(-hw // 2)
    c = 64
    for blk, (base, units, stride) in enumerate([(64, 3, 2), (128, 4, 2), (256, 6, 2), (512, 3, 1)], start=1):
        for u in range(units):
            s = stride if u == units - 1 else 1
            x, c = _slim_unit(b, x, c, base, s, f"{root}/block{blk}/unit_{u + 1}", hw)
            hw = (hw + 2 - 3) // s + 1 if s > 1 else hw
    x = b.op("ReduceMean", [x], name=f"{root}/pool5", axes=[2, 3], keepdims=1)
    x = conv(b, x, c, 1000, 1, pad=0, bias=True, name=f"{root}/logits/Conv2D")
    x = b.op("Squeeze", [x, b.const(np.array([2, 3], np.int64))], name=f"{root}/SpatialSqueeze")
    _head(b, x, batch)
    return b.model()


# -- torchvision MobileNetV2 ------------------------------------------------------------------
def _conv_bn_relu6(b: NetBuilder, x: str, c_in: int, c_out: int, k: int, stride: int, group: int,
                   scope: str) -> str:
    """Conv2dNormActivation: conv (no bias) → BN → ReLU6 (Clip 0..6)."""
    leaf = scope.rsplit("/", 1)[-1]
    x = conv(b, x, c_in, c_out, k, stride=stride, group=group, bias=False, name=f"{scope}/{leaf}.0/Conv")
    x = _bn(b, x, c_out, f"{scope}/{leaf}.1/BatchNormalization")
    lo, hi = b.const(np.array(0.0, np.float32)), b.const(np.array(6.0, np.float32))
    return b.op("Clip", [x, lo, hi], name=f"{scope}/{leaf}.2/Clip")


def mobilenet_v2(weights: str = "random", batch: Dim = "batch", size: int = 224) -> onnx.ModelProto:
    """torchvision ``mobilenet_v2`` (width 1.0): 3,504,872 parameters."""
    b = NetBuilder("mobilenet_v2", weights=weights)
    x = _image_input(b, batch, size)
    x = _conv_bn_relu6(b, x, 3, 32, 3, 2, 1, "/features/features.0")
    c, idx = 32, 1
    for t, c_out, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                           (6, 160, 3, 2), (6, 320, 1, 1)]:
        for k in range(n):
            stride = s if k == 0 else 1
            scope = f"/features/features.{idx}/conv"
            hidden = c * t
            y, j = x, 0
            if t != 1:
                y = _conv_bn_relu6(b, y, c, hidden, 1, 1, 1, f"{scope}/conv.{j}")
                j += 1
            y = _conv_bn_relu6(b, y, hidden, hidden, 3, stride, hidden, f"{scope}/conv.{j}")
            y = conv(b, y, hidden, c_out, 1, pad=0, bias=False, name=f"{scope}/conv.{j + 1}/Conv")
            y = _bn(b, y, c_out, f"{scope}/conv.{j + 2}/BatchNormalization")
            if stride == 1 and c == c_out:
                y = b.op("Add", [x, y], name=f"/features/features.{idx}/Add")
            x, c, idx = y, c_out, idx + 1
    x = _conv_bn_relu6(b, x, c, 1280, 1, 1, 1, f"/features/features.{idx}")
    x = b.op("GlobalAveragePool", [x], name="/GlobalAveragePool")
    x = b.op("Flatten", [x], name="/Flatten", axis=1)
    _head(b, _linear(b, x, 1280, 1000, "/classifier/classifier.1/Gemm"), batch)
    return b.model()


# -- BERT-base-shaped encoder -------------------------------------------------------------------
def bert(weights: str = "random", layers: int = 12, hidden: int = 768, heads: int = 12, ffn: int = 3072,
         vocab: int = 30522, max_positions: int = 512, type_vocab: int = 2, pooler: bool = True,
         batch: Dim = "batch", seq: Dim = "seq") -> onnx.ModelProto:
    """HF ``BertModel`` as the TorchScript exporter emits it (opset 17, eager
    attention, erf GELU, additive mask from ``attention_mask``). Parameters with
    the defaults: 109,482,240 including the pooler (768·768 + 768)."""
    b = NetBuilder("bert", opset=17, weights=weights)
    d = hidden // heads
    ids = b.input("input_ids", INT64, [batch, seq])
    mask = b.input("attention_mask", INT64, [batch, seq])
    types = b.input("token_type_ids", INT64, [batch, seq])

    def c(value: float) -> str:
        return b.const(np.array(value, np.float32))

    def i64(values: Sequence[int]) -> str:
        return b.const(np.array(values, np.int64))

    def layer_norm(x: str, name: str) -> str:
        return b.op("LayerNormalization", [x, b.vector(hidden, 1.0), b.vector(hidden, 0.0)], name=name,
                    axis=-1, epsilon=1e-12)

    def dense(x: str, n_in: int, n_out: int, scope: str) -> str:
        y = b.op("MatMul", [x, b.weight([n_in, n_out])], name=f"{scope}/MatMul")
        return b.op("Add", [b.vector(n_out, 0.0), y], name=f"{scope}/Add")

    e = "/embeddings"
    words = b.op("Gather", [b.weight([vocab, hidden], scale=0.02), ids], name=f"{e}/word_embeddings/Gather")
    toks = b.op("Gather", [b.weight([type_vocab, hidden], scale=0.02), types], name=f"{e}/token_type_embeddings/Gather")
    n = b.op("Gather", [b.op("Shape", [ids], name=f"{e}/Shape"), b.const(np.array(1, np.int64))], name=f"{e}/Gather")
    pos = b.op("Range", [b.const(np.array(0, np.int64)), n, b.const(np.array(1, np.int64))], name=f"{e}/Range")
    pos = b.op("Gather", [b.weight([max_positions, hidden], scale=0.02), pos], name=f"{e}/position_embeddings/Gather")
    x = b.op("Add", [b.op("Add", [words, toks], name=f"{e}/Add"), pos], name=f"{e}/Add_1")
    x = layer_norm(x, f"{e}/LayerNorm/LayerNormalization")
    # extended mask: (1 - mask[:, None, None, :]) * -10000
    m = b.op("Cast", [b.op("Unsqueeze", [mask, i64([1, 2])], name="/Unsqueeze")], name="/Cast", to=FLOAT)
    m = b.op("Mul", [b.op("Sub", [c(1.0), m], name="/Sub"), c(-10000.0)], name="/Mul")
    heads_shape = i64([0, 0, heads, d])
    merge_shape = i64([0, 0, hidden])
    for li in range(layers):
        s = f"/encoder/layer.{li}"
        a = f"{s}/attention/self"

        def split(t: str, name: str, perm: Sequence[int], a: str = a) -> str:
            r = b.op("Reshape", [t, heads_shape], name=f"{a}/Reshape_{name}")
            return b.op("Transpose", [r], name=f"{a}/Transpose_{name}", perm=list(perm))

        q = split(dense(x, hidden, hidden, f"{a}/query"), "q", [0, 2, 1, 3])
        k = split(dense(x, hidden, hidden, f"{a}/key"), "k", [0, 2, 3, 1])
        v = split(dense(x, hidden, hidden, f"{a}/value"), "v", [0, 2, 1, 3])
        scores = b.op("MatMul", [q, k], name=f"{a}/MatMul")
        scores = b.op("Div", [scores, c(math.sqrt(d))], name=f"{a}/Div")
        scores = b.op("Add", [scores, m], name=f"{a}/Add")
        probs = b.op("Softmax", [scores], name=f"{a}/Softmax", axis=-1)
        ctx = b.op("MatMul", [probs, v], name=f"{a}/MatMul_1")
        ctx = b.op("Reshape", [b.op("Transpose", [ctx], name=f"{a}/Transpose_ctx", perm=[0, 2, 1, 3]), merge_shape],
                   name=f"{a}/Reshape_ctx")
        o = dense(ctx, hidden, hidden, f"{s}/attention/output/dense")
        x = layer_norm(b.op("Add", [o, x], name=f"{s}/attention/output/Add"),
                       f"{s}/attention/output/LayerNorm/LayerNormalization")
        h = dense(x, hidden, ffn, f"{s}/intermediate/dense")
        g = f"{s}/intermediate/intermediate_act_fn"
        erf = b.op("Erf", [b.op("Div", [h, c(math.sqrt(2.0))], name=f"{g}/Div")], name=f"{g}/Erf")
        h = b.op("Mul", [b.op("Mul", [h, b.op("Add", [erf, c(1.0)], name=f"{g}/Add")], name=f"{g}/Mul"), c(0.5)],
                 name=f"{g}/Mul_1")
        o = dense(h, ffn, hidden, f"{s}/output/dense")
        x = layer_norm(b.op("Add", [o, x], name=f"{s}/output/Add"), f"{s}/output/LayerNorm/LayerNormalization")
    b.outputs.append(onnx.helper.make_tensor_value_info(x, FLOAT, [batch, seq, hidden]))
    if pooler:
        first = b.op("Gather", [x, b.const(np.array(0, np.int64))], name="/pooler/Gather", axis=1)
        y = b.op("Tanh", [_linear(b, first, hidden, hidden, "/pooler/dense/Gemm")], name="/pooler/activation/Tanh")
        b.outputs.append(onnx.helper.make_tensor_value_info(y, FLOAT, [batch, hidden]))
    return b.model()


NETS = {
    "alexnet": alexnet, "vgg16": vgg16, "resnet18": resnet18, "resnet50": resnet50,
    "resnet50_v1_slim": resnet50_v1_slim, "mobilenet_v2": mobilenet_v2, "bert_base": bert,
}
"""Name → builder (each takes ``weights=`` first)."""
