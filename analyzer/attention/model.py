"""What the core knows about one attention layer: the shared vocabulary between
attention detection (this package), the token-flow engine (which gates the key
axis by ``mask.keys``), the attention-span report and the hotspots analyzer
(which counts mask-aware *effective* FLOPs from ``mask.visible_pairs``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..dims import Dim
from ..tokenflow.deps import ALL, Dep, count

FAMILIES = ("bidirectional", "causal", "sliding_window", "chunked", "global_local", "dilated",
            "block_sparse", "pattern", "unknown", "band")
"""``band``: a contiguous band ``[i - left, i + right]`` that none of the named
families describes (e.g. causal with a look-ahead of ``right`` keys: a leak).
``sliding_window`` may carry ``params["right"] > 0`` for a two-sided window."""


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
    sees_future: bool = False
    """Some query sees a key ``j > i`` (at an evaluated length, or by definition)."""
    per_head: bool = False
    """The evaluated mask differs across heads/batch entries; ``keys`` is their union."""
    mixed_causal: bool = False
    """Some heads/batch entries are causal while others see later keys."""
    future_example: tuple[int, int, int] | None = None
    """``(slice, i, j)``: a head/batch slice where query ``i`` sees key ``j > i``."""
    future_fraction: float = 0.0
    """Share of the (i, j > i) pairs that are visible (union over heads), at the
    largest evaluated length up to 512: 1.0 for bidirectional, small for an off-by-one."""
    causal_part: str = ""
    """For a mask that fits no family and sees later keys: the family it fits
    once those later keys are removed (``causal`` …) — a causal mask plus a leak."""
    _pairs: dict[int, int] = field(default_factory=dict, repr=False, compare=False)

    def _band(self) -> tuple[float, float] | None:
        """``(left, right)`` reach when ``keys`` is a plain band ``[i-left, i+right]``."""
        from ..tokenflow.deps import Band

        k = self.keys
        if not isinstance(k, Band):
            return None
        lo = k.lo
        hi = k.hi
        if lo is not None and (len(lo) != 1 or lo[0].s != 1 or not isinstance(lo[0].c, Fraction)):
            return None
        if hi is not None and (len(hi) != 1 or hi[0].s != 1 or not isinstance(hi[0].c, Fraction)):
            return None
        left = math.inf if lo is None else float(-lo[0].c)
        right = math.inf if hi is None else float(hi[0].c)
        return left, right

    def span(self, n: int) -> int:
        """Widest key set of any query at length ``n``, including the query itself."""
        if self.family == "bidirectional":
            return n
        if self.family == "causal" and not self.params.get("right"):
            return n
        if self.family == "sliding_window" and not self.params.get("right"):
            return min(n, int(self.params["window"]))
        band = self._band()
        if band is not None:
            left, right = band
            return int(min(n, left + right + 1))
        return max((count(self.keys.at(i, n)) for i in self._span_positions(n)), default=0)

    def _span_positions(self, n: int) -> list[int]:
        """Query positions whose key sets include the widest one: exact for the
        pattern families (the widest query of a chunk or block is its last
        position), a sample of positions otherwise."""
        from ..tokenflow.deps import BlockSparse, Chunked, Dilated, GlobalLocal

        k = self.keys
        if isinstance(k, Chunked):
            return sorted({min(n - 1, k.size - 1), n - 1})
        if isinstance(k, BlockSparse):
            rows = min(-(-n // k.block), len(k.layout) + 1)
            return sorted({min(n - 1, qb * k.block + k.block - 1) for qb in range(rows)} | {n - 1})
        if isinstance(k, GlobalLocal) and not k.causal:
            glob = [g for g in k.globals_ if g < n]
            return glob[:1] if glob else [min(n - 1, k.left)]
        if isinstance(k, Dilated) and k.right == 0:
            return [n - 1]
        return _probe_positions(n)

    def visible_pairs(self, n: int) -> int:
        """Number of visible (query, key) pairs at length ``n`` (square self-attention).

        Never raises: a concrete pattern known at another length only (family
        ``pattern``) counts ``n * n`` there — an upper bound for cost estimates;
        :meth:`span` raises ``ValueError`` in that case instead of guessing."""
        from ..tokenflow.deps import Concrete

        if isinstance(self.keys, Concrete) and n != self.keys.n0:
            return n * n
        if self.family == "bidirectional":
            return n * n
        if self.family == "causal" and not self.params.get("right"):
            return n * (n + 1) // 2
        if self.family == "sliding_window" and not self.params.get("right"):
            w = int(self.params["window"])
            return n * (n + 1) // 2 if n <= w else w * (w + 1) // 2 + (n - w) * w
        band = self._band()
        if band is not None:
            return band_pairs(n, *band)
        from ..tokenflow.deps import Chunked

        if isinstance(self.keys, Chunked):
            c = self.keys.size
            q, r = divmod(n, c)
            return q * c * (c + 1) // 2 + r * (r + 1) // 2 if self.keys.causal else q * c * c + r * r
        if n not in self._pairs:
            self._pairs[n] = sum(count(self.keys.at(i, n)) for i in range(n))
        return self._pairs[n]

    def visible_pairs_formula(self, n: Any) -> Any:
        """``visible_pairs`` as an exact expression in ``n`` (an int, a dim
        expression or a cost polynomial) when the family has a closed form
        (windowed: valid for ``n >= W``), else None."""
        if self.family == "bidirectional":
            return n * n
        if self.family == "causal" and not self.params.get("right"):
            return (n * n + n) * Fraction(1, 2)
        if self.family == "sliding_window" and not self.params.get("right"):
            w = int(self.params["window"])
            return n * w - w * (w - 1) // 2
        return None


def band_pairs(n: int, left: float, right: float) -> int:
    """Visible pairs of the band ``[i - left, i + right]`` clipped to ``[0, n)``,
    in O(1): Σ_i (min(n-1, i+R) − max(0, i−L) + 1)."""
    if n <= 0:
        return 0
    hi_sum = n * (n - 1) if right >= n - 1 else _upper_sum(n, int(right))
    lo_sum = 0 if left >= n - 1 else (n - 1 - int(left)) * (n - int(left)) // 2
    return hi_sum - lo_sum + n


def _upper_sum(n: int, r: int) -> int:
    """Σ_{i<n} min(n-1, i+r) for 0 <= r < n-1."""
    m = n - 1 - r  # rows with i + r <= n - 1 are i = 0..m
    return (m + 1) * r + m * (m + 1) // 2 + r * (n - 1)


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
    shift_node: str | None = None
    output: str | None = None
    """The tensor holding the layer's output when no single P·V node does (a
    block-sparse attention assembled from several softmaxes)."""
    """Unfused: ``x - ReduceMax(x)`` before the softmax (an explicit stabiliser).
    The row maximum is over visible keys only, and softmax ignores a row shift,
    so the token-flow engine passes ``x`` through it unchanged."""
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
    """Unfused: the normalised key axis of the softmax *on its own input* (what a
    flow rule at ``softmax_node`` sees): 3 for scores [B, H, q, k]; 1 when an
    opset < 13 export reshapes the scores to [B·H·q, k] around a 2-D softmax."""
    probs_input: int = 0
    """Which input of ``av_node`` is the probabilities P (the other is V)."""
    q_tensor: str | None = None
    k_tensor: str | None = None
    v_tensor: str | None = None
    """The tensors entering as Q, K, V (for fused ops: the op's inputs)."""
    mask_tensors: tuple[str, ...] = ()
    """Tensors the mask was read from (additive bias, Where condition, attn_mask input)."""
    q_seq_axis: int | None = None
    """Axis of ``q_tensor`` that indexes query positions (2 for [B, H, q, d])."""
    k_seq_axis: int | None = None
    """Axis of ``k_tensor`` that indexes key positions (3 for the unfused Kᵀ [B, H, d, k])."""
    v_seq_axis: int | None = None
    """Axis of ``v_tensor`` that indexes key/value positions (2 for [B, H, k, d])."""
    stack: str = ""
    """The exporter scope the layer sits in without its index (``m.model.layers``):
    layers of one stack are expected to share a mask convention."""
    notes: list[str] = field(default_factory=list)
    """Caveats found while reading the layer (shown in the report's data)."""

    @property
    def expected_scale(self) -> float | None:
        from ..dims import as_int

        d = as_int(self.head_dim)
        return None if not d else d ** -0.5
