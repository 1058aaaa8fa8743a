"""Shape rules of contractions and spatial ops: MatMul/Gemm/Einsum, Conv/ConvTranspose,
pooling, recurrent cells, quantisation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ... import dims as D
from ...dims import Dim
from ...graph import Shape, TensorType
from ..registry import MS

if TYPE_CHECKING:
    from ...shapes import ShapeCtx
from .common import SHAPE, Out, T, broadcast, same


# -- compute ---------------------------------------------------------------------
def matmul_shape(a: Shape | None, b: Shape | None) -> Shape | None:
    if a is None or b is None or not a or not b:
        return None
    a1, b1 = len(a) == 1, len(b) == 1
    aa = (1,) + tuple(a) if a1 else tuple(a)
    bb = tuple(b) + (1,) if b1 else tuple(b)
    batch = broadcast([aa[:-2], bb[:-2]])
    if batch is None:
        return None
    out = tuple(batch) + (aa[-2], bb[-1])
    if a1:
        out = out[:-2] + out[-1:]
    if b1:
        out = out[:-1]
    return out


@SHAPE.rule("MatMul")
def matmul(ctx: ShapeCtx) -> Out:
    return [TensorType(ctx.dtype(0), matmul_shape(ctx.shape(0), ctx.shape(1)))]


@SHAPE.rule("MatMulInteger")
def matmul_integer(ctx: ShapeCtx) -> Out:
    return [TensorType(T.INT32, matmul_shape(ctx.shape(0), ctx.shape(1)))]


@SHAPE.rule("QLinearMatMul")
def qlinear_matmul(ctx: ShapeCtx) -> Out:
    return [TensorType(ctx.dtype(7) or ctx.dtype(0), matmul_shape(ctx.shape(0), ctx.shape(3)))]


@SHAPE.rule("FusedMatMul", domain=MS)
def fused_matmul(ctx: ShapeCtx) -> Out:
    a, b = ctx.shape(0), ctx.shape(1)
    if a is not None and ctx.attr("transA", 0) and len(a) >= 2:
        a = tuple(a[:-2]) + (a[-1], a[-2])
    if b is not None and ctx.attr("transB", 0) and len(b) >= 2:
        b = tuple(b[:-2]) + (b[-1], b[-2])
    return [TensorType(ctx.dtype(0), matmul_shape(a, b))]


@SHAPE.rule("MatMulNBits", domain=MS)
def matmul_nbits(ctx: ShapeCtx) -> Out:
    a = ctx.shape(0)
    n = ctx.attr("N")
    return [TensorType(ctx.dtype(0), None if a is None else tuple(a[:-1]) + (n,))]


@SHAPE.rule("Gemm")
def gemm(ctx: ShapeCtx) -> Out:
    a, b = ctx.shape(0), ctx.shape(1)
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return [TensorType(ctx.dtype(0), (None, None))]
    m = a[1] if ctx.attr("transA", 0) else a[0]
    n = b[0] if ctx.attr("transB", 0) else b[1]
    return [TensorType(ctx.dtype(0), (m, n))]


_EINSUM_TERM = re.compile(r"^[A-Za-z.]*$")


def einsum_letters(term: str, shape: Shape) -> dict[str, Dim | None]:
    out: dict[str, Dim | None] = {}
    if "..." in term:
        pre, post = term.split("...")
        n_ell = len(shape) - len(pre) - len(post)
        for k, ch in enumerate(pre):
            out[ch] = shape[k]
        for k in range(n_ell):
            out[f"...{k}"] = shape[len(pre) + k]
        for k, ch in enumerate(post):
            out[ch] = shape[len(pre) + n_ell + k]
        return out
    for ch, d in zip(term, shape, strict=True):
        out[ch] = d if out.get(ch) in (None, 1) else out[ch]
    return out


def parse_einsum(eq: str) -> tuple[list[str], str]:
    eq = eq.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if not _:
        letters = [c for c in lhs if c.isalpha()]
        rhs = ("..." if "..." in lhs else "") + "".join(sorted(c for c in set(letters)
                                                              if letters.count(c) == 1))
    return terms, rhs


@SHAPE.rule("Einsum")
def einsum(ctx: ShapeCtx) -> Out:
    terms, rhs = parse_einsum(ctx.attr("equation", ""))
    sizes: dict[str, Dim | None] = {}
    n_ell = 0
    for k, term in enumerate(terms):
        s = ctx.shape(k)
        if s is None:
            return [TensorType(ctx.dtype(0), None)]
        letters = einsum_letters(term, s)
        n_ell = max(n_ell, sum(1 for c in letters if c.startswith("...")))
        for c, d in letters.items():
            if sizes.get(c) in (None, 1):
                sizes[c] = d
    out: list[Dim | None] = []
    pre, _, post = rhs.partition("...")
    out += [sizes.get(c) for c in pre]
    if "..." in rhs:
        out += [sizes.get(f"...{k}") for k in range(n_ell)]
    out += [sizes.get(c) for c in post]
    return [TensorType(ctx.dtype(0), tuple(out))]


def _spatial_out(in_dim: Dim | None, k: int, stride: int, dil: int, pb: int, pe: int,
                 auto_pad: str, ceil_mode: bool = False) -> Dim | None:
    if in_dim is None:
        return None
    eff = dil * (k - 1) + 1
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return D.ceildiv(in_dim, stride)
    if auto_pad == "VALID":
        return D.add(D.floordiv(D.sub(in_dim, eff), stride), 1)
    num = D.sub(D.add(in_dim, pb + pe), eff)
    if ceil_mode:
        out = D.add(D.ceildiv(num, stride), 1)
        if D.is_int(out) and D.is_int(in_dim) and (out - 1) * stride >= in_dim + pb:
            out = out - 1
        return out
    return D.add(D.floordiv(num, stride), 1)


def conv_geometry(ctx: ShapeCtx, kernel: Sequence[int]) -> tuple[list[int], list[int], list[int], str]:
    n = len(kernel)
    strides = list(ctx.attr("strides") or [1] * n)
    dil = list(ctx.attr("dilations") or [1] * n)
    pads = list(ctx.attr("pads") or [0] * (2 * n))
    return strides, dil, pads, ctx.attr("auto_pad", "NOTSET") or "NOTSET"


def kernel_of(ctx: ShapeCtx, weight_input: int) -> list[int] | None:
    k = ctx.attr("kernel_shape")
    if k:
        return list(k)
    w = ctx.shape(weight_input)
    if w is None or any(D.as_int(d) is None for d in w[2:]):
        return None
    return [D.as_int(d) for d in w[2:]]  # type: ignore[misc]


@SHAPE.rule("Conv", "ConvInteger", "QLinearConv", "DeformConv")
@SHAPE.rule("FusedConv", "QLinearConv", domain=MS)
def conv(ctx: ShapeCtx) -> Out:
    op = ctx.node.op_type
    w_in = 3 if op == "QLinearConv" else 1
    x, w = ctx.shape(0), ctx.shape(w_in)
    dtype = T.INT32 if op == "ConvInteger" else (ctx.dtype(7) if op == "QLinearConv" else ctx.dtype(0))
    if x is None:
        return [TensorType(dtype, None)]
    kernel = kernel_of(ctx, w_in)
    if kernel is None:
        return [TensorType(dtype, (x[0], w[0] if w else None) + (None,) * (len(x) - 2))]
    strides, dil, pads, auto = conv_geometry(ctx, kernel)
    n = len(kernel)
    spatial = [_spatial_out(x[2 + i], kernel[i], strides[i], dil[i], pads[i], pads[i + n], auto)
               for i in range(n)]
    return [TensorType(dtype, (x[0], w[0] if w else None, *spatial))]


@SHAPE.rule("ConvTranspose")
def conv_transpose(ctx: ShapeCtx) -> Out:
    x, w = ctx.shape(0), ctx.shape(1)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    group = ctx.attr("group", 1)
    c_out = D.mul(w[1], group) if w is not None and w[1] is not None else None
    kernel = kernel_of(ctx, 1)
    out_shape = ctx.attr("output_shape")
    if out_shape:
        return [TensorType(ctx.dtype(0), (x[0], c_out, *out_shape[-(len(x) - 2):]))]
    if kernel is None:
        return [TensorType(ctx.dtype(0), (x[0], c_out) + (None,) * (len(x) - 2))]
    strides, dil, pads, auto = conv_geometry(ctx, kernel)
    n = len(kernel)
    opad = list(ctx.attr("output_padding") or [0] * n)
    spatial: list[Dim | None] = []
    for i in range(n):
        d = x[2 + i]
        if d is None:
            spatial.append(None)
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            spatial.append(D.mul(d, strides[i]))
        else:
            full = D.add(D.mul(strides[i], D.sub(d, 1)), opad[i] + (kernel[i] - 1) * dil[i] + 1)
            pb, pe = (0, 0) if auto == "VALID" else (pads[i], pads[i + n])
            spatial.append(D.sub(full, pb + pe))
    return [TensorType(ctx.dtype(0), (x[0], c_out, *spatial))]


@SHAPE.rule("MaxPool", "AveragePool", "LpPool")
def pool(ctx: ShapeCtx) -> Out:
    x = ctx.shape(0)
    kernel = ctx.attr("kernel_shape")
    if x is None or not kernel:
        return [TensorType(ctx.dtype(0), None), TensorType(T.INT64, None)]
    strides, dil, pads, auto = conv_geometry(ctx, kernel)
    n = len(kernel)
    ceil_mode = bool(ctx.attr("ceil_mode", 0))
    spatial = [_spatial_out(x[2 + i], kernel[i], strides[i], dil[i], pads[i], pads[i + n], auto,
                            ceil_mode) for i in range(n)]
    out = TensorType(ctx.dtype(0), (x[0], x[1], *spatial))
    return [out, TensorType(T.INT64, out.shape)]


@SHAPE.rule("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def global_pool(ctx: ShapeCtx) -> Out:
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    return [TensorType(ctx.dtype(0), (x[0], x[1]) + (1,) * (len(x) - 2))]


@SHAPE.rule("MaxRoiPool", "RoiAlign")
def roi_pool(ctx: ShapeCtx) -> Out:
    x, rois = ctx.shape(0), ctx.shape(1)
    if ctx.node.op_type == "MaxRoiPool":
        ph, pw = ctx.attr("pooled_shape") or (None, None)
    else:
        ph, pw = ctx.attr("output_height", 1), ctx.attr("output_width", 1)
    n = rois[0] if rois else None
    return [TensorType(ctx.dtype(0), (n, x[1] if x else None, ph, pw))]


@SHAPE.rule("LSTM", "GRU", "RNN")
def recurrent(ctx: ShapeCtx) -> Out:
    x = ctx.shape(0)
    hidden = ctx.attr("hidden_size")
    dirs = 2 if ctx.attr("direction", "forward") == "bidirectional" else 1
    layout = ctx.attr("layout", 0)
    dtype = ctx.dtype(0)
    if x is None:
        return [TensorType(dtype, None)] * len(ctx.node.outputs)
    y: tuple[Dim | None, ...]
    h: tuple[Dim | None, ...]
    if layout == 0:
        seq, batch = x[0], x[1]
        y = (seq, dirs, batch, hidden)
        h = (dirs, batch, hidden)
    else:
        batch, seq = x[0], x[1]
        y = (batch, seq, dirs, hidden)
        h = (batch, dirs, hidden)
    return [TensorType(dtype, y), TensorType(dtype, h), TensorType(dtype, h)]


@SHAPE.rule("QuantizeLinear")
def quantize(ctx: ShapeCtx) -> Out:
    dtype = ctx.dtype(2) if ctx.has(2) else (ctx.attr("output_dtype") or T.UINT8)
    return [same(ctx, 0, dtype)]


@SHAPE.rule("DequantizeLinear")
@SHAPE.rule("DequantizeLinear", domain=MS)
def dequantize(ctx: ShapeCtx) -> Out:
    return [same(ctx, 0, ctx.attr("output_dtype") or ctx.dtype(1) or T.FLOAT)]


@SHAPE.rule("DynamicQuantizeLinear")
def dynamic_quantize(ctx: ShapeCtx) -> Out:
    return [same(ctx, 0, T.UINT8), TensorType(T.FLOAT, ()), TensorType(T.UINT8, ())]



@SHAPE.rule("CausalConvWithState")
def causal_conv_with_state(ctx: ShapeCtx) -> Out:
    """(B, C, L) in and out; the carried state holds the last k - 1 positions."""
    x, w = ctx.shape(0), ctx.shape(1)
    state = None
    if x is not None and w is not None and len(w) == 3 and D.as_int(w[2]) is not None:
        state = TensorType(ctx.dtype(0), (x[0], x[1], D.as_int(w[2]) - 1))  # type: ignore[operator]
    return [same(ctx, 0), state]
