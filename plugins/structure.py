"""Structure overview: the analyzer's declaration (options, hooks).

What it reports (ops, depth, control flow, where the weights live): :mod:`.structure_analysis`,
imported when the analyzer runs, so ``--help`` and ``plugins`` read this module only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from model_analyze.plugin_api import Analyzer, hookimpl, option

from ._docs import METRICS, data_schema

if TYPE_CHECKING:
    from model_analyze.plugin_api import AnalysisContext, Section

MAX_TOP = 10**6


@dataclass(frozen=True)
class StructureOptions:
    top: int = option(10, "rows in the most-frequent-ops table", minimum=1, maximum=MAX_TOP, flag=True)


def run(ctx: AnalysisContext) -> Section:
    """The analysis (:mod:`.structure_analysis`), imported on first use."""
    from .structure_analysis import run as analyze

    return analyze(ctx, ctx.options_for(StructureOptions))


@hookimpl
def model_analyze_analyzers() -> list[Analyzer]:
    return [Analyzer("structure", "Structure", run, "op histogram, depth, control flow, external data",
                     order=90, metrics=METRICS["structure"], data_schema=data_schema("structure"),
                     options=StructureOptions)]
