"""Shape rules for standard ONNX ops (and the com.microsoft ops fusions emit).

Each rule gets a :class:`~model_analyze.shapes.ShapeCtx` and returns the output
types (``None`` where it cannot tell). Dims stay symbolic through arithmetic in
:mod:`model_analyze.dims`. A rule may raise on malformed input: the engine
catches it and falls back to the exporter's value_info, so rules are written
for the valid case and never need defensive clutter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import onnx

from .. import dims as D
from ..dims import Dim
from ..graph import Shape, TensorType
from . import catalog
from .registry import MS, RuleTable

if TYPE_CHECKING:
    from ..shapes import ShapeCtx

SHAPE = RuleTable("shape")
T = onnx.TensorProto
BIG = 1 << 30  # slice bounds at/above this mean "to the end"

Out = list[TensorType | None]


# -- helpers ---------------------------------------------------------------
def same(ctx: ShapeCtx, i: int = 0, dtype: int | None = None) -> TensorType | None:
    t = ctx.type(i)
    if t is None:
        return None
    return TensorType(dtype if dtype is not None else t.dtype, t.shape)


def norm_axis(axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < max(rank, 1):
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return a


def broadcast(shapes: Sequence[Shape | None]) -> Shape | None:
    """Numpy broadcasting with symbolic dims (valid models assumed)."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)  # type: ignore[arg-type]
    out: list[Dim | None] = []
    for k in range(rank):
        cands = []
        for s in shapes:
            j = k - (rank - len(s))  # type: ignore[arg-type]
            if j >= 0:
                cands.append(s[j])  # type: ignore[index]
        non_one = [d for d in cands if d != 1]
        if not non_one:
            out.append(1)
            continue
        known = [d for d in non_one if d is not None]
        if len(known) < len(non_one):
            concrete = [d for d in known if D.is_int(d)]
            out.append(concrete[0] if concrete else None)
            continue
        concrete = [d for d in known if D.is_int(d)]
        if concrete:
            out.append(max(concrete))
            continue
        res = known[0]
        for d in known[1:]:
            if not D.equal(res, d):
                res = D.dmax(res, d)
        out.append(res)
    return tuple(out)


def elementwise_values(ctx: ShapeCtx, fn: Any, n: int = 2) -> list[Dim | None] | None:
    vals = [ctx.value(i) for i in range(n)]
    if any(v is None for v in vals):
        return None
    length = max(len(v) for v in vals)  # type: ignore[arg-type]
    if any(len(v) not in (1, length) for v in vals):  # type: ignore[arg-type]
        return None
    out: list[Dim | None] = []
    for k in range(length):
        args = [v[0] if len(v) == 1 else v[k] for v in vals]  # type: ignore[index,arg-type]
        out.append(None if any(a is None for a in args) else fn(*args))
    return out


def axes_input_or_attr(ctx: ShapeCtx, input_index: int, attr: str = "axes") -> list[int] | None:
    if ctx.has(input_index):
        return ctx.ints(input_index)
    value = ctx.attr(attr)
    return list(value) if value is not None else None


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
        return int(math.fmod(a, b)) if fmod else a % b  # type: ignore[operator]
    if fmod or not D.is_int(b) or b <= 0:  # type: ignore[operator]
        return None
    return D.sub(a, D.mul(b, D.floordiv(a, b)))


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
                pick = lambda v, k: v[0] if len(v) == 1 else v[k]  # noqa: E731
                if all(len(v) in (1, L) for v in (cond, xs, ys)):
                    vals = [pick(xs, k) if pick(cond, k) else pick(ys, k) for k in range(L)]
                    ctx.set_value(0, vals)
        return [TensorType(dtype, shape)]
    dtype = T.BOOL if op in catalog.COMPARISONS else ctx.dtype(0)
    fns = {"Add": D.add, "Sub": D.sub, "Mul": D.mul, "Max": D.dmax, "Min": D.dmin,
           "Div": lambda a, b: D.floordiv(a, b) if b != 0 else None,
           "Mod": lambda a, b: _mod(a, b, bool(ctx.attr("fmod", 0))),
           "Equal": lambda a, b: int(a == b) if D.is_int(a) and D.is_int(b) else None}
    if op in fns and n == 2 and (dtype in (T.INT64, T.INT32, T.BOOL) or dtype is None):
        vals = elementwise_values(ctx, fns[op])
        if vals is not None:
            ctx.set_value(0, vals)
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
    v = ctx.value(0)
    if v is not None and ctx.attr("to") in (T.INT64, T.INT32):
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
        fn = (lambda x: -x) if ctx.node.op_type == "Neg" else (lambda x: abs(x) if D.is_int(x) else x)
        ctx.set_value(0, [None if x is None else D.normalize(fn(x)) for x in v])
    return [same(ctx, 0)]


