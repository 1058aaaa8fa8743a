"""Renderers: turn a :class:`~model_analyze.report.Report` into text, JSON, ..."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..report import Chart, Table

SIZE_UNITS = ("B", "px", "samples", "positions", "tokens")
"""Units printed after a human-sized number (``4.5 GB``, ``2,560 samples``)."""
SHOWN_UNITS = {*SIZE_UNITS, "FLOP/B", "%", "s", "tokens/s"}
"""Units printed after a value; the others (MAC, FLOP, count, …) are in the label."""

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def clean(text: Any) -> str:
    """Text that came from the model, safe to print in a line-based report.

    Names, producers, dim names and messages quoting them are the model's bytes:
    a newline in a tensor name would start a forged report line (``error E999 …``),
    an ANSI escape would repaint the terminal, a NUL or a bidi override would hide
    text. Every C0/C1 control character, line/paragraph separator and bidi
    control becomes a visible escape (``\\n``, ``\\x1b``, ``\\u202e``); everything
    else, including non-ASCII letters, is kept.
    """
    s = str(text)
    if not _UNPRINTABLE.search(s):
        return s
    return _UNPRINTABLE.sub(lambda m: _SHORT.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                                                else f"\\u{ord(m.group()):04x}"), s)


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
    if isinstance(a, int) and a.bit_length() > 1000:  # beyond a float: a hostile dim product
        return f"{sign}{_scientific(a)}{(' ' + unit) if unit else ''}"
    for div, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
        if a >= div:
            return f"{sign}{a / div:.3g} {suffix}{unit}".rstrip()
    if isinstance(n, int) or float(n).is_integer():
        if a == 1 and len(unit) > 3 and unit.isalpha() and unit.endswith("s"):
            unit = unit[:-1]  # a word's plural: 1 token, 1 sample (not "px", "B", "ms")
        return f"{sign}{int(a):,}{(' ' + unit) if unit else ''}"
    return f"{n:.4g}{(' ' + unit) if unit else ''}"


def _scientific(a: int) -> str:
    """``1.23e+400`` for a positive int too large for a float (no float, no giant str)."""
    import math

    shift = a.bit_length() - 64
    log = math.log10(a >> shift) + shift * math.log10(2)
    exp = math.floor(log)
    return f"{10 ** (log - exp):.3g}e+{exp}"


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
    return clean(value)


def value_text(value: Any, unit: str = "", bound: str | None = None) -> str:
    """A metric's value as printed everywhere: human-sized, its unit when the label does
    not say it, and its bound's :func:`mark` (``≥``/``≤``/``≈``) when it is not exact."""
    if isinstance(value, bool) and bound == "upper":  # an upper bound's "yes" is a "perhaps"; its "no" is sure
        return "perhaps (an upper bound)" if value else "no"
    if unit == "s" and isinstance(value, (int, float)) and not isinstance(value, bool):
        text = seconds(value)
    else:
        text = value if isinstance(value, str) else human(value, unit if unit in SHOWN_UNITS else "")
    return mark(bound) + text


def mark(bound: str | None) -> str:
    """``≥ `` for a lower bound, ``≤ `` for an upper bound, ``≈ `` for an estimate, else nothing:
    the one mark every table, message and finding prints, so an estimate never reads as exact."""
    return {"lower": "≥ ", "upper": "≤ ", "estimate": "≈ "}.get(bound or "", "")


def table_cells(table: Table) -> list[list[str]]:
    """A table's cells as printed, the same in every format: each value formatted by
    :func:`cell`, and the values of a ``bounded`` column marked with their row's bound
    (``≥ 1.2 G`` in the row of a layer holding an uncosted node)."""
    out = []
    for i, row in enumerate(table.rows):
        m = mark(table.row_bound(i))
        out.append([(m + text if m and j < len(table.columns) and table.columns[j].bounded and text != "—" else text)
                    for j, text in enumerate(cell(v) for v in row)])
    return out


def seconds(t: float) -> str:
    """``0.008811`` → ``8.81 ms`` (a time in the unit that keeps it between 1 and 1000)."""
    if t >= 100:
        return f"{t:,.0f} s"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def fold_label(prefix: str, indices: Iterable[int]) -> str:
    """``layers.{0..31}`` for a run of indices, ``layers.{0,2,5}`` otherwise."""
    idx = sorted(indices)
    if idx == list(range(idx[0], idx[-1] + 1)):
        return f"{prefix}{{{idx[0]}..{idx[-1]}}}"
    return f"{prefix}{{{','.join(map(str, idx))}}}"


def middle(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` by cutting its middle: node paths carry their meaning
    at both ends (``/model.22/cv2.0/…/Conv_output_0``)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = max((width - 1) // 3, 0)
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def formula_text(formula: str | None, valid_for: dict[str, list[int | None]] | None, below: str = "") -> str:
    """A formula with its validity range, as printed: ``… (for seq ≥ 4,096; causal below)``."""
    if not formula:
        return ""
    if not valid_for:
        return formula
    ranges = []
    for dim, (lo, hi) in valid_for.items():
        if lo is not None and hi is not None:
            ranges.append(f"{lo:,} ≤ {dim} ≤ {hi:,}")
        elif lo is not None:
            ranges.append(f"{dim} ≥ {lo:,}")
        elif hi is not None:
            ranges.append(f"{dim} ≤ {hi:,}")
    return f"{formula} for {', '.join(ranges)}" + (f"; {below} below" if below else "")


def chart_pointer(chart: Chart) -> str | None:
    """The line text and Markdown print for a chart they cannot draw: the chart is in the
    HTML report (so a plugin's chart is never silently dropped). None for an empty chart."""
    if not (chart.more or chart.series):
        return None
    n = sum(len(x.points) for x in chart.series)
    return f"(chart in the HTML report: {chart.title}, {n} point{'s' if n != 1 else ''})"
