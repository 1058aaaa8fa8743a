"""Positions moved by an index map known only at the bound lengths.

Why: an ``as_strided``/``unfold`` sliding window (HF Longformer's ``_chunk``: chunks of
2w with stride w) is exported by TorchScript as ``Reshape(x, [-1])`` followed by a
``Gather`` whose indices are ``Σ_k Range(size_k) · stride_k`` — computed from shapes,
not constants — and its diagonalisation (``_pad_and_diagonalize``) as a ``Pad`` then a
``Reshape`` whose axes do not pair with the input's. Symbolically neither is an affine
map of one axis, and the per-op rules keep such positions as a whole (every chunk sees
every token). At the analysis' binding both are plain integer index maps: output element
``e`` reads element ``unravel(index[e])`` of the last tensor before the reshapes (row-major
reshapes keep the flat order). This module evaluates that map and hands each source axis'
positions to the one output axis that names them most tightly, as a table
(:class:`IndexTable`: position ``p`` of that axis → the source positions any element
at ``p`` reads). That is sound by construction — every element's own source position is in
its table row — and exact per row; the other output axes carry nothing of it.

The table holds at the binding only (the engine runs once per binding); maps over
:data:`MAX_ELEMENTS` elements, or whose indices cannot be evaluated, give None and the
caller keeps its symbolic answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .deps import Band, Dep, Interval, Pattern, Steps, affine, constant, is_constant_set, merge_intervals, union
from .state import Deps, FlowState, merge, through

if TYPE_CHECKING:
    import numpy as np

    from .engine import FlowCtx

MAX_ELEMENTS = 1 << 18
"""Largest index map evaluated (elements of the output)."""
MAX_DEPTH = 48
RESHAPES = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})


def shape_at(ctx: FlowCtx, tensor: str) -> tuple[int, ...] | None:
    """``tensor``'s shape at the binding (None: some dim unknown)."""
    shape = ctx.shapes.shape(tensor)
    if shape is None:
        return None
    out: list[int] = []
    for d in shape:
        v = ctx.at_binding(d)
        if v is None or v < 0:
            return None
        out.append(v)
    return tuple(out)


def value_at(ctx: FlowCtx, tensor: str, memo: dict[str, Any] | None = None, depth: int = 0) -> np.ndarray | None:
    """The integer value of ``tensor`` at the binding, evaluated from constants and shapes
    (never from the model's inputs' contents), or None."""
    import numpy as np

    from .. import npeval

    memo = {} if memo is None else memo
    if tensor in memo:
        return memo[tensor]
    memo[tensor] = None  # cycles and failures
    if depth > MAX_DEPTH or not tensor:
        return None
    arr = ctx.graph.constant_value(tensor, MAX_ELEMENTS)
    if arr is None:
        vals = ctx.shapes.values.get(tensor)
        if vals is not None:
            ints = [ctx.at_binding(v) for v in vals]
            shape = shape_at(ctx, tensor)
            if None not in ints and shape is not None:
                arr = np.array(ints, dtype=np.int64).reshape(shape)
    if arr is None:
        node = ctx.graph.producer(tensor)
        if node is None or node.domain or node.subgraphs:
            return None
        if node.op_type == "Shape":
            full = shape_at(ctx, node.input(0))
            if full is None:
                return None
            rank = len(full)
            start, end = (int(v) for v in (node.attr("start", 0), node.attr("end", rank)))
            start, end = (min(max(v + rank if v < 0 else v, 0), rank) for v in (start, end))
            arr = np.array(full[start:end], dtype=np.int64)
        else:
            inputs = [value_at(ctx, name, memo, depth + 1) if name else None for name in node.inputs]
            if any(v is None for v, name in zip(inputs, node.inputs, strict=True) if name):
                return None
            try:
                outs: list[Any] | None = npeval.run_node(node.proto, inputs, ctx.engine.opset(""), MAX_ELEMENTS)
            except npeval.TooLarge:
                return None
            except npeval.Unsupported:  # NonZero (TorchScript's arange of a size): onnx.reference
                from ..folding import fold_node, foldable

                outs = fold_node(node.proto, inputs, ctx.engine.opset("")) if foldable(node.op_type, "") else None
            if outs is None:
                return None
            arr = outs[list(node.outputs).index(tensor)]
    if arr is None or arr.dtype.kind not in "iub" or arr.size > MAX_ELEMENTS:
        return None
    memo[tensor] = arr
    return arr


