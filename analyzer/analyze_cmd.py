"""The body of ``model-analyze PATH...``: settings → models → output → exit code.

One model given as a file prints exactly the single-model report (text or the
single-report JSON). More than one path, a directory or a glob is a *batch*: one
block per model, a closing summary table, and for JSON one document with a
``models`` list. The exit code is the worst over models (0 < 1 < 2).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any, cast

import click

from ._version import __version__
from .batch import BatchRunner, CliSettings, ModelResult, check_format, discover, is_batch, worst_exit
from .config import Config, load_config
from .errors import UsageError
from .render import summary as S

MULTI_FORMATS = ("text", "json", "markdown", "sarif")
"""Formats that render many models into one output; others write one file per model (-o DIR)."""


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for spec in items:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"{option} {spec!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _dims(items: tuple[str, ...]) -> dict[str, int]:
    if not items:  # bindings imports the graph and protobuf modules: only when a dim is given (a cached
        return {}  # scan reads no graph)
    from .bindings import parse_dim_specs

    return parse_dim_specs(items)


def _input_shapes(items: tuple[str, ...]) -> dict[str, list[int]]:
    if not items:  # the shape engine is imported when a shape is given (a cached scan never needs it)
        return {}
    from .shapes import parse_input_shape

    return dict(parse_input_shape(s) for s in items)


def cli_settings(*, dims: tuple[str, ...], input_shapes: tuple[str, ...], seq_len: int | None,
                 select: tuple[str, ...], ignore: tuple[str, ...], extend_select: tuple[str, ...],
                 severities: tuple[str, ...], fail_on: str | None, budgets: tuple[str, ...],
                 baseline_tolerance: str | None, debug: bool, flags: dict[str, object] | None = None,
                 plugin_options: tuple[str, ...] = ()) -> CliSettings:
    """The command line's settings; ``flags`` are analyzer option flags (``--top``), ``plugin_options``
    the ``--option NAME.KEY=VALUE`` items."""
    from .clikit import env_debug, split_multi
    from .model_budgets import parse_budget_option
    from .options import parse_option_text
    from .units import parse_fraction

    parsed_budgets: dict[str, Any] = {}
    for spec in budgets:
        try:
            key, value = parse_budget_option(spec)
        except ValueError as exc:
            raise UsageError(f"--budget {spec!r}: expected {exc}") from None
        parsed_budgets[key] = value
    tolerance = None
    if baseline_tolerance is not None:
        try:
            tolerance = parse_fraction(baseline_tolerance)
        except ValueError as exc:
            raise UsageError(f"--baseline-tolerance {baseline_tolerance!r}: expected {exc}") from None
    return CliSettings(
        dims=_dims(dims), input_shapes=_input_shapes(input_shapes), seq_len=seq_len,
        select=split_multi(select) if select else None, ignore=split_multi(ignore) if ignore else None,
        extend_select=split_multi(extend_select), severity=_pairs(severities, "--severity"), fail_on=fail_on,
        flags=dict(flags or {}), options=parse_option_text(plugin_options), budgets=parsed_budgets,
        tolerance=tolerance, debug=debug or env_debug())


def run_analyze(*, paths: tuple[str, ...], fmt: str | None, output: str | None, baseline_path: str | None,
                write_baseline: str | None, config_path: str | None, isolated: bool, sarif_uri_base_id: str,
                sarif_root: str | None, quiet: bool, formulas: bool = False, **options: Any) -> int:
    """Run the analyses and write the output; returns the exit code."""
    from .baseline import Baseline
    from .clikit import formats

    config = Config() if isolated else load_config(explicit=config_path)
    available = formats()
    where = f"{config.path}: format" if fmt is None and config.path else "--format"
    fmt = fmt or config.get("format", "text")
    check_format(fmt, available, where)
    settings = cli_settings(**options)
    settings.want_snapshot = write_baseline is not None
    if baseline_path is not None:
        settings.baseline = Baseline.load(baseline_path)
    runner = BatchRunner(config, settings)
    batch = is_batch(paths)
    runner.single = not batch
    targets = discover(paths, config)
    if all(t.error for t in targets):
        raise UsageError(targets[0].error or "no model to analyze")
    if batch and fmt not in MULTI_FORMATS and not (output and (os.path.isdir(output) or output.endswith("/"))):
        raise UsageError(f"--format {fmt} writes one model per file: give -o DIR for many models")
    results = _run(runner, targets, batch and not quiet and _isatty(sys.stderr))
    code = worst_exit(results)
    if write_baseline is not None:
        from .baseline import write

        write(write_baseline, {r.path: r.snapshot for r in results if r.snapshot is not None}, __version__)
        if not quiet:
            click.echo(f"wrote baseline {write_baseline} ({sum(1 for r in results if r.snapshot)} models)", err=True)
    if not batch:
        result = results[0]
        if result.report is None:
            from .clikit import fail

            fail(result.error or f"{result.path}: could not be analyzed")
    format_obj = available[fmt]
    if formulas and "formulas" in inspect.signature(format_obj.render).parameters:
        render = cast(Callable[..., str], format_obj.render)
        format_obj = dataclasses.replace(format_obj, render=functools.partial(render, formulas=True))
    _write(fmt, format_obj, results, code, batch, output, quiet, sarif_uri_base_id, sarif_root)
    return code


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _run(runner: BatchRunner, targets: list[Any], show_progress: bool) -> list[ModelResult]:
    """Analyze every target; errors go to stderr as they happen (one line each) in a batch."""
    def note(r: ModelResult) -> None:
        if r.error and len(targets) > 1:
            click.echo(f"model-analyze: error: {' '.join(r.error.split())}", err=True)

    if not show_progress:
        return runner.run(targets, note if len(targets) > 1 else None)
    with click.progressbar(length=len(targets), label="analyzing", file=sys.stderr, show_pos=True,
                           item_show_func=lambda p: p or "") as bar:
        current: list[str] = []

        def step(r: ModelResult) -> None:
            current[:] = [r.path]
            bar.update(1, os.path.basename(r.path))
            note(r)

        return runner.run(targets, step)


def _write(fmt: str, format_obj: Any, results: list[ModelResult], code: int, batch: bool, output: str | None,
           quiet: bool, base_id: str, sarif_root: str | None) -> None:
    from .clikit import write_output
    from .render.sarif import Entry, render_entries

    if fmt == "sarif":
        text = render_entries([Entry(r.path, r.report, r.error) for r in results], root=sarif_root,
                              base_id=base_id, version=__version__, exit_code=code)
        write_output(text, output, quiet)
        return
    if not batch:
        write_output(format_obj.render(results[0].report), output, quiet)
        return
    if fmt == "json":
        write_output(S.render_json(results, code, __version__), output, quiet)
    elif fmt in ("text", "markdown"):
        blocks = [format_obj.render(r.report) if r.report else _error_block(r, fmt) for r in results]
        tail = S.render_text(results, code) if fmt == "text" else S.render_markdown(results, code)
        write_output("\n".join(blocks) + "\n" + tail, output, quiet)
    else:
        _write_per_model(format_obj, results, code, output, quiet)


def _error_block(r: ModelResult, fmt: str) -> str:
    if fmt == "markdown":
        return f"# model-analyze report: `{r.path}`\n\n**Could not be analyzed:** {r.error}\n"
    return S.error_block(r)


def _write_per_model(format_obj: Any, results: list[ModelResult], code: int, output: str | None,
                     quiet: bool) -> None:
    from .clikit import write_output

    assert output is not None
    os.makedirs(output, exist_ok=True)
    used: set[str] = set()
    for r in results:
        if r.report is None:
            continue
        stem = os.path.splitext(os.path.basename(r.path))[0]
        name, k = stem, 1
        while name in used:
            k += 1
            name = f"{stem}-{k}"
        used.add(name)
        write_output(format_obj.render(r.report), os.path.join(output, name + (format_obj.suffix or ".out")), quiet)
    write_output(S.render_text(results, code), None, quiet)


ProgressFn = Callable[[ModelResult], None]
