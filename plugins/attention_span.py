"""Attention span: the analyzer's declaration (codes, hooks).

What the analyzer reports and how: :mod:`.attention_span_analysis`, imported when the analyzer
runs — ``model-analyze --help`` and ``plugins`` read this module only, so they never
import the engines the analysis needs (token flow, cost, attention, onnx)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_analyze.plugin_api import Analyzer, Code, Severity, hookimpl

from ._docs import METRICS, data_schema

if TYPE_CHECKING:
    from model_analyze.plugin_api import AnalysisContext, Section


def run(ctx: AnalysisContext) -> Section:
    """The analysis (:mod:`.attention_span_analysis`), imported on first use."""
    from .attention_span_analysis import run as analyze

    return analyze(ctx)


@hookimpl
def model_analyze_analyzers() -> list[Analyzer]:
    return [Analyzer("attention", "Attention", run,
                     "attention layers (fused and unfused), mask family read from the graph, span per layer",
                     order=30, metrics=METRICS["attention"], data_schema=data_schema("attention"), codes=CODES)]


W, I, E = Severity.WARNING, Severity.INFO, Severity.ERROR  # noqa: E741
CODES = (
    Code("AT001", "attention-scale-unexpected", W,
         "attention scores scaled by something other than 1/sqrt(d_k) (every constant factor on QKᵀ, Q and K counted)",
         "Every constant factor applied to QKᵀ, to Q or to K is multiplied into the applied scale and compared "
         "with 1/sqrt(d_k). A different scale changes the softmax temperature: a model trained that way is fine, "
         "an export that lost or doubled the scale is not.",
         "Check the export against the reference implementation (a scale applied twice, e.g. by SDPA and by the "
         "model, is the usual cause); ignore the code for models trained with a custom scale.",
         "layers 0..11: scores scaled by 0.0625, expected 1/sqrt(d_k) = 0.125 (d_k 64)"),
    Code("AT002", "attention-scale-missing", W, "no scaling of QKᵀ at all (1/sqrt(d_k) expected)",
         "No constant factor was found between QKᵀ and the softmax, nor on Q or K.",
         "Check that the export kept the scale (some fused kernels apply it internally: then ignore the code).",
         "layer 0: no scaling of QKᵀ found; expected 1/sqrt(d_k) = 0.125"),
    Code("AT003", "attention-scale-not-constant", I, "the scale is applied but not a constant, so it is not checked",
         "The factor on the scores is computed at run time (e.g. from a shape), so its value is not compared.",
         "Nothing; bind the dims it depends on if you want it evaluated.",
         "layer 0: scale not read: computed from Sqrt of a shape", action="none"),
    Code("AT010", "mask-not-understood", W,
         "mask not understood (cannot be evaluated, or depends on activations): every key assumed visible",
         "The mask's backward slice could not be evaluated, or it depends on activations; the layer is treated "
         "as seeing every key — sound for reach, never silently called 'full'.",
         "Export the mask from positions only (no data-dependent selection), or write an op rule for the op "
         "that blocks the evaluation.",
         "layer 0: mask not understood (depends on activations); every key is assumed visible"),
    Code("AT011", "mask-no-family", W, "mask fits no family: kept as the concrete pattern at one evaluated length",
         "The evaluated masks match none of the families (bidirectional, causal, window, band, chunked, "
         "global+local, dilated, block-sparse) at every evaluated length; the pattern at one length is kept.",
         "Nothing if the pattern is intended; reach and mask-aware FLOPs are exact at that length only.",
         "layer 0: mask fits no family: pattern kept at n=24", action="none"),
    Code("AT012", "mask-input-driven", I,
         "a mask built from a graph input (padding): analyzed as all ones, i.e. no padding",
         "The mask depends on a graph input (BERT's attention_mask); it is analyzed with that input all ones.",
         "Nothing; the numbers are those of an unpadded batch.",
         "layers 0..1: mask built from graph input(s) attention_mask; analyzed as if all ones (no padding)",
         action="none"),
    Code("AT013", "mask-candidate-too-large", I,
         "a window/chunk candidate above the evaluation limit could not be read",
         "A constant in the mask slice looks like a window or chunk size but is too large to evaluate directly "
         "and the two-probe reading did not confirm it.",
         "Bind a sequence length above the constant, or report the model.",
         "layer 0: mask sizes above 1,024 not evaluated: 65536", action="bind"),
    Code("AT020", "future-token-leak", E,
         "future-token leak: a query sees a later key while the rest of the model (or of the mask) is causal",
         "In a causal model a layer whose mask lets a query see later keys leaks the future: generation and "
         "training disagree.",
         "Fix the mask construction (a wrong triangle, an off-by-one in a window, a missing causal flag).",
         "layer 3: future-token leak: bidirectional mask in a causal model"),
    Code("AT030", "reach-below-context", W,
         "model reach shorter than the bound sequence length: first and last token never relate "
         "(info at a default length)",
         "The token-flow engine composes the masks of every layer: the last position's reach is shorter than "
         "the bound length, so the model cannot relate the first and the last token at that length. A warning "
         "at a bound length, info when the length is only the stated default.",
         "Deploy at a length within the reach, use more layers or wider windows, or add global tokens.",
         "model reach 1,906 < the bound seq=2,048: the last position cannot see the first 142 token(s), so the "
         "model cannot relate the first and last token"),
    Code("AT090", "attention-not-read", W, "a node that looked like attention could not be read",
         "A softmax (or a fused attention op) looks like attention but its layout is not understood; it is "
         "reported rather than skipped silently.",
         "Report the model; meanwhile the layer counts as unmasked for reach.",
         "attention-like node not read: Softmax /attn/Softmax: score layout not understood", action="extend"),
)
