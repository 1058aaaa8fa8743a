"""``model-analyze compare A.onnx B.onnx``: two models side by side.

Both models are analyzed with the same bindings (``--seq-len N`` binds each
model's own sequence dim). Each row states A, B and a one-line verdict
("B sees 2× further"); the first line sums it up ("B sees 2× further at 1.9×
the FLOPs"). Text, JSON and Markdown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from model_analyze.severity import Severity

if TYPE_CHECKING:
    from model_analyze.report import Finding, Metric, Report

ANALYZERS = ("receptive-field", "attention", "hotspots", "architecture", "serving")


@dataclass
class Row:
    key: str
    label: str
    a: Any
    b: Any
    verdict: str = ""
    a_bound: str | None = None
    """``lower``/``upper``/``estimate`` when A's value is only a bound (``Metric.bound``): printed ≥/≤/≈."""
    b_bound: str | None = None


def _metric(report: Report, analyzer: str, key: str) -> Any:
    s = report.section(analyzer)
    m = s.metric(key) if s is not None else None
    return m.value if m is not None else None


def _metric_row(key: str, label: str, a: Report, b: Report, analyzer: str, *keys: str) -> Row:
    """A row of two metrics (the first of ``keys`` with a value), each keeping its bound kind:
    a total with uncosted nodes reads ``≥ 1.2 G``, never as the exact figure."""
    def pick(report: Report) -> Metric | None:
        s = report.section(analyzer)
        found = [m for m in (s.metric(k) for k in keys) if m is not None] if s is not None else []
        return next((m for m in found if m.value), found[-1] if found else None)

    ma, mb = pick(a), pick(b)
    return Row(key, label, ma.value if ma else None, mb.value if mb else None,
               a_bound=ma.bound if ma else None, b_bound=mb.bound if mb else None)


def _data(report: Report, analyzer: str, *path: str) -> Any:
    s = report.section(analyzer)
    cur: Any = s.data if s is not None else None
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or isinstance(a, bool) or a == 0:
        return None
    return b / a


def _times(r: float) -> str:
    text = f"{r:.3f}" if abs(r - 1) < 0.01 else (f"{r:.2f}" if r < 10 else f"{r:.0f}")
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "×"


WORDS = {"reach": ("B sees {} further", "B sees {} less"),
         "depth": ("B {} deeper", "B {} shallower"),
         "width": ("B {} wider", "B {} narrower"),
         "params": ("B: {} params", "B: {} params"),
         "flops": ("B: {} FLOPs", "B: {} FLOPs"),
         "memory": ("B: {} memory", "B: {} memory"),
         "pairs": ("B: {} pairs", "B: {} pairs"),
         "rf": ("B's field {} larger", "B's field {} smaller"),
         "first_layer": ("B: {} layers", "B: {} layers"),
         "kv": ("B: {} KV cache", "B: {} KV cache"),
         "bound": ("B: {} the time bound", "B: {} the time bound"),
         "tps": ("B: {} tokens/s", "B: {} tokens/s")}


def proven_ratio(a: Any, b: Any, a_bound: str | None, b_bound: str | None) -> tuple[str, float] | None:
    """What the two figures prove about B/A (:mod:`model_analyze.bounded`): ``("=", r)`` when
    both are exact, ``(">=", r)`` / ``("<=", r)`` when only a bound on the ratio is proven,
    ``None`` when they prove no order (≥ 65 against 65 proves B ≤ A, but ≥ 65 against 70
    proves nothing)."""
    from model_analyze.bounded import ratio_range, span

    r = _ratio(a, b)
    if r is None:
        return None
    if a_bound is None and b_bound is None:
        return "=", r
    lo, hi = ratio_range(span(a, a_bound), span(b, b_bound))
    if lo >= 1:
        return ">=", lo
    if hi <= 1:
        return "<=", hi
    return None


