"""Roofline lower bounds on time: ``max(work / peak, bytes / bandwidth)``.

A bound, never a prediction: no runtime multiplies faster than the device's dense
peak or moves bytes faster than its memory bandwidth, so a step that must do this
work and move these bytes cannot take less. The work is the 2·MACs of matrix
products (mask-aware), each at the peak of its own dtype (fp32 at the TF32 rate
where a device has one: a runtime may use it); element-wise FLOPs run on other
units at rates a peak figure does not describe and are left out, which keeps the
bound a bound. When the bytes a step keeps reusing (weights and KV cache) fit in
the device's last on-chip cache, memory bandwidth bounds nothing and only the
compute side is stated.

Each side bounds the time only when its own figure is a floor: ``work / peak`` when the
work is exact or a lower bound (uncosted nodes only make the true work larger), ``bytes /
bandwidth`` always (the bytes count only what must move, :mod:`.phases`). Work that is an
upper bound (the costlier branch of an ``If`` whose condition is not known) or an estimate
may exceed what runs, so ``work / peak`` may exceed the true time: that side is then left
out of the bound, and when no side is left the step's time is stated as an estimate
(``≈``), never as ``≥``. A rate derived from a lower bound on time is an upper bound
(``≤ tokens/s``), from an estimate an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from model_analyze.devices import Device

from .phases import Phase


@dataclass
class Bound:
    phase: str
    batch: int
    work: float
    """2·MACs for the whole batch."""
    bytes: float
    t_compute: float
    t_memory: float | None
    """None when the reused working set fits on chip (bandwidth is then no bound)."""
    peaks: list[tuple[str, float, str]]
    """(dtype, peak used, how) per compute dtype."""
    work_bound: str | None = None
    """What ``work`` is (:attr:`~model_analyze.report.Metric.bound`): ``None`` exact, ``lower``,
    ``upper`` or ``estimate``; only exact or lower work bounds the time from below."""

    @property
    def compute_bounds(self) -> bool:
        """Does ``work / peak`` bound the time from below? Only when the true work is at least
        ``work``: exact or a lower bound. An upper bound or an estimate of the work may be more
        than runs, and its time more than the step takes."""
        return self.work_bound in (None, "lower")

    @property
    def kind(self) -> str:
        """``lower`` when some side bounds the time from below, else ``estimate``: the compute
        side of work that is not a floor, the only figure left when bandwidth bounds nothing."""
        return "lower" if self.compute_bounds or self.t_memory is not None else "estimate"

    @property
    def time(self) -> float:
        """The step's time as stated: the largest side that bounds it (a lower bound), else
        the compute side as an estimate (see :attr:`kind`)."""
        if self.kind == "estimate":
            return self.t_compute
        return max(self.t_compute if self.compute_bounds else 0.0, self.t_memory or 0.0)

    @property
    def rate_kind(self) -> str:
        """What ``batch / time`` is: a ceiling (``upper``) from a lower bound on time, else an estimate."""
        return "upper" if self.kind == "lower" else "estimate"

    @property
    def binds(self) -> str:
        """The side the stated time comes from (``compute*``: bandwidth bounds nothing)."""
        if self.t_memory is None:
            return "compute*"
        return "compute" if self.compute_bounds and self.t_compute >= self.t_memory else "memory"

    @property
    def intensity(self) -> float | None:
        return self.work / self.bytes if self.bytes else None


def bound(phase: Phase, device: Device, batch: int = 1, work_bound: str | None = None) -> Bound:
    """The step's roofline at ``batch``; ``work_bound`` is what the phase's 2·MACs are
    (the cost model's total bound), which decides whether the compute side bounds."""
    t_compute = 0.0
    peaks = []
    for dtype, work in sorted(phase.mma.items()):
        if work <= 0:
            continue
        peak, how = device.peak_for(dtype)
        peaks.append((dtype, peak, how))
        t_compute += batch * work / peak
    moved = phase.bytes(batch)
    resident = phase.weights + batch * phase.kv
    fits = device.cache is not None and resident <= device.cache
    t_memory = None if fits else moved / device.bandwidth
    return Bound(phase.name, batch, batch * phase.mma_total, moved, t_compute, t_memory, peaks, work_bound)


def ridge(device: Device, dtype: str) -> float:
    """FLOP per byte above which a step on ``device`` is compute-bound."""
    return device.peak_for(dtype)[0] / device.bandwidth


def fmt_time(t: float | None) -> str:
    if t is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if t >= 100:
            return f"{t:,.0f} s"
        if t >= scale or unit == "ns":
            return f"{t / scale:.3g} {unit}"
    return f"{t:.3g} s"


def fmt_rate(r: float | None, unit: str = "") -> str:
    if r is None:
        return "—"
    for suffix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if r >= scale:
            return f"{r / scale:.3g} {suffix}{unit}"
    return f"{r:.3g} {unit}".rstrip()
