"""The token-flow rule table and the helpers every family uses (broadcasting,
mixing an axis, permutations, the conservative fallback)."""

from __future__ import annotations

from typing import Any

from ...dims import Dim
from ...ops.registry import FlowRule, RuleTable
from ..deps import Dep, constant
from ..engine import FlowCtx
from ..state import Deps, FlowState, collapse, empty, merge, through

FLOW: RuleTable[FlowRule] = RuleTable("flow")
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
    out_shape = ctx.out_shape(out)  # each shape read once: this runs for most nodes of a graph
    if out_shape is None:
        return None
    rank = len(out_shape)
    axes: list[dict[Any, Dep]] = [{} for _ in range(rank)]
    fixed: list[Deps] = []
    for i in (inputs if inputs is not None else range(ctx.n_inputs)):
        if not ctx.has(i):
            continue
        st = ctx.state(i)
        fixed.append(st.fixed)
        if st.axes is None:
            fixed.append(st.fixed)
            continue
        shape = None
        r = len(st.axes)
        for j, deps in enumerate(st.axes):
            if not deps:
                continue
            if shape is None:
                shape = ctx.shape(i)
            k = j + rank - r
            n = _len(shape, j)
            if k < 0:
                fixed.append(collapse(deps, n))
                continue
            if n == 1 and _len(out_shape, k) != 1:
                deps = through(constant(0, 0), deps)
            axes[k] = merge(axes[k], deps) if axes[k] else dict(deps)
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
