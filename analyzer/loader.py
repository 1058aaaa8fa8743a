"""Load an ONNX file as metadata only: never the weights, never a hostile path.

Why: a 7B model has 29 GB of external data, and analysis needs none of it. We
parse the model file alone and only *inspect* external data references
(location, offset, length) — the data files are never opened.
A location that is absolute, climbs out of the model directory with ``..``, goes
through a symlink or names a FIFO/device is an error finding (the file is still
never opened); locations are resolved by :mod:`.safeio`, the one guarded reader.

The file itself is ``stat``-ed before it is opened (a FIFO would block, a file
over protobuf's 2 GiB limit cannot be parsed) and its first bytes are checked to
start like a ModelProto before the rest is read. Strings that are not UTF-8 are
decoded with escapes (a finding), model-local functions are inlined within a
node budget (:mod:`.budgets`), and every walk is iterative.

Everything that makes a file unanalyzable raises :class:`ModelError` with one
line naming the problem; everything that is suspicious but survivable becomes a
:class:`Finding`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import onnxproto as P
from .budgets import BUDGETS
from .errors import ModelError
from .opsets import STANDARD_DOMAINS, floor, known_opsets
from .protoscan import EmbeddedData, parse_skeleton
from .report import Finding, NodeRef, Severity
from .safeio import ModelDir, UnsafeData, external_info, file_kind, is_external, iter_tensor_protos

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
    embedded: EmbeddedData | None = None
    """Reads back the tensor payloads the loader left in the model file (``protoscan``)."""
    base_dir: str = ""
    """The directory external data locations resolve in (the model file's; the
    current directory for a ModelProto handed over in memory)."""

    def __post_init__(self) -> None:
        if not self.base_dir:
            self.base_dir = os.path.dirname(os.path.abspath(self.path))

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


def _wire_types(descriptor: Any) -> dict[int, int]:
    """Field number → protobuf wire type, from a message descriptor."""
    from google.protobuf.descriptor import FieldDescriptor as F

    fixed64 = {F.TYPE_DOUBLE, F.TYPE_FIXED64, F.TYPE_SFIXED64}
    fixed32 = {F.TYPE_FLOAT, F.TYPE_FIXED32, F.TYPE_SFIXED32}
    out = {}
    for f in descriptor.fields:
        if f.type in (F.TYPE_STRING, F.TYPE_BYTES, F.TYPE_MESSAGE):
            out[f.number] = 2
        else:
            out[f.number] = 1 if f.type in fixed64 else 5 if f.type in fixed32 else 0
    return out


def _varint(buf: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(buf) and shift < 70:
        b = buf[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return value, pos
        shift += 7
    return None


def model_head(head: bytes, size: int) -> str:
    """``ok`` when the first bytes parse as ModelProto fields — known numbers with
    their wire type (unknown numbers above the known ones with a valid type, for
    newer onnx) — ``truncated`` when such a field runs past the end of the file,
    ``foreign`` otherwise. Checked before the whole file is read, so that a large
    blob of anything else is refused from its first 4 KB."""
    known = _wire_types(P.ModelProto.DESCRIPTOR)
    top = max(known)
    pos, fields = 0, 0
    while pos < len(head):
        tag = _varint(head, pos)
        if tag is None:
            return "ok" if fields and len(head) - pos < 11 else "foreign"  # cut by the head's end
        key, pos = tag
        number, wire = key >> 3, key & 7
        if number == 0 or wire not in (0, 1, 2, 5):
            return "foreign"
        if number in known:
            if known[number] != wire and not (wire == 2 and known[number] in (0, 1, 5)):  # packed
                return "foreign"
        elif number <= top:
            return "foreign"
        fields += 1
        if wire == 0:
            v = _varint(head, pos)
            if v is None:
                return "ok" if len(head) - pos < 11 else "foreign"
            pos = v[1]
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            n = _varint(head, pos)
            if n is None:
                return "ok" if len(head) - pos < 11 else "foreign"
            length, pos = n
            if pos + length > size:
                return "truncated" if number in known else "foreign"
            pos += length
    return "ok" if fields else "foreign"


def _read_proto(path: str) -> tuple[onnx.ModelProto, int, EmbeddedData | None]:
    """Parse the model file: its type and size from ``stat`` first (a FIFO or a
    device is refused before it is opened; a file too large for protobuf before
    it is read), then its first bytes (a non-ModelProto is refused from 4 KB),
    then the whole file from the same descriptor."""
    budgets = BUDGETS
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelError(path, "no such file") from None
    except OSError as exc:
        raise ModelError(path, f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelError(path, "is a directory, not an ONNX model file")
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(path, f"is {file_kind(st.st_mode)}, not an ONNX model file")
    if st.st_size == 0:
        raise ModelError(path, "file is empty")
    if st.st_size > budgets.model_file_bytes:
        raise ModelError(path, f"is {st.st_size / 2**30:.1f} GiB; protobuf cannot parse a model file over 2 GiB "
                               "(store the weights as external data)")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ModelError(path, f"cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):  # swapped after the stat above
            raise ModelError(path, f"is {file_kind(st.st_mode)}, not an ONNX model file")
        try:
            head = f.read(budgets.model_head_bytes)
            verdict = model_head(head, st.st_size)
            if verdict != "ok":
                kind = _looks_like_text(head)
                raise ModelError(path, f"is {kind}, not an ONNX protobuf" if kind else
                                 "not a valid ONNX protobuf (truncated or corrupt: a field runs past the end of "
                                 "the file)" if verdict == "truncated" else
                                 "not a valid ONNX protobuf (its first bytes are not ModelProto fields)")
            # Weights stay in the file: a skeleton without large payloads is parsed (protoscan).
            skeleton = parse_skeleton(f.fileno(), path)
            if skeleton is not None:
                return _checked(path, head, skeleton[0]), st.st_size, skeleton[1]
            data = head + f.read(min(st.st_size, budgets.model_file_bytes) + 1 - len(head))
        except OSError as exc:
            raise ModelError(path, f"cannot read: {exc.strerror or exc}") from None
    size = len(data)
    if size > budgets.model_file_bytes:
        raise ModelError(path, "grew past 2 GiB while being read")
    model = P.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # DecodeError, RuntimeError, ValueError...
        del data
        text = str(exc)
        if "MaxDepth" in text or "recursion" in text.lower():
            raise ModelError(path, "nests messages deeper than protobuf's limit of 100 levels (If/Loop/Scan "
                                   "bodies or attributes nested ~30 deep); it cannot be parsed") from None
        kind = _looks_like_text(head)
        if kind:
            raise ModelError(path, f"is {kind}, not an ONNX protobuf") from None
        detail = text.splitlines()[0][:120] if text else type(exc).__name__
        raise ModelError(path, f"not a valid ONNX protobuf (truncated or corrupt: {detail})") from None
    del data
    return _checked(path, head, model), size, None


def _checked(path: str, head: bytes, model: onnx.ModelProto) -> onnx.ModelProto:
    if not model.HasField("graph") or model.ir_version <= 0:
        kind = _looks_like_text(head)
        what = f"is {kind}, not an ONNX protobuf" if kind else "not an ONNX model (no graph or ir_version)"
        raise ModelError(path, what)
    return model


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


def check_external_data(path: str, model: onnx.ModelProto,
                        base: str | None = None) -> tuple[list[ExternalRef], list[Finding]]:
    """Validate external-data references without opening any data file: each
    location is walked inside the model directory by :class:`~.safeio.ModelDir`
    (no symlink followed, the file itself only ``lstat``-ed)."""
    base = base if base is not None else os.path.dirname(os.path.abspath(path))
    refs: list[ExternalRef] = []
    findings: list[Finding] = []
    verdict: dict[str, UnsafeData | None] = {}
    with ModelDir(base) as data:
        for t in iter_tensor_protos(model):
            if not is_external(t):
                continue
            ref = NodeRef(t.name, tensor=t.name)
            try:
                location, offset, length = external_info(t)
            except UnsafeData as exc:
                location = next((e.value for e in t.external_data if e.key == "location"), "")
                offset, length = 0, None
                findings.append(Finding("L015", Severity.WARNING, f"tensor {t.name!r}: {exc.message}", ref))
            refs.append(ExternalRef(t.name, location, offset, length))
            if location not in verdict:
                verdict[location] = _check_location(data, location, offset, length)
                problem = verdict[location]
                if problem is not None:
                    findings.append(_location_finding(problem, t.name, ref))
            elif verdict[location] is None:
                problem = _check_range(data, location, offset, length)
                if problem is not None:
                    findings.append(_location_finding(problem, t.name, ref))
    return refs, findings


EXTERNAL_ERRORS = {"L010", "L011", "L012", "L013", "L016"}
"""Location problems that make a model hostile (error); the rest are warnings."""


def _check_location(data: ModelDir, location: str, offset: int, length: int | None) -> UnsafeData | None:
    try:
        data.stat(location)
    except UnsafeData as exc:
        return exc
    return _check_range(data, location, offset, length)


def _check_range(data: ModelDir, location: str, offset: int, length: int | None) -> UnsafeData | None:
    try:
        size = data.stat(location).st_size
    except UnsafeData as exc:
        return exc
    end = offset + (length or 0)
    if end > size:
        return UnsafeData("L017", f"bytes {offset:,}..{end:,} of {location!r} are past the end of the file "
                                  f"({size:,} bytes)")
    return None


def _location_finding(problem: UnsafeData, tensor: str, ref: NodeRef) -> Finding:
    message = f"tensor {tensor!r}: external data {problem.message}"
    if problem.code == "L014":
        message = (f"tensor {tensor!r}: {problem.message}; weights are never read, so the structure is still "
                   "analyzed")
    elif problem.code in EXTERNAL_ERRORS:
        message += " (never opened)"
    severity = Severity.ERROR if problem.code in EXTERNAL_ERRORS else Severity.WARNING
    return Finding(problem.code, severity, message, ref)


# -- text is data --------------------------------------------------------------------
def decode_strings(model: onnx.ModelProto) -> list[str]:
    """Replace every string field that is not valid UTF-8 (protobuf hands those
    back as ``bytes``) by its decoding with ``\\xNN`` escapes; returns the
    fields that held such bytes (``NodeProto.op_type``…). Iterative: nesting
    depth is bounded by protobuf, the number of messages by the file."""
    message, string = 11, 9  # FieldDescriptor.TYPE_MESSAGE, TYPE_STRING
    tensor = P.TensorProto.DESCRIPTOR
    bad: list[str] = []
    stack: list[Any] = [model]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        msg = pop()
        if msg.DESCRIPTOR is tensor:  # its strings only: ListFields would copy the payload
            for name in ("name", "doc_string"):
                if type(getattr(msg, name)) is bytes:
                    setattr(msg, name, _decode(getattr(msg, name)))
                    bad.append(f"TensorProto.{name}")
            extend(msg.external_data)
            extend(getattr(msg, "metadata_props", ()))
            continue
        for fd, value in msg.ListFields():
            kind = fd.type
            if kind == message:
                if fd.is_repeated:
                    extend(value)
                else:
                    push(value)
            elif kind == string:
                if fd.is_repeated:
                    try:
                        "".join(value)  # C speed; a bytes element raises
                    except TypeError:
                        fixed = [_decode(v) for v in value]
                        del value[:]
                        value.extend(fixed)
                        bad.append(f"{msg.DESCRIPTOR.name}.{fd.name}")
                elif type(value) is bytes:
                    setattr(msg, fd.name, _decode(value))
                    bad.append(f"{msg.DESCRIPTOR.name}.{fd.name}")
    return bad


def _decode(value: str | bytes) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _text_finding(bad: list[str]) -> Finding:
    fields = sorted(set(bad))
    shown = ", ".join(fields[:4]) + (f" and {len(fields) - 4} more" if len(fields) > 4 else "")
    return Finding("L020", Severity.WARNING,
                   f"{len(bad)} string field(s) hold bytes that are not UTF-8 ({shown}); read with \\xNN escapes")


# -- structure budgets -----------------------------------------------------------------
def subgraph_depth(model: onnx.ModelProto) -> int:
    """Deepest nesting of graph attributes (If/Loop/Scan bodies), main graph = 0."""
    deepest = 0
    stack: list[tuple[onnx.GraphProto, int]] = [(model.graph, 0)]
    for fn in model.functions:
        stack.extend((a.g, 1) for n in fn.node for a in n.attribute if a.HasField("g"))
        stack.extend((g, 1) for n in fn.node for a in n.attribute for g in a.graphs)
    while stack:
        g, depth = stack.pop()
        deepest = max(deepest, depth)
        for n in g.node:
            for a in n.attribute:
                if a.HasField("g"):
                    stack.append((a.g, depth + 1))
                stack.extend((sub, depth + 1) for sub in a.graphs)
    return deepest


def _function_calls(model: onnx.ModelProto) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Each function's calls to model-local functions, one entry per calling node."""
    ids = {(f.domain, f.name) for f in model.functions}
    return {(f.domain, f.name): [(n.domain, n.op_type) for n in f.node if (n.domain, n.op_type) in ids]
            for f in model.functions}


