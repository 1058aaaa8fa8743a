"""Cache keys: a hash of what the analysis reads, never of the weights.

The loader parses a *skeleton* of the model file (``protoscan``): the file's bytes with
every tensor payload over 32 KiB left out and marked with where it lives. That skeleton
is what the analysis reads — names, nodes, shapes, attributes, small constants — so the
key hashes it, not the file: a training run's checkpoints with the same graph share one
key whatever their weights. Three more things can change a result and are in the key:

* external data: the analysis never opens the files, but it ``lstat``-s each location
  (missing, a symlink, a FIFO, shorter than its tensors say: L013–L017), so each
  location's verdict or size is hashed, checked the way the loader checks it;
* the *context*: tool version, every plugin's name, distribution and version (a plugin
  loaded from a file: its content), the finding-code registry;
* the *settings* that apply to this path: config values with overrides, their labels and
  provenance, and the command line.

A few analyses read a payload back from the file on demand (a large attention-mask
constant, under a size cap). Which ones is known only after the analysis, so those are
*dependencies* of the cached result: ``(offset, length, digest)`` of every range read
(:data:`protoscan.READS`), checked against the file before the entry is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

KEY_VERSION = "scan-key-1"
Dep = tuple[int, int, str]
"""A range of the model file the analysis read back: offset, length, digest of its bytes."""


def digest(*parts: bytes | str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        b = p.encode("utf-8", "surrogateescape") if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def canonical(value: Any) -> str:
    """Settings as text that is equal exactly when the settings are (sorted keys, any object by repr)."""
    return json.dumps(value, sort_keys=True, default=repr, ensure_ascii=False)


Identity = tuple[int, int, int, int, int]
"""A file's device, inode, size, mtime and ctime (ns): equal means unchanged (git's index test)."""


def identity(path: str) -> Identity | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


@dataclass(frozen=True)
class GraphDigest:
    digest: str
    external: bool
    """The model names external data: its key also depends on other files (never stat-cached)."""


def graph_digest(path: str) -> GraphDigest | None:
    """The hash of the model's skeleton and of its external-data verdicts; None when the file is
    not one the skeleton scanner reads (the analysis then says what is wrong, uncached)."""
    from .. import protoscan  # not at the top: a cached re-run keys its files by their stat, never parses one

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return None
        if not protoscan.EmbeddedData.available():
            # protobuf without unknown fields: the loader parses the whole file, so all of it is read
            whole = _read_all(fd, st.st_size)
            return GraphDigest(digest(KEY_VERSION, "whole", whole), b"location" in whole)
        try:
            sk = protoscan.scan_fd(fd)
        except (protoscan.ScanError, OSError):
            return None
    finally:
        os.close(fd)
    verdicts = external_verdicts(sk.data, os.path.dirname(os.path.abspath(path)))
    return GraphDigest(digest(KEY_VERSION, sk.data, canonical(verdicts)), bool(verdicts))


def _read_all(fd: int, size: int) -> bytes:
    chunks, pos = [], 0
    while pos < size:
        b = os.pread(fd, min(1 << 24, size - pos), pos)
        if not b:
            break
        chunks.append(b)
        pos += len(b)
    return b"".join(chunks)


def external_verdicts(skeleton: bytes, base: str) -> list[list[Any]]:
    """For each external-data location of the model: its size, or the code the loader's
    check would give it (missing, symlink, not a regular file, unsafe)."""
    if b"location" not in skeleton:  # no external_data entry can be in these bytes
        return []
    from .. import onnxproto as P
    from ..safeio import ModelDir, UnsafeData, iter_tensor_protos

    try:
        model = P.ModelProto.FromString(skeleton)
    except Exception:
        return [["unparsable"]]
    seen: dict[str, list[Any]] = {}
    with ModelDir(base) as data:
        for t in iter_tensor_protos(model):
            if t.data_location != P.TensorProto.EXTERNAL:
                continue
            for entry in t.external_data:
                if entry.key != "location" or entry.value in seen:
                    continue
                try:
                    seen[entry.value] = [entry.value, "file", data.stat(entry.value).st_size]
                except UnsafeData as exc:
                    seen[entry.value] = [entry.value, exc.code]
    return sorted(seen.values())


def check_deps(path: str, deps: list[Dep]) -> bool:
    """Whether every range a cached analysis read back still holds the same bytes."""
    if not deps:
        return True
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        return all(digest(os.pread(fd, length, offset)) == d for offset, length, d in deps)
    except OSError:
        return False
    finally:
        os.close(fd)


@contextmanager
def recorded_reads() -> Iterator[list[Dep]]:
    """Record the payload ranges an analysis reads back; on exit the list holds their digests
    (of the bytes the analysis got, not of a second read)."""
    from .. import protoscan

    reads: list[tuple[int, bytes]] = []
    deps: list[Dep] = []
    previous, protoscan.READS = protoscan.READS, reads
    try:
        yield deps
    finally:
        protoscan.READS = previous
        deps.extend(sorted({(offset, len(data), digest(data)) for offset, data in reads}))


def settings_key(context: str, graph: str, preset: Any) -> str:
    """The cache key: the scan's context, the graph and the settings that apply to its path."""
    return digest(context, graph, canonical([preset.values, preset.labels, preset.provenance]))
