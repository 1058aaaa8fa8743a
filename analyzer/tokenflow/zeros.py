"""Structural zeros: where a tensor is zero whatever the inputs, as a band between two axes.

Why: a contraction over the token axis mixes every position *unless* one factor is
known to be zero for some (output, contracted) pairs. Attention gets this from its
mask (``attention/``); a state-space model's chunked scan (Mamba-2 / Bamba's
"state-space duality") builds the same lower-triangular factor without a softmax:
``exp(where(~tril(ones), -inf, segsum))`` then an ``Einsum`` that sums over the
source chunk. Read from the graph, that factor makes the sum causal.

A :class:`Fact` says that outside (or inside) the band ``lo <= col - row <= hi`` of
two axes the value is always ``zero`` (0 / False), ``ninf`` (a large negative
constant, so that ``Exp`` of it underflows to 0) or ``true`` (nonzero). Facts are
derived only from constants and from ops whose result there does not depend on the
other inputs (``Trilu``, ``Where`` with a constant branch, ``Exp``, products), so a
fact is a property of every run, and a contraction gated by it is still an upper
bound (sound).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .deps import Band, band, lin

if TYPE_CHECKING:
    from ..graph import ModelGraph, Node
    from ..shapes import ShapeTable

NEG_LARGE = -1e4
"""At or below this a constant is ``ninf``: ``exp`` of it is 0 in float32 and float64."""
CONST_CAP = 1 << 16
FLOAT_CAP = 64
"""Float initializers read for their zeros: scalars and tiny tables, never weights."""
_FLOATS = frozenset({1, 10, 11, 16})  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
MAX_DEPTH = 24


@dataclass(frozen=True)
class Fact:
    """Value ``kind`` wherever ``lo <= col - row <= hi`` is ``inside`` (True) or
    is not (False). ``None`` bounds are unbounded; axes are of this tensor."""

    kind: str  # "zero" | "ninf" | "true"
    row: int
    col: int
    lo: int | None
    hi: int | None
    inside: bool = False

    def moved(self, row: int, col: int) -> Fact:
        return replace(self, row=row, col=col)


_FLIP = {"zero": "true", "true": "zero"}


class ZeroFacts:
    """Facts per tensor of one graph, computed on demand and cached."""

    def __init__(self, graph: ModelGraph, shapes: ShapeTable) -> None:
        self.graph = graph
        self.shapes = shapes
        self._cache: dict[str, tuple[Fact, ...]] = {}

    def of(self, tensor: str, depth: int = 0) -> tuple[Fact, ...]:
        if not tensor:
            return ()
        if tensor in self._cache:
            return self._cache[tensor]
        if depth > MAX_DEPTH:
            return ()
        self._cache[tensor] = ()  # cycles (none in a DAG) and re-entry see nothing
        facts = tuple(self._derive(tensor, depth))
        self._cache[tensor] = facts
        return facts

    def gate(self, tensor: str, out_axis: int, contracted: int) -> Band | None:
        """Contracted positions that can be nonzero at ``out_axis`` position i
        (both axes of ``tensor``), as a band i ↦ [i + a, i + b]; None: no fact."""
        for f in map(_outside, self.of(tensor)):
            if f is None or f.kind != "zero":
                continue
            if f.row == out_axis and f.col == contracted:  # col - row = c - i in [lo, hi]
                lo, hi = f.lo, f.hi
            elif f.col == out_axis and f.row == contracted:  # i - c in [lo, hi]: c in [i - hi, i - lo]
                lo, hi = (None if f.hi is None else -f.hi), (None if f.lo is None else -f.lo)
            else:
                continue
            return band(None if lo is None else [lin(1, lo)], None if hi is None else [lin(1, hi)])
        return None

    # -- derivation ---------------------------------------------------------------------
    def _rank(self, tensor: str) -> int | None:
        s = self.shapes.shape(tensor)
        return None if s is None else len(s)

    def _derive(self, tensor: str, depth: int) -> list[Fact]:
        const = self._const(tensor)
        if const is not None:
            return _const_facts(const)
        node = self.graph.producer(tensor)
        if node is None or node.domain not in ("", "ai.onnx"):
            return []
        fn = getattr(self, "_op_" + node.op_type, None)
        return list(fn(node, depth)) if fn is not None else []

    def _const(self, tensor: str) -> np.ndarray | None:
        """A small constant's value. A float initializer beyond :data:`FLOAT_CAP`
        elements is a weight, not a mask: never read (nor read back from the file)."""
        folded = self.shapes.consts.get(tensor)
        if isinstance(folded, np.ndarray):
            return folded
        init = self.graph.initializers.get(tensor)
        if init is not None and (init.external or (init.dtype in _FLOATS and init.numel > FLOAT_CAP)):
            return None
        return self.graph.constant_value(tensor, CONST_CAP)

    def _scalar(self, tensor: str) -> str | None:
        """The kind of a constant that is one value everywhere."""
        v = self._const(tensor)
        if v is None or v.size == 0:
            return None
        flat = np.asarray(v).reshape(-1)
        if v.dtype.kind not in "biuf" or not np.all(flat == flat[0]):
            return None
        x = float(flat[0])
        return "zero" if x == 0 else "ninf" if x <= NEG_LARGE else "true" if not np.isnan(x) else None

    def _all_nonzero(self, tensor: str, depth: int) -> bool:
        if self._scalar(tensor) in ("true", "ninf"):
            return True
        node = self.graph.producer(tensor)
        if node is None:
            return False
        if node.op_type == "Expand":
            return self._all_nonzero(node.input(0), depth + 1)
        if node.op_type == "ConstantOfShape":
            v = node.attr("value")
            arr = None if v is None else np.asarray(v)
            return arr is None or (arr.size > 0 and bool(np.all(arr != 0)))  # default value is 0
        return False

    def _aligned(self, name: str, out_rank: int | None, depth: int) -> list[Fact]:
        """An input's facts in the output's axes (numpy broadcasting: right-aligned).
        A fact on an axis of size 1 is dropped: broadcast, it has no band to speak of."""
        src = self.shapes.shape(name)
        if src is None or out_rank is None:
            return []
        shift = out_rank - len(src)
        return [f.moved(f.row + shift, f.col + shift) for f in self.of(name, depth + 1)
                if src[f.row] != 1 and src[f.col] != 1]

    def _op_Trilu(self, node: Node, depth: int) -> list[Fact]:
        r = self._rank(node.outputs[0])
        k_arr = self._const(node.input(1)) if node.input(1) else np.zeros(1, np.int64)
        if r is None or r < 2 or k_arr is None or k_arr.size != 1:
            return []
        k = int(np.asarray(k_arr).reshape(-1)[0])
        lo, hi = (k, None) if node.attr("upper", 1) else (None, k)
        out = [Fact("zero", r - 2, r - 1, lo, hi)]
        if self._all_nonzero(node.input(0), depth):
            out.append(Fact("true", r - 2, r - 1, lo, hi, inside=True))
        return out

    def _op_Not(self, node: Node, depth: int) -> list[Fact]:
        return [replace(f, kind=_FLIP[f.kind]) for f in self.of(node.input(0), depth + 1) if f.kind in _FLIP]

    def _op_Cast(self, node: Node, depth: int) -> list[Fact]:
        from onnx import TensorProto

        to_bool = node.attr("to") == TensorProto.BOOL
        keep = {"zero", "true"} if to_bool else {"zero"}
        return [f for f in self.of(node.input(0), depth + 1) if f.kind in keep]

    def _op_Identity(self, node: Node, depth: int) -> list[Fact]:
        return list(self.of(node.input(0), depth + 1))

    def _op_Exp(self, node: Node, depth: int) -> list[Fact]:
        return [replace(f, kind="zero") for f in self.of(node.input(0), depth + 1) if f.kind == "ninf"]

    def _op_Mul(self, node: Node, depth: int) -> list[Fact]:
        r = self._rank(node.outputs[0])
        return [f for i in range(2) for f in self._aligned(node.input(i), r, depth) if f.kind == "zero"]

    _op_And = _op_Mul

    def _op_Where(self, node: Node, depth: int) -> list[Fact]:
        r = self._rank(node.outputs[0])
        out: list[Fact] = []
        for f in self._aligned(node.input(0), r, depth):
            branch = node.input(1) if f.kind == "true" else node.input(2) if f.kind == "zero" else None
            kind = self._scalar(branch) if branch else None
            if kind is not None:
                out.append(replace(f, kind=kind))
        return out

    def _op_Transpose(self, node: Node, depth: int) -> list[Fact]:
        r = self._rank(node.input(0))
        if r is None:
            return []
        perm = list(node.attr("perm") or list(range(r))[::-1])
        where = {p: k for k, p in enumerate(perm)}
        return [f.moved(where[f.row], where[f.col]) for f in self.of(node.input(0), depth + 1)]

    def _op_Expand(self, node: Node, depth: int) -> list[Fact]:
        return self._aligned(node.input(0), self._rank(node.outputs[0]), depth)

    def _op_Unsqueeze(self, node: Node, depth: int) -> list[Fact]:
        r_out = self._rank(node.outputs[0])
        axes = node.attr("axes")
        if axes is None and node.input(1):
            arr = self._const(node.input(1))
            axes = None if arr is None else [int(x) for x in np.asarray(arr).reshape(-1)]
        if r_out is None or axes is None:
            return []
        new = sorted(a + r_out if a < 0 else a for a in axes)
        kept = [k for k in range(r_out) if k not in new]
        return [f.moved(kept[f.row], kept[f.col]) for f in self.of(node.input(0), depth + 1)]


def _outside(f: Fact) -> Fact | None:
    """``f`` as "outside a band": inside ``[lo, ∞)`` is outside ``(-∞, lo - 1]``."""
    if not f.inside:
        return f
    if f.hi is None and f.lo is not None:
        return replace(f, lo=None, hi=f.lo - 1, inside=False)
    if f.lo is None and f.hi is not None:
        return replace(f, lo=f.hi + 1, hi=None, inside=False)
    return None


def _const_facts(v: np.ndarray) -> list[Fact]:
    """Facts of a constant's last two axes: where it is zero (or nonzero) throughout."""
    if v.ndim < 2 or v.dtype.kind not in "biuf" or v.shape[-1] == 0 or v.shape[-2] == 0:
        return []
    mat = np.asarray(v).reshape(-1, v.shape[-2], v.shape[-1])
    rows, cols = np.indices(mat.shape[1:])
    diff = cols - rows
    nz = np.any(mat != 0, axis=0)
    out: list[Fact] = []
    r = v.ndim
    if nz.any() and not nz.all():
        lo, hi = int(diff[nz].min()), int(diff[nz].max())
        inside = (diff >= lo) & (diff <= hi)
        # A band that reaches the matrix's corner is open on that side (the same fact
        # at this size, and one a complement can be taken of).
        lo_open = None if lo <= int(diff.min()) else lo
        hi_open = None if hi >= int(diff.max()) else hi
        out.append(Fact("zero", r - 2, r - 1, lo_open, hi_open))
        if np.all(mat[:, inside] != 0):
            out.append(Fact("true", r - 2, r - 1, lo_open, hi_open, inside=True))
    return out
