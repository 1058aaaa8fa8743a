"""Activation memory: bytes of each intermediate tensor, and the peak of the live
set along the graph's topological order.

An activation is a graph input or an output of a node that runs at inference
(constant-foldable outputs — a transposed weight — are weights, not
activations). A tensor is live from the node that produces it (inputs: from the
start) to its last consumer (graph outputs: to the end). The peak is computed at
the dim binding; its formula (the live set's bytes in the free dims) is reported
with it. Control-flow bodies count as their node's inputs and outputs (the
body's own temporaries are not modelled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..graph import ModelGraph
from .poly import ZERO, Poly


@dataclass
class MemoryReport:
    peak_value: Any = None
    peak_formula: Poly = ZERO
    peak_node: str = ""
    peak_tensors: list[tuple[str, Any]] = field(default_factory=list)
    """Largest live tensors at the peak (name, bytes at the binding)."""
    largest: tuple[str, Poly, Any] | None = None
    total: Poly = ZERO
    """Sum of every activation's bytes (what a runtime without buffer reuse allocates)."""
    unknown: int = 0
    """Activations whose size is unknown (left out of the figures)."""
    tensors: list[tuple[str, Poly, Any]] = field(default_factory=list)
    """Every activation: (name, bytes formula, bytes at the binding), largest first."""


def activation_memory(graph: ModelGraph, folded: set[str], tensor_bytes: Any, evaluate: Any) -> MemoryReport:
    """``tensor_bytes(name) -> Poly | None`` and ``evaluate(Poly) -> number`` come
    from the cost engine (cached per tensor)."""
    order = graph.topo_order()
    report = MemoryReport()
    sizes: dict[str, tuple[Poly, float]] = {}

    def size(t: str) -> tuple[Poly, float] | None:
        if t in sizes:
            return sizes[t]
        p = tensor_bytes(t)
        v = evaluate(p) if p is not None else None
        if p is None or v is None:
            report.unknown += 1
            return None
        sizes[t] = (p, float(v))
        return sizes[t]

    produced: list[list[str]] = []
    last_use: dict[str, int] = {}
    for idx, node in enumerate(order):
        outs = [] if node.id in folded else [o for o in node.outputs if o]
        produced.append(outs)
        for t in node.inputs:
            if t:
                last_use[t] = idx
        for subs in node.subgraphs.values():
            for sub in subs:
                for t in sub.outer_refs:
                    last_use[t] = idx
    end = len(order)
    for t in graph.outputs:
        last_use[t] = end
    live: dict[str, float] = {}
    for t in graph.inputs:
        s = size(t)
        if s is not None:
            live[t] = s[1]
    current = sum(live.values())
    peak, peak_idx = current, -1
    frees: dict[int, list[str]] = {}
    for t, i in last_use.items():
        frees.setdefault(i, []).append(t)
    for idx, outs in enumerate(produced):
        for t in outs:
            s = size(t)
            if s is not None:
                live[t] = s[1]
                current += s[1]
        if current > peak:
            peak, peak_idx = current, idx
        for t in frees.get(idx, ()):
            if t in live:
                current -= live.pop(t)
        for t in outs:  # produced but never read and not an output
            if t in live and t not in last_use:
                current -= live.pop(t)
    report.peak_value = _num(peak)
    report.peak_node = order[peak_idx].name if peak_idx >= 0 else "(graph inputs)"
    at_peak = _live_at(graph, order, produced, last_use, peak_idx)
    formula = ZERO
    ranked = []
    for t in at_peak:
        s = sizes.get(t)
        if s is not None:
            formula = formula + s[0]
            ranked.append((t, _num(s[1])))
    report.peak_formula = formula
    report.peak_tensors = sorted(ranked, key=lambda x: -x[1])[:5]
    total = ZERO
    for p, _ in sizes.values():
        total = total + p
    report.total = total
    report.tensors = sorted(((t, p, _num(v)) for t, (p, v) in sizes.items()), key=lambda x: -x[2])
    if report.tensors:
        report.largest = report.tensors[0]
    return report


def _live_at(graph: ModelGraph, order: list[Any], produced: list[list[str]], last_use: dict[str, int],
             idx: int) -> list[str]:
    """Tensors live right after node ``idx`` allocated its outputs."""
    out = [t for t in graph.inputs if last_use.get(t, len(order)) >= idx]
    for i in range(idx + 1):
        for t in produced[i]:
            if (t in last_use and last_use[t] >= idx) or i == idx:
                out.append(t)
    return out


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else v
