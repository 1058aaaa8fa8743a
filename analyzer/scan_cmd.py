"""``model-analyze scan PATH...``: a registry's worth of models, in parallel, cached and resumable.

Each model runs in a worker process under ``--timeout`` and ``--max-memory`` (a model that
hangs, blows memory or crashes is a row with that status; the scan goes on), or on a Dask
cluster with ``--executor dask``. One JSON line per model (or a CSV row) is written as
each finishes; the closing summary table is the one ``model-analyze PATH...`` prints,
sorted and filtered. The machinery lives in :mod:`model_analyze.scanner`.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .clikit import dims_options, flag_values, guarded, option_flags

FORMATS = ("jsonl", "csv")


def _size(value: str | None) -> int | None:
    from .errors import UsageError
    from .units import parse_quantity

    if value is None:
        return None
    try:
        return parse_quantity(value, unit="B")
    except ValueError as exc:
        raise UsageError(f"--max-memory {value!r}: expected {exc}") from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: the cores available); Dask: local cluster workers.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=600.0, show_default=True,
              metavar="SECONDS", help="Per model (fetching included); past it the model is a 'timeout' row.")
@click.option("--max-memory", default=None, metavar="SIZE",
              help="Resident memory per worker, e.g. 2GiB (default 4GiB or RAM/jobs if less); "
                   "past it the model is an 'memory' row.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Where models run: worker processes here, or a dask.distributed cluster.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler (tcp://host:8786 or dask://host:8786); none: a local cluster of --jobs workers.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True,
              help="One JSON line or one CSV row per model, written as each finishes.")
@click.option("-o", "--output", default=None, metavar="FILE", help="Write results to FILE (default stdout).")
@click.option("--resume", default=None, metavar="FILE",
              help="Skip the models in FILE (an earlier scan's JSON Lines) and append the rest to it "
                   "(or to -o).")
@click.option("--cache-dir", default=None, metavar="DIR",
              help="Result cache (default: the user cache dir, e.g. ~/.cache/model-analyze).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option("--sort", "sort_key", type=click.Choice(["path", "macs", "params", "reach", "status"]),
              default="path", show_default=True,
              help="Order of the summary table: numbers largest first, status worst first.")
@click.option("--reverse", is_flag=True, help="Reverse the --sort order.")
@click.option("--status", "statuses", multiple=True, metavar="LIST",
              help="Only these statuses in the table: ok, fail, error, timeout, memory, crashed, problems.")
@click.option("--match", default=None, metavar="GLOB", help="Only models whose path matches GLOB in the table.")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE|FILE.py",
              help="Load this plugin too, here and in every worker (repeatable).")
@dims_options
@click.option("--select", multiple=True, metavar="NAMES", help="Analyzers and codes/prefixes to report.")
@click.option("--ignore", multiple=True, metavar="NAMES", help="Analyzers and codes/prefixes to leave out.")
@click.option("--extend-select", multiple=True, metavar="NAMES", help="Added to the config's select.")
@click.option("--severity", "severities", multiple=True, metavar="CODE=LEVEL", help="Re-grade a code or prefix.")
@click.option("--fail-on", type=click.Choice(["info", "warning", "error", "never"]), default=None,
              help="A model is 'fail' with a finding of this severity or worse (default: error).")
@option_flags
@click.option("--budget", "budgets", multiple=True, metavar="KEY=VALUE", help="A budget at the binding.")
@click.option("--config", "config_path", default=None, metavar="FILE", help="Read this config file.")
@click.option("--isolated", is_flag=True, help="Ignore every config file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary table (results only).")
@click.option("--debug", is_flag=True, help="Show tracebacks (exit codes stay the same).")
@guarded
def scan(paths: tuple[str, ...], jobs: int | None, timeout: float, max_memory: str | None, executor: str,
         scheduler: str | None, fmt: str, output: str | None, resume: str | None, cache_dir: str | None,
         no_cache: bool, sort_key: str, reverse: bool, statuses: tuple[str, ...], match: str | None,
         plugins: tuple[str, ...], config_path: str | None, isolated: bool, quiet: bool, **options: Any) -> None:
    """Scan many models (files, directories, globs, @list.txt, URLs) in parallel workers.

    Streams one result per model as JSON Lines (or CSV) and ends with the summary
    table. Results are cached by the hash of each graph (never its weights), the tool
    version, the options and the installed plugins; --resume skips what a killed
    scan already wrote. See the README's "Scanning a model registry".
    """
    from .analyze_cmd import cli_settings
    from .scanner.output import Writer, open_output, parse_statuses, trim_partial_line
    from .scanner.progress import Progress
    from .scanner.run import scan as make_scan

    wanted = parse_statuses(statuses)
    known = ("dims", "input_shapes", "seq_len", "select", "ignore", "extend_select", "severities", "fail_on",
             "budgets")
    flags = flag_values({k: v for k, v in options.items() if k not in (*known, "plugin_options", "debug")})
    settings = cli_settings(**{k: options[k] for k in known}, baseline_tolerance=None, debug=options["debug"],
                            flags=flags, plugin_options=options["plugin_options"])
    job = make_scan(paths, jobs=jobs, executor=executor, scheduler=scheduler, timeout=timeout,
                    max_memory=_size(max_memory), cache=not no_cache, cache_dir=cache_dir, resume=resume,
                    config=config_path, isolated=isolated, settings=settings, plugins=plugins)
    target = output or resume
    append = bool(resume) and target == resume
    if append and target:
        trim_partial_line(target)
    stream, close = open_output(target, append)
    writer = Writer(fmt, stream, header=not append)
    mode = "off" if quiet else "bar" if _isatty(sys.stderr) else "lines"
    progress = Progress(job.total, mode)
    results = []
    try:
        for r in job:
            if not (r.resumed and append):
                writer.write(r)
            r.raw = b""  # the table needs the slim result only
            results.append(r)
            if not r.resumed:
                progress.update(r.status)
    finally:
        progress.close()
        close()
    code = max((r.exit_code for r in results), default=0)
    if not quiet:
        _summary(results, code, sort_key, reverse, wanted, match, to_stderr=target is None)
    sys.exit(code)


def _summary(results: list[Any], code: int, sort_key: str, reverse: bool, wanted: list[str], match: str | None,
             to_stderr: bool) -> None:
    from .render import summary as S
    from .scanner.output import filter_results, sort_results

    shown = filter_results(sort_results(results, sort_key, reverse), wanted, match)
    notes = []
    if sort_key != "path" or reverse:
        notes.append(f"sorted by {sort_key}{' (reversed)' if reverse else ''}")
    if len(shown) != len(results):
        notes.append(f"{len(shown)} of {len(results)} models shown")
    cached = sum(1 for r in results if r.cached)
    resumed = sum(1 for r in results if r.resumed)
    if cached or resumed:
        notes.append(", ".join(p for p in (f"{cached} from the cache" if cached else "",
                                           f"{resumed} resumed" if resumed else "") if p))
    text = S.render_text(results, code, shown=shown, note=" · ".join(notes))
    click.echo(text, nl=False, err=to_stderr)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
