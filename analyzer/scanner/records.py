"""One model's line of scan output, and the :class:`ScanResult` built back from it.

Why JSON and not pickles: a line is what ``scan`` writes (JSON Lines), what the cache
stores and what ``--resume`` reads, so one format round-trips through all three and a
line written by a worker on another machine reads the same here. A line is exactly the
multi-model JSON's entry (``render.summary.model_entry``) plus ``cached`` and ``key``.

The closing table of a scan over 100,000 models must not hold 100,000 full reports:
:func:`slim` keeps what the table, the verdict and the reasons read — headline metrics,
findings, the dims and failed sections — and drops tables, charts and data.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..batch import ModelResult
from ..report import Report

LINE_FIELDS = ("path", "status", "exit_code", "error", "fail_on", "config", "elapsed_s", "summary", "report",
               "cached", "key")


@dataclass
class ScanResult(ModelResult):
    """A :class:`~model_analyze.batch.ModelResult` of a scan: the report is the slim one (headline
    metrics, findings, dims); :meth:`data` is the full line with the complete report.

    A cached result keeps its line as the stored bytes and its slim report as unparsed JSON
    (:attr:`report_json`), built into :attr:`report` when something first reads it: a cached
    re-run that prints no table copies bytes and never rebuilds a report."""

    cached: bool = False
    """Taken from the cache (or from the ``--resume`` file) instead of analyzed in this run."""
    resumed: bool = False
    """Read from the ``--resume`` file, not run in this scan."""
    key: str | None = None
    raw: bytes = b""
    """The JSON line as written, UTF-8, no newline (emptied by callers that keep many results)."""
    report_json: bytes = b""
    """The slim report as JSON while it is not parsed yet (then :attr:`report` builds it)."""

    # A property over the base's ``report`` field (mypy allows only a field there); dataclass's
    # ``__init__`` assigns ``report`` through the setter, so construction is unchanged.
    @property  # type: ignore[misc]
    def report(self) -> Report | None:
        if self.report_json:
            text, self.report_json = self.report_json, b""
            data = json.loads(text)
            self.__dict__["_report"] = report_from_dict(data) if data else None
        return typing.cast("Report | None", self.__dict__.get("_report"))

    @report.setter
    def report(self, value: Report | None) -> None:
        self.__dict__["_report"] = value
        self.report_json = b""

    @property
    def line(self) -> str:
        """The JSON line as written (:attr:`raw` decoded)."""
        return self.raw.decode("utf-8")

    @line.setter
    def line(self, value: str) -> None:
        self.raw = value.encode("utf-8")

    def data(self) -> dict[str, Any]:
        """The full line: ``report`` is exactly the single-model JSON report."""
        return dict(json.loads(self.raw))

    def full_report(self) -> Report | None:
        """The complete :class:`Report` rebuilt from the line (None when there is none)."""
        entry = self.data()
        return report_from_dict(entry["report"]) if entry.get("report") else None


def line_of(entry: dict[str, Any]) -> str:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def stopped_entry(path: str, status: str, error: str, *, elapsed_s: float = 0.0, fail_on: str = "error",
                  config: list[str] | None = None) -> dict[str, Any]:
    """The line of a model that never produced a result (timeout, memory, crashed, or an error
    outside the analysis such as a URL that could not be fetched)."""
    return {"path": path, "status": status, "exit_code": 2, "error": error, "fail_on": fail_on,
            "config": list(config or []), "elapsed_s": round(elapsed_s, 4), "summary": {}, "report": None,
            "cached": False, "key": None}


SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
METRIC_KEEP = ("key", "label", "value", "unit", "formula", "headline", "bound")
"""What the table reads of a headline metric (``formula`` marks a value taken at default dims)."""


def slim(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with a report cut to what the summary table, the verdict and the reasons read: the
    headline metrics, the findings at or above ``fail_on`` and the worst one, failed sections, the
    dims. A fresh dict; ``entry`` is untouched."""
    out = {k: entry.get(k) for k in LINE_FIELDS if k != "report"}
    rep = entry.get("report")
    if not rep:
        out["report"] = None
        return out
    threshold = SEVERITY_RANK.get(str(entry.get("fail_on")), 3)
    every = [*rep.get("findings", []), *(f for s in rep.get("sections", []) for f in s.get("findings", []))]
    worst = max(every, key=lambda f: SEVERITY_RANK.get(f["severity"], 0), default=None)

    def keep(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: f[k] for k in ("code", "severity", "message", "source") if k in f} for f in findings
                if f is worst or SEVERITY_RANK.get(f["severity"], 0) >= threshold]

    sections = []
    for s in rep.get("sections", []):
        metrics = [{k: m[k] for k in METRIC_KEEP if k in m} for m in s.get("metrics", []) if m.get("headline")]
        findings = keep(s.get("findings", []))
        if metrics or findings or s.get("status") == "failed":
            sections.append({"analyzer": s["analyzer"], "title": s.get("title", ""), "status": s.get("status", "ok"),
                             "error": s.get("error"), "metrics": metrics, "findings": findings})
    model = {k: v for k, v in rep["model"].items() if k not in ("inputs", "outputs", "unknown_ops")}
    out["report"] = {"model": dict(model, inputs=[], outputs=[]), "dims": rep.get("dims", {}), "sections": sections,
                     "findings": keep(rep.get("findings", [])), "tool": rep.get("tool", "model-analyze"),
                     "version": rep.get("version", ""), "elapsed_s": rep.get("elapsed_s", 0.0)}
    return out


