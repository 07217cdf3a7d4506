"""The benchmark suite runs end to end at tiny sizes and reports every row; no speed thresholds (timings are noisy here)."""

import io
import json
import math

import pytest
from rich.console import Console
from typer.testing import CliRunner

from conftest import make_tiny_model
from bench import bench


def positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def result(tmp_path_factory, small_corpus):
    d = tmp_path_factory.mktemp("bench")
    make_tiny_model(d / "m", small_corpus.read_text(encoding="utf-8"), n_layer=1, n_embd=32, block_size=16)
    shapes = [bench.Shape("tiny-a", 1, 2, 32, 16, 2), bench.Shape("tiny-b", 1, 2, 32, 16, 3, 0.2)]
    opts = bench.Options(quick=True, device="cpu", threads=1, json_path=str(d / "out.json"), model=str(d / "m"), shapes=shapes,
                         reps=2, steps=1, gen_chars=8, nocache_chars=4, clock="cpu")
    res = bench.run_bench(opts)
    return res, d / "out.json"


@pytest.mark.slow  # (the whole bench at tiny sizes: 45 s)
def test_every_training_row_is_present_with_positive_figures(result):
    res, _ = result
    impls = [bench.REFERENCE, *bench.TINYGPT_ARCHS, bench.MUON]
    assert [(r["shape"], r["impl"]) for r in res["training"]] == [(s, i) for s in ("tiny-a", "tiny-b") for i in impls]
    for r in res["training"]:
        assert positive(r["tokens_per_s"]) and positive(r["ms_per_step"]) and positive(r["ratio"]) and r["params"] > 0
        assert r["precision"] in ("fp32", "bf16")
        assert len(r["samples_ms"]) == 2
    assert all(r["ratio"] == 1.0 for r in res["training"] if r["impl"] == bench.REFERENCE)


@pytest.mark.slow  # (the whole bench at tiny sizes: 45 s)
def test_memory_generation_and_startup_rows(result):
    res, _ = result
    assert [m["impl"] for m in res["memory"]] == [bench.REFERENCE, *bench.TINYGPT_ARCHS, bench.CHECKPOINTED]
    assert all(positive(m["peak_mb"]) and m["shape"] == "tiny-b" for m in res["memory"])
    *cached, old = res["generation"]
    assert [("int8" in r["method"], "compiled" in r["method"]) for r in cached] == [(True, True), (False, True), (False, False)]
    assert "tinygpt generate" in cached[0]["method"] and old["method"].startswith("recompute")
    for kv in cached:
        assert kv["method"].startswith("KV cache") and positive(kv["chars_per_s"]) and positive(kv["ratio"])
        assert math.isclose(kv["ratio"], kv["chars_per_s"] / old["chars_per_s"])
    assert positive(old["chars_per_s"]) and old["ratio"] == 1.0
    assert positive(res["startup"]["seconds"]) and positive(res["startup"]["cpu_s"])
    assert "generate" in res["startup"]["command"]
    m = res["machine"]
    assert m["cores"] >= 1 and m["threads"] == 1 and m["torch"] and m["device"].startswith("CPU")


@pytest.mark.slow  # (the whole bench at tiny sizes: 45 s)
def test_json_file_and_table(result):
    res, path = result
    assert json.loads(path.read_text()) == json.loads(json.dumps(res))
    out = io.StringIO()
    bench.render(res, Console(file=out, width=160))
    text = out.getvalue()
    for heading in ("Training throughput", "Peak memory", "Generation", "time to first generated character", "vs reference"):
        assert heading in text


def test_reference_and_tinygpt_compute_the_same_kind_of_loss():
    import torch

    shape = bench.Shape("t", 1, 2, 32, 16, 2)
    for impl in (bench.REFERENCE, *bench.TINYGPT_ARCHS):
        t = bench.Trainer(impl, shape, torch.device("cpu"))
        first = float(t.step())
        assert abs(first - math.log(65)) < 0.5  # a fresh model is near uniform over 65 characters
        for _ in range(5):
            last = float(t.step())
        assert last < first  # the step really trains


def test_bad_options_are_one_line_errors(capsys):
    r = CliRunner().invoke(bench.app, ["--device", "tpu"])
    assert r.exit_code == 2 and "device must be one of auto, cpu, cuda, mps, got 'tpu'" in r.output
    r = CliRunner().invoke(bench.app, ["--clock", "sundial"])
    assert r.exit_code == 2 and "--clock" in r.output
    assert bench.main(["--threads", "0"]) == 2
    assert bench.main(["--quik"]) == 2  # a mistyped option: one line, not a usage box
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert err[-1].startswith("error: No such option: --quik") and len(err) == 2


def test_the_product_does_not_import_the_bench():
    """bench/ is a tool of the project: nothing under tinygpt_tui/ imports it (no circle with the CLI)."""
    import re
    from pathlib import Path

    root = Path(bench.__file__).resolve().parents[1] / "tinygpt_tui"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if re.search(r"^\s*(from|import)\s+bench\b", p.read_text(encoding="utf-8"), re.M)]
    assert offenders == []


def test_runs_from_a_checkout_as_a_module():
    import subprocess
    import sys
    from pathlib import Path

    r = subprocess.run([sys.executable, "-m", "bench.bench", "--help"], capture_output=True, text=True,
                       cwd=Path(bench.__file__).resolve().parents[1], timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("Usage: python -m bench.bench [OPTIONS]") and "--quick" in r.stdout


@pytest.mark.slow  # (each setting trained for its time: 30 s)
@pytest.mark.parametrize("threads,clock", [(1, "CPU time, 1 thread"), (2, "wall clock, 2 threads")])
def test_speedrun_times_each_setting_beside_nanogpts_recipe(threads, clock):
    import torch

    from bench import speedrun

    before = torch.get_num_threads()
    try:
        res = speedrun.run({"t": {"preset": "tiny", "dtype": "fp32", "batch_size": 2}}, seconds=0.5, threads=threads)
    finally:
        torch.set_num_threads(before)
    rows = {r["setting"]: r for r in res["rows"]}
    assert res["clock"] == clock and res["threads"] == threads
    assert rows["nanoGPT CPU recipe, fp32"]["step_vs_nanogpt"] == 1.0
    assert rows["t, fp32"]["tokens_per_step"] == 2 * 128 and positive(rows["t, fp32"]["ms_per_step"])
