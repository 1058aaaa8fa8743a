"""The op registry: one place that knows what each operator does.

Each op is described once in :mod:`.catalog` (its family and, for element-wise
ops, its per-element FLOP constant). Rule modules attach behaviour to ops by
decorator — shape inference (:mod:`.shape_rules`), token flow
(:mod:`model_analyze.tokenflow.rules`) and cost (:mod:`model_analyze.cost.rules`)
— and :mod:`.core` loads them into one registry; plugins add or override rules for
any ``(domain, op_type)`` through the ``model_analyze_op_rules`` hook. An op with no
rule of a kind is *unknown* for that kind and is treated conservatively by the engine
that asked.
"""

from .registry import OpRegistry, OpRule, RuleTable

__all__ = ["OpRegistry", "OpRule", "RuleTable"]
