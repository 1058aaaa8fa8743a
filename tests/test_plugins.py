"""Plugins: discovery, listing, isolation of failures, op rules, the plugin API version and analyzer
options (the example plugins of docs/plugins.md, installed as a user would: test_plugin_examples.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from onnx import TensorProto, helper

import builders
from conftest import SAMPLES
from model_analyze.hookspecs import hookimpl
from model_analyze.manager import get_plugin_manager
from model_analyze.plugin_api import Analyzer, Format, OpRule, Section
from model_analyze.report import Status
from model_analyze.runner import analyze


@pytest.fixture
def register():
    """Register plugin objects for one test, unregister afterwards."""
    pm = get_plugin_manager()
    added = []

    def add(plugin, name):
        pm.register(plugin, name)
        added.append(name)

    yield add
    for name in added:
        pm.unregister(name)


def test_plugins_command_lists_builtins(cli_run):
    result = cli_run("plugins", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["structure"]["distribution"] == "model-analyze"
    assert "model_analyze_analyzers" in by_name["structure"]["hooks"]
    assert by_name["structure"]["analyzers"] == ["structure"]
    assert {"text", "json"} <= set(by_name["core-formats"]["formats"])
    text = cli_run("plugins").stdout
    assert "structure  (model-analyze" in text


class Boom:
    @hookimpl
    def model_analyze_analyzers(self):
        def run(ctx):
            raise RuntimeError("kaboom")

        return [Analyzer("boom", "Boom", run)]


class BrokenHook:
    @hookimpl
    def model_analyze_op_rules(self):
        raise ValueError("cannot list rules")


def test_failing_analyzer_is_isolated(register, cli_run):
    register(Boom(), "boom-plugin")
    report = analyze(str(SAMPLES / "convnet.onnx"))
    boom = report.section("boom")
    assert boom.status is Status.FAILED and "kaboom" in boom.error
    assert report.section("structure").status is Status.OK
    result = cli_run(SAMPLES / "convnet.onnx")
    assert result.exit_code == 1
    assert "FAILED: RuntimeError: kaboom" in result.stdout
    assert "== Structure" in result.stdout


def test_failing_hook_is_a_finding(register):
    register(BrokenHook(), "broken-rules")
    report = analyze(str(SAMPLES / "convnet.onnx"))
    assert any(f.code == "P002" and "broken-rules" in f.message for f in report.findings)
    assert report.section("structure").status is Status.OK


def _custom_op_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Swish2", ["x"], ["s"], domain="example.com"),
             helper.make_node("Relu", ["s"], ["y"])]
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                             opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("example.com", 1)])


def test_custom_op_unknown_without_plugin_known_with_it(register):
    report = analyze(_custom_op_model())
    assert report.model.unknown_ops == {"example.com::Swish2": 1}

    class Rules:
        @hookimpl
        def model_analyze_op_rules(self):
            return [OpRule("Swish2", "example.com", shape=lambda ctx: [ctx.type(0)])]

    register(Rules(), "swish2-rules")
    from model_analyze.runner import prepare

    ctx = prepare(_custom_op_model())
    assert ctx.shapes.shape("y") is not None and len(ctx.shapes.shape("y")) == 3
    assert analyze(_custom_op_model()).model.unknown_ops == {}


def test_select_and_ignore(register, cli_run):
    class Extra:
        @hookimpl
        def model_analyze_analyzers(self):
            return [Analyzer("extra", "Extra", lambda ctx: Section("extra", "Extra", summary="hello"))]

    register(Extra(), "extra-plugin")
    out = cli_run(SAMPLES / "convnet.onnx", "--select", "extra").stdout
    assert "== Extra" in out and "== Structure" not in out
    out = cli_run(SAMPLES / "convnet.onnx", "--ignore", "extra").stdout
    assert "== Extra" not in out and "== Structure" in out


def test_plugin_that_fails_to_import_is_reported(tmp_path):
    dist = tmp_path / "badplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: badplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[model_analyze]\nbad = badplugin_missing_module\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    listing = subprocess.run([sys.executable, "-m", "model_analyze", "plugins"], env=env, capture_output=True,
                             text=True)
    assert listing.returncode == 0
    assert "bad  (badplugin 1.0)  FAILED TO LOAD: ModuleNotFoundError" in listing.stdout
    run = subprocess.run([sys.executable, "-m", "model_analyze", str(SAMPLES / "convnet.onnx")], env=env,
                         capture_output=True, text=True)
    assert run.returncode == 1 and "P001" in run.stdout and "== Structure" in run.stdout
    _ = builders  # builders fixture import keeps samples on sys.path for subprocess-free tests


# -- pluggy as designed: order, wrappers, isolation, provenance ------------------------------------
def _fmt(name):
    return Format(name, lambda report: name)


def test_hooks_are_called_through_pluggy_in_order_with_wrappers(register):
    seen = []

    class Late:
        @hookimpl(trylast=True)
        def model_analyze_formats(self):
            return [_fmt("late-fmt")]

    class Early:
        @hookimpl(tryfirst=True)
        def model_analyze_formats(self):
            return [_fmt("early-fmt")]

    class Wrap:
        @hookimpl(wrapper=True)
        def model_analyze_formats(self):
            result = yield
            seen.append([f.name for provided in result for f in provided])
            return result

    register(Late(), "late")
    register(Early(), "early")
    register(Wrap(), "wrap")
    items, errors = get_plugin_manager().formats()
    names = [f.name for _, f in items]
    assert errors == []
    assert names[0] == "early-fmt" and names[-1] == "late-fmt" and "text" in names
    assert {f.name: plugin for plugin, f in items}["early-fmt"] == "early"
    assert {f.name: plugin for plugin, f in items}["text"] == "core-formats"
    assert seen and set(seen[0]) == set(names)  # the wrapper saw every plugin's result


def _window_model():
    """x → Relu → my.domain::Window(q, k, v = r, r, r) → y; T positions of 4 features."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "T", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Window", ["r", "r", "r"], ["y"], domain="my.domain")]
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                             opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.domain", 1)])


