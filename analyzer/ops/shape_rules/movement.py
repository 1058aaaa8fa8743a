"""Shape rules of data-movement ops: Shape/Reshape/Slice/Gather/Concat/Pad/Resize…
They carry the symbolic values that let computed Reshape targets resolve."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ... import dims as D
from ...dims import Dim
from ...graph import TensorType

if TYPE_CHECKING:
    from ...shapes import ShapeCtx
from .common import BIG, SHAPE, Out, T, axes_input_or_attr, broadcast, norm_axis, same


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
        return len(range(*slice(start, end, step).indices(dim)))
    if step > 0:
        s = D.add(start, dim) if D.is_int(start) and start < 0 else start
        e = dim if D.is_int(end) and end >= BIG else (D.add(end, dim) if D.is_int(end) and end < 0 else end)
        if D.is_int(s) and s >= BIG:
            return 0
        e = D.dmin(e, dim) if not (D.is_int(e) and not D.is_int(dim) and e < 0) else e
        length = D.ceildiv(D.sub(e, s), step)
        return D.dmax(length, 0) if not D.is_int(length) else max(length, 0)
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
    return [TensorType(dtype, tuple(idx[:-1]) + tuple(data[b + k:]))]


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
    given = ctx.ints(3) if ctx.opset >= 18 and ctx.has(3) else list(range(len(s)))
    if given is None:  # axes computed at run time: which dims grow is unknown
        return [TensorType(ctx.dtype(0), (None,) * len(s))]
    axes = [norm_axis(a, len(s)) for a in given]
    out = list(s)
    n = len(axes)
    for j, a in enumerate(axes):
        d, b, e = s[a], pads[j], pads[j + n]
        out[a] = None if d is None or b is None or e is None else D.add(D.add(d, b), e)
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
        from ...safeio import tensor_array

        fill = tensor_array(value, 1)  # never reads an external value (it would resolve against the CWD)
        n = D.as_int(target[0]) if target else 1
        if fill is not None and fill.size == 1 and n is not None and n <= 64:
            ctx.set_value(0, [int(fill.reshape(-1)[0])] * n)
    return [TensorType(dtype, tuple(target))]


@SHAPE.rule("Range")
def range_op(ctx: ShapeCtx) -> Out:
    start, limit, delta = ctx.value(0), ctx.value(1), ctx.value(2)
    dtype = ctx.dtype(0)
    s, lim, dl = (v[0] if v else None for v in (start, limit, delta))
    if s is None or lim is None or dl is None:
        a0, a1, a2 = (ctx.const(i) for i in range(3))
        if a0 is not None and a1 is not None and a2 is not None and float(a2) != 0:
            import math

            return [TensorType(dtype, (max(0, math.ceil((float(a1) - float(a0)) / float(a2))),))]
        return [TensorType(dtype, (None,))]
    length = D.ceildiv(D.sub(lim, s), dl)
    if D.is_int(length):
        length = max(length, 0)
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
    """``[rank, count]``; the count is known when every element is nonzero by construction:
    ``NonZero(ConstantOfShape(shape, value=1))`` is how TorchScript exports ``arange`` of a
    size (Longformer's ``as_strided`` index), ``count`` = the number of elements."""
    r = ctx.rank(0)
    return [TensorType(T.INT64, (r, _all_nonzero_count(ctx)))]


def _all_nonzero_count(ctx: ShapeCtx) -> Dim | None:
    s = ctx.shape(0)
    producer = ctx.node.graph.producer(ctx.node.input(0))
    if s is None or any(d is None for d in s) or producer is None or producer.op_type != "ConstantOfShape" \
            or producer.domain:
        return None
    value = producer.attr("value")
    if value is None:  # the default fill is 0: nothing is nonzero
        return 0
    from ...safeio import tensor_array

    fill = tensor_array(value, 1)
    if fill is None or fill.size != 1:
        return None
    return D.prod(s) if fill.reshape(-1)[0] != 0 else 0


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
    known = [d for d in s or () if d is not None]
    if s is None or len(known) != 4 or b is None:
        return [TensorType(ctx.dtype(0), None if s is None else (None,) * len(s))]
    n, c, h, w = known
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
            out[a] = int(d * sc)
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
