"""Coverage-guided fuzzing of the whole analysis (atheris / libFuzzer).

    pip install atheris
    python tests/fuzz/fuzz_analyze.py WORK_CORPUS tests/fuzz/corpus -max_total_time=60 \
        -timeout=20 -rss_limit_mb=3072 -artifact_prefix=ARTIFACTS/

Every input is a candidate model file; the property checked is ``harness.check``:
a report in which no analyzer failed, or one line of error (exit 2). The seed
corpus (``tests/fuzz/corpus``, made by ``make_corpus.py``) is the samples plus small
generated models, hostile ones included; crash inputs found are kept in
``tests/fuzz/crashes`` and replayed by ``tests/test_fuzz_replay.py``. ``.ci/run``
runs it for 60 s after pytest and fails on a crash, hang or memory blow-up.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["model_analyze"]):
    import model_analyze
    import model_analyze.plugins

    for pkg in (model_analyze, model_analyze.plugins):
        for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if not mod.name.endswith("__main__"):
                importlib.import_module(mod.name)

import harness


def test_one_input(data: bytes) -> None:
    harness.check(data)


def main() -> None:
    harness.formats()  # plugin discovery once, before the first input
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
