#!/usr/bin/env python3
"""Benchmark: whole-process CPU time and peak RSS of model-analyze against its peers.

Each row runs two commands — ours (the full report, every analyzer) and a reference —
as fresh child processes, interleaved, ``--runs`` times; the table shows medians of
CPU time (user + sys of the child, from ``wait4``: on a shared machine wall time
measures the neighbours) and of peak RSS, and their ratios within the same run:

* CNNs vs onnx-tool's ``model_profile`` at the same input shape (goal: CPU ≤ 0.7×);
* a model with embedded weights vs the same graph with its weights external
  (goal: time and RSS ≤ 1.2×; VGG-16 ≤ 130 MB);
* ``mistral-7b.onnx`` (29 GB sparse data file, seq 4096) vs a bare
  ``onnx.load(load_external_data=False)`` process (goal: ≤ 1.5×, peak ≤ 120 MiB);
* ``--help`` and ``plugins`` vs ``python -c "import click, pluggy"`` (goal ≤ 1.3×), on the
  stored reading of the plugins' declarations (analyzer/declared.py; the cache dir is a
  temp dir, filled by one run before measuring), and — for information — reading the
  plugins afresh (``MODEL_ANALYZE_NO_CACHE=1``: what the first run after installing or
  editing a plugin pays, plus storing the reading).

Our package is byte-compiled first (an installed package has its ``.pyc``; under
``PYTHONDONTWRITEBYTECODE`` every run would recompile it).

Usage: python benchmarks/perf.py [--runs N] [--quick] [--startup] [--ocr DIR] [--yolov8n PATH]
  --startup      the start-up rows only
  --ocr DIR      directory with ch_PP-OCRv4_{det,rec}_infer.onnx (from the rapidocr-onnxruntime
                 wheel: pip download --no-deps rapidocr-onnxruntime; unzip); fetched like that
                 into a temp dir when not given (--no-fetch skips the OCR rows)
  --yolov8n PATH a full-size YOLOv8n export (input ``images`` or the first input, 320/640)
  --llm PATH...  LLM graphs made by benchmarks/make_llm_graphs.py (llama3-70b, llama3.1-405b): each is
                 copied to a temp dir with its sparse data file and its full report at seq 4096 is
                 compared with Mistral-7B's (goal: 70B ≤ 2×, 405B ≤ 4× the Mistral time)
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from _common import ROOT, SHARED, child_env, mistral_with_data

sys.path.insert(0, str(ROOT / "samples"))

PY = sys.executable
PEER = r"""
import contextlib, io, json, sys
import numpy as np
import onnx_tool
path, shapes = sys.argv[1], json.loads(sys.argv[2])
with contextlib.redirect_stdout(io.StringIO()):
    onnx_tool.model_profile(path, {k: np.zeros(v, dtype=np.float32) for k, v in shapes.items()})
"""
BARE_LOAD = "import sys, onnx; onnx.load(sys.argv[1], load_external_data=False)"


def ours(path: Path, *args: str) -> list[str]:
    return [PY, "-m", "model_analyze", str(path), *args]


@dataclass
class Row:
    label: str
    ours: list[str]
    peer: list[str]
    peer_name: str
    goal: str
    env: dict[str, str] = field(default_factory=dict)
    """Set in our command's environment (not the peer's)."""
    times: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: {"ours": [], "peer": []})


LAUNCHER = r"""
import json, os, subprocess, sys
p = subprocess.Popen(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = p.stderr.read()
_, status, usage = os.wait4(p.pid, 0)
print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                  err.decode(errors="replace")[-800:]]))
"""


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(CPU seconds, peak RSS MiB) of one child process. A small launcher forks it:
    ``ru_maxrss`` counts the forked image before ``exec``, and this script is large."""
    out = subprocess.run([PY, "-c", LAUNCHER, json.dumps(cmd)], capture_output=True, text=True,
                         env={**child_env(), **(env or {})}, check=True)
    code, cpu, rss, err = json.loads(out.stdout)
    if code not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd[:4])}… exited {code}: {err}")
    return cpu, rss


