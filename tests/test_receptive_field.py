"""Receptive-field report (Araujo et al., Distill 2019 definitions)."""

from __future__ import annotations

import pytest

import builders
from builders import FLOAT, GraphBuilder
from conftest import SAMPLES
from model_analyze.runner import analyze


def rf_section(model, **kw):
    report = analyze(model, **kw)
    return report.section("receptive-field")


def test_sample_convnet(cli_run):
    # conv3 s1 p1 -> pool2 s2 -> conv3 s1 p1 -> pool2 s2 -> conv3 dilation 2 (k_eff 5) p2:
    # r = 1 + 2·1 + 1·1 + 2·2 + 1·2 + 4·4 = 26; jump 1·2·2 = 4;
    # effective padding = 1 + 0 + 1·2 + 0 + 2·4 = 11; centre of output 0 = (-11 + 14)/2 = 1.5.
    s = rf_section(str(SAMPLES / "convnet.onnx"))
    assert (s.metric("rf.size").value, s.metric("rf.stride").value, s.metric("rf.pad").value) == (26, 4, 11)
    maps = s.data["final_maps"]
    assert [m["consumer"] for m in maps] == ["gap"]
    assert maps[0]["axes"]["H"]["center"] == 1.5
    # After global pooling every logit sees the whole image.
    assert s.data["outputs"][0]["axes"]["H"]["global"] is True
    # Growth: strides 1 -> 2 -> 4 with RF 3 -> 8 -> 26 at the end of each stage.
    stages = [(r[3], r[4]) for r in s.table("growth").rows]
    assert stages == [(1, 3), (2, 8), (4, 26)]
    out = cli_run(SAMPLES / "convnet.onnx", "--select", "receptive-field").stdout
    assert "RF 26 (stride 4, effective padding 11)" in out


def _two_branch(kernel_b: int) -> GraphBuilder:
    b = GraphBuilder()
    x = b.input("x", FLOAT, [1, 1, 16, 16])
    a = builders.conv(b, x, 1, 1, 3, stride=2, pad=1, name="branch_a")       # o <- [2o-1, 2o+1], centre 2o
    c = builders.conv(b, x, 1, 1, kernel_b, stride=2, pad=0, name="branch_b")
    b.op("Add", [a, c], name="merge")
    b.output("merge")
    return b


def test_aligned_branches_no_finding():
    # branch_b 1x1 s2: o <- [2o, 2o], centre 2o: same stride and centre as branch_a.
    s = rf_section(_two_branch(1).model())
    assert not [f for f in s.findings if f.code == "RF001"]


def test_misaligned_branches_reported_with_hull():
    # branch_b 2x2 s2 p0: o <- [2o, 2o+1], centre 2o + 0.5 != 2o  -> misaligned at "merge".
    # Hull of [2o-1, 2o+1] and [2o, 2o+1] = [2o-1, 2o+1]: size 3, stride 2.
    s = rf_section(_two_branch(2).model())
    found = [f for f in s.findings if f.code == "RF001"]
    assert found and found[0].node.name == "merge"
    out = s.data["outputs"][0]["axes"]["H"]
    assert (out["size"], out["stride"]) == (3, 2)


def _five_convs(size: int):
    b = GraphBuilder()
    x = b.input("x", FLOAT, [1, 1, size, size])
    for k in range(5):
        x = builders.conv(b, x, 1, 1, 3, stride=2, pad=1, name=f"c{k}")
    b.op("GlobalAveragePool", [x], name="gap")
    b.output("gap")
    return b.model()


def test_rf_exceeding_input_is_said():
    # Five 3x3 stride-2 convs on 48x48 (maps 24, 12, 6, 3, 2): r = 1 + 2·(1+2+4+8+16) = 63 > 48.
    s = rf_section(_five_convs(48))
    assert s.metric("rf.size").value == 63
    assert any(f.code == "RF002" and "63" in f.message for f in s.findings)


def test_a_conv_leaving_one_position_is_global():
    # The same on 16x16: maps 8, 4, 2, 1, 1. After c3 one position is left (nothing to tell
    # apart): the final map is c2's 2x2 output, r = 1 + 2·(1+2+4) = 15.
    s = rf_section(_five_convs(16))
    assert s.metric("rf.size").value == 15
    assert [m["tensor"] for m in s.data["final_maps"]] == ["c2"]


