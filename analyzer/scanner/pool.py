"""Local worker processes with per-model time and memory limits, that survive any worker's death.

A :class:`Worker` is one ``python -m model_analyze.scanner.worker`` child; the
:class:`LocalPool` keeps ``jobs`` of them busy and watches each one's model: past the
``timeout`` the worker is killed (status ``timeout``), past ``max_memory`` of resident
memory it is killed (status ``memory``), and a worker that dies on its own is a
``crashed`` row naming the signal and its last line on stderr. A killed or dead worker is
replaced and the scan goes on. Workers outlive one ``run`` call, so a Dask task can
reuse a one-worker pool as its sandbox.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import typing
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from . import records
from .keys import Dep
from .spec import Item, Limits, Outcome, ScanSpec
from .worker import THREAD_ENV, rss_bytes

MEMORY_POLL_S = 0.02
"""How often a busy worker's resident memory is read when there is a memory limit."""
START_GRACE_S = 60.0
"""A worker's start-up (imports, plugins) is not part of its first model's time."""


class Worker:
    """One worker process and the item it is on."""

    def __init__(self, init: bytes) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the worker)
        env = {**os.environ, **THREAD_ENV}
        self.proc = subprocess.Popen([sys.executable, "-m", "model_analyze.scanner.worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env,
                                     close_fds=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.send_conn = Connection(os.dup(self.proc.stdin.fileno()), readable=False)
        self.recv_conn = Connection(os.dup(self.proc.stdout.fileno()), writable=False)
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.ready = False
        self.item: Item | None = None
        self.deadline = float("inf")
        self.started = 0.0
        self.send_conn.send_bytes(init)

    def submit(self, item: Item, timeout: float | None) -> None:
        self.item = item
        self.started = time.monotonic()
        self.timeout = timeout
        self.deadline = self.started + (timeout if timeout is not None else float("inf")) + \
            (0.0 if self.ready else START_GRACE_S)
        self.send_conn.send(("task", item))

    def receive(self) -> tuple[str, Any, bool]:
        """The next message; ``ready`` restarts the clock of the item sent before it."""
        msg = self.recv_conn.recv()
        if msg[0] == "ready":
            self.ready = True
            self.started = time.monotonic()
            if self.item is not None and self.timeout is not None:
                self.deadline = self.started + self.timeout
        return msg

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.close()

    def stop(self) -> None:
        """Ask the worker to finish (it exits when its stdin closes, too)."""
        with contextlib.suppress(OSError):
            self.send_conn.send(("stop",))
        self.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()

    def close(self) -> None:
        for conn in (self.send_conn, self.recv_conn):
            with contextlib.suppress(OSError):
                conn.close()
        self.stderr.close()

    def death(self) -> str:
        """Why the process ended: the signal or exit code, and the last line it wrote to stderr."""
        code = self.proc.wait()
        if code < 0:
            try:
                what = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                what = f"killed by signal {-code}"
            if code == -signal.SIGKILL:
                what += " (not by model-analyze: the system may have run out of memory)"
        else:
            what = f"exited with code {code}"
        try:
            self.stderr.seek(max(0, self.stderr.seek(0, 2) - 4096))
            tail = [ln for ln in self.stderr.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        except (OSError, ValueError):
            tail = []
        return what + (f": {_last_words(tail)}" if tail else "")


def _last_words(lines: list[str]) -> str:
    """The line that says why: faulthandler's ``Fatal Python error`` with the innermost frame, else
    the last line (a traceback's exception)."""
    for k, line in enumerate(lines):
        if line.startswith("Fatal Python error"):
            frame = next((ln.strip() for ln in lines[k + 1:] if ln.strip().startswith("File ")), "")
            return " ".join(line.split())[:160] + (f"; {frame[:160]}" if frame else "")
    return " ".join(lines[-1].split())[:200]


class LocalPool:
    """``jobs`` workers on this machine."""

    def __init__(self, spec: ScanSpec, jobs: int, limits: Limits, index: dict[str, list[Dep]] | None = None) -> None:
        self.jobs = max(1, jobs)
        self.limits = limits
        self.init = pickle.dumps(("init", spec, index or {}, limits), protocol=pickle.HIGHEST_PROTOCOL)
        self.idle: list[Worker] = []
        self.spawned = 0
        """Workers started (the first ``jobs`` and every replacement)."""

    def close(self) -> None:
        for w in self.idle:
            w.stop()
        self.idle = []

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _worker(self) -> Worker:
        if self.idle:
            return self.idle.pop()
        self.spawned += 1
        return Worker(self.init)

    def run(self, items: Iterable[Item]) -> Iterator[tuple[Item, Outcome]]:
        """Each item's outcome as it finishes (completion order)."""
        pending = iter(items)
        busy: dict[Connection, Worker] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(busy) < self.jobs:
                    item = next(pending, None)
                    if item is None:
                        exhausted = True
                        break
                    w = self._worker()
                    w.submit(item, self.limits.timeout)
                    busy[w.recv_conn] = w
                if not busy:
                    return
                for ready in wait(list(busy), timeout=self._poll(busy.values())):
                    conn = typing.cast(Connection, ready)
                    w = busy[conn]
                    result = self._receive(w)
                    if result is None:
                        continue
                    del busy[conn]
                    yield result
                for conn, w in list(busy.items()):
                    stopped = self._check(w)
                    if stopped is not None:
                        del busy[conn]
                        yield stopped
        finally:
            for w in busy.values():
                w.kill()

    def _poll(self, workers: Iterable[Worker]) -> float:
        nearest = min(w.deadline for w in workers) - time.monotonic()
        if self.limits.max_memory:
            nearest = min(nearest, MEMORY_POLL_S)
        return max(0.0, min(nearest, 1.0))

    def _receive(self, w: Worker) -> tuple[Item, Outcome] | None:
        item = w.item
        assert item is not None
        try:
            msg = w.receive()
        except (EOFError, OSError):
            return item, self._stopped(w, "crashed", f"{item.path}: the worker analyzing it died ({w.death()})")
        if msg[0] != "done":
            return None
        _, outcome, recycle = msg
        w.item = None
        if recycle:
            w.stop()
        else:
            self.idle.append(w)
        return item, outcome

    def _check(self, w: Worker) -> tuple[Item, Outcome] | None:
        item = w.item
        assert item is not None
        limits = self.limits
        if time.monotonic() > w.deadline:
            return item, self._stopped(w, "timeout", f"{item.path}: no result after {limits.timeout:g} s (--timeout)")
        if limits.max_memory and w.ready:
            rss = rss_bytes(w.proc.pid)
            if rss is not None and rss > limits.max_memory:
                return item, self._stopped(w, "memory", f"{item.path}: used more than {_size(limits.max_memory)} "
                                                        "of memory (--max-memory)")
        return None

    def _stopped(self, w: Worker, status: str, error: str) -> Outcome:
        item = w.item
        assert item is not None
        elapsed = time.monotonic() - w.started
        w.kill()
        entry = records.stopped_entry(item.path, status, error, elapsed_s=elapsed, config=item.preset.labels,
                                      fail_on=item.preset.values.get("fail-on", "error"))
        return Outcome(item.id, line=records.line_of(entry), slim=records.slim(entry))


def _size(n: int) -> str:
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:.3g} {unit}"
    return f"{n} B"
