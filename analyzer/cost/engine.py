"""The cost engine: walk the graph, apply each op's cost rule, aggregate.

Rule lookup goes through the op registry: the op's own ``cost`` rule (core
``cost.rules.COST`` or a plugin's), else the generic rule of its ``category``
(``cost.rules.FAMILY``), else the op is *unknown* — zero counted and listed,
never silent. A rule that cannot count (a shape is unknown) leaves the node
*partial* with the reason.

Nodes whose inputs are all constants (``Constant``, a ``Transpose`` or
``DequantizeLinear`` of a weight) are *folded*: a runtime computes them once at
load, so they are reported apart and not counted in the inference totals.

All numbers are :class:`~model_analyze.cost.poly.Poly` in the model's free dims
and are evaluated at the bindings (user-bound or stated defaults) on demand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, overload

from ..failures import RuleFailure, failure
from ..graph import ModelGraph, Node
from ..opsets import latest
from ..report import combine_bounds
from ..runnable import unrunnable
from . import rules
from .attention import AttentionCost, attention_costs, detected_layers
from .layers import UNSCOPED, attention_segments, layer_of
from .memory import MemoryReport, activation_memory
from .model import (
    CostCtx,
    CostUnknown,
    GraphCost,
    NodeCost,
    OpCost,
    Summed,
    accumulate,
    node_bound,
    share_totals,
    tensor_bytes,
)
from .params import ParamReport, parameter_report
from .poly import Poly, atom_values, from_dim, product, total

if TYPE_CHECKING:
    from ..context import AnalysisContext

_NONDETERMINISTIC = frozenset({"Bernoulli", "Multinomial"})
_NO_IDS: frozenset[str] = frozenset()
"""Never folded even with constant inputs (with every ``Random*`` op)."""


class CostEngine:
    """Costs of one analysis: per graph (cached), per tensor bytes, evaluation."""

    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.shapes = ctx.shapes
        self.registry = ctx.registry
        self._numel: dict[tuple[Any, ...], Poly | None] = {}
        self._bytes: dict[str, Poly | None] = {}
        self._costs: dict[int, GraphCost] = {}
        self._folded: dict[int, frozenset[str]] = {}
        self._env: dict[str, Any] = {}
        self._values: dict[Any, Any] = {}
        self._polys: dict[Any, Poly] = {}
        self._sums: dict[tuple[int, ...], tuple[list[Poly], Poly]] = {}
        """Sums of tensor sizes by the identities of the (shared, kept) size Polys: most
        nodes read tensors of the same few sizes (an activation and a scalar)."""
        """Evaluations by expression: the nodes of a 1M-node graph share a few cost formulas."""
        self._typed_bytes: dict[tuple[Any, int | None], Poly | None] = {}
        self._bindings = ctx.bindings
        self._runs = unrunnable(ctx) is None
        """False when the model cannot run at the binding (D002): then no count has a value."""
        self.failures: list[RuleFailure] = []
        self.data_dependent: dict[str, str] = {}
        """Node id → the data-dependent node whose run-time size left it uncosted (a dict
        beside the nodes, not a field on each: most graphs have none)."""
        """Cost rules that raised (each node then uncosted: the totals are lower bounds)."""

    # -- helpers used by rules ----------------------------------------------------------
    def opset(self, domain: str) -> int:
        key = "ai.onnx" if domain in ("", "ai.onnx") else domain
        return self.ctx.model.opsets.get(key, 0) or (latest() if key == "ai.onnx" else 1)

    def numel(self, shape: tuple[Any, ...] | None) -> Poly | None:
        if shape is None:
            return None
        try:
            return self._numel[shape]
        except KeyError:
            pass
        except TypeError:  # unhashable dim
            return product(shape)
        p = product(shape)
        self._numel[shape] = p
        return p

    def tensor_bytes(self, name: str) -> Poly | None:
        if name in self._bytes:
            return self._bytes[name]
        t = self.shapes.type(name)
        b = None
        if t is not None:
            key = (t.shape, t.dtype)
            try:
                b = self._typed_bytes[key]
            except KeyError:
                b = self._typed_bytes[key] = tensor_bytes(t.shape, t.dtype, self.numel(t.shape))
            except TypeError:  # unhashable dim
                b = tensor_bytes(t.shape, t.dtype, self.numel(t.shape))
        self._bytes[name] = b
        return b

    def evaluate(self, p: Poly | None) -> int | float | None:
        """``p`` at the bindings (bound dims + stated defaults); None if a dim is free."""
        if p is None or not self._runs:
            return None
        try:
            return self._values[p.e]
        except KeyError:
            pass
        missing = [a for a in p.atoms() if a not in self._env]
        if missing:
            self._env.update(atom_values(missing, self._bindings))
        raw = p.evaluate(self._env)
        v = float(raw) if isinstance(raw, Fraction) else raw
        if v is not None and v < 0:  # a count is never negative: a length the model cannot have
            v = None
        self._values[p.e] = v
        return v

    # -- folding ------------------------------------------------------------------------
    def folded(self, g: ModelGraph) -> frozenset[str]:
        """Ids of nodes computable from constants alone (weight preparation)."""
        key = id(g)
        if key in self._folded:
            return self._folded[key]
        const: set[str] = set()
        out: set[str] = set()
        for node in g.topo_order():
            if node.subgraphs or node.op_type.startswith("Random") or node.op_type in _NONDETERMINISTIC:
                continue
            ins = [t for t in node.inputs if t]
            if (node.op_type == "Constant" and not node.domain) or (
                    ins and all(t in const or g.is_initializer(t) for t in ins)):
                out.add(node.id)
                const.update(o for o in node.outputs if o)
        self._folded[key] = frozen = frozenset(out) if out else _NO_IDS  # most bodies fold nothing
        return frozen

    # -- graphs -----------------------------------------------------------------------------
    def graph_cost(self, g: ModelGraph) -> GraphCost:
        key = id(g)
        if key in self._costs:
            return self._costs[key]
        gc = GraphCost()
        self._costs[key] = gc  # a body referring to itself cannot recurse forever
        folded = self.folded(g)
        for node in g.topo_order():
            nc = self.node_cost(node, node.id in folded)
            gc.add(nc)
            for subs in node.subgraphs.values():
                # The totals the node's rule (If, Loop, Scan) read off its bodies, shared
                # like the node costs: the bodies of a model cost a few distinct formulas,
                # and their own sums were a quarter of the cost model of 400k bodies.
                for sub in subs:
                    body = self._costs.get(id(sub))
                    if body is not None:
                        share_totals(body, self._shared)
        return gc

    def node_cost(self, node: Node, folded: bool = False) -> NodeCost:
        nc = NodeCost(node)
        rule = self.registry.get(node.domain, node.op_type)
        fn = None
        if rule is not None:
            fn = rule.cost or (rules.FAMILY.get(rule.category) if rule.category else None)
        oc: OpCost | None = None
        if fn is None:
            nc.status = "unknown"
            nc.reason = ("op unknown to every rule table" if rule is None else
                         f"no cost rule (category {rule.category or 'none'})")
        else:
            try:
                oc = fn(CostCtx(node, self.shapes, self.registry, rule, self))
                if oc is None:
                    raise CostUnknown("the rule returned no cost")
            except CostUnknown as exc:
                nc.status, nc.reason = "partial", str(exc)
                if exc.data_dependent:
                    self.data_dependent[node.id] = exc.data_dependent
            except Exception as exc:  # never sinks the report, never silent: R003, node uncosted
                fail = failure("cost", node, fn, exc)
                self.failures.append(fail)
                nc.status, nc.reason = "partial", f"cost rule {fail.rule} raised {fail.error}"
        if oc is not None:
            self._apply(nc, oc)
        if oc is None or oc.read is None:
            nc.read = self._sum_bytes(dict.fromkeys(t for t in node.inputs if t))
        if oc is None or oc.written is None:
            nc.written = self._sum_bytes(o for o in node.outputs if o)
        if folded:
            nc.status = "folded"
        nc.macs, nc.flops = self._shared(nc.macs), self._shared(nc.flops)
        nc.read, nc.written = self._shared(nc.read), self._shared(nc.written)
        return nc

    @overload
    def _shared(self, p: Poly) -> Poly: ...
    @overload
    def _shared(self, p: None) -> None: ...
    def _shared(self, p: Poly | None) -> Poly | None:
        """One Poly object per distinct cost: most nodes of a large graph cost one of a few
        formulas (``64·batch·seq`` for every activation of a chain)."""
        if p is None:
            return None
        try:
            return self._polys.setdefault(p.e, p)
        except TypeError:  # an unhashable expression: kept as it is
            return p

    def _apply(self, nc: NodeCost, oc: OpCost) -> None:
        macs = from_dim(oc.macs) if oc.macs is not None else None
        flops = from_dim(oc.flops) if oc.flops is not None else (2 * macs if macs is not None else None)
        if macs is None or flops is None:
            nc.status, nc.reason = "partial", "the rule returned an unknown count"
            return
        nc.macs, nc.flops = macs, flops
        if oc.read is not None:
            nc.read = from_dim(oc.read)
        if oc.written is not None:
            nc.written = from_dim(oc.written)
        nc.note, nc.bound = oc.note, oc.bound
        nc.pairs, nc.pair_macs, nc.mask = from_dim(oc.pairs), from_dim(oc.pair_macs), oc.mask
        nc.body = oc.body

    def _sum_bytes(self, names: Iterable[str]) -> Poly | None:
        parts = []
        for t in names:
            b = self.tensor_bytes(t)
            if b is None:
                return None
            parts.append(b)
        if len(parts) == 1:
            return parts[0]
        key = tuple(map(id, parts))
        hit = self._sums.get(key)
        if hit is None:
            hit = self._sums[key] = (parts, total(parts))  # the parts kept: their ids stay theirs
        return hit[1]


@dataclass
class Aggregate:
    """A group of nodes (a layer or an op type)."""

    key: str
    nodes: int = 0
    params: int = 0
    bound: str | None = None
    """What the group's counts are (:func:`~.model.node_bound` of its nodes combined):
    ``lower`` when one of its nodes is uncosted, ``None`` when exact."""
    macs = Summed()
    flops = Summed()
    read = Summed()
    written = Summed()

    def add(self, nc: NodeCost) -> None:
        self.nodes += 1
        self.bound = combine_bounds(self.bound, node_bound(nc))
        accumulate(self, nc)


@dataclass
class CostModel:
    """Everything the hotspots report needs, computed once per analysis."""

    engine: CostEngine
    graph: GraphCost
    layers: list[Aggregate] = field(default_factory=list)
    layer_source: str = ""
    ops: list[Aggregate] = field(default_factory=list)
    attention: list[AttentionCost] = field(default_factory=list)
    attention_note: str = ""
    params: ParamReport = field(default_factory=ParamReport)
    memory: MemoryReport = field(default_factory=MemoryReport)
    effective_flops: Poly | None = None
    effective_value: Any = None
    effective_note: str = ""

    def value(self, p: Poly | None) -> Any:
        return self.engine.evaluate(p)

    @property
    def counted(self) -> list[NodeCost]:
        return [nc for nc in self.graph.nodes if nc.status != "folded"]

    @property
    def traffic_bound(self) -> str | None:
        """``lower`` when a counted node reads or writes a tensor of unknown size: that tensor
        moves zero bytes in the sums, so every traffic total (bytes moved, the unfused bytes of
        a serving phase) is only a lower bound; ``None`` when every size is known."""
        return "lower" if any(nc.read is None or nc.written is None for nc in self.counted) else None


def cost_model(ctx: AnalysisContext) -> CostModel:
    """The cost model of ``ctx``'s model (computed once per analysis)."""
    return ctx.cached("cost.model", lambda: _build(ctx))


