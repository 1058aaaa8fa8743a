"""Helpers shared by the benchmark scripts: sparse Mistral copy, process measurement."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MODEL_ANALYZE_SHARED", ROOT.parent / "shared")) / "models"


@contextlib.contextmanager
def mistral_with_data():
    """Copy mistral-7b.onnx to a temp dir with its 29 GB sparse data file; removed afterwards."""
    src = SHARED / "mistral-7b.onnx"
    if not src.exists():
        sys.exit(f"{src} not found: benchmarks need ../shared/models")
    with tempfile.TemporaryDirectory(prefix="ma-bench-") as tmp:
        d = Path(tmp)
        shutil.copy(src, d / src.name)
        subprocess.run([sys.executable, str(SHARED / "make_sparse_data.py"), str(d / src.name), str(d)],
                       check=True, capture_output=True)
        yield d / src.name


def child_env() -> dict[str, str]:
    """This environment without ``PYTHONDONTWRITEBYTECODE``: a measured child may write and
    reuse bytecode, as an installed tool does (with the variable set, every process compiles
    every module it imports, and start-up dominates the figure)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``cmd`` as a child; return (wall seconds, child peak RSS MiB, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    # ru_maxrss of children is the max over all children so far: run each
    # measurement in a fresh benchmark process for exact per-tool figures.
    return wall, max(peak, before) / 1024, proc.stdout
