"""The ``serving`` report section: KV cache, prefill vs decode, bounds on a device.

Finding codes: SV001 decode analysed as if cached (no KV cache in the graph),
SV002 weights + KV cache exceed the device's memory, SV003 figures at a default
context length, SV004 masks not read (bound counts one key per query), SV005 the
reused working set fits on chip (bandwidth bounds nothing).
"""

from __future__ import annotations

import re
from typing import Any

from model_analyze import devices as devmod
from model_analyze.bounded import WHAT
from model_analyze.context import AnalysisContext
from model_analyze.cost import cost_model
from model_analyze.devices import Device
from model_analyze.plugin_api import Column, Metric, Section, Severity, Table
from model_analyze.render import fold_label, human, mark

from .kv import KVCache, read_cache
from .options import ServingOptions, parse_kv_dtype
from .phases import Phase, Phases, build, exact
from .roofline import Bound, bound, fmt_rate, fmt_time

BATCHES = (1, 8, 64, 256)
"""Batch sizes of the bounds table (plus ``--batch``)."""


def options(ctx: AnalysisContext) -> tuple[Device | None, int, Any]:
    opts = ctx.options_for(ServingOptions)
    device = devmod.resolve(opts.device) if opts.device else None
    return device, opts.batch, parse_kv_dtype(opts.kv_dtype)


def run(ctx: AnalysisContext) -> Section:
    section = Section("serving", "Serving cost")
    device, batch, kv_dtype = options(ctx)
    m = cost_model(ctx)
    kv = read_cache(ctx, kv_dtype)
    ph = build(ctx, m, kv)
    data: dict[str, Any] = {"batch": batch, "n": ph.n, "seq_dim": ph.seq, "cached": ph.cached}
    at_default = ph.seq is not None and ph.seq not in ctx.dims.bound and not (ph.cached and ctx.dims.bound)
    n_text = "" if ph.n is None else f"n={ph.n:,}" + (" (default)" if at_default else "")
    if ph.n is not None:
        section.metrics.append(Metric("serving.n", "Context length n", ph.n, "tokens", None,
                                      "stated default: bind with --seq-len" if at_default else "bound"))
    if kv.layers and ph.n is not None:
        _kv_metrics(section, kv, ph.n, batch, data)
    _weights(section, m, ph, data)
    _phase_metrics(section, ph, data)
    bounds: dict[str, list[Bound]] = {}
    if device is not None:
        bounds = _device_metrics(section, device, ph, kv, batch, data)
    else:
        _device_table(section, ph, batch, data)
    _findings(section, ctx, kv, ph, device, batch, bounds, at_default, n_text)
    section.summary = _summary(kv, ph, device, batch, bounds, n_text)
    section.data = data
    return section


