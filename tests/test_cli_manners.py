"""CLI manners: every usage error on one line for every subcommand, did-you-mean for
commands, analyzers, codes and dims, the analysis options in `--help`, `--debug` that
keeps exit codes, and output write errors as one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import SAMPLES

CONVNET = str(SAMPLES / "convnet.onnx")
TRANSFORMER = str(SAMPLES / "tiny_transformer.onnx")


def _one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("model-analyze: error: "), lines[0]
    return lines[0].removeprefix("model-analyze: error: ")


# Issue 18 item 16: click printed four lines (Usage / Try / blank / Error) for each.
USAGE = [
    ((CONVNET, "--seq-len", "abc"), "--seq-len: 'abc' is not an integer"),
    ((CONVNET, "--top", "abc"), "--top: 'abc' is not an integer"),
    ((CONVNET, "--top", "0"), "--top: 0 is not in the range 1<=x<=1000000"),
    ((CONVNET, "--fail-on", "bad"), "--fail-on: 'bad' is not one of 'info', 'warning', 'error', 'never'"),
    ((CONVNET, "-o", "/tmp"), "-o /tmp: is a directory"),
    ((CONVNET, "--bogus"), "no such option --bogus"),
    ((CONVNET, "--formt", "json"), "no such option --formt — did you mean --format?"),
    (("reach",), "reach: missing argument 'MODEL'"),
    (("reach", CONVNET, "--at", "x"), "reach: --at: 'x' is not an integer"),
    (("verify", CONVNET, "--seeds", "0"), "verify: --seeds: 0 is not in the range"),
    (("compare", CONVNET), "compare: missing argument 'MODEL_B'"),
    (("compare", CONVNET, CONVNET, "--fail-on", "x"), "compare: --fail-on: 'x' is not one of"),
    (("plugins", "--format", "yaml"), "plugins: --format: 'yaml' is not one of 'text', 'json'"),
    (("explain",), "explain: missing argument 'CODE'"),
    (("rules", "--nope"), "rules: no such option --nope"),
    (("comapre", "a.onnx", "b.onnx"), "no such command 'comapre' — did you mean compare?"),
    (("explian", "AT030"), "no such command 'explian' — did you mean explain?"),
    ((CONVNET, "--select", "atention"), "--select: no analyzer or finding code 'atention' — did you mean attention?"),
    ((CONVNET, "--ignore", "AT03O"), "--ignore: no analyzer or finding code 'AT03O' — did you mean AT030?"),
    ((CONVNET, "--severity", "HS02=error"), "no finding code 'HS02'"),
    ((CONVNET, "--format", "htm"), "--format: unknown format 'htm' — did you mean html?"),
    ((TRANSFORMER, "--dim", "sqe=8"), "--dim sqe: the model has no dim 'sqe' — did you mean seq?"),
    (("explain", "AT03O"), "explain: no finding code 'AT03O' — did you mean AT030?"),
    ((CONVNET, "--budget", "max-mac=1G"), "did you mean max-macs?"),
    ((CONVNET, "--baseline", "/nonexistent/b.json"), "--baseline /nonexistent/b.json: no such file"),
]


@pytest.mark.parametrize(("args", "message"), USAGE, ids=[" ".join(a[-2:]) for a, _ in USAGE])
def test_usage_errors_are_one_line_exit_2(args, message, cli_run):
    r = cli_run(*args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert message in _one_line(r)
    assert r.stdout == ""


def test_help_shows_analysis_options_formats_and_analyzers(cli_run):
    text = cli_run("--help").stdout
    analysis = text[text.index("Analysis options"):text.index("Commands:")]
    for option in ("--dim", "--seq-len", "--format", "--select", "--fail-on", "--budget", "--baseline",
                   "--write-baseline", "--config", "--quiet"):
        assert option in analysis, option
    flat = " ".join(analysis.split())
    for fmt in ("text", "json", "sarif", "markdown", "html"):  # every registered format, html included
        assert fmt in flat[flat.index("--format"):flat.index("-o, --output")]
    for analyzer in ("structure", "receptive-field", "attention", "hotspots", "architecture"):
        assert analyzer in flat[flat.index("--select"):flat.index("--ignore")]
    for command in ("compare", "reach", "verify", "rules", "explain", "plugins"):
        assert f"  {command} " in text


def test_plugin_format_is_listed_in_help(cli_run, monkeypatch):
    """`--format` help is computed when shown: a format a plugin registers appears."""
    from model_analyze import cli as cli_module
    from model_analyze.plugin_api import Format

    real = cli_module.formats
    monkeypatch.setattr(cli_module, "formats", lambda: {**real(), "yaml": Format("yaml", str, ".yaml")})
    flat = " ".join(cli_run("--help").stdout.split())
    assert "yaml" in flat[flat.index("--format"):flat.index("-o, --output")]


def _invoke(*args: str, env: dict[str, str] | None = None):
    from click.testing import CliRunner

    from model_analyze.cli import get_cli

    return CliRunner().invoke(get_cli(), list(args), env=env, catch_exceptions=False)


def test_debug_keeps_exit_codes_and_env_only_true_ish():
    # a usage error stays exit 2 with --debug (the traceback is extra, the last line the error)
    r = _invoke(CONVNET, "--dim", "nope=1", "--debug")
    assert r.exit_code == 2 and "Traceback" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("model-analyze: error: --dim nope")
    r = _invoke(CONVNET, "--seq-len", "abc", "--debug")
    assert r.exit_code == 2 and r.stderr.strip().splitlines()[-1].endswith("--seq-len: 'abc' is not an integer")
    for off in ("0", "false", "", "no", "off"):
        r = _invoke(CONVNET, "--dim", "nope=1", env={"MODEL_ANALYZE_DEBUG": off})
        assert r.exit_code == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, off
    for on in ("1", "true", "YES"):
        r = _invoke(CONVNET, "--dim", "nope=1", env={"MODEL_ANALYZE_DEBUG": on})
        assert r.exit_code == 2 and "Traceback" in r.stderr, on


def test_full_disk_is_one_line():
    """stdout on a full disk: one line and exit 2, not an OSError traceback at exit."""
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full is Linux-only")
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "model_analyze", CONVNET, "--select", "structure"],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == "model-analyze: error: cannot write the report to stdout: No space left on device"
