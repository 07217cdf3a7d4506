"""Runs side by side (engine/runs.py and `tinygpt runs` / `tinygpt compare`): summaries that never raise,
curves followed by offset, the overfitting note, the milestones of a shipped book, the chart files."""

import json
import math
import os
import shutil
import xml.etree.ElementTree as ET

import pytest

from tests.test_cli import ROOT, assert_one_line_error, tinygpt_inproc
from tinygpt_tui.engine import runs
from tinygpt_tui.engine.runs import Curves, EvalPoint, list_runs, overfitting, stage, summarize, thin


def write_log(folder, records, mode="w"):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "metrics.jsonl", mode, encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def fake_run(steps=100, every=10, eval_every=50, corpus="tinyshakespeare", val=lambda s: 4.0 - s / 100, start=0,
             tokens_per_step=512, finish=True):
    """The records a run writes: start, a step record every `every` steps, an eval every `eval_every`, finish."""
    recs = [{"event": "start", "step": start, "params": 1000, "tokens_per_step": tokens_per_step, "corpus": corpus,
             "model": {"block_size": 32}}]
    for s in range(start + 1, steps + 1):
        if s % every == 0 or s == 1:
            recs.append({"event": "step", "step": s, "loss": val(s) + 0.1, "lr": 1e-3, "tokens_per_s": 1000.0, "elapsed_s": s * 0.6,
                         "progress": s / steps, "eta_s": 1.0, "tokens_seen": s * tokens_per_step})
        if s % eval_every == 0:
            recs.append({"event": "eval", "step": s, "train_loss": val(s) - 0.05, "val_loss": val(s), "best_val_loss": val(s),
                         "elapsed_s": s * 0.6, "sample": f"sample at {s}"})
    if finish:
        recs.append({"event": "finish", "step": steps, "reason": "done", "val_loss": val(steps), "best_val_loss": val(steps),
                     "elapsed_s": steps * 0.6, "path": ""})
    return recs


# ----------------------------------------------------------------- summaries
def test_list_runs_shows_every_folder_broken_ones_with_why_and_experiment_members(tiny_models_dir, tmp_path):
    d = tmp_path / "models"
    shutil.copytree(tiny_models_dir, d)
    shutil.copytree(d / "alpha", d / "exp" / "m1")
    (d / "exp" / "experiment.json").write_text("{}")
    (d / "lonely").mkdir()  # an empty folder: a run with nothing to show, not an experiment
    (d / "dead").mkdir()  # a run killed before its first save: its lock (of a process gone) and nothing else
    (d / "dead" / ".lock").write_text("123")
    got = {s.name: s for s in list_runs(d)}
    assert set(got) == {"alpha", "beta", "broken", "dead", "exp/m1", "lonely"}
    assert got["dead"].status.startswith("no checkpoint: stopped before its first save") and not got["dead"].ok
    assert got["alpha"].status == "finished" and got["alpha"].params > 0 and got["alpha"].context == 32
    assert got["alpha"].val_loss == 4.0 and got["alpha"].bpc == pytest.approx(4.0 / math.log(2))
    assert got["broken"].status.startswith("broken: ") and "JSON" in got["broken"].status and not got["broken"].ok
    assert got["exp/m1"].folder == d / "exp" / "m1" and got["exp/m1"].ok
    assert got["lonely"].status == "broken: an empty folder"


def test_summarize_never_raises(tmp_path, tiny_models_dir):
    (tmp_path / "a file").write_text("x")
    os.symlink(tmp_path, tmp_path / "link")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_bytes(b"\xff\xfe\x00")
    (garbage / "metrics.jsonl").write_bytes(b"\x00" * 1000 + b"\n{\"event\": 1}\n")
    for p in (tmp_path / "a file", tmp_path / "link", garbage, tmp_path / "missing"):
        s = summarize(p)
        assert s.status.startswith("broken: "), (p, s.status)
    # a link to a real run (a model folder kept on another disk): said to be a link, not "not a folder"
    os.symlink(tiny_models_dir / "alpha", tmp_path / "alpha-link")
    assert summarize(tmp_path / "alpha-link").status.startswith("broken: a symbolic link")


