"""Shape propagation that keeps symbolic dims symbolic.

Order of trust for each node output:

1. our own rule for the op (``ops.shape_rules``), which keeps exporter dims as
   symbolic expressions (``seq``, ``seq + 1``, ``floor((H - 1)/2) + 1``);
2. the exporter's ``value_info`` (dims merged in where our rule left a dim unknown);
3. ``onnx.shape_inference`` run once, lazily, on a weight-less copy of the model,
   only if some output is still unknown.

Unknown stays unknown (``None``) — never a crash. Small integer tensors that
hold shapes (``Shape → Gather → Concat → Reshape``) are propagated as symbolic
*values* so that ``Reshape`` targets computed in the graph resolve.

``--input-shape`` overrides are applied to graph inputs before propagation;
``--dim`` bindings are applied later, when numbers are evaluated, so that every
report can show both the formula and its value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from . import dims as D
from . import folding
from . import onnxproto as P
from .dims import Dim
from .errors import UsageError
from .failures import RuleFailure, describe, failure
from .graph import ModelGraph, Node, Shape, TensorType, parse_type
from .ops.registry import OpRegistry
from .ops.shape_rules import on_conflict
from .opsets import latest
from .tensors import numpy_dtype, onnx_dtype

if TYPE_CHECKING:
    import numpy as np
    import onnx

SymValue = tuple[Dim | None, ...]
"""The content of a small integer tensor (rank 0 or 1), element-wise symbolic."""

MAX_VALUE_LEN = 64
DATA_DEPENDENT_OPS = frozenset({"NonZero", "NonMaxSuppression", "Unique", "Compress"})
"""Ops whose output size depends on the input's values, not its shape."""


@dataclass(frozen=True)
class DimConflict:
    """Two dims a broadcast requires to be equal, not provably equal: ``kept`` was used.

    Equal for every input the model accepts (``⌈H/8⌉`` and ``2·⌈H/16⌉``), or a wrong rule:
    evaluated at a binding, two different numbers say which (the report's R005)."""

    node: str
    op: str
    graph: str
    a: Dim
    b: Dim
    kept: Dim


@dataclass
class ShapeTable:
    """Inferred type of every tensor, and symbolic values of small int tensors."""

    types: dict[str, TensorType] = field(default_factory=dict)
    values: dict[str, SymValue] = field(default_factory=dict)
    missing_rules: dict[tuple[str, str], int] = field(default_factory=dict)
    """Ops that had no shape rule (count of nodes), for the report."""
    consts: dict[str, Any] = field(default_factory=dict)
    """Small tensors computed by folding (``folding.py``): numpy arrays, float ones included."""
    data_dependent: dict[str, str] = field(default_factory=dict)
    """Tensors whose unknown dims follow a data-dependent op (``NonZero``, ``NonMaxSuppression``…):
    tensor → that op's node name. No static analysis can know them; the report says so."""
    onnx_fallback_used: bool = False
    rule_failures: list[RuleFailure] = field(default_factory=list)
    """Shape rules that raised (the node's outputs fell back to the exporter's types or unknown)."""
    onnx_failure: str = ""
    """Why ``onnx.shape_inference`` failed when it was needed (its shapes were then not used)."""
    conflicts: list[DimConflict] = field(default_factory=list)
    """Broadcasts of two dims that must be equal but are not provably so (see ``broadcast``)."""
    branch_taken: dict[str, int] = field(default_factory=dict)
    """``If`` node id → 0 (then) / 1 (else) when the condition is known without running the model."""
    negative: dict[str, TensorType] = field(default_factory=dict)
    """Tensors a rule gave a negative concrete dim (a conv window longer than a concrete input):
    the type the rule computed, before the dim was made unknown — the model cannot run there,
    and ``runnable`` says so."""

    def type(self, tensor: str) -> TensorType | None:
        return self.types.get(tensor)

    def shape(self, tensor: str) -> Shape | None:
        t = self.types.get(tensor)
        return t.shape if t else None

    def dtype(self, tensor: str) -> int | None:
        t = self.types.get(tensor)
        return t.dtype if t else None

    def rank(self, tensor: str) -> int | None:
        s = self.shape(tensor)
        return None if s is None else len(s)

    def symbols(self) -> set[str]:
        out: set[str] = set()
        for t in self.types.values():
            if t.shape:
                for d in t.shape:
                    out |= D.free_symbols(d)
        return out


