"""Flow rules of the spectral ops: STFT slides a window along the signal like a Conv;
DFT mixes its transformed axis whole.

An STFT with frame length ``L`` and step ``s`` makes frame ``t`` of samples
``[s·t, s·t + L - 1]`` — the receptive field of a Conv with kernel ``L``, stride ``s``
and no padding — so an STFT front-end and its Conv twin (onnx-asr's ``nemo80`` and
``nemo80_conv``) report the same RF and stride. Every frequency bin of a frame mixes the
whole frame: the bin axis carries no position of its own.
"""

from __future__ import annotations

from typing import Any

from ... import dims as D
from ..deps import Dep, affine
from ..engine import FlowCtx
from ..state import FlowState, collapse, merge, through
from .common import FLOW, Out


def _scalar(ctx: FlowCtx, i: int) -> int | None:
    v = ctx.ints(i) if ctx.has(i) else None
    return v[0] if v is not None and len(v) == 1 else None


@FLOW.rule("STFT")
def stft(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    length = _scalar(ctx, 3)
    if length is None and ctx.has(2):
        w = ctx.shape(2)
        length = D.as_int(w[0]) if w is not None and len(w) == 1 else None
    step = _scalar(ctx, 1)
    if st.axes is None or shape is None or len(st.axes) not in (2, 3) or length is None or not step:
        return ctx.conservative()
    ctx.mark(st.axes[1], "spatial")
    frames: dict[Any, Dep] = through(affine(step, 0, length - 1), st.axes[1])
    fixed = merge(st.fixed, *(collapse(st.axes[k], shape[k]) for k in range(2, len(st.axes))),
                  *(ctx.state(i).collapsed(ctx.shape(i)) for i in range(1, ctx.n_inputs) if ctx.has(i)))
    return [FlowState((dict(st.axes[0]), frames, {}, {}), fixed)]


@FLOW.rule("DFT")
def dft(ctx: FlowCtx) -> Out:
    """Every output position along the transformed axis depends on all inputs along it (and
    on both components of a complex value); the other axes keep their positions."""
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None or len(st.axes) < 2:
        return ctx.conservative()
    rank = len(st.axes)
    if ctx.opset >= 20:
        a = _scalar(ctx, 2) if ctx.has(2) else -2
    else:
        a = ctx.attr("axis", 1)
    if not isinstance(a, int) or not -rank <= a < rank - 1:
        return ctx.conservative()
    axis = a + rank if a < 0 else a
    fixed = merge(st.fixed, collapse(st.axes[axis], shape[axis]), collapse(st.axes[-1], shape[-1]),
                  *(ctx.state(i).collapsed(ctx.shape(i)) for i in range(1, ctx.n_inputs) if ctx.has(i)))
    axes = [{} if k in (axis, rank - 1) else dict(st.axes[k]) for k in range(rank)]
    return [FlowState(tuple(axes), fixed)]
