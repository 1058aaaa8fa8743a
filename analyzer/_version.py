"""The version, in a module of its own: the package's ``__init__`` re-exports it (and
lazily the scan API), and modules inside the package import it from here, so none of
them depends on the package facade.

A literal, and the one source of the distribution's version (pyproject.toml reads it:
``[tool.setuptools.dynamic]``): asking ``importlib.metadata`` at import time cost about
20 ms of every start-up, ``--help`` included (issue 15, goal 4).
"""

__version__ = "0.1.0"
