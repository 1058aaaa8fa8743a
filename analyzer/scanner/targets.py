"""What to scan: files, directories, globs (``batch.discover``), ``@list.txt`` files, and URLs.

A list file holds one path or URL per line (blank lines and ``#`` comments skipped),
taken as written — relative paths against the current directory, as every path on the
command line. A URL (``s3://bucket/zoo/``, ``memory://…``, ``file:///…``) is listed with
fsspec: a directory gives every ``*.onnx`` below it, a pattern its matches.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..batch import SUFFIX, Target, discover
from ..config import Config
from ..errors import UsageError
from .spec import is_url


def expand_lists(paths: Iterable[str]) -> list[str]:
    out: list[str] = []
    for raw in paths:
        if raw.startswith("@") and len(raw) > 1:
            try:
                with open(raw[1:], encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except OSError as exc:
                raise UsageError(f"{raw}: cannot read the list: {exc.strerror or exc}") from None
            out += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        else:
            out.append(raw)
    return out


def find_targets(paths: Iterable[str], config: Config | None = None) -> list[Target]:
    """Every model to scan, in the order given (directories and globs sorted), each once."""
    expanded = expand_lists(paths)
    out: list[Target] = []
    seen: set[str] = set()
    local: list[str] = []

    def flush() -> None:
        for t in discover(local, config):
            if t.path not in seen or t.error:
                seen.add(t.path)
                out.append(t)
        local.clear()

    for raw in expanded:
        if is_url(raw):
            flush()
            for t in _remote(raw):
                if t.path not in seen:
                    seen.add(t.path)
                    out.append(t)
        else:
            local.append(raw)
    flush()
    return out


def _remote(url: str) -> list[Target]:
    from .task import _fsspec

    try:
        fsspec = _fsspec()
    except RuntimeError as exc:
        return [Target(url, True, f"{url}: {exc}")]
    try:
        fs, path = fsspec.core.url_to_fs(url)
        protocol = url.split("://", 1)[0]
        if any(ch in path for ch in "*?["):
            hits = sorted(h for h in fs.glob(path) if fs.isfile(h))
            if not hits:
                return [Target(url, True, f"{url}: no file matches this pattern")]
            return [Target(_unstrip(fs, protocol, h), False) for h in hits]
        if fs.isdir(path):
            found = sorted(h for h in fs.find(path) if h.endswith(SUFFIX))
            if not found:
                return [Target(url, True, f"{url}: no *{SUFFIX} file in this directory")]
            return [Target(_unstrip(fs, protocol, h), False) for h in found]
    except Exception as exc:  # credentials, network, a bad bucket name: one row, not the end of the scan
        return [Target(url, True, f"{url}: cannot list: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")]
    return [Target(url, True)]


def _unstrip(fs: object, protocol: str, path: str) -> str:
    unstrip = getattr(fs, "unstrip_protocol", None)
    if callable(unstrip):
        return str(unstrip(path))
    return f"{protocol}://{path}"
