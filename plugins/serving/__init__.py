"""What it costs to serve: KV cache, prefill vs decode, roofline lower bounds per device.

The ``serving`` analyzer answers a pre-deployment reviewer's three questions from the
graph alone: how much memory the KV cache takes at the context served (:mod:`.kv`),
what one decode step costs next to the prefill (:mod:`.phases`, from the hotspots'
cost model), and how fast this can possibly run on a given device (:mod:`.roofline`,
devices from :mod:`.devices` and any plugin's ``model_analyze_devices`` hook). Options
(:class:`.options.ServingOptions`): ``device`` (``--device``), ``batch`` (``--batch``),
``kv-dtype`` (``--kv-dtype``). It also adds ``model-analyze devices``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from model_analyze.plugin_api import Analyzer, hookimpl
from model_analyze.plugins._docs import METRICS, data_schema

from .codes import CODES
from .options import ServingOptions

if TYPE_CHECKING:
    from model_analyze.devices import Device
    from model_analyze.plugin_api import AnalysisContext, Section


def run(ctx: AnalysisContext) -> Section:
    """The analysis (:mod:`.section`), imported on first use: the cost and attention engines stay
    out of ``--help`` and ``plugins``."""
    from .section import run as analyze

    return analyze(ctx)


@hookimpl
def model_analyze_analyzers() -> list[Analyzer]:
    return [Analyzer("serving", "Serving cost", run,
                     "KV cache, prefill vs decode, roofline lower bounds per device", order=70,
                     metrics=METRICS["serving"], data_schema=data_schema("serving"), codes=CODES,
                     options=ServingOptions)]


@hookimpl
def model_analyze_devices() -> list[Device]:
    from .devices import DEVICES

    return list(DEVICES)


@hookimpl
def model_analyze_commands(cli: click.Group) -> None:
    @cli.command("devices")
    @click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
    def devices(fmt: str) -> None:
        """List the devices --device knows: dense peaks, bandwidth, memory, source."""
        import json

        from model_analyze.devices import available

        seen: dict[str, Device] = {}
        for dev in available().values():
            seen.setdefault(dev.name, dev)
        if fmt == "json":
            click.echo(json.dumps([{"name": d.name, "label": d.label, "aliases": list(d.aliases), "peak": d.peak,
                                    "bandwidth": d.bandwidth, "memory": d.memory, "cache": d.cache,
                                    "source": d.source} for d in seen.values()], indent=2))
            return
        for d in seen.values():
            peaks = ", ".join(f"{k} {v / 1e12:g}T" for k, v in d.peak.items())
            mem = f", {d.memory / 1e9:g} GB" if d.memory else ""
            click.echo(f"{d.name:12} {d.label}: {peaks}; {d.bandwidth / 1e9:g} GB/s{mem}")
            click.echo(f"{'':12} source: {d.source}")
