"""The training loop end to end: loss falls, events flow, checkpoints reload, resume continues, stop saves."""

import json
import math
import threading

import pytest

from tinygpt_tui.engine import folder as ckpt
from tinygpt_tui.errors import SettingsError, TinyGPTError
from tinygpt_tui.sampler import SamplingSettings, generate
from tinygpt_tui.engine.train import TrainConfig, lr_at, train


def cfg(corpus, models, **kw):
    base = dict(corpus=str(corpus), name="t", models_dir=str(models), preset="tiny", block_size=32, max_steps=60,
                eval_interval=30, eval_iters=4, sample_chars=20, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def test_end_to_end_loss_falls_saves_reloads_generates(small_corpus, tmp_path):
    events = list(train(cfg(small_corpus, tmp_path, max_steps=120, eval_interval=60)))
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "finish" and "eval" in kinds and "saved" in kinds
    evals = [e for e in events if e.kind == "eval"]
    vocab = events[0].model["vocab_size"]
    assert evals[-1].val_loss < evals[0].val_loss and evals[-1].sample
    fin = events[-1]
    # from ln(vocab) = 4.08 for a blank model to well under 3 in 120 tiny steps
    assert fin.reason == "done" and fin.step == 120 and fin.val_loss < math.log(vocab) - 1.2
    loaded = ckpt.load_model(tmp_path / "t")
    doc = loaded.doc
    assert doc["figures"]["step"] == 120 and doc["corpus"]["sha256"] and doc["figures"]["val_loss"] == pytest.approx(fin.val_loss)
    assert doc["training"]["batch_size"] == 16 and doc["model"]["block_size"] == 32
    text = "".join(generate(loaded.model, loaded.tokenizer, "ROMEO:", SamplingSettings(max_new_tokens=50, seed=0)))
    assert len(text) == 50
    records, _ = ckpt.read_metrics(tmp_path / "t")
    assert [r["event"] for r in records].count("eval") == len(evals)
    assert "validation loss" in (tmp_path / "t" / "README.md").read_text().lower()


def test_resume_continues_the_same_run(small_corpus, tmp_path):
    """Stopped at step 25 and resumed, a run follows the uninterrupted run's loss curve."""
    straight = list(train(cfg(small_corpus, tmp_path / "a", max_steps=60, dtype="fp32", log_interval=1)))
    assert straight[-1].step == 60
    stop = threading.Event()
    events = []
    for e in train(cfg(small_corpus, tmp_path / "b", max_steps=60, dtype="fp32", log_interval=1), stop):
        events.append(e)
        if e.kind == "step" and e.step == 25:
            stop.set()
    assert events[-1].kind == "finish" and events[-1].reason == "stopped" and events[-1].step == 25
    resumed = list(train(cfg(small_corpus, tmp_path / "b", max_steps=60, dtype="fp32", log_interval=1, resume=True)))
    assert resumed[0].step == 25 and resumed[0].resumed and resumed[-1].step == 60
    full = {e.step: e.loss for e in straight if e.kind == "step"}
    res = {e.step: e.loss for e in resumed if e.kind == "step"}
    for s in (27, 40, 60):
        assert res[s] == pytest.approx(full[s], abs=2e-3), s
    records, _ = ckpt.read_metrics(tmp_path / "b" / "t")
    steps = [r["step"] for r in records if r["event"] == "step"]
    assert steps == sorted(steps) and steps[-1] == 60  # one clean curve, nothing past the checkpoint duplicated


def test_time_budget_fits_the_schedule(small_corpus, tmp_path):
    events = list(train(cfg(small_corpus, tmp_path, max_steps=None, time_budget=3.0, eval_interval=1000, warmup_steps=1, log_interval=1)))
    fin = events[-1]
    assert fin.reason == "budget" and 2.5 <= fin.elapsed_s < 8
    steps = [e for e in events if e.kind == "step"]
    assert steps[-1].lr < steps[len(steps) // 2].lr  # the cosine decays over the budget


def test_existing_name_is_not_overwritten(small_corpus, tmp_path):
    list(train(cfg(small_corpus, tmp_path, max_steps=5, eval_interval=5)))
    before = (tmp_path / "t" / "model.safetensors").read_bytes()
    with pytest.raises(SettingsError, match="already exists"):
        list(train(cfg(small_corpus, tmp_path, max_steps=5)))
    assert (tmp_path / "t" / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(n_embd=30, n_head=4), "divisible"),
        (dict(block_size=0), "block"),
        (dict(lr=-1.0), "lr"),
        (dict(batch_size=0), "batch"),
        (dict(name="../escape"), "name"),
        (dict(preset="huge"), "preset"),
    ],
)
def test_impossible_settings(small_corpus, tmp_path, kw, msg):
    with pytest.raises(TinyGPTError, match=msg):
        list(train(cfg(small_corpus, tmp_path, **kw)))
    assert not (tmp_path / "t").exists()


