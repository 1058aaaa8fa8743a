"""`.pre-commit-hooks.yaml` works as a `repo:` entry: `pre-commit try-repo` installs this
project into a fresh hook environment and runs the hook on a sample repository, offline.

To stay offline and fast, pip installs only this project into the hook environment
(``PIP_NO_DEPS``) and the hook finds onnx, numpy, click … through ``PYTHONPATH`` from the
test's own environment: what is under test is the manifest (id, entry, file filter,
language, one process for all files) and the package build, not pip's resolver.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from conftest import ROOT, SAMPLES

GIT = shutil.which("git")


def _git(cwd, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run([GIT, *args], cwd=cwd, check=True, capture_output=True, env=env)


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_pre_commit_try_repo_offline(tmp_path):
    hooks = tmp_path / "hooks"  # this project as a clean repository (the working tree, committed)
    hooks.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("analyzer", "plugins"):
        shutil.copytree(ROOT / name, hooks / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(ROOT / name, hooks / name)
    _git(hooks, "init", "-q")
    _git(hooks, "add", "-A")
    _git(hooks, "commit", "-qm", "hooks")

    sample = tmp_path / "sample"
    sample.mkdir()
    shutil.copy(SAMPLES / "convnet.onnx", sample / "convnet.onnx")
    (sample / "notes.txt").write_text("not a model: the hook's `files` filter skips it\n")
    _git(sample, "init", "-q")
    _git(sample, "add", "-A")
    _git(sample, "commit", "-qm", "sample")

    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "PIP_NO_DEPS": "1",
           "PIP_NO_BUILD_ISOLATION": "0",  # pip reads this as --no-build-isolation: setuptools from PYTHONPATH
           "PYTHONPATH": sysconfig.get_paths()["purelib"], "PRE_COMMIT_COLOR": "never"}

    def try_repo():
        return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(hooks), "model-analyze",
                               "--all-files", "--verbose"], cwd=sample, env=env, capture_output=True, text=True,
                              timeout=600)

    r = try_repo()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "model-analyze" in r.stdout and "Passed" in r.stdout
    assert "model-analyze 0.1.0 — convnet.onnx" in r.stdout  # the hook ran on the model
    assert "notes.txt" not in r.stdout

    # the sample repository's own config applies: a budget the model breaks fails the hook
    # (tiny_convnet: 11,207,296 MACs at batch 1, test_hotspots' hand count)
    (sample / "model-analyze.toml").write_text('dims = { batch = 1 }\nbudgets = { max-macs = "10M" }\n')
    r = try_repo()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Failed" in r.stdout and "BG001 MACs 11.2 M > max-macs 10 M" in r.stdout
