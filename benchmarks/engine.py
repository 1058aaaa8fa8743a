#!/usr/bin/env python3
"""Benchmark: the token-flow engine on mistral-7b.onnx (5,585 nodes).

Issue 4's target: the engine in <= 1 s on top of loading, with no data read.
Issue 5's: per-layer span 4096 for all 32 layers and model reach 131,041 at
seq = 131072 in < 1 s of analysis. Phases are timed in a fresh child process.

Usage: python benchmarks/engine.py
"""

from __future__ import annotations

import sys

from _common import mistral_with_data, run_measured

CHILD = r"""
import resource, sys, time
t0 = time.perf_counter()
from model_analyze.runner import AnalyzeOptions, prepare
from model_analyze.attention import attention_layers
from model_analyze.tokenflow import flow, reach
from model_analyze.tokenflow.coverage import coverage
t1 = time.perf_counter()
ctx = prepare(sys.argv[1], AnalyzeOptions(seq_len=131072)); t2 = time.perf_counter()
layers = attention_layers(ctx); t3 = time.perf_counter()
result = flow(ctx); t4 = time.perf_counter()
r = reach(ctx, "logits", 1, 131071)[("input_ids", 1)]; t5 = time.perf_counter()
cov = coverage(ctx); t6 = time.perf_counter()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
spans = {la.mask.span(131072) for la in layers}
print(f"imports {t1-t0:.3f}s  load+graph+shapes {t2-t1:.3f}s  attention detection {t3-t2:.3f}s  "
      f"engine {t4-t3:.3f}s  reach query {t5-t4:.4f}s  coverage {t6-t5:.3f}s  peak RSS {rss:.0f} MiB")
print(f"  {len(layers)} attention layers, spans {sorted(spans)}, reach of position 131071: {r} "
      f"({sum(b - a + 1 for a, b in r):,} tokens); analysis after loading {t6-t2:.3f}s")
"""


def main() -> None:
    with mistral_with_data() as model:
        for _ in range(3):
            wall, _, out = run_measured([sys.executable, "-c", CHILD, str(model)])
            print(out.rstrip() + f"\n  process wall {wall:.3f}s")


if __name__ == "__main__":
    main()
