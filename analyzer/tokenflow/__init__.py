"""The token-flow engine: which input positions can influence each position.

Public API (used by the built-in analyzers, the ``reach`` and ``verify``
commands, and plugins):

- :func:`flow` — run the engine once per analysis (cached), with attention
  layers gating their key axes by the mask;
- :func:`reach` — input positions an output position depends on, at the bound
  sequence/spatial lengths;
- :func:`depends` — does output position ``t`` see input position ``s``?
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .deps import Dep, Interval, count
from .engine import FlowResult, Source, run_flow
from .state import FlowState, SourceAxis

if TYPE_CHECKING:
    from ..context import AnalysisContext

__all__ = ["Dep", "FlowResult", "FlowState", "Interval", "Source", "SourceAxis", "count", "depends", "flow",
           "reach", "source_length"]


def attention_layers_or_empty(ctx: AnalysisContext) -> list[Any]:
    try:
        from ..attention import attention_layers
    except ImportError:
        return []
    return list(attention_layers(ctx))


def flow(ctx: AnalysisContext) -> FlowResult:
    """The engine's result for this analysis (computed once)."""
    def compute() -> FlowResult:
        from .attention_flow import overrides

        layers = attention_layers_or_empty(ctx)
        return run_flow(ctx.graph, ctx.shapes, ctx.registry, ctx.model.opsets, overrides(layers), ctx.evaluate,
                        ctx.bindings)

    return ctx.cached("tokenflow", compute)


def source_length(ctx: AnalysisContext, source: Source) -> int | None:
    v = ctx.evaluate(source.length)
    return v if isinstance(v, int) else None


def dep_of(result: FlowResult, tensor: str, axis: int | None, source: SourceAxis) -> Dep | None:
    """The dependency of ``tensor`` positions along ``axis`` on ``source`` (None: none)."""
    from .deps import union

    st = result.states.get(tensor)
    if st is None:
        return None
    parts = []
    if st.axes is not None and axis is not None and source in st.axes[axis]:
        parts.append(st.axes[axis][source])
    if source in st.fixed:
        parts.append(st.fixed[source])
    return union(*parts) if parts else None


def reach(ctx: AnalysisContext, tensor: str, axis: int | None, position: int,
          source: SourceAxis | None = None) -> dict[SourceAxis, list[Interval]]:
    """Input positions that ``tensor[.., position along axis, ..]`` depends on,
    per source axis, at the analysis bindings."""
    result = flow(ctx)
    out: dict[SourceAxis, list[Interval]] = {}
    for src, info in result.sources.items():
        if source is not None and src != source:
            continue
        dep = dep_of(result, tensor, axis, src)
        n = source_length(ctx, info)
        if dep is None or n is None:
            continue
        out[src] = dep.at(position, n, ctx.bindings)
    return out


def depends(ctx: AnalysisContext, tensor: str, axis: int, target: int, source: SourceAxis, position: int) -> bool:
    """Can input ``source`` position ``position`` influence output ``target``?"""
    intervals = reach(ctx, tensor, axis, target, source).get(source, [])
    return any(lo <= position <= hi for lo, hi in intervals)