def _verdict(key: str, a: Any, b: Any, a_bound: str | None = None, b_bound: str | None = None) -> str:
    """A row's verdict word, claiming only what the figures' bounds prove: "same" needs two
    exact equal figures; a bounded side gives "B: ≥ 1.4× FLOPs", "B ≤ A" or "can't tell"."""
    if key == "covers":
        if a == b:
            return "both" if a else "neither"
        return "only B" if b else "only A"
    if key == "regime":
        return "same" if a == b else f"A {a}, B {b}"
    if _ratio(a, b) is None:
        return "" if a == b else "differ"
    proof = proven_ratio(a, b, a_bound, b_bound)
    if proof is None:
        from model_analyze.bounded import why_unproven

        if a == b and a_bound == b_bound:
            return {"lower": "same figure, both lower bounds", "upper": "same figure, both upper bounds"}.get(
                a_bound or "", "same estimate")
        return f"can't tell: {why_unproven(a_bound, b_bound, 'A', 'B')}"
    rel, r = proof
    if abs(r - 1) < 1e-9:
        return "same" if rel == "=" else f"B {'≥' if rel == '>=' else '≤'} A"
    more, less = WORDS.get(key, ("B: {}", "B: {}"))
    flip = r < 1 and any(w in less for w in ("less", "smaller", "shallower", "narrower"))
    # flipping 1/r turns a proven "at most r" into "at least 1/r" (B ≤ 0.5 A: B sees ≥ 2× less)
    sign = {"=": "", ">=": "≥ ", "<=": "≤ "}[{">=": "<=", "<=": ">="}.get(rel, rel) if flip else rel]
    return (more if r > 1 else less).format(sign + _times(1 / r if flip else r))


def rows(a: Report, b: Report) -> list[Row]:
    def arch(*p: str) -> tuple[Any, Any]:
        return _data(a, "architecture", *p), _data(b, "architecture", *p)

    def heads(r: Report) -> str | None:
        hs = _data(r, "architecture", "heads")
        if not hs:
            return None
        return ", ".join(f"{h['heads']}/{h['kv_heads']}" if h["kv_heads"] not in (None, h["heads"]) else str(h["heads"])
                         for h in hs)

    def dk(r: Report) -> str | None:
        hs = _data(r, "architecture", "heads")
        return ", ".join(str(h["head_dim"]) for h in hs) if hs else None

    out = [
        Row("depth", "attention layers", *arch("depth_width", "depth")),
        Row("width", "width d_x", *arch("depth_width", "width")),
        Row("heads", "heads (q/kv)", heads(a), heads(b)),
        Row("dk", "d_k", dk(a), dk(b)),
        Row("regime", "Levine regime", *arch("depth_width", "regime")),
        _metric_row("rf", "receptive field", a, b, "receptive-field", "rf.size"),
        Row("reach", "last token's reach", *arch("coverage", "reach_last")),
        Row("covers", "sees the 1st token", *arch("coverage", "covers")),
        Row("first_layer", "…after layer", *arch("coverage", "first_layer")),
        Row("pairs", "reachable pairs", *arch("coverage", "pair_fraction")),
        _metric_row("params", "parameters", a, b, "hotspots", "params"),
        _metric_row("flops", "FLOPs (mask-aware)", a, b, "hotspots", "flops.effective", "flops"),
        _metric_row("memory", "peak activations", a, b, "hotspots", "memory.peak"),
        *serving_rows(a, b),
    ]
    for r in out:  # a model that never covers N has no "first layer"
        if r.key == "first_layer":
            cov_a, cov_b = arch("coverage", "covers")
            r.a = "never" if cov_a is False else r.a
            r.b = "never" if cov_b is False else r.b
    keep = [r for r in out if r.a is not None or r.b is not None]
    for r in keep:
        r.verdict = _verdict(r.key, r.a, r.b, r.a_bound, r.b_bound)
    return keep


def serving_rows(a: Report, b: Report) -> list[Row]:
    """KV cache, decode cost and (with --device) its bound, from the serving section."""
    return [_metric_row("kv", "KV cache / token", a, b, "serving", "kv.per_token"),
            _metric_row("kv", "KV cache at n", a, b, "serving", "kv.sequence"),
            _metric_row("flops", "decode step FLOPs", a, b, "serving", "decode.flops"),
            Row("memory", "decode step bytes ≥", _metric(a, "serving", "decode.bytes"),
                _metric(b, "serving", "decode.bytes")),
            _bound_row("bound", "decode step ≥", a, b, "bound.decode"),
            _bound_row("tps", "decode tokens/s ≤", a, b, "bound.tokens_per_s")]


