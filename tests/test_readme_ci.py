"""The CI snippets in the README use the real flags: every `model-analyze` command line
of the "Reviewing many models in CI" section, the pre-commit `args` and the hook
manifest's `args` parse with the installed CLI."""

from __future__ import annotations

import re
import shlex

import click
import pytest
import yaml

from conftest import ROOT
from model_analyze.cli import get_cli

SECTION = "## Reviewing many models in CI"


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    return text[start:text.index("\n## ", start + 1)]


def _blocks(lang: str) -> list[str]:
    """Fenced code blocks of the section whose info string is ``lang``."""
    out, current, info = [], None, ""
    for line in _section().splitlines():
        if line.startswith("```"):
            if current is None:
                current, info = [], line[3:].strip()
            else:
                if info == lang:
                    out.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return out


def _commands() -> list[list[str]]:
    out = []
    for block in _blocks("yaml") + _blocks(""):
        for line in block.splitlines():
            if "model-analyze " not in line or line.lstrip().startswith("#") or "pip install" in line:
                continue
            words = shlex.split(line[line.index("model-analyze "):].replace("\\n", "n"), comments=True)
            args = []
            for w in words[1:]:
                if w in ("<", "||", "&&", ">", "|"):
                    break
                args.append(w)
            out.append(args)
    return out


def _parse(args: list[str]) -> None:
    cli = get_cli()
    cmd = cli.commands[args[0]] if args and args[0] in cli.commands else cli.commands["analyze"]
    rest = args[1:] if args and args[0] in cli.commands else args
    if not any(not a.startswith("-") for a in rest[:1]) and cmd.name == "analyze":
        rest = ["model.onnx", *rest]  # the snippets feed paths through xargs
    cmd.make_context(cmd.name, list(rest), resilient_parsing=False)


def test_readme_ci_command_lines_parse():
    commands = _commands()
    assert len(commands) >= 4, commands  # GitHub Actions ×2, GitLab ×2 (plus the summary example)
    for args in commands:
        _parse(args)


def test_pre_commit_args_parse():
    (config,) = [yaml.safe_load(b) for b in _blocks("yaml") if "repos:" in b]
    hook_args = config["repos"][0]["hooks"][0]["args"]
    _parse(hook_args)
    manifest = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = manifest
    assert hook["id"] == config["repos"][0]["hooks"][0]["id"] == "model-analyze"
    assert hook["entry"] == "model-analyze" and hook["language"] == "python"
    assert re.search(hook["files"], "models/a.onnx") and not re.search(hook["files"], "a.onnx.txt")
    _parse(hook["args"])


def test_a_wrong_flag_would_be_caught():
    with pytest.raises(click.UsageError):
        _parse(["--format", "sarif", "--sarif-output", "x"])
