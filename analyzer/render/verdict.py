"""The verdict block every report opens with: cost at the binding, what the model sees,
the top hotspot, findings by severity, and the one next thing to do.

Built only from the headline contract (:data:`~model_analyze.report.HEADLINES`,
``Report.headline``), so it knows no analyzer by name: a plugin's metric marked
``headline="reach"`` shows up here like a built-in's. Every renderer draws the same
:class:`Verdict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..report import HEADLINES, Report, Severity
from . import value_text

COST = ("macs", "flops", "params", "weight_bytes", "peak_activation")
SEES = ("receptive_field", "attention", "reach", "coverage")
SERVES = ("kv_cache_bytes", "decode_time_bound")
MAX_LINES = 12


@dataclass
class Verdict:
    binding: str
    """``seq=4096 (bound)``, ``defaults H=W=224, batch=1``, ``fixed shapes``."""
    warning: str = ""
    """Non-empty when the numbers rest on guessed defaults: the binding to type instead."""
    rows: list[tuple[str, list[str]]] = field(default_factory=list)
    """(label, items): ``cost``, ``memory``, ``sees``, ``hotspot``, ``findings``, ``next``."""


def _item(report: Report, key: str) -> str | None:
    m = report.headline(key)
    head = HEADLINES[key]
    if m is None:
        return None
    if m.value is None:  # a cost that could not be counted says so, it does not vanish
        return head.short.format("?") if key in COST else None
    value = value_text(m.value, m.unit or head.unit, m.bound)
    if isinstance(m.value, bool) and m.bound is None:
        value = "yes" if m.value else "no"
    text = head.short.format(value)
    brief = m.note.split(";")[0].strip() if key in ("receptive_field", "reach") and m.note else ""
    return f"{text} ({brief})" if brief else text


def binding_text(report: Report) -> tuple[str, str]:
    d = report.dims
    parts = [f"{k}={v}" for k, v in d.bound.items()]
    parts += [f"{k}={'×'.join(map(str, v))}" for k, v in d.input_shapes.items()]
    if d.guessed():
        head = ", ".join(parts + [f"defaults {d.defaults_text()}"])
        return head, d.suggestion
    if d.defaults:
        parts.append(f"{d.defaults_text()} (per sample)")
    return (", ".join(parts) if parts else "fixed shapes"), ""


def _findings(report: Report) -> list[str]:
    counts = {sev: [] for sev in Severity}  # type: dict[Severity, list[str]]
    for f in report.all_findings():
        counts[f.severity].append(f.code)
    out = []
    for sev in reversed(Severity):
        codes = list(dict.fromkeys(counts[sev]))
        n = len(counts[sev])
        text = f"{n} {sev}{'s' if n != 1 else ''}"
        if codes and sev is not Severity.INFO:
            text += f" ({', '.join(codes[:4])}{', …' if len(codes) > 4 else ''})"
        out.append(text)
    return out


def next_step(report: Report) -> str:
    """The one thing to do next: bind real sizes, else act on the most actionable finding,
    else nothing.

    Which finding is decided by the code registry's data (:attr:`Code.action`), never by
    naming codes here: something to fix in the model beats a rerun with other sizes,
    which beats a missing rule (a plugin or a bug report); a finding whose code needs no
    action (a weights file the analysis never reads) is never the next step. Within one
    kind the worst severity comes first, an analyzer's finding before a loader note."""
    failed = report.failed_sections()
    if failed:
        return f"analyzer {failed[0].analyzer} failed ({failed[0].error}); rerun with --debug and report it"
    if report.dims.guessed():
        return f"rerun with the real input size: {report.dims.suggestion}"
    from ..codes import lookup
    from ..codespec import ACTIONS

    def action(code: str) -> str:
        entry = lookup(code)
        return entry.action if entry is not None else "fix"  # an unregistered code: assume it matters

    ranked = sorted(((ACTIONS.index(action(f.code)), -f.severity, f.source == "core", i, f)
                     for i, f in enumerate(report.all_findings()) if f.severity >= Severity.WARNING),
                    key=lambda r: r[:4])
    ranked = [r for r in ranked if ACTIONS[r[0]] != "none"]
    if ranked:
        f = ranked[0][-1]
        return f"look at {f.code}: {f.message}"
    return "nothing to fix at this binding; the details follow"


def verdict(report: Report) -> Verdict:
    binding, suggestion = binding_text(report)
    v = Verdict(binding, suggestion)
    cost = [x for x in (_item(report, k) for k in COST) if x]
    if cost:
        v.rows.append(("cost", cost))
    peak = report.headline("peak_tensor")
    if peak is not None and peak.value:
        v.rows.append(("memory", [f"peak: {peak.value}"]))
    sees = [x for x in (_item(report, k) for k in SEES) if x]
    if sees:
        v.rows.append(("sees", sees))
    serves = [x for x in (_item(report, k) for k in SERVES) if x]
    if serves:
        v.rows.append(("serving", serves))
    hot = report.headline("hotspot")
    if hot is not None and hot.value:
        v.rows.append(("hotspot", [str(hot.value)]))
    v.rows.append(("findings", _findings(report)))
    v.rows.append(("next", [next_step(report)]))
    return v
