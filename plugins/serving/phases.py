"""FLOPs and bytes of one prefill of n tokens and of one decode step at context n.

Everything comes from the cost model the hotspots analyzer reports
(:func:`model_analyze.cost.cost_model`): its per-node polynomials in the model's
dims, evaluated at other bindings, and its attention contractions with the masks
the attention service read. Nothing here counts an op.

* **Prefill** of n tokens: the graph at ``seq = n`` (``past = 0``), one sequence.
* **Decode step at context n**: one query row attending to n keys (the new token and
  n − 1 cached ones). A graph exported with a KV cache is evaluated directly at
  ``seq = 1, past = n − 1``. A graph without one is analysed *as if cached*: each cost
  term that grows as seqᵖ is one query row against seqᵖ⁻¹ keys, so it becomes nᵖ⁻¹ —
  ``P_decode(n) = P(0) + (P(n) − P(0)) / n`` for a cost polynomial P of degree ≤ 2
  in seq (projections and MLP: one token; QKᵀ, AV, softmax and mask: one row of n).
* **Masks**: attention contractions count the (query, key) pairs the mask leaves
  visible (causal, window, chunk …). For the *bound* a mask that was not read counts
  one key per query (the least any mask leaves), for the displayed FLOPs it counts
  dense, as the hotspots section does.
* **Bytes that must move** (the bound's side): every weight read once per step (a
  lookup table only the rows it gathers) by a node that certainly runs — the graph's,
  a ``Loop``/``Scan`` body's (counted as running, as the cost model counts it), the
  branch an ``If`` is known to take; a weight read only inside the branches of an ``If``
  whose condition is not known may not be read at all, and is left out (``weights_maybe``),
  so the bytes stay a lower bound, the KV cache touched (written by the
  prefill, read and extended by a decode step), the model's own inputs and outputs.
  Activations are not counted: a fused runtime may keep them on chip. The unfused
  traffic of the hotspots section (every tensor written and read back) is reported
  next to it, for reference, not as a bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from model_analyze import dims as D
from model_analyze.attention import AttentionLayer, MaskInfo, attention_layers
from model_analyze.bindings import sequence_dim
from model_analyze.context import AnalysisContext
from model_analyze.cost import CostModel, NodeCost, Poly
from model_analyze.cost.poly import atom_values, from_dim
from model_analyze.graph import dtype_name
from model_analyze.tokenflow.deps import count

from .kv import KVCache, batch_symbols

EXACT_MASKS = frozenset({"bidirectional", "causal", "sliding_window", "chunked", "global_local", "dilated",
                         "block_sparse", "band"})
"""Mask families whose visible pairs are known at every length."""

COMPUTE_DTYPES = {"float": "fp32", "float16": "fp16", "bfloat16": "bf16", "double": "fp64", "int8": "int8",
                  "uint8": "int8", "int4": "int4", "uint4": "int4", "float8e4m3fn": "fp8", "float8e5m2": "fp8",
                  "float8e4m3fnuz": "fp8", "float8e5m2fnuz": "fp8"}
"""ONNX dtype of a matmul's first input → the dtype key of a device's peak table."""


@dataclass
class Phase:
    """One step of serving, per sequence (``bytes()`` scales to a batch)."""

    name: str
    context: int | None
    tokens: int | None
    flops: float | None
    """All FLOPs (2·MACs + element-wise), mask-aware as the hotspots section counts them."""
    mma: dict[str, float]
    """2·MACs by compute dtype, mask-aware, masks not read at their minimum: the bound's work."""
    weights: float
    """Weight bytes read once per step, whatever the batch."""
    lookup: float
    """Rows of lookup tables (embeddings) gathered, per sequence."""
    kv: float
    io: float
    unfused: float | None = None
    how: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def mma_total(self) -> float:
        return sum(self.mma.values())

    def bytes(self, batch: int = 1) -> float:
        return self.weights + batch * (self.lookup + self.kv + self.io)


