"""Block-sparse attention assembled from pieces (HF BigBird's ``block_sparse``
in eval), read as *one* layer with its static layout.

BigBird computes one attention as five softmaxes: the first and last query
blocks against every key (global rows), the second and second-to-last against a
concatenation of gathered key blocks, and the middle blocks against a shifted
band plus the global and random blocks; the five results are concatenated along
the query blocks. Each softmax alone looks like a small cross-attention (2
queries, 32 keys) or an attention whose mask is "not understood"; together they
are one self-attention whose layout is fixed by the export (random blocks are
constant in eval).

Pieces are grouped when their Q and K come from the same tensors through data
movement only (slices, gathers, reshapes, concatenations) and their outputs are
concatenated into one tensor. The layout is then *read from the graph*: the
token-flow engine runs once with the keys' projection as a source of its own,
and the key positions each query position of the merged output depends on are
the layout (exact, because every op on the way is movement with constant
indices, a product or a softmax). The pieces' nodes are left to the engine's
plain rules (no mask override): that is what makes the reach exact.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import dims as D
from ..tokenflow.deps import IDENTITY, BlockSparse, Dep
from .model import AttentionLayer, MaskInfo

if TYPE_CHECKING:
    from ..context import AnalysisContext
    from ..graph import ModelGraph

MOVEMENT = frozenset({"Gather", "GatherElements", "GatherND", "Slice", "Reshape", "Transpose", "Concat",
                      "Unsqueeze", "Squeeze", "Flatten", "Identity", "Cast", "Expand", "Split", "Tile"})
"""Ops that move elements without computing new values from several positions."""
MERGE_DEPTH = 8
KEY_SOURCE = "__block_sparse_keys"


def roots(g: ModelGraph, tensor: str, limit: int = 64) -> frozenset[str]:
    """Tensors before every movement op behind ``tensor`` (the projections)."""
    out: set[str] = set()
    stack, seen = [tensor], set[str]()
    while stack and len(seen) < limit:
        t = stack.pop()
        if t in seen or not t:
            continue
        seen.add(t)
        node = g.producer(t)
        if node is None or node.op_type not in MOVEMENT or node.domain:
            out.add(t)
            continue
        data = node.inputs[:1] if node.op_type not in ("Concat",) else node.inputs
        stack.extend(x for x in data if x)
    return frozenset(out)


def _merge_point(g: ModelGraph, starts: list[str]) -> str | None:
    """The first tensor (graph order) every piece's output flows into within a few ops."""
    reach: list[dict[str, int]] = []
    for t in starts:
        seen: dict[str, int] = {}
        frontier = [(t, 0)]
        while frontier:
            x, d = frontier.pop()
            if d > MERGE_DEPTH:
                continue
            for c in g.consumers(x):
                if c.id not in seen:
                    seen[c.id] = c.index
                    frontier.extend((o, d + 1) for o in c.outputs if o)
        reach.append(seen)
    common = set(reach[0]).intersection(*reach[1:])
    if not common:
        return None
    first = min(common, key=lambda nid: reach[0][nid])
    node = g.node_by_id[first]
    return node.outputs[0] if node.outputs else None


def group_block_sparse(ctx: AnalysisContext, layers: list[AttentionLayer], problems: list[str]) -> list[AttentionLayer]:
    """``layers`` with the pieces of each block-sparse attention merged into one."""
    g = ctx.graph
    groups: dict[tuple[frozenset[str], frozenset[str]], list[AttentionLayer]] = defaultdict(list)
    for la in layers:
        if la.kind == "unfused" and la.q_tensor and la.k_tensor and la.av_node:
            groups[(roots(g, la.q_tensor), roots(g, la.k_tensor))].append(la)
    candidates = []
    for (q_roots, k_roots), parts in groups.items():
        if len(parts) < 2 or len(q_roots) != 1:
            continue
        outs = [g.node_by_id[p.av_node].outputs[0] for p in parts if p.av_node in g.node_by_id]
        if len(outs) != len(parts):  # pieces inside a subgraph: not read
            continue
        merged = _merge_point(g, outs)
        if merged is not None:
            v_roots = frozenset().union(*(roots(g, p.v_tensor) for p in parts if p.v_tensor))
            candidates.append((parts, k_roots | v_roots, merged))
    if not candidates:
        return layers
    try:
        rows = _key_rows(ctx, [(keys, out) for _, keys, out in candidates])
    except Exception as exc:  # never sink the detection: keep the pieces as they were
        problems.append(f"block-sparse layout: {type(exc).__name__}: {exc}")
        return layers
    drop: set[int] = set()
    merged_layers: list[AttentionLayer] = []
    for k, (parts, _, _merged_at) in enumerate(candidates):
        found = rows.get(k)
        if found is None:
            continue
        layer = _merged(ctx, parts, *found)
        if layer is None:
            continue
        drop.update(id(p) for p in parts)
        merged_layers.append(layer)
    return [la for la in layers if id(la) not in drop] + merged_layers


