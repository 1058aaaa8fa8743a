"""One failure policy for every rule (shape, token flow, cost) and core service.

Why: a rule that raises must never sink the analysis, but it must never pass silently
either — a swallowed shape rule used to leave a tensor unknown (or worse, let onnx's
inference fill in a shape our rule failed on) and nobody knew. Every engine catches a
rule's exception, applies its *conservative* fallback (shape unknown, every position
mixed, node uncosted) and records a :class:`RuleFailure` naming the op, the node and the
rule; the analysis it affects turns each into an error finding (``R001``–``R003``).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KINDS = {"shape": "R001", "flow": "R002", "cost": "R003"}
"""Finding code of a raising rule of each kind."""


@dataclass(frozen=True)
class RuleFailure:
    """A rule that raised on one node; the engine used its conservative fallback."""

    kind: str
    """``shape``, ``flow`` or ``cost`` (or the name of a core service)."""
    op: str
    """``domain::op_type`` (plain ``op_type`` for the default domain)."""
    node: str
    """The node's name (its id when unnamed)."""
    graph: str
    """Empty for the main graph, else the body's path."""
    rule: str
    """The rule function (``module.qualname``)."""
    error: str
    """``ExceptionType: message at file:line``."""

    @property
    def code(self) -> str:
        return KINDS.get(self.kind, "R001")

    def message(self, fallback: str) -> str:
        return (f"{self.kind} rule {self.rule} raised on {self.op} node {self.node!r}: {self.error}; "
                f"{fallback}")


def rule_name(fn: Callable[..., Any] | None) -> str:
    if fn is None:
        return "?"
    module = getattr(fn, "__module__", "") or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}.{name}" if module else name


def describe(exc: BaseException) -> str:
    """``TypeError: message at rules.py:42`` — enough to find and fix the rule."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def failure(kind: str, node: Any, fn: Callable[..., Any] | None, exc: BaseException) -> RuleFailure:
    """A :class:`RuleFailure` for ``node`` (a ``graph.Node``) whose rule ``fn`` raised ``exc``."""
    op = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
    return RuleFailure(kind, op, node.name or node.id, node.graph.path, rule_name(fn), describe(exc))
