"""The ``model-analyze`` command line (click).

``model-analyze PATH...`` is short for ``model-analyze analyze PATH...``. Exit codes
follow ruff: 0 analyzed and clean, 1 findings at/above ``--fail-on`` (or an
analyzer failed), 2 could not analyze or a usage error — always ONE line on stderr
(``model-analyze: error: …``), never a traceback and never click's four-line usage
block (``--debug`` adds the traceback and keeps the exit code).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .errors import AnalyzeError, UsageError, did_you_mean

FAIL_ON = ("info", "warning", "error", "never")
MAX_TOP = 10**6
TRUE_WORDS = ("1", "true", "yes", "on")
DEFAULT_COMMAND = "analyze"


def env_debug() -> bool:
    """``MODEL_ANALYZE_DEBUG`` turns debug on only for a true-ish value (``0``/``false``/empty stay off)."""
    return os.environ.get("MODEL_ANALYZE_DEBUG", "").strip().lower() in TRUE_WORDS


def fail(message: str, code: int = 2) -> None:
    click.echo(f"model-analyze: error: {' '.join(str(message).split())}", err=True)
    sys.exit(code)


def one_line(exc: click.ClickException) -> str:
    """click's error as one line: ``--seq-len: 'abc' is not a valid integer``."""
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter) and exc.param is not None:
        hint = exc.param.opts[0] if getattr(exc.param, "opts", None) and isinstance(exc.param, click.Option) \
            else (exc.param.human_readable_name or "").upper()
        text = f"{hint}: {exc.message}"
    elif isinstance(exc, click.NoSuchOption):
        text = f"no such option {exc.option_name}"
        if exc.possibilities:
            text += f" — did you mean {exc.possibilities[0]}?"
    else:
        text = exc.format_message()
        text = text[:1].lower() + text[1:]
    for long, short in (("is not a valid integer range", "is not an integer"),
                        ("is not a valid integer", "is not an integer"), ("is not a valid float", "is not a number")):
        text = text.replace(long, short)
    ctx = getattr(exc, "ctx", None)
    sub = ctx.info_name if ctx is not None and ctx.parent is not None else ""
    if sub and sub != DEFAULT_COMMAND:
        text = f"{sub}: {text}"
    return " ".join(text.rstrip(".").split())


class DefaultGroup(click.Group):
    """A group whose unknown first word is a model path for the default command.

    A first word that is no file, no glob and close to a command name is a misspelt
    command (``comapre A B`` → did you mean compare?), not a model.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            first = args[0]
            if not first.startswith("-") and not os.path.exists(first) and not any(c in first for c in "*?[/\\.") \
                    and did_you_mean(first, self.commands):
                raise click.UsageError(f"no such command {first!r}{did_you_mean(first, self.commands)}", ctx)
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage("model-analyze", "PATH... [OPTIONS] | COMMAND [ARGS]...")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The analysis options first (they are what `model-analyze PATH` takes), then the commands."""
        default = self.commands.get(DEFAULT_COMMAND)
        if default is not None:
            sub = click.Context(default, info_name=DEFAULT_COMMAND, parent=ctx)
            rows = [r for p in default.get_params(sub) if isinstance(p, click.Option) and "--help" not in p.opts
                    and (r := p.get_help_record(sub)) is not None]
            with formatter.section("Analysis options (model-analyze PATH... [OPTIONS])"):
                formatter.write_dl(rows)
        rows = [r for p in self.get_params(ctx) if (r := p.get_help_record(ctx)) is not None]
        with formatter.section("Options"):
            formatter.write_dl(rows)
        self.format_commands(ctx, formatter)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """click's main, with every usage error on one line and exit codes kept under --debug."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        debug = env_debug() or "--debug" in argv
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # `model-analyze` alone: the help, as click prints it (exit 2)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            if debug:
                import traceback

                traceback.print_exc()
            _flush_quietly()
            click.echo(f"model-analyze: error: {one_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("model-analyze: error: interrupted", err=True)
            sys.exit(130)
        _flush_quietly()
        sys.exit(rv if isinstance(rv, int) else 0)


def _flush_quietly() -> None:
    """Flush stdout; a full disk or a closed pipe is one line and exit 2, not a traceback at exit."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        _silence_stdout()
        fail(f"cannot write the output: {exc.strerror or exc}")


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command body turning every error into one line + exit 2 (``--debug``: traceback, same code)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug", False)) or env_debug()

        def stop(message: str, code: int = 2) -> None:
            if debug:
                import traceback

                traceback.print_exc()
            fail(message, code)

        try:
            return fn(*args, **kwargs)
        except AnalyzeError as exc:
            stop(str(exc))
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except MemoryError:
            stop("out of memory while analyzing")
        except Exception as exc:
            stop(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)")

    return wrapper