# -- shape/data movement --------------------------------------------------------
@SHAPE.rule("Shape")
def shape_op(ctx: ShapeCtx) -> Out:
    shape = ctx.shape(0)
    if shape is None:
        return [TensorType(T.INT64, (None,))]
    r = len(shape)
    start = ctx.attr("start", 0)
    end = ctx.attr("end", r)
    start = max(0, min(r, start + r if start < 0 else start))
    end = max(0, min(r, end + r if end < 0 else end))
    dims = shape[start:end] if end > start else ()
    ctx.set_value(0, list(dims))
    return [TensorType(T.INT64, (len(dims),))]


@SHAPE.rule("Size")
def size_op(ctx: ShapeCtx) -> Out:
    shape = ctx.shape(0)
    if shape is not None and all(d is not None for d in shape):
        ctx.set_value(0, [D.prod(shape)])
    return [TensorType(T.INT64, ())]


@SHAPE.rule("Constant")
def constant(ctx: ShapeCtx) -> Out:
    node = ctx.node
    for a in node.proto.attribute:
        if a.name == "value" and a.HasField("t"):
            dims = tuple(int(d) for d in a.t.dims)
            v = ctx.engine.value_of(node.outputs[0], node.graph)
            if v is not None:
                ctx.set_value(0, v)
            return [TensorType(a.t.data_type, dims)]
        if a.name == "sparse_value":
            return [TensorType(a.sparse_tensor.values.data_type, tuple(a.sparse_tensor.dims))]
        scalar = {"value_float": T.FLOAT, "value_int": T.INT64, "value_string": T.STRING}
        if a.name in scalar:
            if a.name == "value_int":
                ctx.set_value(0, [a.i])
            return [TensorType(scalar[a.name], ())]
        lists = {"value_floats": (T.FLOAT, a.floats), "value_ints": (T.INT64, a.ints),
                 "value_strings": (T.STRING, a.strings)}
        if a.name in lists:
            dtype, items = lists[a.name]
            if a.name == "value_ints":
                ctx.set_value(0, list(items))
            return [TensorType(dtype, (len(items),))]
    return [None]


@SHAPE.rule("Reshape")
def reshape(ctx: ShapeCtx) -> Out:
    target = ctx.value(1) if ctx.opset >= 5 else ctx.attr("shape")
    src = ctx.shape(0)
    if target is None:
        tshape = ctx.shape(1)
        n = D.as_int(tshape[0]) if tshape else None
        return [TensorType(ctx.dtype(0), None if n is None else (None,) * n)]
    allowzero = ctx.attr("allowzero", 0)
    out: list[Dim | None] = []
    for k, d in enumerate(target):
        if d == 0 and not allowzero:
            out.append(src[k] if src is not None and k < len(src) else None)
        else:
            out.append(d)
    if -1 in out:
        k = out.index(-1)
        rest = [d for j, d in enumerate(out) if j != k]
        if src is not None and all(d is not None for d in src) and all(d is not None for d in rest):
            denom = D.prod(rest)
            total = D.prod(src)
            exact = D.divide(total, denom) if denom != 0 else 0
            out[k] = exact if exact is not None else D.floordiv(total, denom)  # seq·64/64 = seq
        else:
            out[k] = None
    v = ctx.value(0)
    if v is not None and (len(out) <= 1 or _numel(out) == len(v)):
        ctx.set_value(0, v)  # values are kept flat, row-major: a reshape does not move them
    return [TensorType(ctx.dtype(0), tuple(out))]


def _numel(shape: Sequence[Dim | None]) -> int | None:
    sizes = [D.as_int(d) for d in shape]
    return None if any(x is None for x in sizes) else math.prod(sizes)  # type: ignore[arg-type]


def _value_array(ctx: ShapeCtx, i: int) -> Any:
    """A small multi-dimensional shape value as a numpy object array (``None`` if unknown):
    TorchScript's ``F.pad`` reverses the pads as a ``[k, 2]`` tensor (Reshape → Slice with
    step -1 → Transpose → Reshape), and those pads carry symbolic sizes."""
    import numpy as np

    v, s = ctx.value(i), ctx.shape(i)
    if v is None or s is None or _numel(s) != len(v):
        return None
    arr = np.empty(len(v), dtype=object)
    arr[:] = list(v)
    return arr.reshape([D.as_int(d) for d in s])


@SHAPE.rule("Flatten")
def flatten(ctx: ShapeCtx) -> Out:
    s = ctx.shape(0)
    if s is None:
        return [TensorType(ctx.dtype(0), (None, None))]
    axis = ctx.attr("axis", 1)
    axis = axis + len(s) if axis < 0 else axis
    a, b = s[:axis], s[axis:]
    known = all(d is not None for d in s)
    return [TensorType(ctx.dtype(0), (D.prod(a) if known or all(d is not None for d in a) else None,
                                       D.prod(b) if all(d is not None for d in b) else None))]


