"""Evaluate small ONNX graphs with numpy: the ops of shape arithmetic and attention masks.

Why: folding a ``Cast``/``Unsqueeze`` of a shape and evaluating a mask slice
(``Range → Unsqueeze → LessOrEqual → And``…) need ``onnx.reference`` only for its
kernels, but importing onnx costs ~0.7 s (:mod:`.onnxproto`) — more than the rest of
Mistral-7B's report. The ~40 ops those slices are made of are written here as
numpy, each as ``onnx.reference`` computes it (same dtype rules: integer ``Div``
truncates, results keep the first input's dtype); ``tests/test_npeval.py`` checks
every kernel against the expected outputs of onnx's own node tests and every slice
and fold of the test models against ``onnx.reference``. An op or attribute not
covered raises :class:`Unsupported`; callers then use ``onnx.reference``.

Sizes are checked before allocation: an ``Expand``/``Range``/``Tile``/
``ConstantOfShape`` above ``max_elements`` raises :class:`TooLarge`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .onnxproto import AttributeProto, attribute_value
from .safeio import tensor_array
from .tensors import numpy_dtype


class Unsupported(Exception):
    """An op (or an attribute of it) this evaluator does not implement."""


class TooLarge(Exception):
    """A result would exceed the element budget."""


Kernel = Callable[[Any, list[Any], dict[str, Any], int, int], list[Any]]
KERNELS: dict[str, Kernel] = {}


def kernel(*ops: str) -> Callable[[Kernel], Kernel]:
    def register(fn: Kernel) -> Kernel:
        for op in ops:
            KERNELS[op] = fn
        return fn
    return register


def _same(a: np.ndarray, r: Any) -> np.ndarray:
    r = np.asarray(r)
    return r.astype(a.dtype) if r.dtype != a.dtype else r


def _int_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    q = np.floor_divide(x, y)
    adjust = (np.remainder(x, y) != 0) & ((x < 0) ^ (y < 0))
    return q + adjust.astype(q.dtype)


_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "MatMul": np.matmul}
_COMPARE = {"Equal": np.equal, "Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal,
            "GreaterOrEqual": np.greater_equal}
_LOGIC = {"And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor}
_UNARY = {"Abs": np.abs, "Neg": np.negative, "Floor": np.floor, "Ceil": np.ceil, "Sqrt": np.sqrt,
          "Reciprocal": np.reciprocal, "Log": np.log, "Exp": np.exp, "Sign": np.sign}


@kernel(*_BINARY)
def _binary(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    return [_same(x[0], _BINARY[op](x[0], x[1]))]


@kernel("Div")
def _div(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    p, q = x
    if np.issubdtype(p.dtype, np.integer):
        if not np.issubdtype(q.dtype, np.integer):
            raise Unsupported("Div of int by float")
        return [_same(p, _int_div(p, q))]
    return [_same(p, np.divide(p, q))]


@kernel("Pow")
def _pow(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    if not np.issubdtype(x[0].dtype, np.floating):
        raise Unsupported("integer Pow")
    return [_same(x[0], np.power(x[0], x[1]))]


@kernel(*_COMPARE)
def _compare(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    return [np.asarray(_COMPARE[op](x[0], x[1]))]


@kernel(*_LOGIC)
def _logic(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    return [np.asarray(_LOGIC[op](x[0], x[1]))]


@kernel("Not")
def _not(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    return [np.logical_not(x[0])]


@kernel(*_UNARY)
def _unary(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    with np.errstate(all="ignore"):
        return [_same(x[0], _UNARY[op](x[0]))]


@kernel("Min", "Max")
def _minmax(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    fn = np.minimum if op == "Min" else np.maximum
    out = x[0]
    for y in x[1:]:
        out = fn(out, y)
    return [_same(x[0], out)]


@kernel("Where")
def _where(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    return [np.where(x[0], x[1], x[2]).astype(x[1].dtype, copy=False)]


@kernel("Identity")
def _identity(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    return [x[0]]


@kernel("Cast")
def _cast(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    if x[0].dtype.kind not in "biuf" or "round_mode" in a:
        raise Unsupported("Cast of this dtype")
    try:
        to = numpy_dtype(a["to"])
    except Exception as exc:
        raise Unsupported(f"Cast to {a.get('to')}") from exc
    if np.dtype(to).kind not in "biuf":
        raise Unsupported("Cast to this dtype")
    with np.errstate(all="ignore"):
        return [x[0].astype(to)]


@kernel("CastLike")
def _cast_like(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    if x[0].dtype.kind not in "biuf" or x[1].dtype.kind not in "biuf":
        raise Unsupported("CastLike of this dtype")
    with np.errstate(all="ignore"):
        return [x[0].astype(x[1].dtype)]


@kernel("Shape")
def _shape(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    rank = x[0].ndim
    start, end = a.get("start", 0), a.get("end", rank)
    start, end = (min(max(v + rank if v < 0 else v, 0), rank) for v in (start, end))
    return [np.array(x[0].shape[start:end], dtype=np.int64)]


@kernel("Size")
def _size(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    return [np.array(x[0].size, dtype=np.int64)]


def _axes(x: list[Any], a: dict[str, Any], opset: int, since: int) -> list[int] | None:
    if opset >= since:
        return None if len(x) < 2 or x[1] is None else [int(v) for v in x[1].reshape(-1)]
    return list(a["axes"]) if "axes" in a else None


@kernel("Squeeze")
def _squeeze(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    axes = _axes(x, a, opset, 13)
    return [np.squeeze(x[0], axis=None if axes is None else tuple(axes))]


@kernel("Unsqueeze")
def _unsqueeze(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    axes = _axes(x, a, opset, 13)
    if axes is None:
        raise Unsupported("Unsqueeze without axes")
    rank = x[0].ndim + len(axes)
    return [np.expand_dims(x[0], axis=tuple(sorted(v + rank if v < 0 else v for v in axes)))]


@kernel("Reshape")
def _reshape(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    data, shape = x[0], [int(v) for v in x[1].reshape(-1)]
    if not a.get("allowzero", 0):
        shape = [data.shape[i] if v == 0 and i < data.ndim else v for i, v in enumerate(shape)]
    return [data.reshape(shape)]


@kernel("Flatten")
def _flatten(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    axis = a.get("axis", 1)
    axis = axis + x[0].ndim if axis < 0 else axis
    outer = int(np.prod(x[0].shape[:axis], dtype=np.int64))
    return [x[0].reshape(outer, -1) if x[0].size else x[0].reshape(outer, int(np.prod(x[0].shape[axis:])))]


@kernel("Concat")
def _concat(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    return [np.concatenate([v for v in x if v is not None], axis=a["axis"])]


@kernel("Transpose")
def _transpose(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    perm = a.get("perm")
    return [np.transpose(x[0], perm if perm else None)]


def _check(numel: int, budget: int) -> None:
    if numel > budget:
        raise TooLarge(f"{numel:,} elements")


@kernel("Expand")
def _expand(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    shape = np.broadcast_shapes(x[0].shape, tuple(int(v) for v in x[1].reshape(-1)))
    _check(math.prod(shape), budget)  # Python ints: an int64 product of hostile sizes wraps
    return [np.broadcast_to(x[0], shape).copy()]


@kernel("Tile")
def _tile(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    reps = [int(v) for v in x[1].reshape(-1)]
    _check(x[0].size * math.prod(reps), budget)
    return [np.tile(x[0], reps)]


@kernel("Range")
def _range(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    start, limit, delta = (v.item() for v in x[:3])
    if delta == 0:
        raise Unsupported("Range with delta 0")
    _check(max(int(np.ceil((limit - start) / delta)), 0), budget)
    return [np.arange(start, limit, delta).astype(x[0].dtype)]


@kernel("ConstantOfShape")
def _constant_of_shape(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    shape = tuple(int(v) for v in x[0].reshape(-1))
    _check(math.prod(shape), budget)
    value = _value(a["value"], 1).reshape(-1) if "value" in a else np.zeros(1, dtype=np.float32)
    return [np.full(shape, value[0], dtype=value.dtype)]


@kernel("Slice")
def _slice(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    if opset < 10:
        raise Unsupported("Slice-1")
    data = x[0]
    starts, ends = x[1].reshape(-1), x[2].reshape(-1)
    axes = x[3].reshape(-1) if len(x) > 3 and x[3] is not None else range(len(starts))
    steps = x[4].reshape(-1) if len(x) > 4 and x[4] is not None else [1] * len(starts)
    slices = [slice(None)] * data.ndim
    for s, e, ax, d in zip(starts, ends, axes, steps, strict=True):
        slices[int(ax)] = slice(int(s), int(e), int(d))
    return [data[tuple(slices)]]


@kernel("Gather")
def _gather(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    return [np.take(x[0], x[1].astype(np.int64), axis=a.get("axis", 0))]


@kernel("GatherND")
def _gather_nd(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    if a.get("batch_dims", 0):
        raise Unsupported("GatherND with batch_dims")
    data, idx = x[0], x[1].astype(np.int64)
    return [np.asarray(data[tuple(idx[..., k] for k in range(idx.shape[-1]))])]


@kernel("CumSum")
def _cumsum(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    data, axis = x[0], int(x[1].reshape(-1)[0])
    if a.get("reverse", 0):
        data = np.flip(data, axis)
    out = np.cumsum(data, axis=axis, dtype=data.dtype)
    if a.get("exclusive", 0):
        out = np.roll(out, 1, axis)
        index = [slice(None)] * out.ndim
        index[axis] = slice(0, 1)
        out[tuple(index)] = 0
    return [np.flip(out, axis) if a.get("reverse", 0) else out]


@kernel("Trilu")
def _trilu(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    k = int(x[1].reshape(-1)[0]) if len(x) > 1 and x[1] is not None else 0
    return [np.triu(x[0], k) if a.get("upper", 1) else np.tril(x[0], k).astype(x[0].dtype)]


@kernel("Constant")
def _constant(op: str, x: list[Any], a: dict[str, Any], opset: int, budget: int) -> list[Any]:
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64), ("value_floats", np.float32),
                       ("value_ints", np.int64)):
        if key in a:
            return [np.array(a[key], dtype=dtype)]
    if "value" in a:
        return [_value(a["value"], budget)]
    raise Unsupported("Constant without a dense value")


def _value(t: Any, budget: int) -> np.ndarray:
    """A tensor attribute's value through the guarded reader (an external one is never read)."""
    value = tensor_array(t, budget)
    if value is None:
        raise Unsupported("tensor attribute not inline, too large or malformed")
    return value


