"""The configuration: schema validation (one line naming file, key and expected type),
per-path overrides, globs and quantities — plus property tests: no config file and no
command line yields a traceback or an exit code other than 0, 1 or 2."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SAMPLES
from model_analyze.config import ConfigError, glob_match, load_config, parse_config
from model_analyze.units import parse_fraction, parse_quantity

CONVNET = SAMPLES / "convnet.onnx"


def _write(tmp_path, body: str | bytes, name: str = "pyproject.toml"):
    path = tmp_path / name
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body)
    return path


# Issue 18 item 14: each of these was an internal error or silently accepted.
BAD = [
    ('top = "abc"', "top: expected an integer from 1 to 1,000,000, got 'abc'"),
    ('seq-len = "x"', "seq-len: expected an integer from 1 to 134,217,728, got 'x'"),
    ('tool = "x"', "tool: unknown key"),
    ("select = [1, 2]", "select: expected a list of non-empty strings, got [1, 2]"),
    ("ignore = 5", "ignore: expected a list of non-empty strings, got 5"),
    ('format = ["json"]', "format: expected a non-empty string, got ['json']"),
    ("top = inf", "top: expected an integer from 1 to 1,000,000, got inf"),
    ("top = 1.5", "top: expected an integer from 1 to 1,000,000, got 1.5"),
    ("seq-len = true", "seq-len: expected an integer from 1 to 134,217,728, got True"),
    ("seq-len = 1e30", "seq-len: expected an integer from 1 to 134,217,728, got 1e+30"),
    ("seq-len = 0", "seq-len: expected an integer from 1 to 134,217,728, got 0"),
    ('fail-on = "warn"', 'fail-on: expected one of "info", "warning", "error", "never", got \'warn\''),
    ('dims = { seq = "4096" }', "dims: expected a table of integers from 0 to 134,217,728; 'seq': expected an "
                                "integer from 0 to 134,217,728, got '4096'"),
    ("dims = [1]", "dims: expected a table of integers"),
    ('select = "attention"', 'select: expected a list of strings (write ["attention"])'),
    ('budgets = { max-macs = "40 apples" }', "budgets: expected max-macs: a non-negative number or a string like"),
    ('budgets = { max-params = "7B" }', "'B' is for bytes; write 7G"),
    ('budgets = { max-mac = "40G" }', "did you mean max-macs?"),
    ('budgets = { require-coverage = "yes" }', "require-coverage: true or false"),
    ('severity = { AT030 = "fatal" }', "severity: expected a table of"),
    ("fail_on = 'info'", "fail_on: unknown key — did you mean fail-on?"),
    ('overrides = "x"', "overrides: expected an array of tables"),
    ("[[tool.model-analyze.overrides]]\nseq-len = 4", "overrides[1]: missing key paths"),
    ('[[tool.model-analyze.overrides]]\npaths = []', "overrides[1] paths: expected at least one glob"),
    ('[[tool.model-analyze.overrides]]\npaths = ["a"]\nformat = "json"',
     "overrides[1] format: only allowed in the global table"),
    ('[[tool.model-analyze.overrides]]\npaths = ["a"]\ntop = -1', "overrides[1] top: expected an integer"),
]


@pytest.mark.parametrize(("body", "message"), BAD, ids=[b.split("\n")[-1][:30] for b, _ in BAD])
def test_invalid_config_is_one_line_naming_file_key_and_type(body, message, tmp_path, monkeypatch, cli_run):
    head = "" if body.startswith("[[") else "[tool.model-analyze]\n"
    path = _write(tmp_path, head + body + "\n")
    monkeypatch.chdir(tmp_path)
    r = cli_run(CONVNET)
    assert r.exit_code == 2, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"model-analyze: error: {path}: [tool.model-analyze]")
    assert message in lines[0]
    assert r.stdout == ""


@pytest.mark.parametrize(("raw", "problem"), [
    (b"[tool.model-analyze]\ntop = 3\n# caf\xe9\n",  # 21 + 8 + 5 bytes before é
     "not valid UTF-8 (byte 0xe9 at offset 34)"),
    (b"[tool.model-analyze\n", "invalid TOML"),
    (b"[tool.model-analyze]\ntop = 1\ntop = 2\n", "invalid TOML"),
])
def test_unreadable_config_file(raw, problem, tmp_path, monkeypatch, cli_run):
    path = _write(tmp_path, raw)
    monkeypatch.chdir(tmp_path)
    r = cli_run(CONVNET)
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and f"{path}: {problem}" in r.stderr


def test_model_analyze_toml_has_top_level_keys_and_wins_over_pyproject(tmp_path, monkeypatch, cli_run):
    _write(tmp_path, '[tool.model-analyze]\nformat = "json"\n')
    _write(tmp_path, 'format = "markdown"\n', "model-analyze.toml")
    monkeypatch.chdir(tmp_path)
    assert cli_run(CONVNET, "--select", "structure").stdout.startswith("# model-analyze report:")
    r = cli_run(CONVNET, "--select", "structure", "--config", tmp_path / "pyproject.toml")
    assert r.stdout.startswith("{")
    assert cli_run(CONVNET, "--select", "structure", "--isolated").stdout.startswith("model-analyze ")
    r = cli_run(CONVNET, "--config", tmp_path / "nope.toml")
    assert r.exit_code == 2 and "--config" in r.stderr and "no such file" in r.stderr


def test_pyproject_without_our_table_is_not_our_config(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    _write(tmp_path, '[tool.model-analyze]\ntop = 3\n')
    _write(tmp_path / "sub", '[project]\nname = "x"\n')
    monkeypatch.chdir(tmp_path / "sub")
    assert load_config().get("top") == 3


def test_overrides_apply_in_order_and_merge_tables(tmp_path):
    cfg = parse_config({"tool": {"model-analyze": {
        "dims": {"batch": 1}, "ignore": ["AR001"], "seq-len": 128, "budgets": {"max-params": "1M"},
        "overrides": [
            {"paths": ["llm/*.onnx"], "seq-len": 64, "dims": {"past": 0}, "ignore": ["AR003"],
             "budgets": {"max-macs": "10M"}},
            {"paths": ["**/big-*.onnx"], "budgets": {"max-params": "2G"}},
        ]}}}, str(tmp_path / "pyproject.toml"), top_level=False)
    values, applied = cfg.for_model(str(tmp_path / "llm" / "big-llama.onnx"))
    assert applied == ["pyproject.toml overrides[1]", "pyproject.toml overrides[2]"]
    assert values["seq-len"] == 64  # scalars replace
    assert values["dims"] == {"batch": 1, "past": 0}  # tables merge
    assert values["ignore"] == ["AR001", "AR003"]  # ignore adds, like per-file-ignores
    assert values["budgets"] == {"max-params": 2 * 10**9, "max-macs": 10 * 10**6}
    values, applied = cfg.for_model(str(tmp_path / "cnn" / "resnet.onnx"))
    assert applied == [] and values["seq-len"] == 128 and values["budgets"] == {"max-params": 10**6}
    # the global table is not changed by an override that applied to another model
    assert cfg.values["dims"] == {"batch": 1}


@pytest.mark.parametrize(("pattern", "path", "hit"), [
    ("llm/*.onnx", "llm/a.onnx", True),
    ("llm/*.onnx", "llm/sub/a.onnx", False),  # * stays in one directory
    ("llm/**/*.onnx", "llm/sub/a.onnx", True),
    ("llm/**/*.onnx", "llm/a.onnx", True),  # ** matches zero directories too
    ("*.onnx", "deep/down/a.onnx", True),  # no '/': the file name anywhere
    ("big-?.onnx", "x/big-1.onnx", True),
    ("big-[0-9].onnx", "big-x.onnx", False),
    ("models/", "models/a.onnx", True),  # a directory: everything below it
    ("./llm/a.onnx", "llm/a.onnx", True),
])
def test_glob_match(pattern, path, hit):
    assert glob_match(pattern, path) is hit


@pytest.mark.parametrize(("value", "unit", "expected"), [
    ("40G", "", 40 * 10**9), ("1.5T", "", 1_500_000_000_000), ("8Ki", "", 8192), ("32K", "", 32_000),
    ("4GiB", "B", 4 * 2**30), ("512MB", "B", 512 * 10**6), ("100B", "B", 100), (8192, "", 8192),
    (2.5e9, "", 2_500_000_000), ("7e9", "", 7 * 10**9), (" 12 k ", "", 12_000),
])
def test_quantities(value, unit, expected):
    assert parse_quantity(value, unit=unit) == expected


@pytest.mark.parametrize("value", ["7B", "-1", "1e31", "G", "", "4 apples", True, None, float("nan"), [1]])
def test_bad_quantities(value):
    with pytest.raises(ValueError):
        parse_quantity(value)


def test_fractions():
    assert parse_fraction("1%") == 0.01 and parse_fraction(0.05) == 0.05 and parse_fraction("2.5 %") == 0.025
    for bad in ("x", -0.1, True, "1001%"):
        with pytest.raises(ValueError):
            parse_fraction(bad)


# -- property tests -----------------------------------------------------------------------
_keys = st.sampled_from(["select", "ignore", "extend-select", "severity", "fail-on", "format", "top", "seq-len",
                         "dims", "input-shapes", "budgets", "baseline-tolerance", "exclude", "overrides",
                         "paths", "bogus"])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                     st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                       max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=5))
def test_config_loader_never_crashes(table):
    """Any TOML-shaped table either validates or raises ConfigError (a UsageError: exit 2)."""
    table = {k: v for k, v in table.items() if v is not None}
    try:
        parse_config({"tool": {"model-analyze": table}}, "/x/pyproject.toml", top_level=False)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("/x/pyproject.toml: [tool.model-analyze]")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_config_file_bytes_never_crash(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cfg") / "model-analyze.toml"
    path.write_bytes(raw)
    try:
        load_config(explicit=str(path))
    except ConfigError as exc:
        assert "\n" not in str(exc)


_option = st.sampled_from(["--seq-len", "--top", "--fail-on", "--format", "--dim", "--input-shape", "--select",
                           "--ignore", "--extend-select", "--severity", "--budget", "--baseline-tolerance", "-o",
                           "--bogus", "--sarif-uri-base-id"])
_word = st.one_of(st.text(string.ascii_letters + string.digits + "=,.-_%:*/", max_size=10),
                  st.integers(-10**20, 10**20).map(str))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_option, _word), max_size=3),
       st.sampled_from(["", "reach", "verify", "compare", "explain", "rules", "plugins", "comapre"]))
def test_cli_parsers_never_crash(tmp_path, pairs, command):
    """Whatever the options, the exit code is 0, 1 or 2 and an error is one line. The
    model is a path that does not exist, so a parse that succeeds ends at the loader
    (exit 2) — the parsers, not the analysis, are under test."""
    from click.testing import CliRunner

    from model_analyze.cli import get_cli

    args = [command] if command else []
    args += [str(tmp_path / "missing.onnx")] * (2 if command == "compare" else 1 if command != "rules" else 0)
    for opt, value in pairs:
        args += [opt, value]
    result = CliRunner().invoke(get_cli(), args, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2), (args, result.output)
    err = result.stderr.strip()
    if "model-analyze: error:" in err:
        assert len(err.splitlines()) == 1, err
