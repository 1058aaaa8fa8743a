"""The token-flow engine: propagate :class:`FlowState` through the graph.

Each node's outputs are computed from its inputs' states by the op's ``flow``
rule (``tokenflow/rules/``, or a plugin's). A node may be *overridden* — the
attention layers found by ``model_analyze.attention`` override their softmax
and P·V nodes (or their fused op) so that the key axis is gated by the mask
instead of being mixed whole. An op without a flow rule, or whose rule fails, is
treated conservatively and recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import dims as D
from ..dims import Dim
from ..failures import RuleFailure, failure
from ..graph import ModelGraph, Node
from ..ops.registry import OpRegistry
from ..shapes import ShapeTable
from .deps import IDENTITY, Dep
from .state import Deps, FlowState, SourceAxis, empty, everything
from .zeros import ZeroFacts

if TYPE_CHECKING:
    import numpy as np

FlowFn = Callable[["FlowCtx"], list[FlowState | None]]


@dataclass
class Source:
    """One model-input axis that positions are traced from."""

    axis: SourceAxis
    length: Dim | None
    kinds: set[str] = field(default_factory=set)
    """How the graph uses it: ``spatial`` (conv/pool), ``sequence`` (attention,
    recurrence, cumulative ops)."""

    @property
    def label(self) -> str:
        return f"{self.axis[0]}[{self.axis[1]}]"


class FlowCtx:
    """What a flow rule sees (mirrors ``shapes.ShapeCtx``)."""

    def __init__(self, node: Node, engine: FlowEngine) -> None:
        self.node = node
        self.engine = engine
        self.graph = node.graph
        self.shapes = engine.shapes

    @property
    def n_inputs(self) -> int:
        return len(self.node.inputs)

    def has(self, i: int) -> bool:
        return bool(self.node.input(i))

    def state(self, i: int) -> FlowState:
        name = self.node.input(i)
        if not name:
            return empty(0)
        st = self.engine.states.get(name)
        if st is None:
            return empty(self.rank(i))
        return st

    def shape(self, i: int) -> tuple[Dim | None, ...] | None:
        name = self.node.input(i)
        return self.shapes.shape(name) if name else None

    def rank(self, i: int) -> int | None:
        s = self.shape(i)
        return None if s is None else len(s)

    def out_shape(self, k: int = 0) -> tuple[Dim | None, ...] | None:
        name = self.node.outputs[k] if k < len(self.node.outputs) else ""
        return self.shapes.shape(name) if name else None

    def out_rank(self, k: int = 0) -> int | None:
        s = self.out_shape(k)
        return None if s is None else len(s)

    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attr(name, default)

    def ints(self, i: int) -> list[int] | None:
        name = self.node.input(i)
        if not name:
            return None
        v = self.shapes.values.get(name)
        if v is None:
            arr = self.graph.constant_value(name, 4096)
            if arr is None or arr.dtype.kind not in "iu" or arr.ndim > 1:
                return None
            return [int(x) for x in arr.reshape(-1)]
        out = [D.as_int(x) for x in v]
        return None if any(x is None for x in out) else out  # type: ignore[return-value]

    def value(self, i: int) -> tuple[Dim | None, ...] | None:
        name = self.node.input(i)
        return self.shapes.values.get(name) if name else None

    def at_binding(self, d: Dim | None) -> int | None:
        """A dim as a number: concrete, or evaluated at the analysis' binding."""
        v = D.as_int(d)
        if v is None and d is not None and self.engine.evaluate is not None:
            try:
                e = self.engine.evaluate(d)
            except Exception:
                return None
            v = e if isinstance(e, int) else None
        return v

    def const(self, i: int, cap: int = 1 << 16) -> np.ndarray | None:
        name = self.node.input(i)
        if not name:
            return None
        folded = self.shapes.consts.get(name)  # computed by shape folding (Resize scales)
        return folded if folded is not None else self.graph.constant_value(name, cap)

    @property
    def opset(self) -> int:
        return self.engine.opset(self.node.domain)

    def mark(self, deps: Deps, kind: str) -> None:
        """Record that these sources are used as ``kind`` axes (spatial/sequence)."""
        for s in deps:
            src = self.engine.sources.get(s)
            if src is not None:
                src.kinds.add(kind)

    def conservative(self, why: str = "its flow rule could not read it", first: int = 0) -> list[FlowState | None]:
        """Every output depends on every position of every input — recorded as an
        approximation (outputs ``first`` on: a rule that reads output 0 exactly)."""
        self.approximate(why, self.engine.input_sources(self.node), first)
        return self.engine.conservative(self.node)

    def approximate(self, why: str, deps: Deps | set[SourceAxis], first: int = 0) -> None:
        """Record that this node's outputs (from ``first``) over-approximate the dependencies on
        the sources ``deps``: a reach through them is an upper bound (:class:`Approximation`)."""
        self.engine.approximate(self.node, why, deps, first)

    def partial_mix(self, operands: list[tuple[FlowState, int]], what: str) -> None:
        """This node mixes axis ``k`` of each ``(state, k)`` only partially (a prefix, a band
        left by structural zeros). When none of those axes carries positions of its own while
        another axis carries them in blocks (a split ``[T] → [T/L, L]``: Mamba-2's chunks),
        per-axis maps cannot narrow the block to the prefix: record the approximation."""
        if any(st.axes is None or st.axes[k] for st, k in operands):
            return
        blocks = {s: d for st, k in operands for j, ax in enumerate(st.axes or ()) if j != k
                  for s, d in ax.items() if blocky(d)}
        if blocks:
            self.approximate(f"{what} within blocks of positions the per-axis map keeps whole", blocks)

    def mixed_by_data(self, deps: Deps) -> None:
        """Record that this node moves the positions ``deps`` by data-dependent
        indices (the rule then mixes them whole: sound, an upper bound)."""
        op = f"{self.node.domain}::{self.node.op_type}" if self.node.domain else self.node.op_type
        for src in deps:
            key = (op, src)
            self.engine.mixed_by_data[key] = self.engine.mixed_by_data.get(key, 0) + 1
            self.engine.mixed_nodes.setdefault(src, []).append(self.node.name or self.node.id)
        self.approximate("moves positions by data-dependent indices (all counted as mixed)", deps)


