"""Baselines: catch a regression between two exports of the same model.

``--write-baseline FILE`` saves, per model, what a reviewer would compare by hand:
the headline metrics at the binding (through ``Report.headline``, never by analyzer
name), the attention mask of every layer, and the error findings. ``--baseline FILE``
compares this run with it; each regression is a finding (error by default, so the
default ``fail-on`` fails the run):

- a cost (MACs, FLOPs, attention FLOPs, parameters, weight bytes, peak memory) grew
  beyond the tolerance (default 1 %) — BL001;
- what the model sees shrank: reach or receptive field smaller, coverage lost — BL002;
- a layer's attention mask changed family or parameters — BL003;
- an error finding (code at a node) that the baseline did not have — BL004.

A figure that is only a bound is compared as the interval of values it allows
(:mod:`.bounded`): exact ``v`` is ``[v, v]``, ``≥ v`` is ``[v, ∞)``, ``≤ v`` is ``[0, v]``,
``≈ v`` is unknown. A regression or improvement is reported only when the intervals prove
it; figures that differ beyond the tolerance without a proof are BL011 (a warning that
states both bounds), never a regression stated as certain.

Models are matched by their path relative to the baseline file; a run of one model
against a baseline of one model compares the two whatever their paths (a new export
next to the old one). Values are compared only at equal bindings (BL006 otherwise).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .codespec import Code
from .errors import UsageError
from .report import HEADLINES, Finding, Report, Severity

FORMAT = "model-analyze-baseline"
VERSION = 1
IGNORED_PREFIXES = ("BG", "BL")
"""Budget and baseline findings are not "new errors" of the model: they restate a limit."""

W, E, I = Severity.WARNING, Severity.ERROR, Severity.INFO  # noqa: E741

CODES: tuple[Code, ...] = (
    Code("BL001", "cost-regression", E, "a cost grew beyond the baseline's tolerance",
         "MACs, FLOPs, attention FLOPs, parameters, weight bytes or peak activation memory grew by more than "
         "the tolerance (default 1 %, `baseline-tolerance`) against the saved baseline, at the same binding. "
         "A figure that is only a bound (≥ with uncosted nodes, ≤, ≈) counts as the values it allows: the "
         "growth is reported only when even the smallest value now exceeds the largest value then (exact 160 "
         "then, ≥ 224 now: grew at least 40 %); figures that prove no direction are BL011.",
         "Find the change in the export (an extra layer, a wider projection, an unfused op); if it is intended, "
         "refresh the baseline with `--write-baseline`.",
         "MACs grew 50.0% against the baseline: 1.05 M → 1.57 M (1,048,576 → 1,572,864; tolerance 1%)"),
    Code("BL002", "sight-regression", E, "the model sees less than in the baseline: reach, receptive field or "
         "coverage shrank",
         "The last position's reach or the final map's receptive field is smaller than in the baseline, or the "
         "model no longer relates the first and the last token at the binding. Any decrease counts.",
         "Check the masks (a window narrowed, a causal mask where there was none) or the conv stack; refresh the "
         "baseline if intended.",
         "Reach shrank against the baseline: 31 → 16 tokens"),
    Code("BL003", "mask-changed", E, "a layer's attention mask changed (family or parameters)",
         "The mask a layer applies — read from the graph as a family (causal, sliding window W, chunked …) — "
         "differs from the baseline's for the layer of the same name.",
         "If the export changed the mask by accident (a lost `sliding_window`, a different `is_causal`), fix the "
         "export; else refresh the baseline.",
         "layers.1 mask changed against the baseline: sliding window 4 → causal"),
    Code("BL004", "new-error", E, "an error finding the baseline did not have",
         "An error-severity finding (code at a node) appears that the baseline run did not report.",
         "Fix what the finding says (`model-analyze explain CODE`), or refresh the baseline.",
         "new error against the baseline: AT020 at /layers.3/Softmax"),
    Code("BL005", "not-in-baseline", I, "the model is not in the baseline",
         "The baseline has no entry for this model's path, so nothing is compared.",
         "Refresh the baseline with `--write-baseline` to include it.",
         "models/new.onnx is not in the baseline baseline.json; nothing compared"),
    Code("BL006", "baseline-incomparable", W, "a value cannot be compared with the baseline",
         "The binding differs from the baseline's (metrics would not be comparable), or a headline metric is "
         "missing on one side (an analyzer not selected, a model without attention).",
         "Run with the same bindings as the baseline, or refresh the baseline.",
         "bindings differ from the baseline (seq=4096 now, seq=2048 then): metrics not compared", action="bind"),
    Code("BL007", "attention-layers-changed", W, "attention layers were added or removed since the baseline",
         "The set of attention layers (by name) differs from the baseline's.",
         "Nothing if the architecture changed on purpose (the costs say what it costs); refresh the baseline.",
         "attention layers changed against the baseline: 2 → 3 (added: layers.2 causal)"),
    Code("BL010", "improved", I, "a metric improved beyond the tolerance",
         "A cost fell or what the model sees grew against the baseline.",
         "Refresh the baseline with `--write-baseline` to lock the improvement in.",
         "Parameters fell 33.3% against the baseline: 3 M → 2 M"),
    Code("BL011", "change-not-proven", W, "a metric differs from the baseline but its bounds prove no direction",
         "At least one of the two figures is only a bound (≥ when nodes are uncosted or a size is unknown, ≤ "
         "for the costlier branch of an If, ≈ when both are in it), and the values each allows overlap: ≥ 160 "
         "then and 224 now may be a growth or a fall. Reported when the figures differ beyond the tolerance, "
         "so neither a regression (BL001/BL002) nor an improvement (BL010) is claimed.",
         "Make the figures exact: add cost rules for the uncosted ops (HS001) or bind the sizes the shapes "
         "depend on (HS002), then compare again; else review the change by hand.",
         "MACs changed against the baseline but no direction is proven: ≥ 160 → 224 (the baseline's figure is "
         "a lower bound)", action="extend"),
)


@dataclass
class Snapshot:
    """What a baseline keeps of one model."""

    bindings: dict[str, int] = field(default_factory=dict)
    headlines: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Headline key → ``{"value": …, "bound": None|"lower"|"upper"}``."""
    masks: dict[str, str] = field(default_factory=dict)
    """Attention layer name → its mask (``causal``, ``sliding window 4096``)."""
    errors: list[list[str]] = field(default_factory=list)
    """``[code, node]`` of every error finding."""


