"""The plugin manager: pluggy, the built-in plugins and the ``model_analyze`` entry points.

Built-ins are registered explicitly from :data:`DEFAULT_PLUGINS` (module names, as llm
does), so a source checkout runs without reinstalling; third-party plugins come from the
``model_analyze`` entry-point group. Every hook is called the pluggy way,
``pm.hook.<name>(...)``, so ``tryfirst``/``trylast``, ``firstresult`` and wrappers work as
pluggy documents them.

One failing plugin never sinks the others. Each plugin is registered behind a
:class:`_Guarded` proxy whose hook implementations carry the plugin's own (same names,
signatures and ``hookimpl`` options) but catch what the plugin raises: the failure is
recorded against the plugin and the call goes on with the next implementation. The
proxy also tags what each implementation returns with the plugin's name, so the core
knows who provided which analyzer, rule, format or device. A plugin that fails to
import, or that was written for a newer plugin API than this one (its module's
``MODEL_ANALYZE_API``), is not registered and is reported with one line.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from importlib.machinery import PathFinder
from typing import TYPE_CHECKING, TypeVar

import pluggy

from . import hookspecs
from .hookspecs import API_VERSION, PROJECT

if TYPE_CHECKING:
    from importlib import metadata

    from .descriptors import Analyzer, Format
    from .ops.registry import OpRule

T = TypeVar("T")

DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("core-formats", "model_analyze.render.builtin"),
    ("core-commands", "model_analyze.commands"),
    ("structure", "model_analyze.plugins.structure"),
    ("receptive_field", "model_analyze.plugins.receptive_field"),
    ("architecture", "model_analyze.plugins.architecture"),
    ("attention", "model_analyze.plugins.attention_span"),
    ("hotspots", "model_analyze.plugins.hotspots"),
    ("serving", "model_analyze.plugins.serving"),
)
"""``(name, module)`` of every plugin this distribution ships, registered before the entry points."""


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    api: str = ""
    """The plugin API the plugin says it was written for (``MODEL_ANALYZE_API``), if it says."""


@dataclass(frozen=True)
class HookFailure:
    """A plugin's hook implementation that raised (or returned the wrong thing)."""

    plugin: str
    hook: str
    error: str

    def __str__(self) -> str:
        return self.error


class _Provided(list[object]):
    """A hook implementation's result list, tagged with the plugin that returned it."""

    plugin: str = "?"


def parse_api(text: object) -> tuple[int, int] | None:
    """``"1.0"`` → ``(1, 0)``; None for anything that is not MAJOR.MINOR."""
    if not isinstance(text, str):
        return None
    major, sep, minor = text.strip().partition(".")
    if not (major.isdigit() and (not sep or minor.isdigit())):
        return None
    return int(major), int(minor or 0)


def api_refusal(name: str, declared: object) -> str | None:
    """Why a plugin written for ``declared`` cannot run on :data:`API_VERSION` (None: it can)."""
    if declared is None:
        return None
    want, have = parse_api(declared), parse_api(API_VERSION)
    assert have is not None
    if want is None:
        return f"plugin {name!r}: MODEL_ANALYZE_API = {declared!r} is not a version like \"{API_VERSION}\""
    if want[0] > have[0] or (want[0] == have[0] and want[1] > have[1]):
        return (f"plugin {name!r} needs plugin API {declared}, this model-analyze provides {API_VERSION}: "
                "upgrade model-analyze")
    if want[0] < have[0]:
        return (f"plugin {name!r} was written for plugin API {declared}, this model-analyze provides "
                f"{API_VERSION} (a new major version): the plugin needs an update")
    return None


