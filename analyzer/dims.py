"""Dimensions that are either plain ``int`` or symbolic (sympy) expressions.

Why this module: most conv nets have fully concrete shapes, and importing sympy
costs ~0.25 s. So a dim stays a Python ``int`` whenever it can and sympy is
imported only when a symbolic dim (``seq``, ``batch``, ``s0 + 1``) appears.

Dim names come from untrusted model files, so they are never passed to
``sympy.sympify`` (which evaluates Python). :func:`parse_dim_param` is a small
safe parser for the arithmetic exporters write (``seq + 1``, ``2*s0``,
``floor(s0/2)``); anything else becomes one opaque symbol.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import sympy

Dim = Union[int, "sympy.Expr"]
"""A dimension: a non-negative ``int`` or a sympy expression in dim symbols."""


def _sympy() -> Any:
    import sympy

    return sympy


@functools.cache
def symbol(name: str) -> sympy.Symbol:
    """The symbol for dim ``name`` (positive integer, so floor/ceil simplify)."""
    return _sympy().Symbol(name, integer=True, positive=True)


def is_int(d: object) -> bool:
    return isinstance(d, int) and not isinstance(d, bool)


def as_int(d: Dim | None) -> int | None:
    """``d`` as an int if it is concrete (also a constant sympy number)."""
    if d is None:
        return None
    if is_int(d):
        return d  # type: ignore[return-value]
    if getattr(d, "is_Integer", False):
        return int(d)
    return None


def normalize(d: Any) -> Dim:
    """Turn constant sympy numbers back into ints."""
    v = as_int(d)
    return d if v is None else v


def add(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return a + b  # type: ignore[operator]
    return normalize(a + b)


def sub(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return a - b  # type: ignore[operator]
    return normalize(a - b)


def mul(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return a * b  # type: ignore[operator]
    return normalize(a * b)


def prod(values: Any) -> Dim:
    out: Dim = 1
    for v in values:
        out = mul(out, v)
    return out


def floordiv(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return a // b  # type: ignore[operator]
    sp = _sympy()
    return normalize(sp.floor(sp.Rational(1, 1) * a / b))


def ceildiv(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return -(-a // b)  # type: ignore[operator]
    sp = _sympy()
    return normalize(sp.ceiling(sp.Rational(1, 1) * a / b))


def dmax(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return max(a, b)  # type: ignore[type-var]
    return normalize(_sympy().Max(a, b))


def dmin(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return min(a, b)  # type: ignore[type-var]
    return normalize(_sympy().Min(a, b))


def free_symbols(d: Any) -> set[str]:
    """Names of the dim symbols ``d`` depends on."""
    if d is None or is_int(d) or not hasattr(d, "free_symbols"):
        return set()
    return {s.name for s in d.free_symbols}


def subs(d: Any, bindings: dict[str, int]) -> Any:
    """``d`` with the bound dims replaced by their values (int when fully bound)."""
    if d is None or is_int(d) or not bindings or not hasattr(d, "free_symbols"):
        return d
    mapping = {s: bindings[s.name] for s in d.free_symbols if s.name in bindings}
    if not mapping:
        return d
    return normalize(d.xreplace(mapping))


def equal(a: Dim | None, b: Dim | None) -> bool:
    """Provably equal (unknown dims are never equal to anything)."""
    if a is None or b is None:
        return False
    if is_int(a) and is_int(b):
        return a == b
    try:
        return bool(_sympy().simplify(a - b) == 0)
    except Exception:
        return False


def fmt(d: Any) -> str:
    """Human form: ``seq``, ``seq + 1``, ``?`` for unknown."""
    if d is None:
        return "?"
    if is_int(d):
        return str(d)
    return str(d).replace("**", "^")


_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_][A-Za-z0-9_.]*)|(//|\*\*|[-+*/()]))")


class _Parser:
    """Recursive descent over ``+ - * / // ( )``, integers and names."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ValueError(text)
            num, name, op = m.groups()
            self.tokens.append(("n", num) if num else ("s", name) if name else ("o", op))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expr(self) -> Any:
        value = self.term()
        while (t := self.peek()) and t[1] in ("+", "-"):
            self.take()
            rhs = self.term()
            value = value + rhs if t[1] == "+" else value - rhs
        return value

    def term(self) -> Any:
        value = self.factor()
        while (t := self.peek()) and t[1] in ("*", "/", "//"):
            self.take()
            rhs = self.factor()
            if t[1] == "*":
                value = value * rhs
            else:
                value = _sympy().floor(value / rhs)
        return value

    def factor(self) -> Any:
        t = self.take()
        if t == ("o", "-"):
            return -self.factor()
        if t == ("o", "("):
            value = self.expr()
            if self.take() != ("o", ")"):
                raise ValueError("unbalanced")
            return value
        if t[0] == "n":
            return _sympy().Integer(int(t[1]))
        if t[0] == "s":
            if (nxt := self.peek()) and nxt == ("o", "("):  # floor(...) / ceiling(...)
                fn = {"floor": "floor", "ceiling": "ceiling", "ceil": "ceiling"}.get(t[1])
                if fn is None:
                    raise ValueError(t[1])
                self.take()
                arg = self.expr()
                if self.take() != ("o", ")"):
                    raise ValueError("unbalanced")
                return getattr(_sympy(), fn)(arg)
            return symbol(t[1])
        raise ValueError(t[1])


@functools.lru_cache(maxsize=4096)
def parse_dim_param(text: str) -> Dim:
    """A ``dim_param`` string as a Dim; never evaluates code.

    ``"seq"`` → symbol, ``"seq + 1"`` → expression, anything the small grammar
    does not cover (``"p2o.DynamicDimension.0"`` is a plain name; ``"a?b"`` is
    not) → one opaque symbol with that exact name.
    """
    text = text.strip()
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", text):
        return symbol(text)
    if len(text) <= 200:
        try:
            p = _Parser(text)
            value = p.expr()
            if p.peek() is None:
                return normalize(value)
        except (ValueError, IndexError, TypeError, ZeroDivisionError):
            pass
    return symbol(text)
