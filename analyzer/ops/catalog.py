"""The op catalog: which family each op belongs to, and its per-element FLOPs.

This is *the* table of operator facts (METRICS.md asks for the per-element
constants to be stated in one table). Shape, token-flow and cost rules dispatch
on the family for generic ops, so an element-wise op is listed here once and
nowhere else.

FLOP convention per output element (input element for reductions): one FLOP per
arithmetic, comparison or transcendental operation, e.g. Sigmoid = neg, exp,
add, div = 4; Softmax = max, sub, exp, sum, div = 5; LayerNormalization = mean,
sub, square, mean, add-eps/rsqrt, mul, scale, shift = 8.
"""

from __future__ import annotations

from collections.abc import Mapping

from .registry import MS, OpRule

# category -> {op_type: FLOPs per output element}
UNARY: dict[str, float] = {
    "Abs": 1, "Neg": 1, "Sign": 1, "Ceil": 1, "Floor": 1, "Round": 1, "Reciprocal": 1,
    "Sqrt": 1, "Exp": 1, "Log": 1, "Erf": 1, "Sin": 1, "Cos": 1, "Tan": 1, "Asin": 1,
    "Acos": 1, "Atan": 1, "Sinh": 1, "Cosh": 1, "Asinh": 1, "Acosh": 1, "Atanh": 1,
    "Tanh": 1, "Relu": 1, "LeakyRelu": 2, "ThresholdedRelu": 1, "Elu": 3, "Selu": 4,
    "Celu": 4, "Sigmoid": 4, "HardSigmoid": 3, "HardSwish": 4, "Softplus": 3, "Softsign": 3,
    "Mish": 6, "Gelu": 6, "Shrink": 2, "Clip": 2, "IsNaN": 1, "IsInf": 1, "Not": 1,
    "BitwiseNot": 1, "Swish": 5, "RotaryEmbedding": 3,
}
# Element-wise ops over more than one input (no broadcasting in the spec):
# SwiGLU(A, B) = Swish(A) · B: Swish 5 + mul 1.
GATED = {"SwiGLU": 6}
# Pure data movement / identity: 0 FLOPs, but bytes are still counted.
MOVEMENT = [
    "Identity", "Cast", "CastLike", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose",
    "Concat", "Split", "SplitToSequence", "Slice", "Gather", "GatherElements", "GatherND",
    "Scatter", "ScatterElements", "ScatterND", "Expand", "Tile", "Pad", "DepthToSpace",
    "SpaceToDepth", "Shape", "Size", "ConstantOfShape", "Constant", "Range", "EyeLike",
    "OneHot", "NonZero", "Compress", "Dropout", "Optional", "OptionalGetElement",
    "OptionalHasElement", "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase",
    "SequenceInsert", "SequenceLength", "ConcatFromSequence", "ReverseSequence", "Trilu",
    "CenterCropPad", "Col2Im", "Unique", "MaxUnpool", "Bernoulli", "RandomNormal",
    "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "StringNormalizer",
    "TfIdfVectorizer", "RegexFullMatch", "StringConcat", "StringSplit", "ImageDecoder",
    "BlackmanWindow", "HammingWindow", "HannWindow", "TensorScatter", "BitCast",
]
# Broadcasting binary / variadic element-wise ops.
BINARY: dict[str, float] = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Pow": 1, "Mod": 1, "Max": 1, "Min": 1,
    "Mean": 1, "Sum": 1, "And": 1, "Or": 1, "Xor": 1, "Equal": 1, "Greater": 1, "Less": 1,
    "GreaterOrEqual": 1, "LessOrEqual": 1, "BitShift": 1, "BitwiseAnd": 1, "BitwiseOr": 1,
    "BitwiseXor": 1, "PRelu": 2, "Where": 1,
}
COMPARISONS = {"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor",
               "Not", "IsNaN", "IsInf"}
# Per reduced *input* element.
REDUCE: dict[str, float] = {
    "ReduceSum": 1, "ReduceMean": 1, "ReduceMax": 1, "ReduceMin": 1, "ReduceProd": 1,
    "ReduceL1": 2, "ReduceL2": 2, "ReduceSumSquare": 2, "ReduceLogSum": 1,
    "ReduceLogSumExp": 2, "ArgMax": 1, "ArgMin": 1,
}
# Normalisations and softmax-like ops, per output element.
NORMALIZE: dict[str, float] = {
    "Softmax": 5, "LogSoftmax": 5, "Hardmax": 2, "LayerNormalization": 8,
    "RMSNormalization": 5, "SimplifiedLayerNormalization": 5, "BatchNormalization": 2,
    "InstanceNormalization": 8, "GroupNormalization": 8, "MeanVarianceNormalization": 6,
    "LpNormalization": 3, "LRN": 6,
}
POOL = ["MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
        "GlobalLpPool", "MaxRoiPool", "RoiAlign"]
