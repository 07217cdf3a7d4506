"""Distributed training: torchrun starts two CPU processes (gloo) that train one model with DDP.

These launch real `torchrun` process groups, so the model is tiny and the runs short:
most of the time goes to starting Python and torch in three processes.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"

# a 1-layer, 32-wide model on 32-character windows: a step takes milliseconds on one thread
TINY = ["--preset", "tiny", "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--batch-size", "8",
        "--eval-iters", "4", "--sample-chars", "0", "--threads", "1", "--device", "cpu", "--jsonl"]


def make_corpus(tmp_path: Path) -> Path:
    """60 kB of Shakespeare when the shared corpora are there, else generated sentences."""
    path = tmp_path / "corpus.txt"
    if SHARED.is_file():
        path.write_bytes(SHARED.read_bytes()[:60_000].rsplit(b"\n", 1)[0])
    else:
        rng = random.Random(0)
        words = "the king and queen of a small town went to see their old friend who lived by the sea".split()
        path.write_text("\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))).capitalize() + "."
                                  for _ in range(1500)))
    return path


def torchrun(*args: str, **popen) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(ROOT / "train.py"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("TINYGPT_MODELS_DIR", None)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def records(folder: Path) -> list[dict]:
    from tinygpt_tui.engine.folder import read_metrics

    return read_metrics(folder)[0]


@pytest.mark.slow
def test_two_processes_train_one_model_and_a_single_process_resumes_it(tmp_path):
    import torch

    from tinygpt_tui.engine import folder as ckpt
    from tinygpt_tui.data import Dataset
    from tinygpt_tui.engine.corpora import read_corpus
    from tinygpt_tui.engine.distributed import param_digest
    from tinygpt_tui.engine.train import estimate_loss, evaluate_split
    from tinygpt_tui.engine.train import Finished, Started, TrainConfig, step_seed, train

    corpus, models = make_corpus(tmp_path), tmp_path / "models"
    p = torchrun(str(corpus), "--name", "duo", "--models-dir", str(models), "--max-steps", "30", "--eval-interval", "10", *TINY)
    out, err = p.communicate(timeout=240)
    assert p.returncode == 0, err[-3000:]  # torchrun exits 0 only when both ranks did
    assert "Traceback" not in err, err[-3000:]

    # only rank 0 prints and writes: one event stream, one model folder, one set of files
    printed = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["event"] for r in printed].count("start") == 1
    assert [d.name for d in models.iterdir()] == ["duo"]
    folder = models / "duo"
    assert {f.name for f in folder.iterdir()} - {ckpt.LOCK} == {
        ckpt.CONFIG, ckpt.WEIGHTS, ckpt.VOCAB, ckpt.METRICS, ckpt.CARD, ckpt.STATE_TENSORS}  # no temporary files left
    recs = records(folder)
    assert [r["event"] for r in recs].count("start") == 1 and [r["event"] for r in recs].count("finish") == 1
    assert recs[0]["world_size"] == 2
    saved_steps = [r["step"] for r in recs if r["event"] == "saved"]
    assert saved_steps == sorted(saved_steps) and saved_steps[-1] == 30
    doc = json.loads((folder / ckpt.CONFIG).read_text())
    assert doc["world_size"] == 2 and doc["figures"]["step"] == 30
    assert ckpt.weights_step(folder) == 30 and ckpt.load_train_state(folder)[1]["step"] == 30

    # both ranks ended with the same weights, and they are the ones saved
    finish = recs[-1]
    assert finish["event"] == "finish" and finish["reason"] == "done" and finish["step"] == 30
    loaded = ckpt.load_model(folder, device="cpu")
    assert len(finish["rank_digests"]) == 2
    assert finish["rank_digests"][0] == finish["rank_digests"][1] == param_digest(loaded.model)

    # the validation loss fell, from chance level through every evaluation
    evals = [r for r in recs if r["event"] == "eval"]
    assert [e["step"] for e in evals] == [10, 20, 30]
    vocab = loaded.tokenizer.vocab_size
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] < math.log(vocab)

    # the ranks shared out the evaluation, yet report what one process computes on the same weights
    data = Dataset(read_corpus(str(corpus)), loaded.tokenizer, loaded.model.cfg.block_size)
    es = step_seed(1337, 0, 30, 999)
    one = estimate_loss(loaded.model, data, "val", 4, 8, torch.device("cpu"), "fp32", es + 1)
    assert one == pytest.approx(evals[-1]["val_loss"], abs=1e-4)
    assert evaluate_split(loaded.model, data, "val", torch.device("cpu")) == pytest.approx(finish["val_loss"], abs=1e-4)

    # a single process resumes the distributed checkpoint and carries on counting
    events = list(train(TrainConfig(corpus=str(corpus), name="duo", models_dir=str(models), resume=True, max_steps=40)))
    start, end = events[0], events[-1]
    assert isinstance(start, Started) and start.resumed and start.step == 30 and start.world_size == 1
    assert isinstance(end, Finished) and end.step == 40 and end.reason == "done" and len(end.rank_digests) == 1
    assert json.loads((folder / ckpt.CONFIG).read_text())["figures"]["step"] == 40
    steps = [r["step"] for r in records(folder) if r["event"] == "step"]
    assert steps == [1, 10, 20, 30, 40]  # the first run's records kept, the resumed run's appended


@pytest.mark.slow
def test_sigterm_to_the_torchrun_group_saves_one_checkpoint_and_every_rank_exits(tmp_path):
    """What Slurm's scancel (or a timeout) does: SIGTERM to torchrun and every worker at once."""
    from tinygpt_tui.engine import folder as ckpt

    corpus, models = make_corpus(tmp_path), tmp_path / "models"
    p = torchrun(str(corpus), "--name", "stopme", "--models-dir", str(models), "--max-steps", "1000000",
                 "--eval-interval", "10", *TINY, start_new_session=True)
    folder = models / "stopme"
    try:
        deadline = time.monotonic() + 180
        while not any(r["event"] == "eval" for r in records(folder)):
            assert p.poll() is None, p.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the run never reached its first evaluation"
            time.sleep(0.2)
        os.killpg(p.pid, signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    # torchrun itself reports the signal (exit 1); the workers must have saved and left on their own, in time
    assert "forcefully exiting via" not in err, err[-3000:]
    assert "Ctrl+C again" in err  # rank 0 said it was stopping ...
    assert err.count("stopping: saving a checkpoint") == 1  # ... and only rank 0
    recs = records(folder)
    finish = recs[-1]
    assert finish["event"] == "finish" and finish["reason"] == "stopped", recs[-3:]
    assert finish["step"] >= 10 and finish["rank_digests"][0] == finish["rank_digests"][1]
    assert any(r["event"] == "saved" and r["step"] == finish["step"] for r in recs)
    # one consistent checkpoint at the step where the run stopped
    assert ckpt.weights_step(folder) == finish["step"]
    assert ckpt.load_train_state(folder)[1]["step"] == finish["step"]
    assert json.loads((folder / ckpt.CONFIG).read_text())["figures"]["step"] == finish["step"]
    ckpt.load_model(folder, device="cpu")
    # no process of the group is left (orphans are reaped by init; give it a moment)
    for _ in range(50):
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a worker outlived torchrun")


@pytest.mark.slow
def test_a_setup_error_is_reported_once_and_every_rank_exits(tmp_path):
    corpus, models = make_corpus(tmp_path), tmp_path / "models"
    (models / "taken").mkdir(parents=True)
    (models / "taken" / "config.json").write_text("{}")
    p = torchrun(str(corpus), "--name", "taken", "--models-dir", str(models), "--max-steps", "5", *TINY)
    out, err = p.communicate(timeout=180)
    assert p.returncode != 0
    assert err.count("already exists") == 1, err[-3000:]
    assert "tinygpt_tui" not in err, err[-3000:]  # no traceback from a worker (torchrun adds its own summary)
    assert "rank      : 0" in err  # rank 0 failed first: torchrun names it as the root cause


SIGNAL_SCRIPT = """
import os, signal, sys, threading
from tinygpt_tui.cli.train import install_stop_handlers
stop = threading.Event()
install_stop_handlers(stop, quiet=True, distributed={distributed})
os.kill(os.getpid(), signal.SIGTERM)  # a signal sent to itself is handled before the next line runs
os.kill(os.getpid(), signal.SIGINT)  # torchrun passing the same request on
print("still running, stop requested:", stop.is_set())
"""


@pytest.mark.parametrize("distributed", [True, False])
def test_a_signal_forwarded_by_torchrun_is_not_a_second_ctrl_c(distributed):
    r = subprocess.run([sys.executable, "-c", SIGNAL_SCRIPT.format(distributed=distributed)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    if distributed:
        # under torchrun the terminal's Ctrl+C and torchrun's copy of it are one request: save, then exit
        assert r.returncode == 0 and "stop requested: True" in r.stdout, r.stderr
    else:
        # alone, a second signal means "quit now without saving"
        assert r.returncode == 130 and "still running" not in r.stdout


def test_each_rank_picks_its_device_and_the_backend_follows_it(monkeypatch):
    """Without GPUs here, pretend there is one: the choices are made from what torch reports."""
    import torch
    import torch.distributed as td

    from tinygpt_tui.errors import SettingsError
    from tinygpt_tui.engine.distributed import DistInfo, dist_device
    from tinygpt_tui.cli.train import init_distributed

    chosen = []
    monkeypatch.setattr(td, "is_initialized", lambda: False)
    monkeypatch.setattr(td, "init_process_group", lambda backend, **kw: chosen.append((backend, kw.get("device_id"))))
    for k, v in dict(RANK="1", WORLD_SIZE="2", LOCAL_RANK="1").items():
        monkeypatch.setenv(k, v)

    # CPU runs use gloo, on a machine with GPUs too
    assert dist_device("cpu", DistInfo(1, 2, 1)) == torch.device("cpu")
    assert init_distributed("cpu") == DistInfo(1, 2, 1) and chosen[-1] == ("gloo", None)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert dist_device("cpu", DistInfo(1, 2, 1)) == torch.device("cpu")
    assert init_distributed("cpu").rank == 1 and chosen[-1] == ("gloo", None)
    # a second process on a one-GPU machine is told what to change, before it joins anything
    with pytest.raises(SettingsError, match="no GPU of its own.*--nproc_per_node=1"):
        dist_device("auto", DistInfo(1, 2, 1))
    with pytest.raises(SettingsError, match="rank 1: process 1 on this machine has no GPU"):
        init_distributed("auto")
    # rank 0 takes GPU 0 and NCCL
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: None)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert init_distributed("auto").is_main and chosen[-1] == ("nccl", torch.device("cuda", 0))
    assert len(chosen) == 3
