"""Flow rules of conv/pool (affine receptive fields), resize, contractions (MatMul,
Gemm, Einsum mix the contracted axis) and recurrent cells (causal in time)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from ... import dims as D
from ...dims import Dim
from ...ops.registry import MS
from ..deps import ALL, ANTICAUSAL, CAUSAL, Dep, affine, band, constant, lin
from ..engine import FlowCtx
from ..state import Deps, FlowState, SourceAxis, collapse, merge, through
from .common import FLOW, Out, _len, _norm, broadcast, permute


# -- conv and pooling --------------------------------------------------------------------------
def _same_pad_begin(in_dim: Dim | None, k: int, s: int, d: int, upper: bool) -> int:
    eff = d * (k - 1) + 1
    n = D.as_int(in_dim)
    if n is None:
        total = max(eff - s, 0)
    else:
        out = -(-n // s)
        total = max((out - 1) * s + eff - n, 0)
    return total // 2 if upper else (total + 1) // 2


def spatial_maps(ctx: FlowCtx, kernel: list[int], in_shape: tuple[Dim | None, ...]) -> list[Dep]:
    n = len(kernel)
    strides = list(ctx.attr("strides") or [1] * n)
    dil = list(ctx.attr("dilations") or [1] * n)
    pads = list(ctx.attr("pads") or [0] * (2 * n))
    auto = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    maps: list[Dep] = []
    for i in range(n):
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pb = _same_pad_begin(in_shape[2 + i], kernel[i], strides[i], dil[i], auto == "SAME_UPPER")
        elif auto == "VALID":
            pb = 0
        else:
            pb = pads[i]
        maps.append(affine(strides[i], -pb, -pb + dil[i] * (kernel[i] - 1)))
    return maps


def _kernel(ctx: FlowCtx, w_input: int) -> list[int] | None:
    k = ctx.attr("kernel_shape")
    if k:
        return list(k)
    w = ctx.shape(w_input)
    if w is None:
        return None
    ks = [D.as_int(d) for d in w[2:]]
    return None if any(x is None for x in ks) else ks  # type: ignore[return-value]


@FLOW.rule("Conv", "ConvInteger", "QLinearConv")
@FLOW.rule("FusedConv", "QLinearConv", domain=MS)
def conv(ctx: FlowCtx) -> Out:
    x_in, w_in = 0, (3 if ctx.node.op_type == "QLinearConv" else 1)
    st, shape = ctx.state(x_in), ctx.shape(x_in)
    kernel = _kernel(ctx, w_in)
    if st.axes is None or shape is None or kernel is None or len(st.axes) != 2 + len(kernel):
        return ctx.conservative()
    maps = spatial_maps(ctx, kernel, shape)
    axes: list[dict[Any, Dep]] = [dict(st.axes[0]), {}]
    for i, m in enumerate(maps):
        ctx.mark(st.axes[2 + i], "spatial")
        axes.append(through(m, st.axes[2 + i]))
    fixed = merge(st.fixed, collapse(st.axes[1], shape[1]),
                  *(ctx.state(i).collapsed(ctx.shape(i)) for i in range(1, ctx.n_inputs) if ctx.has(i)))
    return [FlowState(tuple(axes), fixed)]


def _convt_pad_begin(ctx: FlowCtx, i: int, n_in: Dim | None, s: int, d: int, k: int, opad: int,
                     out_shape: list[int] | None, auto: str, pads: list[int], n: int) -> int | None:
    """Begin padding of a ConvTranspose axis, per the ONNX spec.

    ``total = s·(in - 1) + output_padding + d·(k - 1) + 1 - out``; SAME_UPPER puts
    ``total // 2`` first, SAME_LOWER and an explicit ``output_shape`` put
    ``total - total // 2`` first. For SAME, ``out = in·s`` so ``total`` does not
    depend on the input size."""
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        total = opad + d * (k - 1) + 1 - s
        return total // 2 if auto == "SAME_UPPER" else total - total // 2
    if out_shape:
        nin = D.as_int(n_in)
        if nin is None:
            return None
        total = s * (nin - 1) + opad + d * (k - 1) + 1 - out_shape[i]
        return total - total // 2
    return 0 if auto == "VALID" else pads[i]


@FLOW.rule("ConvTranspose")
def conv_transpose(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    kernel = _kernel(ctx, 1)
    if st.axes is None or shape is None or kernel is None or len(st.axes) != 2 + len(kernel):
        return ctx.conservative()
    n = len(kernel)
    strides = list(ctx.attr("strides") or [1] * n)
    dil = list(ctx.attr("dilations") or [1] * n)
    pads = list(ctx.attr("pads") or [0] * (2 * n))
    opads = list(ctx.attr("output_padding") or [0] * n)
    out_shape = ctx.attr("output_shape")
    out_shape = list(out_shape)[-n:] if out_shape else None
    auto = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    axes: list[dict[Any, Dep]] = [dict(st.axes[0]), {}]
    for i in range(n):
        s, d, k = strides[i], dil[i], kernel[i]
        pb = _convt_pad_begin(ctx, i, shape[2 + i], s, d, k, opads[i], out_shape, auto, pads, n)
        ctx.mark(st.axes[2 + i], "spatial")
        if pb is None:
            axes.append(collapse(st.axes[2 + i], shape[2 + i]))
            continue
        # out o = s·j - pb + d·t (t < k)  ⇒  j ∈ [(o + pb - d(k-1))/s, (o + pb)/s]
        m = affine(Fraction(1, s), Fraction(pb - d * (k - 1), s), Fraction(pb, s))
        axes.append(through(m, st.axes[2 + i]))
    fixed = merge(st.fixed, collapse(st.axes[1], shape[1]),
                  *(ctx.state(i).collapsed(ctx.shape(i)) for i in range(1, ctx.n_inputs) if ctx.has(i)))
    return [FlowState(tuple(axes), fixed)]


@FLOW.rule("MaxPool", "AveragePool", "LpPool")
def pool(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    kernel = ctx.attr("kernel_shape")
    if st.axes is None or shape is None or not kernel or len(st.axes) != 2 + len(kernel):
        return ctx.conservative()
    maps = spatial_maps(ctx, list(kernel), shape)
    axes: list[dict[Any, Dep]] = [dict(st.axes[0]), dict(st.axes[1])]
    for i, m in enumerate(maps):
        ctx.mark(st.axes[2 + i], "spatial")
        axes.append(through(m, st.axes[2 + i]))
    out = FlowState(tuple(axes), dict(st.fixed))
    return [out, out]


@FLOW.rule("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
@FLOW.rule("QLinearGlobalAveragePool", domain=MS)
def global_pool(ctx: FlowCtx) -> Out:
    """Every spatial axis (2… in NCHW; 1…−2 with ``channels_last``) is pooled away."""
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None:
        return ctx.conservative()
    spatial = range(1, len(st.axes) - 1) if ctx.attr("channels_last", 0) else range(2, len(st.axes))
    for k in spatial:
        ctx.mark(st.axes[k], "spatial")
    pooled = merge(st.fixed, *(collapse(st.axes[k], shape[k]) for k in spatial))
    axes = [{} if k in spatial else dict(st.axes[k]) for k in range(len(st.axes))]
    return [FlowState(tuple(axes), pooled)]


def _resize_scales(ctx: FlowCtx, rank: int) -> list[float] | None:
    """Per-axis scales as the op will use them (None when sizes drive it)."""
    if ctx.node.op_type == "Upsample" and ctx.opset < 9:
        sc = ctx.attr("scales")
        return [float(x) for x in sc] if sc else None
    index = 1 if (ctx.node.op_type == "Upsample" or ctx.opset == 10) else 2
    arr = ctx.const(index) if ctx.has(index) else None
    if arr is None or arr.size == 0:
        return None
    values = [float(x) for x in arr.reshape(-1)]
    axes = ctx.attr("axes")
    if axes and len(axes) == len(values):
        full = [1.0] * rank
        for a, v in zip(axes, values, strict=True):
            full[_norm(a, rank)] = v
        return full
    return values if len(values) == rank else None


def _keep_aspect_scales(ctx: FlowCtx, src: tuple[Dim | None, ...]) -> list[float] | None:
    """With ``sizes`` and a keep-aspect policy, every resized axis uses one scale."""
    from ...ops.shape_rules import keep_aspect_scale

    sizes = ctx.ints(3)
    rank = len(src)
    axes = [_norm(a, rank) for a in (ctx.attr("axes") or range(rank))]
    if sizes is None or len(sizes) != len(axes):
        return None
    scale = keep_aspect_scale(ctx.attr("keep_aspect_ratio_policy", "stretch"), [src[a] for a in axes], sizes)
    if scale is None:
        return None
    full = [1.0] * rank
    for a in axes:
        full[a] = scale
    return full


_BY_SCALE = ("asymmetric", "half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn")
"""Coordinate transforms that depend on the scale alone (not on the sizes)."""


def _resize_map(ctx: FlowCtx, n_in: Any, n_out: int | None, scale: float | None) -> Dep | None:
    """Input positions an output position reads, per the ONNX Resize coordinate
    transforms; indices outside the input are clamped to the border."""
    mode = ctx.attr("mode", "nearest")
    ctm = ctx.attr("coordinate_transformation_mode", "half_pixel" if ctx.opset >= 11 else "asymmetric")
    if scale:
        sc = Fraction(scale).limit_denominator(1 << 16)
    elif n_out is not None:
        sc = Fraction(n_out, n_in)
    else:
        return None
    if sc == 0:
        return None
    inv = 1 / sc
    if ctm == "align_corners":
        if n_out is None:
            return None
        slope, off = (Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)), Fraction(0)
    elif ctm == "asymmetric":
        slope, off = inv, Fraction(0)
    elif ctm == "tf_half_pixel_for_nn":
        slope, off = inv, inv / 2
    elif ctm in ("half_pixel", "pytorch_half_pixel"):
        slope, off = inv, (inv - 1) / 2
    elif ctm == "half_pixel_symmetric":
        out_w = sc * n_in
        adjust = Fraction(math.floor(out_w)) / out_w if out_w else Fraction(1)
        slope, off = inv, Fraction(n_in, 2) * (1 - adjust) + (inv - 1) / 2
    else:  # tf_crop_and_resize reads a runtime ROI
        return None
    if mode == "nearest":
        lo, hi = {"floor": (-1, 0), "ceil": (0, 1)}.get(ctx.attr("nearest_mode", "round_prefer_floor"),
                                                       (Fraction(-1, 2), Fraction(1, 2)))
    else:
        reach = Fraction(1 if mode == "linear" else 2)
        if ctx.attr("antialias", 0) and sc < 1:
            reach = reach * inv  # the filter is stretched by 1/scale when downsampling
        lo, hi = -reach, reach
    # Clamping to the border: an output never reads nothing, so the band is
    # widened to always meet [0, n_in - 1].
    return band([lin(slope, off + lo), lin(0, n_in - 1)], [lin(slope, off + hi), lin(0, 0)])


@FLOW.rule("Resize", "Upsample")
def resize(ctx: FlowCtx) -> Out:
    st, src, dst = ctx.state(0), ctx.shape(0), ctx.out_shape(0)
    if st.axes is None or src is None or dst is None or len(src) != len(dst):
        return ctx.conservative()
    by_sizes = ctx.opset >= 11 and ctx.has(3) and ctx.node.op_type == "Resize"
    scales = None if by_sizes else _resize_scales(ctx, len(src))
    if by_sizes:
        scales = _keep_aspect_scales(ctx, src)
    axes = [dict(a) for a in st.axes]
    for k, (a, b) in enumerate(zip(src, dst, strict=True)):
        if not axes[k] or (scales is None and a is not None and b is not None and D.equal(a, b)):
            continue
        if scales is not None and scales[k] == 1.0:
            continue
        ai, bi = D.as_int(a), D.as_int(b)
        if scales is None and (ai is None or bi is None):
            # Sizes from the input's shape (DeepLab's upsample to the input size on a dynamic
            # export): the ratio is only known at the binding.
            ai, bi = ctx.at_binding(a), ctx.at_binding(b)
        if ai is not None and bi is not None and bi != 0:
            m = _resize_map(ctx, ai, bi, scales[k] if scales is not None else None)
        elif scales is not None and scales[k] and a is not None and ctx.attr(
                "coordinate_transformation_mode", "half_pixel" if ctx.opset >= 11 else "asymmetric") in _BY_SCALE:
            # A symbolic size with a known scale (YOLO's nearest ×2 upsample in a dynamic-H/W
            # export): the map needs the size only to clamp at the border.
            m = _resize_map(ctx, a, None, scales[k])
        else:
            m = None
        axes[k] = collapse(axes[k], a) if m is None else through(m, axes[k])
    fixed = merge(st.fixed, *(ctx.state(i).collapsed(ctx.shape(i)) for i in range(1, ctx.n_inputs) if ctx.has(i)))
    return [FlowState(tuple(axes), fixed)]


@FLOW.rule("MaxRoiPool", "RoiAlign", "GridSample", "AffineGrid", "DeformConv")
def data_dependent_spatial(ctx: FlowCtx) -> Out:
    return ctx.conservative()


# -- contractions --------------------------------------------------------------------------
def matmul_state(a: FlowState, b: FlowState, ash: tuple[Dim | None, ...] | None,
                  bsh: tuple[Dim | None, ...] | None, out_rank: int | None) -> FlowState | None:
    if a.axes is None or b.axes is None or ash is None or bsh is None or out_rank is None:
        return None
    aa, bb = list(a.axes), list(b.axes)
    ash_l, bsh_l = list(ash), list(bsh)
    a1, b1 = len(aa) == 1, len(bb) == 1
    if a1:
        aa, ash_l = [{}, *aa], [1, *ash_l]
    if b1:
        bb, bsh_l = [*bb, {}], [*bsh_l, 1]
    fixed = merge(a.fixed, b.fixed, collapse(aa[-1], ash_l[-1]), collapse(bb[-2], bsh_l[-2]))
    batch_rank = max(len(aa), len(bb)) - 2
    batch: list[dict[Any, Dep]] = [{} for _ in range(batch_rank)]
    for axes, sh in ((aa, ash_l), (bb, bsh_l)):
        r = len(axes) - 2
        for j in range(r):
            k = j + batch_rank - r
            deps = axes[j]
            if sh[j] == 1:
                deps = through(constant(0, 0), deps)
            batch[k] = merge(batch[k], deps)
    out = batch + [dict(aa[-2]), dict(bb[-1])]
    if a1:
        out.pop(-2)
    if b1:
        out.pop(-1)
    return FlowState(tuple(out), fixed)


@FLOW.rule("MatMul", "MatMulInteger")
def matmul(ctx: FlowCtx) -> Out:
    a, b, ash, bsh = ctx.state(0), ctx.state(1), ctx.shape(0), ctx.shape(1)
    gated = _matmul_gated(ctx, a, b)
    if gated is None:
        return [matmul_state(a, b, ash, bsh, ctx.out_rank(0))]
    side, keys = gated
    ctx.partial_mix([(a, len(a.axes) - 1), (b, len(b.axes) - 2)], "a sum gated by structural zeros")  # type: ignore[arg-type]
    # A's columns / B's rows pass only where the factor can be nonzero: out[.., i, j]
    # sums over k in keys(i) (A's zeros, output axis -2) or keys(j) (B's, axis -1).
    a_in = FlowState(tuple(dict(x) for x in a.axes[:-1]) + ({},), dict(a.fixed))  # type: ignore[index]
    b_in = FlowState(tuple(dict(x) for x in b.axes[:-2]) + ({}, dict(b.axes[-1])), dict(b.fixed))  # type: ignore[index]
    out = matmul_state(a_in, b_in, ash, bsh, ctx.out_rank(0))
    if out is None or out.axes is None:
        return ctx.conservative()
    axes = [dict(x) for x in out.axes]
    axes[side] = merge(axes[side], through(keys, a.axes[-1]), through(keys, b.axes[-2]))  # type: ignore[index]
    return [FlowState(tuple(axes), out.fixed)]


def _matmul_gated(ctx: FlowCtx, a: FlowState, b: FlowState) -> tuple[int, Dep] | None:
    """(output axis, band of contracted positions) when a factor's structural zeros
    (:mod:`..zeros`) leave only part of the contracted axis at each output position:
    a causal linear-attention or decay matrix written as ``tril``/``exp(-inf)``."""
    ra, rb = a.rank, b.rank
    if ra is None or rb is None or ra < 2 or rb < 2:
        return None
    zeros = ctx.engine.zeros
    keys = zeros.gate(ctx.node.input(0), ra - 2, ra - 1)
    if keys is not None:
        return -2, keys
    keys = zeros.gate(ctx.node.input(1), rb - 1, rb - 2)
    return None if keys is None else (-1, keys)


@FLOW.rule("QLinearMatMul")
def qlinear_matmul(ctx: FlowCtx) -> Out:
    return [matmul_state(ctx.state(0), ctx.state(3), ctx.shape(0), ctx.shape(3), ctx.out_rank(0))]


@FLOW.rule("MatMulNBits", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", domain=MS)
def matmul_weights(ctx: FlowCtx) -> Out:
    """A [.., K] × packed weights: the last axis is contracted, the rest pass through."""
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None or not st.axes:
        return ctx.conservative()
    axes = [dict(a) for a in st.axes[:-1]] + [{}]
    return [FlowState(tuple(axes), merge(st.fixed, collapse(st.axes[-1], shape[-1])))]


@FLOW.rule("FusedMatMul", domain=MS)
def fused_matmul(ctx: FlowCtx) -> Out:
    a, b = ctx.state(0), ctx.state(1)
    ash, bsh = ctx.shape(0), ctx.shape(1)
    if ctx.attr("transA", 0) and a.axes is not None and ash is not None and len(ash) >= 2:
        perm = list(range(len(ash) - 2)) + [len(ash) - 1, len(ash) - 2]
        a, ash = permute(a, perm), tuple(ash[p] for p in perm)
    if ctx.attr("transB", 0) and b.axes is not None and bsh is not None and len(bsh) >= 2:
        perm = list(range(len(bsh) - 2)) + [len(bsh) - 1, len(bsh) - 2]
        b, bsh = permute(b, perm), tuple(bsh[p] for p in perm)
    return [matmul_state(a, b, ash, bsh, ctx.out_rank(0))]


@FLOW.rule("Gemm")
def gemm(ctx: FlowCtx) -> Out:
    return _gemm(ctx, 0, 1, 2)


@FLOW.rule("QGemm", domain=MS)
def qgemm(ctx: FlowCtx) -> Out:
    """A at 0, B at 3, C at 6 (scales and zero points between them)."""
    return _gemm(ctx, 0, 3, 6)


def _gemm(ctx: FlowCtx, ia: int, ib: int, ic: int) -> Out:
    a, b = ctx.state(ia), ctx.state(ib)
    ash, bsh = ctx.shape(ia), ctx.shape(ib)
    if a.axes is None or b.axes is None or ash is None or bsh is None:
        return ctx.conservative()
    if ctx.attr("transA", 0):
        a, ash = permute(a, [1, 0]), (ash[1], ash[0])
    if ctx.attr("transB", 0):
        b, bsh = permute(b, [1, 0]), (bsh[1], bsh[0])
    out = matmul_state(a, b, ash, bsh, 2)
    if out is None:
        return ctx.conservative()
    if ctx.has(ic):
        c = broadcast(ctx, [ic])
        if c is not None and c.axes is not None:
            out = FlowState(tuple(merge(x, y) for x, y in zip(out.axes, c.axes, strict=True)),  # type: ignore[arg-type]
                            merge(out.fixed, c.fixed))
    return [out]


@FLOW.rule("Einsum")
def einsum(ctx: FlowCtx) -> Out:
    """Letters kept in the output keep their axes' deps; a summed letter's deps go to
    every element (``fixed``) — unless a factor is structurally zero outside a band
    between that letter and an output letter (Mamba-2's ``exp(segsum)`` decay over
    chunks, :mod:`..zeros`): then output position i gains only the summed positions
    that band leaves, as attention's keys through its mask."""
    from ...ops.shape_rules import parse_einsum

    terms, rhs = parse_einsum(ctx.attr("equation", ""))
    if any("..." in t for t in terms) or "..." in rhs:
        return ctx.conservative()
    gates = _einsum_gates(ctx, terms, rhs)
    letters: dict[str, list[Deps]] = {}
    fixed: list[Deps] = []
    for i, term in enumerate(terms):
        st, shape = ctx.state(i), ctx.shape(i)
        if st.axes is None or len(st.axes) != len(term):
            return ctx.conservative()
        fixed.append(st.fixed)
        for k, ch in enumerate(term):
            deps = st.axes[k]
            if ch in rhs:
                letters.setdefault(ch, []).append(deps)
            elif ch in gates:
                out_letter, keys = gates[ch]
                ctx.partial_mix([(ctx.state(j), t.index(ch)) for j, t in enumerate(terms) if ch in t],
                                f"a sum over {ch!r} gated by structural zeros")
                letters.setdefault(out_letter, []).append(through(keys, deps))
            else:
                fixed.append(collapse(deps, _len(shape, k)))
    axes = tuple(merge(*letters.get(ch, [])) for ch in rhs)
    return [FlowState(axes, merge(*fixed))]


