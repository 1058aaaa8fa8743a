"""Renderers: turn a :class:`~model_analyze.report.Report` into text, JSON, ..."""

from __future__ import annotations

from typing import Any


def human(n: float | int | None, unit: str = "") -> str:
    """``4089184256`` → ``4.09 G``; small ints keep thousands separators."""
    if n is None:
        return "?"
    if isinstance(n, bool):
        return "yes" if n else "no"
    if isinstance(n, str):
        return n
    sign = "-" if n < 0 else ""
    a = abs(n)
    for div, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
        if a >= div:
            return f"{sign}{a / div:.3g} {suffix}{unit}".rstrip()
    if isinstance(n, int) or float(n).is_integer():
        return f"{sign}{int(a):,}{(' ' + unit) if unit else ''}"
    return f"{n:.4g}{(' ' + unit) if unit else ''}"


def cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else human(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    return str(value)
