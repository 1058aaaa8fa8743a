"""The registry of finding codes: one entry per code, with what it means and how to fix it.

Why: a reviewer reading ``AT030`` in a CI log, a SARIF viewer showing a rule, and
``select``/``ignore``/``severity`` in the config all need the same facts about a
code — its name, default severity, meaning, fix and an example. They live here and
nowhere else; ``model-analyze rules`` / ``explain CODE``, the SARIF rules and the
README's "Finding codes" table are generated from them, and a test fails when a
code is emitted that has no entry.

Core findings (loader, runner, config, budgets, baselines) are registered in
:data:`CORE`. An analyzer declares the codes it emits next to the code that emits
them, ``Analyzer(..., codes=CODES)`` — the core never lists a plugin's codes, and a
third-party plugin's codes show up in ``rules`` and SARIF exactly like ours.

Selectors follow ruff: ``AT`` selects every ``AT`` code, ``AT0`` the ``AT0xx`` ones,
``AT030`` one code; letters must match whole (``A`` selects neither ``AT`` nor ``AR``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .codespec import CODE_RE, SELECTOR_RE, Code, _split, is_selector, matches, specificity
from .severity import Severity

if TYPE_CHECKING:
    from .manager import PluginManager

DOCS_URI = "https://github.com/model-analyze/model-analyze/blob/main/README.md#finding-codes"
"""Where ``helpUri`` of every SARIF rule points: the README section generated from this registry."""


def _c(code: str, name: str, severity: Severity, summary: str, explanation: str, fix: str,
       example: str, action: str = "fix") -> Code:
    return Code(code, name, severity, summary, explanation, fix, example, action=action)


W, E, I = Severity.WARNING, Severity.ERROR, Severity.INFO  # noqa: E741

CORE: tuple[Code, ...] = (
    _c("L001", "ir-version-too-new", W, "IR version newer than the installed onnx knows",
       "The model declares an ONNX IR version the installed onnx package does not know; fields it "
       "does not know are ignored, so the analysis may miss something.",
       "Upgrade onnx (`pip install -U onnx`) or export with an older IR version.",
       "IR version 12 is newer than onnx 1.17.0 knows (10); unknown fields are ignored"),
    _c("L002", "no-onnx-opset", W, "no `ai.onnx` opset declared",
       "Nodes of the default domain are used but the model imports no `ai.onnx` opset, so the op "
       "semantics are ambiguous; the latest opset is assumed.",
       "Re-export with an explicit opset (`opset_version=` in torch.onnx.export).",
       "model declares no ai.onnx opset; assuming the latest"),
    _c("L010", "external-data-no-location", E,
       "external data marked but no location / NUL in location / location not valid UTF-8",
       "A tensor is marked as stored externally but names no file (or a name with a NUL byte): the "
       "model is malformed and the tensor cannot be located.",
       "Re-save the model with `onnx.save(..., save_as_external_data=True)` so every external tensor "
       "names its file.",
       "tensor 'w' is marked external but names no location"),
    _c("L011", "external-data-absolute-path", E,
       "external data location is an absolute path (never opened)",
       "An external-data location that is an absolute path could read any file on the machine; it "
       "is never opened. A model you did not write that does this is hostile or broken.",
       "Store external data next to the model with a relative location.",
       "external data location '/etc/passwd' is an absolute path; refusing to look outside the model "
       "directory"),
    _c("L012", "external-data-escapes-dir", E,
       "external data location escapes the model directory with `..` (never opened)",
       "A location that climbs out of the model's directory with `..` is never opened: it could read "
       "files the model has no business reading.",
       "Keep external data files in the model's directory (or below it).",
       "external data location '../../secret.bin' escapes the model directory"),
    _c("L013", "external-data-symlink", E,
       "external data location goes through a symlink — file or parent directory; symlinks are never followed "
       "(never opened)",
       "Every component of an external-data location is opened without following symlinks, so a link (to the "
       "file or to a parent directory) can never lead outside the model's directory; such a location is never "
       "opened.",
       "Copy the data file into the model's directory instead of linking to it.",
       "tensor 'w': external data location 'sub/w.bin' is a symlink; symlinks are never followed (never opened)"),
    _c("L014", "external-data-missing", W,
       "external data file missing — fine, weights are never read",
       "The weights file an external tensor names is not there. Weights are never read, so the "
       "structure is still analyzed; `verify`, which runs the model, needs the file.",
       "Nothing for a static review; put the data file beside the model to run `verify`.",
       "external data file 'model.onnx.data' is missing; weights are never read, so the structure is "
       "still analyzed", action="none"),
    _c("L015", "external-data-bad-offset", W, "external data offset/length are not non-negative integers",
       "The offset or length of an external tensor is not a non-negative integer; the reference cannot be "
       "read (weights are never read for the analysis; `verify` refuses it).",
       "Re-save the model with onnx's external-data helpers.",
       "tensor 'w': external data offset/length are not integers"),
    _c("L016", "external-data-not-a-file", E,
       "external data location is a FIFO, directory or device, not a regular file (never opened)",
       "Only regular files are ever opened for external data: a FIFO could hang the reader and a device "
       "could be read forever.",
       "Point the location at the data file itself.",
       "tensor 'w': external data location 'w.bin' is a FIFO, not a regular file (never opened)"),
    _c("L017", "external-data-past-end", W, "external data range lies past the end of its file",
       "The tensor's offset + length reaches past the end of its data file: the file is truncated or the "
       "reference is wrong.",
       "Re-save the model with its data, or copy the complete data file.",
       "tensor 'w': external data bytes 0..4,096 of 'w.bin' are past the end of the file (1,024 bytes)"),
    _c("L018", "external-data-over-budget", E,
       "external data to read is over the read budget (`verify` only; the analysis never reads weights)",
       "`verify` runs the model and so reads its weights, up to a fixed budget (2 GiB) measured from the files' "
       "real sizes; a larger read is refused before it starts, with one line.",
       "Run `verify` on a smaller export of the same architecture.",
       "external data is over the budget of 2.0 GiB (at tensor 'lm_head.weight')"),
    _c("L020", "string-not-utf8", W, "string fields hold bytes that are not UTF-8: read with `\\xNN` escapes",
       "Names, dim params, domains or locations that are not valid UTF-8 are read with \\xNN escapes (never a "
       "crash); names that differ only in invalid bytes stay distinct.",
       "Re-export with UTF-8 names.",
       "2 string field(s) hold bytes that are not UTF-8 (node.name, dim_param); read with \\xNN escapes"),
    _c("L021", "functions-not-inlined", W,
       "model-local functions not inlined (expansion over the node budget, or calls nested deeper than onnx's "
       "inliner goes): calls are unknown ops",
       "Inlining would exceed the node budget (functions calling each other can expand exponentially) or nest "
       "deeper than onnx's inliner goes; the calls stay as unknown ops, treated conservatively.",
       "Inline the functions at export time, or report the model.",
       "model-local functions not inlined: inlining would make more than 2,000,000 nodes; their calls are "
       "treated as unknown ops (conservative)"),
    _c("U001", "unknown-op", W,
       "op with no rule: treated conservatively (all-to-all dependency, zero cost)",
       "No rule of the core or of a plugin knows this op, so every output position is assumed to "
       "depend on every input position (sound for reach and receptive field, never tight) and the "
       "op costs zero.",
       "Install the plugin that knows the op, or write one: `OpRule(op_type, domain, shape=..., "
       "flow=..., cost=...)` through the `model_analyze_op_rules` hook.",
       "unknown op custom::MyOp (2 nodes): no rules; treated conservatively (every output position "
       "depends on every input position, zero cost)", action="extend"),
    _c("D001", "dims-at-defaults", W,
       "numbers at guessed defaults (image H/W, a length): the binding to type is named; info when only a "
       "batch of 1 / an empty past is defaulted",
       "Some dims are symbolic and nobody bound them; the concrete numbers of the report are taken at "
       "stated defaults (a batch-like axis 1, `past*` 0, image H/W from the model's metadata or 224, "
       "a raw signal's length 16,000 samples, others 128). A guessed image size or length changes every "
       "cost, so it is a warning naming the binding to type; only a batch of 1 or an empty past is info.",
       "Bind the dims you deploy with: `--dim NAME=VALUE`, `--seq-len N`, `--input-shape NAME=D1,...` "
       "or `dims`/`seq-len`/`input-shapes` in the config.",
       "numbers are at stated defaults seq=128 — bind with `--seq-len N`", action="bind"),
    _c("D002", "binding-cannot-run", E,
       "at the binding an op's output has no length (a conv/pool/STFT window longer than its input, or a "
       "negative dim): the model cannot run there; the smallest input that works is named, no cost is given",
       "A windowed op (Conv, pooling, STFT) needs at least one window position: ``floor((L + pads - window) / "
       "stride) + 1 ≥ 1``. Below that the runtime rejects the input, and the shape formulas would give a "
       "negative length and negative costs, so none are printed. A guessed default is raised to the smallest "
       "input that runs instead; this finding means the binding you gave is too small.",
       "Bind a larger input: the finding names the dim and its smallest working value (`--dim NAME=VALUE`).",
       "the model cannot run at this binding: Conv 'Conv_2' output 'x' axis 2 has length "
       "floor((samples - 512)/160) + 1 = -2; samples must be ≥ 512 (Conv 'Conv_2' window 512); no cost is "
       "given at this binding", action="bind"),
    _c("C001", "config-binding-skipped", I,
       "a dim, seq-len or input shape from the config does not apply to this model: skipped",
       "One configuration covers a folder of different models; a binding the model has no use for "
       "(`dims = { batch = 1 }` on a model without `batch`, `seq-len` on a CNN) is skipped for that "
       "model and said here. The same binding typed on the command line is an error.",
       "Nothing, or move the binding into an `[[tool.model-analyze.overrides]]` block whose `paths` "
       "match only the models that have it.",
       "dims.batch = 1 (pyproject.toml) skipped: the model has no dim 'batch' (its dims: s20)", action="none"),
    _c("P001", "plugin-import-failed", E, "a plugin failed to import",
       "An installed plugin (entry-point group `model_analyze`) raised on import; its analyzers, "
       "rules and formats are missing from this run.",
       "Fix or uninstall the plugin; `model-analyze plugins` shows the error.",
       "plugin 'my_plugin' (my-dist) could not be loaded: ModuleNotFoundError: No module named 'x'"),
    _c("P002", "plugin-hook-failed", E, "a plugin's hook raised",
       "A plugin's hook (analyzers, op rules, formats, codes) raised; what it provides is missing.",
       "Fix the plugin; rerun with `--debug` for the traceback.",
       "plugin 'my_plugin' failed to provide op rules: ValueError: bad rule"),
    _c("P003", "analyzer-shadowed", W, "two plugins provide an analyzer of the same name",
       "Two analyzers share a name; the one registered last wins and the other does not run.",
       "Rename one of them, or uninstall the plugin you do not want.",
       "analyzer 'attention' from plugin 'mine' shadows another"),
    _c("R001", "shape-rule-failed", E,
       "a shape rule raised (op, node and rule named): the node's outputs fall back to the exporter's "
       "declared types, else unknown",
       "A shape rule raised on a node; the analysis never stops for it, but the node's output shapes come "
       "from the exporter's value_info or stay unknown, which can leave later costs uncosted.",
       "Report it with the model (the message names the rule and the line); a plugin can override the op's "
       "rule meanwhile.",
       "shape rule model_analyze.ops.shape_rules.tensor.reshape raised on Reshape node '/r': ValueError: ...",
       action="extend"),
    _c("R002", "flow-rule-failed", E,
       "a token-flow rule raised: the node is treated as mixing every position; a receptive field past it "
       "is reported as a lower bound (`≥`), never as the field",
       "A token-flow rule raised; the node is treated conservatively (every position mixed), so reach is "
       "still sound and a receptive field past it is only a lower bound.",
       "Report it with the model; a plugin can give the op a flow rule meanwhile.",
       "flow rule model_analyze.tokenflow.rules.conv.conv raised on Conv node '/c': IndexError: ...", action="extend"),
    _c("R003", "cost-rule-failed", E,
       "a cost rule (or the cost model) raised: the node counts zero and the totals are marked lower bounds",
       "A cost rule raised; the node counts zero and every total it feeds is a lower bound (≥).",
       "Report it with the model; a plugin can give the op a cost rule meanwhile.",
       "cost rule model_analyze.cost.rules.matmul raised on MatMul node '/m': TypeError: ...", action="extend"),
    _c("R004", "onnx-inference-failed", W,
       "`onnx.shape_inference`, needed for tensors our rules left unknown, failed: they stay unknown",
       "Our rules come first; onnx's shape inference fills what they leave unknown. When it fails, those "
       "tensors stay unknown and nodes that need them may go uncosted.",
       "Bind the free dims (`--dim`, `--input-shape`) or report the model.",
       "onnx shape inference failed: InferenceError: ... (12 tensors stay unknown)", action="bind"),
    _c("R005", "broadcast-dims-differ", W,
       "a broadcast joins two dims that must be equal but differ at the binding (both named with their "
       "values; a concrete or input-derived one is kept, never their max): the model does not run there, "
       "or a shape rule is wrong",
       "Element-wise ops broadcast dims that must be equal (or 1). Two symbolic dims that differ at the "
       "report's binding mean the model cannot run there, or a shape rule is wrong; the analysis keeps "
       "the concrete or input-derived dim, never their max.",
       "Bind the dims consistently (both sides of the broadcast), or report the model if they are.",
       "Add '/add' broadcasts dims that must be equal but differ at this binding: seq = 128 and past + 1 = 1",
       action="bind"),
    _c("P010", "analyzer-failed", E,
       "an analyzer raised; its section says `failed: <reason>`, the others still run",
       "One analyzer raising never sinks the report: its section is marked failed with the reason "
       "and every other analyzer still runs. The exit code is 1.",
       "Report it with the model (or a reproducer); `--debug` shows the traceback.",
       "analyzer 'attention' failed: ValueError: ... at masks.py:120", action="extend"),
)


def registry(pm: PluginManager | None = None) -> dict[str, Code]:
    """Every registered code: the core's and each analyzer's, by code.

    Two registrations of one code keep the first (the core's, then plugins in load order).
    """
    from .manager import get_plugin_manager

    pm = pm or get_plugin_manager()
    cached = getattr(pm, "_codes", None)
    if cached is not None:
        return cached
    from .baseline import CODES as BASELINE  # declared next to the code that emits them
    from .model_budgets import CODES as BUDGETS

    out: dict[str, Code] = {c.code: c for c in (*CORE, *BUDGETS, *BASELINE)}
    items, _ = pm.analyzers()
    for plugin, analyzer in items:
        for c in getattr(analyzer, "codes", ()) or ():
            if isinstance(c, Code) and CODE_RE.match(c.code) and c.code not in out:
                out[c.code] = replace(c, source=plugin)
    result = dict(sorted(out.items(), key=lambda kv: _order(kv[0])))
    pm._codes = result  # type: ignore[attr-defined]  # one registry per plugin manager
    return result


def _order(code: str) -> tuple[int, str, str]:
    letters, digits = _split(code)
    rank = {"L": 0, "U": 1, "D": 2, "C": 3, "P": 4, "R": 4, "BG": 6, "BL": 7}.get(letters, 5)
    return rank, letters, digits


def builtin(pm: PluginManager | None = None) -> dict[str, Code]:
    """The codes this distribution ships (core and built-in analyzers): the README's table."""
    from .manager import get_plugin_manager

    pm = pm or get_plugin_manager()
    ours = {name for name, info in pm.infos.items() if info.distribution == "model-analyze"}
    return {k: c for k, c in registry(pm).items() if c.source == "core" or c.source in ours}


def lookup(code: str, pm: PluginManager | None = None) -> Code | None:
    return registry(pm).get(code.strip().upper())


def expand(selector: str, pm: PluginManager | None = None) -> list[Code]:
    """Registered codes a selector matches (empty for an unknown selector)."""
    return [c for c in registry(pm).values() if matches(selector, c.code)]


def markdown_table(codes: dict[str, Code]) -> str:
    """The README's "Finding codes" table (the README is checked against this)."""
    lines = ["| code | name | severity | meaning |", "|---|---|---|---|"]
    for c in codes.values():
        summary = c.summary.replace("|", "\\|")
        lines.append(f"| {c.code} | {c.name} | {c.severity} | {summary} |")
    return "\n".join(lines) + "\n"


__all__ = ["CODE_RE", "CORE", "DOCS_URI", "SELECTOR_RE", "Code", "builtin", "expand", "is_selector", "lookup",
           "markdown_table", "matches", "registry", "specificity"]
