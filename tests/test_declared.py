"""The stored reading of the plugins' declarations (analyzer/declared.py).

``--help`` and ``plugins`` run on the last reading while nothing it was read from has
changed. What these tests hold it to: the output is byte for byte what reading the plugins
gives (``MODEL_ANALYZE_NO_CACHE=1`` is the oracle: it never reads nor writes the store);
a hit imports no plugin; and every change a user can make to what is installed — a plugin
installed, removed, edited, its entry points edited — is seen by the very next run. Each
run is a fresh interpreter with its own cache dir.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUNNER = """
import sys
sys.argv = ["model-analyze", *sys.argv[1:]]
from model_analyze.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n")
sys.exit(code)
"""

PLUGIN = '''\
from dataclasses import dataclass

from model_analyze.plugin_api import Analyzer, Section, hookimpl, option


@dataclass
class Options:
    depth: int = option(3, "how deep to look", flag=True, minimum=1)


@hookimpl
def model_analyze_analyzers():
    return [Analyzer("{name}", "T", lambda ctx: Section("{name}", "T", summary="ran"), options=Options)]
'''


class Run:
    """A fresh ``model-analyze`` process: its exit code, output and what it imported."""

    def __init__(self, p: subprocess.CompletedProcess[str]) -> None:
        err, _, modules = p.stderr.rpartition("\nMODULES ")
        self.code, self.out, self.err = p.returncode, p.stdout, err
        self.modules = set(modules.split())

    @property
    def hit(self) -> bool:
        """Ran on a stored reading: no plugin's module was imported."""
        return "model_analyze.plugins.hotspots" not in self.modules

    def same(self, other: Run) -> bool:
        return (self.code, self.out, self.err) == (other.code, other.out, other.err)


@pytest.fixture
def env(tmp_path):
    """The suite's environment with a cache dir of this test's own; PYTHONPATH is the test's.

    A reading is not stored while a file it was read from is younger than RACY_NS: right
    after an edit of the package or a reinstall (a developer's checkout), wait that long once."""
    import model_analyze
    from model_analyze.declared import RACY_NS, _module_files

    package = Path(model_analyze.__file__).parent
    files = [*_module_files(), *(str(p) for root in (package, package.parent / "plugins") for p in root.rglob("*.py"))]
    newest = max(os.stat(f).st_mtime_ns for f in files if os.path.exists(f))
    time.sleep(max(0.0, (newest + RACY_NS - time.time_ns()) / 1e9 + 0.05))
    out = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MODEL_ANALYZE_NO_CACHE")}
    out["MODEL_ANALYZE_CACHE_DIR"] = str(tmp_path / "cache")
    return out


def run(env: dict[str, str], *args: str, cache: bool = True) -> Run:
    env = env if cache else dict(env, MODEL_ANALYZE_NO_CACHE="1")
    return Run(subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True, text=True, env=env,
                              timeout=120))


def settle(*paths: Path) -> None:
    """Date files and directories back by a minute: a reading is stored only when what it was
    read from is older than the filesystem's timestamp granularity can blur (RACY_NS)."""
    past = time.time() - 60
    for root in paths:
        for p in [root, *root.rglob("*")]:
            os.utime(p, (past, past))


