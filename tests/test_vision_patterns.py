"""Vision-export patterns found by the torchvision sweep (samples/zoo/export_vision.py).

Each test builds the pattern with onnx.helper; the expected numbers are derived by
hand in the comments (or checked against onnxruntime), never read from the engine.
"""

from __future__ import annotations

import signal
from fractions import Fraction

import numpy as np
import pytest

import builders
from builders import FLOAT, GraphBuilder
from model_analyze.runner import AnalyzeOptions, analyze, prepare
from model_analyze.tokenflow.deps import Chain, Union, affine


def rf_section(model, **kw):
    return analyze(model, **kw).section("receptive-field")


# -- engine: shared sub-expressions are evaluated once ---------------------------------------
def test_deep_shared_chain_union_dag_hull_and_hash_are_linear():
    """MaxViT's TorchScript export built a DAG of Chain/Union dependencies (fractional
    window-merge steps inside residual blocks) whose hull was recomputed per path:
    2^depth work, > 10 minutes. 60 levels of a doubly-shared DAG must take no time."""
    half = affine(Fraction(1, 2), 0, Fraction(1, 2))  # non-integral: kept as a Chain step
    third = affine(Fraction(1, 3), 0, Fraction(2, 3))
    d = affine(1, -1, 1)
    for _ in range(60):
        d = Union((Chain((half, d)), Chain((third, d))))
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("hull/hash of a shared DAG is exponential"))
    signal.alarm(10)
    try:
        h = d.hull
        assert h.lo is not None and h.hi is not None
        assert isinstance(hash(d), int)
    finally:
        signal.alarm(0)


# -- shapes: float size arithmetic is folded ---------------------------------------------------
def _detection_resize(h: int, w: int):
    """torchvision's GeneralizedRCNNTransform as TorchScript exports it: scale =
    min(800 / min(h, w), 1333 / max(h, w)) computed in float from the image size,
    out = floor(scale · h), floor(scale · w) → Resize(sizes) → a 3×3 conv."""
    b = GraphBuilder("det_resize")
    x = b.input("x", FLOAT, [1, 3, h, w])
    hw = b.op("Slice", [b.op("Shape", [x]), b.const([2], dtype=np.int64), b.const([4], dtype=np.int64)])
    hw_f = b.op("Cast", [hw], to=1)
    lo = b.op("ReduceMin", [hw_f], keepdims=0)
    hi = b.op("ReduceMax", [hw_f], keepdims=0)
    s = b.op("Min", [b.op("Mul", [b.op("Reciprocal", [lo]), b.const(np.float32(800))]),
                     b.op("Mul", [b.op("Reciprocal", [hi]), b.const(np.float32(1333))])])
    size = b.op("Cast", [b.op("Floor", [b.op("Mul", [hw_f, s])])], to=7)
    sizes = b.op("Concat", [b.const([1, 3], dtype=np.int64), size], axis=0)
    r = b.op("Resize", [x, "", "", sizes], mode="linear")
    y = builders.conv(b, r, 3, 8, 3, name="conv")
    b.output(y)
    return b.model()


@pytest.mark.parametrize(("h", "w", "out"), [(320, 320, (800, 800)), (300, 500, (799, 1333))])
def test_float_size_arithmetic_is_folded_into_known_shapes(h, w, out):
    # 320×320: scale = min(800/320, 1333/320) = 2.5 → 800×800.
    # 300×500: scale = min(800/300, 1333/500) = 2.6666667 (float32), and in float32
    # (1/300)·800·300 = 799.99994 → floor 799 (as onnxruntime computes it, checked
    # below); floor(2.6666667·500) = 1333.
    model = _detection_resize(h, w)
    ctx = prepare(model, AnalyzeOptions())
    assert ctx.shapes.shape("conv") == (1, 8, *out)
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"x": np.zeros((1, 3, h, w), np.float32)})
    assert y.shape == (1, 8, *out)
    # Conv MACs = 8 · 800 · out_w · 3 · 9, no longer zero for want of a shape.
    hot = analyze(model).section("hotspots")
    assert hot.metric("macs").value == 8 * out[0] * out[1] * 3 * 9


def test_float_size_arithmetic_with_a_bound_dynamic_input():
    """The same chain on a dynamic input: bound by --input-shape it is concrete."""
    model = _detection_resize(320, 320)
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "h"
    model.graph.input[0].type.tensor_type.shape.dim[3].dim_param = "w"
    ctx = prepare(model, AnalyzeOptions(input_shapes={"x": [1, 3, 200, 400]}))
    # scale = min(800/200, 1333/400) = 3.3325 → floor(666.5) = 666, floor(1333) = 1333
    assert ctx.shapes.shape("conv") == (1, 8, 666, 1333)
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": np.zeros((1, 3, 200, 400), np.float32)})[0].shape == (1, 8, 666, 1333)


