"""A generated model registry for ``scan``'s tests and benchmark: many small, distinct models.

``write_registry(root, n)`` writes ``n`` models in a few directories — MLPs and conv nets
with seeded widths (each a different graph, so each its own cache key), and with
``mixed=True`` also transformers of 1–6 layers, so analysis time varies as a real
registry's does. ``write_bad(root)`` adds the models a registry also has: truncated and
non-ONNX files, and three graphs with a ``test.scan`` op that ``tests/scan_plugin.py``
makes hang, allocate without bound or crash the process.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import onnx

from builders import FLOAT, GraphBuilder, conv, transformer

BAD_OPS = ("Sleep", "Hog", "Crash")
BAD_DOMAIN = "test.scan"


def mlp(seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    widths = [int(w) for w in rng.integers(4, 64, size=int(rng.integers(2, 5)))]
    b = GraphBuilder(f"mlp_{seed}", seed=seed)
    x = b.input("x", FLOAT, ["batch", widths[0]])
    for k, (a, c) in enumerate(itertools.pairwise(widths)):
        x = b.op("Gemm", [x, b.weight([c, a]), b.const(np.zeros(c, np.float32))], name=f"fc{k}", transB=1)
        x = b.op("Relu", [x])
    b.op("Identity", [x], name="y")
    b.output("y", FLOAT, ["batch", widths[-1]])
    return b.model()


def convnet(seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    size = int(rng.choice([16, 32, 48]))
    b = GraphBuilder(f"conv_{seed}", seed=seed)
    x = b.input("image", FLOAT, ["batch", 3, size, size])
    c = 3
    for k in range(int(rng.integers(1, 4))):
        out = int(rng.integers(4, 17))
        x = b.op("Relu", [conv(b, x, c, out, 3, stride=int(rng.integers(1, 3)), name=f"conv{k}")])
        c = out
    b.op("GlobalAveragePool", [x], name="gap")
    b.output("gap", FLOAT, ["batch", c, 1, 1])
    return b.model()


def mixed(seed: int) -> onnx.ModelProto:
    """Every third model a transformer of 1–6 layers (slower to analyze), else an MLP or conv net."""
    kind = seed % 3
    if kind == 0:
        rng = np.random.default_rng(seed)
        return transformer(layers=int(rng.integers(1, 7)), d_model=16 * int(rng.integers(1, 4)), heads=2,
                           vocab=50 + seed % 50, name=f"tf_{seed}")
    return mlp(seed) if kind == 1 else convnet(seed)


def write_registry(root: str | os.PathLike[str], n: int, mixed_sizes: bool = False, dirs: int = 4) -> list[Path]:
    """``n`` distinct models under ``root/team{k}/``; returns their paths (sorted)."""
    out = []
    for i in range(n):
        d = Path(root) / f"team{i % dirs}"
        d.mkdir(parents=True, exist_ok=True)
        model = mixed(i) if mixed_sizes else (mlp(i) if i % 2 else convnet(i))
        path = d / f"model_{i:04d}.onnx"
        path.write_bytes(model.SerializeToString())
        out.append(path)
    return sorted(out)


def bad_model(op: str) -> onnx.ModelProto:
    """A one-node graph whose op ``test.scan::op`` the test plugin makes misbehave."""
    b = GraphBuilder(f"bad_{op.lower()}")
    x = b.input("x", FLOAT, [1, 4])
    b.op(op, [x], name="y", domain=BAD_DOMAIN)
    b.output("y", FLOAT, [1, 4])
    return b.model(extra_opsets=[(BAD_DOMAIN, 1)])


def write_bad(root: str | os.PathLike[str], good: Path) -> dict[str, Path]:
    """Corrupt files and misbehaving graphs under ``root/bad/``, by what each should become."""
    d = Path(root) / "bad"
    d.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    out = {
        "truncated": d / "truncated.onnx", "text": d / "notes.onnx", "empty": d / "empty.onnx",
        "hang": d / "hang.onnx", "hog": d / "hog.onnx", "crash": d / "crash.onnx",
    }
    out["truncated"].write_bytes(data[: len(data) // 2])
    out["text"].write_text("this is not a model\n" * 10)
    out["empty"].write_bytes(b"")
    for key, op in (("hang", "Sleep"), ("hog", "Hog"), ("crash", "Crash")):
        out[key].write_bytes(bad_model(op).SerializeToString())
    return out
