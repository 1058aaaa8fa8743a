"""The core's subcommands, added through the same hook a plugin uses.

``reach``, ``verify``, ``rules``, ``explain``, ``scan`` and ``plugins`` are ordinary click commands
in their own modules; this built-in plugin adds them to the group, so the group
(:mod:`.cli`) imports none of them and none imports the group.
"""

from __future__ import annotations

import click

from .hookspecs import hookimpl
from .plugins_cmd import plugins
from .reach_cmd import reach
from .rules_cmd import explain, rules
from .scan_cmd import scan
from .verify_cmd import verify


@hookimpl
def model_analyze_commands(cli: click.Group) -> None:
    for command in (reach, verify, rules, explain, scan, plugins):
        cli.add_command(command)
