"""Progress of a scan on stderr: click's bar on a terminal, plain periodic lines otherwise.

Why click's bar and not rich or tqdm: click is already what the CLI is built on (no new
dependency, no import cost at start-up), and its bar draws position, percentage and ETA
and takes a free-text item slot, where the rate and failures so far go. When stderr is
not a terminal (CI logs, ``nohup``) a bar is noise: a plain line every
:data:`LINE_EVERY_S` seconds and one at the end instead.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

LINE_EVERY_S = 10.0


def _eta(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Progress:
    """``mode``: ``bar``, ``lines`` or ``off``."""

    def __init__(self, total: int, mode: str, stream: TextIO | None = None, label: str = "scan") -> None:
        self.total, self.mode, self.label = total, mode, label
        self.stream = stream or sys.stderr
        self.done = self.failed = 0
        self.shown = -1
        """``done`` when the last plain line was printed (the closing line is not printed twice)."""
        self.start = self.last = time.monotonic()
        self.bar: Any = None
        if mode == "bar" and total:
            import click

            self.bar = click.progressbar(length=total, label=label, file=self.stream, show_pos=True, show_eta=True,
                                         item_show_func=lambda text: text)
            self.bar.__enter__()

    def rate(self) -> float:
        elapsed = time.monotonic() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    def status_text(self) -> str:
        return f"{self.rate():.1f} models/s · {self.failed} not ok"

    def update(self, status: str) -> None:
        self.done += 1
        self.failed += status != "ok"
        if self.bar is not None:
            self.bar.update(1, self.status_text())
        elif self.mode == "lines" and time.monotonic() - self.last >= LINE_EVERY_S:
            self.last = time.monotonic()
            self._line()

    def _line(self) -> None:
        self.shown = self.done
        rate = self.rate()
        left = self.total - self.done
        eta = f" · ETA {_eta(left / rate)}" if rate > 0 and left > 0 else ""
        pct = 100 * self.done // self.total if self.total else 100
        print(f"{self.label}: {self.done}/{self.total} ({pct}%) · {rate:.1f} models/s{eta} · {self.failed} not ok",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        elif self.mode == "lines" and self.total and self.shown != self.done:
            self._line()
