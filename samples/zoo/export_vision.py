#!/usr/bin/env python3
"""Export torchvision (and optionally ultralytics YOLOv8n) models to ONNX for the vision sweep.

Needs torch + torchvision (+ onnxscript for ``dynamo=True``, ultralytics for ``yolov8n``);
never imported by the tests. No weights are downloaded: every model is built with
``weights=None`` — structure, shapes and parameter counts do not depend on the weights.

Usage::

    python samples/zoo/export_vision.py OUT_DIR [--models resnet18,vgg16] [--exporters dynamo,ts]
                                        [--dynamic] [--fixtures]

Writes ``OUT_DIR/<model>.<exporter>[.dyn].onnx`` and ``OUT_DIR/truth.json``: per model the
input shape, ``sum(p.numel())`` of the torch module (the parameter truth) and, where
torchvision publishes them, ``meta["_ops"]`` (GFLOPS counted as multiply-adds, i.e. GMACs,
at the resolution of the weights' transforms) and ``meta["num_params"]``.

``--fixtures`` writes the small committed fixtures of ``samples/zoo/`` instead (shrunken
widths / inputs / class counts where the architectural pattern survives).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Spec:
    """One model to export: how to build it and what input it takes."""

    name: str
    build: Callable[[], Any]
    shape: tuple[int, ...]
    published: str | None = None
    """torchvision model name whose weights' meta carries ``_ops``/``num_params``."""
    dynamic_axes: tuple[int, ...] = (2, 3)
    opset_ts: int = 17
    kwargs: dict[str, Any] = field(default_factory=dict)


def tv(name: str, **kw: Any) -> Callable[[], Any]:
    def build() -> Any:
        import torchvision

        return torchvision.models.get_model(name, weights=None, **kw)

    return build


def yolov8n() -> Any:
    from ultralytics.nn.tasks import DetectionModel

    m = DetectionModel("yolov8n.yaml", verbose=False)
    m.fuse = lambda *a, **k: m  # keep BN unfused (what the zoo's export sees)
    for mod in m.modules():  # export-friendly head (no dynamic anchors rebuilt per call)
        if mod.__class__.__name__ == "Detect":
            mod.export = True
            mod.format = "onnx"
    return m


def specs() -> list[Spec]:
    """The sweep: classification at 224 (inception 299), segmentation at 520, video 16×112²,
    detection at 320/512 — the resolutions torchvision's published counts use where it has one."""
    cls = ["alexnet", "vgg16", "resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "densenet121",
           "googlenet", "squeezenet1_0", "shufflenet_v2_x1_0", "mobilenet_v2", "mobilenet_v3_large",
           "mnasnet1_0", "efficientnet_b0", "regnet_y_400mf", "convnext_tiny", "swin_t", "vit_b_16", "maxvit_t"]
    out = [Spec(n, tv(n), (1, 3, 224, 224), n) for n in cls]
    out.append(Spec("inception_v3", tv("inception_v3", init_weights=False), (1, 3, 299, 299), "inception_v3"))
    out += [Spec("fcn_resnet50", tv("fcn_resnet50", weights_backbone=None, aux_loss=False), (1, 3, 520, 520),
                 "fcn_resnet50"),
            Spec("deeplabv3_resnet50", tv("deeplabv3_resnet50", weights_backbone=None, aux_loss=False),
                 (1, 3, 520, 520), "deeplabv3_resnet50"),
            Spec("lraspp_mobilenet_v3_large", tv("lraspp_mobilenet_v3_large", weights_backbone=None),
                 (1, 3, 520, 520), "lraspp_mobilenet_v3_large"),
            Spec("r3d_18", tv("r3d_18"), (1, 3, 16, 112, 112), "r3d_18", dynamic_axes=(3, 4)),
            Spec("fasterrcnn_mobilenet_v3_large_fpn", tv("fasterrcnn_mobilenet_v3_large_fpn",
                                                         weights_backbone=None),
                 (3, 320, 320), "fasterrcnn_mobilenet_v3_large_fpn", dynamic_axes=(1, 2)),
            Spec("ssdlite320_mobilenet_v3_large", tv("ssdlite320_mobilenet_v3_large", weights_backbone=None),
                 (3, 320, 320), "ssdlite320_mobilenet_v3_large", dynamic_axes=(1, 2)),
            Spec("retinanet_resnet50_fpn", tv("retinanet_resnet50_fpn", weights_backbone=None),
                 (3, 320, 320), "retinanet_resnet50_fpn", dynamic_axes=(1, 2)),
            Spec("keypointrcnn_resnet50_fpn", tv("keypointrcnn_resnet50_fpn", weights_backbone=None),
                 (3, 320, 320), "keypointrcnn_resnet50_fpn", dynamic_axes=(1, 2)),
            Spec("yolov8n", yolov8n, (1, 3, 320, 320))]
    return out


