"""Load an ONNX file as metadata only: never the weights, never a hostile path.

Why: a 7B model has 29 GB of external data, and analysis needs none of it. We
call ``onnx.load(path, load_external_data=False)`` and only *inspect* external
data references (location, offset, length) — the data files are never opened.
A location that is absolute, climbs out of the model directory with ``..`` or is
a symlink out of it is an error finding (the file is still never opened).

Everything that makes a file unanalyzable raises :class:`ModelError` with one
line naming the problem; everything that is suspicious but survivable becomes a
:class:`Finding`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import onnxproto as P
from .errors import ModelError
from .opsets import STANDARD_DOMAINS, floor, known_opsets
from .report import Finding, NodeRef, Severity

if TYPE_CHECKING:
    import onnx


@dataclass
class ExternalRef:
    """Where an initializer's bytes would live; recorded, never read."""

    tensor: str
    location: str
    offset: int
    length: int | None


@dataclass
class LoadedModel:
    path: str
    proto: onnx.ModelProto
    file_bytes: int
    findings: list[Finding] = field(default_factory=list)
    external: list[ExternalRef] = field(default_factory=list)
    inlined_functions: int = 0

    @property
    def base_dir(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    @property
    def opsets(self) -> dict[str, int]:
        return {(o.domain or "ai.onnx"): o.version for o in self.proto.opset_import}

    def opset(self, domain: str = "") -> int:
        """Opset version for ``domain`` ('' and 'ai.onnx' are the same)."""
        key = "ai.onnx" if domain in ("", "ai.onnx") else domain
        return self.opsets.get(key, 0)


def _looks_like_text(head: bytes) -> str | None:
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "a JSON file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return "a text file" if text and printable / len(text) > 0.95 else None


def _read_proto(path: str) -> tuple[onnx.ModelProto, int]:
    if not os.path.exists(path):
        raise ModelError(path, "no such file")
    if os.path.isdir(path):
        raise ModelError(path, "is a directory, not an ONNX model file")
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise ModelError(path, f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise ModelError(path, "file is empty")
    try:
        with open(path, "rb") as f:
            model = P.ModelProto.FromString(f.read())
    except Exception as exc:  # DecodeError, RuntimeError, ValueError...
        kind = _looks_like_text(head)
        if kind:
            raise ModelError(path, f"is {kind}, not an ONNX protobuf") from None
        detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ModelError(path, f"not a valid ONNX protobuf (truncated or corrupt: {detail})") from None
    if not model.HasField("graph") or model.ir_version <= 0:
        kind = _looks_like_text(head)
        what = f"is {kind}, not an ONNX protobuf" if kind else "not an ONNX model (no graph or ir_version)"
        raise ModelError(path, what)
    return model, size


def _check_opsets(path: str, model: onnx.ModelProto) -> list[Finding]:
    findings: list[Finding] = []
    used: set[str] | None = None
    for imp in model.opset_import:
        dom = STANDARD_DOMAINS.get(imp.domain)
        if dom is None:
            continue
        if imp.version <= floor().get(dom, 0):
            continue  # known to every onnx release since the installed one: no need to ask it
        if dom != "ai.onnx":
            # onnxruntime's transformer optimizer imports ai.onnx.training 1,
            # which onnx no longer ships schemas for, without using it: only a
            # domain some node runs in can change what the graph means.
            used = _used_domains(model) if used is None else used
            if not used & {k for k, v in STANDARD_DOMAINS.items() if v == dom}:
                continue
        if imp.version > known_opsets().get(dom, 0):
            import onnx

            raise ModelError(
                path,
                f"opset {imp.version} of domain {dom} is newer than the installed onnx "
                f"{onnx.__version__} knows (max {known_opsets().get(dom, 0)}); upgrade onnx",
            )
    declares_onnx = any(STANDARD_DOMAINS.get(i.domain) == "ai.onnx" for i in model.opset_import)
    if not declares_onnx and any(n.domain in ("", "ai.onnx") for n in model.graph.node):
        findings.append(Finding("L002", Severity.WARNING,
                                "model declares no ai.onnx opset; assuming the latest"))
    if model.ir_version > P.IR_VERSION:
        from importlib.metadata import version

        findings.append(Finding(
            "L001", Severity.WARNING,
            f"IR version {model.ir_version} is newer than onnx {version('onnx')} knows "
            f"({P.IR_VERSION}); unknown fields are ignored"))
    return findings


def _used_domains(model: onnx.ModelProto) -> set[str]:
    """Domains of every node: main graph, subgraphs and model-local functions."""
    out: set[str] = set()
    stack = [model.graph]
    for fn in model.functions:
        out.update(n.domain for n in fn.node)
        stack.extend(a.g for n in fn.node for a in n.attribute if a.HasField("g"))
    while stack:
        g = stack.pop()
        for n in g.node:
            out.add(n.domain)
            for a in n.attribute:
                if a.HasField("g"):
                    stack.append(a.g)
                stack.extend(a.graphs)
    return out


def iter_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every TensorProto in a graph: initializers, sparse parts, Constant
    attributes, recursively through subgraphs."""
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from iter_tensors(attr.g)
            for g in attr.graphs:
                yield from iter_tensors(g)


_WINDOWS_ABS = re.compile(r"^[A-Za-z]:[\\/]|^[\\/]{2}")


def check_external_data(path: str, model: onnx.ModelProto) -> tuple[list[ExternalRef], list[Finding]]:
    """Validate external-data references without opening any data file."""
    base = os.path.dirname(os.path.abspath(path))
    real_base = os.path.realpath(base)
    refs: list[ExternalRef] = []
    findings: list[Finding] = []
    verdict: dict[str, Finding | None] = {}
    tensors = list(iter_tensors(model.graph))
    for fn in model.functions:
        for node in fn.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    tensors.append(attr.t)
    for t in tensors:
        if t.data_location != P.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        try:
            offset = int(info.get("offset", 0) or 0)
            length = int(info["length"]) if info.get("length") else None
        except ValueError:
            offset, length = 0, None
            findings.append(Finding("L015", Severity.WARNING,
                                    f"tensor {t.name!r}: external data offset/length are not integers",
                                    NodeRef(t.name, tensor=t.name)))
        refs.append(ExternalRef(t.name, location, offset, length))
        if location in verdict:
            continue
        verdict[location] = problem = _check_location(base, real_base, location, t.name)
        if problem:
            findings.append(problem)
    return refs, findings


def _check_location(base: str, real_base: str, location: str, tensor: str) -> Finding | None:
    ref = NodeRef(tensor, tensor=tensor)
    if not location:
        return Finding("L010", Severity.ERROR,
                       f"tensor {tensor!r} is marked external but names no location", ref)
    if "\x00" in location:
        return Finding("L010", Severity.ERROR, f"external data location of {tensor!r} contains NUL", ref)
    if os.path.isabs(location) or _WINDOWS_ABS.match(location):
        return Finding("L011", Severity.ERROR,
                       f"external data location {location!r} is an absolute path; "
                       "refusing to look outside the model directory", ref)
    norm = os.path.normpath(location.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        return Finding("L012", Severity.ERROR,
                       f"external data location {location!r} escapes the model directory", ref)
    full = os.path.join(base, norm)
    real = os.path.realpath(full)
    if os.path.commonpath([real, real_base]) != real_base:
        return Finding("L013", Severity.ERROR,
                       f"external data location {location!r} is a symlink out of the model "
                       "directory", ref)
    if not os.path.lexists(full):
        return Finding("L014", Severity.WARNING,
                       f"external data file {location!r} is missing; weights are never read, "
                       "so the structure is still analyzed", ref)
    return None


def _function_calls(model: onnx.ModelProto) -> dict[tuple[str, str], set[tuple[str, str]]]:
    ids = {(f.domain, f.name) for f in model.functions}
    calls: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for f in model.functions:
        calls[(f.domain, f.name)] = {(n.domain, n.op_type) for n in f.node} & ids
    return calls


def _inline_functions(path: str, model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Inline model-local functions so that analyzers see plain ops."""
    if not model.functions:
        return model, 0
    calls = _function_calls(model)
    # A recursive function cannot be inlined (and would loop forever).
    state: dict[tuple[str, str], int] = {}

    def visit(fid: tuple[str, str]) -> None:
        state[fid] = 1
        for callee in calls.get(fid, ()):
            if state.get(callee) == 1:
                raise ModelError(path, f"model-local function {callee[1]!r} is recursive")
            if callee not in state:
                visit(callee)
        state[fid] = 2

    for fid in calls:
        if fid not in state:
            visit(fid)
    from onnx import inliner

    count = len(model.functions)
    try:
        return inliner.inline_local_functions(model), count
    except Exception as exc:
        raise ModelError(path, f"cannot inline model-local functions: {str(exc)[:120]}") from None


def load_model(path: str | os.PathLike[str] | onnx.ModelProto) -> LoadedModel:
    """Read ``path`` as metadata-only ONNX; raise :class:`ModelError` if impossible.

    A ``ModelProto`` already in memory is accepted too (tests, notebooks); its
    external data references resolve against the current directory.
    """
    if isinstance(path, P.ModelProto):
        model, size, path = path, path.ByteSize(), f"<{path.graph.name or 'model'}>"
        if not model.HasField("graph"):
            raise ModelError(path, "not an ONNX model (no graph)")
    else:
        path = os.fspath(path)
        model, size = _read_proto(path)
    findings = _check_opsets(path, model)
    refs, ext_findings = check_external_data(path, model)
    findings.extend(ext_findings)
    model, inlined = _inline_functions(path, model)
    loaded = LoadedModel(path, model, size, findings, refs, inlined)
    return loaded
