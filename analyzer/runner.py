"""Run an analysis: load → graph → shapes → bindings → analyzers → Report.

The runner is the only place that knows the order of things; it isolates each
analyzer (one raising gives a ``failed`` section, the others still run) and
collects unknown ops and core findings into the report.
"""

from __future__ import annotations

import contextlib
import gc
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import dims as D
from ._version import __version__
from .analyzers import available_analyzers, plan
from .bindings import resolve_dims
from .context import AnalysisContext
from .descriptors import Analyzer
from .errors import UsageError
from .graph import ModelGraph, build_graph, dtype_name
from .loader import load_model
from .manager import PluginManager, get_plugin_manager
from .ops.registry import OpRegistry
from .options import OptionLayer, catalog, resolve
from .report import DOC, DimInfo, Finding, ModelInfo, NodeRef, Report, Section, Severity, Status, TensorSummary, anchor
from .runnable import raise_defaults, unrunnable
from .shapes import infer_shapes, input_types

if TYPE_CHECKING:
    import onnx


@dataclass
class AnalyzeOptions:
    dims: dict[str, int] = field(default_factory=dict)
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    seq_len: int | None = None
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    params: dict[str, object] = field(default_factory=dict)
    """Analyzer options by key, for every analyzer that has an option of that key
    (``{"top": 20, "device": "h100"}``); they win over ``option_layers``."""
    option_layers: list[OptionLayer] = field(default_factory=list)
    """Analyzer options from the config and the command line, lowest precedence first."""
    soft_dims: dict[str, int] = field(default_factory=dict)
    """Bindings from a config file: applied where the model has the dim, else skipped and
    said (C001) — one config covers a folder of different models. ``dims`` (typed on the
    command line) win and stay errors when the model lacks them."""
    soft_seq_len: int | None = None
    soft_input_shapes: dict[str, list[int]] = field(default_factory=dict)
    soft_sources: dict[str, str] = field(default_factory=dict)
    """Where each soft binding came from (``dims.batch`` → ``pyproject.toml``), for the C001 line."""


def build_registry(pm: PluginManager) -> tuple[OpRegistry, list[Finding]]:
    from .ops.core import default_registry  # the rule tables: imported when a model is analyzed

    reg = default_registry()
    findings: list[Finding] = []
    items, errors = pm.op_rules()
    for plugin, rule in items:
        rule.source = plugin
        reg.add(rule)
    for err in errors:
        findings.append(Finding("P002", Severity.ERROR, f"plugin {err.plugin!r} failed to provide op rules: "
                                f"{err.error}", source=err.plugin))
    return reg, findings


def model_info(ctx: AnalysisContext) -> ModelInfo:
    proto = ctx.model.proto

    def summary(names: list[str]) -> list[TensorSummary]:
        out = []
        for n in names:
            t = ctx.shapes.type(n)
            shape = [D.fmt(d) for d in t.shape] if t and t.shape is not None else ["?"]
            values = [ctx.evaluate(d) for d in t.shape] if t and t.shape is not None else []
            ints = [v for v in values if isinstance(v, int)]
            at = ints if values and len(ints) == len(values) else None
            out.append(TensorSummary(n, dtype_name(t.dtype if t else None), shape, at))
        return out

    return ModelInfo(
        path=ctx.model.path,
        producer=" ".join(x for x in (proto.producer_name, proto.producer_version) if x),
        ir_version=proto.ir_version,
        opsets=ctx.model.opsets,
        nodes=sum(1 for _ in ctx.graph.walk()),
        initializers=len(ctx.graph.initializers),
        inputs=summary(ctx.graph.inputs),
        outputs=summary(ctx.graph.outputs),
        file_bytes=ctx.model.file_bytes,
    )


def unknown_ops(graph: ModelGraph, registry: OpRegistry) -> dict[str, int]:
    """Ops the registry knows nothing about: reported, and treated conservatively."""
    out: dict[str, int] = {}
    for node in graph.walk():
        if registry.get(node.domain, node.op_type) is None:
            key = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
            out[key] = out.get(key, 0) + 1
    return out