def _einsum_gates(ctx: FlowCtx, terms: list[str], rhs: str) -> dict[str, tuple[str, Dep]]:
    """Summed letter → (output letter, band of summed positions at each output
    position) from a factor's structural zeros. Every term of the sum is a product of
    all operands, so one factor's zero silences the others' positions there too."""
    gates: dict[str, tuple[str, Dep]] = {}
    for i, term in enumerate(terms):
        if len(set(term)) != len(term) or not ctx.has(i):
            continue
        for k, ch in enumerate(term):
            if ch in rhs or ch in gates:
                continue
            for m, out_ch in enumerate(term):
                if out_ch not in rhs:
                    continue
                keys = ctx.engine.zeros.gate(ctx.node.input(i), m, k)
                if keys is not None:
                    gates[ch] = (out_ch, keys)
                    break
    return gates


# -- recurrence -------------------------------------------------------------------------------
@FLOW.rule("LSTM", "GRU", "RNN")
@FLOW.rule("DynamicQuantizeLSTM", domain=MS)
def recurrent(ctx: FlowCtx) -> Out:
    st, shape = ctx.state(0), ctx.shape(0)
    if st.axes is None or shape is None or len(st.axes) != 3:
        return ctx.conservative()
    layout = ctx.attr("layout", 0)
    seq_ax, batch_ax = (0, 1) if layout == 0 else (1, 0)
    direction = ctx.attr("direction", "forward")
    m = {"forward": CAUSAL, "reverse": ANTICAUSAL}.get(direction, ALL)
    seq_deps = st.axes[seq_ax]
    ctx.mark(seq_deps, "sequence")
    others = merge(*(ctx.state(i).collapsed(ctx.shape(i)) for i in range(1, ctx.n_inputs) if ctx.has(i)))
    fixed = merge(st.fixed, collapse(st.axes[2], shape[2]), others)
    seq = through(m, seq_deps)
    batch = dict(st.axes[batch_ax])
    none: dict[SourceAxis, Dep] = {}
    y = (seq, none, batch, none) if layout == 0 else (batch, seq, none, none)
    final = merge(fixed, collapse(seq_deps, shape[seq_ax]))
    h = (none, batch, none) if layout == 0 else (batch, none, none)
    return [FlowState(tuple(dict(a) for a in y), dict(fixed)), FlowState(tuple(dict(a) for a in h), final),
            FlowState(tuple(dict(a) for a in h), dict(final))]
