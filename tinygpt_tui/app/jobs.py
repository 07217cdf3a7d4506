"""The work the app owns, which outlives the screen that started it: a training run (TrainingJob) and an
experiment (ExperimentJob). A job's thread only posts what happens (records, events); the job changes on
Textual's thread, in apply and ended. The training screen and the experiment screen show them.
"""

from __future__ import annotations

import time
from pathlib import Path
from threading import Event

from rich.text import Text

from tinygpt_tui.app.bars import Part, fit_line
from tinygpt_tui.app.messages import ExperimentUpdate, ProbeNote, error_line
from tinygpt_tui.app.progress import RESUME_KEY, RunState, name_taken, preparation
from tinygpt_tui.errors import TinyGPTError
from tinygpt_tui.tokenizer import one_line


def form_words(message: str) -> str:
    """An engine error in the training form's words where they differ from the command line's options
    (the context field for --block-size, the tokens field's BPE for --vocab-size, Name for --name)."""
    import re

    message = message.replace("a smaller --block-size", "a smaller context (under Custom hyperparameters)")
    message = re.sub(r"use --vocab-size ([\d,]+) or less", r"pick a BPE of at most \1 tokens (under Custom hyperparameters)", message)
    message = message.replace("train under another --name", "train under another name")  # (a run of that name elsewhere)
    return message.replace("--vocab-size ", "BPE ")


class Job:
    """Work the app owns (it outlives the screen that started it): a training run or an experiment. Its
    thread only posts what happens; the state changes on Textual's thread: starting, running, stopping,
    then how it ended (the subclass's words)."""

    def __init__(self, name: str, resume: bool = False):
        self.name, self.resume = name, resume
        self.stop_event = Event()  # set: the thread stops at its next step, after a save
        self.thread_done = Event()  # set by its thread as it ends (its last save made), for a process ending without Textual
        self.state = "starting"
        self.error = ""

    @property
    def active(self) -> bool:
        return self.state in ("starting", "running", "stopping")

    def stop(self) -> None:
        if self.active:
            self.stop_event.set()
            self.state = "stopping"


class TrainingJob(Job):
    """A training run owned by the app. Its thread (run_thread) only posts records; apply and ended run
    on Textual's thread, so the state and the RunState change in one place. It ends done, stopped or failed."""

    def __init__(self, cfg, resume: bool = False):
        super().__init__(cfg.name, resume)
        self.cfg = cfg
        self.folder: Path | None = None
        self.run = RunState()

    def history(self) -> list[dict]:
        """A resumed run's earlier records (its metrics.jsonl before this session's start), for the chart."""
        from tinygpt_tui.engine.folder import default_models_dir, read_metrics

        folder = (Path(self.cfg.models_dir) if self.cfg.models_dir else default_models_dir()) / self.name
        try:
            records, _ = read_metrics(folder)
        except OSError:
            return []
        starts = [i for i, r in enumerate(records) if r.get("event") == "start"]
        return records[: starts[-1]] if starts else []  # the last start is this session's (written before it is yielded)

    def run_thread(self, post) -> tuple[str, str]:
        """(worker thread) Train, passing each record to post; returns (state, error) at the end."""
        from tinygpt_tui.engine.probe import settle
        from tinygpt_tui.engine.train import NameTaken, NothingToTrain, train

        first = True
        try:
            # on a CPU: the precision, threads and --minutes preset measured here (a first probe takes seconds: said)
            self.cfg = settle(self.cfg, note=lambda text: post({"event": "note", "text": text}))
            from tinygpt_tui.engine.corpora import corpus_notes

            for text in corpus_notes(self.cfg.corpus):  # (what the command line says first: a folder's files, an HTML page)
                post({"event": "note", "text": text})
            for ev in train(self.cfg, self.stop_event, preparation=True):
                rec = ev.record()
                rec["time"] = round(time.time(), 3)
                if first and rec["event"] == "start" and rec.get("resumed"):
                    for old in self.history():
                        post(old)
                first = first and rec["event"] == "prepare"  # (a corpus's preparation comes before the start)
                post(rec)
            return ("stopped" if self.stop_event.is_set() else "done"), ""
        except NameTaken as e:  # the screen checks first; this is a folder made in between
            return "failed", name_taken(e.name, e.models_dir, RESUME_KEY)
        except NothingToTrain as e:
            return "failed", f"{e.name} is at step {e.step:,} of {e.limit:,}: nothing to train; set Steps above {e.step:,} to train more"
        except TinyGPTError as e:
            return "failed", form_words(str(e))
        except MemoryError:
            return "failed", "out of memory: try a smaller model or batch"
        except Exception as e:  # never a traceback in the UI; one line that says what broke
            return "failed", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]

    def apply(self, rec: dict) -> None:
        self.run.apply(rec)
        if rec.get("event") == "start" and self.state == "starting":
            self.state = "running"
        elif rec.get("event") == "finish":
            self.folder = Path(rec["path"]) if rec.get("path") else None

    def ended(self, state: str, error: str) -> None:
        if state != "failed" and self.run.finish:  # the run's own word on how it ended
            state = "stopped" if self.run.finish.get("reason") == "stopped" else "done"
        self.state, self.error = state, error

    def summary(self) -> Text:
        """The run in a sentence (the notification when it ends)."""
        return fit_line(self.status_parts(), 10_000)

    def status_parts(self, rank: int = 0) -> list[Part]:
        """The run on the generate screen's status line: its name and state kept longest (from rank on)."""
        r, name = self.run, one_line(self.name)
        if self.state == "failed":
            return [Part(f"training failed: {one_line(self.error)[:120]}", rank, "bold red", "training failed")]
        if not self.active and not r.start and self.state == "stopped":
            return [Part(f"{name} stopped while preparing its corpus: nothing trained, nothing saved", rank, "bold", f"{name} stopped")]
        if not self.active:
            vl = r.full_val_loss  # (kept: the run's result; "trained X" beside the loaded model read as if X were the loaded one)
            return [Part(f"run {name} {self.state} at step {r.step:,}", rank, "bold", f"run {name} {self.state}"),
                    *([Part(f"val {vl:.3f}", rank + 1)] if vl is not None else [])]
        if not r.start:  # (starting, or stopping before it started)
            prep = preparation(r)
            doing = f"{prep[1][0].short}{'' if prep[0] is None else f' {prep[0]:.0%}'}" if prep else "preparing …"
            return [Part(f"training {name}", rank, "bold magenta"), Part(doing, rank + 1, short="preparing …"),
                    *([Part("stopping …", rank + 1, "yellow")] if self.state == "stopping" else [])]
        done = Part(f"{r.progress:.0%}", rank + 4)
        if r.measuring_note:  # (its steps done, 100% for seconds, a minute for a big corpus)
            done = Part("measuring the validation split …", rank + 2, short="measuring …")
        return [Part(f"training {name}", rank, "bold magenta"), Part(f"step {r.step:,}", rank + 1), done,
                *([Part(f"loss {r.losses[-1]:.3f}", rank + 3)] if r.losses else []),
                *([Part("saving …", rank + 1, "yellow")] if self.state == "stopping" else [])]


