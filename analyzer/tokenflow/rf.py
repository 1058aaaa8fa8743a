"""Receptive-field numbers from a dependency (Araujo et al., Distill 2019).

For an affine band ``[S·i + a, S·i + b]``: size ``r = b - a + 1``, stride
(jump) ``S``, effective left padding ``-a`` (input coordinate of the first
position of output 0's field is ``a``) and centre ``(a + b)/2``. Unbounded or
whole-axis dependencies are *global*. A band that is a min/max of several
affine pieces (branches that meet misaligned) is summarised by its hull at
output position 0 and flagged inexact.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def receptive_field(dep: Dep | None) -> RF | None:
    if dep is None:
        return None
    band: Band = dep.hull
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