def _key_rows(ctx: AnalysisContext, items: list[tuple[frozenset[str], str]]
              ) -> dict[int, tuple[str, int, np.ndarray]]:
    """For each (key roots, merged output): the output tensor and its query axis,
    and the [n, n] matrix "query i depends on key j" from one engine run in which
    every key/value projection is a source of its own (nothing else is)."""
    from ..tokenflow.engine import FlowCtx, run_flow
    from ..tokenflow.state import FlowState

    g = ctx.graph
    overrides: dict[str, Any] = {}
    seq_len: dict[int, int] = {}
    for k, (keys, _) in enumerate(items):
        for t in keys:
            node = g.producer(t)
            shape = ctx.shapes.shape(t)
            if node is None or shape is None:
                continue
            lengths = [D.as_int(d) for d in shape]
            # The token axis of a projection [B, T, C]: the longest concrete non-feature axis.
            axis = max(range(len(shape) - 1), key=lambda a: lengths[a] or 0) if len(shape) >= 2 else 0
            n = lengths[axis]
            if not n:
                continue
            seq_len[k] = n

            def seed(fctx: FlowCtx, axis: int = axis, rank: int = len(shape), src: int = k) -> list[FlowState | None]:
                axes: list[dict[Any, Dep]] = [{} for _ in range(rank)]
                axes[axis] = {(f"{KEY_SOURCE}{src}", 0): IDENTITY}
                return [FlowState(tuple(axes))]

            overrides[node.id] = seed
    result = run_flow(g, ctx.shapes, ctx.registry, ctx.model.opsets, overrides, ctx.evaluate)
    out: dict[int, tuple[str, int, np.ndarray]] = {}
    for k, (_, merged) in enumerate(items):
        n = seq_len.get(k)
        if n is None:
            continue
        src = (f"{KEY_SOURCE}{k}", 0)
        for tensor in _forward(g, merged):
            st = result.states.get(tensor)
            shape = ctx.shapes.shape(tensor)
            if st is None or st.axes is None or shape is None:
                continue
            found = next((a for a, d in enumerate(shape) if D.as_int(d) == n and src in st.axes[a]), None)
            if found is None or any(src in ax for a, ax in enumerate(st.axes) if a != found):
                continue
            dep = st.axes[found][src]
            if src in st.fixed:
                from ..tokenflow.deps import union

                dep = union(dep, st.fixed[src])
            mat = np.zeros((n, n), bool)
            for i in range(n):
                for lo, hi in dep.at(i, n):
                    mat[i, lo:hi + 1] = True
            out[k] = (tensor, found, mat)
            break
    return out


def _forward(g: ModelGraph, tensor: str, depth: int = 4) -> list[str]:
    """``tensor`` and the tensors of its single-consumer chain (view, mask multiply, transpose)."""
    chain = [tensor]
    t = tensor
    for _ in range(depth):
        users = g.consumers(t)
        if len(users) != 1 or not users[0].outputs:
            break
        t = users[0].outputs[0]
        chain.append(t)
    return chain


def _merged(ctx: AnalysisContext, parts: list[AttentionLayer], tensor: str, axis: int,
            mat: np.ndarray) -> AttentionLayer | None:
    """One layer for the pieces, its mask the layout read off ``mat``."""
    from .maskfit import fit_block_sparse, fit_lengths

    n = mat.shape[0]
    if not mat.any(axis=1).all():
        return None
    hints = sorted({q for p in parts if (q := D.as_int(p.q_len)) and 1 < q < n})
    fit = fit_block_sparse(mat, hints) or fit_lengths({n: mat}, hints)
    first = min(parts, key=lambda p: ctx.graph.node_by_id[p.qk_node].index if p.qk_node else 0)
    layer = AttentionLayer(index=0, name=first.name, kind="unfused", nodes=tuple(x for p in parts for x in p.nodes),
                           mask=MaskInfo(fit.family, fit.keys, dict(fit.params), source="evaluated",
                                         evaluated_at=(n,), note=fit.note),
                           qk_node=first.qk_node, stack=first.stack)
    layer.output = tensor
    layer.q_len = layer.k_len = n
    layer.self_attention = True
    for name in ("heads", "kv_heads", "head_dim", "v_head_dim", "model_dim", "batch", "scale", "scale_note",
                 "softcap", "rope", "q_tensor", "k_tensor", "v_tensor"):
        setattr(layer, name, getattr(first, name))
    drivers = tuple(sorted({d for p in parts for d in p.mask.input_driven}))
    if drivers:
        layer.mask.input_driven = drivers
        layer.mask.source = "input-driven"
    if isinstance(fit.keys, BlockSparse):
        layer.mask.params.update(_counts(fit.keys))
        layer.mask.note = (f"{len(parts)} softmaxes over gathered key blocks, one attention; layout read from the "
                           f"graph at its static length n={n}")
    layer.mask.sees_future = bool(np.triu(mat, 1).any())
    layer.mask.future_fraction = float(np.triu(mat, 1).sum()) / max(1, n * (n - 1) // 2)
    layer.notes.append(f"assembled from {len(parts)} softmaxes (block-sparse pieces)")
    return layer


def _counts(keys: BlockSparse) -> dict[str, Any]:
    """Global rows/columns, the band around the diagonal and the other (random) blocks."""
    nb = len(keys.layout)
    rows = [set(r) for r in keys.layout]
    global_rows = [q for q, r in enumerate(rows) if len(r) == nb]
    inner = [q for q in range(nb) if q not in global_rows]
    global_cols = [k for k in range(nb) if all(k in rows[q] for q in range(nb))]
    band = 0
    random = 0
    for q in inner:
        lo = hi = q
        while lo - 1 >= 0 and lo - 1 in rows[q] and lo - 1 not in global_cols:
            lo -= 1
        while hi + 1 < nb and hi + 1 in rows[q] and hi + 1 not in global_cols:
            hi += 1
        run = set(range(lo, hi + 1)) if q in rows[q] else set()
        band = max(band, len(run))
        random = max(random, len(rows[q] - run - set(global_cols)))
    return {"global_rows": len(global_rows), "global_blocks": len(global_cols), "band_blocks": band,
            "random_blocks": random}