def test_a_live_runs_summary_comes_from_its_log_and_a_stopped_one_says_so(tiny_models_dir, tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(tiny_models_dir / "alpha", folder)
    write_log(folder, fake_run(steps=200, finish=False))
    s = summarize(folder)
    assert s.status == "stopped"  # a checkpoint whose figure is not the final one, and no finish record
    assert s.steps == 200 and s.tokens_seen == 200 * 512 and s.minutes == pytest.approx(2.0)
    assert s.tokens_per_s == pytest.approx(200 * 512 / 120)
    assert s.val_loss == 4.0  # the checkpoint's figure (what its weights score), not the log's later estimates
    write_log(folder, [{"event": "finish", "step": 200, "reason": "stopped", "val_loss": None, "best_val_loss": 2.0,
                        "elapsed_s": 120.0, "path": ""}], mode="a")
    assert summarize(folder).status == "stopped"
    write_log(folder, fake_run(steps=200, val=lambda s: 3.0))
    assert summarize(folder).status == "finished"


def test_a_summary_reads_the_tail_of_a_long_log(tiny_models_dir, tmp_path):
    folder = tmp_path / "long"
    shutil.copytree(tiny_models_dir / "alpha", folder)
    write_log(folder, fake_run(steps=50_000, every=10, eval_every=250, val=lambda s: 3.0 - s / 100_000))
    assert (folder / "metrics.jsonl").stat().st_size > 3 * runs.TAIL_BYTES
    s = summarize(folder)
    assert s.steps == 50_000 and s.status == "finished" and s.minutes == pytest.approx(500.0)


def test_a_run_whose_log_was_cut_short_takes_its_figures_from_the_checkpoint_and_says_so(tmp_path):
    """The shipped run copied with the first 5,000 bytes of its metrics.jsonl was listed as finished in 0.42 min at
    487,857 tok/s: the time of the log's last step (160) over the tokens of the checkpoint's (6,000). Its time and
    speed are now config.json's, and the table says where the log ends."""
    d = tmp_path / "models"
    shutil.copytree(runs.shipped_models_dir() / "shakespeare", d / "shakespeare")
    log = d / "shakespeare" / "metrics.jsonl"
    log.write_bytes(log.read_bytes()[:5000])
    figures = json.loads((d / "shakespeare" / "config.json").read_text(encoding="utf-8"))["figures"]
    s = summarize(d / "shakespeare")
    assert s.status == "finished" and s.steps == figures["step"] == 6000 and s.log_cut == 160
    assert s.minutes == pytest.approx(figures["train_time_s"] / 60) and s.tokens_seen == figures["tokens_seen"]
    assert s.tokens_per_s == pytest.approx(figures["tokens_seen"] / figures["train_time_s"])
    assert s.val_loss == figures["val_loss"] and s.bpc == figures["val_bpc"]
    out = tinygpt_inproc("runs", "--models-dir", d, env={"COLUMNS": "120"}).stdout
    assert "12.8" in out and "16,003" in out and "487,857" not in out, out
    assert "shakespeare: log cut at step 160 of 6,000" in out, out
    assert summarize(runs.shipped_models_dir() / "shakespeare").log_cut is None  # (the whole log reaches the checkpoint)


# ----------------------------------------------------------------- curves
def test_a_finished_run_s_whole_split_loss_is_a_point_of_its_own_where_its_kept_weights_are_from(tmp_path):
    """`tinygpt lesson depth --max-steps 60`: the bigram's last evaluation (10 batches of 16) said 2.771, the whole
    validation split 2.957, and the chart's last dot disagreed with the table, nothing said. The final loss is a
    point of its own, the table's figure, at the evaluation whose weights the run kept: the hongloumeng run kept
    step 4,750's (the best estimate), not its last step's (4,861)."""
    for name, at in (("shakespeare", 6000), ("hongloumeng", 4750)):
        folder = runs.shipped_models_dir() / name
        c, s = Curves(folder), summarize(folder)
        assert c.final_val() == ([at], [s.val_loss]) and c.final_val(bits=True) == ([at], [s.bpc]), name
        kept = next(e for e in c.evals if e.step == at)
        assert c.final_val("tokens")[0] == [kept.tokens] and c.final_val("minutes")[0] == [kept.minutes]
        assert c.val()[1][c.val()[0].index(at)] != s.val_loss  # (the estimate there is another figure)
    assert Curves(runs.shipped_models_dir() / "hongloumeng").val()[0][-1] == 4861
    folder = tmp_path / "r"
    write_log(folder, fake_run(steps=100, val=lambda s: 4.0 - s / 100))
    c = Curves(folder)
    assert c.final_val() == ([100], [3.0])
    write_log(folder, [{"event": "start", "step": 100, "params": 1000, "tokens_per_step": 512}], mode="a")  # resumed: not final
    assert c.update() and c.final_val() == ([], [])
    write_log(folder, [{"event": "finish", "step": 100, "reason": "stopped", "val_loss": None, "best_val_loss": 3.0,
                        "elapsed_s": 60.0, "path": ""}], mode="a")
    assert c.update() and c.finished and c.final_val() == ([], [])  # stopped: no whole-split figure


def test_compare_draws_the_final_whole_split_loss_as_a_diamond_and_says_which_is_which(tiny_models_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_models_dir, d)
    recs = fake_run(steps=200)
    recs[-1]["val_loss"] = 2.5  # the whole split's: above the last estimate (2.0)
    write_log(d / "alpha", recs)
    recs = fake_run(steps=200)
    recs[-1].update(reason="stopped", val_loss=None)
    write_log(d / "beta", recs)
    out = tinygpt_inproc("compare", "alpha", "beta", "--models-dir", d, env={"COLUMNS": "100"}).stdout
    assert "(training ─, validation estimates •, final ◆)" in out and "◆ final val (whole split)" in out, out
    plot = [ln for ln in out.splitlines() if "┤" in ln[:8] or ln.lstrip()[:1] == "│"]
    assert sum(ln.count("◆") for ln in plot) == 1, out  # alpha's; beta stopped: no whole-split figure
    svg = tmp_path / "c.svg"
    assert tinygpt_inproc("compare", "alpha", "beta", "--out", svg, "--models-dir", d).returncode == 0
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert "alpha final val (whole split)" in texts and "alpha val (estimate)" in texts and "beta final val (whole split)" not in texts
    diamonds = root.findall(f"{ns}path")
    assert len(diamonds) == 2  # alpha's point and its legend entry
    frame = next(r for r in root.findall(f"{ns}rect") if r.get("stroke") == "#444")
    right = float(frame.get("x")) + float(frame.get("width"))
    dots = [c for c in root.findall(f"{ns}circle") if c.get("fill") == diamonds[0].get("fill") and float(c.get("cx")) <= right]
    last = max(dots, key=lambda c: float(c.get("cx")))  # alpha's last evaluation (step 200): 2.0
    x, top = map(float, diamonds[0].get("d")[1:].split(" ")[0].split(","))
    assert x == pytest.approx(float(last.get("cx"))) and top + 5.5 < float(last.get("cy"))  # at step 200, above it: 2.5


def test_curves_follow_a_growing_log_by_offset(tmp_path):
    folder = tmp_path / "live"
    recs = fake_run(steps=100, finish=False)
    write_log(folder, recs[:5])
    c = Curves(folder)
    assert c.steps == [1, 10, 20, 30] and not c.evals
    assert not c.update()  # nothing new
    with open(folder / "metrics.jsonl", "a") as f:  # the rest, then half a line: read when it ends
        f.writelines(json.dumps(r) + "\n" for r in recs[5:])
        f.write('{"event": "step", "step": 110, "loss": 1.0,')
    assert c.update() and c.steps[-1] == 100 and [e.step for e in c.evals] == [50, 100]
    with open(folder / "metrics.jsonl", "a") as f:
        f.write(' "elapsed_s": 66.0, "tokens_seen": 56320}\n')
    assert c.update() and c.steps[-1] == 110
    xs, ys = c.val("tokens")
    assert xs == [50 * 512, 100 * 512] and ys == pytest.approx([3.5, 3.0])
    xs, _ = c.train("minutes")
    assert xs[1] == pytest.approx(0.1) and xs[-1] == pytest.approx(1.1)
    with pytest.raises(ValueError):
        c.val("hours")


def test_curves_keep_each_evaluations_bits_per_character(tmp_path):
    """What compares across tokenizers; an evaluation logged without it is left out of that curve."""
    folder = tmp_path / "bpe"
    recs = fake_run(steps=100, finish=False)
    evals = [r for r in recs if r["event"] == "eval"]
    evals[-1]["bpc"] = 2.5
    write_log(folder, recs)
    c = Curves(folder)
    assert [e.bpc for e in c.evals] == [None, 2.5]
    assert c.val_bpc("steps") == ([evals[-1]["step"]], [2.5]) and c.val_bpc("tokens")[0] == [evals[-1]["step"] * 512]


def test_a_resumed_run_replaces_what_came_after_its_checkpoint(tmp_path):
    folder = tmp_path / "resumed"
    write_log(folder, fake_run(steps=100, finish=False) + fake_run(steps=150, start=50, val=lambda s: 9.0))
    c = Curves(folder)
    assert [e.step for e in c.evals] == [50, 100, 150] and c.evals[0].val_loss == pytest.approx(3.5)
    assert c.evals[1].val_loss == 9.0 and c.steps == sorted(set(c.steps)) and c.steps[-1] == 150


def test_a_training_run_s_bits_per_character_are_of_its_best_loss(tiny_models_dir, tmp_path):
    """A live run's summary gives the best validation loss so far; its bits/char were the last evaluation's,
    of another loss, so the two figures of its row disagreed (and grew apart as it overfitted)."""
    from tinygpt_tui.engine.folder import FolderLock

    d = tmp_path / "m"
    shutil.copytree(tiny_models_dir, d)
    recs = fake_run(steps=200, eval_every=50, finish=False, val=lambda s: 2.0 + abs(s - 100) / 100)  # best at 100, then rising
    for r in recs:
        if r["event"] == "eval":
            r["best_val_loss"], r["bpc"] = 2.0 if r["step"] >= 100 else r["val_loss"], r["val_loss"] * 1.5  # (1.5 bits a nat here)
    write_log(d / "alpha", recs)
    lock = FolderLock(d / "alpha")  # as the run training it holds it
    try:
        s = summarize(d / "alpha")
    finally:
        lock.release()
    assert s.status == "training" and s.val_loss == 2.0
    assert s.bpc == pytest.approx(3.0)  # the best's, not the last evaluation's 4.5


def test_a_followed_run_resumed_after_a_kill_is_read_afresh(tmp_path):
    """Resuming a killed run rewrites its log without the records past its checkpoint, then appends. A Curves
    following it (the runs screen's) read on from its old offset, mid-line: it missed the resumed start and
    kept the killed session's evaluations in place of the new ones."""
    from tinygpt_tui.engine.metrics import truncate_metrics

    folder = tmp_path / "killed"
    write_log(folder, fake_run(steps=100, eval_every=20, finish=False))  # killed at step 100; its checkpoint at 60
    c = Curves(folder)
    truncate_metrics(folder, 60)  # what --resume does first
    assert c.update() and c.evals == Curves(folder).evals  # (cut back: read afresh, not left as it was)
    write_log(folder, fake_run(steps=140, start=60, eval_every=20, finish=False, val=lambda s: 2.0), mode="a")
    c.update()
    fresh = Curves(folder)
    assert [(e.step, e.val_loss) for e in c.evals] == [(e.step, e.val_loss) for e in fresh.evals]
    assert [e.val_loss for e in c.evals if e.step > 60] == [2.0, 2.0, 2.0, 2.0]
    assert (c.steps, c.losses) == (fresh.steps, fresh.losses)


def test_thin_keeps_the_ends_and_at_most_max_points():
    xs = list(range(5000))
    tx, ty = thin(xs, [x * 2 for x in xs], 400)
    assert len(tx) == 400 and tx[0] == 0 and tx[-1] == 4999 and ty == [x * 2 for x in tx]
    assert thin([1, 2], [3, 4], 400) == ([1, 2], [3, 4])


# ----------------------------------------------------------------- overfitting
def evals(vals, trains=None):
    trains = trains or [3.0 - 0.1 * i for i in range(len(vals))]
    return [EvalPoint(step=100 * (i + 1), tokens=0, minutes=0.0, train_loss=t, val_loss=v) for i, (v, t) in enumerate(zip(vals, trains))]


def test_overfitting_is_said_when_validation_rises_for_k_evals_while_training_falls():
    assert overfitting(evals([3.0, 2.5, 2.2, 2.1, 2.05])) is None  # still learning
    note = overfitting(evals([3.0, 2.5, 2.0, 2.06, 2.08, 2.10]))
    assert note and "2.000" in note and "step 300" in note and "overfitting" in note
    assert overfitting(evals([3.0, 2.5, 2.0, 2.1, 2.01, 2.10])) is None  # one estimate back near the best: noise
    assert overfitting(evals([3.0, 2.5, 2.0, 2.1, 2.1, 2.1], trains=[3, 2.6, 2.1, 2.2, 2.3, 2.4])) is None  # both rise: not it
    assert overfitting(evals([2.0, 2.1, 2.2])) is None  # too few to tell


def test_the_shipped_shakespeare_run_ends_at_its_best_and_is_not_called_overfitting():
    """A real run annealed to a learning rate of 0: its estimates (10 held batches) wander up by more than
    the noise margin now and then, but the last ones hold its best, so the note stays quiet at the end."""
    c = Curves(runs.shipped_models_dir() / "shakespeare")
    assert c.finished and len(c.evals) > 20
    vals = [e.val_loss for e in c.evals]
    assert any(b > a + 0.02 for a, b in zip(vals, vals[1:]))  # it does wander up now and then
    assert min(vals) in vals[-3:] and overfitting(c) is None


# ----------------------------------------------------------------- what good looks like
def test_stage_names_the_last_milestone_reached():
    assert stage("tinyshakespeare", 2.7) is None
    assert stage("tinyshakespeare", 1.8) == (2.0, "words and names")
    assert stage("tinyshakespeare", 1.4)[0] == 1.5 and stage("hongloumeng", 3.8)[0] == 3.9
    assert stage("my-diary", 1.0) is None and stage("tinyshakespeare", None) is None


def test_milestones_take_the_sample_nearest_each_stage(tmp_path):
    folder = tmp_path / "ref"
    write_log(folder, fake_run(steps=300, eval_every=50, val=lambda s: 3.0 - s / 200))  # evals at 2.75, 2.5, ... 1.5
    ms = runs.milestones("tinyshakespeare", sources=[folder])
    assert [m.loss for m in ms] == [2.5, 2.0, 1.7, 1.5]
    assert ms[0].sample == "sample at 100" and ms[0].sample_loss == pytest.approx(2.5) and ms[0].source == "ref"
    assert ms[2].sample_step in (250, 300) and ms[3].sample == "sample at 300"
    far = tmp_path / "far"
    write_log(folder, fake_run(steps=50, eval_every=50, val=lambda s: 3.5))
    write_log(far, fake_run(steps=50, eval_every=50, val=lambda s: 3.5))
    assert all(m.sample == "" for m in runs.milestones("tinyshakespeare", sources=[far]))
    assert runs.milestones("somebook") == []


@pytest.mark.parametrize("book", ["tinyshakespeare", "hongloumeng"])
def test_every_stage_of_a_shipped_book_has_a_real_sample(book):
    ms = runs.milestones(book)
    assert len(ms) == 4 and all(m.sample and abs(m.sample_loss - m.loss) <= runs.SAMPLE_NEAR for m in ms)
    assert ms[0].source == f"early-{book.removeprefix('tiny')}"  # the first stage: from a short run's early evaluations


def test_the_runs_stamp_changes_when_an_experiment_s_member_starts_its_log(tmp_path):
    """The runs screen lists again only when stamp() differs. It stamped the folders of the runs listed and their parents:
    an experiment's member is listed once it has a log or a config, so the first member of a new experiment (and a member
    caught between its folder and its first record) was in no folder stamped, and its log starting changed nothing: it
    stayed off the screen until F5."""
    exp = tmp_path / "models" / "grid"
    (exp / "lr=0.001").mkdir(parents=True)
    (exp / "experiment.json").write_text("{}", encoding="utf-8")
    (exp / "lr=0.001" / ".lock").write_text("123", encoding="utf-8")  # locked, preparing its corpus: no record yet
    listed = list_runs(tmp_path / "models")
    assert listed == []
    before = runs.stamp(tmp_path / "models", listed)
    (exp / "lr=0.001" / "metrics.jsonl").write_text(json.dumps({"event": "start", "step": 0}) + "\n", encoding="utf-8")
    assert [s.name for s in list_runs(tmp_path / "models")] == ["grid/lr=0.001"]
    assert runs.stamp(tmp_path / "models", listed) != before


# ----------------------------------------------------------------- the command line
def test_runs_on_two_corpora_as_many_each_are_drawn_on_the_newest_runs():
    """Two runs on Shakespeare, two on the learner's own book, all checked: the chart drew the corpus of the folder
    listed first; it is that of the run trained last."""
    from tinygpt_tui.engine.runs import RunSummary, common_corpus

    def run(name, corpus, updated):
        return RunSummary(name, None, "finished", corpus=corpus, corpus_sha256=corpus * 8, updated=updated)

    older = [run("shakespeare", "shake", 100.0), run("lesson-a", "shake", 200.0)]
    newer = [run("book-chars", "mybook", 300.0), run("book-bpe", "mybook", 400.0)]
    assert common_corpus(older + newer) == ("mybook", "mybook" * 8)
    assert common_corpus(newer + older) == ("mybook", "mybook" * 8)
    assert common_corpus(older + newer[:1]) == ("shake", "shake" * 8)  # (more runs on one text: that one)


def test_runs_command_lists_and_explains_broken_folders(tiny_models_dir):
    r = tinygpt_inproc("runs", "--models-dir", tiny_models_dir)
    assert r.returncode == 0, r.stderr
    assert "alpha" in r.stdout and "beta" in r.stdout and "broken: " in r.stdout and "JSON" in r.stdout


def test_runs_command_keeps_names_whole_in_an_80_column_terminal(tiny_models_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_models_dir, d)
    shutil.copytree(d / "alpha", d / "grid-n_layer=2")
    shutil.copytree(d / "alpha", d / "ci2-pos_encoding=learned")  # (as long as an experiment member's name)
    r = tinygpt_inproc("runs", "--models-dir", d, env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln[:1] in "┏┃┡│└"]  # the table (a broken folder's reason follows it)
    assert lines and max(len(ln) for ln in lines) <= 80
    assert any("grid-n_layer=2" in ln for ln in lines) and any("ci2-pos_encoding=learned" in ln for ln in lines), r.stdout
    wide = tinygpt_inproc("runs", "--models-dir", d, env={"COLUMNS": "120"}).stdout
    assert "tok/s" in wide and "tok/s" not in r.stdout  # (at 80 columns the timing columns give way to the names)


@pytest.mark.parametrize("columns", ["80", "100"])
def test_runs_command_wraps_a_long_name_only_between_its_parts(tiny_models_dir, tmp_path, columns):
    """At 80 columns a lesson's member on another book was folded inside its value ("dropout=0." then "0"):
    a name wider than its column breaks after a / or a comma, or a - outside a value, never inside a part."""
    d = tmp_path / "m"
    shutil.copytree(tiny_models_dir, d)
    names = ["lesson-dropout-60steps-tinyshakespeare/dropout=0.0", "lesson-dropout-60steps-tinyshakespeare/dropout=0.2",
             "grid-on-a-book/pos_encoding=sinusoidal,n_layer=2,seed=1338", "lr-grid/lr=3e-3"]
    for name in names:
        shutil.copytree(d / "alpha", d / name)
    r = tinygpt_inproc("runs", "--models-dir", d, env={"COLUMNS": columns})
    assert r.returncode == 0, r.stderr
    rows, cells = [], []  # each row's run cell, line by line
    for ln in r.stdout.splitlines():
        if ln.startswith("│"):
            cell = ln.split("│")[1].strip()
            if cell and ln.split("│")[2].strip():  # (a row's first line has its status)
                cells = [cell]
                rows.append(cells)
            elif cell:
                cells.append(cell)
    assert max(len(ln) for ln in r.stdout.splitlines() if ln[:1] in "┏┃┡│└") <= int(columns), r.stdout
    shown = {"".join(c): c for c in rows}
    assert len(shown[names[0]]) > 1 or columns == "100", r.stdout  # (wrapped at 80: the test sees a break)
    for lines in map(shown.get, names):
        for line in lines[:-1]:
            part = line.split("/")[-1].split(",")[-1]
            assert line[-1] in "/," or (line[-1] == "-" and "=" not in part), (lines, r.stdout)


def test_compare_marks_broken_and_other_corpus_runs_and_draws(tiny_models_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_models_dir, d)
    for name, corpus in (("alpha", "tinyshakespeare"), ("beta", "tinyshakespeare")):
        write_log(d / name, fake_run(steps=200, corpus=corpus))
    doc = json.loads((d / "beta" / "config.json").read_text())
    doc["corpus"] = {"name": "other", "sha256": "1" * 64}
    (d / "beta" / "config.json").write_text(json.dumps(doc))
    shutil.copytree(d / "alpha", d / "gamma")
    r = tinygpt_inproc("compare", "alpha", "beta", "broken", "gamma", "--x", "tokens", "--models-dir", d)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "≠ other" in out and "beta: trained on other" in out and "broken: broken: config.json is not valid JSON" in out
    legend = next(ln for ln in out.splitlines() if ln.startswith("━━ "))
    assert "alpha" in legend and "beta" in legend and "gamma" in legend and "broken" not in legend
    assert "tokens seen" in out and "(training ─, validation estimates •, final ◆)" in out and "◆ final val (whole split)" in out
    # and docs/experiments.md says so (it had the terminal's the other way round: validation solid, training dotted)
    doc = " ".join((ROOT / "docs" / "experiments.md").read_text(encoding="utf-8").split())
    assert "training loss at the logged steps and validation loss at each evaluation (in the terminal a line and a `•`" in doc
    plot = [ln for ln in out.splitlines() if ln.lstrip()[:1] in "│┤" or "┤" in ln[:8]]
    assert any(any("\u2801" <= ch <= "\u28ff" for ch in ln) for ln in plot) and any("•" in ln for ln in plot)  # lines and marks drawn


def logged_copy(models_dir, tmp_path):
    """A copy of the tiny models folder whose alpha has a 200-step log."""
    d = tmp_path / "m"
    shutil.copytree(models_dir, d)
    write_log(d / "alpha", fake_run(steps=200))
    return d


def test_a_run_named_twice_in_compare_is_one_row_and_one_curve_and_said(tiny_models_dir, tmp_path):
    """`tinygpt compare alpha alpha` (or a name and its path) listed the run twice and drew two legends of one curve."""
    d = logged_copy(tiny_models_dir, tmp_path)
    r = tinygpt_inproc("compare", "alpha", "alpha", d / "alpha", "--models-dir", d)
    assert r.returncode == 0, r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("│") and "alpha" in ln]
    legend = next(ln for ln in r.stdout.splitlines() if ln.startswith("━━ "))
    assert len(rows) == 1 and legend.count("alpha") == 1, r.stdout
    assert f"named more than once, drawn once: alpha, {d / 'alpha'}" in r.stdout


