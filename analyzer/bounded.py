"""What two bounded figures prove about each other: the one rule baselines and ``compare`` share.

A figure carries its bound kind (:attr:`~.report.Metric.bound`): exact, ``lower`` (≥, the
true value may be larger: uncosted nodes), ``upper`` (≤, may be smaller: the costlier
branch of an ``If``) or ``estimate`` (≈, both kinds in it: no direction known). Every
bounded figure the tool prints is a non-negative quantity (a count, bytes, tokens), so a
figure is read as the interval of values it allows:

==========  ==============
exact v     ``[v, v]``
≥ v         ``[v, ∞)``
≤ v         ``[0, v]``
≈ v         ``[0, ∞)``
==========  ==============

B is *proven* larger than A when B's smallest possible value exceeds A's largest (and by
more than a relative tolerance), proven smaller the other way round; otherwise the figures
prove no order. Why intervals: "160 → 224" when 160 is only a lower bound says nothing —
the old model may have cost 300 — and the first number a person reads must be right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """The values a figure allows."""

    lo: float
    hi: float


def span(value: float, bound: str | None) -> Span:
    """The interval of true values a figure of this bound kind allows (see the module table)."""
    if bound == "lower":
        return Span(value, math.inf)
    if bound == "upper":
        return Span(0.0, value)
    if bound == "estimate":
        return Span(0.0, math.inf)
    return Span(value, value)


def exceeds(a: Span, b: Span, tolerance: float = 0.0) -> bool:
    """B is larger than A for every value both allow, by more than ``tolerance`` of A."""
    return b.lo > a.hi and b.lo > a.hi * (1 + tolerance)


def ratio_range(a: Span, b: Span) -> tuple[float, float]:
    """Smallest and largest B/A the two intervals allow (A > 0 assumed where A may be 0:
    a zero A makes the ratio unbounded above)."""
    lo = 0.0 if math.isinf(a.hi) else (b.lo / a.hi if a.hi else math.inf)
    hi = math.inf if math.isinf(b.hi) or a.lo == 0 else b.hi / a.lo
    return lo, hi


WHAT = {"lower": "a lower bound", "upper": "an upper bound", "estimate": "an estimate"}
"""A bound kind in words, as messages name it."""


def why_unproven(a_bound: str | None, b_bound: str | None, a_name: str, b_name: str) -> str:
    """Why two figures prove no order, in words (``the baseline's figure is a lower bound``)."""
    parts = [f"{name}'s figure is {WHAT[k]}" for name, k in ((a_name, a_bound), (b_name, b_bound)) if k in WHAT]
    return " and ".join(parts) if parts else "the figures are equal"
