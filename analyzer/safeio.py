"""The one guarded reader for every byte of a model that is not the graph.

Why one function: external data is named by the model itself (``location``,
``offset``, ``length``), so every read of it is a read of a path an attacker
chose. ``onnx.numpy_helper.to_array`` resolves a location against the *current
directory* when given no base (``location = "secret.bin"`` opened ``./secret.bin``
of wherever the user stood), and ``os.path.realpath`` containment plus
``O_NOFOLLOW`` on the last component still follows a symlinked *parent*
directory. Here the model's directory is opened once and each component of a
location is opened relative to the previous one with ``O_NOFOLLOW``, so no
symlink anywhere in the path is followed and nothing outside the directory can
be reached; the file must be a regular file (a FIFO would block, ``/dev/zero``
never ends), and the bytes read are bounded by the file's real size and a
budget, never by a declared ``length``.

* :class:`ModelDir` — the directory, opened once: :meth:`~ModelDir.stat` (inspect
  without opening: what the analyzer does), :meth:`~ModelDir.read` (one tensor's
  bytes, for ``verify`` and any on-demand loader).
* :func:`tensor_array` — the only place a ``TensorProto`` becomes a numpy array;
  external tensors are read through a :class:`ModelDir` or not at all.
* :func:`inline_external_data` — every external tensor of a model read into it
  (``verify``), under one byte budget.
* :func:`iter_tensor_protos`, :func:`has_external` — every tensor of a model or
  node, iteratively (attributes, sparse parts, subgraphs, functions).

Everything unsafe raises :class:`UnsafeData` with the finding code and one line.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import onnxproto as P
from .budgets import BUDGETS

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from .protoscan import EmbeddedData

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)
SAFE = bool(_O_NOFOLLOW and _O_DIRECTORY and os.open in os.supports_dir_fd)
"""This platform can walk a path without following symlinks (Linux, macOS)."""

_WINDOWS_ABS = re.compile(r"^[A-Za-z]:|^[\\/]{2}")
_DECODED = re.compile(r"\\x[0-9a-fA-F]{2}")


class UnsafeData(Exception):
    """External data that must not (or cannot) be read: ``code`` is the finding code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def file_kind(mode: int) -> str:
    """``a FIFO``, ``a directory``… for a one-line message."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return name
    return "not a regular file"


def split_location(location: str) -> list[str]:
    """The components of a location relative to the model directory.

    Raises :class:`UnsafeData` for an empty location or one with NUL (L010), an
    absolute one (L011) or one that climbs out with ``..`` (L012). ``a/../b``
    inside the directory is normalised lexically; since no component is then
    followed as a symlink, the lexical and the real path are the same.
    """
    if not location:
        raise UnsafeData("L010", "names no location")
    if "\x00" in location:
        raise UnsafeData("L010", "location contains NUL")
    if _DECODED.search(location):  # the loader's escape of bytes that were not UTF-8
        raise UnsafeData("L010", f"location {location!r} is not valid UTF-8 (shown with \\xNN escapes)")
    if location.startswith(("/", "\\")) or _WINDOWS_ABS.match(location):
        raise UnsafeData("L011", f"location {location!r} is an absolute path; refusing to look outside the model "
                                 "directory")
    parts: list[str] = []
    for part in location.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafeData("L012", f"location {location!r} escapes the model directory")
            parts.pop()
            continue
        parts.append(part)
    if not parts:
        raise UnsafeData("L010", f"location {location!r} names the model directory itself")
    return parts


class ModelDir:
    """A model's directory, opened once; locations resolve inside it, never through a symlink.

    Use as a context manager (it holds a directory descriptor)::

        with ModelDir(base) as data:
            info = data.stat("weights.bin")          # never opens the file
            raw = data.read("weights.bin", 0, 4096)  # one bounded read
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self._fd: int | None = None

    def __enter__(self) -> ModelDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _root(self) -> int:
        if not SAFE:
            raise UnsafeData("L013", "this platform cannot open a path without following symlinks; "
                                     "external data is not read")
        if self._fd is None:
            try:
                self._fd = os.open(self.base, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
            except OSError as exc:
                raise UnsafeData("L014", f"model directory {self.base!r} cannot be opened: "
                                         f"{exc.strerror or exc}") from None
        return self._fd

    def _parent(self, location: str) -> tuple[int, str]:
        """Descriptor of the directory holding the last component (caller closes
        it unless it is the root), and that component's name."""
        parts = split_location(location)
        fd = self._root()
        for k, part in enumerate(parts[:-1]):
            try:
                nxt = os.open(part, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=fd)
            except OSError as exc:
                if fd != self._root():
                    os.close(fd)
                raise _walk_error(location, "/".join(parts[:k + 1]), exc) from None
            if fd != self._root():
                os.close(fd)
            fd = nxt
        return fd, parts[-1]

    def stat(self, location: str) -> os.stat_result:
        """``lstat`` of a location, without opening it. Raises :class:`UnsafeData`
        for a symlink (L013), a missing file (L014) or anything but a regular file (L016)."""
        fd, name = self._parent(location)
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            raise _walk_error(location, location, exc) from None
        finally:
            if fd != self._root():
                os.close(fd)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeData("L013", f"location {location!r} is a symlink; symlinks are never followed")
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeData("L016", f"location {location!r} is {file_kind(st.st_mode)}, not a regular file")
        return st

    def open(self, location: str) -> tuple[int, int]:
        """A descriptor of the regular file at ``location`` and its real size.

        Opened with ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO swapped in after a check
        cannot block the open) and checked with ``fstat`` on the descriptor itself."""
        fd, name = self._parent(location)
        try:
            out = os.open(name, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_NOCTTY | _O_CLOEXEC, dir_fd=fd)
        except OSError as exc:
            raise _walk_error(location, location, exc) from None
        finally:
            if fd != self._root():
                os.close(fd)
        st = os.fstat(out)
        if not stat.S_ISREG(st.st_mode):
            os.close(out)
            raise UnsafeData("L016", f"location {location!r} is {file_kind(st.st_mode)}, not a regular file")
        return out, st.st_size

    def read(self, location: str, offset: int = 0, length: int | None = None,
             budget: int = BUDGETS.external_bytes) -> bytes:
        """``length`` bytes at ``offset`` of ``location`` (to the end when ``length``
        is None). The range is checked against the file's real size and ``budget``
        before anything is read."""
        if offset < 0 or (length is not None and length < 0):
            raise UnsafeData("L015", f"location {location!r}: negative offset or length")
        fd, size = self.open(location)
        try:
            if offset > size:
                raise UnsafeData("L017", f"location {location!r}: offset {offset:,} is past the end of the file "
                                         f"({size:,} bytes)")
            n = size - offset if length is None else length
            if offset + n > size:
                raise UnsafeData("L017", f"location {location!r}: bytes {offset:,}..{offset + n:,} are past the end "
                                         f"of the file ({size:,} bytes)")
            if n > budget:
                raise UnsafeData("L018", f"location {location!r}: {n:,} bytes is over the budget of {budget:,}")
            chunks, got = [], 0
            while got < n:
                chunk = os.pread(fd, min(n - got, 1 << 24), offset + got)
                if not chunk:
                    raise UnsafeData("L017", f"location {location!r}: file shrank while being read")
                chunks.append(chunk)
                got += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)


