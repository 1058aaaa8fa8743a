"""Compute cost of a model: MACs, FLOPs, bytes, parameters, activation memory.

Costs are polynomials in the model's free dims (``a·seq + b·seq²``), evaluated
at the dim bindings on demand; weights are never read. Per-op rules live in
:mod:`.rules` and attach to the op registry (plugins add theirs through the
``model_analyze_op_rules`` hook); :func:`cost_model` walks the graph once per
analysis and aggregates per node, layer and op type.
"""

from .engine import Aggregate, CostModel, cost_model
from .model import CostCtx, CostUnknown, GraphCost, NodeCost, OpCost, node_bound
from .poly import Poly

__all__ = ["Aggregate", "CostCtx", "CostModel", "CostUnknown", "GraphCost", "NodeCost", "OpCost", "Poly",
           "cost_model", "node_bound"]
