"""What the core knows about one attention layer: the shared vocabulary between
attention detection (this package), the token-flow engine (which gates the key
axis by ``mask.keys``), the attention-span report and the hotspots analyzer
(which counts mask-aware *effective* FLOPs from ``mask.visible_pairs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..dims import Dim
from ..tokenflow.deps import ALL, Dep, count

FAMILIES = ("bidirectional", "causal", "sliding_window", "chunked", "global_local", "dilated",
            "block_sparse", "pattern", "unknown")


@dataclass
class MaskInfo:
    """Which keys query ``i`` may attend to (self-attention coordinates).

    ``keys`` maps a query position to key positions. ``family`` names it
    (METRICS.md); ``params`` holds what was read off the graph, e.g.
    ``{"window": 4096}`` (HF convention: keys ``i - W < j <= i``). ``source``
    says how we know: ``attribute`` (fused op), ``evaluated`` (mask subgraph run
    at small lengths and fitted), ``none`` (no mask: every key visible),
    ``input-driven`` (built from a graph input such as ``attention_mask``; the
    structure is analyzed with that input all ones).
    """

    family: str
    keys: Dep
    params: dict[str, Any] = field(default_factory=dict)
    source: str = "none"
    input_driven: tuple[str, ...] = ()
    evaluated_at: tuple[int, ...] = ()
    note: str = ""

    def span(self, n: int) -> int:
        """Widest key set of any query at length ``n``, including the query itself."""
        if self.family == "bidirectional":
            return n
        if self.family == "causal":
            return n
        if self.family == "sliding_window":
            return min(n, int(self.params["window"]))
        return max((count(self.keys.at(i, n)) for i in _probe_positions(n)), default=0)

    def visible_pairs(self, n: int) -> int:
        """Number of visible (query, key) pairs at length ``n`` (square self-attention)."""
        if self.family == "bidirectional":
            return n * n
        if self.family == "causal":
            return n * (n + 1) // 2
        if self.family == "sliding_window":
            w = int(self.params["window"])
            return n * (n + 1) // 2 if n <= w else w * (w + 1) // 2 + (n - w) * w
        return sum(count(self.keys.at(i, n)) for i in range(n))

    def visible_pairs_formula(self, n: Any) -> Any:
        """``visible_pairs`` as a sympy expression in ``n`` when the family has a
        closed form (windowed: valid for ``n >= W``), else None."""
        if self.family == "bidirectional":
            return n * n
        if self.family == "causal":
            return n * (n + 1) / 2
        if self.family == "sliding_window":
            w = int(self.params["window"])
            return w * (w + 1) / 2 + (n - w) * w
        return None


def _probe_positions(n: int) -> list[int]:
    if n <= 4096:
        return list(range(n))
    step = max(1, n // 2048)
    return sorted(set(range(0, n, step)) | {n - 1})


NO_MASK = MaskInfo("bidirectional", ALL, source="none")


@dataclass
class AttentionLayer:
    """One attention layer found in the graph (fused op or unfused pattern)."""

    index: int
    name: str
    """Display name: the exporter's layer scope (``layers.3``) or the node name."""
    kind: str
    """``unfused`` or the fused op (``Attention``, ``com.microsoft::GroupQueryAttention`` …)."""
    nodes: tuple[str, ...]
    """Ids of every node that forms the layer (scores → softmax → AV, or the fused op)."""
    mask: MaskInfo
    qk_node: str | None = None
    softmax_node: str | None = None
    av_node: str | None = None
    fused_node: str | None = None
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: Dim | None = None
    v_head_dim: Dim | None = None
    model_dim: Dim | None = None
    batch: Dim | None = None
    q_len: Dim | None = None
    k_len: Dim | None = None
    scale: float | None = None
    """The scale actually applied to QKᵀ (product of all constant factors), if known."""
    scale_note: str = ""
    softcap: float | None = None
    rope: str | None = None
    """``rotate_half`` (Sin/Cos pattern), ``RotaryEmbedding`` op, or None."""
    self_attention: bool = True
    """Queries and keys index the same sequence (False for cross-attention)."""
    softmax_axis: int | None = None
    """Normalised axis of the softmax over keys (unfused), e.g. 3 for [B, H, q, k]."""
    probs_input: int = 0
    """Which input of ``av_node`` is the probabilities P (the other is V)."""
    q_tensor: str | None = None
    k_tensor: str | None = None
    v_tensor: str | None = None
    """The tensors entering as Q, K, V (for fused ops: the op's inputs)."""
    mask_tensors: tuple[str, ...] = ()
    """Tensors the mask was read from (additive bias, Where condition, attn_mask input)."""

    @property
    def expected_scale(self) -> float | None:
        from ..dims import as_int

        d = as_int(self.head_dim)
        return None if not d else d ** -0.5
