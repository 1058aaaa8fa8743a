"""The report model: what every analyzer produces and every renderer consumes.

Plain dataclasses, so a plugin author can build a :class:`Section` without
learning a framework, and ``to_dict`` gives the JSON form validated against
``schema/report.schema.json``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import TYPE_CHECKING, Generic, TypeAlias, TypeVar

from .severity import Severity as Severity  # re-exported: every report user reads it here
from .severity import Status as Status

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

JSON: TypeAlias = str | int | float | bool | list["JSON"] | dict[str, "JSON"] | None
"""A JSON value, as the JSON report writes it."""


_Item = TypeVar("_Item")
_Row: TypeAlias = dict[str, JSON]


class Rows(Generic[_Item]):
    """A list of JSON rows made when read — one per node or tensor of the model — instead
    of held: a 1M-node graph's per-node rows are 0.45 GB of dicts a text report never
    reads. ``row(item)`` must depend only on the item (computed the same on every read).
    Equal to the list it reads as; copied, pickled and written to JSON as that list."""

    __slots__ = ("_items", "_row")

    def __init__(self, items: Sequence[_Item], row: Callable[[_Item], _Row]) -> None:
        self._items, self._row = items, row

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> _Row:
        return self._row(self._items[i])

    def __iter__(self) -> Iterator[_Row]:
        return map(self._row, self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, Rows)) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Rows({len(self)} rows)"

    def __deepcopy__(self, memo: dict[int, object]) -> Rows[_Item]:
        return self  # rows are made afresh on each read: nothing to copy (dataclasses.asdict asks)

    def __reduce__(self) -> tuple[type[list[_Row]], tuple[list[_Row]]]:
        return (list, (list(self),))


Cell: TypeAlias = str | int | float | bool | None
"""One table cell (renderers format numbers; ``None`` prints as ``-``)."""


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


UNITS: dict[str, str] = {
    "MAC": "multiply-accumulates",
    "FLOP": "floating-point operations",
    "B": "bytes",
    "FLOP/B": "FLOPs per byte moved",
    "tokens": "sequence positions",
    "px": "input positions along an image axis (pixels; voxels or frames along a 3-D input's D)",
    "samples": "input positions along a raw 1-D signal (audio samples)",
    "positions": "input positions along another 1-D axis (feature frames, time steps)",
    "count": "a number of things (parameters, nodes, layers)",
    "%": "a percentage",
    "bool": "yes or no",
    "text": "a short description",
    "s": "seconds",
    "tokens/s": "tokens per second",
}
"""Every metric's unit is one of these (the JSON schema enforces it)."""

DOC = "docs/metrics.md"
"""Where every printed number is defined; a metric's ``doc`` is an anchor in it."""


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
    """One of :data:`UNITS`."""
    better: str
    """``lower`` (a cost), ``higher`` (what the model sees) or ``""``."""
    description: str
    short: str = "{}"
    """How the verdict prints it: ``{}`` is the value (``"{} MACs"`` → ``33.5 T MACs``)."""


HEADLINES: dict[str, Headline] = {h.key: h for h in (
    Headline("macs", "MACs", "MAC", "lower", "multiply-accumulates at the report's binding", "{} MACs"),
    Headline("flops", "FLOPs", "FLOP", "lower", "floating-point operations (dense) at the binding", "{} FLOPs"),
    Headline("attention_flops", "Attention FLOPs", "FLOP", "lower", "QKᵀ and AV FLOPs (dense) at the binding",
             "{} attention FLOPs"),
    Headline("params", "Parameters", "count", "lower", "trained parameters (each stored tensor once)",
             "{} params"),
    Headline("weight_bytes", "Weight bytes", "B", "lower", "bytes of the parameters as stored", "{} weights"),
    Headline("peak_activation", "Peak activation memory", "B", "lower",
             "largest sum of live activations (unfused) at the binding", "peak activations {}"),
    Headline("peak_tensor", "Peak dominated by", "text", "",
             "the tensors that make up most of the peak, and whether a fused kernel avoids them", "{}"),
    Headline("reach", "Reach", "tokens", "higher", "input positions the last output position depends on",
             "reach {}"),
    Headline("coverage", "Covers context", "bool", "higher", "the last position sees the first at the binding",
             "covers the context: {}"),
    Headline("receptive_field", "Receptive field", "px", "higher", "receptive field of the final feature map",
             "RF {}"),
    Headline("attention", "Attention", "text", "", "attention layers and their mask families", "{}"),
    Headline("hotspot", "Top hotspot", "text", "", "where most of the FLOPs go at the binding", "{}"),
    Headline("kv_cache_bytes", "KV cache", "B", "lower", "KV cache at the bound context length and batch",
             "KV cache {}"),
    Headline("decode_time_bound", "Decode step", "s", "lower",
             "one decode step's time on the chosen --device: a lower bound from exact or lower-bound work "
             "(an estimate when the work is only an upper bound or an estimate)", "decode step {}"),
)}


