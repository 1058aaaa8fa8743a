"""Shape rules of element-wise families: unary, binary/broadcast, normalisations,
reductions, casts — and the symbolic *values* of small integer tensors they compute."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ... import dims as D
from ... import symbolic as S
from ...dims import Dim
from ...graph import TensorType
from .. import catalog
from ..registry import MS

if TYPE_CHECKING:
    from ...shapes import ShapeCtx, SymValue
from .common import SHAPE, Out, T, broadcast, elementwise_values, norm_axis, same


# -- element-wise families ----------------------------------------------------
def unary_shape(ctx: ShapeCtx) -> Out:
    if ctx.node.op_type in catalog.COMPARISONS:
        return [same(ctx, 0, T.BOOL)]
    return [same(ctx, 0)]


@SHAPE.rule("Identity")
def identity(ctx: ShapeCtx) -> Out:
    v = ctx.value(0)
    if v is not None:
        ctx.set_value(0, v)
    return [same(ctx, 0)]


def _mod(a: Dim, b: Dim, fmod: bool) -> Dim | None:
    """Integer ``Mod`` of shape values; symbolic by a positive constant as
    ``a - b·floor(a/b)`` (Swin pads its map to whole windows with
    ``(w - H % w) % w``, H symbolic in a dynamic-H/W export). ``fmod`` (C's sign
    rule) only for concrete values."""
    if D.is_int(a) and D.is_int(b):
        if not b:
            return None
        return int(math.fmod(a, b)) if fmod else a % b
    if fmod or not D.is_int(b) or b <= 0:
        return None
    return D.sub(a, D.mul(b, D.floordiv(a, b)))


def _int_div(a: Dim, b: Dim) -> Dim | None:
    """ONNX integer ``Div`` truncates toward zero (C's rule): exact on numbers. A symbolic
    numerator provably ≤ 0 divides as ``−floor(−a/b)``; otherwise it is a size (≥ 0 for every
    input the model accepts — Swin's ``(H + pad)/window``) and truncation is floor. The
    whole-graph oracle checks these against onnxruntime on every model the tests run."""
    if D.is_int(a) and D.is_int(b):
        if not b:
            return None
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    if not D.is_int(b):  # a symbolic divisor: sizes (``B·nW / nW``), evaluated at the binding
        return D.floordiv(a, b)
    if b <= 0:
        return None
    if S.bounds(a)[1] <= 0:
        return D.sub(0, D.floordiv(D.sub(0, a), b))
    return D.floordiv(a, b)


def binary_shape(ctx: ShapeCtx) -> Out:
    op = ctx.node.op_type
    n = ctx.n_inputs
    shape = broadcast([ctx.shape(i) for i in range(n) if ctx.has(i)])
    if op == "Where":
        dtype = ctx.dtype(1) or ctx.dtype(2)
        cond = ctx.value(0)
        if cond is not None:
            xs, ys = ctx.value(1), ctx.value(2)
            if xs is not None and ys is not None:
                L = max(len(cond), len(xs), len(ys))
                def pick(v: SymValue, k: int) -> Dim | None:
                    return v[0] if len(v) == 1 else v[k]

                if all(len(v) in (1, L) for v in (cond, xs, ys)):
                    ctx.set_value(0, [pick(xs, k) if pick(cond, k) else pick(ys, k) for k in range(L)])
        return [TensorType(dtype, shape)]
    dtype = T.BOOL if op in catalog.COMPARISONS else ctx.dtype(0)
    fns = {"Add": D.add, "Sub": D.sub, "Mul": D.mul, "Max": D.dmax, "Min": D.dmin,
           "Div": _int_div,
           "Mod": lambda a, b: _mod(a, b, bool(ctx.attr("fmod", 0))),
           "Equal": lambda a, b: int(a == b) if D.is_int(a) and D.is_int(b) else None}
    if op in fns and n == 2 and (dtype in (T.INT64, T.INT32, T.BOOL) or dtype is None):
        computed = elementwise_values(ctx, fns[op])
        if computed is not None:
            ctx.set_value(0, computed)
    return [TensorType(dtype, shape)]


def normalize_shape(ctx: ShapeCtx) -> Out:
    t = same(ctx, 0)
    op = ctx.node.op_type
    outs: Out = [t]
    if t is not None and t.shape is not None and len(ctx.node.outputs) > 1:
        rank = len(t.shape)
        if op == "LayerNormalization":
            axis = norm_axis(ctx.attr("axis", -1), rank)
            stat = TensorType(T.FLOAT, tuple(t.shape[:axis]) + (1,) * (rank - axis))
            outs += [stat, stat]
        elif op == "BatchNormalization" and rank >= 2:
            c = TensorType(ctx.dtype(0), (t.shape[1],))
            outs += [c, c, c, c]
        elif op in ("SkipLayerNormalization", "SkipSimplifiedLayerNormalization"):
            stat = TensorType(T.FLOAT, tuple(t.shape[:-1]) + (1,))
            outs += [stat, stat, t]
    return outs


def reduce_shape(ctx: ShapeCtx) -> Out:
    shape = ctx.shape(0)
    op = ctx.node.op_type
    keep = ctx.attr("keepdims", 1)
    if op in ("ArgMax", "ArgMin"):
        if shape is None:
            return [TensorType(T.INT64, None)]
        axis = norm_axis(ctx.attr("axis", 0), len(shape))
        out = list(shape)
        if keep:
            out[axis] = 1
        else:
            del out[axis]
        return [TensorType(T.INT64, tuple(out))]
    axes_from_input = ctx.opset >= 18 or (op == "ReduceSum" and ctx.opset >= 13)
    if axes_from_input and ctx.has(1):
        axes = ctx.ints(1)
        if axes is None:
            rank = None if shape is None or not keep else len(shape)
            return [TensorType(ctx.dtype(0), None if rank is None else (None,) * rank)]
    else:
        axes = ctx.attr("axes")
    if shape is None:
        return [TensorType(ctx.dtype(0), None)]
    rank = len(shape)
    if not axes:
        if axes_from_input and ctx.attr("noop_with_empty_axes", 0):
            return [same(ctx, 0)]
        axes = list(range(rank))
    ax = {norm_axis(a, rank) for a in axes}
    out = [(1 if k in ax else d) for k, d in enumerate(shape) if keep or k not in ax]
    t = TensorType(ctx.dtype(0), tuple(out))
    if op in ("ReduceProd", "ReduceSum") and not keep and rank == 1:
        v = ctx.value(0)
        if v is not None and all(x is not None for x in v):
            ctx.set_value(0, [D.prod(v) if op == "ReduceProd" else sum(v, 0)])  # type: ignore[arg-type]
    return [t]


SHAPE.add(catalog.UNARY, unary_shape)
SHAPE.add(catalog.MS_UNARY, unary_shape, MS)
SHAPE.add(catalog.BINARY, binary_shape)
SHAPE.add(catalog.GATED, binary_shape)
SHAPE.add(catalog.NORMALIZE, normalize_shape)
SHAPE.add(catalog.MS_NORMALIZE, normalize_shape, MS)
SHAPE.add(catalog.REDUCE, reduce_shape)


@SHAPE.rule("Dropout", "Trilu", "CumSum", "CumProd", "ReverseSequence", "Shrink")
def passthrough(ctx: ShapeCtx) -> Out:
    t = same(ctx, 0)
    return [t, TensorType(T.BOOL, t.shape) if t else None]


@SHAPE.rule("Cast")
def cast(ctx: ShapeCtx) -> Out:
    """Integer shape values keep their value through a cast to integers, and to floats too
    (a size is exactly representable): YOLO's anchors are ``Range(0.0, float(w), 1.0)``."""
    v = ctx.value(0)
    to = ctx.attr("to")
    if v is not None and (to in (T.INT64, T.INT32) or (to in (T.FLOAT, T.DOUBLE) and ctx.dtype(0) in
                                                        (T.INT64, T.INT32))):
        ctx.set_value(0, v)
    return [same(ctx, 0, ctx.attr("to"))]


@SHAPE.rule("BitCast")
def bitcast(ctx: ShapeCtx) -> Out:
    return [same(ctx, 0, ctx.attr("to"))]


@SHAPE.rule("CastLike")
def cast_like(ctx: ShapeCtx) -> Out:
    v = ctx.value(0)
    if v is not None and ctx.dtype(1) in (T.INT64, T.INT32):
        ctx.set_value(0, v)
    return [same(ctx, 0, ctx.dtype(1))]


@SHAPE.rule("Neg", "Abs")
def neg(ctx: ShapeCtx) -> Out:
    v = ctx.value(0)
    if v is not None:
        negate = ctx.node.op_type == "Neg"
        ctx.set_value(0, [None if x is None else D.normalize(D.sub(0, x) if negate else abs(x) if D.is_int(x) else x)
                          for x in v])
    return [same(ctx, 0)]


@SHAPE.rule("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss")
def loss(ctx: ShapeCtx) -> Out:
    """``reduction`` mean/sum → scalar; none → the target's shape. Cross-entropy
    also returns log-probabilities shaped like the scores."""
    reduction = ctx.attr("reduction", "mean")
    out = TensorType(ctx.dtype(0), () if reduction != "none" else ctx.shape(1))
    return [out, same(ctx, 0)] if ctx.node.op_type == "SoftmaxCrossEntropyLoss" else [out]
