"""Judgements over detected layers: the scale check and the future-token leak.

They live in the core (not in the report plugin) so that other analyzers — the
architecture review, the token-flow engine — reach the same verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import AttentionLayer

SCALE_RTOL = 1e-3
"""Float32 constants of 1/sqrt(d) are exact to ~1e-7; anything beyond 0.1 % is a different scale."""

CAUSAL_LIKE = {"causal", "sliding_window", "chunked", "global_local", "dilated", "block_sparse"}


@dataclass
class ScaleCheck:
    verdict: str
    """``ok``, ``different``, ``missing`` (no factor at all), ``unknown``."""
    applied: float | None
    expected: float | None

    @property
    def ratio(self) -> float | None:
        if self.applied is None or not self.expected:
            return None
        return self.applied / self.expected


def scale_check(layer: AttentionLayer) -> ScaleCheck:
    expected = layer.expected_scale
    applied = layer.scale
    if applied is None or expected is None:
        return ScaleCheck("unknown", applied, expected)
    if abs(applied / expected - 1.0) <= SCALE_RTOL:
        return ScaleCheck("ok", applied, expected)
    if applied == 1.0:  # no factor, or factors that multiply to exactly 1 (T5's ``* 1.0``)
        return ScaleCheck("missing", applied, expected)
    return ScaleCheck("different", applied, expected)


def causal_like(layer: AttentionLayer) -> bool:
    """Sees no later key, by attribute or at every evaluated length."""
    m = layer.mask
    return m.family in CAUSAL_LIKE and not m.sees_future


def future_leaks(layers: list[AttentionLayer]) -> dict[int, str]:
    """Layers that let a query see a later key in a model that is otherwise
    causal, with the reason. Three ways to be "otherwise causal":

    1. other heads (or batch entries) of the same mask are causal;
    2. other self-attention layers of the same stack (exporter scope such as
       ``m.model.layers``; an encoder and a decoder are different stacks) are causal;
    3. the mask itself is causal but for a look-ahead: a band unbounded to the
       past with a few later keys, or a pattern that fits a causal-like family once
       its later keys (at most 10 % of them) are removed.
    """
    out: dict[int, str] = {}
    causal_stacks = {la.stack for la in layers if la.self_attention and causal_like(la)}
    for la in layers:
        m = la.mask
        if not la.self_attention or not m.sees_future:
            continue
        where = ""
        if m.future_example is not None:
            k, i, j = m.future_example
            where = f": query {i} sees key {j}" + (f" (head/batch slice {k})" if m.per_head else "")
        if m.mixed_causal:
            out[la.index] = f"some heads are causal, others see later keys{where}"
        elif la.stack in causal_stacks:
            out[la.index] = f"the other layers of {la.stack or 'the model'} are causal{where}"
        elif m.family == "band" and "left" not in m.params and m.params.get("right", 0) > 0:
            out[la.index] = f"causal except for a look-ahead of {m.params['right']} key(s){where}"
        elif m.family == "pattern" and m.causal_part in CAUSAL_LIKE and 0 < m.future_fraction <= 0.1:
            out[la.index] = (f"{m.causal_part} but for {m.future_fraction:.1%} of the later-key pairs, "
                             f"which are visible{where}")
    return out
