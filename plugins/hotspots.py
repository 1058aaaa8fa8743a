"""Compute hotspots: the analyzer's declaration (codes, options, hooks).

What the analyzer reports and how: :mod:`.hotspots_analysis`, imported when the analyzer
runs — ``model-analyze --help`` and ``plugins`` read this module only, so they never
import the engines the analysis needs (token flow, cost, attention, onnx)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from model_analyze.plugin_api import Analyzer, Code, Severity, hookimpl, option

from ._docs import METRICS, data_schema

if TYPE_CHECKING:
    from model_analyze.plugin_api import AnalysisContext, Section


RIDGE = 100.0
"""FLOPs per byte above which a node counts as compute-bound: the order of a
modern accelerator's peak-FLOPs / memory-bandwidth ratio (override with the
``ridge`` option). The intensity itself is always printed."""


@dataclass(frozen=True)
class HotspotOptions:
    top: int = option(10, "rows in the top-k tables (nodes, layers, op types)", minimum=1, maximum=10**6, flag=True)
    ridge: float = option(RIDGE, "FLOPs per byte above which a node counts as compute-bound (a device's peak "
                                 "FLOP/s over its bandwidth)", minimum=1e-9)


def run(ctx: AnalysisContext) -> Section:
    """The analysis (:mod:`.hotspots_analysis`), imported on first use."""
    from .hotspots_analysis import run as analyze

    return analyze(ctx, ctx.options_for(HotspotOptions))


@hookimpl
def model_analyze_analyzers() -> list[Analyzer]:
    return [Analyzer("hotspots", "Compute hotspots", run,
                     "MACs/FLOPs, parameters, memory and intensity as formulas in the free dims", order=40,
                     metrics=METRICS["hotspots"], data_schema=data_schema("hotspots"), codes=CODES,
                     options=HotspotOptions)]


W, I = Severity.WARNING, Severity.INFO  # noqa: E741
CODES = (
    Code("HS001", "no-cost-rule", W, "op with no cost rule — counted as zero compute, listed",
         "No cost rule knows the op; its nodes count zero MACs/FLOPs, so totals are lower bounds.",
         "Give the op a cost through a plugin (`OpRule(..., category=..., flops_per_element=...)` or `cost=`).",
         "custom::MyOp: no cost rule for 2 nodes; counted as zero compute", action="extend"),
    Code("HS002", "node-not-costed", W,
         "node not costed (a shape or dim unknown) — zero counted, reason and op given",
         "A node's cost needs a shape the analysis does not know (a free dim, an op without a shape rule "
         "upstream); it counts zero and the totals are lower bounds (marked ≥). Sizes known only at run time "
         "are HS007.",
         "Bind the free dims (`--dim`, `--input-shape`), or give the upstream op a shape rule through a plugin.",
         "MatMul: 12 nodes not costed (shape of input 0 unknown); counted as zero", action="bind"),
    Code("HS003", "cost-is-bound", I,
         "a count is a bound — `If` counts its costlier branch at the binding; upper bounds (Loop `M` with a "
         "condition, RNN `sequence_lens`, NMS worst case)",
         "The node's real cost depends on run-time data; the costlier branch or the worst case is counted.",
         "Nothing; the totals are upper bounds for that node.",
         "If cost is a bound: costlier branch (then_branch) at the binding", action="none"),
    Code("HS004", "cost-lower-bound", W,
         "a count is a lower bound — Loop without a known trip count (body counted once), TopK with unknown `k`, "
         "MaxRoiPool",
         "The node's cost depends on a run-time count that is not known; the count is a lower bound.",
         "Bind the dims the trip count depends on, or accept a lower bound.",
         "Loop cost is a bound: lower bound (trip count unknown, body counted once)", action="bind"),
    Code("HS005", "tied-embeddings", I,
         "tied embeddings — one table feeds the embedding `Gather` and the output projection (counted once)",
         "The embedding table is also the output projection; its parameters are counted once.",
         "Nothing; informational.",
         "tied embeddings: 'embed.weight' feeds both the embedding 'Gather_0' and the output projection "
         "'MatMul_99'; counted once", action="none"),
    Code("HS006", "mask-aware-attention", I,
         "attention masks leave X % of the (query, key) pairs visible; mask-aware vs dense attention FLOPs",
         "With causal or windowed masks a kernel that skips masked blocks does only part of the dense work.",
         "Nothing; use a kernel that skips masked blocks to get the mask-aware cost.",
         "masks leave 50.0% of the attention (query, key) pairs visible: mask-aware attention FLOPs 2.2 T vs "
         "4.4 T dense", action="none"),
    Code("HS007", "data-dependent-size", W,
         "node not costed: its size is known only at run time (after NonZero, NonMaxSuppression, Unique, "
         "Compress, TopK with a run-time k, an undecided If) — zero counted",
         "The node's inputs have a size that follows the *values* flowing through the model (how many boxes "
         "survive NMS, how many elements are non-zero), not its input shapes. No binding of the model's dims "
         "can give it, so the node counts zero at every binding and the totals are lower bounds (marked ≥).",
         "Nothing a binding can do: read the totals as lower bounds, or measure the data-dependent part at run "
         "time (onnxruntime with representative inputs).",
         "MatMul: 1 node not costed (shape of input 0 (feats) unknown: data-dependent (its size follows nms at run "
         "time)); counted as zero at any binding",
         action="none"),
)
