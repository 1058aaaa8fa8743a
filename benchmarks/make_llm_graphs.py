#!/usr/bin/env python3
"""Export 70B- and 405B-class LLM graphs the way ``../shared/models/mistral-7b.onnx`` was made.

Hugging Face ``LlamaForCausalLM`` with the published Llama-3-70B (80 layers) and
Llama-3.1-405B (126 layers) configs, ``attn_implementation="eager"``, built on the
meta device (no weights exist) and exported with ``torch.onnx.export(dynamo=True)``,
opset 20, dynamic ``seq``. Only the graph is written; the initializers reference an
external data file that is never created (``make_sparse_data.py`` can make it sparse).
Needs torch, transformers and onnxscript (``pip install torch==2.13.0 transformers``);
never imported by the package or the tests. The files are large graphs: build them in
a temp dir, never commit them.

Usage: python benchmarks/make_llm_graphs.py OUT_DIR [--only 70b|405b] [--layers N]
"""

from __future__ import annotations

import argparse
import os
import time

CONFIGS = {
    # meta-llama/Meta-Llama-3-70B config.json
    "llama3-70b": dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
                       num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0,
                       rms_norm_eps=1e-5),
    # meta-llama/Llama-3.1-405B config.json (rope scaling omitted: it changes no shape)
    "llama3.1-405b": dict(hidden_size=16384, intermediate_size=53248, num_hidden_layers=126, num_attention_heads=128,
                          num_key_value_heads=8, vocab_size=128256, max_position_embeddings=131072,
                          rope_theta=500000.0, rms_norm_eps=1e-5),
}


def export(name: str, out_dir: str, layers: int | None) -> str:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = dict(CONFIGS[name])
    if layers:
        cfg["num_hidden_layers"] = layers
    config = LlamaConfig(**cfg, attn_implementation="eager", use_cache=False)
    with torch.device("meta"):
        model = LlamaForCausalLM(config).eval()
    ids = torch.zeros((1, 16), dtype=torch.int64, device="meta")
    path = os.path.join(out_dir, f"{name}.onnx")
    seq = torch.export.Dim("seq", min=2, max=131072)
    t = time.time()
    program = torch.onnx.export(model, (ids,), dynamo=True, opset_version=20, input_names=["input_ids"],
                                output_names=["logits"], dynamic_shapes={"input_ids": {1: seq}},
                                optimize=False, external_data=True)
    program.save(path, include_initializers=False)
    _reference_weights(path, model)
    print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB graph, {time.time() - t:.0f} s")
    return path


def _reference_weights(path: str, model: object) -> None:
    """Add every parameter and buffer the graph reads as an initializer whose data is
    external (``NAME.onnx.data``, consecutive offsets) — what an export with weights
    writes, without the bytes (meta tensors have none)."""
    import onnx
    import torch

    proto = onnx.load(path, load_external_data=False)
    g = proto.graph
    defined = {i.name for i in g.input} | {i.name for i in g.initializer} | {o for n in g.node for o in n.output}
    read = {i for n in g.node for i in n.input if i}
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())  # type: ignore[attr-defined]
    location, offset = os.path.basename(path) + ".data", 0
    for name in sorted(read - defined):
        t = tensors[name]
        length = t.numel() * t.element_size()
        init = onnx.TensorProto(name=name, dims=list(t.shape),
                                data_type=onnx.helper.np_dtype_to_tensor_dtype(torch.empty((), dtype=t.dtype).numpy()
                                                                                .dtype),
                                data_location=onnx.TensorProto.EXTERNAL)
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
            init.external_data.add(key=key, value=value)
        g.initializer.append(init)
        offset += (length + 4095) // 4096 * 4096
    onnx.save(proto, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--only", choices=sorted(CONFIGS))
    ap.add_argument("--layers", type=int, help="override the layer count (a quick check of the script)")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for name in [args.only] if args.only else list(CONFIGS):
        export(name, args.out_dir, args.layers)


if __name__ == "__main__":
    main()
