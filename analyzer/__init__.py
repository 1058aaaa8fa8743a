"""model-analyze: a plugin-based static analyzer for exported ONNX models.

The core (this package) loads a model without its weights, builds a typed
networkx dependency graph, propagates symbolic shapes and runs the token-flow
engine; analyzers are pluggy plugins (see :mod:`model_analyze.hookspecs`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("model-analyze")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
