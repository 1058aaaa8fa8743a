"""An example third-party model-analyze plugin.

It shows the two things plugins usually do:

* an analyzer (``op-allowlist``): fail the review when the model uses an op the
  deployment runtime does not support;
* op rules for a custom op (``example.com::Swish2``): shape, token flow and cost,
  so the engines treat it precisely instead of as unknown.

Install it next to model-analyze (``pip install samples/example_plugin``) and it
shows up in ``model-analyze plugins`` and in every report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from model_analyze.plugin_api import (
    Analyzer,
    Code,
    Column,
    Metric,
    OpRule,
    Section,
    Severity,
    Table,
    flow_pointwise,
    hookimpl,
    option,
    shape_like_input,
)

if TYPE_CHECKING:
    from model_analyze.context import AnalysisContext
    from model_analyze.graph import Node

# A conservative set of ops a hypothetical mobile runtime supports.
DEFAULT_ALLOWLIST = frozenset({
    "Add", "AveragePool", "BatchNormalization", "Cast", "Concat", "Conv", "Flatten", "Gather", "Gemm",
    "GlobalAveragePool", "LayerNormalization", "MatMul", "MaxPool", "Mul", "Relu", "Reshape", "Shape",
    "Sigmoid", "Slice", "Softmax", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze",
})


@dataclass(frozen=True)
class AllowlistOptions:
    allowlist: list[str] = option(sorted(DEFAULT_ALLOWLIST), "ops the target runtime supports")


# Every code an analyzer emits is declared with it: `model-analyze rules` and `explain`
# list it, SARIF carries its help text, and `ignore`/`severity` in the config accept it.
CODES = (
    Code("X001", "op-not-allowed", Severity.ERROR, "op not supported by the target runtime",
         "The deployment runtime supports only the ops of the allowlist; a model using another op fails to "
         "load there.",
         "Replace the op in the export (or decompose it), or extend the allowlist (`allowlist` option).",
         "op Loop is not supported by the target runtime (1 nodes)"),
)


def run(ctx: AnalysisContext) -> Section:
    allowed = set(ctx.options_for(AllowlistOptions).allowlist)
    section = Section("op-allowlist", "Deployment op allowlist")
    bad: dict[str, list[Node]] = {}
    for node in ctx.graph.walk():
        key = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
        if key not in allowed:
            bad.setdefault(key, []).append(node)
    section.metrics.append(Metric("unsupported_ops", "Unsupported op types", len(bad)))
    table = Table("unsupported", "Ops outside the allowlist",
                  [Column("op", "op"), Column("nodes", "nodes", "right"), Column("first", "first node")])
    for key, nodes in sorted(bad.items()):
        table.rows.append([key, len(nodes), nodes[0].name])
        section.add("X001", Severity.ERROR, f"op {key} is not supported by the target runtime "
                    f"({len(nodes)} nodes)", nodes[0].ref())
    if bad:
        section.tables.append(table)
    section.summary = "all ops supported" if not bad else f"{len(bad)} unsupported op types"
    return section


@hookimpl
def model_analyze_analyzers() -> list[Analyzer]:
    return [Analyzer("op-allowlist", "Deployment op allowlist", run,
                     "ops the deployment runtime does not support", order=900, codes=CODES,
                     options=AllowlistOptions)]


@hookimpl
def model_analyze_op_rules() -> list[OpRule]:
    # Swish2(x) = x · sigmoid(2x): same shape, position-wise, 6 FLOPs per element
    # (2x, neg, exp, add 1, div, mul — Sigmoid counts 4 in the core catalog).
    return [OpRule("Swish2", "example.com", shape=shape_like_input, flow=flow_pointwise,
                   category="elementwise", flops_per_element=6)]
