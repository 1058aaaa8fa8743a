"""Which layer a node belongs to, from the exporter's name scopes.

Exporters record the module a node came from in three ways, tried in order:

* dynamo (``torch.onnx.export(dynamo=True)``): ``metadata_props``
  ``pkg.torch.onnx.name_scopes`` (``['', 'm', 'm.model', 'm.model.layers.0', …]``)
  or ``namespace`` (``m.model.layers.0: LlamaDecoderLayer/…``);
* TorchScript / optimum: the node name, ``/model/layers.3/self_attn/q_proj/MatMul``;
* plain names with a dotted scope, ``layers.3.mlp.up``.

A node's layer is the outermost scope that ends in a module-list index
(``….layers.3``, ``layer1.0``, TF-style ``block1/unit_2``); a node outside every indexed scope is grouped by
its deepest module scope (``m.lm_head``, ``m.model.rotary_emb``). Graphs with no
scopes at all are grouped by the attention blocks found (see
:func:`attention_segments`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..graph import Node

_INDEXED = re.compile(r"(?:^|\.)[A-Za-z_][\w-]*\.\d+$|\.[A-Za-z]+_\d+$")
"""``….layers.3``, ``layer1.0``; or TF style ``….block1.unit_2`` (a letters-only
name + ``_N`` below the root, so ``resnet_v1_50`` itself is not an index)."""
UNSCOPED = "(unscoped)"


def _metadata(node: Node) -> dict[str, str]:
    props = node.proto.metadata_props
    return {p.key: p.value for p in props} if props else {}


_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def scopes(node: Node) -> list[str]:
    """The node's module scopes, outermost first, as full dotted paths."""
    md = _metadata(node)
    ns = md.get("namespace")
    if ns:  # "m.model.layers.0: LlamaDecoderLayer/…/linear: aten.linear.default"
        parts = [p.split(": ", 1)[0].strip() for p in ns.split("/")]
        return [p for p in parts[:-1] if p and not p.startswith("_")]
    raw = md.get("pkg.torch.onnx.name_scopes")
    if raw:  # "['', 'm', 'm.model', …, 'linear']" (the last entry is the op itself)
        value = _QUOTED.findall(raw[:4000])
        return [s for s in value[:-1] if s and not s.startswith("_")]
    return _name_scopes(node.name)


def _name_scopes(name: str) -> list[str]:
    """``/model/layers.3/self_attn/q_proj/MatMul`` → model, model.layers.3, …"""
    if "/" in name:
        parts = [p for p in name.split("/") if p][:-1]
    elif "." in name:
        parts = name.split(".")[:-1]
        merged: list[str] = []
        for p in parts:  # re-attach list indices: layers . 3 → layers.3
            if p.isdigit() and merged:
                merged[-1] += "." + p
            else:
                merged.append(p)
        parts = merged
    else:
        return []
    out: list[str] = []
    path = ""
    for p in parts:
        path = p if not path or p.startswith(path + ".") else f"{path}.{p}"
        out.append(path)
    return out


def layer_of(node: Node) -> str:
    """The node's layer key ('' when the graph carries no scope for it)."""
    sc = scopes(node)
    for s in sc:
        if _INDEXED.search(s):
            return s
    return sc[-1] if sc else ""


def attention_segments(order: Sequence[Node], starts: Sequence[str]) -> dict[str, str]:
    """Fallback grouping for graphs without scopes: cut the topological order at
    each attention layer's first node (its QKᵀ or fused op). Nodes before the
    first cut are ``pre``; block k runs from attention k to attention k+1 (so it
    holds attention k, its MLP, and the next block's input projections)."""
    cut = {nid: k for k, nid in enumerate(starts)}
    out: dict[str, str] = {}
    current = "pre-attention"
    for node in order:
        if node.id in cut:
            current = f"attention block {cut[node.id]}"
        out[node.id] = current
    return out
