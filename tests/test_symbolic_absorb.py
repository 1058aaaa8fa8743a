"""Absorption in the dim algebra: ``max(min(y, z), y) = y`` and its duals.

Interval bounds cannot prove these (the two arguments are correlated), and a
TorchScript export of BERT with 64 position embeddings declares its output
length as ``max(min(64, seq), seq)``; left unsimplified, the output axis no
longer matched the input's ``seq`` and the model reach was not computed.
"""

from __future__ import annotations

from model_analyze import dims as D


def test_min_inside_max_is_absorbed():
    s = D.symbol("seq")
    assert D.dmax(D.dmin(64, s), s) == s
    assert D.dmax(s, D.dmin(s, 64)) == s


def test_max_inside_min_is_absorbed():
    s = D.symbol("seq")
    assert D.dmin(D.dmax(3, s), s) == s
    assert D.dmin(D.dmax(s, 3), 3) == 3


def test_same_kind_nesting_keeps_the_outer_expression():
    s = D.symbol("seq")
    inner = D.dmax(s, 3)
    assert D.dmax(inner, s) == inner
    assert D.dmin(D.dmin(s, 64), 64) == D.dmin(s, 64)


def test_unrelated_arguments_stay_symbolic():
    s, t = D.symbol("seq"), D.symbol("past")
    assert D.minmax_args(D.dmax(D.dmin(64, s), t)) is not None