def _claims(model):
    from model_analyze.attention import attention_layers, attention_problems
    from model_analyze.runner import AnalyzeOptions, prepare

    ctx = prepare(model, AnalyzeOptions(dims={"T": 8}))
    return attention_layers(ctx), attention_problems(ctx)


def test_attention_claims_are_firstresult_the_first_claim_wins(register):
    """``model_analyze_attention`` is pluggy's firstresult: tryfirst implementations go first, a
    None passes the node on, a raising plugin is a problem and the next one still decides."""
    from model_analyze.plugin_api import AttentionClaim

    asked = []

    class Window2:
        @hookimpl
        def model_analyze_attention(self, node, ctx):
            asked.append(node.op_type)
            return AttentionClaim(left=1, right=0) if node.op_type == "Window" else None

    class Everything:
        @hookimpl(tryfirst=True)
        def model_analyze_attention(self, node, ctx):
            return AttentionClaim(left=None, right=None, note="sees it all")

    class Declines:
        @hookimpl(tryfirst=True)
        def model_analyze_attention(self, node, ctx):
            return None

    class Raises:
        @hookimpl(tryfirst=True)
        def model_analyze_attention(self, node, ctx):
            raise RuntimeError("cannot read it")

    assert _claims(_window_model()) == ([], [])  # nobody claims: not attention
    register(Window2(), "window2")
    [layer], problems = _claims(_window_model())
    assert (layer.mask.family, layer.mask.params) == ("sliding_window", {"window": 2}) and problems == []
    assert asked == ["Window"]  # the standard-domain Relu is never offered
    for plugin, name in ((Everything(), "everything"), (Declines(), "declines"), (Raises(), "raises")):
        register(plugin, name)
    [layer], problems = _claims(_window_model())
    assert layer.mask.family == "bidirectional" and layer.mask.note == "claimed by plugin 'everything'; sees it all"
    assert problems == ["Window 'Window_1': plugin 'raises' failed to claim it: RuntimeError: cannot read it"]
    assert asked == ["Window"]  # Window2 was not asked again: a tryfirst claim came first


