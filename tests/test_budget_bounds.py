"""Budgets and the many-models summary read a bounded figure as the values it allows.

The rule is the baselines' (analyzer/bounded.py): exact v = [v, v], ≥ v = [v, ∞),
≤ v = [0, v], ≈ v = [0, ∞). A ``max-*`` budget is broken (its code, an error) only when
the smallest allowed value is over the limit, met (nothing) only when the largest is
within it, else BG091 (a warning); ``min-*`` the other way round. Every expectation
below is derived by hand from that rule, and an estimate prints ``≈`` wherever it shows.
"""

from __future__ import annotations

import re

import pytest

from model_analyze.model_budgets import KINDS, Budget, check
from model_analyze.report import DimInfo, Metric, ModelInfo, Report, Section

E, W = "error", "warning"


def _report(headline: str, value: float | bool, bound: str | None) -> Report:
    info = ModelInfo("m.onnx", "", 8, {"": 17}, 0, 0, [], [])
    metric = Metric(headline, headline, value, headline=headline, bound=bound)
    return Report(info, DimInfo(), [Section("x", "x", metrics=[metric])])


def _check(headline: str, value: float | bool, bound: str | None, key: str, limit: object) -> list[tuple[str, ...]]:
    return [(f.code, str(f.severity), f.message)
            for f in check(_report(headline, value, bound), [Budget(KINDS[key], limit)])]


# (headline, value, bound, budget, limit, code or None, severity, a fragment of the message)
MATRIX = [
    # exact 160 against max 100: 160 > 100, proven
    ("macs", 160, None, "max-macs", 100, "BG001", E, "MACs 160 > max-macs 100"),
    # exact 160 against max 200: met, nothing said
    ("macs", 160, None, "max-macs", 200, None, "", ""),
    # ≥ 160 = [160, ∞) against max 100: even the least value is over — proven broken
    ("macs", 160, "lower", "max-macs", 100, "BG001", E, "MACs ≥ 160 > max-macs 100"),
    # ≥ 160 against max 200: may be 300 — not proven met
    ("macs", 160, "lower", "max-macs", 200, "BG091", W, "max-macs not proven: MACs ≥ 160 (a lower bound) ≤ 200"),
    # ≤ 160 = [0, 160] against max 100: may be 50 — over the limit, but not proven broken
    ("macs", 160, "upper", "max-macs", 100, "BG091", W, "max-macs may be broken: MACs ≤ 160 (an upper bound) > 100"),
    # ≤ 160 against max 200: every allowed value is ≤ 200 — met
    ("macs", 160, "upper", "max-macs", 200, None, "", ""),
    # ≈ 160 = [0, ∞): neither side is proven
    ("macs", 160, "estimate", "max-macs", 100, "BG091", W, "may be broken: MACs ≈ 160 (an estimate) > 100"),
    ("macs", 160, "estimate", "max-macs", 200, "BG091", W, "not proven: MACs ≈ 160 (an estimate) ≤ 200"),
    # min-reach 64: ≤ 10 = [0, 10], all below 64 — proven broken
    ("reach", 10, "upper", "min-reach", 64, "BG010", E, "Reach ≤ 10 tokens < min-reach 64 tokens"),
    # ≥ 10 = [10, ∞) may be 100 — may be broken, not proven
    ("reach", 10, "lower", "min-reach", 64, "BG091", W, "min-reach may be broken: Reach ≥ 10 tokens (a lower bound) "
     "< 64 tokens"),
    # ≥ 100: every allowed value ≥ 64 — met
    ("reach", 100, "lower", "min-reach", 64, None, "", ""),
    # ≤ 100 may be 5 — not proven met
    ("reach", 100, "upper", "min-reach", 64, "BG091", W, "min-reach not proven: Reach ≤ 100 tokens (an upper bound) "
     "≥ 64 tokens"),
    ("reach", 100, "estimate", "min-reach", 64, "BG091", W, "Reach ≈ 100 tokens (an estimate) ≥ 64 tokens"),
    # coverage: an upper-bound "yes" is a perhaps — not proven; an exact yes is met; a no is broken
    ("coverage", True, "upper", "require-coverage", True, "BG091", W, "require-coverage not proven"),
    ("coverage", True, None, "require-coverage", True, None, "", ""),
    ("coverage", False, None, "require-coverage", True, "BG011", E, "does not see position 0"),
]


@pytest.mark.parametrize(("head", "value", "bound", "key", "limit", "code", "sev", "text"), MATRIX)
def test_budget_claims_only_what_the_bounds_prove(head, value, bound, key, limit, code, sev, text):
    found = _check(head, value, bound, key, limit)
    if code is None:
        assert found == []
        return
    assert [(c, s) for c, s, _ in found] == [(code, sev)], found
    assert text in found[0][2], found[0][2]


# The whole message of a broken max-macs. The exact digits follow in parentheses only where
# human-sizing rounded them (4,089,184,256 prints 4.09 G; 160 prints 160), and carry the
# figure's mark: a bare "(4,089,184,256 > …)" would read as an exact count.
WHOLE = [
    (160, None, 100, "MACs 160 > max-macs 100"),
    (160, "lower", 100, "MACs ≥ 160 > max-macs 100"),
    (4_089_184_256, None, 4_000_000_000, "MACs 4.09 G > max-macs 4 G (4,089,184,256 > 4,000,000,000)"),
    (4_089_184_256, "lower", 4_000_000_000, "MACs ≥ 4.09 G > max-macs 4 G (≥ 4,089,184,256 > 4,000,000,000)"),
    (4_089_184_256, "lower", 100, "MACs ≥ 4.09 G > max-macs 100 (≥ 4,089,184,256 > 100)"),
]


@pytest.mark.parametrize(("value", "bound", "limit", "message"), WHOLE)
def test_broken_budget_message_says_its_value_once_with_its_mark(value, bound, limit, message):
    assert _check("macs", value, bound, "max-macs", limit) == [("BG001", E, message)]


def test_an_estimate_reads_approximately_in_the_summary_and_the_budget(tmp_path, cli_run):
    """The model of test_row_bounds (an unknown op and an undecidable ``If`` whose branches
    differ). By hand: layers.0 MatMul [1,8]×[8,8] = 64 MACs, Mystery 0 (no cost rule: a
    lower bound), layers.1 MatMul on Mystery's shapeless output 0 (a lower bound), the If's
    costlier branch (a MatMul, 64 MACs, against Identity's 0: an upper bound), the head
    [1,8]×[8,4] = 32: 64 + 0 + 0 + 64 + 32 = 160 MACs, with both kinds of bound in it — an
    estimate, ≈ 160. So the summary row reads ``≈160`` (not a bare, exact-looking 160), and a
    ``max-macs`` of 100 is "may be broken" (BG091, a warning), never a proven BG001."""
    from test_row_bounds import _model

    for name in ("a", "b"):
        _model(str(tmp_path / f"{name}.onnx"))
    r = cli_run(tmp_path / "a.onnx", tmp_path / "b.onnx", "--isolated", "--budget", "max-macs=100")
    assert r.exit_code == 0, r.stdout + r.stderr
    summary = r.stdout[r.stdout.index("== Summary"):]
    for name in ("a", "b"):
        assert re.search(rf"^  {name} +≈160 +224 ", summary, re.M), summary
    assert "BG001" not in r.stdout
    assert r.stdout.count("warning BG091 budget max-macs may be broken: MACs ≈ 160 (an estimate) > 100") == 2
