"""Token flow on architectures beyond plain attention stacks (issue 12): MoE
routing, block-sparse attention assembled from pieces, recurrences unrolled by
the exporter, reshapes that regroup positions.

The zoo fixtures were exported by ``samples/zoo/export_transformers.py`` from
tiny configs (random weights; ``samples/zoo/README.md`` lists them). Expected
sets come from the config by hand (derivation in each comment) and are checked
against the onnxruntime perturbation oracle (``verify``): observed = predicted
is *tight*, and no observation outside the prediction is *sound*.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from builders import FLOAT, GraphBuilder
from conftest import SAMPLES
from model_analyze.attention import attention_layers, attention_problems
from model_analyze.runner import AnalyzeOptions, prepare
from model_analyze.tokenflow import flow, reach
from model_analyze.tokenflow.deps import CAUSAL, Periodic, Steps, constant, union, window
from model_analyze.tokenflow.query import dep_of, reach_formula

ZOO = SAMPLES / "zoo"


@cache
def verified(name: str, n: int | None):
    pytest.importorskip("onnxruntime")
    from model_analyze.verify import verify_model

    opts = AnalyzeOptions(seq_len=n)
    return verify_model(str(ZOO / name), opts, positions=n or 32, seeds=2)


def oracle(name: str, n: int | None, rows: dict[int, list[int]]) -> None:
    """Sound and tight for the token input, and at ``rows`` exactly the hand-derived sets."""
    result = verified(name, n)
    pair = result.pair(("input_ids", 1), "output")
    assert pair.sound, pair.violations[:3]
    assert pair.tightness == 1.0, (name, pair.observed, pair.predicted)
    for i, expected in rows.items():
        assert pair.observed_at(i) == expected == pair.predicted_at(i), (name, i)


def span(a: int, b: int) -> list[int]:
    return list(range(a, b + 1))


# -- mixture of experts ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mixtral-moe-eager-dynamo.onnx", "mixtral-moe-eager-torchscript.onnx"])
def test_mixtral_moe_keeps_each_token_to_itself(name):
    # 2 layers of sliding window 5 (keys i-4..i): position i sees i-8..i. The experts'
    # combine is Reshape [T·k, H] -> [T, k, H] then ReduceSum over k: no token moves.
    # n = 20: position 19 sees 11..19 (9 = 2·4 + 1), position 10 sees 2..10.
    ctx = prepare(str(ZOO / name), AnalyzeOptions(seq_len=20))
    layers = attention_layers(ctx)
    assert [la.mask.family for la in layers] == ["sliding_window"] * 2  # the router softmax is no attention
    assert attention_problems(ctx) == []  # nor an attention whose layout was not understood (AT090)
    assert flow(ctx).mixed_ops(("input_ids", 1)) == {}
    oracle(name, 20, {19: span(11, 19), 10: span(2, 10)})


def test_llama4_chunked_moe_router_scatter_moves_no_token():
    # Both layers chunked by 4: position 16 (chunk 16..19) sees only 16, position 8
    # only 8. The router writes top-k scores along the expert axis of [T, E]
    # (ScatterElements axis 1) and repeats the tokens once per expert (Tile, then a
    # reshape [E·T, H] -> [E, T, H]): neither mixes tokens.
    name = "llama4-chunked-moe-eager-dynamo.onnx"
    ctx = prepare(str(ZOO / name), AnalyzeOptions(seq_len=17))
    assert [la.mask.family for la in attention_layers(ctx)] == ["chunked", "chunked"]
    assert flow(ctx).mixed_ops(("input_ids", 1)) == {}
    oracle(name, 17, {16: [16], 8: [8]})


def test_llama4_one_chunked_one_causal_layer_is_causal():
    # Chunked then full causal: position i sees 0..i, |reach(i)| = i + 1.
    name = "llama4-chunked-causal-moe-eager-dynamo.onnx"
    ctx = prepare(str(ZOO / name), AnalyzeOptions(seq_len=17))
    assert [la.mask.family for la in attention_layers(ctx)] == ["chunked", "causal"]
    result = flow(ctx)
    assert reach_formula(dep_of(result, "output", 1, ("input_ids", 1))) == "i+1"
    oracle(name, 17, {16: span(0, 16), 8: span(0, 8)})


# -- block-sparse attention ----------------------------------------------------------------------
def test_bigbird_block_sparse_is_one_layer_with_its_layout():
    # BigBird block_sparse, block 2, n = 32 (16 blocks), eval (random blocks are the
    # constant block 0). Query block 8 (positions 16, 17) sees the band of blocks 7..9
    # (14..19) and the global blocks 0 and 15 (0..1, 30..31); blocks 0 and 15 are
    # global rows (every key).
    name = "bigbird-s32-eager-torchscript.onnx"
    ctx = prepare(str(ZOO / name), AnalyzeOptions())
    layers = attention_layers(ctx)
    assert len(layers) == 1
    la = layers[0]
    assert la.self_attention and la.q_len == la.k_len == 32
    assert la.mask.family == "block_sparse"
    p = la.mask.params
    assert (p["block"], p["global_rows"], p["global_blocks"], p["band_blocks"], p["random_blocks"]) == (2, 2, 2, 3, 0)
    assert la.mask.keys.at(16, 32) == [(0, 1), (14, 19), (30, 31)]
    oracle(name, None, {16: [0, 1, *span(14, 19), 30, 31], 31: span(0, 31), 0: span(0, 31)})


def test_bigbird_two_layers_are_two_for_the_architecture():
    # The 2-layer export (10 softmaxes) is 2 attention layers; the architecture review
    # counts depth L = 2 (config num_hidden_layers = 2), not 10.
    from model_analyze.runner import analyze

    name = "bigbird-s32-l2-eager-torchscript.onnx"
    ctx = prepare(str(ZOO / name), AnalyzeOptions())
    assert [la.mask.family for la in attention_layers(ctx)] == ["block_sparse"] * 2
    report = analyze(str(ZOO / name), AnalyzeOptions())
    assert report.section("architecture").metric("arch.depth").value == 2


# -- recurrences unrolled by the exporter ------------------------------------------------------------
@pytest.mark.parametrize("name", ["mamba-s16-eager-torchscript.onnx", "recurrent-gemma-s16-eager-torchscript.onnx"])
def test_unrolled_scan_is_causal(name):
    # A linear recurrence h_t = a_t·h_{t-1} + b_t·x_t stacked step by step: position t
    # sees 0..t (the fixtures' state decay is close to 1, so the oracle sees it all).
    oracle(name, None, {3: span(0, 3), 8: span(0, 8), 15: span(0, 15)})


def test_mamba_report_has_no_misaligned_branches_and_reach_reads_the_ids(cli_run):
    ctx = prepare(str(ZOO / "mamba-s16-eager-torchscript.onnx"), AnalyzeOptions())
    src = flow(ctx).sources[("input_ids", 1)]
    assert "sequence" in src.kinds
    report = cli_run(str(ZOO / "mamba-s16-eager-torchscript.onnx"), "--format", "json")
    assert "RF001" not in report.stdout
    out = cli_run("reach", str(ZOO / "mamba-s16-eager-torchscript.onnx"), "--at", "3")
    assert out.exit_code == 0
    assert "input_ids[1] positions 0..3 " in out.stdout  # the token input, not attention_mask


def test_steps_table_is_exact_and_its_hull_causal():
    # Step t depends on 0..t: at 5 the table gives 0..5; the hull is [0, i].
    steps = union(*(Steps(((t, constant(0, t)),)) for t in range(8)))
    assert isinstance(steps, Steps) and len(steps.entries) == 8
    assert steps.at(5, 8) == [(0, 5)]
    assert steps.hull.describe() == CAUSAL.describe().replace("-∞", "0")


# -- regrouping reshapes -------------------------------------------------------------------------------
def _bytes_model(rows: int = 2048, width: int = 64, group: int = 4) -> GraphBuilder:
    """Bytes embedded one per row, then ``group`` consecutive rows per output row
    (``[rows, width] -> [rows/group, group·width]``, magika-style)."""
    b = GraphBuilder(opset=17)
    ids = b.input("bytes", 7, [1, rows])  # int64
    emb = b.op("Gather", [b.weight([256, width]), ids], axis=0)
    grouped = b.op("Reshape", [emb, b.const(np.array([1, rows // group, group * width], np.int64))])
    b.op("MatMul", [grouped, b.weight([group * width, 8])], name="y")
    b.output("y")
    return b


def test_reshape_grouping_positions_is_followed_exactly(tmp_path):
    # Output row r holds bytes 4r .. 4r+3: row 5 -> 20..23, row 511 -> 2044..2047.
    ctx = prepare(_bytes_model().model(), AnalyzeOptions())
    assert reach(ctx, "y", 1, 5, ("bytes", 1))[("bytes", 1)] == [(20, 23)]
    assert reach(ctx, "y", 1, 511, ("bytes", 1))[("bytes", 1)] == [(2044, 2047)]
    pytest.importorskip("onnxruntime")
    import onnx

    from model_analyze.verify import verify_model

    path = tmp_path / "bytes.onnx"
    onnx.save(_bytes_model(rows=64, width=4).model(), str(path))
    pair = verify_model(str(path), positions=64, seeds=1).pair(("bytes", 1), "y")
    assert pair.sound and pair.tightness == 1.0
    assert pair.observed_at(5) == [20, 21, 22, 23] == pair.predicted_at(5)


def test_tile_then_split_reads_each_copy_at_its_own_position(tmp_path):
    # x [T, H] tiled twice along T -> [2T, H] (row p reads p mod T), reshaped to
    # [2, T, H]: element (e, t) reads row t. T = 6: (·, 4) sees 4 only.
    b = GraphBuilder(opset=17)
    x = b.input("x", FLOAT, [6, 3])
    t = b.op("Tile", [x, b.const(np.array([2, 1], np.int64))])
    r = b.op("Reshape", [t, b.const(np.array([2, 6, 3], np.int64))])
    b.op("ReduceSum", [r, b.const(np.array([0], np.int64))], name="y", keepdims=0)
    b.output("y")
    ctx = prepare(b.model(), AnalyzeOptions())
    assert reach(ctx, "y", 0, 4, ("x", 0))[("x", 0)] == [(4, 4)]
    tiled = flow(ctx).states[t].axes[0][("x", 0)]
    assert isinstance(tiled, Periodic) and tiled.at(8, 6) == [(2, 2)]  # 8 mod 6


def test_fixed_sets_stay_apart_from_a_moving_band():
    # A window of 3 around i plus global tokens 0..1 and 30..31 (BigBird's middle row):
    # at 16 that is 0..1, 14..18 (window(3, right=2) = i-2..i+2), 30..31 — not 0..31.
    dep = union(window(3, 2), constant(0, 1), constant(30, 31))
    assert dep.at(16, 32) == [(0, 1), (14, 18), (30, 31)]
    assert dep.hull.at(16, 32) == [(0, 31)]  # the band summary still bridges them


def test_reach_without_a_positional_axis_says_every_element(cli_run, tmp_path):
    import onnx

    b = GraphBuilder(opset=17)
    x = b.input("x", FLOAT, [1, 8, 4])
    b.op("ReduceMean", [x], name="y", axes=[1], keepdims=0)
    b.output("y")
    path = tmp_path / "pool.onnx"
    onnx.save(b.model(), str(path))
    out = cli_run("reach", str(path), "--at", "0", "--source", "x[1]")
    assert "axis None" not in out.stdout
    assert "every element of y" in out.stdout and "0..7" in out.stdout


def test_padding_mask_gathered_by_range_indices_reads_its_own_position():
    # TorchScript's advanced indexing mask[batch_idx, kv_idx] (transformers' mask
    # builders) gathers with indices Range(0, n) + 0·n: index i at position i. The
    # causal OPT decoder's query i then depends on mask positions 0..i (a hidden key
    # j <= i changes it), as the oracle sees; it used to be "moved by data" (all of them).
    name = "opt-eager-torchscript.onnx"
    ctx = prepare(str(ZOO / name), AnalyzeOptions(seq_len=24))
    assert flow(ctx).mixed_ops(("attention_mask", 1)) == {}
    pair = verified(name, 24).pair(("attention_mask", 1), "output")
    assert pair.sound and pair.tightness == 1.0
    assert pair.observed_at(12) == span(0, 12) == pair.predicted_at(12)


# -- structural zeros: chunked state-space duality (Mamba-2) --------------------------------------
def _decay_model(contract: str = "einsum", branch: str = "const", upper: int = 0) -> GraphBuilder:
    """y[i] = Σ_j exp(where(tril(ones)[i, j], s[i, j], -inf)) · x[j] over a dynamic length:
    the segsum decay of Mamba-2's chunk recurrence (``upper=1``: its transpose).
    ``branch="data"``: the hidden entries take a data value instead of -inf (no zeros)."""
    b = GraphBuilder(opset=17)
    x = b.input("x", FLOAT, [1, "T", 4])
    s = b.op("MatMul", [x, b.op("Transpose", [x], perm=[0, 2, 1])])  # [1, T, T] scores
    shape = b.op("Shape", [s])
    ones = b.op("Expand", [b.const(np.array(True)), shape])
    hidden = b.op("Not", [b.op("Trilu", [ones, b.const(np.array(0, np.int64))], upper=upper)])
    fill = b.const(np.array(-np.inf, np.float32)) if branch == "const" else s
    e = b.op("Exp", [b.op("Where", [hidden, fill, b.op("Neg", [s])])])
    if contract == "einsum":
        b.op("Einsum", [e, x], name="y", equation="bij,bjd->bid")
    else:
        b.op("MatMul", [e, x], name="y")
    b.output("y")
    return b


@pytest.mark.parametrize("contract", ["einsum", "matmul"])
def test_triangular_decay_contraction_is_causal(contract, tmp_path):
    # exp(-inf) = 0 above the diagonal: y[i] sums x[0..i] — causal, i + 1 positions.
    ctx = prepare(_decay_model(contract).model(), AnalyzeOptions(seq_len=12))
    assert reach(ctx, "y", 1, 5, ("x", 1))[("x", 1)] == [(0, 5)]
    assert reach_formula(dep_of(flow(ctx), "y", 1, ("x", 1))) == "i+1"
    pytest.importorskip("onnxruntime")
    import onnx

    from model_analyze.verify import verify_model

    path = tmp_path / "decay.onnx"
    onnx.save(_decay_model(contract).model(), str(path))
    pair = verify_model(str(path), AnalyzeOptions(seq_len=12), positions=12, seeds=1).pair(("x", 1), "y")
    assert pair.sound and pair.tightness == 1.0
    assert pair.observed_at(5) == span(0, 5) == pair.predicted_at(5)


def test_upper_triangle_and_data_fill_are_read_as_they_are():
    # Trilu(upper=1) keeps j >= i: y[i] sums x[i..T-1]. A data value where the mask
    # hides (no -inf) is no zero: every position.
    ctx = prepare(_decay_model(upper=1).model(), AnalyzeOptions(seq_len=12))
    assert reach(ctx, "y", 1, 5, ("x", 1))[("x", 1)] == [(5, 11)]
    ctx = prepare(_decay_model(branch="data").model(), AnalyzeOptions(seq_len=12))
    assert reach(ctx, "y", 1, 5, ("x", 1))[("x", 1)] == [(0, 11)]


def test_mamba2_chunked_scan_is_causal_by_chunk():
    # Mamba-2, chunk 4, n = 16 (export_transformers.py spec "mamba2"). Truth: t sees 0..t
    # (the oracle: 136 = 16·17/2 of 256 pairs). The chunk recurrence's decay
    # exp(segsum) is zero for source chunks after the target, read from the graph:
    # position t is predicted to see 0 .. the end of its chunk, 4·⌊t/4⌋ + 3 — sound,
    # Σ_t (4·⌊t/4⌋ + 4) = 4·(4 + 8 + 12 + 16) = 160 pairs (it used to be all 256).
    # Inside a chunk the order is lost: a chunk's positions are split over two axes
    # [chunk, l], and per-axis dependencies cannot say "chunk c, up to l".
    pair = verified("mamba2-eager-dynamo.onnx", 16).pair(("input_ids", 1), "output")
    assert pair.sound, pair.violations[:3]
    assert pair.observed_at(5) == span(0, 5) and pair.predicted_at(5) == span(0, 7)
    assert pair.observed_at(15) == span(0, 15) == pair.predicted_at(15)
    assert pair.observed_at(0) == [0] and pair.predicted_at(0) == span(0, 3)
    assert pair.tightness == pytest.approx(136 / 160)
