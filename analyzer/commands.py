"""The core's subcommands, added through the same hook a plugin uses.

``reach``, ``verify``, ``rules``, ``explain``, ``scan`` and ``plugins`` are ordinary click commands
in their own modules; this built-in plugin adds them to the group, so the group
(:mod:`.cli`) imports none of them and none imports the group.

Each joins as a :class:`~.clikit.LazyCommand`: ``model-analyze --help`` lists a command by
its name and the first paragraph of its help, so the command's module (its options, and
what it imports) is loaded only when that command runs or shows its own help (issue 15,
goal 4). ``tests/test_startup.py`` checks that each listed paragraph is the command's own.
"""

from __future__ import annotations

import click

from .clikit import LazyCommand
from .hookspecs import hookimpl

CORE_COMMANDS: dict[str, str] = {
    "reach": "Which input positions can influence an output position.",
    "verify": "Check the static token-flow answer by running MODEL with onnxruntime.",
    "rules": "List every finding code: default severity, source and meaning.",
    "explain": "Explain a finding code (or every code of a prefix, e.g. BG).",
    "scan": "Scan many models (files, directories, globs, @list.txt, URLs) in parallel workers.",
    "plugins": "List installed plugins: distribution, version, plugin API, hooks, what they provide and their "
               "options.",
}
"""Each core command's name and the first paragraph of its help, as its module has them."""


def load(name: str) -> click.Command:
    """The command itself (its module imported now)."""
    if name == "reach":
        from .reach_cmd import reach

        return reach
    if name == "verify":
        from .verify_cmd import verify

        return verify
    if name in ("rules", "explain"):
        from .rules_cmd import explain, rules

        return rules if name == "rules" else explain
    if name == "scan":
        from .scan_cmd import scan

        return scan
    if name == "plugins":
        from .plugins_cmd import plugins

        return plugins
    raise KeyError(name)


@hookimpl
def model_analyze_commands(cli: click.Group) -> None:
    for name, summary in CORE_COMMANDS.items():
        cli.add_command(LazyCommand(name, summary, load))
