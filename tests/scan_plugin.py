"""A test plugin for ``scan``: ops of the ``test.scan`` domain whose shape rule misbehaves.

Loaded with ``model-analyze scan --plugin tests/scan_plugin.py``: the scanning process
and every worker load it, so the misbehaviour happens where a real plugin's bug would,
inside a worker. ``Sleep`` never returns, ``Hog`` allocates 1 MB a millisecond without
bound, ``Crash`` kills its process with SIGSEGV (a segfault in a C extension).
"""

from __future__ import annotations

import os
import signal
import time

from model_analyze.plugin_api import OpRule, hookimpl

DOMAIN = "test.scan"


def _sleep(ctx):
    time.sleep(3600)


def _hog(ctx):
    chunks = []
    while True:
        chunks.append(b"\x01" * (1 << 20))  # written, so resident (not a lazily zeroed page)
        time.sleep(0.001)


def _crash(ctx):
    os.kill(os.getpid(), signal.SIGSEGV)


@hookimpl
def model_analyze_op_rules():
    return [OpRule("Sleep", DOMAIN, shape=_sleep), OpRule("Hog", DOMAIN, shape=_hog),
            OpRule("Crash", DOMAIN, shape=_crash)]
