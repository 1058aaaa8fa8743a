"""Read a ModelProto without materialising its weights: a protobuf wire-format scanner.

Why: protobuf's parser (and so ``onnx.load``) copies every ``raw_data`` byte into the
message: a 553 MB VGG-16 took 1.1 GB of RSS to analyze, though no analysis reads a
weight. This module walks the wire format of the file — memory-mapped, so pages of
weights are never touched — and writes a *skeleton*: the same bytes with the payload
fields (``raw_data``, ``float_data``, ``int64_data``…, ``string_data``) of every
TensorProto whose payload is larger than :data:`INLINE_BYTES` left out. Everything
else (dims, dtype, name, external-data references, doc strings) is kept byte for
byte, and protobuf parses the skeleton as usual.

Each stripped tensor carries a marker in an unknown field (protobuf keeps unknown
fields through parse, copy and serialise, in Python and in onnx's C++; onnx ignores
them): the offset and length of the original TensorProto message in the file.
:class:`EmbeddedData` reads that message back on demand — one tensor, after a size
cap and a check that the file is still the one scanned — and parses it exactly as
onnx would have parsed it in place.

Only messages longer than :data:`INLINE_BYTES` are descended into: a shorter one
cannot hold a larger payload, so the 5,585 small nodes of Mistral-7B are copied
without being parsed. Anything malformed raises :class:`ScanError`; the loader then
parses the file the ordinary way, which names the problem.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

from . import onnxproto as P
from .safeio import iter_tensor_protos

INLINE_BYTES = 32 * 1024
"""Payloads up to this size stay in the skeleton: every tensor of at most 4,096
elements of 8 bytes — all that constant folding, onnx's shape inference copy and the
integer-bounds check ever read — is exactly as protobuf parses it. Larger payloads
(weights) stay in the file and are read only on demand, under the caller's cap."""
MARKER_FIELD = 536_870_000
"""Unknown TensorProto field holding (offset, length) of a stripped tensor's message;
near protobuf's largest field number, far from any ONNX will use."""
MAX_DEPTH = 100
"""protobuf refuses deeper nesting; so do we (the loader's parse then says why)."""


READS: list[tuple[int, bytes]] | None = None
"""When a list, every payload read back from a model file is appended as ``(offset, bytes read)``:
``scan``'s cache sets one around an analysis so a cached result is reused only while the
bytes the analysis actually read are unchanged (its key covers the skeleton, never weights)."""


class ScanError(Exception):
    """The bytes are not a well-formed ModelProto (the caller falls back to protobuf)."""


def _number(message: Any, field: str) -> int:
    return int(message.DESCRIPTOR.fields_by_name[field].number)


# Which length-delimited fields of each message kind can lead to a TensorProto.
_MODEL, _GRAPH, _NODE, _ATTR, _TENSOR, _SPARSE, _FUNCTION, _TRAINING = range(8)
_M, _G, _N, _A, _T, _S = (P.ModelProto, P.GraphProto, P.NodeProto, P.AttributeProto, P.TensorProto,
                          P.SparseTensorProto)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {_number(_M, "graph"): _GRAPH, _number(_M, "functions"): _FUNCTION,
             _number(_M, "training_info"): _TRAINING},
    _TRAINING: {_number(P.TrainingInfoProto, "initialization"): _GRAPH,
                _number(P.TrainingInfoProto, "algorithm"): _GRAPH} if hasattr(P, "TrainingInfoProto") else {},
    _FUNCTION: {_number(P.FunctionProto, "node"): _NODE},
    _GRAPH: {_number(_G, "node"): _NODE, _number(_G, "initializer"): _TENSOR,
             _number(_G, "sparse_initializer"): _SPARSE},
    _NODE: {_number(_N, "attribute"): _ATTR},
    _ATTR: {_number(_A, "t"): _TENSOR, _number(_A, "tensors"): _TENSOR, _number(_A, "g"): _GRAPH,
            _number(_A, "graphs"): _GRAPH, _number(_A, "sparse_tensor"): _SPARSE,
            _number(_A, "sparse_tensors"): _SPARSE},
    _SPARSE: {_number(_S, "values"): _TENSOR, _number(_S, "indices"): _TENSOR},
}
_PAYLOAD = frozenset(_number(_T, f) for f in ("float_data", "int32_data", "string_data", "int64_data",
                                             "raw_data", "double_data", "uint64_data"))


