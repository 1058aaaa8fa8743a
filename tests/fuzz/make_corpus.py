"""Write the fuzzer's seed corpus into ``tests/fuzz/corpus`` (committed; rerun after
changing a generator). Seeds are small so that a mutation is analysed quickly: the
small samples, a conv net, one-layer transformers with different masks, fused
attention ops, a Loop, and the hostile reproducers of issue 18 (external data in
every place a tensor can be, forged names, declared-small huge folds, function
expansions, non-UTF-8 strings, nested Ifs)."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(ROOT / "samples"), str(HERE.parent)]

import attention_builders as A  # noqa: E402
import hostile_models as H  # noqa: E402

import builders  # noqa: E402


def small_convnet():
    """The sample conv net's layers (strides, a dilation, pools, a Resize) at 1-4 channels."""
    import numpy as np

    b = builders.GraphBuilder("small_convnet")
    x = b.input("image", builders.FLOAT, ["batch", 1, "H", "W"])
    x = b.op("Relu", [builders.conv(b, x, 1, 2, 3, stride=2)])
    x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = builders.conv(b, x, 2, 2, 3, dilation=2, group=2)
    x = b.op("Resize", [x, "", b.const(np.array([1, 1, 2, 2], np.float32))], mode="nearest")
    x = b.op("GlobalAveragePool", [x])
    b.op("Flatten", [x], name="y", axis=1)
    b.output("y")
    return b.model()


def seeds() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name in ("loop_like.onnx", "vad_like.onnx"):
        out[name] = (ROOT / "samples" / name).read_bytes()
    models = {
        "convnet": small_convnet(),
        "transformer-causal": builders.transformer(layers=1, heads=2, d_model=8, vocab=10),
        "transformer-window": builders.transformer(layers=1, heads=2, d_model=8, vocab=10, mask="window", window=3),
        "attention-chunked": A.attention_stack([A.chunked(4)], heads=1, d_model=4, vocab=8),
        "attention-padding": A.attention_stack(["padding"], heads=1, d_model=4, vocab=8),
        "onnx-attention": A.onnx_attention(),
        "gqa": A.gqa(local_window_size=4),
        "external": H.external_everywhere("data.bin"),
        "external-absolute": H.external_everywhere("/etc/passwd"),
        "external-dotdot": H.external_everywhere("../x.bin"),
        "forged-names": H.forged_names(),
        "hann": H.hann_window_declared_small(),
        "functions-twice": H.functions_calling_twice(5),
        "function-chain": H.function_chain(6),
        "loop": H.loop_trips(3),
        "sum": H.sum_of_initializers(8),
    }
    for name, model in models.items():
        out[name] = model.SerializeToString()
    victim = H.utf8_victim()
    for field in ("PRODUCERX", "OPTYPEXX", "DIMPARAMX"):
        out[f"utf8-{field.lower()}"] = H.corrupt_utf8(victim, field)
    out["nested-ifs"] = H.nested_ifs(5)
    return out


def main() -> None:
    corpus = HERE / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir()
    total = 0
    for name, data in sorted(seeds().items()):
        (corpus / f"{name}-{hashlib.sha1(data).hexdigest()[:8]}").write_bytes(data)
        total += len(data)
    print(f"{len(list(corpus.iterdir()))} seeds, {total:,} bytes in {corpus}")


if __name__ == "__main__":
    main()
