"""Finding severities and section statuses: two enums in a leaf module.

Apart from :mod:`.report` (a dozen dataclasses) because declarations need them at import
time — every analyzer's ``CODES`` names a default severity — and ``--help`` should not
build the whole report model to list the analyzers (issue 15, goal 4).
"""

from __future__ import annotations

import enum


class Severity(enum.IntEnum):
    """Ordered so that thresholds compare naturally (``sev >= Severity.WARNING``)."""

    INFO = 0
    WARNING = 1
    ERROR = 2

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.strip().upper()]


class Status(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value