# -- receptive field: which map is final --------------------------------------------------------
def _se_net(shape_read: bool = False):
    """conv3×3 → squeeze-excite (GAP → 1×1 conv → Sigmoid → Mul) → conv3×3 → GAP → Gemm.
    Optionally a Shape of the first map (a TorchScript export's dynamic ``chunk``)."""
    b = GraphBuilder("se")
    x = b.input("x", FLOAT, [1, 3, 32, 32])
    a = b.op("Relu", [builders.conv(b, x, 3, 8, 3, name="conv1")], name="act1")
    if shape_read:
        b.op("Shape", [a], name="shape_of_act1")
    g = b.op("GlobalAveragePool", [a], name="se_pool")
    g = b.op("Sigmoid", [builders.conv(b, g, 8, 8, 1, name="se_fc")])
    a = b.op("Mul", [a, g], name="se_scale")
    y = b.op("Relu", [builders.conv(b, a, 8, 8, 3, name="conv2")], name="act2")
    p = b.op("Flatten", [b.op("GlobalAveragePool", [y], name="gap")], axis=1)
    b.op("Gemm", [p, b.weight([4, 8]), b.const(np.zeros(4, np.float32))], name="logits", transB=1)
    b.output("logits", FLOAT, [1, 4])
    return b.model()


def test_squeeze_excite_pool_does_not_end_the_map_and_is_reported_as_context():
    # Local field: two 3×3 convs, stride 1 → RF 5, pad 2. The SE pool makes every
    # position of act2 also depend on the whole 32×32 image (RF004), not a final map.
    s = rf_section(_se_net())
    maps = s.data["final_maps"]
    assert [(m["tensor"], m["consumer"]) for m in maps] == [("act2", "gap")]
    h = maps[0]["axes"]["H"]
    assert (h["size"], h["stride"], h["pad"], h["context"]) == (5, 1, 2, True)
    assert [f.code for f in s.findings if f.code == "RF004"] == ["RF004"]
    assert "se_pool" in next(f.message for f in s.findings if f.code == "RF004")
    assert "sees the whole image" in s.summary


def test_a_shape_read_does_not_end_the_map():
    # ShuffleNet's TorchScript export reads Shape(x) to chunk it: not a consumer that
    # mixes positions (it reads none of the data).
    s = rf_section(_se_net(shape_read=True))
    assert [m["tensor"] for m in s.data["final_maps"]] == ["act2"]


def test_flatten_to_tokens_ends_the_map_at_the_patch_grid():
    """ViT stem: 16×16/16 patch conv → Reshape [1, C, 16] → Transpose → token MatMul.
    The last map is the patch grid (RF 16, stride 16, pad 0); the reshape merges H and
    W into one token axis (H's rows as a fractional 'position', W only as a whole),
    which is no map — its 'RF' (stride 16/4 = 4 px) was reported before."""
    b = GraphBuilder("vit_stem")
    x = b.input("x", FLOAT, [1, 3, 64, 64])
    p = builders.conv(b, x, 3, 8, 16, stride=16, pad=0, name="patchify")  # [1, 8, 4, 4]
    t = b.op("Transpose", [b.op("Reshape", [p, b.const([1, 8, 16], dtype=np.int64)], name="flatten_hw")],
             perm=[0, 2, 1])
    y = b.op("MatMul", [t, b.weight([8, 8])], name="tokens")
    b.output(y)
    s = rf_section(b.model())
    assert [(m["tensor"], m["consumer"]) for m in s.data["final_maps"]] == [("patchify", "flatten_hw")]
    assert (s.metric("rf.size").value, s.metric("rf.stride").value, s.metric("rf.pad").value) == (16, 16, 0)
    assert [f.code for f in s.findings if f.code == "RF005"] == ["RF005"]


def test_dense_prediction_reports_the_output_field():
    # conv3×3/s2 (pad 1) → conv3×3 (pad 1) → no pooling: the output is the map.
    # r = 1 + 2 + 2·2 = 7, stride 2, pad = 1 + 1·2 = 3. It used to say "global".
    b = GraphBuilder("dense")
    x = b.input("x", FLOAT, [1, 3, 32, 32])
    y = builders.conv(b, builders.conv(b, x, 3, 4, 3, stride=2), 4, 2, 3, name="seg")
    b.output(y)
    s = rf_section(b.model())
    assert (s.metric("rf.size").value, s.metric("rf.stride").value, s.metric("rf.pad").value) == (7, 2, 3)
    assert s.summary.startswith("dense output: RF 7")


