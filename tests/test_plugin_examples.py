"""The three example plugins of docs/plugins.md.

Installed offline as a user would, they are listed by ``plugins`` with their options and
plugin API, and work in text, JSON, HTML and their own format. The custom ops' token flow
is exact: every reach is derived by hand below, and TokenShift's is also checked against
onnxruntime running the same computation written with standard ops (onnxruntime cannot
run a custom-domain op). The guide documents every hook and every name of the plugin
API, and the examples use them all — importing nothing else from model_analyze.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from conftest import ROOT, SAMPLES
from model_analyze import hookspecs, plugin_api
from model_analyze.manager import get_plugin_manager
from model_analyze.runner import AnalyzeOptions, analyze, prepare
from model_analyze.tokenflow import reach

EXAMPLES = {"op_allowlist": SAMPLES / "example_plugin" / "ma_example_plugin.py",
            "tokenshift": SAMPLES / "plugin_tokenshift" / "ma_tokenshift.py",
            "vega": SAMPLES / "plugin_vega" / "ma_vega.py"}
DOMAIN = "my.domain"
GUIDE = ROOT / "docs" / "plugins.md"


def _load(name: str):
    path = EXAMPLES[name]
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example():
    """Register example plugins (by entry-point name) for one test, in-process."""
    pm = get_plugin_manager()
    added = []

    def add(name):
        module = _load(name)
        pm.register(module, name)
        added.append(name)
        return module

    yield add
    for name in added:
        pm.unregister(name)


# -- models -------------------------------------------------------------------------------------
C = 4
MIX = 0.3  # strictly between 0 and 1: both x[t] and x[t-1] reach y[t]


def _model(nodes, inits=(), out="y"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "T", C])
    y = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], list(inits)),
                             opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)])


def token_shift_model(layers: int):
    names = ["x"] + [f"h{k}" for k in range(1, layers)] + ["y"]
    nodes = [helper.make_node("TokenShift", [names[k], "mix"], [names[k + 1]], domain=DOMAIN) for k in range(layers)]
    return _model(nodes, [numpy_helper.from_array(np.full(C, MIX, np.float32), "mix")])


def token_shift_in_standard_ops(layers: int, T: int):
    """The same computation with ops onnxruntime runs: prev = Pad(x, one zero row in front)[:, :T];
    y = mix·x + (1 − mix)·prev."""
    inits = [numpy_helper.from_array(np.full(C, MIX, np.float32), "mix"),
             numpy_helper.from_array(np.full(C, 1 - MIX, np.float32), "keep"),
             numpy_helper.from_array(np.array([0, 1, 0, 0, 0, 0], np.int64), "pads"),
             numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([T], np.int64), "len"),
             numpy_helper.from_array(np.array([1], np.int64), "axis")]
    nodes, cur = [], "x"
    for k in range(layers):
        out = "y" if k == layers - 1 else f"h{k}"
        nodes += [helper.make_node("Pad", [cur, "pads"], [f"p{k}"]),
                  helper.make_node("Slice", [f"p{k}", "zero", "len", "axis"], [f"prev{k}"]),
                  helper.make_node("Mul", [cur, "mix"], [f"a{k}"]),
                  helper.make_node("Mul", [f"prev{k}", "keep"], [f"b{k}"]),
                  helper.make_node("Add", [f"a{k}", f"b{k}"], [out])]
        cur = out
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, C])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return helper.make_model(helper.make_graph(nodes, "ref", [x], [y], inits),
                             opset_imports=[helper.make_opsetid("", 17)])


def chain_model():
    """x → TokenShift → TokenShift → CausalConv(kernel 3) → Gelu2 → Stride(2) → Pick([5, 0, 7]) → Summary."""
    nodes = [helper.make_node("TokenShift", ["x", "mix"], ["a"], domain=DOMAIN),
             helper.make_node("TokenShift", ["a", "mix"], ["b"], domain=DOMAIN),
             helper.make_node("CausalConv", ["b"], ["c"], domain=DOMAIN, kernel=3),
             helper.make_node("Gelu2", ["c"], ["d"], domain=DOMAIN),
             helper.make_node("Stride", ["d"], ["e"], domain=DOMAIN, stride=2),
             helper.make_node("Pick", ["e"], ["f"], domain=DOMAIN, positions=[5, 0, 7]),
             helper.make_node("Summary", ["f"], ["y"], domain=DOMAIN)]
    return _model(nodes, [numpy_helper.from_array(np.full(C, MIX, np.float32), "mix")])


def _positions(ctx, tensor, t):
    return sorted({p for lo, hi in reach(ctx, tensor, 1, t).get(("x", 1), []) for p in range(lo, hi + 1)})


def _ort_sees(model, T: int, seed: int) -> dict[int, list[int]]:
    """Run ``model`` (standard ops, input x [1, T, C]) in onnxruntime: for each output position
    t, the input positions s whose change (x[s] += 1) changes y[t] — dependence by perturbation."""
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(seed).standard_normal((1, T, C)).astype(np.float32)
    base = sess.run(None, {"x": x})[0]
    sees: dict[int, list[int]] = {t: [] for t in range(T)}
    for s in range(T):
        moved = x.copy()
        moved[:, s, :] += 1.0
        diff = np.abs(sess.run(None, {"x": moved})[0] - base).max(axis=(0, 2))
        for t in np.flatnonzero(diff > 1e-6):
            sees[int(t)].append(s)
    return sees


# -- token flow, by hand -------------------------------------------------------------------------
def test_without_the_plugin_the_ops_are_unknown_and_mix_everything():
    report = analyze(token_shift_model(1), AnalyzeOptions(dims={"T": 12}))
    assert report.model.unknown_ops == {"my.domain::TokenShift": 1}
    assert _positions(prepare(token_shift_model(1), AnalyzeOptions(dims={"T": 12})), "y", 5) == list(range(12))


@pytest.mark.parametrize("layers", [1, 3])
def test_token_shift_reach_is_exact(example, layers):
    """By hand: y[t] = mix·x[t] + (1 − mix)·x[t − 1] with x[−1] = 0, so one layer's position t
    depends on x[t − 1] and x[t] (position 0 on x[0] only), and L layers' on x[t − L .. t]
    clipped at 0 — every one of them, since 0 < mix < 1 leaves both terms."""
    example("tokenshift")
    T = 12
    ctx = prepare(token_shift_model(layers), AnalyzeOptions(dims={"T": T}))
    for t in range(T):
        assert _positions(ctx, "y", t) == list(range(max(0, t - layers), t + 1)), t
    assert analyze(token_shift_model(layers), AnalyzeOptions(dims={"T": T})).model.unknown_ops == {}


@pytest.mark.parametrize("layers", [1, 3])
def test_token_shift_hand_derivation_against_onnxruntime(example, layers):
    """onnxruntime runs the token shift written with standard ops: changing x[s] changes y[t]
    exactly for the s of the hand derivation above — the set the engine reports for the custom op."""
    T = 12
    sees = _ort_sees(token_shift_in_standard_ops(layers, T), T, seed=0)
    example("tokenshift")
    ctx = prepare(token_shift_model(layers), AnalyzeOptions(dims={"T": T}))
    for t in range(T):
        assert sees[t] == list(range(max(0, t - layers), t + 1)) == _positions(ctx, "y", t), t


def test_the_other_custom_ops_by_hand(example):
    """T = 16. Two shifts and a causal conv of 3: c[t] sees x[t−4 .. t]; Gelu2 moves nothing;
    Stride 2: e[i] = mean(d[2i], d[2i+1]) sees x[2i−4 .. 2i+1], ⌈16/2⌉ = 8 positions; Pick
    [5, 0, 7]: f[0] = e[5] → x[6..11], f[1] = e[0] → x[0..1], f[2] = e[7] → x[10..15];
    Summary: the union, x[0..1] ∪ x[6..15]. Cost (B = 1, C = 4, 64 elements per [1, 16, 4]
    tensor): TokenShift 3 FLOPs/element × 64 × 2 = 384; CausalConv 3 MACs/element × 64 = 192
    MACs (384 FLOPs); Gelu2 8 × 64 = 512; Stride 2 FLOPs per output × 32 = 64; Pick 0;
    Summary one per input element, 12 — 1,356 FLOPs, 192 MACs."""
    example("tokenshift")
    opts = AnalyzeOptions(dims={"T": 16})
    ctx = prepare(chain_model(), opts)
    assert [ctx.evaluate(d) for d in ctx.shapes.shape("e")] == [1, 8, 4]
    assert ctx.shapes.shape("f") == (1, 3, 4) and ctx.shapes.shape("y") == (1, 1, 4)
    for t in range(16):
        assert _positions(ctx, "c", t) == list(range(max(0, t - 4), t + 1))
    for i in range(8):
        assert _positions(ctx, "e", i) == list(range(max(0, 2 * i - 4), 2 * i + 2))
    assert [_positions(ctx, "f", j) for j in range(3)] == [list(range(6, 12)), [0, 1], list(range(10, 16))]
    assert _positions(ctx, "y", 0) == [0, 1, *range(6, 16)]
    hot = analyze(chain_model(), opts).section("hotspots")
    assert hot.metric("flops").value == 1356 and hot.metric("macs").value == 192


# -- a custom op claimed as attention (firstresult hook) -----------------------------------------
WINDOW = 3


def local_attention_model(window: int = WINDOW, name: str = "LocalAttention"):
    return _model([helper.make_node(name, ["x", "x", "x"], ["y"], domain=DOMAIN, window=window)])


def local_attention_in_standard_ops(T: int, window: int = WINDOW):
    """softmax(x·xᵀ/√C + band)·x with ops onnxruntime runs; band[i, j] = 0 for
    i − W < j ≤ i, else −1e9 (exp underflows to exactly 0 in float32)."""
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    band = np.where((j <= i) & (j > i - window), 0.0, -1e9).astype(np.float32)
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["x", "xt"], ["s"]),
             helper.make_node("Mul", ["s", "scale"], ["ss"]),
             helper.make_node("Add", ["ss", "band"], ["sm"]),
             helper.make_node("Softmax", ["sm"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "x"], ["y"])]
    inits = [numpy_helper.from_array(np.array(C ** -0.5, np.float32), "scale"), numpy_helper.from_array(band, "band")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, C])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return helper.make_model(helper.make_graph(nodes, "ref", [x], [y], inits),
                             opset_imports=[helper.make_opsetid("", 17)])


def test_local_attention_claimed_by_hand(example):
    """T = 8, W = 3, B = 1, C = 4. Query t sees keys max(0, t − 2) .. t. Cost: q·kᵀ and P·v
    are C MACs per (query, key) pair each: dense 8·8 pairs × 8 = 512 MACs (1,024 FLOPs);
    visible pairs 1 + 2 + 3·6 = 21, so 21 × 8 = 168 MACs = 336 effective FLOPs."""
    from model_analyze.attention import attention_layers

    T = 8
    without = prepare(local_attention_model(), AnalyzeOptions(dims={"T": T}))
    assert attention_layers(without) == [] and _positions(without, "y", 5) == list(range(T))
    example("tokenshift")
    ctx = prepare(local_attention_model(), AnalyzeOptions(dims={"T": T}))
    for t in range(T):
        assert _positions(ctx, "y", t) == list(range(max(0, t - WINDOW + 1), t + 1)), t
    [layer] = attention_layers(ctx)
    assert (layer.mask.family, layer.mask.params, layer.heads, layer.kv_heads, layer.head_dim) == (
        "sliding_window", {"window": 3}, 1, 1, 4)
    assert "claimed by plugin 'tokenshift'" in layer.mask.note and layer.scale == 0.5
    report = analyze(local_attention_model(), AnalyzeOptions(dims={"T": T}))
    hot = report.section("hotspots")
    assert hot.metric("macs").value == 512 and hot.metric("flops.effective").value == 336
    assert report.model.unknown_ops == {}


def test_local_attention_claim_against_onnxruntime(example):
    """onnxruntime runs the same attention with standard ops: changing x[s] changes y[t]
    exactly for the keys the claimed window lets query t see."""
    T = 10
    sees = _ort_sees(local_attention_in_standard_ops(T), T, seed=1)
    example("tokenshift")
    ctx = prepare(local_attention_model(), AnalyzeOptions(dims={"T": T}))
    for t in range(T):
        assert sees[t] == list(range(max(0, t - WINDOW + 1), t + 1)) == _positions(ctx, "y", t), t


# -- installed, on the command line --------------------------------------------------------------
@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The three examples installed offline into one directory, as `pip install` would."""
    work = tmp_path_factory.mktemp("examples")
    sources = []
    for path in EXAMPLES.values():
        sources.append(str(shutil.copytree(path.parent, work / path.parent.name)))
    site = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(site), *sources], check=True, capture_output=True)
    save(chain_model(), work / "chain.onnx")
    save(token_shift_model(1), work / "tokenshift.onnx")
    save(local_attention_model(), work / "local_attention.onnx")
    return work, dict(os.environ, PYTHONPATH=str(site))


