"""Experiments (engine/experiment.py, `tinygpt experiment`, `tinygpt lesson`): every member checked before
anything runs, the queue, the manifest, the lock, resuming, the same numbers on a re-run."""

import json
import re
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.test_cli import ROOT, assert_one_line_error, tinygpt_inproc
from tests.conftest import probe_doc
from tinygpt_tui.engine import experiment as E
from tinygpt_tui.engine import folder as ckpt
from tinygpt_tui.engine.lessons import as_run, find_lesson, list_lessons, read_spec_file
from tinygpt_tui.errors import SettingsError, TinyGPTError

TINY = dict(n_layer=1, n_head=2, n_embd=32, block_size=32, batch_size=8, eval_interval=6, eval_iters=2, sample_chars=10,
            warmup_steps=2)


def spec(corpus_file, name="e", **kw):
    base = dict(name=name, corpus=str(corpus_file), max_steps=12, settings=dict(TINY), vary={"pos_encoding": ["learned", "rope"]}, threads=1)
    base.update(kw)
    if "settings" not in kw:  # what is varied is not also fixed
        base["settings"] = {k: v for k, v in TINY.items() if k not in base["vary"]}
    return E.Spec(**base)


def events(plan, stop=None, resume=False):
    return list(E.run(plan, stop, resume))


# ----------------------------------------------------------------- checked before anything runs
def test_an_impossible_member_is_refused_by_name_before_anything_runs(small_corpus, tmp_path):
    no_heads = {k: v for k, v in TINY.items() if k != "n_head"}
    with pytest.raises(SettingsError, match=r"member n_head=3: .*divisible"):
        E.make_plan(spec(small_corpus, vary={"n_head": [2, 3]}, settings=no_heads), tmp_path)
    with pytest.raises(SettingsError, match=r"member block_size=9000: context length 9000 needs a corpus of"):
        E.make_plan(spec(small_corpus, vary={"block_size": [32, 9000]}, settings={k: v for k, v in TINY.items() if k != "block_size"}),
                    tmp_path)
    assert not (tmp_path / "e").exists()


def test_a_grid_of_a_setting_its_members_ignore_is_refused(small_corpus, tmp_path):
    """--vary cooldown=0.2,0.4 under the cosine schedule made two identical runs; a setting fixed for
    every member and used by none is refused too, one used by some members is not."""
    with pytest.raises(SettingsError, match=r"member cooldown=0.2: cooldown is for the wsd schedule"):
        E.make_plan(spec(small_corpus, vary={"cooldown": [0.2, 0.4]}), tmp_path)
    with pytest.raises(SettingsError, match=r"member optimizer=adamw,muon_lr=0.01: muon_lr is for the muon optimizer"):
        E.make_plan(spec(small_corpus, vary={"optimizer": ["adamw", "muon"], "muon_lr": [0.01, 0.02]}), tmp_path)
    with pytest.raises(SettingsError, match=r"^cooldown is for the wsd schedule"):
        E.make_plan(spec(small_corpus, settings={**TINY, "cooldown": 0.2}), tmp_path)
    plan = E.make_plan(spec(small_corpus, settings={**TINY, "muon_lr": 0.03}, vary={"optimizer": ["adamw", "muon"]}), tmp_path)
    assert [m.config.resolved().muon_lr for m in plan.members] == [0.03, 0.03]
    assert not (tmp_path / "e").exists()


def test_an_unknown_setting_lists_the_valid_ones():
    with pytest.raises(SettingsError, match=r"unknown setting 'layerz'.*n_layer.*pos_encoding"):
        E.parse_pairs(["layerz=1,2"], "vary")


def test_values_take_their_settings_types():
    assert E.parse_pairs(["dropout=0,0.2", "pos=rope,alibi"], "vary") == {"dropout": [0.0, 0.2], "pos_encoding": ["rope", "alibi"]}
    assert E.parse_pairs(["n-layer=2", "bias=true"], "set") == {"n_layer": 2, "bias": True}
    for bad, needle in (("n_layer=two", "n_layer takes int"), ("bias=maybe", "bias takes bool"), ("n_layer", "KEY=VALUE"),
                        ("n_layer=1,2", "n_layer takes int")):
        with pytest.raises(SettingsError, match=needle):
            E.parse_pairs([bad], "set")



def test_the_optimizer_and_schedule_settings_can_be_varied(small_corpus, tmp_path):
    grid = E.parse_pairs(["muon_ns_steps=3,5", "schedule=cosine,wsd"], "vary")
    assert grid == {"muon_ns_steps": [3, 5], "schedule": ["cosine", "wsd"]}
    assert E.parse_pairs(["muon_weight_decay=0,0.05"], "vary") == {"muon_weight_decay": [0.0, 0.05]}
    plan = E.make_plan(spec(small_corpus, vary=grid), tmp_path)
    made = sorted((m.config.muon_ns_steps, m.config.schedule) for m in plan.members)
    assert made == [(3, "cosine"), (3, "wsd"), (5, "cosine"), (5, "wsd")]


@pytest.mark.parametrize("kw,needle", [
    (dict(vary={"n_layer": [1], "n_embd": [32], "dropout": [0.0]}), "one or two settings"),
    (dict(max_steps=None), "--minutes or --max-steps"),
    (dict(minutes=1.0), "--minutes or --max-steps"),
    (dict(vary={}), "nothing to compare"),
    (dict(vary={"n_layer": [1, 1]}), "repeats a value"),
    (dict(seeds=0), "--seeds"),
    (dict(vary={"n_layer": [1, 2]}, settings={**TINY, "n_layer": 1}), "both varied and set"),
    (dict(name="a/b"), "can't be a folder name"),
    (dict(vary={"n_head": [3, 4], "n_embd": [64, 96]}), r"n_embd \(64\) must be divisible by n_head \(3\)"),  # (as typed)
    (dict(vary={"grad_accum": [1, 2]}, settings={**TINY, "min_lr_ratio": 2.0}), "min_lr_ratio must be at least 0"),
    (dict(corpus="/no/such/corpus.txt"), "corpus not found"),
])
def test_bad_grids_are_refused(small_corpus, tmp_path, kw, needle):
    with pytest.raises(TinyGPTError, match=needle):
        E.make_plan(spec(small_corpus, **kw), tmp_path)


def test_seeds_make_members_that_differ_only_in_seed(small_corpus, tmp_path):
    plan = E.make_plan(spec(small_corpus, seeds=2, vary={"n_layer": [1, 2]}), tmp_path)
    assert [m.name for m in plan.members] == ["n_layer=1,seed=1337", "n_layer=1,seed=1338", "n_layer=2,seed=1337", "n_layer=2,seed=1338"]
    assert {m.group for m in plan.members} == {"n_layer=1", "n_layer=2"}
    assert all(m.config.models_dir == str(tmp_path / "e") and m.config.max_steps == 12 for m in plan.members)


# ----------------------------------------------------------------- running
def test_an_experiment_trains_each_member_ranks_them_and_repeats_its_numbers(small_corpus, tmp_path):
    plan = E.make_plan(spec(small_corpus, seeds=2, vary={"pos_encoding": ["learned", "none"]}), tmp_path / "a")
    evs = events(plan)
    kinds = [type(e).__name__ for e in evs]
    assert kinds[0] == "MemberStarted" and kinds[-1] == "Ended" and kinds.count("MemberEnded") == 4
    assert evs[-1].state == "finished" and not evs[-1].failed
    doc = json.loads((plan.folder / "experiment.json").read_text())
    assert [m["state"] for m in doc["members"]] == ["finished"] * 4
    for m in plan.members:  # each a normal model folder
        ckpt.check_folder(plan.folder / m.name)
    rows = E.results(plan)
    assert len(rows) == 2 and rows[0].val_loss <= rows[1].val_loss and all(r.spread is not None for r in rows)
    assert all(len(r.runs) == 2 and r.status == "finished" for r in rows)
    texts = E.samples(plan, "ROMEO:", chars=30)
    assert [g for g, _ in texts] == ["pos_encoding=learned", "pos_encoding=none"] and all(len(t) == 30 for _, t in texts)
    # the same seed, grid and thread count: the same numbers
    again = E.make_plan(spec(small_corpus, seeds=2, vary={"pos_encoding": ["learned", "none"]}), tmp_path / "b")
    events(again)
    assert [(r.group, r.val_loss, r.spread) for r in E.results(again)] == [(r.group, r.val_loss, r.spread) for r in rows]
    assert E.samples(again, "ROMEO:", chars=30) == texts


def test_a_second_experiment_on_the_same_folder_is_refused(small_corpus, tmp_path):
    plan = E.make_plan(spec(small_corpus), tmp_path)
    first = E.run(plan)
    assert isinstance(next(first), E.MemberStarted)  # holds models/e's lock now
    with pytest.raises(SettingsError, match="being run by another process"):
        events(E.make_plan(spec(small_corpus), tmp_path), resume=True)
    with pytest.raises(SettingsError, match="being run by another process"):
        events(E.make_plan(spec(small_corpus), tmp_path))
    first.close()  # releases it
    with pytest.raises(SettingsError, match="already exists; --resume continues it"):
        events(E.make_plan(spec(small_corpus), tmp_path))