def _walk_error(location: str, part: str, exc: OSError) -> UnsafeData:
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return UnsafeData("L013", f"location {location!r}: {part!r} is a symlink; symlinks are never followed")
    if exc.errno == errno.ENOTDIR:
        return UnsafeData("L013" if part != location else "L016",
                          f"location {location!r}: {part!r} is not a directory (or is a symlink; never followed)")
    if exc.errno == errno.ENOENT:
        return UnsafeData("L014", f"external data file {location!r} is missing")
    return UnsafeData("L016", f"location {location!r}: cannot be opened: {exc.strerror or exc}")


# -- tensors ----------------------------------------------------------------------------
def external_info(t: onnx.TensorProto) -> tuple[str, int, int | None]:
    """(location, offset, length) of an external tensor; :class:`UnsafeData` (L015)
    when offset/length are not non-negative integers."""
    info = {e.key: e.value for e in t.external_data}
    try:
        offset = int(info.get("offset") or 0)
        length = int(info["length"]) if info.get("length") else None
    except (TypeError, ValueError):
        raise UnsafeData("L015", "external data offset/length are not integers") from None
    if offset < 0 or (length is not None and length < 0):
        raise UnsafeData("L015", "external data offset/length are negative")
    return info.get("location", ""), offset, length


def is_external(t: onnx.TensorProto) -> bool:
    return bool(t.data_location == P.TensorProto.EXTERNAL)


def numel(dims: Any) -> int | None:
    """Element count from dims (None when a dim is negative)."""
    n = 1
    for d in dims:
        if d < 0:
            return None
        n *= int(d)
    return n


def _bits(data_type: int) -> int | None:
    from .tensors import dtype_bits

    return dtype_bits(data_type) or None


def read_external(t: onnx.TensorProto, data: ModelDir, budget: int = BUDGETS.external_bytes) -> bytes:
    """The stored bytes of one external tensor, checked against its dims."""
    location, offset, length = external_info(t)
    n = numel(t.dims)
    bits = _bits(t.data_type)
    need = None if n is None or bits is None else (n * bits + 7) // 8
    if need is not None and length is not None and length != need:
        raise UnsafeData("L017", f"tensor {t.name!r}: external length {length:,} bytes, its dims need {need:,}")
    raw = data.read(location, offset, need if length is None and need is not None else length, budget)
    if need is not None and len(raw) != need:
        raise UnsafeData("L017", f"tensor {t.name!r}: external data holds {len(raw):,} bytes, its dims need {need:,}")
    return raw


