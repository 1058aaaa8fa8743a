"""OpRule / OpRegistry: rules for ``(domain, op_type)``, extensible by plugins."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

AI_ONNX = ""
MS = "com.microsoft"


def norm_domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


@dataclass
class OpRule:
    """Behaviour of one operator. Every field is optional: a plugin that only
    knows the cost of its custom op registers just ``cost``.

    ``shape(ctx) -> list[TensorType | None]``: output types (see ``shapes.ShapeCtx``).
    ``flow(ctx) -> list[FlowState | None]``: token flow (see ``tokenflow.rules``).
    ``cost(ctx) -> OpCost | None``: MACs/FLOPs/bytes (see ``cost.rules``).
    """

    op_type: str
    domain: str = ""
    shape: Callable[..., Any] | None = None
    flow: Callable[..., Any] | None = None
    cost: Callable[..., Any] | None = None
    category: str | None = None
    flops_per_element: float | None = None
    source: str = "core"

    @property
    def key(self) -> tuple[str, str]:
        return (norm_domain(self.domain), self.op_type)


class RuleTable:
    """Collects rule functions of one kind by decorator, e.g.::

        SHAPE = RuleTable("shape")

        @SHAPE.rule("Conv", "ConvInteger")
        def conv_shape(ctx): ...
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.rules: dict[tuple[str, str], Callable[..., Any]] = {}
        self._specific: set[tuple[str, str]] = set()

    def rule(self, *op_types: str, domain: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            for op in op_types:
                key = (norm_domain(domain), op)
                self.rules[key] = fn
                self._specific.add(key)
            return fn

        return deco

    def add(self, op_types: Iterable[str], fn: Callable[..., Any], domain: str = "") -> None:
        """A family rule for many ops; an op's own rule (``@rule``) always wins,
        whichever module registered first."""
        for op in op_types:
            key = (norm_domain(domain), op)
            if key not in self._specific:
                self.rules[key] = fn


@dataclass
class OpRegistry:
    """All rules in effect for one analysis (core rules + plugin rules)."""

    rules: dict[tuple[str, str], OpRule] = field(default_factory=dict)

    def add(self, rule: OpRule) -> None:
        """Merge ``rule`` in: its non-None fields override what is registered."""
        cur = self.rules.get(rule.key)
        if cur is None:
            self.rules[rule.key] = OpRule(rule.op_type, rule.key[0], rule.shape, rule.flow,
                                          rule.cost, rule.category, rule.flops_per_element,
                                          rule.source)
            return
        for name in ("shape", "flow", "cost", "category", "flops_per_element"):
            value = getattr(rule, name)
            if value is not None:
                setattr(cur, name, value)
        if rule.source != "core":
            cur.source = rule.source

    def add_table(self, table: RuleTable) -> None:
        for (domain, op), fn in table.rules.items():
            self.add(OpRule(op, domain, **{table.kind: fn}))

    def get(self, domain: str, op_type: str) -> OpRule | None:
        return self.rules.get((norm_domain(domain), op_type))

    def fn(self, kind: str, domain: str, op_type: str) -> Callable[..., Any] | None:
        rule = self.get(domain, op_type)
        return getattr(rule, kind) if rule else None

    def copy(self) -> OpRegistry:
        return OpRegistry({k: OpRule(**vars(v)) for k, v in self.rules.items()})


@functools.lru_cache(maxsize=1)
def _core_registry() -> OpRegistry:
    from ..cost import rules as cost_rules
    from ..tokenflow import rules as flow_rules
    from . import catalog, shape_rules

    reg = OpRegistry()
    for rule in catalog.rules():
        reg.add(rule)
    for table in (shape_rules.SHAPE, flow_rules.FLOW, cost_rules.COST):
        reg.add_table(table)
    return reg


def default_registry() -> OpRegistry:
    """A fresh copy of the core rules; plugins' rules are merged into the copy."""
    return _core_registry().copy()