def _bound_row(key: str, label: str, a: Report, b: Report, name: str) -> Row:
    """A row comparing two serving bounds *as bounds* (its label carries ``≥``/``≤``: "B: 2× the
    time bound" is exact about the bounds). A side that is only an estimate (``≈``: the work
    behind it is not a floor, so it bounds nothing) keeps that kind, so no ratio is claimed for it."""
    def kind(report: Report) -> str | None:
        s = report.section("serving")
        m = s.metric(name) if s is not None else None
        return "estimate" if m is not None and m.bound == "estimate" else None

    return Row(key, label, _metric(a, "serving", name), _metric(b, "serving", name), a_bound=kind(a),
               b_bound=kind(b))


def headline(table: list[Row]) -> str:
    """"B sees 2× further at 1.9× the FLOPs", each ratio only as far as the rows' bounds prove it."""
    by = {r.key: r for r in table}
    parts = []
    reach, flops = by.get("reach"), by.get("flops")
    rr = proven_ratio(reach.a, reach.b, reach.a_bound, reach.b_bound) if reach else None
    fr = proven_ratio(flops.a, flops.b, flops.a_bound, flops.b_bound) if flops else None
    if rr is not None:
        rel, r = rr
        if rel == "=":
            parts.append("B sees as far" if abs(r - 1) < 1e-9 else
                         f"B sees {_times(r)} further" if r > 1 else f"B sees {_times(1 / r)} less far")
        elif rel == ">=":
            parts.append(f"B sees at least {_times(r)} further" if r > 1 else "B sees at least as far")
        else:
            parts.append(f"B sees at least {_times(1 / r)} less far" if r < 1 else "B sees at most as far")
    if fr is not None:
        rel, r = fr
        sign = {"=": "", ">=": "≥ ", "<=": "≤ "}[rel]
        parts.append(f"at {sign}{_times(r)} the FLOPs")
    elif flops is not None and _ratio(flops.a, flops.b) is not None:
        parts.append("(FLOPs: the bounds prove no ratio)")
    return " ".join(parts) if parts else "no comparable figures"


UNITS = {"memory": "B", "kv": "B"}


def _fmt(v: Any, key: str = "", bound: str | None = None) -> str:
    from model_analyze.render import mark

    text = _fmt_value(v, key)
    return text if text == "—" else mark(bound) + text


def _fmt_value(v: Any, key: str) -> str:
    from model_analyze.render import cell, human

    if isinstance(v, float) and key == "pairs":
        return f"{100 * v:.1f}%"
    if isinstance(v, float) and key == "bound":
        from .serving.roofline import fmt_time

        return fmt_time(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) >= 10**6:
        return human(v, UNITS.get(key, ""))
    return cell(v)


def render_text(a: str, b: str, n: dict[str, int], table: list[Row]) -> str:
    from model_analyze.render.text import render_table
    from model_analyze.report import Column, Table

    t = Table("compare", "", [Column("metric", "metric"), Column("a", "A", "right"), Column("b", "B", "right"),
                              Column("verdict", "verdict")],
              [[r.label, _fmt(r.a, r.key, r.a_bound), _fmt(r.b, r.key, r.b_bound), r.verdict] for r in table])
    dims = ", ".join(f"{k}={v}" for k, v in n.items()) or "all concrete"
    lines = [f"A: {a}", f"B: {b}", f"at {dims}", "", *render_table(t), "", f"verdict: {headline(table)}"]
    return "\n".join(lines) + "\n"


def render_markdown(a: str, b: str, n: dict[str, int], table: list[Row]) -> str:
    out = [f"# compare `{a}` (A) vs `{b}` (B)", "",
           f"at {', '.join(f'`{k}={v}`' for k, v in n.items()) or 'all concrete'}", "",
           "| metric | A | B | verdict |", "|---|---:|---:|---|"]
    out += [f"| {r.label} | {_fmt(r.a, r.key, r.a_bound)} | {_fmt(r.b, r.key, r.b_bound)} | {r.verdict} |"
            for r in table]
    return "\n".join([*out, "", f"**Verdict:** {headline(table)}", ""])


