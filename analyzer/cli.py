"""The ``model-analyze`` command line (click).

``model-analyze PATH...`` is short for ``model-analyze analyze PATH...``. Exit codes
follow ruff: 0 analyzed and clean, 1 findings at/above ``--fail-on`` (or an
analyzer failed), 2 could not analyze or a usage error — always ONE line on stderr
(``model-analyze: error: …``), never a traceback and never click's four-line usage
block (``--debug`` adds the traceback and keeps the exit code).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from . import declared
from ._version import __version__
from .clikit import (  # noqa: F401 - formats, write_output: imported from here by older code
    LazyCommand,
    add_flag_params,
    dims_options,
    env_debug,
    fail,
    flag_specs,
    flag_values,
    formats,
    guarded,
    option_flags,
    silence_stdout,
    takes_options,
    write_output,
)
from .errors import did_you_mean

FAIL_ON = ("info", "warning", "error", "never")
DEFAULT_COMMAND = "analyze"


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
        silence_stdout()
        fail(f"cannot write the output: {exc.strerror or exc}")


def analyzer_names() -> list[str]:
    if (cached := declared.active()) is not None:
        return list(cached.analyzers)
    from .analyzers import available_analyzers
    from .manager import get_plugin_manager

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
        cached = declared.active()
        names = ", ".join(cached.formats if cached is not None else [f.name for f in formats().values()])
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
@click.option("--formulas", is_flag=True, help="Print formulas in the free dims even when every dim is bound.")
@option_flags
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
            extend_select: tuple[str, ...], severities: tuple[str, ...], fail_on: str | None,
            formulas: bool, plugin_options: tuple[str, ...], budgets: tuple[str, ...], baseline_path: str | None,
            write_baseline: str | None, baseline_tolerance: str | None, config_path: str | None, isolated: bool,
            sarif_uri_base_id: str, sarif_root: str | None, quiet: bool, debug: bool, **flags: object) -> None:
    """Analyze models and print their reports (and a summary table for many).

    Defaults live in `[tool.model-analyze]` of pyproject.toml or in model-analyze.toml,
    with per-path overrides; options here win. See the README's "CI" section. The
    analyzers' own options (`model-analyze plugins` lists them) are set with
    --option NAME.KEY=VALUE; some also have a flag of their own (--top, --device).
    """
    from .analyze_cmd import run_analyze

    sys.exit(run_analyze(paths=paths, dims=dims, input_shapes=input_shapes, seq_len=seq_len, fmt=fmt,
                         output=output, select=select, ignore=ignore, extend_select=extend_select,
                         severities=severities, fail_on=fail_on, formulas=formulas, flags=flag_values(flags),
                         plugin_options=plugin_options, budgets=budgets,
                         baseline_path=baseline_path, write_baseline=write_baseline,
                         baseline_tolerance=baseline_tolerance, config_path=config_path, isolated=isolated,
                         sarif_uri_base_id=sarif_uri_base_id, sarif_root=sarif_root, quiet=quiet, debug=debug))


_commands_registered = False
_command_failures = 0
"""Plugins whose ``model_analyze_commands`` failed, or changed the group other than by adding
commands: a stored reading holds only the commands, so such a reading is not stored."""


def get_cli() -> click.Group:
    """The CLI group with every plugin's commands (the core's ``reach``, ``verify``, ``rules``,
    ``explain`` and ``plugins`` too, through the same hook) and the analyzers' flag options
    added, once."""
    global _commands_registered
    if not _commands_registered:
        _commands_registered = True
        _register_commands()
        specs = flag_specs()
        for command in cli.commands.values():  # every command that takes --option gets the flags too
            if takes_options(command):
                add_flag_params(command, specs)
    return cli


def _register_commands() -> None:
    global _command_failures
    from .manager import get_plugin_manager

    try:
        pm = get_plugin_manager()
    except Exception:  # never let plugin discovery break --help
        _command_failures += 1
        return
    before = _params(cli)
    _, errors = pm.call("model_analyze_commands", cli=cli)
    after = _params(cli)
    _command_failures += len(errors) + any(after.get(name) != count for name, count in before.items())
    for err in errors:
        click.echo(f"model-analyze: warning: plugin {err.plugin!r} failed to add commands: {err.error}", err=True)


def _params(group: click.Group) -> dict[str, int]:
    """How many options the group (``""``) and each of its commands has."""
    return {"": len(group.params), **{name: len(c.params) for name, c in group.commands.items()}}


def declared_cli(decl: declared.Declarations) -> click.Group:
    """The CLI group as :func:`get_cli` makes it, from a stored reading of the plugins'
    declarations instead of the plugins (``--help`` and ``plugins``: :mod:`.declared`). Each
    command stands in by what the group's help shows of it; running one loads it for real."""
    for c in decl.commands:
        if c.name in cli.commands:
            continue
        stand_in = LazyCommand(c.name, c.help or "", _declared_command)
        stand_in.short_help, stand_in.hidden, stand_in.deprecated = c.short_help, c.hidden, c.deprecated
        cli.add_command(stand_in)
    for command in cli.commands.values():
        if takes_options(command):
            add_flag_params(command, list(decl.flags))
    return cli


def _declared_command(name: str) -> click.Command:
    """A command listed by a stored reading, for real: the core's without any plugin, a
    plugin's from the loaded plugins."""
    global _commands_registered
    from .commands import CORE_COMMANDS, load

    if name in CORE_COMMANDS:
        return load(name)
    cli.commands.pop(name, None)  # the stand-in: the plugins add the real one
    _commands_registered = False
    command = get_cli().commands.get(name)
    if command is None:
        raise click.UsageError(f"no such command {name!r}: its plugin no longer provides it")
    return command


def main() -> None:
    """The console script. ``--help`` and ``plugins`` run on the stored reading of the
    plugins' declarations while it is fresh, and store a new one when it is not
    (:mod:`.declared`); every other command loads the plugins."""
    argv = sys.argv[1:]
    if not declared.serves(argv):
        get_cli()(prog_name="model-analyze")
        return
    decl = declared.load()
    if decl is not None:
        declared_cli(decl)(prog_name="model-analyze")
        return
    group = get_cli()
    reading = declared.read(group, _command_failures)
    if reading is not None:
        declared.store(reading)
    group(prog_name="model-analyze")