def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ScanError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _encode(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_MARKER_KEY = _encode(MARKER_FIELD << 3 | 2)


@dataclass(frozen=True)
class Skeleton:
    """A ModelProto's bytes without large payloads, and what was left out."""

    data: bytes
    tensors: int
    """Tensors whose payload was left in the file."""
    payload_bytes: int
    """Bytes of those payloads (what a plain parse would have copied)."""


class _Source:
    """Bytes of the model by position, read with ``pread`` through one window.

    Not ``mmap``: on a page cache with large folios, touching one header maps the
    whole folio around it (resident, counted in RSS) — 43 MB for ResNet-50's 207
    tensor headers. A window of :data:`WINDOW` bytes keeps the scan's memory flat."""

    WINDOW = 1 << 20

    def __init__(self, fd: int | None, size: int, data: bytes | None = None) -> None:
        self.fd = fd
        self.size = size
        self.data = data if data is not None else b""
        self.start = 0  # file offset of self.data[0]

    def window(self, pos: int) -> tuple[bytes, int]:
        """Bytes holding ``pos`` and at least 32 bytes after it (or up to the end), and
        the file offset of their first byte."""
        end = self.start + len(self.data)
        if self.fd is not None and (pos < self.start or (pos + 32 > end and end < self.size)):
            self.data = os.pread(self.fd, self.WINDOW, pos)
            self.start = pos
        return self.data, self.start

    def read(self, a: int, b: int) -> bytes:
        if self.start <= a and b <= self.start + len(self.data):
            return self.data[a - self.start:b - self.start]
        if self.fd is None:
            raise ScanError("read past the end")
        out = os.pread(self.fd, b - a, a)
        if len(out) != b - a:
            raise ScanError("the file is shorter than its fields say")
        return out


class _Scanner:
    def __init__(self, src: _Source) -> None:
        self.src = src
        self.tensors = 0
        self.payload_bytes = 0

    def fields(self, start: int, end: int) -> Any:
        """(field start, key, body start, body end) of each field in ``[start, end)``;
        for a non-length-delimited field body start = body end = its end."""
        src = self.src
        pos = start
        buf, base = src.window(pos)
        while pos < end:
            if pos < base or (pos + 32 > base + len(buf) and base + len(buf) < src.size):
                buf, base = src.window(pos)
            i = pos - base
            key, j = _varint(buf, i, len(buf))
            wire = key & 7
            if key >> 3 == 0:
                raise ScanError("field number 0")
            if wire == 2:
                size, j = _varint(buf, j, len(buf))
                body = base + j
                pos = body + size
            elif wire == 0:
                _, j = _varint(buf, j, len(buf))
                pos = body = base + j
            elif wire == 1 or wire == 5:
                pos = body = base + j + (8 if wire == 1 else 4)
            else:
                raise ScanError(f"wire type {wire}")
            if pos > end:
                raise ScanError("a field runs past its message")
            yield base + i, key, body, pos

    def message(self, start: int, end: int, kind: int, depth: int) -> bytes | None:
        """The message at ``[start, end)`` rewritten, or None when nothing in it changes."""
        if depth > MAX_DEPTH:
            raise ScanError("messages nested deeper than protobuf allows")
        if kind == _TENSOR:
            return self.tensor(start, end)
        children = _CHILDREN[kind]
        parts: list[bytes] | None = None
        copied = start
        for field_start, key, body, stop in self.fields(start, end):
            child = children.get(key >> 3)
            if child is None or stop - body <= INLINE_BYTES or key & 7 != 2:
                continue
            new = self.message(body, stop, child, depth + 1)
            if new is not None:
                if parts is None:
                    parts = []
                parts += (self.src.read(copied, field_start), _encode(key), _encode(len(new)), new)
                copied = stop
        if parts is None:
            return None
        parts.append(self.src.read(copied, end))
        return b"".join(parts)

    def tensor(self, start: int, end: int) -> bytes | None:
        """A TensorProto without its payload fields, marked with where it lives."""
        kept: list[tuple[int, int]] = []
        payload = 0
        copied = start
        for field_start, key, _body, stop in self.fields(start, end):
            if key >> 3 in _PAYLOAD:
                kept.append((copied, field_start))
                payload += stop - field_start
                copied = stop
        if payload <= INLINE_BYTES:
            return None
        kept.append((copied, end))
        marker = _encode(start) + _encode(end - start)
        self.tensors += 1
        self.payload_bytes += payload
        return b"".join([self.src.read(a, b) for a, b in kept if b > a] + [_MARKER_KEY, _encode(len(marker)), marker])


def skeleton(data: bytes) -> Skeleton:
    """The skeleton of the ModelProto serialised in ``data``."""
    scanner = _Scanner(_Source(None, len(data), data))
    out = scanner.message(0, len(data), _MODEL, 0)
    return Skeleton(data if out is None else out, scanner.tensors, scanner.payload_bytes)


@dataclass(frozen=True)
class FileIdentity:
    """What must not change between the scan and an on-demand read."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def scan_fd(fd: int) -> Skeleton:
    """Scan the regular file open at ``fd``; only its non-payload bytes are read."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        raise ScanError("not a non-empty regular file")
    src = _Source(fd, st.st_size)
    scanner = _Scanner(src)
    out = scanner.message(0, st.st_size, _MODEL, 0)
    return Skeleton(src.read(0, st.st_size) if out is None else out, scanner.tensors, scanner.payload_bytes)


def embedded_range(t: Any) -> tuple[int, int] | None:
    """(offset, length) of the original message of a stripped tensor, else None."""
    try:
        from google.protobuf.unknown_fields import UnknownFieldSet
    except ImportError:  # protobuf < 4.22: skeletons are never made (see EmbeddedData.available)
        return None
    for f in UnknownFieldSet(t):
        if f.field_number == MARKER_FIELD and f.wire_type == 2:
            data = f.data
            try:
                offset, pos = _varint(data, 0, len(data))
                length, _ = _varint(data, pos, len(data))
            except ScanError:
                return None
            return offset, length
    return None


@dataclass
class EmbeddedData:
    """On-demand reads of payloads a skeleton left in the model file."""

    path: str
    identity: FileIdentity

    @staticmethod
    def available() -> bool:
        """Whether this protobuf exposes unknown fields (needed to find a payload again)."""
        try:
            from google.protobuf.unknown_fields import UnknownFieldSet  # noqa: F401
        except ImportError:
            return False
        return True

    def read(self, t: Any, max_bytes: int) -> Any:
        """The full TensorProto of a stripped tensor ``t`` if its message is at most
        ``max_bytes`` and the file is unchanged; ``t`` itself when nothing was
        stripped; None otherwise (never an exception)."""
        where = embedded_range(t)
        if where is None:
            return t
        offset, length = where
        if length > max_bytes or offset + length > self.identity.size:
            return None
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
            | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags)
        except OSError:
            return None
        try:
            if FileIdentity.of(os.fstat(fd)) != self.identity:
                return None  # replaced or modified since it was scanned
            data = os.pread(fd, length, offset)
        except OSError:
            return None
        finally:
            os.close(fd)
        if READS is not None:
            READS.append((offset, data))
        try:
            full = P.TensorProto.FromString(data)
        except Exception:
            return None
        if full.name != t.name or list(full.dims) != list(t.dims) or full.data_type != t.data_type:
            return None
        return full


