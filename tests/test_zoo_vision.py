"""Real vision exports (``samples/zoo``): torch's own counts, hand derivations and the
runtime oracle against what we read.

Every fixture was exported by ``samples/zoo/export_vision.py --fixtures`` (torch 2.14.1,
torchvision 0.29.1, ultralytics 8.4; ``weights=None``, BatchNorm statistics calibrated on
random images) with the TorchScript exporter (``torchscript``) or ``dynamo=True``;
``-dynhw`` files have symbolic H/W. ``samples/zoo/README.md`` lists them. The expected
values are facts measured in torch at export time — ``sum(p.numel())``, the BatchNorm
channel count, a forward-hook count of every Conv/Linear module's multiply-accumulates —
or derived by hand in the comments, or observed by ``verify`` (onnxruntime perturbs one
input row at a time), never numbers read back from this code.

Parameters: both exporters fold each eval-mode BatchNorm into the conv before it, so
γ and β (2·C) become one conv bias (C): the graph holds ``torch − Σ C_bn`` weights.
"""

from __future__ import annotations

from functools import cache

import pytest

from conftest import SAMPLES
from model_analyze.runner import AnalyzeOptions, analyze

ZOO = SAMPLES / "zoo"


@cache
def report(name: str, **dims: int):
    return analyze(str(ZOO / name), AnalyzeOptions(dims=dict(dims)))


def metric(name: str, section: str, key: str, **dims: int):
    return report(name, **dims).section(section).metric(key).value


def codes(name: str, section: str, **dims: int) -> list[str]:
    return [f.code for f in report(name, **dims).section(section).findings]


@cache
def verified(name: str, outputs: tuple[str, ...] = (), positions: int = 6, **dims: int):
    pytest.importorskip("onnxruntime")
    from model_analyze.verify import verify_model

    return verify_model(str(ZOO / name), AnalyzeOptions(dims=dict(dims)), outputs=list(outputs) or None,
                        seeds=1, positions=positions)


def assert_sound(result) -> None:
    bad = [(p.label, p.output, p.violations[:2]) for p in result.pairs if not p.sound]
    assert result.sound and result.complete, bad


# -- MobileNetV3-Small ×0.25 (TorchScript): depthwise convs + squeeze-excite -------------------
MNV3 = "mobilenet_v3_small_w025-torchscript.onnx"


def test_mobilenet_v3_small_counts():
    # torch: 119,842 parameters, 1,600 BatchNorm channels; hooks: 8,776,680 MACs.
    assert metric(MNV3, "hotspots", "params") == 119_842 - 1_600
    assert metric(MNV3, "hotspots", "macs") == 8_776_680


def test_mobilenet_v3_small_field_and_context():
    """Distill RF of the conv path: stem 3×3/2 (r 3, j 2); depthwise k/s per block
    (3/2, 3/2, 3/1, 5/2, 5/1 ×4, 5/2, 5/1 ×2), r += (k-1)·j: 7, 15, 31, 63, 319, 383, 639;
    stride 32, pad (639-1)/2 = 319. The squeeze-excite pools make every position of the
    last map also see the whole image: RF004, and the oracle sees it (tightness 1.0 =
    every probed row changes every output row)."""
    s = report(MNV3).section("receptive-field")
    assert (s.metric("rf.size").value, s.metric("rf.stride").value, s.metric("rf.pad").value) == (639, 32, 319)
    assert "RF004" in codes(MNV3, "receptive-field")
    final = s.data["final_maps"][0]["tensor"]
    result = verified(MNV3, (final,))
    assert_sound(result)
    assert result.pair(("x", 2), final).tightness == 1.0


# -- ViT (dynamo): patchify conv, then tokens ------------------------------------------------------
VIT = "vit_tiny-dynamo.onnx"


def test_vit_counts():
    """64×64 image, patch 16 → 16 patches + class token = 17 tokens, width 64, 4 heads
    (d 16), MLP 128, 2 layers, 10 classes. MACs by hand: patchify 64·16·(3·256) =
    786,432; per layer QKV 17·64·192 = 208,896, QKᵀ and AV 4·17·17·16 = 18,496 each, out
    17·64·64 = 69,632, MLP 2·17·64·128 = 278,528 → 594,048; head 64·10 = 640.
    torch: 118,090 parameters (LayerNorm is not folded)."""
    assert metric(VIT, "hotspots", "macs") == 786_432 + 2 * 594_048 + 640
    assert metric(VIT, "hotspots", "params") == 118_090


