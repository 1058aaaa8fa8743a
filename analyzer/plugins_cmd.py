"""``model-analyze plugins``: what is installed, what each plugin provides, its options.

One row per plugin (the built-ins too): distribution and version, the plugin API it was
written for, its hooks, analyzers, op rules, formats and devices, and every option of
its analyzers with type, default and help — then the plugins that failed to load (an
import error, or a plugin written for a newer plugin API), one line each.
"""

from __future__ import annotations

import json

import click

from .clikit import guarded
from .hookspecs import API_VERSION


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@guarded
def plugins(fmt: str) -> None:
    """List installed plugins: distribution, version, plugin API, hooks, what they provide and their options."""
    doc = listing()
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo("\n".join(render_text(doc)))


def listing() -> dict[str, object]:
    """The listing as one JSON-able document."""
    from ._version import __version__
    from .analyzers import available_analyzers
    from .devices import Device
    from .manager import get_plugin_manager
    from .options import catalog

    pm = get_plugin_manager()
    analyzers, _ = available_analyzers(pm)
    options = catalog(analyzers.values())
    rules, _ = pm.op_rules()
    fmts, _ = pm.formats()
    devices, _ = pm.collect("model_analyze_devices", Device)
    rows = []
    for name, info in pm.infos.items():
        mine = [a for a in analyzers.values() if a.plugin == name]
        opts = [{"analyzer": a.name, "key": s.key, "type": s.type_text, "default": s.default, "help": s.help,
                 "flag": f"--{s.key}" if s.flag else None}
                for a in mine if a.name in options.analyzers for s in options.analyzers[a.name][1]]
        rows.append({
            "name": name, "distribution": info.distribution, "version": info.version, "api": info.api or None,
            "hooks": info.hooks, "analyzers": [a.name for a in mine],
            "op_rules": [f"{r.domain + '::' if r.domain else ''}{r.op_type}" for p, r in rules if p == name],
            "formats": [f.name for p, f in fmts if p == name],
            "devices": [d.name for p, d in devices if p == name],
            "options": opts,
        })
    failed = [{"name": f.name, "distribution": f.distribution, "version": f.version, "error": f.error}
              for f in pm.failures]
    return {"model_analyze": __version__, "api_version": API_VERSION, "plugins": rows, "failed": failed}


def render_text(doc: dict[str, object]) -> list[str]:
    out = [f"model-analyze {doc['model_analyze']} · plugin API {doc['api_version']}", ""]
    for r in _rows(doc, "plugins"):
        api = f", plugin API {r['api']}" if r["api"] else ""
        out.append(f"{r['name']}  ({r['distribution']} {r['version']}{api})")
        out.append(f"    hooks:     {', '.join(_strs(r['hooks'])) or '-'}")
        for key, label in (("analyzers", "analyzers"), ("op_rules", "op rules"), ("formats", "formats"),
                           ("devices", "devices")):
            if r[key]:
                out.append(f"    {label + ':':<11}{', '.join(_strs(r[key]))}")
        for o in _rows(r, "options"):
            flag = f" ({o['flag']})" if o["flag"] else ""
            out.append(f"    option     {o['analyzer']}.{o['key']}: {o['type']} = {o['default']!r}{flag}")
            out.append(f"               {o['help']}")
    for f in _rows(doc, "failed"):
        out.append(f"{f['name']}  ({f['distribution']} {f['version']})  FAILED TO LOAD: {f['error']}")
    return out


def _rows(doc: dict[str, object], key: str) -> list[dict[str, object]]:
    value = doc.get(key)
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def _strs(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
