"""Receptive-field numbers from a dependency (Araujo et al., Distill 2019).

For an affine band ``[S·i + a, S·i + b]``: size ``r = b - a + 1``, stride
(jump) ``S``, effective left padding ``-a`` (input coordinate of the first
position of output 0's field is ``a``) and centre ``(a + b)/2``. Unbounded or
whole-axis dependencies are *global*. A band that is a min/max of several
affine pieces (branches that meet misaligned) is summarised by its hull at
output position 0 and flagged inexact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from .deps import Band, Dep


def _num(x: Any) -> Any:
    if isinstance(x, Fraction):
        return int(x) if x.denominator == 1 else float(x)
    return x


@dataclass(frozen=True)
class RF:
    size: Any | None
    """Input positions in one output position's field (None when global)."""
    stride: Any | None
    start: Any | None
    """Input coordinate where output 0's field starts (negative: into padding)."""
    center: Any | None
    global_: bool = False
    exact: bool = True
    strides: tuple[Any, ...] = ()
    context: bool = False
    """Every position *also* sees the whole input axis through a position-independent
    path (a squeeze-excite pool gating the map, a window partition that forgets where a
    window sits): the size/stride/pad above describe the local, position-dependent part."""

    @property
    def pad(self) -> Any | None:
        """Distill's effective left padding (``-start``)."""
        return None if self.start is None else -self.start

    def covers(self, length: int | None) -> bool:
        return self.global_ or (length is not None and self.size is not None and self.size >= length)


def positional(dep: Dep) -> bool:
    """Does the dependency still vary with the position (not collapsed)?"""
    h = dep.hull
    terms = (h.lo or ()) + (h.hi or ())
    return any(t.s != 0 for t in terms) or (h.lo is None) != (h.hi is None)


def covers_axis(dep: Dep, length: int | None) -> bool:
    """Does ``dep`` give *every* position the whole source axis ``[0, length)``?

    True for a position-independent dependency that spans the axis (a global pool's
    output broadcast back over the map) and for a band whose constant terms alone
    do (``[min(0, S·i + a), max(length - 1, S·i + b)]``)."""
    if length is None or length <= 0:
        return False
    h = dep.hull
    if h.lo is None and h.hi is None:
        return True
    lo = [t.c for t in h.lo or () if t.s == 0 and isinstance(t.c, Fraction)]
    hi = [t.c for t in h.hi or () if t.s == 0 and isinstance(t.c, Fraction)]
    lo_ok = h.lo is None or (bool(lo) and min(lo) <= 0)
    hi_ok = h.hi is None or (bool(hi) and max(hi) >= length - 1)
    return lo_ok and hi_ok


def local_part(band: Band) -> Band | None:
    """The position-dependent terms of a band (None if a side has none)."""
    if band.lo is None or band.hi is None:
        return None
    lo = tuple(t for t in band.lo if t.s != 0)
    hi = tuple(t for t in band.hi if t.s != 0)
    return Band(lo, hi) if lo and hi else None


def _without_symbolic_borders(band: Band) -> Band:
    """Drop constant terms with a symbolic offset from a side that also has positional
    terms: they are border clamps (a resize clamps to ``[0, n - 1]`` with ``n`` symbolic),
    and the Distill field ignores borders."""
    def side(terms: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        if terms is None or not any(t.s != 0 for t in terms):
            return terms
        return tuple(t for t in terms if t.s != 0 or isinstance(t.c, Fraction))

    lo, hi = side(band.lo), side(band.hi)
    return band if (lo, hi) == (band.lo, band.hi) else Band(lo, hi)


def receptive_field(dep: Dep | None, length: int | None = None, context: bool = False) -> RF | None:
    """RF of ``dep``. With the source ``length``, a band whose constant terms cover the
    whole axis is summarised by its local (position-dependent) part, flagged ``context``;
    ``context=True`` says the whole axis is also reached some other way (``fixed`` deps)."""
    if dep is None:
        return None
    band: Band = _without_symbolic_borders(dep.hull)
    from_terms = False
    if band.lo is not None and band.hi is not None and covers_axis(band, length):
        local = local_part(band)
        if local is None:
            return RF(None, None, None, None, global_=True, exact=dep.is_band)
        band, from_terms = local, True
    if context or from_terms:
        rf = receptive_field(band)
        if rf is None:
            return None
        rf = replace(rf, exact=rf.exact and dep.is_band)  # a Chain's hull is an envelope
        if from_terms and not context and rf.size is not None and length is not None and rf.size >= length:
            # Constant terms under a local field already wider than the input are a
            # resize's border clamps composed through the stack (YOLO: 1295 px on 320),
            # not a position-independent path.
            return rf
        return replace(rf, context=True)
    if band.lo is None or band.hi is None:
        return RF(None, None, None, None, global_=True, exact=dep.is_band)
    aff = band.affine()
    if aff is not None and all(isinstance(x, Fraction) for x in aff[1:]):
        s, a, b = aff
        if s == 0:
            return RF(_num(b - a + 1), 0, _num(a), _num((a + b) / 2), exact=dep.is_band)
        return RF(_num(b - a + 1), _num(s), _num(a), _num((a + b) / 2), exact=dep.is_band)
    try:
        lo = min(t.c for t in band.lo)
        hi = max(t.c for t in band.hi)
    except TypeError:  # symbolic offsets
        return RF(None, None, None, None, exact=False)
    strides = tuple(sorted({_num(t.s) for t in (*band.lo, *band.hi)}))
    return RF(_num(hi - lo + 1), strides[-1], _num(lo), _num((lo + hi) / 2), exact=False, strides=strides)
