"""Dependency families: which source positions one position depends on.

A *dependency* maps a position ``i`` (of some tensor axis) to the set of
positions of a source axis that can influence it. Two kinds exist:

:class:`Band` — the affine-band family ``i ↦ [min_k(s_k·i + c_k), max_k(s_k·i + c_k)]``
with either bound possibly infinite. Conv/pool/slice/resize (``[S·i + a, S·i + b]``),
causal attention (``(-∞, i]``), a sliding window (``[i - W + 1, i]``) and
bidirectional attention (``(-∞, ∞)``) are all bands, and bands are closed under
composition and union, so L layers of anything affine compose *symbolically* in
microseconds: L windows of W → ``[i - L(W-1), i]``. The hull of a band is the
Distill receptive field: size ``b - a + 1``, stride ``S``, offset ``(a + b)/2``.

:class:`Pattern` — key sets that are not bands (chunked, global+local, dilated,
block-sparse, a concrete evaluated mask). They are evaluated at a concrete
length ``n`` through :meth:`Dep.image`, the set of source positions reachable
from a whole *interval* of positions, so composing L layers costs O(L · pieces)
per query and never materialises an n×n matrix. Each pattern also carries a
sound band ``hull`` for symbolic summaries.

Compositions and unions that involve a pattern become :class:`Chain` and
:class:`Union` nodes. Everything here is immutable and hashable.

Positions outside ``[0, n)`` are clamped; an empty result is an empty list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any

Interval = tuple[int, int]
UNCLIPPED = 1 << 62
"""Upper clip for an intermediate axis of unknown length inside a :class:`Chain`."""


class UnknownAtLength(ValueError):
    """A concrete mask pattern was asked about a length it was not evaluated at."""
Num = Any  # Fraction or a symbolic dim expression (e.g. ``seq - 1``)

MAX_TERMS = 6


def _num(x: Any) -> Num:
    if isinstance(x, (int, Fraction)):
        return Fraction(x)
    if isinstance(x, float):
        return Fraction(x).limit_denominator(1 << 20)
    return x  # sympy expression


def _is_const(x: Any) -> bool:
    return isinstance(x, (int, Fraction))


def _eval(x: Num, env: dict[str, int] | None) -> Fraction:
    if isinstance(x, Fraction):
        return x
    if env is None:
        raise ValueError(f"symbolic offset {x} needs dim bindings")
    from .. import dims as D

    v = D.subs(x, env)
    if isinstance(v, (int, Fraction)):
        return Fraction(v)
    raise ValueError(f"offset {x} is not fully bound by {env}")


@dataclass(frozen=True)
class Lin:
    """``s·i + c``."""

    s: Fraction
    c: Num

    def at(self, i: Num) -> Num:
        return self.s * i + self.c


def lin(s: Any = 1, c: Any = 0) -> Lin:
    return Lin(Fraction(s), _num(c))


def merge_intervals(items: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for lo, hi in sorted(i for i in items if i[0] <= i[1]):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def count(intervals: Sequence[Interval]) -> int:
    return sum(hi - lo + 1 for lo, hi in intervals)


class Dep:
    """Base class: a position → source-positions family."""

    def image(self, lo: int, hi: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        """Source positions (merged intervals, within ``[0, n)``) that any position
        in ``[lo, hi]`` depends on, at source length ``n``."""
        raise NotImplementedError

    def at(self, i: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        return self.image(i, i, n, env)

    def image_set(self, intervals: Sequence[Interval], n: int, env: dict[str, int] | None = None) -> list[Interval]:
        out: list[Interval] = []
        for lo, hi in intervals:
            out.extend(self.image(lo, hi, n, env))
        return merge_intervals(out)

    @property
    def hull(self) -> Band:
        """A sound band over-approximation (for symbolic summaries)."""
        raise NotImplementedError

    @property
    def is_band(self) -> bool:
        return False

    def describe(self) -> str:
        return repr(self)


@dataclass(frozen=True)
class Band(Dep):
    """``i ↦ [min(lo terms), max(hi terms)]``; ``None`` bound = unbounded."""

    lo: tuple[Lin, ...] | None
    hi: tuple[Lin, ...] | None

    @property
    def is_band(self) -> bool:
        return True

    @property
    def hull(self) -> Band:
        return self

    @property
    def is_all(self) -> bool:
        return self.lo is None and self.hi is None

    def bounds(self, lo: int, hi: int, env: dict[str, int] | None = None) -> tuple[float | Fraction, float | Fraction]:
        """Unclamped ``(min, max)`` over positions ``lo..hi``."""
        def extreme(terms: tuple[Lin, ...] | None, pick: Any, inf: float) -> Any:
            if terms is None:
                return inf
            vals: list[Fraction] = []
            for t in terms:
                c = _eval(t.c, env)
                vals.extend((t.s * lo + c, t.s * hi + c))
            return pick(vals)

        return extreme(self.lo, min, -math.inf), extreme(self.hi, max, math.inf)

    def image(self, lo: int, hi: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        a, b = self.bounds(lo, hi, env)
        first = 0 if a == -math.inf else max(0, math.ceil(a))
        last = n - 1 if b == math.inf else min(n - 1, math.floor(b))
        return [(first, last)] if first <= last else []

    def describe(self) -> str:
        def side(terms: tuple[Lin, ...] | None, inf: str) -> str:
            if terms is None:
                return inf
            parts = []
            for t in terms:
                s = "" if t.s == 0 else ("i" if t.s == 1 else f"{t.s}·i")
                if not s:
                    c = f"{t.c}"
                elif t.c == 0:
                    c = ""
                else:
                    negative = _is_const(t.c) and t.c < 0
                    c = f"{'' if negative else '+'}{t.c}"
                parts.append(f"{s}{c}" if (s or c) else "0")
            return parts[0] if len(parts) == 1 else ("min" if inf == "-∞" else "max") + "(" + ", ".join(parts) + ")"

        return f"[{side(self.lo, '-∞')}, {side(self.hi, '∞')}]"

    # -- Distill receptive-field view ---------------------------------------------
    def affine(self) -> tuple[Fraction, Num, Num] | None:
        """``(S, a, b)`` when the band is exactly ``[S·i + a, S·i + b]``."""
        if self.lo is None or self.hi is None or len(self.lo) != 1 or len(self.hi) != 1:
            return None
        lo, hi = self.lo[0], self.hi[0]
        if lo.s != hi.s:
            return None
        return lo.s, lo.c, hi.c


def _prune(terms: list[Lin], keep_min: bool) -> tuple[Lin, ...]:
    by_slope: dict[Fraction, Lin] = {}
    symbolic: list[Lin] = []
    for t in terms:
        if not _is_const(t.c):
            if t not in symbolic:
                symbolic.append(t)
            continue
        cur = by_slope.get(t.s)
        if cur is None or (t.c < cur.c if keep_min else t.c > cur.c):
            by_slope[t.s] = t
    out = list(by_slope.values()) + symbolic
    if len(out) > MAX_TERMS:
        consts = [t for t in out if _is_const(t.c)]
        if len(consts) == len(out):
            # Sound merge for i >= 0: min_k(s_k i + c_k) >= (min s)·i + min c (and max for upper).
            pick = min if keep_min else max
            out = [Lin(pick(t.s for t in out), pick(t.c for t in out))]
    return tuple(sorted(out, key=lambda t: (t.s, str(t.c))))


def _whole_positions(t: Lin, lower: bool) -> Lin:
    """A bound with an integer slope, evaluated at whole positions, takes whole
    values: only the integers inside it count, so its constant rounds inward
    (ceil for a lower bound, floor for an upper) without changing any position's
    set. Without this, ``[t - 3/4, t + 3/4]`` (a merge by 4 undone by a split by
    4: Swin's window partition and reverse) composed further would widen the
    band by the lost fractions at every round trip."""
    if t.s.denominator != 1 or not isinstance(t.c, Fraction) or t.c.denominator == 1:
        return t
    return Lin(t.s, Fraction(math.ceil(t.c) if lower else math.floor(t.c)))


def band(lo: Iterable[Lin] | None, hi: Iterable[Lin] | None) -> Band:
    return Band(None if lo is None else _prune([_whole_positions(t, True) for t in lo], True),
                None if hi is None else _prune([_whole_positions(t, False) for t in hi], False))


def affine(s: Any, a: Any, b: Any) -> Band:
    """``i ↦ [s·i + a, s·i + b]`` (a conv with stride s, span b - a + 1)."""
    return band([lin(s, a)], [lin(s, b)])


IDENTITY = affine(1, 0, 0)
ALL = Band(None, None)
CAUSAL = Band(None, (lin(1, 0),))
ANTICAUSAL = Band((lin(1, 0),), None)


def window(w: int, right: int = 0) -> Band:
    """Keys ``i - w + 1 .. i + right`` (HF ``sliding_window=w``: w keys incl. itself)."""
    return band([lin(1, 1 - w)], [lin(1, right)])


def constant(lo: Any, hi: Any) -> Band:
    return band([lin(0, lo)], [lin(0, hi)])


# -- composition ---------------------------------------------------------------------
def _compose_side(g_terms: tuple[Lin, ...] | None, f: Band, lower: bool) -> tuple[Lin, ...] | None:
    """Bound of ``g(f(i))`` on one side, g's terms applied to f's interval."""
    if g_terms is None:
        return None
    out: list[Lin] = []
    for t in g_terms:
        if t.s == 0:
            out.append(t)
            continue
        # g's lower bound is monotone in its argument: with s > 0 the minimum over
        # f(i) = [f.lo, f.hi] is at f.lo; with s < 0 at f.hi (and vice versa).
        src = f.lo if (t.s > 0) == lower else f.hi
        if src is None:
            return None
        for u in src:
            out.append(Lin(t.s * u.s, t.s * u.c + t.c))
    return tuple(out)


def compose(f: Dep, g: Dep) -> Dep:
    """``f`` then ``g``: position i → f(i) (intermediate positions) → g of those."""
    if isinstance(f, Band) and isinstance(g, Band):
        if f == IDENTITY:
            return g
        if g == IDENTITY:
            return f
        if g.is_all:
            return g
        if not _integral(f):
            # f lands between integer positions (transposed conv, upsampling):
            # merging would skip the rounding to whole intermediate positions and
            # over-approximate, so keep the steps; ``hull`` still merges them.
            return Chain((f, g))
        return band(_compose_side(g.lo, f, True), _compose_side(g.hi, f, False))
    steps: list[Dep] = []
    for d in (f, g):
        steps.extend(d.steps if isinstance(d, Chain) else (d,))
    steps = [s for s in steps if s != IDENTITY]
    merged: list[Dep] = []
    for s in steps:  # fold adjacent bands (unless the first lands between positions)
        if merged and isinstance(merged[-1], Band) and isinstance(s, Band) and _integral(merged[-1]):
            merged[-1] = compose(merged[-1], s)
        else:
            merged.append(s)
    return merged[0] if len(merged) == 1 else Chain(tuple(merged))


def _integral(b: Band) -> bool:
    """Integer slopes and offsets: maps whole positions to whole positions."""
    for terms in (b.lo, b.hi):
        for t in terms or ():
            if t.s.denominator != 1 or (_is_const(t.c) and Fraction(t.c).denominator != 1):
                return False
    return True


def _split(d: Dep) -> tuple[Dep, Dep]:
    """``d = compose(head, tail)`` with ``tail`` the step nearest the source."""
    if isinstance(d, Chain):
        head = d.steps[0] if len(d.steps) == 2 else Chain(d.steps[:-1])
        return head, d.steps[-1]
    return IDENTITY, d


def band_hull(*bands: Band) -> Band:
    """One band containing every one of ``bands`` (their hull, gaps bridged)."""
    if any(b.is_all for b in bands):
        return ALL
    lo = None if any(b.lo is None for b in bands) else [t for b in bands for t in b.lo]  # type: ignore[union-attr]
    hi = None if any(b.hi is None for b in bands) else [t for b in bands for t in b.hi]  # type: ignore[union-attr]
    return band(lo, hi)


_UNIONS: dict[tuple[int, ...], tuple[tuple[Dep, ...], Dep]] = {}
"""Recent :func:`union` results by the identity of their arguments, which each entry
holds (so no id is reused while its entry lives). Deps are immutable and ``union`` is
a pure function of them, so an entry never goes stale. Why: the token flow passes one
state's dep objects on through element-wise ops, and every merge of two branches of
the same input (a residual add, a 500k-wide fan-out merged back by a tree of Adds)
asks for the union of the same objects again — 20 µs of hull and pruning each time."""
_UNIONS_MAX = 4096


def union(*deps: Dep) -> Dep:
    """Positions any of ``deps`` depends on.

    Parts that end in the same step are factored — ``x ∪ (p ∘ x) = (I ∪ p) ∘ x`` —
    which is what keeps a residual stack of L pattern layers linear in L instead
    of a 2^L expression tree.
    """
    key = tuple(map(id, deps))
    hit = _UNIONS.get(key)
    if hit is not None:
        return hit[1]
    out = _union(deps)
    if len(_UNIONS) >= _UNIONS_MAX:
        _UNIONS.clear()
    _UNIONS[key] = (deps, out)
    return out


def _union(deps: tuple[Dep, ...]) -> Dep:
    parts: list[Dep] = []
    for d in deps:
        if d not in parts:
            parts.append(d)
    if len(parts) > 1 and not all(isinstance(p, Band) for p in parts):
        groups: list[tuple[Dep, list[Dep]]] = []
        for p in parts:
            head, tail = _split(p)
            for t, heads in groups:
                if t == tail:
                    if head not in heads:
                        heads.append(head)
                    break
            else:
                groups.append((tail, [head]))
        if len(groups) < len(parts):
            parts = [compose(union(*heads), tail) if len(heads) > 1 else compose(heads[0], tail)
                     for tail, heads in groups]
    items: list[Dep] = []
    for d in parts:
        for part in (d.parts if isinstance(d, Union) else (d,)):
            if part not in items:
                items.append(part)
    stepped = [d for d in items if isinstance(d, Steps)]
    if len(stepped) > 1:  # one table: an unrolled scan adds one step per time step
        table: dict[int, Dep] = {}
        for st in stepped:
            for off, b in st.entries:
                table[off] = union(table[off], b) if off in table else b
        items = [d for d in items if not isinstance(d, Steps)] + [Steps(tuple(sorted(table.items())))]
    bands = [d for d in items if isinstance(d, Band)]
    rest = [d for d in items if not isinstance(d, Band)]
    if bands:
        if any(b.is_all for b in bands):
            return ALL
        # Fixed position sets (global tokens, a block gathered by a constant index)
        # stay apart from the bands that move with the position when the hull would
        # bridge a gap: ``[i-1, i+1] ∪ [0, 1] ∪ [30, 31]`` is BigBird's middle row,
        # not ``[0, 31]``.
        fixed = [b for b in bands if is_constant_band(b)]
        moving = [b for b in bands if not is_constant_band(b)]
        spans = merge_intervals((int(b.lo[0].c), int(b.hi[0].c)) for b in fixed if _whole(b))  # type: ignore[index]
        loose = [b for b in fixed if not _whole(b)]
        if moving:
            lo = None if any(b.lo is None for b in moving) else [t for b in moving for t in b.lo]  # type: ignore[union-attr]
            hi = None if any(b.hi is None for b in moving) else [t for b in moving for t in b.hi]  # type: ignore[union-attr]
            apart = [constant(a, b) for a, b in spans if not _inside(band(lo, hi), a, b)]
            if len(apart) > 2 or loose:  # bounded: scattered sets are summarised by their hull
                extra = [*apart, *loose]
                lo = None if lo is None else [*lo, *(t for b in extra for t in b.lo)]  # type: ignore[union-attr]
                hi = None if hi is None else [*hi, *(t for b in extra for t in b.hi)]  # type: ignore[union-attr]
                apart = []
            rest = [band(lo, hi), *apart, *rest]
        else:
            sets = [constant(a, b) for a, b in spans]
            if loose or len(sets) > 3:
                sets = [band([t for b in fixed for t in b.lo], [t for b in fixed for t in b.hi])]  # type: ignore[union-attr]
            rest = [*sets, *rest]
    if not rest:
        raise ValueError("union of nothing")
    return rest[0] if len(rest) == 1 else Union(tuple(rest))


@dataclass(frozen=True)
class Chain(Dep):
    """Apply ``steps[0]``, then ``steps[1]``, … (positions flow toward the source)."""

    steps: tuple[Dep, ...]

    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def _hash(self) -> int:
        # Chains and unions share sub-expressions (a residual stack is a DAG of them):
        # recomputing hash/hull recursively is exponential in depth (MaxViT's TorchScript
        # export took > 10 min in the receptive-field report), so both are computed once.
        return hash((Chain, self.steps))

    def image(self, lo: int, hi: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        cur = [(lo, hi)]
        last = len(self.steps) - 1
        for k, step in enumerate(self.steps):
            # Only the last step lands on the source axis, of length n. An earlier
            # step lands on an intermediate axis that may be longer (GQA's 4 query
            # heads over 2 kv heads): clipping it at n would drop positions
            # (unsound). Affine steps are clipped only below; patterns keep n.
            bound = n if k == last or not isinstance(step, Band) else UNCLIPPED
            cur = step.image_set(cur, bound, env)
            if not cur:
                break
        return cur

    @cached_property
    def hull(self) -> Band:
        out: Band = IDENTITY
        for s in self.steps:
            h = s.hull
            out = band(_compose_side(h.lo, out, True), _compose_side(h.hi, out, False)) if not h.is_all else h
        return out

    def describe(self) -> str:
        return " ∘ ".join(s.describe() for s in self.steps)


@dataclass(frozen=True)
class Union(Dep):
    parts: tuple[Dep, ...]

    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash((Union, self.parts))  # once per object: see Chain._hash

    def image(self, lo: int, hi: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        out: list[Interval] = []
        for p in self.parts:
            out.extend(p.image(lo, hi, n, env))
        return merge_intervals(out)

    @cached_property
    def hull(self) -> Band:
        return band_hull(*(p.hull for p in self.parts))

    def describe(self) -> str:
        return " ∪ ".join(p.describe() for p in self.parts)


# -- patterns (key-set families that are not bands) --------------------------------
class Pattern(Dep):
    """A non-band key-set family; subclasses implement ``image`` exactly."""

    name = "pattern"


@dataclass(frozen=True)
class Chunked(Pattern):
    """Block-diagonal attention in chunks of ``size`` (Llama-4 style when causal)."""

    size: int
    causal: bool = True
    name = "chunked"

    def image(self, lo: int, hi: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        lo, hi = max(lo, 0), min(hi, n - 1)
        if lo > hi:
            return []
        start = (lo // self.size) * self.size
        end = hi if self.causal else min(n - 1, (hi // self.size) * self.size + self.size - 1)
        return [(start, end)]

    @property
    def hull(self) -> Band:
        return window(self.size, 0 if self.causal else self.size - 1)

    def describe(self) -> str:
        return f"chunked({self.size}{', causal' if self.causal else ''})"


@dataclass(frozen=True)
class GlobalLocal(Pattern):
    """Longformer/BigBird style: a band ``[i - left, i + right]`` plus global
    tokens that see and are seen by every position."""

    left: int
    right: int
    globals_: tuple[int, ...]
    causal: bool = False
    name = "global_local"

    def image(self, lo: int, hi: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        lo, hi = max(lo, 0), min(hi, n - 1)
        if lo > hi:
            return []
        glob = [g for g in self.globals_ if g < n]
        if any(lo <= g <= hi for g in glob):
            return [(0, hi if self.causal else n - 1)]
        out = [(max(0, lo - self.left), min(n - 1, hi + (0 if self.causal else self.right)))]
        out += [(g, g) for g in glob if not self.causal or g <= hi]
        return merge_intervals(out)

    @property
    def hull(self) -> Band:
        return CAUSAL if self.causal else ALL

    def describe(self) -> str:
        return f"band[-{self.left}, +{self.right}] + globals {list(self.globals_)}"


@dataclass(frozen=True)
class Dilated(Pattern):
    """Keys ``i - d·k`` for ``k = 0..w-1`` (and ``+d·k`` up to ``right`` when not causal)."""

    w: int
    d: int
    right: int = 0
    name = "dilated"

    def image(self, lo: int, hi: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        lo, hi = max(lo, 0), min(hi, n - 1)
        if lo > hi:
            return []
        span_lo, span_hi = self.d * (self.w - 1), self.d * self.right
        if hi - lo + 1 >= self.d:  # every residue present: contiguous
            return [(max(0, lo - span_lo), min(n - 1, hi + span_hi))]
        out = []
        for k in range(-(self.w - 1), self.right + 1):
            a, b = lo + k * self.d, hi + k * self.d
            if b >= 0 and a <= n - 1:
                out.append((max(a, 0), min(b, n - 1)))
        return merge_intervals(out)

    @property
    def hull(self) -> Band:
        return band([lin(1, -self.d * (self.w - 1))], [lin(1, self.d * self.right)])

    def describe(self) -> str:
        return f"dilated(w={self.w}, d={self.d})"


@dataclass(frozen=True)
class BlockSparse(Pattern):
    """Block layout: query block ``qb`` sees key blocks ``layout[qb]`` (blocks of
    ``block`` tokens); ``causal`` additionally hides keys after the query."""

    block: int
    layout: tuple[tuple[int, ...], ...]
    causal: bool = False
    name = "block_sparse"

    def _row(self, qb: int) -> tuple[int, ...]:
        return self.layout[qb] if qb < len(self.layout) else self.layout[-1]

    def image(self, lo: int, hi: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        lo, hi = max(lo, 0), min(hi, n - 1)
        if lo > hi:
            return []
        out: list[Interval] = []
        for qb in range(lo // self.block, hi // self.block + 1):
            for kb in self._row(qb):
                a, b = kb * self.block, min(n - 1, kb * self.block + self.block - 1)
                if self.causal:
                    b = min(b, min(hi, qb * self.block + self.block - 1))
                if a <= b:
                    out.append((a, b))
        return merge_intervals(out)

    @property
    def hull(self) -> Band:
        return CAUSAL if self.causal else ALL

    def describe(self) -> str:
        return f"block_sparse(block={self.block}, {len(self.layout)} block rows)"


@dataclass(frozen=True, eq=False)
class Concrete(Pattern):
    """A mask known only at one length ``n0`` (rows of visible key intervals)."""

    n0: int
    rows: tuple[tuple[Interval, ...], ...]
    name = "pattern"

    def __hash__(self) -> int:
        return id(self)

    def image(self, lo: int, hi: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        if n != self.n0:
            raise UnknownAtLength(f"a mask pattern fitting no family is only known at n={self.n0}, not {n}")
        out: list[Interval] = []
        for i in range(max(lo, 0), min(hi, n - 1) + 1):
            out.extend(self.rows[i])
        return merge_intervals(out)

    @property
    def hull(self) -> Band:
        return ALL

    def describe(self) -> str:
        return f"concrete pattern at n={self.n0}"


@dataclass(frozen=True)
class Periodic(Pattern):
    """``i ↦ {i mod period}``: a tiled axis (``x.repeat(E, 1)``) reads input
    position ``i mod n``. Kept as a step so that a reshape splitting the tiled
    axis back into ``[E, n]`` can hand each position its own source again (an
    MoE that repeats the tokens once per expert); the period may be symbolic and
    is evaluated at the query's bindings."""

    period: Any
    name = "periodic"

    def image(self, lo: int, hi: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        p = int(_eval(_num(self.period), env))
        lo = max(lo, 0)
        if lo > hi or p <= 0:
            return []
        if hi - lo + 1 >= p:
            out = [(0, p - 1)]
        else:
            a, b = lo % p, hi % p
            out = [(a, b)] if a <= b else [(0, b), (a, p - 1)]
        return merge_intervals((x, min(y, n - 1)) for x, y in out if x <= n - 1)

    @property
    def hull(self) -> Band:
        return band([lin(0, 0)], [lin(1, 0)])  # 0 <= i mod p <= i

    def describe(self) -> str:
        return f"i mod {self.period}"


def _whole(b: Band) -> bool:
    """One constant term per side, integral: ``[a, b]`` with integers a, b."""
    return (b.lo is not None and b.hi is not None and len(b.lo) == 1 and len(b.hi) == 1
            and Fraction(b.lo[0].c).denominator == 1 and Fraction(b.hi[0].c).denominator == 1)


def _inside(b: Band, lo: int, hi: int) -> bool:
    """Is ``[lo, hi]`` inside ``b``'s set at every position ``i >= 0``? (sufficient
    test: a lower term that never rises above lo, an upper that never falls below hi)"""
    low = b.lo is None or any(t.s <= 0 and _is_const(t.c) and t.c <= lo for t in b.lo)
    high = b.hi is None or any(t.s >= 0 and _is_const(t.c) and t.c >= hi for t in b.hi)
    return low and high


def is_constant_band(d: Dep) -> bool:
    """A position-independent band with constant bounds (``[a, b]``)."""
    return isinstance(d, Band) and d.lo is not None and d.hi is not None and all(
        t.s == 0 and _is_const(t.c) for t in (*d.lo, *d.hi))


def is_constant_set(d: Dep) -> bool:
    """Constant bounds, one span or a few (``[0, 5] ∪ [30, 31]``)."""
    return is_constant_band(d) or (isinstance(d, Union) and all(is_constant_band(p) for p in d.parts))


@dataclass(frozen=True)
class Steps(Pattern):
    """Position ``off`` sees ``band`` for each ``(off, band)`` entry (constant
    bands), other positions nothing: an axis assembled one step at a time.

    An unrolled recurrence (Mamba's and RecurrentGemma's scans under a static
    length) computes step t from the state of step t-1 — a tensor whose every
    element depends on positions 0..t — then stacks the steps along the time
    axis (``Concat`` of single steps, or ``x[:, t] = h`` scatters). Merged into
    the position-independent deps this was every position seeing everything;
    as a table it is exact, and its hull (``[0, i]`` for a prefix scan) is causal."""

    entries: tuple[tuple[int, Dep], ...]
    """Offsets with constant sets (see :func:`is_constant_set`)."""
    name = "steps"

    def image(self, lo: int, hi: int, n: int, env: dict[str, int] | None = None) -> list[Interval]:
        out: list[Interval] = []
        for off, b in self.entries:
            if lo <= off <= hi:
                out.extend(b.image(off, off, n, env))
        return merge_intervals(out)

    @cached_property
    def hull(self) -> Band:
        """The tightest ``[lo, hi]`` with each bound constant or ``i + c`` that
        contains every entry at its offset."""
        hulls = [(off, b.hull) for off, b in self.entries]
        lows = [(off, min(Fraction(t.c) for t in b.lo or ())) for off, b in hulls]
        highs = [(off, max(Fraction(t.c) for t in b.hi or ())) for off, b in hulls]

        def best(pts: list[tuple[int, Fraction]], lower: bool) -> Lin:
            pick = min if lower else max
            flat = lin(0, pick(v for _, v in pts))
            slope = lin(1, pick(v - off for off, v in pts))
            slack = [sum(abs(t.at(off) - v) for off, v in pts) for t in (flat, slope)]
            return flat if slack[0] <= slack[1] else slope

        return band([best(lows, True)], [best(highs, False)])

    def describe(self) -> str:
        return f"steps({len(self.entries)} positions) ⊆ {self.hull.describe()}"