def test_a_stopped_experiment_resumes_keeping_finished_members(small_corpus, tmp_path):
    plan = E.make_plan(spec(small_corpus, vary={"n_layer": [1, 2, 3]}), tmp_path)
    stop = threading.Event()
    seen = []
    for ev in E.run(plan, stop):
        seen.append(ev)
        if isinstance(ev, E.MemberEvent) and ev.index == 1 and ev.event.kind == "eval":
            stop.set()  # mid-member: it saves at the step under way
    assert seen[-1].state == "stopped"
    ended = {e.name: e.state for e in seen if isinstance(e, E.MemberEnded)}
    assert ended == {"n_layer=1": "finished", "n_layer=2": "stopped"}
    states = E.member_states(plan)
    assert states["n_layer=1"]["state"] == "finished" and states["n_layer=2"]["state"] == "stopped"
    assert "n_layer=3" not in states or states["n_layer=3"]["state"] == "queued"
    kept = (plan.folder / "n_layer=1" / "model.safetensors").stat().st_mtime_ns
    # refused with another grid; resumed as it was
    with pytest.raises(SettingsError, match="not experiment e's"):
        events(E.make_plan(spec(small_corpus, vary={"n_layer": [1, 2]}), tmp_path), resume=True)
    more = events(E.load_plan("e", tmp_path), resume=True)
    starts = {e.name: e.how for e in more if isinstance(e, E.MemberStarted)}
    assert starts == {"n_layer=2": "resumed from step 6", "n_layer=3": "new"}
    assert [e.state for e in more if isinstance(e, E.MemberEnded)] == ["kept", "finished", "finished"]
    assert (plan.folder / "n_layer=1" / "model.safetensors").stat().st_mtime_ns == kept
    assert all(r.status == "finished" for r in E.results(plan))


def test_a_member_preparing_its_corpus_says_how_far_and_a_stop_there_saves_nothing(small_corpus, tmp_path):
    """run() never asked train() for the corpus's preparation: the experiment screen, `tinygpt experiment` and `tinygpt
    lesson` showed nothing while a member prepared it (minutes for a big corpus, or a BPE member learning its tokens).
    Its Progress comes as the member's events now, before it starts; a stop there ends the member "stopped" with
    nothing saved, and resuming trains it anew."""
    from tinygpt_tui.engine.sources import Progress

    corpus = tmp_path / "own.txt"  # (its own text: prepared here, not found prepared by another test)
    corpus.write_text(f"{tmp_path}\n" + small_corpus.read_text(encoding="utf-8"), encoding="utf-8")
    plan = E.make_plan(spec(corpus, vary={"tokenizer": ["char", "bpe"]}), tmp_path / "models")
    stop, seen = threading.Event(), []
    for ev in E.run(plan, stop):
        seen.append(ev)
        if isinstance(ev, E.MemberEvent) and ev.index == 1 and isinstance(ev.event, Progress) and ev.event.stage == "merging":
            stop.set()  # while the BPE member works out its merges
    kinds = [[e.event.record()["event"] for e in seen if isinstance(e, E.MemberEvent) and e.index == i] for i in (0, 1)]
    assert kinds[0][0] == "prepare" and kinds[0][kinds[0].index("start") - 1] == "prepare" and "prepare" not in kinds[0][kinds[0].index("start"):]
    assert {e.event.stage for e in seen if isinstance(e, E.MemberEvent) and e.index == 1} >= {"learning", "merging"} and "start" not in kinds[1]
    assert [(e.name, e.state) for e in seen if isinstance(e, E.MemberEnded)] == [("tokenizer=char", "finished"), ("tokenizer=bpe", "stopped")]
    assert seen[-1].state == "stopped" and E.member_states(plan)["tokenizer=bpe"]["state"] == "stopped"
    assert not (plan.folder / "tokenizer=bpe").exists()  # nothing saved, no step 0
    more = events(E.load_plan("e", tmp_path / "models"), resume=True)
    assert [(e.name, e.how) for e in more if isinstance(e, E.MemberStarted)] == [("tokenizer=bpe", "new")]
    assert [e.state for e in more if isinstance(e, E.MemberEnded)] == ["kept", "finished"]


def test_a_stop_as_a_member_starts_saves_nothing_though_its_corpus_was_prepared(small_corpus, tmp_path):
    """A stop set as the second member started, its corpus prepared for the first one (no work, so no event to see
    the stop at), trained it 0 steps and saved that as a model at step 0."""
    plan = E.make_plan(spec(small_corpus), tmp_path)
    stop, seen = threading.Event(), []
    for ev in E.run(plan, stop):
        seen.append(ev)
        if isinstance(ev, E.MemberStarted) and ev.index == 1:
            stop.set()
    assert [(e.name, e.state) for e in seen if isinstance(e, E.MemberEnded)] == [("pos_encoding=learned", "finished"),
                                                                                  ("pos_encoding=rope", "stopped")]
    assert not any(isinstance(e, E.MemberEvent) and e.index == 1 for e in seen) and not (plan.folder / "pos_encoding=rope").exists()


def test_the_progress_line_of_a_member_preparing_its_corpus_says_its_stage_and_time_left():
    """`tinygpt experiment`'s line for a member preparing its corpus: the stage, its share done and the time left at
    its pace (from the stage before it's end); the BPE's merges, which nothing measures: the time they have taken."""
    from tinygpt_tui.cli.runs import preparation_line

    pace, rec = {}, lambda stage, done, total: {"event": "prepare", "stage": stage, "done": done, "total": total, "file": "b.txt"}  # noqa: E731
    assert preparation_line(rec("scanning", 50, 100), pace, now=10.0) == (0.5, "scanning the corpus 50%  ETA --:--")
    assert preparation_line(rec("scanning", 100, 100), pace, now=20.0) == (1.0, "scanning the corpus 100%  ETA 00:00")
    assert preparation_line(rec("learning", 30, 90), pace, now=50.0) == (30 / 90, "reading it for the BPE 33%  ETA 01:00")
    assert preparation_line(rec("merging", 0, 0), pace, now=60.0) == (None, "working out the BPE's merges  00:10, time left unknown")
    assert preparation_line(rec("merging", 0, 0), pace, now=133.0) == (None, "working out the BPE's merges  01:23, time left unknown")
    assert preparation_line(rec("encoding", 10, 100), pace, now=143.0) == (0.1, "encoding it to tokens 10%  ETA 01:30")


def test_a_member_that_died_before_its_first_checkpoint_restarts(small_corpus, tmp_path):
    plan = E.make_plan(spec(small_corpus), tmp_path)
    plan.folder.mkdir()
    E.write_manifest(plan, {"pos_encoding=learned": {"state": "running"}})  # what a kill in its first steps leaves
    dead = plan.folder / "pos_encoding=learned"
    dead.mkdir()
    (dead / "metrics.jsonl").write_text('{"event": "start", "step": 0}\n')
    (dead / ".lock").write_text("123")
    starts = [e.how for e in events(plan, resume=True) if isinstance(e, E.MemberStarted)]
    assert starts == ["restarted (it stopped before its first checkpoint)", "new"]


def test_a_failing_member_is_reported_and_the_rest_run(small_corpus, tmp_path):
    plan = E.make_plan(spec(small_corpus), tmp_path)
    plan.folder.mkdir()
    E.write_manifest(plan, {})
    odd = plan.folder / "pos_encoding=learned"
    odd.mkdir()
    (odd / "notes.txt").write_text("mine")  # not a run's files: never deleted, never trained over
    evs = events(plan, resume=True)
    ended = {e.name: e for e in evs if isinstance(e, E.MemberEnded)}
    assert ended["pos_encoding=learned"].state == "failed" and "delete it to run member" in ended["pos_encoding=learned"].error
    assert ended["pos_encoding=rope"].state == "finished"
    assert evs[-1].state == "failed" and evs[-1].failed == ["pos_encoding=learned"] and (odd / "notes.txt").exists()
    assert E.member_states(plan)["pos_encoding=learned"]["state"] == "failed"


def test_a_slice_of_the_corpus_is_written_once_and_trained_on(small_corpus, tmp_path):
    plan = E.make_plan(spec(small_corpus, corpus_chars=20_000, vary={"dropout": [0.0, 0.2]}), tmp_path)
    assert plan.corpus.endswith("small-first20000.txt") and plan.source == str(small_corpus)
    events(plan)
    text = Path(plan.corpus).read_text(encoding="utf-8")
    assert len(text) == 20_000 and small_corpus.read_text(encoding="utf-8").startswith(text)
    assert E.results(plan)[0].runs[0].corpus == "small-first20000"


def test_the_estimate_measures_steps_and_adds_the_budget(small_corpus, tmp_path):
    est = E.estimate(E.make_plan(spec(small_corpus, max_steps=200), tmp_path))
    assert len(est.member_s) == 2 and all(s > 0 for s in est.step_s)
    assert est.member_s[0] > 200 * est.step_s[0] and est.total_s == pytest.approx(sum(est.member_s))
    timed = E.estimate(E.make_plan(spec(small_corpus, max_steps=None, minutes=2.0), tmp_path))
    assert all(120 < s < 200 for s in timed.member_s)


def test_the_estimate_counts_the_start_once_and_each_sample_at_the_decoders_rate(small_corpus, tmp_path):
    """Members alike but for their seed cost the same, but the first also reads the corpus (and, where the
    steps were timed in a child, imports the trainer); a sample costs what the decoder was measured to take,
    at each evaluation. The estimate had charged 3 s a member and 2 ms a sampled character: 4-6x too long
    for a toy grid."""
    BASE = {k: v for k, v in TINY.items() if k not in ("n_layer", "sample_chars")}
    est = E.estimate(E.make_plan(spec(small_corpus, seeds=2, vary={"sample_chars": [0, 2000]}, settings=BASE), tmp_path))
    quiet, quiet_again, chatty, chatty_again = est.member_s  # (the seeds of 0, then those of 2,000 characters)
    assert quiet > quiet_again and chatty == pytest.approx(chatty_again) and len(set(est.step_s)) == 1
    assert est.sample_s[:2] == [0.0, 0.0] and est.sample_s[2] > 0
    evals = 12 // TINY["eval_interval"]
    assert chatty_again - quiet_again == pytest.approx(evals * est.sample_s[2])


