"""The code registry: every code the source can emit is registered and documented,
`rules`/`explain` cover every code, the README table is the registry's, and ruff-like
selection (select/ignore/extend-select of codes and prefixes, severity overrides)."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT, SAMPLES, shared_model
from model_analyze.codes import CODE_RE, builtin, markdown_table, matches, registry
from model_analyze.policy import Policy
from model_analyze.report import Finding, Severity

SOURCES = [ROOT / "analyzer", ROOT / "plugins", ROOT / "samples" / "example_plugin" / "ma_example_plugin.py"]
LITERAL = re.compile(r"""["']([A-Z]{1,4}[0-9]{3})["']""")


def _source_codes() -> dict[str, str]:
    """Every quoted code literal in the shipped source (emitting sites and registrations)."""
    out: dict[str, str] = {}
    for root in SOURCES:
        for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
            for code in LITERAL.findall(path.read_text()):
                out.setdefault(code, str(path.relative_to(ROOT)))
    return out


def _example_plugin_codes() -> set[str]:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("ma_example_plugin", SOURCES[2])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return {c.code for c in module.CODES}


def test_every_code_in_the_source_is_registered_and_documented():
    codes = {**registry()}
    example = _example_plugin_codes()
    for code, where in _source_codes().items():
        if code in example:
            continue  # a third-party plugin's code: declared in its own CODES (checked below)
        assert code in codes, (f"{code} appears in {where} but is not registered: declare it in the analyzer's "
                               "CODES (Analyzer(codes=...)) or, for core findings, in analyzer/codes.py CORE")
    assert "X001" in example
    for c in codes.values():
        assert CODE_RE.match(c.code)
        for field in ("name", "summary", "explanation", "fix", "example"):
            assert getattr(c, field).strip(), (c.code, field)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", c.name), c.name


def test_codes_emitted_by_the_suite_are_registered(emitted_codes):
    """The conftest records every code any analysis of this session emitted (all the suite's
    models); this runs last alphabetically among the registry tests but checks what ran so far,
    and the session hook checks the rest at the end."""
    missing = set(emitted_codes) - set(registry())
    assert not missing, f"emitted but not registered: {sorted(missing)}"


def test_rules_and_explain_cover_every_code(cli_run):
    codes = registry()
    listing = cli_run("rules").stdout
    as_json = json.loads(cli_run("rules", "--format", "json").stdout)
    assert [c["code"] for c in as_json] == list(codes)
    for code, c in codes.items():
        assert re.search(rf"^{code} +{c.severity} +{c.name}", listing, re.M), code
        text = cli_run("explain", code.lower()).stdout
        assert text.startswith(f"{code} {c.name} ({c.severity} by default")
        assert "Why: " in text and "Fix: " in text and f"Action: {c.action}" in text and "Example:" in text
    prefix = cli_run("explain", "BG").stdout
    assert all(c in prefix for c in codes if c.startswith("BG"))


def test_readme_table_is_generated_from_the_registry():
    text = (ROOT / "README.md").read_text()
    start, end = text.index("<!-- codes:start -->\n"), text.index("<!-- codes:end -->")
    assert text[start + len("<!-- codes:start -->\n"):end] == markdown_table(builtin()), (
        "README's finding-code table is out of date: regenerate it with "
        "`model-analyze rules --format markdown` (built-in codes only)")


@pytest.mark.parametrize(("selector", "code", "hit"), [
    ("AT", "AT030", True), ("AT0", "AT030", True), ("AT03", "AT030", True), ("AT030", "AT030", True),
    ("AT1", "AT030", False), ("A", "AT030", False), ("A", "AR001", False), ("B", "BG001", False),
    ("BG", "BG001", True), ("L", "L011", True), ("L01", "L011", True),
])
def test_selector_matching(selector, code, hit):
    assert matches(selector, code) is hit


def test_policy_most_specific_wins_and_ignore_wins_ties():
    f = lambda code: Finding(code, Severity.WARNING, "x")  # noqa: E731
    p = Policy(select=("AT",), ignore=("AT03",))
    assert [c for c in ("AT001", "AT030", "HS002") if p.enabled(c)] == ["AT001"]
    p = Policy(select=("AT030",), ignore=("AT",))  # more specific select beats a broader ignore
    assert p.enabled("AT030") and not p.enabled("AT001")
    p = Policy(select=("AT",), ignore=("AT",))
    assert not p.enabled("AT001")
    p = Policy(extend=("HS002",))  # no code in select: every code, extend adds nothing new
    assert p.enabled("AR001") and p.enabled("HS002")
    p = Policy(select=("AT",), extend=("HS002",))
    assert p.enabled("HS002") and not p.enabled("HS001")
    p = Policy(severity={"AT": Severity.INFO, "AT030": Severity.ERROR})
    assert p.grade(f("AT030")) is Severity.ERROR and p.grade(f("AT001")) is Severity.INFO
    assert p.grade(f("HS002")) is Severity.WARNING


def test_code_selection_and_severity_on_a_model(cli_run):
    """tiny-mistral-swa at seq 40: window 8, 2 layers → reach 2·(8−1)+1 = 15 < 40 (models README),
    so AT030 is a warning at this bound length."""
    model = shared_model("tiny-mistral-swa.onnx")

    def codes(*args):
        r = cli_run(model, "--seq-len", "40", "--format", "json", *args)
        data = json.loads(r.stdout)
        found = [(f["code"], f["severity"]) for f in data["findings"]]
        found += [(f["code"], f["severity"]) for s in data["sections"] for f in s["findings"]]
        return r.exit_code, found, [s["analyzer"] for s in data["sections"]]

    code, found, _ = codes()
    assert ("AT030", "warning") in found and code == 0
    code, found, _ = codes("--severity", "AT030=error")
    assert ("AT030", "error") in found and code == 1
    code, found, _ = codes("--ignore", "AT030")
    assert "AT030" not in {c for c, _ in found}
    code, found, sections = codes("--select", "attention,AT")
    assert sections == ["attention"] and found and all(c.startswith("AT") for c, _ in found)
    code, found, sections = codes("--select", "attention", "--extend-select", "hotspots")
    assert sections == ["attention", "hotspots"]


def test_config_selection_names_file_and_key(tmp_path, monkeypatch, cli_run):
    (tmp_path / "model-analyze.toml").write_text('[[overrides]]\npaths = ["*.onnx"]\nignore = ["HS0002"]\n')
    monkeypatch.chdir(tmp_path)
    r = cli_run(SAMPLES / "convnet.onnx")
    assert r.exit_code == 2
    assert "model-analyze.toml: overrides[1] ignore: no analyzer or finding code 'HS0002'" in r.stderr