def fixture_specs() -> list[Spec]:
    """Small models for samples/zoo/ (≲ 8 MB together): each keeps the pattern it is there for."""
    return [
        # MobileNetV3-Small at width 0.25: depthwise convs, squeeze-excite (global pool → Mul
        # gating the map), hardswish; torchvision's own architecture, 10 classes.
        Spec("mobilenet_v3_small_w025", tv("mobilenet_v3_small", num_classes=10, width_mult=0.25),
             (1, 3, 224, 224), None),
        # ShuffleNetV2 x0.5: channel shuffle (Reshape/Transpose) and chunk (TorchScript: Slice
        # bounds computed from Shape).
        Spec("shufflenet_v2_x0_5", tv("shufflenet_v2_x0_5", num_classes=10), (1, 3, 224, 224), None),
        # Swin-T's windowed attention with cyclic shifts, shrunk through the constructor.
        Spec("swin_tiny", _swin_tiny, (1, 3, 64, 64), None),
        # ViT: 16×16 patchify conv, class token, 2 encoder layers of width 64 at 64×64.
        Spec("vit_tiny", _vit_tiny, (1, 3, 64, 64), None),
        # DeepLabV3's ASPP (dilated 3×3 at rates 12/24/36, image pooling + bilinear upsample)
        # on a stride-8 stem, bilinear upsampling to the input: torchvision's ASPP module.
        Spec("deeplab_tiny", _deeplab_tiny, (1, 3, 128, 128), None),
        # R3D: torchvision's video stem (3×7×7, stride 1×2×2) and one 3-D basic block.
        Spec("r3d_tiny", _r3d_tiny, (1, 3, 8, 56, 56), None, dynamic_axes=(3, 4)),
        # YOLOv8 at width 1/8 (ultralytics' yolov8n.yaml, scale n width 0.125), 2 classes.
        Spec("yolov8_tiny", _yolo_tiny, (1, 3, 320, 320), None),
    ]


def _swin_tiny() -> Any:
    from torchvision.models.swin_transformer import SwinTransformer

    return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4],
                           num_classes=10)


def _vit_tiny() -> Any:
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128,
                             num_classes=10)


