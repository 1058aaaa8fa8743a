"""The token-flow building blocks a custom op's flow rule is made of.

A flow rule answers, for each output of a node: which positions of which model input
can each output position depend on. It reads its inputs' :class:`FlowState` s from the
context (``ctx.state(i)``, shapes with ``ctx.shape(i)``) and returns one state per output.
The functions here transform a state along one axis, the way common ops move positions:

- :func:`shift` — output position ``i`` reads input positions ``i + lo .. i + hi``
  (a token shift: ``lo=-1, hi=0``);
- :func:`window` — ``i - size + 1 .. i + right`` (a causal convolution, a sliding window);
- :func:`affine` — ``stride·i + lo .. stride·i + hi`` (a strided pool or conv along one axis);
- :func:`gather` — output position ``j`` reads input position ``positions[j]`` (constant
  indices; ``None``: indices chosen at run time, so every position);
- :func:`reduce` — the axes are reduced: every output position sees all of them;
- :func:`merge` — the union of several states (an op that combines its inputs);
- :func:`broadcast` — the inputs of an element-wise op aligned to the output, numpy style.

Positions past either end are clamped when a reach is evaluated (position 0 of a token
shift sees only position 0), and every map composes exactly with the rest of the graph:
32 layers of a shift by one compose to ``i - 32 .. i``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

from .. import dims as D
from ..dims import Dim
from .deps import Dep, Steps, constant, union
from .deps import affine as affine_band
from .engine import FlowCtx
from .rules.common import _len, _norm, mix_axes
from .rules.common import broadcast as _broadcast
from .state import FlowState, SourceAxis, collapse, through
from .state import merge as merge_deps


def _along(state: FlowState, axis: int, f: Dep) -> FlowState:
    """``state`` with output positions along ``axis`` mapped to input positions by ``f``."""
    if state.axes is None:
        return state
    k = _norm(axis, len(state.axes))
    axes = [dict(a) for a in state.axes]
    axes[k] = through(f, state.axes[k])
    return FlowState(tuple(axes), dict(state.fixed))


def affine(state: FlowState, axis: int, stride: int | Fraction, lo: int, hi: int) -> FlowState:
    """Output position ``i`` along ``axis`` reads input positions ``stride·i + lo .. stride·i + hi``."""
    return _along(state, axis, affine_band(stride, lo, hi))


def shift(state: FlowState, axis: int, lo: int, hi: int) -> FlowState:
    """Output position ``i`` along ``axis`` reads input positions ``i + lo .. i + hi``."""
    return affine(state, axis, 1, lo, hi)


def window(state: FlowState, axis: int, size: int, right: int = 0) -> FlowState:
    """Output position ``i`` reads the ``size`` positions up to ``i`` (and ``right`` after it)."""
    if size < 1:
        raise ValueError(f"window size {size} < 1")
    return affine(state, axis, 1, 1 - size, right)


def gather(state: FlowState, axis: int, positions: Sequence[int] | None, length: Dim | None = None) -> FlowState:
    """Output position ``j`` along ``axis`` reads input position ``positions[j]`` (negative ones
    count from the end of an input axis of ``length``); ``None``: positions chosen at run
    time, so each output position may read any of them."""
    if state.axes is None:
        return state
    k = _norm(axis, len(state.axes))
    if positions is None:
        return mix_axes(state, tuple(length if j == k else None for j in range(len(state.axes))), {k})
    n = D.as_int(length)
    rows = []
    for j, p in enumerate(positions):
        if p < 0:
            if n is None:
                raise ValueError(f"position {p} counts from the end of an axis of unknown length")
            p += n
        rows.append((j, constant(p, p)))
    return _along(state, k, Steps(tuple(rows)) if rows else constant(0, -1))


def reduce(state: FlowState, axes: Iterable[int], shape: Sequence[Dim | None] | None,
           keepdims: bool = True) -> FlowState:
    """The ``axes`` (of an input of ``shape``) are reduced: every output element sees every
    position along them; without ``keepdims`` they leave the output."""
    if state.axes is None:
        return state
    rank = len(state.axes)
    reduced = {_norm(a, rank) for a in axes}
    shp = tuple(shape) if shape is not None else None
    if keepdims:
        return mix_axes(state, shp, reduced)
    pooled = merge_deps(*(collapse(state.axes[k], _len(shp, k)) for k in reduced))
    kept = tuple(dict(a) for k, a in enumerate(state.axes) if k not in reduced)
    return FlowState(kept, merge_deps(state.fixed, pooled))


def merge(*states: FlowState) -> FlowState:
    """Everything any of ``states`` depends on, axis by axis (states of one rank)."""
    if not states:
        raise ValueError("merge() of no states")
    ranks = {s.rank for s in states}
    fixed = merge_deps(*(s.fixed for s in states))
    if None in ranks or len(ranks) != 1:
        everything: dict[SourceAxis, Dep] = {}
        for s in states:
            for src, d in s.collapsed().items():
                everything[src] = union(everything[src], d) if src in everything else d
        return FlowState(None, merge_deps(fixed, everything))
    rank = states[0].rank or 0
    axes = tuple(merge_deps(*(s.axes[k] for s in states if s.axes is not None)) for k in range(rank))
    return FlowState(axes, fixed)


def broadcast(ctx: FlowCtx, inputs: Sequence[int] | None = None, output: int = 0) -> FlowState | None:
    """The ``inputs`` (default: all) of an element-wise op aligned to output ``output`` as numpy
    broadcasts them: an input axis of size 1 spread over more positions is read at position 0.
    ``None`` when the output's rank is unknown."""
    return _broadcast(ctx, list(inputs) if inputs is not None else None, output)


__all__ = ["affine", "broadcast", "gather", "merge", "reduce", "shift", "window"]
