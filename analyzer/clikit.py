"""What every command shares: one-line errors, the binding options, the analyzer option
flags, output writing and the format table.

Commands — the core's ``analyze``, ``reach``, ``verify``, ``rules``, ``explain`` and a
plugin's — import these from here; this module imports no command (the ``cli`` group
is assembled in :mod:`.cli`, subcommands join it through the ``model_analyze_commands``
hook), so there is no import cycle between the group and its commands.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypeVar

import click

from .errors import AnalyzeError, UsageError

if TYPE_CHECKING:
    from .descriptors import Format
    from .runner import AnalyzeOptions

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., object])
TRUE_WORDS = ("1", "true", "yes", "on")


def env_debug() -> bool:
    """``MODEL_ANALYZE_DEBUG`` turns debug on only for a true-ish value (``0``/``false``/empty stay off)."""
    return os.environ.get("MODEL_ANALYZE_DEBUG", "").strip().lower() in TRUE_WORDS


def fail(message: str, code: int = 2) -> None:
    click.echo(f"model-analyze: error: {' '.join(str(message).split())}", err=True)
    sys.exit(code)


def guarded(fn: Callable[P, R]) -> Callable[P, R | None]:
    """Run a command body turning every error into one line + exit 2 (``--debug``: traceback, same code)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
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
        return None

    return wrapper


def silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def split_multi(values: tuple[str, ...] | list[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def dims_options(fn: F) -> F:
    """--dim / --input-shape / --seq-len, shared by every command that analyzes."""
    fn = click.option("--seq-len", type=click.IntRange(min=1), default=None,
                      help="Bind the model's sequence dim to N (alias of --dim SEQ=N).")(fn)
    fn = click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=D1,D2,...",
                      help="Fix a whole input's shape (for unnamed '?' dims), repeatable.")(fn)
    fn = click.option("--dim", "dims", multiple=True, metavar="NAME=VALUE",
                      help="Bind a symbolic dim, e.g. --dim seq=4096 (repeatable).")(fn)
    return fn


class Flag(NamedTuple):
    """An analyzer's option that has a flag of its own (``--top``), as the command line needs it.

    Plain values, so that :mod:`.declared` can keep the flags between runs and ``--help``
    can add them without importing the plugins."""

    key: str
    kind: str
    """``int``, ``float``, ``bool``, ``str`` or ``list[str]``."""
    minimum: float | None
    maximum: float | None
    choices: tuple[str, ...]
    help: str
    owners: tuple[str, ...]
    """The analyzers that share the option, the first one's help and type being the flag's."""


def _click_option(flag: Flag) -> click.Option:
    """``--KEY`` for a flag option, typed by the option (click checks it, one line on error)."""
    kind: click.ParamType[object] = click.STRING
    lo, hi = flag.minimum, flag.maximum
    if flag.kind == "int":
        kind = click.IntRange(None if lo is None else int(lo), None if hi is None else int(hi)) \
            if lo is not None or hi is not None else click.INT
    elif flag.kind == "float":
        kind = click.FloatRange(lo, hi) if lo is not None or hi is not None else click.FLOAT
    elif flag.choices:
        kind = click.Choice(flag.choices)
    who = ", ".join(flag.owners)
    text = f"{flag.help[:1].upper()}{flag.help[1:]} ({who}; option {flag.owners[0]}.{flag.key})."
    if flag.kind == "bool":
        return click.Option([f"--{flag.key}/--no-{flag.key}"], default=None, help=text)
    metavar = "A,B,..." if flag.kind == "list[str]" else flag.key.upper().replace("-", "_")
    return click.Option([f"--{flag.key}"], type=kind, default=None, metavar=metavar, help=text)


def option_flags(fn: F) -> F:
    """``--option NAME.KEY=VALUE`` on a command that analyzes. The installed analyzers' flag
    options (``--top``, ``--device``…) join the command with :func:`add_flag_params` once the
    plugins are loaded; the command receives them in ``**flags`` (see :func:`flag_values`)."""
    return click.option("--option", "plugin_options", multiple=True, metavar="NAME.KEY=VALUE",
                        help="Set an analyzer's option (repeatable); `model-analyze plugins` lists them.")(fn)


def add_flag_params(cmd: click.Command, flags: list[Flag] | None = None) -> None:
    """Add every installed analyzer's flag options to ``cmd`` (those whose name is free);
    ``flags``: :func:`flag_specs` computed once for several commands."""
    taken = {o for p in cmd.params for o in getattr(p, "opts", [])}
    for flag in flag_specs() if flags is None else flags:
        opt = _click_option(flag)
        if not set(opt.opts) & taken:
            cmd.params.append(opt)
            taken.update(opt.opts)


def takes_options(cmd: click.Command) -> bool:
    """Whether ``cmd`` takes ``--option`` (:func:`option_flags`), so the analyzers' flags join it."""
    return any(p.name == "plugin_options" for p in cmd.params)


class LazyCommand(click.Command):
    """A command known by its name and summary until it is used.

    What a group's ``--help`` shows of a command is its name and the first paragraph of its
    help; this stands in for the command with just those and imports it (``load(name)``) when
    a context is made for it — to run it, show its own help or complete its arguments. The
    context is the real command's, so click runs the real one. Once loaded, a command that
    takes ``--option`` gets the analyzers' flags, as the group's eager commands do."""

    def __init__(self, name: str, summary: str, load: Callable[[str], click.Command]) -> None:
        super().__init__(name, help=summary, add_help_option=False)
        self._key = name
        self._load = load
        self._command: click.Command | None = None

    @property
    def command(self) -> click.Command:
        """The real command (imported on first use)."""
        if self._command is None:
            command = self._load(self._key)
            if takes_options(command):
                add_flag_params(command)
            self._command = command
        return self._command

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        return self.command.make_context(info_name, args, parent=parent, **extra)


def flag_specs() -> list[Flag]:
    """Each flag option of the installed analyzers with the analyzers that share it (never raises:
    a broken plugin must not take ``--help`` down)."""
    try:
        from .options import installed_catalog

        cat = installed_catalog()
    except Exception:
        return []
    return [Flag(key, spec.kind, spec.minimum, spec.maximum, tuple(spec.choices), spec.help,
                 tuple(name for name, _ in cat.owners(key, True))) for key, spec in sorted(cat.flags().items())]


def flag_values(flags: dict[str, object]) -> dict[str, object]:
    """The flags a command received (``**flags``) that were given, by option key."""
    out: dict[str, object] = {}
    for name, value in flags.items():
        if value is None or value == ():
            continue
        out[name.replace("_", "-")] = ",".join(str(v) for v in value) if isinstance(value, tuple) else value
    return out


def build_options(dims: tuple[str, ...], input_shapes: tuple[str, ...], seq_len: int | None,
                  select: tuple[str, ...] = (), ignore: tuple[str, ...] = (),
                  params: dict[str, object] | None = None) -> AnalyzeOptions:
    from .bindings import parse_dim_specs
    from .runner import AnalyzeOptions
    from .shapes import parse_input_shape

    shapes = dict(parse_input_shape(s) for s in input_shapes)
    if seq_len is not None and seq_len <= 0:
        raise UsageError("--seq-len must be positive")
    return AnalyzeOptions(parse_dim_specs(dims), shapes, seq_len, split_multi(select),
                          split_multi(ignore), params or {})


def config_options(fn: F) -> F:
    """``--config FILE`` and ``--isolated``, read as the main command reads them."""
    fn = click.option("--isolated", is_flag=True, help="Ignore every config file.")(fn)
    return click.option("--config", "config_path", default=None, metavar="FILE",
                        help="Config file to read (default: the nearest model-analyze.toml, or pyproject.toml "
                             "with [tool.model-analyze]).")(fn)


def configured_options(model: str, dims: tuple[str, ...], input_shapes: tuple[str, ...], seq_len: int | None,
                       config_path: str | None, isolated: bool) -> tuple[AnalyzeOptions, list[str]]:
    """The bindings a one-model subcommand (``reach``, ``verify``) works at, and the config
    files/overrides that gave them: the command line's (an error when the model lacks the
    dim), then the project config's for this path — the global table and every override
    whose ``paths`` match — exactly as ``model-analyze PATH`` applies them (skipped and said,
    C001, when the model has no such dim, input or sequence). ``--isolated`` reads none."""
    from .batch import soft_bindings
    from .config import Config, load_config

    options = build_options(dims, input_shapes, seq_len)
    config = Config() if isolated else load_config(explicit=config_path)
    values, applied = config.for_model(model)
    for key, value in soft_bindings(values, config.sources(model)).items():
        setattr(options, key, value)
    return options, ([config.label] if config.path else []) + applied


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
        silence_stdout()
        raise UsageError(f"cannot write the report to stdout: {exc.strerror or exc}") from None


def formats() -> dict[str, Format]:
    """Every output format the installed plugins provide, by name."""
    from .manager import get_plugin_manager

    items, _ = get_plugin_manager().formats()
    return {f.name: f for _, f in items}
