"""The analysis context handed to every analyzer.

It carries the loaded model, graph, shapes, op registry and dim bindings, plus a
small cache that core services (token-flow engine, attention detection) use to
compute their results once per run, and the results analyzers publish for the
analyzers that ``require`` them. The context knows no analyzer by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypeVar

from . import dims as D
from .graph import ModelGraph, TensorType
from .loader import LoadedModel
from .ops.registry import OpRegistry
from .report import DimInfo
from .shapes import ShapeTable

if TYPE_CHECKING:
    from .manager import PluginManager

T = TypeVar("T")


@dataclass
class AnalysisContext:
    model: LoadedModel
    graph: ModelGraph
    shapes: ShapeTable
    registry: OpRegistry
    dims: DimInfo
    analyzer_options: Mapping[str, object] = field(default_factory=dict)
    """Each analyzer's options instance (its ``Analyzer.options`` dataclass), by analyzer name."""
    analyzer: str = ""
    """The analyzer running now (set by the runner)."""
    plugins: PluginManager | None = None
    """The run's plugins, for the core services that ask them mid-analysis (a plugin claiming
    a custom op as attention); None: no plugin is asked."""
    _cache: dict[str, Any] = field(default_factory=dict)
    _results: dict[str, Any] = field(default_factory=dict)

    # -- bindings -------------------------------------------------------------
    @property
    def bindings(self) -> dict[str, int]:
        """Bound dims plus stated defaults: what concrete numbers are computed at."""
        return {**self.dims.defaults, **self.dims.bound}

    def evaluate(self, value: object, bindings: dict[str, int] | None = None) -> int | float | None:
        """A dim/formula evaluated at the bindings (int/float when fully bound)."""
        v = D.subs(value, self.bindings if bindings is None else bindings)
        if v is None or D.is_int(v) or isinstance(v, float):
            return v
        if isinstance(v, Fraction):
            return int(v) if v.denominator == 1 else float(v)
        return None

    def input_types(self) -> dict[str, TensorType]:
        """The graph inputs whose type is known, with their inferred shapes."""
        return {name: t for name in self.graph.inputs if (t := self.shapes.type(name)) is not None}

    def is_bound(self, value: object) -> bool:
        """True when every symbol in ``value`` is bound by the user (not a default)."""
        return D.free_symbols(value) <= set(self.dims.bound)

    # -- options ----------------------------------------------------------------------
    def options_for(self, kind: type[T]) -> T:
        """The running analyzer's options, an instance of its options dataclass ``kind``
        (as the config and command line set them; the defaults when nothing did)."""
        mine = self.analyzer_options.get(self.analyzer)
        if isinstance(mine, kind):
            return mine
        other = next((v for v in self.analyzer_options.values() if isinstance(v, kind)), None)
        return other if other is not None else kind()

    # -- caches and results -------------------------------------------------------
    def cached(self, key: str, factory: Callable[[], T]) -> T:
        """Compute ``factory()`` once per analysis (core services use this)."""
        if key not in self._cache:
            self._cache[key] = factory()
        return self._cache[key]

    def publish(self, analyzer: str, result: object) -> None:
        """Make a structured result available to analyzers that require ``analyzer``."""
        self._results[analyzer] = result

    def result(self, analyzer: str) -> object:
        """The published result of ``analyzer`` (None if it did not run or failed)."""
        return self._results.get(analyzer)
