"""Context coverage: how much of a sequence of length n the model can relate.

For the model output that carries the sequence positionally: how many inputs
the last position sees, whether that is the whole sequence, after how many
attention layers the last position first sees the first one, and the fraction
of (output, input) pairs that are reachable — over pairs with s <= t for a
causal model, over all pairs otherwise (METRICS.md "coverage at n").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import dep_of, flow
from .approx import approximations_on, upper_reason
from .deps import Band, Dep, UnknownAtLength, count
from .query import hops, input_rank, sequence_input, source_axes, token_sources

if TYPE_CHECKING:
    import numpy as np

    from ..context import AnalysisContext
    from .engine import Approximation

EXACT_LIMIT = 16384
SAMPLES = 2048


@dataclass
class Coverage:
    output: str
    axis: int
    source: str
    n: int
    reach_last: int
    """Input positions the last output position depends on."""
    covers: bool
    """The last position sees every input position."""
    first_layer: int | None
    """Attention layers until the last position first sees position 0 (None: never)."""
    pair_fraction: float
    causal: bool
    sampled: bool
    pairs_reachable: int = 0
    pairs_total: int = 0
    """Exact counts (estimates when ``sampled``)."""
    approx: list[Approximation] = field(default_factory=list)
    """Nodes upstream of the output where the engine lost precision for this source: when
    any, ``reach_last``/``pair_fraction`` are upper bounds and ``covers`` only "perhaps"."""

    @property
    def bound(self) -> str | None:
        """``upper`` when the figures are upper bounds, else ``None`` (exact)."""
        return "upper" if self.approx else None

    @property
    def causal_shown(self) -> bool | None:
        """Is the model causal (no position depends on a later one)? ``True`` also from an
        upper bound (the truth sees less); ``False`` only from exact figures; ``None`` when
        the upper bound sees later positions — the truth may not."""
        if self.causal:
            return True
        return None if self.approx else False

    @property
    def causal_text(self) -> str:
        """``causal``, ``not causal`` or ``causality not shown`` (an upper bound)."""
        return {True: "causal", False: "not causal", None: "causality not shown"}[self.causal_shown]

    @property
    def upper_note(self) -> str:
        """``an upper bound: precision lost at NODE (op: why)``, or ``""`` when exact."""
        return upper_reason(self.approx)

    def pairs_text(self) -> str:
        """``99.5%`` — or the exact count when rounding would hide unreachable pairs."""
        text = f"{100 * self.pair_fraction:.1f}%"
        missing = self.pairs_total - self.pairs_reachable
        if missing > 0 and text == "100.0%":
            text = f"{100 * self.pair_fraction:.6f}%".rstrip("0") + f" ({missing:,} pairs unreachable)"
        return text


CHUNK = 1 << 20
"""Positions counted per step for a band: memory stays bounded at any bound length."""


def counts(dep: Dep, n: int, env: dict[str, int] | None, start: int = 0,
           stop: int | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """(positions, |reach(position)|) — exact for bands (positions ``start..stop``),
    sampled for patterns at large n."""
    import numpy as np

    if isinstance(dep, Band):
        stop = n if stop is None else stop
        t = np.arange(start, stop, dtype=np.float64)
        lo = np.zeros(len(t)) if dep.lo is None else np.min([float(u.s) * t + _c(u.c, env) for u in dep.lo], axis=0)
        hi = np.full(len(t), n - 1.0) if dep.hi is None else np.max(
            [float(u.s) * t + _c(u.c, env) for u in dep.hi], axis=0)
        lo = np.clip(np.ceil(lo), 0, n - 1)
        hi = np.clip(np.floor(hi), 0, n - 1)
        return np.arange(start, stop), np.maximum(hi - lo + 1, 0).astype(np.int64), False
    positions = np.arange(n) if n <= EXACT_LIMIT else np.unique(np.linspace(0, n - 1, SAMPLES).astype(np.int64))
    values = np.array([count(dep.at(int(t), n, env)) for t in positions], dtype=np.int64)
    return positions, values, n > EXACT_LIMIT


def pair_sums(dep: Dep, n: int, env: dict[str, int] | None, causal: bool) -> tuple[int, int, bool]:
    """(Σ |reach(t)|, Σ pairs considered at t, sampled) over the positions
    :func:`counts` gives, a band in chunks of :data:`CHUNK`."""
    import numpy as np

    reach = pairs = 0
    steps = range(0, n, CHUNK) if isinstance(dep, Band) else (0,)
    for start in steps:
        positions, sizes, _ = counts(dep, n, env, start, min(start + CHUNK, n))
        reach += int(np.sum(sizes))
        pairs += int(np.sum(positions + 1)) if causal else len(positions) * n
    return reach, pairs, not isinstance(dep, Band) and n > EXACT_LIMIT


def _c(c: object, env: dict[str, int] | None) -> float:
    from .deps import _eval

    return float(_eval(c, env))


def is_causal(dep: Dep, n: int, env: dict[str, int] | None) -> bool:
    probe = sorted(p for p in {0, 1, n // 3, n // 2, n - 2, n - 1} if 0 <= p < n)
    return all(all(hi <= t for _, hi in dep.at(t, n, env)) for t in probe)


def coverage(ctx: AnalysisContext) -> Coverage | None:
    """Coverage of the first output that carries a sequence source positionally,
    at the sequence length the analysis is bound to (``--seq-len``/``--dim``).
    None when there is no such output or a mask is only known at another length."""
    def compute() -> Coverage | None:
        try:
            return _coverage(ctx)
        except UnknownAtLength:
            return None

    return ctx.cached("tokenflow.coverage", compute)  # the attention and architecture sections both read it


def sequence_coverage(ctx: AnalysisContext) -> Coverage | None:
    """:func:`coverage`, when its source is a sequence input (:func:`~.query.sequence_input`:
    token ids, frames) — not an image, a mask or a recurrent state. What a model without
    attention layers (Mamba, an LSTM over frames, a convolution over tokens) reports as its
    reach: the engine follows recurrences, scans and convolutions as it follows masks."""
    cov = coverage(ctx)
    if cov is None:
        return None
    src = next((s for s in flow(ctx).sources.values() if s.label == cov.source), None)
    return cov if src is not None and sequence_input(ctx, src.axis[0]) else None


def _coverage(ctx: AnalysisContext) -> Coverage | None:
    result = flow(ctx)
    # A sequence: an axis some op mixes as one (attention, recurrence, scan, cumulative sum),
    # or token ids into an embedding however they are mixed (a convolution over text).
    seqs = [s for s in token_sources(result) if "sequence" in s.kinds or input_rank(ctx, s.axis[0]) == 0]
    # The reach of the tokens, not of the padding mask: an input that only drives
    # attention masks (``attention_mask``) comes after the token inputs, whatever
    # its name sorts as; then the input a person means (ids into an embedding before a
    # padding mask the graph multiplies in, as Mamba's export does; a recurrent state last).
    masks = _mask_inputs(ctx)
    seqs.sort(key=lambda s: (s.axis[0] in masks, input_rank(ctx, s.axis[0])))
    for src in seqs:
        for out in ctx.graph.outputs:
            axes = source_axes(ctx, result, out, src.axis)
            if not axes:
                continue
            length = ctx.evaluate(src.length)
            if not isinstance(length, int) or length <= 0:
                return None
            dep = dep_of(result, out, axes[0], src.axis)
            if dep is None:
                continue
            env = ctx.bindings
            causal = is_causal(dep, length, env)
            reach, pairs, sampled = pair_sums(dep, length, env, causal)
            last = count(dep.at(length - 1, length, env))
            covers = dep.at(length - 1, length, env) == [(0, length - 1)]
            frac = reach / pairs if pairs else math.nan
            total = length * (length + 1) // 2 if causal else length * length
            reachable = reach if not sampled else round(frac * total)
            first = hops(ctx, src.axis, 0, length - 1) if covers or _sees(dep, length, env) else None
            return Coverage(out, axes[0], src.label, length, last, covers, first, frac, causal, sampled,
                            reachable, total, approximations_on(ctx.graph, result, out, src.axis))
    return None


def _mask_inputs(ctx: AnalysisContext) -> set[str]:
    """Graph inputs some attention mask is built from."""
    from . import attention_layers_or_empty

    return {name for la in attention_layers_or_empty(ctx) for name in la.mask.input_driven}


def _sees(dep: Dep, n: int, env: dict[str, int] | None) -> bool:
    return any(lo <= 0 <= hi for lo, hi in dep.at(n - 1, n, env))

