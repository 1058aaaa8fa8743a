"""The numpy kernels of npeval against onnx: its node tests' expected outputs, and
onnx.reference on every mask slice the attention analysis evaluates."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT, shared_model
from model_analyze import npeval
from model_analyze.attention import attention_layers
from model_analyze.runner import AnalyzeOptions, prepare


def test_kernels_reproduce_onnx_node_tests(node_cases):
    """Each node test of an op we implement: our outputs equal the expected ones
    (exactly for integers and booleans; float32 to its rounding), or Unsupported."""
    checked, unsupported, wrong = 0, 0, []
    for case in node_cases:
        name, model, data_sets = case.name, case.model, case.data_sets
        graph = model.graph
        if len(graph.node) != 1 or graph.node[0].op_type not in npeval.KERNELS:
            continue
        node = graph.node[0]
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 21)
        names = [i.name for i in graph.input]
        for inputs, expected in data_sets:
            feeds = dict(zip(names, inputs, strict=False))
            try:
                with np.errstate(all="ignore"):
                    got = npeval.run_node(node, [feeds.get(i) if i else None for i in node.input], opset, 1 << 24)
            except npeval.Unsupported:
                unsupported += 1
                continue
            for g, e in zip(got, expected, strict=False):
                e = np.asarray(e)
                ok = g.shape == e.shape and g.dtype == e.dtype and (
                    np.allclose(g, e, rtol=1e-6, atol=0, equal_nan=True) if e.dtype.kind == "f"
                    else np.array_equal(g, e))
                if not ok:
                    wrong.append(f"{name}: {g.dtype}{list(g.shape)} != {e.dtype}{list(e.shape)}")
            checked += 1
    assert wrong == []
    assert checked >= 250  # the rest (casts to float8/bfloat16/strings, batch_dims…) go to onnx.reference


def _masks(path, **options) -> list:
    ctx = prepare(str(path), AnalyzeOptions(**options))
    return [(layer.mask.family, repr(layer.mask.params), layer.mask.source) for layer in attention_layers(ctx)]


@pytest.mark.parametrize("model, options", [
    ("tiny-mistral-swa.onnx", {"seq_len": 40}), ("tiny-llama.onnx", {"seq_len": 40}),
    ("tiny-bert.onnx", {"seq_len": 40}), ("zoo/t5-eager-torchscript.onnx", {}),
    ("zoo/modernbert-eager-dynamo.onnx", {}), ("zoo/gpt-oss-eager-torchscript.onnx", {}),
])
def test_masks_read_with_numpy_equal_masks_read_with_onnx_reference(model, options, monkeypatch):
    path = ROOT / "samples" / model if model.startswith("zoo/") else shared_model(model)
    ours = _masks(path, **options)

    def unsupported(*args, **kwargs):
        raise npeval.Unsupported("forced")

    monkeypatch.setattr(npeval, "run_node", unsupported)
    monkeypatch.setattr(npeval.Evaluator, "__init__", unsupported)
    assert ours == _masks(path, **options)
    assert ours and all(family for family, *_ in ours)
