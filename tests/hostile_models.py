"""Generators of the hostile inputs of issue 18 (each a few KB), shared by the
regression tests, the open-tracing test and the fuzzer's seed corpus.

Every generator returns a ``ModelProto`` (or writes a file tree) built with
``onnx.helper`` only; nothing here is a fixture file, so each reproducer says in
code what makes it hostile.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 18)]


def set_external(t: onnx.TensorProto, location: str, offset: int = 0, length: int | None = None) -> None:
    """Mark ``t`` as stored at ``location`` (its inline bytes dropped)."""
    t.ClearField("raw_data")
    for f in ("float_data", "int64_data", "int32_data", "double_data"):
        t.ClearField(f)
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    entries = {"location": location, "offset": str(offset)}
    if length is not None:
        entries["length"] = str(length)
    for k, v in entries.items():
        e = t.external_data.add()
        e.key, e.value = k, v


def external_everywhere(location: str, with_length: bool = True) -> onnx.ModelProto:
    """Every kind of tensor that can live in a file, all at ``location``:
    an initializer, a ``Constant``'s value, a ``ConstantOfShape``'s value (its
    shape is a constant, so the shape rule and constant folding meet it) and a
    sparse initializer's values. ``y = x + w + c + cast(fill) + sparse``; the data
    file (8 bytes: two float32 ones, read as int64 for the fill) makes it runnable."""
    length = 8 if with_length else None
    w = numpy_helper.from_array(np.ones(2, np.float32), "w")
    set_external(w, location, 0, length)
    c = numpy_helper.from_array(np.ones(2, np.float32), "c_value")
    set_external(c, location, 0, length)
    fill = numpy_helper.from_array(np.ones(1, np.int64), "fill")
    set_external(fill, location, 0, length)
    shape = numpy_helper.from_array(np.array([2], np.int64), "shape")
    values = numpy_helper.from_array(np.ones(1, np.float32), "sp")
    set_external(values, location, 0, 4 if with_length else None)
    sparse = helper.make_sparse_tensor(values, numpy_helper.from_array(np.array([1], np.int64), "sp_idx"), [2])
    nodes = [
        helper.make_node("Constant", [], ["c"], value=c, name="const"),
        helper.make_node("ConstantOfShape", ["shape"], ["filled"], value=fill, name="fill"),
        helper.make_node("Cast", ["filled"], ["filled_f"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("Add", ["x", "w"], ["a1"], name="add_w"),
        helper.make_node("Add", ["a1", "c"], ["a2"], name="add_c"),
        helper.make_node("Add", ["a2", "filled_f"], ["a3"], name="add_fill"),
        helper.make_node("Add", ["a3", "sp"], ["y"], name="add_sparse"),
    ]
    graph = helper.make_graph(nodes, "external_everywhere",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], [w, shape],
                              sparse_initializer=[sparse])
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 10
    return model


DATA = np.ones(2, np.float32).tobytes()
"""The 8 bytes ``external_everywhere`` reads (also the secret of the outside file)."""


def write_external_cases(root: Path) -> dict[str, Path]:
    """The external-data reproducers of issue 18 as model directories under
    ``root/cases``, with ``root/outside/secret.bin`` the file none may open.
    Returns case → model path (run with the current directory = ``root/outside``)."""
    outside = root / "outside"
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.bin").write_bytes(DATA)
    cases: dict[str, Path] = {}

    def case(name: str, location: str) -> Path:
        d = root / "cases" / name
        d.mkdir(parents=True, exist_ok=True)
        path = d / "model.onnx"
        path.write_bytes(external_everywhere(location).SerializeToString())
        cases[name] = path
        return d

    case("cwd-relative", "secret.bin")  # only ./secret.bin of the current directory exists
    d = case("symlinked-parent", "sub/secret.bin")
    os.symlink("../../../outside", d / "sub")
    case("absolute", str(outside / "secret.bin"))
    case("dotdot", "../../../outside/secret.bin")
    d = case("symlink-file", "data.bin")
    os.symlink(outside / "secret.bin", d / "data.bin")
    d = case("fifo", "data.bin")
    os.mkfifo(d / "data.bin")
    d = case("directory", "data.bin")
    (d / "data.bin").mkdir()
    case("dev-zero", "/dev/zero")
    d = case("dev-zero-link", "zero.bin")
    os.symlink("/dev/zero", d / "zero.bin")
    d = case("benign", "data.bin")  # the positive control: verify reads this one
    (d / "data.bin").write_bytes(DATA)
    d = root / "cases" / "model-fifo"
    d.mkdir(parents=True)
    os.mkfifo(d / "model.onnx")
    cases["model-fifo"] = d / "model.onnx"
    d = root / "cases" / "model-dev-zero"
    d.mkdir(parents=True)
    os.symlink("/dev/zero", d / "model.onnx")
    cases["model-dev-zero"] = d / "model.onnx"
    return cases


def forged_names() -> onnx.ModelProto:
    """Names carrying a newline, NUL, ANSI and bidi controls that spell out a
    forged finding line in text and in Markdown."""
    evil = "x\n  error   E999 forged finding\n- **error** `E999` forged\x00\x1b[2J\u202e"
    nodes = [helper.make_node("Relu", [evil], ["r" + evil], name="relu" + evil),
             helper.make_node("Evil\nerror   E999 op", ["r" + evil], ["y"], name="custom" + evil,
                              domain="evil\n  error   E999 domain")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(evil, TensorProto.FLOAT, [1, "s\nE999"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[*OPSET, helper.make_opsetid("evil\n  error   E999 domain", 1)],
                              producer_name="evil\n  error   E999 producer")
    model.ir_version = 10
    return model


def hann_window_declared_small(size: int = 200_000_000) -> onnx.ModelProto:
    """``HannWindow(size)`` whose output a ``value_info`` claims is ``[4]``."""
    n = numpy_helper.from_array(np.array(size, np.int64), "size")
    nodes = [helper.make_node("HannWindow", ["size"], ["win"]), helper.make_node("Add", ["x", "win"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [n],
                              value_info=[helper.make_tensor_value_info("win", TensorProto.FLOAT, [4])])
    return helper.make_model(graph, opset_imports=OPSET)


def functions_calling_twice(depth: int = 23) -> onnx.ModelProto:
    """``depth`` model-local functions, each calling the next twice: inlining
    would make 2^(depth-1) nodes."""
    opsets = [*OPSET, helper.make_opsetid("local", 1)]
    fns = []
    for i in range(depth):
        if i + 1 < depth:
            body = [helper.make_node(f"f{i + 1}", ["x"], ["t"], domain="local"),
                    helper.make_node(f"f{i + 1}", ["t"], ["y"], domain="local")]
        else:
            body = [helper.make_node("Relu", ["x"], ["y"])]
        fns.append(helper.make_function("local", f"f{i}", ["x"], ["y"], body, opsets))
    graph = helper.make_graph([helper.make_node("f0", ["x"], ["y"], domain="local")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    return helper.make_model(graph, functions=fns, opset_imports=opsets)


def function_chain(depth: int = 3000) -> onnx.ModelProto:
    """``depth`` model-local functions, each calling the next once."""
    opsets = [*OPSET, helper.make_opsetid("local", 1)]
    fns = []
    for i in range(depth):
        body = [helper.make_node(f"f{i + 1}", ["x"], ["y"], domain="local") if i + 1 < depth
                else helper.make_node("Relu", ["x"], ["y"])]
        fns.append(helper.make_function("local", f"f{i}", ["x"], ["y"], body, opsets))
    graph = helper.make_graph([helper.make_node("f0", ["x"], ["y"], domain="local")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    return helper.make_model(graph, functions=fns, opset_imports=opsets)


def sum_of_initializers(n: int = 10_000, location: str | None = None) -> onnx.ModelProto:
    """``Sum`` over ``n`` initializers (external at ``location`` when given)."""
    inits = []
    for i in range(n):
        t = numpy_helper.from_array(np.full(4, i, np.float32), f"w{i}")
        if location is not None:
            set_external(t, location, 16 * i, 16)
        inits.append(t)
    graph = helper.make_graph([helper.make_node("Sum", ["x"] + [t.name for t in inits], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], inits)
    return helper.make_model(graph, opset_imports=OPSET)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    def varint(v: int) -> bytes:
        out = bytearray()
        while True:
            out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
            v >>= 7
            if not v:
                return bytes(out)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def nested_ifs(depth: int) -> bytes:
    """A model whose ``If`` bodies nest ``depth`` deep, serialised by hand: past
    protobuf's depth limit not even ``onnx.helper`` can build it in memory."""
    out = helper.make_tensor_value_info("o", TensorProto.FLOAT, [1]).SerializeToString()
    leaf = helper.make_graph([helper.make_node("Constant", [], ["o"], value_float=1.0)], "leaf", [],
                             [helper.make_tensor_value_info("o", TensorProto.FLOAT, [1])]).SerializeToString()
    graph = leaf
    for _ in range(depth):
        attr = _field(1, b"then_branch") + _field(6, graph) + bytes([0xA0, 0x01, 5])  # type = GRAPH
        else_attr = _field(1, b"else_branch") + _field(6, leaf) + bytes([0xA0, 0x01, 5])
        node = _field(1, b"c") + _field(2, b"o") + _field(4, b"If") + _field(5, attr) + _field(5, else_attr)
        graph = _field(1, node) + _field(2, b"g") + _field(12, out)
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, []).SerializeToString()
    graph += _field(11, cond)
    header = helper.make_model(helper.make_graph([], "x", [], []), opset_imports=OPSET)
    header.ClearField("graph")
    return header.SerializeToString() + _field(7, graph)


