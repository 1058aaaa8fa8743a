"""OpRule / OpRegistry: rules for ``(domain, op_type)``, extensible by plugins.

This module only defines the containers. Rule modules (``ops.shape_rules``,
``tokenflow.rules``, ``cost.rules``) register into a :class:`RuleTable` when they
are imported, and :mod:`.core` is the one place that imports them and builds the
core registry — so nothing here imports a rule module (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Generic, TypeAlias, TypeVar

if TYPE_CHECKING:
    from ..cost.model import CostCtx, OpCost
    from ..graph import TensorType
    from ..shapes import ShapeCtx
    from ..tokenflow.engine import FlowCtx
    from ..tokenflow.state import FlowState

AI_ONNX = ""
MS = "com.microsoft"

ShapeRule: TypeAlias = "Callable[[ShapeCtx], Sequence[TensorType | None]]"
"""``shape(ctx) -> [TensorType | None per output]``: output types from the input types
(``None`` where the rule cannot tell; the exporter's declared type then fills in)."""
FlowRule: TypeAlias = "Callable[[FlowCtx], Sequence[FlowState | None]]"
"""``flow(ctx) -> [FlowState | None per output]``: which input positions each output
position depends on (``None``: every position of every input, the conservative answer)."""
CostRule: TypeAlias = "Callable[[CostCtx], OpCost]"
"""``cost(ctx) -> OpCost``: MACs/FLOPs/bytes; raise ``CostUnknown(reason)`` when it
cannot count (the node is then listed as uncounted, never a silent zero)."""

R = TypeVar("R")
"""The kind of rule a table holds (:data:`ShapeRule`, :data:`FlowRule` or :data:`CostRule`)."""


def norm_domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


@dataclass
class OpRule:
    """Behaviour of one operator. Every field is optional: a plugin that only
    knows the cost of its custom op registers just ``cost``; fields left ``None``
    keep the core's rule (a rule of one kind never erases another)."""

    op_type: str
    domain: str = ""
    shape: ShapeRule | None = None
    flow: FlowRule | None = None
    cost: CostRule | None = None
    category: str | None = None
    """Op family (``elementwise``, ``matmul``, ``conv``…): a cost rule for the family
    applies when the op has none of its own (``elementwise`` needs ``flops_per_element``)."""
    flops_per_element: float | None = None
    source: str = "core"
    """``core`` or the plugin that registered it (set by the core)."""

    @property
    def key(self) -> tuple[str, str]:
        return (norm_domain(self.domain), self.op_type)


_MERGED = ("shape", "flow", "cost", "category", "flops_per_element")


class RuleTable(Generic[R]):
    """Collects rule functions of one kind by decorator, e.g.::

        SHAPE: RuleTable[ShapeRule] = RuleTable("shape")

        @SHAPE.rule("Conv", "ConvInteger")
        def conv_shape(ctx): ...
    """

    def __init__(self, kind: str) -> None:
        if kind not in ("shape", "flow", "cost"):
            raise ValueError(f"rule kind {kind!r}: expected shape, flow or cost")
        self.kind = kind
        self.rules: dict[tuple[str, str], R] = {}
        self._specific: set[tuple[str, str]] = set()

    def rule(self, *op_types: str, domain: str = "") -> Callable[[R], R]:
        def deco(fn: R) -> R:
            for op in op_types:
                key = (norm_domain(domain), op)
                self.rules[key] = fn
                self._specific.add(key)
            return fn

        return deco

    def add(self, op_types: Iterable[str], fn: R, domain: str = "") -> None:
        """A family rule for many ops; an op's own rule (``@rule``) always wins,
        whichever module registered first."""
        for op in op_types:
            key = (norm_domain(domain), op)
            if key not in self._specific:
                self.rules[key] = fn

    def op_rules(self) -> list[OpRule]:
        """The table as :class:`OpRule` s carrying only this kind."""
        out = []
        for (domain, op), fn in self.rules.items():
            rule = OpRule(op, domain)
            setattr(rule, self.kind, fn)
            out.append(rule)
        return out


@dataclass
class OpRegistry:
    """All rules in effect for one analysis (core rules + plugin rules)."""

    rules: dict[tuple[str, str], OpRule] = field(default_factory=dict)

    def add(self, rule: OpRule) -> None:
        """Merge ``rule`` in: its non-None fields override what is registered."""
        cur = self.rules.get(rule.key)
        if cur is None:
            self.rules[rule.key] = replace(rule, domain=rule.key[0])
            return
        for name in _MERGED:
            value = getattr(rule, name)
            if value is not None:
                setattr(cur, name, value)
        if rule.source != "core":
            cur.source = rule.source

    def get(self, domain: str, op_type: str) -> OpRule | None:
        return self.rules.get((norm_domain(domain), op_type))

    def shape_rule(self, domain: str, op_type: str) -> ShapeRule | None:
        rule = self.get(domain, op_type)
        return rule.shape if rule else None

    def flow_rule(self, domain: str, op_type: str) -> FlowRule | None:
        rule = self.get(domain, op_type)
        return rule.flow if rule else None

    def copy(self) -> OpRegistry:
        return OpRegistry({k: replace(v) for k, v in self.rules.items()})


__all__ = ["AI_ONNX", "MS", "CostRule", "FlowRule", "OpRegistry", "OpRule", "RuleTable", "ShapeRule",
           "norm_domain"]
