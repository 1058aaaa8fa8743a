"""Which findings a run reports, and at which severity: ruff's ``select``/``ignore`` for codes.

``select``, ``ignore`` and ``extend-select`` take analyzer names *and* finding codes or
prefixes in one list (``["attention", "hotspots", "AT030"]``): names choose the
sections, codes choose the findings. The most specific selector wins (``AT030`` over
``AT``); at equal specificity ``ignore`` wins. With no code in ``select`` every code is
selected. ``severity = { AT030 = "error", HS = "info" }`` re-grades codes (the longest
matching key wins), before ``fail-on`` is applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .codespec import Code, is_selector, matches
from .errors import UsageError, did_you_mean
from .report import Finding, Report, Severity


@dataclass(frozen=True)
class Selection:
    """``select``/``ignore`` split into analyzer names and code selectors."""

    analyzers: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()


def split(items: Iterable[str], analyzers: Iterable[str], codes: Mapping[str, Code], where: str) -> Selection:
    """Sort each item into an analyzer name or a code selector; anything else is a usage error
    naming ``where`` (``--select``, ``pyproject.toml: [tool.model-analyze] ignore``)."""
    names = set(analyzers)
    out_a: list[str] = []
    out_c: list[str] = []
    for raw in items:
        item = raw.strip()
        if item in names:
            out_a.append(item)
            continue
        upper = item.upper()
        if is_selector(upper) and any(matches(upper, c) for c in codes):
            out_c.append(upper)
            continue
        hint = did_you_mean(item, [*sorted(names), *codes]) or did_you_mean(upper, list(codes))
        raise UsageError(f"{where}: no analyzer or finding code {item!r}{hint} "
                         f"(analyzers: {', '.join(sorted(names))}; codes: `model-analyze rules`)")
    return Selection(tuple(out_a), tuple(out_c))


@dataclass
class Policy:
    """Code selection and severity overrides for one model."""

    select: tuple[str, ...] = ()
    """Code selectors; empty means every code."""
    extend: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    severity: dict[str, Severity] = field(default_factory=dict)

    def enabled(self, code: str) -> bool:
        best: tuple[int, bool] | None = None  # (specificity, is_ignore)
        selected = self.select or ("",)
        for s in (*selected, *self.extend):
            if s == "" or matches(s, code):
                cand = (len(s), False)
                best = cand if best is None or cand > best else best
        for s in self.ignore:
            if matches(s, code):
                cand = (len(s), True)
                best = cand if best is None or cand >= best else best
        return best is not None and not best[1]

    def grade(self, finding: Finding) -> Severity:
        keys = [k for k in self.severity if matches(k, finding.code)]
        return self.severity[max(keys, key=len)] if keys else finding.severity

    def filter(self, findings: list[Finding]) -> list[Finding]:
        """The enabled findings, re-graded (in place)."""
        out = []
        for f in findings:
            if self.enabled(f.code):
                f.severity = self.grade(f)
                out.append(f)
        return out

    def apply(self, report: Report) -> None:
        """Drop disabled findings and re-grade the rest, in place."""
        report.findings = self.filter(report.findings)
        for s in report.sections:
            s.findings = self.filter(s.findings)


def severity_table(table: Mapping[str, str], codes: Mapping[str, Code], where: str) -> dict[str, Severity]:
    """``{"AT030": "error"}`` → selectors to severities; unknown codes are usage errors."""
    out: dict[str, Severity] = {}
    for key, value in table.items():
        sel = key.strip().upper()
        if not (is_selector(sel) and any(matches(sel, c) for c in codes)):
            raise UsageError(f"{where} {key}: no finding code {key!r}{did_you_mean(sel, list(codes))} "
                             "(codes: `model-analyze rules`)")
        try:
            out[sel] = Severity.parse(value)
        except KeyError:
            raise UsageError(f"{where} {key}: expected \"info\", \"warning\" or \"error\", got {value!r}") from None
    return out
