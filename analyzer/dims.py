"""Dimensions that are either plain ``int`` or symbolic expressions.

Why this module: most conv nets have fully concrete shapes, so a dim stays a
Python ``int`` whenever it can; symbolic dims (``seq``, ``batch``, ``s0 + 1``,
``floor((H - 1)/2) + 1``) are :class:`~model_analyze.symbolic.Expr` values from
our own small exact algebra — sympy is never imported on the analysis path.

Dim names come from untrusted model files, so they are never evaluated as code.
:func:`parse_dim_param` is a small safe parser for the arithmetic exporters
write (``seq + 1``, ``2*s0``, ``floor(s0/2)``); anything else becomes one opaque
symbol.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from typing import Any, TypeGuard

from . import symbolic as S
from .symbolic import Expr

Dim = int | Expr
"""A dimension: a non-negative ``int`` or a symbolic expression in dim symbols."""


@functools.cache
def symbol(name: str) -> Expr:
    """The symbol for dim ``name``."""
    return Expr.symbol(name)


def is_int(d: object) -> TypeGuard[int]:
    return isinstance(d, int) and not isinstance(d, bool)


def as_int(d: object) -> int | None:
    """``d`` as an int if it is concrete."""
    if d is None:
        return None
    if is_int(d):
        return d
    if isinstance(d, Fraction) and d.denominator == 1:
        return int(d)
    return None


def normalize(d: Any) -> Any:
    """Constant expressions and whole fractions become ints."""
    return S.normalize(d)


def add(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return a + b
    return normalize(a + b)


def sub(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return a - b
    return normalize(a - b)


def mul(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return a * b
    return normalize(a * b)


def prod(values: Any) -> Dim:
    out: Dim = 1
    for v in values:
        out = mul(out, v)
    return out


def floordiv(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return a // b
    return normalize(S.floordiv(a, b))


def ceildiv(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return -(-a // b)
    return normalize(S.ceildiv(a, b))


def divide(a: Dim, b: Dim) -> Dim | None:
    """Exact quotient ``a / b`` (``seq·64 / 64 = seq``), None when not exact."""
    if is_int(a) and is_int(b):
        return a // b if b and a % b == 0 else None
    try:
        q = normalize(a / b)  # type: ignore[operator]
    except (ValueError, ZeroDivisionError):
        return None
    if isinstance(q, Fraction) or (isinstance(q, Expr) and any(isinstance(c, Fraction) for c in q.terms.values())):
        return None
    return q


def dmax(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return max(a, b)
    return normalize(S.maximum(a, b))


def dmin(a: Dim, b: Dim) -> Dim:
    if is_int(a) and is_int(b):
        return min(a, b)
    return normalize(S.minimum(a, b))


def minmax_args(d: object) -> tuple[Any, ...] | None:
    """The arguments when ``d`` is ``min(a, b)`` or ``max(a, b)``."""
    fn = d.function() if isinstance(d, Expr) else None
    return fn.args if fn is not None and fn.kind in ("min", "max") else None


def free_symbols(d: object) -> set[str]:
    """Names of the dim symbols ``d`` depends on."""
    return d.free_symbols if isinstance(d, Expr) else set()


def subs(d: Any, bindings: dict[str, int]) -> Any:
    """``d`` with the bound dims replaced by their values (int when fully bound)."""
    if not isinstance(d, Expr) or not bindings:
        return d
    try:
        return normalize(d.subs(bindings))
    except ZeroDivisionError:  # undefined at this binding (a fuzzed stride of 0): stays unevaluated, so unknown
        return d


def equal(a: Dim | None, b: Dim | None) -> bool:
    """Provably equal (unknown dims are never equal to anything)."""
    if a is None or b is None:
        return False
    if a == b:
        return True
    try:
        return normalize(a - b) == 0
    except TypeError:
        return False


def fmt(d: object) -> str:
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
            if t[1] != "*" and (not isinstance(rhs, int) or not rhs):
                # exporters divide by constants (``seq/2``); ``a/b`` of two names is a path-like
                # name (``/decoder/rnn/Unsqueeze_output_0_dim_1``), one opaque symbol
                raise ValueError("division by a non-constant")
            # ``/`` is true division (sympy's printing, which torch's exporters write:
            # ``floor(width/2 - 1/2) + 1`` is a conv's ⌊(W − 1)/2⌋ + 1), ``//`` floor division
            value = value * rhs if t[1] == "*" else S.floordiv(value, rhs) if t[1] == "//" else \
                value * Fraction(1, rhs)
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
            return int(t[1])
        if t[0] == "s":
            if (nxt := self.peek()) and nxt == ("o", "("):  # floor(...) / ceiling(...)
                fn = {"floor": "floor", "ceiling": "ceiling", "ceil": "ceiling"}.get(t[1])
                if fn is None:
                    raise ValueError(t[1])
                self.take()
                arg = self.expr()
                if self.take() != ("o", ")"):
                    raise ValueError("unbalanced")
                return S.floordiv(arg, 1) if fn == "floor" else S.ceildiv(arg, 1)
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
