"""The per-model task, as a worker runs it: fetch, key, cache check, analysis, one line.

The same code runs in a local worker process and in a Dask worker's sandbox process, so
a model's line is the same wherever it was analyzed (the only thing that differs is its
timings).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..batch import BatchRunner, ModelResult
from ..config import Config
from . import keys, records
from .spec import Item, Outcome, Preset, ScanSpec, is_url

if TYPE_CHECKING:
    from ..manager import PluginManager

FETCH_CHUNK = 1 << 22


class PresetRunner(BatchRunner):
    """A :class:`BatchRunner` whose per-path settings were resolved by the scanning process."""

    preset: Preset = Preset({}, [], {})

    def settings(self, path: str) -> tuple[dict[str, Any], list[str]]:
        return dict(self.preset.values), list(self.preset.labels)

    def provenance(self, path: str) -> dict[str, str]:
        return dict(self.preset.provenance)


def load_plugins(extra: Sequence[str]) -> PluginManager:
    """The installed plugins plus ``extra`` (module names or ``.py`` files) — a fresh manager when
    there are extras, so the process-wide one is never changed."""
    from ..errors import UsageError
    from ..manager import PluginInfo, get_plugin_manager

    if not extra:
        return get_plugin_manager()
    pm = get_plugin_manager.__wrapped__()
    for spec in extra:
        try:
            module, name, version = _import_plugin(spec)
        except Exception as exc:
            raise UsageError(f"--plugin {spec}: cannot load: {type(exc).__name__}: {exc}") from None
        if pm.pm.has_plugin(name):
            continue
        pm.register(module, name)
        pm.infos[name] = PluginInfo(name, "--plugin", version,
                                    sorted(h.name for h in (pm.pm.get_hookcallers(pm.pm.get_plugin(name)) or [])))
    return pm


def _import_plugin(spec: str) -> tuple[Any, str, str]:
    import importlib
    import importlib.util
    import sys

    if spec.endswith(".py") or os.sep in spec:
        path = os.path.abspath(spec)
        name = "model_analyze_scan_plugin_" + os.path.splitext(os.path.basename(path))[0]
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"no module at {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        loader_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(spec)
        path = getattr(module, "__file__", None) or spec
    try:
        with open(path, "rb") as f:
            version = "sha:" + keys.digest(f.read())[:16]
    except OSError:
        version = str(getattr(module, "__version__", "?"))
    return module, os.path.splitext(os.path.basename(path))[0] if path.endswith(".py") else spec, version


class Analyst:
    """Everything a worker keeps between models: plugins, the runner, the context of every key."""

    def __init__(self, spec: ScanSpec, index: dict[str, list[keys.Dep]] | None = None) -> None:
        self.spec = spec
        self.index = index or {}
        self.pm = load_plugins(spec.plugins)
        self.runner = PresetRunner(Config(), spec.cli, self.pm)
        self.context = context_digest(self.pm, spec)
        self.tmp = tempfile.mkdtemp(prefix="model-analyze-scan-")

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, item: Item) -> Outcome:
        """The item's outcome; never raises for anything the model or the fetch does."""
        workdir = tempfile.mkdtemp(dir=self.tmp) if is_url(item.source) else ""
        try:
            try:
                local = fetch(item.source, workdir) if workdir else item.source
            except Exception as exc:
                return fetch_failed(item, exc)
            return self._analyze(item, local)
        finally:
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)

    def _analyze(self, item: Item, local: str) -> Outcome:
        before = keys.identity(local)
        graph = None
        if item.keyed:
            key = item.key
        else:
            graph = keys.graph_digest(local) if self.spec.use_cache and before is not None else None
            key = keys.settings_key(self.context, graph.digest, item.preset) if graph is not None else None
            if key is not None and not item.force_miss and key in self.index \
                    and keys.check_deps(local, self.index[key]):
                return Outcome(item.id, key=key, hit=True)
        self.runner.preset = item.preset
        with keys.recorded_reads() as deps:
            result = self.runner.analyze_one(item.path, local)
        entry = entry_of(result, local, key)
        unchanged = keys.identity(local) == before
        cacheable = key is not None and result.exit_code in (0, 1) and unchanged
        seen = (graph.digest, before) if graph is not None and not graph.external and unchanged and \
            local == item.source else None
        return Outcome(item.id, key=key, line=records.line_of(entry), slim=records.slim(entry), deps=list(deps),
                       cacheable=cacheable, graph=seen)


