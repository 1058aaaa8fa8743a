"""Longformer's sliding chunks, and the exported ``as_strided`` they are built with.

HF Longformer (``modeling_longformer._chunk``) cuts the sequence into overlapping
chunks of 2w with stride w by ``as_strided``; TorchScript exports it as
``Reshape(x, [-1])`` + ``Gather`` by indices ``Σ_k arange(size_k) · stride_k`` computed
from shapes. :mod:`model_analyze.tokenflow.concrete` reads such a gather (and a reshape
whose axes pair only element by element) as an index map at the binding.

The fixture ``longformer-tiny-eager-torchscript.onnx`` (``export_transformers.py``,
spec ``longformer-tiny``: ``attention_window=4``, 1 layer, 2 heads, no global token)
is *not* the HF model: the exporter flattens the tensor in its logical order while
the traced strides are those of a non-contiguous view (``[B·H, S, d]`` with strides
``(d, H·d, 1)``), so the chunks pick other positions and other heads' rows. The
graph's own reach is therefore not HF's band ``i-w..i+w``; the oracle shows it, and
no reading may claim the band for it.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SAMPLES
from model_analyze.runner import AnalyzeOptions, prepare
from model_analyze.tokenflow import flow, reach

FIXTURE = SAMPLES / "zoo" / "longformer-tiny-eager-torchscript.onnx"
W = 4 // 2
"""One-sided window: ``attention_window=4`` in the export script's config, w = 4 / 2."""


