"""Exceptions that end an analysis with exit code 2 and one clear line.

Everything that is the *model's* fault (unreadable, invalid, hostile) is a
:class:`ModelError`; everything that is the *user's* fault (unknown dim name,
malformed option) is a :class:`UsageError`. The CLI turns both into one line on
stderr, never a traceback.
"""

from __future__ import annotations


class AnalyzeError(Exception):
    """Base class of errors that stop the analysis (exit code 2).

    The message is printed as one line, and it quotes the model's own names: its
    control characters (a newline in a tensor name) are escaped here, once."""

    def __init__(self, message: str = "", *args: object) -> None:
        from .render import clean

        super().__init__(clean(message), *args)


class ModelError(AnalyzeError):
    """The model file cannot be analyzed: what is wrong, and where."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class UsageError(AnalyzeError):
    """A command-line or API argument is invalid (e.g. ``--dim`` names no dim)."""
