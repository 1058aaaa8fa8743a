"""A hand-built attack campaign in the classes of issue 18, with the outcome of each input.

    python tests/fuzz/campaign.py [--per-class N] [--seed S]

Every input goes through ``harness.check`` (the fuzzer's property) in this process,
under an alarm (a hang is > 20 s) and an address-space limit (a blow-up is > 4 GiB
more than at start). Outcomes: ``analyzed`` (a report, no analyzer failed), ``one line``
(exit 2 with one line), ``crash`` (anything else), ``hang``, ``memory``. Prints one row
per class and the first input of every bad outcome. Not a test: a measurement for the
issue's closing note, reproducible from the seed.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent.parent / "samples")]

import harness  # noqa: E402
import hostile_models as H  # noqa: E402
from make_corpus import seeds  # noqa: E402

HANG_SECONDS = 20
MEMORY_BYTES = 4 << 30


class Hang(Exception):
    pass


def _alarm(*_: object) -> None:
    raise Hang


def outcome(data: bytes) -> tuple[str, str]:
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    try:
        return harness.check(data), ""
    except Hang:
        return "hang", ""
    except MemoryError:
        return "memory", ""
    except harness.Crash as exc:
        return "crash", str(exc)
    except Exception as exc:  # an exception the harness let through
        return "crash", f"{type(exc).__name__}: {exc}"
    finally:
        signal.alarm(0)


def model(nodes, inputs, outputs, inits=(), opset=18):
    m = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(inits)),
                          opset_imports=[helper.make_opsetid("", opset)])
    return m.SerializeToString()


def vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def i64(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def huge_dims(rng: random.Random, n: int) -> list[bytes]:
    """2^62 dims, rank 1000, 10^12-element initializers, astronomical Reshape/Expand/Range/Tile."""
    out = []
    big = [2**62, 2**40, 10**12, 2**31, -1, 0, 7 * 10**17]
    for _ in range(n):
        b = rng.choice(big)
        kind = rng.randrange(7)
        if kind == 0:
            out.append(model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [b, b])], [vi("y", None)]))
        elif kind == 1:
            out.append(model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2] * rng.choice([100, 1000]))],
                             [vi("y", None)]))
        elif kind == 2:
            w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[10**6, 10**6])
            out.append(model([helper.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", [1, 10**6])],
                             [vi("y", None)], [w]))
        elif kind == 3:
            out.append(model([helper.make_node("Reshape", ["x", "s"], ["y"])], [vi("x", [4])], [vi("y", None)],
                             [i64("s", [b, b])]))
        elif kind == 4:
            out.append(model([helper.make_node("Expand", ["x", "s"], ["y"])], [vi("x", [1])], [vi("y", None)],
                             [i64("s", [b, b])]))
        elif kind == 5:
            out.append(model([helper.make_node("Range", ["a", "l", "d"], ["y"])], [],
                             [vi("y", None, TensorProto.INT64)], [i64("a", 0), i64("l", b), i64("d", 1)]))
        else:
            out.append(model([helper.make_node("Tile", ["x", "r"], ["y"])], [vi("x", [2])], [vi("y", None)],
                             [i64("r", [b])]))
    return out


def structural() -> list[bytes]:
    x, y = vi("x", [2]), vi("y", [2])
    return [
        model([helper.make_node("Add", ["x", "ghost"], ["y"])], [x], [y]),
        model([helper.make_node("Add", ["x", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])], [x],
              [vi("a", [2])]),
        model([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["x"], ["y"])], [x], [y]),
        model([], [x], []),
        model([helper.make_node("Relu", ["x"], ["y"])], [x], [y], opset=99),
        H.nested_ifs(40), H.nested_ifs(25),
        H.function_chain(3000).SerializeToString(), H.functions_calling_twice(23).SerializeToString(),
        H.sum_of_initializers(10_000).SerializeToString(), H.hann_window_declared_small().SerializeToString(),
        H.loop_trips(10**18).SerializeToString(), H.forged_names().SerializeToString(),
    ] + [H.corrupt_utf8(H.utf8_victim(), f) for f in ("PRODUCERX", "DIMPARAMX", "DOMAINXX", "OPTYPEXX", "LOCATIONX")] \
      + [H.external_everywhere(loc).SerializeToString()
         for loc in ("secret.bin", "/etc/passwd", "../x", "sub/../../x", "/dev/zero", "", "a\x00b", "C:\\x")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import resource

    from model_analyze.budgets import _vm_bytes

    resource.setrlimit(resource.RLIMIT_AS, ((_vm_bytes() or 0) + MEMORY_BYTES, resource.RLIM_INFINITY))
    rng = random.Random(args.seed)
    base = [d for _, d in sorted(seeds().items())]
    n = args.per_class
    classes: dict[str, list[bytes]] = {
        "truncation": [s[:rng.randrange(1, len(s))] for s in rng.choices(base, k=n)],
        "bit flip": [],
        "byte overwrite": [],
        "random bytes": [rng.randbytes(rng.choice([1, 16, 512, 4096, 65536])) for _ in range(n)],
        "huge dims/values": huge_dims(rng, n),
        "structural & hostile": structural(),
    }
    for _ in range(n):
        s = bytearray(rng.choice(base))
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(s))
            s[i] ^= 1 << rng.randrange(8)
        classes["bit flip"].append(bytes(s))
        s = bytearray(rng.choice(base))
        i = rng.randrange(len(s))
        s[i:i + 8] = rng.choice([b"\xff" * 8, b"\x00" * 8, (2**62).to_bytes(8, "little"), rng.randbytes(8)])
        classes["byte overwrite"].append(bytes(s))
    print(f"{'class':22} {'inputs':>6} {'analyzed':>9} {'one line':>9} {'crash':>6} {'hang':>5} {'memory':>7}")
    bad: list[str] = []
    totals: Counter[str] = Counter()
    for name, inputs in classes.items():
        counts: Counter[str] = Counter()
        for data in inputs:
            kind, why = outcome(data)
            counts[kind] += 1
            if kind in ("crash", "hang", "memory") and len(bad) < 20:
                bad.append(f"{name}: {kind}: {why[:160]}")
        totals.update(counts)
        print(f"{name:22} {len(inputs):>6} {counts['analyzed']:>9} {counts['one line']:>9} {counts['crash']:>6} "
              f"{counts['hang']:>5} {counts['memory']:>7}", flush=True)
    print(f"{'total':22} {sum(totals.values()):>6} {totals['analyzed']:>9} {totals['one line']:>9} "
          f"{totals['crash']:>6} {totals['hang']:>5} {totals['memory']:>7}")
    for line in bad:
        print(line)


if __name__ == "__main__":
    main()
