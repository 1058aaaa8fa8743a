"""ONNX's protobuf message classes, without importing the ``onnx`` package.

Why: ``import onnx`` runs ``onnx/__init__``, which imports ``onnx.helper`` and with it
``ml_dtypes``; registering ml_dtypes' numpy ufunc loops costs ~0.55 s of CPU with
numpy 2.4 (``benchmarks/perf.py`` measures ``import onnx`` at ~0.7 s in all) — more
than a whole analysis of a ResNet. Reading a model needs only the generated message
classes (``ModelProto``, ``TensorProto``…); onnx's functions (shape inference, the
reference evaluator, the inliner, op schemas) are imported by the few code paths that
use them, when they run.

We execute onnx's own generated ``onnx_ml_pb2.py`` under a private module name. The
default descriptor pool holds one copy of the file and protobuf hands out one class
per descriptor, so once ``onnx`` is imported its ``onnx.ModelProto`` *is* our
``ModelProto`` (``tests/test_protoscan.py`` checks it). If onnx is already imported,
or the file is not where onnx keeps it, or anything about it fails, we import onnx
and take its classes: slower, never different.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType
from typing import Any


def _generated() -> ModuleType:
    loaded = sys.modules.get("onnx")
    if loaded is not None and hasattr(loaded, "ModelProto"):
        return sys.modules.get("onnx.onnx_ml_pb2") or loaded
    try:
        spec = importlib.util.find_spec("onnx")  # locates the package without running it
        where = list(spec.submodule_search_locations or []) if spec else []
        for name in ("onnx_ml_pb2.py", "onnx_pb2.py"):
            path = os.path.join(where[0], name) if where else ""
            if path and os.path.isfile(path):
                sub = importlib.util.spec_from_file_location("model_analyze._onnx_pb2", path)
                if sub is None or sub.loader is None:
                    break
                module = importlib.util.module_from_spec(sub)
                sub.loader.exec_module(module)
                return module
    except Exception:  # any surprise: the slow, certain route below
        pass
    import onnx

    return onnx


_pb = _generated()

ModelProto: Any = _pb.ModelProto
GraphProto: Any = _pb.GraphProto
NodeProto: Any = _pb.NodeProto
TensorProto: Any = _pb.TensorProto
SparseTensorProto: Any = _pb.SparseTensorProto
AttributeProto: Any = _pb.AttributeProto
ValueInfoProto: Any = _pb.ValueInfoProto
TypeProto: Any = _pb.TypeProto
TensorShapeProto: Any = _pb.TensorShapeProto
FunctionProto: Any = _pb.FunctionProto
OperatorSetIdProto: Any = _pb.OperatorSetIdProto
StringStringEntryProto: Any = _pb.StringStringEntryProto
IR_VERSION: int = int(_pb.IR_VERSION)
"""The newest IR version the installed onnx's schema (onnx-ml.proto) declares."""

A = AttributeProto
_SCALAR = {A.FLOAT: "f", A.INT: "i", A.STRING: "s", A.TENSOR: "t", A.SPARSE_TENSOR: "sparse_tensor",
           A.GRAPH: "g", A.TYPE_PROTO: "tp"}
_LIST = {A.FLOATS: "floats", A.INTS: "ints", A.STRINGS: "strings", A.TENSORS: "tensors",
         A.SPARSE_TENSORS: "sparse_tensors", A.GRAPHS: "graphs", A.TYPE_PROTOS: "type_protos"}


def attribute_value(attr: Any) -> Any:
    """The value of an ``AttributeProto``, as ``onnx.helper.get_attribute_value`` gives it
    (scalars, lists, messages; ``STRING`` as bytes). Raises ``ValueError`` for a
    reference attribute or an unknown type."""
    if attr.ref_attr_name:
        raise ValueError(f"attribute {attr.name!r} refers to {attr.ref_attr_name!r}")
    kind = attr.type
    if kind in _SCALAR:
        return getattr(attr, _SCALAR[kind])
    if kind in _LIST:
        return list(getattr(attr, _LIST[kind]))
    if kind == A.UNDEFINED:
        return None
    raise ValueError(f"attribute {attr.name!r} has unknown type {kind}")


def onnx_module() -> ModuleType:
    """The ``onnx`` package, imported on first use (its import is the expensive part)."""
    import onnx

    return onnx