# -- KV cache ------------------------------------------------------------------------------
def _kv_metrics(section: Section, kv: KVCache, n: int, batch: int, data: dict[str, Any]) -> None:
    per_token = kv.per_token_bytes()
    per_seq = kv.bytes(n)
    dtypes = sorted({la.dtype for la in kv.layers})
    how = "read from the graph's cache inputs" if kv.read_directly else "as if cached (no cache in the graph)"
    why = kv.dtype_note if kv.dtype_note == "--kv-dtype" else \
        f"{kv.dtype_note}, as the model runs exported; --kv-dtype fp16 for a half-precision cache"
    section.metrics.append(Metric("kv.per_token", "KV cache per token", exact(per_token), "B", None,
                                  f"{len(kv.layers)} layer(s) in {'/'.join(dtypes)} ({why}); {how}"))
    capped = kv.capped()
    cap_note = ""
    if capped:
        caps = sorted({la.cap_reason for la in capped})
        cap_note = f"; {len(capped)} of {len(kv.layers)} layer(s) keep at most their {', '.join(caps)}"
    section.metrics.append(Metric("kv.sequence", "KV cache per sequence", exact(per_seq), "B", kv.formula(),
                                  f"at n={n:,}{cap_note}"))
    section.metrics.append(Metric("kv.bytes", f"KV cache, batch {batch}", exact(batch * per_seq), "B", None,
                                  f"{batch} × per sequence at n={n:,}", headline="kv_cache_bytes"))
    mha = kv.mha_bytes(n)
    if mha and per_seq and mha != per_seq:
        section.metrics.append(Metric("kv.vs_mha", "vs full MHA", f"{float(mha / per_seq):.3g}× smaller", "",
                                      None, f"one K/V head per query head: {human(exact(mha), 'B')} per sequence "
                                      "(GQA/MQA saving)"))
    table = Table("kv_layers", f"KV cache by layer (bytes each at n={n:,})", [
        Column("layers", "layers"), Column("count", "×", "right"), Column("kind", "kind"),
        Column("heads", "q/kv", "right"), Column("elems", "elem/token", "right"), Column("dtype", "dtype"),
        Column("keeps", "keeps"), Column("bytes", "bytes", "right")])
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for la in kv.layers:
        key = (la.kind, la.heads, la.kv_heads, la.per_token, la.fixed, la.dtype, la.cap)
        groups.setdefault(key, []).append(la)
    for (kind, heads, kvh, per, fixed, dtype, cap), items in groups.items():
        names = _span_name([la.name for la in items])
        keeps = "fixed" if kind == "cross" else (f"≤ {cap:,}" if cap else "all")
        elems = per if per else f"{fixed:,} fixed"
        hq = f"{heads}/{kvh}" if heads and kvh else "—"
        table.rows.append([names, len(items), kind, hq, elems, dtype, keeps, human(exact(items[0].bytes(n)), "B")])
    table.note = "; ".join(kv.notes) if kv.notes else ""
    section.tables.append(table)
    data["kv"] = {"read_directly": kv.read_directly, "inputs": kv.inputs, "per_token_bytes": exact(per_token),
                  "sequence_bytes": exact(per_seq), "batch_bytes": exact(batch * per_seq), "formula": kv.formula(),
                  "dtype_source": kv.dtype_note, "mha_bytes": exact(mha) if mha else None,
                  "layers": [{"name": la.name, "kind": la.kind, "heads": la.heads, "kv_heads": la.kv_heads,
                              "d_k": la.d_k, "d_v": la.d_v, "elements_per_token": la.per_token,
                              "fixed_elements": la.fixed, "dtype": la.dtype, "bytes_per_element": float(la.nbytes),
                              "cap": la.cap, "cap_reason": la.cap_reason, "source": la.source} for la in kv.layers]}


def _span_name(names: list[str]) -> str:
    """``layers.0`` … ``layers.31`` → ``layers.{0..31}``."""
    if len(names) == 1:
        return names[0]
    parts = [re.match(r"^(.*\D)(\d+)$", x) for x in names]
    if all(parts) and len({p.group(1) for p in parts if p}) == 1:
        return fold_label(parts[0].group(1), [int(p.group(2)) for p in parts if p])  # type: ignore[union-attr]
    return f"{names[0]} …"


# -- weights -------------------------------------------------------------------------------
def _weights(section: Section, m: Any, ph: Phases, data: dict[str, Any]) -> None:
    by = m.params.by_dtype(roles=("parameter", "quantization", "buffer", "copy"))
    parts = ", ".join(f"{k} {human(b, 'B')}" for k, (_, b) in sorted(by.items(), key=lambda x: -x[1][1]))
    section.metrics.append(Metric("weights.held", "Weights held", ph.weights_held, "B", None,
                                  f"every stored tensor; by dtype: {parts}" if parts else "every stored tensor"))
    look = ""
    if ph.lookups:
        look = "; only gathered rows of " + ", ".join(f"{name} ({rows:,} rows)" for name, rows, _ in ph.lookups)
    maybe = ""
    if ph.weights_maybe:  # read only in an If branch that may not run: the total is only a ceiling
        maybe = (f"; {human(ph.weights_maybe, 'B')} of them only inside If branches whose condition is not known "
                 "(perhaps not read; not in the bytes ≥)")
    section.metrics.append(Metric("weights.read", "Weights read per step", ph.weights_read, "B", None,
                                  "parameters, scales and buffers, once per step whatever the batch" + look + maybe,
                                  bound="upper" if ph.weights_maybe else None))
    table = Table("weights", "Weights by dtype", [Column("dtype", "dtype"), Column("elements", "elements", "right"),
                                                 Column("bytes", "bytes", "right")])
    for label, (n, b) in sorted(by.items(), key=lambda x: -x[1][1]):
        table.rows.append([label, n, human(b, "B")])
    if table.rows:
        section.tables.append(table)
    data["weights"] = {"held_bytes": ph.weights_held, "read_bytes": ph.weights_read,
                       "maybe_read_bytes": ph.weights_maybe,
                       "by_dtype": {k: {"elements": n, "bytes": b} for k, (n, b) in by.items()},
                       "lookup_tables": [{"name": a, "rows": r, "row_bytes": b} for a, r, b in ph.lookups]}


