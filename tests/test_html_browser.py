"""The HTML report as a person sees it: rendered by headless Chromium (Debian's
``chromium``, driven by Playwright's Python API; no browser is downloaded).

Checked in the browser, not by parsing: the charts exist with one bar / point / row per
thing the model has (counted from the ONNX file itself, not from our report), the page
logs no console error, loads nothing from the network, and fits an 800-px window without
horizontal scroll. A screenshot of the Mistral page is kept as a test artifact.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import tempfile
from pathlib import Path

import onnx
import pytest

from conftest import SAMPLES, shared_model
from model_analyze.render import html as html_render
from model_analyze.runner import AnalyzeOptions, analyze

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("MODEL_ANALYZE_ARTIFACTS", Path(tempfile.gettempdir()) / "model-analyze-artifacts"))


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module; skipped locally without it, a failure in CI."""
    required = bool(os.environ.get("MODEL_ANALYZE_REQUIRE_SHARED"))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("playwright is not installed (pip install -e '.[dev]')")
        pytest.skip("playwright is not installed")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        if required:
            pytest.fail(f"{CHROMIUM} missing: .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                              args=ARGS)
        yield b
        b.close()


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 800, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, errors, requests


def check_page(page, errors, requests, path: Path) -> None:
    assert errors == []
    assert requests == [path.as_uri()], "the page loads nothing but itself (self-contained)"
    assert page.evaluate("document.documentElement.scrollWidth") <= 800, "no horizontal scroll at 800 px"
    assert page.evaluate("[...document.querySelectorAll('a[href]')].every(a => a.getAttribute('href')"
                         ".startsWith('#'))"), "links stay inside the page"
    # every metric links to its definition, which exists in the page
    missing = page.evaluate("[...document.querySelectorAll('a[href^=\"#def-\"]')]"
                            ".filter(a => !document.getElementById(a.getAttribute('href').slice(1))).length")
    assert missing == 0


def mistral_layers(path: Path) -> set[str]:
    """The layers of the MatMuls, read from the exporter's own name scopes (not our cost model)."""
    model = onnx.load(str(path), load_external_data=False)
    out = set()
    for node in model.graph.node:
        if node.op_type != "MatMul":
            continue
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
        layer = next((s for s in scopes if re.fullmatch(r"m\.model\.layers\.\d+", s)), None)
        out.add(layer or (scopes[2] if len(scopes) > 2 else ""))
    return out


def test_mistral_html_in_chromium(browser, tmp_path):
    path = shared_model("mistral-7b.onnx")
    report = analyze(str(path), AnalyzeOptions(seq_len=4096))
    out = tmp_path / "mistral-7b.html"
    out.write_text(html_render.render(report), encoding="utf-8")
    page, errors, requests = open_page(browser, out)
    check_page(page, errors, requests, out)
    # the verdict is the first thing on the page
    first = page.evaluate("document.querySelector('body > :not(h1)').id")
    assert first == "verdict"
    assert "Verdict at seq=4096" in page.inner_text("#verdict")
    # FLOPs per layer: one bar per layer with MatMuls (32 decoder layers + lm_head), none dropped
    layers = mistral_layers(path)
    assert layers >= {f"m.model.layers.{i}" for i in range(32)} | {"m.lm_head"}
    labels = page.evaluate("[...document.querySelectorAll('svg[data-chart=flops_per_layer] g.bar title')]"
                           ".map(t => t.textContent.split(':')[0])")
    assert layers <= set(labels)
    assert page.locator("details.more").count() == 0  # nothing hidden behind "+N more"
    # reach picture: one row per attention layer (one Softmax each in this export)
    softmaxes = sum(1 for n in onnx.load(str(path), load_external_data=False).graph.node if n.op_type == "Softmax")
    assert page.locator("svg[data-chart=reach_by_layer] g.row").count() == softmaxes == 32
    # window 4096 at n = 4096: after layer 1 the last position sees every input bin
    assert page.locator("svg[data-chart=reach_by_layer] g.row").first.locator("rect.cell").count() == 64
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = tmp_path / "mistral-7b.png"
    page.screenshot(path=str(shot), full_page=False)
    shutil.copy(shot, ARTIFACTS / "mistral-7b.png")
    print(f"screenshot: {ARTIFACTS / 'mistral-7b.png'}")
    page.close()


def test_convnet_rf_growth_chart_in_chromium(browser, tmp_path):
    path = SAMPLES / "convnet.onnx"
    out = tmp_path / "convnet.html"
    out.write_text(html_render.render(analyze(str(path))), encoding="utf-8")
    page, errors, requests = open_page(browser, out)
    check_page(page, errors, requests, out)
    # one point per conv/pool node on the image path (counted in the ONNX graph)
    graph = onnx.load(str(path)).graph
    stages = [n.name for n in graph.node if n.op_type in ("Conv", "MaxPool", "AveragePool")]
    points = page.evaluate("[...document.querySelectorAll('svg[data-chart=rf_growth] circle.point title')]"
                           ".map(t => t.textContent.split(':')[0])")
    assert points == stages
    axes = page.evaluate("document.querySelector('svg[data-chart=rf_growth]').textContent")
    assert "receptive field (px)" in axes and "conv/pool node, in graph order" in axes
    page.close()
