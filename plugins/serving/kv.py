"""The KV cache a model needs while it generates: bytes per token, per sequence, per batch.

Two readings, stated in the report:

* **read directly** — the graph was exported with a cache: float inputs that carry a
  ``past*`` dim (``past_key.0 [1, 2, past, 8]``, ``past_key_values.0.key``,
  com.microsoft ``Attention``'s ``past [2, B, H, P, d]``, ``GroupQueryAttention``'s
  ``past_key``). Each such input stores, per token, the product of its other dims
  (batch at 1) in its own dtype: whatever the graph keeps — full K/V, an MLA latent,
  a quantized cache — is what is counted. Cache inputs without a ``past*`` dim
  (cross-attention K/V over the encoder) are a fixed size per sequence.
* **as if cached** — a graph without cache inputs: every self-attention layer would
  cache K and V of each token, kv_heads · (d_k + d_v) elements in the dtype of its K
  (kv heads counted before GQA repetition); a cross-attention layer caches its
  encoder K/V once per sequence.

Layers whose mask is a sliding window keep at most W tokens (a rolling cache), chunked
layers at most one chunk; every other layer keeps all n tokens. ``--kv-dtype`` stores
the cache in another dtype (deployments usually keep an fp32 export's cache in fp16).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from model_analyze import dims as D
from model_analyze.attention import AttentionLayer, attention_layers
from model_analyze.context import AnalysisContext
from model_analyze.graph import dtype_name, is_float
from model_analyze.tensors import dtype_bits
from model_analyze.tokenflow.deps import Chunked

_CACHE_NAME = re.compile(r"past|cache", re.IGNORECASE)


@dataclass
class CacheLayer:
    """What one attention layer (or one unattributed cache tensor) keeps."""

    name: str
    kind: str
    """``self`` (grows with the context), ``cross`` (fixed per sequence)."""
    per_token: int
    """Elements per cached token per sequence (K and V together); 0 for a fixed cache."""
    fixed: int = 0
    """Elements per sequence that do not grow with the context (cross-attention K/V)."""
    dtype: str = "?"
    nbytes: Fraction = Fraction(0)
    """Bytes per element as the figure counts it (the graph's or ``--kv-dtype``)."""
    cap: int | None = None
    """At most this many tokens are kept (sliding window, chunk); None: all of them."""
    cap_reason: str = ""
    heads: int | None = None
    kv_heads: int | None = None
    d_k: int | None = None
    d_v: int | None = None
    source: str = ""

    def tokens(self, n: int) -> int:
        return n if self.cap is None else min(n, self.cap)

    def bytes(self, n: int) -> Fraction:
        return (self.per_token * self.tokens(n) + self.fixed) * self.nbytes

    @property
    def mha_factor(self) -> Fraction | None:
        """Full multi-head attention would cache heads/kv_heads times as much."""
        if not self.heads or not self.kv_heads:
            return None
        return Fraction(self.heads, self.kv_heads)


@dataclass
class KVCache:
    layers: list[CacheLayer] = field(default_factory=list)
    read_directly: bool = False
    inputs: list[str] = field(default_factory=list)
    """Cache inputs of the graph (read directly)."""
    outputs: list[str] = field(default_factory=list)
    """Cache outputs (``present*``) of the graph."""
    past_symbols: set[str] = field(default_factory=set)
    dtype_note: str = ""
    notes: list[str] = field(default_factory=list)

    def bytes(self, n: int) -> Fraction:
        """Bytes per sequence at context ``n``."""
        return sum((la.bytes(n) for la in self.layers), Fraction(0))

    def per_token_bytes(self) -> Fraction:
        """Bytes each new token adds while no window is full."""
        return sum((la.per_token * la.nbytes for la in self.layers), Fraction(0))

    def mha_bytes(self, n: int) -> Fraction | None:
        """The same cache with one K/V head per query head (full MHA)."""
        total = Fraction(0)
        for la in self.layers:
            f = la.mha_factor
            if f is None:
                return None
            total += la.bytes(n) * f
        return total

    def capped(self) -> list[CacheLayer]:
        return [la for la in self.layers if la.cap is not None]

    def formula(self) -> str:
        """``kv(n) = 262,144·min(n, 4096)`` (bytes per sequence)."""
        groups: dict[int | None, Fraction] = {}
        fixed = Fraction(0)
        for la in self.layers:
            groups[la.cap] = groups.get(la.cap, Fraction(0)) + la.per_token * la.nbytes
            fixed += la.fixed * la.nbytes
        parts = []
        for cap, b in sorted(groups.items(), key=lambda x: (x[0] is not None, x[0] or 0)):
            if not b:
                continue
            coef = f"{_num(b)}·" if b != 1 else ""
            parts.append(f"{coef}n" if cap is None else f"{coef}min(n, {cap:,})")
        if fixed:
            parts.append(_num(fixed))
        return "kv(n) = " + (" + ".join(parts) or "0")


def _num(x: Fraction) -> str:
    return f"{int(x):,}" if x.denominator == 1 else f"{float(x):,.1f}"


def _value(ctx: AnalysisContext, d: Any, env: dict[str, int]) -> int | None:
    v = ctx.evaluate(d, {**ctx.bindings, **env})
    return int(v) if isinstance(v, (int, float)) and float(v).is_integer() else None


def past_symbols(ctx: AnalysisContext) -> set[str]:
    """The ``past*`` dims of the graph inputs (the core's convention for KV caches)."""
    out: set[str] = set()
    for name in ctx.graph.inputs:
        t = ctx.shapes.type(name)
        for d in (t.shape or ()) if t else ():
            out |= {s for s in D.free_symbols(d) if "past" in s.lower()}
    return out


def batch_symbols(ctx: AnalysisContext, exclude: set[str]) -> set[str]:
    """Dims that count sequences: named like a batch, or axis 0 of a graph input."""
    out: set[str] = set()
    for name in ctx.graph.inputs:
        t = ctx.shapes.type(name)
        if t is None or not t.shape:
            continue
        for k, d in enumerate(t.shape):
            for s in D.free_symbols(d):
                if s not in exclude and ("batch" in s.lower() or (k == 0 and len(t.shape) >= 2)):
                    out.add(s)
    return out


def _cache_tensors(ctx: AnalysisContext, names: list[str], pasts: set[str], by_name: bool) -> list[str]:
    out = []
    for name in names:
        t = ctx.shapes.type(name)
        if t is None or t.shape is None or len(t.shape) < 3:
            continue
        has_past = any(D.free_symbols(d) & pasts for d in t.shape)
        if has_past or (by_name and _CACHE_NAME.search(name) and is_float(t.dtype)):
            out.append(name)
    return out


def _feeds(ctx: AnalysisContext, tensor: str, layers: list[AttentionLayer], limit: int = 400) -> AttentionLayer | None:
    """The attention layer a cache input flows into (forward walk, bounded)."""
    owner: dict[str, AttentionLayer] = {}
    for la in layers:
        for nid in la.nodes:
            owner[nid] = la
    stack, seen = [tensor], {tensor}
    steps = 0
    while stack and steps < limit:
        t = stack.pop(0)
        for node in ctx.graph.consumers(t):
            steps += 1
            if node.id in owner:
                return owner[node.id]
            for o in node.outputs:
                if o and o not in seen:
                    seen.add(o)
                    stack.append(o)
    return None


def _cap(layer: AttentionLayer | None) -> tuple[int | None, str]:
    if layer is None:
        return None, ""
    mask = layer.mask
    if mask.family == "sliding_window" and not mask.params.get("right"):
        w = int(mask.params["window"])
        return w, f"sliding window {w:,}"
    if isinstance(mask.keys, Chunked) and mask.keys.causal:
        return mask.keys.size, f"chunk {mask.keys.size:,}"
    return None, ""


def read_cache(ctx: AnalysisContext, kv_dtype: tuple[str, Fraction] | None) -> KVCache:
    """The model's KV cache (see the module docstring for the two readings)."""
    layers = attention_layers(ctx)
    pasts = past_symbols(ctx)
    batch = batch_symbols(ctx, pasts)
    ones = dict.fromkeys(batch, 1)
    cache = KVCache(past_symbols=pasts)
    inputs = _cache_tensors(ctx, list(ctx.graph.inputs), pasts, by_name=True)
    cache.outputs = _cache_tensors(ctx, list(ctx.graph.outputs), pasts, by_name=False)
    if inputs:
        cache.read_directly, cache.inputs = True, inputs
        by_layer: dict[int, CacheLayer] = {}
        for name in inputs:
            t = ctx.shapes.type(name)
            layer = _feeds(ctx, name, layers)
            bits = dtype_bits(t.dtype) if t is not None else None
            per, fixed = _per_token(ctx, t.shape, pasts, ones) if t is not None and t.shape is not None else (None, 0)
            if t is None or per is None or bits is None:
                cache.notes.append(f"cache input {name!r}: size or dtype unknown, not counted")
                continue
            key = layer.index if layer is not None else -1 - len(by_layer)
            if key not in by_layer:
                cap, why = _cap(layer)
                by_layer[key] = CacheLayer(layer.name if layer else name, "self" if per else "cross", 0,
                                           dtype=dtype_name(t.dtype), nbytes=Fraction(bits, 8), cap=cap,
                                           cap_reason=why, heads=layer.heads if layer else None,
                                           kv_heads=layer.kv_heads if layer else None,
                                           d_k=D.as_int(layer.head_dim) if layer else None,
                                           d_v=D.as_int(layer.v_head_dim or layer.head_dim) if layer else None)
            entry = by_layer[key]
            entry.per_token += per
            entry.fixed += fixed
            entry.source = ", ".join(x for x in (entry.source, name) if x)
            if per:
                entry.kind = "self"
        cache.layers = list(by_layer.values())
        cache.dtype_note = "the dtype of the graph's cache inputs"
    else:
        for la in layers:
            if la.self_attention and (la.mask.family == "bidirectional" or la.mask.sees_future):
                continue  # an encoder layer: it sees the whole input at once and caches nothing
            derived = _derived(ctx, la, ones)
            if derived is None:
                cache.notes.append(f"{la.name}: kv heads or head dim unknown, not counted")
            else:
                cache.layers.append(derived)
        cache.dtype_note = "the dtype of K in the graph"
    if kv_dtype is not None:
        label, nbytes = kv_dtype
        for entry in cache.layers:
            entry.dtype, entry.nbytes = label, nbytes
        cache.dtype_note = "--kv-dtype"
    return cache


def _per_token(ctx: AnalysisContext, shape: tuple[Any, ...], pasts: set[str],
               ones: dict[str, int]) -> tuple[int | None, int]:
    """(elements per token, 0) for a cache with a ``past*`` axis, else (0, elements)."""
    env = {**ones, **dict.fromkeys(pasts, 1)}
    has_past = False
    total = 1
    for d in shape:
        if d is not None and D.free_symbols(d) & pasts:
            has_past = True
            continue
        v = _value(ctx, d, env) if d is not None else None
        if v is None:
            return None, 0
        total *= v
    return (total, 0) if has_past else (0, total)


def _derived(ctx: AnalysisContext, la: AttentionLayer, ones: dict[str, int]) -> CacheLayer | None:
    """As if cached: kv_heads · (d_k + d_v) per token in K's dtype."""
    kv = la.kv_heads or la.heads
    d_k = _value(ctx, la.head_dim, ones) if la.head_dim is not None else None
    d_v = _value(ctx, la.v_head_dim, ones) if la.v_head_dim is not None else d_k
    if not kv or not d_k or not d_v:
        return None
    t = ctx.shapes.type(la.k_tensor) if la.k_tensor else None
    dtype = t.dtype if t is not None else None
    bits = dtype_bits(dtype) or 32
    entry = CacheLayer(la.name, "self", kv * (d_k + d_v), dtype=dtype_name(dtype) if dtype else "float32 (assumed)",
                       nbytes=Fraction(bits, 8), heads=la.heads, kv_heads=kv, d_k=d_k, d_v=d_v,
                       source=f"{kv} kv heads × ({d_k} + {d_v})")
    if not la.self_attention:
        k_len = _value(ctx, la.k_len, ones) if la.k_len is not None else None
        if k_len is None:
            return None
        entry.kind, entry.fixed, entry.per_token = "cross", entry.per_token * k_len, 0
        entry.source += f" × {k_len:,} encoder positions"
        return entry
    entry.cap, entry.cap_reason = _cap(la)
    return entry
