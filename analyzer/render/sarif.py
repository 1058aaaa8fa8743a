"""SARIF 2.1.0 output that GitHub code scanning can place.

What code scanning needs, and how an ONNX model meets it:

- **Rules** come from the code registry (``codes.py``): fixed ``shortDescription``,
  ``fullDescription``, ``help`` (text and Markdown: meaning, fix, example) and a
  ``helpUri`` to the README's "Finding codes" section — never text copied from the
  first finding of a model.
- **Locations**: a model file has no lines, so every result's region is
  ``startLine = 1`` (said in ``run.properties.regionNote``); the ONNX node is the
  logical location. The ``uri`` is relative to the repository root (the nearest
  directory with ``.git`` above the model, else the current directory) with
  ``uriBaseId`` ``%SRCROOT%`` (``--sarif-uri-base-id``); a model outside that root
  keeps an absolute ``file://`` URI.
- **One result per code per model**: repeated findings of one code (HS002 on twelve
  nodes) are one result listing the nodes (``relatedLocations``), so a model cannot
  flood the alert list.
- **Stable fingerprints**: ``partialFingerprints["modelAnalyze/v1"]`` hashes the code,
  the model's URI and the node (``*`` for a grouped result), so an alert survives a
  re-run and a re-export that does not change what it is about.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..codes import DOCS_URI, Code, registry
from ..report import Finding, Report, Severity

LEVEL = {Severity.INFO: "note", Severity.WARNING: "warning", Severity.ERROR: "error"}
SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/model-analyze/model-analyze"
FINGERPRINT = "modelAnalyze/v1"
REGION_NOTE = ("ONNX models are binary protobuf files without lines: region.startLine = 1 stands for the whole "
               "file, and the ONNX node is the result's logical location.")
MAX_RELATED = 1000


@dataclass
class Entry:
    """One model of the run: its report, or the one-line error it ended with."""

    path: str
    report: Report | None = None
    error: str | None = None


def repo_root(path: str) -> str:
    """The nearest directory above ``path`` holding ``.git``, else the current directory."""
    cur = os.path.dirname(os.path.abspath(path))
    while True:
        if os.path.exists(os.path.join(cur, ".git")):
            return cur
        parent = os.path.dirname(cur)
        if parent == cur:
            return os.getcwd()
        cur = parent


def artifact(path: str, root: str, base_id: str) -> dict[str, Any]:
    full = os.path.abspath(path)
    rel = os.path.relpath(full, root)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        return {"uri": "file://" + full.replace(os.sep, "/")}
    return {"uri": rel.replace(os.sep, "/"), "uriBaseId": base_id}


def rule(code: Code) -> dict[str, Any]:
    text = f"{code.explanation}\n\nHow to fix: {code.fix}\n\nExample: {code.example}"
    markdown = (f"**{code.code} {code.name}** ({code.severity} by default)\n\n{code.explanation}\n\n"
                f"**How to fix:** {code.fix}\n\n**Example:**\n\n```\n{code.code} {code.example}\n```")
    return {"id": code.code, "name": code.name,
            "shortDescription": {"text": code.summary.replace("`", "")},
            "fullDescription": {"text": code.explanation},
            "help": {"text": text, "markdown": markdown},
            "helpUri": DOCS_URI,
            "defaultConfiguration": {"level": LEVEL[code.severity]},
            "properties": {"source": code.source, "tags": ["model-analyze", code.source]}}


def _undocumented(code: str, source: str) -> Code:
    return Code(code, code.lower(), Severity.WARNING, f"{code} (undocumented code from {source})",
                f"The plugin {source!r} emitted {code} without registering it.",
                "Ask the plugin's authors to declare its codes (Analyzer(codes=...)).", code, source)


def _node_key(f: Finding) -> str:
    if f.node is None:
        return ""
    return "/".join(x for x in (f.node.graph, f.node.tensor or f.node.name) if x)


def _logical(f: Finding) -> list[dict[str, Any]]:
    if f.node is None:
        return []
    name = f.node.tensor or f.node.name
    kind = "variable" if f.node.tensor and not f.node.op_type else "function"
    return [{"name": name, "fullyQualifiedName": _node_key(f), "kind": kind}]


def fingerprint(code: str, uri: str, node: str) -> str:
    return hashlib.sha256(f"{code}\0{uri}\0{node}".encode()).hexdigest()[:32]


def _results(entry: Entry, index: int, loc: dict[str, Any], rule_index: dict[str, int]) -> list[dict[str, Any]]:
    assert entry.report is not None
    groups: dict[str, list[Finding]] = {}
    for f in entry.report.all_findings():
        groups.setdefault(f.code, []).append(f)
    out = []
    for code, items in groups.items():
        worst = max(items, key=lambda f: f.severity)
        physical = {"artifactLocation": {**loc, "index": index}, "region": {"startLine": 1}}
        nodes = list(dict.fromkeys(k for k in (_node_key(f) for f in items) if k))
        if len(items) == 1:
            text, node = items[0].message, nodes[0] if nodes else ""
        else:
            shown = "; ".join(f.message for f in items[:3])
            more = f"; … {len(items) - 3} more" if len(items) > 3 else ""
            text, node = f"{len(items)} findings: {shown}{more}", "*"
        if len(nodes) > 1:
            text += f" (at {len(nodes)} nodes: {', '.join(nodes[:5])}{', …' if len(nodes) > 5 else ''})"
        location: dict[str, Any] = {"physicalLocation": physical}
        logical = _logical(next((f for f in items if f.node is not None), items[0]))
        if logical:
            location["logicalLocations"] = logical
        result: dict[str, Any] = {
            "ruleId": code, "level": LEVEL[worst.severity], "message": {"text": text},
            "locations": [location],
            "partialFingerprints": {FINGERPRINT: fingerprint(code, loc["uri"], node)},
            "properties": {"analyzer": worst.source, "count": len(items), "nodes": nodes[:MAX_RELATED]},
        }
        if code in rule_index:
            result["ruleIndex"] = rule_index[code]
        if len(items) > 1:
            related = []
            for k, f in enumerate(items[:MAX_RELATED]):
                rel: dict[str, Any] = {"id": k, "physicalLocation": physical, "message": {"text": f.message}}
                if f.node is not None:
                    rel["logicalLocations"] = _logical(f)
                related.append(rel)
            result["relatedLocations"] = related
        out.append(result)
    return out


def render_entries(entries: Iterable[Entry], *, root: str | None = None, base_id: str = "%SRCROOT%",
                   version: str = "", exit_code: int | None = None) -> str:
    """One SARIF run over every model of the invocation."""
    entries = list(entries)
    if root is None:
        root = repo_root(entries[0].path) if entries else os.getcwd()
    root = os.path.abspath(root)
    codes = dict(registry())
    for e in entries:
        for f in e.report.all_findings() if e.report else ():
            if f.code not in codes:
                codes[f.code] = _undocumented(f.code, f.source)
    rules = [rule(c) for c in codes.values()]
    rule_index = {c: k for k, c in enumerate(codes)}
    artifacts, results, notes = [], [], []
    for index, e in enumerate(entries):
        loc = artifact(e.path, root, base_id)
        size = e.report.model.file_bytes if e.report else (os.path.getsize(e.path) if os.path.isfile(e.path) else None)
        art: dict[str, Any] = {"location": dict(loc)}
        if isinstance(size, int) and size >= 0:
            art["length"] = size
        artifacts.append(art)
        if e.report is None:
            notes.append({"level": "error", "message": {"text": e.error or f"{e.path}: could not be analyzed"},
                          "locations": [{"physicalLocation": {"artifactLocation": {**loc, "index": index}}}]})
            continue
        results += _results(e, index, loc, rule_index)
        for s in e.report.failed_sections():
            notes.append({"level": "error", "message": {"text": f"{e.path}: analyzer {s.analyzer} failed: {s.error}"},
                          "locations": [{"physicalLocation": {"artifactLocation": {**loc, "index": index}}}]})
    invocation: dict[str, Any] = {"executionSuccessful": not notes, "toolExecutionNotifications": notes}
    if exit_code is not None:
        invocation["exitCode"] = exit_code
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "model-analyze", "version": version, "semanticVersion": version or None,
                            "informationUri": INFORMATION_URI, "rules": rules}},
        "originalUriBaseIds": {base_id: {"uri": "file://" + root.replace(os.sep, "/").rstrip("/") + "/"}},
        "artifacts": artifacts,
        "results": results,
        "invocations": [invocation],
        "columnKind": "unicodeCodePoints",
        "properties": {"regionNote": REGION_NOTE},
    }
    if not version:
        del run["tool"]["driver"]["semanticVersion"]
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2, ensure_ascii=False) + "\n"


def render(report: Report) -> str:
    """The ``sarif`` format for one report (the command line uses :func:`render_entries`)."""
    return render_entries([Entry(report.model.path, report)], version=report.version)