def blocky(dep: Dep) -> bool:
    """Does one step along the axis cover several source positions (a chunk index after a
    split, ``[L·c, L·c + L - 1]``)?"""
    h = dep.hull
    return any(abs(t.s) > 1 for t in (h.lo or ()) + (h.hi or ()))


@dataclass(frozen=True)
class Approximation:
    """A node where the engine lost precision: its outputs' dependencies on ``sources`` are a
    sound superset of the truth (no flow rule, a rule that fell back to mixing everything,
    data-dependent routing, a reshape that splits positions over axes). A reach read from a
    tensor downstream of it is an upper bound, not an exact figure."""

    node: str
    """The node's name (its id when unnamed)."""
    op: str
    why: str
    sources: frozenset[SourceAxis]
    tensors: tuple[str, ...]
    """The outputs that carry the approximation."""

    def text(self) -> str:
        return f"{self.node} ({self.op}: {self.why})"

    def data(self) -> dict[str, str]:
        """The JSON form: node, op, why."""
        return {"node": self.node, "op": self.op, "why": self.why}


@dataclass
class FlowResult:
    """States of every tensor plus what the engine had to approximate."""

    states: dict[str, FlowState]
    sources: dict[SourceAxis, Source]
    unknown_ops: dict[str, int]
    """``domain::op`` → nodes treated conservatively for lack of a flow rule."""
    rule_errors: dict[str, str]
    """node id → error of a rule that raised (the node was treated conservatively)."""
    failures: list[RuleFailure] = field(default_factory=list)
    """The raising rules, with op, node and rule named (reported as R002)."""
    conservative: dict[str, str] = field(default_factory=dict)
    """node id → why its outputs were made to depend on every position of every input
    (no flow rule, or its rule raised): positions are not *mixed away* there, they are
    *lost* — a receptive field must not end at such a node."""
    mixed_by_data: dict[tuple[str, SourceAxis], int] = field(default_factory=dict)
    """(op, source axis) → nodes that move that source's positions by
    data-dependent indices (NonZero, ScatterND, a Gather by computed indices — MoE
    routing, for one) and were treated as mixing all of them: reach through them
    is an upper bound."""
    mixed_nodes: dict[SourceAxis, list[str]] = field(default_factory=dict)
    """source axis → names of the nodes counted in ``mixed_by_data``, graph order."""
    approximations: list[Approximation] = field(default_factory=list)
    """Where precision was lost, graph order (see :func:`.approx.approximations_on`)."""

    def mixed_ops(self, source: SourceAxis) -> dict[str, int]:
        """``mixed_by_data`` for one source: op → nodes."""
        return {op: n for (op, src), n in self.mixed_by_data.items() if src == source}


