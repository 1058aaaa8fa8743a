"""Token-flow rules: how each op moves, rescales or mixes positions.

A rule receives a :class:`~model_analyze.tokenflow.engine.FlowCtx` and returns
the output states. Positional ops map axis positions affinely (conv/pool:
``[S·i - pad, S·i - pad + d(k-1)]``); contractions and reductions mix an axis
whole. Where exactness would need per-element bookkeeping (a reshape that
interleaves two position axes, a dynamic gather, ``wrap`` padding), the rule
falls back to the sound choice: the whole axis.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import Any

from .. import dims as D
from ..dims import Dim
from ..ops import catalog
from ..ops.registry import MS, RuleTable
from .deps import ALL, ANTICAUSAL, CAUSAL, Dep, affine, band, constant, lin
from .engine import FlowCtx
from .state import Deps, FlowState, collapse, empty, merge, through

FLOW = RuleTable("flow")
Out = list[FlowState | None]


# -- helpers --------------------------------------------------------------------------
def _norm(axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < max(rank, 1):
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return a


def _len(shape: tuple[Dim | None, ...] | None, k: int) -> Dim | None:
    return shape[k] if shape is not None and 0 <= k < len(shape) else None


def broadcast(ctx: FlowCtx, inputs: list[int] | None = None, out: int = 0) -> FlowState | None:
    """Element-wise with numpy broadcasting: output axis k sees each input's
    aligned axis; an input axis of size 1 broadcast to more is seen at position 0."""
    rank = ctx.out_rank(out)
    idx = [i for i in (inputs if inputs is not None else range(ctx.n_inputs)) if ctx.has(i)]
    if rank is None:
        return None
    axes: list[dict[Any, Dep]] = [{} for _ in range(rank)]
    fixed: list[Deps] = []
    out_shape = ctx.out_shape(out)
    for i in idx:
        st = ctx.state(i)
        fixed.append(st.fixed)
        if st.axes is None:
            fixed.append(st.fixed)
            continue
        shape = ctx.shape(i)
        r = len(st.axes)
        for j, deps in enumerate(st.axes):
            if not deps:
                continue
            k = j + rank - r
            if k < 0:
                fixed.append(collapse(deps, _len(shape, j)))
                continue
            if _len(shape, j) == 1 and _len(out_shape, k) != 1:
                deps = through(constant(0, 0), deps)
            axes[k] = merge(axes[k], deps)
    return FlowState(tuple(axes), merge(*fixed))


def mix_axes(st: FlowState, shape: tuple[Dim | None, ...] | None, mixed: set[int]) -> FlowState:
    """Every position along the ``mixed`` axes depends on all of them."""
    if st.axes is None:
        return st
    pooled = merge(*(collapse(st.axes[k], _len(shape, k)) for k in mixed if k < len(st.axes)))
    axes = tuple(dict(pooled) if k in mixed else dict(ax) for k, ax in enumerate(st.axes))
    return FlowState(axes, dict(st.fixed))


def permute(st: FlowState, perm: list[int]) -> FlowState:
    if st.axes is None:
        return st
    return FlowState(tuple(dict(st.axes[p]) for p in perm), dict(st.fixed))


def pointwise(ctx: FlowCtx) -> Out:
    return [broadcast(ctx)] + [broadcast(ctx, out=k) for k in range(1, len(ctx.node.outputs))]


def conservative(ctx: FlowCtx) -> Out:
    """Every output element depends on every position any input depends on."""
    return ctx.conservative()


def no_content(ctx: FlowCtx) -> Out:
    """Outputs that carry no positions of their own (Shape, Size, ConstantOfShape,
    Range, generators). Shape/Size read only sizes; the others read the *values*
    of their (small) inputs, whatever those depend on."""
    if ctx.node.op_type in ("Shape", "Size"):
        fixed: dict[Any, Dep] = {}
    else:
        fixed = merge(*(ctx.state(i).collapsed(ctx.shape(i)) for i in range(ctx.n_inputs) if ctx.has(i)))
    outs: Out = []
    for k in range(len(ctx.node.outputs)):
        st = empty(ctx.out_rank(k))
        st.fixed = dict(fixed)
        outs.append(st)
    return outs


# -- element-wise families (from the catalog) --------------------------------------------
FLOW.add(catalog.UNARY, pointwise)
FLOW.add(catalog.MS_UNARY, pointwise, MS)
FLOW.add(catalog.BINARY, pointwise)
FLOW.add(catalog.GATED, pointwise)
FLOW.add(["Identity", "Cast", "CastLike", "BitCast", "Dropout", "Trilu", "QuantizeLinear", "DequantizeLinear",
          "DynamicQuantizeLinear", "BatchNormalization", "Clip"], pointwise)
FLOW.add(["DequantizeLinear"], pointwise, MS)
FLOW.add(["Shape", "Size", "ConstantOfShape", "Range", "EyeLike", "RandomNormal", "RandomUniform",
          "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial", "Constant",
          "BlackmanWindow", "HammingWindow", "HannWindow", "MelWeightMatrix"], no_content)


@FLOW.rule("Softmax", "LogSoftmax", "Hardmax", "LpNormalization")
def softmax(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None:
        return ctx.conservative()
    rank = len(shape)
    default = -1 if ctx.opset >= 13 or ctx.node.op_type == "LpNormalization" else 1
    axis = _norm(ctx.attr("axis", default), rank)
    mixed = {axis} if ctx.opset >= 13 or ctx.node.op_type == "LpNormalization" else set(range(axis, rank))
    return [mix_axes(st, shape, mixed)]


@FLOW.rule("LayerNormalization", "RMSNormalization", "SimplifiedLayerNormalization")
@FLOW.rule("LayerNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization",
           "SkipSimplifiedLayerNormalization", domain=MS)
def layer_norm(ctx: FlowCtx) -> Out:
    base = broadcast(ctx)
    shape = ctx.out_shape(0)
    if base is None or shape is None:
        return ctx.conservative()
    axis = _norm(ctx.attr("axis", -1), len(shape))
    out = mix_axes(base, shape, set(range(axis, len(shape))))
    extra: Out = [broadcast(ctx, out=k) for k in range(1, len(ctx.node.outputs))]
    return [out, *extra]


@FLOW.rule("EmbedLayerNormalization", domain=MS)
def embed_layer_norm(ctx: FlowCtx) -> Out:
    """onnxruntime's fused BERT embedding (word + position + segment, then
    LayerNorm): output ``[b, s, :]`` reads token ``s`` of ``input_ids``,
    ``segment_ids`` and ``position_ids`` only; ``mask_index[b]`` reduces the
    whole mask row. Without this rule an optimized BERT loses every position."""
    out_rank = ctx.out_rank(0)
    if out_rank != 3:
        return ctx.conservative()
    token: list[dict[Any, Dep]] = [{}, {}, {}]
    fixed: list[Deps] = []
    for i in (0, 1, 8):  # input_ids, segment_ids, position_ids: [B, S] (position_ids may be [1, S])
        if not ctx.has(i):
            continue
        st = ctx.state(i)
        if st.axes is None or len(st.axes) != 2:
            return ctx.conservative()
        token[0] = merge(token[0], st.axes[0])
        token[1] = merge(token[1], st.axes[1])
        fixed.append(st.fixed)
    for i in range(2, 7):  # embedding tables, gamma, beta: every element of a row
        if ctx.has(i):
            fixed.append(ctx.state(i).collapsed(ctx.shape(i)))
    out = FlowState(tuple(token), merge(*fixed))
    outs: Out = [out]
    if len(ctx.node.outputs) > 1:
        mask = ctx.state(7) if ctx.has(7) else None
        if mask is None or mask.axes is None or len(mask.axes) != 2:
            outs.append(None if mask is None else ctx.conservative()[1])
        else:
            shape = ctx.shape(7)
            outs.append(FlowState((dict(mask.axes[0]),),
                                  merge(mask.fixed, collapse(mask.axes[1], shape[1] if shape else None))))
    outs += [out for _ in ctx.node.outputs[2:]]
    return outs


@FLOW.rule("InstanceNormalization", "GroupNormalization", "MeanVarianceNormalization")
def spatial_norm(ctx: FlowCtx) -> Out:
    """Statistics over all spatial positions: every position sees all of them."""
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None:
        return ctx.conservative()
    if ctx.node.op_type == "MeanVarianceNormalization":
        mixed = {_norm(a, len(shape)) for a in ctx.attr("axes", [0, 2, 3])}
    else:
        mixed = set(range(2, len(shape))) | ({1} if ctx.node.op_type == "GroupNormalization" else set())
    return [mix_axes(st, shape, mixed)]


@FLOW.rule("LRN")
def lrn(ctx: FlowCtx) -> Out:
    st = ctx.state(0)
    if st.axes is None or len(st.axes) < 2:
        return [st]
    size = int(ctx.attr("size", 1))
    axes = list(dict(a) for a in st.axes)
    axes[1] = through(affine(1, -((size - 1) // 2), math.ceil((size - 1) / 2)), axes[1])
    return [FlowState(tuple(axes), dict(st.fixed))]


def reduced_axes(ctx: FlowCtx, rank: int) -> list[int] | None:
    op = ctx.node.op_type
    if op in ("ArgMax", "ArgMin"):
        return [_norm(ctx.attr("axis", 0), rank)]
    from_input = ctx.opset >= 18 or (op == "ReduceSum" and ctx.opset >= 13)
    axes = (ctx.ints(1) if ctx.has(1) else []) if from_input else ctx.attr("axes")
    if axes is None:
        return None
    if not axes:
        if from_input and ctx.attr("noop_with_empty_axes", 0):
            return []
        return list(range(rank))
    return sorted({_norm(a, rank) for a in axes})


def reduce(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None:
        return ctx.conservative()
    axes = reduced_axes(ctx, len(shape))
    if axes is None:
        return ctx.conservative()
    keep = ctx.attr("keepdims", 1)
    pooled = merge(st.fixed, *(collapse(st.axes[k], shape[k]) for k in axes))
    out = [dict(ax) if k not in axes else {} for k, ax in enumerate(st.axes) if keep or k not in axes]
    return [FlowState(tuple(out), pooled)]


FLOW.add(catalog.REDUCE, reduce)


# -- movement ----------------------------------------------------------------------------
@FLOW.rule("Transpose")
def transpose(ctx: FlowCtx) -> Out:
    st = ctx.state(0)
    if st.axes is None:
        return [st]
    perm = ctx.attr("perm") or list(range(len(st.axes)))[::-1]
    return [permute(st, list(perm))]


def _ratio_one(a: Dim, b: Dim) -> bool:
    return a == b or D.equal(a, b)


def reshape_groups(src: tuple[Dim | None, ...],
                   dst: tuple[Dim | None, ...]) -> list[tuple[list[int], list[int]]] | None:
    """Pair up runs of input and output axes with equal products (row-major)."""
    if any(d is None for d in (*src, *dst)):
        return None
    groups: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(src) or j < len(dst):
        gi: list[int] = []
        gj: list[int] = []
        pi: Dim = 1
        pj: Dim = 1
        if i < len(src):
            gi.append(i)
            pi = src[i]  # type: ignore[assignment]
            i += 1
        if j < len(dst):
            gj.append(j)
            pj = dst[j]  # type: ignore[assignment]
            j += 1
        guard = 0
        while not _ratio_one(pi, pj):
            guard += 1
            if guard > 64:
                return None
            ci, cj = D.as_int(pi), D.as_int(pj)
            grow_src = (ci is not None and cj is not None and ci < cj) or (cj is None and ci is not None)
            if ci is None and cj is None:
                grow_src = len(str(pi)) < len(str(pj))
            if grow_src and i < len(src):
                gi.append(i)
                pi = D.mul(pi, src[i])  # type: ignore[arg-type]
                i += 1
            elif j < len(dst):
                gj.append(j)
                pj = D.mul(pj, dst[j])  # type: ignore[arg-type]
                j += 1
            elif i < len(src):
                gi.append(i)
                pi = D.mul(pi, src[i])  # type: ignore[arg-type]
                i += 1
            else:
                return None
        # Trailing size-1 axes join the current group.
        while i < len(src) and src[i] == 1 and (j >= len(dst) or dst[j] != 1):
            gi.append(i)
            i += 1
        while j < len(dst) and dst[j] == 1 and (i >= len(src) or src[i] != 1):
            gj.append(j)
            j += 1
        groups.append((gi, gj))
    return groups


def reshape_state(st: FlowState, src: tuple[Dim | None, ...] | None,
                  dst: tuple[Dim | None, ...] | None) -> FlowState:
    if st.axes is None or src is None or dst is None:
        return FlowState(None if dst is None else tuple({} for _ in dst), st.collapsed(src))
    groups = reshape_groups(src, dst)
    if groups is None:
        pooled = st.collapsed(src)
        return FlowState(tuple({} for _ in dst), pooled)
    axes: list[dict[Any, Dep]] = [{} for _ in dst]
    fixed: list[Deps] = [st.fixed]
    for gi, gj in groups:
        live_in = [k for k in gi if st.axes[k]]
        big_out = [k for k in gj if dst[k] != 1]
        if not live_in:
            continue
        big_in = [k for k in gi if src[k] != 1]
        if len(big_in) <= 1 and len(big_out) <= 1:
            target = big_out[0] if big_out else (gj[0] if gj else None)
            deps = merge(*(st.axes[k] for k in live_in))
            if target is None:
                fixed.append(collapse(deps, None))
            else:
                axes[target] = merge(axes[target], deps)
            continue
        if len(big_in) == 1 and len(big_out) > 1:
            # Split one axis: the outermost output axis strides over it, the inner
            # ones interleave (whole axis).
            inner = D.prod(dst[k] for k in big_out[1:])
            n_inner = D.as_int(inner)
            deps = st.axes[big_in[0]]
            if n_inner is not None:
                axes[big_out[0]] = merge(axes[big_out[0]], through(affine(n_inner, 0, n_inner - 1), deps))
            else:
                axes[big_out[0]] = merge(axes[big_out[0]], collapse(deps, src[big_in[0]]))
            for k in big_out[1:]:
                axes[k] = merge(axes[k], collapse(deps, src[big_in[0]]))
            continue
        if len(big_out) == 1 and len(big_in) > 1:
            # Merge axes: position p = outer·inner + rest; the outer axis is p // inner.
            inner = D.as_int(D.prod(src[k] for k in big_in[1:]))
            outer_deps = st.axes[big_in[0]]
            if inner is not None:
                part = through(affine(Fraction(1, inner), Fraction(1 - inner, inner), 0), outer_deps)
            else:
                part = collapse(outer_deps, src[big_in[0]])
            rest = merge(*(collapse(st.axes[k], src[k]) for k in big_in[1:]))
            axes[big_out[0]] = merge(axes[big_out[0]], part, rest)
            continue
        pooled = merge(*(collapse(st.axes[k], src[k]) for k in gi))
        for k in big_out or gj:
            axes[k] = merge(axes[k], pooled)
    return FlowState(tuple(axes), merge(*fixed))


@FLOW.rule("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def reshape(ctx: FlowCtx) -> Out:
    st = ctx.state(0)
    src, dst = ctx.shape(0), ctx.out_shape(0)
    out = reshape_state(st, src, dst)
    for i in range(1, ctx.n_inputs):  # the shape operand's own content deps
        if ctx.has(i):
            out.fixed = merge(out.fixed, ctx.state(i).collapsed(ctx.shape(i)))
    return [out]


def _offsets_along(sizes: list[Dim | None]) -> list[Dim | None]:
    offs: list[Dim | None] = []
    acc: Dim | None = 0
    for s in sizes:
        offs.append(acc)
        acc = None if acc is None or s is None else D.add(acc, s)
    return offs


def _shift(off: Dim | None) -> Dep:
    if off is None:
        return ALL
    return affine(1, _neg(off), _neg(off))


def _neg(x: Dim) -> Any:
    return -x if D.is_int(x) else D.normalize(-x)


@FLOW.rule("Concat")
def concat(ctx: FlowCtx) -> Out:
    rank = ctx.out_rank(0)
    if rank is None:
        return ctx.conservative()
    axis = _norm(ctx.attr("axis", 0), rank)
    idx = [i for i in range(ctx.n_inputs) if ctx.has(i)]
    sizes = [_len(ctx.shape(i), axis) for i in idx]
    offs = _offsets_along(sizes)
    axes: list[dict[Any, Dep]] = [{} for _ in range(rank)]
    fixed: list[Deps] = []
    for i, off in zip(idx, offs, strict=True):
        st = ctx.state(i)
        fixed.append(st.fixed)
        if st.axes is None or len(st.axes) != rank:
            fixed.append(st.collapsed(ctx.shape(i)))
            continue
        for k, deps in enumerate(st.axes):
            axes[k] = merge(axes[k], through(_shift(off), deps) if k == axis else deps)
    return [FlowState(tuple(axes), merge(*fixed))]


@FLOW.rule("Split")
def split(ctx: FlowCtx) -> Out:
    st = ctx.state(0)
    if st.axes is None:
        return ctx.conservative()
    axis = _norm(ctx.attr("axis", 0), len(st.axes))
    sizes = [_len(ctx.out_shape(k), axis) for k in range(len(ctx.node.outputs))]
    offs = _offsets_along(sizes)
    outs: Out = []
    for off in offs:
        axes = [dict(a) for a in st.axes]
        axes[axis] = through(_shift(_neg(off) if off is not None else None), axes[axis]) if off else axes[axis]
        outs.append(FlowState(tuple(axes), dict(st.fixed)))
    return outs


def _slice_start(start: Dim, step: int, dim: Dim | None) -> Dim | None:
    """Normalised first index selected by a slice."""
    big = 1 << 30
    if D.is_int(start):
        s = int(start)  # type: ignore[arg-type]
        if s < 0:
            if dim is None:
                return None
            s_d: Dim = D.add(dim, s)
            if D.is_int(dim):
                return max(s_d, 0 if step > 0 else -1)  # type: ignore[type-var]
            return s_d
        if D.is_int(dim):
            return min(s, int(dim) if step > 0 else int(dim) - 1)  # type: ignore[arg-type]
        if s >= big:
            return None if step > 0 else D.sub(dim, 1) if dim is not None else None
        return s
    return start


@FLOW.rule("Slice")
def slice_op(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None:
        return ctx.conservative()
    if ctx.opset < 10:
        starts, axes_l, steps = ctx.attr("starts"), ctx.attr("axes"), None
    else:
        starts = ctx.value(1)
        axes_l = ctx.ints(3) if ctx.has(3) else None
        steps = ctx.ints(4) if ctx.has(4) else None
        if starts is None or (ctx.has(3) and axes_l is None) or (ctx.has(4) and steps is None):
            # Dynamic bounds: positions along the sliced axes are unknown.
            axes = [dict(a) for a in st.axes]
            dyn = range(len(axes)) if axes_l is None else [_norm(a, len(axes)) for a in axes_l]
            for k in dyn:
                axes[k] = collapse(axes[k], shape[k])
            return [FlowState(tuple(axes), dict(st.fixed))]
    axes_l = list(axes_l) if axes_l is not None else list(range(len(starts)))
    steps = list(steps) if steps is not None else [1] * len(starts)
    axes = [dict(a) for a in st.axes]
    for a, s0, t in zip(axes_l, starts, steps, strict=False):
        k = _norm(a, len(axes))
        start = None if s0 is None else _slice_start(s0, t, shape[k])
        if start is None or t == 0:
            axes[k] = collapse(axes[k], shape[k])
        elif start != 0 or t != 1:
            axes[k] = through(affine(t, start, start), axes[k])
    return [FlowState(tuple(axes), dict(st.fixed))]


@FLOW.rule("Gather")
def gather(ctx: FlowCtx) -> Out:
    data, idx = ctx.state(0), ctx.state(1)
    dshape, ishape = ctx.shape(0), ctx.shape(1)
    if data.axes is None or idx.axes is None or dshape is None or ishape is None:
        return ctx.conservative()
    axis = _norm(ctx.attr("axis", 0), len(dshape))
    dep_k = data.axes[axis]
    values = ctx.ints(1)
    fixed: list[Deps] = [data.fixed, idx.fixed]
    idx_axes = [dict(a) for a in idx.axes]
    if dep_k:
        if values is not None and len(ishape) == 0:
            v = values[0] + (int(dshape[axis]) if values[0] < 0 and D.is_int(dshape[axis]) else 0)  # type: ignore[arg-type]
            fixed.append(through(constant(v, v), dep_k))
        elif values is not None and len(ishape) == 1 and len(values) >= 1:
            steps = {b - a for a, b in itertools.pairwise(values)}
            if len(values) == 1 or (len(steps) == 1 and values[0] >= 0):
                step = steps.pop() if steps else 1
                idx_axes[0] = merge(idx_axes[0], through(affine(step, values[0], values[0]), dep_k))
            else:
                idx_axes[0] = merge(idx_axes[0], through(constant(min(values), max(values)), dep_k))
        else:
            if not values:  # indices computed at run time, not constants
                ctx.mixed_by_data(dep_k)
            fixed.append(collapse(dep_k, dshape[axis]))
    out = [dict(a) for a in data.axes[:axis]] + idx_axes + [dict(a) for a in data.axes[axis + 1:]]
    return [FlowState(tuple(out), merge(*fixed))]


@FLOW.rule("GatherND")
def gather_nd(ctx: FlowCtx) -> Out:
    """``out[i.., r..] = data[idx[i..], r..]``: the indexed data axes are read at
    data-dependent positions (collapsed), every other axis keeps its positions.
    Exporters select Q, K or V out of a fused projection this way (Falcon's
    ``[kv, g, S, 2, d]``), which must not mix the sequence axis."""
    data, idx = ctx.state(0), ctx.state(1)
    dshape, ishape = ctx.shape(0), ctx.shape(1)
    if data.axes is None or idx.axes is None or dshape is None or not ishape:
        return ctx.conservative()
    b = int(ctx.attr("batch_dims", 0))
    k = D.as_int(ishape[-1])
    q, r = len(ishape), len(dshape)
    if k is None or b < 0 or b + k > r or b > q - 1:
        return ctx.conservative()
    fixed = [data.fixed, idx.fixed, collapse(idx.axes[-1], ishape[-1])]
    fixed += [collapse(data.axes[j], dshape[j]) for j in range(b, b + k)]
    out = ([merge(data.axes[j], idx.axes[j]) for j in range(b)] + [dict(idx.axes[j]) for j in range(b, q - 1)]
           + [dict(a) for a in data.axes[b + k:]])
    if ctx.out_rank(0) not in (None, len(out)):
        return ctx.conservative()
    return [FlowState(tuple(out), merge(*fixed))]


@FLOW.rule("GatherElements")
def gather_elements(ctx: FlowCtx) -> Out:
    data, dshape = ctx.state(0), ctx.shape(0)
    if data.axes is None or dshape is None:
        return ctx.conservative()
    axis = _norm(ctx.attr("axis", 0), len(dshape))
    base = broadcast(ctx, [1])
    if base is None or base.axes is None or len(base.axes) != len(data.axes):
        return ctx.conservative()
    axes = [merge(b, d) if k != axis else merge(b, collapse(d, dshape[k]))
            for k, (b, d) in enumerate(zip(base.axes, data.axes, strict=True))]
    return [FlowState(tuple(axes), merge(base.fixed, data.fixed))]


@FLOW.rule("Expand")
def expand(ctx: FlowCtx) -> Out:
    return [broadcast(ctx, [0])]


@FLOW.rule("Tile")
def tile(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    reps = ctx.ints(1)
    if st.axes is None:
        return ctx.conservative()
    axes = [dict(a) for a in st.axes]
    for k in range(len(axes)):
        if reps is None or reps[k] != 1:
            axes[k] = collapse(axes[k], _len(shape, k))
    return [FlowState(tuple(axes), dict(st.fixed))]


@FLOW.rule("Pad")
def pad(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None:
        return ctx.conservative()
    rank = len(shape)
    # Pads may be symbolic (Swin pads a dynamic map to whole windows at the end only):
    # constant padding moves positions by the *begin* pad alone.
    pads = ctx.value(1) if ctx.opset >= 11 else (ctx.attr("pads") or ctx.attr("paddings"))
    axes_l = ctx.ints(3) if ctx.opset >= 18 and ctx.has(3) else list(range(rank))
    mode = ctx.attr("mode", "constant")
    axes = [dict(a) for a in st.axes]
    if pads is None or axes_l is None or len(pads) != 2 * len(axes_l):
        return [FlowState(tuple(collapse(a, _len(shape, k)) for k, a in enumerate(axes)), dict(st.fixed))]
    n = len(axes_l)
    for j, a in enumerate(axes_l):
        k = _norm(a, rank)
        pb, pe = D.as_int(pads[j]), D.as_int(pads[j + n])
        if pb is None or (pe is None and mode != "constant"):
            axes[k] = collapse(axes[k], _len(shape, k))
            continue
        if pb == 0 and pe == 0:
            continue
        if mode == "constant":
            m: Dep = affine(1, -pb, -pb)
        elif mode in ("reflect", "edge"):
            w = 2 * max(abs(pb), abs(pe))  # type: ignore[arg-type]  # mirrored/clamped index stays within this band
            m = affine(1, -pb - w, -pb + w)
        else:
            m = ALL
        axes[k] = through(m, axes[k])
    return [FlowState(tuple(axes), dict(st.fixed))]


@FLOW.rule("DepthToSpace", "SpaceToDepth")
def depth_space(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    b = int(ctx.attr("blocksize", 1))
    if st.axes is None or shape is None or len(st.axes) != 4:
        return ctx.conservative()
    axes = [dict(a) for a in st.axes]
    axes[1] = collapse(axes[1], shape[1])
    m = affine(Fraction(1, b), Fraction(1 - b, b), 0) if ctx.node.op_type == "DepthToSpace" else affine(b, 0, b - 1)
    for k in (2, 3):
        axes[k] = through(m, axes[k])
    return [FlowState(tuple(axes), dict(st.fixed))]


@FLOW.rule("CumSum", "CumProd")
def cumsum(ctx: FlowCtx) -> Out:
    st = ctx.state(0)
    ax = ctx.ints(1)
    if st.axes is None or not ax:
        return ctx.conservative()
    k = _norm(ax[0], len(st.axes))
    excl, rev = ctx.attr("exclusive", 0), ctx.attr("reverse", 0)
    if rev:
        m: Dep = band([lin(1, 1 if excl else 0)], None)
    else:
        m = band(None, [lin(1, -1 if excl else 0)])
    axes = [dict(a) for a in st.axes]
    ctx.mark(axes[k], "sequence")
    axes[k] = through(m, axes[k])
    return [FlowState(tuple(axes), dict(st.fixed))]


def mix_op(ctx: FlowCtx, axis_attr: str = "axis", default: int = -1) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None:
        return ctx.conservative()
    axis = _norm(ctx.attr(axis_attr, default), len(shape))
    out = mix_axes(st, shape, {axis})
    return [out] + [out for _ in ctx.node.outputs[1:]]


@FLOW.rule("TopK")
def topk(ctx: FlowCtx) -> Out:
    return mix_op(ctx)


@FLOW.rule("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss")
@FLOW.rule("Compress", "ReverseSequence", "Unique", "NonZero", "NonMaxSuppression", "DFT", "STFT", "Det",
           "CenterCropPad", "Col2Im", "MaxUnpool", "ScatterND", "ScatterElements", "Scatter")
def whole_tensor(ctx: FlowCtx) -> Out:
    """Data-dependent or interleaving layouts: sound, not precise."""
    if ctx.node.op_type in DATA_MOVES:
        for i in range(ctx.n_inputs):
            st = ctx.state(i)
            ctx.mixed_by_data(merge(*(st.axes or ())))
    return ctx.conservative()


DATA_MOVES = frozenset({"Compress", "NonZero", "ScatterND", "ScatterElements", "Scatter", "Unique"})
"""Ops that move positions to places their *values* decide (recorded as such)."""


@FLOW.rule("OneHot")
def one_hot(ctx: FlowCtx) -> Out:
    """``out[.., c, ..] = values[indices[..] == c]``: each position reads its own
    index (MoE routing one-hot-encodes each token's experts)."""
    st, rank = ctx.state(0), ctx.out_rank(0)
    if st.axes is None or rank is None or len(st.axes) != rank - 1:
        return ctx.conservative()
    axis = _norm(ctx.attr("axis", -1), rank)
    axes = [dict(a) for a in st.axes]
    axes.insert(axis, {})
    fixed = [st.fixed] + [ctx.state(i).collapsed(ctx.shape(i)) for i in (1, 2) if ctx.has(i)]
    return [FlowState(tuple(axes), merge(*fixed))]


# -- conv and pooling --------------------------------------------------------------------------
def _same_pad_begin(in_dim: Dim | None, k: int, s: int, d: int, upper: bool) -> int:
    eff = d * (k - 1) + 1
    n = D.as_int(in_dim)
    if n is None:
        total = max(eff - s, 0)
    else:
        out = -(-n // s)
        total = max((out - 1) * s + eff - n, 0)
    return total // 2 if upper else (total + 1) // 2


def spatial_maps(ctx: FlowCtx, kernel: list[int], in_shape: tuple[Dim | None, ...]) -> list[Dep]:
    n = len(kernel)
    strides = list(ctx.attr("strides") or [1] * n)
    dil = list(ctx.attr("dilations") or [1] * n)
    pads = list(ctx.attr("pads") or [0] * (2 * n))
    auto = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    maps: list[Dep] = []
    for i in range(n):
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pb = _same_pad_begin(in_shape[2 + i], kernel[i], strides[i], dil[i], auto == "SAME_UPPER")
        elif auto == "VALID":
            pb = 0
        else:
            pb = pads[i]
        maps.append(affine(strides[i], -pb, -pb + dil[i] * (kernel[i] - 1)))
    return maps


def _kernel(ctx: FlowCtx, w_input: int) -> list[int] | None:
    k = ctx.attr("kernel_shape")
    if k:
        return list(k)
    w = ctx.shape(w_input)
    if w is None:
        return None
    ks = [D.as_int(d) for d in w[2:]]
    return None if any(x is None for x in ks) else ks  # type: ignore[return-value]


@FLOW.rule("Conv", "ConvInteger", "QLinearConv")
@FLOW.rule("FusedConv", "QLinearConv", domain=MS)
def conv(ctx: FlowCtx) -> Out:
    x_in, w_in = 0, (3 if ctx.node.op_type == "QLinearConv" else 1)
    st, shape = ctx.state(x_in), ctx.shape(x_in)
    kernel = _kernel(ctx, w_in)
    if st.axes is None or shape is None or kernel is None or len(st.axes) != 2 + len(kernel):
        return ctx.conservative()
    maps = spatial_maps(ctx, kernel, shape)
    axes: list[dict[Any, Dep]] = [dict(st.axes[0]), {}]
    for i, m in enumerate(maps):
        ctx.mark(st.axes[2 + i], "spatial")
        axes.append(through(m, st.axes[2 + i]))
    fixed = merge(st.fixed, collapse(st.axes[1], shape[1]),
                  *(ctx.state(i).collapsed(ctx.shape(i)) for i in range(1, ctx.n_inputs) if ctx.has(i)))
    return [FlowState(tuple(axes), fixed)]


def _convt_pad_begin(ctx: FlowCtx, i: int, n_in: Dim | None, s: int, d: int, k: int, opad: int,
                     out_shape: list[int] | None, auto: str, pads: list[int], n: int) -> int | None:
    """Begin padding of a ConvTranspose axis, per the ONNX spec.

    ``total = s·(in - 1) + output_padding + d·(k - 1) + 1 - out``; SAME_UPPER puts
    ``total // 2`` first, SAME_LOWER and an explicit ``output_shape`` put
    ``total - total // 2`` first. For SAME, ``out = in·s`` so ``total`` does not
    depend on the input size."""
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        total = opad + d * (k - 1) + 1 - s
        return total // 2 if auto == "SAME_UPPER" else total - total // 2
    if out_shape:
        nin = D.as_int(n_in)
        if nin is None:
            return None
        total = s * (nin - 1) + opad + d * (k - 1) + 1 - out_shape[i]
        return total - total // 2
    return 0 if auto == "VALID" else pads[i]


@FLOW.rule("ConvTranspose")
def conv_transpose(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    kernel = _kernel(ctx, 1)
    if st.axes is None or shape is None or kernel is None or len(st.axes) != 2 + len(kernel):
        return ctx.conservative()
    n = len(kernel)
    strides = list(ctx.attr("strides") or [1] * n)
    dil = list(ctx.attr("dilations") or [1] * n)
    pads = list(ctx.attr("pads") or [0] * (2 * n))
    opads = list(ctx.attr("output_padding") or [0] * n)
    out_shape = ctx.attr("output_shape")
    out_shape = list(out_shape)[-n:] if out_shape else None
    auto = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    axes: list[dict[Any, Dep]] = [dict(st.axes[0]), {}]
    for i in range(n):
        s, d, k = strides[i], dil[i], kernel[i]
        pb = _convt_pad_begin(ctx, i, shape[2 + i], s, d, k, opads[i], out_shape, auto, pads, n)
        ctx.mark(st.axes[2 + i], "spatial")
        if pb is None:
            axes.append(collapse(st.axes[2 + i], shape[2 + i]))
            continue
        # out o = s·j - pb + d·t (t < k)  ⇒  j ∈ [(o + pb - d(k-1))/s, (o + pb)/s]
        m = affine(Fraction(1, s), Fraction(pb - d * (k - 1), s), Fraction(pb, s))
        axes.append(through(m, st.axes[2 + i]))
    fixed = merge(st.fixed, collapse(st.axes[1], shape[1]),
                  *(ctx.state(i).collapsed(ctx.shape(i)) for i in range(1, ctx.n_inputs) if ctx.has(i)))
    return [FlowState(tuple(axes), fixed)]


@FLOW.rule("MaxPool", "AveragePool", "LpPool")
def pool(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    kernel = ctx.attr("kernel_shape")
    if st.axes is None or shape is None or not kernel or len(st.axes) != 2 + len(kernel):
        return ctx.conservative()
    maps = spatial_maps(ctx, list(kernel), shape)
    axes: list[dict[Any, Dep]] = [dict(st.axes[0]), dict(st.axes[1])]
    for i, m in enumerate(maps):
        ctx.mark(st.axes[2 + i], "spatial")
        axes.append(through(m, st.axes[2 + i]))
    out = FlowState(tuple(axes), dict(st.fixed))
    return [out, out]


@FLOW.rule("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def global_pool(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None:
        return ctx.conservative()
    for k in range(2, len(st.axes)):
        ctx.mark(st.axes[k], "spatial")
    pooled = merge(st.fixed, *(collapse(st.axes[k], shape[k]) for k in range(2, len(st.axes))))
    axes = [dict(st.axes[0]), dict(st.axes[1])] + [{} for _ in st.axes[2:]]
    return [FlowState(tuple(axes), pooled)]


def _resize_scales(ctx: FlowCtx, rank: int) -> list[float] | None:
    """Per-axis scales as the op will use them (None when sizes drive it)."""
    if ctx.node.op_type == "Upsample" and ctx.opset < 9:
        sc = ctx.attr("scales")
        return [float(x) for x in sc] if sc else None
    index = 1 if (ctx.node.op_type == "Upsample" or ctx.opset == 10) else 2
    arr = ctx.const(index) if ctx.has(index) else None
    if arr is None or arr.size == 0:
        return None
    values = [float(x) for x in arr.reshape(-1)]
    axes = ctx.attr("axes")
    if axes and len(axes) == len(values):
        full = [1.0] * rank
        for a, v in zip(axes, values, strict=True):
            full[_norm(a, rank)] = v
        return full
    return values if len(values) == rank else None


def _keep_aspect_scales(ctx: FlowCtx, src: tuple[Dim | None, ...]) -> list[float] | None:
    """With ``sizes`` and a keep-aspect policy, every resized axis uses one scale."""
    from ..ops.shape_rules import keep_aspect_scale

    sizes = ctx.ints(3)
    rank = len(src)
    axes = [_norm(a, rank) for a in (ctx.attr("axes") or range(rank))]
    if sizes is None or len(sizes) != len(axes):
        return None
    scale = keep_aspect_scale(ctx.attr("keep_aspect_ratio_policy", "stretch"), [src[a] for a in axes], sizes)
    if scale is None:
        return None
    full = [1.0] * rank
    for a in axes:
        full[a] = scale
    return full


_BY_SCALE = ("asymmetric", "half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn")
"""Coordinate transforms that depend on the scale alone (not on the sizes)."""


def _resize_map(ctx: FlowCtx, n_in: Any, n_out: int | None, scale: float | None) -> Dep | None:
    """Input positions an output position reads, per the ONNX Resize coordinate
    transforms; indices outside the input are clamped to the border."""
    mode = ctx.attr("mode", "nearest")
    ctm = ctx.attr("coordinate_transformation_mode", "half_pixel" if ctx.opset >= 11 else "asymmetric")
    sc = Fraction(scale).limit_denominator(1 << 16) if scale else Fraction(n_out, n_in)
    if sc == 0:
        return None
    inv = 1 / sc
    if ctm == "align_corners":
        slope, off = (Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)), Fraction(0)
    elif ctm == "asymmetric":
        slope, off = inv, Fraction(0)
    elif ctm == "tf_half_pixel_for_nn":
        slope, off = inv, inv / 2
    elif ctm in ("half_pixel", "pytorch_half_pixel"):
        slope, off = inv, (inv - 1) / 2
    elif ctm == "half_pixel_symmetric":
        out_w = sc * n_in
        adjust = Fraction(math.floor(out_w)) / out_w if out_w else Fraction(1)
        slope, off = inv, Fraction(n_in, 2) * (1 - adjust) + (inv - 1) / 2
    else:  # tf_crop_and_resize reads a runtime ROI
        return None
    if mode == "nearest":
        lo, hi = {"floor": (-1, 0), "ceil": (0, 1)}.get(ctx.attr("nearest_mode", "round_prefer_floor"),
                                                       (Fraction(-1, 2), Fraction(1, 2)))
    else:
        reach = 1 if mode == "linear" else 2
        if ctx.attr("antialias", 0) and sc < 1:
            reach = reach * inv  # the filter is stretched by 1/scale when downsampling
        lo, hi = -reach, reach
    # Clamping to the border: an output never reads nothing, so the band is
    # widened to always meet [0, n_in - 1].
    return band([lin(slope, off + lo), lin(0, n_in - 1)], [lin(slope, off + hi), lin(0, 0)])


@FLOW.rule("Resize", "Upsample")
def resize(ctx: FlowCtx) -> Out:
    st, src, dst = ctx.state(0), ctx.shape(0), ctx.out_shape(0)
    if st.axes is None or src is None or dst is None or len(src) != len(dst):
        return ctx.conservative()
    by_sizes = ctx.opset >= 11 and ctx.has(3) and ctx.node.op_type == "Resize"
    scales = None if by_sizes else _resize_scales(ctx, len(src))
    if by_sizes:
        scales = _keep_aspect_scales(ctx, src)
    axes = [dict(a) for a in st.axes]
    for k, (a, b) in enumerate(zip(src, dst, strict=True)):
        if not axes[k] or (scales is None and a is not None and b is not None and D.equal(a, b)):
            continue
        if scales is not None and scales[k] == 1.0:
            continue
        ai, bi = D.as_int(a), D.as_int(b)
        if scales is None and (ai is None or bi is None):
            # Sizes from the input's shape (DeepLab's upsample to the input size on a dynamic
            # export): the ratio is only known at the binding.
            ai, bi = ctx.at_binding(a), ctx.at_binding(b)
        if ai is not None and bi is not None and bi != 0:
            m = _resize_map(ctx, ai, bi, scales[k] if scales is not None else None)
        elif scales is not None and scales[k] and a is not None and ctx.attr(
                "coordinate_transformation_mode", "half_pixel" if ctx.opset >= 11 else "asymmetric") in _BY_SCALE:
            # A symbolic size with a known scale (YOLO's nearest ×2 upsample in a dynamic-H/W
            # export): the map needs the size only to clamp at the border.
            m = _resize_map(ctx, a, None, scales[k])
        else:
            m = None
        axes[k] = collapse(axes[k], a) if m is None else through(m, axes[k])
    fixed = merge(st.fixed, *(ctx.state(i).collapsed(ctx.shape(i)) for i in range(1, ctx.n_inputs) if ctx.has(i)))
    return [FlowState(tuple(axes), fixed)]


@FLOW.rule("MaxRoiPool", "RoiAlign", "GridSample", "AffineGrid", "DeformConv")
def data_dependent_spatial(ctx: FlowCtx) -> Out:
    return ctx.conservative()


# -- contractions --------------------------------------------------------------------------
def _matmul_state(a: FlowState, b: FlowState, ash: tuple[Dim | None, ...] | None,
                  bsh: tuple[Dim | None, ...] | None, out_rank: int | None) -> FlowState | None:
    if a.axes is None or b.axes is None or ash is None or bsh is None or out_rank is None:
        return None
    aa, bb = list(a.axes), list(b.axes)
    ash_l, bsh_l = list(ash), list(bsh)
    a1, b1 = len(aa) == 1, len(bb) == 1
    if a1:
        aa, ash_l = [{}, *aa], [1, *ash_l]
    if b1:
        bb, bsh_l = [*bb, {}], [*bsh_l, 1]
    fixed = merge(a.fixed, b.fixed, collapse(aa[-1], ash_l[-1]), collapse(bb[-2], bsh_l[-2]))
    batch_rank = max(len(aa), len(bb)) - 2
    batch: list[dict[Any, Dep]] = [{} for _ in range(batch_rank)]
    for axes, sh in ((aa, ash_l), (bb, bsh_l)):
        r = len(axes) - 2
        for j in range(r):
            k = j + batch_rank - r
            deps = axes[j]
            if sh[j] == 1:
                deps = through(constant(0, 0), deps)
            batch[k] = merge(batch[k], deps)
    out = batch + [dict(aa[-2]), dict(bb[-1])]
    if a1:
        out.pop(-2)
    if b1:
        out.pop(-1)
    return FlowState(tuple(out), fixed)


@FLOW.rule("MatMul", "MatMulInteger")
def matmul(ctx: FlowCtx) -> Out:
    return [_matmul_state(ctx.state(0), ctx.state(1), ctx.shape(0), ctx.shape(1), ctx.out_rank(0))]


@FLOW.rule("QLinearMatMul")
def qlinear_matmul(ctx: FlowCtx) -> Out:
    return [_matmul_state(ctx.state(0), ctx.state(3), ctx.shape(0), ctx.shape(3), ctx.out_rank(0))]


@FLOW.rule("MatMulNBits", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", domain=MS)
def matmul_weights(ctx: FlowCtx) -> Out:
    """A [.., K] × packed weights: the last axis is contracted, the rest pass through."""
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None or not st.axes:
        return ctx.conservative()
    axes = [dict(a) for a in st.axes[:-1]] + [{}]
    return [FlowState(tuple(axes), merge(st.fixed, collapse(st.axes[-1], shape[-1])))]


@FLOW.rule("FusedMatMul", domain=MS)
def fused_matmul(ctx: FlowCtx) -> Out:
    a, b = ctx.state(0), ctx.state(1)
    ash, bsh = ctx.shape(0), ctx.shape(1)
    if ctx.attr("transA", 0) and a.axes is not None and ash is not None and len(ash) >= 2:
        perm = list(range(len(ash) - 2)) + [len(ash) - 1, len(ash) - 2]
        a, ash = permute(a, perm), tuple(ash[p] for p in perm)
    if ctx.attr("transB", 0) and b.axes is not None and bsh is not None and len(bsh) >= 2:
        perm = list(range(len(bsh) - 2)) + [len(bsh) - 1, len(bsh) - 2]
        b, bsh = permute(b, perm), tuple(bsh[p] for p in perm)
    return [_matmul_state(a, b, ash, bsh, ctx.out_rank(0))]


@FLOW.rule("Gemm")
def gemm(ctx: FlowCtx) -> Out:
    a, b = ctx.state(0), ctx.state(1)
    ash, bsh = ctx.shape(0), ctx.shape(1)
    if a.axes is None or b.axes is None or ash is None or bsh is None:
        return ctx.conservative()
    if ctx.attr("transA", 0):
        a, ash = permute(a, [1, 0]), (ash[1], ash[0])
    if ctx.attr("transB", 0):
        b, bsh = permute(b, [1, 0]), (bsh[1], bsh[0])
    out = _matmul_state(a, b, ash, bsh, 2)
    if out is None:
        return ctx.conservative()
    if ctx.has(2):
        c = broadcast(ctx, [2])
        if c is not None and c.axes is not None:
            out = FlowState(tuple(merge(x, y) for x, y in zip(out.axes, c.axes, strict=True)),  # type: ignore[arg-type]
                            merge(out.fixed, c.fixed))
    return [out]


@FLOW.rule("Einsum")
def einsum(ctx: FlowCtx) -> Out:
    from ..ops.shape_rules import parse_einsum

    terms, rhs = parse_einsum(ctx.attr("equation", ""))
    if any("..." in t for t in terms) or "..." in rhs:
        return ctx.conservative()
    letters: dict[str, list[Deps]] = {}
    fixed: list[Deps] = []
    for i, term in enumerate(terms):
        st, shape = ctx.state(i), ctx.shape(i)
        if st.axes is None or len(st.axes) != len(term):
            return ctx.conservative()
        fixed.append(st.fixed)
        for k, ch in enumerate(term):
            deps = st.axes[k]
            if ch in rhs:
                letters.setdefault(ch, []).append(deps)
            else:
                fixed.append(collapse(deps, _len(shape, k)))
    axes = tuple(merge(*letters.get(ch, [])) for ch in rhs)
    return [FlowState(axes, merge(*fixed))]


# -- recurrence -------------------------------------------------------------------------------
@FLOW.rule("LSTM", "GRU", "RNN")
def recurrent(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None or len(st.axes) != 3:
        return ctx.conservative()
    layout = ctx.attr("layout", 0)
    seq_ax, batch_ax = (0, 1) if layout == 0 else (1, 0)
    direction = ctx.attr("direction", "forward")
    m = {"forward": CAUSAL, "reverse": ANTICAUSAL}.get(direction, ALL)
    seq_deps = st.axes[seq_ax]
    ctx.mark(seq_deps, "sequence")
    others = merge(*(ctx.state(i).collapsed(ctx.shape(i)) for i in range(1, ctx.n_inputs) if ctx.has(i)))
    fixed = merge(st.fixed, collapse(st.axes[2], shape[2]), others)
    seq = through(m, seq_deps)
    batch = dict(st.axes[batch_ax])
    y = (seq, {}, batch, {}) if layout == 0 else (batch, seq, {}, {})
    final = merge(fixed, collapse(seq_deps, shape[seq_ax]))
    h = ({}, batch, {}) if layout == 0 else (batch, {}, {})
    return [FlowState(tuple(dict(a) for a in y), dict(fixed)), FlowState(tuple(dict(a) for a in h), final),
            FlowState(tuple(dict(a) for a in h), dict(final))]


# -- control flow (sound, not precise) ------------------------------------------------------------
@FLOW.rule("If", "Loop", "Scan", "SequenceMap")
def control_flow(ctx: FlowCtx) -> Out:
    return ctx.conservative()


def default_attention(ctx: FlowCtx) -> Out:
    """A fused attention op the attention detector did not claim: every query
    may see every key (bidirectional) — sound for any mask."""
    return ctx.conservative()


@FLOW.rule("CausalConvWithState")
def causal_conv_with_state(ctx: FlowCtx) -> Out:
    """Depthwise causal conv along L: output t sees inputs t-k+1..t (and, through
    the carried state, positions before this call — a separate input)."""
    st, w = ctx.state(0), ctx.shape(1)
    k = D.as_int(w[2]) if w is not None and len(w) == 3 else None
    if st.axes is None or len(st.axes) != 3 or k is None:
        return ctx.conservative()
    ctx.mark(st.axes[2], "sequence")
    axes = (dict(st.axes[0]), dict(st.axes[1]), through(affine(1, 1 - k, 0), st.axes[2]))
    others = merge(*(ctx.state(i).collapsed(ctx.shape(i)) for i in (1, 2, 3) if ctx.has(i)))
    out = FlowState(axes, merge(st.fixed, others))
    return [out, FlowState((dict(st.axes[0]), dict(st.axes[1]), {}), merge(st.fixed, others,
                                                                           collapse(st.axes[2], ctx.shape(0)[2])))]


@FLOW.rule("LinearAttention")
def linear_attention(ctx: FlowCtx) -> Out:
    """A recurrence over time: output t sees queries at t and keys/values (and
    decay/beta) at 0..t — causal, like a forward RNN."""
    q = ctx.state(0)
    if q.axes is None or len(q.axes) != 3:
        return ctx.conservative()
    seq = dict(q.axes[1])
    fixed = [q.fixed, collapse(q.axes[2], None)]
    for i in (1, 2, 4, 5):
        st = ctx.state(i)
        if st.axes is None or len(st.axes) != 3:
            fixed.append(st.collapsed(ctx.shape(i)))
            continue
        ctx.mark(st.axes[1], "sequence")
        seq = merge(seq, through(CAUSAL, st.axes[1]))
        fixed += [st.fixed, collapse(st.axes[2], None)]
    if ctx.has(3):
        fixed.append(ctx.state(3).collapsed(ctx.shape(3)))
    out = FlowState((dict(q.axes[0]), seq, {}), merge(*fixed))
    return [out] + ctx.conservative()[1:]


FLOW.add(["Attention"], default_attention)
FLOW.add(["FlexAttention"], default_attention, "ai.onnx.preview")
FLOW.add(catalog.MS_ATTENTION, default_attention, MS)

