"""Bad or hostile input: exit 2 and one clear line on stderr naming the file."""

from __future__ import annotations

import random

import onnx
import pytest
from onnx import TensorProto, helper

import builders


def _one_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _dangling() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    node = helper.make_node("Add", ["x", "ghost"], ["y"], name="add_ghost")
    return helper.make_model(helper.make_graph([node], "g", [x], [y]))


def _cycle() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])
    n1 = helper.make_node("Add", ["x", "b"], ["a"], name="first")
    n2 = helper.make_node("Relu", ["a"], ["b"], name="second")
    return helper.make_model(helper.make_graph([n1, n2], "g", [x], [y]))


def _future_opset() -> onnx.ModelProto:
    model = builders.tiny_convnet()
    model.opset_import[0].version = onnx.defs.onnx_opset_version() + 5
    return model


CASES = {
    "nonexistent": (lambda p: p / "nope.onnx", "no such file"),
    "directory": (lambda p: p, "no *.onnx file in this directory"),
    "empty": (lambda p: _write(p / "empty.onnx", b""), "file is empty"),
    "truncated": (lambda p: _write(p / "trunc.onnx", builders.tiny_convnet().SerializeToString()[:3000]),
                  "truncated or corrupt"),
    "random": (lambda p: _write(p / "random.onnx", random.Random(0).randbytes(4096)), "not a valid ONNX"),
    "json": (lambda p: _write(p / "model.json", b'{"graph": {"node": []}}\n'), "JSON file"),
    "text": (lambda p: _write(p / "README.onnx", b"this is not a model\nat all\n"), "text file"),
    "dangling": (lambda p: _write(p / "dangling.onnx", _dangling().SerializeToString()),
                 "reads tensor 'ghost' that nothing produces"),
    "cycle": (lambda p: _write(p / "cycle.onnx", _cycle().SerializeToString()), "graph has a cycle"),
    "future-opset": (lambda p: _write(p / "future.onnx", _future_opset().SerializeToString()),
                     "newer than the installed onnx"),
}


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exit_2_one_line(case, tmp_path, cli_run):
    make, problem = CASES[case]
    path = make(tmp_path)
    result = cli_run(path)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    line = _one_line(result)
    assert str(path) in line
    assert problem in line
    assert result.stdout == ""


def test_truncated_anywhere_never_crashes(tmp_path, cli_run):
    """Cutting a model at many offsets gives exit 2 (or, if the cut lands on a
    field boundary and the rest is still a valid graph, a normal analysis)."""
    data = builders.transformer(layers=1).SerializeToString()
    for cut in range(1, len(data), max(1, len(data) // 40)):
        path = _write(tmp_path / f"cut{cut}.onnx", data[:cut])
        result = cli_run(path)
        assert result.exit_code in (0, 1, 2), result.stderr
        if result.exit_code == 2:
            _one_line(result)


def test_unknown_dim_lists_model_dims(cli_run):
    from conftest import SAMPLES

    result = cli_run(SAMPLES / "tiny_transformer.onnx", "--dim", "sequence=8")
    assert result.exit_code == 2
    line = _one_line(result)
    assert "no dim 'sequence'" in line and "its dims: seq" in line


def test_input_shape_errors(cli_run):
    from conftest import SAMPLES

    r = cli_run(SAMPLES / "convnet.onnx", "--input-shape", "pixels=1,3,8,8")
    assert r.exit_code == 2 and "no input 'pixels'" in _one_line(r) and "image" in r.stderr
    r = cli_run(SAMPLES / "convnet.onnx", "--input-shape", "image=1,3,8")
    assert r.exit_code == 2 and "rank 4" in _one_line(r)


def test_unknown_format_and_analyzer(cli_run):
    from conftest import SAMPLES

    r = cli_run(SAMPLES / "convnet.onnx", "--format", "yaml")
    assert r.exit_code == 2 and "unknown format 'yaml'" in _one_line(r)
    r = cli_run(SAMPLES / "convnet.onnx", "--select", "nonsense")
    assert r.exit_code == 2 and "no analyzer or finding code 'nonsense'" in _one_line(r)


def test_unused_domain_import_newer_than_onnx_is_not_refused(tmp_path):
    """onnxruntime's transformer optimizer imports ``ai.onnx.training`` 1, which
    onnx no longer ships schemas for, and uses no op of it: the model is fine.
    A node that does run in such a domain still makes the model unreadable."""
    from model_analyze.errors import ModelError
    from model_analyze.loader import load_model

    model = builders.tiny_convnet()
    model.opset_import.append(onnx.helper.make_opsetid("ai.onnx.training", 99))
    assert load_model(str(_write(tmp_path / "unused.onnx", model.SerializeToString())))
    model.graph.node[0].domain = "ai.onnx.training"
    with pytest.raises(ModelError, match="newer than the installed onnx"):
        load_model(str(_write(tmp_path / "used.onnx", model.SerializeToString())))
