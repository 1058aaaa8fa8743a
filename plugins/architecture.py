"""Architecture review: the analyzer's declaration (codes, hooks, the ``compare`` command).

What the analyzer reports and how: :mod:`.architecture_analysis`, imported when the analyzer
runs — ``model-analyze --help`` and ``plugins`` read this module only, so they never
import the engines the analysis needs (token flow, cost, attention, onnx)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from model_analyze.plugin_api import Analyzer, Code, Severity, hookimpl

from ._docs import METRICS, data_schema

if TYPE_CHECKING:
    from model_analyze.plugin_api import AnalysisContext, Section


def run(ctx: AnalysisContext) -> Section:
    """The analysis (:mod:`.architecture_analysis`), imported on first use."""
    from .architecture_analysis import run as analyze

    return analyze(ctx)


@hookimpl
def model_analyze_analyzers() -> list[Analyzer]:
    return [Analyzer("architecture", "Architecture review", run,
                     "depth vs width, heads and d_k, context coverage, cost shape", order=60,
                     metrics=METRICS["architecture"], data_schema=data_schema("architecture"), codes=CODES)]


@hookimpl
def model_analyze_commands(cli: Any) -> None:
    from .compare import register

    register(cli)


W, I = Severity.WARNING, Severity.INFO  # noqa: E741
CODES = (
    Code("AR001", "depth-width-regime", I, "Levine et al. depth-vs-width regime (a heuristic, with the numbers)",
         "Levine et al. (NeurIPS 2020): depth beyond about log₃(d_x) gives diminishing returns for a fixed "
         "parameter budget. A heuristic from that paper, never a verdict.",
         "Nothing; consider width over depth if the model is width-limited.",
         "Levine et al. (NeurIPS 2020) heuristic: depth L=32 > log₃(d_x)=7.57 (d_x=4096) → width-limited regime",
         action="none"),
    Code("AR002", "head-dim-mismatch", W, "head dim in the graph differs from d_model/h",
         "The head dim read from the graph is not d_model / heads; an export or config mismatch.",
         "Check the attention reshape against the config.",
         "layers 0..1: head dim in the graph is 32, not d_model/h = 64/4 = 16"),
    Code("AR003", "low-rank-heads", W, "d_k < 32: low-rank attention per head",
         "Each head's QKᵀ has rank at most d_k; below 32 the attention pattern per head is low-rank.",
         "Use fewer, wider heads if the quality matters.",
         "layers 0..1: d_k = 16 < 32: each head's QKᵀ has rank ≤ 16 (low-rank attention per head)"),
    Code("AR004", "context-not-covered", W,
         "the model's reach does not cover the bound sequence length (with the depth that would)",
         "At the bound length the last token's reach is shorter than the sequence; with a sliding window of W "
         "each layer adds W−1 tokens, so L·(W−1)+1 ≥ N layers are needed.",
         "Deploy at a shorter length, widen the window, or add layers.",
         "at seq=2,048 the last token sees only 1,906 of 2,048 tokens: the model cannot relate the first and "
         "the last token"),
    Code("AR005", "context-covered-after", I, "the last token first sees the first after k layers",
         "How many attention layers it takes before the last token's reach includes position 0.",
         "Nothing; informational.",
         "at seq=2,048 the last token first sees the first one after 17 attention layer(s)", action="none"),
    Code("AR006", "quadratic-share", I, "share of FLOPs growing with N² and the N above which it dominates",
         "The attention scores grow with N², projections and MLP with N; the crossover is where the N² part "
         "dominates.",
         "Nothing; above the crossover a mask-aware or linear-attention kernel pays off.",
         "at N=4,096 11.2% of dense FLOPs grow with N² (attention scores); they dominate above N ≈ 32,768",
         action="none"),
)
