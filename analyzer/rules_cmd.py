"""``model-analyze rules`` and ``model-analyze explain CODE``: the code registry on the command line.

As ``ruff rule``: every finding code with its default severity and meaning, and one
code (or every code of a prefix, ``explain BG``) with why it matters, how to fix it
and an example.
"""

from __future__ import annotations

import json

import click

from .clikit import guarded
from .codespec import ACTION_TEXT, Code, is_selector
from .errors import UsageError, did_you_mean

WIDTH = 80


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True)
@guarded
def rules(fmt: str) -> None:
    """List every finding code: default severity, source and meaning."""
    from .codes import markdown_table, registry  # the registry: every code's module, when asked

    codes = registry()
    if fmt == "json":
        click.echo(json.dumps([_as_dict(c) for c in codes.values()], indent=2, ensure_ascii=False))
        return
    if fmt == "markdown":
        click.echo(markdown_table(codes), nl=False)
        return
    for c in codes.values():
        head = f"{c.code:<6} {c.severity!s:<7} {c.name}"
        click.echo(head + (f"  [{c.source}]" if c.source != "core" else ""))
        click.echo("\n".join(_wrap(c.summary.replace("`", ""), WIDTH, initial_indent=" " * 15,
                                           subsequent_indent=" " * 15)))
    click.echo(f"\n{len(codes)} codes · `model-analyze explain CODE` for one")


def _wrap(text: str, width: int, initial_indent: str = "", subsequent_indent: str = "") -> list[str]:
    """``textwrap.wrap``, imported when a listing is printed (its regexes cost start-up)."""
    import textwrap

    return textwrap.wrap(text, width, initial_indent=initial_indent, subsequent_indent=subsequent_indent)


def _as_dict(c: Code) -> dict[str, str]:
    return {"code": c.code, "name": c.name, "severity": str(c.severity), "source": c.source, "summary": c.summary,
            "explanation": c.explanation, "fix": c.fix, "action": c.action, "example": c.example}


@click.command()
@click.argument("code")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@guarded
def explain(code: str, fmt: str) -> None:
    """Explain a finding code (or every code of a prefix, e.g. BG)."""
    from .codes import expand, registry

    codes = registry()
    sel = code.strip().upper()
    found = expand(sel) if is_selector(sel) else []
    if not found:
        raise UsageError(f"explain: no finding code {code!r}{did_you_mean(sel, list(codes))} "
                         "(list them with `model-analyze rules`)")
    if fmt == "json":
        click.echo(json.dumps([_as_dict(c) for c in found], indent=2, ensure_ascii=False))
        return
    click.echo("\n\n".join(_explain(c) for c in found))


def _explain(c: Code) -> str:
    def para(label: str, text: str) -> list[str]:
        return _wrap(f"{label}{text}", WIDTH, initial_indent="  ", subsequent_indent="  ")

    lines = [f"{c.code} {c.name} ({c.severity} by default; {c.source})", ""]
    lines += para("", c.summary.replace("`", ""))
    lines.append("")
    lines += para("Why: ", c.explanation)
    lines.append("")
    lines += para("Fix: ", c.fix.replace("`", ""))
    lines += para("Action: ", f"{c.action} ({ACTION_TEXT[c.action]})")
    lines += ["", "  Example:"]
    lines += _wrap(f"{c.severity} {c.code} {c.example}", WIDTH, initial_indent="    ",
                           subsequent_indent="      ")
    return "\n".join(lines)