# -- prefill / decode ----------------------------------------------------------------------
def _phase_metrics(section: Section, ph: Phases, data: dict[str, Any]) -> None:
    rows = [p for p in (ph.prefill, ph.decode) if p is not None]
    for p in rows:
        label = {"prefill": "Prefill", "decode": "Decode step", "forward": "Forward pass"}[p.name]
        what = {"prefill": f"{p.context:,} tokens; " if p.context else "",
                "decode": f"one token at context {p.context:,}; " if p.context else "", "forward": ""}[p.name]
        section.metrics.append(Metric(f"{p.name}.flops", f"{label} FLOPs", exact(p.flops), "FLOP", None,
                                      f"{what}mask-aware; {p.how}", bound=ph.flops_bound))
        section.metrics.append(Metric(f"{p.name}.bytes", f"{label} bytes", exact(p.bytes()), "B", None,
                                      _bytes_note(p), bound="lower"))
    title = "Prefill vs decode (one sequence)" if ph.decode else "Forward pass (one sequence or item)"
    table = Table("phases", title, [
        Column("phase", "phase"), Column("tokens", "tokens", "right"), Column("flops", "FLOPs", "right", bounded=True),
        Column("mma", "2·MACs", "right", bounded=True), Column("bytes", "bytes ≥", "right"),
        Column("unfused", "unfused bytes", "right"), Column("ai", "FLOP/B", "right")],
        note="FLOPs: all, mask-aware; 2·MACs: the matrix work the bounds use; bytes ≥: weights once + KV cache + "
             "inputs/outputs; unfused: every tensor written and read (hotspots), not a bound")
    # 2·MACs over bytes that are a floor: at most the true intensity's when the work is exact or at
    # most what runs (≤ over ≥); with work that is a floor too, neither way (≈).
    ai_kind = "upper" if ph.flops_bound in (None, "upper") else "estimate"
    for p in rows:
        ai = p.mma_total / p.bytes() if p.bytes() else None
        table.add([p.name, p.tokens, human(exact(p.flops)), human(exact(p.mma_total)),
                   human(exact(p.bytes()), "B"),
                   mark(ph.unfused_bound) + human(exact(p.unfused), "B") if p.unfused else "—",
                   mark(ai_kind) + f"{ai:.3g}" if ai is not None else "—"], ph.flops_bound)
    section.tables.append(table)
    data["phases"] = {p.name: {"context": p.context, "tokens": p.tokens, "flops": exact(p.flops),
                               "mma_flops": {k: exact(v) for k, v in p.mma.items()}, "bytes": exact(p.bytes()),
                               "weight_bytes": exact(p.weights), "lookup_bytes": exact(p.lookup),
                               "kv_bytes": exact(p.kv), "io_bytes": exact(p.io), "unfused_bytes": exact(p.unfused),
                               "unfused_bound": ph.unfused_bound if p.unfused else None,
                               "how": p.how} for p in rows}
    data["notes"] = ph.notes
    data["unread_masks"] = ph.unread_masks