def run(rows: list[Row], runs: int) -> None:
    for _ in range(runs):
        for row in rows:
            for who in ("ours", "peer"):
                row.times[who].append(measure(row.ours, row.env) if who == "ours" else measure(row.peer))


def table(rows: list[Row]) -> str:
    head = (f"{'case':34} {'ours s':>7} {'MiB':>5} {'peer':>12} {'s':>6} {'MiB':>5} "
            f"{'CPU ×':>6} {'RSS ×':>6}  goal")
    lines = [head, "-" * len(head)]
    for r in rows:
        a = [statistics.median(x[i] for x in r.times["ours"]) for i in (0, 1)]
        b = [statistics.median(x[i] for x in r.times["peer"]) for i in (0, 1)]
        lines.append(f"{r.label:34} {a[0]:7.3f} {a[1]:5.0f} {r.peer_name:>12} {b[0]:6.3f} {b[1]:5.0f} "
                     f"{a[0] / b[0]:6.2f} {a[1] / b[1]:6.2f}  {r.goal}")
    return "\n".join(lines)


def cnn_rows(tmp: Path, quick: bool) -> list[Row]:
    import nets
    import onnx

    rows: list[Row] = []
    yolo = ROOT / "samples" / "zoo" / "yolov8_tiny-torchscript-dynhw.onnx"
    for size in (320, 640):
        rows.append(Row(f"YOLOv8-tiny @{size} (zoo)", ours(yolo, "--dim", f"d2={size}", "--dim", f"d3={size}"),
                        [PY, "-c", PEER, str(yolo), f'{{"x": [1, 3, {size}, {size}]}}'], "onnx-tool", "≤ 0.70"))
    for name in ("resnet50", "mobilenet_v2", *(() if quick else ("vgg16",))):
        model = nets.NETS[name](weights="random", batch=1)
        path = tmp / f"{name}.onnx"
        onnx.save(model, str(path))
        rows.append(Row(f"{name} @224 (samples/nets.py)", ours(path),
                        [PY, "-c", PEER, str(path), '{"input": [1, 3, 224, 224]}'], "onnx-tool", "≤ 0.70"))
        ext = tmp / f"{name}_ext"
        ext.mkdir()
        onnx.save(model, str(ext / path.name), save_as_external_data=True, location=f"{name}.data",
                  size_threshold=1024)
        rows.append(Row(f"{name} embedded vs external", ours(path), ours(ext / path.name), "ours, ext.",
                        "≤ 1.20" + (", ≤ 130 MB" if name == "vgg16" else "")))
    return rows


def ocr_rows(directory: Path) -> list[Row]:
    rows = []
    for name, shape in (("ch_PP-OCRv4_det_infer.onnx", [1, 3, 640, 640]),
                        ("ch_PP-OCRv4_rec_infer.onnx", [1, 3, 48, 320])):
        path = next(directory.rglob(name), None)
        if path is None:
            print(f"(no {name} under {directory})", file=sys.stderr)
            continue
        spec = ",".join(map(str, shape))
        rows.append(Row(f"PP-OCRv4 {name.split('_')[2]} {spec.replace(',', '×')}", ours(path, "--input-shape",
                        f"x={spec}"), [PY, "-c", PEER, str(path), f'{{"x": {shape}}}'], "onnx-tool", "≤ 0.70"))
    return rows


def fetch_ocr(tmp: Path) -> Path | None:
    """rapidocr-onnxruntime's wheel ships the PP-OCRv4 det/rec models."""
    p = subprocess.run([PY, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp), "rapidocr-onnxruntime"],
                       capture_output=True, text=True)
    wheels = list(tmp.glob("rapidocr_onnxruntime-*.whl"))
    if p.returncode or not wheels:
        print(f"(could not fetch rapidocr-onnxruntime: {p.stderr.strip()[-200:]})", file=sys.stderr)
        return None
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(tmp / "rapidocr")
    return tmp / "rapidocr"


