"""The scan command's outputs: JSON Lines or CSV as each model finishes, and the closing table.

Each line is written and flushed as its model finishes, so a scan that is killed keeps
every result it had (``--resume`` then skips them). The summary table is
``render.summary``'s, sorted and filtered here.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import os
import typing
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..errors import UsageError
from ..render import summary as S
from ..report import Severity
from .records import ScanResult

SORT_KEYS = ("path", "macs", "params", "reach", "status")
STATUS_ORDER = {"crashed": 0, "memory": 1, "timeout": 2, "error": 3, "fail": 4, "ok": 5}
"""``--sort status``: what needs a look first."""
STATUS_FILTERS = (*STATUS_ORDER, "problems")
"""``--status``: the statuses, and ``problems`` for every one but ``ok``."""
CSV_METRICS = ("macs", "params", "peak_activation", "reach", "receptive_field")
CSV_COLUMNS = ("path", "status", "exit_code", *(c for m in CSV_METRICS for c in (m, f"{m}_bound")),
               "worst_code", "worst_severity", "cached", "elapsed_s", "error")


def _number(result: ScanResult, key: str) -> float | None:
    m = result.report.headline(key) if result.report is not None else None
    if m is None or isinstance(m.value, (bool, str)) or m.value is None:
        return None
    return float(m.value)


def sort_results(results: list[ScanResult], key: str, reverse: bool = False) -> list[ScanResult]:
    """``path`` A→Z; ``macs``/``params``/``reach`` largest first (no value last); ``status`` worst first.
    ``reverse`` flips the order of the values (models without a value stay last)."""
    if key == "path":
        return sorted(results, key=lambda r: r.path, reverse=reverse)
    if key == "status":
        return sorted(results, key=lambda r: (STATUS_ORDER.get(r.status, 0), r.path), reverse=reverse)
    metric = "reach" if key == "reach" else key

    def value(r: ScanResult) -> float | None:
        v = _number(r, metric)
        return _number(r, "receptive_field") if v is None and key == "reach" else v

    have = [r for r in results if value(r) is not None]
    rest = sorted((r for r in results if value(r) is None), key=lambda r: r.path)
    sign = 1.0 if reverse else -1.0
    return sorted(have, key=lambda r: (sign * (value(r) or 0.0), r.path)) + rest  # ties: by path


def filter_results(results: list[ScanResult], statuses: Sequence[str] = (), match: str | None = None
                   ) -> list[ScanResult]:
    wanted = set(statuses)
    if "problems" in wanted:
        wanted |= set(STATUS_ORDER) - {"ok"}
    out = [r for r in results if not wanted or r.status in wanted]
    if match:
        out = [r for r in out if fnmatch.fnmatchcase(r.path, match)]
    return out


def parse_statuses(items: Sequence[str]) -> list[str]:
    out = [s.strip().lower() for item in items for s in item.split(",") if s.strip()]
    for s in out:
        if s not in STATUS_FILTERS:
            raise UsageError(f"--status {s!r}: expected one of {', '.join(STATUS_FILTERS)}")
    return out


def csv_row(r: ScanResult) -> list[Any]:
    row: list[Any] = [r.path, r.status, r.exit_code]
    for key in CSV_METRICS:
        m = r.report.headline(key) if r.report is not None else None
        ok = m is not None and m.value is not None and not isinstance(m.value, (str, bool))
        row += [m.value if ok and m is not None else "", (m.bound or "") if ok and m is not None else ""]
    w = S.worst(r.report) if r.report is not None else None
    row += [w.code if w else "", str(Severity(w.severity)) if w else "", int(r.cached), f"{r.elapsed_s:.4f}",
            " ".join((r.error or "").split())]
    return row


class Writer:
    """Writes each result as it arrives to a file or stdout (``jsonl`` or ``csv``), flushed per model."""

    def __init__(self, fmt: str, stream: IO[str], header: bool = True) -> None:
        self.fmt = fmt
        self.stream = stream
        self.binary = _utf8_buffer(stream) if fmt == "jsonl" else None
        """The stream's byte layer when it encodes UTF-8: a line is copied as bytes (a cached line is
        never decoded and encoded again)."""
        if fmt == "csv" and header:
            self._emit(_csv_text(CSV_COLUMNS))

    def write(self, r: ScanResult) -> None:
        if self.binary is not None:
            self._emit(r.raw, b"\n")  # two writes: no copy of a long line
        else:
            self._emit(r.line + "\n" if self.fmt == "jsonl" else _csv_text(csv_row(r)))

    def _emit(self, text: str | bytes, end: bytes = b"") -> None:
        try:
            if isinstance(text, bytes) and self.binary is not None:
                self.binary.write(text)
                self.binary.write(end)
                self.binary.flush()
            else:
                self.stream.write(str(text))
                self.stream.flush()
        except OSError as exc:
            raise UsageError(f"cannot write the scan's output: {exc.strerror or exc}") from None


def _utf8_buffer(stream: IO[str]) -> IO[bytes] | None:
    import codecs

    buffer = getattr(stream, "buffer", None)
    encoding = getattr(stream, "encoding", None)
    if buffer is None or not encoding or codecs.lookup(encoding).name != "utf-8":
        return None
    try:
        stream.flush()  # what the text layer holds goes first
    except (OSError, ValueError):
        return None
    return typing.cast("IO[bytes]", buffer)


def _csv_text(row: Sequence[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue()


def open_output(path: str | None, append: bool) -> tuple[IO[str], Callable[[], None]]:
    """The stream results go to, and how to close it."""
    if not path or path == "-":
        import sys

        return sys.stdout, lambda: None
    if os.path.isdir(path):
        raise UsageError(f"-o {path}: is a directory (give a file name)")
    try:
        f = open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115 (closed by the caller)
    except OSError as exc:
        raise UsageError(f"-o {path}: cannot write: {exc.strerror or exc}") from None
    return f, f.close


def trim_partial_line(path: str) -> None:
    """Cut a last line a killed scan left unfinished, so appended lines start on their own line."""
    try:
        with open(path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)
    except OSError:
        pass
