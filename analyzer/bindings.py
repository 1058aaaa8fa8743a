"""Dim bindings: ``--dim k=v``, ``--seq-len N`` and the stated defaults.

Every number the report prints at a concrete size says which binding it used:
bound by the user, or a *default* we state (batch-like dims 1, ``past*`` dims 0,
image H/W 224, other dims 128). A ``--dim`` naming no dim of the model is a
usage error that lists the model's dims.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from . import dims as D
from .budgets import BUDGETS
from .errors import UsageError, did_you_mean
from .graph import ModelGraph, TensorType
from .onnxproto import TensorProto
from .report import DimInfo

if TYPE_CHECKING:
    import onnx

SEQ_NAMES = {"seq", "seq_len", "seqlen", "sequence", "sequence_length", "seq_length",
             "n_ctx", "tokens", "num_tokens", "text_len", "length", "s", "s0",
             "total_sequence_length", "src_len", "tgt_len", "decoder_sequence_length",
             "encoder_sequence_length"}
BATCH_NAMES = {"batch", "batch_size", "batchsize", "bs", "b", "n", "N", "B", "batch_dim"}
INT_TYPES = {TensorProto.INT64, TensorProto.INT32}


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
        out[name] = check_dim(f"--dim {name}", v)
    return out


def check_dim(what: str, value: int) -> int:
    """A dim value given by the user, within ``0..BUDGETS.dim_value`` (a UsageError
    otherwise): ``seq=10^30`` is a typo, and no analyzer should meet it."""
    if not 0 <= value <= BUDGETS.dim_value:
        raise UsageError(f"{what}={value}: must be between 0 and {BUDGETS.dim_value:,}")
    return value


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


def _seq_named(name: str) -> bool:
    low = name.lower()
    return (low in SEQ_NAMES or re.fullmatch(r"(seq|sequence)\w*", low) is not None) and "past" not in low


def sequence_dim(graph: ModelGraph, types: dict[str, TensorType]) -> str | None:
    """The dim that plays the sequence role, found from the inputs.

    Preference: a dim with a sequence-like name; else axis 1 of a rank-2 integer
    input (token ids ``[batch, seq]``) or of a rank-3 float input — not of a recurrent
    state (``h0 [layers·directions, batch, hidden]``, see :func:`_is_state`), whose axis 1
    is the batch by the ONNX RNN/GRU/LSTM layout, never a sequence.
    """
    names = input_dims(graph, types)
    for n in names:
        seq_like = n.lower() in SEQ_NAMES or re.fullmatch(r"(seq|sequence)\w*", n.lower())
        if seq_like and "past" not in n.lower():
            return n
    signals = signal_dims(graph, types)
    if signals:
        return next(iter(signals))
    for name in graph.inputs:
        t = types.get(name)
        if t is None or t.shape is None or len(t.shape) not in (2, 3):
            continue
        if (len(t.shape) == 2 and t.dtype not in INT_TYPES) or _is_state(name, t):
            continue
        syms = sorted(D.free_symbols(t.shape[1]))
        if len(syms) == 1:
            return syms[0]
    return None


SIGNAL_OPS = frozenset({"Conv", "ConvInteger", "QLinearConv", "STFT", "DFT", "MaxPool", "AveragePool", "LpPool"})
"""Ops that slide a window (or a transform) along a signal: what makes an input axis a length."""
_NOT_THROUGH = frozenset({"Shape", "Size", "Transpose"})
"""A signal is not followed through these: they read metadata, or move the axis elsewhere."""
SIGNAL_DEPTH = 32


def _reaches_window(graph: ModelGraph, tensor: str) -> bool:
    """Whether ``tensor`` flows (through at most :data:`SIGNAL_DEPTH` nodes, into subgraph
    bodies through their owner — wespeaker frames the signal in a Scan) into a windowed or
    spectral op; never through Shape (metadata) or Transpose (the axis moves)."""
    seen: set[str] = set()
    frontier = [tensor]
    for _ in range(SIGNAL_DEPTH):
        nxt: list[str] = []
        for t in frontier:
            for node in graph.consumers(t):
                if node.op_type in SIGNAL_OPS and not node.domain:
                    return True
                if node.op_type in _NOT_THROUGH or node.id in seen:
                    continue
                seen.add(node.id)
                nxt += [o for o in node.outputs if o]
                for subs in node.subgraphs.values():
                    if any(n.op_type in SIGNAL_OPS for sub in subs for n in sub.walk()):
                        return True
        if not nxt:
            return False
        frontier = nxt
    return False


def signal_dims(graph: ModelGraph, types: dict[str, TensorType]) -> dict[str, str]:
    """Length dims of raw signals, by symbol → the input that has it: the last axis of a float
    input ``[batch, N]`` or ``[batch, C, N]`` (C concrete) that flows into a Conv, pooling,
    STFT or DFT — a waveform, whatever its dim is called (onnx-asr names it ``N``, which
    reads as a batch). Such an axis is a length: the cost grows with it and the front-end's
    window needs a minimum of it."""
    out: dict[str, str] = {}
    for name in graph.inputs:
        t = types.get(name)
        shape = t.shape if t is not None else None
        if t is None or shape is None or len(shape) not in (2, 3) or t.dtype in INT_TYPES or _is_state(name, t):
            continue
        if len(shape) == 3 and not D.is_int(shape[1]):
            continue
        sym = _single(shape[-1])
        if sym is None or sym in out or sym in D.free_symbols(shape[0]) or "past" in sym.lower():
            continue
        if _reaches_window(graph, name):
            out[sym] = name
    return out


SIGNAL_DEFAULT = 16_000
SIGNAL_SOURCE = "1 s of audio at 16 kHz, a guess"
"""The default length of a raw signal: one second at 16 kHz, the rate of speech models
(ASR, wake words, VAD); a window longer than that raises it (``runnable.raise_defaults``)."""
SPATIAL_FALLBACK = 224
OTHER_FALLBACK = 128
META_KEYS = ("imgsz", "img_size", "image_size", "input_size", "input_shape", "imagesize", "resolution",
             "img_shape", "image_shape")
"""metadata_props keys under which exporters store the example input size (Ultralytics: ``imgsz``)."""
_SHAPE_TEXT = re.compile(r"(\d+)\s*[x×,*]\s*(\d+)(?:\s*[x×,*]\s*(\d+))?(?:\s*[x×,*]\s*(\d+))?(?:\s*[x×,*]\s*(\d+))?")


def _single(d: D.Dim | None) -> str | None:
    """The symbol when a dim is exactly one free symbol (``p2o.DynamicDimension.1``)."""
    syms = D.free_symbols(d)
    if len(syms) != 1 or D.is_int(d):
        return None
    name = next(iter(syms))
    return name if D.fmt(d) == D.fmt(D.symbol(name)) else None


def _spatial_axes(t: TensorType) -> list[int]:
    """Image axes of a float input: H, W of ``[N, C, H, W]``; D, H, W of ``[N, C, D, H, W]``."""
    if t.shape is None or t.dtype in INT_TYPES:
        return []
    return {4: [2, 3], 5: [2, 3, 4]}.get(len(t.shape), [])


def _roles(graph: ModelGraph, types: dict[str, TensorType], seq: str | None) -> dict[str, str]:
    """What each input dim plays. Axis 0 of an image/token input (rank ≥ 2) is batch-like,
    named or not (``p2o.DynamicDimension.0``, ``unk__214``), unless the graph says it is a
    sequence: a sequence-like name, the model's sequence dim, or a token axis elsewhere."""
    roles: dict[str, str] = {}
    token_axes = {s for name in graph.inputs for s in _token_symbols(types.get(name))}
    signals = signal_dims(graph, types)
    for name in graph.inputs:
        t = types.get(name)
        if t is None or t.shape is None:
            continue
        spatial = _spatial_axes(t)
        labels = ["H", "W"] if len(spatial) == 2 else ["D", "H", "W"]
        for axis, d in enumerate(t.shape):
            sym = _single(d)
            for s in D.free_symbols(d):
                if "past" in s.lower():
                    roles[s] = "past"
            if sym is None or sym in roles:
                continue
            batch0 = axis == 0 and len(t.shape) >= 2 and sym != seq and not _seq_named(sym) and sym not in token_axes
            if batch0 or (axis == 1 and _is_state(name, t)):
                roles[sym] = "batch"
            elif axis in spatial:
                roles[sym] = labels[spatial.index(axis)]
            elif sym == seq or sym in signals:
                roles[sym] = "seq"
    for s in input_dims(graph, types):
        if s not in roles:
            roles[s] = "batch" if _is_batch(s) and s != seq and s not in signals else (
                "seq" if s == seq or s in signals else "other")
    return roles


