"""Polynomials in the model's dims: the number type of every cost.

Why not sympy: a cost is a sum over thousands of nodes of products of dims
(``4096·seq``, ``32·seq²``). Building those as sympy expressions costs tens of
microseconds per operation and would dominate the analysis of a 5,000-node
LLM; a dict of monomials costs well under one. So costs are :class:`Poly`:
``{monomial: coefficient}`` with integer or :class:`~fractions.Fraction`
coefficients, where a monomial is a sorted tuple of ``(atom, power)``.

An *atom* is a dim symbol (``seq``) or, for a dim that is not a polynomial in
symbols (``floor(seq/2)``, ``min(1, seq)``), that whole expression as one
opaque variable, evaluated through the dim algebra (:mod:`model_analyze.symbolic`);
conversions are cached per expression.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from .. import dims as D
from ..symbolic import Expr

Coef = int | Fraction
Mono = tuple[tuple[str, int], ...]

_ATOMS: dict[str, Any] = {}
"""Opaque atom name → its dim expression (``floor(...)``, ``min(...)``), for evaluation."""

_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _norm_coef(c: Coef) -> Coef:
    if isinstance(c, Fraction) and c.denominator == 1:
        return int(c)
    return c


class Poly:
    """An immutable polynomial over dim atoms with rational coefficients."""

    __slots__ = ("terms",)

    def __init__(self, terms: Mapping[Mono, Coef] | None = None) -> None:
        self.terms: dict[Mono, Coef] = {
            m: (c if type(c) is int or c.denominator != 1 else int(c))  # type: ignore[union-attr]
            for m, c in (terms or {}).items() if c}

    # -- construction -----------------------------------------------------------
    @staticmethod
    def const(c: Coef) -> Poly:
        if type(c) is int and -1024 <= c <= 1 << 20:
            return _small_const(c)
        return Poly({(): c})

    @staticmethod
    def atom(name: str) -> Poly:
        return Poly({((name, 1),): 1})

    # -- arithmetic -------------------------------------------------------------
    def __add__(self, other: Poly | Coef) -> Poly:
        o = other if isinstance(other, Poly) else Poly.const(other)
        if not o.terms:
            return self
        if not self.terms:
            return o
        out = dict(self.terms)
        for m, c in o.terms.items():
            out[m] = out.get(m, 0) + c
        return Poly(out)

    __radd__ = __add__

    def __neg__(self) -> Poly:
        return Poly({m: -c for m, c in self.terms.items()})

    def __sub__(self, other: Poly | Coef) -> Poly:
        return self + (-(other if isinstance(other, Poly) else Poly.const(other)))

    def __mul__(self, other: Poly | Coef) -> Poly:
        if not isinstance(other, Poly):
            if other == 1:
                return self
            return Poly({m: c * other for m, c in self.terms.items()})
        if other.is_const:
            return self * other.const_value
        if self.is_const:
            return other * self.const_value
        out: dict[Mono, Coef] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in other.terms.items():
                m = _mono_mul(m1, m2)
                out[m] = out.get(m, 0) + c1 * c2
        return Poly(out)

    __rmul__ = __mul__

    def div_exact(self, other: Poly) -> Poly | None:
        """``self / other`` when ``other`` is a single monomial dividing every
        term (``B·H·d·seq²`` / ``seq²``); None otherwise."""
        if len(other.terms) != 1:
            return None
        (mono, coef), = other.terms.items()
        out: dict[Mono, Coef] = {}
        for m, c in self.terms.items():
            q = _mono_div(m, mono)
            if q is None:
                return None
            out[q] = Fraction(c) / Fraction(coef)
        return Poly(out)

    # -- queries ------------------------------------------------------------------
    @property
    def is_const(self) -> bool:
        return all(not m for m in self.terms)

    @property
    def const_value(self) -> Coef:
        return self.terms.get((), 0)

    def atoms(self) -> set[str]:
        return {a for m in self.terms for a, _ in m}

    def degree(self, atom: str | None = None) -> int:
        """Total degree, or the degree in one atom."""
        if atom is None:
            return max((sum(p for _, p in m) for m in self.terms), default=0)
        return max((p for m in self.terms for a, p in m if a == atom), default=0)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (int, Fraction)):
            other = Poly.const(other)
        return isinstance(other, Poly) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(frozenset(self.terms.items()))

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
        """``7,110,393,856·seq + 262,144·seq²`` (highest degree last)."""
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


def _mono_mul(a: Mono, b: Mono) -> Mono:
    if not a:
        return b
    if not b:
        return a
    out = dict(a)
    for k, p in b:
        out[k] = out.get(k, 0) + p
    return tuple(sorted(out.items()))


def _mono_div(a: Mono, b: Mono) -> Mono | None:
    out = dict(a)
    for k, p in b:
        if out.get(k, 0) < p:
            return None
        out[k] -= p
    return tuple(sorted((k, p) for k, p in out.items() if p))


@functools.lru_cache(maxsize=4096)
def _small_const(c: int) -> Poly:
    """Shared instances for common constants (Polys are never mutated)."""
    return Poly({(): c})


ZERO = Poly()
ONE = Poly.const(1)


@functools.lru_cache(maxsize=8192)
def _from_expr(expr: Expr) -> Poly:
    """A symbolic dim as a Poly: symbols stay atoms; ``floor``/``min``… become
    opaque atoms evaluated through the dim algebra."""
    terms: dict[Mono, Coef] = {}
    for mono, c in expr.terms.items():
        parts = []
        for atom, p in mono:
            parts.append((atom if isinstance(atom, str) else _opaque_name(Expr.atom(atom)), p))
        key = tuple(sorted(parts))
        terms[key] = terms.get(key, 0) + c
    return Poly(terms)


def _opaque_name(expr: Any) -> str:
    name = D.fmt(expr)
    _ATOMS[name] = expr
    return name


def from_dim(d: Any) -> Poly | None:
    """A dim (``int``, symbolic expression, ``Poly``) as a Poly; None if unknown."""
    if d is None:
        return None
    if isinstance(d, Poly):
        return d
    if isinstance(d, bool):
        return Poly.const(int(d))
    if isinstance(d, (int, Fraction)):
        return Poly.const(d)
    if isinstance(d, float):
        return Poly.const(Fraction(d).limit_denominator(1 << 20)) if d == d else None
    if isinstance(d, Expr):
        return _from_expr(d)
    return None


def product(values: Iterable[Any]) -> Poly | None:
    """Product of dims; None if any is unknown. Concrete dims multiply as ints."""
    k = 1
    out: Poly | None = None
    for v in values:
        if type(v) is int:
            k *= v
            continue
        p = from_dim(v)
        if p is None:
            return None
        out = p if out is None else out * p
    return Poly.const(k) if out is None else out * k


def total(values: Iterable[Poly | None]) -> Poly:
    """Sum ignoring unknowns (callers track unknowns separately)."""
    out: dict[Mono, Coef] = {}
    for p in values:
        if p is None:
            continue
        for m, c in p.terms.items():
            out[m] = out.get(m, 0) + c
    return Poly(out)


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
