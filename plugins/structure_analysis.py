"""Structure overview: what the graph is made of, before any deeper analysis.

Answers the first questions of a review — which ops, how deep, which control
flow, where the weights live — from the graph alone.
"""

from __future__ import annotations

from array import array
from collections import Counter
from typing import TYPE_CHECKING

from model_analyze.plugin_api import Column, Metric, Section, Table

if TYPE_CHECKING:
    from model_analyze.context import AnalysisContext

    from .structure import StructureOptions


def longest_path(ctx: AnalysisContext) -> int:
    """Depth = most ONNX nodes on any input→output path of the main graph. Depths are kept
    by node index in an array (8 bytes a node, not a dict entry and an int object)."""
    g = ctx.graph
    depth = array("q", bytes(8 * len(g.nodes)))
    for node in g.topo_order():
        depth[node.index] = 1 + max((depth[p.index] for p in g.predecessors(node)), default=0)
    return max(depth, default=0)


def weak_components(ctx: AnalysisContext) -> int:
    """Weakly connected components of the main graph's vertices (union-find over its
    edges: the count networkx's ``number_weakly_connected_components`` gives). A node's
    slot is its index, other vertices (``input:x``, ``init:w``, ``output:y``, ``outer:t``)
    follow; the parents are an array and the edges are streamed, not kept."""
    g = ctx.graph
    by_id = g.node_by_id
    parent = array("q", range(len(g.nodes)))
    extra: dict[str, int] = {}

    def slot(v: str) -> int:
        node = by_id.get(v)
        if node is not None:
            return node.index
        k = extra.get(v)
        if k is None:
            k = extra[v] = len(parent)
            parent.append(k)
        return k

    def root(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for name in g.inputs:
        slot(f"input:{name}")
    for name in g.initializers:
        slot(f"init:{name}")
    for name in g.outputs:
        slot(f"output:{name}")
    for u, v, _key, _imp in g.iter_edges():
        ru, rv = root(slot(u)), root(slot(v))
        if ru != rv:
            parent[ru] = rv
    return sum(1 for v in range(len(parent)) if root(v) == v)


def run(ctx: AnalysisContext, opts: StructureOptions) -> Section:
    """The structure section; ``opts`` are the analyzer's options (read by :mod:`.structure`)."""
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
    top = opts.top
    table = Table("ops", "Most frequent ops", [Column("op", "op"), Column("count", "nodes", "right"),
                                               Column("share", "share", "right")])
    total = sum(ops.values()) or 1
    for op, count in ops.most_common(top):
        table.rows.append([op, count, f"{100 * count / total:.1f}%"])
    section.tables.append(table)
    section.data = {"op_histogram": dict(ops), "weakly_connected_components": weak_components(ctx)}
    section.summary = (f"{sum(ops.values()):,} nodes of {len(ops)} op types"
                       + (f", {subgraphs} control-flow bodies" if subgraphs else ""))
    return section
