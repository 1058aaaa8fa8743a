"""``model-analyze reach``: token-to-token queries on the command line.

``--at I``: which input positions can influence output position I.
``--from S --to T``: can input position S influence output position T (and
after how many attention layers)?
"""

from __future__ import annotations

import json

import click

from .clikit import config_options, configured_options, dims_options, guarded
from .errors import UsageError


@click.command()
@click.argument("model", type=click.Path(dir_okay=True, path_type=str))
@dims_options
@click.option("--output", "output", default=None, help="Output tensor (default: the first graph output).")
@click.option("--axis", type=int, default=None, help="Output axis (default: the one carrying the source).")
@click.option("--source", default=None, metavar="INPUT[AXIS]", help="Input axis to trace (default: auto).")
@click.option("--at", "at", type=int, default=None, help="Output position to explain.")
@click.option("--from", "src_pos", type=int, default=None, help="Input position S.")
@click.option("--to", "dst_pos", type=int, default=None, help="Output position T.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@config_options
@guarded
def reach(model: str, dims: tuple[str, ...], input_shapes: tuple[str, ...], seq_len: int | None,
          output: str | None, axis: int | None, source: str | None, at: int | None, src_pos: int | None,
          dst_pos: int | None, fmt: str, config_path: str | None, isolated: bool) -> None:
    """Which input positions can influence an output position.

    The project config's bindings (seq-len, dims, input-shapes; per-path overrides
    included) apply as in `model-analyze PATH`; --isolated ignores them."""
    from .runner import prepare
    from .tokenflow import flow
    from .tokenflow import reach as reach_positions
    from .tokenflow.deps import UnknownAtLength, count
    from .tokenflow.query import hops, parse_source, source_axes, source_info

    if (at is None) == (src_pos is None and dst_pos is None):
        raise UsageError("give either --at I, or --from S --to T")
    if at is None and (src_pos is None or dst_pos is None):
        raise UsageError("--from and --to go together")
    options, config = configured_options(model, dims, input_shapes, seq_len, config_path, isolated)
    ctx = prepare(model, options)
    notes = [f.message for f in ctx.model.findings if f.code == "C001"]  # config bindings this model lacks
    result = flow(ctx)
    tensor = output or ctx.graph.outputs[0]
    if tensor not in result.states:
        raise UsageError(f"--output {tensor!r}: no such tensor (outputs: {', '.join(ctx.graph.outputs)})")
    src = parse_source(ctx, result, source, tensor)
    if axis is None:
        axes = source_axes(ctx, result, tensor, src)
        axis = axes[0] if axes else None
    shape = ctx.shapes.shape(tensor)
    if axis is not None and shape is not None:
        if not -len(shape) <= axis < len(shape):
            raise UsageError(f"--axis {axis}: {tensor!r} has rank {len(shape)} (axes 0..{len(shape) - 1})")
        axis %= len(shape)
    length = ctx.evaluate(shape[axis]) if shape is not None and axis is not None else None
    position = at if at is not None else dst_pos
    if isinstance(length, int) and not 0 <= position < length:  # type: ignore[operator]
        raise UsageError(f"position {position} is outside {tensor} axis {axis} (length {length})")
    info, n = source_info(ctx, src)
    try:
        intervals = reach_positions(ctx, tensor, axis, position, src).get(src, [])  # type: ignore[arg-type]
    except UnknownAtLength as exc:
        raise UsageError(f"{exc}; bind the sequence length it was evaluated at (--seq-len)") from None
    from .tokenflow.approx import approximations_on, upper_reason

    approx = approximations_on(ctx.graph, result, tensor, src)  # exact unless the engine approximated upstream
    bindings = {**ctx.dims.defaults, **ctx.dims.bound}
    payload = {"output": tensor, "axis": axis, "position": position, "source": info.label,
               "source_length": n, "bindings": bindings, "intervals": [list(i) for i in intervals],
               "count": count(intervals), "config": config, "skipped": notes,
               "bound": "upper" if approx else None, "approximated_at": [a.data() for a in approx]}
    if at is None:
        if n is not None and not 0 <= src_pos < n:  # type: ignore[operator]
            raise UsageError(f"--from {src_pos} is outside {info.label} (length {n})")
        payload["from"] = src_pos
        payload["reachable"] = any(lo <= src_pos <= hi for lo, hi in intervals)  # type: ignore[operator]
        payload["hops"] = hops(ctx, src, src_pos, dst_pos) if payload["reachable"] else None  # type: ignore[arg-type]
    if fmt == "json":
        click.echo(json.dumps(payload, indent=2))
        return
    dims_text = ", ".join(f"{k}={v}" for k, v in bindings.items()) or "all concrete"
    where = (f"{tensor}[axis {axis}] position {position}" if axis is not None
             else f"every element of {tensor} (no axis of it follows {info.label} position by position)")
    if at is not None:
        spans = ", ".join(f"{lo}..{hi}" for lo, hi in intervals) or "none"
        click.echo(f"{where} depends on {info.label} positions {spans} ({count(intervals):,} of {n:,}) "
                   f"at {dims_text}" if n is not None else f"{where} depends on {info.label} positions {spans}")
    else:
        verdict = ("perhaps" if approx else "yes") if payload["reachable"] else "no"
        extra = f" (after {payload['hops']} attention layer(s))" if payload.get("hops") else ""
        click.echo(f"{verdict}: {info.label} position {src_pos} → {where}{extra} at {dims_text}")
    if approx and (at is not None or payload["reachable"]):
        click.echo(f"note: {upper_reason(approx)} (a superset of the true dependencies)")
    for note in notes:
        click.echo(f"note: {note}")