def snapshot(report: Report, ctx: Any) -> Snapshot:
    """The baseline entry of one analyzed model (``ctx`` gives the attention layers)."""
    from .attention import attention_layers
    from .cost.attention import describe_mask

    heads = {}
    for key in HEADLINES:
        m = report.headline(key)
        if m is not None and isinstance(m.value, (int, float, bool)):
            heads[key] = {"value": m.value, "bound": m.bound}
    masks = {}
    for la in attention_layers(ctx):
        masks[la.name] = describe_mask(la.mask.family, la.mask.params)
    errors = sorted({(f.code, _node(f)) for f in report.all_findings()
                     if f.severity is Severity.ERROR and not f.code.startswith(IGNORED_PREFIXES)})
    return Snapshot({**report.dims.defaults, **report.dims.bound}, heads, masks, [list(e) for e in errors])


def _node(f: Finding) -> str:
    if f.node is None:
        return ""
    return "/".join(x for x in (f.node.graph, f.node.tensor or f.node.name) if x)


def write(path: str, entries: dict[str, Snapshot], version: str) -> None:
    """Save ``entries`` (model path → snapshot), keys relative to the baseline's directory."""
    base = os.path.dirname(os.path.abspath(path))
    doc = {"format": FORMAT, "format_version": VERSION, "tool_version": version,
           "models": {_key(p, base): asdict(s) for p, s in sorted(entries.items())}}
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, sort_keys=False)
            f.write("\n")
    except OSError as exc:
        raise UsageError(f"--write-baseline {path}: cannot write: {exc.strerror or exc}") from None


