"""Queries over the engine's result that commands and analyzers share:
which output axis carries a source, the source a user means, and hops."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import TYPE_CHECKING

from ..errors import UsageError
from . import dep_of, flow, reach, source_length
from .deps import Band, Dep, Lin, count
from .engine import FlowResult, Source
from .rf import positional
from .state import SourceAxis

if TYPE_CHECKING:
    from ..context import AnalysisContext


def positional_axes(result: FlowResult, tensor: str, source: SourceAxis) -> list[int]:
    st = result.states.get(tensor)
    if st is None or st.axes is None:
        return []
    return [k for k, ax in enumerate(st.axes) if source in ax and positional(ax[source])]


def source_axes(ctx: AnalysisContext, result: FlowResult, tensor: str, source: SourceAxis) -> list[int]:
    """Axes of ``tensor`` that index the positions of ``source``: those whose
    dependency varies with the position, else (after bidirectional mixing, where
    every position sees everything) those of the source's length that carry it."""
    axes = positional_axes(result, tensor, source)
    if axes:
        return axes
    st = result.states.get(tensor)
    shape = ctx.shapes.shape(tensor)
    src = result.sources.get(source)
    if st is None or st.axes is None or shape is None or src is None:
        return []
    from .. import dims as D

    return [k for k, ax in enumerate(st.axes)
            if source in ax and shape[k] is not None and src.length is not None and D.equal(shape[k], src.length)]


def token_sources(result: FlowResult) -> list[Source]:
    """Sources used as sequence or spatial axes, sequence first."""
    items = [s for s in result.sources.values() if s.kinds]
    return sorted(items, key=lambda s: ("sequence" not in s.kinds, s.axis))


EMBEDDING_PATH = frozenset({"Cast", "Unsqueeze", "Reshape", "Squeeze", "Identity", "Flatten", "Add", "Sub", "Mul"})
MASK_WORDS = ("mask", "padding", "pad_", "attn_bias", "bias")
STATE_WORDS = ("state", "past", "cache", "memory")
"""Names of inputs that carry a recurrent state or a cache, not the sequence itself."""
STATE_PATH = frozenset({"Cast", "Unsqueeze", "Reshape", "Squeeze", "Identity", "Slice", "Gather", "Split",
                        "Transpose"})
RECURRENT_STATE_SLOTS = {"LSTM": (5, 6), "GRU": (5,), "RNN": (5,)}
"""Inputs of the ONNX recurrent ops that take the initial hidden/cell state (the op specs)."""


def recurrent_state(ctx: AnalysisContext, name: str) -> bool:
    """Is input ``name`` a recurrent state: named like one (``state``, ``past_*``, a cache),
    or fed (through slices and reshapes) into an LSTM/GRU/RNN's initial state? Its axes
    are layers and directions, not positions: a reach traced from them (Silero VAD's
    ``state[0]`` → ``stateN``) would say how two layers' states mix, which nobody asked."""
    lowered = name.lower()
    if any(w in lowered for w in STATE_WORDS):
        return True
    g = ctx.graph
    frontier, seen = [name], set[str]()
    while frontier:
        t = frontier.pop()
        for node in g.consumers(t):
            slots = RECURRENT_STATE_SLOTS.get(node.op_type, ())
            if any(node.input(i) == t for i in slots):
                return True
            if node.id not in seen and node.op_type in STATE_PATH and len(seen) < 64:
                seen.add(node.id)
                frontier.extend(o for o in node.outputs if o)
    return False


def input_rank(ctx: AnalysisContext, name: str) -> int:
    """How likely ``name`` is the token input a person means (lower first): ids
    that index an embedding table (a Gather from a weight, through casts and
    reshapes), then float inputs, then the rest; a mask input (by name) or a recurrent
    state (:func:`recurrent_state`) last.
    A padding mask also has a sequence axis, and a TorchScript export puts
    ``attention_mask`` in the graph beside ``input_ids``: reach traced from it
    would answer "which mask positions matter", which nobody asked."""
    lowered = name.lower()
    if any(w in lowered for w in MASK_WORDS) or recurrent_state(ctx, name):
        return 3
    g = ctx.graph
    frontier, seen = [name], set()
    while frontier:
        t = frontier.pop()
        for node in g.consumers(t):
            if node.id in seen:
                continue
            seen.add(node.id)
            if node.op_type == "Gather" and node.input(1) == t and node.input(0) in g.initializers:
                return 0
            if node.op_type in EMBEDDING_PATH and len(seen) < 64:
                frontier.extend(o for o in node.outputs if o)
    dtype = ctx.shapes.dtype(name)
    return 1 if dtype in (1, 10, 11, 16) else 2  # float, float16, double, bfloat16