def result_from_entry(entry: dict[str, Any], line: str | bytes = "", report_json: bytes = b"") -> ScanResult:
    """A :class:`ScanResult` from a (slim or full) entry, or from an entry without its report
    and the slim report as JSON (``report_json``: parsed when the report is first read)."""
    report = report_from_dict(entry["report"]) if entry.get("report") else None
    status = entry.get("status", "error")
    return ScanResult(
        path=entry["path"], report=report, error=entry.get("error"), exit_code=int(entry.get("exit_code", 2)),
        fail_on=entry.get("fail_on") or "error", config=list(entry.get("config") or []),
        elapsed_s=float(entry.get("elapsed_s") or 0.0),
        outcome=status if status in ("timeout", "memory", "crashed") else None,
        cached=bool(entry.get("cached")), key=entry.get("key"),
        raw=line.encode("utf-8") if isinstance(line, str) else line, report_json=report_json)


def report_from_dict(data: dict[str, Any]) -> Report:
    """Rebuild a :class:`Report` from ``Report.to_dict()`` (the inverse, up to tuples → lists and
    non-finite floats, which the JSON already holds as strings)."""
    return typing.cast(Report, _build(Report, data))


def _build(tp: Any, value: Any) -> Any:
    return _plan(tp)(value)


Plan = Callable[[Any], Any]
_PLANS: dict[Any, Plan] = {}


def _plan(tp: Any) -> Plan:
    """How to turn JSON into a value of type ``tp``, worked out once per type (a report has
    hundreds of values; asking ``typing`` about each was most of a cached scan's time)."""
    plan = _PLANS.get(tp)
    if plan is None:
        inner = _make_plan(tp)
        plan = _PLANS[tp] = inner if inner is _same else (lambda v: None if v is None else inner(v))
    return plan


def _same(value: Any) -> Any:
    return value


def _make_plan(tp: Any) -> Plan:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        for option in options:
            if dataclasses.is_dataclass(option):
                sub = _plan(option)
                return lambda v: sub(v) if isinstance(v, dict) else v
        for option in options:
            if isinstance(option, type) and issubclass(option, enum.Enum):
                return _plan(option)
        return _same
    if origin is list:
        (arg,) = typing.get_args(tp) or (Any,)
        sub = _plan(arg)
        return _same if sub is _same else (lambda v: [sub(x) for x in v])
    if origin is dict:
        args = typing.get_args(tp)
        sub = _plan(args[1] if len(args) == 2 else Any)
        return _same if sub is _same else (lambda v: {k: sub(x) for k, x in v.items()})
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        fields = [(f.name, _plan(hints[f.name])) for f in dataclasses.fields(tp) if f.init]
        cls = tp
        return lambda v: cls(**{name: sub(v[name]) for name, sub in fields if name in v})
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        enum_int = tp
        return lambda v: enum_int[str(v).upper()]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp
    return _same


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(tp: type) -> dict[str, Any]:
    """The fields' types; a name imported only for type checkers (``DataclassInstance``) reads as Any."""
    if tp not in _HINTS:
        unknown: dict[str, Any] = {}
        for _ in range(20):
            try:
                _HINTS[tp] = typing.get_type_hints(tp, localns=unknown)
                break
            except NameError as exc:
                if not exc.name or exc.name in unknown:
                    raise
                unknown[exc.name] = Any
        else:
            raise TypeError(f"cannot resolve the field types of {tp.__name__}")
    return _HINTS[tp]