class _Guarded:
    """Stands in for one plugin in pluggy's registry: the same hook implementations, each
    catching what the plugin raises (see the module docstring)."""

    def __init__(self, plugin: object, name: str, manager: PluginManager) -> None:
        self.plugin = plugin
        self.plugin_name = name
        for attr in dir(plugin):
            if not attr.startswith("model_analyze_"):
                continue
            fn = getattr(plugin, attr, None)
            opts = getattr(fn, f"{PROJECT}_impl", None)
            if not callable(fn) or opts is None:
                continue
            wrapper = bool(opts.get("wrapper") or opts.get("hookwrapper"))
            setattr(self, attr, _guard_wrapper(fn, name, attr, manager) if wrapper
                    else _guard_impl(fn, name, attr, manager))


def _guard_impl(fn: Callable[..., object], plugin: str, hook: str, manager: PluginManager) -> Callable[..., object]:
    @functools.wraps(fn)
    def guarded(*args: object, **kwargs: object) -> object:
        firstresult = manager.firstresult(hook)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # a broken plugin must not sink the others
            manager.record(plugin, hook, exc)
            return None if firstresult else _tag([], plugin)
        if firstresult:
            kind = manager.expected.get(hook)
            if result is not None and kind is not None and not isinstance(result, kind):
                # pluggy would stop at it: a wrong-type answer is no answer, so the next plugin is asked
                manager.record(plugin, hook, TypeError(f"{hook} returned a {type(result).__name__}, "
                                                       f"not a {kind.__name__}"))
                return None
            if result is not None:
                manager.winner = plugin  # pluggy stops at the first result: this plugin gave it
            return result
        if hook in _NO_RESULT:
            return result
        if result is None:
            return _tag([], plugin)
        if not isinstance(result, (list, tuple)):
            manager.record(plugin, hook, TypeError(f"returned {type(result).__name__}, not a list"))
            return _tag([], plugin)
        return _tag(result, plugin)

    return guarded


def _guard_wrapper(fn: Callable[..., object], plugin: str, hook: str,
                   manager: PluginManager) -> Callable[..., Generator[None, object, object]]:
    """A plugin's wrapper, run in a guard: if it raises before or after the inner call, the
    failure is recorded and the inner result goes on unchanged."""

    @functools.wraps(fn)
    def guarded(*args: object, **kwargs: object) -> Generator[None, object, object]:
        gen = fn(*args, **kwargs)
        try:
            next(gen)  # type: ignore[call-overload]
        except Exception as exc:
            manager.record(plugin, hook, exc)
            return (yield)
        inner = yield
        try:
            gen.send(inner)  # type: ignore[attr-defined]
        except StopIteration as stop:
            return stop.value if stop.value is not None or manager.firstresult(hook) else inner
        except Exception as exc:
            manager.record(plugin, hook, exc)
            return inner
        manager.record(plugin, hook, RuntimeError("wrapper yielded more than once"))
        return inner

    return guarded


_NO_RESULT = frozenset({"model_analyze_commands"})
"""Hooks whose implementations act (add commands) and return nothing."""


def _tag(items: list[object] | tuple[object, ...], plugin: str) -> _Provided:
    out = _Provided(items)
    out.plugin = plugin
    return out


class _Pluggy(pluggy.PluginManager):
    """pluggy's manager, reading only the attributes that can be hook implementations.

    What is registered is a :class:`_Guarded`, which carries exactly the plugin's
    ``model_analyze_*`` implementations; pluggy's default would inspect every other
    attribute too (``inspect.getattr_static`` on each of ``dir(obj)``, the object's
    dunders included), a tenth of ``--help`` (issue 15, goal 4). ``parse_hookimpl_opts``
    is pluggy's documented hook for this."""

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        if not name.startswith(f"{PROJECT}_"):
            return None
        return super().parse_hookimpl_opts(plugin, name)


