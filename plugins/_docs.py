"""What the built-in analyzers publish about their output: each section's data schema
(``schema/<analyzer>.data.schema.json``, shipped with the package) and a one-line
description per metric key. The full definitions are in docs/metrics.md."""

from __future__ import annotations

import json
import pkgutil
from functools import cache
from typing import Any


@cache
def data_schema(analyzer: str) -> dict[str, Any]:
    """The shipped schema, read through the package's loader (works from a wheel, a zip or a
    checkout; ``pkgutil`` rather than ``importlib.resources``, whose import alone cost more than
    every schema it reads: every analyzer's declaration calls this, ``--help`` too)."""
    data = pkgutil.get_data("model_analyze.plugins", f"schema/{analyzer}.data.schema.json")
    if data is None:
        raise FileNotFoundError(f"model_analyze.plugins: schema/{analyzer}.data.schema.json")
    return json.loads(data.decode("utf-8"))


METRICS: dict[str, dict[str, str]] = {
    "receptive-field": {
        "rf.size": "receptive field of the final map (input positions one output position sees)",
        "rf.stride": "distance in input positions between neighbouring final-map positions",
        "rf.pad": "effective left padding: output 0's field starts at input coordinate -pad",
    },
    "attention": {
        "attention.summary": "attention layers and their mask families",
        "layers": "attention layers found (fused ops and unfused patterns)",
        "n": "key length the spans are computed at",
        "reach.last": "input positions the last output position depends on",
        "reach.covers": "whether the last position sees position 0 at this length",
        "reach.causal": "whether no output position depends on a later input position (unknown when not shown)",
        "reach.pairs": "fraction of (output, input) pairs that are reachable",
        "reach.growth": "reach of the last position after each attention layer",
    },
    "hotspots": {
        "macs": "multiply-accumulates at the binding",
        "flops": "FLOPs at the binding: 2 × MACs plus element-wise work, attention dense",
        "attention.flops.dense": "QKᵀ and AV FLOPs of every attention layer, dense",
        "attention.flops.effective": "QKᵀ and AV FLOPs counting only the (query, key) pairs the masks leave visible",
        "flops.effective": "total FLOPs with attention at its mask-aware count",
        "params": "trained parameters, each stored tensor once",
        "params.bytes": "bytes of the parameters as stored, by dtype",
        "initializer_elements": "elements of every stored initializer (parameters, buffers, constants), each once",
        "bytes.moved": "bytes every node reads and writes, unfused",
        "intensity": "dense FLOPs per byte moved",
        "memory.peak": "largest sum of live activations along the graph order, unfused",
        "memory.peak_dominant": "the tensors that make most of the peak, and what a fused kernel would leave",
        "memory.largest": "the largest single activation",
        "nodes.folded": "constant-foldable nodes (weight preparation done once), not in the totals",
        "nodes.uncounted": "nodes counted as zero: the totals are lower bounds",
        "hotspot": "where most of the FLOPs go: the costliest layer group or node",
    },
    "architecture": {
        "arch.depth": "self-attention layers L",
        "arch.width": "model width d_x",
        "arch.log3_width": "log₃(d_x), Levine et al.'s depth transition",
        "arch.regime": "Levine et al. (NeurIPS 2020) regime: depth-efficient or width-limited (a heuristic)",
        "arch.params_per_layer": "median parameters per numbered layer",
        "coverage.n": "sequence length the coverage is judged at",
        "coverage.reach_last": "input tokens the last token sees",
        "coverage.covers": "whether the last token sees the first",
        "coverage.first_layer": "attention layers after which the last token first sees the first",
        "coverage.pair_fraction": "fraction of (query, key) pairs that are reachable",
        "coverage.min_depth": "least depth L with L·(W−1)+1 ≥ N for the model's window W",
    },
    "structure": {
        "nodes": "ONNX nodes, control-flow bodies included",
        "op_types": "distinct domain::op_type",
        "depth": "most nodes on any input-to-output path",
        "subgraphs": "If/Loop/Scan bodies",
        "external_files": "external data files referenced (never opened)",
        "inlined_functions": "model-local functions expanded before analysis",
    },
    "serving": {
        "serving.n": "context length the serving figures are at",
        "kv.per_token": "KV cache bytes one token adds over all layers",
        "kv.sequence": "KV cache bytes of one sequence at n",
        "kv.bytes": "KV cache bytes at n and the batch",
        "kv.vs_mha": "KV cache against one with a kv head per query head",
        "weights.held": "parameter bytes resident while serving",
        "weights.read": "parameter bytes one step reads",
        "forward.flops": "FLOPs of one forward pass as exported",
        "forward.bytes": "bytes one forward pass moves (lower bound)",
        "prefill.flops": "FLOPs to process the prompt",
        "prefill.bytes": "bytes the prefill moves (lower bound)",
        "decode.flops": "FLOPs of one decode step at context n",
        "decode.bytes": "bytes one decode step moves (lower bound)",
        "device": "the device the bounds are computed for",
        "bound.prefill": "lower bound on the prefill time on the device (≈ an estimate when the work is not a floor)",
        "bound.decode": "lower bound on one decode step's time on the device (≈ when the work is not a floor)",
        "bound.forward": "lower bound on one forward pass's time on the device (≈ when the work is not a floor)",
        "bound.tokens_per_s": "upper bound on decode tokens per second (≈ from an estimated time)",
        "bound.items_per_s": "upper bound on items per second (≈ from an estimated time)",
        "memory.need": "device memory for weights and KV cache (activations not counted)",
    },
}