def _run(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "model_analyze", *map(str, args)], env=env, capture_output=True,
                          text=True, cwd=cwd)


def test_installed_examples_are_listed_with_their_options_and_api(installed):
    _, env = installed
    listing = _run(env, "plugins", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    rows = {p["name"]: p for p in json.loads(listing.stdout)["plugins"]}
    # a plugin for an older minor runs on a newer one: only the tokenshift example uses 1.1's hook
    assert {n: rows[n]["api"] for n in EXAMPLES} == {"op_allowlist": "1.0", "tokenshift": "1.1", "vega": "1.0"}
    allow = rows["op_allowlist"]
    assert allow["distribution"] == "model-analyze-example-plugin" and allow["analyzers"] == ["op-allowlist"]
    assert allow["devices"] == ["example-npu"]
    assert set(allow["hooks"]) == {"model_analyze_analyzers", "model_analyze_devices", "model_analyze_commands"}
    options = {o["key"]: o for o in allow["options"]}
    assert options["allowlist"]["type"] == "list[str]" and "Conv" in options["allowlist"]["default"]
    assert options["allow-custom-domains"] == {"analyzer": "op-allowlist", "key": "allow-custom-domains",
                                               "type": "bool", "default": False, "flag": None,
                                               "help": "ops of a domain other than ai.onnx are fine (no X002)"}
    assert sorted(rows["tokenshift"]["op_rules"]) == sorted(f"{DOMAIN}::{op}" for op in (
        "TokenShift", "CausalConv", "Stride", "Pick", "Summary", "Gelu2", "LocalAttention"))
    assert set(rows["tokenshift"]["hooks"]) == {"model_analyze_op_rules", "model_analyze_attention"}
    assert rows["vega"]["formats"] == ["vega-lite"]
    text = _run(env, "plugins").stdout
    assert "op_allowlist  (model-analyze-example-plugin 0.1.0, plugin API 1.0)" in text
    assert "option     op-allowlist.allow-custom-domains: bool = False" in text


def test_installed_examples_work_in_text_json_html_and_their_own_format(installed, tmp_path):
    import jsonschema

    work, env = installed
    model = work / "chain.onnx"
    text = _run(env, model, "--dim", "T=16")
    assert text.returncode == 1, text.stderr  # X001 errors: custom ops are not on the allowlist
    assert "== Deployment op allowlist" in text.stdout and "U001" not in text.stdout
    assert "error   X001 op my.domain::TokenShift is not supported by the target runtime" in text.stdout

    doc = json.loads(_run(env, model, "--dim", "T=16", "--format", "json").stdout)
    assert doc["model"]["unknown_ops"] == {}
    section = next(s for s in doc["sections"] if s["analyzer"] == "op-allowlist")
    schema = plugin_api.json_schema(_load("op_allowlist").AllowlistData)
    jsonschema.validate(section["data"], schema)
    assert {u["op"]: u["nodes"] for u in section["data"]["unsupported"]}["my.domain::TokenShift"] == 2
    hot = next(s for s in doc["sections"] if s["analyzer"] == "hotspots")
    assert {m["key"]: m["value"] for m in hot["metrics"]}["flops"] == 1356

    html = tmp_path / "r.html"
    assert _run(env, model, "--dim", "T=16", "--format", "html", "-o", html).returncode == 1
    page = html.read_text()
    chart = page[page.index("Nodes per unsupported op"):]
    assert "Deployment op allowlist" in page and chart[:chart.index("</svg>")].count('class="bar"') == 6

    vega = json.loads(_run(env, model, "--dim", "T=16", "--format", "vega-lite").stdout)
    titles = [c["title"] for c in vega["vconcat"]]
    assert "Deployment op allowlist: Nodes per unsupported op" in titles and titles[-1] == "Findings by severity"
    by_sev = {r["severity"]: r["count"] for r in vega["vconcat"][-1]["data"]["values"]}
    assert by_sev["error"] == 6 and by_sev["warning"] == 6
    # a built-in analyzer's chart goes through the plugin's format unchanged: the RF growth of the
    # conv sample, its points the conv/pool nodes in graph order (3 convs and 2 pools, by the graph)
    rf = json.loads(_run(env, SAMPLES / "convnet.onnx", "--format", "vega-lite").stdout)["vconcat"][0]
    assert rf["title"].startswith("Receptive field: ") and rf["mark"] == {"type": "line", "point": True}
    assert rf["encoding"]["y"]["scale"] == {"type": "log"} and len(rf["data"]["values"]) == 5


def test_installed_examples_options_device_command_and_codes(installed, tmp_path):
    work, env = installed
    model = work / "chain.onnx"
    every_op = ",".join(f"{DOMAIN}::{op}" for op in ("TokenShift", "CausalConv", "Stride", "Pick", "Summary",
                                                    "Gelu2"))
    ok = _run(env, model, "--dim", "T=16", "--select", "op-allowlist", "--option", f"op-allowlist.allowlist={every_op}",
              "--option", "op-allowlist.allow-custom-domains=true")
    assert ok.returncode == 0 and "all ops supported" in ok.stdout, ok.stdout + ok.stderr
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.model-analyze.plugins.op-allowlist]\nallowlist = {json.dumps(every_op.split(","))}\n')
    assert "all ops supported" in _run(env, model, "--dim", "T=16", "--select", "op-allowlist", cwd=tmp_path).stdout
    bad = _run(env, model, "--option", "op-allowlist.allow-custom-domains=maybe")
    assert bad.returncode == 2 and bad.stderr.strip() == ("model-analyze: error: --option op-allowlist.allow-custom-"
                                                          "domains: expected true or false, got 'maybe'")
    served = json.loads(_run(env, SAMPLES / "convnet.onnx", "--device", "example-npu", "--select", "serving",
                             "--format", "json").stdout)
    assert served["sections"][0]["data"]["device"]["name"] == "example-npu"
    assert _run(env, "allowlist").stdout.split()[:3] == ["Add", "AveragePool", "BatchNormalization"]
    explained = _run(env, "explain", "X002").stdout
    assert explained.startswith("X002 custom-domain-op (warning by default; op_allowlist)")
    reached = _run(env, "reach", work / "tokenshift.onnx", "--dim", "T=16", "--at", "9").stdout
    assert reached.strip() == "y[axis 1] position 9 depends on x[1] positions 8..9 (2 of 16) at T=16"
    assert reached.strip() in GUIDE.read_text()  # the guide shows this very line
    # window 3: query 5 sees keys 3..5 (the claim, through the installed plugin)
    reached = _run(env, "reach", work / "local_attention.onnx", "--dim", "T=8", "--at", "5").stdout
    assert reached.strip() == "y[axis 1] position 5 depends on x[1] positions 3..5 (3 of 8) at T=8"


