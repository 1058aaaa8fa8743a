"""``model-analyze verify``: check the token-flow engine against onnxruntime.

Exit codes: 0 sound (every observed dependency was predicted), 1 unsound (a
violation — a bug in the engine worth reporting), 2 could not run (no
onnxruntime, no weights, no concrete shapes, or a pair whose prediction could
not be evaluated) — one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from .budgets import BUDGETS
from .clikit import config_options, configured_options, dims_options, guarded

if TYPE_CHECKING:
    from .verify import PairResult, VerifyResult


@click.command()
@click.argument("model", type=click.Path(dir_okay=True, path_type=str))
@dims_options
@click.option("--seeds", type=click.IntRange(min=1, max=BUDGETS.verify_seeds), default=2, show_default=True,
              help="Random baselines to run (observations are their union).")
@click.option("--positions", type=click.IntRange(min=1, max=BUDGETS.verify_positions), default=16,
              show_default=True,
              help="Positions probed per input axis (first, last and evenly spaced ones; all when the axis "
                   "is shorter).")
@click.option("--output", "outputs", multiple=True, metavar="TENSOR",
              help="Tensor to check (repeatable; default: the graph outputs). Any main-graph tensor, "
                   "e.g. the last feature map before a global pool.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--debug", is_flag=True, hidden=True)
@config_options
@guarded
def verify(model: str, dims: tuple[str, ...], input_shapes: tuple[str, ...], seq_len: int | None, seeds: int,
           positions: int, outputs: tuple[str, ...], fmt: str, debug: bool, config_path: str | None,
           isolated: bool) -> None:
    """Check the static token-flow answer by running MODEL with onnxruntime.

    Perturbs input positions one at a time on random inputs and checks that
    every output change is predicted (sound), and how tight the prediction is
    (observed / predicted pairs). Needs onnxruntime: pip install 'model-analyze[verify]'.
    The project config's bindings (seq-len, dims, input-shapes; per-path overrides
    included) apply as in `model-analyze PATH`; --isolated ignores them.
    """
    from .verify import verify_model

    options, config = configured_options(model, dims, input_shapes, seq_len, config_path, isolated)
    result = verify_model(model, options, list(outputs) or None, seeds, positions)
    result.config = config
    click.echo(json.dumps(result.as_dict(), indent=2) if fmt == "json" else render_text(result))
    if not result.sound:
        sys.exit(1)
    if not result.complete:
        bad = next(p for p in result.pairs if not p.checked)
        click.echo(f"model-analyze: error: {bad.label} × {bad.output}: {bad.error}", err=True)
        sys.exit(2)


def _ratio(p: PairResult) -> str:
    t = p.tightness
    return "-" if t is None else f"{t:.2f}"


def render_text(result: VerifyResult) -> str:
    """The report as ≤ 80-column text."""
    at = ", ".join(f"{k}={v}" for k, v in result.bindings.items()) or "concrete shapes"
    seeds = ", ".join(str(s) for s in result.seeds)
    lines = [f"verify {result.model}",
             f"  {result.runtime}; seeds {seeds}; {result.runs} runs; at {at}"]
    lines.append("  inputs:")
    lines += [f"    {name}: {how}" for name, how in result.inputs.items()]
    lines += [f"  note: {note}" for note in result.notes]
    if result.unknown_ops or result.rule_errors:
        lines.append(f"  engine approximated: {len(result.unknown_ops)} unknown op type(s), "
                     f"{len(result.rule_errors)} rule error(s) (conservative, still checked)")
    lines.append("")
    lines.append(f"  {'source':<18} {'output':<18} {'axis':>4} {'probed':>9} {'sound':>5} "
                 f"{'obs/pred':>13} {'tight':>5}")
    for p in result.pairs:
        probed = f"{len(p.positions)}/{p.source_length}"
        sound = "yes" if p.sound else ("?" if not p.checked else "NO")
        axis = "-" if p.axis is None else str(p.axis)
        lines.append(f"  {_cut(p.label, 18):<18} {_cut(p.output, 18):<18} {axis:>4} {probed:>9} {sound:>5} "
                     f"{f'{p.observed}/{p.predicted}':>13} {_ratio(p):>5}")
    for p in result.pairs:
        if p.error:
            lines.append(f"  unchecked {p.label} × {p.output}: {p.error}")
        for v in p.violations:
            element = ",".join(str(x) for x in v.element)
            lines.append(f"  VIOLATION {p.label} position {v.position} changed {p.output}[{element}] "
                         f"by {v.delta:.3g} (seed {v.seed}); the engine predicts no dependency")
        if p.violation_count > len(p.violations):
            lines.append(f"  … {p.violation_count - len(p.violations)} more violation(s) for "
                         f"{p.label} × {p.output}")
    lines.append("")
    n = len(result.pairs)
    if not n:
        lines.append("NOTHING TO CHECK: the model has no input axis to perturb")
    elif not result.sound:
        total = sum(p.violation_count for p in result.pairs)
        bad = sum(1 for p in result.pairs if not p.sound and p.checked)
        lines.append(f"UNSOUND: {total} observed change(s) the engine does not predict, in {bad} of {n} "
                     "pair(s)")
    elif not result.complete:
        lines.append(f"INCOMPLETE: {sum(1 for p in result.pairs if not p.checked)} of {n} pair(s) "
                     "could not be checked")
    else:
        lines.append(f"SOUND: every observed change was predicted ({n} source × output pair(s))")
    return "\n".join(_wrap(line) for line in lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _wrap(line: str, width: int = 80) -> str:
    if len(line) <= width:
        return line
    import textwrap

    indent = " " * (len(line) - len(line.lstrip()) + 2)
    return "\n".join(textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False))
