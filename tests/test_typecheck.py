"""The type checker over the whole package (strict mypy, `[tool.mypy]` in pyproject.toml),
and regressions for the bugs it found when it was first switched on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_analyze.runner import analyze, prepare
from model_analyze.tokenflow import reach

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict_is_clean():
    """What `.ci/run` runs; here too so a change that breaks the types fails the suite."""
    pytest.importorskip("mypy")
    r = subprocess.run([sys.executable, str(ROOT / ".ci" / "typecheck.py")], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def _scatter_row_model(T: int = 8, H: int = 2, row: int = 2, target: int = 5):
    """y = ScatterElements(x, idx, x[:, row:row+1]) along axis 1 with every index = target:
    y[:, target] = x[:, row] and y[:, t] = x[:, t] elsewhere."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, H])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.array([row]), "s"), numpy_helper.from_array(np.array([row + 1]), "e"),
             numpy_helper.from_array(np.array([1]), "ax"),
             numpy_helper.from_array(np.full((1, 1, H), target, np.int64), "idx")]
    nodes = [helper.make_node("Slice", ["x", "s", "e", "ax"], ["u"]),
             helper.make_node("ScatterElements", ["x", "idx", "u"], ["y"], axis=1)]
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                             opset_imports=[helper.make_opsetid("", 17)])


def test_scatter_of_a_moved_row_is_followed():
    """mypy found ``through(f, dep)`` called with a Dep where a map of deps is expected: the
    ScatterElements rule raised (R002) whenever the update's scattered axis carried positions,
    and every position was then treated as seeing every position. By hand: y[:, 5] = x[:, 2],
    y[:, 4] = x[:, 4]; the engine keeps the data's own row as well (sound: ``{2, 5}``)."""
    model = _scatter_row_model()
    assert not [f for f in analyze(model).findings if f.code == "R002"]
    ctx = prepare(_scatter_row_model())
    src = ("x", 1)
    at5 = {p for lo, hi in reach(ctx, "y", 1, 5)[src] for p in range(lo, hi + 1)}
    at4 = {p for lo, hi in reach(ctx, "y", 1, 4)[src] for p in range(lo, hi + 1)}
    assert 2 in at5 and at5 <= {2, 5}
    assert at4 == {4}
