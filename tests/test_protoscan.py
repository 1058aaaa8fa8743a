"""Reading models without onnx's import and without their weights.

Oracles: onnx itself — ``onnx.load`` (every tensor's dtype/dims/name), ``numpy_helper``
(values), ``helper.get_attribute_value``, ``helper.VERSION_TABLE`` — and protobuf's own
parse of the original bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ROOT, SHARED_MODELS
from model_analyze import onnxproto, opsets, protoscan, tensors
from model_analyze.errors import ModelError
from model_analyze.graph import build_graph
from model_analyze.loader import load_model
from model_analyze.render.json import render as render_json
from model_analyze.runner import AnalyzeOptions, analyze
from model_analyze.safeio import iter_tensor_protos

MODELS = sorted([*(ROOT / "samples").glob("*.onnx"), *(ROOT / "samples" / "zoo").glob("*.onnx"),
                 *SHARED_MODELS.glob("*.onnx")])


def test_message_classes_are_onnx_classes_whichever_is_imported_first():
    code = ("import sys; from model_analyze import onnxproto as P; assert 'onnx' not in sys.modules; "
            "import onnx; assert P.ModelProto is onnx.ModelProto and P.TensorProto is onnx.TensorProto; "
            "assert P.IR_VERSION == onnx.IR_VERSION")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_attribute_values_equal_onnx_helper():
    seen = 0
    for path in MODELS:
        model = onnx.load(str(path), load_external_data=False)
        for node in model.graph.node:
            for a in node.attribute:
                assert repr(onnxproto.attribute_value(a)) == repr(helper.get_attribute_value(a)), (path, a.name)
                seen += 1
    assert seen > 1000


def _all_dtypes_tensors() -> list[onnx.TensorProto]:
    out = []
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64, np.float16, np.int8, np.int16, np.int32, np.int64, np.uint8,
                  np.uint16, np.uint32, np.uint64, np.bool_):
        arr = (rng.standard_normal((2, 3)) * 100).astype(dtype)
        raw = numpy_helper.from_array(arr, f"raw_{np.dtype(dtype).name}")
        typed = helper.make_tensor(f"typed_{np.dtype(dtype).name}", tensors.onnx_dtype(dtype), arr.shape,
                                   arr.flatten().tolist() if dtype != np.float16 else arr.flatten())
        scalar = numpy_helper.from_array(np.array(arr.flat[0], dtype=dtype), f"scalar_{np.dtype(dtype).name}")
        out += [raw, typed, scalar]
    out.append(helper.make_tensor("bf16", TensorProto.BFLOAT16, [2], [1.5, -2.0]))  # handed to numpy_helper
    out.append(helper.make_tensor("str", TensorProto.STRING, [2], [b"a", b"bc"]))
    return out


def test_tensor_values_equal_numpy_helper():
    for t in _all_dtypes_tensors():
        ours, theirs = tensors.to_array(t), numpy_helper.to_array(t)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, t.name
        np.testing.assert_array_equal(ours, theirs, err_msg=t.name)
        if t.data_type not in (TensorProto.BFLOAT16, TensorProto.STRING):
            assert tensors.numpy_dtype(t.data_type) == helper.tensor_dtype_to_np_dtype(t.data_type)
            assert tensors.onnx_dtype(ours.dtype) == helper.np_dtype_to_tensor_dtype(ours.dtype)


def test_opset_floors_are_onnx_version_table_rows():
    rows = {tuple(int(x) for x in r[0].split(".")[:2]): r[2:] for r in helper.VERSION_TABLE}
    for release, (onnx_, ml, training) in opsets.FLOORS.items():
        assert rows[release][:3] == (onnx_, ml, training), release
    known = opsets.known_opsets()
    for domain, version in opsets.floor().items():
        assert version <= known[domain]  # a floor never claims more than onnx knows


def _weights_model() -> onnx.ModelProto:
    """Large payloads in every encoding and place a model can hold them."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((128, 128)).astype(np.float32)
    big_int = rng.integers(-2**40, 2**40, size=5000, dtype=np.int64)
    inits = [
        numpy_helper.from_array(w, "w_raw"),
        helper.make_tensor("w_float_data", TensorProto.FLOAT, w.shape, w.flatten().tolist()),
        helper.make_tensor("i_int64_data", TensorProto.INT64, big_int.shape, big_int.tolist()),
        helper.make_tensor("names", TensorProto.STRING, [5000], [b"label%d" % i for i in range(5000)]),
        numpy_helper.from_array(np.arange(4, dtype=np.int64), "small"),  # stays inline
    ]
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(rng.standard_normal(9000).astype(np.float32), "sv"),
                                       numpy_helper.from_array(np.arange(9000, dtype=np.int64), "si"), [10000])
    then_g = helper.make_graph(
        [helper.make_node("Add", ["x", "w_then"], ["y_then"])], "then", [],
        [helper.make_tensor_value_info("y_then", TensorProto.FLOAT, [128, 128])],
        [numpy_helper.from_array(w * 2, "w_then")])
    else_g = helper.make_graph(
        [helper.make_node("Constant", [], ["c_else"], value=numpy_helper.from_array(w * 3, "c_else_t")),
         helper.make_node("Add", ["x", "c_else"], ["y_else"])], "else", [],
        [helper.make_tensor_value_info("y_else", TensorProto.FLOAT, [128, 128])])
    nodes = [
        helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(w + 1, "c_t")),
        helper.make_node("MatMul", ["x", "w_raw"], ["a"]),
        helper.make_node("Add", ["a", "w_float_data"], ["b"]),
        helper.make_node("Add", ["b", "c"], ["d"]),
        helper.make_node("ReduceSum", ["d"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    inits.append(numpy_helper.from_array(np.array(0, dtype=np.float32), "zero"))
    graph = helper.make_graph(nodes, "weights", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [128, 128])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [128, 128])], inits,
                              sparse_initializer=[sparse])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _scan(path: Path) -> tuple[onnx.ModelProto, protoscan.EmbeddedData]:
    fd = os.open(path, os.O_RDONLY)
    try:
        parsed = protoscan.parse_skeleton(fd, str(path))
        assert parsed is not None
        model, embedded = parsed
    finally:
        os.close(fd)
    return model, embedded or protoscan.EmbeddedData(str(path), protoscan.FileIdentity.of(os.stat(path)))