class ShapeCtx:
    """What a shape rule sees: one node, its input types, values and constants."""

    def __init__(self, node: Node, engine: ShapeEngine) -> None:
        self.node = node
        self.engine = engine
        self.table = engine.table
        self.graph = node.graph
        self.out_values: dict[int, SymValue] = {}

    # inputs ------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return len(self.node.inputs)

    def has(self, i: int) -> bool:
        return bool(self.node.input(i))

    def type(self, i: int) -> TensorType | None:
        name = self.node.input(i)
        return self.table.types.get(name) if name else None

    def shape(self, i: int) -> Shape | None:
        t = self.type(i)
        return t.shape if t else None

    def rank(self, i: int) -> int | None:
        s = self.shape(i)
        return None if s is None else len(s)

    def dtype(self, i: int) -> int | None:
        t = self.type(i)
        return t.dtype if t else None

    def const(self, i: int, cap: int = 1 << 16) -> np.ndarray | None:
        """Concrete numpy value of input ``i`` if it is a small constant (or was folded)."""
        name = self.node.input(i)
        if not name:
            return None
        folded = self.table.consts.get(name)
        return folded if folded is not None else self.graph.constant_value(name, cap)

    def value(self, i: int) -> SymValue | None:
        """Symbolic integer content of input ``i`` (rank 0/1), if known."""
        name = self.node.input(i)
        return self.engine.value_of(name, self.graph) if name else None

    def ints(self, i: int) -> list[int] | None:
        """Input ``i`` as a list of concrete ints, if fully known."""
        v = self.value(i)
        if v is None:
            return None
        out = [D.as_int(x) for x in v]
        return None if any(x is None for x in out) else out  # type: ignore[return-value]

    # attributes ----------------------------------------------------------
    def attr(self, name: str, default: Any = None) -> Any:
        return self.node.attr(name, default)

    @property
    def opset(self) -> int:
        return self.engine.opset(self.node.domain)

    # outputs ---------------------------------------------------------------
    def set_value(self, out_index: int, value: Sequence[Dim | None]) -> None:
        if len(value) <= MAX_VALUE_LEN:
            self.out_values[out_index] = tuple(D.normalize(v) if v is not None else None
                                               for v in value)

    def infer_subgraph(self, sub: ModelGraph, inputs: Sequence[TensorType | None]) -> list[TensorType | None]:
        """Propagate through a body graph; returns the body's output types."""
        for name, t in zip(sub.inputs, inputs, strict=False):
            if t is not None:
                declared = sub.declared.get(name)
                self.table.types[name] = merge_types(t, declared)
        for name in sub.inputs:
            if name not in self.table.types and name in sub.declared:
                self.table.types[name] = sub.declared[name]
        self.engine.run_graph(sub)
        return [self.table.types.get(o) for o in sub.outputs]


@overload
def merge_types(ours: TensorType, other: TensorType | None) -> TensorType: ...
@overload
def merge_types(ours: TensorType | None, other: TensorType | None) -> TensorType | None: ...
def merge_types(ours: TensorType | None, other: TensorType | None) -> TensorType | None:
    """Ours first; fill unknown dtype / rank / dims from ``other``."""
    if ours is None:
        return other
    if other is None:
        return ours
    dtype = ours.dtype if ours.dtype is not None else other.dtype
    shape = ours.shape
    if shape is None:
        shape = other.shape
    elif other.shape is not None and len(other.shape) == len(shape):
        shape = tuple(_pick_dim(a, b) for a, b in zip(shape, other.shape, strict=True))
    return TensorType(dtype, shape, ours.kind if ours.kind != "unknown" else other.kind)