@pytest.mark.parametrize("budget", [{"max_steps": 20}, {"max_steps": None, "minutes": 1.0}])
def test_the_estimate_counts_the_evaluation_at_a_run_s_end(small_corpus, tmp_path, budget):
    """train.py evaluates a run's last step (its losses on a few batches, and a sample) whether or not it is a multiple of
    eval_interval, and after a time budget runs out: the estimate left it out, so 3 members of 20 steps at the default
    eval_interval of 200 took 01:27 where it said 00:45 (AMD EPYC, 2 cores). Now each member is charged that one."""
    BASE = {**{k: v for k, v in TINY.items() if k not in ("n_layer", "sample_chars")}, "eval_interval": 200}
    plan = E.make_plan(spec(small_corpus, seeds=2, vary={"sample_chars": [0, 2000]}, settings=BASE, **budget), tmp_path)
    est = E.estimate(plan)
    quiet, chatty = est.member_s[1], est.member_s[3]  # (the second seed of each: the first also reads the corpus)
    assert est.sample_s[3] > 0 and chatty - quiet == pytest.approx(est.sample_s[3])


def test_the_estimate_times_a_bpe_member_on_a_text_of_more_characters_than_its_vocabulary(tmp_path):
    """The tokens lesson on Dream of the Red Chamber (4,436 characters, a BPE of 512) said "could not time the
    members' steps: index out of range in self": the timing fed character ids past the BPE's vocabulary."""
    import random

    rng = random.Random(0)
    chars = [chr(0x4E00 + i) for i in range(600)] + list("，。\n")  # 603 distinct characters
    corpus = tmp_path / "hanzi.txt"
    corpus.write_text("".join(rng.choice(chars) for _ in range(40_000)), encoding="utf-8")
    members = [{"name": "characters", "tokenizer": "char"}, {"name": "BPE 300", "tokenizer": "bpe", "vocab_size": 300}]
    plan = E.make_plan(spec(corpus, vary={}, members=members, settings=dict(TINY)), tmp_path)
    est = E.estimate(plan)
    assert len(est.step_s) == 2 and all(s > 0 for s in est.step_s)


def test_the_estimate_charges_a_bpe_member_its_corpus_preparation_until_it_is_prepared(small_corpus, tmp_path):
    """Two BPE members on a 30 MB corpus were estimated at 00:38 and took 01:15: learning each BPE and encoding the
    corpus with it were left out. The first member of each BPE size is charged its preparation, timed on a slice and
    scaled by the corpus's size, and the command's estimate says it includes it; once prepared, nothing is charged."""
    from tinygpt_tui.engine.lineage import learning_bpe
    from tinygpt_tui.engine.prepare import prepare, run_to_end

    corpus = tmp_path / "own.txt"  # (its own text: not found prepared by another test)
    corpus.write_text(f"{tmp_path}\n" + small_corpus.read_text(encoding="utf-8"), encoding="utf-8")
    members = [{"name": "chars", "tokenizer": "char"}, {"name": "bpe", "tokenizer": "bpe", "vocab_size": 300},
               {"name": "bpe again", "tokenizer": "bpe", "vocab_size": 300, "n_layer": 2}]
    plan = E.make_plan(spec(corpus, vary={}, members=members, settings=dict(TINY)), tmp_path / "models")
    est = E.estimate(plan)
    assert est.prepare_s[0] == 0 and est.prepare_s[1] > 0 and est.prepare_s[2] == 0  # (the second finds it prepared)
    assert est.total_s == pytest.approx(sum(est.member_s)) and est.member_s[1] > est.prepare_s[1]
    r = tinygpt_inproc("experiment", "e", "--corpus", corpus, "--max-steps", "4", "--vary", "vocab_size=300,310", "--set", "tokenizer=bpe",
                       "--set", "n_layer=1", "--set", "n_embd=32", "--set", "n_head=2", "--threads", "1", "--plan", "--models-dir", tmp_path / "cli")
    assert r.returncode == 0 and "plus preparing the corpus for the BPE" in r.stdout, (r.stdout, r.stderr)
    run_to_end(prepare(str(corpus), lambda source: learning_bpe(source, 300)))
    assert E.estimate(plan).prepare_s == [0, 0, 0]


def test_the_estimate_leaves_torchs_thread_count_alone(small_corpus, tmp_path):
    """The app estimates while it may be training: the members' thread count is timed without setting the process's."""
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # not the members' 1: timed in a child process running one thread
        est = E.estimate(E.make_plan(spec(small_corpus, max_steps=50), tmp_path))
        assert torch.get_num_threads() == 3 and len(est.step_s) == 2 and all(s > 0 for s in est.step_s)
        torch.set_num_threads(1)  # the members' own: timed here
        assert E.estimate(E.make_plan(spec(small_corpus, max_steps=50), tmp_path)).total_s > 0 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_command_line_times_its_members_in_its_own_process(small_corpus, tmp_path, monkeypatch):
    """`tinygpt experiment` trains in its own process on the members' threads next: it sets them and times the steps
    there, not in a child that pays a second start (torch, the trainer, the decoder: 8 s of CPU on a Zen 3)."""
    import torch

    children = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda args, *a, **kw: children.append(args) or real_run(args, *a, **kw))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        r = tinygpt_inproc("experiment", "x", "--corpus", small_corpus, "--max-steps", "5", "--vary", "n_layer=1,2",
                           "--threads", "1", "--plan", "--models-dir", tmp_path)
        assert r.returncode == 0 and "estimated time:" in r.stdout, r.stdout + r.stderr
        assert torch.get_num_threads() == 1
        assert not [c for c in children if "_measure_all" in " ".join(map(str, c))], children
    finally:
        torch.set_num_threads(before)


def test_members_get_the_probes_threads_and_precision_alike(small_corpus, tmp_path, cache, measured, monkeypatch):
    """As `tinygpt train` does (engine/probe.settle), once for the whole grid: every member the same choices."""
    import torch

    from tinygpt_tui.engine import probe

    probe.save(probe_doc(measured, 150, 50, 50, 60))  # bf16 measured faster; one thread faster than two (at rest)
    monkeypatch.setattr(probe, "free_cores", lambda: 2)
    plan = E.make_plan(spec(small_corpus, threads=None, vary={"n_embd": [32, 64]}), tmp_path)
    assert all((m.config.threads, m.config.dtype) == (None, "auto") for m in plan.members)  # (make_plan measures nothing)
    settled = E.settle(plan)
    assert [(m.config.threads, m.config.dtype) for m in settled.members] == [(1, "bf16")] * 2
    fixed = {**{k: v for k, v in TINY.items() if k != "n_embd"}, "dtype": "fp32"}
    given = E.settle(E.make_plan(spec(small_corpus, threads=None, vary={"n_embd": [32, 64]}, settings=fixed), tmp_path))
    assert [m.config.dtype for m in given.members] == ["fp32", "fp32"]  # what the experiment sets stands
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        starts = [ev.event.record() for ev in events(plan) if isinstance(ev, E.MemberEvent) and ev.event.record()["event"] == "start"]
        assert torch.get_num_threads() == 1  # run() settled: the members trained on the probe's one thread ...
    finally:
        torch.set_num_threads(before)
    assert [r["dtype"] for r in starts] == ["bf16", "bf16"]  # ... in its precision


# ----------------------------------------------------------------- files and lessons
def test_a_toml_file_holds_a_grid_or_named_members(small_corpus, tmp_path):
    f = tmp_path / "grid.toml"
    f.write_text(f'title = "t"\ncorpus = "{small_corpus}"\nmax_steps = 8\n[settings]\nn_layer = 1\nn_embd = 32\nn_head = 2\n'
                 '[[members]]\nname = "bigram"\nblock_size = 1\n[[members]]\nname = "ctx 32"\nblock_size = 32\n')
    s = read_spec_file(f, "mine")
    assert s.name == "mine" and s.members[0] == {"name": "bigram", "block_size": 1} and s.settings["n_embd"] == 32
    assert [m.name for m in E.make_plan(s, tmp_path).members] == ["bigram", "ctx 32"]
    for text, needle in (("max_steps = 'x'", "must be a number"), ("[vary]\nwidthh = [1]", "unknown setting"),
                         ("colour = 1", "unknown entry 'colour'"), ("[[[", "not valid TOML"), ("[vary]\nn_layer = 1", "a list")):
        f.write_text(text)
        with pytest.raises(SettingsError, match=needle):
            read_spec_file(f)


@pytest.mark.parametrize("text,needle", [
    ('[[members]]\nname = ""\n[[members]]\nname = "b"', r"a \[\[members\]\] name is empty"),
    ('[[members]]\nname = 5\n[[members]]\nname = "b"', r"a \[\[members\]\] name is text in quotes .*got 5$"),
    ('[vary]\nn_layer = [1, "2"]', "n_layer takes int, got the text '2'; write it without quotes"),
    ('[settings]\nbias = "true"\n[vary]\nn_layer = [1, 2]', "bias takes bool, got the text 'true'"),
    ('[[members]]\nname = "a"\nn_layer = "1"\n[[members]]\nname = "b"', "n_layer takes int, got the text '1'"),
])
def test_a_toml_file_s_bad_member_name_or_quoted_number_is_said_as_written(small_corpus, tmp_path, text, needle):
    f = tmp_path / "grid.toml"
    f.write_text(f'corpus = "{small_corpus}"\nmax_steps = 8\n{text}\n')
    with pytest.raises(SettingsError, match=f"^grid.toml: {needle}"):
        read_spec_file(f)