def _key(model: str, base: str) -> str:
    return os.path.relpath(os.path.abspath(model), base).replace(os.sep, "/")


class Baseline:
    """A loaded baseline file."""

    def __init__(self, path: str, entries: dict[str, Snapshot]) -> None:
        self.path = path
        self.base = os.path.dirname(os.path.abspath(path))
        self.entries = entries

    @classmethod
    def load(cls, path: str) -> Baseline:
        where = f"--baseline {path}"
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:
            raise UsageError(f"{where}: no such file (write one with --write-baseline)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise UsageError(f"{where}: not a baseline file: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("models"), dict):
            raise UsageError(f"{where}: not a model-analyze baseline (write one with --write-baseline)")
        if doc.get("format_version") != VERSION:
            raise UsageError(f"{where}: baseline format {doc.get('format_version')!r}, this version reads {VERSION}")
        entries = {}
        for key, raw in doc["models"].items():
            try:
                entries[key] = Snapshot(dict(raw.get("bindings", {})), dict(raw.get("headlines", {})),
                                        dict(raw.get("masks", {})), [list(e) for e in raw.get("errors", [])])
            except (AttributeError, TypeError, ValueError):
                raise UsageError(f"{where}: entry {key!r} is malformed") from None
        return cls(path, entries)

    def entry(self, model: str, single_run: bool) -> tuple[str, Snapshot] | None:
        key = _key(model, self.base)
        if key in self.entries:
            return key, self.entries[key]
        if single_run and len(self.entries) == 1:
            return next(iter(self.entries.items()))
        return None

    def check(self, model: str, now: Snapshot, report: Report, tolerance: float,
              single_run: bool = False) -> list[Finding]:
        found = self.entry(model, single_run)
        if found is None:
            return [Finding("BL005", I, f"{model} is not in the baseline {self.path}; nothing compared",
                            source="baseline")]
        key, then = found
        out = compare(then, now, tolerance)
        if key != _key(model, self.base):
            for f in out:
                f.message += f" (baseline entry {key})"
        return out


def _pct(a: float, b: float) -> str:
    return f"{100 * abs(b - a) / a:.1f}%" if a else "from 0"


def _fmt(key: str, v: Any, bound: str | None = None) -> str:
    from .render import SIZE_UNITS, human, mark

    if isinstance(v, bool):
        return "yes" if v else "no"
    unit = HEADLINES[key].unit if key in HEADLINES else ""
    text = human(v, unit if unit in SIZE_UNITS else "")
    exact = f"{v:,}" if isinstance(v, int) and abs(v) >= 10**6 else ""
    return mark(bound) + text + (f" [{exact}]" if exact else "")


def compare(then: Snapshot, now: Snapshot, tolerance: float = 0.01) -> list[Finding]:
    """Findings for ``now`` against ``then`` (the baseline)."""
    out: list[Finding] = []

    def add(code: str, sev: Severity, msg: str) -> None:
        out.append(Finding(code, sev, msg, source="baseline"))

    if then.bindings != now.bindings:
        def text(b: dict[str, int]) -> str:
            return ", ".join(f"{k}={v}" for k, v in sorted(b.items())) or "all concrete"
        add("BL006", W, f"bindings differ from the baseline ({text(now.bindings)} now, {text(then.bindings)} "
            "then): metrics not compared")
    else:
        for key, head in HEADLINES.items():
            a, b = then.headlines.get(key), now.headlines.get(key)
            if a is None and b is None:
                continue
            if a is None or b is None:
                add("BL006", W, f"{head.label} {'missing now' if b is None else 'not in the baseline'}: "
                    "not compared")
                continue
            out.extend(_compare_value(key, a["value"], b["value"], tolerance, a.get("bound"), b.get("bound")))
    out.extend(_compare_masks(then.masks, now.masks))
    old = {tuple(e) for e in then.errors}
    for code, node in now.errors:
        if (code, node) not in old:
            add("BL004", E, f"new error against the baseline: {code}" + (f" at {node}" if node else ""))
    return out