def tensor_array(t: onnx.TensorProto, max_elements: int, data: ModelDir | None = None,
                 embedded: EmbeddedData | None = None) -> np.ndarray | None:
    """The value of ``t`` as a numpy array, or None when it is larger than
    ``max_elements``, external and ``data`` is None (the analyzer never reads
    weights), or malformed. The one place a tensor's bytes become an array.
    A payload the loader left in the model file is read back through ``embedded``
    (``protoscan``: one message, by offset, under the same cap)."""
    n = numel(t.dims)
    if n is None or n > max_elements:
        return None
    bits = _bits(t.data_type)
    if embedded is not None and not is_external(t):
        full = embedded.read(t, 4096 + len(t.name) + n * 16)  # header + at most 16 bytes an element
        if full is None:
            return None
        t = full
    try:
        if is_external(t):
            if data is None:
                return None
            inline = P.TensorProto()
            inline.CopyFrom(t)
            del inline.external_data[:]
            inline.data_location = P.TensorProto.DEFAULT
            inline.raw_data = read_external(t, data, (n * (bits or 8) + 7) // 8)
            t = inline
        elif t.HasField("raw_data") and bits and len(t.raw_data) * 8 < n * bits:
            return None
        from .tensors import to_array

        return to_array(t)  # the only call in the package (tests/test_hostile.py checks)
    except UnsafeData:
        raise
    except Exception:  # malformed inline data: the value is unknown, never invented
        return None


def iter_tensor_protos(model: onnx.ModelProto | onnx.GraphProto | onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    """Every TensorProto of a model, graph or node — initializers, sparse values
    and indices, attribute tensors — through subgraphs and functions, iteratively."""
    nodes: list[onnx.NodeProto] = []
    graphs: list[onnx.GraphProto] = []
    if isinstance(model, P.ModelProto):
        graphs.append(model.graph)
        for fn in model.functions:
            nodes.extend(fn.node)
    elif isinstance(model, P.GraphProto):
        graphs.append(model)
    else:
        nodes.append(model)
    while graphs or nodes:
        while graphs:
            g = graphs.pop()
            yield from g.initializer
            for sp in g.sparse_initializer:
                yield sp.values
                yield sp.indices
            nodes.extend(g.node)
        while nodes:
            node = nodes.pop()
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors
                if a.HasField("sparse_tensor"):
                    yield a.sparse_tensor.values
                    yield a.sparse_tensor.indices
                for sp in a.sparse_tensors:
                    yield sp.values
                    yield sp.indices
                if a.HasField("g"):
                    graphs.append(a.g)
                graphs.extend(a.graphs)


def has_external(node: onnx.NodeProto) -> bool:
    """A node carries an external tensor in an attribute (a ``Constant`` or
    ``ConstantOfShape`` whose value is stored in a file): such a node must not be
    handed to an evaluator, which would resolve the location itself."""
    return any(is_external(t) for t in iter_tensor_protos(node))


def inline_external_data(model: onnx.ModelProto, base: str, budget: int = BUDGETS.external_bytes) -> int:
    """Read every external tensor of ``model`` into it (raw_data), through one
    :class:`ModelDir`; returns the bytes read. The total is checked against
    ``budget`` from each range's real size before it is read — a location
    without ``length`` does not skip the check."""
    total = 0
    with ModelDir(base) as data:
        for t in iter_tensor_protos(model):
            if not is_external(t):
                continue
            try:
                raw = read_external(t, data, budget - total)
            except UnsafeData as exc:
                if exc.code == "L018":
                    raise UnsafeData("L018", f"external data is over the budget of {budget / 2**30:.1f} GiB "
                                             f"(at tensor {t.name!r})") from None
                raise UnsafeData(exc.code, f"tensor {t.name!r}: {exc.message}") from None
            total += len(raw)
            del t.external_data[:]
            t.data_location = P.TensorProto.DEFAULT
            t.raw_data = raw
    return total


def sparse_array(sp: onnx.SparseTensorProto, max_elements: int, data: ModelDir | None = None,
                 embedded: EmbeddedData | None = None) -> np.ndarray | None:
    """The dense value of a sparse tensor (its values and indices read through
    :func:`tensor_array`), or None when the dense form is over ``max_elements``,
    a part is unreadable, or an index is out of range."""
    import numpy as np

    n = numel(sp.dims)
    if n is None or n > max_elements:
        return None
    values = tensor_array(sp.values, max_elements, data, embedded)
    indices = tensor_array(sp.indices, 2 * max_elements, data, embedded)
    if values is None or indices is None or values.ndim != 1 or indices.dtype.kind not in "iu":
        return None
    dims = tuple(int(d) for d in sp.dims)
    if indices.ndim == 1:
        flat = indices.astype(np.int64)
    elif indices.ndim == 2 and indices.shape[1] == len(dims) and dims:
        if (indices < 0).any() or (indices >= np.array(dims)).any():
            return None
        flat = np.ravel_multi_index(tuple(indices.T.astype(np.int64)), dims)
    else:
        return None
    if len(flat) != len(values) or (flat < 0).any() or (flat >= n).any():
        return None
    dense = np.zeros(n, dtype=values.dtype)
    dense[flat] = values
    return dense.reshape(dims)