# -- dynamic H/W: window padding and upsampling with symbolic sizes ---------------------------
def _window_pad(window: int = 4):
    """Swin's padding to whole windows as TorchScript exports F.pad on a dynamic map:
    pad_b = (w - H % w) % w, pad_r likewise, written [0, 0, 0, pad_r, 0, pad_b, 0, 0] (torch
    order: last axis first), reversed through a [4, 2] view (Reshape → Slice step -1 →
    Transpose → Reshape) into ONNX's begin/end order, then a 1×1 conv."""
    b = GraphBuilder("window_pad")
    x = b.input("x", FLOAT, [1, "h", "w", 8])
    shape = b.op("Shape", [x])

    def pad_for(axis: int) -> str:
        d = b.op("Gather", [shape, b.const(axis, dtype=np.int64)])
        m = b.op("Mod", [b.op("Sub", [b.const(window, dtype=np.int64),
                                      b.op("Mod", [d, b.const(window, dtype=np.int64)])]),
                         b.const(window, dtype=np.int64)])
        return b.op("Unsqueeze", [m, b.const([0], dtype=np.int64)])

    zero = b.const([0], dtype=np.int64)
    torch_pads = b.op("Concat", [zero, zero, zero, pad_for(2), zero, pad_for(1), zero, zero], axis=0)
    rev = b.op("Slice", [b.op("Reshape", [torch_pads, b.const([-1, 2], dtype=np.int64)]),
                         b.const([-1], dtype=np.int64), b.const([-(1 << 62)], dtype=np.int64),
                         b.const([0], dtype=np.int64), b.const([-1], dtype=np.int64)])
    pads = b.op("Reshape", [b.op("Transpose", [rev], perm=[1, 0]), b.const([-1], dtype=np.int64)])
    padded = b.op("Pad", [x, pads],
                  name="pad", mode="constant")
    y = b.op("Transpose", [padded], perm=[0, 3, 1, 2])
    y = builders.conv(b, y, 8, 4, 1, name="conv")
    b.output(y)
    return b.model()


@pytest.mark.parametrize(("h", "w"), [(13, 16), (56, 30)])
def test_symbolic_window_padding_gives_known_shapes(h, w):
    # 13 → 16 (pad 3), 16 → 16 (pad 0), 56 → 56, 30 → 32: the padded map, as onnxruntime runs it.
    model = _window_pad()
    up = lambda n: n + (4 - n % 4) % 4  # noqa: E731
    ctx = prepare(model, AnalyzeOptions(dims={"h": h, "w": w}))
    shape = ctx.shapes.shape("conv")
    assert shape is not None and all(d is not None for d in shape)  # symbolic, never unknown
    assert tuple(ctx.evaluate(d) for d in shape) == (1, 4, up(h), up(w))
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": np.zeros((1, h, w, 8), np.float32)})[0].shape == (1, 4, up(h), up(w))
    # MACs at the binding: 4 · H' · W' · 8.
    assert analyze(model, AnalyzeOptions(dims={"h": h, "w": w})).section("hotspots").metric("macs").value == \
        4 * up(h) * up(w) * 8


def test_nested_floor_expressions_print_in_linear_time():
    """Each Swin stage nests the padding's floors once more; printing (which sorting
    terms relies on) recomputed every sub-expression's text: minutes on a 2-stage model."""
    from model_analyze import dims as D

    x = D.symbol("h")
    for _ in range(12):
        x = D.add(D.sub(4, D.sub(x, D.mul(4, D.floordiv(x, 4)))), D.floordiv(x, 2))
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("printing nested floors is exponential"))
    signal.alarm(10)
    try:
        assert "floor" in D.fmt(x)
    finally:
        signal.alarm(0)


