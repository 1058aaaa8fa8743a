"""Index tensors whose *values* are an affine function of their own position.

Advanced indexing exported by TorchScript (``mask[batch_idx, kv_idx]`` in the
transformers mask builders) gathers with indices computed as
``Range(0, n) + batch · n``: not constants, yet each index is ``a · i + b`` of its
position ``i`` along one axis. Read that way, the gather moves position ``a·i + b``
to position ``i`` — an affine map — instead of "any position, by data".

:func:`affine_index` walks back from an index tensor through the few ops such
expressions are built of (Range, size-1 reshapes, Cast, Expand, Add/Sub/Mul with a
constant) and returns the form, or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .. import dims as D

if TYPE_CHECKING:
    from .engine import FlowCtx

MAX_DEPTH = 24


@dataclass(frozen=True)
class Aff:
    """Value ``a · i + b`` at position ``i`` along ``axis`` (counted from the end,
    ``-1`` = last); ``axis`` None: the constant ``b`` everywhere."""

    axis: int | None
    a: Fraction
    b: Fraction


ZERO = Aff(None, Fraction(0), Fraction(0))


def affine_index(ctx: FlowCtx, tensor: str, depth: int = 0) -> Aff | None:
    """The affine value form of integer tensor ``tensor``, or None."""
    if depth > MAX_DEPTH or not tensor:
        return None
    shape = ctx.shapes.shape(tensor)
    if shape is None:
        return None
    scalar = _scalar(ctx, tensor)
    if scalar is not None:
        return Aff(None, Fraction(0), scalar)
    node = ctx.graph.producer(tensor)
    if node is None or node.domain:
        return None
    op = node.op_type
    if op == "Range":
        start, delta = _scalar(ctx, node.input(0)), _scalar(ctx, node.input(2))
        if start is None or delta is None:
            return None
        return Aff(-1, delta, start)
    if op in ("Cast", "Identity", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Expand"):
        inner = affine_index(ctx, node.input(0), depth + 1)
        if inner is None or inner.axis is None:
            return inner
        return _moved(ctx, node.input(0), tensor, inner, expand=op == "Expand")
    if op in ("Add", "Sub", "Mul"):
        x, y = (affine_index(ctx, node.input(i), depth + 1) for i in (0, 1))
        if op == "Mul" and ZERO in (x, y):  # 0 · anything (a batch offset at batch 0)
            return ZERO
        if x is None or y is None:
            return None
        x, y = (_aligned(ctx, node.input(i), tensor, f) for i, f in ((0, x), (1, y)))
        if x is None or y is None:
            return None
        if op == "Mul":
            if x.axis is not None and y.axis is not None:
                return None
            c, f = (x, y) if x.axis is None else (y, x)
            return Aff(f.axis, f.a * c.b, f.b * c.b)
        if x.axis is not None and y.axis is not None and x.axis != y.axis:
            return None
        sign = -1 if op == "Sub" else 1
        return Aff(x.axis if x.axis is not None else y.axis, x.a + sign * y.a, x.b + sign * y.b)
    return None


def _scalar(ctx: FlowCtx, tensor: str) -> Fraction | None:
    """A tensor holding one known value (every element equal)."""
    vals = ctx.shapes.values.get(tensor)
    if vals is not None:
        known = {D.as_int(v) for v in vals}
        if len(known) == 1 and None not in known:
            return Fraction(known.pop())  # type: ignore[arg-type]
        return None
    arr = ctx.graph.constant_value(tensor, 4096)
    if arr is None or arr.size == 0 or arr.dtype.kind not in "iu":
        return None
    flat = {int(v) for v in arr.reshape(-1)}
    return Fraction(flat.pop()) if len(flat) == 1 else None


def _long_axes(shape: Any) -> list[int]:
    """Axes (from the end) whose length is not 1."""
    return [k - len(shape) for k, d in enumerate(shape) if d != 1]


def _moved(ctx: FlowCtx, src: str, dst: str, f: Aff, expand: bool) -> Aff | None:
    """``f`` after a reshape or expand that keeps one long axis (or broadcasts others)."""
    s, d = ctx.shapes.shape(src), ctx.shapes.shape(dst)
    if s is None or d is None:
        return None
    if expand:
        return f if len(s) >= -f.axis and s[f.axis] == d[f.axis] else None  # type: ignore[operator,index]
    ls, ld = _long_axes(s), _long_axes(d)
    if ls != [f.axis] or len(ld) != 1 or not D.equal(s[f.axis], d[ld[0]]):  # type: ignore[index]
        return None
    return Aff(ld[0], f.a, f.b)


def _aligned(ctx: FlowCtx, src: str, dst: str, f: Aff) -> Aff | None:
    """``f`` of a broadcast operand, its axis counted from the end of the output."""
    if f.axis is None:
        return f
    s, d = ctx.shapes.shape(src), ctx.shapes.shape(dst)
    if s is None or d is None or not D.equal(s[f.axis], d[f.axis]):  # right-aligned broadcasting
        return None
    return f