def startup_rows() -> list[Row]:
    base = [PY, "-c", "import click, pluggy"]
    help_, plugins = [PY, "-m", "model_analyze", "--help"], [PY, "-m", "model_analyze", "plugins"]
    for cmd in (help_, plugins):  # the stored reading, as every run after the first has it
        subprocess.run(cmd, capture_output=True, env=child_env(), check=True)
    afresh = {"MODEL_ANALYZE_NO_CACHE": "1"}
    return [Row("model-analyze --help", help_, base, "click+pluggy", "≤ 1.30"),
            Row("model-analyze plugins", plugins, base, "click+pluggy", "≤ 1.30"),
            Row("--help, plugins read afresh", help_, base, "click+pluggy", "(info)", afresh),
            Row("plugins, plugins read afresh", plugins, base, "click+pluggy", "(info)", afresh)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="skip VGG-16 and Mistral-7B")
    ap.add_argument("--startup", action="store_true", help="the start-up rows only")
    ap.add_argument("--ocr", type=Path, help="directory holding the PP-OCRv4 det/rec models")
    ap.add_argument("--no-fetch", action="store_true", help="do not pip-download the OCR models")
    ap.add_argument("--yolov8n", type=Path, help="a full-size YOLOv8n export")
    ap.add_argument("--llm", type=Path, nargs="*", default=[], help="LLM graphs from make_llm_graphs.py")
    args = ap.parse_args()
    compileall.compile_dir(str(ROOT / "analyzer"), quiet=1)
    compileall.compile_dir(str(ROOT / "plugins"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="ma-perf-") as t:
        tmp = Path(t)
        os.environ["MODEL_ANALYZE_CACHE_DIR"] = str(tmp / "cache")  # the children's: never the user's
        rows = startup_rows()
        if args.startup:
            run(rows, args.runs)
            report(rows, args.runs)
            return
        rows += cnn_rows(tmp, args.quick)
        if args.yolov8n:
            import onnx

            name = onnx.load(str(args.yolov8n), load_external_data=False).graph.input[0].name
            for size in (320, 640):
                rows.append(Row(f"YOLOv8n @{size}", ours(args.yolov8n, "--input-shape", f"{name}=1,3,{size},{size}"),
                                [PY, "-c", PEER, str(args.yolov8n), f'{{"{name}": [1, 3, {size}, {size}]}}'],
                                "onnx-tool", "≤ 0.70"))
        ocr = args.ocr or (None if args.no_fetch else fetch_ocr(tmp))
        if ocr:
            rows += ocr_rows(ocr)
        if args.quick or not (SHARED / "mistral-7b.onnx").exists():
            run(rows, args.runs)
        else:
            with mistral_with_data() as mistral:
                m7 = ours(mistral, "--seq-len", "4096")
                rows.append(Row("Mistral-7B seq 4096 (29 GB sparse)", m7, [PY, "-c", BARE_LOAD, str(mistral)],
                                "onnx.load", "≤ 1.50, ≤ 120 MiB"))
                for path in args.llm:
                    copy = mistral.parent / path.name
                    shutil.copy(path, copy)
                    subprocess.run([PY, str(SHARED / "make_sparse_data.py"), str(copy), str(copy.parent)],
                                   check=True, capture_output=True)
                    rows.append(Row(f"{path.stem} seq 4096 (sparse data)", ours(copy, "--seq-len", "4096"), m7,
                                    "Mistral-7B", "≤ 4.00" if "405" in path.name else "≤ 2.00"))
                run(rows, args.runs)
    report(rows, args.runs)


def report(rows: list[Row], runs: int) -> None:
    load = os.getloadavg()
    print(f"medians of {runs} runs; CPU = user+sys of the child; load average {load[0]:.2f} {load[1]:.2f}")
    print(table(rows))


if __name__ == "__main__":
    main()
