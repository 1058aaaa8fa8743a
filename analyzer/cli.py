"""The ``model-analyze`` command line (click).

``model-analyze MODEL`` is short for ``model-analyze analyze MODEL``. Exit codes
follow ruff: 0 analyzed and clean, 1 findings at/above ``--fail-on`` (or an
analyzer failed), 2 could not analyze — always one line on stderr, never a
traceback (``--debug`` shows it).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .errors import AnalyzeError, UsageError

FAIL_ON = ("info", "warning", "error", "never")


class DefaultGroup(click.Group):
    """A group whose unknown first word is a MODEL for the default command."""

    default_command = "analyze"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage("model-analyze", "MODEL [OPTIONS] | COMMAND [ARGS]...")


def fail(message: str, code: int = 2) -> None:
    click.echo(f"model-analyze: error: {message}", err=True)
    sys.exit(code)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command body turning every error into one line + exit 2."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs.get("debug", False) or os.environ.get("MODEL_ANALYZE_DEBUG")
        try:
            return fn(*args, **kwargs)
        except AnalyzeError as exc:
            if debug:
                raise
            fail(str(exc))
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except MemoryError:
            fail("out of memory while analyzing")
        except Exception as exc:
            if debug:
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)")

    return wrapper


def split_multi(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def dims_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--dim / --input-shape / --seq-len, shared by every command that analyzes."""
    fn = click.option("--seq-len", type=int, default=None,
                      help="Bind the model's sequence dim to N (alias of --dim SEQ=N).")(fn)
    fn = click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=D1,D2,...",
                      help="Fix a whole input's shape (for unnamed '?' dims), repeatable.")(fn)
    fn = click.option("--dim", "dims", multiple=True, metavar="NAME=VALUE",
                      help="Bind a symbolic dim, e.g. --dim seq=4096 (repeatable).")(fn)
    return fn


