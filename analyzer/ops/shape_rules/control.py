"""Shape rules of control flow: If/Loop/Scan bodies are propagated as subgraphs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import dims as D
from ...graph import TensorType

if TYPE_CHECKING:
    from ...shapes import ShapeCtx
from .common import SHAPE, Out, T, norm_axis


# -- control flow ------------------------------------------------------------------
def _merge_branch(a: TensorType | None, b: TensorType | None) -> TensorType | None:
    if a is None or b is None:
        return a or b
    if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return TensorType(a.dtype or b.dtype, None)
    dims = tuple(x if (x == y or D.equal(x, y)) else None for x, y in zip(a.shape, b.shape, strict=True))
    return TensorType(a.dtype or b.dtype, dims)


def if_condition(ctx: ShapeCtx) -> bool | None:
    """The ``If`` condition when it is known without running the model (a constant, or a
    value computed from shapes: silero-vad's ``Equal(Gather(Shape(x), -1), 1)``)."""
    v = ctx.value(0)
    if v is None or len(v) != 1 or not D.is_int(v[0]):
        return None
    return bool(v[0])


@SHAPE.rule("If")
def if_op(ctx: ShapeCtx) -> Out:
    """Both branches are propagated (each keeps its own shapes for the report); the outputs
    are the branch that runs when the condition is known, else what both branches agree on."""
    branches = [ctx.node.subgraphs.get(k, [None])[0] for k in ("then_branch", "else_branch")]
    results = [ctx.infer_subgraph(b, []) if b is not None else [] for b in branches]
    n = len(ctx.node.outputs)
    cond = if_condition(ctx)
    if cond is not None:
        taken = 0 if cond else 1
        ctx.table.branch_taken[ctx.node.id] = taken
        return [results[taken][k] if k < len(results[taken]) else None for k in range(n)]
    out: Out = []
    for k in range(n):
        a = results[0][k] if k < len(results[0]) else None
        b = results[1][k] if k < len(results[1]) else None
        out.append(_merge_branch(a, b))
    return out


@SHAPE.rule("Loop")
def loop(ctx: ShapeCtx) -> Out:
    body = ctx.node.subgraphs.get("body", [None])[0]
    if body is None:
        return []
    n_carried = max(ctx.n_inputs - 2, 0)
    ins = [TensorType(T.INT64, ()), TensorType(T.BOOL, ())] + [ctx.type(2 + k) for k in range(n_carried)]
    res = ctx.infer_subgraph(body, ins)
    trip = ctx.value(0)
    trips = trip[0] if trip and ctx.has(0) else None
    out: Out = []
    for k in range(len(ctx.node.outputs)):
        if k < n_carried:
            out.append(_merge_branch(ctx.type(2 + k), res[1 + k] if 1 + k < len(res) else None))
        else:
            t = res[1 + k] if 1 + k < len(res) else None
            out.append(None if t is None or t.shape is None else TensorType(t.dtype, (trips, *t.shape)))
    return out


@SHAPE.rule("Scan")
def scan(ctx: ShapeCtx) -> Out:
    body = ctx.node.subgraphs.get("body", [None])[0]
    if body is None:
        return []
    # Scan-8 has a leading sequence_lens input and a batch axis 0 on every input.
    legacy = ctx.opset < 9
    offset = 1 if legacy else 0
    n_scan = ctx.attr("num_scan_inputs", 0)
    n_state = ctx.n_inputs - offset - n_scan
    batch = None

    def strip(t: TensorType | None, axis: int) -> TensorType | None:
        if t is None or t.shape is None:
            return None
        return TensorType(t.dtype, tuple(d for j, d in enumerate(t.shape) if j != axis))

    state = [ctx.type(offset + k) for k in range(n_state)]
    if legacy:
        batch = next((t.shape[0] for t in state if t and t.shape), None)
        state = [strip(t, 0) for t in state]
    scan_in: list[TensorType | None] = []
    axes = ctx.attr("scan_input_axes") or [0] * n_scan
    seq_len = None
    for k in range(n_scan):
        t = ctx.type(offset + n_state + k)
        if legacy:
            t = strip(t, 0)
        if t is None or t.shape is None:
            scan_in.append(None)
            continue
        ax = norm_axis(axes[k], len(t.shape))
        seq_len = t.shape[ax]
        scan_in.append(strip(t, ax))
    res = ctx.infer_subgraph(body, state + scan_in)
    out: Out = []
    for t in res[:n_state]:
        out.append(TensorType(t.dtype, (batch, *t.shape)) if legacy and t and t.shape is not None else t)
    out_axes = ctx.attr("scan_output_axes") or [0] * (len(res) - n_state)
    for j, t in enumerate(res[n_state:]):
        if t is None or t.shape is None:
            out.append(None)
            continue
        dims = list(t.shape)
        dims.insert(0 if legacy else norm_axis(out_axes[j], len(dims) + 1), seq_len)
        if legacy:
            dims.insert(0, batch)
        out.append(TensorType(t.dtype, tuple(dims)))
    return out
