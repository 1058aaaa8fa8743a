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

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..graph import ModelGraph
from .poly import ZERO, Poly, total


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


def activation_memory(graph: ModelGraph, folded: frozenset[str], tensor_bytes: Any, evaluate: Any) -> MemoryReport:
    """``tensor_bytes(name) -> Poly | None`` and ``evaluate(Poly) -> number`` come
    from the cost engine (cached per tensor)."""
    order = graph.topo_order()
    report = MemoryReport()
    sizes = _Sizes(tensor_bytes, evaluate)
    produced, last_use = _lifetimes(graph, order, folded)
    peak, peak_idx = _sweep(graph, produced, last_use, sizes)
    report.unknown = sizes.unknown
    report.peak_value = _num(peak)
    report.peak_node = order[peak_idx].name if peak_idx >= 0 else "(graph inputs)"
    at_peak = [(t, sizes.known[t]) for t in _live_at(graph, order, produced, last_use, peak_idx) if t in sizes.known]
    report.peak_formula = _sum(p for _, (p, _v) in at_peak)
    report.peak_tensors = sorted(((t, _num(v)) for t, (_p, v) in at_peak), key=lambda x: -x[1])[:5]
    report.total = _sum(p for p, _ in sizes.known.values())
    report.tensors = sorted(((t, p, _num(v)) for t, (p, v) in sizes.known.items()), key=lambda x: -x[2])
    if report.tensors:
        report.largest = report.tensors[0]
    return report


class _Sizes:
    """Bytes of each activation (formula, value at the binding), computed once; unknown ones counted."""

    def __init__(self, tensor_bytes: Any, evaluate: Any) -> None:
        self.tensor_bytes, self.evaluate = tensor_bytes, evaluate
        self.known: dict[str, tuple[Poly, float]] = {}
        self.unknown = 0

    def __call__(self, t: str) -> float | None:
        if t in self.known:
            return self.known[t][1]
        p = self.tensor_bytes(t)
        v = self.evaluate(p) if p is not None else None
        if p is None or v is None:
            self.unknown += 1
            return None
        self.known[t] = (p, float(v))
        return float(v)


def _produced(node: Any, folded: frozenset[str]) -> list[str]:
    """The activations ``node`` produces: none for a folded node (its outputs are weights)."""
    return [] if node.id in folded else [o for o in node.outputs if o]


def _lifetimes(graph: ModelGraph, order: list[Any], folded: frozenset[str]) -> tuple[Lifetimes, dict[str, int]]:
    """What each node produces (``_produced``, recomputed when read: a list per node is
    70 MB of a 1M-node graph), and the index of each tensor's last reader (a body's outer
    references count for its node; graph outputs live to the end)."""
    last_use: dict[str, int] = {}
    for idx, node in enumerate(order):
        for t in node.inputs:
            if t:
                last_use[t] = idx
        for subs in node.subgraphs.values():
            for sub in subs:
                for t in sub.outer_refs:
                    last_use[t] = idx
    for t in graph.outputs:
        last_use[t] = len(order)
    return Lifetimes(order, folded), last_use


class Lifetimes:
    """``produced[idx]``: the activations of the ``idx``-th node in order, made on read."""

    def __init__(self, order: list[Any], folded: frozenset[str]) -> None:
        self.order, self.folded = order, folded

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, idx: int) -> list[str]:
        return _produced(self.order[idx], self.folded)

    def __iter__(self) -> Iterator[list[str]]:
        folded = self.folded
        return (_produced(node, folded) for node in self.order)


def _sweep(graph: ModelGraph, produced: Lifetimes, last_use: dict[str, int],
           size: _Sizes) -> tuple[float, int]:
    """Walk the order keeping the live set: ``(peak bytes, index of the node at the peak)``
    (-1: the graph inputs alone are the peak). Frees by index are one name or a list (most
    nodes end one tensor's life: no list each)."""
    live: dict[str, float] = {}
    for t in graph.inputs:
        s = size(t)
        if s is not None:
            live[t] = s
    current = sum(live.values())
    peak, peak_idx = current, -1
    frees: dict[int, str | list[str]] = {}
    for t, i in last_use.items():
        have = frees.get(i)
        if have is None:
            frees[i] = t
        elif isinstance(have, list):
            have.append(t)
        else:
            frees[i] = [have, t]
    for idx, outs in enumerate(produced):
        for t in outs:
            s = size(t)
            if s is not None:
                live[t] = s
                current += s
        if current > peak:
            peak, peak_idx = current, idx
        ending = frees.get(idx, ())
        for t in (ending,) if isinstance(ending, str) else ending:
            if t in live:
                current -= live.pop(t)
        for t in outs:  # produced but never read and not an output
            if t in live and t not in last_use:
                current -= live.pop(t)
    return peak, peak_idx


def _live_at(graph: ModelGraph, order: list[Any], produced: Lifetimes, last_use: dict[str, int],
             idx: int) -> list[str]:
    """Tensors live right after node ``idx`` allocated its outputs."""
    out = [t for t in graph.inputs if last_use.get(t, len(order)) >= idx]
    for i in range(idx + 1):
        for t in produced[i]:
            if (t in last_use and last_use[t] >= idx) or i == idx:
                out.append(t)
    return out


def _sum(polys: Any) -> Poly:
    """One n-ary sum (exact coefficients: the same Poly as adding one by one, without an
    intermediate polynomial per tensor)."""
    parts = list(polys)
    return ZERO if not parts else parts[0] if len(parts) == 1 else total(parts)


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else v
