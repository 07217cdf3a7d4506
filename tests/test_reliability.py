"""Crash-safe training: SIGKILL at random moments, SIGTERM/SIGINT, --resume, full disk, read-only folder, one run per folder.

The kill test needs many short-lived `tinygpt train` processes. Starting each
one from scratch costs seconds of imports, so a small "zygote" process imports
tinygpt and torch once (running no torch op, so no thread pool exists yet) and
forks a fresh process per run: each child runs the real `tinygpt` entry point
(`tinygpt_tui.cli.main.run` with its own argv), is killed with a real signal, and
is reaped by the zygote, which reports its exit status.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from tinygpt_tui.engine import folder as ckpt
from tinygpt_tui.engine.files import expected_shapes
from tinygpt_tui.errors import CheckpointError, TinyGPTError

ROOT = Path(__file__).resolve().parents[1]

ZYGOTE = textwrap.dedent(
    r"""
    import json, os, signal, sys
    import numpy, safetensors, torch  # noqa: F401  (imported once; no torch op runs here)
    import tinygpt_tui.cli.main, tinygpt_tui.cli.train, tinygpt_tui.engine.train, tinygpt_tui.model  # noqa: F401
    import tinygpt_tui.sampler, tinygpt_tui.engine.device, rich.progress, safetensors.torch  # noqa: F401
    import torch.distributed, torch.optim, torch.nn.parallel, torch._dynamo  # noqa: F401  (AdamW imports dynamo)
    out = sys.stdout
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "run":
            pid = os.fork()
            if pid == 0:
                # as a run started from a terminal: the suite may run under nohup, whose ignored SIGHUP a run
                # leaves ignored
                signal.signal(signal.SIGHUP, signal.SIG_DFL)
                fd = os.open(cmd["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                os.close(fd)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                sys.stdin = open(0)
                sys.stdout = open(1, "w", buffering=1)
                sys.stderr = open(2, "w", buffering=1)
                os.environ.update(cmd.get("env", {}))
                sys.argv = ["tinygpt", *cmd["argv"]]
                code = 0
                try:
                    tinygpt_tui.cli.main.run()
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                except BaseException:
                    import traceback
                    traceback.print_exc()
                    code = 1
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
            out.write(json.dumps({"pid": pid}) + "\n")
        elif cmd["op"] == "poll":
            pid, status = os.waitpid(cmd["pid"], os.WNOHANG)
            if pid == 0:
                out.write(json.dumps({"running": True}) + "\n")
            else:
                sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
                code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
                out.write(json.dumps({"running": False, "signal": sig, "code": code}) + "\n")
        elif cmd["op"] == "wait":
            _, status = os.waitpid(cmd["pid"], 0)
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            out.write(json.dumps({"signal": sig, "code": code}) + "\n")
        out.flush()
    """
)


class Zygote:
    def __init__(self):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.live: set[int] = set()
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=ROOT, env=env)

    def _ask(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the zygote process died"
        return json.loads(line)

    def start(self, argv: list[str], log: Path) -> int:
        pid = self._ask(op="run", argv=[str(a) for a in argv], log=str(log))["pid"]
        self.live.add(pid)
        return pid

    def wait(self, pid: int) -> dict:
        st = self._ask(op="wait", pid=pid)
        self.live.discard(pid)
        return st

    def wait_until(self, pid: int, log: Path, condition, what: str, timeout: float = 90):
        """Wait until condition() holds; fail at once if the run ends first (polled: the run is another process)."""
        deadline = time.monotonic() + timeout
        while not condition():
            st = self._ask(op="poll", pid=pid)
            if not st["running"]:
                self.live.discard(pid)
                raise AssertionError(f"the run ended ({st}) before {what}:\n{text_of(log)[-2000:]}")
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)

    def wait_for_output(self, pid: int, log: Path, text: str, timeout: float = 90):
        """Wait until the run's output shows `text`."""
        self.wait_until(pid, log, lambda: text in text_of(log), f"printing {text!r}", timeout)

    def close(self):
        for pid in list(self.live):  # a failed test must not leave a training running
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait(pid)
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    yield z
    z.close()


def train_argv(corpus, models_dir, name, *extra):
    return ["train", str(corpus), "--name", name, "--models-dir", str(models_dir), "--preset", "tiny",
            "--n-layer", "1", "--n-embd", "32", "--block-size", "16", "--batch-size", "8",
            "--eval-interval", "5", "--eval-iters", "1", "--sample-chars", "0", "--threads", "1", "--jsonl", *extra]


def metrics_lines(folder: Path) -> list[str]:
    p = folder / ckpt.METRICS
    return p.read_text(encoding="utf-8").split("\n") if p.exists() else []


def text_of(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


# --------------------------------------------------------------------------- SIGKILL
@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_a_loadable_folder(zygote, small_corpus, tmp_path):
    """20 runs into one folder, each SIGKILLed at a random moment; the folder loads after every kill
    and each run resumes where the last complete checkpoint left off."""
    seed = int(os.environ.get("TINYGPT_KILL_SEED") or random.SystemRandom().randrange(2**32))
    print(f"kill moments drawn from seed {seed}; replay with TINYGPT_KILL_SEED={seed}")  # shown by pytest on failure
    models, name = tmp_path / "models", "killed"
    folder = models / name
    rng = random.Random(seed)
    last_step, kills, resumed_runs = -1, 0, 0
    for i in range(20):
        resume = (folder / ckpt.CONFIG).exists()
        argv = train_argv(small_corpus, models, name, "--max-steps", "100000", *(["--resume"] if resume else []))
        resumed_runs += resume
        log = tmp_path / f"run{i}.log"
        pid = zygote.start(argv, log)
        # Kill moments follow the run's own progress (a loaded machine shifts them with it): every 4th
        # run dies during set-up (at once, or as it starts training), the others right after
        # the n-th evaluation is printed (the save is running then) or the n-th save (steps run); the
        # first run only once it has saved.
        if i % 4 == 0 and i:
            if rng.random() < 0.5:
                zygote.wait_for_output(pid, log, '"event": "start"')
        else:
            event, n = rng.choice(['"event": "eval"', '"event": "saved"']), rng.randint(1, 3)
            n += i == 0 and event.endswith('eval"')
            zygote.wait_until(pid, log, lambda: text_of(log).count(event) >= n, f"{n} x {event}")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        status = zygote.wait(pid)
        output = text_of(log)  # (a run killed at once may not have opened its log yet)
        assert status["signal"] == signal.SIGKILL, f"run {i} ended by itself ({status}) instead of being killed:\n{output[-2000:]}"
        assert "Traceback" not in output
        kills += 1
        if not (folder / ckpt.CONFIG).exists():
            continue  # killed before its first checkpoint
        loaded = ckpt.load_model(folder)  # must never fail once a checkpoint exists
        assert loaded.model.cfg.n_embd == 32
        w_step = ckpt.weights_step(folder)
        tensors, meta = ckpt.load_train_state(folder)
        # The training state is one file and carries its own weights, so it is consistent whichever
        # rename the kill fell between; it is written first, so it is never behind the weights.
        own = ckpt.state_weights(tensors)
        assert own is not None and set(own) == set(expected_shapes(loaded.model.cfg)) - {"head.weight"}
        assert meta["step"] >= w_step, f"after kill {i}: weights at step {w_step}, training state at step {meta['step']}"
        assert meta["step"] - w_step <= 5, "weights more than one save behind the training state"
        if meta["step"] == w_step == ckpt.weights_step(folder, of=True):  # the weights file and the state's own copy: the same weights
            assert torch.equal(own["tok_emb.weight"], loaded.model.tok_emb.weight.detach())
        assert meta["step"] >= last_step, "a checkpoint went backwards"
        last_step = meta["step"]
        records, _ = ckpt.read_metrics(folder)  # complete lines only; a partial trailing line is tolerated
        assert all(isinstance(r, dict) and "event" in r for r in records)
        lines = metrics_lines(folder)
        for line in lines[:-1]:  # every line but a possibly cut last one parses
            json.loads(line)
    assert last_step >= 10 and resumed_runs >= 5, (last_step, resumed_runs)

    # a last run finishes normally from where the kills left it
    pid = zygote.start(train_argv(small_corpus, models, name, "--max-steps", str(last_step + 7), "--resume"), tmp_path / "final.log")
    status = zygote.wait(pid)
    out = (tmp_path / "final.log").read_text()
    assert status == {"signal": None, "code": 0}, out[-2000:]
    events = [e for e in (json.loads(l) for l in out.splitlines() if l.startswith("{")) if e["event"] != "prepare"]
    assert events[0]["event"] == "start" and events[0]["resumed"] and events[0]["step"] == last_step
    assert events[-1]["event"] == "finish" and events[-1]["step"] == last_step + 7
    # the loss curve in metrics.jsonl: every line whole, no step logged twice (killed stretches were rewound)
    lines = [l for l in metrics_lines(folder) if l]
    recs = [json.loads(l) for l in lines]
    steps = [r["step"] for r in recs if r["event"] == "step"]
    assert steps == sorted(set(steps)), steps
    assert ckpt.weights_step(folder) == last_step + 7
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")], "temporary files left behind"


# --------------------------------------------------------------------------- SIGTERM / SIGINT / SIGHUP (the terminal closed)
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_saves_and_exits_cleanly_then_resume_continues(zygote, small_corpus, tmp_path, sig):
    models, name = tmp_path / "models", "sig"
    folder = models / name
    log = tmp_path / "run.log"
    pid = zygote.start(train_argv(small_corpus, models, name, "--max-steps", "100000"), log)
    zygote.wait_for_output(pid, log, '"event": "step", "step": 10,')
    os.kill(pid, sig)
    status = zygote.wait(pid)
    out = log.read_text()
    # Stopping is a requested, successful outcome: the checkpoint is saved, so the exit code is 0 for both.
    assert status == {"signal": None, "code": 0}, out[-2000:]
    events = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    fin = events[-1]
    assert fin["event"] == "finish" and fin["reason"] == "stopped"
    stopped_at = fin["step"]
    assert stopped_at >= 10
    assert ckpt.weights_step(folder) == stopped_at  # the checkpoint is of the very last step (its weights, the best evaluation's)
    assert ckpt.load_train_state(folder)[1]["step"] == stopped_at
    ckpt.load_model(folder)

    log2 = tmp_path / "resume.log"
    pid = zygote.start(["train", "--name", name, "--models-dir", str(models), "--resume", "--max-steps", str(stopped_at + 12),
                        "--jsonl"], log2)  # the corpus comes from the checkpoint
    status = zygote.wait(pid)
    out2 = log2.read_text()
    assert status == {"signal": None, "code": 0}, out2[-2000:]
    ev2 = [e for e in (json.loads(l) for l in out2.splitlines() if l.startswith("{")) if e["event"] != "prepare"]
    assert ev2[0]["event"] == "start" and ev2[0]["resumed"] and ev2[0]["step"] == stopped_at
    logged = [e["step"] for e in ev2 if e["event"] == "step"]
    assert logged == [s for s in range(stopped_at + 1, stopped_at + 13) if s % 10 == 0]  # the step count goes on
    assert ev2[-1]["event"] == "finish" and ev2[-1]["step"] == stopped_at + 12


# --------------------------------------------------------------------------- resume == uninterrupted
def _tcfg(corpus, models, name, **kw):
    from tinygpt_tui.engine.train import TrainConfig

    base = dict(corpus=str(corpus), name=name, models_dir=str(models), preset="tiny", n_layer=1, n_embd=32, n_head=2,
                block_size=16, batch_size=8, dropout=0.1, max_steps=30, warmup_steps=5, eval_interval=5, eval_iters=2,
                log_interval=1, sample_chars=0, seed=7, device="cpu", dtype="fp32")
    base.update(kw)
    return TrainConfig(**base)


def _run(cfg, stop_at=None):
    from tinygpt_tui.engine.train import train

    stop = threading.Event()
    events = []
    for ev in train(cfg, stop):
        events.append(ev.record())
        if stop_at is not None and ev.kind == "step" and ev.step == stop_at:
            stop.set()
    return events


@pytest.mark.parametrize("optimizer", ["muon", "adamw"])
def test_resumed_run_matches_uninterrupted_run(small_corpus, tmp_path, optimizer):
    """Stopped at step 8 (as Ctrl+C does) and resumed to 20: the same steps, learning rates and losses
    as one uninterrupted run of 20 with the same seed (fp32, dropout on, so the RNG state matters too;
    Muon's momentum and AdamW's moments both travel in the checkpoint)."""
    import torch

    torch.set_num_threads(1)
    models = tmp_path / "models"
    full = _run(_tcfg(small_corpus, models, "full", max_steps=20, optimizer=optimizer))
    first = _run(_tcfg(small_corpus, models, "split", max_steps=20, optimizer=optimizer), stop_at=8)
    assert first[-1]["event"] == "finish" and first[-1]["reason"] == "stopped" and first[-1]["step"] == 8
    second = _run(_tcfg(small_corpus, models, "split", resume=True, max_steps=20))
    assert json.loads((models / "split" / ckpt.CONFIG).read_text())["training"]["optimizer"] == optimizer
    assert second[0]["event"] == "start" and second[0]["step"] == 8 and second[0]["resumed"]

    def steps(evs):
        return {e["step"]: e for e in evs if e["event"] == "step"}

    a, b = steps(full), steps(second)
    assert sorted(b) == list(range(9, 21))
    for s in range(9, 21):
        assert b[s]["lr"] == pytest.approx(a[s]["lr"], rel=1e-9), s
        assert b[s]["loss"] == pytest.approx(a[s]["loss"], abs=1e-4), (s, a[s]["loss"], b[s]["loss"])
        assert b[s]["tokens_seen"] == a[s]["tokens_seen"]
    # metrics.jsonl of the split run reads as one continuous curve equal to the full one
    recs, _ = ckpt.read_metrics(models / "split")
    curve = [(r["step"], r["loss"]) for r in recs if r["event"] == "step"]
    assert [s for s, _ in curve] == list(range(1, 21))
    full_curve = [(r["step"], r["loss"]) for r in ckpt.read_metrics(models / "full")[0] if r["event"] == "step"]
    assert [l for _, l in curve] == pytest.approx([l for _, l in full_curve], abs=1e-4)
    # and the final weights agree
    wa = ckpt.load_model(models / "full").model.state_dict()
    wb = ckpt.load_model(models / "split").model.state_dict()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-4), k


def test_a_save_cut_between_two_renames_still_resumes_exactly(small_corpus, tmp_path, monkeypatch):
    """A kill between the renames of one save (the training state already at step 10, the weights
    still at step 5): the folder loads, and --resume continues from the state's own weights, exactly
    as an uninterrupted run would (this once happened in CI under load)."""
    torch.set_num_threads(1)
    models = tmp_path / "models"
    full = _run(_tcfg(small_corpus, models, "full", max_steps=15))
    _run(_tcfg(small_corpus, models, "cut", max_steps=15), stop_at=5)
    real_replace, renamed = os.replace, []

    class Killed(BaseException):
        pass

    def replace_then_die(src, dst):
        if renamed:  # the second rename of the save never happens
            raise Killed
        real_replace(src, dst)
        renamed.append(Path(dst).name)

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(Killed):
        _run(_tcfg(small_corpus, models, "cut", resume=True, max_steps=15), stop_at=10)
    monkeypatch.undo()
    folder = models / "cut"
    assert renamed == [ckpt.STATE_TENSORS]
    assert ckpt.weights_step(folder) == 5 and ckpt.load_train_state(folder)[1]["step"] == 10
    ckpt.load_model(folder)  # the model itself is still the whole step-5 checkpoint
    for p in folder.glob(".*.tmp"):
        p.unlink()  # what the killed process would have left behind
    resumed = _run(_tcfg(small_corpus, models, "cut", resume=True, max_steps=15))
    assert resumed[0]["event"] == "start" and resumed[0]["step"] == 10
    a = {e["step"]: e["loss"] for e in full if e["event"] == "step"}
    b = {e["step"]: e["loss"] for e in resumed if e["event"] == "step"}
    assert sorted(b) == list(range(11, 16))
    assert [b[s] for s in b] == pytest.approx([a[s] for s in b], abs=1e-4)
    wa, wb = ckpt.load_model(models / "full").model.state_dict(), ckpt.load_model(folder).model.state_dict()
    assert all(torch.allclose(wa[k], wb[k], atol=1e-4) for k in wa)


def test_a_tampered_training_state_is_refused_with_one_line(small_corpus, tmp_path):
    from safetensors.torch import load_file, save_file

    models = tmp_path / "models"
    _run(_tcfg(small_corpus, models, "t", max_steps=5))
    path = models / "t" / ckpt.STATE_TENSORS
    tensors = load_file(str(path))
    cases = {
        "no meta": (tensors, {}),
        "meta not JSON": (tensors, {"meta": "{step: 5"}),
        "step not a number": (tensors, {"meta": json.dumps({"step": "5"})}),
        "no weights": ({k: v for k, v in tensors.items() if not k.startswith("model.")}, {"meta": json.dumps({"step": 5})}),
        "weights of another shape": ({**tensors, "model.tok_emb.weight": torch.zeros(3, 7)}, {"meta": json.dumps({"step": 5, "param_groups": [], "scalars": {}})}),
    }
    for what, (t, meta) in cases.items():
        save_file(t, str(path), metadata=meta)
        with pytest.raises(CheckpointError) as e:
            _run(_tcfg(small_corpus, models, "t", resume=True, max_steps=10))
        assert "\n" not in str(e.value) and ("training state" in str(e.value) or "train_state" in str(e.value)), (what, str(e.value))
    ckpt.load_model(models / "t")  # the model itself is untouched


def test_metrics_with_a_cut_last_line_resume_cleanly(small_corpus, tmp_path):
    """A SIGKILL in the middle of appending metrics leaves half a line; the resumed run must not glue
    its first record onto it (that record would be lost)."""
    models = tmp_path / "models"
    _run(_tcfg(small_corpus, models, "cut", max_steps=10))
    folder = models / "cut"
    with open(folder / ckpt.METRICS, "a", encoding="utf-8") as f:
        f.write('{"event": "step", "step": 11, "lo')  # what a kill mid-write leaves
    evs = _run(_tcfg(small_corpus, models, "cut", max_steps=14, resume=True))
    lines = [l for l in metrics_lines(folder) if l]
    recs = [json.loads(l) for l in lines]  # every line whole
    starts = [r for r in recs if r["event"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed"]
    assert [r["step"] for r in recs if r["event"] == "step"] == list(range(1, 15))
    assert evs[-1]["step"] == 14


def test_a_run_stopped_before_its_first_step_saves_nothing(small_corpus, tmp_path):
    """The app's Stop pressed while a run said "preparing" (its threads measured, its model built) on a corpus
    prepared already was told "nothing is trained or saved", and the run then saved a model at step 0."""
    from tinygpt_tui.engine.prepare import prepare, run_to_end
    from tinygpt_tui.engine.train import train
    from tinygpt_tui.tokenizer import CharTokenizer

    run_to_end(prepare(str(small_corpus), lambda source: CharTokenizer(source.charset)))  # prepared and checked: no events left
    models, stop = tmp_path / "models", threading.Event()
    stop.set()
    assert [ev.record()["event"] for ev in train(_tcfg(small_corpus, models, "m"), stop, preparation=True)] == []
    assert not (models / "m").exists()
    _run(_tcfg(small_corpus, models, "r", max_steps=5))  # a resumed one likewise: its checkpoint as it was
    before = {p.name: p.read_bytes() for p in (models / "r").iterdir() if p.is_file()}
    assert list(train(_tcfg(small_corpus, models, "r", resume=True, max_steps=10), stop)) == []
    assert {p.name: p.read_bytes() for p in (models / "r").iterdir() if p.is_file()} == before


def test_a_resumed_run_holds_no_mapping_of_the_state_it_read(small_corpus, tmp_path):
    """The training state read for --resume is copied, not mapped: the optimizer kept views of the file's
    mapping for the whole run, which held the file's disk blocks after a save renamed over it, so a
    resumed run on a nearly full disk failed at its second save where a fresh one saved fine."""
    from tinygpt_tui.engine.train import train

    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs /proc/self/maps")
    models = tmp_path / "models"
    _run(_tcfg(small_corpus, models, "m", max_steps=5))
    state = str((models / "m" / ckpt.STATE_TENSORS).resolve())
    held = []
    for ev in train(_tcfg(small_corpus, models, "m", resume=True, max_steps=15), threading.Event()):
        if ev.kind == "saved":
            held += [line for line in maps.read_text().splitlines() if state in line]
    assert held == []


# --------------------------------------------------------------------------- full disk, read-only folder
def _enospc_after(monkeypatch, allowed: int):
    """os.fsync fails with ENOSPC after `allowed` calls (a disk that fills up during training)."""
    real = os.fsync
    calls = {"n": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > allowed:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def _one_error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def test_full_disk_gives_one_line_error_and_keeps_the_previous_checkpoint(small_corpus, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tinygpt_tui.cli.main import app

    models = tmp_path / "models"
    folder = models / "full"
    calls = {"saves": 0}
    real_save = ckpt.save_model

    def save_then_fill_disk(*a, **kw):
        real_save(*a, **kw)
        calls["saves"] += 1
        if calls["saves"] == 1:
            _enospc_after(monkeypatch, 0)  # the disk is full from now on

    monkeypatch.setattr(ckpt, "save_model", save_then_fill_disk)
    argv = train_argv(small_corpus, models, "full", "--max-steps", "40")
    result = CliRunner().invoke(app, argv)
    line = _one_error_line(result)
    assert "No space left on device" in line and ("train_state.safetensors" in line or "model.safetensors" in line)
    monkeypatch.undo()
    # the step-5 checkpoint is whole and loadable, no temporary file is left, and training can resume
    assert ckpt.weights_step(folder) == 5 and ckpt.load_train_state(folder)[1]["step"] == 5
    ckpt.load_model(folder)
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    evs = _run(_tcfg(small_corpus, models, "full", resume=True, max_steps=8))
    assert evs[0]["step"] == 5 and evs[-1]["step"] == 8


def _deny_writes_under(monkeypatch, folder: Path, err=errno.EROFS):
    """Writes (new files, renames) under `folder` fail as on a read-only file system.

    chmod alone can't test this when the tests run as root (root ignores permissions),
    so file creation and renames under the folder are refused the way the kernel would."""
    import builtins

    folder = str(Path(folder).resolve())
    real_open, real_os_open, real_replace, real_mkdir = builtins.open, os.open, os.replace, os.mkdir

    def inside(p) -> bool:
        try:
            return str(Path(os.fsdecode(p)).resolve()).startswith(folder)
        except (TypeError, ValueError):
            return False

    def deny(p):
        raise OSError(err, os.strerror(err), os.fsdecode(p))

    def os_open(path, flags, *a, **kw):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            deny(path)
        return real_os_open(path, flags, *a, **kw)

    def b_open(file, mode="r", *a, **kw):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and inside(file):
            deny(file)
        return real_open(file, mode, *a, **kw)

    def replace(src, dst, *a, **kw):
        if inside(dst):
            deny(dst)
        return real_replace(src, dst, *a, **kw)

    def mkdir(path, *a, **kw):
        if inside(path):
            deny(path)
        return real_mkdir(path, *a, **kw)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(builtins, "open", b_open)
    monkeypatch.setattr(os, "replace", replace)


def test_read_only_models_folder_gives_one_line_error_and_keeps_the_checkpoint(small_corpus, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tinygpt_tui.cli.main import app

    models = tmp_path / "models"
    folder = models / "ro"
    _run(_tcfg(small_corpus, models, "ro", max_steps=6))
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    os.chmod(folder, 0o555)
    os.chmod(models, 0o555)
    try:
        if os.geteuid() == 0:
            _deny_writes_under(monkeypatch, models)
        runner = CliRunner()
        # resuming into the read-only folder
        line = _one_error_line(runner.invoke(app, train_argv(small_corpus, models, "ro", "--max-steps", "12", "--resume")))
        assert "ro" in line and ("Read-only" in line or "Permission denied" in line), line
        # a new model in the read-only models directory
        line = _one_error_line(runner.invoke(app, train_argv(small_corpus, models, "new", "--max-steps", "12")))
        assert "Read-only" in line or "Permission denied" in line, line
        # a failure at save time (the folder turned read-only during the run) is also one clear line
        monkeypatch.undo()
        os.chmod(folder, 0o755)
        os.chmod(models, 0o755)
        real_save = ckpt.save_model
        calls = {"saves": 0}

        def save_then_lock_folder(*a, **kw):
            real_save(*a, **kw)
            calls["saves"] += 1
            if calls["saves"] == 1:
                _deny_writes_under(monkeypatch, folder, errno.EACCES)

        monkeypatch.setattr(ckpt, "save_model", save_then_lock_folder)
        with pytest.raises(CheckpointError, match="Permission denied"):
            _run(_tcfg(small_corpus, models, "ro", resume=True, max_steps=40))
        monkeypatch.undo()
    finally:
        monkeypatch.undo()
        os.chmod(models, 0o755)
        os.chmod(folder, 0o755)
    # the checkpoint written before is byte-for-byte what it was, except the later save at step 10
    assert ckpt.weights_step(folder) == 10 and ckpt.load_train_state(folder)[1]["step"] == 10
    ckpt.load_model(folder)
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert set(before) <= {p.name for p in folder.iterdir()}


# --------------------------------------------------------------------------- one run per folder
@pytest.mark.slow
def test_two_trainings_into_one_folder_are_never_interleaved(zygote, small_corpus, tmp_path):
    models, name = tmp_path / "models", "shared"
    folder = models / name
    log_a = tmp_path / "a.log"
    pid_a = zygote.start(train_argv(small_corpus, models, name, "--max-steps", "100000"), log_a)
    zygote.wait_for_output(pid_a, log_a, '"event": "saved"')
    # a second fresh run, and a resume of the same folder, while the first one runs
    for extra in ([], ["--resume"]):
        log_b = tmp_path / f"b{len(extra)}.log"
        pid_b = zygote.start(train_argv(small_corpus, models, name, "--max-steps", "100000", *extra), log_b)
        st = zygote.wait(pid_b)
        out = log_b.read_text()
        assert st == {"signal": None, "code": 2}, out
        err = [l for l in out.splitlines() if l.startswith("error:")]
        assert len(err) == 1 and "Traceback" not in out, out
        if extra:
            assert "being trained by another process" in err[0] and str(pid_a) in err[0], err[0]
    # the in-process API refuses too (the app trains in a thread)
    with pytest.raises(TinyGPTError, match="being trained by another process"):
        _run(_tcfg(small_corpus, models, name, resume=True, max_steps=100000))
    os.kill(pid_a, signal.SIGTERM)
    assert zygote.wait(pid_a) == {"signal": None, "code": 0}
    # the lock went with the process: resuming now works
    evs = _run(_tcfg(small_corpus, models, name, resume=True, max_steps=ckpt.weights_step(folder) + 2))
    assert evs[-1]["event"] == "finish" and evs[-1]["reason"] == "done"
    # and the lock is released when a run ends, so the same process can train it again
    evs = _run(_tcfg(small_corpus, models, name, resume=True, max_steps=ckpt.weights_step(folder) + 2))
    assert evs[-1]["reason"] == "done"