def fetch_failed(item: Item, exc: Exception) -> Outcome:
    entry = records.stopped_entry(item.path, "error", f"{item.path}: cannot fetch: {type(exc).__name__}: "
                                  f"{' '.join(str(exc).split())[:200]}",
                                  fail_on=item.preset.values.get("fail-on", "error"), config=item.preset.labels)
    return Outcome(item.id, line=records.line_of(entry), slim=records.slim(entry))


def context_digest(pm: PluginManager, spec: ScanSpec) -> str:
    """What every key of a scan shares: tool version, plugins (and those that failed to load), options."""
    from .._version import __version__

    plugins = sorted((i.name, i.distribution, i.version) for i in pm.infos.values())
    failed = sorted((i.name, i.distribution, i.version, i.error) for i in pm.failures)
    return keys.digest(keys.KEY_VERSION, __version__, keys.canonical([plugins, failed, asdict(spec.cli)]))


def entry_of(result: ModelResult, read_from: str, key: str | None) -> dict[str, Any]:
    """The line of ``result``, with the file it was read from replaced by its path everywhere a
    path is printed (a fetched URL's temporary copy)."""
    from ..render.summary import model_entry

    entry = model_entry(result)
    relabel(entry, read_from, result.path)
    entry["cached"] = False
    entry["key"] = key
    return entry


def relabel(entry: dict[str, Any], old: str, new: str) -> None:
    """Say ``new`` where the entry says the model's path ``old`` (cached lines of another copy of the
    same graph, temporary copies of URLs): the path, the report's model path and the error's prefix."""
    entry["path"] = new
    if entry.get("report"):
        entry["report"]["model"]["path"] = new
    error = entry.get("error")
    if isinstance(error, str) and old != new and error.startswith(old + ":"):
        entry["error"] = new + error[len(old):]


def fetch(url: str, workdir: str) -> str:
    """Copy the model at ``url`` into ``workdir`` (fsspec) and give each external-data file it names
    a sparse stand-in of the same size: the analysis sees what it would see next to the original
    (sizes, missing files) and never downloads a weight."""
    from ..budgets import BUDGETS

    fsspec = _fsspec()
    fs, remote = fsspec.core.url_to_fs(url)
    name = os.path.basename(remote.rstrip("/")) or "model.onnx"
    local = os.path.join(workdir, name)
    size = fs.size(remote)
    if size is not None and size > BUDGETS.model_file_bytes:
        _sparse(local, size)  # the loader refuses it from its size, as it would the original
        return local
    with fs.open(remote, "rb") as src, open(local, "wb") as dst:
        shutil.copyfileobj(src, dst, FETCH_CHUNK)
    _stand_ins(fs, remote, local, workdir)
    return local


def _stand_ins(fs: Any, remote: str, local: str, workdir: str) -> None:
    from .. import protoscan

    fd = os.open(local, os.O_RDONLY)
    try:
        try:
            skeleton = protoscan.scan_fd(fd).data
        except (protoscan.ScanError, OSError):
            return
    finally:
        os.close(fd)
    parent = remote.rsplit("/", 1)[0] if "/" in remote else ""
    for verdict in keys.external_verdicts(skeleton, workdir):
        location = verdict[0]
        if len(verdict) < 2 or verdict[1] != "L014":  # only missing files get a stand-in
            continue
        try:
            info = fs.info(f"{parent}/{location}" if parent else location)
        except Exception:
            continue  # missing there too: the analysis says so (L014)
        if info.get("type") == "file" and isinstance(info.get("size"), int):
            target = os.path.join(workdir, *location.replace("\\", "/").split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            _sparse(target, info["size"])


def _sparse(path: str, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)


def _fsspec() -> Any:
    import importlib

    try:
        return importlib.import_module("fsspec")  # untyped: kept Any
    except ImportError:
        raise RuntimeError("reading URLs needs fsspec: pip install 'model-analyze[dask]'") from None
