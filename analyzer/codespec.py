"""A finding code and the selector grammar (``AT``, ``AT0``, ``AT030``), on their own.

Why a module of its own: everything that emits findings declares its codes with
:class:`Code` (budgets, baselines, every analyzer), while :mod:`.codes` gathers all of
them into the registry — so the type lives here, below both, and the registry can import
the modules that declare codes without an import cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .severity import Severity

CODE_RE = re.compile(r"^([A-Z]{1,4})([0-9]{3})$")
SELECTOR_RE = re.compile(r"^([A-Z]{1,4})([0-9]{0,3})$")


@dataclass(frozen=True)
class Code:
    """One finding code, documented once."""

    code: str
    name: str
    """Short kebab-case name (``reach-below-context``), shown next to the code."""
    severity: Severity
    """Default severity; ``severity = { CODE = "error" }`` in the config re-grades it."""
    summary: str
    """One line: what the finding says (the README table, SARIF ``shortDescription``)."""
    explanation: str
    """Why it matters and how the analysis decides it (SARIF ``fullDescription``)."""
    fix: str
    """What to do about it."""
    example: str
    """A message as the tool prints it."""
    source: str = "core"
    """``core`` or the plugin that registered it (set by :func:`registry`)."""
    action: str = "fix"
    """What the user can do about it, so the verdict's "next" row names the most actionable
    finding, not merely the first warning: ``fix`` the model, its export or deployment
    (or the config) should change; ``bind`` rerun with the real sizes or options; ``extend``
    the analyzer lacks a rule — a plugin (or a bug report) fills it; ``none`` nothing to do,
    a fact for the review (a missing weights file the analysis never reads)."""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"{self.code}: action {self.action!r} is not one of {', '.join(ACTIONS)}")


ACTION_TEXT = {"fix": "change the model, its export or the config", "bind": "rerun with the real sizes or options",
               "extend": "a rule is missing: a plugin (or a bug report) adds it", "none": "nothing to do"}
ACTIONS = tuple(ACTION_TEXT)
""":attr:`Code.action` values, most actionable first (the verdict's order)."""


def _split(text: str) -> tuple[str, str]:
    m = SELECTOR_RE.match(text)
    if not m:
        raise ValueError(text)
    return m.group(1), m.group(2)


def is_selector(text: str) -> bool:
    """``AT``, ``AT0``, ``AT030`` — the shape of a code or code prefix (not whether it exists)."""
    return SELECTOR_RE.match(text) is not None


def matches(selector: str, code: str) -> bool:
    """``AT`` matches ``AT030``; ``A`` matches neither ``AT030`` nor ``AR001``."""
    try:
        sl, sd = _split(selector)
        cl, cd = _split(code)
    except ValueError:
        return False
    return sl == cl and cd.startswith(sd)


def specificity(selector: str) -> int:
    """Longer selectors are more specific (``AT030`` beats ``AT``), as in ruff."""
    return len(selector)
