"""Flow rules of data movement: transposes, reshapes (split/merge of position axes),
concat/split/slice offsets, gathers, padding, cumulative ops."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from ... import dims as D
from ...dims import Dim
from ..deps import (
    ALL,
    IDENTITY,
    Chain,
    Dep,
    Periodic,
    Steps,
    Union,
    affine,
    band,
    compose,
    constant,
    is_constant_set,
    lin,
    merge_intervals,
    union,
)
from ..engine import FlowCtx
from ..rf import positional
from ..state import Deps, FlowState, collapse, merge, through
from .common import FLOW, Out, _len, _norm, broadcast, mix_axes, permute


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


def regroup_map(inner_src: int, inner_dst: int) -> Dep:
    """Row-major regrouping of one run of axes: output row ``r`` of the outermost
    output axis (``inner_dst`` elements each) covers flat elements
    ``r·inner_dst .. r·inner_dst + inner_dst - 1``, i.e. outermost input rows
    ``⌊r·inner_dst / inner_src⌋ .. ⌊(r·inner_dst + inner_dst - 1) / inner_src⌋`` —
    exactly the integer points of ``[(r·Pb - Pa + 1)/Pa, (r·Pb + Pb - 1)/Pa]``.
    A split by k (``Pa = 1``) is ``[k·r, k·r + k - 1]``; a merge by m (``Pb = 1``)
    is ``⌊r/m⌋``; ``[2048, 64] → [512, 256]`` is ``[4r, 4r + 3]``."""
    a, b = Fraction(inner_src), Fraction(inner_dst)
    return affine(b / a, (1 - a) / a, (b - 1) / a)


def reshape_state(st: FlowState, src: tuple[Dim | None, ...] | None,
                  dst: tuple[Dim | None, ...] | None,
                  at_binding: Callable[[Dim | None], int | None] | None = None,
                  lose: Callable[[str, Deps], None] | None = None) -> FlowState:
    """Row-major reshape, one run of axes with equal products at a time.

    Within a run, the outermost output axis takes the outermost input axis
    through :func:`regroup_map` (exact when the inner products are constants),
    plus the inner input axes' deps as a whole; the inner output axes need
    nothing of their own: every element of output row ``r`` lies in the input
    rows that map already names (so ``[T·k, H] → [T, k, H]`` then a sum over
    ``k`` — an MoE combine — keeps each token to itself).

    Inner products that are symbolic (a dynamic-H/W export's window grid) are
    taken at the analysis' binding (``at_binding``), as a resize's ratio is: the
    static and the dynamic export of one network then get the same map.

    ``lose(why, deps)`` is told where positions of ``deps`` are kept only as a whole: a
    reach through such a reshape is an upper bound. A split into blocks (``[T] → [T/L, L]``,
    the outer axis keeping each row's block) is not reported here: it loses nothing when the
    block is later mixed whole (block-sparse attention); a rule that mixes the inner axis
    only partially reports it (:meth:`FlowCtx.partial_mix`)."""
    def lost(why: str, deps: Deps) -> None:
        if lose is not None and any(positional(d) for d in deps.values()):
            lose(why, deps)

    if st.axes is None or src is None or dst is None:
        lost("shapes unknown: positions kept as a whole", merge(*(st.axes or ())))
        return FlowState(None if dst is None else tuple({} for _ in dst), st.collapsed(src))
    groups = reshape_groups(src, dst)
    if groups is None and at_binding is not None:
        src, dst, groups = _groups_at_binding(src, dst, at_binding)
    if groups is None:
        lost("axes that do not pair: positions kept as a whole", merge(*st.axes))
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
        ones = [k for k in live_in if src[k] == 1]
        if ones and (big_in or big_out):
            # A length-1 axis merged with a longer one ([1, 1, T] → [T]: a frame axis a
            # convolution reduced to one, then flattened with the sequence): its one
            # position is every output element's, so its deps hold for all of them — not
            # read at each output position as if the axis were that long (silero-vad's
            # sequence export lost every chunk's samples but the first that way).
            fixed.append(merge(*(collapse(st.axes[k], 1) for k in ones)))
            live_in = [k for k in live_in if src[k] != 1]
            if not live_in:
                continue
        if len(big_in) <= 1 and len(big_out) <= 1:
            target = big_out[0] if big_out else (gj[0] if gj else None)
            deps = merge(*(st.axes[k] for k in live_in))
            if target is None:
                fixed.append(collapse(deps, None))
            else:
                axes[target] = merge(axes[target], deps)
            continue
        outer_deps = dict(st.axes[big_in[0]]) if big_in else {}
        if len(big_in) == 1 and len(big_out) >= 2:
            # A source read at ``p mod n`` on this axis (a tiled axis, or the inner axis
            # of an earlier merge: MobileViT's patch grid) split back into [.., n]: the
            # innermost output axis, n long, reads it at its own position again.
            for source, d in list(outer_deps.items()):
                peeled = _unperiod({source: d}, dst[big_out[-1]])
                if peeled is not None:
                    axes[big_out[-1]] = merge(axes[big_out[-1]], peeled)
                    del outer_deps[source]
            if not outer_deps:
                continue
        inner_src = _int_at(D.prod(src[k] for k in big_in[1:]), at_binding)
        inner_dst = _int_at(D.prod(dst[k] for k in big_out[1:]), at_binding)
        # Inner input axes: with one output axis, the innermost is read at ``p mod n``
        # (exact, whatever n); the others as a whole.
        rest = merge(*(collapse(st.axes[k], src[k]) for k in big_in[1:-1]))
        lost("merges three or more position axes: the middle ones kept as a whole",
             merge(*(st.axes[k] for k in big_in[1:-1])))
        if len(big_in) >= 2:
            last = big_in[-1]
            if len(big_out) > 1:
                lost("splits and merges position axes at once: inner positions kept as a whole", st.axes[last])
            rest = merge(rest, through(Periodic(src[last]), st.axes[last]) if len(big_out) <= 1
                         else collapse(st.axes[last], src[last]))
        target = big_out[0] if big_out else gj[0]
        if inner_src is not None and inner_dst is not None and inner_src > 0 and inner_dst > 0:
            axes[target] = merge(axes[target], through(regroup_map(inner_src, inner_dst), outer_deps), rest)
            continue
        if len(big_out) <= 1:  # a merge by a symbolic factor: the outer axis as a whole
            lost("merges by a symbolic factor: positions kept as a whole", outer_deps)
            axes[target] = merge(axes[target], collapse(outer_deps, src[big_in[0]]), rest)
            continue
        lost("splits positions by a symbolic factor: kept as a whole", merge(*(st.axes[k] for k in gi)))
        pooled = merge(*(collapse(st.axes[k], src[k]) for k in gi))
        for k in big_out or gj:
            axes[k] = merge(axes[k], pooled)
    return FlowState(tuple(axes), merge(*fixed))


Shape = tuple[Dim | None, ...]
Groups = list[tuple[list[int], list[int]]]


def _groups_at_binding(src: Shape, dst: Shape, at_binding: Callable[[Dim | None], int | None],
                       ) -> tuple[Shape, Shape, Groups | None]:
    """Axes paired by their sizes at the binding, when their symbolic forms did not pair:
    a chunked export's padded ``4·⌈T/4⌉`` reshaped back to ``T`` (Mamba-2 traced at a
    multiple of its chunk) is ``T`` at such a binding. Only runs that keep one axis, or
    merge constant axes into one: a symbolic axis split in several (a shifted window
    partition) keeps the symbolic answer (pooled), whose later maps the receptive field
    reads as such."""
    src_at = tuple(None if d is None else _int_at(d, at_binding) for d in src)
    dst_at = tuple(None if d is None else _int_at(d, at_binding) for d in dst)
    if None in src_at or None in dst_at:
        return src, dst, None
    groups = reshape_groups(src_at, dst_at)
    for gi, gj in groups or ():
        big_in = [k for k in gi if src_at[k] != 1]
        big_out = [k for k in gj if dst_at[k] != 1]
        if len(big_out) > 1 or (len(big_in) > 1 and any(D.as_int(src[k]) is None for k in big_in)):
            return src, dst, None
    return src_at, dst_at, groups


def _int_at(d: Dim, at_binding: Callable[[Dim | None], int | None] | None) -> int | None:
    v = D.as_int(d)
    return at_binding(d) if v is None and at_binding is not None else v


def _peel(d: Dep, inner: Dim) -> Dep | None:
    """``d`` without its leading ``i mod inner`` step (None: it has none)."""
    if isinstance(d, Periodic):
        return IDENTITY if _ratio_one(d.period, inner) else None
    if isinstance(d, Chain):
        head = _peel(d.steps[0], inner)
        return None if head is None else compose(head, d.steps[1] if len(d.steps) == 2 else Chain(d.steps[1:]))
    if isinstance(d, Union):
        parts = [_peel(p, inner) for p in d.parts]
        return None if any(p is None for p in parts) else union(*parts)  # type: ignore[arg-type]
    return None


def _unperiod(deps: Deps, inner: Dim | None) -> dict[Any, Dep] | None:
    """``deps`` with a leading ``i mod inner`` step removed, when every dep starts
    with one (None otherwise): position j of an axis ``inner`` long reads j."""
    if inner is None or not deps:
        return None
    out: dict[Any, Dep] = {}
    for s, d in deps.items():
        peeled = _peel(d, inner)
        if peeled is None:
            return None
        out[s] = peeled
    return out


@FLOW.rule("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def reshape(ctx: FlowCtx) -> Out:
    st = ctx.state(0)
    src, dst = ctx.shape(0), ctx.out_shape(0)
    lost: list[tuple[str, Deps]] = []
    out = reshape_state(st, src, dst, ctx.at_binding, lambda why, deps: lost.append((why, deps)))
    if lost and any("do not pair" in why for why, _ in lost) and not _spatial(ctx, st):
        # Axes that pair only element by element (a diagonalising Pad + Reshape): read
        # the reshape at the binding as an index map (``concrete``). Not for maps of a
        # conv's spatial axes: a window partition kept whole is what the receptive-field
        # report reads as the window grid (Swin), and a table is no map to it.
        from ..concrete import concrete_reshape

        exact = concrete_reshape(ctx)
        if exact is not None:
            return [exact]
    for why, deps in lost:
        ctx.approximate(why, deps)
    for i in range(1, ctx.n_inputs):  # the shape operand's own content deps
        if ctx.has(i):
            out.fixed = merge(out.fixed, ctx.state(i).collapsed(ctx.shape(i)))
    return [out]


def _spatial(ctx: FlowCtx, st: FlowState) -> bool:
    """Does ``st`` carry positions of a source a convolution or pooling ran over?"""
    return any("spatial" in src.kinds for s in st.sources() if (src := ctx.engine.sources.get(s)) is not None)


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
    steps: dict[Any, list[tuple[int, Dep]]] = {}
    for i, off, size in zip(idx, offs, sizes, strict=True):
        st = ctx.state(i)
        if st.axes is None or len(st.axes) != rank:
            fixed += [st.fixed, st.collapsed(ctx.shape(i))]
            continue
        if size == 1 and D.is_int(off):
            for src, dep in st.fixed.items():
                if is_constant_set(dep):
                    steps.setdefault(src, []).append((int(off), dep))
                else:
                    fixed.append({src: dep})
        else:
            fixed.append(st.fixed)
        for k, deps in enumerate(st.axes):
            axes[k] = merge(axes[k], through(_shift(off), deps) if k == axis else deps)
    stacked = {src: Steps(tuple(sorted(pts, key=lambda p: p[0]))) for src, pts in steps.items()}
    ctx.mark(stacked, "sequence")  # a scan stacked step by step runs along this axis
    axes[axis] = merge(axes[axis], stacked)
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
        s = int(start)
        if s < 0:
            if dim is None:
                return None
            s_d: Dim = D.add(dim, s)
            if D.is_int(dim):
                return max(s_d, 0 if step > 0 else -1)
            return s_d
        if D.is_int(dim):
            return min(s, int(dim) if step > 0 else int(dim) - 1)
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
    if len(dshape) == 1 and (values is None or len(ishape) > 1):
        # A flattened tensor gathered by computed indices (an exported as_strided):
        # read element by element at the binding (``concrete``).
        from ..concrete import flat_gather, reshape_origin

        if reshape_origin(ctx, ctx.node.input(0)) != ctx.node.input(0):
            st = flat_gather(ctx)
            if st is not None:
                return [st]
    fixed: list[Deps] = [data.fixed, idx.fixed]
    idx_axes = [dict(a) for a in idx.axes]
    if dep_k and values is not None and min(values, default=0) < 0:
        # Negative indices count from the end: at the binding when the axis is symbolic
        # (``x[:, -1]`` on a chunk axis), else the whole axis.
        length = ctx.at_binding(dshape[axis])
        values = None if length is None else [v + length if v < 0 else v for v in values]
        if values is None:
            fixed.append(collapse(dep_k, dshape[axis]))
            dep_k = {}
    if dep_k:
        if values is not None and len(ishape) == 0:
            fixed.append(through(constant(values[0], values[0]), dep_k))
        elif values is not None and len(ishape) == 1 and len(values) >= 1:
            steps = {b - a for a, b in itertools.pairwise(values)}
            if len(values) == 1 or (len(steps) == 1 and values[0] >= 0):
                step = steps.pop() if steps else 1
                idx_axes[0] = merge(idx_axes[0], through(affine(step, values[0], values[0]), dep_k))
            else:
                idx_axes[0] = merge(idx_axes[0], through(constant(min(values), max(values)), dep_k))
        else:
            arr = ctx.const(1) if values is None else None
            rows = _constant_rows(arr, dshape[axis])
            if rows is not None:
                # Constant indices of any rank (BigBird's random blocks in eval): the
                # rows they name, wherever they land.
                fixed.append(through(rows, dep_k))
            elif arr is not None:
                fixed.append(collapse(dep_k, dshape[axis]))
            elif (form := _position_index(ctx, len(ishape))) is not None:
                # Indices a·i + b of their own position i (Range-built advanced indexing).
                k, a, b = form
                idx_axes[k] = merge(idx_axes[k], through(affine(a, b, b), dep_k))
            else:
                if not values:  # indices computed at run time, not constants
                    ctx.mixed_by_data(dep_k)
                fixed.append(collapse(dep_k, dshape[axis]))
    out = [dict(a) for a in data.axes[:axis]] + idx_axes + [dict(a) for a in data.axes[axis + 1:]]
    return [FlowState(tuple(out), merge(*fixed))]


def _position_index(ctx: FlowCtx, rank: int) -> tuple[int, int, int] | None:
    """``(axis, a, b)`` when the Gather's indices are ``a·i + b`` along their ``axis``
    (integers, never negative), from :func:`..indexvals.affine_index`."""
    from ..indexvals import affine_index

    form = affine_index(ctx, ctx.node.input(1))
    if form is None or form.axis is None or rank == 0:
        return None
    if form.a.denominator != 1 or form.b.denominator != 1 or form.a < 0 or form.b < 0:
        return None
    return form.axis + rank, int(form.a), int(form.b)


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


def _constant_rows(arr: Any, length: Dim | None) -> Dep | None:
    """The rows a constant index tensor names (negative ones counted from the end):
    a few exact spans, or their hull."""
    if arr is None or not getattr(arr, "size", 0) or arr.dtype.kind not in "iu":
        return None
    n = D.as_int(length)
    if n is None and int(arr.min()) < 0:
        return None
    picked = sorted({int(v) + (n if v < 0 and n else 0) for v in arr.reshape(-1)})
    return union(*(constant(a, b) for a, b in merge_intervals((v, v) for v in picked)))


@FLOW.rule("GatherElements")
def gather_elements(ctx: FlowCtx) -> Out:
    data, dshape = ctx.state(0), ctx.shape(0)
    if data.axes is None or dshape is None:
        return ctx.conservative()
    axis = _norm(ctx.attr("axis", 0), len(dshape))
    base = broadcast(ctx, [1])
    if base is None or base.axes is None or len(base.axes) != len(data.axes):
        return ctx.conservative()
    rows = _constant_rows(ctx.const(1), dshape[axis])
    axes = [merge(b, d) if k != axis else merge(b, through(rows, d) if rows is not None else collapse(d, dshape[k]))
            for k, (b, d) in enumerate(zip(base.axes, data.axes, strict=True))]
    return [FlowState(tuple(axes), merge(base.fixed, data.fixed))]


@FLOW.rule("Expand")
def expand(ctx: FlowCtx) -> Out:
    return [broadcast(ctx, [0])]


@FLOW.rule("Tile")
def tile(ctx: FlowCtx) -> Out:
    """Output position ``i`` of a tiled axis of length ``n`` reads input ``i mod n``."""
    st, shape = ctx.state(0), ctx.shape(0)
    reps = ctx.ints(1)
    if st.axes is None:
        return ctx.conservative()
    axes = [dict(a) for a in st.axes]
    for k in range(len(axes)):
        if reps is not None and reps[k] == 1:
            continue
        n = _len(shape, k)
        if n is None:
            axes[k] = collapse(axes[k], n)
        elif n == 1:
            axes[k] = through(constant(0, 0), axes[k])
        else:
            axes[k] = through(Periodic(n), axes[k])
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
    ctx.partial_mix([(st, k)], "a cumulative sum")
    axes[k] = through(m, axes[k])
    return [FlowState(tuple(axes), dict(st.fixed))]


def mix_op(ctx: FlowCtx, axis_attr: str = "axis", default: int = -1) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None:
        return ctx.conservative()
    axis = _norm(ctx.attr(axis_attr, default), len(shape))
    out = mix_axes(st, shape, {axis})
    return [out for _ in ctx.node.outputs]


@FLOW.rule("TopK")
def topk(ctx: FlowCtx) -> Out:
    return mix_op(ctx)


@FLOW.rule("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss")
@FLOW.rule("Compress", "ReverseSequence", "Unique", "NonZero", "NonMaxSuppression", "Det",
           "CenterCropPad", "Col2Im", "MaxUnpool")
def whole_tensor(ctx: FlowCtx) -> Out:
    """Data-dependent or interleaving layouts: sound, not precise."""
    if ctx.node.op_type in DATA_MOVES:
        for i in range(ctx.n_inputs):
            st = ctx.state(i)
            ctx.mixed_by_data(merge(*(st.axes or ())))
    return ctx.conservative("a data-dependent or interleaving layout: every position mixed")


DATA_MOVES = frozenset({"Compress", "NonZero", "Unique"})
"""Ops that move positions to places their *values* decide (recorded as such)."""


@FLOW.rule("ScatterElements", "Scatter")
def scatter_elements(ctx: FlowCtx) -> Out:
    """``out[.., idx[j], ..] = updates[j]`` along ``axis`` only: every other axis
    keeps its positions (Llama-4's router writes each token's top-k scores into
    ``[tokens, experts]`` along the expert axis — no token moves). Along ``axis``,
    an output position may receive any update: mixed, and recorded as moved by data."""
    data, idx, upd = ctx.state(0), ctx.state(1), ctx.state(2)
    shape = ctx.shape(0)
    if data.axes is None or idx.axes is None or upd.axes is None or shape is None \
            or not len(idx.axes) == len(upd.axes) == len(data.axes):
        return ctx.conservative()
    axis = _norm(ctx.attr("axis", 0), len(shape))
    fixed = merge(data.fixed, idx.fixed, upd.fixed)
    at = _single_index(ctx.const(1), _len(ctx.shape(2), axis))
    if at is not None:
        # ``x[:, t] = v`` (constant t): v lands at position t of the axis only.
        t = at + (D.as_int(shape[axis]) or 0) if at < 0 else at
        steps = {s: Steps(((t, d),)) for s, d in upd.fixed.items() if is_constant_set(d)}
        ctx.mark(steps, "sequence")
        fixed = merge(data.fixed, idx.fixed, {s: d for s, d in upd.fixed.items() if s not in steps})
        # The update's one row (position 0 of its axis) is what output position t sees.
        row = {s: compose(constant(0, 0), d) for s, d in upd.axes[axis].items()}
        moved = merge({s: Steps(((t, c),)) if is_constant_set(c) else c for s, c in row.items()}, steps)
    else:
        moved = merge(collapse(upd.axes[axis], _len(ctx.shape(2), axis)),
                      collapse(idx.axes[axis], _len(ctx.shape(1), axis)))
        if moved:
            ctx.mixed_by_data(moved)
    axes = [merge(data.axes[k], upd.axes[k], idx.axes[k]) if k != axis else merge(data.axes[k], moved)
            for k in range(len(shape))]
    return [FlowState(tuple(axes), fixed)]


def _single_index(values: Any, length: Dim | None) -> int | None:
    """The one index a constant index tensor holds, when the scattered axis has one row."""
    if values is None or length != 1 or getattr(values, "size", 0) == 0:
        return None
    flat = {int(v) for v in values.reshape(-1)}
    return flat.pop() if len(flat) == 1 else None


@FLOW.rule("ScatterND")
def scatter_nd(ctx: FlowCtx) -> Out:
    """``out[idx[j]] = updates[j]``: the first ``q = idx.shape[-1]`` data axes are
    addressed by values (any element there may receive any update row: mixed,
    recorded), the trailing data axes keep their positions with the updates'."""
    data, idx, upd = ctx.state(0), ctx.state(1), ctx.state(2)
    dshape, ishape, ushape = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    q = D.as_int(ishape[-1]) if ishape else None
    if data.axes is None or idx.axes is None or upd.axes is None or dshape is None or ushape is None \
            or q is None or not 0 < q <= len(dshape) or len(upd.axes) != len(idx.axes) - 1 + len(dshape) - q:
        return ctx.conservative()
    lead = len(idx.axes) - 1
    axes = [dict(data.axes[k]) if k < q else merge(data.axes[k], upd.axes[lead + k - q])
            for k in range(len(dshape))]
    rows = merge(*(collapse(upd.axes[j], ushape[j]) for j in range(lead)))
    target = _constant_target(ctx.const(1), dshape, q)
    if target is not None:
        # ``x[:, t] = v`` with a constant t on the one addressed axis longer than 1:
        # the update rows land at position t of that axis only.
        k, t = target
        landed = merge(upd.fixed, rows)
        steps = {s: Steps(((t, d),)) for s, d in landed.items() if is_constant_set(d)}
        ctx.mark(steps, "sequence")
        axes[k] = merge(axes[k], steps)
        rest = {s: d for s, d in landed.items() if s not in steps}
        return [FlowState(tuple(axes), merge(data.fixed, idx.fixed, rest))]
    moved = merge(rows, idx.collapsed(ishape))
    if (moved or upd.fixed) and ctx.const(1) is None:
        # Indices computed from shapes (an exported slice assignment): at the binding.
        from ..concrete import scatter

        exact = scatter(ctx)
        if exact is not None:
            return [exact]
    if moved:
        ctx.mixed_by_data(moved)
    axes = [merge(a, moved) if k < q else a for k, a in enumerate(axes)]
    return [FlowState(tuple(axes), merge(data.fixed, upd.fixed))]


def _constant_target(values: Any, dshape: tuple[Dim | None, ...], q: int) -> tuple[int, int] | None:
    """``(axis, t)`` when constant ScatterND indices address only one data axis
    longer than 1 and hold the single value ``t`` there."""
    if values is None or getattr(values, "size", 0) == 0 or values.shape[-1] != q:
        return None
    long = [k for k in range(q) if D.as_int(dshape[k]) != 1]
    if len(long) != 1 or any(not D.is_int(dshape[k]) for k in range(q)):
        return None
    k = long[0]
    vals = {int(v) for v in values.reshape(-1, q)[:, k]}
    if len(vals) != 1:
        return None
    t = vals.pop()
    return k, t + int(dshape[k]) if t < 0 else t  # type: ignore[arg-type]


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
