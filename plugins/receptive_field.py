"""Receptive field of conv/pool stacks: the analyzer's declaration (codes, hooks).

What the analyzer reports and how: :mod:`.receptive_field_analysis`, imported when the analyzer
runs — ``model-analyze --help`` and ``plugins`` read this module only, so they never
import the engines the analysis needs (token flow, cost, attention, onnx)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_analyze.plugin_api import Analyzer, Code, Severity, hookimpl

from ._docs import METRICS, data_schema

if TYPE_CHECKING:
    from model_analyze.plugin_api import AnalysisContext, Section


def run(ctx: AnalysisContext) -> Section:
    """The analysis (:mod:`.receptive_field_analysis`), imported on first use."""
    from .receptive_field_analysis import run as analyze

    return analyze(ctx)


@hookimpl
def model_analyze_analyzers() -> list[Analyzer]:
    return [Analyzer("receptive-field", "Receptive field", run,
                     "receptive field size, stride and padding per spatial axis", order=20,
                     metrics=METRICS["receptive-field"], data_schema=data_schema("receptive-field"), codes=CODES)]


W, I = Severity.WARNING, Severity.INFO  # noqa: E741
CODES = (
    Code("RF001", "branches-misaligned", W,
         "branches meet misaligned (different stride or centre): the hull is reported",
         "Two paths that meet (Add, Concat) see the input with different strides or centres; the field of the "
         "merge is the hull of both, marked ≤.",
         "Check the padding of the branches (an asymmetric pad or a stride on one branch only is the usual cause).",
         "branches meet misaligned along H (a: stride 2 centre 0.5, b: stride 2 centre 0); the union (hull) is "
         "reported"),
    Code("RF002", "field-exceeds-input", I, "the receptive field exceeds the input size",
         "Every final-map position already sees the whole image along that axis; more depth adds no context.",
         "Nothing; at a larger input the field may not cover it.",
         "receptive field (H 427) exceeds the input size (H 224): every final-map position sees the whole image",
         action="none"),
    Code("RF003", "field-over-approximated", W, "ops without a flow rule: the field is an over-approximation",
         "An op without a token-flow rule is treated as mixing every position, so the field is an upper bound.",
         "Give the op a flow rule through a plugin (`OpRule(..., flow=...)`).",
         "ops without a token-flow rule were treated as mixing every position (the field is an "
         "over-approximation): custom::MyPool×1", action="extend"),
    Code("RF004", "global-context", I,
         "the final map also sees the whole input through position-independent paths (squeeze-excite pooling, "
         "global context); size/stride/pad are the local field's",
         "A pooled, position-independent path (squeeze-excite, global context) reaches every position; the "
         "reported size is the local conv path's field.",
         "Nothing; informational.",
         "every position of the final map x also depends on the whole input along H through 3 "
         "position-independent path(s) (GlobalAveragePool)", action="none"),
    Code("RF005", "map-merged", I,
         "the last tracked map is merged into tokens, windows or a flat vector; later tensors are reported as "
         "seeing the whole image",
         "After a patchify/window partition or a flatten, positions are no longer a map this analysis follows.",
         "Nothing; for ViT/Swin the size is that of the stem before the merge.",
         "the positions of the last tracked map x are merged by Reshape /patch/Reshape (into tokens, windows or a "
         "flat vector)", action="none"),
)
