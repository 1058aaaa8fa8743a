"""Quantities with units in config and on the command line: ``"40G"``, ``"4GiB"``, ``8192``.

Why a module of its own: budgets (``max-macs = "40G"``), baselines and the summary
table all read human quantities, and one parser keeps ``G`` meaning the same thing
everywhere. SI prefixes are powers of 1000 (``k``/``K``, ``M``, ``G``, ``T``, ``P``,
``E``), binary ones powers of 1024 (``Ki`` … ``Ei``) — so ``"32K"`` is 32,000 tokens
and ``"32Ki"`` is 32,768. Byte quantities may end in ``B`` (``"4GiB"``, ``"512MB"``).
A bare ``B`` after a count is rejected: ``"7B"`` parameters reads as 7 billion to a
person and as 7 bytes to a parser, so we ask for ``"7G"``.
"""

from __future__ import annotations

import math
import re

SI = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
MAX_QUANTITY = 10**30
"""Larger values are a typo, not a budget (a whole data centre does ~10²⁴ FLOP/s)."""

_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([kKMGTPE]i?)?\s*(B?)\s*$")


def parse_quantity(value: object, *, unit: str = "") -> int:
    """A non-negative integer quantity from an int, a finite float or a string with a prefix.

    ``unit`` is ``"B"`` for bytes (a trailing ``B`` is then allowed) or ``""``.
    Raises ``ValueError`` with the expected form, for the caller to name the key.
    """
    example = '"4GiB" or "512MB"' if unit == "B" else '"40G"'
    expected = f"a non-negative number or a string like {example}"
    if isinstance(value, bool):
        raise ValueError(expected)
    if isinstance(value, int):
        number: float | int = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(expected)
        number = value
    elif isinstance(value, str):
        m = _QUANTITY.match(value)
        if not m:
            raise ValueError(expected)
        digits, prefix, b = m.group(1), m.group(2) or "", m.group(3)
        if b and unit != "B":
            raise ValueError(f"{expected} ('B' is for bytes; write 7G for 7×10⁹)")
        scale = BINARY.get(prefix) or SI.get(prefix)
        if scale is None:
            raise ValueError(expected)
        number = int(digits) * scale if re.fullmatch(r"[0-9]+", digits) else float(digits) * scale
    else:
        raise ValueError(expected)
    if number < 0 or number > MAX_QUANTITY:
        raise ValueError(f"{expected}, from 0 to 10^30")
    return int(number) if isinstance(number, int) else round(number)


def parse_fraction(value: object) -> float:
    """A tolerance: ``0.01``, ``"1%"`` or ``"0.5 %"`` → 0.01 / 0.005 (between 0 and 10)."""
    expected = "a fraction like 0.01 or a percentage like \"1%\""
    if isinstance(value, bool):
        raise ValueError(expected)
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(%?)\s*", value)
        if not m:
            raise ValueError(expected)
        number = float(m.group(1)) / (100 if m.group(2) else 1)
    else:
        raise ValueError(expected)
    if not math.isfinite(number) or not 0 <= number <= 10:
        raise ValueError(f"{expected}, from 0 to 1000%")
    return number
