"""Structure overview: what the graph is made of, before any deeper analysis.

Answers the first questions of a review — which ops, how deep, which control
flow, where the weights live — from the graph alone.
"""

from __future__ import annotations

from collections import Counter

import networkx as nx

from model_analyze.context import AnalysisContext
from model_analyze.plugin_api import Analyzer, Column, Metric, Section, Table, hookimpl


def longest_path(ctx: AnalysisContext) -> int:
    """Depth = most ONNX nodes on any input→output path of the main graph."""
    g = ctx.graph
    depth: dict[str, int] = {}
    for node in g.topo_order():
        preds = [u for u, _ in g.nx.in_edges(node.id) if g.nx.nodes[u].get("kind") == "node"]
        depth[node.id] = 1 + max((depth[p] for p in preds), default=0)
    return max(depth.values(), default=0)


def run(ctx: AnalysisContext) -> Section:
    g = ctx.graph
    ops = Counter((n.domain + "::" if n.domain else "") + n.op_type for n in g.walk())
    subgraphs = sum(1 for _ in g.subgraphs())
    section = Section("structure", "Structure")
    section.metrics += [
        Metric("nodes", "Nodes (incl. subgraphs)", sum(ops.values())),
        Metric("op_types", "Distinct op types", len(ops)),
        Metric("depth", "Depth (longest node path)", longest_path(ctx)),
        Metric("subgraphs", "Control-flow bodies", subgraphs),
        Metric("external_files", "External data files", len({r.location for r in ctx.model.external})),
    ]
    if ctx.model.inlined_functions:
        section.metrics.append(Metric("inlined_functions", "Model-local functions inlined",
                                      ctx.model.inlined_functions))
    top = ctx.options.get("top", 10)
    table = Table("ops", "Most frequent ops", [Column("op", "op"), Column("count", "nodes", "right"),
                                               Column("share", "share", "right")])
    total = sum(ops.values()) or 1
    for op, count in ops.most_common(top):
        table.rows.append([op, count, f"{100 * count / total:.1f}%"])
    section.tables.append(table)
    section.data = {"op_histogram": dict(ops), "weakly_connected_components":
                    nx.number_weakly_connected_components(g.nx) if g.nx.number_of_nodes() else 0}
    section.summary = (f"{sum(ops.values()):,} nodes of {len(ops)} op types"
                       + (f", {subgraphs} control-flow bodies" if subgraphs else ""))
    return section


@hookimpl
def model_analyze_analyzers() -> list[Analyzer]:
    return [Analyzer("structure", "Structure", run, "op histogram, depth, control flow, external data",
                     order=90)]
