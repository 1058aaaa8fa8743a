"""Plugins: discovery, listing, isolation of failures, op rules, a real third-party package."""

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
from model_analyze.plugin_api import Analyzer, OpRule, Section
from model_analyze.report import Status
from model_analyze.runner import analyze


@pytest.fixture
def register():
    """Register plugin objects for one test, unregister afterwards."""
    pm = get_plugin_manager()
    added = []

    def add(plugin, name):
        pm.pm.register(plugin, name=name)
        pm.infos  # noqa: B018 - listing only covers entry points; fine for tests
        added.append(plugin)

    yield add
    for p in added:
        pm.pm.unregister(p)


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


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(SAMPLES / "example_plugin")], check=True, capture_output=True)
    return target


def test_third_party_package_is_discovered_and_runs(installed_example, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(installed_example))
    listing = subprocess.run([sys.executable, "-m", "model_analyze", "plugins", "--format", "json"], env=env,
                             capture_output=True, text=True, check=True)
    plugins = {p["name"]: p for p in json.loads(listing.stdout)["plugins"]}
    ex = plugins["op_allowlist"]
    assert ex["distribution"] == "model-analyze-example-plugin" and ex["version"] == "0.1.0"
    assert ex["analyzers"] == ["op-allowlist"] and ex["op_rules"] == ["example.com::Swish2"]

    # The transformer sample uses Range/LessOrEqual/Where: not on the allowlist → exit 1.
    run = subprocess.run([sys.executable, "-m", "model_analyze", str(SAMPLES / "tiny_transformer.onnx")],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    assert "X001" in run.stdout and "op Range is not supported" in run.stdout
    # The conv sample only uses allowed ops.
    run = subprocess.run([sys.executable, "-m", "model_analyze", str(SAMPLES / "convnet.onnx"),
                          "--select", "op-allowlist"], env=env, capture_output=True, text=True)
    assert run.returncode == 0 and "all ops supported" in run.stdout


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
