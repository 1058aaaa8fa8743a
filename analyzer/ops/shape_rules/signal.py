"""Shape rules of the signal-processing ops (opset 17+): STFT, DFT, the window generators
and MelWeightMatrix — the front-ends of speech models (onnx-asr's nemo/whisper/kaldi
preprocessors). Without them everything after the spectrogram was unknown.

Written from the ONNX operator specs (STFT-17, DFT-17/20, Hann/Hamming/BlackmanWindow-17,
MelWeightMatrix-17) and checked against onnxruntime's execution
(tests/test_audio_frontends.py), including what the spec leaves out: onnxruntime accepts
a real STFT signal of rank 2 ``[batch, length]`` as well as ``[batch, length, 1]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import dims as D
from ...dims import Dim
from ...graph import TensorType
from .common import SHAPE, Out, T, norm_axis

if TYPE_CHECKING:
    from ...shapes import ShapeCtx


def scalar(ctx: ShapeCtx, i: int) -> Dim | None:
    """The (possibly symbolic) value of a scalar or 1-element int input ``i``."""
    if not ctx.has(i):
        return None
    v = ctx.value(i)
    return v[0] if v is not None and len(v) == 1 else None


def onesided_bins(n: Dim | None, onesided: bool) -> Dim | None:
    """Bins of a DFT of length ``n``: ``⌊n/2⌋ + 1`` one-sided (real input), else ``n``."""
    if n is None:
        return None
    return D.add(D.floordiv(n, 2), 1) if onesided else n


def stft_geometry(ctx: ShapeCtx) -> tuple[Dim | None, Dim | None]:
    """(frame_length, frame_step) of an STFT node: ``frame_length`` input, else the window's
    length; ``frame_step`` input (both scalars)."""
    length = scalar(ctx, 3)
    if length is None and ctx.has(2):
        w = ctx.shape(2)
        length = w[0] if w is not None and len(w) == 1 else None
    return length, scalar(ctx, 1)


@SHAPE.rule("STFT")
def stft(ctx: ShapeCtx) -> Out:
    """``[batch, frames, bins, 2]``: ``frames = ⌊(L - frame_length)/frame_step⌋ + 1``, ``bins =
    ⌊frame_length/2⌋ + 1`` one-sided (the default), else ``frame_length``."""
    x = ctx.shape(0)
    if x is None or len(x) not in (2, 3):
        return [TensorType(ctx.dtype(0), None)]
    length, step = stft_geometry(ctx)
    frames = None
    if length is not None and step is not None and x[1] is not None and D.as_int(step) != 0:
        frames = D.add(D.floordiv(D.sub(x[1], length), step), 1)
    bins = onesided_bins(length, bool(ctx.attr("onesided", 1)))
    return [TensorType(ctx.dtype(0), (x[0], frames, bins, 2))]


def dft_axis(ctx: ShapeCtx, rank: int) -> int | None:
    """The transformed axis: attribute ``axis`` (default 1) up to opset 19; input 2
    (default -2) from DFT-20, where negative axes count from the end."""
    a: int | None
    if ctx.opset >= 20:
        a = D.as_int(scalar(ctx, 2)) if ctx.has(2) else -2
    else:
        a = ctx.attr("axis", 1)
    return None if a is None else norm_axis(a, rank)


@SHAPE.rule("DFT")
def dft(ctx: ShapeCtx) -> Out:
    """The input's shape with the transformed axis of length ``dft_length`` (input 1; default
    the axis' own length), ``⌊n/2⌋ + 1`` of it when one-sided, and a last axis of 2 (complex);
    an inverse one-sided DFT returns ``n`` real values (last axis 1)."""
    x = ctx.shape(0)
    if x is None or len(x) < 2:
        return [TensorType(ctx.dtype(0), None)]
    axis = dft_axis(ctx, len(x))
    irfft = bool(ctx.attr("inverse", 0) and ctx.attr("onesided", 0))
    if axis is None:
        return [TensorType(ctx.dtype(0), (None,) * (len(x) - 1) + (1 if irfft else 2,))]
    n = scalar(ctx, 1) if ctx.has(1) else x[axis]
    out: list[Dim | None] = list(x[:-1]) + [2]
    if irfft:
        # irfft: a one-sided spectrum of ⌊n/2⌋ + 1 bins in, n real values out (n = 2·(bins − 1)
        # unless dft_length says), as onnx's reference implementation returns
        out[-1] = 1
        bins = x[axis]
        out[axis] = scalar(ctx, 1) if ctx.has(1) else (None if bins is None else D.mul(D.sub(bins, 1), 2))
    else:
        out[axis] = onesided_bins(n, bool(ctx.attr("onesided", 0)))
    return [TensorType(ctx.dtype(0), tuple(out))]


@SHAPE.rule("HannWindow", "HammingWindow", "BlackmanWindow")
def window(ctx: ShapeCtx) -> Out:
    """``[size]`` of ``output_datatype`` (float by default)."""
    return [TensorType(ctx.attr("output_datatype", T.FLOAT), (scalar(ctx, 0),))]


@SHAPE.rule("MelWeightMatrix")
def mel_weight_matrix(ctx: ShapeCtx) -> Out:
    """``[⌊dft_length/2⌋ + 1, num_mel_bins]`` of ``output_datatype`` (float by default)."""
    return [TensorType(ctx.attr("output_datatype", T.FLOAT),
                       (onesided_bins(scalar(ctx, 1), True), scalar(ctx, 0)))]
