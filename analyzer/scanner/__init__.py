"""``model-analyze scan``: many models, in parallel worker processes or on Dask, cached and resumable.

The library API is :func:`scan` (also ``model_analyze.scan``)::

    import model_analyze

    for result in model_analyze.scan(["models/"], jobs=2):
        print(result.path, result.status, result.report and result.report.headline("macs"))

Modules: ``run`` (the scan), ``task`` (one model, as a worker runs it), ``worker`` and
``pool`` (local worker processes with limits), ``dask_executor`` (imported only for Dask),
``keys`` and ``cache`` (what a cached result depends on), ``records`` (a line ↔ a
result), ``targets`` (what to scan), ``output`` and ``progress`` (the command's streams).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import ScanResult
    from .run import Scan

__all__ = ["Scan", "ScanResult", "scan"]


def scan(*args: Any, **kwargs: Any) -> Scan:
    """A scan of files, directories, globs, ``@list.txt`` files and fsspec URLs; iterate it for
    one result per model as each finishes. Arguments: :func:`model_analyze.scanner.run.scan`
    (imported on first call, so nothing else pays for the scan's modules)."""
    from .run import scan as _scan

    return _scan(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "Scan":
        from .run import Scan

        return Scan
    if name == "ScanResult":
        from .records import ScanResult

        return ScanResult
    raise AttributeError(name)
