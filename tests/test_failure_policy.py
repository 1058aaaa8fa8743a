"""One failure policy: a rule that raises becomes a finding naming op, node and rule, and
its fallback is conservative for every consumer — it never shrinks a receptive field and
never passes an incomplete count as exact.

Rules are made to raise by swapping them in the op registry the runner builds, exactly as
a plugin's broken rule would be merged in.
"""

from __future__ import annotations

import onnx
import pytest

import model_analyze.runner as runner
from conftest import SAMPLES
from model_analyze.ops import core as ops_core
from model_analyze.ops.core import default_registry

CONVNET = str(SAMPLES / "convnet.onnx")
CONVNET_RF = 26
"""convnet: conv3×3 → pool2 → conv3×3 → pool2 → conv3×3 (stride 1,2,2): r = 1 + 2 + 1 + 2·2 + 4·1 + 4·2
(Distill's r_out = r_in + (k − 1)·jump): 3, 4, 8, 10, 18… read off the graph in the test below."""


def _raise(ctx):
    raise RuntimeError("injected")


def _analyze_with(monkeypatch, kind: str, op: str, path: str = CONVNET):
    def registry():
        reg = default_registry()
        rule = reg.get("", op)
        assert rule is not None
        setattr(rule, kind, _raise)
        return reg

    monkeypatch.setattr(ops_core, "default_registry", registry)
    return runner.analyze(path)


def _section(report, name):
    return next(s for s in report.sections if s.analyzer == name)


def _metric(section, key):
    return next(m for m in section.metrics if m.key == key)


def test_convnet_field_without_failures():
    rep = runner.analyze(CONVNET)
    rf = _metric(_section(rep, "receptive-field"), "rf.size")
    assert (rf.value, rf.bound) == (CONVNET_RF, None)
    assert not [f for f in rep.all_findings() if f.code.startswith("R0")]


def _convnet_ops() -> list[str]:
    return sorted({n.op_type for n in onnx.load(CONVNET).graph.node})


@pytest.mark.parametrize("op", _convnet_ops())
def test_raising_flow_rule_is_reported_and_never_shrinks_the_field(monkeypatch, op):
    rep = _analyze_with(monkeypatch, "flow", op)
    sec = _section(rep, "receptive-field")
    errors = [f for f in sec.findings if f.code == "R002"]
    assert errors and all(op in f.message and "injected" in f.message and "_raise" in f.message for f in errors)
    assert all(f.node is not None and f.node.name for f in errors)
    rf = next((m for m in sec.metrics if m.key == "rf.size"), None)
    # Sound: either the true field, or a value marked as a lower bound (≤ the true field),
    # or no field at all (everything treated as seeing the whole input) — never a smaller
    # field presented as the answer.
    if rf is not None:
        assert rf.value == CONVNET_RF or (rf.bound == "lower" and rf.value <= CONVNET_RF), (op, rf)


@pytest.mark.parametrize("op", ["Conv", "MaxPool", "Relu"])
def test_raising_shape_rule_is_reported(monkeypatch, op):
    rep = _analyze_with(monkeypatch, "shape", op)
    errors = [f for f in rep.findings if f.code == "R001"]
    assert errors and all(op in f.message and "injected" in f.message for f in errors)
    assert {f.node.name for f in errors} == {n.name for n in onnx.load(CONVNET).graph.node if n.op_type == op}


@pytest.mark.parametrize("op", ["Conv", "Gemm"])
def test_raising_cost_rule_is_reported_and_marks_the_total_a_lower_bound(monkeypatch, op):
    rep = _analyze_with(monkeypatch, "cost", op)
    sec = _section(rep, "hotspots")
    errors = [f for f in sec.findings if f.code == "R003"]
    assert errors and all(op in f.message and "injected" in f.message for f in errors)
    assert _metric(sec, "macs").bound == "lower"


def test_unparsable_attribute_is_never_the_spec_default(save_model):
    # A Conv whose `strides` attribute has no readable type: reading it must fail the rules
    # (reported), not silently use strides = 1.
    model = onnx.load(CONVNET)
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    bad = onnx.AttributeProto(name="strides")  # type UNDEFINED: get_attribute_value raises
    conv.attribute.append(bad)
    rep = runner.analyze(str(save_model(model)))
    assert any(f.code == "R001" and "strides" in f.message and conv.name in f.message for f in rep.findings)


def test_raising_flow_rule_makes_the_reach_an_upper_bound(monkeypatch):
    # Add's flow rule raising (the residuals): every position mixed there, which can
    # only widen what a token reaches — said (R002) and marked as an upper bound.
    rep = _analyze_with(monkeypatch, "flow", "Add", str(SAMPLES / "tiny_transformer.onnx"))
    sec = _section(rep, "attention")
    assert any(f.code == "R002" and "Add" in f.message for f in sec.findings)
    reach = _metric(sec, "reach.last")
    # never a reach shorter than the true one (n = 128 at the default binding): unknown, or
    # an upper bound
    assert reach.value is None or (reach.bound == "upper" and reach.value >= 128)
    rf = _section(rep, "receptive-field")  # no conv hidden by the failure: RF still "does not apply"
    assert "does not apply" in rf.summary
