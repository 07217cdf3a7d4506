"""The machine probe (engine/probe.py): what it measures, its cache, the choices it makes, `tinygpt bench`."""

import json
import math
import re

import sys

import pytest

from tests.conftest import PROBE_SHAPES as SMALL
from tests.conftest import probe_doc as _doc
from tests.test_cli import assert_one_line_error, tinygpt_inproc
from tinygpt_tui.engine import probe
from tinygpt_tui.engine.presets import PRESETS, TrainConfig
from tinygpt_tui.errors import TinyGPTError



def test_probe_measures_rates_steps_and_threads(measured):
    doc = measured
    assert probe.check(doc) is None  # what it writes is what the cache accepts
    assert set(doc["matmul_gflops"]) == {"fp32", "bf16"} and all(v > 0 for v in doc["matmul_gflops"].values())
    assert set(doc["step_ms"]) == set(SMALL) and all(v > 0 for s in doc["step_ms"].values() for v in s.values())
    assert "1" in doc["threads_ms"] and doc["threads_preset"] == "1min"
    assert doc["machine"] == probe.cpu_identity() and doc["torch"] == probe.torch_version()
    loss = doc["loss"]["tiny"]
    assert loss["fp32"] < loss["first"]  # training lowers the loss
    if set(doc["step_ms"]["tiny"]) == {"fp32", "bf16"}:  # both precisions at the narrowest shape
        # the loss check: the same start in both precisions
        assert math.isfinite(loss["bf16"])
        assert doc["bf16_loss_ok"] == (abs(loss["bf16"] - loss["fp32"]) <= probe.BF16_LOSS_TOLERANCE)
    else:  # a CPU that emulates bf16: seen slower at the first small matmul, never timed at a step
        assert set(doc["step_ms"]["tiny"]) == {"fp32"} and doc["bf16_loss_ok"] is False
        assert doc["matmul_gflops"]["bf16"] < doc["matmul_gflops"]["fp32"]
        assert not probe.bf16_wins(doc) and probe.choose_dtype(doc, 768) == "fp32"


def test_the_cache_round_trips(cache, measured):
    assert probe.save(measured) == cache
    assert probe.cached() == measured
    notes = []
    assert probe.current(notes.append) == measured and notes == []  # cached: nothing measured, nothing said


@pytest.mark.parametrize("change, why", [
    (lambda d: d.update(torch="1.0.0"), "torch 1.0.0"),
    (lambda d: d["machine"].update(cpu="Another CPU"), "another machine"),
    (lambda d: d["machine"].update(flags="0" * 16), "another machine"),
    (lambda d: d.update(version=0), "not a probe result"),
    (lambda d: d["matmul_gflops"].update(fp32=-1), "matmul rates"),
    (lambda d: d["step_ms"].update(tiny={"fp32": float("nan")}), "step times"),
    (lambda d: d.update(threads_ms={}), "thread timings"),
    # hand-edited fields that `tinygpt bench` and `tinygpt train` read: a traceback or a blamed --dtype before
    (lambda d: d.pop("seconds"), "when and how"),
    (lambda d: d.update(created=None), "when and how"),
    (lambda d: d.update(threads_preset=[1]), "when and how"),
    (lambda d: d["step_ms"].update(tiny={"fp64": 1.0}), "step times"),
    (lambda d: d["matmul_gflops"].update(int4=3.0), "matmul rates"),
    (lambda d: d["threads_ms"].update({"0": 1.0}), "thread timings"),
    # hundreds of hand-edited step times, or one of a long made-up name: `tinygpt bench`'s summary was one enormous line
    (lambda d: d["step_ms"].update({f"preset{i}": {"fp32": 1.0} for i in range(300)}), "presets this tinygpt does not have"),
    (lambda d: d["step_ms"].update({"x" * 5000: {"fp32": 1.0}}), "presets this tinygpt does not have"),
    (lambda d: d["threads_ms"].update({str(i): 1.0 for i in range(1, 300)}), "thread timings"),
    (lambda d: d.update(threads_ms={"1": 1.0, "2": 1.0, "3": 1.0}), "thread timings"),
])
def test_a_cache_of_another_machine_or_torch_is_ignored(cache, measured, change, why):
    doc = json.loads(json.dumps(measured))
    change(doc)
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps(doc))
    notes = []
    assert probe.cached(notes.append) is None
    assert len(notes) == 1 and why in notes[0] and "ignoring" in notes[0]


