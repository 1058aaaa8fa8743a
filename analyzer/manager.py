"""The plugin manager: pluggy + the ``model_analyze`` entry-point group.

We load entry points ourselves (not ``load_setuptools_entrypoints``) so that a
third-party plugin that fails to import is recorded and reported instead of
taking the whole tool down.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .hookspecs import PROJECT


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class PluginManager:
    pm: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    failures: list[PluginInfo]

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def collect(self, hook_name: str) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
        """Call ``hook_name`` on each plugin separately.

        Returns ``[(plugin_name, item)]`` and ``[(plugin_name, error)]``: one
        plugin raising does not lose the others' contributions.
        """
        items: list[tuple[str, Any]] = []
        errors: list[tuple[str, str]] = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            name = self.pm.get_name(impl.plugin) or "?"
            try:
                result = impl.function()
            except Exception as exc:  # a broken plugin must not sink the run
                errors.append((name, f"{type(exc).__name__}: {exc}"))
                continue
            for item in result or []:
                items.append((name, item))
        return items, errors


def _register_core(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
    from . import __version__
    from .render import builtin

    pm.register(builtin, name="core-formats")
    infos["core-formats"] = PluginInfo("core-formats", "model-analyze", __version__)


def _hook_names(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(h.name for h in (pm.get_hookcallers(plugin) or []))


@functools.lru_cache(maxsize=1)
def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager (built-ins + installed plugins)."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    failures: list[PluginInfo] = []
    _register_core(pm, infos)
    for ep in sorted(metadata.entry_points(group=PROJECT), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "?"
        dist_version = dist.version if dist is not None else "?"
        if pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:
            failures.append(PluginInfo(ep.name, dist_name, dist_version,
                                       error=f"{type(exc).__name__}: {exc}"))
            continue
        infos[ep.name] = PluginInfo(ep.name, dist_name, dist_version)
    for name, info in infos.items():
        plugin = pm.get_plugin(name)
        info.hooks = _hook_names(pm, plugin)
    return PluginManager(pm, infos, failures)