def _pick_dim(ours: Dim | None, declared: Dim | None) -> Dim | None:
    """Our dim, unless unknown — or a ``Min(512, seq)`` whose branch the exporter
    declared (``seq``): the exporter states the regime the model is used in."""
    if ours is None:
        return declared
    args = D.minmax_args(ours)
    if declared is not None and args is not None and declared in args:
        return declared
    return ours


class ShapeEngine:
    def __init__(self, graph: ModelGraph, registry: OpRegistry, opsets: dict[str, int],
                 model_proto: onnx.ModelProto | None = None) -> None:
        self.graph = graph
        self.registry = registry
        self.opsets = opsets
        self.model_proto = model_proto
        self.table = ShapeTable()
        self._onnx_types: dict[str, TensorType] | None = None
        self.input_symbols: set[str] = set()
        self._types: dict[TensorType, TensorType] = {}
        self._negative = False
        """Some type had a negative dim (so outputs are checked for one: D002's input)."""
        """Types whose negative dims :func:`_bounded` made unknown (empty in a model that runs)."""
        """Each distinct output type once, bounded (:func:`_bounded`): the activations of a
        1M-node chain share a handful of types — one object each, checked once."""

    def opset(self, domain: str) -> int:
        key = "ai.onnx" if domain in ("", "ai.onnx") else domain
        return self.opsets.get(key, 0) or (latest() if key == "ai.onnx" else 1)

    def value_of(self, tensor: str, graph: ModelGraph) -> SymValue | None:
        v = self.table.values.get(tensor)
        if v is not None:
            return v
        arr = self.table.consts.get(tensor)
        if arr is None:
            arr = graph.constant_value(tensor, 4096)
        if arr is None or arr.ndim > 1 or arr.size > MAX_VALUE_LEN or arr.dtype.kind not in "iubf":
            return None
        flat = arr.reshape(-1).tolist()
        if arr.dtype.kind == "f" and not all(float(x).is_integer() for x in flat):
            return None  # a float that is not a whole number never feeds a shape
        value = tuple(int(x) for x in flat)
        self.table.values[tensor] = value
        return value

    def run(self, input_types: dict[str, TensorType]) -> ShapeTable:
        g = self.graph
        for name, init in g.initializers.items():
            self.table.types[name] = TensorType(init.dtype, init.dims)
        for name in g.inputs:
            self.table.types[name] = input_types.get(name) or g.declared.get(name) or TensorType()
            for d in self.table.types[name].shape or ():
                self.input_symbols |= D.free_symbols(d)
        self.run_graph(g)
        return self.table

    def run_graph(self, g: ModelGraph) -> None:
        if g is not self.graph:
            for name, init in g.initializers.items():
                self.table.types[name] = TensorType(init.dtype, init.dims)
        for node in g.topo_order():
            self._infer_node(node)

    def _prefer(self, a: Dim, b: Dim) -> Dim:
        """Of two dims that must be equal: a concrete one; else one computed from the model's
        input dims (a fresh exporter symbol, ``unk__3``, is traceable to no computation);
        else the first operand's."""
        def rank(d: Dim) -> int:
            return 0 if D.is_int(d) else 1 if D.free_symbols(d) <= self.input_symbols else 2

        return b if rank(b) < rank(a) else a

    def _resolver(self, node: Node) -> Any:
        def resolve(a: Dim, b: Dim) -> Dim:
            kept = self._prefer(a, b)
            self.table.conflicts.append(DimConflict(node.name, node.op_type, node.graph.path, a, b, kept))
            return kept

        return resolve

    def _infer_node(self, node: Node) -> None:
        fn = self.registry.shape_rule(node.domain, node.op_type)
        results: list[TensorType | None] = []
        ctx = ShapeCtx(node, self)
        if fn is None:
            key = node.key
            self.table.missing_rules[key] = self.table.missing_rules.get(key, 0) + 1
        else:
            try:
                with on_conflict(self._resolver(node)):
                    results = list(fn(ctx) or [])
            except Exception as exc:  # never sinks the analysis, never silent: reported as R001
                results = []
                ctx.out_values.clear()
                self.table.rule_failures.append(failure("shape", node, fn, exc))
        for k, out in enumerate(node.outputs):
            if not out:
                continue
            ours = results[k] if k < len(results) else None
            t = merge_types(ours, node.graph.declared_type(out))
            if t is None or t.shape is None or any(d is None for d in t.shape):
                t = merge_types(t, self._onnx_type(out))
            self.table.types[out] = self._bounded(t) if t is not None else TensorType()
            if self._negative and t is not None and _negative_dim(t):
                self.table.negative[out] = t
            if k in ctx.out_values:
                self.table.values[out] = ctx.out_values[k]
        self._fold(node, ctx, results)
        self._mark_data_dependent(node)

    def _bounded(self, t: TensorType) -> TensorType:
        try:
            hit = self._types.get(t)
        except TypeError:  # an unhashable attribute value (a fuzzed dtype): checked alone
            self._negative = self._negative or _negative_dim(t)
            return _bounded(t)
        if hit is None:
            hit = self._types[t] = _bounded(t)
            if hit is not t and _negative_dim(t):
                self._negative = True
        return hit

    def _mark_data_dependent(self, node: Node) -> None:
        """Follow unknown sizes back to the data-dependent op they come from."""
        undecided_if = node.op_type == "If" and node.id not in self.table.branch_taken
        # TopK with a known input shape and an unknown size out: k is a run-time value, not a dim
        runtime_k = node.op_type == "TopK" and None not in (self.table.shape(node.input(0)) or (None,))
        origin = node.name if (node.op_type in DATA_DEPENDENT_OPS or undecided_if or runtime_k) \
            and not node.domain else next(
            (self.table.data_dependent[i] for i in node.inputs if i in self.table.data_dependent), None)
        if origin is None:
            return
        for out in node.outputs:
            shape = self.table.shape(out) if out else None
            if out and (shape is None or any(d is None for d in shape)):
                self.table.data_dependent[out] = origin

    def _fold(self, node: Node, ctx: ShapeCtx, ours: list[TensorType | None]) -> None:
        """Evaluate a node whose inputs are all small known constants (see ``folding.py``)
        when the rules left its outputs' contents unknown. ``ours``: the rule's own
        output types — the size budget is checked on them, computed from the op's
        arguments, never on a declared ``value_info`` shape."""
        if not folding.foldable(node.op_type, node.domain) or node.subgraphs:
            return
        outs = [o for o in node.outputs if o]
        if not outs or all(o in self.table.values or o in self.table.consts for o in outs):
            return
        for k, o in enumerate(node.outputs):
            if not o:
                continue
            shape = ours[k].shape if k < len(ours) and ours[k] is not None else None  # type: ignore[union-attr]
            if shape is None or any(D.as_int(d) is None for d in shape) or \
                    D.prod([D.as_int(d) for d in shape]) > folding.MAX_ELEMENTS:
                return
        arrays: list[np.ndarray | None] = []
        for name in node.inputs:
            if not name:
                arrays.append(None)
                continue
            arr = self._concrete(name, node.graph)
            if arr is None:
                return
            arrays.append(arr)
        if not arrays:
            return
        results = folding.fold_node(node.proto, arrays, self.opset(node.domain),
                                    self.model_proto.ir_version if self.model_proto is not None else 8)
        if results is None:
            return
        for name, arr in zip([o for o in node.outputs if o], results, strict=False):
            self.table.consts[name] = arr
            self.table.types[name] = merge_types(TensorType(onnx_dtype(arr.dtype),
                                                            tuple(int(d) for d in arr.shape)),
                                                 self.table.types.get(name))
            if name not in self.table.values:
                self.value_of(name, node.graph)

    def _concrete(self, tensor: str, graph: ModelGraph) -> Any:
        """A tensor's content as a numpy array, if known and small."""
        arr = self.table.consts.get(tensor)
        if arr is not None:
            return arr
        arr = graph.constant_value(tensor, folding.MAX_ELEMENTS)
        if arr is not None:
            return arr
        v = self.table.values.get(tensor)
        t = self.table.types.get(tensor)
        if v is None or t is None or t.shape is None or t.dtype is None or len(t.shape) > 1:
            return None
        ints = [D.as_int(x) for x in v]
        if any(x is None for x in ints):
            return None
        import numpy as np

        try:
            arr = np.array(ints, dtype=numpy_dtype(t.dtype))
        except (TypeError, KeyError, ValueError, OverflowError):
            return None
        return arr.reshape(()) if len(t.shape) == 0 and arr.size == 1 else arr

    # -- onnx.shape_inference fallback ----------------------------------
    def _onnx_type(self, tensor: str) -> TensorType | None:
        if self._onnx_types is None:
            self._onnx_types = self._run_onnx_inference()
        return self._onnx_types.get(tensor)

    def _run_onnx_inference(self) -> dict[str, TensorType]:
        if self.model_proto is None:
            return {}
        self.table.onnx_fallback_used = True
        try:
            import onnx.shape_inference

            from .budgets import BUDGETS, memory_guard

            model = _weightless_copy(self.model_proto, self.table, self.graph.inputs)
            with memory_guard(BUDGETS.onnx_inference_bytes):
                inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False,
                                                             data_prop=_bounded_ints(model))
        except Exception as exc:  # its shapes are a fallback: said (R004), never silently absent
            self.table.onnx_failure = describe(exc)
            return {}
        out: dict[str, TensorType] = {}
        for g in _all_graphs(inferred.graph):
            for vi in list(g.value_info) + list(g.output):
                t = parse_type(vi.type)
                if t.shape is not None:
                    t = TensorType(t.dtype, tuple(None if _is_unk(d) else d for d in t.shape), t.kind)
                out[vi.name] = t
        return out


