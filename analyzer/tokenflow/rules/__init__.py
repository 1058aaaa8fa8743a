"""Token-flow rules: how each op moves, rescales or mixes positions.

A rule receives a :class:`~model_analyze.tokenflow.engine.FlowCtx` and returns
the output states. Positional ops map axis positions affinely (conv/pool:
``[S·i - pad, S·i - pad + d(k-1)]``); contractions and reductions mix an axis
whole. Where exactness would need per-element bookkeeping (a reshape that
interleaves two position axes, a dynamic gather, ``wrap`` padding), the rule
falls back to the sound choice: the whole axis.

One module per family; importing this package registers all of them in :data:`FLOW`.
"""

from __future__ import annotations

from . import elementwise, movement, nn, sequence, signal  # noqa: F401 - registers the rules
from .common import FLOW, broadcast, conservative, pointwise
from .nn import matmul_state

__all__ = ["FLOW", "broadcast", "conservative", "matmul_state", "pointwise"]