def test_lr_schedule_warmup_then_cosine():
    c = TrainConfig(name="x", lr=1e-3, warmup_steps=10, min_lr_ratio=0.1, max_steps=100).resolved()
    assert lr_at(c, 0, 0.0) == pytest.approx(1e-4)
    assert lr_at(c, 9, 0.09) == pytest.approx(1e-3)
    assert lr_at(c, 50, 0.5) == pytest.approx(0.55e-3)
    assert lr_at(c, 100, 1.0) == pytest.approx(1e-4)


def test_a_preset_may_set_the_schedules_floor_and_an_option_still_wins():
    five = TrainConfig(name="x", preset="5min", lr=1e-3, warmup_steps=0, max_steps=100).resolved()
    assert lr_at(five, 100, 1.0) == 0.0  # 5min anneals to nothing (docs/speedrun.md, gain #10)
    small = TrainConfig(name="x", preset="small", lr=1e-3, warmup_steps=0, max_steps=100).resolved()
    assert lr_at(small, 100, 1.0) == pytest.approx(1e-4)  # the default floor: a tenth of the peak
    given = TrainConfig(name="x", preset="5min", lr=1e-3, warmup_steps=0, max_steps=100, min_lr_ratio=0.1).resolved()
    assert lr_at(given, 100, 1.0) == pytest.approx(1e-4)  # the option, though it equals the default


def test_lr_schedule_wsd_holds_the_peak_then_falls_in_a_straight_line():
    c = TrainConfig(name="x", lr=1e-3, warmup_steps=10, min_lr_ratio=0.0, schedule="wsd", cooldown=0.25, max_steps=100).resolved()
    assert lr_at(c, 0, 0.0) == pytest.approx(1e-4)
    assert lr_at(c, 40, 0.4) == lr_at(c, 75, 0.75) == pytest.approx(1e-3)  # held until the last quarter
    assert lr_at(c, 87, 0.875) == pytest.approx(0.5e-3)
    assert lr_at(c, 100, 1.0) == pytest.approx(0.0)
    assert TrainConfig(name="x", max_steps=10).resolved().schedule == "cosine"
    for bad, msg in (({"schedule": "linear"}, "schedule must be one of cosine, wsd"), ({"schedule": "wsd", "cooldown": 0.0}, "cooldown must be above 0")):
        with pytest.raises(TinyGPTError, match=msg):
            TrainConfig(name="x", max_steps=10, **bad).resolved()


def test_auto_preset_is_sized_by_the_time_budget(small_corpus, tmp_path):
    from tinygpt_tui.engine.presets import BUDGET_PRESETS, PRESETS

    def resolved(**kw):
        return TrainConfig(corpus=str(small_corpus), name="t", models_dir=str(tmp_path), **kw).resolved()

    one = resolved(time_budget=60)
    assert one.preset == "1min" and (one.n_layer, one.n_embd, one.block_size, one.batch_size) == (2, 128, 64, 16)
    five = resolved(time_budget=300)
    assert five.preset == "5min" and five.n_embd == BUDGET_PRESETS["5min"]["n_embd"]
    assert resolved().preset == "small" and resolved(time_budget=3600).preset == "small"
    assert resolved(max_steps=10).n_embd == PRESETS["small"]["n_embd"]
    # what the user sets wins over the preset; an explicit preset wins over the budget
    assert resolved(time_budget=60, n_embd=64, n_head=2).n_embd == 64
    assert resolved(time_budget=60, preset="tiny").n_embd == PRESETS["tiny"]["n_embd"]
    # the default optimizer is Muon; AdamW on request
    assert one.optimizer == "muon" and resolved(optimizer="adamw").optimizer == "adamw"
    with pytest.raises(SettingsError, match="optimizer"):
        resolved(optimizer="sgd")
    with pytest.raises(SettingsError, match="muon-lr"):
        resolved(muon_lr=-1.0)