def _negative_dim(t: TensorType) -> bool:
    """A concrete dim below zero: the op cannot run at this binding (``runnable``, D002)."""
    return bool(t.shape) and any(D.is_int(d) and d < 0 for d in t.shape or ())


def _bounded(t: TensorType) -> TensorType:
    """``t``, with its dims made unknown when their product is beyond any tensor
    (``BUDGETS.tensor_elements``: an Expand to [2^40, 2^40] computed from values) and a
    negative dim unknown, and its element type unknown when it is not a type code (a
    fuzzed Cast whose ``to`` is a list of strings)."""
    if t.dtype is not None and type(t.dtype) is not int:
        t = TensorType(None, t.shape, t.kind)
    shape = t.shape
    if shape is None:
        return t
    values = [D.as_int(d) if d is not None else None for d in shape]
    if any(v is not None and v < 0 for v in values):  # no dim is negative (a Reshape to a fuzzed -4·10^18)
        shape = tuple(None if v is not None and v < 0 else d for d, v in zip(shape, values, strict=True))
        t = TensorType(t.dtype, shape, t.kind)
    n = 1
    for v in values:
        if v is not None and v > 0:
            n *= v
    from .budgets import BUDGETS

    return t if n <= BUDGETS.tensor_elements else TensorType(t.dtype, (None,) * len(shape), t.kind)