def _call_order(path: str, calls: dict[tuple[str, str], list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """Functions callees-first; a recursive function is a ModelError. Iterative:
    a 3,000-deep chain of functions is data, not a Python stack."""
    state: dict[tuple[str, str], int] = {}
    order: list[tuple[str, str]] = []
    for root in calls:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(dict.fromkeys(calls.get(root, ()))))]
        while stack:
            fid, it = stack[-1]
            callee = next(it, None)
            if callee is None:
                stack.pop()
                state[fid] = 2
                order.append(fid)
            elif state.get(callee) == 1:
                raise ModelError(path, f"model-local function {callee[1]!r} is recursive")
            elif callee not in state:
                state[callee] = 1
                stack.append((callee, iter(dict.fromkeys(calls.get(callee, ())))))
    return order


def _inline_functions(path: str, model: onnx.ModelProto) -> tuple[onnx.ModelProto, int, Finding | None]:
    """Inline model-local functions so that analyzers see plain ops — unless the
    expansion is over budget (functions calling each other twice, 23 deep, expand
    to 2^22 nodes) or deeper than onnx's inliner goes: then the calls stay, are
    reported, and are treated as unknown ops."""
    if not model.functions:
        return model, 0, None
    calls = _function_calls(model)
    order = _call_order(path, calls)
    sizes: dict[tuple[str, str], int] = {}
    depth: dict[tuple[str, str], int] = {}
    cap = BUDGETS.inlined_nodes
    bodies = {(f.domain, f.name): len(f.node) for f in model.functions}
    for fid in order:  # callees first
        own = bodies[fid] - len(calls[fid])
        sizes[fid] = min(own + sum(sizes[c] for c in calls[fid]), cap + 1)
        depth[fid] = 1 + max((depth[c] for c in calls[fid]), default=0)
    total = sum(sizes.get((n.domain, n.op_type), 1) for n in model.graph.node)
    deepest = max(depth.values(), default=0)
    reason = ""
    if total > cap:
        reason = f"inlining would make more than {cap:,} nodes"
    elif deepest > INLINER_DEPTH:
        reason = f"functions call each other {deepest:,} deep (onnx's inliner stops at {INLINER_DEPTH})"
    if reason:
        return model, 0, Finding("L021", Severity.WARNING,
                                 f"model-local functions not inlined: {reason}; their calls are treated as "
                                 "unknown ops (conservative)")
    from onnx import inliner

    count = len(model.functions)
    try:
        return inliner.inline_local_functions(model), count, None
    except Exception as exc:
        raise ModelError(path, f"cannot inline model-local functions: {str(exc)[:120]}") from None