def test_a_log_of_gigabytes_is_charted_from_its_end_and_compare_says_so(tiny_models_dir, tmp_path, monkeypatch):
    """A metrics.jsonl of 100 GB (sparse: zeros) kept `compare` reading it, 64 MB at a time, for minutes. A chart
    reads the last MAX_LOG bytes of a bigger log (its latest records), and compare says which run's log was cut."""
    d = logged_copy(tiny_models_dir, tmp_path)
    log = d / "alpha" / "metrics.jsonl"
    tail = log.read_bytes()
    with open(log, "r+b") as f:
        f.truncate(runs.MAX_LOG + (3 << 30))  # (a hole of zeros, then the records)
        f.seek(0, os.SEEK_END)
        f.write(tail)
    read, pread = [0], os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, at: read.__setitem__(0, read[0] + n) or pread(fd, n, at))
    c = Curves(d / "alpha")
    assert read[0] <= runs.MAX_LOG + runs.TAIL_BYTES + len(tail) and c.offset == log.stat().st_size  # (the hole's start: not read)
    assert c.evals and c.evals[-1].step == 200 and c.finished
    assert c.corpus == "tinyshakespeare" and c.tokens_per_step == 512  # (from the start record, at the log's head)
    assert c.evals[-1].tokens == 200 * 512
    r = tinygpt_inproc("compare", "alpha", "beta", "--models-dir", d)
    assert r.returncode == 0, r.stderr
    assert f"alpha: metrics.jsonl is {log.stat().st_size:,} bytes: its last {runs.MAX_LOG >> 20} MB are drawn" in r.stdout