@dataclass
class PluginManager:
    pm: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    failures: list[PluginInfo]
    _errors: list[HookFailure] = field(default_factory=list)
    winner: str = ""
    """The plugin whose implementation gave the last ``firstresult`` hook's result."""
    expected: dict[str, type] = field(default_factory=dict)
    """``firstresult`` hook → the type :meth:`first` wants of it: the guards read any other
    result as no answer (recorded against its plugin), so pluggy asks the next implementation."""

    @property
    def hook(self) -> pluggy.HookRelay:
        return self.pm.hook

    def firstresult(self, hook: str) -> bool:
        caller = getattr(self.pm.hook, hook, None)
        spec = getattr(caller, "spec", None)
        return bool(spec is not None and spec.opts.get("firstresult"))

    def record(self, plugin: str, hook: str, exc: BaseException) -> None:
        self._errors.append(HookFailure(plugin, hook, f"{type(exc).__name__}: {exc}"))

    def register(self, plugin: object, name: str) -> None:
        """Register ``plugin`` (a module or object) behind its guard."""
        self.pm.register(_Guarded(plugin, name, self), name=name)

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)

    def call(self, hook: str, **kwargs: object) -> tuple[list[tuple[str, object]], list[HookFailure]]:
        """``pm.hook.<hook>(**kwargs)``: every item with the plugin that provided it, and the
        implementations that failed (one failing plugin loses only its own contribution)."""
        start = len(self._errors)
        results = getattr(self.pm.hook, hook)(**kwargs)
        errors = self._errors[start:]
        del self._errors[start:]
        items: list[tuple[str, object]] = []
        for res in results or []:
            plugin = getattr(res, "plugin", "?")
            items.extend((plugin, item) for item in res)
        return items, errors

    def implemented(self, hook: str) -> bool:
        """Some registered plugin implements ``hook`` (so a per-node call is worth making)."""
        caller = getattr(self.pm.hook, hook, None)
        return bool(caller is not None and caller.get_hookimpls())

    def first(self, hook: str, kind: type[T], **kwargs: object) -> tuple[tuple[str, T] | None, list[HookFailure]]:
        """A ``firstresult`` hook, ``pm.hook.<hook>(**kwargs)``: ``(plugin, result)`` of the first
        implementation that returned a ``kind`` (None if none did), and the implementations
        that failed on the way — a raising one, or one that returned something not a ``kind``
        (no answer: the next implementation is asked; a wrapper's result is checked here)."""
        start = len(self._errors)
        self.winner = ""
        self.expected[hook] = kind
        result = getattr(self.pm.hook, hook)(**kwargs)
        errors = self._errors[start:]
        del self._errors[start:]
        if result is None:
            return None, errors
        if not isinstance(result, kind):
            errors.append(HookFailure(self.winner or "?", hook, f"TypeError: {hook} returned a "
                                      f"{type(result).__name__}, not a {kind.__name__}"))
            return None, errors
        return (self.winner or "?", result), errors

    def collect(self, hook: str, kind: type[T], **kwargs: object) -> tuple[list[tuple[str, T]], list[HookFailure]]:
        """:meth:`call`, keeping the items of type ``kind``; any other item is the plugin's error."""
        items, errors = self.call(hook, **kwargs)
        out: list[tuple[str, T]] = []
        for plugin, item in items:
            if isinstance(item, kind):
                out.append((plugin, item))
            else:
                errors.append(HookFailure(plugin, hook, f"TypeError: {hook} returned a {type(item).__name__}, "
                                                        f"not a {kind.__name__}"))
        return out, errors

    def analyzers(self) -> tuple[list[tuple[str, Analyzer]], list[HookFailure]]:
        from .descriptors import Analyzer

        return self.collect("model_analyze_analyzers", Analyzer)

    def op_rules(self) -> tuple[list[tuple[str, OpRule]], list[HookFailure]]:
        from .ops.registry import OpRule

        return self.collect("model_analyze_op_rules", OpRule)

    def formats(self) -> tuple[list[tuple[str, Format]], list[HookFailure]]:
        from .descriptors import Format

        return self.collect("model_analyze_formats", Format)



