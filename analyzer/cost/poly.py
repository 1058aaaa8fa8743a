"""Costs as polynomials in the model's dims — in the one dim algebra.

A :class:`Poly` *is* an expression of :mod:`model_analyze.symbolic` (``self.e``: an
:class:`~model_analyze.symbolic.Expr` or a number): every sum, product and exact division
of a cost is done by that algebra, so a cost and the dims it is made of can never
disagree (there used to be a second polynomial type with its own canonical form). What
this class adds is the cost's *view*: monomials over named atoms — a dim symbol
(``seq``), or a non-polynomial dim (``floor((H + 31)/32)``, ``min(1, seq)``) as one
opaque atom named by its text and evaluated through the dim algebra — for printing
(``7,110,393,856·seq + 262,144·seq²``) and for evaluation at a binding.

Why not sympy: a cost is a sum over thousands of nodes of products of dims; sympy's
import alone costs more than analysing a small conv net (sympy is the tests' oracle of
this algebra, ``tests/test_algebra_oracle.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from .. import dims as D
from .. import symbolic as S
from ..symbolic import Expr, Fn

Coef = int | Fraction
Mono = tuple[tuple[str, int], ...]

_ATOMS: dict[str, Any] = {}
"""Opaque atom name → its dim expression (``floor(...)``, ``min(...)``), for evaluation."""

_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _norm_coef(c: Coef) -> Coef:
    if isinstance(c, Fraction) and c.denominator == 1:
        return int(c)
    return c


@functools.lru_cache(maxsize=8192)
def _atom_name(fn: Fn) -> str:
    name = D.fmt(Expr.atom(fn))
    _ATOMS[name] = Expr.atom(fn)
    return name


def _atom_expr(name: str) -> Any:
    expr = _ATOMS.get(name)
    return expr if expr is not None else D.symbol(name)


class Poly:
    """An immutable cost: a dim-algebra expression with a monomial view over named atoms."""

    __slots__ = ("_fmt", "_terms", "e")

    def __init__(self, terms: Mapping[Mono, Coef] | None = None, *, e: Any = None) -> None:
        if e is None:
            total: Any = 0
            for mono, c in (terms or {}).items():
                term: Any = c
                for name, p in mono:
                    term = term * _atom_expr(name) ** p
                total = total + term
            e = total
        self.e: Any = e if type(e) is int else S.normalize(e)
        self._terms: dict[Mono, Coef] | None = None
        self._fmt: str | None = None

    # -- construction -----------------------------------------------------------
    @staticmethod
    def const(c: Coef) -> Poly:
        if type(c) is int and -1024 <= c <= 1 << 20:
            return _small_const(c)
        return Poly(e=c)

    @staticmethod
    def atom(name: str) -> Poly:
        return Poly(e=_atom_expr(name))

    # -- the monomial view --------------------------------------------------------
    @property
    def terms(self) -> dict[Mono, Coef]:
        """``{((atom name, power), …): coefficient}``, atoms named by their text."""
        if self._terms is None:
            out: dict[Mono, Coef] = {}
            if isinstance(self.e, Expr):
                for mono, c in self.e.terms.items():
                    key = tuple(sorted((a if isinstance(a, str) else _atom_name(a), p) for a, p in mono))
                    out[key] = _norm_coef(out.get(key, 0) + c)
            elif self.e:
                out[()] = _norm_coef(self.e)
            self._terms = {m: c for m, c in out.items() if c}
        return self._terms

    # -- arithmetic (the dim algebra's) -----------------------------------------------
    def __add__(self, other: Poly | Coef) -> Poly:
        o = other.e if type(other) is Poly else other
        if type(o) is not Expr and not o:
            return self
        if type(self.e) is not Expr and not self.e:
            return other if type(other) is Poly else Poly(e=o)
        return Poly(e=self.e + o)

    __radd__ = __add__

    def __neg__(self) -> Poly:
        return Poly(e=-self.e)

    def __sub__(self, other: Poly | Coef) -> Poly:
        return self + (-(other.e if isinstance(other, Poly) else other))

    def __rsub__(self, other: Coef) -> Poly:
        return Poly(e=other - self.e)

    def __mul__(self, other: Poly | Coef) -> Poly:
        o = other.e if type(other) is Poly else other
        if type(o) is int and o == 1:
            return self
        return Poly(e=self.e * o)

    __rmul__ = __mul__

    def div_exact(self, other: Poly) -> Poly | None:
        """``self / other`` when ``other`` is a single monomial dividing every term
        (``B·H·d·seq²`` / ``seq²``); None otherwise."""
        a, b = self.e, other.e
        if not isinstance(b, Expr):
            if not b:
                return None
            return Poly(e=a * (Fraction(1) / Fraction(b)) if isinstance(a, Expr) else Fraction(a) / Fraction(b))
        if not isinstance(a, Expr):
            return None if a else Poly(e=0)
        q = S.divide_exact(a, b)
        return None if q is None else Poly(e=q)

    # -- queries ------------------------------------------------------------------
    @property
    def is_const(self) -> bool:
        return not isinstance(self.e, Expr)

    @property
    def const_value(self) -> Coef:
        return self.e.constant_term if isinstance(self.e, Expr) else self.e

    def atoms(self) -> set[str]:
        return {a for m in self.terms for a, _ in m}

    def degree(self, atom: str | None = None) -> int:
        """Total degree, or the degree in one atom."""
        if atom is None:
            return max((sum(p for _, p in m) for m in self.terms), default=0)
        return max((p for m in self.terms for a, p in m if a == atom), default=0)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Poly):
            return self.e == other.e
        if isinstance(other, (int, Fraction)):
            return not isinstance(self.e, Expr) and self.e == other
        return False

    def __hash__(self) -> int:
        return hash(self.e)

    def __repr__(self) -> str:
        return f"Poly({self.fmt()})"

    # -- evaluation -----------------------------------------------------------------
    def evaluate(self, values: Mapping[str, Coef]) -> Coef | None:
        """Value with every atom taken from ``values``; None if one is missing."""
        total: Coef = 0
        for m, c in self.terms.items():
            v: Coef = c
            for a, p in m:
                x = values.get(a)
                if x is None:
                    return None
                v *= x ** p
            total += v
        return _norm_coef(total)

    # -- display ------------------------------------------------------------------------
    def fmt(self, digits: bool = True) -> str:
        """``7,110,393,856·seq + 262,144·seq²`` (highest degree last); cached (the
        report prints the formula of every tensor, and tensors share a few)."""
        if digits:
            if self._fmt is None:
                self._fmt = self._format(True)
            return self._fmt
        return self._format(False)

    def _format(self, digits: bool) -> str:
        if not self.terms:
            return "0"
        parts: list[tuple[str, str]] = []
        for m in sorted(self.terms, key=lambda m: (sum(p for _, p in m), m)):
            c = self.terms[m]
            mono = "·".join(_atom_str(a) + (str(p).translate(_SUPERSCRIPT) if p > 1 else "") for a, p in m)
            mag = abs(c)
            num = (f"{mag:,}" if digits else str(mag)) if isinstance(mag, int) else str(mag)
            body = num if not mono else mono if mag == 1 else f"{num}·{mono}"
            parts.append(("-" if c < 0 else "+", body))
        text = ("-" if parts[0][0] == "-" else "") + parts[0][1]
        for sign, body in parts[1:]:
            text += f" {sign} {body}"
        return text

    def expr(self) -> str:
        """Machine-readable form (``7110393856*seq + 262144*seq**2``)."""
        if not self.terms:
            return "0"
        out = []
        for m in sorted(self.terms, key=lambda m: (sum(p for _, p in m), m)):
            c = self.terms[m]
            factors = [str(c)] + [(_atom_str(a) + (f"**{p}" if p > 1 else "")) for a, p in m]
            if factors[0] == "1" and len(factors) > 1:
                factors = factors[1:]
            out.append("*".join(factors))
        return " + ".join(out).replace("+ -", "- ")


def _atom_str(a: str) -> str:
    return f"({a})" if any(ch in a for ch in " +-*/(") else a


@functools.lru_cache(maxsize=4096)
def _small_const(c: int) -> Poly:
    """Shared instances for common constants (Polys are never mutated)."""
    return Poly(e=c)


ZERO = Poly()
ONE = Poly.const(1)


def from_dim(d: Any) -> Poly | None:
    """A dim (``int``, symbolic expression, ``Poly``) as a Poly; None if unknown."""
    if d is None:
        return None
    if isinstance(d, Poly):
        return d
    if isinstance(d, bool):
        return Poly.const(int(d))
    if isinstance(d, (int, Fraction)):
        return Poly.const(d) if isinstance(d, int) else Poly(e=d)
    if isinstance(d, float):
        return Poly(e=Fraction(d).limit_denominator(1 << 20)) if d == d else None
    if isinstance(d, Expr):
        return Poly(e=d)
    return None


def product(values: Iterable[Any]) -> Poly | None:
    """Product of dims; None if any is unknown. Concrete dims multiply as ints."""
    k = 1
    out: Any = None
    for v in values:
        if type(v) is int:
            k *= v
            continue
        p = from_dim(v)
        if p is None:
            return None
        out = p.e if out is None else out * p.e
    return Poly.const(k) if out is None else Poly(e=out * k)


def total(values: Iterable[Poly | None]) -> Poly:
    """Sum ignoring unknowns (callers track unknowns separately), in one pass over
    the terms: adding one by one built an intermediate polynomial per value, which
    made the totals of a 1M-node graph the slowest part of its analysis."""
    terms: dict[Any, Any] = {}
    const: Any = 0
    for p in values:
        if p is None:
            continue
        e = p.e
        if isinstance(e, Expr):
            for m, c in e.terms.items():
                terms[m] = terms.get(m, 0) + c
        else:
            const = const + e
    if const:
        terms[()] = terms.get((), 0) + const
    return Poly(e=S.normalize(Expr(terms)))


def atom_values(atoms: Iterable[str], bindings: Mapping[str, int]) -> dict[str, Coef]:
    """Values of atoms at ``bindings`` (dims by name; opaque atoms through the dim algebra)."""
    out: dict[str, Coef] = {}
    for a in atoms:
        if a in bindings:
            out[a] = bindings[a]
            continue
        expr = _ATOMS.get(a)
        if expr is None:
            continue
        v = D.subs(expr, dict(bindings))
        if isinstance(v, (int, Fraction)):
            out[a] = v
    return out
