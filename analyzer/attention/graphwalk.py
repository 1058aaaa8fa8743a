"""Small graph walks shared by fused and unfused attention detection.

Exporters wrap the interesting tensors in noise (``Cast``, ``Identity``,
``Reshape``/``Transpose`` head shuffles, GQA ``Unsqueeze → Expand → Reshape``),
and compute constants in the graph (``1/sqrt(Shape(q)[-1])``). These helpers see
through that noise in a bounded number of steps, so detection stays linear in
the graph size and never raises on an odd graph: every helper answers ``None``
when it cannot tell.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import dims as D

if TYPE_CHECKING:
    import numpy as np

    from ..context import AnalysisContext
    from ..graph import ModelGraph, Node

LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Identity", "Cast", "Expand", "Unsqueeze", "Squeeze",
                        "Flatten", "Tile", "CastLike", "Contiguous"})
"""Ops that move or repeat elements without mixing positions of one head."""

ROPE_PATH_OPS = LAYOUT_OPS | {"Mul", "Add", "Sub", "Neg", "Concat", "Slice", "Split", "Div",
                              "SimplifiedLayerNormalization", "LayerNormalization",
                              "RMSNormalization", "Pow", "ReduceMean", "Sqrt", "Reciprocal",
                              "RotaryEmbedding", "GemmaRotaryEmbedding"}
"""Ops between a Q/K projection and the QK product (RoPE, QK-norm, layout)."""

MAX_DEPTH = 40


def is_constant(graph: ModelGraph, tensor: str) -> bool:
    """An initializer or a ``Constant`` output (possibly behind Cast/Identity)."""
    for _ in range(8):
        if not tensor:
            return False
        if graph.is_initializer(tensor):
            return True
        node = graph.producer(tensor)
        if node is None:
            return False
        if node.op_type in ("Constant", "ConstantOfShape") and not node.domain:
            return True
        if node.op_type not in ("Cast", "Identity", "Reshape", "Transpose", "Unsqueeze", "Squeeze"):
            return False
        tensor = node.input(0)
    return False


def fold_scalar(ctx: AnalysisContext, graph: ModelGraph, tensor: str, depth: int = 0) -> float | None:
    """The value of a scalar (one-element) tensor computed from constants and
    concrete dims, e.g. ``Div(1, Sqrt(Cast(Gather(Shape(q), -1))))``; None if it
    depends on data or on a symbolic dim."""
    value = _fold(ctx, graph, tensor, depth)
    if value is None:
        return None
    try:
        if value.size != 1:
            return None
        f = float(value.reshape(-1)[0])
    except (TypeError, ValueError, AttributeError):
        return None
    return f if math.isfinite(f) else None


_ONE_VALUE_LAYOUT = frozenset({"Identity", "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Expand"})
"""Layout ops that keep a one-element tensor's one value, whatever their (maybe symbolic)
target shape: a scale ``Expand``-ed to ``[B, H, seq, seq]`` is still that scale."""


def onnx_opset() -> int:
    from ..opsets import latest

    return latest()


def _fold(ctx: AnalysisContext, graph: ModelGraph, tensor: str, depth: int) -> np.ndarray | None:
    """A small tensor's value: a constant, a shape value the shape table knows, or its
    producer evaluated by ``onnx.reference`` (``folding.fold_node``: the spec's own integer
    and float semantics) on folded inputs. None when any input is data or symbolic."""
    import numpy as np

    from .. import folding

    if not tensor or depth > 16:
        return None
    value = graph.constant_value(tensor, 64)
    if value is not None:
        return np.asarray(value)
    folded = ctx.shapes.consts.get(tensor)
    if folded is not None and np.asarray(folded).size <= 64:
        return np.asarray(folded)
    known = ctx.shapes.values.get(tensor)
    if known is not None and len(known) <= 64:
        ints = [D.as_int(v) for v in known]
        if all(v is not None for v in ints):
            # A shape value the shape table already folded (``Shape(k)[-1]`` of a
            # tensor whose other dims are symbolic): scalars keep their rank.
            shape = ctx.shapes.shape(tensor)
            arr = np.array(ints, np.int64)
            return arr.reshape(()) if shape is not None and len(shape) == 0 and arr.size == 1 else arr
    node = graph.producer(tensor)
    if node is not None and node.op_type == "Identity" and not node.domain:
        return _fold(ctx, graph, node.input(0), depth + 1)
    if node is None or node.subgraphs or not folding.foldable(node.op_type, node.domain):
        return None
    if node.op_type in _ONE_VALUE_LAYOUT:
        x = _fold(ctx, graph, node.input(0), depth + 1)
        if x is not None and x.size == 1:
            return x.reshape(())
    args: list[np.ndarray | None] = []
    for name in node.inputs:
        folded_arg = _fold(ctx, graph, name, depth + 1) if name else None
        if name and folded_arg is None:
            return None
        args.append(folded_arg)
    opset = ctx.model.opset("") or onnx_opset()
    results = folding.fold_node(node.proto, args, opset, ctx.model.proto.ir_version)
    if results is None:
        return None
    outs = [o for o in node.outputs if o]
    return results[outs.index(tensor)] if tensor in outs and outs.index(tensor) < len(results) else None


def prescale_factors(ctx: AnalysisContext, graph: ModelGraph, tensor: str) -> tuple[list[float], list[Node]]:
    """Constant factors applied to a Q or K operand on its way into the QK
    product: ``Mul(q, c)`` / ``Div(q, c)`` behind layout ops (HF SDPA exports
    scale Q and K by ``sqrt(scale)`` each)."""
    factors: list[float] = []
    nodes: list[Node] = []
    for _ in range(MAX_DEPTH):
        node = graph.producer(tensor)
        if node is None or node.domain:
            break
        if node.op_type in LAYOUT_OPS and node.input(0):
            tensor = node.input(0)
            continue
        if node.op_type in ("Mul", "Div") and len(node.inputs) == 2:
            picked = None
            for i in (1, 0) if node.op_type == "Mul" else (1,):
                c = fold_scalar(ctx, graph, node.input(i))
                if c is not None and c != 0:
                    picked = (i, c)
                    break
            if picked is None:
                break
            i, c = picked
            factors.append(c if node.op_type == "Mul" else 1.0 / c)
            nodes.append(node)
            tensor = node.input(1 - i)
            continue
        break
    return factors, nodes


HEAD_PATH_OPS = ROPE_PATH_OPS | {"Gather", "GatherND", "GatherElements"}
"""What may sit between a head split and a Q/K/V operand: RoPE, QK-norm, layout,
and the ``Gather``/``Split``/``Slice`` that pick Q, K or V out of a fused QKV
projection (GPT-NeoX ``[B, S, H, 3d]``, Bloom ``[B, S, H, 3, d]``)."""


@dataclass(frozen=True)
class HeadSplit:
    """A ``Reshape`` that cuts a projection's last axis ``W`` into head axes."""

    node: Node
    source: str
    """The projection tensor ``[.., W]`` that is split."""
    width: int
    parts: tuple[int, ...]
    """The output axes the width is cut into (product ``W``): ``(h, d)``, or
    ``(h, 3d)``, ``(3, h, d)``, ``(kv, g, d)`` for fused QKV projections."""

    def heads(self, head_dim: int | None) -> int | None:
        """Heads of this split when they can be told: ``(h, k·d)`` gives ``h``; a
        split into three axes (fused QKV) does not say which axis is heads."""
        if head_dim and len(self.parts) == 2 and self.parts[1] % head_dim == 0:
            return self.parts[0]
        return None