def attributes(node: Any) -> dict[str, Any]:
    """The node's attributes as ``onnx.reference`` sees them (no graphs)."""
    out = {}
    for attr in node.attribute:
        if attr.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) or attr.ref_attr_name:
            raise Unsupported("subgraph or reference attribute")
        out[attr.name] = attribute_value(attr)
    return out


def run_node(node: Any, inputs: Sequence[np.ndarray | None], opset: int, budget: int) -> list[np.ndarray]:
    """The outputs of one default-domain node; raises Unsupported / TooLarge."""
    fn = KERNELS.get(node.op_type)
    if fn is None or node.domain not in ("", "ai.onnx"):
        raise Unsupported(node.op_type)
    args = [None if v is None else np.asarray(v) for v in inputs]
    try:
        _check(_bound(node.op_type, args), budget)
        return fn(node.op_type, args, attributes(node), opset, budget)
    except (Unsupported, TooLarge):
        raise
    except (KeyError, IndexError, TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
        raise Unsupported(f"{node.op_type}: {exc}") from exc


_BROADCAST = {*_BINARY, *_COMPARE, *_LOGIC, "Div", "Pow", "Where", "Min", "Max"} - {"MatMul"}


def _bound(op: str, x: list[Any]) -> int:
    """An upper bound on the result's elements, known before computing it (ops whose
    result can outgrow their inputs; the size-taking ones check their own)."""
    present = [v for v in x if v is not None]
    if op in _BROADCAST:
        return int(np.prod(np.broadcast_shapes(*(v.shape for v in present)), dtype=np.int64))
    if op == "MatMul":
        a, b = present
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        return int(np.prod(batch, dtype=np.int64)) * (a.shape[-2] if a.ndim > 1 else 1) * \
            (b.shape[-1] if b.ndim > 1 else 1)
    if op in ("Gather", "GatherND"):
        return present[0].size * max(present[1].size, 1)
    return 0


class Evaluator:
    """A small graph — nodes in topological order, initializer values — run with numpy."""

    def __init__(self, nodes: Iterable[Any], initializers: dict[str, np.ndarray], opset: int,
                 budget: int) -> None:
        self.nodes = list(nodes)
        for n in self.nodes:
            if n.op_type not in KERNELS or n.domain not in ("", "ai.onnx"):
                raise Unsupported(n.op_type)
        self.initializers = initializers
        self.opset = opset
        self.budget = budget

    def run(self, outputs: Sequence[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        env: dict[str, Any] = {**self.initializers, **feeds}
        for n in self.nodes:
            values = run_node(n, [env[i] if i else None for i in n.input], self.opset, self.budget)
            for name, v in zip(n.output, values, strict=False):
                if name:
                    env[name] = v
        return [env[o] for o in outputs]