def test_attention_claim_wrappers_and_bad_claims(register):
    """A wrapper sees the claim and may veto it; a claim naming an input the node lacks, or
    a result that is not a claim, is listed with the attention problems, never fatal."""
    from model_analyze.plugin_api import AttentionClaim

    class BadIndex:
        @hookimpl
        def model_analyze_attention(self, node, ctx):
            return AttentionClaim(query=0, key=1, value=5)

    class Veto:
        @hookimpl(wrapper=True)
        def model_analyze_attention(self, node, ctx):
            claim = yield
            return None if node.name == "Window_1" else claim

    register(BadIndex(), "bad-index")
    [layer], problems = _claims(_window_model())
    assert layer.mask.family == "unknown"
    assert problems == ["Window 'Window_1': ValueError: plugin 'bad-index' claims input 5 as the value; the node "
                        "has no such input"]
    register(Veto(), "veto")
    assert _claims(_window_model()) == ([], [])
    get_plugin_manager().unregister("veto")
    get_plugin_manager().unregister("bad-index")

    class NotAClaim:
        @hookimpl
        def model_analyze_attention(self, node, ctx):
            return {"left": 3}

    register(NotAClaim(), "not-a-claim")
    layers, problems = _claims(_window_model())
    assert layers == [] and problems == ["Window 'Window_1': plugin 'not-a-claim' failed to claim it: TypeError: "
                                         "model_analyze_attention returned a dict, not a AttentionClaim"]


def test_a_wrong_type_answer_passes_the_node_to_the_next_plugin(register):
    """firstresult stops at the first non-None result; a result that is not a claim is no
    answer: its plugin's failure is listed once and the next implementation still decides.
    Window2's claim (left 1, right 0: the query and the key before it) is a sliding window
    of 2 keys, as test_attention_claims_are_firstresult_the_first_claim_wins derives."""
    from model_analyze.plugin_api import AttentionClaim

    asked = []

    class NotAClaim:
        @hookimpl(tryfirst=True)  # asked first, whatever pluggy's registration order
        def model_analyze_attention(self, node, ctx):
            asked.append("not-a-claim")
            return {"left": 3}

    class Window2:
        @hookimpl
        def model_analyze_attention(self, node, ctx):
            asked.append("window2")
            return AttentionClaim(left=1, right=0) if node.op_type == "Window" else None

    register(NotAClaim(), "not-a-claim")
    register(Window2(), "window2")
    [layer], problems = _claims(_window_model())
    assert asked == ["not-a-claim", "window2"]
    assert (layer.mask.family, layer.mask.params) == ("sliding_window", {"window": 2})
    assert layer.mask.note == "claimed by plugin 'window2'"
    assert problems == ["Window 'Window_1': plugin 'not-a-claim' failed to claim it: TypeError: "
                        "model_analyze_attention returned a dict, not a AttentionClaim"]


def test_one_failing_plugin_does_not_sink_the_others(register):
    class RaisesBefore:
        @hookimpl(wrapper=True)
        def model_analyze_formats(self):
            raise RuntimeError("wrapper broke before")
            yield

    class RaisesAfter:
        @hookimpl(wrapper=True)
        def model_analyze_formats(self):
            yield
            raise RuntimeError("wrapper broke after")

    class NotAList:
        @hookimpl
        def model_analyze_formats(self):
            return 42

    class WrongItem:
        @hookimpl
        def model_analyze_formats(self):
            return ["not a format", _fmt("good-fmt")]

    class Raises:
        @hookimpl
        def model_analyze_formats(self):
            raise ValueError("no formats today")

    for plugin, name in ((RaisesBefore(), "before"), (RaisesAfter(), "after"), (NotAList(), "int"),
                         (WrongItem(), "wrong"), (Raises(), "raises")):
        register(plugin, name)
    items, errors = get_plugin_manager().formats()
    names = [f.name for _, f in items]
    assert {"text", "json", "html", "good-fmt"} <= set(names)
    by_plugin = {e.plugin: e.error for e in errors}
    assert by_plugin["before"] == "RuntimeError: wrapper broke before"
    assert by_plugin["after"] == "RuntimeError: wrapper broke after"
    assert by_plugin["int"] == "TypeError: returned int, not a list"
    assert by_plugin["wrong"].startswith("TypeError: model_analyze_formats returned a str")
    assert by_plugin["raises"] == "ValueError: no formats today"