@dataclass
class Phases:
    seq: str | None
    n: int | None
    prefill: Phase
    decode: Phase | None
    cached: bool
    """The graph has a KV cache (decode read directly)."""
    weights_held: int
    """Every stored tensor's bytes: what a device must hold besides activations and the cache."""
    weights_read: int
    lookups: list[tuple[str, int, int]]
    """(table, rows, bytes per row) of tensors only ever gathered from."""
    unread_masks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flops_bound: str | None = None
    """What the FLOPs/MACs are (the graph's total bound): ``lower`` when nodes are uncosted."""
    unfused_bound: str | None = None
    """What the unfused bytes are: ``lower`` when a tensor's size is unknown (it counts zero)."""
    weights_maybe: int = 0
    """Bytes of ``weights_read`` read only inside ``If`` branches whose condition is not known:
    perhaps not read at all, so not in a phase's bytes (a lower bound)."""


def _at(p: Poly | None, env: dict[str, int]) -> float | None:
    """A cost polynomial at ``env`` (opaque atoms through the dim algebra); None where it is
    negative — a length the model cannot have at ``env`` (a conv window longer than its input,
    D002), never a count."""
    if p is None:
        return None
    v = p.evaluate(atom_values(p.atoms(), env))
    return None if v is None or v < 0 else float(v)


def compute_dtype(ctx: AnalysisContext, node: Any) -> str:
    t = ctx.shapes.dtype(node.input(0)) if node.inputs else None
    return COMPUTE_DTYPES.get(dtype_name(t), dtype_name(t))


