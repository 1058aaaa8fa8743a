"""Parameters: which stored tensors are weights, how many elements, how many bytes.

Every initializer (and every ``Constant`` node's tensor) is counted once, however
many nodes read it, and classified by what it *feeds* — never by reading it:

* **parameter**: a trained weight (float, or an int8/int4 tensor in a quantized
  weight slot such as ``DequantizeLinear``'s x or ``MatMulNBits``' B);
* **buffer**: non-trained state — ``BatchNormalization`` running mean/var, or a
  tensor the exporter marks as a buffer (torch.export names buffers ``b_…`` in
  the ``pkg.torch.onnx.fx_node`` metadata, e.g. rotary ``inv_freq``);
* **quantization**: scales and zero points of quantized weights/activations;
* **constant**: integer/bool tensors (shapes, indices) and one-element scalars.

Slots are followed through constant-foldable nodes (a weight ``Transpose``,
``Cast`` or ``DequantizeLinear`` of a constant), so a transposed weight is still a
weight. ``MatMulNBits`` packs two 4-bit weights per byte: its logical element
count is ``N·K`` and its bytes are the stored bytes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from ..graph import ModelGraph, Node, dtype_name
from ..onnxproto import TensorProto as T
from ..tensors import dtype_bits

BUFFER_SLOTS = {("", "BatchNormalization"): {3, 4}}
"""Input slots that hold running statistics, not trained weights."""

QUANT_WEIGHT_SLOTS: dict[tuple[str, str], set[int]] = {
    ("", "DequantizeLinear"): {0}, ("", "QLinearConv"): {3}, ("com.microsoft", "QLinearConv"): {3},
    ("", "QLinearMatMul"): {0, 3}, ("", "MatMulInteger"): {0, 1}, ("", "ConvInteger"): {1},
    ("com.microsoft", "MatMulNBits"): {1}, ("com.microsoft", "GatherBlockQuantized"): {0},
    ("com.microsoft", "MatMulIntegerToFloat"): {1}, ("com.microsoft", "DynamicQuantizeMatMul"): {1},
}
"""Input slots whose integer tensor is a quantized weight (a parameter)."""

QUANT_PARAM_SLOTS: dict[tuple[str, str], set[int]] = {
    ("", "DequantizeLinear"): {1, 2}, ("", "QuantizeLinear"): {1, 2},
    ("", "QLinearConv"): {1, 2, 4, 5, 6, 7}, ("com.microsoft", "QLinearConv"): {1, 2, 4, 5, 6, 7},
    ("", "QLinearMatMul"): {1, 2, 4, 5, 6, 7}, ("", "MatMulInteger"): {2, 3}, ("", "ConvInteger"): {2, 3},
    ("com.microsoft", "MatMulNBits"): {2, 3}, ("com.microsoft", "GatherBlockQuantized"): {2, 3},
    ("com.microsoft", "MatMulIntegerToFloat"): {2, 3, 4, 5},
    ("com.microsoft", "DynamicQuantizeMatMul"): {2, 3},
}
"""Input slots holding scales / zero points."""

SIZE_SLOTS: dict[tuple[str, str], set[int]] = {
    ("", "Resize"): {1, 2}, ("", "Upsample"): {1}, ("", "Pad"): {2}, ("", "Clip"): {1, 2},
}
"""Float inputs that are sizes or bounds, never trained weights (Resize ``roi``/``scales``:
a YOLO neck's two upsamples stored 8 'parameters')."""

_INT_TYPES = {T.INT64, T.INT32, T.INT16, T.UINT16, T.UINT32, T.UINT64, T.BOOL, T.STRING}
_SMALL_INT_TYPES = {T.INT8, T.UINT8}
for _name in ("INT4", "UINT4", "INT2", "UINT2"):
    if hasattr(T, _name):
        _SMALL_INT_TYPES.add(getattr(T, _name))

_FX_REF = re.compile(r"%([pbc])_([A-Za-z0-9_]+)")


@dataclass
class StoredTensor:
    name: str
    graph: str
    dtype: int
    numel: int
    nbytes: int | None
    role: str = "parameter"
    reason: str = ""
    label: str = ""
    """dtype label for the report (``float``, ``int4 (packed in uint8)``)."""
    layer: str = ""


@dataclass
class ParamReport:
    tensors: list[StoredTensor] = field(default_factory=list)
    tied: list[tuple[str, str, str]] = field(default_factory=list)
    """(table, embedding Gather node, LM-head node) for each tied embedding."""

    def elements(self, role: str | None = None) -> int:
        return sum(t.numel for t in self.tensors if role is None or t.role == role)

    def stored_elements(self) -> int:
        """Elements as stored (initializers only, packed bytes count as stored)."""
        return sum(t.numel for t in self.tensors if t.graph != "#constant-node")

    def nbytes(self, role: str | None = None) -> int:
        return sum(t.nbytes or 0 for t in self.tensors if role is None or t.role == role)

    def by_role(self) -> dict[str, tuple[int, int, int]]:
        out: dict[str, tuple[int, int, int]] = {}
        for t in self.tensors:
            c, n, b = out.get(t.role, (0, 0, 0))
            out[t.role] = (c + 1, n + t.numel, b + (t.nbytes or 0))
        return out

    def by_dtype(self, roles: tuple[str, ...] = ("parameter",)) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for t in self.tensors:
            if t.role in roles:
                n, b = out.get(t.label, (0, 0))
                out[t.label] = (n + t.numel, b + (t.nbytes or 0))
        return out

    def by_layer(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for t in self.tensors:
            if t.role == "parameter":
                out[t.layer] += t.numel
        return out


def _fx_refs(node: Node) -> set[tuple[str, str]]:
    for p in node.proto.metadata_props:
        if p.key == "pkg.torch.onnx.fx_node":
            return {(m.group(1), m.group(2).lower()) for m in _FX_REF.finditer(p.value[:4000])}
    return set()


def _fx_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name).lower()


class _Uses:
    """Where each stored tensor ends up: (node, slot) pairs, through folded nodes."""

    def __init__(self, graph: ModelGraph, folded: frozenset[str]) -> None:
        self.graph = graph
        self.folded = folded
        self._index: dict[Node, dict[str, list[int]]] = {}
        self._fx: dict[Node, dict[str, set[str]]] = {}

    def indices(self, node: Node, tensor: str) -> list[int]:
        """Input slots of ``node`` that read ``tensor`` — indexed once per node, so a
        ``Sum`` over 10,000 initializers is not scanned 10,000 times."""
        index = self._index.get(node)
        if index is None:
            index = self._index[node] = {}
            for i, name in enumerate(node.inputs):
                index.setdefault(name, []).append(i)
        return index.get(tensor, [])

    def fx_inputs(self, node: Node) -> dict[str, set[str]]:
        """``_fx_name`` of each input of ``node`` → the input names that have it (once per node)."""
        names = self._fx.get(node)
        if names is None:
            names = self._fx[node] = {}
            for x in node.inputs:
                if x:
                    names.setdefault(_fx_name(x), set()).add(x)
        return names

    def slots(self, g: ModelGraph, tensor: str) -> list[tuple[Node, int]]:
        out: list[tuple[Node, int]] = []
        seen: set[tuple[str, str]] = set()
        stack = [(g, tensor)]
        while stack:
            graph, t = stack.pop()
            if (graph.path, t) in seen:
                continue
            seen.add((graph.path, t))
            for node in graph.consumers(t):
                out.extend((node, i) for i in self.indices(node, t))
                if node.id in self.folded and node.graph is graph:
                    stack.extend((graph, o) for o in node.outputs if o)
                for subs in node.subgraphs.values():  # read from inside a body
                    for sub in subs:
                        if t in sub.outer_refs or _reads(sub, t):
                            stack.append((sub, t))
        return out


def _reads(sub: ModelGraph, t: str) -> bool:
    return bool(sub.consumers(t))


def _stored(graph: ModelGraph) -> list[tuple[ModelGraph, str, int, tuple[int, ...]]]:
    """(graph, tensor, dtype, dims) of every initializer and Constant-node tensor."""
    out = [(graph, init.name, init.dtype, init.dims) for init in graph.initializers.values()]
    for node in graph.nodes:
        if node.op_type == "Constant" and not node.domain and node.outputs:
            for a in node.proto.attribute:
                if a.name == "value" and a.HasField("t"):
                    out.append((graph, node.outputs[0], a.t.data_type, tuple(int(d) for d in a.t.dims)))
        for subs in node.subgraphs.values():
            for sub in subs:
                out.extend(_stored(sub))
    return out


def parameter_report(graph: ModelGraph, folded: frozenset[str], layer_of: dict[str, str],
                     masks: frozenset[str] = frozenset()) -> ParamReport:
    """``masks``: tensors the attention analyzer read as attention masks; one
    that is stored (dynamo folds a ViT's all-zero additive mask into an
    initializer) is a constant, not a weight."""
    uses = _Uses(graph, folded)
    report = ParamReport()
    for g, name, dtype, dims in _stored(graph):
        numel = 1
        for d in dims:
            numel *= d
        bits = dtype_bits(dtype)
        nbytes = None if bits is None else (numel * bits + 7) // 8
        slots = uses.slots(g, name)
        t = StoredTensor(name, g.path if name in g.initializers else "#constant-node", dtype, numel, nbytes,
                         label=dtype_name(dtype))
        _classify(t, slots, dtype)
        if name in masks and t.role == "parameter":
            t.role, t.reason = "constant", "attention mask stored as a tensor"
        for node, _ in slots:
            if node.id not in folded and node.graph is graph:
                t.layer = layer_of.get(node.id, "")
                break
        report.tensors.append(t)
    report.tied = _tied(graph, folded)
    _exporter_copies(report, graph, uses)
    return report


def _exporter_copies(report: ParamReport, graph: ModelGraph, uses: _Uses) -> None:
    """Float tensors the exporter derived at export time, told apart by what the
    graph says about them (never by their values):

    * dynamo folds ``Transpose(lm_head.weight)`` into a new initializer ``val_N``;
      its consumer's ``fx_node`` still names the parameter. When that parameter is
      stored too (tied embeddings: it is the embedding table), the copy is a
      *copy*, counted once; when it names a buffer (GPT-J's sin/cos table), the
      copy is a buffer;
    * a float tensor whose every use ends in ``Sin``/``Cos`` through arithmetic
      and layout is a rotary frequency table (``inv_freq``), a buffer, even when
      the exporter (TorchScript) does not mark buffers.
    """
    by_fx = {_fx_name(t.name): t for t in report.tensors if t.graph != "#constant-node"}
    for t in report.tensors:
        if t.role != "parameter" or t.reason != "float tensor feeding the computation":
            continue
        g = graph if t.graph in (graph.path, "#constant-node") else None
        origin = _fx_origin(t.name, uses.slots(graph, t.name), uses) if g is not None else None
        if origin is not None:
            kind, ref = origin
            src = by_fx.get(ref)
            if kind == "b":
                t.role, t.reason = "buffer", f"exporter's folded copy of buffer {ref!r}"
                continue
            if src is not None and src is not t and src.numel == t.numel and src.role == "parameter":
                t.role, t.reason = "copy", f"exporter's folded copy of {src.name!r} (tied weights): counted once"
                head = next((n.name for n, _ in uses.slots(graph, t.name) if n.op_type in ("MatMul", "Gemm")), "")
                emb = next((n.name for n, i in uses.slots(graph, src.name) if n.op_type == "Gather" and i == 0), "")
                if head and emb and not any(x[0] == src.name for x in report.tied):
                    report.tied.append((src.name, emb, head))
                continue
        if g is not None and _feeds_only_trig(graph, t.name):
            t.role, t.reason = "buffer", "rotary frequency table (every use ends in Sin/Cos)"


def _fx_origin(name: str, slots: list[tuple[Node, int]], uses: _Uses) -> tuple[str, str] | None:
    """The ``p_``/``b_`` placeholder a folded tensor stands for, from its
    consumers' ``fx_node`` metadata: the one reference no other input explains."""
    found: set[tuple[str, str]] = set()
    for node, _ in slots:
        refs = {(k, x) for k, x in _fx_refs(node) if k in "pb"}
        if not refs:
            return None
        own = uses.fx_inputs(node)
        rest = {(k, x) for k, x in refs if not own.get(x, set()) - {name}}
        if len(rest) != 1:
            return None
        found |= rest
    return found.pop() if len(found) == 1 else None


TRIG_PATH = frozenset({"Mul", "Div", "Add", "Sub", "MatMul", "Transpose", "Reshape", "Unsqueeze", "Squeeze",
                       "Expand", "Cast", "Concat", "Slice", "Identity", "Gather", "Tile", "Einsum", "Neg"})
"""Ops between a rotary ``inv_freq`` and its Sin/Cos (positions × frequencies)."""


def _feeds_only_trig(graph: ModelGraph, tensor: str, limit: int = 64) -> bool:
    """Every forward path from ``tensor`` ends in a Sin or Cos, within ``limit`` nodes."""
    seen: set[str] = set()
    stack = [tensor]
    ends = 0
    while stack:
        t = stack.pop()
        if t in graph.outputs:
            return False
        for node in graph.consumers(t):
            if node.id in seen:
                continue
            seen.add(node.id)
            if len(seen) > limit or node.domain:
                return False
            if node.op_type in ("Sin", "Cos"):
                ends += 1
                continue
            if node.op_type not in TRIG_PATH:
                return False
            stack.extend(o for o in node.outputs if o)
    return ends > 0


def _classify(t: StoredTensor, slots: list[tuple[Node, int]], dtype: int) -> None:
    keys = [(node.key, i, node) for node, i in slots]
    fx = _fx_name(t.name)
    refs: set[tuple[str, str]] = set()
    for _, _, node in keys:
        refs |= _fx_refs(node)
    if ("p", fx) in refs:
        t.role, t.reason = "parameter", "exporter marks it a parameter"
    elif any(i in BUFFER_SLOTS.get(k, ()) for k, i, _ in keys):
        t.role, t.reason = "buffer", "BatchNormalization running statistics"
    elif ("b", fx) in refs:
        t.role, t.reason = "buffer", "exporter marks it a buffer"
    elif ("c", fx) in refs:
        # torch.export lifts tensor attributes that are neither parameters nor buffers
        # as ``c_…`` (YOLO's anchor strides, 2,100 elements at 320²): not weights.
        t.role, t.reason = "constant", "exporter marks it a lifted tensor constant"
    elif any(i in QUANT_WEIGHT_SLOTS.get(k, ()) for k, i, _ in keys):
        t.role, t.reason = "parameter", "quantized weight"
        nbits = next((n for k, i, n in keys if k == ("com.microsoft", "MatMulNBits") and i == 1), None)
        if nbits is not None:
            n, kk, b = int(nbits.attr("N", 0)), int(nbits.attr("K", 0)), int(nbits.attr("bits", 4))
            if n and kk:
                t.numel, t.label = n * kk, f"int{b} (packed in {dtype_name(dtype)})"
    elif any(i in QUANT_PARAM_SLOTS.get(k, ()) for k, i, _ in keys):
        t.role, t.reason = "quantization", "scale / zero point"
    elif dtype in _INT_TYPES or dtype in _SMALL_INT_TYPES:
        t.role, t.reason = "constant", "integer/bool tensor (shape, index, mask)"
    elif keys and all(i in SIZE_SLOTS.get(k, ()) for k, i, _ in keys):
        t.role, t.reason = "constant", "resize scales / pad or clip bounds"
    elif t.numel <= 1:
        t.role, t.reason = "constant", "scalar"
    else:
        t.role, t.reason = "parameter", "float tensor feeding the computation"


def _roots(graph: ModelGraph, tensor: str, folded: frozenset[str], depth: int = 0) -> set[str]:
    """Stored tensors a constant-derived tensor is computed from."""
    if tensor in graph.initializers:
        return {tensor}
    node = graph.producer(tensor)
    if node is None or depth > 16:
        return set()
    if node.op_type == "Constant":
        return {tensor}
    if node.id not in folded:
        return set()
    out: set[str] = set()
    for t in node.inputs:
        if t:
            out |= _roots(graph, t, folded, depth + 1)
    return out


def _tied(graph: ModelGraph, folded: frozenset[str]) -> list[tuple[str, str, str]]:
    """Embedding tables (Gather data) that also feed a MatMul/Gemm weight."""
    tables: dict[str, Node] = {}
    for node in graph.nodes:
        if node.op_type == "Gather" and not node.domain and node.id not in folded:
            roots = _roots(graph, node.input(0), folded)
            if len(roots) == 1 and not _roots(graph, node.input(1), folded):
                tables.setdefault(next(iter(roots)), node)
    out: list[tuple[str, str, str]] = []
    if not tables:
        return out
    for node in graph.nodes:
        if node.op_type in ("MatMul", "Gemm") and not node.domain and node.id not in folded:
            for t in node.inputs[:2]:
                for r in _roots(graph, t, folded) if t else ():
                    if r in tables:
                        out.append((r, tables[r].name, node.name))
    return out
