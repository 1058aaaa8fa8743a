"""The dependency algebra, checked against brute-force boolean reachability.

The oracle composes explicit n×n visibility matrices (numpy, independent of the
interval code); the algebra must give exactly the same sets, and the published
closed forms (METRICS.md) where they exist.
"""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest

from model_analyze.tokenflow.deps import (
    ALL,
    CAUSAL,
    IDENTITY,
    BlockSparse,
    Chunked,
    Dilated,
    GlobalLocal,
    affine,
    compose,
    count,
    union,
    window,
)


def matrix(dep, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for lo, hi in dep.at(i, n):
            m[i, lo:hi + 1] = True
    return m


def family_matrix(kind: str, n: int, **p) -> np.ndarray:
    """Visibility written directly from each family's definition."""
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    if kind == "causal":
        return j <= i
    if kind == "window":
        return (j <= i) & (j > i - p["w"])
    if kind == "chunked":
        return (i // p["c"] == j // p["c"]) & ((j <= i) if p.get("causal", True) else True)
    if kind == "global_local":
        g = np.zeros(n, bool)
        g[list(p["globals"])] = True
        return (np.abs(i - j) <= p["w"]) | g[None, :] | g[:, None]
    if kind == "dilated":
        return (j <= i) & ((i - j) % p["d"] == 0) & ((i - j) // p["d"] < p["w"])
    raise ValueError(kind)


def stack(layer: np.ndarray, layers: int) -> np.ndarray:
    """Residual stack: x_{l+1} = x_l ∪ attn(x_l) → reach = (I + M)^L as booleans."""
    n = layer.shape[0]
    step = layer | np.eye(n, dtype=bool)
    out = np.eye(n, dtype=bool)
    for _ in range(layers):
        out = (step.astype(np.int64) @ out.astype(np.int64)) > 0
    return out


def residual_stack(dep, layers: int):
    x = IDENTITY
    for _ in range(layers):
        attn = union(x, compose(dep, x), compose(dep, x))  # Q, K and V paths
        x = union(x, attn)
    return x


CASES = [
    ("causal", CAUSAL, {}),
    ("window", window(5), {"w": 5}),
    ("chunked", Chunked(6), {"c": 6}),
    ("chunked", Chunked(6, causal=False), {"c": 6, "causal": False}),
    ("global_local", GlobalLocal(2, 2, (0, 17)), {"w": 2, "globals": (0, 17)}),
    ("dilated", Dilated(3, 2), {"w": 3, "d": 2}),
]


@pytest.mark.parametrize("kind, dep, params", CASES, ids=[c[0] + str(k) for k, c in enumerate(CASES)])
def test_single_layer_matches_definition(kind, dep, params):
    n = 40
    assert (matrix(dep, n) == family_matrix(kind, n, **params)).all()


@pytest.mark.parametrize("kind, dep, params", CASES, ids=[c[0] + str(k) for k, c in enumerate(CASES)])
@pytest.mark.parametrize("layers", [1, 2, 3, 5])
def test_composed_stack_matches_boolean_reachability(kind, dep, params, layers):
    n = 40
    want = stack(family_matrix(kind, n, **params), layers)
    got = matrix(residual_stack(dep, layers), n)
    assert (got == want).all()


def test_block_sparse_matches_layout():
    layout = ((0,), (0, 1), (1, 2), (0, 3))
    dep = BlockSparse(4, layout)
    m = matrix(dep, 16)
    for qb, row in enumerate(layout):
        for kb in range(4):
            assert m[qb * 4:(qb + 1) * 4, kb * 4:(kb + 1) * 4].all() == (kb in row)
    want = stack(m, 2)
    assert (matrix(residual_stack(dep, 2), 16) == want).all()


def test_mistral_reach_closed_form():
    # METRICS.md: L sliding windows of W -> L·(W-1)+1 = 32·4095+1 = 131,041 for Mistral-7B.
    d = residual_stack(window(4096), 32)
    assert d.is_band
    assert count(d.at(131071, 131072)) == 131_041
    assert d.at(131071, 131072) == [(131071 - 131040, 131071)]


def test_global_tokens_connect_everything_within_two_layers():
    # METRICS.md: global tokens make any two tokens reachable within 2 layers.
    dep = GlobalLocal(1, 1, (0,))
    n = 64
    assert count(residual_stack(dep, 1).at(n - 1, n)) < n
    assert count(residual_stack(dep, 2).at(n - 1, n)) == n


def test_chunked_never_crosses_chunks():
    d = residual_stack(Chunked(8), 30)
    assert d.at(20, 64) == [(16, 20)]


def test_deep_pattern_stacks_stay_linear():
    """A 2^L expression tree would never finish; the factored union does."""
    d = residual_stack(Dilated(4, 2), 64)
    got = d.at(200, 256)
    assert got[0] == (0, 0) and all(lo == hi and lo % 2 == 0 for lo, hi in got)


def test_conv_chain_receptive_field():
    # conv 3x3 s1 p1 -> pool 2 s2 -> conv 3x3 s1 p1 (input side first):
    # r = 1 + 2·1 + 1·1 + 2·2 = 8, jump 2, effective padding 1 + 0 + 1·2 = 3.
    # Positions flow from the output back toward the input: last op applied first.
    d = compose(affine(1, -1, 1), compose(affine(2, 0, 1), affine(1, -1, 1)))
    s, a, b = d.affine()
    assert (s, b - a + 1, -a) == (2, 8, 3)


def test_transposed_then_strided_rounds_intermediate_positions():
    # conv k3 s2 p1: o1 <- [2·o1 - 1, 2·o1 + 1]; convT k3 s2 p1: o2 = 2·i - 1 + t, t < 3
    # => i in [(o2-1)/2, (o2+1)/2]: one i for even o2, two for odd o2.
    # even o2 = 4: i = 2 -> inputs 3..5; odd o2 = 5: i in {2, 3} -> inputs 3..7.
    ct = affine(Fraction(1, 2), Fraction(-1, 2), Fraction(1, 2))
    d = compose(ct, affine(2, -1, 1))
    assert d.at(4, 100) == [(3, 5)] and d.at(5, 100) == [(3, 7)]
    assert d.hull.affine() == (1, -2, 2)  # the RF summary is the max field: 5


def test_random_compositions_against_oracle():
    rng = random.Random(0)
    n = 30
    pool = [CAUSAL, window(3), Chunked(4), Dilated(2, 3), GlobalLocal(1, 0, (5,), causal=True), ALL,
            affine(1, -1, 1)]
    for _ in range(40):
        a, b, c = (rng.choice(pool) for _ in range(3))
        dep = union(compose(a, b), compose(c, IDENTITY), compose(compose(a, b), c))
        ma, mb, mc = (matrix(x, n).astype(int) for x in (a, b, c))
        want = ((ma @ mb) > 0) | mc.astype(bool) | ((((ma @ mb) > 0).astype(int) @ mc) > 0)
        assert (matrix(dep, n) == want).all()


def test_chain_through_a_longer_intermediate_axis_is_not_clipped_to_the_source():
    # GQA in a KV-cache export: 2 kv heads (the source axis, n = 2) repeated to 4
    # query heads (h <- floor(h/2)), merged with d = 8 into 32 features
    # (f <- floor(f/8)). Feature 31 is head 3, which reads kv head 1; clipping the
    # intermediate head axis at n = 2 answered kv head 0 (unsound).
    from model_analyze.tokenflow.deps import Chain, constant

    heads_to_kv = affine(Fraction(1, 2), Fraction(-1, 2), 0)
    feats_to_heads = affine(Fraction(1, 8), Fraction(-7, 8), 0)
    chain = Chain((feats_to_heads, heads_to_kv))
    assert [chain.at(f, 2) for f in (0, 15, 16, 31)] == [[(0, 0)], [(0, 0)], [(1, 1)], [(1, 1)]]
    # a projection over all 32 features reads both kv heads
    assert Chain((constant(0, 31), feats_to_heads, heads_to_kv)).at(0, 2) == [(0, 1)]
