"""Replay every fuzz input ever kept: the seed corpus and every crash the fuzzer found
(``tests/fuzz/crashes``, one file per crash, named after the bug it found). Each must
satisfy the harness's property — a report with no failed analyzer, or one line of error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent / "fuzz"
sys.path.insert(0, str(FUZZ))

import harness  # noqa: E402

INPUTS = sorted(p for d in ("corpus", "crashes") for p in (FUZZ / d).iterdir() if p.is_file()
                and not p.name.startswith("."))


@pytest.mark.parametrize("path", INPUTS, ids=[f"{p.parent.name}/{p.name}" for p in INPUTS])
def test_fuzz_input_replays_cleanly(path):
    harness.check(path.read_bytes())


def test_corpus_is_there():
    assert len([p for p in INPUTS if p.parent.name == "corpus"]) >= 20
