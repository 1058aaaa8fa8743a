"""Read an attention mask from the graph: mask terms → evaluated matrices → family.

A layer's mask is the conjunction of its *terms* — an additive bias added to
the scores, a ``Where`` condition, a fused op's ``attn_mask`` — optionally
intersected with a *structural* pattern a fused op states in attributes
(``is_causal``, a window). Each distinct set of terms is read once
(:class:`MaskReader` caches by terms, axes and structure: Mistral-7B's 32 layers
share one mask tensor and one evaluation).

Lengths evaluated: two small lengths, then just above each candidate size —
the small integer constants of the mask's backward slice (``c + 3``, and
``4c + 3`` for small ``c``, so block layouts show several blocks). Evaluating
at small ``n`` alone cannot see a window wider than ``n``: Mistral's 4096-token
window looks causal at n = 24 and shows itself at n = 4099. Lengths whose
matrices would be too large are skipped and said so in the note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import dims as D
from ..onnxproto import TensorProto
from ..tokenflow.deps import ALL, Chunked
from . import maskeval, maskfit, scorebias
from .graphwalk import fold_scalar
from .model import MaskInfo

if TYPE_CHECKING:
    import numpy as np

    from ..context import AnalysisContext
    from ..graph import ModelGraph

SMALL_LENGTHS = (16, 24)
PROBES = (5, 7, 6, 9)
"""Small stand-ins for a constant too large to evaluate (two distinct ones are used)."""
MAX_DIRECT = 1024
"""Largest candidate size evaluated directly (n×n tensors at c + 3); larger sizes
are read by substituting small probes for the constant, which keeps the mask
evaluation of a 4096-window model in a few MB instead of ~150 MB."""
MULTI_BLOCK_MAX = 256
HIDDEN_BELOW = -1e4
"""An additive mask value at or below this hides the key (HF uses finfo.min,
BERT -10000, ORT ``mask_filter_value`` -10000); smaller biases such as ALiBi
distances are position biases, not masks."""
MAX_STACK_ELEMENTS = 1 << 26

_ACTIVATION_OPS = {"MatMul", "Gemm", "Conv", "Softmax", "LayerNormalization", "Einsum"}


@dataclass(frozen=True)
class MaskTerm:
    """One mask input: ``additive`` bias, ``keep`` (True = visible) or ``drop``
    (True = hidden) boolean; ``fill`` is a non-constant Where fill tensor."""

    tensor: str
    kind: str
    fill: str = ""
    rank: int = 0
    """Rank of the tensor the term is applied to when it differs from the QK
    scores' (Bloom adds the causal mask after viewing ``[B·H, q, k]`` scores as
    ``[B, H, q, k]``); the query/key axes are then the same counted from the
    right. 0: the scores' rank."""


@dataclass
class MaskRequest:
    graph: ModelGraph
    terms: tuple[MaskTerm, ...]
    rank: int
    """Rank of the scores tensor the terms broadcast against."""
    q_axis: int
    k_axis: int
    seq_syms: frozenset[str]
    static_n: int | None = None
    structural: Callable[[int], np.ndarray] | None = None
    """An attribute-defined [n, n] pattern intersected with the terms (fused ops)."""
    structural_key: str = ""
    cross: tuple[int, int] | None = None
    """Query and key lengths of a cross-attention (or cached) layer with fixed
    shapes: evaluated once at them, fitted only when every key is visible."""
    notes: list[str] = field(default_factory=list)