_STATE = re.compile(r"(^|[._/])(state|hidden|h0|c0|h|c|hx|cx)([._/]?\d*|_in)?$")


def _is_state(name: str, t: TensorType) -> bool:
    """A recurrent state ``[layers·directions, batch, hidden]`` (LSTM/GRU ``h``/``c``,
    silero-vad's ``state``): its axis 1 is the batch."""
    shape = t.shape or ()
    return (len(shape) == 3 and t.dtype not in INT_TYPES and D.is_int(shape[0]) and D.is_int(shape[2])
            and _STATE.search(name.lower()) is not None)


def _token_symbols(t: TensorType | None) -> set[str]:
    """Symbols on the position axis of token ids ``[batch, seq]`` (int, rank 2)."""
    if t is None or t.shape is None or len(t.shape) != 2 or t.dtype not in INT_TYPES:
        return set()
    return D.free_symbols(t.shape[1])


def _ints(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


def _spatial_hint(proto: onnx.ModelProto | None, graph: ModelGraph, types: dict[str, TensorType],
                  inp: str) -> tuple[list[int], str] | None:
    """The example spatial size the model states for input ``inp``, and where it said it:
    metadata_props (``imgsz``), a sibling image input of fixed size, or a doc_string
    with the example shape (``1x3x640x640``)."""
    t = types[inp]
    axes = _spatial_axes(t)
    rank = len(t.shape or ())
    if proto is not None:
        for prop in proto.metadata_props:
            if prop.key.lower() in META_KEYS:
                vals = [v for v in _ints(prop.value) if v > 4]
                if len(vals) == 1:
                    vals = vals * len(axes)
                if len(vals) == len(axes):
                    return vals, f"metadata_props[{prop.key!r}]"
                if len(vals) == rank - 2:
                    return vals, f"metadata_props[{prop.key!r}]"
    for other in graph.inputs:
        o = types.get(other)
        if other == inp or o is None or o.shape is None or _spatial_axes(o) != axes:
            continue
        sizes = [v for a in axes if (v := D.as_int(o.shape[a])) is not None and v > 1]
        if len(sizes) == len(axes):
            return sizes, f"sibling input {other!r}"
    docs = [(proto.doc_string, "model doc_string"), (proto.graph.doc_string, "graph doc_string")] if proto else []
    docs += [(i.doc_string, f"input {i.name!r} doc_string") for i in (proto.graph.input if proto else ())
             if i.name == inp]
    for text, where in docs:
        for mt in _SHAPE_TEXT.finditer(text or ""):
            vals = [int(x) for x in mt.groups() if x is not None]
            if len(vals) == rank:
                return [vals[a] for a in axes], where
    return None


def _defaults(free: list[str], roles: dict[str, str], graph: ModelGraph, types: dict[str, TensorType],
              proto: onnx.ModelProto | None) -> tuple[dict[str, int], dict[str, str]]:
    values: dict[str, int] = {}
    source: dict[str, str] = {}
    for inp in graph.inputs:
        t = types.get(inp)
        if t is None or t.shape is None:
            continue
        # a KV cache input [B, kv_heads, past, d] has the rank of an image: its past is not H
        syms = [s if roles.get(s or "") in ("H", "W", "D") else None for s in
                (_single(t.shape[a]) for a in _spatial_axes(t))]
        if not any(s in free and s not in values for s in syms):
            continue
        hint = _spatial_hint(proto, graph, types, inp)
        for k, s in enumerate(syms):
            if s is None or s not in free or s in values:
                continue
            values[s], source[s] = (hint[0][k], hint[1]) if hint else (SPATIAL_FALLBACK, "fallback")
    for s in signal_dims(graph, types):
        if s in free and s not in values:
            values[s], source[s] = SIGNAL_DEFAULT, SIGNAL_SOURCE
    for s in free:
        if s in values:
            continue
        role = roles.get(s, "other")
        values[s] = {"past": 0, "batch": 1}.get(role, SPATIAL_FALLBACK if role in ("H", "W", "D") else OTHER_FALLBACK)
        source[s] = "fallback"
    return values, source


PLACEHOLDER = {"H": "H", "W": "W", "D": "D"}


def _is_guess(source: str) -> bool:
    """A default of ours (a fallback, a signal's second of audio), not a size the model stated."""
    return source == "fallback" or source.endswith(", a guess")


def suggestion(dims: DimInfo, graph: ModelGraph, types: dict[str, TensorType], seq: str | None) -> str:
    """The binding to type instead of the guessed defaults, with the model's real input
    names and ranks: ``--input-shape x=1,3,H,W`` when one input holds them all,
    ``--seq-len N`` for the sequence alone, else ``--dim NAME=N`` each. A size the model
    stated is written out (``640``); a fallback is a placeholder to fill in, since
    repeating our guess would only silence the warning."""
    guessed = dims.guessed()
    if not guessed:
        return ""

    def show(name: str) -> str:
        if not _is_guess(dims.default_from.get(name, "fallback")) or name not in guessed:
            return str({**dims.defaults, **dims.bound}[name])
        return PLACEHOLDER.get(dims.roles.get(name, ""), "N")

    if seq is not None and set(guessed) == {seq}:
        return f"--seq-len {show(seq)}"
    for inp in graph.inputs:
        t = types.get(inp)
        if t is None or t.shape is None:
            continue
        syms = {s for d in t.shape for s in D.free_symbols(d)}
        if not set(guessed) <= syms or not all(_single(d) is not None or D.is_int(d) for d in t.shape):
            continue
        shape = [str(int(d)) if D.is_int(d) else show(_single(d) or "") for d in t.shape]
        return f"--input-shape {inp}={','.join(shape)}"
    return " ".join(f"--dim {k}={show(k)}" for k in guessed)


def resolve_dims(graph: ModelGraph, types: dict[str, TensorType], all_dims: set[str],
                 bound: dict[str, int], seq_len: int | None,
                 input_shapes: dict[str, list[int]], proto: onnx.ModelProto | None = None) -> DimInfo:
    """Validate user bindings and fill stated defaults for the free dims."""
    ordered = input_dims(graph, types)
    known = ordered + sorted(all_dims - set(ordered))
    for name in bound:
        if name not in all_dims:
            listing = ", ".join(known) if known else "none (all dims are concrete)"
            raise UsageError(f"--dim {name}: the model has no dim {name!r}{did_you_mean(name, known)} "
                             f"(its dims: {listing})")
    bound = dict(bound)
    for name, value in bound.items():
        check_dim(f"--dim {name}", value)
    seq = sequence_dim(graph, types)
    if seq_len is not None:
        check_dim("--seq-len", seq_len)
        if seq is None:
            listing = ", ".join(known) if known else "none"
            raise UsageError(f"--seq-len: cannot tell which dim is the sequence (dims: {listing}); "
                             "use --dim NAME=N")
        if seq in bound and bound[seq] != seq_len:
            raise UsageError(f"--seq-len {seq_len} contradicts --dim {seq}={bound[seq]}")
        bound[seq] = seq_len
    free = [d for d in ordered if d not in bound]
    roles = _roles(graph, types, seq)
    defaults, source = _defaults(free, roles, graph, types, proto)
    info = DimInfo(bound=bound, defaults=defaults, free=free, input_shapes=dict(input_shapes),
                   roles={d: roles.get(d, "other") for d in free}, default_from=source)
    info.suggestion = suggestion(info, graph, types, seq)
    return info
