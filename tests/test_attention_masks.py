"""Mask families read from unfused graphs, against two independent oracles:

1. the hand derivation in each case's comment (the family and its parameter);
2. onnxruntime: for a one-layer model (embedding → attention → residual) output
   ``i`` moves when input token ``j`` changes exactly when key ``j`` is visible
   to query ``i`` — so the perturbation matrix *is* the mask, measured by running
   the model, and ``mask.keys`` must reproduce it at every position.
"""

from __future__ import annotations

import attention_builders as ab
import numpy as np
import onnxruntime as ort
import pytest

from model_analyze.attention import attention_layers
from model_analyze.attention.maskfit import fit_lengths
from model_analyze.attention.model import MaskInfo
from model_analyze.runner import prepare
from model_analyze.tokenflow.deps import BlockSparse, Chunked, Dilated, GlobalLocal, count, window

N = 26  # oracle length: not a length the analyzer evaluates at (16, 24, c + 3, 4c + 3)


def influence(model, n: int = N) -> np.ndarray:
    """[n, n]: does output i change when input token j changes (onnxruntime)."""
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 40, (1, n)).astype(np.int64)

    def run(x: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": x}
        if "attention_mask" in names:
            feeds["attention_mask"] = np.ones((1, n), np.int64)
        return sess.run(None, feeds)[0][0]

    base = run(ids)
    out = np.zeros((n, n), bool)
    for j in range(n):
        moved = ids.copy()
        moved[0, j] = (moved[0, j] + 1) % 40
        out[:, j] = np.abs(run(moved) - base).max(axis=-1) > 1e-6
    return out


def keys_matrix(mask: MaskInfo, n: int = N) -> np.ndarray:
    out = np.zeros((n, n), bool)
    for i in range(n):
        for a, b in mask.keys.at(i, n):
            out[i, a:b + 1] = True
    return out


def layer0(model):
    layers = attention_layers(prepare(model))
    assert len(layers) == 1
    return layers[0]


CASES = [
    # (builder, family, params): every expected value derived by hand from the builder's mask
    # j <= i
    pytest.param(ab.causal(), "causal", {}, id="causal"),
    # i - 4 < j <= i: HF sliding_window=4 → 4 keys
    pytest.param(ab.window(4), "sliding_window", {"window": 4}, id="window4"),
    # i//4 == j//4 and j <= i: chunks of 4, causal
    pytest.param(ab.chunked(4), "chunked", {"chunk": 4, "causal": True}, id="chunked4"),
    # i//5 == j//5: block-diagonal 5×5
    pytest.param(ab.chunked(5, False), "chunked", {"chunk": 5, "causal": False}, id="chunked5-bidir"),
    # |band| i-2..i+1 plus tokens 0, 1 global (see everything, seen by everything)
    pytest.param(ab.global_local(2, 1, 2), "global_local",
                 {"left": 2, "right": 1, "globals": [0, 1], "causal": False}, id="global-local"),
    # i - j in {0, 2, 4}: w = 3 keys spaced by d = 2
    pytest.param(ab.dilated(3, 2), "dilated", {"dilation": 2, "w": 3}, id="dilated"),
    # j <= i + 1: causal with one key of look-ahead (a band open to the past)
    pytest.param(ab.lookahead(1), "band", {"right": 1}, id="lookahead"),
]


@pytest.mark.parametrize(("mask", "family", "params"), CASES)
def test_family_matches_hand_derivation_and_runtime(mask, family, params):
    model = ab.attention_stack([mask])
    la = layer0(model)
    assert la.mask.family == family
    assert la.mask.params == params
    assert la.mask.source == "evaluated"
    assert len(la.mask.evaluated_at) >= 2
    assert np.array_equal(keys_matrix(la.mask) | np.eye(N, dtype=bool), influence(model))


def test_block_sparse_layout():
    # blocks of 4; query block qb sees the key blocks listed: 0: {0}, 1: {0,1}, 2: {0,2},
    # 3: {1,3}, 4: {0,4}, 5: {0,5}. Query 22 (block 5) sees 0..3 and 20..23.
    layout = [[0], [0, 1], [0, 2], [1, 3], [0, 4], [0, 5], [4, 6], [0, 7]]
    model = ab.attention_stack([ab.block_sparse(4, layout)])
    la = layer0(model)
    assert la.mask.family == "block_sparse"
    assert la.mask.params["block"] == 4
    assert la.mask.params["layout"][:6] == layout[:6]
    assert la.mask.keys.at(22, 24) == [(0, 3), (20, 23)]
    got = keys_matrix(la.mask, 24) | np.eye(24, dtype=bool)
    assert np.array_equal(got, influence(model, 24))


def test_pattern_fitting_no_family_is_kept_concrete():
    # (7i + 3j) mod 5 == 0 or i == j: periodic in both i and j, not a band, chunk,
    # dilation or block layout → a concrete pattern at one evaluated length
    model = ab.attention_stack([ab.pattern()])
    la = layer0(model)
    assert la.mask.family == "pattern"
    n0 = la.mask.params["n"]
    assert n0 in la.mask.evaluated_at
    assert np.array_equal(keys_matrix(la.mask, n0) | np.eye(n0, dtype=bool), influence(model, n0))
    with pytest.raises(ValueError):
        la.mask.keys.at(0, n0 + 1)  # known at n0 only, never silently "full"


def test_where_form_of_the_mask():
    # Where(visible, scores, -1e9) instead of an additive bias; HF window 3
    la = layer0(ab.attention_stack([ab.window(3)], mask_op="where"))
    assert (la.mask.family, la.mask.params) == ("sliding_window", {"window": 3})


def test_padding_mask_is_input_driven():
    # key padding from the attention_mask input only: analyzed with no padding → every key
    la = layer0(ab.attention_stack(["padding"]))
    assert la.mask.family == "bidirectional"
    assert la.mask.source == "input-driven" and la.mask.input_driven == ("attention_mask",)
    la = layer0(ab.attention_stack(["padding+causal"]))
    assert la.mask.family == "causal" and la.mask.source == "input-driven"


def test_no_mask_is_bidirectional_and_says_so():
    la = layer0(ab.attention_stack([None]))
    assert la.mask.family == "bidirectional" and la.mask.source == "none"
    assert la.mask.sees_future


def test_activation_bias_is_a_finite_score_not_a_mask():
    # a bias computed from activations (x·xᵀ) cannot be evaluated without weights,
    # but a finite bias hides no key (softmax of finite scores is positive
    # everywhere): every key stays visible, and the note says why
    la = layer0(ab.attention_stack(["learned"]))
    assert la.mask.family == "bidirectional"
    assert "activations" in la.mask.note and "finite" in la.mask.note


def test_mask_selected_from_activations_is_not_understood_not_full():
    # Where(x·xᵀ > 0, 0, -1e9): which keys are hidden depends on the data
    la = layer0(ab.attention_stack(["learned-gate"]))
    assert la.mask.family == "unknown"
    assert "activations" in la.mask.note


def test_window_wider_than_the_small_lengths_is_seen_above_its_constant():
    # window 600 looks causal at n = 16, 24; the slice constant 600 makes the
    # analyzer evaluate at 603, where query 602 sees 3..602
    la = layer0(ab.attention_stack([ab.window(600)]))
    assert la.mask.params == {"window": 600}
    assert 603 in la.mask.evaluated_at and max(la.mask.evaluated_at) < 700
    assert la.mask.span(10_000) == 600


@pytest.mark.parametrize(("mask", "family", "size"), [
    pytest.param(ab.window(10_000), "sliding_window", 10_000, id="window"),
    pytest.param(ab.chunked(8192), "chunked", 8192, id="chunked"),
])
def test_too_large_to_evaluate_is_read_by_probing_the_constant(mask, family, size):
    # 10000 + 3 is above the direct-evaluation limit: the constant is replaced by
    # small probes (5 and 7 → window 5 and 7), so the model's window is the constant itself
    la = layer0(ab.attention_stack([mask]))
    assert la.mask.family == family
    assert la.mask.params.get("window", la.mask.params.get("chunk")) == size
    assert la.mask.params["probed"] is True
    assert max(la.mask.evaluated_at) <= 24
    assert la.mask.span(50_000) == size


def test_alternating_local_global_stack():
    # Gemma-2 style: local (window 4) and global (causal) layers alternate; each
    # distinct mask is read once and shared by the layers using it
    model = ab.attention_stack([ab.window(4), ab.causal(), ab.window(4), ab.causal()])
    layers = attention_layers(prepare(model))
    assert [la.mask.family for la in layers] == ["sliding_window", "causal"] * 2
    assert [la.name for la in layers] == [f"layers.{i}" for i in range(4)]
    assert all(la.stack == "layers" for la in layers)


def test_per_head_masks_union_and_mixed_causality():
    # head 0 causal, head 1 sees one later key: the layer's keys are the union
    model = ab.attention_stack([ab.per_head([ab.causal(), ab.lookahead(1)])])
    la = layer0(model)
    assert la.mask.per_head and la.mask.mixed_causal and la.mask.sees_future
    assert la.mask.keys.at(5, 20) == [(0, 6)]
    k, i, j = la.mask.future_example
    assert k == 1 and j > i
    assert np.array_equal(keys_matrix(la.mask) | np.eye(N, dtype=bool), influence(model))


# -- the fitter and the span/pairs formulas on hand-built matrices -------------------------
def _mat(n, fn):
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    return np.broadcast_to(fn(i, j), (n, n)).copy()


def test_fit_checks_every_length():
    # A window of 6 must show at n = 12 too (query 11 sees 6..11). A matrix that is
    # causal at n = 12 but windowed at n = 30 is inconsistent: no family, a concrete pattern.
    mats = {30: _mat(30, lambda i, j: (j <= i) & (j > i - 6)), 12: _mat(12, lambda i, j: j <= i)}
    fit = fit_lengths(mats)
    assert fit.family == "pattern"
    mats[12] = _mat(12, lambda i, j: (j <= i) & (j > i - 6))
    assert fit_lengths(mats).params == {"window": 6}


def _brute(mask: MaskInfo, n: int) -> tuple[int, int]:
    sizes = [count(mask.keys.at(i, n)) for i in range(n)]
    return max(sizes), sum(sizes)


@pytest.mark.parametrize("mask", [
    MaskInfo("chunked", Chunked(8, True)), MaskInfo("chunked", Chunked(5, False)),
    MaskInfo("block_sparse", BlockSparse(4, ((0,), (0, 1), (1, 2)), True)),
    MaskInfo("global_local", GlobalLocal(2, 1, (0, 3), False)),
    MaskInfo("dilated", Dilated(3, 2, 0)),
    MaskInfo("sliding_window", window(3, 2), {"window": 3, "right": 2}),
    MaskInfo("sliding_window", window(5), {"window": 5}),
], ids=lambda m: m.keys.describe())
def test_span_and_visible_pairs_formulas(mask):
    for n in (1, 2, 7, 13, 29, 40):
        assert (mask.span(n), mask.visible_pairs(n)) == _brute(mask, n)


def test_visible_pairs_never_raises_for_a_pattern_at_another_length():
    # a concrete pattern is known at its own length only: span says so (ValueError),
    # visible_pairs gives the dense upper bound n² for cost estimates
    la = layer0(ab.attention_stack([ab.pattern()]))
    n0 = la.mask.params["n"]
    assert la.mask.visible_pairs(n0) == int(keys_matrix(la.mask, n0).sum())
    assert la.mask.visible_pairs(n0 + 9) == (n0 + 9) ** 2
    with pytest.raises(ValueError):
        la.mask.span(n0 + 9)