class MaskReader:
    """Evaluates and fits masks, once per distinct request."""

    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self._cache: dict[tuple[Any, ...], MaskInfo] = {}
        self._slices: dict[tuple[str, ...], maskeval.MaskSlice] = {}
        self.evaluations = 0
        self._symbols: set[str] | None = None

    def read(self, req: MaskRequest) -> MaskInfo:
        peeled = (_peel(self.ctx, req.graph, t) for t in req.terms)
        terms = tuple(t for t in peeled if t is not None)
        key = (id(req.graph), terms, req.rank, req.q_axis, req.k_axis, req.seq_syms, req.static_n,
               req.structural_key, req.cross)
        if key not in self._cache:
            try:
                terms, biases = self._without_learned_biases(req.graph, terms)
                if biases and not terms and req.structural is None:
                    info = MaskInfo("bidirectional", ALL, source="evaluated", sees_future=True,
                                    future_fraction=1.0)
                else:
                    info = self._read(req, terms)
                if biases:
                    info.note = "; ".join(x for x in (info.note, _bias_note(biases)) if x)
                self._cache[key] = info
            except maskeval.SliceError as exc:
                self._cache[key] = unknown_mask(str(exc))
        return self._cache[key]

    def _without_learned_biases(self, graph: ModelGraph, terms: tuple[MaskTerm, ...]
                                ) -> tuple[tuple[MaskTerm, ...], list[str]]:
        """Split additive terms into addends and set aside those that are finite
        biases computed from activations (see ``scorebias``)."""
        kept: list[MaskTerm] = []
        biases: list[str] = []
        for term in terms:
            parts = scorebias.split_sum(graph, term.tensor) if term.kind == "additive" and not term.fill \
                else [term.tensor]
            if len(parts) == 1 and not scorebias.depends_on_activations(self._slice(graph, (term.tensor,))):
                kept.append(term)
                continue
            for t in parts:
                sub = MaskTerm(t, term.kind, term.fill, term.rank)
                sl = self._slice(graph, (t,))
                if term.kind == "additive" and not term.fill and scorebias.depends_on_activations(sl) \
                        and scorebias.is_finite_bias(sl):
                    biases.append(t)
                else:
                    kept.append(sub)
        return tuple(kept), biases

    # -- internals ----------------------------------------------------------------
    def _slice(self, graph: ModelGraph, outputs: tuple[str, ...]) -> maskeval.MaskSlice:
        key = (str(id(graph)), *outputs)
        if key not in self._slices:
            self._slices[key] = maskeval.extract(graph, outputs)
        return self._slices[key]

    def _read(self, req: MaskRequest, terms: tuple[MaskTerm, ...]) -> MaskInfo:
        if not terms:
            raise maskeval.SliceError("no mask term left to evaluate")
        outputs = tuple(dict.fromkeys([t.tensor for t in terms] + [t.fill for t in terms if t.fill]))
        sl = self._slice(req.graph, outputs)
        if sl.problem:
            return unknown_mask(sl.problem)
        if any(n.op_type in _ACTIVATION_OPS and not n.domain for n in sl.nodes):
            return unknown_mask("the mask term depends on activations (a learned score bias?); "
                                "its visibility cannot be read without weights")
        if req.cross is not None:
            return self._read_cross(req, sl, terms)
        import numpy as np  # loaded already: the slice was evaluated with it

        lengths, skipped = self._lengths(req, sl)
        mats: dict[int, np.ndarray] = {}
        stacks: dict[int, np.ndarray] = {}
        failures: list[str] = []
        for n in lengths:
            try:
                stack = self._stack_at(req, sl, terms, n)
            except maskeval.SliceError as exc:
                if n in SMALL_LENGTHS or req.static_n is not None:
                    return unknown_mask(str(exc))
                failures.append(f"n={n}: {exc}")
                continue
            stacks[n] = stack
            mats[n] = np.asarray(stack.any(axis=0))
        if not mats:
            return unknown_mask("; ".join(failures) or "nothing evaluated")
        fit = maskfit.fit_lengths(mats, sorted(c for c in sl.int_constants if c >= 2))
        big = [c for c in sorted(sl.int_constants) if MAX_DIRECT < c < (1 << 31)]
        probed = None
        if fit.family in ("causal", "bidirectional") and big:
            probed = self._probe_large(req, sl, terms, big, mats)
            if probed is not None:
                fit = probed
        info = MaskInfo(fit.family, fit.keys, dict(fit.params),
                        source="input-driven" if sl.value_inputs else "evaluated",
                        input_driven=tuple(sl.value_inputs), evaluated_at=tuple(sorted(mats)))
        notes = [fit.note] if fit.note else []
        if probed is None and (skipped or big):
            notes.append("sizes above the evaluation limit not checked: "
                         + ", ".join(str(c) for c in sorted(set(skipped) | set(big))[:4]))
        notes += failures[:2]
        if sl.value_inputs:
            notes.append("built from graph input(s) " + ", ".join(sl.value_inputs)
                         + "; analyzed with them all ones (no padding)")
        info.note = "; ".join(notes)
        _future_facts(info, stacks)
        if info.family == "pattern" and info.sees_future:
            past = maskfit.fit_lengths({n: np.tril(m) for n, m in mats.items()})
            if past.family != "pattern":
                info.causal_part = past.family
        self.evaluations += len(mats)
        return info

    def _probe_large(self, req: MaskRequest, sl: maskeval.MaskSlice, terms: tuple[MaskTerm, ...],
                     big: list[int], mats: dict[int, np.ndarray]) -> maskfit.Fit | None:
        """A window/chunk size too large to evaluate directly: replace the slice
        constant ``c`` by two small probes ``p``; if the mask becomes a window
        (or chunk) of ``p + δ`` for both, the model's is ``c + δ``. The result
        must still reproduce every direct evaluation."""
        import numpy as np

        probes = [p for p in PROBES if p not in sl.int_constants][:2]
        for c in big:
            fits = []
            for p in probes:
                psl = maskeval.with_probe(sl, c, p)
                try:
                    pm = {n: np.asarray(self._stack_at(req, psl, terms, n).any(axis=0)) for n in SMALL_LENGTHS}
                except maskeval.SliceError:
                    break
                fits.append((p, maskfit.fit_lengths(pm)))
            if len(fits) < 2:
                continue
            key = {"sliding_window": "window", "chunked": "chunk"}.get(fits[0][1].family)
            if key is None or any(f.family != fits[0][1].family or f.params.get("right") for _, f in fits):
                continue
            deltas = {int(f.params[key]) - p for p, f in fits}
            if len(deltas) != 1:
                continue
            size = c + deltas.pop()
            if key == "window":
                cand = maskfit.band_family(size - 1, 0)
            else:
                causal = bool(fits[0][1].params.get("causal"))
                cand = maskfit.Fit("chunked", Chunked(size, causal), {"chunk": size, "causal": causal})
            if all(maskfit.matches(cand.keys, m) for m in mats.values()):
                cand.note = (f"{key} {size} read by substituting the slice constant {c} with "
                             f"{' and '.join(str(p) for p, _ in fits)} (too large to evaluate directly)")
                cand.params["probed"] = True
                self.evaluations += 2 * len(SMALL_LENGTHS)
                return cand
        return None

    def _read_cross(self, req: MaskRequest, sl: maskeval.MaskSlice, terms: tuple[MaskTerm, ...]) -> MaskInfo:
        """Query and key positions index different sequences: no self-attention
        family applies, but a mask that hides nothing is still bidirectional."""
        assert req.cross is not None, "called for cross attention only"
        nq, nk = req.cross
        stack = self._stack_at(req, sl, terms, nq, nk)
        self.evaluations += 1
        source = "input-driven" if sl.value_inputs else "evaluated"
        if stack.all():
            return MaskInfo("bidirectional", ALL, source=source, input_driven=tuple(sl.value_inputs),
                            evaluated_at=(nk,), sees_future=True, future_fraction=1.0,
                            note=f"cross-attention ({nq} queries, {nk} keys): every key visible")
        info = unknown_mask(f"cross-attention mask ({nq} queries, {nk} keys) hides some keys; "
                            "not fitted to a self-attention family")
        info.source, info.input_driven = source, tuple(sl.value_inputs)
        return info

    def _lengths(self, req: MaskRequest, sl: maskeval.MaskSlice) -> tuple[list[int], list[int]]:
        if req.static_n is not None:
            return [req.static_n], []
        lengths = set(SMALL_LENGTHS)
        skipped = []
        for c in sl.int_constants:
            if c < 2 or c > (1 << 40):
                continue
            if c + 3 > MAX_DIRECT:
                if c < (1 << 31):
                    skipped.append(c)
                continue
            lengths.add(c + 3)
            if c <= MULTI_BLOCK_MAX:
                lengths.add(4 * c + 3)
        bound = [self.ctx.dims.bound.get(s) for s in req.seq_syms]
        lengths.update(b for b in bound if isinstance(b, int) and 2 <= b <= MAX_DIRECT)
        return sorted(lengths), skipped

    def _env(self, req: MaskRequest, n: int, sl: maskeval.MaskSlice | None = None) -> dict[str, int]:
        env = dict(self.ctx.bindings)
        if self._symbols is None:
            self._symbols = self.ctx.shapes.symbols()
        lengths = _feed_symbols(self.ctx, sl) if sl is not None else set()
        for name in list(env) + [s for s in self._symbols if s not in env]:
            low = name.lower()
            if name in req.seq_syms:
                env[name] = n
            elif "past" in low:
                env[name] = 0
            elif _batch_like(name):
                env[name] = 1
            elif name in lengths:
                # A length the mask's inputs carry under their own name (a KV-cache
                # export's attention_mask [B, total] with total = past + seq): with
                # no past it is the evaluated length, whatever it is bound to.
                env[name] = n
        for s in req.seq_syms:
            env[s] = n
        return env

    def _stack_at(self, req: MaskRequest, sl: maskeval.MaskSlice, terms: tuple[MaskTerm, ...],
                  n: int, nk: int | None = None) -> np.ndarray:
        """Visibility at length ``n`` as ``[slices, n, n]`` (query, key); with
        ``nk``, ``[slices, n, nk]`` at the fixed shapes of a cross-attention."""
        import numpy as np

        nk = n if nk is None else nk
        values = maskeval.evaluate(self.ctx, sl, self._env(req, n, sl), length=nk)
        vis: np.ndarray | None = None
        for term in terms:
            v = _visible(values[term.tensor], term.kind)
            if term.fill:
                v = v | _visible(values[term.fill], "additive")
            rank = term.rank or req.rank
            shift = rank - req.rank
            v = _to_query_key(v, rank, req.q_axis + shift, req.k_axis + shift, n, nk)
            vis = v if vis is None else _and(vis, v)
        assert vis is not None
        if req.structural is not None:
            vis = _and(vis, req.structural(n))
        lead = vis.shape[:-2]
        m = int(np.prod(lead)) if lead else 1
        if m * n * nk > MAX_STACK_ELEMENTS:
            raise maskeval.SliceError(f"mask of {m} slices × {n}×{nk} too large")
        return np.ascontiguousarray(vis).reshape(m, n, nk)