def test_the_chosen_preset_is_recorded_in_the_card(small_corpus, tmp_path):
    events = list(train(cfg(small_corpus, tmp_path, preset="auto", max_steps=None, time_budget=2.0, n_layer=1, n_head=2, n_embd=32,
                            batch_size=4, eval_interval=1000, sample_chars=0)))
    assert events[-1].kind == "finish" and events[-1].reason == "budget"
    doc = ckpt.load_model(tmp_path / "t").doc
    assert doc["training"]["preset"] == "1min" and doc["training"]["optimizer"] == "muon" and doc["model"]["block_size"] == 32
    card = (tmp_path / "t" / "README.md").read_text()
    assert "| optimizer | Muon for the weight matrices inside the blocks (lr 0.02), AdamW for the rest (lr 0.003) |" in card
    # (the estimate of the weights the folder keeps: not always the lowest seen, which the row's old name promised)
    assert f"| validation loss estimate at the weights kept (during training) | {doc['figures']['best_val_loss']:.4f} |" in card
    # what each head looks at, measured on the validation split at the end (issue 18): one line per head
    assert len(doc["heads"]) == 2 and doc["heads"][1].startswith("L0 h1: distance") and doc["heads"][1] in card


# ------------------------------------------------------------------ memory budget: micro-batches
def test_micro_batch_split_takes_the_fewest_passes_that_fit():
    from tinygpt_tui.engine.device import micro_batch_split

    assert micro_batch_split(64, 40, 10_000) == 1  # fits whole
    assert micro_batch_split(64, 40, 1_000) == 4  # 16 x 40 = 640 fits, 32 x 40 does not
    assert micro_batch_split(12, 40, 100) == 6  # divisors only: 2 sequences of 12
    assert micro_batch_split(7, 40, 10) == 7  # nothing fits: one sequence at a time


def test_activations_are_measured_per_sequence_and_leave_the_random_state_alone():
    import torch

    from tinygpt_tui.model import GPT, GPTConfig
    from tinygpt_tui.engine.device import activation_bytes_per_sequence

    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=30, block_size=64, n_layer=2, n_head=2, n_embd=32, dropout=0.1)).eval()
    state = torch.get_rng_state()
    short = activation_bytes_per_sequence(m, 32, torch.device("cpu"), "fp32")
    long = activation_bytes_per_sequence(m, 64, torch.device("cpu"), "fp32")
    assert torch.equal(torch.get_rng_state(), state) and not m.training
    # at least the two fp32 residual-stream inputs of each norm per token, and more for longer sequences
    assert short >= 2 * 2 * 32 * 32 * 4 and long > 1.9 * short


def test_a_batch_over_the_memory_budget_trains_in_micro_batches(small_corpus, tmp_path):
    events = list(train(cfg(small_corpus, tmp_path, max_steps=4, eval_interval=4, memory_budget=0.002, batch_size=16)))
    start = events[0]
    assert start.accum > 1 and start.micro_batch * start.accum == 16
    assert start.activation_mb <= 2.0 and events[-1].reason == "done"
    whole = list(train(cfg(small_corpus, tmp_path / "w", max_steps=1, memory_budget=0, batch_size=16)))[0]
    assert (whole.micro_batch, whole.accum, whole.activation_mb) == (16, 1, None)
    with pytest.raises(SettingsError, match="memory-budget"):
        list(train(cfg(small_corpus, tmp_path / "x", memory_budget=-1)))


def test_a_step_in_micro_batches_is_the_same_step():
    """The bench's (and the trainer's) split: the same gradients, so the same weights after a step."""
    import torch

    from bench import bench

    shape = bench.Shape("t", 2, 2, 32, 16, 8, 0.0)
    impl = next(iter(bench.TINYGPT_ARCHS))
    whole, split = bench.Trainer(impl, shape, torch.device("cpu")), bench.Trainer(impl, shape, torch.device("cpu"))
    whole.micro, split.micro = 8, 2
    for t in (whole, split):
        t.dtype = "fp32"
        t.step()
    for a, b in zip(whole.model.parameters(), split.model.parameters()):
        assert torch.allclose(a, b, atol=1e-5)


