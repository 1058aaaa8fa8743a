"""A table row that holds an uncosted or bounded node says so (``≥``/``≤``), in every format.

The totals already carry their bound (``≈ 160 MACs``); this checks that the rows the total
is made of say *which* of them are bounds — the layer with the unknown op is "at least"
its FLOPs, the layer whose ``If`` counts its costlier branch "at most" — and that the
exact rows stay unmarked.
"""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_analyze.render import html as html_render
from model_analyze.render import json as json_render
from model_analyze.render import markdown as md_render
from model_analyze.render import text as text_render
from model_analyze.runner import AnalyzeOptions, analyze


def _model(path: str) -> None:
    """x[1,8] → layers.0 (MatMul 8×8, then an unknown op ``com.example::Mystery`` whose output
    shape is not declared) → layers.1 (MatMul 8×8 on that shapeless output) → layers.2
    (``If``: then MatMul 8×8, else Identity) → head (MatMul 8×4) → y[1,4]."""
    f = TensorProto.FLOAT

    def weight(name: str, rows: int, cols: int) -> onnx.TensorProto:
        return numpy_helper.from_array(np.zeros((rows, cols), np.float32), name)

    then_g = helper.make_graph([helper.make_node("MatMul", ["c", "W3"], ["t"], name="then_mm")], "then", [],
                               [helper.make_tensor_value_info("t", f, [1, 8])])
    else_g = helper.make_graph([helper.make_node("Identity", ["c"], ["e"], name="else_id")], "else", [],
                               [helper.make_tensor_value_info("e", f, [1, 8])])
    nodes = [
        helper.make_node("MatMul", ["x", "W0"], ["a"], name="/layers.0/fc/MatMul"),
        helper.make_node("Mystery", ["a"], ["b"], name="/layers.0/odd/Mystery", domain="com.example"),
        helper.make_node("MatMul", ["b", "W1"], ["c"], name="/layers.1/fc/MatMul"),
        helper.make_node("If", ["cond"], ["d"], name="/layers.2/gate/If", then_branch=then_g, else_branch=else_g),
        helper.make_node("MatMul", ["d", "W2"], ["y"], name="/head/MatMul"),
    ]
    inputs = [helper.make_tensor_value_info("x", f, [1, 8]),
              helper.make_tensor_value_info("cond", TensorProto.BOOL, [])]
    graph = helper.make_graph(
        nodes, "g", inputs,
        [helper.make_tensor_value_info("y", f, [1, 4])],
        [weight("W0", 8, 8), weight("W1", 8, 8), weight("W2", 8, 4), weight("W3", 8, 8)],
        value_info=[helper.make_tensor_value_info(n, f, [1, 8]) for n in ("a", "c", "d")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.example", 1)]), path)


# Hand derivation. A MatMul [1,8]×[8,8] is 64 MACs = 128 FLOPs; the head [1,8]×[8,4] is 32 MACs
# = 64 FLOPs. Mystery has no cost rule: 0 counted, a lower bound (HS001). layers.1's MatMul
# reads Mystery's output, whose shape nobody knows: 0 counted, a lower bound (HS002). The If
# counts its costlier branch (the MatMul, 128 FLOPs vs Identity's 0): an upper bound (HS003).
# Hence, row by row (FLOPs as printed, mark):
LAYERS = {"layers.0": "≥ 128", "layers.2": "≤ 128", "head": "64", "layers.1": "≥ 0", "(unscoped)": "0"}
OPS = {"MatMul": "≥ 192", "If": "≤ 128", "com.example::Mystery": "≥ 0"}  # MatMul: 128 + 0 + 64
TOP = {"/layers.0/fc/MatMul": "128", "/layers.2/gate/If": "≤ 128", "/head/MatMul": "64"}
KIND = {"≥": "lower", "≤": "upper"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("bounds") / "bounded.onnx"
    _model(str(path))
    return analyze(str(path), AnalyzeOptions())


def _kind(text: str) -> str | None:
    return KIND.get(text[:1])


def _text_rows(text: str, title: str) -> dict[str, list[str]]:
    """The rows of one text table, split at runs of 2+ spaces, keyed by their first cell."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith(title))
    out = {}
    for ln in lines[start + 3:]:
        if not ln.startswith("  ") or not ln.strip():
            break
        cells = re.split(r" {2,}", ln.strip())
        out[cells[0]] = cells
    return out


def test_rows_carry_their_bound_in_json(report):
    hs = report.section("hotspots")
    data = json.loads(json_render.render(report))
    tables = {t["key"]: t for s in data["sections"] if s["analyzer"] == "hotspots" for t in s["tables"]}
    for key, want in (("layers", LAYERS), ("ops", OPS), ("top_nodes", TOP)):
        t = tables[key]
        assert len(t["bounds"]) == len(t["rows"])
        flops = next(i for i, c in enumerate(t["columns"]) if c["key"] == "flops")
        assert t["columns"][flops]["bounded"] and not any(c["bounded"] for c in t["columns"] if c["key"] == "share")
        got = {row[0]: (row[flops], bound) for row, bound in zip(t["rows"], t["bounds"], strict=True)}
        assert got == {k: (v.lstrip("≥≤ "), _kind(v)) for k, v in want.items()}, key
    # the totals hold both kinds: neither a lower nor an upper bound
    assert hs.metric("macs").bound == "estimate" and hs.metric("flops").bound == "estimate"


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_marks_appear_exactly_on_bounded_rows(report, fmt):
    if fmt == "text":
        text = text_render.render(report)
        for title, want, col in (("By layer", LAYERS, 3), ("By op type", OPS, 2), ("Top 10 nodes", TOP, 3)):
            rows = _text_rows(text, title)
            assert {k: rows[k][col] for k in want} == want, title
        return
    out = md_render.render(report) if fmt == "markdown" else html_render.render(report)
    sep = r"\s*\|\s*" if fmt == "markdown" else r'</td><td class="r?">'
    for name, count, nodes, flops in (("layers.0", 1, 2, "≥ 128"), ("layers.1", 1, 1, "≥ 0"),
                                      ("layers.2", 1, 1, "≤ 128"), ("head", 1, 1, "64")):
        assert re.search(re.escape(name) + sep + f"{count}{sep}{nodes}{sep}" + re.escape(flops) + sep, out), name
    for name, nodes, flops in (("MatMul", 3, "≥ 192"), ("If", 1, "≤ 128"), ("com.example::Mystery", 1, "≥ 0")):
        assert re.search(re.escape(name) + sep + f"{nodes}{sep}" + re.escape(flops) + sep, out), name
    # exact rows are not marked: the head's 64 FLOPs and the MatMul node of layers.0
    assert not re.search(r"head" + sep + "1" + sep + "1" + sep + "[≥≤≈]", out)


def test_compare_keeps_each_side_bound(tmp_path, cli_run):
    """`compare` prints the FLOPs total of this model as the estimate it is (≈ 320 = 128 + 0 +
    0 + 128 + 64, both kinds of bound in it) and the peak activations as a lower bound (the
    Mystery output's size is unknown, left out of the sums); its JSON rows carry the kinds."""
    path = tmp_path / "bounded.onnx"
    _model(str(path))
    r = cli_run("compare", path, path, "--isolated")
    assert r.exit_code == 0, r.stderr
    assert re.search(r"FLOPs \(mask-aware\)\s+≈ 320\s+≈ 320\s+same", r.stdout)
    assert re.search(r"peak activations\s+≥ \S+\s+≥ \S+", r.stdout)
    assert re.search(r"parameters\s+224\s+224", r.stdout)  # exact: no mark
    rows = {row["label"]: row for row in json.loads(cli_run("compare", path, path, "--isolated",
                                                            "--format", "json").stdout)["rows"]}
    assert rows["FLOPs (mask-aware)"]["a_bound"] == "estimate" and rows["parameters"]["a_bound"] is None


def test_serving_unfused_bytes_say_when_a_size_is_unknown(report):
    """The serving phases table's "unfused bytes" is every tensor written and read (the
    hotspots traffic). Mystery's output ``b`` has no known size, so it moves 0 bytes in the
    sum: the figure is a lower bound, ``≥``. By hand (float32, 4 B per element): layers.0
    MatMul reads x 32 + W0 256, writes a 32 → 320; Mystery reads a → 32 (writes b: unknown,
    0); layers.1 MatMul reads b (unknown, 0) and W1, writes c 32 → 32 (a read with an unknown
    size counts nothing, not even W1); the If counts its then branch, a MatMul reading c 32 +
    W3 256 and writing 32 → 320; the head reads d 32 + W2 128, writes y 16 → 176.
    320 + 32 + 32 + 320 + 176 = 880. FLOP/B is 2·MACs (≈, both kinds of bound) over bytes:
    ≈ as well."""
    data = json.loads(json_render.render(report))
    serving = next(s for s in data["sections"] if s["analyzer"] == "serving")
    forward = serving["data"]["phases"]["forward"]
    assert (forward["unfused_bytes"], forward["unfused_bound"]) == (880, "lower")
    rows = _text_rows(text_render.render(report), "Forward pass (one sequence or item)")
    assert rows["forward"][5] == "≥ 880 B" and rows["forward"][6].startswith("≈ ")


def test_serving_unfused_bytes_unmarked_when_every_size_is_known():
    """samples/convnet.onnx: every tensor has a static size, so the unfused bytes are exact."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "samples" / "convnet.onnx"
    rep = analyze(str(path), AnalyzeOptions())
    serving = next(s for s in json.loads(json_render.render(rep))["sections"] if s["analyzer"] == "serving")
    assert serving["data"]["phases"]["forward"]["unfused_bound"] is None
    row = _text_rows(text_render.render(rep), "Forward pass (one sequence or item)")["forward"]
    assert not row[5].startswith(("≥", "≤", "≈")), row
