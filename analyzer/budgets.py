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
    constant_elements: int = 1 << 16
    """Largest inline constant read for shapes (Reshape targets, Slice bounds)."""
    folded_elements: int = 4096
    """Largest tensor (in and out) evaluated by constant folding; an op's output
    size is checked from its own size arguments before it runs."""
    onnx_inference_int: int = 1 << 31
    """onnx's own shape inference propagates values (``data_prop``) only when every
    integer constant of the model is within ±this: its data propagation materialises
    shapes it computes, and a fuzzed pad of 7.9·10^17 made it allocate 3.5 GB."""
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