def test_builtins_are_registered_explicitly_not_by_entry_points(cli_run):
    from importlib import metadata

    from model_analyze.manager import DEFAULT_PLUGINS

    listed = json.loads(cli_run("plugins", "--format", "json").stdout)
    rows = {p["name"]: p for p in listed["plugins"]}
    for name, _module in DEFAULT_PLUGINS:
        assert rows[name]["distribution"] == "model-analyze", name
    assert not {ep.name for ep in metadata.entry_points(group="model_analyze")} & {n for n, _ in DEFAULT_PLUGINS}
    assert listed["api_version"] == "1.1"
    # the core's own subcommands came in through the commands hook, like a plugin's
    assert "model_analyze_commands" in rows["core-commands"]["hooks"]
    assert cli_run("rules").exit_code == 0 and cli_run("devices").exit_code == 0


def _fake_dist(site, dist, module, source, version="1.0"):
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[model_analyze]\n{module} = {module}\n")


def test_plugin_for_a_newer_api_is_refused_with_one_line(tmp_path):
    body = ("from model_analyze.plugin_api import Analyzer, Section, hookimpl\n"
            "MODEL_ANALYZE_API = {api!r}\n"
            "@hookimpl\n"
            "def model_analyze_analyzers():\n"
            "    return [Analyzer({name!r}, 'T', lambda ctx: Section({name!r}, 'T', summary='ran'))]\n")
    _fake_dist(tmp_path, "future-plugin", "future_plugin", body.format(api="99.0", name="future"))
    _fake_dist(tmp_path, "current-plugin", "current_plugin", body.format(api="1.0", name="current"))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    listing = subprocess.run([sys.executable, "-m", "model_analyze", "plugins"], env=env, capture_output=True,
                             text=True)
    assert listing.returncode == 0, listing.stderr
    refused = [line for line in listing.stdout.splitlines() if line.startswith("future_plugin")]
    assert refused == ["future_plugin  (future-plugin 1.0)  FAILED TO LOAD: plugin 'future_plugin' needs plugin "
                       "API 99.0, this model-analyze provides 1.1: upgrade model-analyze"]
    assert "current_plugin  (current-plugin 1.0, plugin API 1.0)" in listing.stdout
    run = subprocess.run([sys.executable, "-m", "model_analyze", str(SAMPLES / "convnet.onnx"), "--select",
                          "current,structure"], env=env, capture_output=True, text=True)
    assert run.returncode == 1 and "P001" in run.stdout and "needs plugin API 99.0" in run.stdout
    assert "== T" in run.stdout and "ran" in run.stdout and "== Structure" in run.stdout


def test_api_minor_versions_add_majors_change():
    """This core provides 1.1 (1.0 plus the attention claim): a plugin for 1.0 or 1.1 runs, one
    for 1.2 (a newer minor) or 2.0 is refused, and one for 0.9 (an older major) too."""
    from model_analyze.hookspecs import API_VERSION
    from model_analyze.manager import api_refusal

    assert API_VERSION == "1.1"
    assert api_refusal("p", "1.0") is None and api_refusal("p", "1.1") is None and api_refusal("p", None) is None
    assert api_refusal("p", "1.2") == "plugin 'p' needs plugin API 1.2, this model-analyze provides 1.1: upgrade " \
                                      "model-analyze"
    assert "needs plugin API 2.0" in api_refusal("p", "2.0")
    assert "(a new major version): the plugin needs an update" in api_refusal("p", "0.9")


# -- analyzer options ------------------------------------------------------------------------------
def _rows(stdout, analyzer, table):
    doc = json.loads(stdout)
    section = next(s for s in doc["sections"] if s["analyzer"] == analyzer)
    return len(next(t for t in section["tables"] if t["key"] == table)["rows"])


def test_option_sets_one_analyzer_and_a_flag_sets_every_analyzer(cli_run):
    model = SAMPLES / "tiny_transformer.onnx"
    plain = cli_run(model, "--format", "json").stdout
    assert _rows(plain, "structure", "ops") > 2 and _rows(plain, "hotspots", "ops") > 2
    one = cli_run(model, "--format", "json", "--option", "hotspots.top=2").stdout
    assert _rows(one, "hotspots", "ops") == 2 and _rows(one, "structure", "ops") == _rows(plain, "structure", "ops")
    both = cli_run(model, "--format", "json", "--top", "2").stdout
    assert _rows(both, "hotspots", "ops") == 2 and _rows(both, "structure", "ops") == 2
    # --option is more specific than the flag
    mixed = cli_run(model, "--format", "json", "--top", "2", "--option", "structure.top=3").stdout
    assert _rows(mixed, "hotspots", "ops") == 2 and _rows(mixed, "structure", "ops") == 3