def _bias_note(biases: list[str]) -> str:
    return (f"{len(biases)} score term(s) computed from activations (learned position scores such as "
            f"DeBERTa's c2p/p2c) are finite biases: treated as hiding no key")


def _batch_like(name: str) -> bool:
    return "batch" in name.lower() or name in ("b", "B", "N", "bs") or name.endswith("_d0")


def _feed_symbols(ctx: AnalysisContext, sl: maskeval.MaskSlice) -> set[str]:
    """Dim symbols of the sequence axes (last axis) of the graph inputs a mask is built from."""
    out: set[str] = set()
    for t in sl.value_inputs:
        shape = ctx.shapes.shape(t)
        if shape:
            out |= D.free_symbols(shape[-1])
    return out


def unknown_mask(reason: str) -> MaskInfo:
    """A mask we could not read: every key assumed visible (the conservative
    answer for reach), family ``unknown``, and the reason — never "full"."""
    return MaskInfo("unknown", ALL, source="unknown", note=reason)


def _peel(ctx: AnalysisContext, graph: ModelGraph, term: MaskTerm) -> MaskTerm | None:
    """Strip wrappers that do not change which keys are visible: broadcasting
    ``Expand``, ``Identity``, float casts, and ``Where(c, 0, -inf)`` (evaluate
    the boolean ``c`` instead of a float matrix: 4× less work at n = 4099).
    None when the term hides nothing (``Where(c, 0, 0)``)."""
    floats = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
    for _ in range(16):
        node = graph.producer(term.tensor)
        if node is None or node.domain:
            return term
        op = node.op_type
        if op in ("Identity", "Expand") or (op == "Cast" and term.kind == "additive"
                                            and ctx.shapes.dtype(node.input(0)) in floats):
            term = MaskTerm(node.input(0), term.kind, term.fill, term.rank)
            continue
        if op == "Where" and term.kind == "additive" and not term.fill:
            a, b = fold_scalar(ctx, graph, node.input(1)), fold_scalar(ctx, graph, node.input(2))
            if a is None or b is None:
                return term
            va, vb = a > HIDDEN_BELOW, b > HIDDEN_BELOW
            if va and vb:
                return None
            if va and not vb:
                term = MaskTerm(node.input(0), "keep", rank=term.rank)
                continue
            if vb and not va:
                term = MaskTerm(node.input(0), "drop", rank=term.rank)
                continue
            return term
        return term
    return term


