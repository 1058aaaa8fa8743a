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

_local = threading.local()
_sandboxes: list[LocalPool] = []
_lock = threading.Lock()


def _close_all() -> None:
    with _lock:
        for pool in _sandboxes:
            pool.close()
        _sandboxes.clear()


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


def _sandboxed(spec: ScanSpec, index: dict[str, list[Dep]], limits: Limits, item: Item) -> Outcome:
    pool: LocalPool | None = getattr(_local, "pool", None)
    if pool is None or getattr(_local, "run_id", None) != spec.run_id:
        if pool is not None:
            pool.close()
            with _lock:
                _sandboxes.remove(pool)
        pool = LocalPool(spec, 1, limits, index)
        _local.pool, _local.run_id = pool, spec.run_id
        with _lock:
            _sandboxes.append(pool)
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
        # a list each: scatter() would spread a dict's values as separate pieces
        spec_f, index_f, limits_f = client.scatter([self.spec, self.index, self.limits], broadcast=True)
        pending = iter(items)
        ahead = IN_FLIGHT_PER_THREAD * self.threads()
        by_key: dict[str, tuple[Item, Any]] = {}
        done = _distributed().as_completed()

        def submit(n: int) -> None:
            for _ in range(n):
                item = next(pending, None)
                if item is None:
                    return
                fut = client.submit(remote_task, spec_f, index_f, limits_f, item, pure=False,
                                    key=f"model-analyze-scan-{self.spec.run_id}-{item.id}-{int(item.force_miss)}",
                                    retries=0)
                by_key[fut.key] = (item, fut)
                done.add(fut)

        submit(ahead)
        try:
            for fut in done:
                item, _ = by_key.pop(fut.key)
                try:
                    outcome = fut.result()
                except Exception as exc:  # the task itself failed (a worker lost, a cancelled future)
                    outcome = _failed(item, f"{item.path}: the Dask task failed: {type(exc).__name__}: {exc}")
                fut.release()
                submit(1)
                yield item, outcome
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