def _check_against_onnx(path: Path) -> int:
    """Every tensor of the skeleton has onnx's name/dtype/dims; read on demand, its
    value is numpy_helper's on the fully loaded model. Returns how many were stripped."""
    full = onnx.load(str(path), load_external_data=False)
    model, embedded = _scan(path)
    ours, theirs = list(iter_tensor_protos(model)), list(iter_tensor_protos(full))
    assert len(ours) == len(theirs)
    stripped = 0
    for a, b in zip(ours, theirs, strict=True):
        assert (a.name, a.data_type, list(a.dims), a.data_location) == (b.name, b.data_type, list(b.dims),
                                                                       b.data_location)
        if protoscan.embedded_range(a) is None:
            assert a == b
            continue
        stripped += 1
        assert not a.raw_data and not a.float_data and not a.int64_data and not a.string_data
        back = embedded.read(a, 1 << 30)
        assert back == b
        if b.data_location != TensorProto.EXTERNAL and b.data_type != TensorProto.STRING:
            np.testing.assert_array_equal(tensors.to_array(back), numpy_helper.to_array(b))
    return stripped


def test_skeleton_tensors_equal_onnx_parse_on_every_model():
    stripped = sum(_check_against_onnx(p) for p in MODELS)
    assert stripped > 50  # the zoo's TorchScript exports hold their weights in Constant nodes


