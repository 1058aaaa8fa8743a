"""The dim algebra (``symbolic.Expr`` through ``dims``) and the cost polynomials built on it,
against sympy as an independent oracle.

Random expression trees over positive dims — +, −, ×, floor and ceil division by a positive
constant, min, max — are built twice, once with our algebra and once with sympy. At random
positive bindings both must give the same integer; whatever our algebra claims (two
expressions provably equal, a value's interval) must hold numerically; and a dim turned
into a cost polynomial must evaluate to the same number. sympy is a test-only dependency:
the package never imports it.
"""

from __future__ import annotations

import pytest

sympy = pytest.importorskip("sympy")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from model_analyze import dims as D  # noqa: E402
from model_analyze import symbolic as S  # noqa: E402
from model_analyze.cost.poly import atom_values, from_dim  # noqa: E402

NAMES = ("a", "b", "c")
SYM = {n: sympy.Symbol(n, integer=True, positive=True) for n in NAMES}


def _leaf():
    return st.one_of(st.sampled_from(NAMES).map(lambda n: (D.symbol(n), SYM[n])),
                     st.integers(-3, 9).map(lambda k: (k, sympy.Integer(k))))


def _node(children):
    binary = st.tuples(st.sampled_from(["add", "sub", "mul", "min", "max"]), children, children)
    division = st.tuples(st.sampled_from(["floor", "ceil"]), children, st.integers(1, 8))
    return st.one_of(binary, division).map(_build)


def _build(t):
    op, (x, sx), other = t
    if op in ("floor", "ceil"):
        k = other
        if op == "floor":
            return D.floordiv(x, k), sympy.floor(sx / k)
        return D.ceildiv(x, k), sympy.ceiling(sx / k)
    y, sy = other
    if op == "add":
        return D.add(x, y), sx + sy
    if op == "sub":
        return D.sub(x, y), sx - sy
    if op == "mul":
        return D.mul(x, y), sx * sy
    if op == "min":
        return D.dmin(x, y), sympy.Min(sx, sy)
    return D.dmax(x, y), sympy.Max(sx, sy)


EXPRS = st.recursive(_leaf(), _node, max_leaves=8)
ENVS = st.fixed_dictionaries({n: st.integers(1, 200) for n in NAMES})


def _sympy_value(sx, env):
    return int(sx.subs({SYM[n]: v for n, v in env.items()}))


def _ours(x, env):
    v = D.subs(x, env)
    assert D.is_int(v) or v == int(v), (x, env, v)
    return int(v)


@settings(max_examples=120, deadline=None)
@given(EXPRS, ENVS)
def test_value_at_a_binding_equals_sympys(expr, env):
    ours, theirs = expr
    assert _ours(ours, env) == _sympy_value(theirs, env)


@settings(max_examples=80, deadline=None)
@given(EXPRS, EXPRS, st.lists(ENVS, min_size=4, max_size=4))
def test_provably_equal_is_equal_everywhere(e1, e2, envs):
    (x, sx), (y, sy) = e1, e2
    if D.equal(x, y):
        for env in envs:
            assert _sympy_value(sx, env) == _sympy_value(sy, env)
    # and an expression minus itself simplifies to zero in our algebra
    assert D.equal(x, x) and D.sub(x, x) == 0


@settings(max_examples=80, deadline=None)
@given(EXPRS, ENVS)
def test_bounds_contain_every_value(expr, env):
    ours, theirs = expr
    lo, hi = S.bounds(ours)
    assert lo <= _sympy_value(theirs, env) <= hi


@settings(max_examples=80, deadline=None)
@given(EXPRS, EXPRS, ENVS)
def test_cost_polynomials_evaluate_like_sympy(e1, e2, env):
    (x, sx), (y, sy) = e1, e2
    px, py = from_dim(x), from_dim(y)
    for p, sp in ((px, sx), (py, sy), (px * py, sx * sy), (px + py * 3, sx + 3 * sy), (px - py, sx - sy)):
        values = atom_values(p.atoms(), env)
        assert p.evaluate(values) == _sympy_value(sp, env)
