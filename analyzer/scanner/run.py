"""A scan: discover → resume → key/cache → executor → one :class:`ScanResult` per model.

``model_analyze.scan(paths, jobs=…, executor=…)`` returns a :class:`Scan`; iterating it
yields each model's result as it finishes (resumed ones first). Discovery, the config and
the options are checked when the scan is made, so a usage error is raised before any
worker starts. Results go to the cache as they arrive; the caller writes them where it
wants (the ``scan`` command streams them as JSON Lines or CSV).
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..batch import BatchRunner, CliSettings
from ..cachedir import default_cache_dir
from ..config import Config, load_config
from ..errors import UsageError
from . import records
from .cache import Entry, ResultCache, StatIndex
from .keys import check_deps, graph_digest, identity, settings_key
from .records import ScanResult
from .spec import Item, Limits, Outcome, Preset, ScanSpec, is_url, source_of
from .targets import find_targets
from .task import context_digest, load_plugins, relabel

EXECUTORS = ("local", "dask")
DEFAULT_TIMEOUT_S = 600.0
MEMORY_CAP = 4 << 30


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_max_memory(jobs: int) -> int:
    """4 GiB per worker, or an equal share of this machine's memory when that is less."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return MEMORY_CAP
    return max(256 << 20, min(MEMORY_CAP, total // max(1, jobs)))


@dataclass
class ScanStats:
    """Counts a caller may show at the end (and the benchmark reads)."""

    analyzed: int = 0
    cache_hits: int = 0
    hashed: int = 0
    """Local files this process read to key them (the others were known by their ``stat``)."""
    resumed: int = 0
    workers_started: int = 0


@dataclass
class Scan:
    """One scan, ready to run: ``for result in scan: …``."""

    paths: Sequence[str]
    jobs: int
    executor: str
    limits: Limits
    spec: ScanSpec
    runner: BatchRunner
    cache: ResultCache | None
    resumed: list[ScanResult] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    early: list[ScanResult] = field(default_factory=list)
    """Models that are rows before any worker runs (a path that does not exist, an empty folder)."""
    scheduler: str | None = None
    client: Any = None
    stats: ScanStats = field(default_factory=ScanStats)

    @property
    def total(self) -> int:
        """Models this run analyzes or takes from the cache (resumed ones excluded)."""
        return len(self.items) + len(self.early)

    def __iter__(self) -> Iterator[ScanResult]:
        yield from self.resumed
        yield from self.early
        if not self.items:
            return
        index = self.cache.index() if self.cache is not None else {}
        stat = StatIndex(self.cache.directory) if self.cache is not None else None
        try:
            yield from self._run(index, stat)
        finally:
            if stat is not None:
                stat.save()

    def _run(self, index: dict[str, Any], stat: StatIndex | None) -> Iterator[ScanResult]:
        items = self.items
        if index and stat is not None and self.executor == "local":
            items = []
            for item, result in self._cached_here(index, stat):
                if result is not None:
                    yield result
                else:
                    items.append(item)
            if not items:
                return
        vanished: list[Item] = []
        with self._executor(index) as ex:
            for item, outcome in ex.run(items):
                if stat is not None and outcome.graph is not None:
                    stat.record(item.source, outcome.graph[1], outcome.graph[0])
                result = self._result(item, outcome)
                if result is None:
                    vanished.append(Item(item.id, item.path, item.source, item.preset, force_miss=True))
                    continue
                yield result
            for item, outcome in ex.run(vanished) if vanished else ():
                result = self._result(item, outcome)
                if result is not None:
                    yield result
            self.stats.workers_started = getattr(ex, "spawned", 0)

    def _cached_here(self, index: dict[str, Any], stat: StatIndex) -> Iterator[tuple[Item, ScanResult | None]]:
        """Local files whose key the cache holds, answered here without starting a worker (a cached
        re-run stats each unchanged model and reads its entry); the others keyed for the workers."""
        context = context_digest(self.runner.pm, self.spec)
        for item in self.items:
            key = None
            if not is_url(item.source):
                graph = stat.lookup(item.source)
                if graph is None:
                    before = identity(item.source)
                    found = graph_digest(item.source)
                    self.stats.hashed += 1
                    if found is not None and not found.external and identity(item.source) == before:
                        stat.record(item.source, before, found.digest)
                    graph = found.digest if found is not None else None
                key = settings_key(context, graph, item.preset) if graph is not None else None
            if key is not None and key in index and check_deps(item.source, index[key]):
                result = self._result(item, Outcome(item.id, key=key, hit=True))
                if result is not None:
                    yield item, result
                    continue
            yield (dataclasses.replace(item, keyed=True, key=key) if not is_url(item.source) else item), None

    def _executor(self, index: dict[str, Any]) -> Any:
        if self.executor == "dask":
            from .dask_executor import DaskExecutor

            return DaskExecutor(self.spec, self.jobs, self.limits, index, self.scheduler, self.client)
        from .pool import LocalPool

        return LocalPool(self.spec, self.jobs, self.limits, index)

    def _result(self, item: Item, outcome: Outcome) -> ScanResult | None:
        if outcome.hit and outcome.key is not None and self.cache is not None:
            stored = self.cache.get(outcome.key)
            if stored is None:
                return None  # removed since the index was read: analyze it after all
            self.stats.cache_hits += 1
            return _cached_result(stored, item.path, outcome.key)
        self.stats.analyzed += 1
        slim = outcome.slim or {}
        if outcome.cacheable and outcome.key is not None and self.cache is not None:
            self.cache.put(outcome.key, outcome.deps, slim, _as_hit(outcome.line, outcome.key))
        return records.result_from_entry(slim, outcome.line)


def _as_hit(line: str, key: str) -> str:
    """The line as a cache hit writes it: ``cached`` true (the last two fields of a line, see
    ``task.entry_of``)."""
    tail = f',"cached":false,"key":{json.dumps(key)}}}'
    if line.endswith(tail):
        return line[:-len(tail)] + f',"cached":true,"key":{json.dumps(key)}}}'
    entry = json.loads(line)
    entry["cached"] = True
    return records.line_of(entry)


def _cached_result(stored: Entry, path: str, key: str) -> ScanResult:
    """A hit as a result: the stored line (``cached`` true already) is the result's bytes, the slim
    report left unparsed until read. A graph cached under another path (a copy) is relabelled."""
    row = dict(stored.row, cached=True)
    old_path = row["path"]
    if old_path == path:
        return records.result_from_entry(row, stored.line, report_json=stored.report)
    entry = json.loads(stored.line)
    relabel(entry, old_path, path)
    row["report"] = json.loads(stored.report)
    relabel(row, old_path, path)
    return records.result_from_entry(row, records.line_of(entry))


def read_resume(path: str) -> list[dict[str, Any]]:
    """The complete lines of an earlier scan's output (a last line cut by a kill is ignored)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UsageError(f"--resume {path}: cannot read: {exc.strerror or exc}") from None
    out = []
    for k, ln in enumerate(text.split("\n")):
        if not ln.strip():
            continue
        try:
            entry = json.loads(ln)
        except ValueError:
            if k == len(text.split("\n")) - 1:
                continue  # the line a killed scan was writing
            raise UsageError(f"--resume {path}: line {k + 1} is not JSON (is it a scan's JSON Lines output?)") \
                from None
        if not isinstance(entry, dict) or "path" not in entry or "status" not in entry:
            raise UsageError(f"--resume {path}: line {k + 1} is not a scan result")
        out.append(entry)
    return out


def scan(paths: Iterable[str] | str, *, jobs: int | None = None, executor: str = "local",
         scheduler: str | None = None, client: Any = None, timeout: float | None = DEFAULT_TIMEOUT_S,
         max_memory: int | None = None, cache: bool = True, cache_dir: str | None = None,
         resume: str | None = None, config: str | Config | None = None, isolated: bool = False,
         settings: CliSettings | None = None, plugins: Sequence[str] = ()) -> Scan:
    """A scan of ``paths`` (files, directories, globs, ``@list.txt``, fsspec URLs); iterate it for
    one :class:`ScanResult` per model, as each finishes.

    ``executor="dask"`` runs on ``scheduler`` (``tcp://host:8786``, ``dask://host:8786``), on an
    existing ``client``, or on a local cluster of ``jobs`` workers. ``timeout`` (seconds) and
    ``max_memory`` (bytes of resident memory) bound each model; ``resume`` names an earlier
    scan's JSON Lines whose models are not analyzed again. ``settings`` are the command-line
    options (:class:`~model_analyze.batch.CliSettings`); ``config`` a config file or object.
    """
    if isinstance(paths, str):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise UsageError("scan: give at least one path")
    if executor not in EXECUTORS:
        raise UsageError(f"--executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if scheduler and executor != "dask":
        raise UsageError("--scheduler is for --executor dask")
    if timeout is not None and timeout <= 0:
        raise UsageError("--timeout must be positive")
    jobs = jobs or default_jobs()
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if isinstance(config, Config):
        cfg = config
    else:
        cfg = Config() if isolated else load_config(explicit=config)
    cli = settings or CliSettings()
    if cli.baseline is not None or cli.want_snapshot:
        raise UsageError("scan does not compare with baselines: use `model-analyze PATH --baseline`")
    spec = ScanSpec(cli=cli, plugins=tuple(os.path.abspath(p) if p.endswith(".py") else p for p in plugins),
                    use_cache=cache, run_id=uuid.uuid4().hex)
    runner = BatchRunner(cfg, cli, load_plugins(spec.plugins))
    limits = Limits(timeout=timeout, max_memory=max_memory if max_memory is not None else default_max_memory(jobs))
    if limits.max_memory is not None and limits.max_memory < 64 << 20:
        raise UsageError("--max-memory must be at least 64M (a worker starts at about 60 MB)")
    store = ResultCache(cache_dir or default_cache_dir()) if cache else None
    out = Scan(paths, jobs, executor, limits, spec, runner, store, scheduler=scheduler, client=client)
    done: set[str] = set()
    if resume:
        for entry in read_resume(resume):
            if entry["path"] in done:
                continue
            done.add(entry["path"])
            result = records.result_from_entry(records.slim(entry), records.line_of(entry))
            result.resumed = True
            out.resumed.append(result)
        out.stats.resumed = len(out.resumed)
    for target in find_targets(paths, cfg):
        if target.path in done:
            continue
        if target.error:
            entry = records.stopped_entry(target.path, "error", target.error)
            out.early.append(records.result_from_entry(entry, records.line_of(entry)))
            continue
        values, labels = runner.settings(target.path)
        preset = Preset(_plain(values), labels, runner.provenance(target.path))
        out.items.append(Item(len(out.items), target.path, source_of(target.path), preset))
    if not out.items and not out.early and not out.resumed:
        raise UsageError("scan: no model to analyze")
    return out


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Settings as plain data (they travel to workers and into cache keys)."""
    return {k: v for k, v in values.items()}
