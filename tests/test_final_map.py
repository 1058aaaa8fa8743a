"""Final map = the last map whose positions are still distinguishable at the binding.

The model-zoo graphs the onnx package ships (``backend/test/data/light``: Caffe2 exports of
ResNet-50, Inception-v1/v2, ShuffleNet) end with a 7×7 ``AveragePool`` over a 7×7 map — a
pool that leaves one position is a global pool, so the final map is its input. The field is
checked against the published ResNet-50 value and, for every model, against an independent
Distill recurrence over the graph (``r ← r + (k − 1)·j``, ``j ← j·s`` per conv/pool, the
largest field where branches meet) written here from the kernels and strides alone.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from model_analyze.runner import analyze

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
WINDOWED = {"Conv", "MaxPool", "AveragePool"}


def chain_fields(model: onnx.ModelProto) -> dict[str, tuple[int, int]]:
    """tensor → (field, jump) along H by Distill's recurrence (the largest over inputs)."""
    out: dict[str, tuple[int, int]] = {i.name: (1, 1) for i in model.graph.input}
    for node in model.graph.node:
        ins = [out[t] for t in node.input if t in out]
        if not ins:
            continue
        r, j = max(ins)
        if node.op_type in WINDOWED:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            k = attrs.get("kernel_shape", [1])[0]
            if node.op_type == "Conv" and "kernel_shape" not in attrs:
                init = {t.name: t for t in model.graph.initializer}
                k = init[node.input[1]].dims[2]
            d = attrs.get("dilations", [1])[0]
            r, j = r + (k - 1) * d * j, j * attrs.get("strides", [1])[0]
        for t in node.output:
            out[t] = (r, j)
    return out


@pytest.mark.parametrize(("name", "published"), [("resnet50", 427), ("inception_v1", None), ("inception_v2", None),
                                                 ("shufflenet", None)])
def test_pool_leaving_one_position_ends_the_map(name, published):
    path = LIGHT / f"light_{name}.onnx"
    model = onnx.load(str(path))
    rep = analyze(str(path))
    sec = next(s for s in rep.sections if s.analyzer == "receptive-field")
    rf = next(m for m in sec.metrics if m.key == "rf.size")
    final = sec.data["final_maps"]
    assert final, sec.summary
    tensor = max(final, key=lambda e: e["axes"]["H"]["size"])["tensor"]
    # the final map is the input of the pool that leaves one position (7×7 → 1×1)
    consumer = next(n for n in model.graph.node if tensor in n.input)
    assert consumer.op_type in ("AveragePool", "GlobalAveragePool"), consumer.op_type
    assert rf.value == chain_fields(model)[tensor][0]
    if published is not None:
        assert rf.value == published