# ------------------------------------------------------------------ resume: the length given now; one "saved" per step
def test_resuming_a_run_at_its_step_limit_says_there_is_nothing_to_train(small_corpus, tmp_path):
    """It evaluated again and said "finished", as if it had trained (found in the app's Ctrl+R)."""
    list(train(cfg(small_corpus, tmp_path, max_steps=10, eval_interval=10, sample_chars=0)))
    saved = (tmp_path / "t" / ckpt.WEIGHTS).read_bytes()
    for steps in (None, 10, 8):
        with pytest.raises(SettingsError, match="is at step 10 of 10: nothing to train; resume with --max-steps above 10"
                           if steps != 8 else "is at step 10 of 8"):
            list(train(cfg(small_corpus, tmp_path, max_steps=steps, eval_interval=10, resume=True)))
    assert (tmp_path / "t" / ckpt.WEIGHTS).read_bytes() == saved  # nothing written
    assert list(train(cfg(small_corpus, tmp_path, max_steps=12, eval_interval=10, resume=True)))[-1].step == 12


def test_resume_with_steps_alone_drops_the_saved_time_limit(small_corpus, tmp_path):
    """`--resume --max-steps N` after a run with --minutes: the run's length is N steps, not the old minutes too.

    (The app's Resume with Steps set and Minutes blank is the same call.)"""
    import json

    first = list(train(cfg(small_corpus, tmp_path, max_steps=10, time_budget=3600.0, eval_interval=10)))
    assert first[0].time_budget == 3600.0 and first[-1].reason == "done"
    again = list(train(cfg(small_corpus, tmp_path, max_steps=20, eval_interval=10, resume=True)))
    assert (again[0].max_steps, again[0].time_budget) == (20, None)
    assert again[-1].reason == "done" and again[-1].step == 20
    assert json.loads((tmp_path / "t" / ckpt.CONFIG).read_text())["training"]["time_budget"] is None
    # minutes alone likewise replace the saved steps (minutes count from the run's start, as steps do)
    stop = threading.Event()
    timed = []
    for e in train(cfg(small_corpus, tmp_path, max_steps=None, time_budget=3600.0, eval_interval=10, resume=True), stop):
        timed.append(e)
        if e.kind == "step" and e.step >= 25:
            stop.set()
    assert (timed[0].max_steps, timed[0].time_budget) == (None, 3600.0) and timed[-1].reason == "stopped"
    # neither given: the saved length stands (a stopped run carries on to its end)
    stop.clear()
    rest = []
    for e in train(cfg(small_corpus, tmp_path, max_steps=None, eval_interval=10, resume=True), stop):
        rest.append(e)
        stop.set()  # (once started: a stop before the start ends a run with no events)
    assert (rest[0].max_steps, rest[0].time_budget) == (None, 3600.0)


def test_a_stop_waits_for_one_step_and_one_save(small_corpus, tmp_path):
    """Stopped: the step under way, then one save, said by a "stopping" event; no evaluation or sample starts."""
    stop = threading.Event()
    events, after = [], None
    for e in train(cfg(small_corpus, tmp_path, max_steps=1000, eval_interval=30, eval_iters=50, sample_chars=200), stop):
        events.append(e)
        if e.kind == "step" and e.step >= 40 and after is None:
            stop.set()
            after = len(events)
    assert [e.kind for e in events[after:]] == ["stopping", "saved", "finish"]
    assert (events[after].step, events[after].waiting_for) == (40, "saving")
    assert events[-1].reason == "stopped" and events[-1].step == 40 and events[-1].val_loss is None
    records, _ = ckpt.read_metrics(tmp_path / "t")
    saved = [r["step"] for r in records if r["event"] == "saved"]
    assert saved == [30, 40], saved
    assert ckpt.load_train_state(tmp_path / "t")[1]["step"] == 40
    figures = ckpt.load_model(tmp_path / "t").doc["figures"]
    assert figures["step"] == 40 and figures["val_loss_is"] == "estimate"
    # a stop during an evaluation: that evaluation draws no sample, and nothing follows its save
    stop.clear()
    events = []
    for e in train(cfg(small_corpus, tmp_path / "s", max_steps=1000, eval_interval=30, sample_chars=200, log_interval=30), stop):
        events.append(e)
        if e.kind == "step" and e.step == 30:
            stop.set()
    assert [e.kind for e in events[-3:]] == ["eval", "saved", "finish"] and events[-3].sample == ""
    # the final step a multiple of the evaluation interval: saved at its evaluation and again with the full
    # validation loss (kept on purpose), logged once
    list(train(cfg(small_corpus, tmp_path / "b", max_steps=60, eval_interval=30)))
    records, _ = ckpt.read_metrics(tmp_path / "b" / "t")
    assert [r["step"] for r in records if r["event"] == "saved"] == [30, 60]


