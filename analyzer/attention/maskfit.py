"""Fit evaluated boolean masks to a mask family, and check the fit at every length.

Input: for each evaluated length ``n`` an ``[n, n]`` boolean matrix ``V[i, j]``
("query i may attend key j"), the union over heads. The families are tried from
the most specific structure to the least (band → chunked → global+local →
dilated → block-sparse); the first one whose :class:`~..tokenflow.deps.Dep`
reproduces *every* evaluated matrix exactly wins. A matrix no family reproduces
is kept as a :class:`~..tokenflow.deps.Concrete` pattern at one length — never
silently called "full".

Fitting looks at the largest length first because only it can show a window
wider than the small lengths (Mistral's 4096 at n = 4099); the smaller lengths
then check the extrapolation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..tokenflow.deps import (
    ALL,
    CAUSAL,
    BlockSparse,
    Chunked,
    Concrete,
    Dep,
    Dilated,
    GlobalLocal,
    band,
    lin,
    window,
)

if TYPE_CHECKING:
    import numpy as np

CONCRETE_MAX_N = 512
"""A pattern that fits no family is kept at the largest evaluated length up to this."""


@dataclass
class Fit:
    family: str
    keys: Dep
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def fit_lengths(mats: dict[int, np.ndarray], block_hints: Iterable[int] = ()) -> Fit:
    """The family that reproduces every matrix in ``mats`` (length → [n, n])."""
    lengths = sorted(mats, reverse=True)
    tried: set[str] = set()
    for n in lengths:
        for cand in _candidates(mats[n], block_hints):
            key = f"{cand.family}:{cand.keys!r}"
            if key in tried:
                continue
            tried.add(key)
            if all(matches(cand.keys, mats[m]) for m in lengths):
                return cand
    n0 = max([m for m in lengths if m <= CONCRETE_MAX_N] or [min(lengths)])
    return Fit("pattern", concrete(mats[n0]), {"n": n0},
               note=f"fits no mask family; kept as the concrete pattern at n={n0}")


def _candidates(v: np.ndarray, block_hints: Iterable[int]) -> Iterable[Fit]:
    """Families suggested by one matrix (each still checked against all lengths)."""
    import numpy as np

    n = v.shape[0]
    if n == 0:
        return
    any_row = v.any(axis=1)
    first = np.where(any_row, v.argmax(axis=1), 0)
    last = np.where(any_row, n - 1 - v[:, ::-1].argmax(axis=1), -1)
    cnt = v.sum(axis=1)
    i = np.arange(n)
    if any_row.all() and (cnt == last - first + 1).all():
        fit = _band(n, i, first, last)
        if fit is not None:
            yield fit
        chunk = _chunked(n, i, first, last)
        if chunk is not None:
            yield chunk
    yield from _global_local(v)
    dil = _dilated(v)
    if dil is not None:
        yield dil
    yield from _block_sparse(v, block_hints)


def _band(n: int, i: np.ndarray, first: np.ndarray, last: np.ndarray) -> Fit | None:
    import numpy as np

    left = int((i - first).max())
    right = int((last - i).max())
    if not (np.array_equal(first, np.maximum(0, i - left)) and np.array_equal(last, np.minimum(n - 1, i + right))):
        return None
    return band_family(None if left >= n - 1 else left, None if right >= n - 1 else right)


def band_family(left: int | None, right: int | None) -> Fit:
    """The family of the band ``[i - left, i + right]`` (None: unbounded side)."""
    if left is None and right is None:
        return Fit("bidirectional", ALL)
    if left is None and right == 0:
        return Fit("causal", CAUSAL)
    if left is not None and right == 0:
        return Fit("sliding_window", window(left + 1), {"window": left + 1})
    if left is not None and right is not None and right > 0:
        return Fit("sliding_window", window(left + 1, right), {"window": left + 1, "right": right})
    keys = band(None if left is None else [lin(1, -left)], None if right is None else [lin(1, right)])
    params: dict[str, Any] = {}
    if left is not None:
        params["left"] = left
    if right is not None:
        params["right"] = right
    return Fit("band", keys, params)


def _chunked(n: int, i: np.ndarray, first: np.ndarray, last: np.ndarray) -> Fit | None:
    import numpy as np

    starts = np.nonzero(first > 0)[0]
    if len(starts) == 0:
        return None
    size = int(starts[0])
    if size < 1 or first[size] != size:
        return None
    causal = bool(np.array_equal(last, i))
    return Fit("chunked", Chunked(size, causal), {"chunk": size, "causal": causal})


def _global_local(v: np.ndarray) -> Iterable[Fit]:
    import numpy as np

    n = v.shape[0]
    causal = not np.triu(v, 1).any()
    lower = np.tril(np.ones((n, n), bool))
    if causal:
        col_full = (v | ~lower).all(axis=0)
        row_full = (v | ~lower).all(axis=1)
    else:
        col_full = v.all(axis=0)
        row_full = v.all(axis=1)
    glob = np.nonzero(col_full & row_full)[0]
    if len(glob) == 0 or len(glob) >= n - 1:
        return
    gmask = np.zeros(n, bool)
    gmask[glob] = True
    local = v[~gmask][:, ~gmask]
    rows = np.nonzero(~gmask)[0]
    cols = np.nonzero(~gmask)[0]
    if not local.any(axis=1).all():
        return
    first = cols[local.argmax(axis=1)]
    last = cols[local.shape[1] - 1 - local[:, ::-1].argmax(axis=1)]
    left = int(max(0, (rows - first).max()))
    right = 0 if causal else int(max(0, (last - rows).max()))
    keys = GlobalLocal(left, right, tuple(int(g) for g in glob), causal)
    yield Fit("global_local", keys, {"left": left, "right": right, "globals": [int(g) for g in glob],
                                     "causal": causal})


def _dilated(v: np.ndarray) -> Fit | None:
    """Keys ``i, i-d, …, i-d(w-1)`` (and ``i+d, …`` when two-sided), read off
    the last row (causal) or the middle row; an unbounded stride pattern would
    change ``w`` with ``n`` and so fails the check at the other lengths."""
    import numpy as np

    n = v.shape[0]
    causal = not np.triu(v, 1).any()
    i = n - 1 if causal else n // 2
    offsets = i - np.nonzero(v[i])[0]  # > 0: earlier keys
    back = np.sort(offsets[offsets >= 0])
    ahead = np.sort(-offsets[offsets < 0])
    if len(back) < 2 or back[0] != 0:
        return None
    d = int(back[1])
    if d < 2 or not np.array_equal(back, d * np.arange(len(back))):
        return None
    if len(ahead) and not np.array_equal(ahead, d * np.arange(1, len(ahead) + 1)):
        return None
    w, right = len(back), len(ahead)
    params: dict[str, Any] = {"dilation": d, "w": w}
    if right:
        params["right"] = right
    return Fit("dilated", Dilated(w, d, right), params)


def fit_block_sparse(v: np.ndarray, hints: Iterable[int] = ()) -> Fit | None:
    """The block layout that reproduces ``v`` exactly (None: none does)."""
    return next(iter(_block_sparse(v, hints)), None)


def _block_sparse(v: np.ndarray, hints: Iterable[int]) -> Iterable[Fit]:
    """Block layouts: ``v`` is constant on ``size × size`` blocks (lower-triangular
    inside the diagonal blocks when causal). Candidate sizes: the slice's
    integer constants and powers of two."""
    import numpy as np

    n = v.shape[0]
    causal = not np.triu(v, 1).any()
    lower = np.tril(np.ones((n, n), bool)) if causal else None
    sizes = {b for b in hints if 2 <= b <= n // 2}
    b = 2
    while b <= n // 2:
        sizes.add(b)
        b *= 2
    for size in sorted(sizes, reverse=True):
        nb = -(-n // size)
        padded = np.zeros((nb * size, nb * size), bool)
        padded[:n, :n] = v
        blocks = np.asarray(padded.reshape(nb, size, nb, size).any(axis=(1, 3)))
        if blocks.all() or np.array_equal(blocks, np.eye(nb, dtype=bool)):
            continue  # full, or block-diagonal (that is the chunked family)
        grown = np.repeat(np.repeat(blocks, size, axis=0), size, axis=1)[:n, :n]
        if lower is not None:
            grown &= lower
        if not np.array_equal(grown, v):
            continue
        layout = tuple(tuple(int(k) for k in np.flatnonzero(row)) for row in blocks)
        yield Fit("block_sparse", BlockSparse(size, layout, causal),
                  {"block": size, "layout": [list(r) for r in layout], "causal": causal},
                  note=f"layout known for the first {nb} blocks; later blocks repeat the last row")
        return


def expected(keys: Dep, n: int) -> np.ndarray:
    """The [n, n] matrix a family predicts at length ``n``."""
    import numpy as np

    out = np.zeros((n, n), bool)
    for i in range(n):
        for a, b in keys.at(i, n):
            out[i, a:b + 1] = True
    return out


def matches(keys: Dep, v: np.ndarray) -> bool:
    import numpy as np

    n = v.shape[0]
    if isinstance(keys, Concrete) and keys.n0 != n:
        return False
    try:
        return bool(np.array_equal(pattern_matrix(keys, n), v))
    except ValueError:
        return False


def pattern_matrix(keys: Dep, n: int) -> np.ndarray:
    """:func:`expected`, vectorised for plain bands (the common case at large n)."""
    import numpy as np

    from ..tokenflow.deps import Band

    if isinstance(keys, Band) and all(len(t or ()) <= 1 for t in (keys.lo, keys.hi)):
        i = np.arange(n)[:, None]
        j = np.arange(n)[None, :]
        ok = np.ones((n, n), bool)
        if keys.lo is not None:
            t = keys.lo[0]
            ok &= j >= np.ceil(float(t.s) * i + float(t.c))
        if keys.hi is not None:
            t = keys.hi[0]
            ok &= j <= np.floor(float(t.s) * i + float(t.c))
        return ok
    return expected(keys, n)


def concrete(v: np.ndarray) -> Concrete:
    """Rows of visible key intervals, exactly as evaluated."""
    import numpy as np

    n = v.shape[0]
    rows = []
    padded = np.zeros((n, n + 2), bool)
    padded[:, 1:-1] = v
    diff = np.diff(padded.astype(np.int8), axis=1)
    for i in range(n):
        starts = np.nonzero(diff[i] == 1)[0]
        ends = np.nonzero(diff[i] == -1)[0] - 1
        rows.append(tuple((int(a), int(b)) for a, b in zip(starts, ends, strict=True)))
    return Concrete(n, tuple(rows))