def _bytes_note(p: Phase) -> str:
    parts = [f"weights {human(exact(p.weights), 'B')}"]
    if p.lookup:
        parts.append(f"embedding rows {human(exact(p.lookup), 'B')}")
    if p.kv:
        parts.append(f"KV cache {human(exact(p.kv), 'B')}" + (" written" if p.name == "prefill" else " read"))
    parts.append(f"inputs/outputs {human(exact(p.io), 'B')}")
    return " + ".join(parts)


# -- bounds --------------------------------------------------------------------------------
def _device_metrics(section: Section, device: Device, ph: Phases, kv: KVCache, batch: int,
                    data: dict[str, Any]) -> dict[str, list[Bound]]:
    phases = [p for p in (ph.prefill, ph.decode) if p is not None]
    dtypes = sorted({d for p in phases for d, w in p.mma.items() if w > 0}) or ["fp32"]
    peaks = "; ".join(f"{d} {fmt_rate(device.peak_for(d)[0], 'FLOP/s')}"
                      + (f" ({device.peak_for(d)[1]})" if device.peak_for(d)[1] != d else "") for d in dtypes)
    section.metrics.append(Metric("device", "Device", device.label, "", None,
                                  f"{peaks}; {fmt_rate(device.bandwidth, 'B/s')}; source: {device.source}"))
    out: dict[str, list[Bound]] = {}
    sizes = sorted(set(BATCHES) | {batch})
    for p in phases:
        out[p.name] = [bound(p, device, b, ph.flops_bound) for b in sizes]
    for p in phases:
        b = next(x for x in out[p.name] if x.batch == batch)
        label = {"prefill": "Prefill time", "decode": "Decode step time", "forward": "Forward pass time"}[p.name]
        section.metrics.append(Metric(f"bound.{p.name}", label, b.time, "s", None, _side_note(b, device, batch),
                                      bound=b.kind, headline="decode_time_bound" if p.name == "decode" else None))
        rate = round(batch / b.time, 3) if b.time else None
        ceiling = "a ceiling, not a prediction" if b.rate_kind == "upper" else "an estimate: the step time is one"
        if p.name == "decode":
            section.metrics.append(Metric("bound.tokens_per_s", "Decode rate", rate, "tokens/s", None,
                                          f"batch {batch} / step time at n={p.context:,}; {ceiling}",
                                          bound=b.rate_kind))
        if p.name == "forward":
            section.metrics.append(Metric("bound.items_per_s", "Items per second", rate, "", None,
                                          f"batch {batch} / forward time; {ceiling}", bound=b.rate_kind))
    held = ph.weights_held
    need = held + batch * float(kv.bytes(ph.n)) if (kv.layers and ph.n is not None) else held
    if device.memory:
        fit = f"{human(exact(need), 'B')} of {human(device.memory, 'B')}"
        if kv.layers and ph.n is not None and kv.bytes(ph.n):
            most = int((device.memory - held) // float(kv.bytes(ph.n))) if device.memory > held else 0
            fit += f"; at most {most:,} sequence(s) of n={ph.n:,} fit beside the weights (activations not counted)"
        section.metrics.append(Metric("memory.need", "Device memory needed", exact(need), "B", None, fit,
                                      bound="lower"))
    every = [x for bs in out.values() for x in bs]
    lower = all(x.kind == "lower" for x in every)
    table = Table("bounds", f"{'Lower bounds' if lower else 'Time'} on {device.label} by batch", [
        Column("batch", "batch", "right")]
        + [c for p in phases for c in (Column(f"{p.name}", _head(p.name, lower), "right"),
                                       Column(f"{p.name}_binds", "binds"))]
        + [Column("tps" if ph.decode else "ips", _head("tokens/s" if ph.decode else "items/s", lower, "≤"), "right")]
        + ([Column("mem", "memory ≥", "right")] if kv.layers else []),
        note="≥: no runtime can do this step faster on this device (dense peaks, peak bandwidth); "
             + ("tokens/s ≤ = batch / decode step bound" if ph.decode else "items/s ≤ = batch / bound")
             + "; compute*: weights and cache fit on chip, bandwidth bounds nothing"
             + ("" if lower else f"; {_NOT_A_FLOOR}")
             + ("; ✗: more than the device's memory" if kv.layers and device.memory else ""))
    for i, size in enumerate(sizes):
        row: list[Any] = [size]
        for p in phases:
            x = out[p.name][i]
            row += [_cell_time(x, lower), x.binds]
        row.append(_cell_rate(out[phases[-1].name][i], size, lower))
        if kv.layers and ph.n is not None:
            need_b = held + size * float(kv.bytes(ph.n))
            over = " ✗" if device.memory and need_b > device.memory else ""
            row.append(human(exact(need_b), "B") + over)
        table.rows.append(row)
    section.tables.append(table)
    data["device"] = {"name": device.name, "label": device.label, "peak": device.peak, "bandwidth": device.bandwidth,
                      "memory": device.memory, "cache": device.cache, "source": device.source}
    data["bounds"] = {name: [{"batch": x.batch, "time_s": x.time, "time_bound": x.kind, "work_bound": x.work_bound,
                              "t_compute_s": x.t_compute,
                              "t_memory_s": x.t_memory, "binds": x.binds, "work": x.work, "bytes": x.bytes,
                              "peaks": [{"dtype": d, "peak": v, "how": h} for d, v, h in x.peaks]} for x in bs]
                      for name, bs in out.items()}
    data["memory_needed"] = exact(need)
    return out


def _device_table(section: Section, ph: Phases, batch: int, data: dict[str, Any]) -> None:
    """Without --device: the bounds on every built-in device, batch as given."""
    seen: dict[str, Device] = {}
    for dev in devmod.available().values():
        seen.setdefault(dev.name, dev)
    phases = [p for p in (ph.prefill, ph.decode) if p is not None]
    if not seen or not phases:
        return
    every = {name: [bound(p, dev, batch, ph.flops_bound) for p in phases] for name, dev in seen.items()}
    lower = all(x.kind == "lower" for bs in every.values() for x in bs)
    table = Table("devices", f"{'Lower bounds' if lower else 'Time'} per device (batch {batch}; --device NAME for "
                  "details)", [Column("device", "device")]
        + [c for p in phases for c in (Column(p.name, _head(p.name, lower), "right"), Column(f"{p.name}_b", "binds"))]
        + [Column("rate", _head("tokens/s" if ph.decode else "items/s", lower, "≤"), "right")],
        note="≥: lower bounds (dense peaks, peak bandwidth); compute*: fits on chip, bandwidth bounds nothing"
             + ("" if lower else f"; {_NOT_A_FLOOR}"))
    rows, kinds = {}, {}
    for name, bs in every.items():
        row: list[Any] = [name]
        for x in bs:
            row += [_cell_time(x, lower), x.binds]
        row.append(_cell_rate(bs[-1], batch, lower))
        table.rows.append(row)
        rows[name] = {x.phase: x.time for x in bs}
        kinds[name] = {x.phase: x.kind for x in bs}
    section.tables.append(table)
    data["per_device"] = rows
    data["per_device_bound"] = kinds


_NOT_A_FLOOR = ("the 2·MACs are not a floor (an upper bound or an estimate: the costlier If branch), so their "
                "time bounds nothing: ≥ is the memory side alone, ≈ the compute side where nothing bounds")
"""Why a time table holds ``≈`` cells (see :mod:`.roofline`)."""


def _head(name: str, lower: bool, mark_: str = "≥") -> str:
    """A time (or rate) column's header: its mark when every cell is that kind, else bare (cells marked)."""
    return f"{name} {mark_}" if lower else name


def _cell_time(x: Bound, lower: bool) -> str:
    return fmt_time(x.time) if lower else mark(x.kind) + fmt_time(x.time)


def _cell_rate(x: Bound, batch: int, lower: bool) -> str:
    if not x.time:
        return "—"
    return fmt_rate(batch / x.time) if lower else mark(x.rate_kind) + fmt_rate(batch / x.time)


def _side_note(b: Bound, device: Device, batch: int) -> str:
    """How a step's time figure is made: each side's arithmetic, and which side it is (or why none bounds)."""
    work = f"{mark(b.work_bound)}{human(exact(b.work))} FLOP of 2·MACs / peak = {mark(b.work_bound)}" \
           f"{fmt_time(b.t_compute)}"
    if not b.compute_bounds:
        work += f" (not a bound: the 2·MACs are {WHAT[b.work_bound or 'estimate']})"
    memory = (f"{human(exact(b.bytes), 'B')} / {fmt_rate(device.bandwidth, 'B/s')} = {fmt_time(b.t_memory)}"
              if b.t_memory is not None else "working set fits on chip: bandwidth bounds nothing")
    if b.kind == "estimate":
        return f"an estimate, not a bound, at batch {batch}: {work}; {memory}"
    return f"{b.binds}-bound at batch {batch}: {work}; {memory}"


# -- findings and summary --------------------------------------------------------------------
def _findings(section: Section, ctx: AnalysisContext, kv: KVCache, ph: Phases, device: Device | None, batch: int,
              bounds: dict[str, list[Bound]], at_default: bool, n_text: str) -> None:
    if ph.decode is not None and not ph.cached:
        section.add("SV001", Severity.INFO, "the graph has no KV cache: the decode step and the cache are analysed "
                    "as if cached (one query row against n keys; K/V of every token kept)")
    if at_default and (kv.layers or ph.decode is not None):
        section.add("SV003", Severity.WARNING, f"KV cache and prefill/decode figures are at a default context "
                    f"length ({n_text}): bind the length you serve with --seq-len N")
    if ph.unread_masks:
        names = ", ".join(ph.unread_masks[:4]) + (" …" if len(ph.unread_masks) > 4 else "")
        section.add("SV004", Severity.WARNING, f"mask not read for {len(ph.unread_masks)} layer(s) ({names}): "
                    "FLOPs count their attention dense, the bounds one key per query (the least any mask leaves)")
    if device is not None and device.memory:
        need = section.metric("memory.need")
        if need is not None and isinstance(need.value, (int, float)) and need.value > device.memory:
            section.add("SV002", Severity.WARNING, f"weights + KV cache at {n_text}, batch {batch} need "
                        f"{human(need.value, 'B')}: more than the {human(device.memory, 'B')} of {device.label}")
    for name, bs in bounds.items():
        x = next((b for b in bs if b.batch == batch), None)
        if x is not None and x.t_memory is None and device is not None:
            section.add("SV005", Severity.INFO, f"{name}: the weights (and KV cache) fit in the "
                        f"{human(device.cache, 'B')} on-chip cache of {device.label}; "
                        "memory bandwidth bounds nothing, only the compute side is stated"
                        + ("" if x.kind == "lower" else " (an estimate: the 2·MACs are not a floor)"))


def _summary(kv: KVCache, ph: Phases, device: Device | None, batch: int, bounds: dict[str, list[Bound]],
             n_text: str) -> str:
    parts = []
    if kv.layers and ph.n is not None:
        dtype = "/".join(sorted({la.dtype for la in kv.layers}))
        parts.append(f"KV cache {human(exact(kv.bytes(ph.n)), 'B')} per sequence at {n_text} ({dtype})")
    b = mark(ph.flops_bound)
    if ph.decode is not None:
        parts.append(f"decode step {b}{human(exact(ph.decode.flops))} FLOPs vs prefill "
                     f"{b}{human(exact(ph.prefill.flops))}")
    elif ph.prefill is not None:
        parts.append(f"forward {b}{human(exact(ph.prefill.flops))} FLOPs")
    if device is not None:
        key = "decode" if "decode" in bounds else next(iter(bounds), None)
        x = next((b for b in bounds.get(key, []) if b.batch == batch), None) if key else None
        if x is not None:
            how = f"{x.binds}-bound" if x.kind == "lower" else "an estimate: the 2·MACs are not a floor"
            text = f"{key} {mark(x.kind)}{fmt_time(x.time)} on {device.name} ({how}"
            rate = f", {mark(x.rate_kind)}{fmt_rate(batch / x.time)} tokens/s)" if x.time else ")"
            parts.append(text + (rate if key == "decode" else ")"))
    return "; ".join(parts)