def _bounded_ints(model: onnx.ModelProto) -> bool:
    """Every integer the model states — inline int initializers, Constant values,
    int attributes — is within ``±BUDGETS.onnx_inference_int``: only then may onnx's
    shape inference propagate values (``data_prop``), which materialises what it
    computes (a fuzzed pad of 7.9·10^17 made it allocate 3.5 GB)."""
    import numpy as np

    from .budgets import BUDGETS
    from .safeio import iter_tensor_protos, tensor_array

    bound = BUDGETS.onnx_inference_int
    for t in iter_tensor_protos(model):
        arr = tensor_array(t, folding.MAX_ELEMENTS) if t.data_type in _INT_TYPES else None
        if arr is not None and arr.size and int(np.abs(arr.astype(np.float64)).max()) > bound:
            return False
    stack = [model.graph]
    while stack:
        g = stack.pop()
        for n in g.node:
            for a in n.attribute:
                if (a.type == P.AttributeProto.INT and abs(a.i) > bound) or any(abs(v) > bound for v in a.ints):
                    return False
                if a.HasField("g"):
                    stack.append(a.g)
                stack.extend(a.graphs)
    return True


_INT_TYPES = {P.TensorProto.INT64, P.TensorProto.INT32, P.TensorProto.UINT64, P.TensorProto.UINT32}
_UNK = re.compile(r"^unk__\d+$")


