"""model-analyze: a plugin-based static analyzer for exported ONNX models.

The core (this package) loads a model without its weights, builds a typed
networkx dependency graph, propagates symbolic shapes and runs the token-flow
engine; analyzers are pluggy plugins (see :mod:`model_analyze.hookspecs`).
"""

from ._version import __version__

__all__ = ["__version__", "scan"]


def __getattr__(name: str) -> object:
    """``model_analyze.scan``: the scan API, imported on first use (start-up stays as it is)."""
    if name == "scan":
        from .scanner import scan

        return scan
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
