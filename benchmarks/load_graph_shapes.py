#!/usr/bin/env python3
"""Benchmark: load + graph + shapes on mistral-7b.onnx with its 29 GB sparse data file.

Target (issue 3): <= 1.5 s and <= 250 MB peak RSS, and the data file is never
opened (tests/test_external_data.py proves that part). Each measurement runs in
a fresh child process, imports included.

Usage: python benchmarks/load_graph_shapes.py
"""

from __future__ import annotations

import sys

from _common import mistral_with_data, run_measured

CHILD = r"""
import resource, sys, time
t0 = time.perf_counter()
from model_analyze.graph import build_graph
from model_analyze.loader import load_model
from model_analyze.ops.core import default_registry
from model_analyze.shapes import infer_shapes
t1 = time.perf_counter()
m = load_model(sys.argv[1]); t2 = time.perf_counter()
g = build_graph(m); t3 = time.perf_counter()
table = infer_shapes(g, default_registry(), m.opsets, m.proto); t4 = time.perf_counter()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"imports {t1-t0:.3f}s  load {t2-t1:.3f}s  graph {t3-t2:.3f}s  shapes {t4-t3:.3f}s  "
      f"total {t4-t0:.3f}s  peak RSS {rss:.0f} MiB  nodes {len(g.nodes)}  tensors typed {len(table.types)}")
"""


def main() -> None:
    with mistral_with_data() as model:
        measure(model)


def measure(model) -> None:
    data = model.with_suffix(".onnx.data")
    print(f"model: {model} ({model.stat().st_size / 1e6:.1f} MB), data file {data.stat().st_size / 1e9:.1f} GB "
          "(sparse)")
    for _ in range(3):
        wall, rss, out = run_measured([sys.executable, "-c", CHILD, str(model)])
        print(f"  {out.strip()}  | process wall {wall:.3f}s")
    wall, rss, _ = run_measured([sys.executable, "-m", "model_analyze", str(model), "--dim", "seq=4096"])
    print(f"full `model-analyze` run (all analyzers): wall {wall:.3f}s, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
