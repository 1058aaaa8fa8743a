"""What travels between the scanning process and its workers (plain, picklable dataclasses).

The scanning process resolves everything that depends on where it runs — the config
file and its per-path overrides, relative paths, the command line — and sends each
worker a :class:`ScanSpec` once and an :class:`Item` per model, so a worker on another
machine (Dask) needs no config file and no current directory to get the same result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..batch import CliSettings

STOPPED_STATUSES = ("timeout", "memory", "crashed")


@dataclass(frozen=True)
class Limits:
    """Per-model limits a worker runs under."""

    timeout: float | None = 600.0
    """Wall-clock seconds per model (fetching included); None: no limit."""
    max_memory: int | None = None
    """Bytes of resident memory a worker may use; None: no limit."""


@dataclass
class ScanSpec:
    """The settings every model of one scan shares."""

    cli: CliSettings = field(default_factory=CliSettings)
    plugins: tuple[str, ...] = ()
    """Extra plugin modules (importable names or ``.py`` paths), loaded in every worker."""
    use_cache: bool = True
    """Compute keys and look results up (the scanning process reads and writes the cache)."""
    run_id: str = ""
    """Changes with every scan: a Dask worker's sandbox is rebuilt for a new scan."""


@dataclass(frozen=True)
class Preset:
    """The settings that apply to one path, as ``BatchRunner.settings`` computed them there."""

    values: dict[str, Any]
    labels: list[str]
    provenance: dict[str, str]


@dataclass(frozen=True)
class Item:
    """One model to analyze."""

    id: int
    path: str
    """As given or found: the label of every output line."""
    source: str
    """Where to read it: an absolute path, or a URL (fetched by the worker with fsspec)."""
    preset: Preset
    force_miss: bool = False
    """Analyze even if the cache has the key (its entry vanished since the worker said hit)."""
    keyed: bool = False
    """The scanning process computed :attr:`key` already (and found no usable entry)."""
    key: str | None = None


@dataclass
class Outcome:
    """What a worker sends back for one item."""

    id: int
    key: str | None = None
    hit: bool = False
    """The cache has this key and its deps hold: the scanning process takes the line from there."""
    line: str = ""
    slim: dict[str, Any] | None = None
    deps: list[Any] = field(default_factory=list)
    cacheable: bool = False
    graph: tuple[str, Any] | None = None
    """``(graph digest, file identity)`` when the worker hashed a local file that did not change
    meanwhile: the scanning process remembers it (``cache.StatIndex``) for the next scan."""


def is_url(path: str) -> bool:
    """``s3://…``, ``memory://…``, ``file://…``: read with fsspec (a Windows drive ``C:\\`` is not one)."""
    scheme, sep, _ = path.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme.replace("+", "").replace("-", "").isalnum()


def source_of(path: str) -> str:
    return path if is_url(path) else os.path.abspath(path)
