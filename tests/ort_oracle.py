"""onnxruntime as an oracle for every shape and every MAC we infer.

The model is run once per binding with optimizations disabled and profiling on: the
profiler records every kernel onnxruntime executes — inside ``If`` branches (only the
branch taken) and ``Loop``/``Scan`` bodies (once per iteration actually run) too — with
its input and output shapes. Those shapes are compared with ours evaluated at the same
binding, and an independent MAC count is made from the executed shapes alone (the
formulas below are written from the ONNX / contrib-op specs, not from ``cost/rules.py``).

Nodes are renamed to unique names first (exports leave names empty or repeated) so
that a profiler event names exactly one node of ours.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from model_analyze import dims as D
from model_analyze.runner import AnalyzeOptions, prepare

Shape = tuple[int, ...]


def _graphs(g: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield g
    for n in g.node:
        for a in n.attribute:
            if a.HasField("g"):
                yield from _graphs(a.g)
            for sub in a.graphs:
                yield from _graphs(sub)


def named(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose every node (bodies included) has a unique name."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    seen: set[str] = set()
    k = 0
    for g in _graphs(m.graph):
        for n in g.node:
            if not n.name or n.name in seen:
                while f"n{k}_{n.op_type}" in seen:
                    k += 1
                n.name = f"n{k}_{n.op_type}"
            seen.add(n.name)
    return m


@dataclass
class Event:
    """One kernel execution."""

    node: str
    op: str
    inputs: list[Shape | None]
    outputs: list[Shape | None]


def _shapes(entries: list[dict[str, list[int]]]) -> list[Shape | None]:
    out: list[Shape | None] = []
    for e in entries:
        (dims,) = e.values()
        out.append(tuple(int(d) for d in dims))
    return out


class Session:
    """An onnxruntime session with profiling, made once per model."""

    def __init__(self, model: onnx.ModelProto) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.enable_profiling = True
        so.log_severity_level = 3
        so.intra_op_num_threads = 1
        self.dir = tempfile.mkdtemp(prefix="ortprof")
        so.profile_file_prefix = os.path.join(self.dir, "p")
        self.sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def run(self, runs: list[dict[str, np.ndarray]]) -> list[list[Event]]:
        """Run once per feed dict; the kernel events of each run (profiling is one trace per
        session, split at the runtime's own ``model_run`` spans)."""
        for feeds in runs:
            self.sess.run(None, feeds)
        path = self.sess.end_profiling()
        with open(path) as f:
            events = json.load(f)
        os.unlink(path)
        spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                       if e.get("cat") == "Session" and e.get("name") == "model_run")
        out: list[list[Event]] = [[] for _ in spans]
        for e in events:
            if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
                continue
            k = next((j for j, (a, b) in enumerate(spans) if a <= e["ts"] <= b), None)
            if k is None:
                continue
            args = e["args"]
            out[k].append(Event(e["name"][: -len("_kernel_time")], args.get("op_name", ""),
                                _shapes(args.get("input_type_shape", [])),
                                _shapes(args.get("output_type_shape", []))))
        return out