def sequence_input(ctx: AnalysisContext, name: str) -> bool:
    """Is graph input ``name`` a sequence a person reads a reach over — token ids into an
    embedding, or a float input of rank ≤ 3 (frames × features, audio samples) that is
    neither a mask nor a recurrent state? An image (rank 4 and more) is not: what its
    positions see is the receptive field, and a reach "in tokens" over pixels says nothing."""
    rank = input_rank(ctx, name)
    if rank == 0:
        return True
    shape = ctx.shapes.shape(name)
    return rank == 1 and shape is not None and len(shape) <= 3


def parse_source(ctx: AnalysisContext, result: FlowResult, text: str | None, tensor: str) -> SourceAxis:
    """``input_ids[1]`` / ``input_ids:1`` / ``input_ids`` → a source axis; default:
    the first token source that ``tensor`` still depends on positionally."""
    if text:
        cands = [s for s in result.sources if s[0] == text]  # a bare input name (it may hold ':' or '[')
        if not cands:
            m = re.fullmatch(r"(.+?)(?:\[(\d+)\]|:(\d+))", text)
            if m is None:
                raise UsageError(f"--source {text!r}: expected INPUT, INPUT[AXIS] or INPUT:AXIS")
            axis = int(m.group(2) or m.group(3))
            cands = [s for s in result.sources if s[0] == m.group(1) and s[1] == axis]
        if not cands:
            raise UsageError(f"--source {text!r}: no such input axis (sources: "
                             f"{', '.join(f'{a}[{b}]' for a, b in result.sources)})")
        positional_first = sorted(cands, key=lambda s: not source_axes(ctx, result, tensor, s))
        return positional_first[0]
    ranked = sorted(token_sources(result) + list(result.sources.values()), key=lambda s: input_rank(ctx, s.axis[0]))
    for src in ranked:
        if source_axes(ctx, result, tensor, src.axis):
            return src.axis
    if result.sources:
        return next(iter(result.sources))
    raise UsageError("the model has no input axes to trace")


def layer_reach(ctx: AnalysisContext, source: SourceAxis, t: int) -> list[tuple[int, list[tuple[int, int]]]]:
    """For each attention layer (1-based, graph order): the source positions that
    position ``t`` of that layer's output depends on."""
    from . import attention_layers_or_empty

    result = flow(ctx)
    out: list[tuple[int, list[tuple[int, int]]]] = []
    for k, layer in enumerate(attention_layers_or_empty(ctx), start=1):
        node_id = layer.av_node or layer.fused_node
        node = ctx.graph.node_by_id.get(node_id) if node_id else None
        tensor = layer.output or (node.outputs[0] if node is not None and node.outputs else None)
        if tensor is None:
            continue
        axes = source_axes(ctx, result, tensor, source)
        if axes:
            out.append((k, reach(ctx, tensor, axes[0], t, source).get(source, [])))
    return out


def hops(ctx: AnalysisContext, source: SourceAxis, s: int, t: int) -> int | None:
    """Least number of attention layers after which input ``s`` influences
    position ``t`` of the residual stream (None: never)."""
    for k, intervals in layer_reach(ctx, source, t):
        if any(lo <= s <= hi for lo, hi in intervals):
            return k
    return None


FORMULA_CHECK = (37, 64)
"""Lengths at which a pattern's band formula is checked position by position."""


def reach_formula(dep: Dep | None) -> str | None:
    """Closed form of |reach(i)| for the common band shapes (``min(i+1, 131,041)``).

    A composition with a pattern (a chunked layer under a causal one: Llama-4) is
    given its band hull's formula only when the hull reaches exactly as far at
    every position of two lengths — else no formula rather than a wrong one."""
    if dep is None:
        return None
    if not isinstance(dep, Band):
        hull = dep.hull
        text = reach_formula(hull)
        try:
            same = text is not None and all(count(dep.at(i, n)) == count(hull.at(i, n))
                                            for n in FORMULA_CHECK for i in range(n))
        except ValueError:  # a pattern known at another length only, a symbolic offset
            return None
        return text if same else None
    if dep.is_all:
        return "n"
    if dep.lo is None and dep.hi is not None and len(dep.hi) == 1 and dep.hi[0] == Lin(Fraction(1), Fraction(0)):
        return "i+1"
    aff = dep.affine()
    if aff is not None and aff[0] == 1 and aff[2] == 0 and isinstance(aff[1], Fraction) and aff[1] <= 0:
        return f"min(i+1, {int(1 - aff[1]):,})"
    return None


def source_info(ctx: AnalysisContext, source: SourceAxis) -> tuple[Source, int | None]:
    src = flow(ctx).sources[source]
    return src, source_length(ctx, src)


__all__ = ["dep_of", "hops", "layer_reach", "parse_source", "positional_axes", "reach_formula",
           "sequence_input", "source_axes", "source_info", "token_sources"]