def head_split(ctx: AnalysisContext, graph: ModelGraph, tensor: str) -> HeadSplit | None:
    """The Reshape that splits a projection ``[.., width]`` into heads, found by a
    bounded breadth-first walk back from a Q/K/V operand (through RoPE, QK-norm,
    GQA repetition and fused-QKV selection). A reshape that only adds a leading
    axis (``[B·H, S, d] → [B, H, S, d]``) is not a head split: the cut axis must
    be the input's last, concrete one."""
    for node in _head_path(ctx, graph, tensor):
        if node.op_type == "Reshape":
            split = _as_head_split(ctx, node)
            if split is not None:
                return split
    return None


def _head_path(ctx: AnalysisContext, graph: ModelGraph, tensor: str) -> Iterable[Node]:
    """Nodes between an operand and its head split, breadth first, bounded; the
    walk does not go past a head split."""
    seen = {tensor}
    queue = deque([(tensor, 0)])
    while queue:
        t, depth = queue.popleft()
        node = graph.producer(t)
        if node is None or node.domain or depth > MAX_DEPTH:
            continue
        yield node
        if node.op_type not in HEAD_PATH_OPS or (node.op_type == "Reshape" and _as_head_split(ctx, node)):
            continue
        nxt = [node.input(0)] if node.op_type in LAYOUT_OPS else list(node.inputs)
        for x in nxt:
            if x and x not in seen and not is_constant(graph, x):
                seen.add(x)
                queue.append((x, depth + 1))