class ExperimentJob(Job):
    """An experiment run by the app. run_thread (a worker thread) posts events; apply and ended run on
    Textual's thread, so the job's state changes in one place. It ends finished, stopped or failed."""

    def __init__(self, plan, resume: bool = False):
        from tinygpt_tui.engine.experiment import member_states

        super().__init__(plan.spec.name, resume)
        self.plan = plan
        old = member_states(plan) if resume else {}
        states = {m.name: old.get(m.name, {}).get("state", "queued") for m in plan.members}
        # (one the manifest says is running is not: the process running it was killed before it could say)
        self.members = {name: "stopped" if st == "running" else st for name, st in states.items()}
        self.curves: dict = {}  # member: engine.runs.Curves (finished members read from their folder, the running one live)
        self.running: str | None = None
        self.live = RunState()  # the member under way's records: its corpus's preparation, until it starts
        self.rows: list = []  # engine.experiment.Row, ranked
        self.samples: list = []  # (member, text)
        self.version = 0  # changes with every update (the screen redraws when it does)

    def run_thread(self, post) -> tuple[str, str]:
        """(worker thread) Run the plan, posting each event; returns (state, error)."""
        from tinygpt_tui.engine import experiment as E
        from tinygpt_tui.engine.runs import Curves

        ended = None
        try:
            # the probe's notes (a first one measures this machine for ten seconds or more before a member starts)
            for ev in E.run(self.plan, self.stop_event, self.resume, note=ProbeNote.poster(post, "experiment")):
                if isinstance(ev, E.MemberEvent):  # (a preparation's pace is measured from the records' times)
                    post(ExperimentUpdate(self, ev, record={**ev.event.record(), "time": round(time.time(), 3)}))
                elif isinstance(ev, E.MemberStarted):  # a resumed member's earlier records come with it
                    post(ExperimentUpdate(self, ev, curves=Curves(self.plan.folder / ev.name)))
                elif isinstance(ev, E.MemberEnded):
                    post(ExperimentUpdate(self, ev, curves=Curves(self.plan.folder / ev.name), rows=E.results(self.plan)))
                elif isinstance(ev, E.Ended):
                    ended = ev
            samples = E.samples(self.plan) if ended and ended.state != "stopped" else []
            post(ExperimentUpdate(self, None, rows=E.results(self.plan), samples=samples))
            return (ended.state if ended else "stopped"), ""
        except TinyGPTError as e:
            return "failed", str(e)
        except Exception as e:  # noqa: BLE001 (never a traceback on screen)
            return "failed", error_line(e)

    def apply(self, m: ExperimentUpdate) -> None:
        from tinygpt_tui.engine import experiment as E

        ev = m.event
        if isinstance(ev, E.MemberStarted):
            self.state = "running" if self.state == "starting" else self.state
            self.running, self.members[ev.name], self.live = ev.name, "running", RunState()
        elif isinstance(ev, E.MemberEnded):
            self.members[ev.name] = ev.state
            self.running = None if self.running == ev.name else self.running
            if ev.state == "failed":
                self.error = f"{ev.name}: {ev.error}"
        if m.curves is not None:
            self.curves[ev.name] = m.curves
        if m.record is not None and ev.name in self.curves:
            self.curves[ev.name].apply(m.record)
        if m.record is not None and m.record.get("event") in ("prepare", "start"):
            self.live.apply(m.record)
        if m.rows is not None:
            self.rows = m.rows
        if m.samples:
            self.samples = m.samples
        self.version += 1

    @property
    def preparing(self) -> bool:
        """Whether the member under way is preparing its corpus (stopped now, it saves nothing)."""
        return self.running is not None and not self.live.start

    def ended(self, state: str, error: str) -> None:
        self.state, self.error, self.running = state, error or self.error, None
        for name, st in self.members.items():
            if st == "running":
                self.members[name] = "stopped"
        self.version += 1
