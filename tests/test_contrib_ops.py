"""com.microsoft kernels that real quantized/optimized exports use, each executed by
onnxruntime: every output shape equals ours, the node is costed (no HS001/HS002), and
its MACs equal the count from the shapes onnxruntime executed (``ort_oracle``).

The input layouts are those of onnxruntime's contrib-op specs (docs/ContribOperators.md);
a wrong layout here would make onnxruntime refuse the model, so the runtime checks the
test's own reading of the spec too.
"""

from __future__ import annotations

import numpy as np
import ort_oracle as O
import pytest
from onnx import helper, numpy_helper

pytest.importorskip("onnxruntime")
MS = "com.microsoft"
RNG = np.random.default_rng(0)


def _model(op: str, inputs: dict[str, np.ndarray | None], consts: dict[str, np.ndarray], outputs: int, **attrs):
    """One ``op`` node; ``inputs`` (None = omitted optional input) are fed, ``consts`` are initializers."""
    names = list(inputs)
    vis = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for n, a in inputs.items() if a is not None and n not in consts]
    inits = [numpy_helper.from_array(a, n) for n, a in consts.items()]
    node = helper.make_node(op, [n if (inputs[n] is not None or n in consts) else "" for n in names],
                            [f"y{k}" for k in range(outputs)], name="node", domain=MS, **attrs)
    outs = [helper.make_empty_tensor_value_info(f"y{k}") for k in range(outputs)]
    graph = helper.make_graph([node], op, vis, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    feeds = {n: a for n, a in inputs.items() if a is not None and n not in consts}
    return model, feeds


def _f(*shape):
    return RNG.random(shape).astype(np.float32)


def _u8(*shape):
    return RNG.integers(0, 255, shape).astype(np.uint8)


def _i8(*shape):
    return RNG.integers(-127, 127, shape).astype(np.int8)


def _s(x, dtype=np.float32):
    return np.array(x, dtype=dtype)


H, IN, SEQ, B = 8, 5, 7, 2


def case_dynamic_quantize_lstm():
    ins = {"X": _f(SEQ, B, IN), "W": _i8(2, IN, 4 * H), "R": _i8(2, H, 4 * H), "B": _f(2, 8 * H),
           "sequence_lens": None, "initial_h": None, "initial_c": None, "P": None,
           "W_scale": _f(2), "W_zero_point": np.zeros(2, np.int8), "R_scale": _f(2),
           "R_zero_point": np.zeros(2, np.int8)}
    consts = {k: ins[k] for k in ("W", "R", "B", "W_scale", "W_zero_point", "R_scale", "R_zero_point")}
    return "DynamicQuantizeLSTM", ins, consts, 3, {"hidden_size": H, "direction": "bidirectional"}


def case_dynamic_quantize_matmul():
    ins = {"A": _f(2, 3, 6), "B": _i8(6, 4), "b_scale": _f(4), "b_zero_point": np.zeros(4, np.int8), "bias": _f(4)}
    return "DynamicQuantizeMatMul", ins, {k: ins[k] for k in ("B", "b_scale", "b_zero_point", "bias")}, 1, {}


def case_matmul_integer_to_float():
    ins = {"A": _u8(3, 6), "B": _u8(6, 4), "a_scale": _s([0.1]), "b_scale": _s([0.2]),
           "a_zero_point": _s([128], np.uint8), "b_zero_point": _s([128], np.uint8)}
    return "MatMulIntegerToFloat", ins, {k: ins[k] for k in list(ins)[1:]}, 1, {}


def _qgemm(with_y: bool):
    ins = {"A": _u8(3, 6), "a_scale": _s(0.1), "a_zero_point": _s(128, np.uint8), "B": _u8(4, 6),
           "b_scale": _s(0.2), "b_zero_point": _s(128, np.uint8), "C": None,
           "y_scale": _s(0.5) if with_y else None, "y_zero_point": _s(128, np.uint8) if with_y else None}
    consts = {k: v for k, v in ins.items() if k != "A" and v is not None}
    return "QGemm", ins, consts, 1, {"transB": 1}


def case_qgemm_float():
    return _qgemm(False)


def case_qgemm_quantized():
    return _qgemm(True)


def _qlinear_binary(op: str):
    ins = {"A": _u8(2, 3, 4, 5), "A_scale": _s(0.1), "A_zero_point": _s(128, np.uint8), "B": _u8(1, 3, 1, 5),
           "B_scale": _s(0.2), "B_zero_point": _s(128, np.uint8), "C_scale": _s(0.3), "C_zero_point": _s(128, np.uint8)}
    return op, ins, {k: v for k, v in ins.items() if k not in ("A", "B")}, 1, {}


def case_qlinear_add():
    return _qlinear_binary("QLinearAdd")


def case_qlinear_mul():
    return _qlinear_binary("QLinearMul")


def case_qlinear_sigmoid():
    ins = {"X": _u8(2, 3, 4), "X_scale": _s(0.1), "X_zero_point": _s(128, np.uint8), "Y_scale": _s(0.01),
           "Y_zero_point": _s(0, np.uint8)}
    return "QLinearSigmoid", ins, {k: v for k, v in ins.items() if k != "X"}, 1, {}


def _qgap(channels_last: int):
    x = _u8(1, 5, 7, 3) if channels_last else _u8(1, 3, 5, 7)
    ins = {"X": x, "x_scale": _s(0.1), "x_zero_point": _s(128, np.uint8), "y_scale": _s(0.1),
           "y_zero_point": _s(128, np.uint8)}
    consts = {k: v for k, v in ins.items() if k != "X"}
    return "QLinearGlobalAveragePool", ins, consts, 1, {"channels_last": channels_last}


def case_qlinear_global_average_pool():
    return _qgap(0)


def case_qlinear_global_average_pool_nhwc():
    return _qgap(1)


def case_fused_conv():
    ins = {"X": _f(1, 3, 11, 12), "W": _f(4, 3, 3, 3), "B": _f(4)}
    return "FusedConv", ins, {"W": ins["W"], "B": ins["B"]}, 1, {"activation": "Relu", "strides": [2, 2],
                                                                  "pads": [1, 1, 1, 1], "kernel_shape": [3, 3]}


def case_fused_matmul():
    ins = {"A": _f(2, 3, 4), "B": _f(2, 5, 4)}
    return "FusedMatMul", ins, {}, 1, {"transB": 1, "alpha": 0.5}


def case_quick_gelu():
    return "QuickGelu", {"X": _f(2, 3, 8)}, {}, 1, {"alpha": 1.702}


def case_bias_gelu():
    ins = {"A": _f(2, 3, 8), "B": _f(8)}
    return "BiasGelu", ins, {"B": ins["B"]}, 1, {}


def case_skip_layer_normalization():
    ins = {"input": _f(2, 3, 8), "skip": _f(2, 3, 8), "gamma": _f(8), "beta": _f(8), "bias": _f(8)}
    return "SkipLayerNormalization", ins, {k: ins[k] for k in ("gamma", "beta", "bias")}, 4, {"epsilon": 1e-5}


def case_embed_layer_normalization():
    ins = {"input_ids": RNG.integers(0, 10, (2, 5)).astype(np.int32),
           "segment_ids": RNG.integers(0, 2, (2, 5)).astype(np.int32), "word_embedding": _f(10, 8),
           "position_embedding": _f(16, 8), "segment_embedding": _f(2, 8), "gamma": _f(8), "beta": _f(8),
           "mask": np.ones((2, 5), np.int32)}
    consts = {k: ins[k] for k in ("word_embedding", "position_embedding", "segment_embedding", "gamma", "beta")}
    return "EmbedLayerNormalization", ins, consts, 2, {"epsilon": 1e-5}


def case_rotary_embedding():
    ins = {"input": _f(2, 5, 4 * 8), "position_ids": np.tile(np.arange(5, dtype=np.int64), (2, 1)),
           "cos_cache": _f(16, 4), "sin_cache": _f(16, 4)}
    return "RotaryEmbedding", ins, {"cos_cache": ins["cos_cache"], "sin_cache": ins["sin_cache"]}, 1, {"num_heads": 4}


def case_gather_block_quantized():
    ins = {"data": _u8(10, 16), "indices": RNG.integers(0, 10, (2, 3)).astype(np.int64), "scales": _f(10, 2)}
    return "GatherBlockQuantized", ins, {"data": ins["data"], "scales": ins["scales"]}, 1, {
        "gather_axis": 0, "quantize_axis": 1, "block_size": 16, "bits": 4}


CASES = {name[5:]: fn for name, fn in list(globals().items()) if name.startswith("case_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_contrib_op_shapes_and_macs_equal_onnxruntime(name):
    op, ins, consts, n_out, attrs = CASES[name]()
    model, feeds = _model(op, ins, consts, n_out, **attrs)
    model = O.named(model)
    (events,) = O.Session(model).run([feeds])
    assert [e.node for e in events] == ["node"]
    mine = O.ours(model, {})
    chk = O.compare(model, events, mine)
    assert chk.problems() == []
    assert chk.shape_checked == len(events[0].outputs)  # every output the kernel wrote
    assert mine.status["node"] == "ok", mine.status
    if op in O.MAC_OPS:
        assert chk.macs_checked == 1 and chk.ours_total == chk.executed_total > 0