def _strided_chunks(w: int = 2, d: int = 2):
    """x ``[1, seq, d]`` padded by w on both sides of seq (Longformer pads V so), then
    ``as_strided`` into chunks of 2w with stride w as TorchScript exports it: flatten,
    Gather by ``c·w·d + j·d + k`` with c = Range(0, (seq + 2w)/w - 1) from the shape;
    y[c] sums its chunk."""
    from onnx import TensorProto, helper

    def const(name, arr):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(
            name, TensorProto.INT64, np.shape(arr), np.asarray(arr, np.int64).reshape(-1).tolist()))

    nodes = [
        const("pads", [0, w, 0, 0, w, 0]), const("flat_shape", [-1]), const("one_i", [1]),
        const("zero", 0), const("one", 1), const("w", w), const("wd", w * d), const("d", d),
        const("two_w", 2 * w), const("dd", d), const("col", [-1, 1, 1]), const("mid", [1, -1, 1]),
        const("row", [1, 1, -1]), const("axes", [1, 2]),
        helper.make_node("Pad", ["x", "pads"], ["padded"]),
        helper.make_node("Reshape", ["padded", "flat_shape"], ["flat"]),
        helper.make_node("Shape", ["padded"], ["shp"]),
        helper.make_node("Gather", ["shp", "one"], ["len"], axis=0),
        helper.make_node("Div", ["len", "w"], ["per"]),
        helper.make_node("Sub", ["per", "one"], ["chunks"]),
        helper.make_node("Range", ["zero", "chunks", "one"], ["rc0"]),
        helper.make_node("Reshape", ["rc0", "col"], ["rc1"]),
        helper.make_node("Mul", ["rc1", "wd"], ["rc"]),
        helper.make_node("Range", ["zero", "two_w", "one"], ["rj0"]),
        helper.make_node("Reshape", ["rj0", "mid"], ["rj1"]),
        helper.make_node("Mul", ["rj1", "dd"], ["rj"]),
        helper.make_node("Range", ["zero", "d", "one"], ["rk0"]),
        helper.make_node("Reshape", ["rk0", "row"], ["rk"]),
        helper.make_node("Add", ["rc", "rj"], ["rcj"]),
        helper.make_node("Add", ["rcj", "rk"], ["idx"]),
        helper.make_node("Gather", ["flat", "idx"], ["chunked"], axis=0),
        helper.make_node("ReduceSum", ["chunked", "axes"], ["y"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "strided_chunks", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", d])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["chunks"])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_strided_chunks_are_read_per_chunk():
    # seq = 8, w = 2: padded length 12, chunks c = 0..4 of padded positions 2c..2c+3,
    # i.e. x positions 2c-2 .. 2c+1 (c·w + j - pad), clipped to 0..7:
    # y[0] <- 0..1, y[2] <- 2..5, y[4] <- 6..7.
    ctx = prepare(_strided_chunks(), AnalyzeOptions(seq_len=8))
    at = {c: reach(ctx, "y", 0, c, ("x", 1))[("x", 1)] for c in (0, 2, 4)}
    assert at == {0: [(0, 1)], 2: [(2, 5)], 4: [(6, 7)]}
    assert not flow(ctx).mixed_by_data  # indices from shapes are not data


def test_strided_chunks_against_onnxruntime(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx

    from model_analyze.verify import verify_model

    path = tmp_path / "strided.onnx"
    onnx.save(_strided_chunks(), str(path))
    pair = verify_model(str(path), AnalyzeOptions(seq_len=12), positions=12, seeds=1).pair(("x", 1), "y")
    # seq = 12: 7 chunks; chunk 3 reads x 4..7 (2·3 - 2 .. 2·3 + 1).
    assert pair.sound, pair.violations[:3]
    assert pair.tightness == 1.0, (pair.observed, pair.predicted)
    assert pair.observed_at(3) == [4, 5, 6, 7] == pair.predicted_at(3)


def test_negative_gather_index_on_a_symbolic_axis_counts_from_the_end(tmp_path):
    # x[:, -1] on x [1, seq, 2]: at seq = 6 that is position 5 (it used to be read as
    # position -1, i.e. nothing — unsound).
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["last"], value=helper.make_tensor("last", TensorProto.INT64, [], [-1])),
         helper.make_node("Gather", ["x", "last"], ["y"], axis=1)],
        "last", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    ctx = prepare(model, AnalyzeOptions(seq_len=6))
    assert flow(ctx).states["y"].fixed[("x", 1)].at(0, 6) == [(5, 5)]
    pytest.importorskip("onnxruntime")
    import onnx

    from model_analyze.verify import verify_model

    onnx.save(model, str(tmp_path / "last.onnx"))
    pair = verify_model(str(tmp_path / "last.onnx"), AnalyzeOptions(seq_len=6), positions=6, seeds=1).pair(
        ("x", 1), "y")
    assert pair.sound and pair.observed == pair.predicted == 1  # every output element sees position 5 only


def test_nonzero_of_ones_has_every_element():
    # TorchScript's arange(n) is NonZero(ConstantOfShape([n], value=1)): n indices, [1, n].
    from onnx import TensorProto, helper

    one = helper.make_tensor("one", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        [helper.make_node("Shape", ["x"], ["shp"]),
         helper.make_node("ConstantOfShape", ["shp"], ["ones"], value=one),
         helper.make_node("NonZero", ["ones"], ["idx"])],
        "arange", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq"])],
        [helper.make_tensor_value_info("idx", TensorProto.INT64, None)])
    ctx = prepare(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), AnalyzeOptions(seq_len=5))
    shape = ctx.shapes.shape("idx")
    assert shape is not None and shape[0] == 2 and ctx.evaluate(shape[1]) == 5  # rank 2, 1·5 elements


def test_longformer_torchscript_export_is_sound_and_not_the_hf_band():
    pytest.importorskip("onnxruntime")
    from model_analyze.verify import verify_model

    result = verify_model(str(FIXTURE), AnalyzeOptions(seq_len=16), positions=16, seeds=2)
    ids = result.pair(("input_ids", 1), "output")
    mask = result.pair(("attention_mask", 1), "output")
    assert ids.sound and mask.sound, (ids.violations[:3], mask.violations[:3])
    # The mask path (one "head" of width 1: a contiguous view) is HF's band: masking key j
    # changes rows j-w..j+w, 16·(2w+1) - 2·(1+2) = 74 pairs at n = 16, w = 2.
    assert mask.observed == 16 * (2 * W + 1) - 2 * (1 + 2) == 74
    # The ids path is not: row 6 changes with token 0 although |6 - 0| > w (the chunks of
    # the non-contiguous Q/K view are gathered from other positions).
    outside = [i for i in range(16) if any(abs(i - j) > W for j in ids.observed_at(i))]
    assert 6 in outside and 0 in ids.observed_at(6)
    # The chunks are followed through the exported as_strided gathers, the diagonalising
    # reshapes and the slice-assignment scatters: row i is read as its w-row block of the
    # diagonal layout, keys [w·⌊i/w⌋ - w, w·⌊i/w⌋ + 2w - 1] — HF's band i-w..i+w plus at most
    # w - 1 more. At i = 8: 6..10 observed (the band), 6..11 said. (Before: all 16.)
    assert mask.observed_at(8) == [6, 7, 8, 9, 10]
    assert mask.predicted_at(8) == [6, 7, 8, 9, 10, 11]
    assert mask.tightness >= 74 / (16 * (2 * W + 2))  # ≤ 2w+2 keys a row: tightness ≥ 74/96


def test_longformer_reach_at_128_is_the_chunk_block():
    # At the default length 128, position 64 of the output: HF band 62..66 (w = 2), read
    # as its chunk block [2·32 - 2, 2·32 + 3] = 62..67 — not all 128.
    ctx = prepare(str(FIXTURE), AnalyzeOptions(seq_len=128))
    assert reach(ctx, "output", 1, 64, ("attention_mask", 1))[("attention_mask", 1)] == [(62, 67)]
