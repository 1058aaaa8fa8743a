"""Per-tensor token-flow state.

For each axis of a tensor: a map *source axis → dependency* saying which
positions of that model-input axis each position along this axis can see. A
source axis is ``(input name, axis)``. Dependencies that do not vary with the
position (after a reduction, a dynamic gather, an unknown op) live in ``fixed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .. import dims as D
from ..dims import Dim
from .deps import ALL, Band, Dep, compose, constant, union

SourceAxis = tuple[str, int]
Deps = Mapping[SourceAxis, Dep]


def merge(*maps: Deps) -> dict[SourceAxis, Dep]:
    out: dict[SourceAxis, Dep] = {}
    for m in maps:
        for s, d in m.items():
            out[s] = union(out[s], d) if s in out else d
    return out


def through(f: Dep, deps: Deps) -> dict[SourceAxis, Dep]:
    """Apply a position map ``f`` (this axis → the input axis) before each dependency."""
    return {s: compose(f, d) for s, d in deps.items()}


def whole_axis(length: Dim | None) -> Band:
    """The map "every position of an axis of this length"."""
    n = D.as_int(length)
    if n is None:
        return ALL
    return constant(0, max(n - 1, 0))


def collapse(deps: Deps, length: Dim | None) -> dict[SourceAxis, Dep]:
    """Dependencies of *all* positions of an axis, as position-independent deps."""
    return through(whole_axis(length), deps)


@dataclass
class FlowState:
    """``axes[k]``: deps of positions along axis k; ``fixed``: deps of every element.
    ``axes is None`` when the rank is unknown (everything is then in ``fixed``)."""

    axes: tuple[dict[SourceAxis, Dep], ...] | None
    fixed: dict[SourceAxis, Dep] = field(default_factory=dict)

    @property
    def rank(self) -> int | None:
        return None if self.axes is None else len(self.axes)

    def sources(self) -> set[SourceAxis]:
        out = set(self.fixed)
        for ax in self.axes or ():
            out.update(ax)
        return out

    def collapsed(self, shape: tuple[Dim | None, ...] | None = None) -> dict[SourceAxis, Dep]:
        """Everything this tensor depends on, position-independent."""
        parts: list[Deps] = [self.fixed]
        for k, ax in enumerate(self.axes or ()):
            length = shape[k] if shape is not None and k < len(shape) else None
            parts.append(collapse(ax, length))
        return merge(*parts)

    @property
    def empty(self) -> bool:
        return not self.fixed and not any(self.axes or ())


def empty(rank: int | None) -> FlowState:
    return FlowState(None if rank is None else tuple({} for _ in range(rank)))


def everything(rank: int | None, deps: Iterable[SourceAxis]) -> FlowState:
    """Conservative: every element depends on every position of every source."""
    state = empty(rank)
    state.fixed = {s: ALL for s in deps}
    return state
