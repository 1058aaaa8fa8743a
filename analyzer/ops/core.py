"""The core's op rules, loaded in one place.

Each rule module registers its functions into a :class:`~.registry.RuleTable` when it
is imported: shapes (:mod:`.shape_rules`), token flow (:mod:`model_analyze.tokenflow.rules`)
and cost (:mod:`model_analyze.cost.rules`); :mod:`.catalog` gives each op its family and
per-element FLOPs. This module is the one entry point that imports them all and builds
the registry every analysis starts from (plugins' rules are merged into a copy) — the
registry itself imports none of them, so the dependencies run one way.
"""

from __future__ import annotations

import functools

from ..cost import signal as _signal_costs  # noqa: F401 - registers the spectral ops' cost rules
from ..cost.rules import COST
from ..tokenflow.rules import FLOW
from . import catalog
from .registry import OpRegistry
from .shape_rules import SHAPE


@functools.lru_cache(maxsize=1)
def _core_registry() -> OpRegistry:
    reg = OpRegistry()
    for rule in catalog.rules():
        reg.add(rule)
    for table in (SHAPE.op_rules(), FLOW.op_rules(), COST.op_rules()):
        for rule in table:
            reg.add(rule)
    return reg


def default_registry() -> OpRegistry:
    """A fresh copy of the core rules; plugins' rules are merged into the copy."""
    return _core_registry().copy()