def test_compare_writes_an_svg_with_a_line_per_curve(tiny_models_dir, tmp_path):
    d = logged_copy(tiny_models_dir, tmp_path)
    write_log(d / "beta", fake_run(steps=300, val=lambda s: 4.0 - s / 150))
    out = tmp_path / "chart.svg"
    r = tinygpt_inproc("compare", "alpha", "beta", "--out", out, "--x", "minutes", "--models-dir", d)
    assert r.returncode == 0, r.stderr
    root = ET.parse(out).getroot()
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 4  # val and train of each
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "alpha val (estimate)" in texts and "beta train" in texts and "minutes of training" in texts
    assert "alpha final val (whole split)" in texts  # (a ◆: the whole split's loss, not a polyline)


def test_a_chart_file_marks_each_evaluation_so_a_run_evaluated_once_shows(tiny_models_dir, tmp_path):
    """A short run (a lesson at --max-steps 60, evaluated every 100 steps) has one evaluation, at its end: its
    validation "line" was a polyline of one point, drawn as nothing, though the legend named it."""
    d = tmp_path / "m"
    shutil.copytree(tiny_models_dir, d)
    write_log(d / "alpha", fake_run(steps=60, eval_every=60))
    write_log(d / "beta", fake_run(steps=200, eval_every=50))
    out = tmp_path / "chart.svg"
    r = tinygpt_inproc("compare", "alpha", "beta", "--out", out, "--models-dir", d)
    assert r.returncode == 0, r.stderr
    root = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    val = {ln.get("stroke") for ln in root.findall(f"{ns}polyline") if not ln.get("stroke-dasharray")}
    dots = [c for c in root.findall(f"{ns}circle") if c.get("fill") in val]
    legend = 2  # a dot beside each validation entry of the legend
    assert len(dots) == 1 + 4 + legend  # alpha's one evaluation, beta's four


