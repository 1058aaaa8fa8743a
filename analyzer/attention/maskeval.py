"""Evaluate the subgraph that builds an attention mask, at a chosen length.

Exporters build the mask from ``Range``/``Trilu``/compare/``Where``/``CumSum``/
``GatherND`` ops over the runtime sequence length. We cut the *backward slice*
of the mask tensor out of the model and run it with
``onnx.reference.ReferenceEvaluator`` at a few concrete lengths — the only
reliable reading of an arbitrary exporter's mask code.

Why a slice, and why cut at ``Shape``: a ``Shape`` (or ``Size``, or the
dtype-only input of ``CastLike``) needs only the *shape* of its input, which the
shape table knows symbolically. Cutting there keeps the slice free of weights
(Mistral-7B's mask slice is 138 nodes from ``input_ids``), and the cut tensor is
fed as a zero-strided array of the right shape, so feeding a ``[1, n, 4096]``
activation costs nothing.

Graph inputs whose *values* reach the mask (BERT's ``attention_mask``) make the
mask input-driven; they are fed all ones (position-like inputs an ``arange``),
which is the unpadded case the report analyzes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import dims as D
from .. import npeval
from ..onnxproto import NodeProto, TensorProto
from ..protoscan import embedded_range
from ..safeio import has_external, tensor_array
from ..tensors import from_array, numpy_dtype

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..context import AnalysisContext
    from ..graph import ModelGraph, Node

MAX_INIT_ELEMENTS = 1 << 20
"""Largest inline initializer a mask slice may read (position tables are small)."""
MAX_TENSOR_ELEMENTS = 1 << 26
"""No tensor of the slice may exceed this many elements at an evaluated length."""
MAX_SLICE_NODES = 5000
META_OPS = {("", "Shape"): (0,), ("", "Size"): (0,), ("", "CastLike"): (1,)}
"""Inputs that contribute only their shape or dtype, never their values."""


class SliceError(Exception):
    """The slice cannot be evaluated (reason in the message)."""


@dataclass
class MaskSlice:
    """The backward slice of some tensors, ready to evaluate at any length."""

    graph: ModelGraph
    outputs: tuple[str, ...]
    nodes: list[Node] = field(default_factory=list)
    initializers: list[str] = field(default_factory=list)
    meta_inputs: list[str] = field(default_factory=list)
    """Tensors cut off because only their shape/dtype is used (fed as zeros)."""
    value_inputs: list[str] = field(default_factory=list)
    """Graph inputs whose values reach the outputs: the mask is input-driven."""
    int_constants: set[int] = field(default_factory=set)
    """Small integer constants of the slice: candidate window/chunk/block sizes."""
    problem: str = ""
    substitute: dict[int, int] = field(default_factory=dict)
    """Integer constants replaced by probe values (see :func:`with_probe`)."""
    _evaluator: Any = None

    @property
    def ok(self) -> bool:
        return not self.problem


def extract(graph: ModelGraph, outputs: tuple[str, ...]) -> MaskSlice:
    """Collect the backward slice of ``outputs`` (never raises)."""
    sl = MaskSlice(graph, outputs)
    seen: set[str] = set()
    meta: set[str] = set()
    values: set[str] = set()
    picked: dict[str, Node] = {}
    stack: list[tuple[str, bool]] = [(t, False) for t in outputs]
    while stack:
        tensor, meta_only = stack.pop()
        if not tensor:
            continue
        key = tensor + ("#meta" if meta_only else "")
        if key in seen:
            continue
        seen.add(key)
        node = graph.producer(tensor)
        if meta_only:
            meta.add(tensor)
            continue
        if node is None:
            if graph.is_initializer(tensor) and tensor in graph.initializers:
                init = graph.initializers[tensor]
                if init.external or init.sparse is not None:
                    sl.problem = f"the mask reads {tensor!r}, stored as external or sparse data (not evaluated)"
                elif init.numel > MAX_INIT_ELEMENTS:
                    sl.problem = f"the mask reads the large initializer {tensor!r} ({init.numel:,} elements)"
                else:
                    sl.initializers.append(tensor)
                    _collect_ints(graph.constant_value(tensor, 16), sl.int_constants)
            elif tensor in graph.inputs:
                values.add(tensor)
            else:
                sl.problem = f"the mask reads {tensor!r} from an enclosing graph"
            continue
        if node.id not in picked:
            picked[node.id] = node
            if len(picked) > MAX_SLICE_NODES:
                sl.problem = f"mask slice larger than {MAX_SLICE_NODES} nodes"
                break
            if node.op_type == "Constant" and not node.domain:
                _collect_ints(graph.constant_value(node.outputs[0], 16), sl.int_constants)
            if node.subgraphs:
                sl.problem = f"the mask is built inside control flow ({node.op_type} {node.name!r})"
            elif has_external(node.proto):
                sl.problem = f"the mask reads an attribute of {node.name!r} stored as external data (never loaded)"
        meta_idx = META_OPS.get((node.domain, node.op_type), ())
        for i, x in enumerate(node.inputs):
            stack.append((x, i in meta_idx))
    sl.nodes = sorted(picked.values(), key=lambda n: n.index)
    sl.value_inputs = sorted(values)
    # A tensor needed for its values is computed by the slice, not fed as zeros.
    produced = {o for n in sl.nodes for o in n.outputs}
    sl.meta_inputs = sorted(t for t in meta if t not in produced and t not in values
                            and t not in sl.initializers)
    return sl


def _collect_ints(value: Any, out: set[int]) -> None:
    if value is None:
        return
    try:
        if value.dtype.kind in "iu" and value.size <= 8:
            out.update(int(v) for v in value.reshape(-1))
    except Exception:
        pass


def with_probe(sl: MaskSlice, constant: int, probe: int) -> MaskSlice:
    """The same slice with every integer constant equal to ``constant`` replaced
    by ``probe``: how a window too wide to evaluate (32768) is read at small n."""
    return MaskSlice(sl.graph, sl.outputs, sl.nodes, sl.initializers, sl.meta_inputs, sl.value_inputs,
                     sl.int_constants, sl.problem, {constant: probe})


def _substituted(sl: MaskSlice, t: onnx.TensorProto) -> onnx.TensorProto:
    import numpy as np

    if not sl.substitute or t.data_type not in (TensorProto.INT64, TensorProto.INT32):
        return t
    value = sl.graph.constant_value(t.name, 16) if t.name else None
    if value is None:
        value = tensor_array(t, 16)
    if value is None or not any(int(v) in sl.substitute for v in value.reshape(-1)):
        return t
    new = np.vectorize(lambda v: sl.substitute.get(int(v), int(v)))(value).astype(value.dtype)
    return from_array(new.reshape(value.shape), t.name)


def _node_proto(sl: MaskSlice, node: Node) -> onnx.NodeProto:
    if node.op_type != "Constant" or node.domain:
        return node.proto
    stripped = any(a.HasField("t") and embedded_range(a.t) is not None for a in node.proto.attribute)
    if not sl.substitute and not stripped:
        return node.proto
    proto = NodeProto()
    proto.CopyFrom(node.proto)
    for a in proto.attribute:
        if a.name == "value" and a.HasField("t"):
            a.t.CopyFrom(_substituted(sl, _full(node.graph, a.t)))
        elif a.name == "value_int" and a.i in sl.substitute:
            a.i = sl.substitute[a.i]
        elif a.name == "value_ints" and any(v in sl.substitute for v in a.ints):
            vals = [sl.substitute.get(v, v) for v in a.ints]
            del a.ints[:]
            a.ints.extend(vals)
    return proto


def _full(graph: ModelGraph, t: onnx.TensorProto) -> onnx.TensorProto:
    """``t`` with its payload (the loader may have left it in the model file)."""
    full = graph.full_tensor(t, MAX_INIT_ELEMENTS * 16 + 4096)
    if full is None:
        raise SliceError(f"the mask reads {t.name or 'a constant'!r}, whose data cannot be read back")
    return full


def _model(ctx: AnalysisContext, sl: MaskSlice) -> onnx.ModelProto:
    import onnx
    from onnx import helper

    def vi(name: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, ctx.shapes.dtype(name) or onnx.TensorProto.FLOAT, None)

    feeds = list(dict.fromkeys(sl.value_inputs + sl.meta_inputs))
    graph = helper.make_graph([_node_proto(sl, n) for n in sl.nodes], "mask_slice", [vi(t) for t in feeds],
                              [vi(t) for t in sl.outputs],
                              [_substituted(sl, _full(sl.graph, sl.graph.initializers[t].proto))
                               for t in sl.initializers])
    model = helper.make_model(graph, opset_imports=list(ctx.model.proto.opset_import))
    model.ir_version = ctx.model.proto.ir_version or model.ir_version
    return model


def evaluate(ctx: AnalysisContext, sl: MaskSlice, env: dict[str, int], length: int = 0) -> dict[str, np.ndarray]:
    """Run the slice with every dim symbol bound by ``env``; ``length`` is the
    key length a sequence-length input (``seqlens_k``) is fed. Raises SliceError."""
    import numpy as np

    if sl.problem:
        raise SliceError(sl.problem)
    for node in sl.nodes:
        if node.op_type == "Range" and not node.domain:
            _check_range(ctx, node)
        for out in node.outputs:
            shape = ctx.shapes.shape(out) if out else None
            if shape is None:
                continue
            numel = 1
            for d in shape:
                v: int | float | None = D.as_int(d) if d is not None else None
                if v is None and d is not None:
                    v = ctx.evaluate(d, env)
                if isinstance(v, int):
                    numel *= max(v, 1)
            if numel > MAX_TENSOR_ELEMENTS:
                raise SliceError(f"{out!r} would hold {numel:,} elements at this length")
    feeds: dict[str, Any] = {}
    for t in sl.meta_inputs:
        feeds[t] = np.broadcast_to(np.zeros((), _np_dtype(ctx.shapes.dtype(t))), _shape(ctx, t, env))
    for t in sl.value_inputs:
        feeds[t] = _unpadded_input(t, _np_dtype(ctx.shapes.dtype(t)), _shape(ctx, t, env), length)
    if sl._evaluator is None:
        sl._evaluator = _numpy_evaluator(ctx, sl)
    if sl._evaluator is None:
        sl._evaluator = _reference_evaluator(ctx, sl)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                values = sl._evaluator.run(list(sl.outputs), feeds)
            except npeval.Unsupported:  # an attribute the numpy kernels do not cover
                sl._evaluator = _reference_evaluator(ctx, sl)
                values = sl._evaluator.run(list(sl.outputs), feeds)
    except npeval.TooLarge as exc:
        raise SliceError(f"the mask slice would hold {exc} at this length") from exc
    except MemoryError as exc:
        raise SliceError("out of memory evaluating the mask slice") from exc
    except Exception as exc:
        raise SliceError(f"evaluating the mask slice failed: {_short(exc)}") from exc
    return {name: np.asarray(v) for name, v in zip(sl.outputs, values, strict=True)}


def _numpy_evaluator(ctx: AnalysisContext, sl: MaskSlice) -> npeval.Evaluator | None:
    """The slice on numpy kernels (:mod:`..npeval`), None when an op is not covered."""
    try:
        inits = {t: tensor_array(_substituted(sl, _full(sl.graph, sl.graph.initializers[t].proto)),
                                 MAX_INIT_ELEMENTS) for t in sl.initializers}
        arrays = {t: v for t, v in inits.items() if v is not None}
        if len(arrays) != len(inits):
            return None
        return npeval.Evaluator([_node_proto(sl, n) for n in sl.nodes], arrays, ctx.model.opset(""),
                                MAX_TENSOR_ELEMENTS)
    except (npeval.Unsupported, ValueError, SliceError):
        return None


def _reference_evaluator(ctx: AnalysisContext, sl: MaskSlice) -> Any:
    try:
        from onnx.reference import ReferenceEvaluator

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ReferenceEvaluator(_model(ctx, sl))
    except Exception as exc:
        sl.problem = f"the reference evaluator cannot load the mask slice: {_short(exc)}"
        raise SliceError(sl.problem) from exc


def _check_range(ctx: AnalysisContext, node: Node) -> None:
    """A ``Range`` over constants is sized by its values, which the shape table
    may not know: refuse one that would allocate beyond the limit."""
    from .graphwalk import fold_scalar

    start, limit, delta = (fold_scalar(ctx, node.graph, node.input(i)) for i in range(3))
    if start is None or limit is None or not delta:
        return
    if (limit - start) / delta > MAX_TENSOR_ELEMENTS:
        raise SliceError(f"Range {node.name!r} would hold {(limit - start) / delta:,.0f} elements")


def _shape(ctx: AnalysisContext, tensor: str, env: dict[str, int]) -> tuple[int, ...]:
    shape = ctx.shapes.shape(tensor)
    if shape is None:
        raise SliceError(f"shape of {tensor!r} unknown")
    out = []
    for d in shape:
        v: int | float | None = D.as_int(d) if d is not None else None
        if v is None and d is not None:
            v = ctx.evaluate(d, env)
        if not isinstance(v, int) or v < 0:
            raise SliceError(f"shape of {tensor!r} not fixed by the evaluation length ({D.fmt(d)})")
        out.append(v)
    return tuple(out)


def _np_dtype(dtype: int | None) -> Any:
    if dtype is None:
        raise SliceError("an input of the mask slice has no known element type")
    try:
        return numpy_dtype(dtype)
    except (KeyError, ValueError, TypeError):
        raise SliceError(f"element type {dtype} of a mask input has no numpy equivalent") from None


def _unpadded_input(name: str, dtype: Any, shape: tuple[int, ...], length: int) -> np.ndarray:
    """The "no padding" value of an input that drives the mask: all ones (a 0/1
    padding mask), positions ``0..n-1`` for a position-like input, the full
    length for a sequence-length input (``seqlens``, ``nonpad_kv_seqlen``)."""
    import numpy as np

    low = name.lower()
    integer = np.dtype(dtype).kind in "iu"
    if "position" in low and integer and shape:
        return np.broadcast_to(np.arange(shape[-1], dtype=dtype), shape).copy()
    if integer and length and any(k in low for k in ("seqlen", "seq_len", "length", "lens")):
        return np.full(shape, length, dtype=dtype)
    return np.ones(shape, dtype=dtype)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 160 else text[:157] + "..."