def _compare_value(key: str, a: Any, b: Any, tolerance: float, a_bound: str | None = None,
                   b_bound: str | None = None) -> list[Finding]:
    """One headline against the baseline, sound for bounded figures (:mod:`.bounded`): a
    regression (BL001/BL002) or an improvement (BL010) only when the two figures' intervals
    prove it; figures that differ beyond the tolerance without such a proof are BL011."""
    from .bounded import exceeds, span, why_unproven

    head = HEADLINES[key]
    if isinstance(a, bool) or isinstance(b, bool):
        if a is True and b is not True:
            return [Finding("BL002", E, f"{head.label}: no longer (the baseline did)", source="baseline")]
        if a is not True and b is True:
            return [Finding("BL010", I, f"{head.label}: yes now (the baseline did not)", source="baseline")]
        return []
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or head.better not in ("lower", "higher"):
        return []
    tol = tolerance if head.better == "lower" else 0.0  # any loss of sight counts
    then, now = span(a, a_bound), span(b, b_bound)
    change = f"{_fmt(key, a, a_bound)} → {_fmt(key, b, b_bound)}"
    at_least = "at least " if a_bound or b_bound else ""  # a proven change between bounds: its size is a bound
    grew, fell = exceeds(then, now, tol), exceeds(now, then, tol)
    worse, better = (grew, fell) if head.better == "lower" else (fell, grew)
    if head.better == "lower":
        size = f"{at_least}{_pct(a, b)} "
        if worse:
            return [Finding("BL001", E, f"{head.label} grew {size}against the baseline: {change} "
                            f"(tolerance {100 * tolerance:g}%)", source="baseline")]
        if better:
            return [Finding("BL010", I, f"{head.label} fell {size}against the baseline: {change}", source="baseline")]
        differ = b > a * (1 + tolerance) or b < a * (1 - tolerance)
    else:
        if worse:
            return [Finding("BL002", E, f"{head.label} shrank against the baseline: {change}", source="baseline")]
        if better:
            return [Finding("BL010", I, f"{head.label} grew against the baseline: {change}", source="baseline")]
        differ = a != b
    if not differ:
        return []
    return [Finding("BL011", W, f"{head.label} changed against the baseline but no direction is proven: {change} "
                    f"({why_unproven(a_bound, b_bound, 'the baseline', 'this run')})", source="baseline")]


def _compare_masks(then: dict[str, str], now: dict[str, str]) -> list[Finding]:
    out = []
    for name in then.keys() & now.keys():
        if then[name] != now[name]:
            out.append((name, then[name], now[name]))
    findings = [Finding("BL003", E, f"{name} mask changed against the baseline: {a} → {b}", source="baseline")
                for name, a, b in sorted(out)]
    added = [n for n in now if n not in then]
    removed = [n for n in then if n not in now]
    if added or removed:
        parts = []
        if added:
            parts.append("added: " + ", ".join(f"{n} {now[n]}" for n in added[:5])
                         + (f" (+{len(added) - 5} more)" if len(added) > 5 else ""))
        if removed:
            parts.append("removed: " + ", ".join(removed[:5]) + (f" (+{len(removed) - 5} more)"
                                                                  if len(removed) > 5 else ""))
        findings.append(Finding("BL007", W, f"attention layers changed against the baseline: {len(then)} → "
                                f"{len(now)} ({'; '.join(parts)})", source="baseline"))
    return findings
