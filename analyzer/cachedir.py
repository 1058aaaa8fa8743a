"""Where model-analyze keeps what it caches for a user (scan results, the plugins' declarations).

A module of its own, importing only ``os`` and ``sys``, because start-up reads it before
anything else is loaded (:mod:`.declared`).
"""

from __future__ import annotations

import os
import sys


def default_cache_dir() -> str:
    """Where a user's caches go, as platformdirs' ``user_cache_dir`` says (without depending on it):
    ``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%``
    on Windows; ``MODEL_ANALYZE_CACHE_DIR`` overrides all of them."""
    explicit = os.environ.get("MODEL_ANALYZE_CACHE_DIR")
    if explicit:
        return explicit
    if sys.platform == "win32":
        root = os.environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
        return os.path.join(root, "model-analyze", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/model-analyze")
    root = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(root):  # the XDG spec: a relative value is invalid and ignored
        root = os.path.expanduser("~/.cache")
    return os.path.join(root, "model-analyze")