@SHAPE.rule("Squeeze")
def squeeze(ctx: ShapeCtx) -> Out:
    s = ctx.shape(0)
    axes = axes_input_or_attr(ctx, 1) if ctx.opset >= 13 else ctx.attr("axes")
    if s is None:
        return [TensorType(ctx.dtype(0), None)]
    if axes is None and ctx.has(1):
        return [TensorType(ctx.dtype(0), None)]
    if not axes:
        keep = [d for d in s if d != 1]
    else:
        ax = {norm_axis(a, len(s)) for a in axes}
        keep = [d for k, d in enumerate(s) if k not in ax]
    v = ctx.value(0)
    if v is not None:
        ctx.set_value(0, v)
    return [TensorType(ctx.dtype(0), tuple(keep))]


@SHAPE.rule("Unsqueeze")
def unsqueeze(ctx: ShapeCtx) -> Out:
    s = ctx.shape(0)
    axes = axes_input_or_attr(ctx, 1) if ctx.opset >= 13 else ctx.attr("axes")
    if s is None or axes is None:
        return [TensorType(ctx.dtype(0), None)]
    rank = len(s) + len(axes)
    ax = sorted(norm_axis(a, rank) for a in axes)
    out: list[Dim | None] = []
    it = iter(s)
    for k in range(rank):
        out.append(1 if k in ax else next(it))
    v = ctx.value(0)
    if v is not None and rank <= 1:
        ctx.set_value(0, v)
    return [TensorType(ctx.dtype(0), tuple(out))]


@SHAPE.rule("Transpose")
def transpose(ctx: ShapeCtx) -> Out:
    s = ctx.shape(0)
    if s is None:
        return [TensorType(ctx.dtype(0), None)]
    perm = ctx.attr("perm") or list(range(len(s)))[::-1]
    arr = _value_array(ctx, 0)
    if arr is not None and arr.ndim == len(perm):
        ctx.set_value(0, list(arr.transpose(perm).reshape(-1)))
    return [TensorType(ctx.dtype(0), tuple(s[p] for p in perm))]


@SHAPE.rule("Concat")
def concat(ctx: ShapeCtx) -> Out:
    shapes = [ctx.shape(i) for i in range(ctx.n_inputs) if ctx.has(i)]
    dtype = next((ctx.dtype(i) for i in range(ctx.n_inputs) if ctx.dtype(i)), None)
    known = [s for s in shapes if s is not None]
    if not known:
        return [TensorType(dtype, None)]
    rank = len(known[0])
    axis = norm_axis(ctx.attr("axis", 0), rank)
    out = list(known[0])
    if len(known) < len(shapes) or any(s[axis] is None for s in known):
        out[axis] = None
    else:
        total: Dim = 0
        for s in known:
            total = D.add(total, s[axis])  # type: ignore[arg-type]
        out[axis] = total
    for k in range(rank):
        if k != axis and out[k] is None:
            out[k] = next((s[k] for s in known if s[k] is not None), None)
    if rank == 1:
        vals = [ctx.value(i) for i in range(ctx.n_inputs) if ctx.has(i)]
        if all(v is not None for v in vals):
            ctx.set_value(0, [x for v in vals for x in v])  # type: ignore[union-attr]
    return [TensorType(dtype, tuple(out))]


@SHAPE.rule("Split")
def split(ctx: ShapeCtx) -> Out:
    s = ctx.shape(0)
    n_out = len(ctx.node.outputs)
    dtype = ctx.dtype(0)
    if s is None:
        return [TensorType(dtype, None)] * n_out
    axis = norm_axis(ctx.attr("axis", 0), len(s))
    sizes = (ctx.ints(1) if ctx.has(1) else None) if ctx.opset >= 13 else ctx.attr("split")
    if sizes is None and ctx.has(1):
        return [TensorType(dtype, tuple(None if k == axis else d for k, d in enumerate(s)))] * n_out
    if not sizes:
        total = s[axis]
        if total is None:
            sizes = [None] * n_out
        else:
            chunk = D.ceildiv(total, n_out)
            sizes = [chunk] * (n_out - 1) + [D.sub(total, D.mul(chunk, n_out - 1))]
    outs: Out = []
    for size in sizes:
        o = list(s)
        o[axis] = size
        outs.append(TensorType(dtype, tuple(o)))
    return outs