def install(env: dict[str, str], site: Path, dist: str, entry_points: str, module: str = "",
            source: str = "", settled: bool = True) -> None:
    """A distribution in ``site`` (made the test's PYTHONPATH): its .dist-info with these entry
    points and, if given, a module with this source — as pip lays them out."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    if module:
        (site / f"{module}.py").write_text(source)
    if settled:
        settle(site)
    env["PYTHONPATH"] = str(site)


def stored(env: dict[str, str]) -> list[str]:
    folder = Path(env["MODEL_ANALYZE_CACHE_DIR"]) / "declarations"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("args", [("--help",), ("-h",), (), ("plugins",), ("plugins", "--format", "json")],
                         ids=["help", "h", "none", "plugins", "plugins-json"])
def test_a_stored_reading_prints_what_reading_the_plugins_prints(env, args):
    oracle = run(env, *args, cache=False)
    assert stored(env) == [] and not oracle.hit
    first = run(env, *args)
    assert not first.hit and len(stored(env)) == 1, "a miss reads the plugins and stores the reading"
    second = run(env, *args)
    assert second.hit, "the second run reads no plugin"
    assert first.same(oracle) and second.same(oracle)
    assert oracle.out or oracle.err


def test_a_hit_imports_no_plugin_manager_nor_plugin(env):
    run(env, "--help")
    hit = run(env, "--help")
    assert hit.hit
    loaded = sorted(m for m in hit.modules if m.startswith("model_analyze.plugins") or m in (
        "model_analyze.manager", "model_analyze.options", "model_analyze.descriptors", "pluggy"))
    assert loaded == []


def test_commands_other_than_help_and_plugins_read_the_plugins(env):
    run(env, "--help")
    rules = run(env, "rules")
    assert rules.code == 0 and not rules.hit and "HS001" in rules.out


def test_a_plugin_installed_edited_and_removed_is_seen_by_the_next_run(env, tmp_path):
    site = tmp_path / "site"

    def plugin(dist: str, module: str, name: str) -> None:
        install(env, site, dist, f"[model_analyze]\n{module} = {module}\n", module, PLUGIN.format(name=name))

    def listing() -> Run:
        got = run(env, "plugins")
        assert got.same(run(env, "plugins", cache=False)), "what reading the plugins prints"
        return got

    plugin("depth-plugin", "depth_plugin", "deep")
    assert "option     deep.depth: int = 3 (--depth)" in listing().out
    again = listing()
    assert again.hit and "depth_plugin" not in again.modules and "deep.depth" in again.out
    assert "--depth DEPTH" in run(env, "--help").out  # the plugin's flag, from the stored reading

    # edited in place (an editable install): the module's size and mtime change
    module = site / "depth_plugin.py"
    module.write_text(module.read_text().replace("option(3,", "option(7,"))
    settle(site)
    edited = listing()
    assert not edited.hit and "deep.depth: int = 7" in edited.out

    # a second plugin installed: its .dist-info changes the directory's mtime
    plugin("other-plugin", "other_plugin", "other")
    both = listing()
    assert not both.hit and "other_plugin  (other-plugin 1.0)" in both.out

    # its entry points edited in place (the directory's mtime stays): the file's changes
    points = site / "other-plugin-1.0.dist-info" / "entry_points.txt"
    points.write_text("[model_analyze]\nrenamed = other_plugin\n")
    settle(site)
    renamed = listing()
    assert not renamed.hit and "renamed  (other-plugin 1.0)" in renamed.out and "other_plugin  (" not in renamed.out

    # removed
    (site / "other_plugin.py").unlink()
    for p in sorted((site / "other-plugin-1.0.dist-info").iterdir()):
        p.unlink()
    (site / "other-plugin-1.0.dist-info").rmdir()
    settle(site)
    gone = listing()
    assert not gone.hit and "renamed" not in gone.out and "deep.depth: int = 7" in gone.out
    assert listing().hit


def test_a_plugin_that_fails_to_load_is_never_stored(env, tmp_path):
    install(env, tmp_path / "site", "broken", "[model_analyze]\nbroken = broken_missing_module\n")
    for _ in range(2):
        got = run(env, "plugins")
        assert not got.hit and "broken  (broken 1.0)" in got.out and "FAILED TO LOAD: ModuleNotFoundError" in got.out
    assert stored(env) == []


def test_a_file_changed_just_now_is_not_trusted_yet(env, tmp_path):
    """A plugin written a moment ago is read, but its reading not stored (racily clean)."""
    site = tmp_path / "site"
    install(env, site, "fresh-plugin", "[model_analyze]\nfresh = fresh_plugin\n", "fresh_plugin",
            PLUGIN.format(name="fresh"), settled=False)
    assert "fresh.depth" in run(env, "plugins").out and stored(env) == []
    settle(site)
    run(env, "plugins")
    assert stored(env) != [] and run(env, "plugins").hit


@pytest.mark.parametrize("damage", ["truncated", "garbage", "other shape", "empty"])
def test_a_damaged_store_is_a_miss(env, damage):
    import marshal

    oracle = run(env, "plugins", cache=False)
    run(env, "plugins")
    [name] = stored(env)
    path = Path(env["MODEL_ANALYZE_CACHE_DIR"]) / "declarations" / name
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": os.urandom(len(data)),
                      "other shape": marshal.dumps(("a", 1, [2], {"x": None})), "empty": b""}[damage])
    got = run(env, "plugins")
    assert not got.hit and got.same(oracle)
    assert run(env, "plugins").hit, "the miss stored a good reading again"


def test_an_unwritable_cache_dir_changes_nothing(env, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env["MODEL_ANALYZE_CACHE_DIR"] = str(blocker)
    oracle = run(env, "--help", cache=False)
    got = run(env, "--help")
    assert got.same(oracle) and not got.hit and got.err == ""


def test_no_cache_neither_reads_nor_writes(env):
    run(env, "plugins")
    assert run(env, "plugins").hit
    assert not run(env, "plugins", cache=False).hit


def test_a_plugin_that_changes_an_existing_command_is_read_every_time(env, tmp_path):
    """A stored reading holds the commands' names and help only: a plugin that adds an
    option to ``analyze`` through the commands hook keeps --help reading the plugins."""
    install(env, tmp_path / "site", "tweak", "[model_analyze]\ntweak = tweak_plugin\n", "tweak_plugin",
            "import click\nfrom model_analyze.plugin_api import hookimpl\n\n\n@hookimpl\n"
            "def model_analyze_commands(cli):\n"
            "    cli.commands['analyze'].params.append(click.Option(['--tweak'], help='Added by a plugin.'))\n")
    for _ in range(2):
        got = run(env, "--help")
        assert not got.hit and "--tweak" in got.out and "Added by a plugin." in got.out
    assert stored(env) == []


STAND_IN = """
import sys
from model_analyze import declared
from model_analyze.cli import declared_cli
decl = declared.load()
assert decl is not None, "no stored reading"
declared_cli(decl)(sys.argv[1:], prog_name="model-analyze")
"""


@pytest.mark.parametrize("args", [("devices",), ("rules",)], ids=["plugin-command", "core-command"])
def test_a_stand_in_runs_the_real_command(env, args):
    """The group made from a stored reading stands in for each command by its name and help;
    running one loads it for real — the core's without the plugins, a plugin's (serving's
    ``devices``) from the loaded plugins — and prints what the command prints."""
    run(env, "--help")  # stores the reading
    live = subprocess.run([sys.executable, "-m", "model_analyze", *args], capture_output=True, text=True, env=env)
    stood = subprocess.run([sys.executable, "-c", STAND_IN, *args], capture_output=True, text=True, env=env)
    assert live.returncode == 0 and live.stdout
    assert (stood.returncode, stood.stdout, stood.stderr) == (live.returncode, live.stdout, live.stderr)