def loop_trips(trips: int) -> onnx.ModelProto:
    """A ``Loop`` whose constant trip count is ``trips`` (body: y = y + 1)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["y_in", "one"], ["y_out"]), helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("y_in", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("y_out", TensorProto.FLOAT, [2])])
    inits = [numpy_helper.from_array(np.array(trips, np.int64), "M"),
             numpy_helper.from_array(np.array(True), "cond"),
             numpy_helper.from_array(np.ones(2, np.float32), "one")]
    graph = helper.make_graph([helper.make_node("Loop", ["M", "cond", "x"], ["y"], body=body)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], inits)
    return helper.make_model(graph, opset_imports=OPSET)


def corrupt_utf8(model: onnx.ModelProto, field: str) -> bytes:
    """``model`` serialised with the marker string ``field`` replaced by bytes
    that are not UTF-8 (protobuf does not check proto2 strings)."""
    data = model.SerializeToString()
    marker = field.encode()
    assert marker in data, field
    return data.replace(marker, b"\xff\xfe" + marker[2:])


def utf8_victim() -> onnx.ModelProto:
    """A model whose producer, dim_param, node domain/op_type and external
    location are marker strings (``PRODUCERX``, ``DIMPARAMX``, ``DOMAINXX``,
    ``OPTYPEXX``, ``LOCATIONX``) for :func:`corrupt_utf8`."""
    w = numpy_helper.from_array(np.ones(2, np.float32), "w")
    set_external(w, "LOCATIONX", 0, 8)
    nodes = [helper.make_node("Add", ["x", "w"], ["a"]),
             helper.make_node("OPTYPEXX", ["a"], ["y"], domain="DOMAINXX")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["DIMPARAMX"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    return helper.make_model(graph, opset_imports=[*OPSET, helper.make_opsetid("DOMAINXX", 1)],
                             producer_name="PRODUCERX")


def loop_forever() -> onnx.ModelProto:
    """A ``Loop`` with no trip count whose condition stays true: it runs until stopped."""
    model = loop_trips(1)
    loop = model.graph.node[0]
    loop.input[0] = ""
    del model.graph.initializer[0]
    return model
