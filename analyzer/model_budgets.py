"""Budgets: limits a model must meet at the report's binding, each violation a finding.

A review step says "fail if MACs > 40 G at seq 4096" or "fail if the reach is below
8192". Budgets read the report only through headline metrics (``Report.headline``),
so they know no analyzer by name and a plugin that marks a headline is budgeted too.

Every budget key has its own code (``BG001`` for ``max-macs`` …), error by default,
and the message gives the measured value, the allowed one and the binding. A budget
whose metric this report does not have (``min-reach`` on a CNN) is skipped and said
(``BG090``, info). A figure that is only a bound is read as the values it allows
(:mod:`.bounded`, the rule baselines use): the budget's error only when every one of them
breaks the limit, nothing only when every one meets it, else a warning (``BG091``) — a
lower-bound MAC count under a ``max-macs`` is not a pass, an estimate (``≈``) or an upper
bound over it is "may be broken", never a proven failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .bounded import WHAT, span
from .codespec import Code
from .report import HEADLINES, Finding, Metric, NodeRef, Report, Severity
from .units import parse_quantity


@dataclass(frozen=True)
class BudgetKind:
    key: str
    code: str
    headline: str | None
    """Headline metric it limits (``None`` for op and domain lists)."""
    limit: str
    """``max``, ``min``, ``require``, ``ops`` or ``domains``."""
    unit: str = ""
    """``B`` when values may be written in bytes (``"4GiB"``)."""


KINDS: dict[str, BudgetKind] = {k.key: k for k in (
    BudgetKind("max-macs", "BG001", "macs", "max"),
    BudgetKind("max-flops", "BG002", "flops", "max"),
    BudgetKind("max-attention-flops", "BG003", "attention_flops", "max"),
    BudgetKind("max-params", "BG004", "params", "max"),
    BudgetKind("max-weight-bytes", "BG005", "weight_bytes", "max", "B"),
    BudgetKind("max-peak-activation", "BG006", "peak_activation", "max", "B"),
    BudgetKind("min-reach", "BG010", "reach", "min"),
    BudgetKind("require-coverage", "BG011", "coverage", "require"),
    BudgetKind("min-receptive-field", "BG012", "receptive_field", "min"),
    BudgetKind("forbid-ops", "BG020", None, "ops"),
    BudgetKind("allowed-domains", "BG021", None, "domains"),
)}

W, E, I = Severity.WARNING, Severity.ERROR, Severity.INFO  # noqa: E741


def _limit_code(kind: BudgetKind, what: str, fix: str, example: str) -> Code:
    return Code(kind.code, kind.key.replace("max-", "over-").replace("min-", "under-"), E,
                f"budget `{kind.key}` violated: {what}",
                f"`{kind.key}` in the config's budgets (or `--budget {kind.key}=...`) sets a limit the model must "
                f"meet at the report's binding, and this model breaks it ({what}). The message gives the measured "
                "and the allowed value.",
                fix, example)


CODES: tuple[Code, ...] = (
    _limit_code(KINDS["max-macs"], "MACs above the limit",
                "Shrink the model or the binding, or raise the budget if the cost is intended.",
                "MACs 29.6 G > max-macs 20 G (29,583,704,064 > 20,000,000,000) at seq=4096"),
    _limit_code(KINDS["max-flops"], "FLOPs (dense) above the limit",
                "Shrink the model or the binding, or raise the budget.",
                "FLOPs 59.2 G > max-flops 40 G (59,170,000,000 > 40,000,000,000) at seq=4096"),
    _limit_code(KINDS["max-attention-flops"], "attention FLOPs (QKᵀ + AV, dense) above the limit",
                "Use a shorter length, fewer heads or a windowed/sparse mask, or raise the budget.",
                "Attention FLOPs 563 T > max-attention-flops 100 T at seq=32768"),
    _limit_code(KINDS["max-params"], "parameters above the limit",
                "Use a smaller model, or raise the budget.",
                "Parameters 7.24 G > max-params 7 G (7,241,732,096 > 7,000,000,000)"),
    _limit_code(KINDS["max-weight-bytes"], "bytes of stored parameters above the limit",
                "Quantize (int8/int4 weights) or use a smaller model, or raise the budget.",
                "Weight bytes 29 GB > max-weight-bytes 16 GiB (28,966,928,384 > 17,179,869,184)"),
    _limit_code(KINDS["max-peak-activation"], "peak activation memory above the limit",
                "Use a shorter length or batch, a fused attention kernel, or raise the budget.",
                "Peak activation memory 4.47 TB > max-peak-activation 4 GiB at seq=131072"),
    _limit_code(KINDS["min-reach"], "the last position's reach below the limit",
                "Use more layers or wider windows, or lower the requirement.",
                "Reach 1,906 tokens < min-reach 2,048 at seq=2048"),
    Code("BG011", "coverage-required", E, "budget `require-coverage` violated: the last position does not see the "
         "first at the binding",
         "`require-coverage = true` asks that the last position's reach include position 0 at the bound "
         "sequence length (the model relates the first and the last token).",
         "Deploy at a length the model covers, or add layers / widen windows.",
         "the last position does not see position 0 (require-coverage) at seq=2048"),
    _limit_code(KINDS["min-receptive-field"], "receptive field of the final map below the limit",
                "Add depth, stride or dilation, or lower the requirement.",
                "Receptive field 26 px < min-receptive-field 64 px"),
    Code("BG020", "forbidden-op", E, "budget `forbid-ops` violated: the model uses a forbidden op",
         "`forbid-ops` lists ops the deployment runtime must never see (`Loop`, `com.microsoft::Attention`); "
         "an op name without a domain matches it in any domain.",
         "Re-export without the op (or decompose it), or remove it from the list.",
         "forbidden op Loop used by 1 node (first: /decoder/Loop)"),
    Code("BG021", "domain-not-allowed", E, "budget `allowed-domains` violated: an op from another domain",
         "`allowed-domains` lists the op domains the runtime supports (`ai.onnx` is the default domain, also "
         "written \"\"); a node of any other domain is a violation.",
         "Re-export with standard ops only, or add the domain to the list.",
         "op domain com.microsoft not in allowed-domains (ai.onnx): 24 nodes, e.g. Attention /layers.0/Attention"),
    Code("BG090", "budget-not-checked", I, "a budget was not checked: the report has no such metric",
         "The budget's metric is missing from this report — the model has no attention layers for `min-reach`, "
         "no conv/pool map for `min-receptive-field`, the analyzer that computes it was not selected, or the "
         "value is not a number at the binding. A budget is skipped for such a model, and said.",
         "Nothing, or move the budget into an override whose `paths` match only the models it is for.",
         "budget min-reach not checked: this report has no reach (no analyzer reported one)", action="none"),
    Code("BG091", "budget-not-proven", W, "a budget neither proven met nor proven broken: the figure is only a bound",
         "The metric is only a bound, read as the values it allows (as baselines read it): `≥ v` (uncosted "
         "nodes) is v or more, `≤ v` (the costlier branch of an undecided If, a perhaps-reach) is v or less, "
         "`≈ v` (both kinds in one total) is unknown. A budget is an error only when every allowed value breaks "
         "it (`≥ 50 G` over `max-macs 40G`) and passes silently only when every allowed value meets it; else "
         "this warning says on which side the figure is: `may be broken` (`≤ 50 G` or `≈ 50 G` over 40 G) or "
         "`not proven` (`≥ 3.1 G` under 40 G).",
         "Bind the free dims, resolve the uncosted nodes (HS001/HS002) or the undecided If (HS003) so the "
         "value is exact.",
         "budget max-macs may be broken: MACs ≈ 50 G (an estimate) > 40 G", action="bind"),
)


@dataclass(frozen=True)
class Budget:
    kind: BudgetKind
    value: Any
    """An int (limits), a bool (require-coverage) or a list of strings (ops, domains)."""
    source: str = ""
    """Where it was set (``pyproject.toml overrides[1]``, ``--budget``)."""


def parse_budget(key: str, value: Any) -> Any:
    """Validate one budget value; raises ``ValueError`` with the expected form."""
    kind = KINDS.get(key)
    if kind is None:
        import difflib

        close = difflib.get_close_matches(key, list(KINDS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"a known budget{hint}: {', '.join(KINDS)}; {key!r} is not one")
    if kind.limit == "require":
        if not isinstance(value, bool):
            raise ValueError(f"{key}: true or false")
        return value
    if kind.limit in ("ops", "domains"):
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise ValueError(f"{key}: a list of strings")
        return [x.strip() for x in value]
    try:
        return parse_quantity(value, unit=kind.unit)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def parse_budgets(table: dict[str, Any]) -> dict[str, Any]:
    return {k: parse_budget(k, v) for k, v in table.items()}


def parse_budget_option(spec: str) -> tuple[str, Any]:
    """``--budget max-macs=40G`` / ``forbid-ops=Loop,If`` / ``require-coverage=true``."""
    key, sep, text = spec.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError("expected KEY=VALUE, e.g. --budget max-macs=40G")
    kind = KINDS.get(key)
    value: Any = text.strip()
    if kind is not None and kind.limit == "require":
        low = value.lower()
        if low not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{key}: true or false, got {text!r}")
        value = low in ("true", "1", "yes")
    elif kind is not None and kind.limit in ("ops", "domains"):
        value = [v for v in (x.strip() for x in value.split(",")) if v or kind.limit == "domains"]
    return key, parse_budget(key, value)


def _fmt(metric: Metric, value: Any) -> str:
    from .render import SIZE_UNITS, human

    if isinstance(value, bool):
        return "yes" if value else "no"
    unit = metric.unit if metric.unit in SIZE_UNITS else ""
    return human(value, unit)


def _binding(report: Report) -> str:
    d = report.dims
    parts = [f"{k}={v}" for k, v in d.bound.items()] + [f"{k}={v} (default)" for k, v in d.defaults.items()]
    return f" at {', '.join(parts)}" if parts else ""


def _where(b: Budget) -> str:
    return f" [{b.source}]" if b.source else ""


def check(report: Report, budgets: Iterable[Budget],
          nodes: Iterable[tuple[str, str, NodeRef]] = ()) -> list[Finding]:
    """Findings for ``report`` against ``budgets``; ``nodes`` are (domain, op_type, ref) of every node."""
    out: list[Finding] = []
    node_list: list[tuple[str, str, NodeRef]] | None = None
    at = _binding(report)
    for b in budgets:
        kind = b.kind
        if kind.limit in ("ops", "domains"):
            if node_list is None:
                node_list = list(nodes)
            out.extend(_check_ops(b, node_list) if kind.limit == "ops" else _check_domains(b, node_list))
            continue
        head = HEADLINES[kind.headline] if kind.headline else None
        metric = report.headline(kind.headline) if kind.headline else None
        label = head.label if head else kind.key
        value = metric.value if metric is not None else None
        if metric is None or value is None or (kind.limit != "require" and (
                isinstance(value, bool) or not isinstance(value, (int, float)))):
            why = (f"this report has no {label.lower()} (no analyzer reported one)" if metric is None
                   else f"{label} is not a number at the binding ({value!r})")
            out.append(Finding("BG090", I, f"budget {kind.key} not checked: {why}{_where(b)}", source="budgets"))
            continue
        if kind.limit == "require":
            if b.value and value is not True:
                out.append(Finding(kind.code, E, f"the last position does not see position 0 ({kind.key}){at}"
                                   f"{_where(b)}", source="budgets"))
            elif b.value and metric.bound in ("upper", "estimate"):  # a "perhaps" yes proves nothing
                out.append(Finding("BG091", W, f"budget {kind.key} not proven: the last position perhaps sees "
                                   f"position 0 ({WHAT[metric.bound]}){at}{_where(b)}", source="budgets"))
            continue
        if isinstance(value, (int, float)):  # a number here (checked above); said again for the types
            out.extend(_check_limit(b, label, metric, value, at))
    return out


def _check_limit(b: Budget, label: str, metric: Metric, value: float, at: str) -> list[Finding]:
    """A ``max-*``/``min-*`` budget against a figure read as the values its bound allows
    (:mod:`.bounded`: ``≥ v`` is ``[v, ∞)``, ``≤ v`` is ``[0, v]``, ``≈ v`` is unknown). Broken
    (the budget's code, an error) only when every allowed value breaks the limit, met (nothing)
    only when every allowed value meets it; otherwise BG091, a warning that says which side the
    figure is on (``may be broken`` past the limit, ``not proven`` within it)."""
    from .render import mark

    kind, allowed = b.kind, b.value
    shown, limit = _fmt(metric, value), _fmt(metric, allowed)
    most = kind.limit == "max"
    allows = span(value, metric.bound)
    if (allows.lo > allowed) if most else (allows.hi < allowed):
        # The exact digits only where human-sizing rounded them away (4.09 G), with the same mark:
        # repeating "160 > 100" adds nothing, and a bare "(160 > 100)" would read as exact.
        rounded = isinstance(value, int) and (shown != f"{value:,}" or limit != f"{allowed:,}")
        exact = f" ({mark(metric.bound)}{value:,} {'>' if most else '<'} {allowed:,})" if rounded else ""
        return [Finding(kind.code, E, f"{label} {mark(metric.bound)}{shown} {'>' if most else '<'} {kind.key} "
                        f"{limit}{exact}{at}{_where(b)}", source="budgets")]
    if (allows.hi <= allowed) if most else (allows.lo >= allowed):
        return []
    past = value > allowed if most else value < allowed
    rel = (">" if most else "<") if past else ("≤" if most else "≥")
    verdict = "may be broken" if past else "not proven"
    return [Finding("BG091", W, f"budget {kind.key} {verdict}: {label} {mark(metric.bound)}{shown} "
                    f"({WHAT.get(metric.bound or '', 'a bound')}) {rel} {limit}{at}{_where(b)}", source="budgets")]


def _op_key(domain: str, op_type: str) -> str:
    return f"{domain}::{op_type}" if domain not in ("", "ai.onnx") else op_type


def _check_ops(b: Budget, nodes: list[tuple[str, str, NodeRef]]) -> list[Finding]:
    out = []
    for pattern in b.value:
        dom, sep, op = pattern.rpartition("::")
        want = "" if dom == "ai.onnx" else dom
        hits = [ref for d, t, ref in nodes
                if t == (op if sep else pattern) and (not sep or ("" if d == "ai.onnx" else d) == want)]
        if hits:
            n = len(hits)
            key = _op_key(dom, op) if sep else pattern
            out.append(Finding("BG020", E, f"forbidden op {key} used by {n} node{'s' if n > 1 else ''} "
                               f"(first: {hits[0].name}){_where(b)}", hits[0], source="budgets"))
    return out


def _check_domains(b: Budget, nodes: list[tuple[str, str, NodeRef]]) -> list[Finding]:
    allowed = {("" if d == "ai.onnx" else d) for d in b.value}
    bad: dict[str, list[tuple[str, NodeRef]]] = {}
    for d, t, ref in nodes:
        d = "" if d == "ai.onnx" else d
        if d not in allowed:
            bad.setdefault(d, []).append((t, ref))
    out = []
    shown = ", ".join(sorted(d or "ai.onnx" for d in allowed)) or "none"
    for d, hits in sorted(bad.items()):
        t, ref = hits[0]
        out.append(Finding("BG021", E, f"op domain {d or 'ai.onnx'} not in allowed-domains ({shown}): "
                           f"{len(hits)} node{'s' if len(hits) > 1 else ''}, e.g. {t} {ref.name}{_where(b)}", ref,
                           source="budgets"))
    return out
