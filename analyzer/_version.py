"""The installed version, in a module of its own: the package's ``__init__`` re-exports it
(and lazily the scan API), and modules inside the package import it from here, so none of
them depends on the package facade."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("model-analyze")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