def _is_unk(d: Any) -> bool:
    return d is not None and not D.is_int(d) and any(_UNK.match(s) for s in D.free_symbols(d))


def _all_graphs(g: onnx.GraphProto) -> Iterable[onnx.GraphProto]:
    yield g
    for n in g.node:
        for a in n.attribute:
            if a.HasField("g"):
                yield from _all_graphs(a.g)
            for sub in a.graphs:
                yield from _all_graphs(sub)


def type_proto(t: TensorType) -> onnx.TypeProto:
    """TensorType → TypeProto (symbolic dims written as their formula)."""
    tp = P.TypeProto()
    tt = tp.tensor_type
    tt.elem_type = t.dtype or 0
    if t.shape is not None:
        shape = tt.shape
        for d in t.shape:
            dim = shape.dim.add()
            if D.is_int(d):
                dim.dim_value = d
            elif d is not None:
                dim.dim_param = D.fmt(d)
    return tp


def _weightless_copy(model: onnx.ModelProto, table: ShapeTable, inputs: list[str]) -> onnx.ModelProto:
    """A copy for onnx.shape_inference: large initializers become typed inputs
    (their values are never needed for shapes), input overrides applied."""
    from onnx import helper

    src = model.graph
    g = P.GraphProto(name=src.name)
    g.node.extend(src.node)
    for init in src.initializer:
        numel = 1
        for d in init.dims:
            numel *= d
        if init.data_location != P.TensorProto.EXTERNAL and numel <= 4096:
            g.initializer.append(init)
        else:
            g.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    for vi in src.input:
        if vi.name in inputs and vi.name in table.types:
            g.input.append(helper.make_value_info(vi.name, type_proto(table.types[vi.name])))
        elif vi.name not in {i.name for i in src.initializer}:
            g.input.append(vi)
    g.output.extend(src.output)
    g.value_info.extend(src.value_info)
    out = P.ModelProto(ir_version=model.ir_version, producer_name=model.producer_name)
    out.opset_import.extend(model.opset_import)
    out.graph.CopyFrom(g)
    return out


def parse_input_shape(spec: str) -> tuple[str, list[int]]:
    """``NAME=1,3,48,320`` → ("NAME", [1, 3, 48, 320])."""
    name, sep, rest = spec.rpartition("=")
    if not sep or not name:
        raise UsageError(f"--input-shape {spec!r}: expected NAME=D1,D2,...")
    try:
        values = [int(x) for x in rest.replace("x", ",").split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--input-shape {spec!r}: dims must be integers") from None
    from .bindings import check_dim

    for v in values:
        check_dim(f"--input-shape {name}: dim", v)
    return name, values


def input_types(graph: ModelGraph, overrides: dict[str, list[int]]) -> dict[str, TensorType]:
    """Declared input types with ``--input-shape`` overrides applied."""
    out: dict[str, TensorType] = {}
    for name in overrides:
        if name not in graph.inputs:
            raise UsageError(f"--input-shape {name}: the model has no input {name!r} "
                             f"(inputs: {', '.join(graph.inputs) or 'none'})")
    for name in graph.inputs:
        declared = graph.declared.get(name) or TensorType()
        if name in overrides:
            dims = overrides[name]
            if declared.shape is not None and len(declared.shape) != len(dims):
                raise UsageError(f"--input-shape {name}: the input has rank {len(declared.shape)}, "
                                 f"got {len(dims)} dims")
            declared = TensorType(declared.dtype, tuple(dims), declared.kind)
        out[name] = declared
    return out


def infer_shapes(graph: ModelGraph, registry: OpRegistry, opsets: dict[str, int],
                 model_proto: onnx.ModelProto | None = None,
                 overrides: dict[str, list[int]] | None = None) -> ShapeTable:
    """Propagate shapes through ``graph`` (see module docstring)."""
    engine = ShapeEngine(graph, registry, opsets, model_proto)
    return engine.run(input_types(graph, overrides or {}))
