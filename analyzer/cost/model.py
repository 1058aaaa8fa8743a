"""The vocabulary of the cost engine: what a rule sees and what it returns.

A cost rule is ``fn(ctx: CostCtx) -> OpCost``. Rules read shapes through the
context (as :class:`~model_analyze.cost.poly.Poly` in the model's dims), never
weights. A rule that cannot count raises :class:`CostUnknown` with the reason;
the engine then records the node as *partial* (zero counted, reason listed),
so a missing shape never becomes a silent zero or a crash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..graph import ModelGraph, Node, Shape
from ..report import combine_bounds
from ..tensors import dtype_bits
from .poly import ONE, ZERO, Poly, from_dim, product, total

if TYPE_CHECKING:
    from ..dims import Dim
    from ..ops.registry import OpRegistry, OpRule
    from ..shapes import ShapeTable, SymValue
    from .engine import CostEngine


MaskSpec = tuple[str, dict[str, Any]]
"""An attention mask family and its parameters, read off an op's attributes (``("causal", {})``)."""


Count = Poly | int | Fraction
"""A count (MACs, FLOPs, bytes): a number, or a polynomial in the model's dims."""


class CostUnknown(Exception):
    """Raised by a rule that cannot count this node; the message is the reason.

    ``data_dependent``: the node (NonZero, NonMaxSuppression, TopK with a run-time ``k`` …)
    whose run-time output size the missing size follows, when it does — then no binding
    of the model's dims can make the node countable, and the report must not suggest one."""

    def __init__(self, message: str, data_dependent: str = "") -> None:
        super().__init__(message)
        self.data_dependent = data_dependent


@dataclass
class OpCost:
    """Cost of one node: numbers or :class:`Poly` (counts in the model's dims).

    ``flops=None`` means ``2 × macs`` (MatMul/Gemm/Conv/attention convention).
    ``read``/``written`` ``None`` means the engine's default: bytes of the
    node's inputs / outputs as declared.
    """

    macs: Count = 0
    flops: Count | None = None
    read: Count | None = None
    written: Count | None = None
    note: str = ""
    bound: str = ""
    """Non-empty when the count is a bound or estimate, saying why (e.g. a Loop whose
    trip count is unknown counts its body once: a lower bound)."""
    pairs: Count | None = None
    """Attention: dense (query, key) pairs, so the engine can apply a mask."""
    pair_macs: Count | None = None
    """Attention: MACs per (query, key) pair (B·H·(d_qk + d_v))."""
    mask: MaskSpec | None = None
    """Attention mask family read off the op's attributes (``("causal", {})``)."""
    body: GraphCost | None = None
    """Control flow: the cost of the counted body (per iteration / chosen branch)."""


@dataclass(slots=True)
class NodeCost:
    """What the engine recorded for one node (costs as Polys in the dims). Slotted: one
    per node of a 1M-node graph."""

    node: Node
    macs: Poly = ZERO
    flops: Poly = ZERO
    read: Poly | None = ZERO
    written: Poly | None = ZERO
    status: str = "ok"
    """``ok``; ``folded`` (all inputs constant: weight preparation a runtime does
    once at load, not counted); ``unknown`` (no cost rule: zero counted);
    ``partial`` (a rule could not count: zero counted, ``reason`` says why)."""
    reason: str = ""
    note: str = ""
    bound: str = ""
    layer: str = ""
    pairs: Poly | None = None
    pair_macs: Poly | None = None
    mask: MaskSpec | None = None
    body: GraphCost | None = None
    """Control flow: the body (or branch) whose cost this node counts."""