INLINER_DEPTH = 100
"""onnx's inliner refuses call chains deeper than this."""


def load_model(path: str | os.PathLike[str] | onnx.ModelProto) -> LoadedModel:
    """Read ``path`` as metadata-only ONNX; raise :class:`ModelError` if impossible.

    A ``ModelProto`` already in memory is accepted too (tests, notebooks); its
    external data references resolve against the current directory.
    """
    embedded = None
    if isinstance(path, P.ModelProto):
        model, size, path = path, path.ByteSize(), f"<{_decode(path.graph.name) or 'model'}>"
        base = os.getcwd()
        if not model.HasField("graph"):
            raise ModelError(path, "not an ONNX model (no graph)")
    else:
        path = os.fspath(path)
        base = os.path.dirname(os.path.abspath(path))
        model, size, embedded = _read_proto(path)
    bad_text = decode_strings(model)
    findings = _check_opsets(path, model)
    if bad_text:
        findings.append(_text_finding(bad_text))
    depth = subgraph_depth(model)
    if depth > BUDGETS.subgraph_depth:
        raise ModelError(path, f"If/Loop/Scan bodies are nested {depth} deep (at most {BUDGETS.subgraph_depth} "
                               "are analyzed)")
    refs, ext_findings = check_external_data(path, model, base)
    findings.extend(ext_findings)
    model, inlined, not_inlined = _inline_functions(path, model)
    if not_inlined is not None:
        findings.append(not_inlined)
    return LoadedModel(path, model, size, findings, refs, inlined, embedded, base_dir=base)
