"""A small exact symbolic algebra for dims: polynomials over dim symbols, with
``floor``/``ceil``/``min``/``max`` as opaque atoms.

Why not sympy: every export with a ``batch`` or ``seq`` dim needs symbolic
arithmetic, and importing sympy costs ~0.25 s and ~25 MB — more than the whole
analysis of a small conv net. Shapes need only +, −, ×, exact division, floor/
ceil division, min/max, substitution and printing; an expression here is a dict
``{monomial: rational coefficient}`` where a monomial is a sorted tuple of
``(atom, power)`` and an atom is a symbol name or a :class:`Fn`. Expressions are
immutable, hashable and canonical, so structural equality is semantic equality
for everything the shape rules build (``seq + 1 - 1 == seq``,
``min(seq + 1, seq) == seq``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any, Union

Number = int | Fraction
Atom = Union[str, "Fn"]
Mono = tuple[tuple[Atom, int], ...]


def _key(atom: Atom) -> tuple[Any, ...]:
    return (0, atom) if isinstance(atom, str) else (1, atom.kind, repr(atom.args))


@dataclass(frozen=True)
class Fn:
    """An opaque function atom: ``floor(a/b)``, ``ceil(a/b)``, ``min(a, b)``, ``max(a, b)``."""

    kind: str
    args: tuple[Any, ...]

    def __repr__(self) -> str:
        return self._text

    @cached_property
    def _text(self) -> str:
        # Printed once per atom: sorting terms keys on this text, and nested floors (Swin's
        # dynamic window padding, ``(w - H % w) % w`` per stage) made it exponential.
        if self.kind in ("floor", "ceil"):
            num, den = self.args
            return f"{self.kind}({_paren(num)}/{den})"
        return f"{self.kind}({', '.join(str(a) for a in self.args)})"

    def symbols(self) -> set[str]:
        out: set[str] = set()
        for a in self.args:
            if isinstance(a, Expr):
                out |= a.free_symbols
        return out

    def subs(self, env: Mapping[str, Number]) -> Any:
        args = [a.subs(env) if isinstance(a, Expr) else a for a in self.args]
        return {"floor": floordiv, "ceil": ceildiv, "min": minimum, "max": maximum}[self.kind](*args)


def _paren(x: Any) -> str:
    s = str(x)
    return f"({s})" if isinstance(x, Expr) and len(x.terms) > 1 else s


def _coef(c: Number) -> Number:
    if type(c) is int:  # the common case, without an ABC isinstance check
        return c
    if isinstance(c, Fraction) and c.denominator == 1:
        return int(c)
    return c


def _mono_mul(a: Mono, b: Mono) -> Mono:
    if not a:
        return b
    if not b:
        return a
    powers: dict[Atom, int] = {}
    for atom, p in a + b:
        powers[atom] = powers.get(atom, 0) + p
    return tuple(sorted(powers.items(), key=lambda x: _key(x[0])))


class Expr:
    """Immutable polynomial over atoms with rational coefficients (never constant:
    constructors return a plain ``int``/``Fraction`` for constants)."""

    __slots__ = ("_hash", "_str", "terms")

    def __init__(self, terms: Mapping[Mono, Number]) -> None:
        self.terms: dict[Mono, Number] = {m: (c if type(c) is int else _coef(c)) for m, c in terms.items() if c}
        self._hash: int | None = None
        self._str: str | None = None

    # -- construction -----------------------------------------------------------
    @staticmethod
    def symbol(name: str) -> Expr:
        return Expr({((name, 1),): 1})

    @staticmethod
    def atom(fn: Fn) -> Expr:
        return Expr({((fn, 1),): 1})

    # -- arithmetic -------------------------------------------------------------
    @staticmethod
    def _raw(terms: dict[Mono, Number]) -> Any:
        """An Expr from terms already canonical (non-zero, normalised coefficients), or its
        number when constant — sums of thousands of node costs go through here."""
        if not terms:
            return 0
        if len(terms) == 1 and () in terms:
            return terms[()]
        e = object.__new__(Expr)
        e.terms, e._hash, e._str = terms, None, None
        return e

    def _add(self, other: Any, sign: int = 1) -> Any:
        out = dict(self.terms)
        if type(other) is Expr:
            items: Any = other.terms.items()
        elif type(other) is int or isinstance(other, Fraction):
            items = (((), other),)
        else:
            return NotImplemented
        for m, c in items:
            v = out.get(m, 0) + (c if sign == 1 else -c)
            if v:
                out[m] = v if type(v) is int else _coef(v)
            else:
                out.pop(m, None)
        return Expr._raw(out)

    def __add__(self, other: Any) -> Any:
        return self._add(other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        return self._add(other, -1)

    def __rsub__(self, other: Any) -> Any:
        return (-self)._add(other)

    def __neg__(self) -> Expr:
        return Expr({m: -c for m, c in self.terms.items()})

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, (int, Fraction)):
            return normalize(Expr({m: c * other for m, c in self.terms.items()}))
        if not isinstance(other, Expr):
            return NotImplemented
        out: dict[Mono, Number] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in other.terms.items():
                m = _mono_mul(m1, m2)
                out[m] = out.get(m, 0) + c1 * c2
        return normalize(Expr(out))

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Any:
        """Exact division; a non-exact symbolic quotient raises ``ValueError``."""
        if isinstance(other, (int, Fraction)):
            if other == 0:
                raise ZeroDivisionError("division of a dim by zero")
            return self * (Fraction(1) / other)
        if isinstance(other, Expr):
            q = divide_exact(self, other)
            if q is None:
                raise ValueError(f"{self} is not divisible by {other}")
            return q
        return NotImplemented

    def __pow__(self, p: int) -> Any:
        out: Any = 1
        for _ in range(p):
            out = out * self
        return out

    # -- comparison / hashing ---------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Expr):
            return self.terms == other.terms
        return False

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self.terms.items()))
        return self._hash

    def __lt__(self, other: Any) -> bool:
        raise TypeError(f"cannot order symbolic dim {self}")

    __le__ = __gt__ = __ge__ = __lt__

    # -- queries ------------------------------------------------------------------------
    @property
    def free_symbols(self) -> set[str]:
        out: set[str] = set()
        for m in self.terms:
            for atom, _ in m:
                out |= {atom} if isinstance(atom, str) else atom.symbols()
        return out

    def subs(self, env: Mapping[str, Number]) -> Any:
        """Substitute bound symbols; a plain number when nothing symbolic is left."""
        total: Any = 0
        for m, c in self.terms.items():
            term: Any = c
            for atom, p in m:
                v = env.get(atom, Expr.symbol(atom)) if isinstance(atom, str) else atom.subs(env)
                term = term * (v ** p)
            total = total + term
        return total

    @property
    def constant_term(self) -> Number:
        return self.terms.get((), 0)

    def as_linear(self, name: str) -> tuple[Number, Any] | None:
        """``(a, b)`` when this is ``a·name + b`` with ``b`` free of ``name``."""
        a: Number = 0
        rest: dict[Mono, Number] = {}
        for m, c in self.terms.items():
            if m == ((name, 1),):
                a = c
            elif any(atom == name or (isinstance(atom, Fn) and name in atom.symbols()) for atom, _ in m):
                return None
            else:
                rest[m] = c
        return a, normalize(Expr(rest))

    def function(self) -> Fn | None:
        """The Fn when this expression is exactly one function atom."""
        if len(self.terms) == 1:
            (m, c), = self.terms.items()
            if c == 1 and len(m) == 1 and m[0][1] == 1 and isinstance(m[0][0], Fn):
                return m[0][0]
        return None

    # -- display ------------------------------------------------------------------------
    def __str__(self) -> str:
        if self._str is None:
            self._str = self._format()
        return self._str

    def _format(self) -> str:
        def mono_key(m: Mono) -> tuple[Any, ...]:
            return (-sum(p for _, p in m), [_key(a) for a, _ in m])

        parts: list[tuple[str, str]] = []
        for m in sorted(self.terms, key=mono_key):
            c = self.terms[m]
            body = "*".join((str(a) if isinstance(a, str) else repr(a)) + (f"**{p}" if p > 1 else "") for a, p in m)
            mag = abs(c)
            if not body:
                text = str(mag)
            elif mag == 1:
                text = body
            else:
                text = f"{mag}*{body}"
            parts.append(("-" if c < 0 else "+", text))
        out = ("-" if parts[0][0] == "-" else "") + parts[0][1]
        for sign, text in parts[1:]:
            out += f" {sign} {text}"
        return out

    def __repr__(self) -> str:
        return f"Expr({self})"


def normalize(x: Any) -> Any:
    """A constant Expr → its number; anything else unchanged."""
    if type(x) is int:
        return x
    if type(x) is Expr:
        if not x.terms:
            return 0
        if len(x.terms) == 1 and () in x.terms:
            return _coef(x.terms[()])
    if isinstance(x, Fraction):
        return _coef(x)
    return x


def divide_exact(a: Expr, b: Expr) -> Any:
    """``a / b`` when ``b`` is one monomial dividing every term of ``a``."""
    if len(b.terms) != 1:
        return None
    (mono, coef), = b.terms.items()
    need = dict(mono)
    out: dict[Mono, Number] = {}
    for m, c in a.terms.items():
        have = dict(m)
        if any(have.get(atom, 0) < p for atom, p in need.items()):
            return None
        rest = {atom: p - need.get(atom, 0) for atom, p in have.items() if p - need.get(atom, 0)}
        out[tuple(sorted(rest.items(), key=lambda x: _key(x[0])))] = Fraction(c) / Fraction(coef)
    return normalize(Expr(out))


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, Fraction)) and not isinstance(x, bool)


def floordiv(a: Any, b: Any) -> Any:
    if _is_num(a) and _is_num(b):
        return math.floor(Fraction(a) / Fraction(b))
    if not _is_num(b) or b <= 0:
        q = divide_exact(a, b) if isinstance(a, Expr) and isinstance(b, Expr) else None
        if q is not None and (isinstance(q, int) or (isinstance(q, Expr) and all(
                isinstance(c, int) for c in q.terms.values()))):
            return q
        return Expr.atom(Fn("floor", (a, b)))
    q = a * Fraction(1, b) if isinstance(b, int) else a / b
    if isinstance(q, Expr) and all(isinstance(c, int) for c in q.terms.values()):
        return q
    # floor(P/b) with rational coefficients in P = floor(d·P/(d·b)) with integer ones:
    # ``floor(width/2 - 1/2)`` is the canonical ``floor((width - 1)/2)``
    if isinstance(a, Expr) and isinstance(b, int):
        den = math.lcm(*(Fraction(c).denominator for c in a.terms.values()))
        if den > 1:
            return floordiv(a * den, b * den)
    # floor((floor(x/m) + k)/b) = floor((x + k·m)/(m·b)) for integer-valued x and integer k:
    # a conv/pool chain's sizes stay one floor deep (YOLO's stride-32 map on a dynamic input
    # was five nested floors in every formula of the report).
    if isinstance(a, Expr) and isinstance(b, int):
        k = a.constant_term
        rest = (a - k) * Fraction(1, b) if isinstance(k, int) else None
        if isinstance(rest, Expr) and all(isinstance(c, int) for c in rest.terms.values()):
            return rest + k // b  # floor(P/b + k/b) = P/b + floor(k/b) when P/b is an integer
        inner = (a - k).function() if isinstance(k, int) else None
        if inner is not None and inner.kind == "floor" and isinstance(inner.args[1], int) and inner.args[1] > 0 \
                and _integer_valued(inner.args[0]):
            x, m = inner.args
            return floordiv(x + k * m, m * b)
    # floor(x + k) = floor(x) + k for an integer k: keep the integer part outside.
    if isinstance(a, Expr) and isinstance(b, int):
        k = a.constant_term
        whole = (k // b) if isinstance(k, int) else math.floor(Fraction(k) / b)
        inner = a - whole * b
        fn = Expr.atom(Fn("floor", (inner, b)))
        return fn + whole if whole else fn
    return Expr.atom(Fn("floor", (a, b)))


def _integer_valued(x: Any) -> bool:
    """Integer coefficients over dims and floor/ceil/min/max atoms: an integer for every binding."""
    if isinstance(x, int):
        return True
    return isinstance(x, Expr) and all(isinstance(c, int) for c in x.terms.values())


def ceildiv(a: Any, b: Any) -> Any:
    if _is_num(a) and _is_num(b):
        return -floordiv(-a, b)
    if _is_num(b) and b > 0 and isinstance(a, Expr):
        q = a * Fraction(1, b) if isinstance(b, int) else a / b
        if isinstance(q, Expr) and all(isinstance(c, int) for c in q.terms.values()):
            return q
    return Expr.atom(Fn("ceil", (a, b)))


INF = math.inf


def bounds(x: Any) -> tuple[Any, Any]:
    """Interval of values ``x`` can take when every dim symbol is >= 1 (dims
    are positive sizes)."""
    if _is_num(x):
        return x, x
    lo: Any = 0
    hi: Any = 0
    for m, c in x.terms.items():
        mlo: Any = 1
        mhi: Any = 1
        for atom, p in m:
            alo, ahi = (1, INF) if isinstance(atom, str) else _fn_bounds(atom)
            if alo < 0:  # odd powers of possibly negative atoms: give up precision
                alo, ahi = -INF, INF
            else:
                alo, ahi = alo ** p, ahi ** p
            mlo, mhi = _interval_product(mlo, mhi, alo, ahi)
        tlo, thi = (c * mlo, c * mhi) if c > 0 else (c * mhi, c * mlo)
        lo, hi = lo + tlo, hi + thi
    return lo, hi


def _interval_product(alo: Any, ahi: Any, blo: Any, bhi: Any) -> tuple[Any, Any]:
    """``[alo, ahi] · [blo, bhi]`` with 0 · ∞ = 0 (a factor that is exactly 0 stays
    0; ``-inf · 0`` would be NaN and poison every comparison after it)."""
    def mul(x: Any, y: Any) -> Any:
        return 0 if x == 0 or y == 0 else x * y

    cands = [mul(alo, blo), mul(alo, bhi), mul(ahi, blo), mul(ahi, bhi)]
    return min(cands), max(cands)


def _fn_bounds(fn: Fn) -> tuple[Any, Any]:
    if fn.kind in ("min", "max"):
        (alo, ahi), (blo, bhi) = bounds(fn.args[0]), bounds(fn.args[1])
        pick = min if fn.kind == "min" else max
        return pick(alo, blo), pick(ahi, bhi)
    num_lo, num_hi = bounds(fn.args[0])
    den = fn.args[1]
    if not _is_num(den) or den <= 0:
        return -INF, INF
    lo = math.floor(num_lo / den) if num_lo not in (-INF, INF) else num_lo
    hi = math.ceil(num_hi / den) if num_hi not in (-INF, INF) else num_hi
    return lo, hi


def _minmax(kind: str, a: Any, b: Any) -> Any:
    if _is_num(a) and _is_num(b):
        return min(a, b) if kind == "min" else max(a, b)
    if a == b:
        return a
    absorbed = _absorb(kind, a, b)
    if absorbed is not None:
        return absorbed
    lo, hi = bounds(normalize(a - b))
    if hi <= 0:  # a <= b for every binding
        return a if kind == "min" else b
    if lo >= 0:  # a >= b
        return b if kind == "min" else a
    args = tuple(sorted((a, b), key=str))
    return Expr.atom(Fn(kind, args))


def _absorb(kind: str, a: Any, b: Any) -> Any:
    """Absorption, which interval bounds cannot see (the arguments are
    correlated): ``max(min(y, z), y) = y``, ``min(max(y, z), y) = y`` and
    ``max(max(y, z), y) = max(y, z)``. TorchScript exports of HF position
    embeddings produce ``max(min(64, seq), seq)`` for a plain ``seq``."""
    for x, y in ((a, b), (b, a)):
        fn = x.function() if isinstance(x, Expr) else None
        if fn is None or fn.kind not in ("min", "max") or y not in fn.args:
            continue
        return y if fn.kind != kind else x
    return None


def minimum(a: Any, b: Any) -> Any:
    return _minmax("min", a, b)


def maximum(a: Any, b: Any) -> Any:
    return _minmax("max", a, b)


def product(values: Iterable[Any]) -> Any:
    out: Any = 1
    for v in values:
        out = out * v
    return normalize(out)