def test_options_from_the_config_and_per_path(tmp_path, monkeypatch, cli_run):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.model-analyze]\ntop = 2\n\n[tool.model-analyze.plugins.structure]\ntop = 3\n\n'
        '[[tool.model-analyze.overrides]]\npaths = ["*.onnx"]\nplugins = { hotspots = { top = 1 } }\n')
    monkeypatch.chdir(tmp_path)
    out = cli_run(SAMPLES / "tiny_transformer.onnx", "--format", "json").stdout
    assert _rows(out, "structure", "ops") == 3 and _rows(out, "hotspots", "ops") == 1
    out = cli_run(SAMPLES / "tiny_transformer.onnx", "--format", "json", "--option", "hotspots.top=2").stdout
    assert _rows(out, "hotspots", "ops") == 2


@pytest.mark.parametrize(("args", "config", "message"), [
    (("--option", "hotspots.tpo=3"), "", "--option hotspots.tpo: unknown option of analyzer 'hotspots' — did you "
                                         "mean top? (options: top, ridge)"),
    (("--option", "hotspots.top=abc"), "", "--option hotspots.top: expected an integer from 1 to 1,000,000, "
                                           "got 'abc'"),
    (("--option", "nosuch.top=1"), "", "--option nosuch.top: no analyzer 'nosuch' takes options"),
    (("--option", "top=1"), "", "--option 'top=1': expected NAME.KEY=VALUE"),
    (("--option", "serving.batch=0"), "", "--option serving.batch: expected an integer from 1 to"),
    (("--option", "serving.device=tpu9"), "", "--device 'tpu9': unknown device"),
    ((), '[tool.model-analyze.plugins.hotspots]\ntop = "x"\n',
     "pyproject.toml: [tool.model-analyze.plugins.hotspots] top: expected an integer from 1 to 1,000,000, got 'x'"),
    ((), '[tool.model-analyze.plugins.hotspots]\nwidth = 3\n',
     "[tool.model-analyze.plugins.hotspots] width: unknown option of analyzer 'hotspots' (options: top, ridge)"),
    ((), '[tool.model-analyze.plugins.hotspot]\ntop = 3\n',
     "no analyzer 'hotspot' takes options — did you mean hotspots?"),
])
def test_bad_options_are_one_line_naming_analyzer_key_and_type(args, config, message, tmp_path, monkeypatch,
                                                                cli_run):
    if config:
        (tmp_path / "pyproject.toml").write_text(config)
    monkeypatch.chdir(tmp_path)
    r = cli_run(SAMPLES / "convnet.onnx", *args)
    assert r.exit_code == 2, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_plugins_lists_options_with_type_default_and_help(cli_run):
    doc = json.loads(cli_run("plugins", "--format", "json").stdout)
    rows = {p["name"]: p for p in doc["plugins"]}
    opts = {(o["analyzer"], o["key"]): o for o in rows["hotspots"]["options"]}
    assert opts[("hotspots", "top")] == {"analyzer": "hotspots", "key": "top", "type": "int", "default": 10,
                                         "help": "rows in the top-k tables (nodes, layers, op types)",
                                         "flag": "--top"}
    assert opts[("hotspots", "ridge")]["type"] == "float" and opts[("hotspots", "ridge")]["flag"] is None
    serving = {o["key"]: o for o in rows["serving"]["options"]}
    assert serving["kv-dtype"]["type"] == "str | None" and serving["kv-dtype"]["flag"] == "--kv-dtype"
    text = cli_run("plugins").stdout
    assert text.startswith("model-analyze 0.1.0 · plugin API 1.1")
    assert "option     hotspots.top: int = 10 (--top)" in text


def test_a_distribution_without_metadata_is_listed_as_unknown_not_none(tmp_path):
    """A .dist-info with entry points but no METADATA file (a hand-made or half-removed
    install): importlib.metadata gives no name and no version; the listing says '?'."""
    info = tmp_path / "bare-1.0.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text("[model_analyze]\nbare = bare_missing_module\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), MODEL_ANALYZE_NO_CACHE="1")
    listing = subprocess.run([sys.executable, "-m", "model_analyze", "plugins"], env=env, capture_output=True,
                             text=True)
    assert "bare  (? ?)  FAILED TO LOAD: ModuleNotFoundError" in listing.stdout, listing.stdout[-300:]