# -- the guide covers the API, the examples use it -----------------------------------------------
def _hookspecs() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith("model_analyze_"))


def test_the_guide_documents_every_hook_and_every_api_name():
    guide = GUIDE.read_text()
    for hook in _hookspecs():
        assert f"**`{hook}(" in guide, f"hook {hook} is not documented in docs/plugins.md"
    reference = guide[guide.index("## Reference"):]
    listed = re.findall(r"^\| `([A-Za-z_]+)` \|", reference, re.M)
    assert sorted(listed) == sorted(plugin_api.__all__), "docs/plugins.md's reference must list plugin_api.__all__"


def _uses(path) -> tuple[set[str], set[str], set[str]]:
    """(plugin_api names the module uses, hooks it implements, model_analyze modules it imports)."""
    tree = ast.parse(path.read_text())
    names: dict[str, str] = {}  # local alias → plugin_api name
    modules: set[str] = set()  # aliases of plugin_api itself
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("model_analyze"):
            for a in node.names:
                if node.module == "model_analyze" and a.name == "plugin_api":
                    modules.add(a.asname or a.name)
                    imported.add("model_analyze.plugin_api")
                else:
                    imported.add(node.module)
                if node.module == "model_analyze.plugin_api":
                    names[a.asname or a.name] = a.name
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names if a.name.startswith("model_analyze"))
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in names:
            used.add(names[node.id])
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            used.add(node.attr)
    hooks = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("model_analyze_")}
    return used, hooks, imported


def test_the_examples_exercise_every_hook_and_every_api_name_and_nothing_else():
    used: set[str] = set()
    hooks: set[str] = set()
    for path in EXAMPLES.values():
        names, implemented, imported = _uses(path)
        assert imported == {"model_analyze.plugin_api"}, f"{path.name} imports {imported}: only plugin_api is public"
        used |= names
        hooks |= implemented
    assert sorted(set(plugin_api.__all__) - used) == [], "names no example uses"
    assert sorted(set(_hookspecs()) - hooks) == [], "hooks no example implements"
