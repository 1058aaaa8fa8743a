"""Is a reach exact, or an upper bound? The approximations a figure inherits.

The engine records every node where it lost precision (:class:`~.engine.Approximation`).
A reach read from ``tensor`` for ``source`` is an upper bound exactly when one of them
lies upstream of ``tensor`` and concerns ``source``; then the figure is printed ``≤``,
with the first such node named, and without one it stays unmarked (exact).
"""

from __future__ import annotations

from ..graph import ModelGraph
from .engine import Approximation, FlowResult
from .state import SourceAxis


def approximations_on(graph: ModelGraph, result: FlowResult, tensor: str,
                      source: SourceAxis) -> list[Approximation]:
    """The approximations upstream of ``tensor`` that concern ``source``, graph order."""
    if not result.approximations:
        return []
    by_tensor = {t: a for a in result.approximations if source in a.sources for t in a.tensors}
    if not by_tensor:
        return []
    seen: set[str] = set()
    stack = [tensor]
    found: dict[str, Approximation] = {}
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        a = by_tensor.get(name)
        if a is not None:
            found[a.node] = a
        node = graph.producers.get(name)
        if node is not None:
            stack.extend(t for t in node.inputs if t and t not in seen)
    order = {a.node: k for k, a in enumerate(result.approximations)}
    return sorted(found.values(), key=lambda a: order[a.node])


def upper_reason(approx: list[Approximation]) -> str:
    """``an upper bound: precision lost at NODE (op: why)`` (+ how many more), or ``""``."""
    if not approx:
        return ""
    more = f" and {len(approx) - 1} more node(s)" if len(approx) > 1 else ""
    return f"an upper bound: precision lost at {approx[0].text()}{more}"
