"""Can the model run at the binding? The first op whose output would have no length.

Why: a convolution, pooling or STFT window longer than its (padded) input has no output
position — ``floor((L + pads - window) / stride) + 1 ≤ 0``. The runtime refuses such an
input, but the symbolic shape formulas evaluate happily to ``-2`` and every cost built on
them turns negative (openwakeword's melspectrogram at 128 samples: "-542,784 MACs").
So every output dim is checked at the binding: a negative length anywhere, or an empty
window axis of a windowed op, means the model cannot run there. The report then says so
in one finding (D002) with the smallest input that works, never a figure, and a guessed
default is raised to that smallest input instead (see :func:`raise_defaults`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import dims as D
from .budgets import BUDGETS
from .report import DimInfo, Finding, NodeRef, Severity

if TYPE_CHECKING:
    from .context import AnalysisContext
    from .graph import ModelGraph, Node
    from .shapes import ShapeTable

WINDOW_AXES_FROM = {"Conv": 2, "ConvInteger": 2, "QLinearConv": 2, "FusedConv": 2, "DeformConv": 2,
                    "MaxPool": 2, "AveragePool": 2, "LpPool": 2, "STFT": 1}
"""Windowed ops and their first window axis (the outputs' axes from there on count window
positions: ``[N, C, *spatial]``; STFT's ``[batch, frames, bins, 2]``). An empty one means the
window is longer than the input — the runtime rejects that input."""


@dataclass(frozen=True)
class Unrunnable:
    """The first node (in graph order) with an output dim the model cannot have."""

    node: Node
    tensor: str
    axis: int
    dim: D.Dim
    value: int
    symbol: str | None = None
    """The one input dim the bad length depends on (when exactly one)."""
    minimum: int | None = None
    """The smallest value of :attr:`symbol` at which every checked length is ≥ 1 (other dims
    at the binding), when one exists below the dim-value budget."""

    def window(self) -> str:
        """``Conv 'Conv_2' window 512, stride 160`` — the geometry that needs the length."""
        n = self.node
        if n.op_type == "STFT":
            return f"{n.op_type} {n.name!r} frame"
        kernel = n.attr("kernel_shape")
        return f"{n.op_type} {n.name!r} window" + (f" {'×'.join(map(str, kernel))}" if kernel else "")

    def message(self) -> str:
        shown = D.fmt(self.dim)
        formula = "" if shown == str(self.value) else f"{shown} = "
        text = (f"the model cannot run at this binding: {self.node.op_type} {self.node.name!r} output "
                f"{self.tensor!r} axis {self.axis} has length {formula}{self.value}")
        if self.symbol is not None and self.minimum is not None:
            text += f"; {self.symbol} must be ≥ {self.minimum:,} ({self.window()})"
        elif self.symbol is not None:
            text += f" (grows with {self.symbol})"
        return text + "; no cost is given at this binding"

    def finding(self) -> Finding:
        n = self.node
        return Finding("D002", Severity.ERROR, self.message(), NodeRef(n.name, n.op_type, n.graph.path, self.tensor))


def _lengths(graph: ModelGraph, shapes: ShapeTable) -> Iterator[tuple[Node, str, int, D.Dim, bool]]:
    """(node, output, axis, dim, is a window axis) for every known output dim — each shape
    object once outside windowed ops (a 1M-node graph shares a handful of type objects)."""
    seen: set[int] = set()
    negative, types = shapes.negative, shapes.types
    for node in graph.walk():
        first = WINDOW_AXES_FROM.get(node.op_type) if not node.domain or node.op_type == "FusedConv" else None
        for out in node.outputs:
            t = (negative.get(out) if negative else None) or types.get(out)
            if t is None or t.shape is None:
                continue
            if first is None:
                if id(t.shape) in seen:
                    continue
                seen.add(id(t.shape))
            for axis, d in enumerate(t.shape):
                if d is not None:
                    yield node, out, axis, d, first is not None and axis >= first


def _bad(d: D.Dim, window: bool, bindings: dict[str, int], memo: dict[D.Dim, int | None]) -> int | None:
    """The value of ``d`` at ``bindings`` when it is an impossible length, else None."""
    if D.is_int(d):
        v: int | None = d
    else:
        if d not in memo:
            memo[d] = D.as_int(D.subs(d, bindings))
        v = memo[d]
    if v is None:
        return None
    return v if v < 0 or (window and v == 0) else None


def first_unrunnable(graph: ModelGraph, shapes: ShapeTable, bindings: dict[str, int]) -> Unrunnable | None:
    """The first impossible output length at ``bindings`` (with the smallest working value
    of the one dim it depends on), or None when every known length is possible."""
    memo: dict[D.Dim, int | None] = {}
    for node, out, axis, d, window in _lengths(graph, shapes):
        v = _bad(d, window, bindings, memo)
        if v is None:
            continue
        syms = D.free_symbols(d)
        sym = next(iter(syms)) if len(syms) == 1 else None
        low = _smallest(graph, shapes, bindings, sym) if sym is not None else None
        return Unrunnable(node, out, axis, d, v, sym, low)
    return None


def _runs(checks: list[tuple[D.Dim, bool]], bindings: dict[str, int]) -> bool:
    memo: dict[D.Dim, int | None] = {}
    return all(_bad(d, w, bindings, memo) is None for d, w in checks)


def _smallest(graph: ModelGraph, shapes: ShapeTable, bindings: dict[str, int], sym: str) -> int | None:
    """The smallest value of ``sym`` at which no length depending on it is impossible.

    Lengths are non-decreasing in an input length (window counts, pads, slices of the
    signal), so an exponential then binary search finds it; the answer is checked, not
    assumed (None when no value up to the dim budget works)."""
    checks = list({(d, w) for _, _, _, d, w in _lengths(graph, shapes) if sym in D.free_symbols(d)})
    cap = BUDGETS.dim_value
    hi = max(1, bindings.get(sym, 1))
    lo = 0
    while not _runs(checks, {**bindings, sym: hi}):
        lo, hi = hi, hi * 2
        if hi > cap:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _runs(checks, {**bindings, sym: mid}):
            hi = mid
        else:
            lo = mid
    return hi


def raise_defaults(graph: ModelGraph, shapes: ShapeTable, dims: DimInfo) -> Unrunnable | None:
    """A guessed default the model cannot run at is raised to the smallest one it runs at
    (a 128-sample guess for a 512-sample STFT window becomes 512), and said where it came
    from; a dim the user bound is never changed. Returns what still cannot run at the
    final bindings (None: it runs), so the analysis need not look again."""
    problem = first_unrunnable(graph, shapes, {**dims.defaults, **dims.bound})
    for _ in range(8):  # each round fixes one dim; a model has few
        if problem is None or problem.symbol not in dims.defaults or problem.minimum is None:
            break
        dims.defaults[problem.symbol] = problem.minimum
        dims.default_from[problem.symbol] = f"the smallest input {problem.node.name!r} runs at"
        problem = first_unrunnable(graph, shapes, {**dims.defaults, **dims.bound})
    return problem


def unrunnable(ctx: AnalysisContext) -> Unrunnable | None:
    """:func:`first_unrunnable` at the analysis's bindings, computed once per analysis."""
    return ctx.cached("runnable", lambda: first_unrunnable(ctx.graph, ctx.shapes, ctx.bindings))
