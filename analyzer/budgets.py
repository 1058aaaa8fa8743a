"""Resource budgets: every limit that keeps a hostile model from hanging or ballooning.

Why one place: a model file of a few KB can *declare* anything — a 2^22-node
function expansion, a 2·10^8-element window, a 10^18-trip loop, a 3 GB data file
behind a location. Each of these is cheap to describe and ruinous to honour, so
every piece of code that would allocate, read or loop in proportion to a number
taken from the model checks it against a budget here first. Exceeding a budget
is one clear line (exit 2) or a finding, never a hang; the analysis goes on
where it can.

The numbers are data (a frozen dataclass), so tests, benchmarks and a later
caller with other needs can read them, or pass a modified copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Budgets:
    """Limits on what a model may make us read, allocate or repeat."""

    model_file_bytes: int = (1 << 31) - 1
    """Largest model file parsed: protobuf cannot decode a bigger message, so a
    bigger file is refused from its ``stat`` size, before a byte is read."""
    model_head_bytes: int = 4096
    """Bytes read first to check the file starts like a ModelProto."""
    inlined_nodes: int = 2_000_000
    """Nodes a model may have after model-local functions are inlined (23
    functions each calling the next twice expand to 2^22)."""
    function_depth: int = 10_000
    """Longest chain of model-local functions calling each other."""
    subgraph_depth: int = 64
    """Deepest nesting of If/Loop/Scan bodies walked."""
    tensor_elements: int = (1 << 63) - 1
    """Most elements any tensor may have (runtimes count them in int64): a declared one
    beyond is a hostile model (exit 2); an inferred one beyond is unknown (its sizes would
    overflow every float the report prints)."""
    constant_elements: int = 1 << 16
    """Largest inline constant read for shapes (Reshape targets, Slice bounds)."""
    folded_elements: int = 4096
    """Largest tensor (in and out) evaluated by constant folding; an op's output
    size is checked from its own size arguments before it runs."""
    onnx_inference_int: int = 1 << 31
    """onnx's own shape inference propagates values (``data_prop``) only when every
    integer constant of the model is within ±this: its data propagation materialises
    shapes it computes, and a fuzzed pad of 7.9·10^17 made it allocate 3.5 GB."""
    onnx_inference_bytes: int = 1 << 30
    """Address space onnx's shape inference may add (:func:`memory_guard`): data
    propagation through ``HannWindow(size=2e8)``'s function body materialised 3 GB."""
    dim_value: int = 1 << 27
    """Largest value accepted for ``--dim``, ``--seq-len`` and ``--input-shape``
    (134,217,728: ten times the longest context any model claims). Context coverage
    counts every position of a band exactly, in bounded memory but linear time
    (~5 s at 10^8), so the bound keeps a typo like ``seq=10^30`` from running for days."""
    external_bytes: int = 1 << 31
    """External data ``verify`` may read in total (from the files' real sizes)."""
    verify_input_elements: int = 1 << 27
    """Per input: a declared size above this is refused rather than allocated."""
    verify_tensor_elements: int = 1 << 28
    """Any tensor of the model at the verify bindings: above this, refused before running."""
    verify_loop_trips: int = 1 << 20
    """A ``Loop`` whose constant trip count is above this is refused before running."""
    verify_run_seconds: float = 120.0
    """One onnxruntime run is aborted after this long (a data-dependent loop)."""
    verify_seeds: int = 1000
    """Most random baselines ``verify`` runs."""
    verify_positions: int = 1 << 16
    """Most positions ``verify`` probes per axis."""


BUDGETS = Budgets()
"""The budgets in force."""


def _vm_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * 4096
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def memory_guard(extra: int) -> Iterator[None]:
    """Run a block with the address space limited to what the process has now plus
    ``extra`` bytes (``RLIMIT_AS``), so that a library call we cannot size beforehand
    (onnx's C++ shape inference) fails with ``MemoryError`` instead of growing without
    bound. The previous limit is restored afterwards. Where the limit cannot be set
    (no ``/proc``, no ``resource``) the block runs unguarded. Threads allocating at the
    same time share the limit: the analysis runs these calls on its only thread."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        yield
        return
    vm = _vm_bytes()
    if vm is None:
        yield
        return
    limit = vm + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY and soft <= limit:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