def _slice_len(dim: Dim | None, start: Dim, end: Dim, step: int) -> Dim | None:
    if dim is None:
        return None
    if D.is_int(dim) and D.is_int(start) and D.is_int(end):
        return len(range(*slice(start, end, step).indices(dim)))  # type: ignore[arg-type]
    if step > 0:
        s = D.add(start, dim) if D.is_int(start) and start < 0 else start
        e = dim if D.is_int(end) and end >= BIG else (D.add(end, dim) if D.is_int(end) and end < 0 else end)
        if D.is_int(s) and s >= BIG:
            return 0
        e = D.dmin(e, dim) if not (D.is_int(e) and not D.is_int(dim) and e < 0) else e
        length = D.ceildiv(D.sub(e, s), step)
        return D.dmax(length, 0) if not D.is_int(length) else max(length, 0)  # type: ignore[type-var]
    s = D.sub(dim, 1) if D.is_int(start) and start >= BIG else (
        D.add(start, dim) if D.is_int(start) and start < 0 else start)
    if D.is_int(end) and end <= -BIG:
        return D.floordiv(D.add(s, 1) if True else s, -step) if step != -1 else D.add(s, 1)
    e = D.add(end, dim) if D.is_int(end) and end < 0 else end
    return D.ceildiv(D.sub(s, e), -step)


@SHAPE.rule("Slice")
def slice_op(ctx: ShapeCtx) -> Out:
    s = ctx.shape(0)
    dtype = ctx.dtype(0)
    if ctx.opset < 10:
        starts, ends = ctx.attr("starts"), ctx.attr("ends")
        axes, steps = ctx.attr("axes"), None
    else:
        starts, ends = ctx.value(1), ctx.value(2)
        axes = ctx.ints(3) if ctx.has(3) else None
        steps = ctx.ints(4) if ctx.has(4) else None
        if (ctx.has(3) and axes is None) or (ctx.has(4) and steps is None):
            starts = None
    if s is None:
        return [TensorType(dtype, None)]
    if starts is None or ends is None:
        n = len(ctx.shape(1) or ()) if ctx.shape(1) else None
        if axes is not None:
            ax = {norm_axis(a, len(s)) for a in axes}
            return [TensorType(dtype, tuple(None if k in ax else d for k, d in enumerate(s)))]
        if n == len(s) or n is None:
            return [TensorType(dtype, (None,) * len(s))]
        return [TensorType(dtype, (None,) * len(s))]
    axes = list(axes) if axes is not None else list(range(len(starts)))
    steps = list(steps) if steps is not None else [1] * len(starts)
    out = list(s)
    for a, st, en, sp in zip(axes, starts, ends, steps, strict=False):
        a = norm_axis(a, len(s))
        out[a] = None if st is None or en is None or sp == 0 else _slice_len(s[a], st, en, sp)
    v = ctx.value(0)
    if v is not None and len(s) == 1 and all(isinstance(x, int) for x in (*starts, *ends)):
        ctx.set_value(0, list(v[slice(starts[0], ends[0], steps[0])]))
    elif v is not None and all(isinstance(x, int) for x in (*starts, *ends, *steps)):
        arr = _value_array(ctx, 0)
        if arr is not None:
            index = [slice(None)] * arr.ndim
            for a, st, en, sp in zip(axes, starts, ends, steps, strict=False):
                index[norm_axis(a, arr.ndim)] = slice(st, en, sp)
            ctx.set_value(0, list(arr[tuple(index)].reshape(-1)))
    return [TensorType(dtype, tuple(out))]


@SHAPE.rule("Gather")
def gather(ctx: ShapeCtx) -> Out:
    data, idx = ctx.shape(0), ctx.shape(1)
    dtype = ctx.dtype(0)
    if data is None or idx is None:
        return [TensorType(dtype, None)]
    axis = norm_axis(ctx.attr("axis", 0), len(data))
    v, iv = ctx.value(0), ctx.ints(1)
    if v is not None and iv is not None and len(data) == 1:
        picked = [v[i] for i in iv]
        ctx.set_value(0, picked)
    return [TensorType(dtype, tuple(data[:axis]) + tuple(idx) + tuple(data[axis + 1:]))]


@SHAPE.rule("GatherElements")
def gather_elements(ctx: ShapeCtx) -> Out:
    return [TensorType(ctx.dtype(0), ctx.shape(1))]


@SHAPE.rule("GatherND")
def gather_nd(ctx: ShapeCtx) -> Out:
    data, idx = ctx.shape(0), ctx.shape(1)
    dtype = ctx.dtype(0)
    if data is None or idx is None or not idx or D.as_int(idx[-1]) is None:
        return [TensorType(dtype, None)]
    b = ctx.attr("batch_dims", 0)
    k = D.as_int(idx[-1])
    return [TensorType(dtype, tuple(idx[:-1]) + tuple(data[b + k:]))]  # type: ignore[operator]


@SHAPE.rule("Scatter", "ScatterElements", "ScatterND", "TensorScatter")
def scatter(ctx: ShapeCtx) -> Out:
    return [same(ctx, 0)]


