"""The worker process: ``python -m model_analyze.scanner.worker``, one model at a time.

Why a process of its own per worker and not a ``concurrent.futures`` pool: a model that
hangs must be stopped, and one that crashes the interpreter (a segfault in a C
extension, the kernel's OOM killer) must cost only itself; ``ProcessPoolExecutor``
breaks the whole pool when a worker dies and cannot kill a running task. A plain
``subprocess`` also starts where ``multiprocessing`` refuses to (inside a daemonic Dask
worker) and never forks a threaded parent (a notebook).

Protocol over stdin/stdout (``multiprocessing.connection`` framing, pickles): the parent
sends ``init`` (spec, cache index, limits), then ``task`` items; the worker answers
``ready`` once and ``done`` per item. Anything a plugin prints goes to stderr (a file
the parent reads the last line of when the worker dies).
"""

from __future__ import annotations

import os
import pickle
from multiprocessing.connection import Connection
from typing import Any

THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                 "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}
"""One thread per worker: N processes already use the N cores; more threads only contend."""


def rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` (Linux ``/proc``; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def vm_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def cap_address_space(max_memory: int | None) -> None:
    """A backstop under the parent's resident-memory watch: the address space may grow by twice the
    limit, so one huge allocation fails at once (MemoryError) instead of taking the machine."""
    if not max_memory:
        return
    try:
        import resource
    except ImportError:  # not on Windows
        return
    base = vm_bytes()
    if base is None:
        return
    limit = base + 2 * max_memory
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main() -> None:
    in_fd, out_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # print() of a plugin must not corrupt the protocol
    conn_in, conn_out = Connection(in_fd, writable=False), Connection(out_fd, readable=False)
    import faulthandler

    faulthandler.enable()  # a segfault in a C extension leaves its Python frame on stderr for the row
    try:
        raw = conn_in.recv_bytes()  # read at once: the parent's write of a large index never blocks it
    except EOFError:
        return
    from .task import Analyst

    _, spec, index, limits = pickle.loads(raw)
    analyst = Analyst(spec, index)
    cap_address_space(limits.max_memory)
    base = rss_bytes(os.getpid()) or 0
    conn_out.send(("ready", os.getpid()))
    try:
        serve(conn_in, conn_out, analyst, limits, base)
    finally:
        analyst.close()


def serve(conn_in: Connection, conn_out: Connection, analyst: Any, limits: Any, base: int) -> None:
    from . import records
    from .spec import Outcome

    while True:
        try:
            msg = conn_in.recv()
        except EOFError:  # the parent went away
            return
        if msg[0] == "stop":
            return
        item = msg[1]
        try:
            outcome = analyst.run(item)
        except MemoryError:
            outcome = _stopped(records, Outcome, item, "memory", f"{item.path}: out of memory while analyzing")
        except Exception as exc:  # a bug of the scan itself: the row says so, the scan goes on
            outcome = _stopped(records, Outcome, item, "error",
                               f"{item.path}: internal error in the scan worker: {type(exc).__name__}: {exc}")
        rss = rss_bytes(os.getpid())
        recycle = bool(limits.max_memory and rss is not None and rss - base > limits.max_memory // 2)
        conn_out.send(("done", outcome, recycle))
        if recycle:  # memory the allocator keeps is not given back: start afresh
            return


def _stopped(records: Any, outcome_cls: Any, item: Any, status: str, error: str) -> Any:
    entry = records.stopped_entry(item.path, status, error, config=item.preset.labels,
                                  fail_on=item.preset.values.get("fail-on", "error"))
    return outcome_cls(item.id, line=records.line_of(entry), slim=records.slim(entry))


if __name__ == "__main__":
    main()
