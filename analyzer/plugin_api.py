"""The public API for plugin authors: everything a plugin imports, from one module.

docs/plugins.md is the guide (built around the three example plugins in ``samples/``);
a test checks that every name in :data:`__all__` is documented there and used by one of
the examples, and that plugins import nothing else from ``model_analyze``.

- **Describing a plugin**: :data:`hookimpl`, :class:`Analyzer` (with :func:`option` fields
  for its options and :func:`json_schema` for its payload), :class:`Format`, :class:`OpRule`,
  :class:`Device`, :class:`Code` (a finding code with its meaning and fix), and
  :class:`AttentionClaim` (a custom op read as a fused attention layer).
- **Reports**: :class:`Report`, :class:`Section`, :class:`Metric`, :class:`Table`,
  :class:`Column`, :class:`Chart`, :class:`Series`, :class:`Point`, :class:`Finding`,
  :class:`NodeRef`, :class:`Severity`, :class:`Status`, :data:`JSON`.
- **The model**: :class:`AnalysisContext` (graph, shapes, dims, options), :class:`ModelGraph`,
  :class:`Node`, :class:`TensorType`, and :mod:`dims` (int-or-symbolic dimension arithmetic).
- **Teaching a custom op**: shape rules get a :class:`ShapeCtx` (:func:`shape_like_input`);
  token-flow rules a :class:`FlowCtx` and return :class:`FlowState` s built with
  :func:`flow_shift`, :func:`flow_window`, :func:`flow_affine`, :func:`flow_gather`,
  :func:`flow_reduce`, :func:`flow_merge`, :func:`flow_broadcast` (or use
  :func:`flow_pointwise` / :func:`flow_conservative` as they are); cost rules get a
  :class:`CostCtx` and return an :class:`OpCost` (:func:`cost_per_element`), or raise
  :class:`CostUnknown`.

The engine-side names (contexts, flow and cost helpers, the graph) and the report model
are imported on first use, so a plugin that imports them only inside its rules adds
nothing to start-up; what a declaration needs at import time (:class:`Analyzer`,
:class:`Code`, :class:`Severity`, :func:`option`, :data:`hookimpl`) is eager and light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .codespec import Code
from .descriptors import Analyzer, AttentionClaim, Format
from .hookspecs import hookimpl
from .options import option
from .payload import json_schema
from .severity import Severity, Status

if TYPE_CHECKING:
    from . import dims
    from .context import AnalysisContext
    from .cost.model import CostCtx, CostUnknown, OpCost
    from .cost.model import per_element as cost_per_element
    from .devices import Device
    from .graph import ModelGraph, Node, TensorType
    from .ops.registry import OpRule
    from .report import JSON, Chart, Column, Finding, Metric, NodeRef, Point, Report, Section, Series, Table
    from .shapes import ShapeCtx
    from .tokenflow.engine import FlowCtx
    from .tokenflow.primitives import affine as flow_affine
    from .tokenflow.primitives import broadcast as flow_broadcast
    from .tokenflow.primitives import gather as flow_gather
    from .tokenflow.primitives import merge as flow_merge
    from .tokenflow.primitives import reduce as flow_reduce
    from .tokenflow.primitives import shift as flow_shift
    from .tokenflow.primitives import window as flow_window
    from .tokenflow.rules import conservative as flow_conservative
    from .tokenflow.rules import pointwise as flow_pointwise
    from .tokenflow.state import FlowState

_LAZY: dict[str, tuple[str, str | None]] = {
    "Device": ("devices", "Device"),
    "OpRule": ("ops.registry", "OpRule"),
    "JSON": ("report", "JSON"),
    "Chart": ("report", "Chart"),
    "Column": ("report", "Column"),
    "Finding": ("report", "Finding"),
    "Metric": ("report", "Metric"),
    "NodeRef": ("report", "NodeRef"),
    "Point": ("report", "Point"),
    "Report": ("report", "Report"),
    "Section": ("report", "Section"),
    "Series": ("report", "Series"),
    "Table": ("report", "Table"),
    "dims": ("dims", None),
    "AnalysisContext": ("context", "AnalysisContext"),
    "CostCtx": ("cost.model", "CostCtx"),
    "CostUnknown": ("cost.model", "CostUnknown"),
    "OpCost": ("cost.model", "OpCost"),
    "cost_per_element": ("cost.model", "per_element"),
    "ModelGraph": ("graph", "ModelGraph"),
    "Node": ("graph", "Node"),
    "TensorType": ("graph", "TensorType"),
    "ShapeCtx": ("shapes", "ShapeCtx"),
    "FlowCtx": ("tokenflow.engine", "FlowCtx"),
    "FlowState": ("tokenflow.state", "FlowState"),
    "flow_affine": ("tokenflow.primitives", "affine"),
    "flow_broadcast": ("tokenflow.primitives", "broadcast"),
    "flow_gather": ("tokenflow.primitives", "gather"),
    "flow_merge": ("tokenflow.primitives", "merge"),
    "flow_reduce": ("tokenflow.primitives", "reduce"),
    "flow_shift": ("tokenflow.primitives", "shift"),
    "flow_window": ("tokenflow.primitives", "window"),
    "flow_conservative": ("tokenflow.rules", "conservative"),
    "flow_pointwise": ("tokenflow.rules", "pointwise"),
}
"""Names imported on first use: ``name → (module under model_analyze, attribute or None for the module)``."""


def __getattr__(name: str) -> object:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__package__}.{target[0]}")
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value
    return value


def shape_like_input(ctx: ShapeCtx, index: int = 0) -> list[TensorType | None]:
    """Shape rule for ops whose output has the type of one input (element-wise ops)."""
    return [ctx.type(index)]


__all__ = ["JSON", "AnalysisContext", "Analyzer", "AttentionClaim", "Chart", "Code", "Column", "CostCtx",
           "CostUnknown", "Device", "Finding", "FlowCtx", "FlowState", "Format", "Metric", "ModelGraph", "Node",
           "NodeRef", "OpCost", "OpRule", "Point", "Report", "Section", "Series", "Severity", "ShapeCtx", "Status",
           "Table", "TensorType", "cost_per_element", "dims", "flow_affine", "flow_broadcast", "flow_conservative",
           "flow_gather", "flow_merge", "flow_pointwise", "flow_reduce", "flow_shift", "flow_window", "hookimpl",
           "json_schema", "option", "shape_like_input"]
