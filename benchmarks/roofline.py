"""Roofline bounds vs onnxruntime on this machine: measured latency must never beat the bound.

1. This machine as a device: peak FLOP/s from the best of several large float32 numpy
   matmuls (2·n³ / t), bandwidth from the best of several copies of 1 GiB arrays
   (2 × 1 GiB moved / t) and of reductions over one (1 GiB read / t), its last-level
   cache from sysfs. Those figures go to the serving analyzer as
   ``--device flops=…,bandwidth=…,cache=…``.
2. Each model's bound for a prefill / forward pass and, for graphs with a KV cache, one
   decode step, from ``model_analyze`` (the serving section at the same binding).
3. onnxruntime (CPU, default threads, all optimizations) runs the same step; the best
   of the timed runs is compared: measured ≥ bound must hold for every row, and the
   ratio says how far from the roofline the runtime is.

Models: the tiny shared LLMs (forward), the zoo's KV-cache Llama export (decode step),
a small CNN (the zoo's MobileNetV3-small), and a Llama-shaped decoder with a cache built
by ``samples/decoder_builders.py`` with random weights too large for the caches (its
decode step must stream the weights from memory). Run: ``python benchmarks/roofline.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MODEL_ANALYZE_SHARED", ROOT.parent / "shared")) / "models"
sys.path.insert(0, str(ROOT / "samples"))

from model_analyze.runner import AnalyzeOptions, analyze  # noqa: E402


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def machine_peak() -> float:
    """Best float32 GEMM rate numpy reaches (all threads)."""
    rates = []
    for n in (1024, 2048, 3072):
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
        a @ b
        rates.append(2 * n ** 3 / best(lambda a=a, b=b: a @ b, 5))
    return max(rates)


def machine_bandwidth(size: int = 1 << 30) -> tuple[float, float]:
    """(copy bandwidth counting read + write, read-only bandwidth) over arrays far above the caches."""
    src = np.ones(size // 4, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    copy = 2 * size / best(lambda: np.copyto(dst, src), 5)
    read = size / best(lambda: src.sum(), 5)
    return copy, read


def last_level_cache() -> int:
    best_size = 0
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1], 1)
        best_size = max(best_size, int(text.rstrip("KMG")) * mult)
    return best_size


def feeds(session, dims: dict[str, int], vocab: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) else dims[str(d)] for d in inp.shape]
        if "int" in inp.type:
            if "mask" in inp.name:
                out[inp.name] = np.ones(shape, np.int64)
            else:
                out[inp.name] = rng.integers(0, vocab, shape, dtype=np.int64)
        else:
            out[inp.name] = rng.standard_normal(shape, dtype=np.float32)
    return out


def measure(path: Path, dims: dict[str, int], vocab: int, repeat: int) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = feeds(session, dims, vocab)
    for _ in range(3):
        session.run(None, x)
    return best(lambda: session.run(None, x), repeat)


def bound(path: Path, device: str, **options) -> dict:
    report = analyze(str(path), AnalyzeOptions(select=["serving"], params={"device": device}, **options))
    section = report.section("serving")
    if section is None or section.status.value != "ok":
        raise RuntimeError(f"{path}: serving section failed: {section.error if section else 'missing'}")
    return section.data


def fmt_s(t: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t * 1e9:.3g} ns"


def main() -> None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        sys.exit("onnxruntime is needed: pip install -e '.[dev]'")
    from decoder_builders import llama

    peak = machine_peak()
    copy, read = machine_bandwidth()
    bw = max(copy, read)
    llc = last_level_cache()
    print(f"this machine: {os.cpu_count()} cores; numpy float32 GEMM peak {peak / 1e9:.1f} GFLOP/s; "
          f"bandwidth copy {copy / 1e9:.1f} GB/s, read {read / 1e9:.1f} GB/s (bound uses {bw / 1e9:.1f}); "
          f"last-level cache {llc / (1 << 20):.0f} MiB")
    device = f"flops={peak:.6g},bandwidth={bw:.6g},cache={llc},name=this-machine"

    with tempfile.TemporaryDirectory(prefix="ma-roofline-") as tmp:
        big = Path(tmp) / "llama-2048x4-kv.onnx"
        model = llama(layers=4, hidden=2048, heads=16, kv_heads=4, ffn=5632, vocab=32000, kv_cache=True,
                      weights="random")
        onnx.save(model, str(big), save_as_external_data=True, location="llama.data")
        del model
        kv_zoo = ROOT / "samples" / "zoo" / "llama-kv-eager-torchscript.onnx"
        cases = [
            # (label, path, phase, analysis options, runtime dims, vocab, timed runs)
            ("tiny-llama", SHARED / "tiny-llama.onnx", "prefill", {"seq_len": 128}, {"seq": 128}, 128, 50),
            ("tiny-mistral-swa", SHARED / "tiny-mistral-swa.onnx", "prefill", {"seq_len": 128}, {"seq": 128},
             128, 50),
            ("tiny-bert", SHARED / "tiny-bert.onnx", "forward", {"seq_len": 128}, {"seq": 128}, 128, 50),
            ("llama-kv (zoo)", kv_zoo, "prefill", {"dims": {"seq": 128, "past": 0, "total": 128}},
             {"seq": 128, "past": 0, "total": 128}, 128, 50),
            ("llama-kv (zoo)", kv_zoo, "decode", {"dims": {"seq": 1, "past": 127, "total": 128}},
             {"seq": 1, "past": 127, "total": 128}, 128, 200),
            ("mobilenet_v3_small", ROOT / "samples" / "zoo" / "mobilenet_v3_small_w025-torchscript.onnx",
             "forward", {}, {}, 10, 50),
            ("llama 2048×4, 311 M", big, "prefill", {"dims": {"seq": 64, "past": 0}}, {"seq": 64, "past": 0},
             32000, 5),
            ("llama 2048×4, 311 M", big, "decode", {"dims": {"seq": 1, "past": 127}}, {"seq": 1, "past": 127},
             32000, 10),
        ]
        rows = []
        for label, path, phase, options, dims, vocab, repeat in cases:
            if not path.exists():
                print(f"skip {label}: {path} not found")
                continue
            data = bound(path, device, **options)
            phases = data["phases"]
            b = next(x for x in data["bounds"][phase] if x["batch"] == 1)
            t = measure(path, {**dims, "batch": 1, "batch_size": 1}, vocab, repeat)
            rows.append((label, phase, phases[phase]["context"], b["work"], b["bytes"], b["time_s"], b["binds"], t))
    print()
    print(f"{'model':22} {'step':8} {'n':>5} {'2·MACs':>9} {'bytes ≥':>9} {'bound':>9} {'binds':9} "
          f"{'measured':>9} {'× bound':>8}")
    ok = True
    for label, phase, n, work, moved, tb, binds, t in rows:
        ok &= t >= tb
        print(f"{label:22} {phase:8} {n if n is not None else '—':>5} {work / 1e9:8.3g}G {moved / 1e6:8.3g}M "
              f"{fmt_s(tb):>9} {binds:9} {fmt_s(t):>9} {t / tb:8.1f}")
    print()
    print("measured ≥ bound for every row" if ok else "BOUND VIOLATED: a measured time is below its bound")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
