"""The serving analyzer's finding codes, in a module of their own: the declaration
(:mod:`model_analyze.plugins.serving`) lists them without importing the analysis."""

from __future__ import annotations

from model_analyze.plugin_api import Code, Severity

CODES = (
    Code("SV001", "no-kv-cache", Severity.INFO,
         "the graph has no KV cache: decode step and cache analysed as if cached",
         "The export computes every step from scratch (no past key/value inputs); the decode step and the cache "
         "are costed as a cached runtime would run them: one query row against n keys, K/V of every token kept.",
         "Nothing; export with a KV cache to see the graph's own decode step.",
         "the graph has no KV cache: the decode step and the cache are analysed as if cached", action="none"),
    Code("SV002", "does-not-fit-device", Severity.WARNING,
         "weights + KV cache at the bound context and batch exceed the device's memory",
         "At the bound context length and batch, the weights plus the KV cache need more memory than the device "
         "has.",
         "Serve a shorter context or smaller batch, quantize the weights or the cache (`--kv-dtype`), or use a "
         "larger device.",
         "weights + KV cache at seq=32768, batch 8 need 120 GB: more than the 80 GB of H100 SXM"),
    Code("SV003", "serving-at-default-length", Severity.WARNING,
         "KV cache and prefill/decode figures are at a default context length (bind `--seq-len`)",
         "The cache size and the phase costs grow with the context; at a default length they are a guess.",
         "Bind the context you serve: `--seq-len N` or `seq-len` in the config.",
         "KV cache and prefill/decode figures are at a default context length (seq=128): bind the length you "
         "serve with --seq-len N", action="bind"),
    Code("SV004", "serving-mask-not-read", Severity.WARNING,
         "masks not read: FLOPs count that attention dense, the bounds one key per query",
         "For layers whose mask could not be read, FLOPs count the attention dense and the lower bounds assume "
         "the fewest keys any mask leaves (one per query), so both stay honest bounds.",
         "See AT010 for the layers; fix the mask export or accept the bounds.",
         "mask not read for 2 layer(s) (layers.0, layers.1): FLOPs count their attention dense"),
    Code("SV005", "fits-on-chip", Severity.INFO,
         "weights (and cache) fit in the device's on-chip cache: bandwidth bounds nothing",
         "The weights (and cache) fit in the device's on-chip cache, so DRAM bandwidth gives no lower bound; "
         "only the compute side is stated.",
         "Nothing; informational.",
         "decode: the weights (and KV cache) fit in the 50 MB on-chip cache of H100 SXM", action="none"),
)