def _as_head_split(ctx: AnalysisContext, node: Node) -> HeadSplit | None:
    src = node.input(0)
    s_in, s_out = ctx.shapes.shape(src), ctx.shapes.shape(node.outputs[0])
    if s_in is None or s_out is None or len(s_in) not in (2, 3) or len(s_out) <= len(s_in):
        return None
    width = D.as_int(s_in[-1])
    if not width:
        return None
    parts: list[int] = []
    prod = 1
    for d in reversed(s_out):
        v = D.as_int(d)
        if v is None or prod * v > width:
            break
        parts.insert(0, v)
        prod *= v
        if prod == width:
            break
    # [B, S, W] -> [B, S, h, d]: the leading axes are kept, W is cut in >= 2 parts.
    if prod != width or len(parts) < 2 or len(s_out) - len(parts) != len(s_in) - 1:
        return None
    return HeadSplit(node, src, width, tuple(parts))


def repetition_factor(ctx: AnalysisContext, graph: ModelGraph, tensor: str) -> int:
    """How many times K/V heads are repeated on the way to the QK product: the
    ``Expand``/``Tile`` of GQA's ``repeat_kv`` (``[B, kv, 1, S, d] → [B, kv, r, S, d]``)
    or Falcon's ``[B, S, kv, 1, d] → [B, S, kv, r, d]``. Only concrete axes that
    grow count, so a batch expansion at batch 1 or a symbolic one never does."""
    factor = 1
    for _ in range(MAX_DEPTH):
        node = graph.producer(tensor)
        if node is None or node.domain or node.op_type not in HEAD_PATH_OPS or not node.input(0):
            break
        if node.op_type == "Reshape" and _as_head_split(ctx, node) is not None:
            break
        if node.op_type in ("Expand", "Tile"):
            factor *= _growth(ctx, node)
        # Input 0 only: the activation itself, not the side tables a RoPE Mul
        # reads (GPT-J repeats its sin/cos table with an Expand too).
        tensor = node.input(0)
    return factor


def repeated_heads(ctx: AnalysisContext, graph: ModelGraph, tensor: str) -> int | None:
    """kv heads behind a GQA repetition ``[B, kv, S, d] → Unsqueeze → Expand →
    Reshape [B, kv·rep, S, d]`` whose repeat count the shapes do not state (the
    ONNX ``Attention`` function body expands to a computed shape)."""
    for _ in range(MAX_DEPTH):
        node = graph.producer(tensor)
        if node is None or node.domain or node.op_type not in LAYOUT_OPS | {"Mul", "Div"}:
            return None
        if node.op_type in ("Expand", "Tile"):
            src = graph.producer(node.input(0))
            if src is not None and src.op_type == "Unsqueeze":
                shape = ctx.shapes.shape(src.input(0))
                if shape is not None and len(shape) == 4:
                    return D.as_int(shape[1])
        tensor = node.input(0)
    return None


def _growth(ctx: AnalysisContext, node: Node) -> int:
    """Product of the concrete axes an Expand/Tile grows (1 when unknown). The
    batch axis never counts, nor does a tensor of rank < 4 (the rotary tables'
    ``inv_freq.expand(B, -1, 1)`` is not a head repetition)."""
    s_in, s_out = ctx.shapes.shape(node.input(0)), ctx.shapes.shape(node.outputs[0])
    if s_in is None or s_out is None or len(s_out) < len(s_in) or len(s_out) < 4:
        return 1
    s_in = (1,) * (len(s_out) - len(s_in)) + tuple(s_in)
    out = 1
    # not the batch axis, nor the last one (features: a repeat_interleave of a
    # table); GQA grows an axis between them ([B, kv, r, S, d], [B, S, kv, r, d])
    for a, b in list(zip(s_in, s_out, strict=True))[1:-1]:
        ia, ib = D.as_int(a), D.as_int(b)
        if ia and ib and ib > ia and ib % ia == 0:
            out *= ib // ia
    return out


def projection_input_width(ctx: AnalysisContext, graph: ModelGraph, tensor: str) -> Any:
    """Input width of the projection (MatMul/Gemm) producing ``tensor``: the model
    width d_model for a Q projection."""
    for _ in range(6):
        node = graph.producer(tensor)
        if node is None or node.domain:
            return None
        if node.op_type in ("MatMul", "Gemm", "MatMulInteger", "QLinearMatMul"):
            shape = ctx.shapes.shape(node.input(0))
            if not shape:
                return None
            if node.op_type == "Gemm" and node.attr("transA", 0):
                return shape[0]
            return shape[-1]
        if node.op_type in ("Add", "Split", "Slice", "Identity", "Cast"):
            # projection bias, fused QKV split
            cands = [x for x in node.inputs[:1 if node.op_type != "Add" else 2] if x and not is_constant(graph, x)]
            if not cands:
                return None
            tensor = cands[0]
            continue
        return None
    return None