def reshape_origin(ctx: FlowCtx, tensor: str) -> str:
    """The first tensor of the chain of reshapes that ends in ``tensor`` (the same elements
    in the same row-major order)."""
    seen = 0
    while seen < MAX_DEPTH:
        node = ctx.graph.producer(tensor)
        if node is None or node.domain or node.op_type not in RESHAPES or not node.input(0):
            return tensor
        tensor = node.input(0)
        seen += 1
    return tensor


@dataclass(frozen=True)
class IndexTable(Pattern):
    """Position ``p`` → the intervals ``rows[p]`` (positions past the table: nothing).

    Unlike :class:`~.deps.Steps`, the rows are never clipped to the source length ``n``:
    inside a :class:`~.deps.Chain` a table lands on an intermediate axis that may be longer
    than the source (a padded axis), and clipping it there would drop positions. As the
    whole dependency (the origin axis *is* the source axis) its rows are already in range."""

    rows: tuple[tuple[Interval, ...], ...]
    name = "index_table"

    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def _hash(self) -> int:  # the rows are hashed once (states are interned by their deps)
        return hash((IndexTable, self.rows))

    def image(self, lo: int, hi: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        out: list[Interval] = []
        for p in range(max(lo, 0), min(hi, len(self.rows) - 1) + 1):
            out.extend(self.rows[p])
        return merge_intervals(out)

    @cached_property
    def hull(self) -> Band:
        """The band ``[s·p + a, s·p + b]`` holding every row, for the slope ``s`` (0, 1, or
        the rows' own drift from the first to the last) that leaves the least slack: a
        chunk table of stride w drifts by w per row, and a band of slope w keeps it a map
        that moves with the position (the reach of an axis, not of every element)."""
        pts = [(p, r[0][0], r[-1][1]) for p, r in enumerate(self.rows) if r]
        if not pts:
            return constant(0, -1)
        slopes = {Fraction(0), Fraction(1)}
        if len(pts) > 1:
            (p0, a0, b0), (p1, a1, b1) = pts[0], pts[-1]
            slopes.add(Fraction(a1 + b1 - a0 - b0, 2 * (p1 - p0)).limit_denominator(64))
        best: tuple[Fraction, Band] | None = None
        for s in slopes:
            lo = min(a - s * p for p, a, _ in pts)
            hi = max(b - s * p for p, _, b in pts)
            slack = Fraction(sum((hi - lo) - (b - a) for _, a, b in pts))
            if best is None or slack < best[0]:
                best = (slack, affine(s, lo, hi))
        assert best is not None
        return best[1]

    def describe(self) -> str:
        return f"index table ({len(self.rows)} positions) ⊆ {self.hull.describe()}"


def _table(rows: Any) -> Dep:
    """:class:`IndexTable` from ``rows[p]`` = the source positions read at position p."""
    import numpy as np

    table: list[tuple[Interval, ...]] = []
    for row in rows:
        vals = np.unique(row)
        if not vals.size:
            table.append(())
            continue
        breaks = np.nonzero(np.diff(vals) != 1)[0]
        starts = np.concatenate(([vals[0]], vals[breaks + 1]))
        ends = np.concatenate((vals[breaks], [vals[-1]]))
        table.append(tuple(merge_intervals((int(a), int(b)) for a, b in zip(starts, ends, strict=True))))
    return IndexTable(tuple(table))


def _cost(rows: Sequence[Any]) -> float:
    """Positions an element of this axis is said to read, on average over the rows (a row
    of more than three spans counts as its hull: :func:`~.deps.union` summarises it so)."""
    import numpy as np

    total = 0
    for r in rows:
        if not r.size:
            continue
        vals = np.unique(r)
        spans = int((np.diff(vals) != 1).sum()) + 1
        total += int(vals.size) if spans <= 3 else int(vals[-1]) - int(vals[0]) + 1
    return total / max(len(rows), 1)


def regroup(origin: FlowState, oshape: tuple[int, ...], flat: np.ndarray,
            extra: Sequence[Deps], lose: Any = None, present: np.ndarray | None = None) -> FlowState | None:
    """The state of a tensor whose element ``e`` is element ``flat[e]`` (row-major) of a
    tensor of shape ``oshape`` and state ``origin``; ``extra``: position-independent deps
    added to every element (the index or shape operands' own); ``present``: which elements
    read one at all (None: every one). None when ``origin``'s rank is unknown or an index
    is out of range. ``lose(why, deps)`` is told when a row of a table names several
    positions (an element reads one of them: the reach through it is then an upper bound)."""
    import numpy as np

    if origin.axes is None or len(origin.axes) != len(oshape):
        return None
    total = int(np.prod(oshape, dtype=np.int64))
    flat = np.where(flat < 0, flat + total, flat).astype(np.int64)
    mask = np.ones(flat.shape, bool) if present is None else present
    if mask.any() and (int(flat[mask].min()) < 0 or int(flat[mask].max()) >= total):
        return None
    flat = np.where(mask, flat, 0)
    coords = np.unravel_index(flat, oshape) if total else tuple(np.zeros_like(flat) for _ in oshape)
    axes: list[dict[Any, Dep]] = [{} for _ in range(flat.ndim)]
    fixed: list[Deps] = [origin.fixed, *extra]
    for k, deps in enumerate(origin.axes):
        if not deps or not mask.any():
            continue
        src = coords[k]
        read = src[mask]
        lo, hi = int(read.min()), int(read.max())
        best: tuple[float, int, list[Any]] | None = None
        for a in range(flat.ndim):
            if flat.shape[a] < 2:  # a size-1 axis carries no positions of its own
                continue
            vals = np.moveaxis(src, a, 0).reshape(flat.shape[a], -1)
            keep = np.moveaxis(mask, a, 0).reshape(flat.shape[a], -1)
            rows = [v[m] for v, m in zip(vals, keep, strict=True)]
            cost = _cost(rows)
            if best is None or cost < best[0]:
                best = (cost, a, rows)
        if best is None or best[0] >= hi - lo + 1:  # every row reads every position
            fixed.append(through(constant(lo, hi), deps))
            if lose is not None and hi > lo:
                lose("regroups positions by an index map: read as a whole (at the binding)", deps)
            continue
        _, a, rows = best
        if lose is not None and any(int(r.max()) != int(r.min()) for r in rows if r.size):
            lose("regroups positions by an index map: each row kept as a whole (at the binding)", deps)
        axes[a] = merge(axes[a], through(_table(rows), deps))
    return FlowState(tuple(axes), merge(*fixed))


def scatter(ctx: FlowCtx) -> FlowState | None:
    """``ScatterND`` with indices evaluable at the binding (an exported slice assignment,
    Longformer's ``diagonal_attention_scores[:, :-1, :, w:] = chunks[...]``): each written
    element read back to its update element; the others keep the data's positions."""
    import numpy as np

    dshape, ushape = shape_at(ctx, ctx.node.input(0)), shape_at(ctx, ctx.node.input(2))
    idx = value_at(ctx, ctx.node.input(1))
    data, upd = ctx.state(0), ctx.state(2)
    if dshape is None or ushape is None or idx is None or idx.ndim < 1 or data.axes is None:
        return None
    q = int(idx.shape[-1])
    if not 0 < q <= len(dshape) or tuple(idx.shape[:-1]) + dshape[q:] != ushape \
            or not 0 < _size(dshape) <= MAX_ELEMENTS or ctx.attr("reduction", "none") not in ("none", b"none"):
        return None
    lead = idx.reshape(-1, q).astype(np.int64)
    lead = np.where(lead < 0, lead + np.array(dshape[:q]), lead)
    if lead.size and ((lead < 0).any() or (lead >= np.array(dshape[:q])).any()):
        return None
    if len({tuple(r) for r in lead.tolist()}) != len(lead):  # duplicates: the runtime picks any
        return None
    source = np.full(dshape, -1, np.int64)
    source[tuple(lead[:, k] for k in range(q))] = np.arange(_size(ushape), dtype=np.int64).reshape(
        (len(lead), *dshape[q:]))
    moved = FlowState(upd.axes, {})
    written = regroup(moved, ushape, source, [ctx.state(1).collapsed(ctx.shape(1))], ctx.approximate, source >= 0)
    if written is None or written.axes is None:
        return None
    axes = [merge(d, w) for d, w in zip(data.axes, written.axes, strict=True)]
    # What every update element depends on lands only where updates are written: a
    # table of those rows on the axis with the fewest (Longformer's corner x[:, 0, 1:w, 1:w]).
    landed = {s: c for s, d in upd.fixed.items() if (c := _as_set(ctx, s, d)) is not None}
    rest = {s: d for s, d in upd.fixed.items() if s not in landed}
    if landed:
        rows = _written_rows(source >= 0)
        if rows is None:
            rest.update(landed)
        else:
            a, hit = rows
            axes[a] = merge(axes[a], {s: Steps(tuple((p, d) for p in hit)) for s, d in landed.items()})
    return FlowState(tuple(axes), merge(data.fixed, written.fixed, rest))


def _as_set(ctx: FlowCtx, source: Any, dep: Dep) -> Dep | None:
    """A position-independent dependency as the constant set it is at the binding."""
    if is_constant_set(dep):
        return dep
    info = ctx.engine.sources.get(source)
    n = ctx.at_binding(info.length) if info is not None else None
    if n is None:
        return None
    try:
        spans = dep.image(0, 0, n, ctx.engine.bindings)
    except ValueError:  # a pattern known at another length, an unbound offset
        return None
    return union(*(constant(a, b) for a, b in spans)) if spans else None


def _written_rows(mask: np.ndarray) -> tuple[int, list[int]] | None:
    """``(axis, rows)``: the axis (longer than 1) along which the fewest rows hold a written
    element, and those rows; None when no axis is longer than 1 or nothing is written."""
    import numpy as np

    best: tuple[int, list[int]] | None = None
    for a in range(mask.ndim):
        if mask.shape[a] < 2:
            continue
        hit = [int(p) for p in np.nonzero(np.moveaxis(mask, a, 0).reshape(mask.shape[a], -1).any(axis=1))[0]]
        if hit and (best is None or len(hit) < len(best[1])):
            best = (a, hit)
    return best


def flat_gather(ctx: FlowCtx) -> FlowState | None:
    """``Gather(Reshape(x, [-1]), indices)`` with indices evaluable at the binding (an
    exported ``as_strided``): each output element read back to its element of ``x``."""
    data = ctx.node.input(0)
    origin = reshape_origin(ctx, data)
    oshape, declared = shape_at(ctx, origin), ctx.shape(1)
    if oshape is None or declared is None:
        return None
    n = _size(oshape)
    dshape = shape_at(ctx, data)
    if dshape is None or len(dshape) != 1 or dshape[0] != n:
        return None
    idx = value_at(ctx, ctx.node.input(1))  # its shape as evaluated (a NonZero-built one is not inferred)
    if idx is None or idx.ndim != len(declared) or not 0 < idx.size <= MAX_ELEMENTS:
        return None
    st = ctx.engine.states.get(origin)
    if st is None:
        return None
    idx_state = ctx.state(1)
    return regroup(st, oshape, idx.astype("int64"), [idx_state.collapsed(ctx.shape(1)), *_operands(ctx, data, origin)],
                   ctx.approximate)


def concrete_reshape(ctx: FlowCtx) -> FlowState | None:
    """A reshape read element by element at the binding (its axes do not pair)."""
    import numpy as np

    src, dst = shape_at(ctx, ctx.node.input(0)), shape_at(ctx, ctx.node.outputs[0])
    if src is None or dst is None or _size(src) != _size(dst) or not 0 < _size(dst) <= MAX_ELEMENTS:
        return None
    flat = np.arange(_size(dst), dtype=np.int64).reshape(dst)
    extra = [ctx.state(i).collapsed(ctx.shape(i)) for i in range(1, ctx.n_inputs) if ctx.has(i)]
    return regroup(ctx.state(0), src, flat, extra, ctx.approximate)


def _operands(ctx: FlowCtx, tensor: str, origin: str) -> list[Deps]:
    """The shape operands' own deps along the reshape chain ``origin → tensor``."""
    out: list[Deps] = []
    while tensor != origin:
        node = ctx.graph.producer(tensor)
        if node is None:
            break
        for name in node.inputs[1:]:
            st = ctx.engine.states.get(name) if name else None
            if st is not None:
                out.append(st.collapsed(ctx.shapes.shape(name)))
        tensor = node.input(0)
    return out


def _size(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


__all__ = ["IndexTable", "concrete_reshape", "flat_gather", "regroup", "scatter", "shape_at", "value_at"]