def _visible(value: np.ndarray, kind: str) -> np.ndarray:
    import numpy as np

    if kind == "additive":
        with np.errstate(invalid="ignore"):
            return np.asarray(value > HIDDEN_BELOW)
    b = value.astype(bool)
    return b if kind == "keep" else ~b


def _to_query_key(v: np.ndarray, rank: int, q_axis: int, k_axis: int, n: int, nk: int) -> np.ndarray:
    """Broadcast a term to the scores' rank and move (query, key) last."""
    import numpy as np

    if v.ndim > rank:
        raise maskeval.SliceError(f"mask term of rank {v.ndim} added to scores of rank {rank}")
    v = v.reshape((1,) * (rank - v.ndim) + v.shape)
    v = np.moveaxis(v, (q_axis, k_axis), (-2, -1))
    if v.shape[-2] not in (1, n) or v.shape[-1] not in (1, nk):
        raise maskeval.SliceError(f"mask of shape {list(v.shape)} does not match {n} queries × {nk} keys")
    return np.broadcast_to(v, v.shape[:-2] + (n, nk))


def _and(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import numpy as np

    rank = max(a.ndim, b.ndim)
    a = a.reshape((1,) * (rank - a.ndim) + a.shape)
    b = b.reshape((1,) * (rank - b.ndim) + b.shape)
    return np.logical_and(a, b)


def _future_facts(info: MaskInfo, stacks: dict[int, np.ndarray]) -> None:
    """Who sees later keys: per slice (head/batch), with a first example."""
    import numpy as np

    if not stacks:
        return
    n0 = max([n for n in stacks if n <= maskfit.CONCRETE_MAX_N] or [min(stacks)])
    for n in sorted(stacks):
        s = stacks[n]
        upper = np.triu(np.ones((n, n), bool), 1)
        future = (s & upper).any(axis=(1, 2))
        if future.any():
            info.sees_future = True
            k = int(np.argmax(future))
            i, j = np.argwhere(s[k] & upper)[0]
            if info.future_example is None:
                info.future_example = (k, int(i), int(j))
            if not future.all():
                info.mixed_causal = True
        if s.shape[0] > 1 and not (s == s[:1]).all():
            info.per_head = True
    s = stacks[n0]
    pairs = n0 * (n0 - 1) // 2
    if pairs:
        upper = np.triu(np.ones((n0, n0), bool), 1)
        info.future_fraction = float((s.any(axis=0) & upper).sum()) / pairs


def seq_symbols(*dims: Any) -> frozenset[str]:
    """Dim symbols of query/key lengths (the ones the evaluation varies)."""
    out: set[str] = set()
    for d in dims:
        out |= D.free_symbols(d)
    return frozenset(s for s in out if "past" not in s.lower())
