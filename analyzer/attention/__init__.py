"""Attention layers: detection (fused and unfused), mask reading and fitting.

:func:`attention_layers` is the core service every consumer calls; it is
computed once per analysis (``ctx.cached``).
"""

from __future__ import annotations

from .model import NO_MASK, AttentionLayer, MaskInfo

__all__ = ["NO_MASK", "AttentionLayer", "MaskInfo"]
