"""SARIF 2.1.0 output, for code-scanning UIs and CI annotations.

Each finding becomes a result whose rule id is its stable code; the location is
the model file plus a logical location naming the ONNX node (or tensor).
"""

from __future__ import annotations

import json
from typing import Any

from ..report import Finding, Report, Severity

LEVEL = {Severity.INFO: "note", Severity.WARNING: "warning", Severity.ERROR: "error"}
SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _result(f: Finding, uri: str) -> dict[str, Any]:
    loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": uri}}}
    if f.node is not None:
        name = f.node.tensor or f.node.name
        kind = "variable" if f.node.tensor and not f.node.op_type else "function"
        fq = "/".join(x for x in (f.node.graph, name) if x)
        loc["logicalLocations"] = [{"name": name, "fullyQualifiedName": fq, "kind": kind}]
    return {"ruleId": f.code, "level": LEVEL[f.severity], "message": {"text": f.message},
            "locations": [loc], "properties": {"analyzer": f.source}}


def render(report: Report) -> str:
    findings = report.all_findings()
    rules: dict[str, dict[str, Any]] = {}
    for f in findings:
        rules.setdefault(f.code, {"id": f.code, "shortDescription": {"text": f.message[:120]},
                                  "defaultConfiguration": {"level": LEVEL[f.severity]},
                                  "properties": {"analyzer": f.source}})
    uri = report.model.path
    run = {
        "tool": {"driver": {"name": "model-analyze", "version": report.version,
                            "informationUri": "https://github.com/model-analyze/model-analyze",
                            "rules": list(rules.values())}},
        "artifacts": [{"location": {"uri": uri}, "length": report.model.file_bytes}],
        "results": [_result(f, uri) for f in findings],
        "invocations": [{"executionSuccessful": not report.failed_sections(),
                         "toolExecutionNotifications": [
                             {"level": "error", "message": {"text": f"analyzer {s.analyzer} failed: {s.error}"}}
                             for s in report.failed_sections()]}],
    }
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"
