"""What start-up imports: ``--help`` and ``plugins`` stay off the engines (issue 15, goal 4).

A property of the import graph, not a timing: each command runs in a fresh interpreter
and reports ``sys.modules`` at exit. The heavy third-party packages (onnx, numpy,
networkx, protobuf) and the analysis engine (graph, shapes, token flow, cost, attention,
renderers, the analyzers' implementations) must be imported only when a model is
analysed; the declarations (analyzers, their options and codes, the commands) are enough
to print the help and the plugin listing. The timing is benchmarks/perf.py's start-up rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from importlib.machinery import PathFinder

import pytest

RUNNER = """
import sys
sys.argv = ["model-analyze", *sys.argv[1:]]
from model_analyze.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n")
"""

THIRD_PARTY = ("onnx", "numpy", "networkx", "google.protobuf", "onnxruntime")
ENGINE = ("model_analyze.graph", "model_analyze.loader", "model_analyze.onnxproto", "model_analyze.shapes",
          "model_analyze.dims", "model_analyze.symbolic", "model_analyze.context", "model_analyze.runner",
          "model_analyze.report", "model_analyze.tokenflow", "model_analyze.cost", "model_analyze.attention",
          "model_analyze.ops.core", "model_analyze.render.text", "model_analyze.render.html",
          "model_analyze.render.sarif", "model_analyze.render.json", "model_analyze.render.markdown",
          "model_analyze.scanner", "model_analyze.verify")


def _modules(*args: str) -> set[str]:
    """What reading the plugins imports (``MODEL_ANALYZE_NO_CACHE``: a stored reading imports
    none of them; tests/test_declared.py)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed plugins only
    env["MODEL_ANALYZE_NO_CACHE"] = "1"
    p = subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    line = next(ln for ln in p.stderr.splitlines() if ln.startswith("MODULES "))
    return set(line.split()[1:])


def _under(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == r or m.startswith(r + ".") for r in roots))


@pytest.mark.parametrize("args", [("--help",), ("plugins",)], ids=["help", "plugins"])
def test_start_up_imports_no_engine(args):
    modules = _modules(*args)
    assert "model_analyze.plugins.hotspots" in modules, "the analyzers' declarations are loaded"  # the check ran
    assert _under(modules, THIRD_PARTY) == []
    assert _under(modules, ENGINE) == []
    implementations = sorted(m for m in modules if m.startswith("model_analyze.plugins.")
                             and (m.endswith("_analysis") or m.rsplit(".", 1)[-1] in ("section", "kv", "phases")))
    assert implementations == [], "analyzers' implementations are imported when they run"
    commands = {"model_analyze.reach_cmd", "model_analyze.verify_cmd", "model_analyze.rules_cmd",
                "model_analyze.scan_cmd"} | ({"model_analyze.plugins_cmd"} if args != ("plugins",) else set())
    assert sorted(commands & modules) == [], "core commands are imported when they run"


def test_lazy_commands_are_listed_with_their_own_help(cli_run):
    """The group lists each core command before importing it, with the first paragraph of
    the command's own help (so the listing cannot drift from the docstrings); once run, a
    command that takes --option has the analyzers' flags, as the eager ones do."""
    from model_analyze.commands import CORE_COMMANDS, load

    for name, summary in CORE_COMMANDS.items():
        real = load(name)
        assert real.name == name
        assert " ".join(summary.split()) == " ".join((real.help or "").partition("\n\n")[0].split()), name
    listing = cli_run("--help").stdout
    assert all(f"  {name} " in listing for name in CORE_COMMANDS)
    scan_help = cli_run("scan", "--help").stdout
    assert "--top" in scan_help and "--device" in scan_help  # structure/hotspots' and serving's flags
    assert cli_run("explain", "hs001").stdout.startswith("HS001 ")


def test_start_up_reads_entry_points_only_when_one_may_exist():
    """importlib.metadata (and the email parser it brings) is skipped when no installed
    distribution declares a model_analyze entry point; this environment has none
    (tests install example plugins with --target and PYTHONPATH, which _modules drops).
    Checked in a fresh interpreter: this one's sys.path and finders are the suite's."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = ("from importlib import metadata; from model_analyze.manager import may_declare_entry_points as m; "
             "print(bool(metadata.entry_points(group='model_analyze')), m())")
    installed, may = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env,
                                    check=True).stdout.split()
    if installed == "True":
        pytest.skip("a model_analyze entry point is installed in this environment")
    assert may == "False"
    assert "importlib.metadata" not in _modules("--help")


def _dist(root, name: str, entry_points: str) -> None:
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_entry_point_prefilter_never_misses_a_plugin(tmp_path, monkeypatch):
    """The pre-check answers False only when importlib.metadata would find nothing: a
    distribution with a [model_analyze] section, a zip on sys.path, or another finder
    that lists distributions all defer to importlib.metadata."""
    from importlib import metadata

    from model_analyze.manager import may_declare_entry_points

    metadata.entry_points()  # everything it imports, imported before sys.path is narrowed
    # A controlled path and finders: the suite's may hold anything (importing the
    # importlib_metadata backport — dask does — adds its own finder and removes the standard
    # path finder's find_distributions): the standard path finder alone lists distributions.
    monkeypatch.setattr(sys, "meta_path", [*(f for f in sys.meta_path if not hasattr(f, "find_distributions")),
                                           PathFinder])
    monkeypatch.setattr(PathFinder, "find_distributions",
                        staticmethod(metadata.MetadataPathFinder.find_distributions), raising=False)
    other = tmp_path / "other"
    other.mkdir()
    _dist(other, "unrelated", "[console_scripts]\nmodel_analyze = model_analyze.cli:main\n[model_analyzer]\nx = y\n")
    monkeypatch.setattr(sys, "path", [str(other)])
    assert not may_declare_entry_points()
    assert not metadata.entry_points(group="model_analyze")  # the oracle agrees

    plugin = tmp_path / "plugin"
    plugin.mkdir()
    _dist(plugin, "ma_plugin", "[console_scripts]\nx = y\n\n  [model_analyze]  \nmine = ma_plugin\n")
    monkeypatch.setattr(sys, "path", [str(plugin), *sys.path])
    assert may_declare_entry_points()
    assert [e.name for e in metadata.entry_points(group="model_analyze")] == ["mine"]  # the oracle agrees

    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(plugin)])
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ma_zip-1.0.dist-info/entry_points.txt", "[model_analyze]\nzipped = ma_zip\n")
        z.writestr("ma_zip-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: ma_zip\nVersion: 1.0\n")
    monkeypatch.setattr(sys, "path", [str(archive), *sys.path])
    assert may_declare_entry_points()
    assert [e.name for e in metadata.entry_points(group="model_analyze")] == ["zipped"]

    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(archive)])
    assert not may_declare_entry_points()

    class Finder:
        @staticmethod
        def find_distributions(context=None):
            return iter(())

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder()])
    assert may_declare_entry_points()
