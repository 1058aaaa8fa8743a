"""Rows: a section's per-node/per-tensor JSON rows made when read (scaling, issue 18)."""

from __future__ import annotations

import copy
import json
import pickle

from conftest import SAMPLES
from model_analyze.report import Rows
from model_analyze.runner import analyze


def test_rows_read_copy_pickle_and_json_as_the_list():
    items = [("a", 2), ("b", 3)]
    rows = Rows(items, lambda t: {"name": t[0], "double": 2 * t[1]})
    expected = [{"name": "a", "double": 4}, {"name": "b", "double": 6}]
    assert len(rows) == 2 and rows[1] == expected[1] and list(rows) == expected and rows == expected
    assert copy.deepcopy(rows) == expected
    assert pickle.loads(pickle.dumps(rows)) == expected
    assert type(pickle.loads(pickle.dumps(rows))) is list


def test_hotspot_rows_in_the_json_report():
    """The JSON report writes the rows as lists of objects; one row per costed node, each
    naming a node of the model (the graph is the oracle for names and op types)."""
    report = analyze(str(SAMPLES / "convnet.onnx"))
    data = json.loads(json.dumps(report.to_dict()))
    hs = next(s for s in data["sections"] if s["analyzer"] == "hotspots")["data"]
    import onnx

    model = onnx.load(str(SAMPLES / "convnet.onnx"), load_external_data=False)
    ops = {n.name: n.op_type for n in model.graph.node}
    assert hs["nodes"] and all(ops[r["name"]] == r["op"] for r in hs["nodes"])
    assert [t["bytes"] for t in hs["memory"]["tensors"]] == sorted((t["bytes"] for t in hs["memory"]["tensors"]),
                                                                   reverse=True)
