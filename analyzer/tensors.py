"""TensorProto payloads as numpy arrays, and dtype codes, without importing onnx.

Why: ``onnx.numpy_helper`` needs ``import onnx`` (~0.7 s, see :mod:`.onnxproto`), and
shapes read small constants often (Reshape targets, Slice bounds, Resize scales).
The dtypes those use — floats, ints, bools — are decoded here exactly as the spec
stores them: ``raw_data`` as little-endian bytes, otherwise the typed field the spec
assigns to the dtype (``int32_data`` carries int8/16, uint8/16, bool and float16 bit
patterns; ``uint64_data`` uint32/64). Any other dtype (bfloat16, float8, int4,
strings, complex) is handed to ``onnx.numpy_helper``, imported then.
``tests/test_protoscan.py`` checks every dtype against ``numpy_helper.to_array``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .onnxproto import TensorProto as T

if TYPE_CHECKING:
    import numpy as np

# dtype code → (numpy type string, little-endian; the typed field the spec stores it in)
_LAYOUT: dict[int, tuple[str, str]] = {
    T.FLOAT: ("<f4", "float_data"), T.DOUBLE: ("<f8", "double_data"),
    T.FLOAT16: ("<f2", "int32_data"),
    T.INT8: ("i1", "int32_data"), T.INT16: ("<i2", "int32_data"), T.INT32: ("<i4", "int32_data"),
    T.INT64: ("<i8", "int64_data"),
    T.UINT8: ("u1", "int32_data"), T.UINT16: ("<u2", "int32_data"),
    T.UINT32: ("<u4", "uint64_data"), T.UINT64: ("<u8", "uint64_data"),
    T.BOOL: ("?", "int32_data"),
}
_FROM_NUMPY = {"float32": T.FLOAT, "float64": T.DOUBLE, "float16": T.FLOAT16, "int8": T.INT8,
               "int16": T.INT16, "int32": T.INT32, "int64": T.INT64, "uint8": T.UINT8, "uint16": T.UINT16,
               "uint32": T.UINT32, "uint64": T.UINT64, "bool": T.BOOL}


_BITS = {  # storage bits per element
    T.FLOAT: 32, T.UINT8: 8, T.INT8: 8, T.UINT16: 16, T.INT16: 16, T.INT32: 32,
    T.INT64: 64, T.STRING: 0, T.BOOL: 8, T.FLOAT16: 16, T.DOUBLE: 64, T.UINT32: 32,
    T.UINT64: 64, T.COMPLEX64: 64, T.COMPLEX128: 128, T.BFLOAT16: 16,
}
for _name, _bits in (("FLOAT8E4M3FN", 8), ("FLOAT8E4M3FNUZ", 8), ("FLOAT8E5M2", 8),
                     ("FLOAT8E5M2FNUZ", 8), ("UINT4", 4), ("INT4", 4), ("FLOAT4E2M1", 4),
                     ("FLOAT8E8M0", 8), ("UINT2", 2), ("INT2", 2)):
    if hasattr(T, _name):
        _BITS[getattr(T, _name)] = _bits


def dtype_bits(dtype: int | None) -> int | None:
    """Storage bits per element (4 for int4), None when unknown."""
    return _BITS.get(dtype) if dtype is not None else None


def numpy_dtype(code: int) -> Any:
    """The numpy dtype of an ONNX dtype code (``onnx.helper.tensor_dtype_to_np_dtype``)."""
    import numpy as np

    layout = _LAYOUT.get(code)
    if layout is not None:
        return np.dtype(layout[0]).newbyteorder("=")
    from onnx import helper

    return helper.tensor_dtype_to_np_dtype(code)


def onnx_dtype(dtype: Any) -> int:
    """The ONNX dtype code of a numpy dtype (``onnx.helper.np_dtype_to_tensor_dtype``)."""
    import numpy as np

    code = _FROM_NUMPY.get(np.dtype(dtype).name)
    if code is not None:
        return code
    from onnx import helper

    return int(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


def to_array(t: Any) -> np.ndarray:
    """The value of an inline ``TensorProto`` (``onnx.numpy_helper.to_array``).

    Raises ``ValueError`` when the payload does not match the dims; external data
    is never read here (the caller checks ``data_location`` first)."""
    import numpy as np

    layout = _LAYOUT.get(t.data_type)
    if layout is None or t.HasField("segment"):
        from onnx import numpy_helper

        return numpy_helper.to_array(t)
    code, field = layout
    dims = tuple(int(d) for d in t.dims)
    dtype = np.dtype(code)
    if t.HasField("raw_data"):
        arr = np.frombuffer(t.raw_data, dtype=dtype)
    elif t.data_type == T.FLOAT16:
        arr = np.asarray(t.int32_data, dtype=np.uint16).view(np.float16)
    else:
        arr = np.asarray(getattr(t, field), dtype=dtype)
    numel = 1
    for d in dims:
        numel *= d
    if arr.size != numel:
        raise ValueError(f"tensor {t.name!r}: {arr.size} values for dims {list(dims)}")
    return arr.reshape(dims).astype(dtype.newbyteorder("="), copy=False)


def from_array(arr: Any, name: str = "") -> Any:
    """A TensorProto holding ``arr`` as little-endian ``raw_data``
    (``onnx.numpy_helper.from_array`` for the dtypes above)."""
    import numpy as np

    arr = np.asarray(arr)
    code = _FROM_NUMPY.get(arr.dtype.name)
    if code is None:
        from onnx import numpy_helper

        return numpy_helper.from_array(arr, name)
    t = T(name=name, dims=arr.shape, data_type=code)
    t.raw_data = np.ascontiguousarray(arr, dtype=np.dtype(_LAYOUT[code][0])).tobytes()
    return t