def test_skeleton_of_every_encoding(tmp_path):
    path = tmp_path / "weights.onnx"
    onnx.save(_weights_model(), str(path))
    assert _check_against_onnx(path) == 9  # w_raw, float_data, int64_data, names, sparse ×2, c_t, w_then, c_else
    skeleton = protoscan.scan_fd(os.open(path, os.O_RDONLY))
    assert len(skeleton.data) < 3000 < skeleton.payload_bytes


def test_on_demand_read_refuses_a_changed_file(tmp_path):
    path = tmp_path / "weights.onnx"
    onnx.save(_weights_model(), str(path))
    model, embedded = _scan(path)
    t = model.graph.initializer[0]
    assert embedded.read(t, 1 << 20) is not None
    assert embedded.read(t, 100) is None  # over the cap: never read
    os.utime(path, ns=(1, 1))
    assert embedded.read(t, 1 << 20) is None


def test_malformed_bytes_fall_back_to_protobuf(tmp_path):
    data = _weights_model().SerializeToString()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(protoscan.ScanError):
        protoscan.scan_fd(os.open(cut, os.O_RDONLY))
    assert protoscan.parse_skeleton(os.open(cut, os.O_RDONLY), str(cut)) is None  # the loader parses it whole
    with pytest.raises(ModelError, match="not a valid ONNX protobuf"):
        load_model(cut)


def _report(model, **dims):
    rep = json.loads(render_json(analyze(model, AnalyzeOptions(dims=dims))))
    for key in ("model", "elapsed_s", "version"):
        rep.pop(key, None)
    for s in rep["sections"]:
        s.pop("elapsed_s", None)
    return rep


@pytest.mark.parametrize("name, dims", [("zoo/yolov8_tiny-torchscript-dynhw.onnx", {"d2": 320, "d3": 320}),
                                        ("zoo/r3d_tiny-torchscript.onnx", {})])
def test_report_from_skeleton_equals_report_from_full_parse(name, dims):
    path = ROOT / "samples" / name
    assert load_model(path).embedded is not None  # weights were left in the file
    assert _report(path, **dims) == _report(onnx.load(str(path)), **dims)


def test_graph_reads_stripped_constants_back(tmp_path):
    path = tmp_path / "weights.onnx"
    model = _weights_model()
    onnx.save(model, str(path))
    loaded = load_model(path)
    assert loaded.embedded is not None and loaded.proto.ByteSize() < 4000 < path.stat().st_size
    graph = build_graph(loaded)
    for name in ("w_raw", "w_float_data", "i_int64_data"):
        want = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == name))
        np.testing.assert_array_equal(graph.constant_value(name), want)
    assert graph.constant_value("w_raw", max_elements=100) is None  # over the cap: never read
    np.testing.assert_array_equal(graph.constant_value("c"), numpy_helper.to_array(model.graph.node[0].attribute[0].t))


def test_verify_runs_a_model_whose_weights_stayed_in_the_file(tmp_path):
    """verify executes the model: every payload is read back (onnxruntime is the oracle:
    with a zeroed weight no output would change and the conv's field would not be seen)."""
    from model_analyze.verify import verify_model

    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.standard_normal((256, 3, 5, 5)).astype(np.float32), "w")  # 76 KB: stripped
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[2, 2, 2, 2])], "conv",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256, 16, 16])], [w])
    path = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert load_model(path).embedded is not None
    result = verify_model(str(path), seeds=1, positions=3)
    assert result.sound and result.pairs and all(p.observed_matrix.any() for p in result.pairs)


def test_analyzing_a_conv_net_never_imports_onnx():
    """onnx's import alone (~0.7 s) costs more than analyzing a ResNet: a model whose
    opsets are known and that needs no onnx service (inference, reference evaluation,
    inlining) is read and analyzed with the message classes only."""
    code = ("import sys; from model_analyze.runner import analyze; "
            f"analyze({str(ROOT / 'samples' / 'zoo' / 'yolov8_tiny-torchscript-dynhw.onnx')!r}); "
            "assert 'onnx' not in sys.modules, 'onnx was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
