"""Many models in one run: discovery, per-model settings, one result per model.

``model-analyze PATH...`` takes files, directories (every ``*.onnx`` below them) and
globs, and analyzes them in one process: start-up and plugin loading are paid once.
Each model gets the settings that apply to its path (global config, matching
overrides, then the command line), its own budgets, baseline check and finding
policy, and ends as a :class:`ModelResult` with its own exit code — a corrupt file
is a result with exit code 2 and one line, never the end of the run. The run's exit
code is the worst over models.

This module knows nothing about output formats; ``render.summary`` turns results into
the closing table and the multi-model JSON, and a later ``scan`` command can run
:func:`analyze_one` in workers and reuse everything else.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import model_budgets as B
from . import policy as P
from .codes import registry
from .config import Config
from .errors import AnalyzeError, UsageError
from .options import OptionLayer, catalog, resolve
from .report import Finding, Report, Severity

if TYPE_CHECKING:
    from .baseline import Baseline, Snapshot
    from .manager import PluginManager

SUFFIX = ".onnx"
FAIL_ON = ("info", "warning", "error", "never")


@dataclass
class ModelResult:
    """What one model of a run ended with."""

    path: str
    """The path as given or found (relative paths stay relative)."""
    report: Report | None = None
    error: str | None = None
    """One line when the model could not be analyzed (exit code 2)."""
    exit_code: int = 0
    fail_on: str = "error"
    config: list[str] = field(default_factory=list)
    """Config blocks that applied (``pyproject.toml``, ``pyproject.toml overrides[1]``)."""
    elapsed_s: float = 0.0
    snapshot: Snapshot | None = None
    """Headline values and attention masks, for ``--write-baseline``."""
    outcome: str | None = None
    """Why there is no report when the model did not get to finish: ``memory`` (out of memory),
    and for ``scan``'s worker limits also ``timeout`` and ``crashed``. Exit code 2 either way."""

    @property
    def status(self) -> str:
        """``ok``/``fail``/``error`` from the exit code, or the :attr:`outcome` that stopped the model."""
        return self.outcome or {0: "ok", 1: "fail", 2: "error"}.get(self.exit_code, "error")

    def blocking(self) -> list[Finding]:
        """Findings at or above this model's ``fail-on`` (why its exit code is 1)."""
        if self.report is None or self.fail_on == "never":
            return []
        level = Severity.parse(self.fail_on)
        return [f for f in self.report.all_findings() if f.severity >= level]


@dataclass
class CliSettings:
    """What the command line says; every field left ``None``/empty defers to the config."""

    dims: dict[str, int] = field(default_factory=dict)
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    seq_len: int | None = None
    select: list[str] | None = None
    ignore: list[str] | None = None
    extend_select: list[str] = field(default_factory=list)
    severity: dict[str, str] = field(default_factory=dict)
    fail_on: str | None = None
    flags: dict[str, object] = field(default_factory=dict)
    """Analyzer option flags given on the command line (``--top 20`` → ``{"top": 20}``)."""
    options: dict[str, dict[str, object]] = field(default_factory=dict)
    """``--option NAME.KEY=VALUE`` (text values, parsed by each option's type)."""
    budgets: dict[str, Any] = field(default_factory=dict)
    baseline: Baseline | None = None
    tolerance: float | None = None
    want_snapshot: bool = False
    debug: bool = False


@dataclass
class Target:
    path: str
    explicit: bool
    """Named on the command line (vs found in a directory or by a glob)."""
    error: str | None = None


def is_batch(paths: Iterable[str]) -> bool:
    """Whether the run reports as many models (a ``models`` list), whatever it finds: more than
    one path, a directory or a glob — so a CI script gets one shape whatever the folder holds."""
    paths = list(paths)
    return len(paths) != 1 or os.path.isdir(paths[0]) or (_is_glob(paths[0]) and not os.path.exists(paths[0]))


