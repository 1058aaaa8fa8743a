"""A serving time is a lower bound only when the work and bytes behind it are floors.

Roofline: time ≥ max(2·MACs / peak, bytes / bandwidth) holds when the 2·MACs are exact or
a lower bound (uncosted nodes only add work) — the bytes the bound uses are always a floor.
2·MACs that are an upper bound (the costlier branch of an undecidable ``If``) or an estimate
may exceed what runs: their time bounds nothing. Then the memory side alone is the lower
bound, and where bandwidth bounds nothing (the working set fits on chip) the compute side
is stated as an estimate (≈). A rate from a lower bound on time is an upper bound (≤), from
an estimate an estimate.

Every model here: x float[2, 8] in, y float[2, 8] out (64 B each), an optional
cond bool[] (1 B), weights W float[8, 8] = 256 B. A MatMul [2,8]·[8,8] is 2·8·8 = 128 MACs,
256 FLOP of 2·MACs. Device: peak 1 GFLOP/s, bandwidth 10 GB/s (``NOCACHE``), or the same with
a 1 MB on-chip cache that holds everything (``CACHED``: bandwidth bounds nothing).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_analyze.render import json as json_render
from model_analyze.render import text as text_render
from model_analyze.runner import AnalyzeOptions, analyze

F = TensorProto.FLOAT
NOCACHE = "flops=1G,bandwidth=10G"
CACHED = "flops=1G,bandwidth=10G,cache=1M"


def _w(name: str = "W") -> onnx.TensorProto:
    return numpy_helper.from_array(np.zeros((8, 8), np.float32), name)


def _save(path, nodes, weights, cond=False, value_info=(), domains=()) -> str:
    inputs = [helper.make_tensor_value_info("x", F, [2, 8])]
    if cond:
        inputs.append(helper.make_tensor_value_info("cond", TensorProto.BOOL, []))
    g = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", F, [2, 8])], weights,
                          value_info=[helper.make_tensor_value_info(n, F, [2, 8]) for n in value_info])
    ops = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, 1) for d in domains)]
    onnx.save(helper.make_model(g, opset_imports=ops), str(path))
    return str(path)


def _if(out: str, then_nodes, else_nodes) -> onnx.NodeProto:
    then_g = helper.make_graph(then_nodes, "then", [], [helper.make_tensor_value_info("t", F, [2, 8])])
    else_g = helper.make_graph(else_nodes, "else", [], [helper.make_tensor_value_info("e", F, [2, 8])])
    return helper.make_node("If", ["cond"], [out], name="gate", then_branch=then_g, else_branch=else_g)


def exact_model(path) -> str:
    """One MatMul: 256 FLOP of 2·MACs, exact."""
    return _save(path, [helper.make_node("MatMul", ["x", "W"], ["y"])], [_w()])


def lower_model(path) -> str:
    """MatMul then an op with no cost rule (counts 0): 2·MACs ≥ 256."""
    return _save(path, [helper.make_node("MatMul", ["x", "W"], ["a"]),
                        helper.make_node("Mystery", ["a"], ["y"], domain="com.example")], [_w()],
                 value_info=["a"], domains=["com.example"])


def upper_model(path) -> str:
    """If(cond): then one MatMul (128 MACs), else two (256 MACs); cond is an input, so the
    costlier branch counts: 2·MACs ≤ 512. W is read by both branches: it must be read."""
    return _save(path, [_if("y", [helper.make_node("MatMul", ["x", "W"], ["t"])],
                            [helper.make_node("MatMul", ["x", "W"], ["e1"]),
                             helper.make_node("MatMul", ["e1", "W"], ["e"])])], [_w()], cond=True)


def estimate_model(path) -> str:
    """The If of ``upper_model`` after the op with no rule: ≥ 0 and ≤ 512 in one total, an
    estimate (≈ 512)."""
    return _save(path, [helper.make_node("Mystery", ["x"], ["a"], domain="com.example"),
                        _if("y", [helper.make_node("MatMul", ["a", "W"], ["t"])],
                            [helper.make_node("MatMul", ["a", "W"], ["e1"]),
                             helper.make_node("MatMul", ["e1", "W"], ["e"])])], [_w()], cond=True,
                 value_info=["a"], domains=["com.example"])


def _serving(path: str, device: str):
    report = analyze(path, AnalyzeOptions(select=["serving"], params={"device": device}))
    section = report.section("serving")
    assert section.status.value == "ok", section.error
    return report, section


def _m(section, key):
    m = section.metric(key)
    assert m is not None, key
    return m.value, m.bound


# (model, device, time s, its kind, binds, items/s kind), by hand:
CASES = [
    # exact 256 FLOP / 1e9 = 256 ns; bytes W 256 + x 64 + y 64 = 384 B / 1e10 = 38.4 ns: compute binds
    (exact_model, NOCACHE, 256e-9, "lower", "compute", "upper"),
    # ≥ 256 FLOP: the true work is at least that, so ≥ 256 ns still holds
    (lower_model, NOCACHE, 256e-9, "lower", "compute", "upper"),
    # ≤ 512 FLOP: 512 ns is no floor (the cheap branch may run: 256 ns); bytes W 256 + x 64 + cond 1
    # + y 64 = 385 B / 1e10 = 38.5 ns is: the lower bound is the memory side
    (upper_model, NOCACHE, 38.5e-9, "lower", "memory", "upper"),
    # on chip, bandwidth bounds nothing: only ≈ 512 ns, an estimate, is left
    (upper_model, CACHED, 512e-9, "estimate", "compute*", "estimate"),
    # ≈ 512 FLOP: likewise ≥ 38.5 ns from the bytes, or ≈ 512 ns on chip
    (estimate_model, NOCACHE, 38.5e-9, "lower", "memory", "upper"),
    (estimate_model, CACHED, 512e-9, "estimate", "compute*", "estimate"),
    # exact work on chip: the compute side alone is a floor, 256 ns
    (exact_model, CACHED, 256e-9, "lower", "compute*", "upper"),
]


@pytest.mark.parametrize(("build", "device", "t", "kind", "binds", "rate_kind"), CASES,
                         ids=[f"{c[0].__name__}-{'cached' if 'cache' in c[1] else 'dram'}" for c in CASES])
def test_time_kind_follows_the_work(tmp_path, build, device, t, kind, binds, rate_kind):
    _, s = _serving(build(tmp_path / "m.onnx"), device)
    value, bound = _m(s, "bound.forward")
    assert value == pytest.approx(t) and bound == kind
    rate, rbound = _m(s, "bound.items_per_s")
    assert rate == pytest.approx(1 / t, rel=1e-3) and rbound == rate_kind
    b1 = next(x for x in s.data["bounds"]["forward"] if x["batch"] == 1)
    assert (b1["time_s"], b1["time_bound"], b1["binds"]) == (pytest.approx(t), kind, binds)


def test_the_issue_line_no_longer_claims_a_lower_bound(tmp_path):
    """The issue's model on an A100 (its 40 MB cache holds the 385 B): the forward was printed
    ``≥ 0.00328 ns`` from ≤ 512 FLOP (512 / 156 TFLOP/s tf32 = 3.28 ps). It is an estimate."""
    report, s = _serving(upper_model(tmp_path / "m.onnx"), "a100")
    assert s.summary == ("forward ≤ 512 FLOPs; forward ≈ 0.00328 ns on a100 "
                         "(an estimate: the 2·MACs are not a floor)")
    text = text_render.render(report)
    assert "≥ 0.00328" not in text and "Forward pass time      ≈ 0.00328 ns" in text
    data = json.loads(json_render.render(report))["sections"][0]["data"]
    assert {x["time_bound"] for x in data["bounds"]["forward"]} == {"estimate"}
    assert data["bounds"]["forward"][0]["work_bound"] == "upper"
    assert [f.message for f in s.findings if f.code == "SV005"] == [
        "forward: the weights (and KV cache) fit in the 40 MB on-chip cache of NVIDIA A100 SXM4 80GB; memory "
        "bandwidth bounds nothing, only the compute side is stated (an estimate: the 2·MACs are not a floor)"]


def test_weights_read_only_in_an_undecided_branch_are_not_in_the_bytes_floor(tmp_path):
    """then: x·W1 (W1 read only here), else: Identity. Either may run, so W1's 256 B may not be
    read: the bytes ≥ are x 64 + cond 1 + y 64 = 129 B, and the weights read per step are
    ≤ 256 B (an upper bound). On NOCACHE the floor is 129 B / 1e10 = 12.9 ns (the 2·MACs,
    ≤ 2·128 = 256 FLOP, bound nothing)."""
    path = _save(tmp_path / "m.onnx", [_if("y", [helper.make_node("MatMul", ["x", "W1"], ["t"])],
                                           [helper.make_node("Identity", ["x"], ["e"])])], [_w("W1")], cond=True)
    _, s = _serving(path, NOCACHE)
    assert _m(s, "forward.bytes") == (129, "lower")
    assert _m(s, "weights.read") == (256, "upper")
    assert _m(s, "bound.forward") == (pytest.approx(12.9e-9), "lower")
    assert s.data["weights"]["maybe_read_bytes"] == 256


def test_device_table_marks_each_cell_when_not_all_are_floors(tmp_path):
    """Without --device the per-device table: on every built-in device the 385 B of
    ``upper_model`` either fit on chip (≈, the compute side) or give the memory floor (≥); the
    JSON says which per device, and a row with an estimate prints ≈ in its cells."""
    report = analyze(upper_model(tmp_path / "m.onnx"), AnalyzeOptions(select=["serving"]))
    s = report.section("serving")
    kinds = s.data["per_device_bound"]
    table = next(t for t in s.tables if t.key == "devices")
    for row in table.rows:
        kind = kinds[row[0]]["forward"]
        assert kind in ("lower", "estimate")
        assert row[1].startswith("≈ " if kind == "estimate" else "≥ "), row


def test_compare_claims_no_ratio_for_an_estimated_step_time():
    """compare's decode rows compare the bounds as bounds (2 ms ≥ against 4 ms ≥: "B: 2× the time
    bound"); a side that is only an estimate (≈) proves nothing, so no ratio is claimed."""
    from model_analyze.plugins.compare import _verdict, serving_rows
    from model_analyze.report import DimInfo, Metric, ModelInfo, Report, Section

    def report(t: float, kind: str) -> Report:
        info = ModelInfo("m.onnx", "", 8, {"": 17}, 0, 0, [], [])
        ms = [Metric("bound.decode", "Decode step time", t, "s", bound=kind),
              Metric("bound.tokens_per_s", "Decode rate", 1 / t, "tokens/s",
                     bound="upper" if kind == "lower" else "estimate")]
        return Report(info, DimInfo(), [Section("serving", "Serving cost", metrics=ms)])

    rows = {r.key: r for r in serving_rows(report(2e-3, "lower"), report(4e-3, "lower"))}
    assert _verdict("bound", rows["bound"].a, rows["bound"].b, rows["bound"].a_bound, rows["bound"].b_bound) \
        == "B: 2× the time bound"
    rows = {r.key: r for r in serving_rows(report(2e-3, "lower"), report(4e-3, "estimate"))}
    assert rows["bound"].b_bound == "estimate" and rows["tps"].b_bound == "estimate"
    assert _verdict("bound", rows["bound"].a, rows["bound"].b, rows["bound"].a_bound, rows["bound"].b_bound) \
        == "can't tell: B's figure is an estimate"