def _upsample_net(dynamic: bool):
    """YOLO's neck: conv3×3/s2 → nearest Resize ×2 (scales) → conv3×3, on a dynamic or a
    fixed 32×32 input. The fixed export is the reference: both must report the same field."""
    b = GraphBuilder("upsample")
    x = b.input("x", FLOAT, [1, 3, "h" if dynamic else 32, "w" if dynamic else 32])
    y = builders.conv(b, x, 3, 4, 3, stride=2, name="down")
    y = b.op("Resize", [y, "", b.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest", name="up")
    y = builders.conv(b, y, 4, 4, 3, name="out")
    b.output(y)
    return b.model()


def test_symbolic_upsample_keeps_the_map():
    # A dynamic-H/W export must report the field the fixed-size export reports: the
    # upsample used to need concrete sizes and dropped every position (RF "global").
    fixed = rf_section(_upsample_net(False))
    dynamic = rf_section(_upsample_net(True), options=AnalyzeOptions(dims={"h": 32, "w": 32}))
    assert fixed.summary.startswith("dense output")
    assert dynamic.summary == fixed.summary
    assert dynamic.data["outputs"][0]["axes"]["H"] == fixed.data["outputs"][0]["axes"]["H"]


def test_rf_beyond_input_is_judged_per_axis():
    """A 3-D stem (3×7×7, stride 1×2×2, pad 1×3×3) then a 3×3×3 conv on 8×56×56: the H
    field 7 + 2·2 = 11 exceeds neither H 56 nor is compared with the 8 frames (D field
    3 + 2 = 5 < 8). RF002 compared the largest field with every axis."""
    b = GraphBuilder("video")
    x = b.input("x", FLOAT, [1, 3, 8, 56, 56])
    w1 = b.weight([4, 3, 3, 7, 7])
    y = b.op("Conv", [x, w1], kernel_shape=[3, 7, 7], strides=[1, 2, 2], pads=[1, 3, 3, 1, 3, 3])
    w2 = b.weight([4, 4, 3, 3, 3])
    y = b.op("Conv", [y, w2], name="c2", kernel_shape=[3, 3, 3], pads=[1, 1, 1, 1, 1, 1])
    p = b.op("Flatten", [b.op("GlobalAveragePool", [y], name="gap")], axis=1)
    b.output(p)
    s = rf_section(b.model())
    axes = s.data["final_maps"][0]["axes"]
    assert (axes["D"]["size"], axes["H"]["size"], axes["H"]["stride"]) == (5, 11, 2)
    assert s.summary.startswith("final feature map: RF 11 (stride 2, effective padding 5) along H")
    assert not [f for f in s.findings if f.code == "RF002"]


def test_resize_scales_are_not_parameters():
    # YOLO's neck upsamples with Resize(scales=[1, 1, 2, 2]) stored as a float tensor:
    # 4 elements that are no trained weight. Parameters = the two convs' W + b only:
    # 4·3·9 + 4 + 4·4·9 + 4 = 260.
    s = analyze(_upsample_net(False)).section("hotspots")
    assert s.metric("params").value == 4 * 3 * 9 + 4 + 4 * 4 * 9 + 4


def test_lifted_tensor_constant_is_not_a_parameter():
    """torch.export lifts a module's plain tensor attribute as ``c_…`` and the dynamo
    exporter records the reference in the consumer's ``pkg.torch.onnx.fx_node``
    (YOLOv8's ``model.22.strides``, [1, 2100] at 320²). Parameters: the conv's 4·3·9 + 4."""
    import onnx

    b = GraphBuilder("lifted")
    x = b.input("x", FLOAT, [1, 3, 8, 8])
    y = builders.conv(b, x, 3, 4, 3, name="conv")
    b.const(np.full((1, 4, 1, 1), 8.0, np.float32), name="model.22.strides")
    b.op("Mul", [y, "model.22.strides"], name="scale")
    b.nodes[-1].metadata_props.append(onnx.StringStringEntryProto(
        key="pkg.torch.onnx.fx_node",
        value="%mul : [num_users=1] = call_function[target=torch.ops.aten.mul.Tensor]"
              "(args = (%conv, %c_model_22_strides), kwargs = {})"))
    b.output("scale")
    s = analyze(b.model()).section("hotspots")
    assert s.metric("params").value == 4 * 3 * 9 + 4


def test_nested_floors_of_a_conv_chain_flatten():
    """floor((floor(x/m) + k)/n) = floor((x + k·m)/(m·n)) for integer x, k, and
    floor((P + k)/n) = P/n + floor(k/n) when P/n has integer coefficients: a stride-2 conv
    chain on a dynamic side d keeps one floor (d → floor((d + 3)/4) after two 3×3/2 convs
    with pad 1), checked against integer arithmetic on random values."""
    import random

    from model_analyze import symbolic as S

    d = S.Expr.symbol("d")
    assert str(S.floordiv(S.floordiv(d + 1, 2) + 1, 2)) == "floor((d + 3)/4)"
    # floor((4·floor(x) + 1)/2) = 2·floor(x): the multiple of the divisor leaves the floor.
    assert str(S.floordiv(4 * S.floordiv(d + 31, 32) + 1, 2)) == "2*floor((d + 31)/32)"
    rng = random.Random(0)
    for _ in range(500):
        v, m, n = rng.randint(1, 5000), rng.randint(1, 9), rng.randint(1, 9)
        k, c = rng.randint(-20, 20), rng.randint(-20, 20)
        assert S.floordiv(S.floordiv(3 * d + c, m) + k, n).subs({"d": v}) == ((3 * v + c) // m + k) // n