CONV = ["Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "DeformConv"]
MATMUL = ["MatMul", "MatMulInteger", "QLinearMatMul", "Gemm", "Einsum"]
RECURRENT = ["LSTM", "GRU", "RNN"]
CONTROL = ["If", "Loop", "Scan", "SequenceMap"]
# (x - zero_point)·scale = 2 (the cost rule drops 1 without a zero point);
# x/scale, round, +zero_point, saturate = 4; min/max pass 2 + quantize 4 = 6.
QUANT = {"QuantizeLinear": 4, "DequantizeLinear": 2, "DynamicQuantizeLinear": 6}
# Cumulative ops along an axis: one add (multiply) per element.
SCAN_OPS = {"CumSum": 1, "CumProd": 1}
# Losses: log-softmax 5 + gather/weight/reduce 2 per input element (cross-entropy);
# gather/weight/reduce 2 (NLL).
LOSS = {"SoftmaxCrossEntropyLoss": 7, "NegativeLogLikelihoodLoss": 2}
RESIZE = ["Resize", "Upsample", "GridSample", "AffineGrid"]
OTHER = ["TopK", "NonMaxSuppression", "DFT", "STFT", "MelWeightMatrix", "Det", "CausalConvWithState"]
# Attention-like ops of the default/preview domains.
ATTENTION = ["Attention", "LinearAttention"]

# com.microsoft contrib ops that onnxruntime fusions emit.
MS_UNARY = {"FastGelu": 8, "BiasGelu": 7, "Gelu": 6, "QuickGelu": 5, "BiasAdd": 1,
            "RotaryEmbedding": 3}
MS_NORMALIZE = {"SkipLayerNormalization": 9, "SimplifiedLayerNormalization": 5,
                "SkipSimplifiedLayerNormalization": 6, "EmbedLayerNormalization": 9,
                "LayerNormalization": 8}
MS_ATTENTION = ["Attention", "MultiHeadAttention", "GroupQueryAttention", "SparseAttention",
                "LongformerAttention", "PackedAttention", "PackedMultiHeadAttention",
                "PagedAttention", "DecoderMaskedMultiHeadAttention"]
MS_MATMUL = ["MatMulNBits", "FusedMatMul", "MatMulIntegerToFloat", "QOrderedMatMul",
             "DynamicQuantizeMatMul", "GatherBlockQuantized", "FusedConv", "QLinearConv", "QGemm"]
MS_RECURRENT = ["DynamicQuantizeLSTM"]
# Quantized element-wise kernels: the float op's arithmetic per output element (dequantize
# and requantize are the kernel's bookkeeping, as for QLinearConv/QLinearMatMul).
MS_QLINEAR = {"QLinearAdd": 1, "QLinearMul": 1, "QLinearSigmoid": 4, "QLinearLeakyRelu": 2}
MS_POOL = ["QLinearGlobalAveragePool"]


def rules() -> list[OpRule]:
    out: list[OpRule] = []

    def add(ops: Mapping[str, float] | list[str], category: str, domain: str = "") -> None:
        for op in ops:
            per = ops[op] if isinstance(ops, Mapping) else None
            out.append(OpRule(op, domain, category=category, flops_per_element=per))

    add(UNARY, "elementwise")
    add(GATED, "binary")
    add(BINARY, "binary")
    add(MOVEMENT, "movement")
    add(REDUCE, "reduce")
    add(NORMALIZE, "normalize")
    add(POOL, "pool")
    add(CONV, "conv")
    add(MATMUL, "matmul")
    add(RECURRENT, "recurrent")
    add(CONTROL, "control")
    add(QUANT, "quant")
    add(SCAN_OPS, "other")
    add(LOSS, "reduce")
    add(RESIZE, "resize")
    add(OTHER, "other")
    add(ATTENTION, "attention")
    add(["FlexAttention"], "attention", "ai.onnx.preview")
    add(MS_UNARY, "elementwise", MS)
    add(MS_NORMALIZE, "normalize", MS)
    add(MS_ATTENTION, "attention", MS)
    add(MS_MATMUL, "matmul", MS)
    add(MS_RECURRENT, "recurrent", MS)
    add(MS_QLINEAR, "elementwise", MS)
    add(MS_POOL, "pool", MS)
    return out
