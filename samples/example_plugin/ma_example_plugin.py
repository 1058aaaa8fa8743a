"""Example plugin 1 — a deployment target: an analyzer with options, its device, a command.

A team ships to a mobile NPU whose runtime runs a fixed set of ops. This plugin:

* adds the ``op-allowlist`` analyzer: an error (X001) for every op the runtime does not
  run and a warning (X002) for ops of a custom domain; its options (``allowlist``,
  ``allow-custom-domains``) are set in ``[tool.model-analyze.plugins.op-allowlist]`` or
  with ``--option op-allowlist.allowlist=Conv,Relu``; its payload is a typed dataclass
  with a JSON schema; its chart is drawn by every renderer;
* describes the NPU for roofline bounds (``--device example-npu``);
* adds ``model-analyze allowlist``, which prints the ops the target runs.

Install it next to model-analyze (``pip install samples/example_plugin``); it shows up in
``model-analyze plugins`` with its options. docs/plugins.md walks through it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from model_analyze.plugin_api import (
    Analyzer,
    Chart,
    Code,
    Column,
    Device,
    Metric,
    NodeRef,
    Point,
    Section,
    Series,
    Severity,
    Table,
    hookimpl,
    json_schema,
    option,
)

if TYPE_CHECKING:  # the engine-side types, for annotations only: importing them costs start-up time
    from model_analyze.plugin_api import AnalysisContext, ModelGraph, Node

MODEL_ANALYZE_API = "1.0"
"""The plugin API this plugin is written for: a model-analyze with an older one refuses it."""

MOBILE_OPS = (
    "Add", "AveragePool", "BatchNormalization", "Cast", "Concat", "Conv", "Flatten", "Gather", "Gemm",
    "GlobalAveragePool", "LayerNormalization", "MatMul", "MaxPool", "Mul", "Relu", "Reshape", "Shape",
    "Sigmoid", "Slice", "Softmax", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze",
)
"""What a hypothetical mobile runtime runs (the ``allowlist`` default)."""


@dataclass(frozen=True)
class AllowlistOptions:
    """The analyzer's options: the field's type is the option's type, ``option`` gives its
    default and help (``model-analyze plugins`` lists them)."""

    allowlist: list[str] = option(list(MOBILE_OPS), "ops the target runtime runs (domain::op for a custom op)")
    allow_custom_domains: bool = option(False, "ops of a domain other than ai.onnx are fine (no X002)")


@dataclass
class UnsupportedOp:
    op: str
    nodes: int
    first: str = field(metadata={"description": "name of the first node using it"})


@dataclass
class AllowlistData:
    """The section's payload in the JSON report (its schema: ``json_schema(AllowlistData)``)."""

    allowlist_size: int
    unsupported: list[UnsupportedOp]
    custom_domains: list[str]


CODES = (
    Code("X001", "op-not-allowed", Severity.ERROR, "op not supported by the target runtime",
         "The deployment runtime runs only the ops of its allowlist; a model using another op fails to load "
         "there.",
         "Replace the op in the export (or decompose it), or extend the allowlist "
         "(`--option op-allowlist.allowlist=...`).",
         "op Loop is not supported by the target runtime (1 node, first Loop_3)"),
    Code("X002", "custom-domain-op", Severity.WARNING, "op of a custom domain",
         "An op outside the ai.onnx domain needs a kernel the runtime was built with; check the target has it.",
         "Check the runtime build, or set `allow-custom-domains = true` once it is known to be there.",
         "op my.domain::TokenShift is of a custom domain (2 nodes)"),
)
"""Every code the analyzer emits, with its meaning and fix: ``rules``, ``explain`` and SARIF know them."""


def unsupported(graph: ModelGraph, allowed: set[str]) -> dict[str, list[Node]]:
    """Nodes whose op is not allowed, by ``domain::op`` (``op`` for ai.onnx)."""
    bad: dict[str, list[Node]] = {}
    for node in graph.walk():
        key = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
        if key not in allowed:
            bad.setdefault(key, []).append(node)
    return bad


def run(ctx: AnalysisContext) -> Section:
    opts = ctx.options_for(AllowlistOptions)
    section = Section("op-allowlist", "Deployment op allowlist")
    bad = unsupported(ctx.graph, set(opts.allowlist))
    custom = Counter(n.domain for nodes in bad.values() for n in nodes if n.domain)
    table = Table("unsupported", "Ops outside the allowlist",
                  [Column("op", "op"), Column("nodes", "nodes", "right"), Column("first", "first node")])
    for key, nodes in sorted(bad.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        first: NodeRef = nodes[0].ref()
        table.rows.append([key, len(nodes), nodes[0].name])
        section.add("X001", Severity.ERROR, f"op {key} is not supported by the target runtime "
                    f"({len(nodes)} node{'s' if len(nodes) > 1 else ''}, first {nodes[0].name})", first)
        if nodes[0].domain and not opts.allow_custom_domains:
            section.add("X002", Severity.WARNING, f"op {key} is of a custom domain ({len(nodes)} node"
                        f"{'s' if len(nodes) > 1 else ''})", first)
    section.metrics.append(Metric("unsupported_ops", "Unsupported op types", len(bad), "count",
                                  note=f"against {len(opts.allowlist)} allowed ops"))
    if bad:
        section.tables.append(table)
        section.charts.append(Chart(
            "unsupported", "bar", "Nodes per unsupported op", "op", "nodes", y_unit="count",
            series=[Series("nodes", [Point(str(row[0]), len(bad[str(row[0])])) for row in table.rows])]))
    section.data = AllowlistData(len(opts.allowlist),
                                 [UnsupportedOp(str(r[0]), len(bad[str(r[0])]), str(r[2])) for r in table.rows],
                                 sorted(custom))
    section.summary = "all ops supported" if not bad else f"{len(bad)} unsupported op types"
    return section


@hookimpl
def model_analyze_analyzers() -> list[Analyzer]:
    return [Analyzer("op-allowlist", "Deployment op allowlist", run, "ops the deployment runtime does not run",
                     order=900, codes=CODES, options=AllowlistOptions, data_schema=json_schema(AllowlistData),
                     metrics={"unsupported_ops": "op types of the model outside the target's allowlist"})]


@hookimpl
def model_analyze_devices() -> list[Device]:
    # Bounds divide by these figures, so they must be the most the device can do (datasheet peaks).
    return [Device("example-npu", "Example mobile NPU (the deployment target)", {"fp16": 8e12, "int8": 16e12},
                   bandwidth=51.2e9, memory=8e9, cache=8e6, source="illustrative figures for the example plugin",
                   aliases=("npu",))]


@hookimpl
def model_analyze_commands(cli: click.Group) -> None:
    @cli.command("allowlist")
    def allowlist() -> None:
        """Print the ops the deployment target runs (the op-allowlist default)."""
        click.echo("\n".join(MOBILE_OPS))
