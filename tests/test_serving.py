"""The serving analyzer: KV cache, prefill vs decode, roofline lower bounds.

Every expected value is derived by hand in the comment next to it (from the published
configs), or is a runtime fact checked with onnxruntime; none is read back from our output.
"""

from __future__ import annotations

import json
import types

import numpy as np
import onnx
import pytest
from decoder_builders import LLAMA2_7B, llama
from onnx import TensorProto, helper

from conftest import SAMPLES, shared_model
from model_analyze import devices
from model_analyze.errors import UsageError
from model_analyze.manager import get_plugin_manager
from model_analyze.plugin_api import Device, hookimpl
from model_analyze.runner import AnalyzeOptions, analyze

MIB = 1 << 20
GIB = 1 << 30


def serving(path, n=None, **params):
    report = analyze(str(path), AnalyzeOptions(seq_len=n, select=["serving"], params=params))
    section = report.section("serving")
    assert section.status.value == "ok", section.error
    return report, section


def metric(section, key):
    m = section.metric(key)
    assert m is not None, f"no metric {key}: {[x.key for x in section.metrics]}"
    return m.value


# -- Mistral-7B (32 layers, 8 kv heads of d_k = d_v = 128, window 4096) ---------------------------------
@pytest.fixture(scope="module")
def mistral_32k(cli_run_module):
    """The issue's command: model-analyze mistral-7b.onnx --seq-len 32768 --device h100 (+ --kv-dtype fp16)."""
    result = cli_run_module(shared_model("mistral-7b.onnx"), "--seq-len", "32768", "--device", "h100",
                            "--kv-dtype", "fp16", "--select", "serving", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    return next(s for s in report["sections"] if s["analyzer"] == "serving")


@pytest.fixture(scope="module")
def cli_run_module():
    from click.testing import CliRunner

    from model_analyze.cli import get_cli

    def run(*args):
        return CliRunner().invoke(get_cli(), [str(a) for a in args], catch_exceptions=False)

    return run


def _metrics(section_json):
    return {m["key"]: m for m in section_json["metrics"]}


def test_mistral_kv_cache_fp16_by_hand(mistral_32k):
    m = _metrics(mistral_32k)
    # 32 layers · 2 (K and V) · 8 kv heads · 128 · 2 B (fp16) = 131,072 B per token
    assert m["kv.per_token"]["value"] == 131_072
    # every layer keeps at most its 4,096-token window: 131,072 · 4,096 = 512 MiB per sequence,
    # at n = 32,768 as at n = 4,096 (a rolling cache never exceeds the window)
    assert m["kv.sequence"]["value"] == 512 * MIB
    assert m["kv.bytes"]["headline"] == "kv_cache_bytes" and m["kv.bytes"]["value"] == 512 * MIB
    assert "min(n, 4,096)" in m["kv.sequence"]["formula"]
    assert "--kv-dtype" in m["kv.per_token"]["note"]
    # 32 query heads against 8 kv heads: full MHA would cache 4× as much (2 GiB)
    assert mistral_32k["data"]["kv"]["mha_bytes"] == 2 * GIB


def test_mistral_decode_and_prefill_by_hand(mistral_32k):
    ph = mistral_32k["data"]["phases"]
    n, w = 32_768, 4_096
    per_token = 7_110_393_856
    # MACs per token: 32 · (q 4096² + k, v 4096·1024 each + o 4096² + MLP 3·4096·14336) + lm_head 4096·32000
    assert per_token == 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336) + 4096 * 32000
    pair = 32 * 32 * (128 + 128)  # QKᵀ + AV MACs per visible (query, key) pair over 32 layers × 32 heads
    # decode step at context n: one query row; the window leaves it 4,096 keys
    assert ph["decode"]["mma_flops"] == {"fp32": 2 * (per_token + pair * w)}
    # prefill: causal window pairs W(W+1)/2 + (n − W)·W
    assert ph["prefill"]["mma_flops"] == {"fp32": 2 * (per_token * n + pair * (w * (w + 1) // 2 + (n - w) * w))}
    # bytes a decode step must move: every weight except the embedding table (7,241,732,096 published
    # parameters − 32000·4096 embedding rows, fp32) + the 64-float rotary buffer, one embedding row,
    # the fp16 cache (512 MiB), one token id and one row of logits
    weights = (7_241_732_096 - 32_000 * 4_096) * 4 + 64 * 4
    assert ph["decode"]["weight_bytes"] == weights
    assert ph["decode"]["bytes"] == weights + 4096 * 4 + 512 * MIB + 8 + 32_000 * 4
    # H100 SXM: 3.35 TB/s; the step's 2·MACs at the TF32 rate (494.7 TFLOP/s) take 33 µs, so memory binds
    decode = next(b for b in mistral_32k["data"]["bounds"]["decode"] if b["batch"] == 1)
    assert decode["binds"] == "memory"
    assert decode["time_s"] == pytest.approx(ph["decode"]["bytes"] / 3.35e12)
    assert decode["t_compute_s"] == pytest.approx(2 * (per_token + pair * w) / 494.7e12)
    m = _metrics(mistral_32k)
    assert m["bound.decode"]["headline"] == "decode_time_bound" and m["bound.decode"]["bound"] == "lower"
    assert m["bound.tokens_per_s"]["value"] == pytest.approx(3.35e12 / ph["decode"]["bytes"], rel=1e-3)


def test_mistral_default_dtype_is_the_graphs(cli_run):
    """Without --kv-dtype the cache is counted in the dtype the export keeps K in (float32)."""
    _, s = serving(shared_model("mistral-7b.onnx"), 4096)
    assert metric(s, "kv.per_token") == 262_144           # 32 · 2 · 8 · 128 · 4 B
    assert metric(s, "kv.sequence") == 1 * GIB             # · 4,096 tokens
    assert "dtype of K in the graph" in s.metric("kv.per_token").note
    assert any(f.code == "SV001" for f in s.findings)      # no cache in the graph: as if cached


# -- Llama-2-7B-shaped graphs (samples/decoder_builders.py, weights as metadata only) ------------------
@pytest.fixture(scope="module")
def llama7b(tmp_path_factory):
    d = tmp_path_factory.mktemp("llama7b")
    paths = {}
    for kv in (False, True):
        paths[kv] = d / f"llama7b{'-kv' if kv else ''}.onnx"
        onnx.save(llama(**LLAMA2_7B, kv_cache=kv, weights="shape"), str(paths[kv]))
    return paths


def test_llama7b_shaped_by_hand(llama7b):
    n = 4096
    direct, s_kv = serving(llama7b[True], n, kv_dtype="fp16")
    _, s = serving(llama7b[False], n, kv_dtype="fp16")
    # Llama-2-7B: 6,738,415,616 parameters (published)
    assert direct.section("serving").data["weights"]["by_dtype"]["float"]["elements"] == 6_738_415_616 + 64
    # MHA, 32 layers · 2 · 32 heads · 128 · 2 B = 524,288 B (0.5 MiB) per token; 2 GiB at 4,096 tokens
    assert metric(s, "kv.per_token") == metric(s_kv, "kv.per_token") == 524_288
    assert metric(s, "kv.sequence") == metric(s_kv, "kv.sequence") == 2 * GIB
    assert s.metric("kv.vs_mha") is None and s.data["kv"]["mha_bytes"] == 2 * GIB  # no GQA: nothing saved
    # decode MACs: 32 · (4 · 4096² + 3 · 4096 · 11008) + 4096 · 32000 per token, + 262,144 per key (causal: n)
    per_token = 32 * (4 * 4096 ** 2 + 3 * 4096 * 11008) + 4096 * 32000
    assert per_token == 6_607_077_376
    assert s_kv.data["phases"]["decode"]["mma_flops"] == {"fp32": 2 * (per_token + 262_144 * n)}
    assert s_kv.data["phases"]["decode"]["how"].startswith("read from the graph at seq=1, past=4,095")
    # the graph without a cache, analysed as if cached, gives the same step as the graph with one:
    # every FLOP (element-wise included) and every byte
    assert s.data["phases"]["decode"]["how"].startswith("as if cached")
    for phase in ("prefill", "decode"):
        for key in ("flops", "mma_flops", "bytes"):
            assert s.data["phases"][phase][key] == s_kv.data["phases"][phase][key], (phase, key)


def test_kv_builder_is_what_runs(tmp_path):
    """The cached builder computes what the uncached one does (onnxruntime), so the
    as-if-cached reading can be checked against it: decode FLOPs, bytes and KV equal."""
    ort = pytest.importorskip("onnxruntime")
    full, cached = tmp_path / "full.onnx", tmp_path / "kv.onnx"
    onnx.save(llama(kv_cache=False), str(full))
    onnx.save(llama(kv_cache=True), str(cached))
    ids = np.array([[5, 17, 3, 99, 42]], np.int64)
    ref = ort.InferenceSession(str(full)).run(None, {"input_ids": ids})[0]
    sess = ort.InferenceSession(str(cached))
    names = [o.name for o in sess.get_outputs()]
    feeds = {"input_ids": ids[:, :4], **{f"past_{kv}.{i}": np.zeros((1, 2, 0, 16), np.float32)
                                         for i in range(2) for kv in ("key", "value")}}
    out = sess.run(None, feeds)
    feeds = {"input_ids": ids[:, 4:], **{f"past_{kv}.{i}": out[names.index(f"present_{kv}.{i}")]
                                         for i in range(2) for kv in ("key", "value")}}
    step = sess.run(None, feeds)[0]
    np.testing.assert_allclose(step[0, 0], ref[0, 4], rtol=1e-5, atol=1e-5)
    for n in (1, 9, 300):
        _, a = serving(full, n)
        _, b = serving(cached, n)
        for phase in ("prefill", "decode"):
            for key in ("flops", "mma_flops", "bytes", "kv_bytes"):
                assert a.data["phases"][phase][key] == b.data["phases"][phase][key], (n, phase, key)


# -- a real KV-cache export ---------------------------------------------------------------------------
def test_kv_export_decode_step_matches_formula():
    """samples/zoo/llama-kv-eager-torchscript.onnx: LlamaForCausalLM, 2 layers, hidden 32, 4 heads
    of 8, 2 kv heads, intermediate 64, vocab 128, exported with past_key.i/past_value.i inputs."""
    path = SAMPLES / "zoo" / "llama-kv-eager-torchscript.onnx"
    # per token: 2 · (q 32·32 + k, v 32·16 each + o 32·32 + MLP 3·32·64) + lm_head 32·128 = 22,528;
    # per (query, key) pair: 2 layers · 4 heads · (8 + 8) = 128
    per_token, pair = 2 * (32 * 32 * 2 + 32 * 16 * 2 + 3 * 32 * 64) + 32 * 128, 2 * 4 * (8 + 8)
    assert per_token == 22_528
    for n in (1, 40, 1000):
        _, s = serving(path, n)
        decode = s.data["phases"]["decode"]
        assert decode["how"].startswith(f"read from the graph at seq=1, past={n - 1:,}")
        assert decode["mma_flops"] == {"fp32": 2 * (per_token + pair * n)}  # q_len = 1, k_len = n
        # read directly: 2 layers · (K + V) · 2 kv heads · 8 · 4 B per token
        assert metric(s, "kv.per_token") == 256
        assert s.data["kv"]["read_directly"] and len(s.data["kv"]["inputs"]) == 4
        assert not any(f.code == "SV001" for f in s.findings)


# -- devices and the roofline ---------------------------------------------------------------------------
def _matmul_model(tmp_path):
    """x [1, 64] · W [64, 32]: 2,048 MACs; 8,192 B of weights; 256 + 128 B of input/output."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [64, 32], np.zeros(64 * 32, np.float32))
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])], [w])
    path = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_roofline_by_hand(tmp_path):
    path = _matmul_model(tmp_path)
    _, s = serving(path, None, device="flops=1T,bandwidth=1e9", batch=64)
    b = {x["batch"]: x for x in s.data["bounds"]["forward"]}
    # batch 1: compute 4,096 FLOP / 1e12 = 4.1 ns; memory (8,192 + 384) B / 1e9 B/s = 8.576 µs
    assert b[1]["t_compute_s"] == pytest.approx(4096 / 1e12)
    assert b[1]["time_s"] == pytest.approx(8576 / 1e9) and b[1]["binds"] == "memory"
    # batch 64: weights once, inputs/outputs 64 times: (8,192 + 64 · 384) / 1e9
    assert b[64]["time_s"] == pytest.approx((8192 + 64 * 384) / 1e9)
    assert metric(s, "bound.forward") == pytest.approx((8192 + 64 * 384) / 1e9)
    # a device whose cache holds the weights: bandwidth bounds nothing
    _, s = serving(path, None, device="flops=1T,bandwidth=1e9,cache=1M")
    assert s.data["bounds"]["forward"][0]["t_memory_s"] is None
    assert any(f.code == "SV005" for f in s.findings)


def test_device_table_and_specs():
    h100 = devices.resolve("H100")
    assert h100.peak_for("fp16") == (989.4e12, "fp16")
    assert h100.peak_for("fp32") == (494.7e12, "tf32 tensor cores")   # fp32 may run as TF32
    custom = devices.resolve("flops=100T,bandwidth=2e12,fp16=200T,memory=16G")
    assert custom.peak_for("fp16")[0] == 200e12 and custom.peak_for("int8")[0] == 100e12
    assert custom.memory == 16e9
    for bad in ("nope", "flops=1T", "flops=x,bandwidth=1", "flops=1T,bandwidth=1G,speed=3"):
        with pytest.raises(UsageError):
            devices.resolve(bad)


def test_plugin_adds_a_device(tmp_path):
    plugin = types.SimpleNamespace()

    @hookimpl
    def model_analyze_devices():
        return [Device("tpu-x", "Test accelerator", {"bf16": 1e15}, 1e12, source="test")]

    plugin.model_analyze_devices = model_analyze_devices
    pm = get_plugin_manager()
    pm.pm.register(plugin, name="test-devices")
    try:
        assert devices.resolve("tpu-x").label == "Test accelerator"
        _, s = serving(_matmul_model(tmp_path), None, device="tpu-x")
        assert s.data["device"]["name"] == "tpu-x"
    finally:
        pm.pm.unregister(name="test-devices")


def test_cli_usage_errors(cli_run):
    path = SAMPLES / "convnet.onnx"
    for args in (("--device", "nope"), ("--kv-dtype", "fp7"), ("--batch", "0")):
        result = cli_run(path, *args)
        assert result.exit_code == 2, (args, result.output)
    result = cli_run("devices")
    assert result.exit_code == 0 and "h100" in result.output and "source:" in result.output


def test_config_keys(tmp_path, monkeypatch, cli_run):
    (tmp_path / "pyproject.toml").write_text('[tool.model-analyze]\ndevice = "l4"\nbatch = 8\nkv-dtype = "fp16"\n')
    monkeypatch.chdir(tmp_path)
    result = cli_run(shared_model("tiny-llama.onnx"), "--select", "serving", "--seq-len", "64", "--format", "json")
    assert result.exit_code == 0, result.output
    section = next(s for s in json.loads(result.stdout)["sections"] if s["analyzer"] == "serving")
    assert section["data"]["device"]["name"] == "l4" and section["data"]["batch"] == 8
    # tiny-llama: 2 layers · 2 · 4 heads · 16 · 2 B (fp16) per token
    assert _metrics(section)["kv.per_token"]["value"] == 512


def test_encoder_and_cnn(tmp_path):
    _, bert = serving(shared_model("tiny-bert.onnx"), 64)
    assert bert.metric("kv.per_token") is None          # bidirectional encoder: no generation, no cache
    assert set(bert.data["phases"]) == {"forward"}
    _, cnn = serving(SAMPLES / "convnet.onnx", None, device="avx512-core", batch=8)
    assert set(cnn.data["phases"]) == {"forward"} and cnn.metric("bound.items_per_s") is not None


def test_compare_rows(cli_run):
    result = cli_run("compare", shared_model("tiny-llama.onnx"), shared_model("tiny-mistral-swa.onnx"),
                     "--seq-len", "64", "--device", "h100", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["label"]: r for r in json.loads(result.stdout)["rows"]}
    # tiny-llama: 2 layers · 2 · 4 heads · 16 · 4 B; tiny-mistral-swa: 2 kv heads, half that
    assert rows["KV cache / token"]["a"] == 1024 and rows["KV cache / token"]["b"] == 512
    # window 8 caps the Mistral cache at 8 tokens: 512 · 8, against 1,024 · 64
    assert rows["KV cache at n"]["a"] == 65_536 and rows["KV cache at n"]["b"] == 4_096
    assert rows["decode step ≥"]["a"] > 0


def test_group_query_attention_with_past(save_model):
    """One com.microsoft GroupQueryAttention with past_key/past_value [1, 2, past, 8]: 4 heads of 8."""
    from attention_builders import ms_op

    from builders import FLOAT

    model = ms_op("GroupQueryAttention", [
        ("query", FLOAT, [1, "seq", 32]), ("key", FLOAT, [1, "seq", 16]), ("value", FLOAT, [1, "seq", 16]),
        ("past_key", FLOAT, [1, 2, "past", 8]), ("past_value", FLOAT, [1, 2, "past", 8]),
        ("seqlens_k", TensorProto.INT32, [1]), ("total_sequence_length", TensorProto.INT32, [])],
        n_out=3, num_heads=4, kv_num_heads=2)
    report = analyze(str(save_model(model)), AnalyzeOptions(dims={"seq": 1, "past": 99}, select=["serving"]))
    s = report.section("serving")
    # the cache as the graph stores it: K and V, 2 kv heads of 8 floats per token
    assert metric(s, "kv.per_token") == 2 * 2 * 8 * 4 and metric(s, "kv.sequence") == 128 * 100
    # one query row against 100 keys: 4 heads · (8 + 8) MACs per key
    assert s.data["phases"]["decode"]["mma_flops"] == {"fp32": 2 * 4 * 16 * 100}
    # prefill of 100 tokens, causal: 100·101/2 pairs
    assert s.data["phases"]["prefill"]["mma_flops"] == {"fp32": 2 * 4 * 16 * (100 * 101 // 2)}


def test_unread_mask_bound_counts_one_key(save_model):
    """A data-dependent mask (keys hidden where x·xᵀ < 0) cannot be read: the displayed FLOPs
    count its attention dense, the bound one key per query (no mask hides a query's every key)."""
    from attention_builders import attention_stack

    n = 50
    _, s = serving(save_model(attention_stack(["learned-gate"], heads=2, d_model=16)), n)
    assert any(f.code == "SV004" for f in s.findings)
    # per token: q, k, v, o projections 4 · 16 · 16; the gate's x·xᵀ 16 per (i, j); 2 heads · (8 + 8) per pair
    proj, gate, pair = 4 * 16 * 16, 16, 2 * (8 + 8)
    assert s.data["phases"]["prefill"]["mma_flops"] == {"fp32": 2 * (proj * n + gate * n * n + pair * n)}
    assert s.data["phases"]["decode"]["mma_flops"] == {"fp32": 2 * (proj + gate * n + pair)}
