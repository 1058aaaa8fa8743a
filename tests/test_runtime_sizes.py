"""Sizes a binding can give (HS002, action bind) vs sizes known only at run time (HS007,
action none): the verdict's "next" row must not suggest binding dims that cannot help.

Each model below has every input dim concrete, so nothing is left to bind: a node that
cannot be costed is uncosted because of the model's *values* (NMS keeps a count of boxes
learnt per image, TopK's k is fed at run time), not its shapes.
"""

from __future__ import annotations

import numpy as np

from builders import FLOAT, GraphBuilder
from model_analyze import codes
from model_analyze.render.verdict import next_step
from model_analyze.runner import analyze

INT64 = 7


def _codes(report, code: str) -> list[str]:
    return [f.message for f in report.all_findings() if f.code == code]


def _nms_head():
    """boxes[1,100,4] → NMS (≤ 50 kept, how many is data) → Gather the kept boxes → MatMul
    [k,4]×[4,8] named ``head``: its MACs are 32·k for a k only the run knows."""
    b = GraphBuilder("nms")
    boxes = b.input("boxes", FLOAT, [1, 100, 4])
    scores = b.input("scores", FLOAT, [1, 1, 100])
    keep = b.op("NonMaxSuppression", [boxes, scores, b.const([50], dtype=np.int64)], name="nms")
    idx = b.op("Gather", [keep, b.const(2, dtype=np.int64)], axis=1)
    feats = b.op("Gather", [b.op("Squeeze", [boxes, b.const([0], dtype=np.int64)]), idx], axis=0)
    b.op("MatMul", [feats, b.weight([4, 8])], name="head")
    b.output("head")
    return b.model()


def _topk_head():
    """x[1,16] → TopK with k a graph input (a value, not a dim: no --dim can bind it) →
    values [1,k] → Transpose [k,1] → MatMul [k,1]×[1,4] named ``head`` (4·k MACs)."""
    b = GraphBuilder("topk")
    x = b.input("x", FLOAT, [1, 16])
    k = b.input("k", INT64, [1])
    values = b.op("TopK", [x, k], n_out=2, name="topk")
    vals = values[0] if isinstance(values, (list, tuple)) else values
    t = b.op("Transpose", [vals], perm=[1, 0])
    b.op("MatMul", [t, b.weight([1, 4])], name="head")
    b.output("head")
    return b.model()


def test_sizes_after_nms_are_hs007_not_hs002():
    """A detector's heads run on the boxes NMS keeps: a count onnxruntime learns per image and
    no graph-only analysis can know. HS007 says so, naming the op (moved here from
    test_vision_patterns, where it asserted HS002)."""
    report = analyze(_nms_head())
    msgs = _codes(report, "HS007")
    assert any(m.startswith("MatMul: 1 node not costed") and "data-dependent" in m and "nms" in m
               and "at any binding" in m
               for m in msgs), msgs
    assert not _codes(report, "HS002")
    # the head counts zero (a lower bound) and NMS its worst case, all box pairs (an upper
    # bound, HS003): both kinds in the total, which is then neither — ≈
    assert report.headline("macs").bound == "estimate"
    step = next_step(report)
    assert "HS007" not in step and "--dim" not in step and "rerun" not in step, step


def test_topk_with_a_runtime_k_is_data_dependent():
    report = analyze(_topk_head())
    msgs = _codes(report, "HS007")
    assert any(m.startswith("MatMul: 1 node not costed") and "topk" in m for m in msgs), msgs
    assert not _codes(report, "HS002")


def test_a_shape_a_binding_could_give_stays_hs002():
    """A MatMul on the output of an op with no shape rule: not data-dependent (a plugin's
    shape rule would give it), so HS002 with action bind."""
    b = GraphBuilder("mystery")
    x = b.input("x", FLOAT, [1, 8])
    y = b.op("Mystery", [x], name="odd", domain="com.example")
    b.op("MatMul", [y, b.weight([8, 8])], name="fc")
    b.output("fc")
    report = analyze(b.model(extra_opsets=[("com.example", 1)]))
    assert _codes(report, "HS002") and not _codes(report, "HS007")


def test_registry_tells_them_apart():
    reg = codes.registry()
    assert reg["HS002"].action == "bind" and reg["HS007"].action == "none"