def test_vit_last_map_is_the_patch_grid():
    # The patch grid: RF 16, stride 16, pad 0; then flattened into tokens (RF005). It used
    # to report the token axis's 'field' (stride 16/14 px) of the value tensor.
    s = report(VIT).section("receptive-field")
    assert (s.metric("rf.size").value, s.metric("rf.stride").value, s.metric("rf.pad").value) == (16, 16, 0)
    assert "RF005" in codes(VIT, "receptive-field")
    patches = s.data["final_maps"][0]["tensor"]
    result = verified(VIT, (patches,), positions=8)
    assert_sound(result)
    assert result.pair(("x", 2), patches).tightness == 1.0  # each patch row reads exactly its 16 rows


# -- Swin (TorchScript, dynamic H/W): window padding, shifts ------------------------------------------
SWIN = "swin_tiny-torchscript-dynhw.onnx"


def test_swin_macs_symbolic_and_bound():
    """Patch 4, dim 16, depths [2, 2], heads [2, 4], window 4, 10 classes, at 64×64:
    patch embed 16·16·16·48 = 196,608; stage 1 (256 tokens, 16 windows of 16): QKV
    256·16·48 = 196,608, QKᵀ = AV = 16·2·16·16·8 = 65,536, proj 65,536, MLP 2·256·16·64 =
    524,288 → 917,504 per block; merging 64·64·32 = 131,072; stage 2 (64 tokens, 4 windows,
    4 heads of 8): 196,608 + 2·32,768 + 65,536 + 524,288 = 851,968 per block; head 320.
    The export pads the map to whole windows with (w - H % w) % w on symbolic H/W: every
    shape must stay known (it was unknown: 47 % of the nodes uncosted)."""
    expected = 196_608 + 2 * 917_504 + 131_072 + 2 * 851_968 + 320
    assert metric(SWIN, "hotspots", "macs", d2=64, d3=64) == expected
    assert "HS002" not in codes(SWIN, "hotspots", d2=64, d3=64)
    assert "HS002" not in codes(SWIN, "hotspots")  # at the stated defaults (224)


def test_swin_window_grid_then_merged():
    # A 4×4 window of 4-px patches: RF 16, stride 16 on the first window grid; the
    # symbolic end pads must not end the map (they used to: 'merged by Pad', RF 4).
    # Windows folded into the batch and unfolded again are followed exactly (row-major
    # regrouping, the window grid taken at the binding): the map is no longer lost there
    # (it used to end with RF005), and reaches the last stage's norm — stride 8 (4-px
    # patches merged 2×2), the same field along H and W (a square input, symmetric
    # shifts), sound by the oracle.
    s = report(SWIN, d2=64, d3=64).section("receptive-field")
    rows = s.table("rf").rows
    first = [r for r in rows if r[0].endswith("Transpose_1_output_0")][:2]
    assert [(r[1], r[2], r[3]) for r in first] == [("H", 16, 16), ("W", 16, 16)]
    assert "RF005" not in codes(SWIN, "receptive-field", d2=64, d3=64)
    assert s.metric("rf.stride").value == 8
    final = {r[1]: r[2:4] for r in rows if r[0] == "/permute/Transpose_output_0"}
    assert final["H"] == final["W"]
    result = verified(SWIN, ("/permute/Transpose_output_0",), d2=64, d3=64)
    assert_sound(result)


# -- DeepLab head (dynamo; TorchScript with dynamic H/W): ASPP + bilinear upsampling ------------------
DEEPLAB = "deeplab_tiny-dynamo.onnx"
DEEPLAB_DYN = "deeplab_tiny-torchscript-dynhw.onnx"


def test_deeplab_counts_both_exporters():
    # torch: 17,405 parameters, 168 BatchNorm channels; hooks at 128×128: 6,017,280 MACs.
    for name, dims in ((DEEPLAB, {}), (DEEPLAB_DYN, {"d2": 128, "d3": 128})):
        assert metric(name, "hotspots", "params", **dims) == 17_405 - 168
        assert metric(name, "hotspots", "macs", **dims) == 6_017_280