@dataclass
class Point:
    """One bar or point: its label (an x category or a layer name) and value."""

    label: str
    value: float | int | None
    detail: str = ""
    """Shown on hover / in the full list (the node's op, its full name)."""


@dataclass
class Series:
    name: str
    points: list[Point] = field(default_factory=list)


@dataclass
class Chart:
    """A chart a section asks for; every renderer that draws charts draws it the same way.

    Why: charts belong to the analyzer that knows what is worth plotting; a renderer
    must draw a plugin's chart without knowing the plugin. ``bar``: one bar per point
    (first series); ``line``: points in order (x = the point's position, labelled);
    ``heatmap``: one row per series, one cell per point (value in [0, 1])."""

    key: str
    kind: str
    """``bar``, ``line`` or ``heatmap``."""
    title: str
    x_label: str
    y_label: str
    x_unit: str = ""
    y_unit: str = ""
    series: list[Series] = field(default_factory=list)
    more: int = 0
    """Points left out of the chart (shown in a list next to it, or in the JSON)."""
    more_note: str = ""
    log_y: bool = False
    note: str = ""


@dataclass
class Metric:
    """A single number (or short value), its unit, and where it is defined."""

    key: str
    label: str
    value: int | float | str | bool | None
    unit: str = ""
    """One of :data:`UNITS` (``""`` is read as ``count`` for numbers, ``text``/``bool`` otherwise)."""
    formula: str | None = None
    """The symbolic form when the value depends on dims, readable (``2·seq² + 5·seq``)."""
    note: str = ""
    headline: str | None = None
    """Key of :data:`HEADLINES` this metric answers (at most one metric per key per report)."""
    bound: str | None = None
    """``lower`` when the value is only a lower bound (uncosted nodes), ``upper`` when an
    upper bound, ``estimate`` when it is neither (both kinds of bound are in it); ``None``
    when exact."""
    description: str = ""
    """What the number is, in one line (the headline's description when empty)."""
    doc: str = ""
    """Its definition: :data:`DOC` and an anchor (``docs/metrics.md#hotspots-macs``); the
    runner fills ``<analyzer>-<key>`` when the analyzer leaves it empty."""
    expr: str | None = None
    """Machine-readable formula (``7110393856*seq + 262144*seq**2``)."""
    valid_for: dict[str, list[int | None]] | None = None
    """Where ``expr`` holds, per dim ``[lo, hi]`` (``None`` = unbounded); None = everywhere."""
    below: str = ""
    """What holds outside ``valid_for`` (e.g. ``causal``)."""

    def __post_init__(self) -> None:
        head = HEADLINES.get(self.headline or "")
        if not self.unit:
            self.unit = head.unit if head else ("bool" if isinstance(self.value, bool) else
                                                "text" if isinstance(self.value, str) else "count")
        if not self.description and head:
            self.description = head.description


def anchor(analyzer: str, key: str) -> str:
    """``hotspots``, ``memory.peak`` → ``hotspots-memory-peak`` (a Markdown heading's anchor)."""
    return f"{analyzer}-{key}".replace(".", "-").replace("_", "-").lower()


BOUNDS = ("lower", "upper", "estimate")
"""What a value that is not exact is: see :attr:`Metric.bound`."""


def combine_bounds(a: str | None, b: str | None) -> str | None:
    """The bound kind of a sum of two values of kinds ``a`` and ``b``: a lower bound plus an
    exact value is a lower bound; a lower plus an upper bound is neither (``estimate``)."""
    if a == b or b is None:
        return a
    if a is None:
        return b
    return "estimate"