def rope_kind(graph: ModelGraph, tensor: str) -> str | None:
    """``rotate_half`` when Sin/Cos tables multiply the operand next to a
    Neg → Concat half rotation, ``sin_cos`` for another Sin/Cos product,
    ``RotaryEmbedding`` for the fused op; None when no rotary is visible."""
    seen = {tensor}
    queue = deque([(tensor, 0)])
    has_neg_concat = False
    trig = False
    while queue:
        t, depth = queue.popleft()
        node = graph.producer(t)
        if node is None or depth > MAX_DEPTH:
            continue
        if node.op_type in ("RotaryEmbedding", "GemmaRotaryEmbedding"):
            return "RotaryEmbedding"
        if node.op_type not in ROPE_PATH_OPS or node.op_type in ("LayerNormalization",):
            continue
        if node.op_type == "Concat" and any(
                (p := graph.producer(x)) is not None and p.op_type == "Neg" for x in node.inputs):
            has_neg_concat = True
        if node.op_type == "Mul":
            for x in node.inputs:
                if _trig_source(graph, x):
                    trig = True
        for x in node.inputs:
            if x and x not in seen and not is_constant(graph, x) and not _trig_source(graph, x):
                seen.add(x)
                queue.append((x, depth + 1))
    if trig:
        return "rotate_half" if has_neg_concat else "sin_cos"
    return None


def _trig_source(graph: ModelGraph, tensor: str) -> bool:
    """``tensor`` is a Sin/Cos table behind a few layout/scale ops."""
    for _ in range(8):
        node = graph.producer(tensor)
        if node is None:
            return False
        if node.op_type in ("Sin", "Cos"):
            return True
        if node.op_type not in LAYOUT_OPS | {"Mul", "Slice", "Gather"} or not node.inputs:
            return False
        tensor = node.input(0)
    return False


_SCOPE = re.compile(r"(?:^|[./_])((?:layers?|h|blocks?|block)[._](\d+))(?=$|[./_])")


def layer_name(node: Node) -> tuple[str, str]:
    """``(display name, stack)`` from the exporter's name scopes: ``layers.3`` and
    ``m.model.layers`` for a dynamo export, ``layers.3`` from ``/model/layers.3/…``."""
    texts: list[str] = []
    for prop in node.proto.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            texts.extend(reversed(re.findall(r"'([^']*)'", prop.value)))
        elif prop.key == "namespace":
            texts.extend(reversed([p.split(":")[0].strip() for p in prop.value.split("/")]))
    texts.append(node.name)
    for text in texts:
        matches = list(_SCOPE.finditer(text))
        if matches:
            m = matches[-1]
            stack = text[:m.start(1)].rstrip("./_") + "." + re.sub(r"[._]\d+$", "", m.group(1))
            return m.group(1).replace("_", "."), stack.lstrip(".")
    return node.name, ""


def scope_path(node: Node) -> str:
    """The exporter's full module path of a node, without the wrapper prefix:
    ``encoder.block.0.layer.0.SelfAttention`` from dynamo's name scopes or
    TorchScript's ``/model/encoder/block.0/layer.0/SelfAttention/MatMul``. Used
    to tell apart layers whose short names collide (an encoder's and a decoder's
    ``layers.0``; a decoder layer's self- and cross-attention)."""
    path = ""
    for prop in node.proto.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = [x for x in re.findall(r"'([^']*)'", prop.value) if x]
            path = scopes[-2] if len(scopes) >= 2 else (scopes[-1] if scopes else "")
            break
    if not path and "/" in node.name:
        path = ".".join(p for p in node.name.split("/")[:-1] if p)
    parts = path.split(".")
    for k, part in enumerate(parts):  # drop the wrapper's own prefix (model., m.model.)
        if part in ("encoder", "decoder") or _SCOPE.match("." + ".".join(parts[k:k + 2])):
            return ".".join(parts[k:])
    return path


def same_sequence(q_len: Any, k_len: Any) -> bool:
    """Queries and keys index the same sequence: equal lengths once every
    ``past*`` dim is 0 (a KV-cache step attends to past + current keys). An
    unknown length is taken as self-attention."""
    if q_len is None or k_len is None or D.equal(q_len, k_len):
        return True
    env = {s: 0 for s in D.free_symbols(k_len) | D.free_symbols(q_len) if "past" in s.lower()}
    return D.equal(D.subs(q_len, env), D.subs(k_len, env))