def prepare(path: str | onnx.ModelProto, options: AnalyzeOptions | None = None,
            pm: PluginManager | None = None) -> AnalysisContext:
    """Load and prepare a model for analysis; raises ModelError / UsageError."""
    options = options or AnalyzeOptions()
    pm = pm or get_plugin_manager()
    model = load_model(path)
    graph = build_graph(model)
    registry, reg_findings = build_registry(pm)
    skipped: list[Finding] = []
    shapes_in = _soft_input_shapes(graph, options, skipped)
    types = input_types(graph, shapes_in)
    table = infer_shapes(graph, registry, model.opsets, model.proto, shapes_in)
    all_dims = table.symbols() | {s for t in types.values() if t.shape for d in t.shape
                                  for s in D.free_symbols(d)}
    dims = _soft_dims(graph, types, all_dims, options, skipped)
    dim_info = resolve_dims(graph, types, all_dims, dims, options.seq_len, shapes_in, model.proto)
    problem = raise_defaults(graph, table, dim_info)
    ctx = AnalysisContext(model, graph, table, registry, dim_info, plugins=pm)
    ctx.cached("runnable", lambda: problem)  # what `unrunnable(ctx)` returns at these bindings
    model.findings.extend(reg_findings)
    model.findings.extend(skipped)
    return ctx


@contextlib.contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while an analysis runs.

    Why: an analysis allocates a few dozen objects per node (dims, polynomials, flow
    states) and frees almost none before it ends; every collection pass walks all of
    them again — 13% of the CPU of a 21,463-node 405B graph, growing with the graph —
    to find nothing (peak RSS is the same with the collector off). Restored after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _skip(options: AnalyzeOptions, key: str, what: str, why: str) -> Finding:
    src = options.soft_sources.get(key, "config")
    return Finding("C001", Severity.INFO, f"{what} ({src}) skipped: {why}")


def _soft_input_shapes(graph: ModelGraph, options: AnalyzeOptions, skipped: list[Finding]) -> dict[str, list[int]]:
    """Command-line input shapes, plus the config's where the model has that input at that rank."""
    out = dict(options.input_shapes)
    for name, shape in options.soft_input_shapes.items():
        if name in out:
            continue
        declared = graph.declared.get(name)
        what = f"input-shapes.{name} = {shape}"
        if name not in graph.inputs:
            skipped.append(_skip(options, f"input-shapes.{name}", what,
                                 f"the model has no input {name!r} (inputs: {', '.join(graph.inputs) or 'none'})"))
        elif declared is not None and declared.shape is not None and len(declared.shape) != len(shape):
            skipped.append(_skip(options, f"input-shapes.{name}", what,
                                 f"the input has rank {len(declared.shape)}, not {len(shape)}"))
        else:
            out[name] = list(shape)
    return out


def _soft_dims(graph: ModelGraph, types: dict[str, Any], all_dims: set[str], options: AnalyzeOptions,
               skipped: list[Finding]) -> dict[str, int]:
    """Command-line dims, plus the config's dims and seq-len where this model has them."""
    from .bindings import input_dims, sequence_dim

    dims = dict(options.dims)
    listing = ", ".join(input_dims(graph, types) + sorted(all_dims - set(input_dims(graph, types)))) or "none"
    cli_seq = sequence_dim(graph, types) if options.seq_len is not None else None
    for name, value in options.soft_dims.items():
        if name in dims or name == cli_seq:
            continue
        if name not in all_dims:
            skipped.append(_skip(options, f"dims.{name}", f"dims.{name} = {value}",
                                 f"the model has no dim {name!r} (its dims: {listing})"))
        else:
            dims[name] = value
    if options.seq_len is None and options.soft_seq_len is not None:
        seq = sequence_dim(graph, types)
        what = f"seq-len = {options.soft_seq_len}"
        if seq is None:
            skipped.append(_skip(options, "seq-len", what,
                                 f"the model has no sequence dim this tool can tell (its dims: {listing})"))
        elif seq in dims:
            if dims[seq] != options.soft_seq_len:
                skipped.append(_skip(options, "seq-len", what, f"{seq} is already bound to {dims[seq]}"))
        else:
            dims[seq] = options.soft_seq_len
    return dims


def analyze(path: str | onnx.ModelProto, options: AnalyzeOptions | None = None,
            pm: PluginManager | None = None) -> Report:
    """Analyze the model at ``path`` and return the full report."""
    return run(path, options, pm)[0]


def run(path: str | onnx.ModelProto, options: AnalyzeOptions | None = None,
        pm: PluginManager | None = None) -> tuple[Report, AnalysisContext]:
    """:func:`analyze`, also returning the context (budgets and baselines read the graph)."""
    with _without_cyclic_gc():
        return _run(path, options, pm)