def split_multi(values: tuple[str, ...] | list[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def dims_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--dim / --input-shape / --seq-len, shared by every command that analyzes."""
    fn = click.option("--seq-len", type=click.IntRange(min=1), default=None,
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


def write_output(text: str, output: str | None, quiet: bool = False) -> None:
    """Write to ``output`` (a file) or stdout; a write error is one line and exit 2."""
    if output and output != "-":
        if os.path.isdir(output):
            raise UsageError(f"-o {output}: is a directory (give a file name)")
        try:
            with open(output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise UsageError(f"-o {output}: cannot write: {exc.strerror or exc}") from None
        if not quiet:
            click.echo(f"wrote {output}", err=True)
        return
    try:
        click.echo(text, nl=False)
        sys.stdout.flush()
    except OSError as exc:
        _silence_stdout()
        raise UsageError(f"cannot write the report to stdout: {exc.strerror or exc}") from None


def formats() -> dict[str, Any]:
    from .manager import get_plugin_manager

    items, _ = get_plugin_manager().collect("model_analyze_formats")
    return {f.name: f for _, f in items}


def analyzer_names() -> list[str]:
    from .manager import get_plugin_manager
    from .runner import available_analyzers

    try:
        return sorted(available_analyzers(get_plugin_manager())[0])
    except Exception:  # never let plugin discovery break --help
        return []


class LazyHelpOption(click.Option):
    """An option whose help is computed when help is shown: it lists what plugins provide."""

    def __init__(self, *args: Any, help_fn: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help_fn = help_fn

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = self.help_fn()
        return super().get_help_record(ctx)


def _format_help() -> str:
    try:
        names = ", ".join(f"{f.name}" for f in formats().values())
    except Exception:
        names = "text, json, sarif, markdown, html"
    return f"Output format: {names} (default text; html and plugin formats write one file per model with -o DIR)."


def _select_help() -> str:
    names = ", ".join(analyzer_names()) or "see `model-analyze plugins`"
    return (f"Analyzers ({names}) and finding codes or prefixes (AT, HS002; see `model-analyze rules`) "
            "to report; comma-separated or repeated.")


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="model-analyze")
def cli() -> None:
    """Static analysis of exported ONNX models: receptive field, attention span
    and token reach, compute hotspots, architecture review — for one model or a
    whole folder, with budgets and baselines for CI.

    Weights are never loaded. Run `model-analyze PATH...` for the reports
    (files, directories: every *.onnx below them, and globs).
    """


@cli.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, metavar="PATH...", type=click.Path(path_type=str))
@dims_options
@click.option("--format", "fmt", cls=LazyHelpOption, help_fn=_format_help, default=None, metavar="FORMAT")
@click.option("-o", "--output", default=None, metavar="FILE",
              help="Write the output to FILE instead of stdout (a directory for html/plugin formats of many models).")
@click.option("--select", multiple=True, metavar="NAMES", cls=LazyHelpOption, help_fn=_select_help)
@click.option("--ignore", multiple=True, metavar="NAMES", help="Analyzers and codes/prefixes to leave out.")
@click.option("--extend-select", multiple=True, metavar="NAMES", help="Added to the config's select.")
@click.option("--severity", "severities", multiple=True, metavar="CODE=LEVEL",
              help="Re-grade a code or prefix: --severity AT030=error (info, warning, error).")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Exit 1 when a finding of this severity or worse is reported (default: error).")
@click.option("--top", type=click.IntRange(1, MAX_TOP), default=None, help="Rows in top-k tables (default 10).")
@click.option("--formulas", is_flag=True, help="Print formulas in the free dims even when every dim is bound.")
@serving_options
@click.option("--budget", "budgets", multiple=True, metavar="KEY=VALUE",
              help="A budget at the binding, e.g. --budget max-macs=40G, --budget min-reach=8192 "
                   "(keys: `model-analyze explain BG`).")
@click.option("--baseline", "baseline_path", default=None, metavar="FILE",
              help="Compare with a baseline written by --write-baseline; regressions are findings.")
@click.option("--write-baseline", default=None, metavar="FILE", help="Save this run's metrics as a baseline.")
@click.option("--baseline-tolerance", default=None, metavar="FRACTION",
              help="Relative cost change a baseline tolerates: 0.01 or 1% (default 1%).")
@click.option("--config", "config_path", default=None, metavar="FILE",
              help="Read this config (model-analyze.toml or pyproject.toml) instead of searching for one.")
@click.option("--isolated", is_flag=True, help="Ignore every config file.")
@click.option("--sarif-uri-base-id", default="%SRCROOT%", show_default=True, metavar="ID",
              help="uriBaseId of SARIF locations.")
@click.option("--sarif-root", default=None, metavar="DIR",
              help="Directory SARIF URIs are relative to (default: the repository root above the models).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no 'wrote FILE' notes.")
@click.option("--debug", is_flag=True, help="Show tracebacks (exit codes stay the same).")
@guarded
def analyze(paths: tuple[str, ...], dims: tuple[str, ...], input_shapes: tuple[str, ...], seq_len: int | None,
            fmt: str | None, output: str | None, select: tuple[str, ...], ignore: tuple[str, ...],
            extend_select: tuple[str, ...], severities: tuple[str, ...], fail_on: str | None, top: int | None,
            formulas: bool, device: str | None, batch: int | None, kv_dtype: str | None,
            budgets: tuple[str, ...], baseline_path: str | None, write_baseline: str | None,
            baseline_tolerance: str | None, config_path: str | None, isolated: bool, sarif_uri_base_id: str,
            sarif_root: str | None, quiet: bool, debug: bool) -> None:
    """Analyze models and print their reports (and a summary table for many).

    Defaults live in `[tool.model-analyze]` of pyproject.toml or in model-analyze.toml,
    with per-path overrides; options here win. See the README's "CI" section.
    """
    from .analyze_cmd import run_analyze

    sys.exit(run_analyze(paths=paths, dims=dims, input_shapes=input_shapes, seq_len=seq_len, fmt=fmt,
                         output=output, select=select, ignore=ignore, extend_select=extend_select,
                         severities=severities, fail_on=fail_on, top=top, formulas=formulas, device=device,
                         batch=batch, kv_dtype=kv_dtype, budgets=budgets,
                         baseline_path=baseline_path, write_baseline=write_baseline,
                         baseline_tolerance=baseline_tolerance, config_path=config_path, isolated=isolated,
                         sarif_uri_base_id=sarif_uri_base_id, sarif_root=sarif_root, quiet=quiet, debug=debug))


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
    from . import reach_cmd, rules_cmd, scan_cmd, verify_cmd  # noqa: F401  (register `reach`, `verify`, `rules`, `explain`, `scan`)


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