def _is_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def discover(paths: Iterable[str], config: Config | None = None) -> list[Target]:
    """Files as given, ``*.onnx`` below directories (sorted, hidden dirs skipped), glob matches;
    ``exclude`` globs of the config drop found files (never a file named explicitly)."""
    out: list[Target] = []
    seen: set[str] = set()

    def add(path: str, explicit: bool, error: str | None = None) -> None:
        if not explicit:
            path = os.path.normpath(path)  # "./models/a.onnx" → "models/a.onnx"
        key = os.path.realpath(path) if error is None else path
        if key in seen:
            return
        seen.add(key)
        if not explicit and config is not None and config.excluded(path):
            return
        out.append(Target(path, explicit, error))

    for raw in paths:
        if os.path.isdir(raw):
            found = sorted(_walk(raw))
            if not found:
                add(raw, True, f"{raw}: no *{SUFFIX} file in this directory")
            for f in found:
                add(f, False)
        elif os.path.exists(raw) or os.path.islink(raw):
            add(raw, True)
        elif _is_glob(raw):
            hits = sorted(h for h in glob.glob(raw, recursive=True) if os.path.isfile(h))
            if not hits:
                add(raw, True, f"{raw}: no file matches this pattern")
            for h in hits:
                add(h, False)
        else:
            add(raw, True)  # the loader says "no such file" in its own words
    return out


