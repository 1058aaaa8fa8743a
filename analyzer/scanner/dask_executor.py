"""The Dask executor: the same per-model task on a ``dask.distributed`` cluster.

Imported only for ``--executor dask`` (the core never imports Dask; a test checks). Each
Dask worker thread keeps a one-worker :class:`~.pool.LocalPool` as its *sandbox*: the
model is analyzed in a child process of the Dask worker under the same ``--timeout`` and
``--max-memory`` as a local scan, so a model that hangs or crashes costs a sandbox, never
the Dask worker, and its line is the one a local scan writes.

Models are paths the workers can read (shared storage) or URLs fsspec opens
(``s3://…``): the Dask worker fetches the graph (its fsspec credentials, its
``memory://``), weights stay where they are, and the sandbox analyzes the copy. The scanning
process keeps the cache: workers get the cache's key index once (scattered to every
worker) and answer "hit" for a key it holds.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from .keys import Dep
from .pool import LocalPool
from .spec import Item, Limits, Outcome, ScanSpec, is_url
from .task import fetch, fetch_failed

IN_FLIGHT_PER_THREAD = 4
"""Tasks submitted ahead per worker thread: enough to keep workers fed, few enough that a
killed scan leaves little work in the cluster and memory stays flat over 100,000 models."""

CHUNK = 8
"""Most models per Dask task (see :func:`remote_chunk`)."""

_sandboxes: dict[int, tuple[str, LocalPool]] = {}
"""Each Dask worker thread's sandbox (by thread id), with the scan it was made for."""
_lock = threading.Lock()


def _close_all() -> None:
    """Stop every sandbox process of this Dask worker (the end of a scan; the worker's exit)."""
    with _lock:
        pools = [pool for _, pool in _sandboxes.values()]
        _sandboxes.clear()
    for pool in pools:
        pool.close()


atexit.register(_close_all)


def remote_task(spec: ScanSpec, index: dict[str, list[Dep]], limits: Limits, item: Item) -> Outcome:
    """Runs on a Dask worker: a URL is fetched here (with the Dask worker's fsspec set-up and
    credentials), then the item runs in this thread's sandbox process."""
    if not is_url(item.source):
        return _sandboxed(spec, index, limits, item)
    workdir = tempfile.mkdtemp(prefix="model-analyze-fetch-")
    try:
        try:
            local = fetch(item.source, workdir)
        except Exception as exc:
            return fetch_failed(item, exc)
        return _sandboxed(spec, index, limits, dataclasses.replace(item, source=local))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def remote_chunk(spec: ScanSpec, index: dict[str, list[Dep]], limits: Limits, items: list[Item]) -> list[Outcome]:
    """A few models in one Dask task (each under its own limits): a scheduler round trip costs
    about what analysing a small model does, so small models travel in chunks."""
    return [remote_task(spec, index, limits, item) for item in items]


def chunk_size(models: int, threads: int) -> int:
    """Up to :data:`CHUNK` models a task, while every thread still gets several tasks."""
    return max(1, min(CHUNK, models // (threads * 8)))


def _sandboxed(spec: ScanSpec, index: dict[str, list[Dep]], limits: Limits, item: Item) -> Outcome:
    thread = threading.get_ident()
    with _lock:
        run_id, pool = _sandboxes.get(thread, ("", None))
    if pool is None or run_id != spec.run_id:
        if pool is not None:
            pool.close()  # left by an earlier scan
        pool = LocalPool(spec, 1, limits, index)
        with _lock:
            _sandboxes[thread] = (spec.run_id, pool)
    for _, outcome in pool.run([item]):
        return outcome
    raise RuntimeError("the sandbox returned no outcome")  # pragma: no cover


def _distributed() -> Any:
    """``dask.distributed``, imported here only (its API is untyped: kept ``Any``)."""
    import importlib

    return importlib.import_module("distributed")


def scheduler_address(scheduler: str | None) -> str | None:
    """``dask://host:8786`` is ``tcp://host:8786``; anything else Dask reads as it is."""
    if scheduler and scheduler.startswith("dask://"):
        return "tcp://" + scheduler[len("dask://"):]
    return scheduler


class DaskExecutor:
    """Runs items on a cluster: the scheduler at ``scheduler``, else a ``LocalCluster`` of ``jobs``
    single-threaded worker processes on this machine."""

    def __init__(self, spec: ScanSpec, jobs: int, limits: Limits, index: dict[str, list[Dep]],
                 scheduler: str | None = None, client: Any = None) -> None:
        try:
            distributed = _distributed()
        except ImportError:
            from ..errors import UsageError

            raise UsageError("--executor dask needs Dask: pip install 'model-analyze[dask]'") from None
        self.spec, self.limits, self.index = spec, limits, index
        self.cluster = None
        self.own_client = client is None
        if client is not None:
            self.client = client
        elif scheduler:
            self.client = distributed.Client(scheduler_address(scheduler))
        else:
            self.cluster = distributed.LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                                    dashboard_address=":0")
            self.client = distributed.Client(self.cluster)

    def close(self) -> None:
        if self.own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def threads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def run(self, items: Iterable[Item]) -> Iterator[tuple[Item, Outcome]]:
        client = self.client
        # a list each: scatter() would spread a dict's values as separate pieces. hash=False:
        # with content-hashed keys a second scan of the same settings reuses the first scan's
        # keys, and the first scan's release of them races the second's tasks ("lost
        # dependencies" on a reused cluster).
        spec_f, index_f, limits_f = client.scatter([self.spec, self.index, self.limits], broadcast=True,
                                                   hash=False)
        todo = list(items)
        threads = self.threads()
        size = chunk_size(len(todo), threads)
        chunks = iter([todo[k:k + size] for k in range(0, len(todo), size)])
        by_key: dict[str, tuple[list[Item], Any]] = {}
        done = _distributed().as_completed()

        def submit(n: int) -> None:
            for _ in range(n):
                chunk = next(chunks, None)
                if chunk is None:
                    return
                first = chunk[0]
                fut = client.submit(remote_chunk, spec_f, index_f, limits_f, chunk, pure=False, retries=0,
                                    key=f"model-analyze-scan-{self.spec.run_id}-{first.id}-{int(first.force_miss)}")
                by_key[fut.key] = (chunk, fut)
                done.add(fut)

        submit(IN_FLIGHT_PER_THREAD * threads)
        try:
            for fut in done:
                chunk, _ = by_key.pop(fut.key)
                try:
                    outcomes = fut.result()
                except Exception as exc:  # the task itself failed (a worker lost, a cancelled future)
                    outcomes = [_failed(item, f"{item.path}: the Dask task failed: {type(exc).__name__}: {exc}")
                                for item in chunk]
                fut.release()
                submit(1)
                yield from zip(chunk, outcomes, strict=True)
        finally:
            if by_key:
                client.cancel([f for _, f in by_key.values()], force=True)
            with contextlib.suppress(Exception):
                client.run(_close_all)  # no sandbox process outlives the scan


def _failed(item: Item, error: str) -> Outcome:
    from . import records

    entry = records.stopped_entry(item.path, "crashed", error, config=item.preset.labels,
                                  fail_on=item.preset.values.get("fail-on", "error"))
    return Outcome(item.id, line=records.line_of(entry), slim=records.slim(entry))