# -- feeds ---------------------------------------------------------------------------------------
def feeds_for(model: onnx.ModelProto, shapes: dict[str, Shape], values: dict[str, Any] | None = None,
              seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the given shapes: floats in [0, 1), integers in [0, 4) (token ids of
    a tiny vocabulary), masks all ones, booleans true; ``values`` overrides by name."""
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    feeds: dict[str, np.ndarray] = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        if values and vi.name in values:
            feeds[vi.name] = np.asarray(values[vi.name])
            continue
        dt = onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        shape = shapes[vi.name]
        if dt.kind == "f":
            arr = rng.random(shape).astype(dt)
        elif dt.kind == "b" or "mask" in vi.name.lower():
            arr = np.ones(shape, dtype=dt)
        else:
            arr = rng.integers(0, 4, size=shape).astype(dt)
        feeds[vi.name] = arr
    return feeds


# -- our side -----------------------------------------------------------------------------------
@dataclass
class Ours:
    """Our shapes and per-node MACs at one binding, by node name."""

    outputs: dict[str, list[Shape | None]] = field(default_factory=dict)
    """Node name → shape of each of its outputs at the binding (None: we do not know)."""
    macs: dict[str, int | None] = field(default_factory=dict)
    """Node name → MACs of one execution (a body node: per iteration)."""
    total: Any = None
    bound: str = ""
    ctx: Any = None
    status: dict[str, str] = field(default_factory=dict)
    """Node name → the cost engine's status (``ok``, ``partial``, ``unknown``, ``folded``)."""
    folded: set[str] = field(default_factory=set)
    """Nodes computed from constants alone: a runtime folds them at load (not in the totals)."""


def ours(model: onnx.ModelProto, bindings: dict[str, int], input_shapes: dict[str, list[int]] | None = None) -> Ours:
    ctx = prepare(model, AnalyzeOptions(dims=dict(bindings), input_shapes=dict(input_shapes or {})))
    return ours_at(ctx, bindings)


def ours_at(ctx: Any, bindings: dict[str, int]) -> Ours:
    """Our shapes and costs of an analysed model at ``bindings`` (shapes are symbolic: one
    analysis serves every binding; only the evaluation and the cost model are redone)."""
    import dataclasses

    from model_analyze.cost.engine import cost_model

    ctx.dims = dataclasses.replace(ctx.dims, bound={**ctx.dims.bound, **bindings})
    ctx._cache.clear()
    out = Ours(ctx=ctx)
    for node in ctx.graph.walk():
        shapes: list[Shape | None] = []
        for t in node.outputs:
            if not t:
                continue
            s = ctx.shapes.shape(t)
            if s is None:
                shapes.append(None)
                continue
            vals = [ctx.evaluate(d) for d in s]
            shapes.append(None if any(not D.is_int(v) for v in vals) else tuple(vals))
        out.outputs[node.name] = shapes
    cm = cost_model(ctx)
    eng = cm.engine
    seen: set[int] = set()

    def visit(gc: Any) -> None:
        if id(gc) in seen:
            return
        seen.add(id(gc))
        for nc in gc.nodes:
            out.status[nc.node.name] = nc.status
            if nc.status == "folded":
                out.folded.add(nc.node.name)
            if nc.status in ("ok", "folded"):
                v = eng.evaluate(nc.macs)
                out.macs[nc.node.name] = int(v) if v is not None else None
            else:
                out.macs[nc.node.name] = None
            for sub in nc.node.subgraphs.values():
                for g in sub:
                    visit(eng.graph_cost(g))

    visit(cm.graph)
    out.total = eng.evaluate(cm.graph.macs)
    out.bound = cm.graph.total_bound or ""
    return out


# -- independent MAC count from executed shapes ---------------------------------------------------
def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _mm(a: Shape, b: Shape, out: Shape) -> int:
    k = a[-1] if len(a) >= 1 else 1
    return math.prod(out) * k


def executed_macs(node: onnx.NodeProto, ev: Event) -> int | None:
    """MACs of one execution from the shapes onnxruntime saw (spec formulas), or None
    for ops that do no multiply-accumulate."""
    op, ins, outs = node.op_type, ev.inputs, ev.outputs
    if op in ("Conv", "ConvInteger", "FusedConv", "NhwcConv"):
        return math.prod(outs[0]) * math.prod(ins[1][1:])
    if op in ("QLinearConv",):
        return math.prod(outs[0]) * math.prod(ins[3][1:])
    if op == "ConvTranspose":
        return math.prod(ins[0]) * math.prod(ins[1][1:])
    if op in ("MatMul", "MatMulInteger", "FusedMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"):
        a = ins[0]
        if op == "FusedMatMul" and _attr(node, "transA", 0):
            a = (*a[:-2], a[-1], a[-2])
        return _mm(a, ins[1], outs[0])
    if op == "QGemm":
        a = ins[0]
        return math.prod(outs[0]) * (a[0] if _attr(node, "transA", 0) else a[1])
    if op == "QLinearMatMul":
        return _mm(ins[0], ins[3], outs[0])
    if op == "Gemm":
        a = ins[0]
        k = a[0] if _attr(node, "transA", 0) else a[1]
        return math.prod(outs[0]) * k
    if op in ("LSTM", "GRU", "RNN", "DynamicQuantizeLSTM"):
        gates = {"LSTM": 4, "DynamicQuantizeLSTM": 4, "GRU": 3, "RNN": 1}[op]
        x = ins[0]
        layout = _attr(node, "layout", 0)
        seq, batch = (x[1], x[0]) if layout else (x[0], x[1])
        hidden = _attr(node, "hidden_size")
        w = ins[1]
        dirs = w[0]
        macs = dirs * seq * batch * gates * hidden * (x[2] + hidden)
        return macs
    if op == "Attention" and node.domain == "com.microsoft":
        # input [B, S, hidden] · weights [hidden, q+k+v] (projection), then per head QKᵀ and AV over
        # the total length T (past + S; present is [2, B, H, T, d])
        b, s_, hidden = ins[0]
        width = ins[1][1]
        heads = _attr(node, "num_heads")
        sizes = _attr(node, "qkv_hidden_sizes") or [width // 3] * 3
        t = outs[1][3] if len(outs) > 1 and outs[1] is not None and len(outs[1]) == 5 else s_
        return b * s_ * hidden * width + b * heads * s_ * t * (sizes[0] // heads + sizes[2] // heads)
    if op == "MultiHeadAttention":
        # query [B, S, D], key [B, L, D], value [B, L, Dv] (3-D forms): B·S·L·(D + Dv) over all heads
        q, k, v = ins[0], ins[1], ins[2]
        if len(q) != 3 or len(k) != 3 or len(v) != 3:
            return None
        return q[0] * q[1] * k[1] * (q[2] + v[2])
    if op == "Attention":  # ONNX Attention-23, 4-D Q/K/V (+ past concatenated on the key axis)
        q, k, v = ins[0], ins[1], ins[2]
        if len(q) != 4:
            return None
        past = ins[4][2] if len(ins) > 4 and ins[4] is not None and len(ins[4]) == 4 else 0
        return q[0] * q[1] * q[2] * (k[2] + past) * (q[3] + v[3])
    if op == "Einsum":
        eq = _attr(node, "equation").decode() if isinstance(_attr(node, "equation"), bytes) else _attr(node, "equation")
        lhs = eq.replace(" ", "").split("->")[0].split(",")
        sizes: dict[str, int] = {}
        for term, s in zip(lhs, ins, strict=False):
            if "..." in term:
                return None
            for ch, d in zip(term, s, strict=False):
                sizes[ch] = max(sizes.get(ch, 1), d)
        return math.prod(sizes.values())
    if op == "STFT":
        # [batch, frames, bins, 2] out; per frame a direct DFT of the frame (the window's length):
        # 2 real MACs per (sample, bin) for a real signal ([B, L] or [B, L, 1]), 4 for a complex one
        if len(ins) < 3 or ins[2] is None or len(ins[2]) != 1:
            return None
        real = len(ins[0]) == 2 or ins[0][-1] == 1
        return math.prod(outs[0][:3]) * ins[2][0] * (2 if real else 4)
    if op == "DFT":
        # every complex output value sums n inputs along the axis; n is the output's length there
        # unless one-sided (n is then not determined by the shapes alone)
        if _attr(node, "onesided", 0) and len(node.input) > 1 and node.input[1]:
            return None
        rank = len(ins[0])
        axis = _attr(node, "axis", 1) if len(node.input) < 3 or not node.input[2] else None
        if axis is None:  # DFT-20's axis input: the one axis whose length the transform changed
            changed = [k for k in range(rank - 1) if ins[0][k] != outs[0][k]]
            if len(changed) != 1:
                return None
            axis = changed[0]
        axis = axis + rank if axis < 0 else axis
        if outs[0][-1] == 1:  # irfft: each real output sums the one-sided input bins, 2 MACs each
            return math.prod(outs[0][:-1]) * ins[0][axis] * 2
        n = ins[0][axis] if _attr(node, "onesided", 0) or len(node.input) < 2 or not node.input[1] else outs[0][axis]
        return math.prod(outs[0][:-1]) * n * (2 if ins[0][-1] == 1 else 4)
    return None


MAC_OPS = {"Conv", "ConvInteger", "FusedConv", "QLinearConv", "ConvTranspose", "MatMul", "MatMulInteger",
           "FusedMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QLinearMatMul", "Gemm", "QGemm",
           "LSTM", "GRU", "RNN", "DynamicQuantizeLSTM", "Einsum", "Attention", "MultiHeadAttention", "STFT", "DFT"}


def _constant_dims(model: onnx.ModelProto) -> dict[str, Shape]:
    """Shapes of initializers and ``Constant`` outputs (onnxruntime prepacks constant weights
    and then leaves them out of the profiler's input list)."""
    out: dict[str, Shape] = {}
    for g in _graphs(model.graph):
        for t in g.initializer:
            out[t.name] = tuple(t.dims)
        for n in g.node:
            if n.op_type == "Constant" and n.output:
                v = _attr(n, "value")
                if v is not None:
                    out[n.output[0]] = tuple(v.dims)
    return out


def _fill_constants(node: onnx.NodeProto, seen: list[Shape | None], consts: dict[str, Shape]) -> list[Shape | None]:
    names = list(node.input)
    if len(seen) == sum(1 for n in names if n):
        full: list[Shape | None] = []
        it = iter(seen)
        for n in names:
            full.append(next(it) if n else None)
        return full
    out: list[Shape | None] = []
    k = 0
    for n in names:
        if not n:
            out.append(None)
        elif n in consts:
            if k < len(seen) and seen[k] == consts[n]:
                k += 1
            out.append(consts[n])
        else:
            out.append(seen[k] if k < len(seen) else None)
            k += 1
    return out


# -- comparison ---------------------------------------------------------------------------------
@dataclass
class Check:
    """Differences between ours and the runtime at one binding."""

    shape_checked: int = 0
    shape_wrong: list[str] = field(default_factory=list)
    shape_unknown: list[str] = field(default_factory=list)
    macs_checked: int = 0
    macs_wrong: list[str] = field(default_factory=list)
    executed_total: int = 0
    ours_total: Any = None
    ours_bound: str = ""

    def problems(self) -> list[str]:
        """Everything that contradicts the runtime (empty when ours agrees)."""
        out = [f"shape {w}" for w in self.shape_wrong] + [f"unknown {w}" for w in self.shape_unknown]
        out += [f"macs {w}" for w in self.macs_wrong]
        total, run = self.ours_total, self.executed_total
        ok = {"": total == run, "upper": total is not None and total >= run,
              "lower": total is not None and total <= run}.get(self.ours_bound, True)
        if not ok:
            out.append(f"total MACs {total} ({self.ours_bound or 'exact'}) vs executed {run}")
        return out


def compare(model: onnx.ModelProto, events: list[Event], mine: Ours) -> Check:
    protos = {n.name: n for g in _graphs(model.graph) for n in g.node}
    chk = Check(ours_total=mine.total, ours_bound=mine.bound)
    by_node: dict[str, list[Event]] = defaultdict(list)
    for ev in events:
        by_node[ev.node].append(ev)
    data_dep = mine.ctx.shapes.data_dependent
    node_outs = {n.name: [o for o in n.output if o] for n in protos.values()}
    consts = _constant_dims(model)
    for name, evs in by_node.items():
        proto = protos.get(name)
        if proto is None:
            continue
        ours_shapes = mine.outputs.get(name, [])
        outs = node_outs[name]
        # shapes: every execution must agree with ours (a body node may change per iteration:
        # then only a shape that is the same in every iteration can be claimed)
        for k, tensor in enumerate(outs):
            seen = {ev.outputs[k] for ev in evs if k < len(ev.outputs)}
            if not seen:
                continue
            mine_k = ours_shapes[k] if k < len(ours_shapes) else None
            if mine_k is None:
                if tensor not in data_dep:
                    chk.shape_unknown.append(f"{name}:{tensor} {sorted(seen)}")
                continue
            chk.shape_checked += 1
            if seen != {mine_k}:
                chk.shape_wrong.append(f"{proto.op_type} {name}:{tensor} ours {mine_k} ort {sorted(seen)}")
        if proto.op_type in MAC_OPS:
            for ev in evs:
                ev.inputs = _fill_constants(proto, ev.inputs, consts)
            want = [executed_macs(proto, ev) for ev in evs]
            if any(w is None for w in want):
                continue
            got = mine.macs.get(name)
            if got is None and any(i in data_dep for i in proto.input):
                chk.executed_total += sum(want)  # type: ignore[arg-type]
                continue  # sizes follow NonZero/NMS at run time: uncosted, said (HS002), total a lower bound
            if name not in mine.folded:
                chk.executed_total += sum(want)  # type: ignore[arg-type]
            chk.macs_checked += 1
            if got is None or any(w != got for w in want):
                chk.macs_wrong.append(f"{proto.op_type} {name}: ours {got} ort {sorted(set(want))}")
    return chk
