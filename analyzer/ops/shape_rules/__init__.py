"""Shape rules for standard ONNX ops (and the com.microsoft ops fusions emit).

Each rule gets a :class:`~model_analyze.shapes.ShapeCtx` and returns the output
types (``None`` where it cannot tell). Dims stay symbolic through arithmetic in
:mod:`model_analyze.dims`. A rule may raise on malformed input: the engine
catches it and falls back to the exporter's value_info, so rules are written
for the valid case and never need defensive clutter.

One module per family (element-wise, movement, nn, control flow, attention, signal
processing, the com.microsoft quantized kernels);
importing this package registers all of them in :data:`SHAPE`.
"""

from __future__ import annotations

from . import attention, contrib, control, elementwise, movement, nn, signal  # noqa: F401 - registers the rules
from .common import SHAPE, broadcast, on_conflict
from .movement import keep_aspect_scale
from .nn import matmul_shape, parse_einsum

__all__ = ["SHAPE", "broadcast", "keep_aspect_scale", "matmul_shape", "on_conflict", "parse_einsum"]