@dataclass
class Column:
    key: str
    label: str
    align: str = "left"
    bounded: bool = False
    """The row's bound kind (:attr:`Table.bounds`) applies to this column's values: renderers
    mark them ``≥``/``≤``/``≈`` (a FLOPs column, not the share or the name beside it)."""


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""
    bounds: list[str | None] = field(default_factory=list)
    """Per row (parallel to :attr:`rows`): ``None`` when the row's bounded values are exact,
    else ``lower``/``upper``/``estimate`` as for :attr:`Metric.bound` — e.g. a layer with
    an uncosted node costs *at least* its row. Why per row: a total's mark says the total
    is a bound, but not which rows it comes from."""

    def add(self, row: list[Cell], bound: str | None = None) -> None:
        """Append a row and its bound kind (keeps :attr:`bounds` parallel to :attr:`rows`)."""
        self.bounds += [None] * (len(self.rows) - len(self.bounds))
        self.rows.append(row)
        self.bounds.append(bound)

    def row_bound(self, i: int) -> str | None:
        return self.bounds[i] if i < len(self.bounds) else None

    def fill_bounds(self) -> None:
        """Make :attr:`bounds` exactly as long as :attr:`rows` (rows appended directly are exact)."""
        self.bounds = [self.row_bound(i) for i in range(len(self.rows))]


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
    data: dict[str, JSON] | DataclassInstance = field(default_factory=dict)
    """Structured, analyzer-specific payload for JSON consumers: a typed dataclass (its
    JSON schema is derived from its fields, :func:`model_analyze.plugin_api.json_schema`)
    or a plain JSON object (schema: ``plugins/schema/<analyzer>.data.schema.json`` for the
    built-ins, ``Analyzer.data_schema`` for a plugin's)."""
    charts: list[Chart] = field(default_factory=list)
    symbols: dict[str, str] = field(default_factory=dict)
    """Derived names the section's formulas use, defined once (``H32`` → ``ceil(H/32)``)."""
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
    at_binding: list[int] | None = None
    """The shape evaluated at the report's binding (None where a dim stays unknown)."""


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
    roles: dict[str, str] = field(default_factory=dict)
    """What a defaulted dim plays: ``batch``, ``past``, ``H``/``W``/``D`` (image axes),
    ``seq`` (the sequence dim) or ``other`` — so a headline can say "H=W=224"."""
    default_from: dict[str, str] = field(default_factory=dict)
    """Where each default came from: ``fallback`` or what the model said
    (``metadata_props['imgsz']``, ``sibling input 'y'``, ``doc_string``)."""
    suggestion: str = ""
    """The command-line binding that would replace the defaults, with the model's
    real input names and ranks (``--input-shape images=1,3,224,224``)."""

    def guessed(self) -> dict[str, int]:
        """Defaults that change the numbers materially: every default except a batch of 1
        and an empty past (the per-sample, no-cache cost every peer quotes)."""
        return {k: v for k, v in self.defaults.items()
                if not (self.roles.get(k) == "batch" and v == 1) and not (self.roles.get(k) == "past" and v == 0)}

    def defaults_text(self) -> str:
        """``H=W=224, batch=1``: defaults named by their role, equal image axes merged."""
        groups: dict[tuple[str, int], list[str]] = {}
        for name, value in self.defaults.items():
            role = self.roles.get(name, "other")
            label = role if role in ("H", "W", "D", "batch") else name
            kind = "image" if role in ("H", "W", "D") else label
            groups.setdefault((kind, value), []).append(label)
        parts = []
        for (_, value), labels in groups.items():
            seen = list(dict.fromkeys(labels))
            parts.append("=".join(seen) + f"={value}")
        return ", ".join(parts)


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

    def to_dict(self) -> dict[str, JSON]:
        out = _jsonable(asdict(self))
        assert isinstance(out, dict)
        return out


def _jsonable(obj: object) -> JSON:
    """Enums → their names, tuples → lists, non-finite floats → strings."""
    if isinstance(obj, Severity):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return _jsonable(obj.value)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset, Rows)):
        return [_jsonable(v) for v in obj]
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return str(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