def test_compare_says_which_run_has_no_loss_log_to_draw(tiny_models_dir, tmp_path):
    """A converted or imported model has no metrics.jsonl: it was in the table and silently off the chart."""
    d = logged_copy(tiny_models_dir, tmp_path)
    (d / "beta" / "metrics.jsonl").unlink(missing_ok=True)
    r = tinygpt_inproc("compare", "alpha", "beta", "--models-dir", d)
    assert r.returncode == 0, r.stderr
    assert "beta: no loss records (metrics.jsonl): not on the chart" in r.stdout
    assert "alpha: no loss records" not in r.stdout


def test_compare_s_chart_file_says_which_runs_do_not_compare(tiny_models_dir, tmp_path):
    """A chart written for a write-up has no table beside it: its legend marks a run on another corpus and
    a broken folder, as the table does."""
    d = tmp_path / "m"
    shutil.copytree(tiny_models_dir, d)
    for name in ("alpha", "beta", "broken"):
        write_log(d / name, fake_run(steps=200))
    doc = json.loads((d / "beta" / "config.json").read_text())
    doc["corpus"] = {"name": "other", "sha256": "1" * 64}
    (d / "beta" / "config.json").write_text(json.dumps(doc))
    shutil.copytree(d / "alpha", d / "gamma")
    out = tmp_path / "chart.svg"
    r = tinygpt_inproc("compare", "alpha", "beta", "broken", "gamma", "--out", out, "--models-dir", d)
    assert r.returncode == 0, r.stderr
    texts = [t.text for t in ET.parse(out).getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert "alpha val (estimate)" in texts and "gamma train" in texts
    assert "beta (other corpus) val (estimate)" in texts and "broken (broken) val (estimate)" in texts
    assert "beta val (estimate)" not in texts and "broken val (estimate)" not in texts


def test_compare_says_a_run_on_another_text_of_the_same_name_does_not_compare(tiny_models_dir, tmp_path):
    """A book edited and trained on again keeps its name: its sha256 tells it apart, and the line said
    "trained on fixture, not fixture"."""
    d = tmp_path / "m"
    shutil.copytree(tiny_models_dir, d)
    shutil.copytree(d / "alpha", d / "gamma")
    doc = json.loads((d / "beta" / "config.json").read_text())
    doc["corpus"] = {"name": "fixture", "sha256": "1" * 64}
    (d / "beta" / "config.json").write_text(json.dumps(doc))
    r = tinygpt_inproc("compare", "alpha", "beta", "gamma", "--models-dir", d)
    assert r.returncode == 0, r.stderr
    assert "beta: trained on another text named fixture (its sha256 differs), not fixture" in r.stdout
    assert "alpha: trained" not in r.stdout and "gamma: trained" not in r.stdout


def test_compare_takes_the_same_text_under_another_name_for_the_same_corpus(tiny_models_dir, tmp_path):
    """The same file trained on by its catalog name and as a copy of its own: the sha256 is the same, the
    validation text too, and the losses compare (as compare said before it went by name)."""
    d = tmp_path / "m"
    shutil.copytree(tiny_models_dir, d)
    shutil.copytree(d / "alpha", d / "gamma")
    doc = json.loads((d / "gamma" / "config.json").read_text())
    doc["corpus"]["name"] = "my-copy"  # (alpha's text, alpha's sha256)
    (d / "gamma" / "config.json").write_text(json.dumps(doc))
    r = tinygpt_inproc("compare", "alpha", "gamma", "--models-dir", d)
    assert r.returncode == 0, r.stderr
    assert "trained on" not in r.stdout and "other corpus" not in r.stdout, r.stdout


def test_compare_of_runs_on_different_tokens_draws_bits_per_character(tiny_models_dir, small_corpus, tmp_path):
    """A BPE token is several characters: its loss per token is higher where its bits per character are
    lower. Charting the losses side by side said the opposite of the table's bits/char."""
    from tests.conftest import make_tiny_model
    from tinygpt_tui.tokenizer import BpeTokenizer

    d = tmp_path / "m"
    shutil.copytree(tiny_models_dir, d)
    text = small_corpus.read_text(encoding="utf-8")
    make_tiny_model(d / "bee", text, tokenizer=BpeTokenizer.train(text, 280))
    for name, val, bpc in (("alpha", lambda s: 3.0, 4.3), ("bee", lambda s: 5.0, 2.1)):
        recs = fake_run(steps=200, val=val)
        for r in recs:
            if r["event"] == "eval":
                r["bpc"] = bpc
        write_log(d / name, recs)
    out = tmp_path / "chart.svg"
    r = tinygpt_inproc("compare", "alpha", "bee", "--out", out, "--models-dir", d)
    assert r.returncode == 0, r.stderr
    assert "tokens differ (bpe 280, char)" in r.stdout and "don't compare" in r.stdout
    root = ET.parse(out).getroot()
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 2  # validation bits per character of each
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any("bits per character" in t for t in texts if t) and "alpha train" not in texts
    shown = tinygpt_inproc("compare", "alpha", "bee", "--models-dir", d, env={"COLUMNS": "100"}).stdout
    ticks = [float(ln.split("┤")[0]) for ln in shown.splitlines() if "┤" in ln[:8] and ln.split("┤")[0].strip()]
    assert ticks and min(ticks) >= 2.0 and max(ticks) <= 4.4, shown  # bits per character: 2.1 and 4.3, not the losses


@pytest.mark.parametrize("args,needle", [
    (["nope"], "model not found: nope"),
    (["alpha", "--x", "hours"], "--x must be one of steps, tokens, minutes"),
    (["alpha", "--out", "chart.txt"], ".svg or .png"),
    (["alpha", "--curves", "all"], "--curves must be"),
    (["alpha", "--out", "/no/such/dir/c.svg"], "does not exist"),
])
def test_compare_bad_input_is_one_line(tiny_models_dir, args, needle):
    r = tinygpt_inproc("compare", *args, "--models-dir", tiny_models_dir)
    assert_one_line_error(r, needle)
    assert "alpha" not in r.stdout  # refused before anything is printed


def test_a_png_without_matplotlib_is_one_line(tiny_models_dir, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    r = tinygpt_inproc("compare", "alpha", "--out", tmp_path / "c.png", "--models-dir", tiny_models_dir)
    assert_one_line_error(r, "needs matplotlib", "[plot]")


def test_compare_writes_a_png(tiny_models_dir, tmp_path):
    d = logged_copy(tiny_models_dir, tmp_path)
    r = tinygpt_inproc("compare", "alpha", "--out", tmp_path / "c.png", "--models-dir", d)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_compare_out_replaces_its_own_chart_and_keeps_any_other_file(tiny_models_dir, tmp_path, suffix):
    """Drawing the chart again replaces the chart; a file of yours by that name is left whole and refused."""
    d = logged_copy(tiny_models_dir, tmp_path)
    out = tmp_path / f"chart{suffix}"
    assert tinygpt_inproc("compare", "alpha", "--out", out, "--models-dir", d).returncode == 0
    write_log(d / "beta", fake_run(steps=300))
    first = out.read_bytes()
    r = tinygpt_inproc("compare", "alpha", "beta", "--out", out, "--models-dir", d)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() != first  # drawn again, with beta
    mine = tmp_path / f"mine{suffix}"
    for content in (b"precious", first.replace(b"tinygpt", b"TINYGPT")):  # any file, or another tool's chart
        mine.write_bytes(content)
        r = tinygpt_inproc("compare", "alpha", "--out", mine, "--models-dir", d)
        assert_one_line_error(r, f"{mine} exists and is not a chart tinygpt wrote")
        assert mine.read_bytes() == content
    mine.unlink()
    mine.symlink_to(out)
    assert_one_line_error(tinygpt_inproc("compare", "alpha", "--out", mine, "--models-dir", d), "is not a chart tinygpt wrote")
    assert mine.is_symlink()


def test_a_long_log_keeps_every_evaluation_and_an_even_spread_of_steps(tmp_path):
    folder = tmp_path / "long"
    write_log(folder, fake_run(steps=60_000, every=5, eval_every=1000))
    c = Curves(folder)
    assert len(c.evals) == 60 and runs.MAX_KEPT // 2 <= len(c.steps) <= runs.MAX_KEPT + 1
    assert c.steps[0] == 1 and c.steps[-1] == 60_000 and c.steps == sorted(c.steps)
    gaps = {b - a for a, b in zip(c.steps[1:-2], c.steps[2:-1])}
    assert len(gaps) == 1  # evenly spread (but for the first and the latest)
    write_log(folder, fake_run(steps=60_003, start=60_000, every=1, finish=False)[1:], mode="a")
    assert c.update() and c.steps[-1] == 60_003 and len(c.steps) <= runs.MAX_KEPT + 2
    few = Curves(folder, max_kept=100)  # (the runs screen reads fewer: about its chart's width)
    assert 50 <= len(few.steps) <= 101 and few.steps[-1] == 60_003 and len(few.evals) == 60
    assert set(few.steps) <= set(c.steps) | {60_003}  # the same spread, thinner


def test_train_says_when_validation_rises_while_training_falls(tmp_path):
    """4 kB of text, a model that memorises it in a hundred steps: the progress line says so."""
    from tests.conftest import shakespeare_path

    corpus = tmp_path / "tiny.txt"
    corpus.write_bytes(shakespeare_path().read_bytes()[:4000])
    r = tinygpt_inproc("train", corpus, "--name", "memo", "--models-dir", tmp_path, "--preset", "tiny", "--n-embd", "64",
                       "--n-layer", "2", "--n-head", "2", "--block-size", "32", "--batch-size", "16", "--lr", "1e-2",
                       "--max-steps", "110", "--eval-interval", "10", "--eval-iters", "4", "--sample-chars", "0", "--threads", "1")
    assert r.returncode == 0, r.stderr
    notes = [ln for ln in r.stdout.splitlines() if ln.startswith("overfitting: validation loss rose")]
    assert len(notes) == 1, r.stdout  # said once, when it starts
    evals = [ln for ln in r.stdout.splitlines() if ln.startswith("step ")]
    assert r.stdout.index(notes[0]) > r.stdout.index(evals[3])  # not before a few evaluations


def test_an_experiments_members_are_models_by_name_not_one_broken_folder(tmp_path):
    """The sidebar and `tinygpt models` list an experiment's members ("exp/member"), each loadable by that
    name; the experiment's own folder is not shown as a broken model."""
    from tests.conftest import make_tiny_model
    from tinygpt_tui.engine.folder import list_models, load_model, resolve_model

    models = tmp_path / "models"
    make_tiny_model(models / "solo", "hello world " * 20)
    for member in ("n_layer=1", "n_layer=2"):
        make_tiny_model(models / "grid" / member, "hello world " * 20)
    (models / "grid" / runs.MANIFEST).write_text("{}", encoding="utf-8")
    infos = {i.name: i for i in list_models(models)}
    assert sorted(infos) == ["grid/n_layer=1", "grid/n_layer=2", "solo"]
    assert all(i.ok and i.status == "ready" for i in infos.values()), infos
    assert load_model(resolve_model("grid/n_layer=2", models)).path == models / "grid" / "n_layer=2"
    out = tinygpt_inproc("models", "--models-dir", str(models))
    assert "grid/n_layer=1" in out.stdout and "broken" not in out.stdout


def test_only_the_shipped_models_stand_for_what_good_looks_like(tmp_path):
    """In a checkout, models/ also holds the runs trained there: a 10-step lesson member sorted before
    `shakespeare` was drawn as the training screen's "(shipped, val)" reference."""
    from tests.conftest import make_model
    from tinygpt_tui.engine.runs import shipped_models

    for name in ("lesson-positions-10steps", "mine", "shakespeare", "zeta"):
        make_model(tmp_path, name, corpus="tinyshakespeare")
    assert shipped_models(tmp_path) == [tmp_path / "shakespeare"]
    assert [p.name for p in shipped_models()] == ["hongloumeng", "shakespeare"]


def test_the_svg_legend_tells_a_lessons_members_apart_and_fits_every_line(tiny_models_dir, tmp_path):
    """The legend cut each entry to 28 characters: every member of `lesson-positions-20steps` read
    'lesson-positions-20steps/pos', and 20 runs' 40 entries ran off the bottom of the picture."""
    from tinygpt_tui.cli.chart import Line, svg

    members = [f"lesson-positions-20steps/pos_encoding={p}" for p in ("learned", "sinusoidal", "rope", "alibi", "none")]
    members += [f"run-{i}" for i in range(15)]
    lines = [Line(name, kind, [0, 10], [4.0, 3.0 - i / 100], i % 10) for i, name in enumerate(members) for kind in ("val", "train")]
    root = ET.fromstring(svg(lines, "steps"))
    ns = "{http://www.w3.org/2000/svg}"
    legend = [t for t in root.iter(f"{ns}text") if t.text and t.text.endswith((" val (estimate)", " train"))]
    assert [t.text for t in legend] == [f"{ln.label} {'val (estimate)' if ln.kind == 'val' else ln.kind}" for ln in lines]
    width, height = float(root.get("width")), float(root.get("height"))
    assert all(float(t.get("y")) <= height for t in legend), height
    assert all(float(t.get("x")) + 8 * len(t.text) <= width for t in legend), width


def test_compare_says_which_loss_its_stage_of_learning_is_read_from(tmp_path):
    """"shakespeare: at 1.44 per character, a model on this book shows style": 1.44 of what, a newcomer asked."""
    from tests.test_cli import ROOT, tinygpt_inproc

    r = tinygpt_inproc("compare", "shakespeare", "--models-dir", ROOT / "models")
    assert r.returncode == 0, r.stderr
    assert "shakespeare: at a validation loss of 1.44 per character, a model on this book shows" in r.stdout, r.stdout