def test_every_shipped_lesson_is_a_valid_plan_of_at_most_fifteen_minutes(small_corpus, tmp_path):
    lessons = list_lessons()
    assert len(lessons) >= 4
    for lesson in lessons:
        s = lesson.spec
        assert s.title and len(s.text) > 100 and s.minutes
        s.corpus = str(small_corpus) if not s.corpus_chars else s.corpus  # (the slice needs the real book)
        if s.corpus_chars:
            s.corpus = str(small_corpus)
            s.corpus_chars = 20_000
        plan = E.make_plan(s, tmp_path)
        assert 2 <= len(plan.members) <= 6
        # the budgets, plus about 20 s a member for start-up and the final evaluation (docs/experiments.md)
        assert len(plan.members) * (s.minutes * 60 + 20) <= 15 * 60, lesson.name


def test_the_tokens_lesson_compares_characters_with_bpe_in_bits_per_character(small_corpus, tmp_path):
    from tinygpt_tui.engine.lessons import find_lesson

    lesson = find_lesson("tokens")
    s = lesson.spec
    assert "bits/char" in s.text and s.minutes * 2 <= 12  # two members: room for BPE's preparation within 15 minutes
    s.corpus = str(small_corpus)
    plan = E.make_plan(s, tmp_path)
    cfgs = {m.name: m.config.resolved() for m in plan.members}
    assert {n: (c.tokenizer, c.vocab_size) for n, c in cfgs.items()} == {"characters": ("char", None), "BPE 512": ("bpe", 512)}
    same = lambda c: {k: v for k, v in vars(c).items() if k not in ("name", "tokenizer", "vocab_size")}  # noqa: E731
    assert same(cfgs["characters"]) == same(cfgs["BPE 512"])  # everything else equal
    # a grid can vary the tokens too, checked like any setting before anything runs
    grid = E.make_plan(spec(small_corpus, vary={"tokenizer": ["char", "bpe"]}), tmp_path)
    assert [m.config.resolved().vocab_size for m in grid.members] == [None, 512]
    sizes = E.make_plan(spec(small_corpus, vary={"vocab_size": [256, 1024]}, settings={**TINY, "tokenizer": "bpe"}), tmp_path)
    assert [m.name for m in sizes.members] == ["vocab_size=256", "vocab_size=1024"]
    with pytest.raises(SettingsError, match=r"member tokenizer=char: --vocab-size is for --tokenizer bpe"):
        E.make_plan(spec(small_corpus, vary={"tokenizer": ["char", "bpe"]}, settings={**TINY, "vocab_size": 512}), tmp_path)
    with pytest.raises(SettingsError, match=r"member tokenizer=words: tokenizer must be one of"):
        E.make_plan(spec(small_corpus, vary={"tokenizer": ["char", "words"]}), tmp_path)
    with pytest.raises(SettingsError, match=r"member vocab_size=3:"):
        E.make_plan(spec(small_corpus, vary={"vocab_size": [256, 3]}, settings={**TINY, "tokenizer": "bpe"}), tmp_path)
    # the estimate times the BPE member with its 512-token vocabulary
    est = E.estimate(E.make_plan(spec(small_corpus, vary={"tokenizer": ["char", "bpe"]}), tmp_path))
    assert len(est.step_s) == 2 and all(t > 0 for t in est.step_s)


