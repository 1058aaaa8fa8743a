"""The property every fuzz input must satisfy, shared by the atheris harness
(``fuzz_analyze.py``) and the replay test (``tests/test_fuzz_replay.py``).

``check(data)`` writes the bytes as a model file and runs the in-process entry
point the CLI runs — load, graph, shapes, every analyzer — then renders the
report in every built-in format. It must end in exactly one of two ways: a
report in which no analyzer failed, or an ``AnalyzeError`` (exit 2: one line)
whose message is one line. Anything else — an exception of another type, a
failed section (``P010``: an analyzer raised), a message spanning lines — is a
crash and propagates. Hangs and memory blow-ups are the fuzzer's ``-timeout`` and
``-rss_limit_mb``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_DIR = Path(os.environ.get("MODEL_ANALYZE_FUZZ_TMP") or tempfile.mkdtemp(prefix="ma-fuzz-",
                                                                      dir="/dev/shm" if os.path.isdir("/dev/shm")
                                                                      else None))
_FORMATS: dict | None = None


class Crash(AssertionError):
    """The analysis ended in a way no input may cause."""


def formats() -> dict:
    global _FORMATS
    if _FORMATS is None:
        from model_analyze.cli import formats as available

        _FORMATS = available()
    return _FORMATS


def check(data: bytes) -> str:
    """``analyzed`` or ``one line`` (exit 2); raises :class:`Crash` otherwise."""
    from model_analyze.errors import AnalyzeError
    from model_analyze.runner import analyze

    path = _DIR / "model.onnx"
    path.write_bytes(data)
    try:
        report = analyze(str(path))
    except AnalyzeError as exc:
        if "\n" in str(exc) or not str(exc).strip():
            raise Crash(f"error message is not one line: {str(exc)!r}") from exc
        return "one line"
    failed = report.failed_sections()
    if failed:
        raise Crash(f"analyzer {failed[0].analyzer!r} failed: {failed[0].error}")
    for name, fmt in sorted(formats().items()):
        text = fmt.render(report)
        if not isinstance(text, str):
            raise Crash(f"format {name!r} rendered {type(text).__name__}")
    return "analyzed"