class Summed:
    """A cost total over the node costs added to its owner (``_costs``), summed when
    read — one n-ary sum (:func:`~.poly.total`) over the costs added since the last
    read — instead of building a new polynomial per node and total: linear in the
    nodes with a small constant (1M-node graphs)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        costs = obj.__dict__.get("_costs", ())
        sums = obj.__dict__.setdefault("_sums", {})
        done, value = sums.get(self.name, (0, ZERO))
        if done < len(costs):
            value = total([value, *(getattr(nc, self.name) for nc in costs[done:])])
            sums[self.name] = (len(costs), value)
        return value

    def __set__(self, obj: Any, value: Poly) -> None:
        obj.__dict__.setdefault("_sums", {})[self.name] = (len(obj.__dict__.get("_costs", ())), value)


def share_totals(obj: Any, share: Callable[[Poly], Poly]) -> None:
    """Pass the totals ``obj`` has summed so far (its :class:`Summed` fields that were read)
    through ``share`` (an interner: an equal Poly, kept once); the ones not read stay unsummed."""
    sums = obj.__dict__.get("_sums")
    if sums:
        for name, (done, value) in sums.items():
            sums[name] = (done, share(value))


_NO_OPS: Mapping[str, int] = MappingProxyType({})


@dataclass
class GraphCost:
    """Totals of one (sub)graph and the per-node records behind them."""

    nodes: list[NodeCost] = field(default_factory=list)
    macs = Summed()
    flops = Summed()
    read = Summed()
    written = Summed()
    # The three lists and the counter start as shared empty immutables and become their
    # own on the first entry (``add``/``absorb``, the only writers): most bodies of a model
    # have none, and four empty containers were 250 bytes of each of 400k bodies.
    unknown_ops: Counter[str] | Mapping[str, int] = field(default_factory=lambda: _NO_OPS)
    partial: list[NodeCost] | tuple[()] = ()
    bounds: list[NodeCost] | tuple[()] = ()
    """Nodes whose count is a bound (unknown trip count, If branch max, ...)."""
    folded: list[NodeCost] | tuple[()] = ()

    def add(self, nc: NodeCost) -> None:
        self.nodes.append(nc)
        if nc.status == "folded":
            if isinstance(self.folded, tuple):
                self.folded = []
            self.folded.append(nc)
            return
        if nc.body is not None:
            self.absorb(nc.body)
        if nc.status == "unknown":
            self._own_ops()[_op_key(nc.node)] += 1
        elif nc.status == "partial":
            if isinstance(self.partial, tuple):
                self.partial = []
            self.partial.append(nc)
        if nc.bound:
            if isinstance(self.bounds, tuple):
                self.bounds = []
            self.bounds.append(nc)
        accumulate(self, nc)

    def _own_ops(self) -> Counter[str]:
        if not isinstance(self.unknown_ops, Counter):
            self.unknown_ops = Counter(self.unknown_ops)
        return self.unknown_ops

    @property
    def total_bound(self) -> str | None:
        """What the totals are: ``None`` exact; ``lower`` when nodes count zero (no rule,
        unknown shape, a raising rule) or a count is a lower bound; ``upper`` when only upper
        bounds (the costlier ``If`` branch, ``M`` iterations with an exit condition) are in;
        ``estimate`` when both are (then the total is neither)."""
        lower = bool(self.unknown_ops or self.partial) or any(is_lower(nc.bound) for nc in self.bounds)
        upper = any(not is_lower(nc.bound) for nc in self.bounds)
        if lower and upper:
            return "estimate"
        return "lower" if lower else "upper" if upper else None

    def absorb(self, other: GraphCost) -> None:
        """Merge a body's unknowns/partials so they are never lost in a total."""
        if other.unknown_ops:
            self._own_ops().update(other.unknown_ops)
        if other.partial:
            if isinstance(self.partial, tuple):
                self.partial = []
            self.partial.extend(other.partial)
        if other.bounds:
            if isinstance(self.bounds, tuple):
                self.bounds = []
            self.bounds.extend(other.bounds)


def accumulate(totals: Any, nc: NodeCost) -> None:
    """Add a node's MACs, FLOPs and bytes to any running total (graph, layer, op type;
    their fields are :class:`Summed`). Unknown bytes (``None``) count as zero."""
    totals.__dict__.setdefault("_costs", []).append(nc)