def _run(path: str | onnx.ModelProto, options: AnalyzeOptions | None,
         pm: PluginManager | None) -> tuple[Report, AnalysisContext]:
    t0 = time.perf_counter()
    options = options or AnalyzeOptions()
    pm = pm or get_plugin_manager()
    analyzers, plugin_findings = available_analyzers(pm)
    order, shown = plan(analyzers, options.select, options.ignore)
    settings = resolve(catalog(analyzers.values()), [*options.option_layers,
                                                      OptionLayer("params", flags=dict(options.params),
                                                                  flags_only=False)])
    ctx = prepare(path, options, pm)
    ctx.analyzer_options = settings
    report = Report(model=model_info(ctx), dims=ctx.dims, version=__version__)
    report.findings.extend(ctx.model.findings)
    report.findings.extend(plugin_findings)
    unknown = unknown_ops(ctx.graph, ctx.registry)
    report.model.unknown_ops = unknown
    for op, count in sorted(unknown.items()):
        report.findings.append(Finding(
            "U001", Severity.WARNING,
            f"unknown op {op} ({count} node{'s' if count > 1 else ''}): no rules; treated "
            "conservatively (every output position depends on every input position, zero cost)"))
    report.findings.extend(shape_failure_findings(ctx))
    problem = unrunnable(ctx)
    if problem is not None:
        report.findings.append(problem.finding())
    if ctx.dims.free:
        report.findings.append(defaults_finding(ctx.dims))
    for name in order:
        section = run_analyzer(analyzers[name], ctx)
        if name in shown:
            report.sections.append(section)
    report.elapsed_s = time.perf_counter() - t0
    return report, ctx


def shape_failure_findings(ctx: AnalysisContext) -> list[Finding]:
    """R001 for every shape rule that raised; R005 for a broadcast of dims that must be equal
    and differ at the binding (never silently a max); R004 when onnx's own inference, needed
    for tensors our rules left unknown, failed (those tensors then stay unknown)."""
    out = [Finding("R001", Severity.ERROR,
                   f.message("its outputs fall back to the exporter's declared types, else unknown "
                             "(every cost and field that needs them says so)"),
                   NodeRef(f.node, f.op.rsplit("::", 1)[-1], f.graph))
           for f in ctx.shapes.rule_failures]
    seen: set[tuple[str, str]] = set()
    for c in ctx.shapes.conflicts:
        va, vb = ctx.evaluate(c.a), ctx.evaluate(c.b)
        key = (D.fmt(c.a), D.fmt(c.b))
        if va is None or vb is None or va == vb or key in seen:
            continue  # equal wherever the model runs at this binding: nothing to say
        seen.add(key)
        out.append(Finding("R005", Severity.WARNING,
                           f"{c.op} {c.node!r} broadcasts dims that must be equal but differ at this binding: "
                           f"{D.fmt(c.a)} = {va} and {D.fmt(c.b)} = {vb}; {D.fmt(c.kept)} is used. Either the "
                           "model does not run at this binding or a shape rule is wrong (please report it)",
                           NodeRef(c.node, c.op, c.graph)))
    if ctx.shapes.onnx_failure:
        out.append(Finding("R004", Severity.WARNING,
                           f"onnx.shape_inference failed ({ctx.shapes.onnx_failure}): tensors our rules "
                           "left unknown stay unknown"))
    return out


def defaults_finding(dims: DimInfo) -> Finding:
    """D001: the numbers use stated defaults. A warning when a default changes the numbers
    materially (image H/W, a sequence length: 100× between 224² and 640², or 128 and
    131,072 tokens); info when only the batch is 1 / the past is empty (per-sample cost)."""
    guessed = dims.guessed()
    where = sorted({v for k, v in dims.default_from.items() if k in dims.defaults and v != "fallback"})
    said = f" (from {', '.join(where)})" if where else ""
    text = f"numbers are at stated defaults {dims.defaults_text()}{said}"
    if guessed:
        return Finding("D001", Severity.WARNING, f"{text} — bind with `{dims.suggestion}`")
    return Finding("D001", Severity.INFO, f"{text}: the per-sample cost (bind with --dim NAME=VALUE)")


def run_analyzer(an: Analyzer, ctx: AnalysisContext) -> Section:
    t = time.perf_counter()
    ctx.analyzer = an.name
    try:
        section = an.run(ctx)
        if not isinstance(section, Section):
            raise TypeError(f"run() returned {type(section).__name__}, not Section")
    except UsageError:
        raise  # a bad analyzer option (--device, --kv-dtype) is the user's: exit 2, one line
    except Exception as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else ""
        reason = f"{type(exc).__name__}: {exc}{where}"
        section = Section(an.name, an.title, status=Status.FAILED, error=reason,
                          summary=f"failed: {reason}")
        section.findings.append(Finding("P010", Severity.ERROR,
                                        f"analyzer {an.name!r} failed: {reason}", source=an.name))
    section.elapsed_s = time.perf_counter() - t
    for m in section.metrics:
        m.doc = m.doc or f"{DOC}#{anchor(section.analyzer, m.key)}"
        m.description = m.description or an.metrics.get(m.key, "")
    for table in section.tables:
        table.fill_bounds()  # one bound kind per row in the JSON, whichever way the rows were added
    return section