@SHAPE.rule("Expand")
def expand(ctx: ShapeCtx) -> Out:
    target = ctx.value(1)
    if target is None:
        tshape = ctx.shape(1)
        n = D.as_int(tshape[0]) if tshape else None
        s = ctx.shape(0)
        rank = None if n is None or s is None else max(n, len(s))
        return [TensorType(ctx.dtype(0), None if rank is None else (None,) * rank)]
    return [TensorType(ctx.dtype(0), broadcast([ctx.shape(0), tuple(target)]))]


@SHAPE.rule("Tile")
def tile(ctx: ShapeCtx) -> Out:
    s, reps = ctx.shape(0), ctx.value(1)
    if s is None or reps is None:
        return [TensorType(ctx.dtype(0), None if s is None else (None,) * len(s))]
    return [TensorType(ctx.dtype(0), tuple(None if d is None or r is None else D.mul(d, r)
                                          for d, r in zip(s, reps, strict=True)))]


@SHAPE.rule("Pad")
def pad(ctx: ShapeCtx) -> Out:
    s = ctx.shape(0)
    if s is None:
        return [TensorType(ctx.dtype(0), None)]
    pads = ctx.value(1) if ctx.opset >= 11 else (ctx.attr("pads") or ctx.attr("paddings"))
    if pads is None:
        return [TensorType(ctx.dtype(0), (None,) * len(s))]
    axes = ctx.ints(3) if ctx.opset >= 18 and ctx.has(3) else list(range(len(s)))
    axes = [norm_axis(a, len(s)) for a in axes]
    out = list(s)
    n = len(axes)
    for j, a in enumerate(axes):
        b, e = pads[j], pads[j + n]
        out[a] = None if s[a] is None or b is None or e is None else D.add(D.add(s[a], b), e)
    return [TensorType(ctx.dtype(0), tuple(out))]


@SHAPE.rule("ConstantOfShape")
def constant_of_shape(ctx: ShapeCtx) -> Out:
    target = ctx.value(0)
    value = ctx.attr("value")
    dtype = value.data_type if value is not None else T.FLOAT
    if target is None:
        s = ctx.shape(0)
        n = D.as_int(s[0]) if s else None
        return [TensorType(dtype, None if n is None else (None,) * n)]
    if len(target) <= 1 and dtype in (T.INT64, T.INT32) and value is not None:
        from onnx import numpy_helper

        fill = int(numpy_helper.to_array(value).reshape(-1)[0])
        n = D.as_int(target[0]) if target else 1
        if n is not None and n <= 64:
            ctx.set_value(0, [fill] * n)
    return [TensorType(dtype, tuple(target))]


@SHAPE.rule("Range")
def range_op(ctx: ShapeCtx) -> Out:
    start, limit, delta = ctx.value(0), ctx.value(1), ctx.value(2)
    dtype = ctx.dtype(0)
    if None in (start, limit, delta) or None in (start[0], limit[0], delta[0]):  # type: ignore[index]
        a0, a1, a2 = (ctx.const(i) for i in range(3))
        if a0 is not None and a1 is not None and a2 is not None and float(a2) != 0:
            import math

            return [TensorType(dtype, (max(0, math.ceil((float(a1) - float(a0)) / float(a2))),))]
        return [TensorType(dtype, (None,))]
    s, lim, dl = start[0], limit[0], delta[0]  # type: ignore[index]
    length = D.ceildiv(D.sub(lim, s), dl)
    if D.is_int(length):
        length = max(length, 0)  # type: ignore[type-var]
        if length <= 64 and all(D.is_int(x) for x in (s, lim, dl)):
            ctx.set_value(0, list(range(s, lim, dl)))  # type: ignore[arg-type]
    return [TensorType(dtype, (length,))]


@SHAPE.rule("EyeLike")
def eye_like(ctx: ShapeCtx) -> Out:
    return [same(ctx, 0, ctx.attr("dtype"))]


@SHAPE.rule("OneHot")
def one_hot(ctx: ShapeCtx) -> Out:
    s, depth = ctx.shape(0), ctx.value(1)
    if s is None:
        return [TensorType(ctx.dtype(2), None)]
    axis = ctx.attr("axis", -1)
    rank = len(s) + 1
    axis = norm_axis(axis, rank)
    out = list(s)
    out.insert(axis, depth[0] if depth else None)
    return [TensorType(ctx.dtype(2), tuple(out))]


@SHAPE.rule("NonZero")
def nonzero(ctx: ShapeCtx) -> Out:
    r = ctx.rank(0)
    return [TensorType(T.INT64, (r, None))]


