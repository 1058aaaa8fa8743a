"""Baselines and ``compare`` claim only what bounded figures prove.

A figure is read as the values it allows (analyzer/bounded.py): exact v = [v, v],
≥ v = [v, ∞), ≤ v = [0, v], ≈ v = [0, ∞). A growth is proven when the smallest value now
exceeds the largest value then; every expectation below is derived by hand from that rule.
"""

from __future__ import annotations

import pytest

from model_analyze.baseline import Snapshot, compare
from model_analyze.plugins.compare import Row, _verdict, headline

E, W, I = "error", "warning", "info"  # noqa: E741


def _run(key: str, a: float, ka: str | None, b: float, kb: str | None) -> list[tuple[str, str, str]]:
    then = Snapshot({"seq": 8}, {key: {"value": a, "bound": ka}})
    now = Snapshot({"seq": 8}, {key: {"value": b, "bound": kb}})
    return [(f.code, str(f.severity), f.message) for f in compare(then, now, 0.01)]


# (key, then, kind then, now, kind now, code, severity, a fragment of the message)
MATRIX = [
    # exact 160 → exact 224: (224 - 160) / 160 = 40 %, both exact: no "at least"
    ("macs", 160, None, 224, None, "BL001", E, "MACs grew 40.0% against the baseline: 160 → 224"),
    # exact 160 → ≥ 224: now ⊂ [224, ∞), 224 > 160·1.01 — proven, and 40 % is the least growth
    ("macs", 160, None, 224, "lower", "BL001", E, "MACs grew at least 40.0% against the baseline: 160 → ≥ 224"),
    # ≤ 160 → 224: then ⊂ [0, 160], 224 > 160·1.01 — proven
    ("macs", 160, "upper", 224, None, "BL001", E, "grew at least 40.0% against the baseline: ≤ 160 → 224"),
    # ≤ 160 → ≥ 224: [0, 160] against [224, ∞) — proven
    ("macs", 160, "upper", 224, "lower", "BL001", E, "≤ 160 → ≥ 224"),
    # ≥ 160 → 224: then may have been 300 — the figures differ by 40 % but prove no direction
    ("macs", 160, "lower", 224, None, "BL011", W, "no direction is proven: ≥ 160 → 224 (the baseline's figure "
     "is a lower bound)"),
    # 160 → ≤ 224: now ⊂ [0, 224] holds 160 — no direction
    ("macs", 160, None, 224, "upper", "BL011", W, "(this run's figure is an upper bound)"),
    # 160 → ≈ 224: an estimate allows anything
    ("macs", 160, None, 224, "estimate", "BL011", W, "160 → ≈ 224 (this run's figure is an estimate)"),
    # ≥ 160 → ≥ 224: [160, ∞) and [224, ∞) overlap — no direction
    ("macs", 160, "lower", 224, "lower", "BL011", W, "the baseline's figure is a lower bound and this run's "
     "figure is a lower bound"),
    # exact 224 → ≥ 160: the figure fell, but now may be 500 — no direction (not an improvement)
    ("macs", 224, None, 160, "lower", "BL011", W, "224 → ≥ 160"),
    # ≥ 224 → exact 160: then ⊂ [224, ∞), 160 < 224·0.99 — a proven fall of at least (224 - 160) / 224 = 28.6 %
    ("macs", 224, "lower", 160, None, "BL010", I, "MACs fell at least 28.6% against the baseline: ≥ 224 → 160"),
    # reach (higher is better), exact 7 → ≤ 5: now ⊂ [0, 5] < 7 — a proven loss of sight
    ("reach", 7, None, 5, "upper", "BL002", E, "Reach shrank against the baseline: 7 tokens → ≤ 5 tokens"),
    # reach ≥ 7 → 5: then ⊂ [7, ∞) > 5 — proven
    ("reach", 7, "lower", 5, None, "BL002", E, "≥ 7 tokens → 5 tokens"),
    # reach 7 → ≥ 5: now may be 9 — no direction
    ("reach", 7, None, 5, "lower", "BL011", W, "Reach changed against the baseline but no direction is proven"),
    # reach ≤ 7 → 10: then ⊂ [0, 7] < 10 — a proven gain
    ("reach", 7, "upper", 10, None, "BL010", I, "Reach grew against the baseline: ≤ 7 tokens → 10 tokens"),
]


@pytest.mark.parametrize(("key", "a", "ka", "b", "kb", "code", "sev", "text"), MATRIX)
def test_baseline_claims_only_what_the_bounds_prove(key, a, ka, b, kb, code, sev, text):
    found = _run(key, a, ka, b, kb)
    assert [(c, s) for c, s, _ in found] == [(code, sev)], found
    assert text in found[0][2], found[0][2]


@pytest.mark.parametrize(("a", "ka", "b", "kb"), [
    (160, None, 160, "lower"),   # [160, 160] against [160, ∞): the figures agree — nothing claimed
    (160, None, 161, None),      # +0.6 %, inside the 1 % tolerance
    (160, "lower", 160, "lower"),
    (160, "upper", 160, None),   # [0, 160] against 160: could only have grown by 0
])
def test_baseline_is_silent_when_figures_agree(a, ka, b, kb):
    assert _run("macs", a, ka, b, kb) == []


# compare: verdict of one row (A, kind, B, kind) → the words, derived from the same intervals.
VERDICTS = [
    (65, None, 65, None, "same"),
    # ≥ 65 against 65: A ⊂ [65, ∞), B = 65 → B/A ∈ [0, 1]: B ≤ A, never "same"
    (65, "lower", 65, None, "B ≤ A"),
    # 65 against ≥ 65: B/A ∈ [1, ∞) → B ≥ A
    (65, None, 65, "lower", "B ≥ A"),
    # 100 against ≥ 140: B/A ≥ 140/100 = 1.4
    (100, None, 140, "lower", "B: ≥ 1.4× memory"),
    # ≥ 100 against 140: B/A ∈ [0, 1.4] — nothing proven
    (100, "lower", 140, None, "can't tell: A's figure is a lower bound"),
    # ≥ 200 against ≤ 100: B/A ≤ 100/200 = 0.5
    (200, "lower", 100, "upper", "B: ≤ 0.5× memory"),
    (65, "lower", 65, "lower", "same figure, both lower bounds"),
    (65, "estimate", 65, "estimate", "same estimate"),
]


@pytest.mark.parametrize(("a", "ka", "b", "kb", "want"), VERDICTS)
def test_compare_row_verdict_is_sound(a, ka, b, kb, want):
    assert _verdict("memory", a, b, ka, kb) == want


def test_compare_reach_verdict_and_headline_keep_the_bound():
    # reach ≥ 8 (A) against ≤ 2 (B): B/A ≤ 2/8 = 0.25 → B sees at least 4× less
    assert _verdict("reach", 8, 2, "lower", "upper") == "B sees ≥ 4× less"
    # FLOPs 100 against ≥ 250: B/A ≥ 2.5; reach exact 4 against 8: 2×
    rows = [Row("reach", "reach", 4, 8), Row("flops", "FLOPs", 100, 250, b_bound="lower")]
    assert headline(rows) == "B sees 2× further at ≥ 2.5× the FLOPs"
    # FLOPs ≥ 100 against 250: no ratio proven — the headline says so instead of "2.5×"
    rows[1] = Row("flops", "FLOPs", 100, 250, a_bound="lower")
    assert headline(rows) == "B sees 2× further (FLOPs: the bounds prove no ratio)"