def _lookup_tables(ctx: AnalysisContext, names: set[str]) -> dict[str, tuple[int, int]]:
    """Stored tensors read only as the data of a Gather: ``{name: (rows, bytes per row)}``."""
    out: dict[str, tuple[int, int]] = {}
    for name in names:
        init = ctx.graph.initializers.get(name)
        users = ctx.graph.consumers(name)
        if init is None or not users or not init.dims or not init.nbytes:
            continue
        if all(u.op_type in ("Gather", "GatherBlockQuantized") and u.input(0) == name and name not in u.inputs[1:]
               for u in users):
            rows = init.dims[0]
            out[name] = (rows, init.nbytes // rows if rows else 0)
    return out


def certainly_read(ctx: AnalysisContext) -> set[str]:
    """Every tensor some node that certainly runs reads: the graph's nodes, the bodies of its
    ``Loop``/``Scan`` (and other control-flow) nodes, which the cost model counts as running,
    the branch an ``If`` is known to take, and of an ``If`` whose condition is not known only
    what *every* branch reads (either branch may be the one that does not run)."""
    return _read_in(ctx, ctx.graph)


def _read_in(ctx: AnalysisContext, g: Any) -> set[str]:
    out: set[str] = set()
    for node in g.nodes:
        out.update(t for t in node.inputs if t)
        subs = node.subgraphs
        if node.op_type == "If" and node.domain == "":
            taken = ctx.shapes.branch_taken.get(node.id)
            keys = ("then_branch", "else_branch")
            branches = [set().union(*(_read_in(ctx, sub) for sub in subs.get(k, []))) for k in keys]
            out |= branches[taken] if taken is not None else branches[0] & branches[1]
        else:
            for group in subs.values():
                for sub in group:
                    out |= _read_in(ctx, sub)
    return out


def _layer_of(layers: list[AttentionLayer]) -> dict[str, AttentionLayer]:
    return {nid: la for la in layers for nid in la.nodes}


def _visible_prefill(mask: MaskInfo | None, n: int, dense: float) -> tuple[float, float]:
    """(pairs counted for display, pairs counted for the bound) of an n × n self-attention."""
    if mask is None:
        return dense, dense
    if mask.family in EXACT_MASKS:
        v = float(mask.visible_pairs(n))
        return v, v
    return dense, float(n)  # not read: dense as displayed, one key per query for the bound


def _visible_last(mask: MaskInfo | None, n: int, dense: float) -> tuple[float, float]:
    """Keys the last query of a length-n sequence sees (display, bound)."""
    if mask is None or n <= 0:
        return dense, dense
    if mask.family in EXACT_MASKS:
        v = float(count(mask.keys.at(n - 1, n)))
        return v, v
    return dense, 1.0


def build(ctx: AnalysisContext, m: CostModel, kv: KVCache, n_override: int | None = None) -> Phases:
    """The prefill (or forward) and decode phases at the context length ``n``."""
    return _PhaseBuilder(ctx, m, kv, n_override).phases()


class _PhaseBuilder:
    """The bindings of each phase, the weights and MACs it reads, and its costs: the
    steps of :func:`build`, sharing what the binding fixes."""

    def __init__(self, ctx: AnalysisContext, m: CostModel, kv: KVCache, n_override: int | None) -> None:
        self.ctx, self.m, self.kv = ctx, m, kv
        self.seq = seq = sequence_dim(ctx.graph, ctx.input_types())
        self.pasts = pasts = kv.past_symbols
        batch = batch_symbols(ctx, pasts | ({seq} if seq else set()))
        self.base = {**ctx.bindings, **dict.fromkeys(batch, 1)}
        self.cached = kv.read_directly and bool(pasts)
        self.n: int | None = None
        if seq is not None:
            self.n = n_override or int(self.base.get(seq, 0) + (sum(self.base.get(p, 0) for p in pasts)
                                                                 if self.cached else 0))
        self.ctx_syms = _context_symbols(ctx, seq, pasts, batch)
        self.pref_env = self.env(self.n, 0) if self.n is not None else dict(self.base)
        self.dec_env = self.env(1, self.n - 1) if self.n is not None else None
        self.layers = attention_layers(ctx)
        self.owner = _layer_of(self.layers)
        self.node_cost = {nc.node.id: nc for nc in m.graph.nodes}
        self.mac_by = self._macs_by_dtype()
        self.unread: list[str] = []

    def env(self, q: int, past: int) -> dict[str, int]:
        """The bindings of a step of ``q`` new tokens after ``past`` cached ones."""
        out = dict(self.base)
        if self.seq is not None:
            out[self.seq] = q
        out.update(dict.fromkeys(self.pasts, past))
        out.update(dict.fromkeys(self.ctx_syms, q + past))
        return out

    def _macs_by_dtype(self) -> dict[str, Poly]:
        """MACs by compute dtype (the bound's work)."""
        return self._split(self.m.counted)

    def _split(self, costs: list[NodeCost]) -> dict[str, Poly]:
        mac_by: dict[str, Poly] = {}
        for nc in costs:
            if nc.macs != 0 and nc.status != "folded":
                for key, macs in self._work(nc).items():
                    mac_by[key] = mac_by.get(key, Poly()) + macs
        return mac_by

    def _work(self, nc: NodeCost) -> dict[str, Poly]:
        """One node's MACs by the dtype of the work done. An op's is the dtype of its first
        input; a control-flow node's work is its bodies' nodes', not its first input's (an
        ``If``'s is its boolean condition): the branch an ``If`` counts (its MACs are that
        branch's) gives its own split; a ``Loop``/``Scan`` body (the node counts it × trips)
        gives its split × trips — each dtype's share of the body times the node's count over the
        body's, so an fp16 and an fp32 MatMul in one body stay apart. Only where that ratio is no
        exact polynomial (a body whose count is a sum of terms in the dims) and the body mixes
        dtypes does the node's first output's dtype, the dtype it computes, take all of it."""
        node = nc.node
        if not node.subgraphs:
            return {compute_dtype(self.ctx, node): nc.macs}
        bodies = [self.m.engine.graph_cost(sub) for subs in node.subgraphs.values() for sub in subs]
        for body in bodies:
            if body.macs == nc.macs:
                return self._split(body.nodes)
        splits = [(body, self._split(body.nodes)) for body in bodies]
        keys = {k for _, split in splits for k in split}
        if len(keys) == 1:
            return {keys.pop(): nc.macs}
        for body, split in splits:
            if len(bodies) == 1 and body.macs != 0:
                shares = {k: (macs * nc.macs).div_exact(body.macs) for k, macs in split.items()}
                if all(v is not None for v in shares.values()):
                    return {k: v for k, v in shares.items() if v is not None}
        t = self.ctx.shapes.dtype(node.outputs[0]) if node.outputs else None
        return {COMPUTE_DTYPES.get(dtype_name(t), dtype_name(t)): nc.macs}

    def io_bytes(self, e: dict[str, int]) -> float:
        """Bytes of the graph's inputs and outputs other than the cache, at ``e``."""
        names = [x for x in [*self.ctx.graph.inputs, *self.ctx.graph.outputs]
                 if x not in self.kv.inputs and x not in self.kv.outputs]
        return sum((_at(self.m.engine.tensor_bytes(x), e) or 0.0 for x in dict.fromkeys(names)), 0.0)

    def evaluate(self, p: Poly, phase: str) -> float | None:
        """``p`` in a phase: at its bindings, or — decode without a cache — the cost of one
        more token of the prefill (a finite difference at n)."""
        if phase == "prefill" or self.cached:
            return _at(p, self.pref_env if phase == "prefill" else self.dec_env)  # type: ignore[arg-type]
        zero, full = _at(p, self.env(0, 0)), _at(p, self.pref_env)
        if zero is None or full is None or not self.n:
            return None
        return zero + (full - zero) / self.n

    def phase_costs(self, phase: str) -> tuple[float | None, dict[str, float]]:
        """FLOPs as displayed and the matrix work per compute dtype the bound divides, with
        attention at the pairs its mask leaves visible."""
        flops = self.evaluate(self.m.graph.flops, phase)
        mma = {k: 2 * (self.evaluate(p, phase) or 0.0) for k, p in self.mac_by.items()}
        for a in self.m.attention:
            flops = self._attention(a, phase, flops, mma)
        return flops, mma

    def _attention(self, a: Any, phase: str, flops: float | None, mma: dict[str, float]) -> float | None:
        """Take the pairs one attention layer's mask hides off ``flops`` (display) and ``mma`` (bound)."""
        n = self.n
        layer = self.owner.get(a.nodes[0])
        nc = self.node_cost.get(a.nodes[0])
        q_len = from_dim(layer.q_len) if layer is not None and layer.fused_node is None else None
        k_len = from_dim(layer.k_len) if layer is not None and layer.fused_node is None else None
        pairs: Poly | None
        if q_len is not None and k_len is not None:
            pairs = q_len * k_len
        else:
            pairs = nc.pairs if nc is not None else None
        if pairs is None or n is None:
            return flops
        dense_pref = _at(pairs, self.pref_env)
        if not dense_pref:
            return flops
        per_pair = (_at(a.dense_macs, self.pref_env) or 0.0) / dense_pref
        mask = layer.mask if layer is not None else _hint_mask(a.family, a.mask_params)
        self_attn = layer.self_attention if layer is not None else True
        dense = self.evaluate(pairs, phase) or 0.0
        if not self_attn:
            shown = bound = dense
        elif phase == "prefill":
            shown, bound = _visible_prefill(mask, n, dense) if dense == float(n) * n else (dense, dense)
        else:
            shown, bound = _visible_last(mask, n, dense)
        if mask is not None and mask.family not in EXACT_MASKS and self_attn:
            self.unread.append(layer.name if layer is not None else a.name)
        key = compute_dtype(self.ctx, nc.node) if nc is not None else "fp32"
        mma[key] = mma.get(key, 0.0) - 2 * per_pair * (dense - bound)
        return flops - 2 * per_pair * (dense - shown) if flops is not None else None

    def phases(self) -> Phases:
        m, kv, n, seq, pasts = self.m, self.kv, self.n, self.seq, self.pasts
        stored = list(m.params.tensors)
        read_roles = ("parameter", "quantization", "buffer", "copy")
        lookups = _lookup_tables(self.ctx, {t.name for t in stored if t.role in read_roles})
        weights_read = sum(t.nbytes or 0 for t in stored if t.role in read_roles and t.name not in lookups)
        weights_held = sum(t.nbytes or 0 for t in stored)
        certain = certainly_read(self.ctx)
        weights_maybe = sum(t.nbytes or 0 for t in stored
                            if t.role in read_roles and t.name not in lookups and t.name not in certain)
        gathered = [v for k, v in lookups.items() if k in certain]

        def lookup_bytes(tokens: int | None) -> float:
            if tokens is None:
                return float(sum(rows * rb for rows, rb in gathered))
            return float(sum(min(tokens, rows) * rb for rows, rb in gathered))

        notes: list[str] = []
        if seq is not None and any(p.degree(seq) > 2 for p in [m.graph.flops, *self.mac_by.values()]):
            notes.append("a cost term grows faster than seq²: the as-if-cached decode is approximate")
        pf, pm = self.phase_costs("prefill")
        decodes = _decodes(self.layers, kv)
        must = float(weights_read - weights_maybe)
        prefill = Phase("prefill" if decodes else "forward", n, n, pf, pm, must, lookup_bytes(n),
                        float(kv.bytes(n)) if n is not None and kv.layers else 0.0, self.io_bytes(self.pref_env),
                        _at(m.graph.read + m.graph.written, self.pref_env),
                        how=f"the graph at {_fmt_env(self.pref_env, seq, pasts)}")
        decode = None
        if n is not None and decodes:
            df, dm = self.phase_costs("decode")
            how = (f"read from the graph at {_fmt_env(self.dec_env, seq, pasts)}"  # type: ignore[arg-type]
                   if self.cached else "as if cached: one query row against n keys (the graph has no KV cache)")
            io_env = self.dec_env if self.cached else self.env(1, 0)
            decode = Phase("decode", n, 1, df, dm, must, lookup_bytes(1),
                           float(kv.bytes(n)) if kv.layers else 0.0, self.io_bytes(io_env),  # type: ignore[arg-type]
                           how=how)
        return Phases(seq, n, prefill, decode, self.cached, weights_held, weights_read,
                      [(k, r, b) for k, (r, b) in sorted(lookups.items())], sorted(set(self.unread)), notes,
                      m.graph.total_bound, m.traffic_bound, weights_maybe)


def _decodes(layers: list[AttentionLayer], kv: KVCache) -> bool:
    """Generation applies: a KV cache, or a self-attention layer no query of which sees later keys."""
    if kv.read_directly:
        return True
    return any(la.self_attention and la.mask.family != "bidirectional" and not la.mask.sees_future for la in layers)


def _context_symbols(ctx: AnalysisContext, seq: str | None, pasts: set[str], batch: set[str]) -> set[str]:
    """Length dims of mask inputs that are neither seq nor past: they span the whole context
    (a TorchScript KV export's ``attention_mask [1, total]``)."""
    out: set[str] = set()
    for name in ctx.graph.inputs:
        t = ctx.shapes.type(name)
        if "mask" not in name.lower() or t is None or not t.shape:
            continue
        out |= D.free_symbols(t.shape[-1]) - pasts - batch - ({seq} if seq else set())
    return out


def _fmt_env(e: dict[str, int], seq: str | None, pasts: set[str]) -> str:
    keys = [k for k in ([seq] if seq else []) + sorted(pasts) if k in e]
    return ", ".join(f"{k}={e[k]:,}" for k in keys) or "its binding"


def _hint_mask(family: str, params: dict[str, Any]) -> MaskInfo | None:
    """A fused op's mask read from its attributes by the cost model (no attention layer)."""
    from model_analyze.tokenflow.deps import CAUSAL, window

    if family == "causal":
        return MaskInfo("causal", CAUSAL)
    if family == "sliding_window" and params.get("window"):
        return MaskInfo("sliding_window", window(int(params["window"])), dict(params))
    return None


def exact(x: float | Fraction | None) -> int | float | None:
    """Integral floats as ints (byte and FLOP counts print exactly)."""
    if x is None:
        return None
    return int(x) if float(x).is_integer() else float(x)
