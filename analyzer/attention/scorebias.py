"""Score biases computed from activations: finite position scores, not masks.

Some models add learned, input-dependent terms to the attention scores next to
the mask: DeBERTa's disentangled content→position and position→content scores
(``QKᵣᵀ`` gathered by relative distance), relative-position MLPs. Their values
come out of MatMuls over activations, so they cannot be evaluated without the
weights — but they cannot hide a key either, as long as nothing on the way from
the activations *selects* or *compares* (a finite linear score plus a gather is
finite). Treating them as "hides nothing" can only add visible keys, so the
reach stays sound; the mask terms next to them are then read as usual.

A sum of terms is split first (``scores + (c2p + p2c)``), so one learned term
does not make the structural mask beside it unreadable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .maskeval import META_OPS, MaskSlice

if TYPE_CHECKING:
    from ..graph import ModelGraph

ACTIVATION_OPS = frozenset({"MatMul", "Gemm", "Conv", "Softmax", "LayerNormalization", "Einsum"})
"""Ops whose output is an activation (they read weights or other activations)."""
SELECTING_OPS = frozenset({"Where", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Equal", "Not", "And",
                           "Or", "Xor", "TopK", "ArgMax", "ArgMin", "IsInf", "IsNaN", "Min", "Max", "Clip",
                           "Mod", "Floor", "Ceil", "Round", "Sign", "ScatterND", "ScatterElements", "NonZero"})
"""Ops that can turn activations into a data-dependent mask (a comparison, a
selection, a clamp to -inf)."""
NORMALIZING_OPS = frozenset({"Softmax", "LayerNormalization", "RMSNormalization", "SimplifiedLayerNormalization"})
"""Ops whose output is finite whatever masking happened upstream."""
MAX_SPLIT = 6


def split_sum(graph: ModelGraph, tensor: str, depth: int = 0) -> list[str]:
    """The addends of an additive term: ``Add(a, Add(b, c))`` → ``[a, b, c]``."""
    node = graph.producer(tensor)
    if node is None or node.domain or node.op_type != "Add" or len(node.inputs) != 2 or depth >= MAX_SPLIT:
        return [tensor]
    return [t for x in node.inputs for t in split_sum(graph, x, depth + 1)]


def depends_on_activations(sl: MaskSlice) -> bool:
    return any(n.op_type in ACTIVATION_OPS and not n.domain for n in sl.nodes)


def is_finite_bias(sl: MaskSlice) -> bool:
    """The slice's outputs are derived from activations through arithmetic and
    layout only: no comparison or selection acted on activation values since
    they were last normalised (a softmax or layer norm makes them finite again,
    so a deep layer's bias may follow the previous layer's masked softmax)."""
    derived: set[str] = set()
    selected: set[str] = set()
    for node in sl.nodes:  # topological order
        outs = [o for o in node.outputs if o]
        if (node.domain, node.op_type) in META_OPS:
            continue  # reads only the shape of an activation: sizes are not scores
        reads_derived = any(x in derived for x in node.inputs)
        if node.domain:
            if reads_derived:
                return False
            continue
        if node.op_type in ACTIVATION_OPS or reads_derived:
            derived.update(outs)
        if node.op_type in NORMALIZING_OPS:
            continue
        if (node.op_type in SELECTING_OPS and reads_derived) or any(x in selected for x in node.inputs):
            selected.update(outs)
    return all(o in derived and o not in selected for o in sl.outputs)
