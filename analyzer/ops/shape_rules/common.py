"""The shape-rule table and the helpers every family uses (broadcasting, axes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ... import dims as D
from ...dims import Dim
from ...graph import Shape, TensorType
from ...onnxproto import TensorProto
from ..registry import RuleTable, ShapeRule

if TYPE_CHECKING:
    from ...shapes import ShapeCtx


SHAPE: RuleTable[ShapeRule] = RuleTable("shape")
T = TensorProto
BIG = 1 << 30  # slice bounds at/above this mean "to the end"

Out = list[TensorType | None]


# -- helpers ---------------------------------------------------------------
def same(ctx: ShapeCtx, i: int = 0, dtype: int | None = None) -> TensorType | None:
    t = ctx.type(i)
    if t is None:
        return None
    return TensorType(dtype if dtype is not None else t.dtype, t.shape)


def norm_axis(axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < max(rank, 1):
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return a


Conflict = Callable[[Dim, Dim], Dim]
"""Decides between two dims that broadcasting requires to be equal but that are not
provably equal; set by the shape engine for the node being inferred (records it)."""
_CONFLICT: ContextVar[Conflict | None] = ContextVar("broadcast_conflict", default=None)


class on_conflict:
    """``with on_conflict(fn):`` — ``fn`` decides the conflicts of the rules run inside.

    A slotted class, not ``@contextmanager``: the shape engine enters one per node, and
    the generator machinery cost 3 µs of a node's 60 (1M-node graphs)."""

    __slots__ = ("fn", "token")

    def __init__(self, fn: Conflict | None) -> None:
        self.fn = fn

    def __enter__(self) -> None:
        self.token = _CONFLICT.set(self.fn)

    def __exit__(self, *exc: object) -> None:
        _CONFLICT.reset(self.token)


def broadcast(shapes: Sequence[Shape | None]) -> Shape | None:
    """Numpy broadcasting with symbolic dims.

    Two non-1 dims along an axis must be *equal* for the model to run — never a max. When
    they are not provably equal (``⌈H/8⌉`` and ``2·⌈H/16⌉`` are equal only for the inputs
    the model accepts; two rules that disagree are a bug) the engine's conflict handler
    picks one and records the contradiction; without one, the first operand's dim is kept."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)  # type: ignore[arg-type]
    out: list[Dim | None] = []
    for k in range(rank):
        cands = []
        for s in shapes:
            j = k - (rank - len(s))  # type: ignore[arg-type]
            if j >= 0:
                cands.append(s[j])  # type: ignore[index]
        non_one = [d for d in cands if d != 1]
        if not non_one:
            out.append(1)
            continue
        known = [d for d in non_one if d is not None]
        if len(known) < len(non_one):
            concrete = [d for d in known if D.is_int(d)]
            out.append(concrete[0] if concrete else None)
            continue
        res = known[0]
        for d in known[1:]:
            if not D.equal(res, d):
                resolve = _CONFLICT.get()
                res = resolve(res, d) if resolve is not None else res
        out.append(res)
    return tuple(out)


def elementwise_values(ctx: ShapeCtx, fn: Any, n: int = 2) -> list[Dim | None] | None:
    vals = [ctx.value(i) for i in range(n)]
    if any(v is None for v in vals):
        return None
    length = max(len(v) for v in vals)  # type: ignore[arg-type]
    if any(len(v) not in (1, length) for v in vals):  # type: ignore[arg-type]
        return None
    out: list[Dim | None] = []
    for k in range(length):
        args = [v[0] if len(v) == 1 else v[k] for v in vals]  # type: ignore[index,arg-type]
        out.append(None if any(a is None for a in args) else fn(*args))
    return out


def axes_input_or_attr(ctx: ShapeCtx, input_index: int, attr: str = "axes") -> list[int] | None:
    if ctx.has(input_index):
        return ctx.ints(input_index)
    value = ctx.attr(attr)
    return list(value) if value is not None else None