def test_a_stop_that_comes_with_the_last_step_finishes_the_run(small_corpus, tmp_path):
    """A stop set as the last step was logged ended the run "stopped" at max_steps: no final evaluation, and a resume
    (an experiment's --resume) was refused with nothing to train, on every try. Every step taken is a finished run."""
    from tinygpt_tui.engine.runs import summarize

    stop = threading.Event()
    events = []
    for e in train(cfg(small_corpus, tmp_path, max_steps=20, eval_interval=30, log_interval=10), stop):
        events.append(e)
        if e.kind == "step" and e.step == 20:
            stop.set()
    assert events[-1].kind == "finish" and events[-1].reason == "done" and events[-1].val_loss is not None, events[-1]
    assert summarize(tmp_path / "t", "t").status == "finished"


def test_a_noisy_estimate_does_not_throw_away_better_last_weights(tmp_path):
    """One batch per estimate: the estimates' lowest is step 50, but over the whole validation split the last
    step's weights are better, and the folder keeps those (the existing test: an overfit run keeps its earlier best)."""
    import torch

    from tests.conftest import shakespeare_path
    from tinygpt_tui.data import Dataset
    from tinygpt_tui.engine.corpora import read_corpus
    from tinygpt_tui.engine.train import evaluate_split

    corpus = tmp_path / "c.txt"
    corpus.write_bytes(shakespeare_path().read_bytes()[:60000])
    events = list(train(cfg(corpus, tmp_path, eval_interval=10, eval_iters=1, sample_chars=0, dtype="fp32", seed=3)))
    evals = {e.step: e.val_loss for e in events if e.kind == "eval"}
    assert min(evals, key=evals.get) < 60, evals  # the premise: the estimates alone would keep an earlier step
    folder = tmp_path / "t"
    loaded = ckpt.load_model(folder)
    assert loaded.doc["figures"]["weights_step"] == 60 and ckpt.weights_step(folder, of=True) == 60
    data = Dataset(read_corpus(corpus), loaded.tokenizer, loaded.model.cfg.block_size)
    last = ckpt.build_model(loaded.model.cfg, ckpt.state_weights(ckpt.load_train_state(folder)[0]))
    whole = evaluate_split(last, data, "val", torch.device("cpu"))
    assert whole == pytest.approx(events[-1].val_loss, abs=1e-5) == pytest.approx(loaded.doc["figures"]["val_loss"], abs=1e-5)
    assert "the weights kept are step" not in (folder / "README.md").read_text()


def test_the_folder_keeps_the_best_evaluation_and_resume_goes_on_from_the_last_step(tmp_path):
    """A small corpus overfits: the validation loss turns up, and the folder keeps the weights of its lowest point
    (lower over the whole split, too, than the last step's)."""
    import torch

    from tests.conftest import shakespeare_path
    from tinygpt_tui.data import Dataset
    from tinygpt_tui.engine.corpora import read_corpus
    from tinygpt_tui.engine.train import evaluate_split

    corpus = tmp_path / "c.txt"
    corpus.write_bytes(shakespeare_path().read_bytes()[:2500])
    kw = dict(max_steps=100, eval_interval=10, sample_chars=0, dropout=0.0, lr=3e-3, min_lr_ratio=1.0, dtype="fp32")
    events = list(train(cfg(corpus, tmp_path, **kw)))
    evals = {e.step: e.val_loss for e in events if e.kind == "eval"}
    best = min(evals, key=evals.get)
    assert best < 100, evals  # the premise: the last evaluation is not the best
    folder = tmp_path / "t"
    assert ckpt.weights_step(folder, of=True) == best and ckpt.load_train_state(folder)[1]["step"] == 100
    loaded = ckpt.load_model(folder)
    figures = loaded.doc["figures"]
    assert (figures["step"], figures["weights_step"]) == (100, best) and figures["best_val_loss"] == pytest.approx(evals[best])
    # the full-split figure is the kept weights' (what `tinygpt eval` says of the folder)
    data = Dataset(read_corpus(corpus), loaded.tokenizer, loaded.model.cfg.block_size)
    assert evaluate_split(loaded.model, data, "val", torch.device("cpu")) == pytest.approx(events[-1].val_loss, abs=1e-5)
    assert figures["val_loss"] == pytest.approx(events[-1].val_loss)
    assert f"the weights kept are step {best}'s" in (folder / "README.md").read_text()
    # resumed, the run goes on from step 100 and still keeps the best of all its evaluations
    more = list(train(cfg(corpus, tmp_path, **{**kw, "max_steps": 120}, resume=True)))
    assert more[0].step == 100 and more[-1].step == 120
    evals.update({e.step: e.val_loss for e in more if e.kind == "eval"})
    assert ckpt.weights_step(folder, of=True) == min(evals, key=evals.get) and ckpt.load_train_state(folder)[1]["step"] == 120