def register(cli: click.Group) -> None:
    from model_analyze.clikit import dims_options, flag_values, guarded, option_flags, write_output

    @cli.command()
    @click.argument("model_a", type=click.Path(path_type=str))
    @click.argument("model_b", type=click.Path(path_type=str))
    @dims_options
    @click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text")
    @click.option("-o", "--output", default=None, help="Write to FILE instead of stdout.")
    @click.option("--fail-on", type=click.Choice(["info", "warning", "error", "never"]), default="never",
                  show_default=True, help="Exit 1 when B regresses against A (as --baseline does) at this "
                  "severity or worse.")
    @click.option("--tolerance", default="1%", show_default=True, help="Relative cost change tolerated.")
    @click.option("--config", "config_path", default=None, metavar="FILE", help="Config file to read.")
    @click.option("--isolated", is_flag=True, help="Ignore every config file.")
    @option_flags
    @guarded
    def compare(model_a: str, model_b: str, dims: tuple[str, ...], input_shapes: tuple[str, ...],
                seq_len: int | None, fmt: str, output: str | None, fail_on: str, tolerance: str,
                config_path: str | None, isolated: bool, plugin_options: tuple[str, ...], **flags: object) -> None:
        """Compare two models side by side (reach, cost, architecture).

        The config's bindings apply to each model as they would in `model-analyze PATH`
        (per-path overrides included); with --fail-on, B's regressions against A are
        findings and set the exit code.
        """
        regressions, reports = _analyze_pair(model_a, model_b, dims, input_shapes, seq_len, tolerance,
                                             config_path, isolated, flag_values(flags), plugin_options)
        table = rows(*reports)
        n = {**reports[0].dims.defaults, **reports[0].dims.bound}
        if fmt == "json":
            payload = {"a": model_a, "b": model_b, "bindings": {"a": {**reports[0].dims.defaults,
                                                                      **reports[0].dims.bound},
                                                                "b": {**reports[1].dims.defaults,
                                                                      **reports[1].dims.bound}},
                       "rows": [r.__dict__ for r in table], "verdict": headline(table),
                       "regressions": [{"code": f.code, "severity": str(f.severity), "message": f.message}
                                       for f in regressions]}
            text = json.dumps(payload, indent=2, default=str) + "\n"
        elif fmt == "markdown":
            text = render_markdown(model_a, model_b, n, table)
        else:
            text = render_text(model_a, model_b, n, table)
        if regressions and fmt != "json":
            text += _render_regressions(regressions, fmt)
        write_output(text, output)
        if fail_on != "never" and any(f.severity >= Severity.parse(fail_on) for f in regressions):
            raise SystemExit(1)


def _analyze_pair(model_a: str, model_b: str, dims: tuple[str, ...], input_shapes: tuple[str, ...],
                  seq_len: int | None, tolerance: str, config_path: str | None, isolated: bool,
                  flags: dict[str, object], plugin_options: tuple[str, ...]) -> tuple[list[Finding], list[Report]]:
    """Both models under the config (bindings per path), and B's regressions against A."""
    from model_analyze.analyze_cmd import cli_settings
    from model_analyze.baseline import compare as compare_snapshots
    from model_analyze.batch import BatchRunner
    from model_analyze.config import Config, load_config
    from model_analyze.errors import UsageError
    from model_analyze.units import parse_fraction

    try:
        tol = parse_fraction(tolerance)
    except ValueError as exc:
        raise UsageError(f"--tolerance {tolerance!r}: expected {exc}") from None
    config = Config() if isolated else load_config(explicit=config_path)
    runner = BatchRunner(config, cli_settings(dims=dims, input_shapes=input_shapes, seq_len=seq_len, select=(),
                                              ignore=(), extend_select=(), severities=(), fail_on=None,
                                              budgets=(), baseline_tolerance=None, debug=False, flags=flags,
                                              plugin_options=plugin_options))
    runner.cli.select = [x for x in ANALYZERS if x in runner.analyzers]
    runner.cli.want_snapshot = True
    results = [runner.analyze_one(m) for m in (model_a, model_b)]
    for r in results:
        if r.report is None:
            raise UsageError(r.error or f"{r.path}: could not be analyzed")
    snaps = [r.snapshot for r in results]
    regressions = compare_snapshots(snaps[0], snaps[1], tol) if snaps[0] and snaps[1] else []
    return regressions, [r.report for r in results if r.report is not None]


def _render_regressions(findings: list[Finding], fmt: str) -> str:
    if fmt == "markdown":
        return "\n" + "\n".join(f"- **{f.severity}** `{f.code}` {f.message}" for f in findings) + "\n"
    import textwrap

    lines = ["", "B against A:"]
    for f in findings:
        lines += textwrap.wrap(f"{f.severity!s:7} {f.code} {f.message}", 80, initial_indent="  ",
                               subsequent_indent="          ")
    return "\n".join(lines) + "\n"