def test_deeplab_dense_output_field():
    """Stem: three 3×3/2 convs (r 3, 7, 15; j 8) and a 3×3 dilation 2 (k_eff 5): 47.
    ASPP rate 36 (k_eff 73): 47 + 72·8 = 623; head 3×3: 639 at stride 8. The bilinear
    ×8 upsample reads feature rows ⌊x⌋, ⌊x⌋+1 of x = (o + ½)/8 - ½, a band the engine
    widens to x ± 1: input rows 8(x - 1) - 319 .. 8(x + 1) + 319 = o - 330.5 .. o + 323.5,
    whose whole positions are o - 330 .. o + 323: 654 (≤, a hull; the exact field,
    rows 8⌊x⌋ - 319 .. 8⌊x⌋ + 327, is 647). The image-pooling branch adds whole-image
    context (RF004). It used to say 'global'."""
    s = report(DEEPLAB).section("receptive-field")
    assert s.summary.startswith("dense output: RF ≤654 (stride 1, effective padding 330)")
    assert "RF004" in codes(DEEPLAB, "receptive-field")
    assert_sound(verified(DEEPLAB))
    # The TorchScript export resizes to Shape(x)[2:]: with H/W bound by --dim the same
    # field (it said 'merged by Resize': the ratio of two symbolic sizes was unknown).
    dyn = report(DEEPLAB_DYN, d2=128, d3=128).section("receptive-field")
    assert dyn.summary == s.summary
    assert_sound(verified(DEEPLAB_DYN, d2=128, d3=128))


# -- R3D stem + basic block (TorchScript): 3-D convolution ---------------------------------------------
R3D = "r3d_tiny-torchscript.onnx"


def test_r3d_counts_and_field_per_axis():
    """Stem Conv3d 3×7×7, stride 1×2×2; block: two 3×3×3 convs. D: 3 + 2 + 2 = 7 (j 1);
    H, W: 7 + 2·2 + 2·2 = 15 (j 2, pad 7). On 8×56×56 no field exceeds its own axis.
    torch: 250,442 parameters, 192 BatchNorm channels; hooks: 1,564,287,616 MACs."""
    assert metric(R3D, "hotspots", "params") == 250_442 - 192
    assert metric(R3D, "hotspots", "macs") == 1_564_287_616
    s = report(R3D).section("receptive-field")
    axes = s.data["final_maps"][0]["axes"]
    assert [(axes[a]["size"], axes[a]["stride"]) for a in ("D", "H", "W")] == [(7, 1), (15, 2), (15, 2)]
    assert s.summary.startswith("final feature map: RF 15 (stride 2, effective padding 7) along H")
    assert "RF002" not in codes(R3D, "receptive-field")


# -- YOLOv8 ×1/8 (TorchScript, dynamic H/W): the HaoLine case ----------------------------------------
YOLO = "yolov8_tiny-torchscript-dynhw.onnx"


@pytest.mark.parametrize("side", [224, 320, 640])
def test_yolo_macs_follow_the_bound_size(side):
    """Issue 6: a peer prints 6.0 M FLOPs for a dynamic YOLOv8n. Hooks in torch count
    345,868,800 MACs at 320×320; every map of a 32-stride net scales with the area when
    the side is a multiple of 32, so 224: ×0.49, 640: ×4."""
    assert metric(YOLO, "hotspots", "macs", d2=side, d3=side) == 345_868_800 * side * side // (320 * 320)


def test_yolo_field_same_symbolic_and_fixed():
    """The neck's nearest ×2 upsamples must keep the map with symbolic H/W. Largest head
    map (stride 32): RF 1295 > 320, so RF002; the field is the same bound or not."""
    bound = report(YOLO, d2=320, d3=320).section("receptive-field")
    free = report(YOLO).section("receptive-field")
    assert (bound.metric("rf.size").value, bound.metric("rf.stride").value) == (1295, 32)
    assert free.metric("rf.size").value == 1295
    assert "RF002" in codes(YOLO, "receptive-field", d2=320, d3=320)
    assert_sound(verified(YOLO, positions=4, d2=320, d3=320))
