#!/usr/bin/env python3
"""Build the bundled sample models (onnx.helper only; deterministic).

Usage: python samples/make_samples.py [OUT_DIR]   (default: samples/)
"""

from __future__ import annotations

import os
import sys

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from builders import loop_like, tiny_convnet, transformer, vad_like

SAMPLES = {
    "convnet.onnx": tiny_convnet,
    "tiny_transformer.onnx": lambda: transformer(layers=2, heads=4, d_model=32, mask="causal"),
    "vad_like.onnx": vad_like,
    "loop_like.onnx": loop_like,
}


def main(out_dir: str) -> None:
    for name, build in SAMPLES.items():
        model = build()
        onnx.checker.check_model(model, full_check=True)
        path = os.path.join(out_dir, name)
        onnx.save(model, path)
        print(f"{path}: {len(model.graph.node)} nodes, {os.path.getsize(path):,} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