def _walk(root: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.endswith(SUFFIX):
                yield os.path.join(dirpath, name)


def soft_bindings(values: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    """The config's bindings for one model as ``AnalyzeOptions`` fields: *soft* — a dim, input
    or sequence the model does not have is skipped and said (C001), never an error, so one
    config covers a folder of different models (the command line's stay hard)."""
    return {"soft_dims": dict(values.get("dims", {})), "soft_seq_len": values.get("seq-len"),
            "soft_input_shapes": dict(values.get("input-shapes", {})), "soft_sources": sources}


def worst_exit(results: Iterable[ModelResult]) -> int:
    return max((r.exit_code for r in results), default=0)


class BatchRunner:
    """Analyzes models one by one with the settings that apply to each path."""

    def __init__(self, config: Config, cli: CliSettings, pm: PluginManager | None = None) -> None:
        from .analyzers import available_analyzers
        from .manager import get_plugin_manager

        self.config = config
        self.cli = cli
        self.pm = pm or get_plugin_manager()
        found = available_analyzers(self.pm)[0]
        self.analyzers = set(found)
        self.option_catalog = catalog(found.values())
        self.codes = registry(self.pm)
        self.single = False
        """Set by the caller when the run is one model (a one-entry baseline then matches it by any path)."""
        self.validate()

    def validate(self) -> None:
        """Check every selector, severity key and fail-on of the config and the command line up
        front, so a typo in an override is exit 2 before any model runs."""
        where = self.config.where
        blocks: list[tuple[str, dict[str, Any]]] = [(where, self.config.values)]
        blocks += [(f"{where} {ov.label.split(' ', 1)[-1]}", ov.values) for ov in self.config.overrides]
        for label, values in blocks:
            for key in ("select", "ignore", "extend-select"):
                if key in values:
                    P.split(values[key], self.analyzers, self.codes, f"{label} {key}")
            if "severity" in values:
                P.severity_table(values["severity"], self.codes, f"{label} severity")
        cli = self.cli
        for opt, items in (("--select", cli.select), ("--ignore", cli.ignore),
                           ("--extend-select", cli.extend_select)):
            if items:
                P.split(items, self.analyzers, self.codes, opt)
        if cli.severity:
            P.severity_table(cli.severity, self.codes, "--severity")
        resolve(self.option_catalog, [self._config_layer(self.config.values, self.config.where), *self._cli_layers()])
        for ov in self.config.overrides:
            merged, _ = self.config.for_model_block(ov)
            resolve(self.option_catalog, [self._config_layer(merged, f"{where} {ov.label.split(' ', 1)[-1]}"),
                                          *self._cli_layers()])

    def _config_layer(self, values: dict[str, Any], label: str) -> OptionLayer:
        flags = {k: values[k] for k in self.option_catalog.flags() if k in values}
        return OptionLayer(label, flags=flags, per=dict(values.get("plugins", {})))

    def _cli_layers(self) -> list[OptionLayer]:
        return [OptionLayer("--flag", flags=dict(self.cli.flags)),
                OptionLayer("--option", per=self.cli.options, text=True)]

    def settings(self, path: str) -> tuple[dict[str, Any], list[str]]:
        values, applied = self.config.for_model(path)
        labels = ([self.config.label] if self.config.path else []) + applied
        cli = self.cli
        if cli.select is not None:
            values["select"] = cli.select
        if cli.ignore is not None:
            values["ignore"] = cli.ignore
        values["extend-select"] = [*values.get("extend-select", []), *cli.extend_select]
        values["severity"] = {**values.get("severity", {}), **cli.severity}
        values["budgets"] = {**values.get("budgets", {}), **cli.budgets}
        for key, v in (("fail-on", cli.fail_on), ("baseline-tolerance", cli.tolerance)):
            if v is not None:
                values[key] = v
        return values, labels

    def provenance(self, path: str) -> dict[str, str]:
        """Which file, override or option set each binding and budget (:meth:`Config.sources`)."""
        return self.config.sources(path) | {f"budgets.{k}": "--budget" for k in self.cli.budgets}

    def options(self, path: str, values: dict[str, Any]) -> tuple[Any, P.Policy]:
        from .runner import AnalyzeOptions

        sel = P.split(values.get("select", []), self.analyzers, self.codes, "select")
        ign = P.split(values.get("ignore", []), self.analyzers, self.codes, "ignore")
        ext = P.split(values.get("extend-select", []), self.analyzers, self.codes, "extend-select")
        analyzers = list(sel.analyzers) + [a for a in ext.analyzers if sel.analyzers and a not in sel.analyzers]
        cli = self.cli
        options = AnalyzeOptions(
            dims=dict(cli.dims), input_shapes=dict(cli.input_shapes), seq_len=cli.seq_len,
            select=analyzers, ignore=list(ign.analyzers),
            option_layers=[self._config_layer(values, self.config.label), *self._cli_layers()],
            **soft_bindings(values, self.provenance(path)))
        policy = P.Policy(sel.codes, ext.codes, ign.codes,
                          P.severity_table(values.get("severity", {}), self.codes, "severity"))
        return options, policy

    def analyze_one(self, path: str, file: str | None = None) -> ModelResult:
        """Analyze one model; every failure to analyze becomes a result with exit code 2.

        ``file`` is where its bytes are when that is not ``path`` (``scan`` fetched a URL to a
        temporary file); settings always follow ``path``."""
        from .runner import run

        t0 = time.perf_counter()
        values, labels = self.settings(path)
        result = ModelResult(path, fail_on=values.get("fail-on", "error"), config=labels)
        try:
            options, policy = self.options(path, values)
            report, ctx = run(file or path, options, self.pm)
            report.findings.extend(self._budgets(path, report, ctx, values))
            policy.apply(report)
            if self.cli.want_snapshot or self.cli.baseline is not None:
                from .baseline import snapshot

                result.snapshot = snapshot(report, ctx)
            if self.cli.baseline is not None and result.snapshot is not None:
                new = self.cli.baseline.check(path, result.snapshot, report, values.get("baseline-tolerance", 0.01),
                                              single_run=self.single)
                report.findings.extend(policy.filter(new))
            del ctx
            result.report = report
            result.exit_code = 1 if report.failed_sections() or result.blocking() else 0
        except AnalyzeError as exc:
            if self.cli.debug:
                raise
            result.error, result.exit_code = str(exc), 2
        except (KeyboardInterrupt, SystemExit):
            raise
        except MemoryError:
            result.error, result.exit_code = f"{path}: out of memory while analyzing", 2
            result.outcome = "memory"
        except Exception as exc:
            if self.cli.debug:
                raise
            result.error = f"{path}: internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)"
            result.exit_code = 2
        result.elapsed_s = time.perf_counter() - t0
        return result

    def _budgets(self, path: str, report: Report, ctx: Any, values: dict[str, Any]) -> list[Finding]:
        table = values.get("budgets", {})
        if not table:
            return []
        origin = self.provenance(path)
        items = [B.Budget(B.KINDS[k], v, origin.get(f"budgets.{k}", "")) for k, v in table.items()]
        nodes = ((n.domain, n.op_type, n.ref()) for n in ctx.graph.walk())
        return B.check(report, items, nodes)

    def run(self, targets: list[Target], progress: Callable[[ModelResult], None] | None = None
            ) -> list[ModelResult]:
        results = []
        for t in targets:
            r = ModelResult(t.path, error=t.error, exit_code=2) if t.error else self.analyze_one(t.path)
            results.append(r)
            if progress is not None:
                progress(r)
        return results


def check_format(name: str, available: Iterable[str], where: str = "--format") -> None:
    from .errors import did_you_mean

    names = sorted(available)
    if name not in names:
        raise UsageError(f"{where}: unknown format {name!r}{did_you_mean(name, names)} (available: {', '.join(names)})")
