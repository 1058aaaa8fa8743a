"""Every hook a model-analyze plugin can implement.

Plugins are modules or objects registered under the ``model_analyze`` entry-point
group (the built-in analyzers use exactly the same route)::

    [project.entry-points.model_analyze]
    my_plugin = "my_package.my_module"

and implement any of the hooks below with :data:`hookimpl`::

    from model_analyze.hookspecs import hookimpl
    from model_analyze.plugin_api import Analyzer, Section

    @hookimpl
    def model_analyze_analyzers():
        return [Analyzer("my-check", "My check", run=my_run)]

Hooks *return* what they provide (a list), as pytest's and llm's do; the core
collects the lists from all plugins. A hook that raises is reported against its
plugin and never stops the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .devices import Device
    from .ops.registry import OpRule
    from .plugin_api import Analyzer, Format

PROJECT = "model_analyze"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def model_analyze_analyzers() -> list[Analyzer]:
    """Analyzers this plugin provides.

    Each :class:`~model_analyze.plugin_api.Analyzer` has a unique ``name`` (used by
    ``--select``/``--ignore``), a ``run(ctx) -> Section`` callable and the names of
    analyzers whose published results it reads (``requires``); the core runs them
    in dependency order and isolates failures (a raising ``run`` yields a section
    with status ``failed``).
    """


@hookspec
def model_analyze_op_rules() -> list[OpRule]:
    """Rules for operators, keyed by ``(domain, op_type)``.

    An :class:`~model_analyze.ops.OpRule` may carry any of ``shape``, ``flow``
    (token flow) and ``cost``; fields left ``None`` keep the core's rule. This is
    how a plugin teaches the engines a custom op instead of it being reported as
    unknown and treated conservatively.
    """


@hookspec
def model_analyze_formats() -> list[Format]:
    """Output formats for ``--format`` (name, file suffix, ``render(report) -> str``)."""


@hookspec
def model_analyze_commands(cli: click.Group) -> None:
    """Add subcommands to the ``model-analyze`` CLI (as llm's ``register_commands``).

    Use ``@cli.command()`` on the given group; e.g. the architecture plugin adds
    ``model-analyze compare``.
    """


@hookspec
def model_analyze_devices() -> list[Device]:
    """Devices for ``--device NAME`` (roofline lower bounds on time).

    Each :class:`~model_analyze.devices.Device` gives dense peak FLOP/s per dtype,
    memory bandwidth (bytes/s) and, optionally, memory and last-level cache sizes,
    with the public source of each figure. Bounds divide by these figures, so give
    the most the device can do (datasheet peaks), never sustained rates. The first
    plugin to claim a name or alias wins; the built-in table comes from the
    ``serving`` plugin.
    """