def _build(ctx: AnalysisContext) -> CostModel:
    engine = CostEngine(ctx)
    main = engine.graph_cost(ctx.graph)
    model = CostModel(engine, main)
    order = ctx.graph.topo_order()
    layer_map = {n.id: layer_of(n) for n in order}
    model.attention, model.attention_note = attention_costs(ctx, main, engine)
    model.layer_source = "exporter name scopes"
    if not any(layer_map.values()) and model.attention:
        starts = [_first(order, a.nodes) for a in model.attention]
        layer_map = attention_segments(order, [s for s in starts if s])
        model.layer_source = "attention blocks (the graph has no name scopes)"
    elif not any(layer_map.values()):
        model.layer_source = ""
    folded = engine.folded(ctx.graph)
    layers: dict[str, Aggregate] = {}
    ops: dict[str, Aggregate] = {}
    for nc in main.nodes:
        nc.layer = layer_map.get(nc.node.id, "") or UNSCOPED
        if nc.status == "folded":
            continue
        layers.setdefault(nc.layer, Aggregate(nc.layer)).add(nc)
        op = f"{nc.node.domain}::{nc.node.op_type}" if nc.node.domain else nc.node.op_type
        ops.setdefault(op, Aggregate(op)).add(nc)
    masks = frozenset(t for la in detected_layers(ctx)[0] for t in la.mask_tensors)
    model.params = parameter_report(ctx.graph, folded, layer_map, masks)
    for name, n in model.params.by_layer().items():
        key = name or UNSCOPED
        layers.setdefault(key, Aggregate(key)).params += n
    model.layers = list(layers.values())
    model.ops = list(ops.values())
    model.memory = activation_memory(ctx.graph, folded, engine.tensor_bytes, engine.evaluate)
    _effective(model)
    return model


def _first(order: list[Node], ids: tuple[str, ...]) -> str | None:
    wanted = set(ids)
    return next((n.id for n in order if n.id in wanted), None)


def _effective(model: CostModel) -> None:
    """Total FLOPs with each attention layer's contractions at their effective
    (mask-aware) count: dense − 2·(dense MACs − effective MACs) per layer."""
    formula: Poly | None = model.graph.flops
    value = model.value(model.graph.flops)
    notes = set()
    for a in model.attention:
        if formula is not None:
            formula = None if a.effective_macs is None else formula - 2 * (a.dense_macs - a.effective_macs)
        if value is not None:
            value = None if a.effective_value is None or a.dense_value is None else \
                value - 2 * (a.dense_value - a.effective_value)
        if a.formula_note:
            notes.add(a.formula_note)
    model.effective_flops, model.effective_value = formula, value
    model.effective_note = "; ".join(sorted(notes))
