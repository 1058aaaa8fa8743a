"""Constant folding of small shape arithmetic, for shape propagation.

Why: exporters compute sizes in floating point from constants or from the input's
shape — torchvision's detection transform resizes to ``floor(800 / min(h, w) · h)``
with ``Reciprocal``/``Min``/``Floor``/``Cast`` on ``Shape`` values, a YOLO head builds
its anchor grid from ``Range``/``Mul`` on the feature map's size. The symbolic value
propagation in :mod:`model_analyze.shapes` keeps *integer* shape values; once an input
size is bound, those float chains are concrete too, and evaluating them node by node
is what turns a ``Resize`` with unknown output (and every conv after it, costed as
zero) into known shapes, as onnxruntime sees them.

Only small tensors are folded (at most :data:`MAX_ELEMENTS` elements in and out), by
:mod:`.npeval` (numpy kernels checked against ``onnx.reference``) or, for an op it
does not cover, ``onnx.reference`` (the spec's own semantics, at the model's opset), and only
default-domain ops without subgraphs and without randomness. A failure is no
result, never an error.

Budgets: each output's size is known *from the op's own arguments* before the node
runs — onnx's shape inference on the node alone, its inputs as initializers — never
from a declared ``value_info`` (``HannWindow(size=2e8)`` declared ``[4]`` allocated
3.1 GB). A node carrying an external tensor in an attribute is never evaluated (the
evaluator would resolve the location against the current directory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .budgets import BUDGETS, memory_guard
from .safeio import has_external

if TYPE_CHECKING:
    import numpy as np
    import onnx

MAX_ELEMENTS = BUDGETS.folded_elements
NOT_FOLDED = frozenset({
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial",
    "If", "Loop", "Scan", "SequenceMap", "Constant", "Identity",
})
"""Ops never evaluated: random ones, control flow, and those the rules already read."""


def foldable(op_type: str, domain: str) -> bool:
    return domain in ("", "ai.onnx") and op_type not in NOT_FOLDED


BOUNDED_BY_INPUT = frozenset({"NonZero", "Unique", "Compress"})
"""Ops whose output size depends on values but never exceeds a small multiple of the input's."""


def fold_node(node: onnx.NodeProto, inputs: list[np.ndarray | None], opset: int,
              ir_version: int = 8) -> list[np.ndarray] | None:
    """Evaluate one node on concrete inputs (``None`` = an omitted optional input).

    Before it runs, onnx's shape inference sizes each output from the node's own
    arguments (the inputs are its initializers: ``Range``'s limit, ``HannWindow``'s
    size, ``Expand``'s shape, an outer-product ``Einsum``): an output over
    :data:`MAX_ELEMENTS`, or one it cannot size, is never computed."""
    if any(a is not None and a.size > MAX_ELEMENTS for a in inputs) or has_external(node):
        return None
    from . import npeval

    try:
        out = npeval.run_node(node, inputs, opset, MAX_ELEMENTS)
    except npeval.TooLarge:
        return None
    except npeval.Unsupported:  # onnx.reference below (importing onnx: ~0.7 s)
        pass
    else:
        return None if any(a.size > MAX_ELEMENTS or a.dtype == object for a in out) else out
    try:
        import numpy as np
        from onnx import TensorProto, helper, numpy_helper
        from onnx.reference import ReferenceEvaluator

        inits: dict[str, onnx.TensorProto] = {}
        for name, arr in zip(node.input, inputs, strict=False):
            if name and arr is not None and name not in inits:
                inits[name] = numpy_helper.from_array(np.asarray(arr), name)
        outs = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in node.output if o]
        graph = helper.make_graph([node], "fold", [], outs, list(inits.values()))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  ir_version=ir_version)
        if not _outputs_small(model, node.op_type):
            return None
        results = list(ReferenceEvaluator(model).run(None, {}))
    except Exception:  # a fold is an optimisation: any failure leaves the value unknown
        return None
    out = [np.asarray(r) for r in results]
    if any(a.size > MAX_ELEMENTS or a.dtype == object for a in out):
        return None
    return out


def _outputs_small(model: onnx.ModelProto, op_type: str) -> bool:
    """Every output of the one-node ``model`` is sized by onnx's inference within the budget."""
    from onnx import shape_inference

    with memory_guard(BUDGETS.onnx_inference_bytes):
        inferred = shape_inference.infer_shapes(model, strict_mode=False)
    for vi in inferred.graph.output:
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            return False
        n = 1
        for d in tt.shape.dim:
            if not d.HasField("dim_value"):
                if op_type in BOUNDED_BY_INPUT:
                    continue
                return False
            n *= d.dim_value
        if n > MAX_ELEMENTS:
            return False
    return True
