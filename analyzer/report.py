"""The report model: what every analyzer produces and every renderer consumes.

Plain dataclasses, so a plugin author can build a :class:`Section` without
learning a framework, and ``to_dict`` gives the JSON form validated against
``schema/report.schema.json``.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any


class Severity(enum.IntEnum):
    """Ordered so that thresholds compare naturally (``sev >= Severity.WARNING``)."""

    INFO = 0
    WARNING = 1
    ERROR = 2

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.strip().upper()]


class Status(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class NodeRef:
    """Where a finding points: a node (by its ONNX name) or a tensor."""

    name: str
    op_type: str = ""
    graph: str = ""
    """Empty for the main graph, else the path of the subgraph (``If_3/then_branch``)."""
    tensor: str = ""

    def __str__(self) -> str:
        where = f"{self.graph}/" if self.graph else ""
        label = f"{where}{self.name}"
        if self.op_type:
            label += f" ({self.op_type})"
        if self.tensor:
            label += f" tensor {self.tensor!r}"
        return label


@dataclass
class Finding:
    """One observation with a stable code (documented in the README)."""

    code: str
    severity: Severity
    message: str
    node: NodeRef | None = None
    source: str = "core"


@dataclass(frozen=True)
class Headline:
    """A well-known quantity that several consumers read without knowing who computed it.

    Why: the verdict block, the multi-model summary table and budgets all need "the
    model's MACs" or "its reach"; the core must not know which analyzer produces them.
    An analyzer marks the metric that answers one of these with ``Metric.headline``.
    """

    key: str
    label: str
    unit: str
    """``MAC``, ``FLOP``, ``B``, ``tokens``, ``px`` or ``""`` (a count or yes/no)."""
    better: str
    """``lower`` (a cost), ``higher`` (what the model sees) or ``""``."""
    description: str


HEADLINES: dict[str, Headline] = {h.key: h for h in (
    Headline("macs", "MACs", "MAC", "lower", "multiply-accumulates at the report's binding"),
    Headline("flops", "FLOPs", "FLOP", "lower", "floating-point operations (dense) at the binding"),
    Headline("attention_flops", "Attention FLOPs", "FLOP", "lower", "QKᵀ and AV FLOPs (dense) at the binding"),
    Headline("params", "Parameters", "", "lower", "trained parameters (each stored tensor once)"),
    Headline("weight_bytes", "Weight bytes", "B", "lower", "bytes of the parameters as stored"),
    Headline("peak_activation", "Peak activation memory", "B", "lower",
             "largest sum of live activations (unfused) at the binding"),
    Headline("reach", "Reach", "tokens", "higher", "input positions the last output position depends on"),
    Headline("coverage", "Covers context", "", "higher", "the last position sees the first at the binding"),
    Headline("receptive_field", "Receptive field", "px", "higher", "receptive field of the final feature map"),
)}


@dataclass
class Metric:
    """A single number (or short value) with its definition key from METRICS.md."""

    key: str
    label: str
    value: int | float | str | bool | None
    unit: str = ""
    formula: str | None = None
    """The symbolic form when the value depends on dims (``2·seq² + 5·seq``)."""
    note: str = ""
    headline: str | None = None
    """Key of :data:`HEADLINES` this metric answers (at most one metric per key per report)."""
    bound: str | None = None
    """``lower`` when the value is only a lower bound (uncosted nodes), ``upper`` when an
    upper bound, ``estimate`` when it is neither (both kinds of bound are in it); ``None``
    when exact."""


@dataclass
class Column:
    key: str
    label: str
    align: str = "left"


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    note: str = ""


@dataclass
class Section:
    """The part of the report one analyzer owns."""

    analyzer: str
    title: str
    status: Status = Status.OK
    summary: str = ""
    metrics: list[Metric] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    """Structured, analyzer-specific payload for JSON consumers."""
    error: str | None = None
    elapsed_s: float = 0.0

    def metric(self, key: str) -> Metric | None:
        return next((m for m in self.metrics if m.key == key), None)

    def table(self, key: str) -> Table | None:
        return next((t for t in self.tables if t.key == key), None)

    def add(self, code: str, severity: Severity, message: str, node: NodeRef | None = None) -> None:
        self.findings.append(Finding(code, severity, message, node, self.analyzer))


@dataclass
class TensorSummary:
    name: str
    dtype: str
    shape: list[str]


@dataclass
class ModelInfo:
    path: str
    producer: str
    ir_version: int
    opsets: dict[str, int]
    nodes: int
    initializers: int
    inputs: list[TensorSummary]
    outputs: list[TensorSummary]
    file_bytes: int = 0
    unknown_ops: dict[str, int] = field(default_factory=dict)
    """``domain::op_type`` → node count for ops no rule knows (treated conservatively)."""


@dataclass
class DimInfo:
    """Which dim bindings the numbers use: always stated, never implied."""

    bound: dict[str, int] = field(default_factory=dict)
    """Bound by the user (``--dim``, ``--seq-len``, ``--input-shape``)."""
    defaults: dict[str, int] = field(default_factory=dict)
    """Free dims given a stated default value to print concrete numbers."""
    free: list[str] = field(default_factory=list)
    """Dims of the model that no binding fixed."""
    input_shapes: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class Report:
    model: ModelInfo
    dims: DimInfo
    sections: list[Section] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    """Core findings: loading, structure, shapes."""
    tool: str = "model-analyze"
    version: str = ""
    elapsed_s: float = 0.0

    def all_findings(self) -> list[Finding]:
        out = list(self.findings)
        for s in self.sections:
            out.extend(s.findings)
        return out

    def section(self, analyzer: str) -> Section | None:
        return next((s for s in self.sections if s.analyzer == analyzer), None)

    def headline(self, key: str) -> Metric | None:
        """The metric that answers headline ``key`` (see :data:`HEADLINES`), if any analyzer gave one."""
        for s in self.sections:
            for m in s.metrics:
                if m.headline == key:
                    return m
        return None

    def max_severity(self) -> Severity | None:
        sev = [f.severity for f in self.all_findings()]
        return max(sev) if sev else None

    def failed_sections(self) -> list[Section]:
        return [s for s in self.sections if s.status is Status.FAILED]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(obj: Any) -> Any:
    """Enums → their names, tuples → lists, non-finite floats → strings."""
    if isinstance(obj, Severity):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return str(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
