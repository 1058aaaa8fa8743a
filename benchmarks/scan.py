#!/usr/bin/env python3
"""Benchmark: `model-analyze scan` over 1,000 generated models of mixed size.

Figures (wall time; this machine has 2 cores shared with other people, so the load
average is printed with them — re-run when it is low):

* throughput in models/s at ``--jobs 1`` and ``--jobs 2``, and their ratio (goal ≥ 1.8×);
* the worker pool's per-model overhead: ``--jobs 1`` against the same analyses done
  in one process (``BatchRunner.analyze_one`` + the same JSON line), and a worker's
  start-up;
* a Dask ``LocalCluster`` of 2 single-threaded workers against 2 local workers (goal
  ≥ 0.9×): the cluster's start-up is timed apart from the scan, both figures shown;
* a cached re-run against the first run (goal ≥ 50× faster), as whole processes and as
  the scan alone (``model_analyze.scan`` in a process that has imported the package:
  what a notebook or a pipeline sees, and what is left once start-up is paid). The scan
  alone copies each line as bytes (``ScanResult.raw``, as the command does), and once more
  as ``str`` (``ScanResult.line``) to show what decoding 1,000 long lines costs.

Each scan runs as a fresh ``model-analyze scan`` process (imports included) unless
said; the models are written to a temp dir (``samples/registry_builders.py``: MLPs,
conv nets, and every third one a transformer of 1–6 layers).

Usage: python benchmarks/scan.py [--models N] [--runs R] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "samples"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import child_env  # noqa: E402

IN_PROCESS = """
import json, sys, time
from model_analyze.batch import BatchRunner, CliSettings
from model_analyze.config import Config
from model_analyze.render.summary import model_entry
paths = sys.argv[1:]
t = time.perf_counter()
runner = BatchRunner(Config(), CliSettings())
with open("/dev/null", "w") as out:
    for p in paths:
        out.write(json.dumps(model_entry(runner.analyze_one(p)), separators=(",", ":")) + "\\n")
print(time.perf_counter() - t)
"""

LIBRARY = """
import sys, time
import model_analyze
root, cache = sys.argv[1], sys.argv[2]
times = []
for as_text in (False, False, True):
    t = time.perf_counter()
    job = model_analyze.scan([root], jobs=2, cache_dir=cache, isolated=True)
    if as_text:
        with open("/dev/null", "w", encoding="utf-8") as out:
            for r in job:
                out.write(r.line + "\\n")
    else:
        with open("/dev/null", "wb") as out:
            for r in job:
                out.write(r.raw)
                out.write(b"\\n")
    times.append(time.perf_counter() - t)
print(times[0], times[1], times[2], job.stats.cache_hits)
"""


DASK = """
import sys, time
t0 = time.perf_counter()
from distributed import Client, LocalCluster
import model_analyze
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
client = Client(cluster)
client.wait_for_workers(2)
t1 = time.perf_counter()
n = sum(1 for r in model_analyze.scan(sys.argv[1:], executor="dask", client=client, cache=False, isolated=True))
t2 = time.perf_counter()
client.close(); cluster.close()
print(t1 - t0, t2 - t1, n)
"""


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


CHILD_ENV = child_env()
"""Start-up would otherwise dominate the cached re-run (see ``child_env``)."""


def timed(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=CHILD_ENV)
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, proc.stdout


def scan_cmd(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "model_analyze", "scan", str(root), "-q", "--isolated", "-o", os.devnull, *extra]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=1, help="repeat each measurement, report the median")
    ap.add_argument("--keep", default=None, help="write the models here (kept) instead of a temp dir")
    args = ap.parse_args()
    from registry_builders import write_registry

    with tempfile.TemporaryDirectory(prefix="ma-scan-bench-") as tmp:
        root = Path(args.keep or tmp) / "registry"
        paths = write_registry(root, args.models, mixed_sizes=True)
        n = len(paths)
        print(f"{n} models in {root} ({sum(p.stat().st_size for p in paths) / 2**20:.1f} MiB); {load()}")

        def median(fn):
            return statistics.median(fn() for _ in range(args.runs))

        inproc = median(lambda: float(timed([sys.executable, "-c", IN_PROCESS, *map(str, paths)])[1]))
        print(f"in one process (no pool):  {n / inproc:7.1f} models/s  ({inproc:.2f} s of analysis)   {load()}")
        j1 = median(lambda: timed(scan_cmd(root, "--no-cache", "-j", "1"))[0])
        print(f"scan --jobs 1:             {n / j1:7.1f} models/s  ({j1:.2f} s)   {load()}")
        j2 = median(lambda: timed(scan_cmd(root, "--no-cache", "-j", "2"))[0])
        print(f"scan --jobs 2:             {n / j2:7.1f} models/s  ({j2:.2f} s)   {load()}")
        start = median(lambda: timed(scan_cmd(paths[1], "--no-cache", "-j", "1"))[0])
        print(f"   jobs 2 / jobs 1: {j1 / j2:.2f}x (goal >= 1.8x)")
        print(f"   pool overhead per model: {(j1 - inproc - start) / n * 1000:.2f} ms "
              f"(jobs 1 minus in-process analysis minus a one-model scan, {start:.2f} s: process, imports, "
              "one worker's start-up)")
        out = median(lambda: timed([sys.executable, "-c", DASK, *map(str, paths)])[1]).split()
        boot, dask_scan = float(out[0]), float(out[1])
        print(f"dask LocalCluster (2 workers): {n / dask_scan:7.1f} models/s ({dask_scan:.2f} s; cluster start "
              f"{boot:.2f} s apart)   {load()}")
        print(f"   dask / local jobs 2: {j2 / dask_scan:.2f}x scan only, {j2 / (dask_scan + boot):.2f}x with the "
              "cluster's start-up (goal >= 0.9x)")
        cache = Path(tmp) / "cache"

        def cold_then_warm() -> tuple[float, float]:
            import shutil

            shutil.rmtree(cache, ignore_errors=True)
            cold = timed(scan_cmd(root, "--cache-dir", str(cache), "-j", "2"))[0]
            warm = timed(scan_cmd(root, "--cache-dir", str(cache), "-j", "2"))[0]
            return cold, warm

        runs = [cold_then_warm() for _ in range(args.runs)]
        cold = statistics.median(r[0] for r in runs)
        warm = statistics.median(r[1] for r in runs)
        print(f"cached, whole process: first run {cold:.2f} s, re-run {warm:.2f} s: {cold / warm:.1f}x faster "
              f"(goal >= 50x)   {load()}")

        def library() -> tuple[float, float]:
            import shutil

            shutil.rmtree(cache, ignore_errors=True)
            out = timed([sys.executable, "-c", LIBRARY, str(root), str(cache)])[1].split()
            assert int(out[3]) == n, out
            return float(out[0]), float(out[1]), float(out[2])

        runs = [library() for _ in range(args.runs)]
        cold = statistics.median(r[0] for r in runs)
        warm = statistics.median(r[1] for r in runs)
        text = statistics.median(r[2] for r in runs)
        print(f"cached, the scan alone: first run {cold:.2f} s, re-run {warm:.3f} s: {cold / warm:.1f}x faster "
              f"(goal >= 50x)   {load()}")
        print(f"   re-run writing each line as str (r.line: decoded, then encoded again) {text:.3f} s: "
              f"{cold / text:.1f}x; the command and the re-run above copy the bytes (r.raw)")


if __name__ == "__main__":
    main()