@pytest.mark.parametrize("content", [b"{not json", b"\x00\x01binary", b"[1, 2]", b"1" * 70_000])
def test_a_corrupt_cache_is_ignored_not_crashed_on(cache, content):
    cache.parent.mkdir(parents=True)
    cache.write_bytes(content)
    notes = []
    assert probe.cached(notes.append) is None
    assert len(notes) == 1 and "ignoring the probe cache" in notes[0]


def test_a_corrupt_caches_note_names_its_path_once_and_whole(tmp_path, monkeypatch):
    """The note said the path twice, the second cut off ("...c_trunc/tinygpt)"), and "starting at at line"."""
    cache = tmp_path / ("a-long-folder-name-" * 4) / "tinygpt" / "probe.json"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache.parent.parent))
    monkeypatch.delenv("TINYGPT_PROBE", raising=False)
    cache.parent.mkdir(parents=True)
    cache.write_text('{"version": 6, "machine": "unterminated')
    notes = []
    assert probe.cached(notes.append) is None
    assert notes == [f"note: ignoring the probe cache {cache} (it is not valid JSON (Unterminated string starting at line 1)); "
                     "measuring again"]


@pytest.mark.parametrize("file", ["tinygpt", "."])
def test_a_cache_folder_that_is_a_file_is_survived(tmp_path, monkeypatch, measured, file):
    """The note said "could not write .../tinygpt/probe.json: File exists" (or "Not a directory"): which file?"""
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / file if file != "." else tmp_path / "cache2").write_text("not a folder")
    home = tmp_path / ("cache" if file != "." else "cache2")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv("TINYGPT_PROBE", raising=False)
    folder = home / file if file != "." else home
    with pytest.raises(TinyGPTError, match=f"could not write .*probe.json: {re.escape(str(folder))} is a file, not a folder$"):
        probe.save(measured)
    assert probe.cached() is None