@SHAPE.rule("TopK")
def topk(ctx: ShapeCtx) -> Out:
    s = ctx.shape(0)
    if s is None:
        return [TensorType(ctx.dtype(0), None), TensorType(T.INT64, None)]
    axis = norm_axis(ctx.attr("axis", -1), len(s))
    k = ctx.value(1) if ctx.opset >= 10 else [ctx.attr("k")]
    out = list(s)
    out[axis] = k[0] if k else None
    return [TensorType(ctx.dtype(0), tuple(out)), TensorType(T.INT64, tuple(out))]


@SHAPE.rule("DepthToSpace", "SpaceToDepth")
def depth_space(ctx: ShapeCtx) -> Out:
    s = ctx.shape(0)
    b = ctx.attr("blocksize")
    if s is None or len(s) != 4 or b is None or None in s:
        return [TensorType(ctx.dtype(0), None if s is None else (None,) * len(s))]
    n, c, h, w = s
    if ctx.node.op_type == "DepthToSpace":
        out = (n, D.floordiv(c, b * b), D.mul(h, b), D.mul(w, b))
    else:
        out = (n, D.mul(c, b * b), D.floordiv(h, b), D.floordiv(w, b))
    return [TensorType(ctx.dtype(0), out)]


def keep_aspect_scale(policy: str, in_sizes: Sequence[Dim | None], sizes: Sequence[Dim | None]) -> float | None:
    """The common scale of ``keep_aspect_ratio_policy`` not_larger/not_smaller
    (None for ``stretch`` or when a size is not concrete)."""
    if policy not in ("not_larger", "not_smaller"):
        return None
    ratios = []
    for a, b in zip(in_sizes, sizes, strict=True):
        ai, bi = D.as_int(a), D.as_int(b)
        if not ai or bi is None:
            return None
        ratios.append(bi / ai)
    return (min if policy == "not_larger" else max)(ratios) if ratios else None


@SHAPE.rule("Resize", "Upsample")
def resize(ctx: ShapeCtx) -> Out:
    s = ctx.shape(0)
    if s is None:
        return [TensorType(ctx.dtype(0), None)]
    rank = len(s)
    sizes = scales = None
    if ctx.node.op_type == "Upsample" and ctx.opset < 9:
        scales = ctx.attr("scales")
    elif ctx.node.op_type == "Upsample" or ctx.opset == 10:
        arr = ctx.const(1)
        scales = None if arr is None else [float(x) for x in arr.reshape(-1)]
    else:
        if ctx.has(3):
            sizes = ctx.value(3)
        if sizes is None and ctx.has(2):
            arr = ctx.const(2)
            scales = None if arr is None or arr.size == 0 else [float(x) for x in arr.reshape(-1)]
    axes = ctx.attr("axes")
    axes = [norm_axis(a, rank) for a in axes] if axes else list(range(rank))
    out = list(s)
    if sizes is not None and len(sizes) == len(axes):
        scale = keep_aspect_scale(ctx.attr("keep_aspect_ratio_policy", "stretch"), [s[a] for a in axes], sizes)
        for a, v in zip(axes, sizes, strict=True):
            # round_int(scale · in): nearest integer, halfway cases up (ONNX Resize spec).
            out[a] = v if scale is None else math.floor(scale * D.as_int(s[a]) + 0.5)  # type: ignore[operator]
        return [TensorType(ctx.dtype(0), tuple(out))]
    if scales is None or len(scales) != len(axes):
        return [TensorType(ctx.dtype(0), (None,) * rank)]
    for a, sc in zip(axes, scales, strict=True):
        d = s[a]
        if d is None:
            continue
        if D.is_int(d):
            out[a] = int(d * sc)  # type: ignore[operator]
        elif sc == int(sc):
            out[a] = D.mul(d, int(sc))
        else:
            from fractions import Fraction

            frac = Fraction(sc).limit_denominator(1 << 16)
            out[a] = D.floordiv(D.mul(d, frac.numerator), frac.denominator)
    return [TensorType(ctx.dtype(0), tuple(out))]


@SHAPE.rule("Compress")
def compress(ctx: ShapeCtx) -> Out:
    s = ctx.shape(0)
    axis = ctx.attr("axis")
    if s is None or axis is None:
        return [TensorType(ctx.dtype(0), (None,))]
    out = list(s)
    out[norm_axis(axis, len(s))] = None
    return [TensorType(ctx.dtype(0), tuple(out))]


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
        if D.is_int(out) and D.is_int(in_dim) and (out - 1) * stride >= in_dim + pb:  # type: ignore[operator]
            out = out - 1  # type: ignore[operator]
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


# -- control flow ------------------------------------------------------------------
def _merge_branch(a: TensorType | None, b: TensorType | None) -> TensorType | None:
    if a is None or b is None:
        return a or b
    if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return TensorType(a.dtype or b.dtype, None)
    dims = tuple(x if (x == y or D.equal(x, y)) else None for x, y in zip(a.shape, b.shape, strict=True))
    return TensorType(a.dtype or b.dtype, dims)