def test_transformer_has_no_spatial_rf():
    s = rf_section(str(SAMPLES / "tiny_transformer.onnx"))
    assert "does not apply" in s.summary and not s.tables


# Published values (Araujo, Norris & Sim, Distill 2019, table for 224×224 inputs; METRICS.md),
# computed on faithful builds of the torchvision / TF-slim architectures in samples/nets.py.
@pytest.mark.parametrize("name, size, stride, pad", [
    ("alexnet", 195, 32, None),
    ("vgg16", 212, 32, 90),
    ("resnet18", 435, 32, None),
    ("resnet50", 427, 32, None),          # v1.5: stride on the 3×3 (torchvision)
    ("resnet50_v1_slim", 483, 32, None),  # v1: TF-slim stride placement
])
def test_published_receptive_fields(name, size, stride, pad):
    import nets

    s = rf_section(getattr(nets, name)(weights="shape"))
    assert s.metric("rf.size").value == size
    assert s.metric("rf.stride").value == stride
    if pad is not None:
        assert s.metric("rf.pad").value == pad


def _unfold_fold_block() -> GraphBuilder:
    """A MobileViT block at toy size: conv 3×3 s2 → unfold the 16×16 map into 2×2 patches
    ([B·C·nH, pH, nW, pW] → … → [B·P, N, C]) → attention over the N patches (+ residual)
    → fold back → a 3×3 fusion conv over concat(the map, the folded tokens)."""
    import numpy as np

    b = GraphBuilder(opset=17)
    x = b.input("x", FLOAT, [1, 3, 32, 32])
    y0 = b.op("Conv", [x, b.weight([4, 3, 3, 3])], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])

    def shape(*dims: int) -> str:
        return b.const(np.array(dims, np.int64))

    t = b.op("Reshape", [y0, shape(32, 2, 8, 2)])                  # [B·C·nH, pH, nW, pW]
    t = b.op("Transpose", [t], perm=[0, 2, 1, 3])                  # [B·C·nH, nW, pH, pW]
    t = b.op("Reshape", [t, shape(1, 4, 64, 4)])                   # [B, C, N, P]
    t = b.op("Transpose", [t], perm=[0, 3, 2, 1])                  # [B, P, N, C]
    tok = b.op("Reshape", [t, shape(4, 64, 4)])                    # [B·P, N, C]
    scores = b.op("MatMul", [tok, b.op("Transpose", [tok], perm=[0, 2, 1])])
    mixed = b.op("Add", [tok, b.op("MatMul", [b.op("Softmax", [scores], axis=-1), tok])])
    t = b.op("Reshape", [mixed, shape(1, 4, 64, 4)])               # fold: the same steps back
    t = b.op("Transpose", [t], perm=[0, 3, 2, 1])
    t = b.op("Reshape", [t, shape(32, 8, 2, 2)])
    t = b.op("Transpose", [t], perm=[0, 2, 1, 3])
    folded = b.op("Reshape", [t, shape(1, 4, 16, 16)])
    cat = b.op("Concat", [y0, folded], axis=1)
    b.op("Conv", [cat, b.weight([4, 8, 3, 3])], name="y", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    b.output("y")
    return b


def test_a_patch_grid_folded_back_is_not_the_final_map(tmp_path):
    # MobileViT at 256 px reported its unfolded patch grid (RF 227, stride 64 — twice the
    # network's) as the final map. The grid is folded back into a map, so the output is
    # the final map: stride 2 (32 px in, 16 out); local field 3 (conv 3×3 s2) + 2·2
    # (the fusion 3×3 at stride 2) = 7 along the conv path, and the whole image through
    # the attention over patches (context). The grid is still listed in the table.
    s = rf_section(_unfold_fold_block().model())
    assert s.metric("rf.stride").value == 2 and s.metric("rf.size").value == 7
    assert {r[0] for r in s.table("rf").rows} - {"y"}  # the patch grid's rows
    assert "RF005" not in [f.code for f in s.findings]
    pytest.importorskip("onnxruntime")
    import onnx

    from model_analyze.verify import verify_model

    path = tmp_path / "mvit_block.onnx"
    onnx.save(_unfold_fold_block().model(), str(path))
    result = verify_model(str(path), positions=8, seeds=1)
    assert result.sound and result.complete
