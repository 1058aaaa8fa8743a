"""Cost rules of the spectral ops, STFT and DFT (docs/metrics.md, "Spectral ops").

Convention: a transform of length ``n`` is counted as the *direct* DFT — every output bin
a sum over the ``n`` inputs — not as an FFT's ``n·log n``. Why: exporters write the
same front-end either way (onnx-asr ships each STFT model with a ``_conv`` twin whose
Conv holds the cos/sin basis), and a Conv is counted directly, so the two report the
same MACs; an FFT runtime does less work, which the docs say. A real input times a
complex twiddle is 2 real MACs per (sample, bin); a complex input 4.
"""

from __future__ import annotations

from .model import CostCtx, CostUnknown, OpCost
from .rules import COST


def _components(ctx: CostCtx, rank_without: int) -> int:
    """Real MACs per (sample, bin): 2 for a real signal (``[..., 1]`` or no complex axis),
    4 for a complex one (``[..., 2]``)."""
    s = ctx.need_shape(0)
    if len(s) == rank_without:
        return 2
    last = s[-1]
    if last == 1:
        return 2
    if last == 2:
        return 4
    raise CostUnknown(f"the signal's last axis ({last}) is not 1 (real) or 2 (complex)")


@COST.rule("STFT")
def stft(ctx: CostCtx) -> OpCost:
    """MACs = batch · frames · bins · frame_length · (2 real / 4 complex); FLOPs = 2·MACs plus
    one multiply per windowed sample (batch · frames · frame_length) when a window is given."""
    batch, frames, bins = ctx.out_dim(0, 0), ctx.out_dim(0, 1), ctx.out_dim(0, 2)
    length = ctx.scalar(3)
    if length is None:
        if not ctx.has(2):
            raise CostUnknown("frame_length unknown (no frame_length input, no window)")
        length = ctx.dim(2, 0)
    macs = batch * frames * bins * length * _components(ctx, 2)
    windowed = batch * frames * length if ctx.has(2) else 0
    return OpCost(macs=macs, flops=2 * macs + windowed)


def _dft_axis(ctx: CostCtx, rank: int) -> int:
    """DFT's transformed axis: attribute ``axis`` (default 1) before opset 20, input 2
    (default -2) from DFT-20."""
    a: object
    if ctx.opset >= 20:
        v = ctx.value(2) if ctx.has(2) else (-2,)
        a = v[0] if v is not None and len(v) == 1 else None
    else:
        a = ctx.attr("axis", 1)
    if not isinstance(a, int) or not -rank <= a < rank:
        raise CostUnknown(f"the transformed axis ({a}) is unknown or out of range")
    return a + rank if a < 0 else a


@COST.rule("DFT")
def dft(ctx: CostCtx) -> OpCost:
    """MACs = (complex output values) · n · (2 real / 4 complex): every output value is a sum
    over the ``n`` = ``dft_length`` (default: the axis' length) inputs."""
    out = ctx.need_out_shape(0)
    if not out or out[-1] not in (1, 2):
        raise CostUnknown("the output's last axis is not 1 (real) or 2 (complex)")
    axis = _dft_axis(ctx, len(ctx.need_shape(0)))
    if out[-1] == 1:  # irfft: each of the n real outputs sums the one-sided bins (2 MACs per bin)
        return OpCost(macs=ctx.prod_dims(out[:-1]) * ctx.dim(0, axis) * 2)
    n = ctx.scalar(1)
    if n is None:
        n = ctx.dim(0, axis)
    return OpCost(macs=ctx.prod_dims(out[:-1]) * n * _components(ctx, -1))