def node_bound(nc: NodeCost) -> str | None:
    """What a node's count is: ``lower`` when it counts zero for want of a rule or a shape
    (or counts a lower bound), ``upper`` for an upper bound (the costlier ``If`` branch),
    ``estimate`` when both are in it (a body holding both), ``None`` when exact. Why: a
    table row (layer, op type) that holds such a node is a bound too, and must say so."""
    own: str | None = None
    if nc.status in ("unknown", "partial"):
        own = "lower"
    if nc.bound:
        own = combine_bounds(own, "lower" if is_lower(nc.bound) else "upper")
    if nc.body is not None:
        own = combine_bounds(own, nc.body.total_bound)
    return own


def is_lower(bound: str) -> bool:
    """Is a node's bound text a lower bound (every rule says "lower bound" when it is)?"""
    return "lower bound" in bound


def _op_key(node: Node) -> str:
    return f"{node.domain}::{node.op_type}" if node.domain else node.op_type


def tensor_bytes(shape: tuple[Any, ...] | None, dtype: int | None, numel: Poly | None = None) -> Poly | None:
    """Bytes of a tensor (4-bit types count half a byte per element)."""
    bits = dtype_bits(dtype)
    if shape is None or bits is None:
        return None
    n = numel if numel is not None else product(shape)
    if n is None:
        return None
    return n * (bits // 8 if bits % 8 == 0 else Fraction(bits, 8))


class CostCtx:
    """What a cost rule sees: one node, its typed inputs/outputs, attributes,
    the op registry (for per-element constants) and the engine (for bodies)."""

    def __init__(self, node: Node, shapes: ShapeTable, registry: OpRegistry, rule: OpRule | None,
                 engine: CostEngine) -> None:
        self.node = node
        self.shapes = shapes
        self.registry = registry
        self.rule = rule
        self.engine = engine

    # -- the op ------------------------------------------------------------------
    @property
    def op_type(self) -> str:
        return self.node.op_type

    @property
    def category(self) -> str | None:
        return self.rule.category if self.rule else None

    @property
    def flops_per_element(self) -> float | None:
        return self.rule.flops_per_element if self.rule else None

    def per_element(self, op_type: str, domain: str = "", default: float | None = None) -> float:
        """The catalog's (or a plugin's) FLOPs per element for another op, e.g. the
        ``Sigmoid`` inside an LSTM cell."""
        rule = self.registry.get(domain, op_type)
        value = rule.flops_per_element if rule else None
        if value is None:
            if default is None:
                raise CostUnknown(f"no per-element FLOP constant for {op_type}")
            return default
        return value

    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attr(name, default)

    @property
    def opset(self) -> int:
        return self.engine.opset(self.node.domain)

    # -- inputs / outputs -------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return len(self.node.inputs)

    def has(self, i: int) -> bool:
        return bool(self.node.input(i))

    def shape(self, i: int) -> Shape | None:
        name = self.node.input(i)
        return self.shapes.shape(name) if name else None

    def dtype(self, i: int) -> int | None:
        name = self.node.input(i)
        return self.shapes.dtype(name) if name else None

    def out_shape(self, k: int = 0) -> Shape | None:
        if k >= len(self.node.outputs) or not self.node.outputs[k]:
            return None
        return self.shapes.shape(self.node.outputs[k])

    def origin(self, tensor: str) -> str:
        """The data-dependent node (after NMS/NonZero) whose run-time size ``tensor``'s
        unknown dims follow, or ``""``: no graph-only analysis can know such a size."""
        return (getattr(self.shapes, "data_dependent", {}).get(tensor) or "") if tensor else ""

    def why(self, tensor: str) -> str:
        """Say when an unknown size is data-dependent: onnxruntime learns it per input."""
        origin = self.origin(tensor)
        return f": data-dependent (its size follows {origin} at run time)" if origin else ""

    def unknown(self, what: str, tensor: str) -> CostUnknown:
        """The exception for an unknown size of ``tensor``, saying whether it is data-dependent."""
        return CostUnknown(what + self.why(tensor), self.origin(tensor))

    def need_shape(self, i: int) -> Shape:
        s = self.shape(i)
        if s is None:
            raise self.unknown(f"shape of input {i} ({self.node.input(i) or 'absent'}) unknown", self.node.input(i))
        return s

    def need_out_shape(self, k: int = 0) -> Shape:
        s = self.out_shape(k)
        if s is None:
            raise self.unknown(f"shape of output {k} unknown", self.node.outputs[k])
        return s

    def dim(self, i: int, axis: int) -> Poly:
        """Input ``i``'s dim ``axis`` (negative counts from the end) as a Poly."""
        s = self.need_shape(i)
        if not -len(s) <= axis < len(s):
            raise CostUnknown(f"input {i} has rank {len(s)}, no axis {axis}")
        p = from_dim(s[axis])
        if p is None:
            raise self.unknown(f"dim {axis} of input {i} unknown", self.node.input(i))
        return p

    def out_dim(self, k: int, axis: int) -> Poly:
        s = self.need_out_shape(k)
        if not -len(s) <= axis < len(s):
            raise CostUnknown(f"output {k} has rank {len(s)}, no axis {axis}")
        p = from_dim(s[axis])
        if p is None:
            raise self.unknown(f"dim {axis} of output {k} unknown", self.node.outputs[k])
        return p

    def numel(self, i: int) -> Poly:
        p = self.engine.numel(self.need_shape(i))
        if p is None:
            raise self.unknown(f"a dim of input {i} ({self.node.input(i)}) is unknown", self.node.input(i))
        return p

    def out_numel(self, k: int = 0) -> Poly:
        p = self.engine.numel(self.need_out_shape(k))
        if p is None:
            raise self.unknown(f"a dim of output {k} is unknown", self.node.outputs[k])
        return p

    def prod_dims(self, dims: Iterable[Dim | None]) -> Poly:
        p = product(dims)
        if p is None:
            raise CostUnknown("a dim is unknown")
        return p

    def value(self, i: int) -> SymValue | None:
        """Symbolic content of a small integer input (a trip count, ``k`` of TopK)."""
        name = self.node.input(i)
        if not name:
            return None
        v = self.shapes.values.get(name)
        if v is not None:
            return v
        arr = self.node.graph.constant_value(name, 4096)
        if arr is None or arr.dtype.kind not in "iub" or arr.size > 64:
            return None
        return tuple(int(x) for x in arr.reshape(-1).tolist())

    def scalar(self, i: int) -> Poly | None:
        v = self.value(i)
        if v is None or len(v) != 1:
            return None
        return from_dim(v[0])

    # -- bodies ----------------------------------------------------------------------
    def subgraphs(self, attr: str) -> list[ModelGraph]:
        return self.node.subgraphs.get(attr, [])

    def body_cost(self, sub: ModelGraph) -> GraphCost:
        return self.engine.graph_cost(sub)

    def evaluate(self, p: Poly) -> int | float | None:
        return self.engine.evaluate(p)


def per_element(ctx: CostCtx, flops: float, output: int = 0) -> OpCost:
    """``flops`` FLOPs for every element of output ``output``: an element-wise op's cost
    (bytes read and written default to the node's inputs and outputs)."""
    f = Fraction(flops).limit_denominator(1000)
    return OpCost(flops=(int(f) if f.denominator == 1 else f) * ctx.out_numel(output))


__all__ = ["ONE", "ZERO", "CostCtx", "CostUnknown", "GraphCost", "MaskSpec", "NodeCost", "OpCost", "per_element",
           "tensor_bytes"]