def test_a_cache_file_that_is_a_folder_is_said_so(tmp_path, monkeypatch, measured):
    """A probe.json that is a folder: the note says so, not that there is no writable cache folder."""
    (tmp_path / "tinygpt" / "probe.json").mkdir(parents=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(TinyGPTError, match="probe.json: it is a folder"):
        probe.save(measured)


def test_choices_follow_the_measurements(measured, monkeypatch):
    fast_bf16 = _doc(measured, 150, 50, 50, 400)
    assert probe.choose_dtype(fast_bf16, 128) == "bf16" and probe.choose_dtype(fast_bf16, 192) == "bf16"
    slow_bf16 = _doc(measured, 50, 150, 50, 400, bf16_rate=0.5)
    assert probe.choose_dtype(slow_bf16, 128) == "fp32"
    unsafe = {**fast_bf16, "bf16_loss_ok": False}  # faster but its loss strayed from fp32's: not chosen
    assert probe.choose_dtype(unsafe, 128) == "fp32"
    # threads: two only when they were measured faster and two cores are free now
    busy, quiet = _doc(measured, 150, 50, 50, 400), _doc(measured, 150, 50, 50, 25)
    monkeypatch.setattr(probe, "free_cores", lambda: 2)
    assert probe.choose_threads(busy) == 1 and probe.choose_threads(quiet) == min(2, max(int(k) for k in quiet["threads_ms"]))
    monkeypatch.setattr(probe, "free_cores", lambda: 1)
    assert probe.choose_threads(quiet) == 1


def test_choices_say_why_in_a_few_words(measured, monkeypatch):
    """What `tinygpt train`'s header says beside the precision and threads the probe chose."""
    why = {}
    fast_bf16, slow_bf16 = _doc(measured, 150, 50, 50, 25), _doc(measured, 50, 150, 50, 400, bf16_rate=0.5)
    assert probe.choose_dtype(fast_bf16, 128, why) == "bf16" and why["dtype"] == "measured faster here"
    assert probe.choose_dtype(slow_bf16, 128, why) == "fp32" and why["dtype"] == "bf16 measured no faster here"
    assert probe.choose_dtype({**fast_bf16, "bf16_loss_ok": False}, 128, why) == "fp32" and why["dtype"] == "bf16's loss was off here"
    monkeypatch.setattr(probe, "free_cores", lambda: 2)
    assert probe.choose_threads(fast_bf16, why) == 2 and why["threads"] == "measured faster here"
    assert probe.choose_threads(slow_bf16, why) == 1 and why["threads"] == "more threads no faster here"
    assert probe.choose_threads({**fast_bf16, "threads_ms": {"1": 50}}, why) == 1 and why["threads"] == "the only core"
    monkeypatch.setattr(probe, "free_cores", lambda: 1)
    assert probe.choose_threads(fast_bf16, why) == 1 and why["threads"] == f"1 of {probe.cores()} cores free"


def test_auto_preset_is_sized_by_the_measured_step(measured):
    from tinygpt_tui.engine.presets import BUDGET_STEPS, RUN_OVERHEAD, budget_preset

    need = BUDGET_STEPS["5min"]
    fast = {"1min": {"bf16": 20.0}, "5min": {"bf16": 300e3 / need / RUN_OVERHEAD * 0.9}}  # fits the steps 5min needs
    slow = {"1min": {"bf16": 20.0}, "5min": {"bf16": 300e3 / need / RUN_OVERHEAD * 1.1}}  # doesn't
    assert budget_preset(300, fast) == "5min" and budget_preset(300, slow) == "1min"
    assert budget_preset(None, fast) == "small"


def test_settle_fills_what_was_left_to_the_machine(cache, measured, monkeypatch):
    probe.save(_doc(measured, 150, 50, 50, 60))
    monkeypatch.setattr(probe, "free_cores", lambda: 2)
    cfg = probe.settle(TrainConfig(corpus="x", name="m", time_budget=60, device="cpu"))
    assert (cfg.threads, cfg.preset, cfg.dtype) == (1, "1min", "bf16")
    given = probe.settle(TrainConfig(corpus="x", name="m", time_budget=60, device="cpu", threads=2, dtype="fp32", preset="small"))
    assert (given.threads, given.preset, given.dtype) == (2, "small", "fp32")  # what was given stands


def test_threads_timed_on_a_busy_machine_are_timed_again_once_its_cores_are_free(cache, measured, monkeypatch):
    """A probe run while another process held a core saw 2 threads lose by far; at rest they may win. With more
    cores free than at the probe, settle times them again (once: the cache remembers the cores free then)."""
    busy = {**probe_doc_busy(measured), "threads_free": 1}
    probe.save(busy)
    monkeypatch.setattr(probe, "cores", lambda: 2)
    monkeypatch.setattr(probe, "free_cores", lambda: 2)
    timed = []  # (the machine at rest, as the test needs it whatever the load on the machine running it)
    monkeypatch.setattr(probe, "thread_times", lambda timer, n, budget: timed.append(n) or {1: 0.030, n: 0.020})
    notes = []
    cfg = probe.settle(TrainConfig(corpus="x", name="m", time_budget=60, device="cpu"), notes.append)
    again = probe.cached()
    assert again["threads_free"] == 2 and again["threads_ms"]["2"] != busy["threads_ms"]["2"]
    assert cfg.threads == probe.choose_threads(again) and [n for n in notes if "timing them again" in n] != []
    notes.clear()
    probe.settle(TrainConfig(corpus="x", name="m", time_budget=60, device="cpu"), notes.append)
    assert probe.cached() == again and notes == [] and timed == [2]  # once
    monkeypatch.setattr(probe, "free_cores", lambda: 1)
    probe.save(busy)
    assert probe.settle(TrainConfig(corpus="x", name="m", time_budget=60, device="cpu")).threads == 1
    assert probe.cached() == busy  # no more cores free than at the probe: its timings stand


def test_threads_that_lost_by_far_were_timed_without_free_cores_whatever_the_load_said():
    assert probe.free_for({1: 0.030, 2: 0.818}, 2) == 1  # a core was held: timed again once two are free
    assert probe.free_for({1: 0.030, 2: 0.040}, 2) == 2  # slower, not by far: a verdict of a free machine
    assert probe.free_for({1: 0.030, 2: 0.020}, 2) == 2 and probe.free_for({1: 0.030}, 1) == 1


def probe_doc_busy(measured):
    return _doc(measured, 150, 50, 30, 2000)


def test_settle_notes_slow_bf16(cache, measured):
    probe.save(_doc(measured, 50, 150, 50, 400, bf16_rate=0.5))
    notes = []
    cfg = probe.settle(TrainConfig(corpus="x", name="m", device="cpu", dtype="bf16", threads=1), notes.append)
    assert cfg.dtype == "bf16" and len(notes) == 1 and "will be slow" in notes[0]


def test_bad_threads_and_fp16_on_a_cpu_are_one_line_errors(small_corpus, tmp_path):
    for bad in ("0", str(probe.cores() + 1), "-3"):
        r = tinygpt_inproc("train", small_corpus, "--name", "t", "--models-dir", tmp_path, "--threads", bad, "--max-steps", "1")
        assert_one_line_error(r, "--threads")
    r = tinygpt_inproc("train", small_corpus, "--name", "t", "--models-dir", tmp_path, "--device", "cpu", "--dtype", "fp16", "--max-steps", "1")
    assert_one_line_error(r, "fp16")
    assert not (tmp_path / "t").exists()  # refused before a folder was made


def test_fp16_on_a_machine_without_a_gpu_is_refused_before_the_probe_measures(cache):
    """`tinygpt train --dtype fp16` (--device auto) on a CPU-only machine measured it for ten seconds, then refused."""
    from tinygpt_tui.engine.device import pick_device

    if pick_device("auto").type != "cpu":
        pytest.skip("a GPU here: fp16 is its to take")
    notes = []
    with pytest.raises(TinyGPTError, match="fp16 is for GPUs"):
        probe.settle(TrainConfig(corpus="x", name="m", dtype="fp16"), note=notes.append)
    assert notes == [] and not cache.exists()  # nothing measured


@pytest.mark.parametrize("args, said", [
    (["--name", "taken"], "a model named 'taken' already exists"),
    (["--name", "new", "--from", "nosuchmodel"], "--from nosuchmodel"),
    (["--name", "nosuchmodel", "--resume"], "nothing to resume"),
])
def test_a_run_that_cannot_start_is_refused_before_the_probe_measures(cache, small_corpus, tmp_path, args, said):
    """A name taken, a --from model that isn't there, nothing to resume: on a machine not yet probed, `tinygpt train`
    said "measuring this machine once ...", spent ten seconds or more on it, and only then refused."""
    from tests.conftest import make_model

    make_model(tmp_path / "models", "taken")
    r = tinygpt_inproc("train", small_corpus, *args, "--models-dir", tmp_path / "models", "--max-steps", "1")
    assert_one_line_error(r, said)
    assert not cache.exists()  # nothing measured


def test_bench_reports_the_probe_and_each_presets_efficiency(cache, measured, tmp_path):
    # threads timed on every core, and not lost by far (a verdict of a machine at rest whatever the load on the
    # machine running this): not timed again
    measured = {**measured, "threads_free": probe.cores(), "threads_ms": {k: 30.0 / int(k) for k in measured["threads_ms"]}}
    probe.save(measured)
    out = tmp_path / "bench.json"
    r = tinygpt_inproc("bench", "--presets", "tiny", "--seconds", "0.2", "--json", out, env={"XDG_CACHE_HOME": str(cache.parents[1]),
                                                                                            "TINYGPT_PROBE": "1"})
    assert r.returncode == 0, r.stderr
    assert "AMD" in r.stdout or probe.cpu_identity()["cpu"][:10] in r.stdout
    assert "of matmul" in r.stdout and "tiny" in r.stdout
    figures = json.loads(out.read_text())
    row = figures["efficiency"][0]
    assert row["preset"] == "tiny" and 0 < row["fraction"] < 2 and row["gflop"] > 0
    assert figures["probe"] == measured  # the cached probe, not a new one


def test_bench_shows_a_cache_without_a_load_average(cache, measured):
    """A probe where the load average could not be read (or a cache without it) made `tinygpt bench` a KeyError."""
    doc = {**measured, "threads_free": probe.cores(), "threads_ms": {k: 30.0 / int(k) for k in measured["threads_ms"]}}
    del doc["load_avg"]
    probe.save(doc)
    r = tinygpt_inproc("bench", "--presets", "none", env={"XDG_CACHE_HOME": str(cache.parents[1]), "TINYGPT_PROBE": "1"})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "load average unknown" in r.stdout and "measuring" not in r.stderr  # (the cache used as it is)


def test_bench_refuses_unknown_presets_and_threads(cache):
    assert_one_line_error(tinygpt_inproc("bench", "--presets", "huge"), "huge")
    assert_one_line_error(tinygpt_inproc("bench", "--threads", "0"), "--threads")


def test_model_flops_count_matmuls_and_attention():
    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.model import GPT

    cfg = GPTConfig(vocab_size=65, block_size=64, n_layer=3, n_head=4, n_embd=128)
    model = GPT(cfg)
    C, L, T, H = 128, 3, 64, cfg.ffn_hidden
    per_layer = 3 * C * C + C * C + 2 * C * H  # q, k, v; the output projection; the MLP's two
    assert probe.model_flops(model, 1000) == 1000 * (6 * (L * per_layer + 65 * C) + 12 * L * T * C)
    assert PRESETS["1min"]["n_embd"] == 128  # (the shape above is the 1min preset's)


def test_free_cores_follow_the_cpus_busy_now(monkeypatch):
    monkeypatch.setattr(probe, "cores", lambda: 2)
    monkeypatch.setattr(probe.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(probe.os, "getloadavg", lambda: (2.0, 2.0, 2.0))  # a run that ended a moment ago
    readings = iter([(1000, 5000), (1010, 5400)])  # 10 of 400 ticks busy: idle now
    monkeypatch.setattr(probe, "cpu_times", lambda: next(readings))
    assert probe.free_cores(window=0) == 2  # not the load average's minute-old 2 busy
    readings = iter([(1000, 5000), (1200, 5400)])  # one core busy
    assert probe.free_cores(window=0) == 1
    readings = iter([(1000, 5000), (1400, 5400)])
    assert probe.free_cores(window=0) == 1  # a busy machine: one core, never none


def test_free_cores_follow_the_load_where_the_cpus_times_are_unknown(monkeypatch):
    monkeypatch.setattr(probe, "cpu_times", lambda: None)
    monkeypatch.setattr(probe.os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert probe.free_cores() == probe.cores()
    monkeypatch.setattr(probe.os, "getloadavg", lambda: (probe.cores() + 5.0, 0.0, 0.0))
    assert probe.free_cores() == 1
    monkeypatch.setattr(probe.os, "getloadavg", lambda: (1.0, 0.0, 0.0))
    assert probe.free_cores() == max(1, probe.cores() - 1)


def test_cpu_times_are_read_from_this_machine():
    a = probe.cpu_times()
    if sys.platform.startswith("linux"):
        assert a is not None and 0 <= a[0] <= a[1]
        assert 0.0 <= probe.busy_cores(a, probe.cpu_times(), 2) <= 2.0
    assert 1 <= probe.free_cores(window=0.05) <= probe.cores()

def test_a_relative_xdg_cache_home_is_ignored_everywhere(tmp_path, monkeypatch, measured):
    """XDG_CACHE_HOME=cache was taken relative to the folder tinygpt was started in: a probe cache, prepared
    corpora and the decoder's note scattered into every folder a command ran in. The XDG spec says a relative
    path is ignored: ~/.cache it is, for all three."""
    from tinygpt_tui.engine import sources
    from tinygpt_tui.fast import warm

    home, cwd = tmp_path / "home", tmp_path / "here"
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", "cache")
    monkeypatch.delenv("TINYGPT_PREPARED_DIR", raising=False)
    monkeypatch.delenv("TINYGPT_PROBE", raising=False)
    monkeypatch.chdir(cwd)
    assert probe.save(measured) == home / ".cache" / "tinygpt" / "probe.json" and probe.cached() == measured
    assert sources.prepared_dir() == home / ".cache" / "tinygpt" / "prepared"
    warm.remember(("some", "types"))
    assert warm.known(("some", "types")) and (home / ".cache" / "tinygpt" / "decoder.json").is_file()
    assert not (cwd / "cache").exists()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "mine"))  # an absolute one is still used
    assert probe.cache_path() == tmp_path / "mine" / "tinygpt" / "probe.json"
    assert sources.prepared_dir() == tmp_path / "mine" / "tinygpt" / "prepared"


def test_the_efficiency_table_keeps_every_figure_whole_at_80_columns():
    """A 25M preset's step of 22 seconds printed as "22,29…" in a pipe (80 columns): the headers wrap now."""
    from rich.console import Console

    from tinygpt_tui.cli.bench import efficiency_table

    rows = [{"preset": name, "params": params, "tokens": 8192, "precision": "fp32", "ms": ms, "gflop": gflop, "gflops": 58.4,
             "matmul_gflops": 114.2, "fraction": 0.512, "with_muon": 0.633}
            for name, params, ms, gflop in (("large", 25_270_000, 22_290.4, 1_290.12), ("tiny", 110_000, 38.61, 1.66))]
    console = Console(width=80, record=True, color_system=None)
    console.print(efficiency_table(rows, "wall clock, 2 threads"))
    text = console.export_text()
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    for figure in ("25.27M", "22,290", "1,290", "38.6", "1.66", "51%", "63%"):
        assert figure in text, figure


def test_auto_preset_says_what_a_cpu_run_picks_from_the_cached_probe(cache, measured):
    """On a Zen 3 the probe picks 1min for 5 minutes while the training form said "auto picks 5min" (the budget's
    rule): the form now reads the cache as a run does, without importing torch or measuring anything."""
    slow = _doc(measured, 80.0, 400.0, 80.0, 60.0)  # (5min's fp32 step 320 ms: 300 s hold fewer than 1,400 of them)
    assert probe.auto_preset(300) == "5min"  # no cache yet: the budget's rule
    probe.save(slow)
    assert probe.auto_preset(300) == "1min" == probe.settle(TrainConfig(corpus="x", preset="auto", time_budget=300, threads=1)).preset
    assert probe.auto_preset(300, "cuda") == "5min"  # (a GPU's run is not sized by a CPU's probe)
    fast = _doc(measured, 20.0, 10.0, 20.0, 15.0)
    probe.save(fast)
    assert probe.auto_preset(300) == "5min" and probe.auto_preset(60) == "1min" and probe.auto_preset(None) == "small"


async def test_the_training_forms_size_note_follows_the_cached_probe(cache, measured, tmp_path):
    from textual.widgets import Static

    from tests.conftest import make_models_dir
    from tests.test_app import fill, make_app, wait_for

    probe.save(_doc(measured, 80.0, 400.0, 80.0, 60.0))
    app = make_app(make_models_dir(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        assert await wait_for(pilot, lambda: app.current_mode == "training")
        note = app.screen.query_one("#train-size-note", Static)
        fill(app.screen, **{"train-preset": "auto", "train-minutes": "5"})
        said = lambda: " ".join(str(note.render()).split())  # noqa: E731
        assert await wait_for(pilot, lambda: said().startswith("auto picks 1min: 2 layers"))
        # why 1min for 5 minutes: not "sized for a run of a minute or two" beside the 5 typed (the newcomer audit), nor
        # "the minutes hold too few steps of 5min for it to learn more" (read as: too few minutes)
        assert "measured speed: in these minutes, 5min would get too few steps to learn more" in said() and "minute or two" not in said()
        fill(app.screen, **{"train-minutes": "1"})  # (1min is the budget's own pick for a minute: no why to say)
        assert await wait_for(pilot, lambda: said().startswith("auto picks 1min") and "minute or two" in said() and "measured" not in said())
        fill(app.screen, **{"train-minutes": "5", "train-device": "cuda"})  # (a GPU's run is sized by the budget: the note follows the device)
        assert await wait_for(pilot, lambda: str(note.render()).startswith("auto picks 5min") and "measured" not in said())
        fill(app.screen, **{"train-device": "cpu"})
        assert await wait_for(pilot, lambda: str(note.render()).startswith("auto picks 1min"))


async def test_a_cache_folder_that_cannot_be_looked_in_leaves_the_training_form_open(tmp_path, monkeypatch):
    """Where the cache's path can't be looked at (a folder without search permission, a name over 255 bytes),
    Path.exists raised: typing the minutes into the training form ended the app with a traceback."""
    from tests.conftest import make_models_dir
    from tests.test_app import fill, make_app, wait_for

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ("c" * 300)))  # (stat: "File name too long")
    monkeypatch.delenv("TINYGPT_PROBE", raising=False)
    assert probe.cached() is None and probe.auto_preset(300) == "5min"  # (the budget's rule, as without a cache)
    app = make_app(make_models_dir(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        assert await wait_for(pilot, lambda: app.current_mode == "training")
        fill(app.screen, **{"train-preset": "auto", "train-minutes": "5"})
        note = app.screen.query_one("#train-size-note")
        assert await wait_for(pilot, lambda: str(note.render()).startswith("auto picks 5min"))
    assert app.return_code is None