def parse_skeleton(fd: int, path: str) -> tuple[Any, EmbeddedData | None] | None:
    """The ModelProto in the regular file open at ``fd`` with its large payloads left
    in the file (and the :class:`EmbeddedData` that reads them back); None when the
    scan or protobuf refuses the bytes — the caller then parses the file whole, and
    protobuf's error names the problem."""
    if not EmbeddedData.available():
        return None
    try:
        sk = scan_fd(fd)
        model = P.ModelProto.FromString(sk.data)
    except Exception:  # ScanError, DecodeError, OSError: the ordinary parse decides
        return None
    return model, EmbeddedData(path, FileIdentity.of(os.fstat(fd))) if sk.tensors else None


def hydrate(model: Any, embedded: EmbeddedData | None, max_bytes: int) -> int:
    """Put the payload of every stripped tensor of ``model`` back in place (for
    ``verify``, which executes the model); returns the bytes read. Raises
    ``ValueError`` when more than ``max_bytes`` would be read or a payload cannot be."""
    if embedded is None:
        return 0
    stripped = []
    for t in iter_tensor_protos(model):
        where = embedded_range(t)
        if where is not None:
            stripped.append((t, where[1]))
    total = sum(length for _, length in stripped)
    if total > max_bytes:
        raise ValueError(f"{total / 2**30:.1f} GiB of embedded weights is more than the limit")
    for t, length in stripped:
        full = embedded.read(t, length)
        if full is None:
            raise ValueError(f"tensor {t.name!r} changed on disk since the model was read")
        t.CopyFrom(full)
    return total
