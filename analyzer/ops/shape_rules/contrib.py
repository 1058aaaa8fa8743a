"""Shape rules of the com.microsoft quantized kernels onnxruntime's quantizer and
optimizer emit (``quantize_dynamic``, ``quantize_static``, the transformer fusions).

Input layouts follow onnxruntime's contrib-op specs (docs/ContribOperators.md); every
rule here is checked by executing the op with onnxruntime (``tests/test_contrib_ops.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...graph import TensorType
from ..registry import MS
from .common import SHAPE, Out, T, broadcast, same
from .nn import matmul_shape, recurrent

if TYPE_CHECKING:
    from ...shapes import ShapeCtx

SHAPE.rule("DynamicQuantizeLSTM", domain=MS)(recurrent)  # X, W [dirs, I, 4H] int8, R …: an LSTM's outputs


@SHAPE.rule("DynamicQuantizeMatMul", "MatMulIntegerToFloat", domain=MS)
def matmul_to_float(ctx: ShapeCtx) -> Out:
    """A [.., M, K] × B [.., K, N] → float [.., M, N] (A quantized on the fly, or already int8)."""
    return [TensorType(T.FLOAT, matmul_shape(ctx.shape(0), ctx.shape(1)))]


@SHAPE.rule("QGemm", domain=MS)
def qgemm(ctx: ShapeCtx) -> Out:
    """A, a_scale, a_zp, B, b_scale, b_zp, C?, y_scale?, y_zp? → [M, N]: float without
    y_scale, else y_zero_point's (A's) quantized type."""
    a, b = ctx.shape(0), ctx.shape(3)
    dtype = (ctx.dtype(8) or ctx.dtype(0)) if ctx.has(7) else T.FLOAT
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return [TensorType(dtype, None)]
    m = a[1] if ctx.attr("transA", 0) else a[0]
    n = b[0] if ctx.attr("transB", 0) else b[1]
    return [TensorType(dtype, (m, n))]


@SHAPE.rule("QLinearAdd", "QLinearMul", domain=MS)
def qlinear_binary(ctx: ShapeCtx) -> Out:
    """A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp → broadcast(A, B), A's type."""
    return [TensorType(ctx.dtype(0), broadcast([ctx.shape(0), ctx.shape(3)]))]


@SHAPE.rule("QLinearSigmoid", "QLinearLeakyRelu", domain=MS)
def qlinear_unary(ctx: ShapeCtx) -> Out:
    return [same(ctx, 0)]


@SHAPE.rule("QLinearGlobalAveragePool", domain=MS)
def qlinear_global_pool(ctx: ShapeCtx) -> Out:
    """[N, C, *S] → [N, C, 1…] (``channels_last``: [N, *S, C] → [N, 1…, C])."""
    x = ctx.shape(0)
    if x is None or len(x) < 3:
        return [TensorType(ctx.dtype(0), None)]
    if ctx.attr("channels_last", 0):
        return [TensorType(ctx.dtype(0), (x[0], *(1 for _ in x[1:-1]), x[-1]))]
    return [TensorType(ctx.dtype(0), (x[0], x[1], *(1 for _ in x[2:])))]
