"""External data: never opened, hostile locations reported, missing files tolerated."""

from __future__ import annotations

import builtins
import io
import os
import shutil
import subprocess
import sys
import tracemalloc

import numpy as np
import onnx
import pytest
from onnx import TensorProto, external_data_helper, helper

import builders
from conftest import SHARED_MODELS, shared_model
from model_analyze.report import Severity
from model_analyze.runner import AnalyzeOptions, analyze


def _external_model(tmp_path, location: str = "weights.bin"):
    model = builders.tiny_convnet()
    external_data_helper.convert_model_to_external_data(model, all_tensors_to_one_file=True,
                                                        location="weights.bin", size_threshold=0)
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))  # writes weights.bin next to it
    if location != "weights.bin":
        m = onnx.load(str(path), load_external_data=False)
        for t in m.graph.initializer:
            for e in t.external_data:
                if e.key == "location":
                    e.value = location
        onnx.save(m, str(path))
    return path


class OpenSpy:
    """Records every path opened through builtins.open / io.open / os.open."""

    def __init__(self, monkeypatch, forbidden: str | None = None):
        self.paths: list[str] = []
        self.forbidden = forbidden
        real_open, real_io_open, real_os_open = builtins.open, io.open, os.open

        def check(path):
            p = os.fspath(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
            p = p.decode() if isinstance(p, bytes) else p
            self.paths.append(p)
            if self.forbidden and p.endswith(self.forbidden):
                raise AssertionError(f"opened forbidden file {p}")

        def spy_open(file, *a, **k):
            check(file)
            return real_open(file, *a, **k)

        def spy_io_open(file, *a, **k):
            check(file)
            return real_io_open(file, *a, **k)

        def spy_os_open(path, *a, **k):
            check(path)
            return real_os_open(path, *a, **k)

        monkeypatch.setattr(builtins, "open", spy_open)
        monkeypatch.setattr(io, "open", spy_io_open)
        monkeypatch.setattr(os, "open", spy_os_open)


def _codes(report, severity=None):
    return {f.code for f in report.all_findings() if severity is None or f.severity == severity}


def test_missing_external_file_is_a_warning_not_an_error(tmp_path, cli_run):
    path = _external_model(tmp_path)
    os.remove(tmp_path / "weights.bin")
    result = cli_run(path)
    assert result.exit_code == 0, result.stderr
    assert "L014" in result.stdout and "missing" in result.stdout


def test_present_external_file_is_never_opened(tmp_path, monkeypatch):
    path = _external_model(tmp_path)
    spy = OpenSpy(monkeypatch, forbidden="weights.bin")
    report = analyze(str(path))
    assert "L014" not in _codes(report)
    assert not any(p.endswith("weights.bin") for p in spy.paths)


@pytest.mark.parametrize("location, code", [
    ("/etc/passwd", "L011"),
    ("../../outside.bin", "L012"),
    ("sub/../../escape.bin", "L012"),
])
def test_hostile_locations_are_errors_and_never_opened(tmp_path, monkeypatch, location, code):
    path = _external_model(tmp_path, location)
    spy = OpenSpy(monkeypatch)
    report = analyze(str(path))
    assert code in _codes(report, Severity.ERROR)
    assert not any(location.split("/")[-1] in p for p in spy.paths)


def test_symlink_out_of_model_dir_is_an_error(tmp_path, monkeypatch, cli_run):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"\0" * 64)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    path = _external_model(model_dir)
    os.remove(model_dir / "weights.bin")
    os.symlink(outside / "secret.bin", model_dir / "weights.bin")
    spy = OpenSpy(monkeypatch)
    report = analyze(str(path))
    assert "L013" in _codes(report, Severity.ERROR)
    assert not any("secret.bin" in p or p.endswith("weights.bin") for p in spy.paths)
    monkeypatch.undo()
    result = cli_run(path)
    assert result.exit_code == 1  # an error finding fails the default --fail-on error


def test_absurd_declared_size_never_allocates(save_model):
    """A 10^12-element initializer (no data) and a Constant of 10^12 elements:
    metadata is read, nothing is materialised."""
    huge = TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[1_000_000, 1_000_000])
    huge_const = TensorProto(name="hc", data_type=TensorProto.INT64, dims=[10**12])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1_000_000])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("MatMul", ["x", "huge"], ["mm"]),
        helper.make_node("Constant", [], ["shape"], value=huge_const),
        helper.make_node("Reshape", ["mm", "shape"], ["y"]),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [huge]))
    path = save_model(model)
    tracemalloc.start()
    report = analyze(str(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert report.model.nodes == 3


@pytest.fixture(scope="module")
def mistral_with_sparse_data(tmp_path_factory):
    src = shared_model("mistral-7b.onnx")
    d = tmp_path_factory.mktemp("mistral")
    shutil.copy(src, d / "mistral-7b.onnx")
    subprocess.run([sys.executable, str(SHARED_MODELS / "make_sparse_data.py"), str(d / "mistral-7b.onnx"),
                    str(d)], check=True, capture_output=True)
    data = d / "mistral-7b.onnx.data"
    assert data.stat().st_size > 28 * 10**9  # the sparse 29 GB file is really there
    return d / "mistral-7b.onnx"


def test_mistral_data_file_never_opened(mistral_with_sparse_data, monkeypatch):
    spy = OpenSpy(monkeypatch, forbidden=".onnx.data")
    report = analyze(str(mistral_with_sparse_data), AnalyzeOptions(dims={"seq": 4096}))
    assert report.model.nodes == 5585
    assert not report.failed_sections(), [s.error for s in report.failed_sections()]
    assert not any(p.endswith(".onnx.data") for p in spy.paths)
    assert "L014" not in _codes(report)


def test_constant_value_respects_cap(tmp_path):
    from model_analyze.graph import build_graph
    from model_analyze.loader import load_model

    b = builders.GraphBuilder("g")
    x = b.input("x", TensorProto.FLOAT, [4])
    small = b.const(np.arange(4, dtype=np.int64), "small")
    big = b.const(np.zeros(100_000, np.float32), "big")
    b.op("Add", [x, b.op("Cast", [small], to=TensorProto.FLOAT)], name="y")
    b.op("ReduceSum", [big], name="z", keepdims=0)
    b.output("y")
    b.output("z")
    path = tmp_path / "m.onnx"
    onnx.save(b.model(), str(path))
    g = build_graph(load_model(path))
    assert g.constant_value("small").tolist() == [0, 1, 2, 3]
    assert g.constant_value("big") is None  # above the default cap
    assert g.constant_value("big", max_elements=200_000).shape == (100_000,)
