"""`model-analyze scan`: a generated registry of 200 models plus corrupt files and graphs that hang,
allocate without bound or crash their worker — in worker processes, on Dask, cached and resumable.

Independent checks: every line's report equals the in-process analysis of the same file
(`BatchRunner.analyze_one`, no worker involved); MLP MACs are Σ in·out of their Gemms at
batch 1, derived from the generator's seeded widths; a constant attention mask the
analysis reads back from the file changes the result when only its bytes change (causal
→ window 8: reach 128 → 8, by the mask's definition), so the cache must notice; the Dask
runs must equal the local run line for line (minus timings).
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import ROOT

PLUGIN = str(ROOT / "tests" / "scan_plugin.py")
LIMITS = ["--timeout", "2", "--max-memory", "300MiB", "--isolated"]
BAD_STATUS = {"truncated": "error", "text": "error", "empty": "error", "hang": "timeout", "hog": "memory",
              "crash": "crashed"}


def _cli(*args: str, cwd: str | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model_analyze", "scan", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120, **kw)


def _lines(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def _strip(entry: dict, top: tuple[str, ...] = ()) -> dict:
    """An entry without its timings (they differ between any two runs: ``elapsed_s`` of the line, the
    report and each section) and without the top-level fields ``top``."""
    def walk(obj):
        if isinstance(obj, dict):
            return {k: walk(v) for k, v in obj.items() if k != "elapsed_s"}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        return obj

    return walk({k: v for k, v in entry.items() if k not in top})


def _table_names(text: str) -> list[str]:
    """The model column of the summary table (rows between the dashes and the blank line)."""
    lines = text.split("== Summary", 1)[1].splitlines()
    start = next(k for k, ln in enumerate(lines) if ln.strip().startswith("---")) + 1
    end = lines.index("", start)
    return [ln.split()[0] for ln in lines[start:end]]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from registry_builders import write_bad, write_registry

    root = tmp_path_factory.mktemp("registry")
    good = write_registry(root, 200)
    bad = write_bad(root, good[0])
    return root, good, bad


@pytest.fixture(scope="module")
def local_run(registry, tmp_path_factory):
    """The whole registry, two worker processes, the test plugin in every worker."""
    root, _, _ = registry
    out = tmp_path_factory.mktemp("out") / "scan.jsonl"
    proc = _cli(root, "--plugin", PLUGIN, *LIMITS, "--no-cache", "-j", "2", "-o", out)
    return proc, {e["path"]: e for e in _lines(out)}


def test_good_models_complete_and_bad_ones_are_rows_with_their_status(registry, local_run):
    _, good, bad = registry
    proc, lines = local_run
    assert proc.returncode == 2, proc.stderr
    assert set(lines) == {str(p) for p in good} | {str(p) for p in bad.values()}
    for what, path in bad.items():
        entry = lines[str(path)]
        assert entry["status"] == BAD_STATUS[what], (what, entry["error"])
        assert entry["exit_code"] == 2 and entry["report"] is None and entry["error"].startswith(str(path) + ":")
    assert "no result after 2 s" in lines[str(bad["hang"])]["error"]
    assert "more than 300 MiB" in lines[str(bad["hog"])]["error"]
    assert "SIGSEGV" in lines[str(bad["crash"])]["error"] and "_crash" in lines[str(bad["crash"])]["error"]
    assert all(lines[str(p)]["status"] == "ok" for p in good)
    assert ("206 models: 200 ok, 0 failed, 6 could not be analyzed (1 timed out, 1 out of memory, 1 crashed) "
            "· exit 2") in proc.stdout
    for label in ("TIMEOUT", "OOM", "CRASH", "ERROR"):
        assert label in proc.stdout
    # not a terminal: plain progress lines on stderr, the last one at the end
    assert "scan: 206/206 (100%)" in proc.stderr and "6 not ok" in proc.stderr


def test_each_line_is_the_in_process_analysis_of_its_file(registry, local_run):
    from registry_builders import mlp

    from model_analyze.batch import BatchRunner, CliSettings
    from model_analyze.config import Config
    from model_analyze.render.summary import model_entry

    _, good, _ = registry
    _, lines = local_run
    runner = BatchRunner(Config(), CliSettings())
    for path in good[::20]:
        expected = model_entry(runner.analyze_one(str(path)))
        assert _strip(lines[str(path)], ("cached", "key")) == _strip(expected)
    for path in [p for p in good if int(p.stem[-4:]) % 2][:10]:  # odd seeds are MLPs
        graph = mlp(int(path.stem[-4:])).graph
        macs = sum(int(np.prod(t.dims)) for t in graph.initializer if len(t.dims) == 2)  # Gemm [out, in] at batch 1
        assert lines[str(path)]["summary"]["macs"] == {"value": macs, "unit": "MAC", "bound": None}


def test_lines_validate_against_the_multi_model_entry_schema(registry, local_run):
    import jsonschema
    from referencing import Registry, Resource

    _, good, bad = registry
    _, lines = local_run
    schema_dir = ROOT / "analyzer" / "schema"
    report = json.loads((schema_dir / "report.schema.json").read_text())
    multi = json.loads((schema_dir / "multi.schema.json").read_text())
    entry_schema = {**multi["properties"]["models"]["items"], "$schema": multi["$schema"]}
    validator = jsonschema.Draft202012Validator(
        entry_schema, registry=Registry().with_resource(report["$id"], Resource.from_contents(report)))
    for path in [*bad.values(), *good[::25]]:
        validator.validate(lines[str(path)])


def test_table_sorted_filtered_and_csv_from_a_finished_scan(registry, local_run, tmp_path, cli_run):
    """`--resume` with everything done analyzes nothing: the table and the CSV come from the lines."""
    root, good, _ = registry
    _, lines = local_run
    done = tmp_path / "done.jsonl"
    done.write_text("".join(json.dumps(e) + "\n" for e in lines.values()))
    res = cli_run("scan", root, "--resume", done, "--no-cache", "--format", "csv", "-o", tmp_path / "all.csv",
                  "--sort", "macs", "--status", "ok", "--match", "*team1*")
    assert res.exit_code == 2
    rows = [r.split(",") for r in (tmp_path / "all.csv").read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    assert len(rows) == 206 and header[:4] == ["path", "status", "exit_code", "macs"]
    by_path = {r[0]: r for r in rows}
    assert all(int(by_path[str(p)][3]) == lines[str(p)]["summary"]["macs"]["value"] for p in good[::10])
    table = res.stdout.split("== Summary", 1)[1]
    assert f"models under {root}/team1/" in table
    shown = _table_names(res.stdout)
    team1 = sorted((p for p in good if p.parent.name == "team1"),
                   key=lambda p: (-lines[str(p)]["summary"]["macs"]["value"], str(p)))
    assert shown == [p.stem for p in team1]
    assert "50 of 206 models shown" in table and "206 resumed" in table
    res = cli_run("scan", root, "--resume", done, "--no-cache", "-o", tmp_path / "x.jsonl", "--sort", "status",
                  "--status", "problems")
    assert _table_names(res.stdout) == ["crash", "hog", "hang", "empty", "notes", "truncated"]


def test_resume_after_the_scan_is_killed(registry, tmp_path):
    root, good, _ = registry
    dirs = [root / "team0", root / "team1"]
    out = tmp_path / "part.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "model_analyze", "scan", *map(str, dirs), "--no-cache", "-j", "1",
                             "--isolated", "-q", "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 20):
        time.sleep(0.02)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = out.read_text()
    complete = kept[:kept.rfind("\n") + 1]
    n = complete.count("\n")
    assert 20 <= n < 100
    for pid in children:  # the worker notices its parent is gone and exits
        for _ in range(250):
            if not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]:
                break
            time.sleep(0.02)
        else:
            pytest.fail(f"worker {pid} outlived the killed scan")
    res = _cli(*dirs, "--resume", out, "--no-cache", "-j", "2", "--isolated")
    assert res.returncode == 0, res.stderr
    assert f"{n} resumed" in res.stdout  # the table covers all 100, the resumed ones said
    final = out.read_text()
    assert final.startswith(complete)
    entries = _lines(out)
    assert sorted(e["path"] for e in entries) == sorted(str(p) for p in good if p.parent in dirs)
    assert all(e["status"] == "ok" for e in entries)


def _gemm_model(seed: int) -> onnx.ModelProto:
    """A graph with a 128×128 weight (64 KiB: left in the file by the loader, never read)."""
    from builders import FLOAT, GraphBuilder

    b = GraphBuilder("big", seed=seed)
    x = b.input("x", FLOAT, ["batch", 128])
    b.op("MatMul", [x, b.weight([128, 128], "w")], name="y")
    b.output("y", FLOAT, ["batch", 128])
    return b.model()


def _const_mask_model(window: int | None, seq: int = 128, d: int = 16) -> onnx.ModelProto:
    """Attention whose additive mask is a [seq, seq] float constant (64 KiB): causal, or a window."""
    from builders import FLOAT, GraphBuilder

    b = GraphBuilder("constmask")
    x = b.input("x", FLOAT, [1, seq, d])
    i, j = np.arange(seq)[:, None], np.arange(seq)[None, :]
    visible = (j <= i) if window is None else (j <= i) & (j > i - window)
    bias = b.const(np.where(visible, 0.0, -1e9).astype(np.float32), "mask_bias")
    q, k, v = (b.op("MatMul", [x, b.weight([d, d])]) for _ in range(3))
    s = b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 2, 1])])
    s = b.op("Add", [b.op("Mul", [s, b.const(np.array(0.25, np.float32))]), bias])
    b.op("MatMul", [b.op("Softmax", [s], axis=-1), v], name="out")
    b.output("out", FLOAT, [1, seq, d])
    return b.model()


def test_cache_redoes_only_what_changed(registry, tmp_path, monkeypatch):
    from registry_builders import mlp

    import model_analyze
    from model_analyze.scanner.cache import StatIndex

    monkeypatch.setattr(StatIndex, "RACY_NS", 0)  # the models were written a moment ago
    root = registry[0]
    models = tmp_path / "models"
    shutil.copytree(root / "team2", models / "team2")
    onnx.save(_gemm_model(0), models / "big.onnx")
    onnx.save(_const_mask_model(None), models / "mask.onnx")
    (tmp_path / "model-analyze.toml").write_text('[[overrides]]\npaths = ["models/team2/model_0002.onnx"]\n'
                                                 'budgets = { max-macs = "1k" }\n')
    cache = tmp_path / "cache"

    def run(**kw):
        job = model_analyze.scan([str(models)], jobs=2, cache_dir=str(cache),
                                 config=str(tmp_path / "model-analyze.toml"), **kw)
        return {Path(r.path).name: r for r in job}, job.stats

    first, stats = run()
    assert stats.analyzed == 52 and stats.cache_hits == 0 and len(first) == 52
    assert first["model_0002.onnx"].status == "fail"  # the override's budget, applied in the worker
    assert first["mask.onnx"].report.headline("reach").value == 128  # causal over 128 positions
    again, stats = run()
    assert stats.analyzed == 0 and stats.cache_hits == 52 and all(r.cached for r in again.values())
    assert stats.hashed == 0  # known by their stat: not one model file was read
    assert again["mask.onnx"].report.headline("reach").value == 128  # the hit's report, built when read
    assert all(_strip(again[k].data(), ("cached",)) == _strip(first[k].data(), ("cached",)) for k in first)

    changed = models / "team2" / "model_0010.onnx"
    changed.write_bytes(mlp(9999).SerializeToString())                     # a different graph
    onnx.save(_gemm_model(2), models / "big.onnx")                         # other weights, same graph
    onnx.save(_const_mask_model(8), models / "mask.onnx")                  # same skeleton, other mask bytes
    shutil.copy(models / "team2" / "model_0006.onnx", models / "copy.onnx")  # a known graph at a new path
    third, stats = run()
    redone = sorted(k for k, r in third.items() if not r.cached)
    assert redone == ["mask.onnx", "model_0010.onnx"] and stats.analyzed == 2 and stats.cache_hits == 51
    assert stats.hashed == 4  # the four files written since: read to key them
    assert third["mask.onnx"].report.headline("reach").value == 8  # window 8: the read-back bytes count
    copy = third["copy.onnx"]
    assert copy.cached and copy.data()["report"]["model"]["path"] == str(models / "copy.onnx")
    from model_analyze.batch import BatchRunner, CliSettings
    from model_analyze.config import load_config
    from model_analyze.render.summary import model_entry

    fresh = BatchRunner(load_config(explicit=str(tmp_path / "model-analyze.toml")), CliSettings())
    assert _strip(copy.data(), ("cached", "key")) == _strip(model_entry(fresh.analyze_one(str(models / "copy.onnx"))))

    _, stats = run(settings=_settings(dims={"batch": 2}))              # other options: all redone
    assert stats.analyzed == 53 and stats.cache_hits == 0


def _copies(paths: list[Path], folder: Path) -> Path:
    folder.mkdir()
    for p in paths:
        shutil.copy(p, folder / p.name)
    return folder


def test_a_cached_rerun_writes_the_first_runs_lines_and_table(registry, tmp_path):
    """A hit copies the stored line's bytes and builds its report only for the table: the re-run's
    JSON Lines are the first run's lines with ``cached`` true (timings included, they are the first
    run's; in the order models finish), its table the first run's plus the note that says so."""
    models = _copies(registry[1][:6], tmp_path / "models")
    cache = tmp_path / "cache"
    cold = _cli(models, "--isolated", "-j", "2", "--cache-dir", cache, "-o", tmp_path / "cold.jsonl")
    warm = _cli(models, "--isolated", "-j", "2", "--cache-dir", cache)  # lines to stdout, the table to stderr
    assert cold.returncode == warm.returncode == 0, cold.stderr + warm.stderr
    first = _lines(tmp_path / "cold.jsonl")
    again = [json.loads(ln) for ln in warm.stdout.splitlines()]
    assert len(first) == 6 and not any(e["cached"] for e in first)
    assert sorted(again, key=lambda e: e["path"]) == sorted((dict(e, cached=True) for e in first),
                                                            key=lambda e: e["path"])
    table = cold.stdout.split("== Summary", 1)[1]
    assert warm.stderr.split("== Summary", 1)[1] == table.replace("\n  model ", "\n  6 from the cache\n  model ", 1)


def test_an_entry_of_another_layout_or_cut_short_is_a_miss(registry, tmp_path):
    """The cache layout changed (v1 kept the slim entry whole on its second line, v2 the line as first
    written): such an entry, or one cut short, is analyzed again and rewritten, not a crash and not a
    wrong result."""
    import model_analyze
    from model_analyze.scanner.cache import ResultCache

    models = _copies(registry[1][:5], tmp_path / "models")
    cache = tmp_path / "cache"

    def run():
        job = model_analyze.scan([str(models)], jobs=1, cache_dir=str(cache), isolated=True)
        return {Path(r.path).name: r for r in job}, job.stats

    first, stats = run()
    assert stats.analyzed == 5
    files = sorted(Path(ResultCache(str(cache)).root).glob("*/*.json"))
    assert len(files) == 5
    _, report, line = files[0].read_bytes().split(b"\n", 2)
    v1 = json.dumps({"deps": []}) + "\n" + json.dumps({"path": "x", "status": "ok"}) + "\n{}\n"
    files[0].write_text(v1)                                                       # the v1 layout
    files[1].write_bytes(json.dumps({"v": 2, "deps": [], "row": {"path": "x"}}).encode() + b"\n" + report +
                         b"\n" + line + b"\n")                                     # the v2 layout
    files[2].write_bytes(files[2].read_bytes()[:100])                             # cut in its header
    files[3].write_bytes(files[3].read_bytes()[:-10])                             # cut in its line
    again, stats = run()
    assert stats.analyzed == 4 and stats.cache_hits == 1
    assert all(_strip(again[k].data(), ("cached",)) == _strip(first[k].data(), ("cached",)) for k in first)
    _, stats = run()                                               # rewritten: all hits now
    assert stats.analyzed == 0 and stats.cache_hits == 5


def _settings(**kw):
    from model_analyze.batch import CliSettings

    return CliSettings(**kw)


def test_targets_from_lists_globs_directories_and_urls(registry, tmp_path, monkeypatch):
    from model_analyze.scanner.targets import find_targets

    root, good, _ = registry
    team1 = sorted(str(p) for p in good if p.parent.name == "team1")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# models to review\n{good[0]}\n\n{root}/team1/*.onnx\nfile://{root}/team3\n")
    found = find_targets([f"@{listing}", str(good[0]), str(root / "nowhere.onnx")])
    paths = [t.path for t in found]
    assert paths[0] == str(good[0]) and paths.count(str(good[0])) == 1
    assert [p for p in paths if "/team1/" in p] == team1
    assert [p for p in paths if p.startswith("file://")] == sorted(f"file://{p}" for p in good
                                                                   if p.parent.name == "team3")
    assert paths[-1] == str(root / "nowhere.onnx")


def test_quiet_is_silent_and_a_terminal_gets_a_bar(registry, tmp_path, cli_run):
    _, good, _ = registry
    res = cli_run("scan", *good[:2], "--no-cache", "-q", "-j", "1", "--isolated")
    assert res.exit_code == 0 and res.stderr == ""
    assert sorted(json.loads(ln)["path"] for ln in res.stdout.splitlines()) == [str(p) for p in good[:2]]
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "model_analyze", "scan", *map(str, good[:3]), "--no-cache", "-j",
                             "1", "--isolated", "-o", str(tmp_path / "x.jsonl")],
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.wait()
    os.close(master)
    text = seen.decode("utf-8", "replace")
    assert "scan" in text and "3/3" in text and "models/s" in text and "0 not ok" in text


# -- Dask ---------------------------------------------------------------------------------
def _dask_subset(registry):
    _, good, bad = registry
    return [*good[3::40], *bad.values()]


@pytest.fixture(scope="module")
def process_cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client


def _scan_lines(paths, **kw) -> dict[str, dict]:
    import model_analyze

    job = model_analyze.scan([str(p) for p in paths], cache=False, plugins=[PLUGIN], timeout=2,
                             max_memory=300 << 20, isolated=True, **kw)
    return {r.path: r.data() for r in job}


def test_dask_local_cluster_gives_the_local_lines(registry, local_run, process_cluster):
    _, lines = local_run
    paths = _dask_subset(registry)
    remote = _scan_lines(paths, executor="dask", client=process_cluster)
    assert set(remote) == {str(p) for p in paths}
    for path, entry in remote.items():
        assert _strip(entry) == _strip(lines[path]), path
    again = _scan_lines(paths[:2], executor="dask", client=process_cluster)  # a second scan, same workers
    assert [_strip(again[str(p)]) for p in paths[:2]] == [_strip(lines[str(p)]) for p in paths[:2]]


def test_dask_in_process_cluster_fetches_memory_and_file_urls(registry, local_run):
    import fsspec
    from distributed import Client, LocalCluster

    _, good, bad = registry
    _, lines = local_run
    fs = fsspec.filesystem("memory")
    picked = [good[5], good[6], bad["truncated"], bad["hang"]]
    for p in picked:
        fs.pipe(f"/registry/{p.parent.name}/{p.name}", p.read_bytes())
    urls = {f"memory://registry/{p.parent.name}/{p.name}": p for p in picked}
    urls[f"file://{good[7]}"] = good[7]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        remote = _scan_lines(urls, executor="dask", client=client)
    assert set(remote) == set(urls)
    for url, path in urls.items():
        assert _strip(remote[url]) == _strip(_relocated(lines[str(path)], str(path), url)), url
    assert remote[f"file://{good[7]}"]["report"]["model"]["path"] == f"file://{good[7]}"


def _relocated(entry: dict, old: str, new: str) -> dict:
    """The entry as it reads for the model at ``new``: every mention of ``old`` replaced."""
    return json.loads(json.dumps(entry).replace(json.dumps(old)[1:-1], new))


def test_url_with_external_data_sees_the_sizes_it_would_see_beside_the_files(tmp_path):
    """Fetching a URL copies the graph only; each external-data file it names gets a sparse stand-in
    of the real size, so the findings are the ones of a local run: none for a present file, L014
    for a missing one."""
    from onnx.external_data_helper import convert_model_to_external_data

    from builders import FLOAT, GraphBuilder

    for name, location in (("ext", "w.bin"), ("gone", "gone.bin")):
        b = GraphBuilder(name)
        x = b.input("x", FLOAT, [1, 64])
        b.op("MatMul", [x, b.weight([64, 64], "w")], name="y")
        b.output("y", FLOAT, [1, 64])
        model = b.model()
        convert_model_to_external_data(model, all_tensors_to_one_file=True, location=location, size_threshold=0)
        onnx.save(model, tmp_path / f"{name}.onnx")
    (tmp_path / "gone.bin").unlink()
    paths = [str(tmp_path / "ext.onnx"), str(tmp_path / "gone.onnx")]
    lines = _scan_lines([*paths, *(f"file://{p}" for p in paths)], jobs=1)
    for path, missing in zip(paths, (False, True), strict=True):
        local, remote = lines[path], lines[f"file://{path}"]
        assert ("L014" in [f["code"] for f in local["report"]["findings"]]) is missing
        assert _strip(remote) == _strip(_relocated(local, path, f"file://{path}"))


def test_the_core_never_imports_dask_or_fsspec(registry):
    _, good, _ = registry
    code = (
        "import sys, model_analyze\n"
        "from model_analyze.cli import get_cli\n"
        "get_cli()\n"
        f"results = list(model_analyze.scan([{str(good[0])!r}], jobs=1, cache=False))\n"
        "assert results[0].status == 'ok', results[0].error\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'fsspec')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_report_read_back_from_its_line_is_the_report(tmp_path):
    """Resumed and cached results are rebuilt from JSON: the rebuilt report renders the same JSON."""
    from model_analyze.runner import analyze
    from model_analyze.scanner.records import report_from_dict

    for name in ("convnet.onnx", "tiny_transformer.onnx", "loop_like.onnx"):
        data = json.loads(json.dumps(analyze(str(ROOT / "samples" / name)).to_dict()))
        assert report_from_dict(data).to_dict() == data, name


def test_the_table_of_slim_results_is_the_table_of_full_ones(local_run):
    """The scan keeps only what the table reads of each report; the table must not change."""
    from model_analyze.render.summary import render_text
    from model_analyze.scanner.records import result_from_entry, slim

    _, lines = local_run
    entries = json.loads(json.dumps(list(lines.values())))
    for e in entries[::7]:  # as if fail-on were info: every finding blocks, the slim keeps them all
        if e["status"] == "ok":
            e.update(fail_on="info", exit_code=1, status="fail")
    full = [result_from_entry(e) for e in entries]
    small = [result_from_entry(slim(e)) for e in entries]
    assert any(r.status == "fail" for r in full)
    assert render_text(small, 2) == render_text(full, 2)


def test_stat_index_trusts_only_an_unchanged_settled_file(tmp_path, monkeypatch):
    from model_analyze.scanner.cache import StatIndex
    from model_analyze.scanner.keys import identity

    model = tmp_path / "m.onnx"
    model.write_bytes(b"one")
    index = StatIndex(str(tmp_path))
    index.record(str(model), identity(str(model)), "d1")
    assert index.lookup(str(model)) is None  # written just now: a change in the same tick could hide
    monkeypatch.setattr(StatIndex, "RACY_NS", 0)
    index.record(str(model), identity(str(model)), "d1")
    index.save()
    assert StatIndex(str(tmp_path)).lookup(str(model)) == "d1"
    model.write_bytes(b"two")  # same size, new mtime/ctime
    assert StatIndex(str(tmp_path)).lookup(str(model)) is None