def serving_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--device / --batch / --kv-dtype: what the serving analyzer bounds (also used by compare)."""
    fn = click.option("--kv-dtype", default=None, metavar="DTYPE",
                      help="Store the KV cache as DTYPE (fp16, bf16, fp8, int8, int4; default: the graph's).")(fn)
    fn = click.option("--batch", type=click.IntRange(min=1), default=None,
                      help="Sequences (or images) served together (default 1).")(fn)
    fn = click.option("--device", default=None, metavar="NAME|flops=…,bandwidth=…",
                      help="Device for roofline lower bounds (`model-analyze devices` lists them).")(fn)
    return fn


def serving_params(cfg: Any, device: str | None, batch: int | None, kv_dtype: str | None) -> dict[str, Any]:
    """The serving options as analyzer params (command line over config); a bad --device is exit 2."""
    from .devices import resolve

    device = device or (cfg.get("device") if cfg is not None else None)
    batch = batch if batch is not None else (cfg.get("batch") if cfg is not None else None)
    kv_dtype = kv_dtype or (cfg.get("kv-dtype") if cfg is not None else None)
    if device:
        resolve(str(device))
    if batch is not None and (not isinstance(batch, int) or batch < 1):
        raise UsageError(f"batch must be a positive integer, not {batch!r}")
    return {k: v for k, v in (("device", device), ("batch", batch), ("kv_dtype", kv_dtype)) if v is not None}


def build_options(dims: tuple[str, ...], input_shapes: tuple[str, ...], seq_len: int | None,
                  select: tuple[str, ...] = (), ignore: tuple[str, ...] = (),
                  params: dict[str, Any] | None = None) -> Any:
    from .bindings import parse_dim_specs
    from .runner import AnalyzeOptions
    from .shapes import parse_input_shape

    shapes = dict(parse_input_shape(s) for s in input_shapes)
    if seq_len is not None and seq_len <= 0:
        raise UsageError("--seq-len must be positive")
    return AnalyzeOptions(parse_dim_specs(dims), shapes, seq_len, split_multi(select),
                          split_multi(ignore), params or {})


def write_output(text: str, output: str | None) -> None:
    if output and output != "-":
        try:
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


def formats() -> dict[str, Any]:
    from .manager import get_plugin_manager

    items, _ = get_plugin_manager().collect("model_analyze_formats")
    return {f.name: f for _, f in items}


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="model-analyze")
def cli() -> None:
    """Static analysis of exported ONNX models: receptive field, attention span
    and token reach, compute hotspots, architecture review.

    Weights are never loaded. Run `model-analyze MODEL` for the full report.
    """


@cli.command()
@click.argument("model", type=click.Path(dir_okay=True, path_type=str))
@dims_options
@click.option("--format", "fmt", default=None, help="Output format: text (default), json, sarif, markdown, "
              "or a plugin's (see `model-analyze plugins`).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report to FILE instead of stdout.")
@click.option("--select", multiple=True, metavar="ANALYZER", help="Run only these analyzers.")
@click.option("--ignore", multiple=True, metavar="ANALYZER", help="Skip these analyzers.")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Exit 1 when a finding of this severity or worse is reported (default: error).")
@click.option("--top", type=int, default=None, help="Rows in top-k tables (default 10).")
@click.option("--formulas", is_flag=True, help="Print formulas in the free dims even when every dim is bound.")
@serving_options
@click.option("--debug", is_flag=True, hidden=True)
@guarded
def analyze(model: str, dims: tuple[str, ...], input_shapes: tuple[str, ...], seq_len: int | None,
            fmt: str | None, output: str | None, select: tuple[str, ...], ignore: tuple[str, ...],
            fail_on: str | None, top: int | None, formulas: bool, device: str | None, batch: int | None,
            kv_dtype: str | None, debug: bool) -> None:
    """Analyze MODEL and print the report.

    Defaults can live in `[tool.model-analyze]` of the nearest pyproject.toml
    (select, ignore, fail-on, format, dims, seq-len, top, device, batch, kv-dtype);
    options here win.
    """
    from .config import load_config
    from .report import Severity
    from .runner import analyze as run_analysis

    cfg = load_config()
    fmt = fmt or cfg.get("format", "text")
    fail_on = fail_on or cfg.get("fail-on", "error")
    if fail_on not in FAIL_ON:
        raise UsageError(f"{cfg.path}: fail-on must be one of {', '.join(FAIL_ON)}")
    top = top if top is not None else int(cfg.get("top", 10))
    select = select or tuple(cfg.get("select", ()))
    ignore = ignore or tuple(cfg.get("ignore", ()))
    seq_len = seq_len if seq_len is not None else cfg.get("seq-len")
    cfg_dims = tuple(f"{k}={v}" for k, v in cfg.get("dims", {}).items())
    dims = cfg_dims + dims  # command-line --dim comes last and wins
    available = formats()
    if fmt not in available:
        raise UsageError(f"unknown format {fmt!r} (available: {', '.join(sorted(available))})")
    options = build_options(dims, input_shapes, seq_len, select, ignore,
                            {"top": top, **serving_params(cfg, device, batch, kv_dtype)})
    report = run_analysis(model, options)
    render = available[fmt].render
    if formulas and "formulas" in inspect.signature(render).parameters:
        render = functools.partial(render, formulas=True)
    write_output(render(report), output)
    worst = report.max_severity()
    if report.failed_sections():
        sys.exit(1)
    if fail_on != "never" and worst is not None and worst >= Severity.parse(fail_on):
        sys.exit(1)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@guarded
def plugins(fmt: str) -> None:
    """List installed plugins, their distribution, version and hooks."""
    import json

    from .manager import get_plugin_manager
    from .runner import available_analyzers

    pm = get_plugin_manager()
    analyzers, _ = available_analyzers(pm)
    rules, _ = pm.collect("model_analyze_op_rules")
    fmts, _ = pm.collect("model_analyze_formats")
    rows = []
    for name, info in pm.infos.items():
        provided = [a.name for a in analyzers.values() if a.plugin == name]
        rows.append({
            "name": name, "distribution": info.distribution, "version": info.version,
            "hooks": info.hooks, "analyzers": provided,
            "op_rules": [f"{r.domain + '::' if r.domain else ''}{r.op_type}" for p, r in rules if p == name],
            "formats": [f.name for p, f in fmts if p == name],
        })
    failed = [{"name": f.name, "distribution": f.distribution, "version": f.version, "error": f.error}
              for f in pm.failures]
    if fmt == "json":
        click.echo(json.dumps({"plugins": rows, "failed": failed}, indent=2))
        return
    for r in rows:
        click.echo(f"{r['name']}  ({r['distribution']} {r['version']})")
        click.echo(f"    hooks:     {', '.join(r['hooks']) or '-'}")
        if r["analyzers"]:
            click.echo(f"    analyzers: {', '.join(r['analyzers'])}")
        if r["op_rules"]:
            click.echo(f"    op rules:  {', '.join(r['op_rules'])}")
        if r["formats"]:
            click.echo(f"    formats:   {', '.join(r['formats'])}")
    for f in failed:
        click.echo(f"{f['name']}  ({f['distribution']} {f['version']})  FAILED TO LOAD: {f['error']}")


_commands_registered = False


def _core_commands() -> None:
    from . import reach_cmd, verify_cmd  # noqa: F401  (register `reach` and `verify` on the group)


def get_cli() -> click.Group:
    """The CLI group with plugin-provided commands added (once)."""
    global _commands_registered
    if not _commands_registered:
        _commands_registered = True
        _core_commands()
        _register_plugin_commands()
    return cli


def _register_plugin_commands() -> None:
    from .manager import get_plugin_manager

    try:
        pm = get_plugin_manager()
    except Exception:  # never let plugin discovery break --help
        return
    for impl in pm.hook.model_analyze_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as exc:
            click.echo(f"model-analyze: warning: plugin {pm.pm.get_name(impl.plugin)!r} failed "
                       f"to add commands: {exc}", err=True)


def main() -> None:
    get_cli()(prog_name="model-analyze")