@SHAPE.rule("If")
def if_op(ctx: ShapeCtx) -> Out:
    branches = [ctx.node.subgraphs.get(k, [None])[0] for k in ("then_branch", "else_branch")]
    results = [ctx.infer_subgraph(b, []) if b is not None else [] for b in branches]
    n = len(ctx.node.outputs)
    out: Out = []
    for k in range(n):
        a = results[0][k] if k < len(results[0]) else None
        b = results[1][k] if k < len(results[1]) else None
        out.append(_merge_branch(a, b))
    return out


@SHAPE.rule("Loop")
def loop(ctx: ShapeCtx) -> Out:
    body = ctx.node.subgraphs.get("body", [None])[0]
    if body is None:
        return []
    n_carried = max(ctx.n_inputs - 2, 0)
    ins = [TensorType(T.INT64, ()), TensorType(T.BOOL, ())] + [ctx.type(2 + k) for k in range(n_carried)]
    res = ctx.infer_subgraph(body, ins)
    trip = ctx.value(0)
    trips = trip[0] if trip and ctx.has(0) else None
    out: Out = []
    for k in range(len(ctx.node.outputs)):
        if k < n_carried:
            out.append(_merge_branch(ctx.type(2 + k), res[1 + k] if 1 + k < len(res) else None))
        else:
            t = res[1 + k] if 1 + k < len(res) else None
            out.append(None if t is None or t.shape is None else TensorType(t.dtype, (trips, *t.shape)))
    return out


@SHAPE.rule("Scan")
def scan(ctx: ShapeCtx) -> Out:
    body = ctx.node.subgraphs.get("body", [None])[0]
    if body is None:
        return []
    # Scan-8 has a leading sequence_lens input and a batch axis 0 on every input.
    legacy = ctx.opset < 9
    offset = 1 if legacy else 0
    n_scan = ctx.attr("num_scan_inputs", 0)
    n_state = ctx.n_inputs - offset - n_scan
    batch = None

    def strip(t: TensorType | None, axis: int) -> TensorType | None:
        if t is None or t.shape is None:
            return None
        return TensorType(t.dtype, tuple(d for j, d in enumerate(t.shape) if j != axis))

    state = [ctx.type(offset + k) for k in range(n_state)]
    if legacy:
        batch = next((t.shape[0] for t in state if t and t.shape), None)
        state = [strip(t, 0) for t in state]
    scan_in: list[TensorType | None] = []
    axes = ctx.attr("scan_input_axes") or [0] * n_scan
    seq_len = None
    for k in range(n_scan):
        t = ctx.type(offset + n_state + k)
        if legacy:
            t = strip(t, 0)
        if t is None or t.shape is None:
            scan_in.append(None)
            continue
        ax = norm_axis(axes[k], len(t.shape))
        seq_len = t.shape[ax]
        scan_in.append(strip(t, ax))
    res = ctx.infer_subgraph(body, state + scan_in)
    out: Out = []
    for t in res[:n_state]:
        out.append(TensorType(t.dtype, (batch, *t.shape)) if legacy and t and t.shape is not None else t)
    out_axes = ctx.attr("scan_output_axes") or [0] * (len(res) - n_state)
    for j, t in enumerate(res[n_state:]):
        if t is None or t.shape is None:
            out.append(None)
            continue
        dims = list(t.shape)
        dims.insert(0 if legacy else norm_axis(out_axes[j], len(dims) + 1), seq_len)
        if legacy:
            dims.insert(0, batch)
        out.append(TensorType(t.dtype, tuple(dims)))
    return out


# -- attention ops -------------------------------------------------------------------
@SHAPE.rule("Attention")
def onnx_attention(ctx: ShapeCtx) -> Out:
    q, v = ctx.shape(0), ctx.shape(2)
    if q is None or v is None:
        return [TensorType(ctx.dtype(0), None)]
    if len(q) == 4:
        y = (q[0], q[1], q[2], v[3] if len(v) == 4 else None)
    else:
        hq, hkv = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
        dv = v[-1] if len(v) == 4 else (D.floordiv(v[2], hkv) if hkv and v[2] is not None else None)
        y = (q[0], q[1], D.mul(dv, hq) if dv is not None and hq else None)
    outs: Out = [TensorType(ctx.dtype(0), y)]
    return outs


@SHAPE.rule("Attention", domain=MS)
def ms_attention(ctx: ShapeCtx) -> Out:
    x, w = ctx.shape(0), ctx.shape(1)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    sizes = ctx.attr("qkv_hidden_sizes")
    hv = sizes[2] if sizes else (D.floordiv(w[1], 3) if w is not None and w[1] is not None else None)
    return [TensorType(ctx.dtype(0), (x[0], x[1], hv))]


