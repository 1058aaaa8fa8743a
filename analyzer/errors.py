"""Exceptions that end an analysis with exit code 2 and one clear line.

Everything that is the *model's* fault (unreadable, invalid, hostile) is a
:class:`ModelError`; everything that is the *user's* fault (unknown dim name,
malformed option) is a :class:`UsageError`. The CLI turns both into one line on
stderr, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


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


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` — did you mean compare?`` when one option is close to ``word``, else ``""``."""
    import difflib

    choices = [str(o) for o in options]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        folded = {c.lower(): c for c in choices}
        close = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=0.6)
        close = [folded[c] for c in close]
    return f" — did you mean {close[0]}?" if close else ""
