"""Scaling: time and memory per node of the whole analysis on generated graphs.

    python benchmarks/scaling.py [--sizes 10000,100000,1000000] [--shapes chain,fanout,nested]
                                 [--select ANALYZERS] [--keep DIR]

Three graph shapes, each at every size (nodes counted over all subgraphs):

- ``chain``: one long path of element-wise ops (``Add``/``Mul``/``Relu`` on ``[batch, seq, 64]``
  with shared scalar constants) — depth equals size;
- ``fanout``: one input read by N/2 parallel ``Relu``s, merged back by a binary tree of ``Add``s —
  wide frontiers, many consumers of one tensor;
- ``nested``: a chain of ``If`` nodes whose ``then`` bodies nest 8 deep, each level a short chain —
  subgraph construction, outer-scope references, walks through bodies.

Each measurement runs in a fresh process (imports included), so the figures are what a
user waits for: wall and CPU seconds, peak RSS, and their cost per node; the ratio column
compares each size with the one ten times smaller (10 means linear). Peak RSS is the
child's own (``VmHWM``): its ``ru_maxrss`` would include this process's peak from
generating the model (Linux carries the larger across exec). The goal of issue 18:
1M nodes in < 60 s and < 2 GB, 100k/10k time ratio ≤ 12. Models are generated into a
temporary directory (``--keep DIR`` keeps and reuses them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
from model_analyze.runner import AnalyzeOptions, analyze
select = [s for s in sys.argv[2].split(",") if s]
report = analyze(sys.argv[1], AnalyzeOptions(select=select))
wall = time.perf_counter() - t0
sections = {s.analyzer: round(s.elapsed_s, 3) for s in report.sections}
# VmHWM is this process's own peak; ru_maxrss also holds the parent's peak at exec
# (Linux keeps the larger across vfork + exec), i.e. the generator's of a model just made.
try:
    rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
except (OSError, StopIteration):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "cpu": time.process_time() - c0, "rss": rss,
                  "nodes": report.model.nodes, "sections": sections,
                  "failed": [s.analyzer for s in report.failed_sections()]}))
"""


def _opset() -> list:
    from onnx import helper

    return [helper.make_opsetid("", 18)]


def chain(n: int):
    from onnx import TensorProto, helper

    ops = ("Add", "Mul", "Relu")
    nodes, prev = [], "x"
    for i in range(n):
        op = ops[i % 3]
        ins = [prev] if op == "Relu" else [prev, "one" if op == "Mul" else "half"]
        nodes.append(helper.make_node(op, ins, [f"t{i}"], name=f"n{i}"))
        prev = f"t{i}"
    consts = [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
              helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                             ["batch", "seq", 64])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)], consts)
    return helper.make_model(graph, opset_imports=_opset())


def fanout(n: int):
    from onnx import TensorProto, helper

    width = max(n // 2, 1)
    nodes = [helper.make_node("Relu", ["x"], [f"r{i}"], name=f"r{i}") for i in range(width)]
    level, k = [f"r{i}" for i in range(width)], 0
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level) - 1, 2):
            nodes.append(helper.make_node("Add", [level[j], level[j + 1]], [f"a{k}"], name=f"a{k}"))
            nxt.append(f"a{k}")
            k += 1
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    graph = helper.make_graph(nodes, "fanout", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                              ["batch", "seq", 64])],
                              [helper.make_tensor_value_info(level[0], TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=_opset())


def nested(n: int, depth: int = 8, per_level: int = 4):
    """Chain of Ifs; each then-branch nests ``depth`` bodies of ``per_level`` nodes (outer-scope reads)."""
    from onnx import TensorProto, helper

    per_if = depth * (per_level + 1) + 1
    count = max(n // per_if, 1)
    out_vi = helper.make_tensor_value_info("o", TensorProto.FLOAT, None)

    def body(level: int, src: str, tag: str):
        nodes, prev = [], src
        for j in range(per_level):
            name = f"{tag}_l{level}_{j}"
            nodes.append(helper.make_node("Relu" if j % 2 else "Neg", [prev], [name], name=name))
            prev = name
        if level + 1 < depth:
            inner = body(level + 1, prev, tag)
            leaf = helper.make_graph([helper.make_node("Identity", [prev], ["o"], name=f"{tag}_e{level}")],
                                     "else", [], [out_vi])
            nodes.append(helper.make_node("If", ["c"], [f"{tag}_if{level}"], name=f"{tag}_if{level}",
                                          then_branch=inner, else_branch=leaf))
            prev = f"{tag}_if{level}"
        nodes.append(helper.make_node("Identity", [prev], ["o"], name=f"{tag}_out{level}"))
        return helper.make_graph(nodes, f"body{level}", [], [out_vi])

    nodes, prev = [], "x"
    for i in range(count):
        then = body(0, prev, f"b{i}")
        leaf = helper.make_graph([helper.make_node("Identity", [prev], ["o"], name=f"e{i}")], "else", [], [out_vi])
        nodes.append(helper.make_node("If", ["c"], [f"y{i}"], name=f"if{i}", then_branch=then, else_branch=leaf))
        prev = f"y{i}"
    graph = helper.make_graph(nodes, "nested",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 64]),
                               helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=_opset())


SHAPES = {"chain": chain, "fanout": fanout, "nested": nested}


def measure(path: Path, select: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), select], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--select", default="", help="analyzers to run (default: all)")
    ap.add_argument("--keep", default=None, help="directory to keep (and reuse) the generated models")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    where = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ma-scaling-"))
    where.mkdir(parents=True, exist_ok=True)
    print(f"{'shape':7} {'nodes':>9} {'wall s':>8} {'cpu s':>7} {'peak MiB':>9} {'µs/node':>8} "
          f"{'KiB/node':>9} {'×time':>6}  slowest phase")
    for shape in args.shapes.split(","):
        prev = None
        for n in sizes:
            path = where / f"{shape}-{n}.onnx"
            if not path.exists():
                path.write_bytes(SHAPES[shape](n).SerializeToString())
            r = measure(path, args.select)
            if "error" in r:
                print(f"{shape:7} {n:>9,} failed: {r['error']}")
                prev = None
                continue
            nodes = r["nodes"]
            ratio = f"{r['wall'] / prev:6.1f}" if prev else "     -"
            prepare = r["wall"] - sum(r["sections"].values())
            phases = {"load+graph+shapes": prepare, **r["sections"]}
            slow = max(phases, key=phases.get)
            print(f"{shape:7} {nodes:>9,} {r['wall']:8.2f} {r['cpu']:7.2f} {r['rss']:9.0f} "
                  f"{1e6 * r['wall'] / nodes:8.1f} {1024 * r['rss'] / nodes:9.2f} {ratio}  "
                  f"{slow} {phases[slow]:.2f} s" + (f"  FAILED: {r['failed']}" if r["failed"] else ""))
            prev = r["wall"]
            sys.stdout.flush()
    if not args.keep:
        for p in where.iterdir():
            os.remove(p)
        where.rmdir()


if __name__ == "__main__":
    main()