class FlowEngine:
    def __init__(self, graph: ModelGraph, shapes: ShapeTable, registry: OpRegistry,
                 opsets: dict[str, int], overrides: dict[str, FlowFn] | None = None,
                 evaluate: Callable[[Any], Any] | None = None, bindings: dict[str, int] | None = None) -> None:
        self.graph = graph
        self.bindings = bindings
        """The analysis' dim values (for evaluating a dependency at positions, as a query does)."""
        self.evaluate = evaluate
        """The analysis' dim binding, for the few rules whose map depends on sizes'
        values and not only on their form (a resize to a size computed from the input)."""
        self.shapes = shapes
        self.registry = registry
        self.opsets = opsets
        self.overrides = overrides or {}
        self.states: dict[str, FlowState] = {}
        self._interned: dict[Any, FlowState] = {}
        """Equal states share one object: the activations of an element-wise chain depend
        on the input exactly as their producer's input did (a 1M-node graph kept 1M copies)."""
        self.sources: dict[SourceAxis, Source] = {}
        self.unknown_ops: dict[str, int] = {}
        self.rule_errors: dict[str, str] = {}
        self.failures: list[RuleFailure] = []
        self.conservative_nodes: dict[str, str] = {}
        self.mixed_by_data: dict[tuple[str, SourceAxis], int] = {}
        self.mixed_nodes: dict[SourceAxis, list[str]] = {}
        self.approximations: dict[str, Approximation] = {}
        self._zeros: ZeroFacts | None = None

    @property
    def zeros(self) -> ZeroFacts:
        """Structural zeros of the graph's tensors (computed on demand): what lets a
        contraction over positions sum only where its factor can be nonzero."""
        if self._zeros is None:
            self._zeros = ZeroFacts(self.graph, self.shapes)
        return self._zeros

    def opset(self, domain: str) -> int:
        key = "ai.onnx" if domain in ("", "ai.onnx") else domain
        return self.opsets.get(key, 0) or 99

    def run(self) -> FlowResult:
        g = self.graph
        for name in g.inputs:
            shape = self.shapes.shape(name)
            if shape is None:
                axis = (name, -1)
                self.sources[axis] = Source(axis, None)
                self.states[name] = everything(None, [axis])
                continue
            axes: list[dict[SourceAxis, Any]] = []
            for k, d in enumerate(shape):
                if d == 1:
                    axes.append({})
                    continue
                axis = (name, k)
                self.sources[axis] = Source(axis, d)
                axes.append({axis: IDENTITY})
            self.states[name] = FlowState(tuple(axes))
        for name in g.initializers:
            self.states[name] = empty(len(g.initializers[name].dims))
        self._run_graph(g)
        return FlowResult(self.states, self.sources, self.unknown_ops, self.rule_errors,
                          failures=self.failures, conservative=self.conservative_nodes,
                          mixed_by_data=self.mixed_by_data, mixed_nodes=self.mixed_nodes,
                          approximations=list(self.approximations.values()))

    def _run_graph(self, g: ModelGraph) -> None:
        for node in g.topo_order():
            outs = self._node(node)
            for k, name in enumerate(node.outputs):
                if not name:
                    continue
                st = outs[k] if k < len(outs) else None
                if st is None:
                    self.approximate(node, "its flow rule gave no state for this output",
                                     self.input_sources(node), k)
                    st = self.conservative(node)[0] or empty(None)
                self.states[name] = self._intern(st, node)

    def _intern(self, st: FlowState, node: Node) -> FlowState:
        """The stored state equal to ``st`` if there is one (states are never mutated once
        stored), else ``st``: first the node's first input's (an element-wise op passes its
        input's dependencies on), then any. A state whose deps are not hashable is kept."""
        first = self.states.get(node.inputs[0]) if node.inputs and node.inputs[0] else None
        if first is not None and first.axes == st.axes and first.fixed == st.fixed:
            return first
        try:
            key = (None if st.axes is None else tuple(tuple(sorted(ax.items())) for ax in st.axes),
                   tuple(sorted(st.fixed.items())))
            return self._interned.setdefault(key, st)
        except TypeError:
            return st

    def _node(self, node: Node) -> list[FlowState | None]:
        fn = self.overrides.get(node.id) or self.registry.flow_rule(node.domain, node.op_type)
        ctx = FlowCtx(node, self)
        if fn is None:
            key = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
            self.unknown_ops[key] = self.unknown_ops.get(key, 0) + 1
            self.conservative_nodes[node.id] = f"{key} has no flow rule"
            self.approximate(node, "no flow rule: every position mixed", self.input_sources(node))
            return self.conservative(node)
        try:
            return list(fn(ctx) or [])
        except Exception as exc:  # never sinks the analysis, never silent: R002, node conservative
            fail = failure("flow", node, fn, exc)
            self.rule_errors[node.id] = fail.error
            self.failures.append(fail)
            self.conservative_nodes[node.id] = f"its flow rule {fail.rule} raised {fail.error}"
            self.approximate(node, f"its flow rule raised {fail.error}", self.input_sources(node))
            return self.conservative(node)

    def approximate(self, node: Node, why: str, deps: Deps | set[SourceAxis], first: int = 0) -> None:
        """Record an :class:`Approximation` at ``node`` (outputs ``first`` on) for ``deps``'
        sources; nothing when no source is involved (a shape computation)."""
        sources = frozenset(deps)
        tensors = tuple(t for t in node.outputs[first:] if t)
        if not sources or not tensors:
            return
        op = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
        old = self.approximations.get(node.id)
        if old is not None:
            why = old.why if why in old.why else f"{old.why}; {why}"
            sources |= old.sources
            tensors = tuple(dict.fromkeys(old.tensors + tensors))
        self.approximations[node.id] = Approximation(node.name or node.id, op, why, sources, tensors)

    def input_sources(self, node: Node) -> set[SourceAxis]:
        """Every source any input of ``node`` (or an outer-scope read of its bodies) depends on."""
        srcs: set[SourceAxis] = set()
        for name in node.inputs:
            st = self.states.get(name) if name else None
            if st is not None:
                srcs |= st.sources()
        for subs in node.subgraphs.values():
            for sub in subs:
                for name in sub.outer_refs:
                    st = self.states.get(name)
                    if st is not None:
                        srcs |= st.sources()
        return srcs

    def conservative(self, node: Node) -> list[FlowState | None]:
        """Every output element depends on every position every input depends on."""
        srcs = self.input_sources(node)
        out: list[FlowState | None] = []
        for name in node.outputs:
            shape = self.shapes.shape(name) if name else None
            out.append(everything(None if shape is None else len(shape), srcs))
        return out


def run_flow(graph: ModelGraph, shapes: ShapeTable, registry: OpRegistry, opsets: dict[str, int],
             overrides: dict[str, FlowFn] | None = None, evaluate: Callable[[Any], Any] | None = None,
             bindings: dict[str, int] | None = None) -> FlowResult:
    return FlowEngine(graph, shapes, registry, opsets, overrides, evaluate, bindings).run()
