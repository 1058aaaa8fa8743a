"""``model-analyze plugins``: what is installed, what each plugin provides, its options.

One row per plugin (the built-ins too): distribution and version, the plugin API it was
written for, its hooks, analyzers, op rules, formats and devices, and every option of
its analyzers with type, default and help — then the plugins that failed to load (an
import error, or a plugin written for a newer plugin API), one line each.
"""

from __future__ import annotations

import click

from . import declared
from .clikit import guarded


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@guarded
def plugins(fmt: str) -> None:
    """List installed plugins: distribution, version, plugin API, hooks, what they provide and their options."""
    doc = declared.listing()
    if fmt == "json":
        import json

        click.echo(json.dumps(doc, indent=2))
        return
    click.echo("\n".join(render_text(doc)))


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
