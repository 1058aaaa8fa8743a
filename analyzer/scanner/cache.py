"""The result cache: one file per key in a user cache directory.

Layout: ``<dir>/v3/<key[:2]>/<key>.json`` holds, in UTF-8, a small header line
``{"v": 3, "deps": [...], "row": {...}, "n": N}`` — the payload ranges the analysis read
back (see ``keys.Dep``), the entry's fields other than its report (path, status, exit
code…) and the length of the line —, a line with the slim report the summary table reads,
and then, to the end of the file without a newline, the line as a hit writes it
(``"cached":true``). A hit parses the header only: the rest of the file *is* the line, read
into the bytes the output copies; the slim report is parsed if a table or a caller reads it
(``records.ScanResult.report``). An entry of another layout (``v1`` kept the whole slim
entry on its second line, ``v2`` the line as first written) is a miss, and so is one whose
line is not ``n`` bytes long. Entries are
written to a temporary name and renamed, so a scan killed mid-write, or two scans sharing
the directory, never leave half an entry. Nothing is ever evicted: delete the directory
(``model-analyze scan --help`` prints where it is) to start afresh.

Workers decide hits (they have the file to hash), the scanning process reads and writes
entries; :meth:`ResultCache.index` is what a worker needs — every key with its deps.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .keys import Dep

LAYOUT = "v3"
FORMAT = 3
"""The header's ``v``: an entry without it (or with another) is a miss."""


@dataclass(frozen=True)
class Entry:
    """A stored result."""

    deps: list[Dep]
    row: dict[str, Any]
    """The entry's fields but its report: what a hit needs at once (status, exit code, path…)."""
    report: bytes
    """The slim report as JSON (``null`` when the model had none)."""
    line: bytes
    """The line as a hit writes it (``"cached":true``), UTF-8, no newline."""


class ResultCache:
    """Cached lines by key."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.root = os.path.join(directory, LAYOUT)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key[:2], key + ".json")

    def index(self) -> dict[str, list[Dep]]:
        """Every key in the cache with its deps (a directory listing, plus a read of the few entries
        whose name says they have deps)."""
        out: dict[str, list[Dep]] = {}
        with_deps: list[str] = []
        try:
            shards = [e.path for e in os.scandir(self.root) if e.is_dir()]
        except OSError:
            return out
        for shard in shards:
            try:
                names = [e.name for e in os.scandir(shard)]
            except OSError:
                continue
            for name in names:
                if name.endswith(".json") and not name.startswith("."):
                    out[name[:-5]] = []
                elif name.endswith(".deps"):
                    with_deps.append(name[:-5])
        for key in with_deps:
            stored = self.get(key) if key in out else None
            if stored is None:
                out.pop(key, None)
            else:
                out[key] = stored.deps
        return out

    def get(self, key: str) -> Entry | None:
        """The entry of ``key``, or None (missing, unreadable, cut short or of another layout)."""
        try:
            with open(self._path(key), "rb") as f:
                first, report, line = f.readline(), f.readline(), f.read()
            head = json.loads(first)
            if not isinstance(head, dict) or head.get("v") != FORMAT or not isinstance(head.get("row"), dict):
                return None
            deps: list[Dep] = [(int(o), int(n), str(d)) for o, n, d in head["deps"]]
            size = int(head["n"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not report.endswith(b"\n") or len(report) < 2 or not line or len(line) != size:
            return None
        return Entry(deps, head["row"], report[:-1], line)

    def put(self, key: str, deps: list[Dep], slim: dict[str, Any], line: str) -> None:
        """Store a result (``slim``: ``records.slim`` of its line; ``line``: as a hit writes it); a
        cache that cannot be written is skipped silently (the scan's results are in its output
        either way)."""
        path = self._path(key)
        row = {k: v for k, v in slim.items() if k != "report"}
        data = line.encode("utf-8")
        head = json.dumps({"v": FORMAT, "deps": deps, "row": row, "n": len(data)}, ensure_ascii=False,
                          separators=(",", ":"))
        report = json.dumps(slim.get("report"), ensure_ascii=False, separators=(",", ":"))
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write((head + "\n" + report + "\n").encode("utf-8"))
                f.write(data)
            os.replace(tmp, path)
            marker = path[:-5] + ".deps"
            if deps:
                open(marker, "w").close()
            elif os.path.exists(marker):
                os.unlink(marker)
        except OSError:
            pass


class StatIndex:
    """Graph digests of local files by path, trusted while the file's identity (device, inode, size,
    mtime, ctime) is unchanged — git's index, for the same reason: a re-scan of 100,000 unchanged
    models should ``stat`` them, not read them.

    An entry is recorded only for a file last changed more than :data:`RACY_NS` before: a change
    within the same clock tick as the recording could otherwise leave the identity equal (git's
    "racy" case). Models that name external data are never recorded (their key depends on other
    files). Kept in one file, ``<dir>/v1/stat-index.json``, rewritten at the end of a scan.
    """

    RACY_NS = 2_000_000_000

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, LAYOUT, "stat-index.json")
        self.entries: dict[str, list[Any]] = {}
        self.dirty = False
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            if isinstance(data, dict) and isinstance(data.get("entries"), dict):
                self.entries = data["entries"]
        except (OSError, ValueError):
            pass

    def lookup(self, path: str) -> str | None:
        entry = self.entries.get(path)
        if entry is None:
            return None
        from .keys import identity

        now = identity(path)
        if now is None or list(now) != entry[:5]:
            return None
        return str(entry[5])

    def record(self, path: str, ident: Sequence[int] | None, digest: str) -> None:
        if ident is None:
            return
        now = time.time_ns()
        if now - ident[3] <= self.RACY_NS or now - ident[4] <= self.RACY_NS:
            return
        entry = [*ident, digest]
        if self.entries.get(path) != entry:
            self.entries[path] = entry
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"entries": self.entries}, f, separators=(",", ":"))
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError:
            pass
