"""Whole-graph oracle: every shape we infer and every MAC we count, against onnxruntime.

For every runnable model the suite has — the samples, the zoo fixtures, the shared models
and the model-zoo graphs the onnx package ships (``backend/test/data/light``) — at two
bindings where the model has free dims (image 224 and 320, sequence 16 and 40, batch 1
and 2), onnxruntime runs the model with optimizations off and profiling on, and
``ort_oracle.compare`` checks every executed node: its output shapes equal ours at that
binding, and its MACs equal an independent count from the shapes it executed (spec
formulas for Conv/ConvTranspose/MatMul/Gemm/LSTM/GRU/attention, written apart from
``cost/rules.py``), inside ``If`` branches and ``Loop`` bodies included. Totals agree
exactly, or as the bound the report states. Unknown shapes are allowed only where they
follow a data-dependent op (NonZero, NMS, an ``If`` on data).
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import ort_oracle as O
import pytest

from conftest import SAMPLES, shared_model
from model_analyze import dims as D
from model_analyze.runner import prepare

pytest.importorskip("onnxruntime")

FIRST = {224: 224, 128: 16, 1: 1, 0: 0}
SECOND = {224: 320, 128: 40, 1: 2, 0: 0}
"""Stated defaults (image 224, other 128, batch-like 1, past 0) → the two bindings swept."""

ONLY = {
    "yolov8_tiny-torchscript-dynhw.onnx": [{"d2": 320, "d3": 320}],  # the export baked its anchors for 320²
    "llama-kv-eager-torchscript.onnx": [{"seq": 16, "past": 0, "total": 16}, {"seq": 40, "past": 3, "total": 43}],
}
"""Bindings stated per model: sizes a model runs at only, and dims tied to each other (the
KV cache's mask covers past + seq)."""


def _light() -> list[Path]:
    import onnx.backend.test as bt

    return sorted((Path(bt.__file__).parent / "data" / "light").glob("*.onnx"))


MODELS = [*sorted(SAMPLES.glob("*.onnx")), *sorted((SAMPLES / "zoo").glob("*.onnx")), *_light()]
SHARED = ["tiny-bert.onnx", "tiny-llama.onnx", "tiny-mistral-swa.onnx"]


def bindings(model: onnx.ModelProto, name: str) -> tuple[object, list[dict[str, int]]]:
    ctx = prepare(model)
    if name in ONLY:
        return ctx, ONLY[name]
    free = ctx.dims.defaults
    if not free:
        return ctx, [{}]
    return ctx, [{k: table.get(v, v) for k, v in free.items()} for table in (FIRST, SECOND)]


def input_shapes(ctx, binding: dict[str, int]) -> dict[str, tuple[int, ...]]:
    out = {}
    for name in ctx.graph.inputs:
        t = ctx.shapes.type(name)
        out[name] = tuple(int(D.subs(d, binding)) for d in t.shape)
    return out


def sweep(path: Path) -> list[str]:
    model = O.named(onnx.load(str(path)))
    ctx, binds = bindings(model, path.name)
    session = O.Session(model)
    runs = session.run([O.feeds_for(model, input_shapes(ctx, b)) for b in binds])
    problems = []
    for b, events in zip(binds, runs, strict=True):
        assert events, f"{path.name}: the profiler recorded no kernel"
        chk = O.compare(model, events, O.ours_at(ctx, b))
        assert chk.shape_checked > 0
        problems += [f"{path.name} at {b}: {p}" for p in chk.problems()]
    return problems


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_shapes_and_macs_equal_onnxruntime(path):
    assert sweep(path) == []


@pytest.mark.parametrize("name", SHARED)
def test_shared_models_equal_onnxruntime(name):
    assert sweep(shared_model(name)) == []


def test_the_sweep_covers_every_runnable_model():
    # 4 samples + 24 zoo fixtures + 9 model-zoo graphs (+ 3 shared): the count the README states
    assert len(MODELS) >= 37 and os.path.isdir(SAMPLES / "zoo")