def _hook_names(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(h.name for h in (pm.get_hookcallers(plugin) or []))


def _entry_points() -> Iterator[metadata.EntryPoint]:
    if not may_declare_entry_points():
        return
    from importlib import metadata

    yield from sorted(metadata.entry_points(group=PROJECT), key=lambda e: e.name)


def may_declare_entry_points() -> bool:
    """False only when no installed distribution can declare a ``model_analyze`` entry point.

    ``importlib.metadata`` is the authority, but importing it (and the ``email`` package it
    parses metadata with) and reading every distribution's metadata was a third of
    ``model-analyze --help`` (issue 15, goal 4); :func:`entry_point_files` looks at the bytes
    of ``entry_points.txt`` only, and when it cannot tell, ``importlib.metadata`` decides."""
    files = entry_point_files()
    return files is None or bool(files)


def entry_point_files() -> list[str] | None:
    """Every ``entry_points.txt`` that may declare a ``model_analyze`` entry point, or None
    when that cannot be told from files (so a plugin is never missed).

    This looks where ``importlib.metadata``'s path finder looks — every
    ``*.dist-info``/``*.egg-info`` (and an ``.egg``'s ``EGG-INFO``) directly under each
    ``sys.path`` directory — and keeps the files with a section header for the group. Any
    ``sys.path`` entry that is not a plain directory (a zip), or any other finder that can
    list distributions, makes the answer None."""
    if any(callable(getattr(f, "find_distributions", None)) and f is not PathFinder for f in sys.meta_path):
        return None
    header = re.compile(rb"^\s*\[\s*" + re.escape(PROJECT.encode()) + rb"\s*\]", re.M)  # a superset of
    # importlib.metadata's (it strips the line, then takes ``[group]`` exactly)
    found: list[str] = []
    for root in sys.path:
        try:
            children = os.listdir(root or ".")
        except OSError:
            if os.path.exists(root):
                return None  # a zip (or an unreadable directory): let importlib.metadata look
            continue
        egg = root.lower().endswith(".egg")
        for child in children:
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")) or (egg and low == "egg-info"):
                path = os.path.join(root or ".", child, "entry_points.txt")
                try:
                    with open(path, "rb") as f:
                        if header.search(f.read()):
                            found.append(path)
                except OSError:
                    continue
    return found


def _load(manager: PluginManager, name: str, load: Callable[[], object], dist: str, version: str) -> None:
    """Import one plugin and register it, or record why not (never raises)."""
    try:
        plugin = load()
    except Exception as exc:
        manager.failures.append(PluginInfo(name, dist, version, error=f"{type(exc).__name__}: {exc}"))
        return
    declared = getattr(plugin, "MODEL_ANALYZE_API", None)
    refusal = api_refusal(name, declared)
    if refusal is not None:
        manager.failures.append(PluginInfo(name, dist, version, error=refusal, api=str(declared)))
        return
    try:
        manager.register(plugin, name)
    except Exception as exc:  # pluggy refuses a hookimpl that matches no spec's arguments
        manager.failures.append(PluginInfo(name, dist, version, error=f"{type(exc).__name__}: {exc}"))
        return
    manager.infos[name] = PluginInfo(name, dist, version, api=str(declared or ""))


@functools.lru_cache(maxsize=1)
def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager: :data:`DEFAULT_PLUGINS`, then installed plugins."""
    from ._version import __version__

    manager = PluginManager(_Pluggy(PROJECT), {}, [])
    manager.pm.add_hookspecs(hookspecs)
    for name, module in DEFAULT_PLUGINS:
        _load(manager, name, functools.partial(importlib.import_module, module), "model-analyze", __version__)
    for ep in _entry_points():
        if manager.pm.has_plugin(ep.name) or any(f.name == ep.name for f in manager.failures):
            continue
        dist = getattr(ep, "dist", None)
        dist_name = (dist.metadata["Name"] if dist is not None else None) or "?"  # None: no METADATA file
        dist_version = (dist.version if dist is not None else None) or "?"
        _load(manager, ep.name, ep.load, dist_name, dist_version)
    for name, info in manager.infos.items():
        info.hooks = _hook_names(manager.pm, manager.pm.get_plugin(name))
    return manager