def _deeplab_tiny() -> Any:
    import torch
    from torch import nn
    from torchvision.models.segmentation.deeplabv3 import ASPP

    class DeepLabTiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            c = 3
            for out in (8, 16, 16):  # three stride-2 3×3 convs: output stride 8
                layers += [nn.Conv2d(c, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
                c = out
            layers += [nn.Conv2d(c, 16, 3, 1, 2, dilation=2, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
            self.backbone = nn.Sequential(*layers)
            self.aspp = ASPP(16, [12, 24, 36], out_channels=16)
            self.head = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.Conv2d(16, 5, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.head(self.aspp(self.backbone(x)))
            return nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)

    return DeepLabTiny()


def _r3d_tiny() -> Any:
    from torch import nn
    from torchvision.models.video.resnet import BasicBlock, BasicStem, Conv3DSimple

    return nn.Sequential(BasicStem(), BasicBlock(64, 64, Conv3DSimple), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
                         nn.Linear(64, 10))


def _yolo_tiny() -> Any:
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    cfg = yaml_model_load("yolov8n.yaml")
    cfg["scales"] = {"n": [0.33, 0.125, 1024]}
    cfg["nc"] = 2
    m = DetectionModel(cfg, verbose=False)
    for mod in m.modules():
        if mod.__class__.__name__ == "Detect":
            mod.export = True
            mod.format = "onnx"
    return m


def break_ties(model: Any) -> None:
    """Perturb every constant-initialised tensor (BatchNorm γ = 1, β = 0, zero biases, class
    tokens) slightly. Untrained tensors with identical values are merged by the TorchScript
    exporter's initializer de-duplication, which no trained model would see, and which would
    make the parameter count an artifact of ``weights=None``. Variances stay positive."""
    import torch

    with torch.no_grad():
        tensors = list(model.named_parameters()) + list(model.named_buffers())
        for _name, t in tensors:
            if t.is_floating_point() and t.numel() > 1 and bool((t == t.reshape(-1)[0]).all()):
                t.add_(0.01 * torch.rand_like(t))


def calibrate_norms(model: Any, shape: tuple[int, ...]) -> None:
    """Set BatchNorm running statistics to those of random N(0, 1) images (two batches of 2).

    Untrained torchvision nets (``weights=None``) keep mean 0 / var 1, so the signal of a deep
    stack decays layer after layer (MobileNetV2's last map varies by < 1e-6 of its size when one
    input row changes) and the runtime oracle (``verify``) can observe nothing. With statistics of
    the data the net normalises its activations as a trained one does. Detection models are left
    alone (their training mode needs targets)."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or len(shape) < 4:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(2, *shape[1:]))
    model.eval()


def hook_macs(model: Any, shape: tuple[int, ...]) -> int | None:
    """Multiply-accumulates of every Conv/ConvTranspose/Linear module in one forward pass,
    counted by forward hooks from the modules' own tensors — a count independent of the
    ONNX graph (torchvision publishes ``_ops`` for its weights; custom fixtures have none).
    Matmuls outside modules (attention scores) are not seen: use it for conv nets."""
    import torch

    total = 0

    def conv(m: Any, inp: Any, out: Any) -> None:
        nonlocal total
        if isinstance(m, torch.nn.modules.conv._ConvTransposeNd):
            total += inp[0].numel() * m.weight.shape[1] * int(torch.tensor(m.kernel_size).prod())
        else:
            total += out.numel() * m.weight[0].numel()

    def linear(m: Any, inp: Any, out: Any) -> None:
        nonlocal total
        total += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.modules.conv._ConvNd):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear))
    try:
        with torch.no_grad():
            x = torch.randn(*shape)
            model([x] if len(shape) == 3 else x)
    except Exception:
        return None
    finally:
        for h in hooks:
            h.remove()
    return total


def torch_params(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def published(name: str | None) -> dict[str, Any]:
    if name is None:
        return {}
    import torchvision

    try:
        meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    except Exception:
        return {}
    return {"published_gmacs": meta.get("_ops"), "published_params": meta.get("num_params")}


def export(spec: Spec, model: Any, exporter: str, dynamic: bool, path: str) -> None:
    import torch

    detection = len(spec.shape) == 3
    x = torch.randn(*spec.shape)
    args = ([x],) if detection else (x,)
    if exporter == "dynamo":
        dyn = None
        if dynamic:
            dims = {a: torch.export.Dim(f"d{a}", min=64, max=1024) for a in spec.dynamic_axes}
            dyn = ([dims],) if detection else (dims,)
        torch.onnx.export(model, args, path, dynamo=True, input_names=["x"], output_names=None,
                          dynamic_shapes=dyn, external_data=False)
    else:
        axes = None
        if dynamic:
            axes = {"x": {a: f"d{a}" for a in spec.dynamic_axes}}
        torch.onnx.export(model, args, path, dynamo=False, input_names=["x"], opset_version=spec.opset_ts,
                          dynamic_axes=axes, do_constant_folding=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--models", default="")
    ap.add_argument("--exporters", default="ts,dynamo")
    ap.add_argument("--dynamic", action="store_true", help="also export with symbolic H/W")
    ap.add_argument("--fixtures", action="store_true", help="the small committed fixtures instead of the sweep")
    ns = ap.parse_args(argv)
    import torch

    torch.manual_seed(0)
    os.makedirs(ns.out, exist_ok=True)
    wanted = {m for m in ns.models.split(",") if m}
    todo = [s for s in (fixture_specs() if ns.fixtures else specs()) if not wanted or s.name in wanted]
    truth_path = os.path.join(ns.out, "truth.json")
    truth: dict[str, Any] = {}
    if os.path.exists(truth_path):
        with open(truth_path) as f:
            truth = json.load(f)
    for spec in todo:
        try:
            model = spec.build().eval()
            calibrate_norms(model, spec.shape)
            break_ties(model)
        except Exception as exc:
            print(f"{spec.name}: build failed: {exc}", file=sys.stderr)
            continue
        truth[spec.name] = {"shape": list(spec.shape), "torch_params": torch_params(model),
                            "hook_macs": hook_macs(model, spec.shape), **published(spec.published)}
        for exporter in ns.exporters.split(","):
            for dynamic in ([False, True] if ns.dynamic else [False]):
                path = os.path.join(ns.out, f"{spec.name}.{exporter}{'.dyn' if dynamic else ''}.onnx")
                t0 = time.time()
                try:
                    # No torch.no_grad(): with grad off, nn.MultiheadAttention takes its fused fast path
                    # (aten::_native_multi_head_attention), which the TorchScript exporter cannot export.
                    # TorchScript first: the dynamo export leaves fake tensors in some modules (YOLO's anchors).
                    export(spec, model, exporter, dynamic, path)
                    print(f"{path}: {os.path.getsize(path):,} bytes, {time.time() - t0:.1f} s")
                except Exception as exc:
                    msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                    print(f"{path}: export failed: {type(exc).__name__}: {msg}", file=sys.stderr)
                    if os.environ.get("EXPORT_DEBUG"):
                        traceback.print_exc()
                    truth[spec.name].setdefault("failed", []).append(f"{exporter}{'.dyn' if dynamic else ''}")
        with open(truth_path, "w") as f:
            json.dump(truth, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
