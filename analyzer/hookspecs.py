"""Every hook a model-analyze plugin can implement.

Plugins are modules (or objects) registered under the ``model_analyze`` entry-point
group; the built-in analyzers implement the same hooks (see ``manager.DEFAULT_PLUGINS``)::

    [project.entry-points.model_analyze]
    my_plugin = "my_package.my_module"

and implement any of the hooks below with :data:`hookimpl` (re-exported by
``model_analyze.plugin_api``)::

    from model_analyze.plugin_api import Analyzer, Section, hookimpl

    MODEL_ANALYZE_API = "1.0"     # the plugin API this plugin is written for

    @hookimpl
    def model_analyze_analyzers() -> list[Analyzer]:
        return [Analyzer("my-check", "My check", run=my_run)]

Hooks *return* what they provide (a list), as pytest's and llm's do; the core calls
each through pluggy (``pm.hook.<name>()``) and collects the lists from all plugins,
so ``hookimpl(tryfirst=True)``/``trylast`` order them and ``hookimpl(wrapper=True)``
wraps the others. One hook is pluggy's ``firstresult`` instead: a plugin claiming a
node as attention (:func:`model_analyze_attention`), where the first claim wins. A hook
that raises is reported against its plugin and never stops the others.
docs/plugins.md is the guide; a test checks each hook here is documented there and
implemented by one of its example plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .context import AnalysisContext
    from .descriptors import Analyzer, AttentionClaim, Format
    from .devices import Device
    from .graph import Node
    from .ops.registry import OpRule

PROJECT = "model_analyze"
API_VERSION = "1.1"
"""The plugin API this core provides (``MAJOR.MINOR``). A plugin states the one it is written
for as ``MODEL_ANALYZE_API`` in its module; a newer minor, or another major, is refused
with one line (``model-analyze plugins`` lists it as failed to load). Minor versions add
to the API; a major version changes it.

- 1.0: analyzers (with options), op rules, formats, commands, devices.
- 1.1: :func:`model_analyze_attention` and ``AttentionClaim`` (a plugin written for 1.1
  would silently lose its claims on a 1.0 core, hence the new minor)."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a plugin's hook implementation (``@hookimpl``, ``@hookimpl(tryfirst=True)``…)."""


@hookspec
def model_analyze_analyzers() -> list[Analyzer]:
    """Analyzers this plugin provides.

    Each :class:`~model_analyze.plugin_api.Analyzer` has a unique ``name`` (used by
    ``--select``/``--ignore`` and as the NAME of ``[tool.model-analyze.plugins.NAME]``
    and ``--option NAME.KEY=VALUE``), a ``run(ctx) -> Section`` callable, the finding
    codes it emits, its options (a dataclass) and the names of analyzers whose published
    results it reads (``requires``); the core runs them in dependency order and isolates
    failures (a raising ``run`` yields a section with status ``failed``).
    """


@hookspec
def model_analyze_op_rules() -> list[OpRule]:
    """Rules for operators, keyed by ``(domain, op_type)``.

    An :class:`~model_analyze.plugin_api.OpRule` may carry any of ``shape``, ``flow``
    (token flow) and ``cost``; fields left ``None`` keep the core's rule. This is
    how a plugin teaches the engines a custom op instead of it being reported as
    unknown (U001) and treated conservatively.
    """


@hookspec
def model_analyze_formats() -> list[Format]:
    """Output formats for ``--format`` (name, file suffix, ``render(report) -> str``)."""


@hookspec
def model_analyze_commands(cli: click.Group) -> None:
    """Add subcommands to the ``model-analyze`` CLI (as llm's ``register_commands``).

    Use ``@cli.command()`` on the given group; the core's own ``reach``, ``verify``,
    ``rules`` and ``explain`` are added this way, the architecture plugin adds
    ``compare`` and the serving plugin ``devices``. Add commands only: ``--help`` lists
    them from a stored reading (:mod:`model_analyze.declared`: name, help, short help,
    hidden, deprecated), and a plugin that changes the group's or an existing command's
    options makes every ``--help`` read the plugins afresh.
    """


@hookspec
def model_analyze_devices() -> list[Device]:
    """Devices for ``--device NAME`` (roofline lower bounds on time).

    Each :class:`~model_analyze.plugin_api.Device` gives dense peak FLOP/s per dtype,
    memory bandwidth (bytes/s) and, optionally, memory and last-level cache sizes,
    with the public source of each figure. Bounds divide by these figures, so give
    the most the device can do (datasheet peaks), never sustained rates. The first
    plugin to claim a name or alias wins; the built-in table comes from the
    ``serving`` plugin.
    """


@hookspec(firstresult=True)
def model_analyze_attention(node: Node, ctx: AnalysisContext) -> AttentionClaim | None:
    """Claim ``node`` — a node of a non-standard domain (a custom op, or an onnxruntime
    contrib op the core reads its own way) — as a fused attention layer.

    The first plugin to return an :class:`~model_analyze.plugin_api.AttentionClaim`
    wins (pluggy's ``firstresult``: ``hookimpl(tryfirst=True)`` to go before others);
    return ``None`` for nodes that are not yours. A claimed node is read as the claim
    says instead of by the core's own reader; a claim that does not fit the node (an
    input index it lacks) and a hook that raises are listed with the attention
    section's problems, never fatal; a hook that raises or returns something other than a
    claim is no answer, and the next plugin is asked. Called once per node of a non-standard domain,
    only when some plugin implements it.
    """