@SHAPE.rule("MultiHeadAttention", "DecoderMaskedMultiHeadAttention", "PackedMultiHeadAttention",
            domain=MS)
def ms_mha(ctx: ShapeCtx) -> Out:
    q, v = ctx.shape(0), ctx.shape(2)
    if q is None:
        return [TensorType(ctx.dtype(0), None)]
    h = ctx.attr("num_heads")
    if v is not None and len(v) == 3:
        dv = v[2]
    elif v is not None and len(v) == 4 and v[3] is not None and h:
        dv = D.mul(v[3], h)
    else:
        dv = q[-1] if len(q) == 3 else None
    return [TensorType(ctx.dtype(0), (*q[:-1], dv) if len(q) == 3 else None)]


@SHAPE.rule("GroupQueryAttention", "SparseAttention", "PagedAttention", domain=MS)
def ms_gqa(ctx: ShapeCtx) -> Out:
    q = ctx.shape(0)
    h, hkv = ctx.attr("num_heads"), ctx.attr("kv_num_heads")
    if q is None or len(q) != 3 or q[2] is None or not h:
        return [TensorType(ctx.dtype(0), None)]
    packed = not ctx.has(1)
    head = D.floordiv(q[2], h + 2 * hkv) if packed and hkv else D.floordiv(q[2], h)
    return [TensorType(ctx.dtype(0), (q[0], q[1], D.mul(head, h)))]


@SHAPE.rule("PackedAttention", "LongformerAttention", domain=MS)
def ms_packed(ctx: ShapeCtx) -> Out:
    x, w = ctx.shape(0), ctx.shape(1)
    if x is None or w is None or w[-1] is None:
        return [TensorType(ctx.dtype(0), None)]
    return [TensorType(ctx.dtype(0), (*x[:-1], D.floordiv(w[-1], 3)))]


@SHAPE.rule("EmbedLayerNormalization", domain=MS)
def ms_embed_ln(ctx: ShapeCtx) -> Out:
    ids, word = ctx.shape(0), ctx.shape(2)
    if ids is None or word is None:
        return [TensorType(ctx.dtype(2), None)]
    return [TensorType(ctx.dtype(2), (ids[0], ids[1], word[1])), TensorType(T.INT32, (ids[0],))]


@SHAPE.rule("GatherBlockQuantized", domain=MS)
def ms_gather_bq(ctx: ShapeCtx) -> Out:
    out = gather(ctx)[0]
    return [TensorType(ctx.dtype(2) or T.FLOAT, out.shape if out else None)]



@SHAPE.rule("CausalConvWithState")
def causal_conv_with_state(ctx: ShapeCtx) -> Out:
    """(B, C, L) in and out; the carried state holds the last k - 1 positions."""
    x, w = ctx.shape(0), ctx.shape(1)
    state = None
    if x is not None and w is not None and len(w) == 3 and D.as_int(w[2]) is not None:
        state = TensorType(ctx.dtype(0), (x[0], x[1], D.as_int(w[2]) - 1))  # type: ignore[operator]
    return [same(ctx, 0), state]


@SHAPE.rule("LinearAttention")
def linear_attention(ctx: ShapeCtx) -> Out:
    """Packed [B, T, H·D] in; output [B, T, q_heads · d_v], state [B, kv_heads, d_k, d_v]."""
    q, k, v = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    hq, hkv = ctx.attr("q_num_heads"), ctx.attr("kv_num_heads")
    if q is None or v is None or not hq or not hkv or v[2] is None:
        return [TensorType(ctx.dtype(0), None), None]
    dv = D.floordiv(v[2], hkv)
    dk = D.floordiv(k[2], hkv) if k is not None and k[2] is not None else None
    return [TensorType(ctx.dtype(0), (q[0], q[1], D.mul(dv, hq))),
            TensorType(ctx.dtype(0), (q[0], hkv, dk, dv))]


@SHAPE.rule("FlexAttention", domain="ai.onnx.preview")
def flex_attention(ctx: ShapeCtx) -> Out:
    q, v = ctx.shape(0), ctx.shape(2)
    if q is None or v is None or len(q) != 4 or len(v) != 4:
        return [TensorType(ctx.dtype(0), None)]
    return [TensorType(ctx.dtype(0), (q[0], q[1], q[2], v[3]))]


@SHAPE.rule("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss")
def loss(ctx: ShapeCtx) -> Out:
    """``reduction`` mean/sum → scalar; none → the target's shape. Cross-entropy
    also returns log-probabilities shaped like the scores."""
    reduction = ctx.attr("reduction", "mean")
    out = TensorType(ctx.dtype(0), () if reduction != "none" else ctx.shape(1))
    return [out, same(ctx, 0)] if ctx.node.op_type == "SoftmaxCrossEntropyLoss" else [out]