def test_a_loss_that_becomes_non_finite_stops_the_run_before_it_is_saved(small_corpus, tmp_path):
    """Weights that overflow (finite, so loaded) give a NaN loss: one error line, and the last good checkpoint stays."""
    from safetensors.torch import load_file, save_file

    list(train(cfg(small_corpus, tmp_path, max_steps=4, eval_interval=4, eval_iters=1, sample_chars=0)))
    path = tmp_path / "t" / ckpt.STATE_TENSORS
    header = ckpt.read_safetensors_header(path)[1]
    tensors = {k: (v.clone().fill_(3e38) if k.startswith("model.") else v) for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path), metadata=header)
    with pytest.raises(TinyGPTError, match="diverged at step") as e:
        list(train(cfg(small_corpus, tmp_path, max_steps=8, eval_interval=4, eval_iters=1, sample_chars=0, resume=True)))
    assert "\n" not in str(e.value)
    assert ckpt.read_info(tmp_path / "t").ok and ckpt.load_model(tmp_path / "t").doc["figures"]["step"] == 4


def test_a_run_saved_before_the_schedule_was_a_choice_resumes_on_its_cosine(small_corpus, tmp_path):
    list(train(cfg(small_corpus, tmp_path, max_steps=4, eval_interval=4)))
    path = tmp_path / "t" / "config.json"
    doc = json.loads(path.read_text())
    assert doc["training"]["schedule"] == "cosine"
    del doc["training"]["schedule"], doc["training"]["cooldown"], doc["training"]["muon_weight_decay"]
    path.write_text(json.dumps(doc))
    events = list(train(cfg(small_corpus, tmp_path, max_steps=8, eval_interval=4, resume=True)))
    assert events[-1].kind == "finish" and events[-1].reason == "done" and events[-1].step == 8
    training = json.loads(path.read_text())["training"]
    assert training["schedule"] == "cosine" and training["muon_weight_decay"] == 0.0  # as it trained: no decay


def test_muon_weight_decay_shrinks_the_blocks_matrices_and_nothing_else():
    """With no gradient to follow, Muon's step only decays: each matrix inside the blocks shrinks by lr x wd;
    embeddings, norms and biases (AdamW's, its own decay 0 here) stay as they were."""
    import torch

    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.engine.presets import build_optimizer
    from tinygpt_tui.model import GPT

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    tc = TrainConfig(name="x", max_steps=1, lr=1e-3, muon_lr=0.02, muon_weight_decay=0.5, weight_decay=0.0).resolved()
    opt = build_optimizer(model, tc, "fp32")
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    decayed = [n for n, p in model.named_parameters() if n.startswith("blocks.") and p.dim() == 2]
    assert decayed
    for n, p in model.named_parameters():
        factor = 1 - 0.02 * 0.5 if n in decayed else 1.0
        assert torch.allclose(p.detach(), before[n] * factor, atol=1e-6), n
    assert TrainConfig(name="x", max_steps=1).resolved().muon_weight_decay == 0.0  # off unless a preset or option sets it
    with pytest.raises(SettingsError, match="muon-weight-decay"):
        TrainConfig(name="x", max_steps=1, muon_weight_decay=-1.0).resolved()


def test_a_run_measured_on_a_sample_of_a_big_split_says_so_not_the_whole_split(small_corpus, tmp_path):
    """Past MAX_EVAL_TOKENS the final loss is over an evenly spread sample: the end said 'whole validation split'."""
    from tinygpt_tui.cli.train import finish_line
    from tinygpt_tui.engine.train import MAX_EVAL_TOKENS

    text = small_corpus.read_text(encoding="utf-8")
    big = tmp_path / "big.txt"
    big.write_text(text * (10 * MAX_EVAL_TOKENS // len(text) + 1), encoding="utf-8")  # a validation split past it
    fin = list(train(cfg(big, tmp_path / "m", max_steps=2, eval_interval=2, eval_iters=1)))[-1]
    assert fin.val_loss is not None and "whole" not in finish_line(fin)
    assert f"{MAX_EVAL_TOKENS:,} tokens evenly spread" in finish_line(fin)
    small = list(train(cfg(small_corpus, tmp_path / "s", max_steps=2, eval_interval=2, eval_iters=1)))[-1]
    assert "(whole validation split)" in finish_line(small)
