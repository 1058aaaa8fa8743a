"""Dim bindings: ``--dim k=v``, ``--seq-len N`` and the stated defaults.

Every number the report prints at a concrete size says which binding it used:
bound by the user, or a *default* we state (batch-like dims 1, ``past*`` dims 0,
image H/W 224, other dims 128). A ``--dim`` naming no dim of the model is a
usage error that lists the model's dims.
"""

from __future__ import annotations

import re

import onnx

from . import dims as D
from .errors import UsageError
from .graph import ModelGraph, TensorType
from .report import DimInfo

SEQ_NAMES = {"seq", "seq_len", "seqlen", "sequence", "sequence_length", "seq_length",
             "n_ctx", "tokens", "num_tokens", "text_len", "length", "s", "s0",
             "total_sequence_length", "src_len", "tgt_len", "decoder_sequence_length",
             "encoder_sequence_length"}
BATCH_NAMES = {"batch", "batch_size", "batchsize", "bs", "b", "n", "N", "B", "batch_dim"}
INT_TYPES = {onnx.TensorProto.INT64, onnx.TensorProto.INT32}


def parse_dim_specs(specs: list[str] | tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--dim {spec!r}: expected NAME=VALUE, e.g. --dim seq=4096")
        try:
            v = int(value)
        except ValueError:
            raise UsageError(f"--dim {spec!r}: value must be an integer") from None
        if v < 0:
            raise UsageError(f"--dim {spec!r}: value must be non-negative")
        out[name] = v
    return out


def input_dims(graph: ModelGraph, types: dict[str, TensorType]) -> list[str]:
    """Symbolic dim names of the graph inputs, in order of appearance."""
    seen: list[str] = []
    for name in graph.inputs:
        t = types.get(name)
        for d in (t.shape or ()) if t else ():
            for s in sorted(D.free_symbols(d)):
                if s not in seen:
                    seen.append(s)
    return seen


def _is_batch(name: str) -> bool:
    return name in BATCH_NAMES or "batch" in name.lower() or name.endswith("_d0")


def sequence_dim(graph: ModelGraph, types: dict[str, TensorType]) -> str | None:
    """The dim that plays the sequence role, found from the inputs.

    Preference: a dim with a sequence-like name; else axis 1 of a rank-2 integer
    input (token ids ``[batch, seq]``) or of a rank-3 float input.
    """
    names = input_dims(graph, types)
    for n in names:
        seq_like = n.lower() in SEQ_NAMES or re.fullmatch(r"(seq|sequence)\w*", n.lower())
        if seq_like and "past" not in n.lower():
            return n
    for name in graph.inputs:
        t = types.get(name)
        if t is None or t.shape is None or len(t.shape) not in (2, 3):
            continue
        if len(t.shape) == 2 and t.dtype not in INT_TYPES:
            continue
        syms = sorted(D.free_symbols(t.shape[1]))
        if len(syms) == 1:
            return syms[0]
    return None


def _default(name: str, graph: ModelGraph, types: dict[str, TensorType]) -> int:
    low = name.lower()
    if "past" in low:
        return 0
    if _is_batch(name):
        return 1
    for inp in graph.inputs:
        t = types.get(inp)
        if t and t.shape and len(t.shape) == 4 and t.dtype not in INT_TYPES:
            for axis in (2, 3):
                if name in D.free_symbols(t.shape[axis]):
                    return 224
    return 128


def resolve_dims(graph: ModelGraph, types: dict[str, TensorType], all_dims: set[str],
                 bound: dict[str, int], seq_len: int | None,
                 input_shapes: dict[str, list[int]]) -> DimInfo:
    """Validate user bindings and fill stated defaults for the free dims."""
    ordered = input_dims(graph, types)
    known = ordered + sorted(all_dims - set(ordered))
    for name in bound:
        if name not in all_dims:
            listing = ", ".join(known) if known else "none (all dims are concrete)"
            raise UsageError(f"--dim {name}: the model has no dim {name!r} (its dims: {listing})")
    bound = dict(bound)
    if seq_len is not None:
        seq = sequence_dim(graph, types)
        if seq is None:
            listing = ", ".join(known) if known else "none"
            raise UsageError(f"--seq-len: cannot tell which dim is the sequence (dims: {listing}); "
                             "use --dim NAME=N")
        if seq in bound and bound[seq] != seq_len:
            raise UsageError(f"--seq-len {seq_len} contradicts --dim {seq}={bound[seq]}")
        bound[seq] = seq_len
    free = [d for d in ordered if d not in bound]
    defaults = {d: _default(d, graph, types) for d in free}
    return DimInfo(bound=bound, defaults=defaults, free=free, input_shapes=dict(input_shapes))