# ----------------------------------------------------------------- the command line
def test_experiment_command_trains_ranks_samples_and_draws(small_corpus, tmp_path):
    r = tinygpt_inproc("experiment", "cli", "--corpus", small_corpus, "--max-steps", "8", "--vary", "n_layer=1,2", "--set", "n_embd=32",
                       "--set", "n_head=2", "--set", "block_size=32", "--set", "eval_interval=4", "--set", "batch_size=8",
                       "--threads", "1", "--sample-chars", "20", "--x", "steps", "--models-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "estimated time" in out and "ranked by bits per character" in out and "samples" in out and "validation loss" in out
    assert out.index("n_layer=1: finished") < out.index("n_layer=2: finished")
    # (its figure is the whole split's, not the estimate its progress line showed last: said so)
    assert re.search(r"n_layer=1: finished, val loss \d\.\d{3} \(whole split\)", out), out
    # a small grid: both curves of each member, training a line of braille, validation a • at each evaluation
    assert "training and validation loss (training ─, validation estimates •, final ◆)" in out  # (◆: the whole split's)
    legend = next(ln for ln in out.splitlines() if ln.startswith("━━ "))
    assert "n_layer=1" in legend and "n_layer=2" in legend
    assert any("\u2801" <= ch <= "\u28ff" for ch in out) and "┤" in out
    assert (tmp_path / "cli" / "n_layer=2" / "config.json").exists()
    r = tinygpt_inproc("runs", "--models-dir", tmp_path)
    assert "cli/n_layer=1" in r.stdout and "cli/n_layer=2" in r.stdout
    r = tinygpt_inproc("compare", "cli", "--models-dir", tmp_path)  # an experiment's name: all its members
    assert r.returncode == 0 and "━━ cli/n_layer=1" in r.stdout


def test_experiment_plan_trains_nothing(small_corpus, tmp_path):
    r = tinygpt_inproc("experiment", "p", "--corpus", small_corpus, "--minutes", "0.5", "--vary", "pos=learned,rope,alibi",
                       "--set", "n_embd=32", "--set", "n_head=2", "--plan", "--models-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "3. pos_encoding=alibi" in r.stdout and "estimated time" in r.stdout and not (tmp_path / "p").exists()


@pytest.mark.parametrize("args,needle", [
    (["--vary", "n_head=2,3", "--set", "n_embd=32"], "member n_head=3"),
    (["--vary", "colour=1,2"], "unknown setting 'colour'"),
    (["--vary", "n_layer=1,2", "--minutes", "1"], "--minutes or --max-steps"),
    (["--vary", "n_layer=1,2", "--x", "hours"], "--x must be"),
    (["--resume"], "no experiment named 'bad'"),
    (["--vary", "dtype=fp32,fp16"], "member dtype=fp16: fp16 is for GPUs"),
    (["--vary", "n_layer=1,2", "--set", "dtype=float"], "member n_layer=1: dtype must be one of auto, fp32, bf16, fp16, got 'float'"),
])
def test_experiment_bad_input_is_one_line(small_corpus, tmp_path, args, needle):
    base = [] if args == ["--resume"] else ["--corpus", small_corpus, "--max-steps", "5"]
    r = tinygpt_inproc("experiment", "bad", *base, *args, "--models-dir", tmp_path)
    assert_one_line_error(r, needle)
    assert not (tmp_path / "bad").exists()


def test_lesson_lists_and_refuses_an_unknown_one(tmp_path):
    r = tinygpt_inproc("lesson", "--models-dir", tmp_path)
    assert r.returncode == 0 and "positions" in r.stdout and "dropout" in r.stdout
    assert_one_line_error(tinygpt_inproc("lesson", "nope", "--models-dir", tmp_path), "no lesson named 'nope'", "positions")


@pytest.mark.slow
def test_killing_an_experiment_at_any_moment_then_resuming_finishes_it(small_corpus, tmp_path):
    """SIGKILL mid-member (no save, no manifest update), then --resume: finished members kept whole."""
    args = [sys.executable, "-m", "tinygpt_tui.cli.main", "experiment", "k", "--corpus", str(small_corpus), "--max-steps", "400",
            "--vary", "n_layer=1,2", "--set", "n_embd=32", "--set", "n_head=2", "--set", "block_size=32", "--set", "eval_interval=50",
            "--set", "batch_size=8", "--threads", "1", "--sample-chars", "0", "--models-dir", str(tmp_path)]
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
    first_done = False
    for line in p.stdout:  # until the second member has saved once
        if "n_layer=1: finished" in line:
            first_done = True
        if "[2/2]" in line:
            break
    metrics = tmp_path / "k" / "n_layer=2" / "metrics.jsonl"
    while '"saved"' not in (metrics.read_text() if metrics.exists() else ""):
        if not p.stdout.readline() and p.poll() is not None:
            break  # (it ended first: the asserts below say so)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert first_done and E.member_states(E.load_plan("k", tmp_path))["n_layer=2"]["state"] == "running"
    kept = (tmp_path / "k" / "n_layer=1" / "model.safetensors").stat().st_mtime_ns
    r = subprocess.run([*args[:4], "k", "--resume", "--sample-chars", "0", "--models-dir", str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "n_layer=1: kept" in r.stdout and "n_layer=2: resumed from step" in r.stdout and "finished in" in r.stdout
    assert (tmp_path / "k" / "n_layer=1" / "model.safetensors").stat().st_mtime_ns == kept
    assert [row.status for row in E.results(E.load_plan("k", tmp_path))] == ["finished", "finished"]


def test_a_taken_experiment_folder_is_refused_before_the_plan_is_printed(small_corpus, tmp_path):
    """The second experiment on a folder is one error line, not a plan, an estimate (seconds of timing
    steps) and then the error."""
    args = ["--corpus", small_corpus, "--max-steps", "5", "--vary", "n_layer=1,2", "--set", "n_embd=32", "--set", "n_head=2",
            "--threads", "1", "--models-dir", tmp_path]
    (tmp_path / "e").mkdir()
    E.write_manifest(E.make_plan(spec(small_corpus, name="e", vary={"n_layer": [1, 2]}), tmp_path), {})  # run here before
    r = tinygpt_inproc("experiment", "e", *args)
    assert_one_line_error(r, "already exists; --resume continues it")
    assert "estimated time" not in r.stdout and r.stdout.strip() == ""
    lock = ckpt.FolderLock(tmp_path / "e")  # another process's experiment holds it
    try:
        r = tinygpt_inproc("experiment", "e", "--resume", "--models-dir", tmp_path)
        assert_one_line_error(r, "being run by another process")
        assert r.stdout.strip() == ""
    finally:
        lock.release()


def test_the_samples_title_shows_the_prompt_as_typed(small_corpus, tmp_path):
    r = tinygpt_inproc("experiment", "s", "--corpus", small_corpus, "--max-steps", "2", "--vary", "n_layer=1,2", "--set", "n_embd=32",
                       "--set", "n_head=2", "--set", "block_size=32", "--set", "eval_interval=2", "--set", "eval_iters=1",
                       "--set", "batch_size=4", "--threads", "1", "--sample-chars", "5", "--models-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "samples, prompt '\\n', same seed" in r.stdout and "'\\\\n'" not in r.stdout


def test_a_step_budget_s_chart_is_drawn_against_steps(small_corpus, tmp_path):
    """Members given the same steps end together on a step axis (as in the app); minutes only when the budget is."""
    r = tinygpt_inproc("experiment", "st", "--corpus", small_corpus, "--max-steps", "4", "--vary", "n_layer=1,2", "--set", "n_embd=32",
                       "--set", "n_head=2", "--set", "block_size=32", "--set", "eval_interval=2", "--set", "eval_iters=1",
                       "--set", "batch_size=4", "--threads", "1", "--sample-chars", "0", "--models-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    axis = r.stdout.rstrip().splitlines()[-1]
    assert "steps" in axis and "minutes" not in axis, axis


def test_members_on_different_tokens_are_charted_in_bits_per_character(small_corpus, tmp_path):
    """As on the experiment screen: a BPE member's loss per token is higher where its bits per character are
    lower, so the losses side by side said the opposite of the ranked table (the tokens lesson's point)."""
    r = tinygpt_inproc("experiment", "tok", "--corpus", small_corpus, "--max-steps", "4", "--vary", "tokenizer=char,bpe",
                       "--set", "n_layer=1", "--set", "n_embd=32", "--set", "n_head=2", "--set", "block_size=32", "--set", "eval_interval=2",
                       "--set", "eval_iters=1", "--set", "batch_size=4", "--threads", "1", "--sample-chars", "0", "--models-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    title = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("tok: ") and "ranked" not in ln)  # the chart's
    assert "validation bits per character" in title and "training ─" not in title, title
    from tinygpt_tui.engine.runs import Curves

    bpc = [e.bpc for m in ("tokenizer=char", "tokenizer=bpe") for e in Curves(tmp_path / "tok" / m).evals]
    ticks = [float(ln.split("┤")[0]) for ln in r.stdout.splitlines() if "┤" in ln[:8] and ln.split("┤")[0].strip()]
    assert None not in bpc and ticks and min(bpc) - 0.5 <= min(ticks) and max(ticks) <= max(bpc) + 0.5, (bpc, ticks)


def test_the_results_say_which_member_overfitted(small_corpus, tmp_path):
    """The progress line's overfitting note goes with its bar; the results (what the dropout lesson's text
    points to) say it for each member whose validation loss turned back up."""
    plan = E.make_plan(spec(small_corpus, vary={"n_layer": [1, 2]}), tmp_path)
    events(plan)
    with open(plan.folder / "n_layer=1" / "metrics.jsonl", "a", encoding="utf-8") as f:  # later evaluations: memorising
        for i, (train, val) in enumerate([(1.0, 1.5), (0.8, 1.9), (0.6, 2.0), (0.4, 2.1)]):
            f.write(json.dumps({"event": "eval", "step": 100 + 10 * i, "train_loss": train, "val_loss": val, "elapsed_s": 10.0 + i}) + "\n")
    r = tinygpt_inproc("experiment", "e", "--resume", "--sample-chars", "0", "--models-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "n_layer=1: overfitting: validation loss rose from its best 1.500" in r.stdout
    assert "n_layer=2: overfitting" not in r.stdout


def test_a_member_not_started_yet_is_queued_in_the_results_not_broken(small_corpus, tmp_path):
    plan = E.make_plan(spec(small_corpus, vary={"n_layer": [1, 2]}), tmp_path)
    stop = threading.Event()
    for ev in E.run(plan, stop):  # the first member finishes, then it stops before the second starts
        if isinstance(ev, E.MemberEnded):
            stop.set()
    assert {r.group: r.status for r in E.results(plan)} == {"n_layer=1": "finished", "n_layer=2": "queued"}
    # nor in the samples: after Ctrl+C the command printed "(no sample: not a model folder: .../n_layer=2)"
    assert [name for name, _ in E.samples(plan, chars=5)] == ["n_layer=1"]


def test_a_member_stopped_while_preparing_its_corpus_is_stopped_in_the_results_as_in_the_queue(small_corpus, tmp_path):
    """A member stopped while it prepared its corpus has no folder: the queue said "stopped", the results table (the
    experiment screen's, read as the member ended, and `tinygpt experiment`'s) said "queued"."""
    from tinygpt_tui.engine.sources import Progress

    corpus = tmp_path / "own.txt"  # (its own text: prepared here, not found prepared by another test)
    corpus.write_text(f"{tmp_path}\n" + small_corpus.read_text(encoding="utf-8"), encoding="utf-8")
    plan = E.make_plan(spec(corpus, vary={"n_layer": [1, 2]}), tmp_path / "models")
    stop, at_end = threading.Event(), None
    for ev in E.run(plan, stop):
        if isinstance(ev, E.MemberEvent) and isinstance(ev.event, Progress):
            stop.set()
        if isinstance(ev, E.MemberEnded):
            assert ev.state == "stopped" and not (plan.folder / ev.name).exists()
            at_end = {r.group: r.status for r in E.results(plan)}  # (as the app reads them when a member ends)
    assert at_end == {r.group: r.status for r in E.results(plan)} == {"n_layer=1": "stopped", "n_layer=2": "queued"}
    assert E.member_states(plan)["n_layer=1"]["state"] == "stopped" and E.samples(plan, chars=5) == []


def test_an_experiment_is_not_resumed_on_another_corpus(small_corpus, tmp_path):
    """Its finished members would be kept and ranked beside members trained on another text."""
    plan = E.make_plan(spec(small_corpus, vary={"n_layer": [1, 2]}), tmp_path)
    stop = threading.Event()
    for ev in E.run(plan, stop):
        if isinstance(ev, E.MemberEnded):
            stop.set()
    other = tmp_path / "other.txt"
    other.write_text(small_corpus.read_text()[::-1])
    with pytest.raises(SettingsError, match="was run on small.txt, not other.txt"):
        events(E.make_plan(spec(other, vary={"n_layer": [1, 2]}), tmp_path), resume=True)
    same = tmp_path / "elsewhere" / "small.txt"  # (another book of the same name: said by its path, not "small.txt, not small.txt")
    same.parent.mkdir()
    same.write_text(other.read_text())
    with pytest.raises(SettingsError, match=f"was run on {small_corpus}, not {same};"):
        events(E.make_plan(spec(same, vary={"n_layer": [1, 2]}), tmp_path), resume=True)
    assert [ev.state for ev in events(plan, resume=True) if isinstance(ev, E.MemberEnded)] == ["kept", "finished"]


def test_a_folder_of_the_same_name_with_other_settings_is_not_resumed(small_corpus, tmp_path):
    """The same member names, other settings (a copied folder, or an experiment given again with another
    --set): its finished members were kept and shown as this grid's."""
    plan = E.make_plan(spec(small_corpus, vary={"n_layer": [1, 2]}), tmp_path)
    stop = threading.Event()
    for ev in E.run(plan, stop):
        if isinstance(ev, E.MemberEnded):
            stop.set()
    wider = {**{k: v for k, v in TINY.items() if k != "n_layer"}, "n_embd": 64}
    for other in (spec(small_corpus, vary={"n_layer": [1, 2]}, settings=wider), spec(small_corpus, vary={"n_layer": [1, 2]}, max_steps=20)):
        with pytest.raises(SettingsError, match=r"the grid given is not experiment e's \((settings|max_steps) differ\)"):
            E.check_claim(E.make_plan(other, tmp_path), resume=True, dry=True)
    E.check_claim(E.make_plan(spec(small_corpus, vary={"n_layer": [1, 2]}), tmp_path), resume=True)  # the same grid goes on


def test_a_plan_is_refused_where_the_run_would_be(small_corpus, tmp_path):
    """--plan printed a plan for a name the run then refused (a model's folder), and said "1 runs"."""
    models = tmp_path / "models"
    (models / "taken").mkdir(parents=True)
    (models / "taken" / "config.json").write_text("{}")
    common = ("--corpus", small_corpus, "--max-steps", "20", "--set", "n_embd=32", "--set", "n_head=2", "--plan", "--models-dir", models)
    assert_one_line_error(tinygpt_inproc("experiment", "taken", "--vary", "n_layer=1,2", *common), "a model named 'taken' already exists")
    r = tinygpt_inproc("experiment", "one", "--vary", "n_layer=1", *common)
    assert r.returncode == 0 and "1 run of 20 steps" in r.stdout, r.stdout + r.stderr
    assert_one_line_error(tinygpt_inproc("experiment", " ", "--vary", "n_layer=1", *common), "an experiment needs a name")


def test_a_lessons_plan_needs_no_corpus_fetched_and_says_how_to_fetch_it(tmp_path):
    """`tinygpt lesson positions --plan` on a machine without Tiny Shakespeare fetched was one error line and no plan;
    the members need no text: they are listed, and the line the estimate would be says how to fetch the corpus."""
    env = {"TINYGPT_CORPORA_DIR": str(tmp_path / "corpora")}  # (none fetched here)
    models = tmp_path / "models"
    for budget, said in (((), "at least 10:00 (the budgets)"), (("--max-steps", "300"), "no time estimate yet")):
        r = tinygpt_inproc("lesson", "positions", "--plan", *budget, "--threads", "1", "--models-dir", models, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "5. pos_encoding=none" in r.stdout and said in r.stdout, r.stdout
        assert r.stdout.strip().splitlines()[-1].endswith("not fetched yet: `tinygpt corpus fetch shakespeare`"), r.stdout
    assert not models.exists()  # (a plan writes nothing)
    r = tinygpt_inproc("experiment", "e", "-c", "hongloumeng", "--vary", "pos=rope,alibi", "-m", "1", "--plan", "--models-dir", models, env=env)
    assert r.returncode == 0 and "`tinygpt corpus fetch hongloumeng`" in r.stdout, r.stdout + r.stderr
    # to train, it is needed: the error says how to fetch it
    assert_one_line_error(tinygpt_inproc("lesson", "positions", "--models-dir", models, env=env), "tinygpt corpus fetch shakespeare")


def test_a_lesson_on_another_corpus_gets_its_own_folder(small_corpus, tmp_path):
    r = tinygpt_inproc("lesson", "dropout", "--corpus", small_corpus, "--plan", "--threads", "1", "--models-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("experiment lesson-dropout-small:"), r.stdout[:200]


def test_a_lesson_text_wraps_between_words_in_an_80_column_terminal(small_corpus, tmp_path):
    """In a terminal the lesson's paragraph was printed as one line for the terminal to wrap, which it did inside
    words: "or n|othing at all", "lets a model c|ount" at 80 columns. Now Rich wraps it between words there."""
    from tinygpt_tui.engine.lessons import find_lesson, paragraphs

    words = paragraphs(find_lesson("dropout").spec.text).split("\n")[0].split()
    r = tinygpt_inproc("lesson", "dropout", "--corpus", small_corpus, "--plan", "--threads", "1", "--models-dir", tmp_path,
                       env={"COLUMNS": "80", "TTY_COMPATIBLE": "1"})  # (Rich's own switch: a terminal, as a person has it)
    assert r.returncode == 0, r.stderr
    lines = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", ln).rstrip() for ln in r.stdout.replace("\r", "\n").splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.split()[:3] == words[:3])
    block, n = [], 0
    while n < len(words):
        block.append(lines[start + len(block)])
        n += len(block[-1].split())
    assert " ".join(block).split() == words and max(map(len, block)) <= 80, block


def test_a_lesson_text_is_its_paragraphs_not_the_files_line_breaks(tmp_path):
    """The file wraps its text at ~100 columns; the screen and the terminal wrap it to their own width."""
    from tinygpt_tui.engine.lessons import find_lesson, list_lessons, read_spec_file

    f = tmp_path / "x.toml"
    f.write_text('text = """One line\nwrapped here.\n\nA second\n  paragraph."""\n[vary]\nn_layer = [1, 2]\n', encoding="utf-8")
    assert read_spec_file(f).text == "One line wrapped here.\n\nA second paragraph."
    from tinygpt_tui.engine.lessons import paragraphs  # (and a text saved with the file's breaks, shown)

    assert paragraphs("One line\nwrapped here.\n \nA second\n  paragraph.\n") == "One line wrapped here.\n\nA second paragraph."
    for lesson in list_lessons():
        assert lesson.spec.text and "\n" not in lesson.spec.text.replace("\n\n", ""), lesson.name


def test_an_estimate_that_fails_in_its_child_process_says_why_in_one_line(small_corpus, tmp_path):
    """The members' steps timed in a child process: its error reaches the user as its message, not a class path."""
    import shutil

    import torch

    corpus = tmp_path / "book.txt"
    shutil.copy(small_corpus, corpus)
    plan = E.make_plan(spec(corpus, max_steps=50), tmp_path)
    corpus.unlink()  # gone between the plan and the estimate
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # not the members' 1: timed in a child process
        with pytest.raises(SettingsError) as e:
            E.estimate(plan)
    finally:
        torch.set_num_threads(before)
    msg = str(e.value)
    assert msg.startswith("could not time the members' steps: ") and "book.txt" in msg and "\n" not in msg
    assert "tinygpt_tui." not in msg and "Error:" not in msg, msg


# ----------------------------------------------------------------- a stopped member, lesson budgets, --threads
def test_a_stopped_member_shows_the_loss_it_kept_ranked_after_the_finished(small_corpus, tmp_path):
    """Stopped after its first evaluation: its row gives the validation loss its checkpoint kept (what
    `tinygpt runs` prints for it), says stopped, and comes after the finished member whatever its loss."""
    from tinygpt_tui.engine.runs import summarize
    from tinygpt_tui.engine.train import Eval

    plan = E.make_plan(spec(small_corpus, vary={"n_layer": [1, 2]}), tmp_path)
    stop = threading.Event()
    for ev in E.run(plan, stop):
        if isinstance(ev, E.MemberEvent) and ev.name == "n_layer=2" and isinstance(ev.event, Eval):
            stop.set()
    kept = summarize(plan.folder / "n_layer=2")
    assert kept.status == "stopped" and kept.val_loss is not None
    rows = E.results(plan)
    assert [(r.group, r.status) for r in rows] == [("n_layer=1", "finished"), ("n_layer=2", "stopped")]
    assert rows[1].val_loss == kept.val_loss and rows[1].bpc == kept.bpc and rows[1].spread is None
    listed = tinygpt_inproc("runs", "--models-dir", tmp_path).stdout
    line = next(ln for ln in listed.splitlines() if "e/n_layer=2" in ln)
    assert "stopped" in line and f"{kept.val_loss:.3f}" in line


def test_a_lesson_takes_another_budget_in_a_folder_of_its_own(small_corpus, tmp_path):
    """--minutes / --max-steps as `tinygpt experiment` has them: said in the plan and its estimate, and kept
    apart from the lesson's own results; the lesson's own budget given is the lesson's own folder."""
    r = tinygpt_inproc("lesson", "dropout", "--corpus", small_corpus, "--minutes", "1.5", "--plan", "--threads", "1", "--models-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("experiment lesson-dropout-1.5min-small: 2 runs of 1.5 min each"), r.stdout[:200]
    assert "estimated time" in r.stdout
    r = tinygpt_inproc("lesson", "dropout", "--corpus", small_corpus, "--max-steps", "40", "--plan", "--models-dir", tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("experiment lesson-dropout-40steps-small: 2 runs of 40 steps each"), r.stdout[:200]
    r = tinygpt_inproc("lesson", "dropout", "--corpus", small_corpus, "--minutes", "3", "--plan", "--models-dir", tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("experiment lesson-dropout-small: 2 runs of 3 min each"), r.stdout[:200]
    assert not any(tmp_path.iterdir())  # (--plan: nothing written)
    help_ = tinygpt_inproc("lesson", "--help").stdout
    assert "--minutes" in help_ and "--max-steps" in help_


@pytest.mark.parametrize("args,needle", [
    (["--minutes", "0"], "--minutes must be above 0 and at most 1,000,000, got 0"),
    (["--minutes", "-2"], "--minutes must be above 0"),
    (["--minutes", "nan"], "--minutes must be above 0"),
    (["--minutes", "inf"], "--minutes must be above 0"),
    (["--minutes", "1e300"], "--minutes must be above 0"),
    (["--max-steps", "0"], "--max-steps must be from 1 to 1,000,000,000,000, got 0"),
    (["--max-steps", "-5"], "--max-steps must be from 1"),
    (["--max-steps", str(10**13)], "--max-steps must be from 1"),
    (["--max-steps", "nan"], "--max-steps"),
    (["--minutes", "1", "--max-steps", "5"], "--minutes or --max-steps (one of them)"),
])
def test_a_lesson_s_bad_budget_is_one_line(small_corpus, tmp_path, args, needle):
    r = tinygpt_inproc("lesson", "dropout", "--corpus", small_corpus, *args, "--models-dir", tmp_path)
    assert_one_line_error(r, needle)
    assert not any(tmp_path.iterdir())


def test_a_lesson_on_a_step_budget_gives_the_same_table_on_a_re_run(small_corpus, tmp_path):
    """Same machine, same thread count, --max-steps: the same numbers, whichever folder it runs in; run again
    in its own folder, it trains nothing and shows them again."""
    tables = []
    for d in (tmp_path / "a", tmp_path / "b"):
        r = tinygpt_inproc("lesson", "dropout", "--corpus", small_corpus, "--max-steps", "3", "--threads", "1", "--models-dir", d)
        assert r.returncode == 0, r.stderr
        assert "lesson-dropout-3steps-small: 2 runs of 3 steps each" in r.stdout
        rows = E.results(E.load_plan("lesson-dropout-3steps-small", d))
        assert [r.status for r in rows] == ["finished", "finished"] and all(r.runs[0].steps == 3 for r in rows)
        tables.append([(r.group, r.val_loss, r.bpc) for r in rows])
    assert tables[0] == tables[1] and None not in tables[0][0]
    r = tinygpt_inproc("lesson", "dropout", "--corpus", small_corpus, "--max-steps", "3", "--threads", "1", "--models-dir", tmp_path / "a")
    assert r.returncode == 0 and r.stdout.count("kept (finished before)") == 2, r.stdout
    first_line = find_lesson("dropout").spec.text.strip().splitlines()[0]
    assert r.stdout.count(first_line) == 1, r.stdout  # its text once, beside the table: nothing was trained
    assert [(x.group, x.val_loss, x.bpc) for x in E.results(E.load_plan("lesson-dropout-3steps-small", tmp_path / "a"))] == tables[0]


@pytest.mark.parametrize("threads", ["0", "-1", "999"])
def test_every_command_taking_threads_words_a_bad_count_alike(small_corpus, tmp_path, threads, capsys):
    """One check, one wording (train's): train, experiment, lesson, bench, and the benchmark script."""
    from bench import bench as bench_script

    grid = ["--corpus", small_corpus, "--max-steps", "5", "--vary", "n_layer=1,2"]
    errors = []
    for args in (["train", small_corpus, "--name", "t", "--models-dir", tmp_path], ["experiment", "x", *grid, "--models-dir", tmp_path],
                 ["experiment", "x", *grid, "--plan", "--models-dir", tmp_path],
                 ["lesson", "dropout", "--corpus", small_corpus, "--models-dir", tmp_path], ["bench", "--presets", "none"]):
        r = tinygpt_inproc(*args, "--threads", threads)
        assert_one_line_error(r, "--threads must be from 1 to the", f"got {threads}")
        errors.append(r.stderr.strip())
    capsys.readouterr()
    assert bench_script.main(["--threads", threads]) == 2
    errors.append(capsys.readouterr().err.strip())
    assert len(set(errors)) == 1, errors
    assert not any(tmp_path.iterdir())


def test_a_lesson_on_another_budget_says_its_text_was_written_for_its_own():

    spec = find_lesson("dropout").spec
    assert as_run(spec).text == spec.text and as_run(spec, spec.minutes).text == spec.text
    steps = as_run(spec, max_steps=40)
    assert steps.text.startswith(spec.text) and "with 40 steps a member instead of the lesson's 3 minutes" in steps.text
    assert "with 1.5 minutes a member" in as_run(spec, minutes=1.5).text
    # `tinygpt lesson dropout --minutes 1`, the shortest a newcomer tries, said "with 1 minutes a member"
    assert "with 1 minute a member" in as_run(spec, minutes=1).text
    assert "with 1 step a member" in as_run(spec, max_steps=1).text
    assert "with 4,000 steps a member" in as_run(spec, max_steps=4000).text


def test_a_lesson_s_text_holds_on_any_book_and_names_the_one_it_runs_on(small_corpus):
    """The dropout lesson said it trained on "the first 30,000 characters of Tiny Shakespeare" when run with
    --corpus on another book. A text names Tiny Shakespeare only as the lesson's own book; on another book it
    says which it runs on (the note the command line and the app's form both add: lessons.as_run)."""
    for lesson in list_lessons():
        spec = lesson.spec
        assert "of Tiny Shakespeare" not in spec.text and "speakers and turns of dialogue" not in spec.text, lesson.name
        for sentence in re.split(r"(?<=\.) ", spec.text):
            assert "Shakespeare" not in sentence or "Tiny Shakespeare" in sentence, sentence
        other = as_run(spec, corpus=str(small_corpus))
        assert other.text.startswith(spec.text) and other.corpus == str(small_corpus) and other.name == f"{spec.name}-small"
        assert f"on {Path(small_corpus).name} instead of the lesson's Tiny Shakespeare" in other.text, other.text
        assert as_run(spec, corpus=spec.corpus) is spec  # (its own book: the lesson as it is)


def test_a_lesson_on_books_named_in_chinese_gets_a_folder_for_each(tmp_path):
    """The folder's suffix kept only ASCII letters: 红楼梦.txt and 西游记.txt were both "-corpus", so the second was
    refused as the first's folder "run on another corpus"."""
    spec = find_lesson("dropout").spec
    names = []
    for stem in ("红楼梦", "西游记", "Les Misérables, tome 1", "«»"):
        book = tmp_path / f"{stem}.txt"
        book.write_text("text " * 100, encoding="utf-8")
        names.append(as_run(spec, corpus=str(book)).name)
    assert names == [f"{spec.name}-红楼梦", f"{spec.name}-西游记", f"{spec.name}-Les-Misérables-tome-1", f"{spec.name}-corpus"]


def test_the_ranked_table_keeps_each_member_on_one_line_at_80_columns(small_corpus, tmp_path):
    """At 80 columns the ranking's padding cut 'pos_encoding=alibi' into 'pos_encoding=alib' and 'i' on two lines."""
    args = ("experiment", "narrow", "--corpus", small_corpus, "--max-steps", "2", "--vary", "pos_encoding=learned,sinusoidal",
            "--set", "n_embd=32", "--set", "n_head=2", "--set", "n_layer=1", "--set", "block_size=32", "--set", "batch_size=8",
            "--set", "eval_iters=1", "--threads", "1", "--sample-chars", "0", "--models-dir", tmp_path)
    r = tinygpt_inproc(*args, env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    table = r.stdout.split("ranked by bits per character")[1].split("└")[0]
    members = [ln.split("│")[2].strip() for ln in table.splitlines() if ln.count("│") > 2]
    assert sorted(members) == ["pos_encoding=learned", "pos_encoding=sinusoidal"], table


def test_ctrl_c_while_the_samples_are_drawn_quits_at_once(small_corpus, tmp_path):
    """Training is over and nothing is left to save: Ctrl+C ends the long samples now, exit 130, and does
    not claim to be saving a checkpoint."""
    args = [sys.executable, "-m", "tinygpt_tui.cli.main", "experiment", "q", "--corpus", str(small_corpus), "--max-steps", "4",
            "--vary", "n_layer=1,2", "--set", "n_embd=32", "--set", "n_head=2", "--set", "block_size=32", "--set", "eval_interval=4",
            "--set", "batch_size=8", "--threads", "1", "--sample-chars", "1000000", "--models-dir", str(tmp_path)]
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
    out = []
    for line in p.stdout:  # the ranked table is printed; the samples (a million characters each) come next
        out.append(line)
        if "ranked by bits per character" in line:
            break
    os.kill(p.pid, signal.SIGINT)
    try:
        rest, _ = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130, "".join(out) + rest
    assert "saving a checkpoint" not in rest and "Traceback" not in rest
    assert [row.status for row in E.results(E.load_plan("q", tmp_path))] == ["finished", "finished"]


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="tells a process waiting for a lock by /proc/PID/fd (Linux)")
def test_ctrl_c_while_a_member_prepares_its_corpus_says_nothing_is_saved_and_saves_nothing(small_corpus, tmp_path):
    """Ctrl+C while a member prepared its corpus said "stopping: saving a checkpoint"; the member saves nothing there.
    It says so, and the member ends "stopped", no folder, for --resume to train anew."""
    from tests.test_data import ctrl_c_while_preparing, waits_for_the_lock

    corpus, models = tmp_path / "own.txt", tmp_path / "models"
    corpus.write_text(f"{tmp_path}\n" + small_corpus.read_text(encoding="utf-8"), encoding="utf-8")
    code, out, err = ctrl_c_while_preparing(corpus, ["p", "--corpus", str(corpus), "--max-steps", "4", "--vary", "n_layer=1,2",
                                                     "--set", "n_embd=32", "--set", "n_head=2", "--set", "block_size=32",
                                                     "--set", "batch_size=8", "--threads", "1", "--models-dir", str(models)],
                                            lambda p, folder: waits_for_the_lock(p.pid, folder), command=("experiment",))
    assert code == 0, (out, err)
    assert [line for line in err.splitlines() if "stop" in line] == [
        "stopping: n_layer=1 is preparing its corpus, which ends there: nothing trained, nothing saved (Ctrl+C again to quit at once)"]
    assert "n_layer=1: stopped while preparing its corpus: nothing trained, nothing saved" in out and "--resume" in out, out
    assert "Traceback" not in err and not (models / "p" / "n_layer=1").exists()
    assert E.member_states(E.load_plan("p", models))["n_layer=1"]["state"] == "stopped"


def test_the_plan_says_it_is_timing_the_members_while_it_does(small_corpus, tmp_path):
    """Timing each member takes seconds (a deep one more): a lesson's plan sat 15 s after its text, a 30-member
    grid minutes, with nothing on screen. A terminal is shown what is being done meanwhile; a pipe gets the plan alone."""
    args = ("experiment", "e", "--corpus", small_corpus, "--max-steps", "4", "--vary", "n_layer=1,2", "--set", "n_embd=32",
            "--set", "n_head=2", "--threads", "1", "--plan", "--models-dir", tmp_path / "models")
    shown = tinygpt_inproc(*args, env={"FORCE_COLOR": "1", "TERM": "xterm-256color"})
    assert shown.returncode == 0 and "timing a few steps of each member on this machine (2 to time)" in shown.stdout, shown.stdout
    piped = tinygpt_inproc(*args)
    assert piped.returncode == 0 and "estimated time" in piped.stdout and "timing a few steps" not in piped.stdout


@pytest.mark.slow
def test_a_member_too_big_for_the_memory_is_named_in_words_not_torch_s(small_corpus, tmp_path):
    """Timing a member whose step could not get its memory printed torch's allocator text: "[enforce fail at
    alloc_cpu.cpp:127] ... you tried to allocate 68719476736 bytes". It names the member and what to make smaller.
    (The memory is capped for the run, as on a small machine: RLIMIT_DATA.)"""
    import resource

    def small_machine():
        resource.setrlimit(resource.RLIMIT_DATA, (1_500_000_000, 1_500_000_000))

    r = subprocess.run([sys.executable, "-m", "tinygpt_tui.cli.main", "experiment", "e", "--corpus", str(small_corpus), "--max-steps", "5",
                        "--vary", "batch_size=1024,2048", "--set", "block_size=256", "--set", "n_embd=64", "--set", "n_head=2",
                        "--set", "n_layer=1", "--threads", "1", "--plan", "--models-dir", str(tmp_path / "models")],
                       cwd=ROOT, env={**os.environ, "TINYGPT_PROBE": "0"}, capture_output=True, text=True, timeout=300, preexec_fn=small_machine)
    r.exit_code = r.returncode
    assert_one_line_error(r, "member batch_size=1024: its step needs more memory than this machine has",
                          "try a smaller batch_size, block_size or model")
    assert "alloc" not in r.stderr and "enforce" not in r.stderr


def test_a_members_recorded_command_quotes_the_experiment_name_for_a_shell(small_corpus, tmp_path):
    """The command in each member's card ("Trained with:") named `my grid` unquoted: pasted, it ran `tinygpt
    experiment my` with a stray `grid`."""
    import shlex

    plan = E.make_plan(spec(small_corpus, vary={"n_layer": [1, 2]}, name="my grid"), tmp_path)
    for m in plan.members:
        assert shlex.split(m.config.command) == ["tinygpt", "experiment", "my grid"]


@pytest.mark.parametrize("fault", ["corpus removed", "disk full"])
def test_a_member_that_fails_is_named_with_its_reason_and_how_to_go_on(small_corpus, tmp_path, monkeypatch, fault):
    """A member that failed (its corpus removed after the first member, or a disk-full OSError as it saved) ended the
    experiment with exit code 0 and no word of how to go on; an OSError no check turned into a one-line error escaped
    the queue ("error: No space left on device", the member left "running"). Now: one error line naming the member and
    why, the `continue with:` line a stopped experiment prints, exit code 2; the finished member stays whole."""
    import errno
    import shlex

    corpus = tmp_path / "book.txt"
    corpus.write_bytes(small_corpus.read_bytes())
    models, real = tmp_path / "models", E.run

    def second_member_meets_the_fault(plan, stop=None, resume=False, note=None):  # (the real queue; the fault as member 2 starts)
        for ev in real(plan, stop, resume, note):
            if isinstance(ev, E.MemberStarted) and ev.index == 1:
                if fault == "corpus removed":
                    corpus.rename(tmp_path / "away.txt")
                else:
                    monkeypatch.setattr(ckpt, "save_model", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
            yield ev

    monkeypatch.setattr(E, "run", second_member_meets_the_fault)
    r = tinygpt_inproc("experiment", "e", "-c", corpus, "--vary", "pos=learned,rope,alibi", "--max-steps", "12", *sum((["--set", f"{k}={v}"]
                       for k, v in TINY.items()), []), "--threads", "1", "--sample-chars", "0", "--models-dir", models)
    why = "corpus not found" if fault == "corpus removed" else "No space left on device"
    assert_one_line_error(r, "member pos_encoding=rope failed: ", why, "(and 1 more: pos_encoding=alibi)")
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("continue with: ")), None)
    assert line == f"continue with: tinygpt experiment e --resume --models-dir {models}", r.stdout[-1500:]
    states = {m["name"]: m["state"] for m in E.read_manifest(models / "e")["members"]}
    assert states == {"pos_encoding=learned": "finished", "pos_encoding=rope": "failed", "pos_encoding=alibi": "failed"}
    assert ckpt.load_model(models / "e" / "pos_encoding=learned").model is not None  # (whole)
    monkeypatch.undo()  # the fault mended: the line goes on with the rest
    if fault == "corpus removed":
        (tmp_path / "away.txt").rename(corpus)
    r = tinygpt_inproc(*shlex.split(line.removeprefix("continue with: "))[1:], "--sample-chars", "0")
    assert r.returncode == 0 and "pos_encoding=learned: kept" in r.stdout, (r.stdout[-1500:], r.stderr)
    assert {s["state"] for s in E.member_states(E.load_plan("e", models)).values()} == {"finished"}


def test_the_commands_an_experiment_says_to_go_on_with_run_as_printed_in_its_models_folder(small_corpus, tmp_path, monkeypatch):
    """`tinygpt --models-dir D experiment ...` stopped by Ctrl+C said `continue with: tinygpt experiment e --resume`: the
    global --models-dir reaches the command as $TINYGPT_MODELS_DIR, which the line took for the default folder. Pasted
    into a shell (no such variable there), it resumed nothing; nor did the `--resume` a refusal named."""
    import shlex
    import time

    monkeypatch.chdir(tmp_path)  # (./models is not D)
    monkeypatch.delenv("TINYGPT_MODELS_DIR", raising=False)  # (and back as it was after: the global --models-dir sets it)
    monkeypatch.setenv("TINYGPT_FAST", "0")  # (no kernels or decoder to compile for runs this short)
    models = tmp_path / "elsewhere"
    log = models / "e" / "n_layer=1" / "metrics.jsonl"

    def ctrl_c_once_it_trains():  # the first Ctrl+C stops the member under way, which saves
        end = time.monotonic() + 120
        while time.monotonic() < end and not (log.is_file() and '"step"' in log.read_text(encoding="utf-8")
                                              and signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    def follow(command: str):  # as a new shell runs it: no $TINYGPT_MODELS_DIR
        argv = shlex.split(command)
        assert argv[0] == "tinygpt", command
        return tinygpt_inproc(*argv[1:], env={"TINYGPT_MODELS_DIR": None})

    watcher = threading.Thread(target=ctrl_c_once_it_trains, daemon=True)
    watcher.start()
    r = tinygpt_inproc("--models-dir", models, "experiment", "e", "--corpus", small_corpus, "--max-steps", "100", "--vary", "n_layer=1,2",
                       "--set", "n_embd=32", "--set", "n_head=2", "--set", "block_size=16", "--set", "batch_size=4", "--set", "eval_iters=2", "--threads", "1",
                       "--sample-chars", "0")
    watcher.join()
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("continue with: ")), None)
    assert r.returncode == 0 and line is not None, (r.stdout[-2000:], r.stderr)
    r = follow(line.removeprefix("continue with: "))
    assert r.returncode == 0, (line, r.stderr)
    assert {m: s["state"] for m, s in E.member_states(E.load_plan("e", models)).items()} == {"n_layer=1": "finished", "n_layer=2": "finished"}
    card = (models / "e" / "n_layer=1" / "README.md").read_text(encoding="utf-8")  # a member's card: its eval command
    r = follow(re.search(r"`(tinygpt eval [^`]+)`", card)[1])
    assert r.returncode == 0 and "n_layer=1" in r.stdout, (card, r.stderr)
    for again in (["experiment", "e"], ["experiment", "e", "--resume", "--seeds", "2"]):  # refused: each names the command to run
        r = tinygpt_inproc(*again, "--models-dir", models)
        command = re.search(r"`(tinygpt experiment [^`]+)`", r.stderr)
        assert r.returncode == 2 and command, r.stderr
        r = follow(command[1])
        assert r.returncode == 0 and "ranked by" in r.stdout, (command[1], r.stderr)
    assert not (tmp_path / "models").exists()


def test_the_estimate_of_a_member_to_resume_counts_only_the_steps_left(small_corpus, tmp_path):
    """`tinygpt lesson dropout --max-steps 150`, stopped by Ctrl+C at step 70 of its second member and resumed, said
    "about 00:59" for that member and took 00:33: the estimate charged its whole budget, though it goes on from its
    checkpoint. Now a member to resume is charged the steps it has left (and says from which step it goes on)."""
    from tinygpt_tui.engine.train import Step, train

    settings = {**{k: v for k, v in TINY.items() if k != "n_layer"}, "eval_interval": 1000, "sample_chars": 0, "log_interval": 1}
    plan = E.make_plan(spec(small_corpus, seeds=3, max_steps=40, vary={"n_layer": [1]}, settings=settings), tmp_path)
    stop = threading.Event()
    for ev in train(plan.members[1].config, stop):  # the second seed stopped on its way (Ctrl+C: it saves)
        if isinstance(ev, Step) and ev.step >= 15:
            stop.set()
    est = E.estimate(plan)
    step = ckpt.read_info(plan.folder / plan.members[1].name).step
    assert 15 <= step < 40 and est.done == [0, step, 0]
    # the second and third alike but for what the second has done (the first also reads the corpus)
    assert est.member_s[2] - est.member_s[1] == pytest.approx(step * est.step_s[1])


def test_a_lesson_on_a_glob_is_named_for_the_glob_s_folder(tmp_path):
    """A glob's stem is "*": every lesson run on a glob went to one folder, "-corpus", and a lesson on another glob
    was refused there as "run on *.txt, not *.txt" (with no --name to pick another)."""
    spec = find_lesson("dropout").spec
    for folder in ("books", "letters"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "one.txt").write_text("text " * 100, encoding="utf-8")
    names = [as_run(spec, corpus=str(tmp_path / g)).name for g in ("books/*.txt", "letters/*.txt", "letters/o*.txt", "letters/one.txt")]
    assert names == [f"{spec.name}-books", f"{spec.name}-letters", f"{spec.name}-letters-o", f"{spec.name}-one"]
