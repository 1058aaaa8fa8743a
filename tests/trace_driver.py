"""Runs ``model-analyze`` and ``model-analyze verify`` on every case of a JSON
spec in this one process (the open-tracing test runs it under strace).

Before each run it tries to open ``/model-analyze-trace-marker/<run>`` — a
path that cannot exist — so the trace can be cut into one segment per run. The
``control`` run opens a file of the forbidden directory on purpose: the test
checks its own checker sees it. onnxruntime is imported before the first
marker (its import opens files of its own, whatever the model). Prints
{run: [exit code, stderr, loader finding codes]} as JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys

MARKER = "/model-analyze-trace-marker/"


def mark(run: str) -> None:
    with contextlib.suppress(OSError):
        os.close(os.open(MARKER + run, os.O_RDONLY))


def main() -> None:
    spec = json.loads(sys.argv[1])
    # Importing onnxruntime opens its own files (a telemetry database under ~/.cache,
    # container probes) whatever the model: done here, before the first marker.
    import onnxruntime  # noqa: F401

    from model_analyze.cli import get_cli

    cli = get_cli()
    results: dict[str, list] = {}
    for run, args in spec["runs"].items():
        mark(run)
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main(args, prog_name="model-analyze", standalone_mode=False)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except Exception as exc:  # click usage errors (standalone_mode=False) and crashes
                code = 99
                err.write(f"{type(exc).__name__}: {exc}\n")
        codes = sorted(set(re.findall(r"\b(L0\d\d)\b", out.getvalue())))
        results[run] = [code, err.getvalue(), codes]
    mark("control")
    with open(spec["control"], "rb") as f:  # the checker must flag this one
        f.read(1)
    mark("end")
    sys.__stdout__.write(json.dumps(results))


if __name__ == "__main__":
    main()
