"""The analyzers the plugins provide, and the order a run takes them in.

Apart from the runner because the command line needs the list without a model
(``--help`` names the analyzers, ``plugins`` lists them, ``--select`` is checked up
front): this module imports only descriptors, so start-up stays free of the engines.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import UsageError, did_you_mean
from .options import catalog
from .severity import Severity

if TYPE_CHECKING:
    from .descriptors import Analyzer
    from .manager import PluginManager
    from .report import Finding


def available_analyzers(pm: PluginManager) -> tuple[dict[str, Analyzer], list[Finding]]:
    """Every analyzer the plugins provide, by name, and the plugin problems found on the way
    (P001 not loaded, P002 failed or unreadable options, P003 shadowed)."""
    out: dict[str, Analyzer] = {}
    problems: list[tuple[str, Severity, str, str]] = []  # code, severity, message, source
    items, errors = pm.analyzers()
    for plugin, an in items:
        if an.name in out:
            problems.append(("P003", Severity.WARNING, f"analyzer {an.name!r} from plugin {plugin!r} shadows "
                             "another", "core"))
        an.plugin = plugin
        out[an.name] = an
    for err in errors:
        problems.append(("P002", Severity.ERROR, f"plugin {err.plugin!r} failed to list its analyzers: "
                         f"{err.error}", err.plugin))
    for name, why in catalog(out.values()).problems:
        problems.append(("P002", Severity.ERROR, f"analyzer {name!r} (plugin {out[name].plugin!r}) declares "
                         f"options the core cannot read, so they take their defaults: {why}", out[name].plugin))
    for info in pm.failures:
        problems.append(("P001", Severity.ERROR, f"plugin {info.name!r} ({info.distribution}) could not be "
                         f"loaded: {info.error}", info.name))
    if not problems:
        return out, []  # the report model is imported only when there is something to report
    from .report import Finding

    return out, [Finding(code, sev, message, source=source) for code, sev, message, source in problems]


def plan(analyzers: dict[str, Analyzer], select: Iterable[str], ignore: Iterable[str]) -> tuple[list[str], set[str]]:
    """Analyzers to run in dependency order, and which of them to show."""
    select, ignore = list(select), list(ignore)
    for name in [*select, *ignore]:
        if name not in analyzers:
            raise UsageError(f"no analyzer named {name!r}{did_you_mean(name, analyzers)} "
                             f"(available: {', '.join(sorted(analyzers))})")
    shown = set(select or analyzers) - set(ignore)
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name not in analyzers:
            return
        if name in visiting:
            raise UsageError(f"analyzers require each other in a cycle at {name!r}")
        visiting.add(name)
        for req in analyzers[name].requires:
            visit(req)
        visiting.discard(name)
        order.append(name)

    for name in sorted(shown, key=lambda n: (analyzers[n].order, n)):
        visit(name)
    return order, shown
