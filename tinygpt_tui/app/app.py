"""The tinygpt app: `tinygpt` with no command.

Each screen keeps its state while another is on show: generate (the default), training and experiment
each in its own mode, and the runs screen pushed over whichever is on show (showing() names it).
Each screen owns its workers (listing and loading models, sampling, the inspector's passes).
The app owns only what outlives a screen: a training run, which keeps going while you generate.
Nothing here imports torch: the first screen paints from JSON and file headers alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import threading
import time
from pathlib import Path

from rich.text import Text
from textual import events, on, work
from textual.actions import SkipAction
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Static

from tinygpt_tui.app.messages import ExperimentEnded, ExperimentUpdate, ProbeNote, TrainingEnded, TrainingRecord, reported
from tinygpt_tui.engine.folder import default_models_dir
from tinygpt_tui.tokenizer import one_line, printable


class Confirm(ModalScreen[bool]):
    """A question with two answers: y (the yes button's words) or Escape."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel", id="confirm-cancel"),
                Binding("y", "dismiss(True)", "Yes", id="confirm-yes")]

    def __init__(self, title: str, question: str, yes: str):
        super().__init__()  # (no fixed id: a question may open over another, the quit one over a delete one)
        self.title_text, self.question, self.yes = title, question, yes

    def compose(self):
        with Vertical(id="confirm-box"):
            yield Static(Text.assemble((self.title_text, "bold"), "\n\n", self.question))
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.yes} (y)", id="confirm-yes", variant="error")
                yield Button("Cancel (Esc)", id="confirm-no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")


QUIT_TITLE = "Training is running"  # the question Ctrl+Q asks while a run or an experiment trains


# The palette's commands for the screens' actions: (title, help, mode, action on that screen)
SCREEN_COMMANDS = (
    ("Write a prompt", "Put the cursor in the prompt (Esc when nothing is being written)", "generate", "focus_prompt"),
    ("Stop generating", "Stop the text being written (Esc)", "generate", "stop"),
    ("Continue", "Generate more from where the text stopped (Ctrl+N)", "generate", "continue"),
    ("Clear output", "Clear the output pane (Ctrl+L)", "generate", "clear"),
    ("Toggle sidebar", "Show or hide the models and sampling settings (Ctrl+B)", "generate", "toggle_sidebar"),
    ("Sampling settings", "Edit temperature, top-k, top-p, length, seed (F6)", "generate", "focus_settings"),
    ("Copy output", "Copy the output pane to the clipboard (Ctrl+Y)", "generate", "copy_output"),
    ("Inspect", "Attention and next-character probabilities for the current text (F2)", "generate", "inspect"),
    ("Refresh models", "Re-read the models folder (F5)", "generate", "refresh_models"),
    ("Start training", "Start a run with the training form (Ctrl+S on the training screen)", "training", "start"),
    ("Stop training", "Stop the run, saving a checkpoint (Ctrl+O on the training screen)", "training", "stop_training"),
    ("Resume training", "Continue a stopped run named in the form (Ctrl+R on the training screen)", "training", "resume"),
    ("Follow a run", "Watch a run started elsewhere through its metrics.jsonl (Ctrl+L on the training screen)", "training", "follow"),
    ("Check all runs", "Draw every run on the runs screen's chart (a on the runs screen)", "runs", "check_all"),
    ("Check no runs", "Clear the runs screen's chart (n on the runs screen)", "runs", "check_none"),
    ("Runs x axis", "Steps, tokens or minutes along the runs chart (x on the runs screen)", "runs", "axis"),
    ("Generate with the highlighted run", "Its model, loaded on the generate screen (g on the runs screen)", "runs", "write"),
    ("Start experiment", "Start the lesson or grid in the form, or resume it (Ctrl+S on the experiment screen)", "experiment", "start"),
    ("Stop experiment", "Stop it; its finished members are kept (Ctrl+O on the experiment screen)", "experiment", "stop"),
    ("Experiment x axis", "Steps, tokens or minutes along the experiment's chart (F6 on the experiment screen)", "experiment", "axis"),
    ("Experiment samples", "The chart, or the members' samples side by side (F7 on the experiment screen)", "experiment", "samples"),
)


def _generate_screen():
    from tinygpt_tui.app.generate import GenerateScreen

    return GenerateScreen()


def _training_screen():
    from tinygpt_tui.app.training import TrainingScreen  # (its imports stay off the first paint)

    return TrainingScreen()


def _runs_screen():
    from tinygpt_tui.app.runs import RunsScreen

    return RunsScreen()


def _experiment_screen():
    from tinygpt_tui.app.experiment import ExperimentScreen

    return ExperimentScreen()


class TinyGPTApp(App):
    """Generate from tiny character-level GPTs and train new ones."""

    TITLE = "tinygpt"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses defined elsewhere still find it
    # the screens live for the whole session; each but the generate screen is built on first use
    SCREENS = {"generate": _generate_screen, "training": _training_screen, "runs": _runs_screen, "experiment": _experiment_screen}
    # The generate screen is the default screen, not a mode's: Textual opens a screen named in MODES
    # with a full restyle of the stylesheet (refresh_css), a third of the first screen's time here.
    # Its mode is added in on_mount (add_mode), so that switch_mode("generate") finds it; all public API.
    # The runs screen is no mode either: it is pushed over the screen on show (see action_show_runs).
    MODES = {"training": "training", "experiment": "experiment"}
    DEFAULT_MODE = "generate"

    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
        Binding("ctrl+g", "show_generate", "Generate", id="show-generate"),
        Binding("ctrl+t", "show_training", "Train", id="show-training"),
        # (in the footers of the screens with room for them: not the generate screen's at 80 columns)
        Binding("f3", "show_runs", "Runs", show=False, id="show-runs"),
        Binding("f4", "show_experiment", "Experiment", show=False, id="show-experiment"),
        # priority: done as the key is read; as an Input's own binding it runs after the keys typed
        # behind it in the same burst, and deletes them too
        Binding("ctrl+u", "edit('delete_left_all')", "Delete line", show=False, priority=True, id="delete-line"),
        Binding("ctrl+w", "edit('delete_left_word')", "Delete word", show=False, priority=True, id="delete-word"),
    ]

    def __init__(self, models_dir=None, watch_models: bool = True):
        super().__init__()
        self.models_dir = Path(models_dir) if models_dir else default_models_dir()
        self.watch_models = watch_models  # the generate screen re-reads the folder when it changes
        self.training = None  # jobs.TrainingJob: the run the app owns (one at a time)
        self.experiment = None  # jobs.ExperimentJob: a grid of runs, one after another
        self.quitting = False
        self.still_field = self.still_timer = None  # the field whose cursor stopped blinking; the one timer that stops it
        self.last_key = 0.0  # time.monotonic() of the last key, click, paste or focus

    def notify(self, message, *, markup: bool = False, **kw) -> None:
        """Every notification is plain text: messages quote names and files' contents, and as markup a stranger's
        config.json with format "[/]" killed the app (a widget's notify asks for markup unless told not to)."""
        super().notify(message, markup=False, **kw)

    def action_help_quit(self) -> None:
        """Ctrl+C, which quits most programs in a terminal: which key quits here. (Textual's own reminder is
        markup, "Press [b]ctrl+q[/b]", which the plain notifications above showed as typed.)"""
        key = next((k for k, b in self.active_bindings.items() if b.binding.action in ("quit", "app.quit")), None)
        if key is None:
            return
        key = "+".join(p.capitalize() if len(p) > 1 else p.upper() for p in key.split("+"))  # ctrl+q: Ctrl+Q
        job = self.training if self.training is not None and self.training.active else self.experiment
        then = f" (it asks first, then stops {one_line(job.name)} and saves it)" if job is not None and job.active else ""
        self.notify(f"Press {key} to quit the app{then}.", title="Do you want to quit?")

    def get_default_screen(self) -> Screen:
        return self.get_screen("generate")

    def watch_app_focus(self, focus: bool) -> None:
        """A browser page (tinygpt serve) starts the app unfocused, and Textual gives a screen its AUTO_FOCUS widget
        only while the app has focus: when the page takes it, that widget gets it, as in a terminal from the start."""
        screen = self.screen
        if focus and screen.focused is None and screen.AUTO_FOCUS:
            screen.set_focus(next((w for w in screen.query(screen.AUTO_FOCUS) if w.focusable), None))

    def on_ready(self) -> None:
        """The first frame is shown: the objects made to show it stay (gc.freeze keeps the collector
        off them), and the collector comes back on if start-up (__main__) turned it off."""
        gc.freeze()
        gc.enable()

    def check_action(self, action: str, parameters) -> bool | None:
        # the key for the screen you are on is left out of the footer
        if action == "show_generate":
            return self.current_mode != "generate" or len(self.screen_stack) > 1
        if action in ("show_training", "show_runs", "show_experiment"):
            return self.showing() != action.removeprefix("show_")
        return True

    def action_edit(self, what: str) -> None:
        if not isinstance(self.focused, Input):
            raise SkipAction()
        getattr(self.focused, f"action_{what}")()

    def showing(self) -> str:
        """The screen on show, by name: "runs" while the runs screen is open (over a mode's screen), else the mode's."""
        return "runs" if any(s.id == "runs" for s in self.screen_stack) else self.current_mode

    def close_runs(self) -> None:
        """Take the runs screen (and anything opened over it) off the stack it was pushed on."""
        while self.showing() == "runs":
            self.pop_screen()

    def action_show_generate(self) -> None:
        if self.showing() == "runs":
            self.close_runs()  # (back to what it was opened over: on the generate screen, the inspector too)
        elif self.current_mode == "generate":
            while len(self.screen_stack) > 1:
                self.pop_screen()
        if self.current_mode != "generate":
            self.switch_mode("generate")

    def action_show_training(self) -> None:
        self.close_runs()
        if self.current_mode != "training":
            self.switch_mode("training")

    def action_show_runs(self) -> None:
        """The runs screen, pushed over the screen on show rather than a mode of its own: Textual's first switch
        to a mode restyles every widget twice (refresh_css, reparsing the whole stylesheet each time: 85 ms of CPU
        of F3 then `a` to 40 curves drawn, 0.6 s on a Zen 3); a pushed screen's widgets are styled once, as they
        mount. It is installed (SCREENS), so closing it keeps its state, as a mode would."""
        if self.showing() != "runs":
            self.push_screen("runs")

    def action_show_experiment(self) -> None:
        self.close_runs()
        if self.current_mode != "experiment":
            self.switch_mode("experiment")

    # ------------------------------------------------------------ the text cursor
    # A field's cursor blinks for CURSOR_BLINK_S after a key, a click, a paste or a focus, then stays lit (as GTK's does,
    # after its cursor-blink-timeout of 10 s). Each blink is a frame: twice a second for good, they were most of what the
    # generate screen cost at rest, a prompt focused (1.4 s of CPU a minute, 0.2 s without; AMD EPYC Zen 3).
    CURSOR_BLINK_S = 10.0

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown, events.Paste)) and not event.is_forwarded:  # (from the terminal)
            self.blink_again()
        await super().on_event(event)

    def on_descendant_focus(self) -> None:
        self.blink_again()  # (a field focused by the app, not by a key or a click: its cursor blinks a while too)

    def blink_again(self) -> None:
        field, self.still_field = self.still_field, None
        if field is not None and field.has_focus:
            field.cursor_blink = True  # (its blink resumes)
        elif field is not None:  # blinking again once focused (set without its watcher, which would blink it unseen)
            field.set_reactive(type(field).cursor_blink, True)
        self.last_key = time.monotonic()  # (a key costs this and a resume: not a new timer, an asyncio task, each)
        if self.still_timer is None:  # ticks while a cursor may blink, CURSOR_BLINK_S to 1.2x that after the last key
            self.still_timer = self.set_interval(self.CURSOR_BLINK_S / 5, self.still_cursor)
        self.still_timer.resume()  # (Timer.reset restarts it only once its current wait is out: 10 to 20 s, not 10)

    def still_cursor(self) -> None:
        if time.monotonic() - self.last_key < self.CURSOR_BLINK_S:
            return
        self.still_timer.pause()  # (until the next key: still, there is nothing to time)
        field = self.focused
        if field is not None and getattr(field, "cursor_blink", False):  # (an Input: a widget with a blinking cursor)
            field.cursor_blink = False  # (drawn lit; its blink timer paused)
            self.still_field = field

    # ------------------------------------------------------------ training (owned by the app, not the screen)
    def start_training(self, cfg, resume: bool = False):
        """Start a run in a thread worker; its records come back as TrainingRecord messages."""
        from tinygpt_tui.app.training import TrainingJob

        job = self.training = TrainingJob(cfg, resume=resume)
        self._train(job)
        return job

    @work(thread=True, group="train", exit_on_error=False)
    def _train(self, job) -> None:
        try:
            state, error = job.run_thread(lambda rec: self.post_message(TrainingRecord(job, rec)))
        finally:
            job.thread_done.set()
        self.post_message(TrainingEnded(job, state, error))

    @on(TrainingRecord)
    @reported("training")
    def _training_record(self, message: TrainingRecord) -> None:
        if message.record.get("event") == "note":  # the machine probe's (engine/probe.settle): not a metrics record
            self._probe_note(ProbeNote(str(message.record["text"]), "training"))
        else:
            message.job.apply(message.record)

    @on(ProbeNote)
    def _probe_note(self, message: ProbeNote) -> None:
        """What the machine probe says while a run or an estimate waits for it (a first probe takes ten seconds or more)."""
        self.notify(printable(message.text.removeprefix("note: ")), title=message.title, timeout=10)

    @on(TrainingEnded)
    @reported("training")
    def _training_ended(self, message: TrainingEnded) -> None:
        job = message.job
        job.ended(message.state, message.error)
        if self.quitting:  # the run has saved: nothing else to wait for
            self.exit()
            return
        self.get_screen("generate").action_refresh_models(quiet=True)  # a new (or newer) model folder
        if job.state == "failed":
            self.notify(one_line(job.error), title=f"training {one_line(job.name)} failed", severity="error", timeout=10)
        else:
            self.notify(job.summary().plain, title="training finished" if job.state == "done" else "training stopped", timeout=8)

    # ------------------------------------------------------------ an experiment (owned by the app too)
    def start_experiment(self, plan, resume: bool = False):
        from tinygpt_tui.app.jobs import ExperimentJob

        job = self.experiment = ExperimentJob(plan, resume=resume)
        self._experiment(job)
        return job

    @work(thread=True, group="experiment", exit_on_error=False)
    def _experiment(self, job) -> None:
        try:
            state, error = job.run_thread(self.post_message)
        finally:
            job.thread_done.set()
        self.post_message(ExperimentEnded(job, state, error))

    @on(ExperimentUpdate)
    @reported("experiment")
    def _experiment_update(self, message: ExperimentUpdate) -> None:
        message.job.apply(message)

    @on(ExperimentEnded)
    @reported("experiment")
    def _experiment_ended(self, message: ExperimentEnded) -> None:
        job = message.job
        job.ended(message.state, message.error)
        if self.quitting:
            self.exit()
            return
        self.get_screen("generate").action_refresh_models(quiet=True)
        severity = "error" if job.state == "failed" else "information"
        self.notify(one_line(job.error) if job.error else f"{one_line(job.name)}: {job.state}", title=f"experiment {job.state}",
                    severity=severity, timeout=8)

    # ------------------------------------------------------------ quitting
    def on_mount(self) -> None:
        """The generate screen's mode, added once its default screen is up (see MODES). And SIGTERM (kill, a
        logout) and SIGHUP (the terminal or its tmux pane closed) quit as Ctrl+Q answered yes does: a run training
        stops and saves first. Unhandled, they ended the process at once and the run lost every step since its last
        checkpoint. (An ignored SIGHUP, as under nohup, stays ignored.)"""
        self.add_mode("generate", "generate")  # its stack is the default screen's (see MODES)
        ttys = [fd for fd in (0, 1, 2) if os.isatty(fd)]  # (asked now: a terminal hung up answers no)
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
                with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # (not the main thread; Windows)
                    asyncio.get_running_loop().add_signal_handler(sig, self.quit_on_signal, sig, ttys)

    def quit_on_signal(self, sig: int, ttys: list[int]) -> None:
        jobs = [j for j in (self.training, self.experiment) if j is not None and j.active]
        if sig != signal.SIGTERM:
            # The terminal is gone: what is still drawn goes nowhere instead of failing. Textual's writer may
            # already have died of the hung-up terminal, and its shutdown then waits on it for ever: the process
            # ends here once the runs have saved.
            null = os.open(os.devnull, os.O_RDWR)
            for fd in ttys:
                os.dup2(null, fd)
            os.close(null)

            def leave_once_saved() -> None:
                for j in jobs:
                    j.stop_event.set()
                    j.thread_done.wait()
                os._exit(0)

            threading.Thread(target=leave_once_saved, name="tinygpt-hangup", daemon=True).start()
        if not jobs:
            self.exit()
            return
        self.quitting = True  # (the run's end exits)
        for job in jobs:
            job.stop()
        self.notify("Saving a checkpoint, then quitting …", title="training", timeout=30)

    def on_unmount(self) -> None:
        for job in (self.training, self.experiment):  # however the app ends, a run still going stops (and saves)
            if job is not None and job.active:
                job.stop()

    async def action_quit(self) -> None:
        job = self.training if self.training is not None and self.training.active else self.experiment
        if job is None or not job.active:
            self.exit()  # (the screens stop their workers as they unmount)
            return
        if self.quitting or any(isinstance(s, Confirm) and s.title_text == QUIT_TITLE for s in self.screen_stack):
            return  # (Ctrl+Q again while it asks: the one question stays, and Esc answers it)

        def answer(yes: bool | None) -> None:
            if yes:
                self.quitting = True
                job.stop()
                self.notify("Saving a checkpoint, then quitting …", title="training", timeout=30)

        self.push_screen(Confirm(QUIT_TITLE, f"Stop {one_line(job.name)}, save a checkpoint at the current step, "
                                 "and quit?\n(You can resume it later.)", "Stop, save & quit"), answer)

    # ------------------------------------------------------------ command palette
    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        yield SystemCommand("Generate screen", "Pick a model and generate text (Ctrl+G)", self.action_show_generate)
        yield SystemCommand("Training screen", "Train a model with a live loss chart (Ctrl+T)", self.action_show_training)
        yield SystemCommand("Runs screen", "Compare runs: their loss curves on one chart and a table of figures (F3)", self.action_show_runs)
        yield SystemCommand("Experiment screen", "Run a shipped lesson or a grid of runs, ranked as they finish (F4)", self.action_show_experiment)
        for title, help_text, mode, action in SCREEN_COMMANDS:  # (the runs and experiment screens' own: on their screen)
            if mode in ("generate", "training") or mode == self.showing():
                yield SystemCommand(title, help_text, lambda m=mode, a=action: self.run_on(m, a))
        for info in getattr(self.get_screen("generate"), "infos", []):  # its models, on every screen (it loads them)
            if info.ok:
                yield SystemCommand(f"Load model: {one_line(info.name)}", f"{info.params:,} parameters, trained on {one_line(info.corpus or '?')}",
                                    lambda n=info.name: self.run_on("generate", f"pick_named({n!r})"))

    def run_on(self, mode: str, action: str) -> None:
        """Run one of a screen's actions from the palette: on its own screen, shown first."""
        getattr(self, f"action_show_{mode}")()
        self.call_after_refresh(self.run_action, f"screen.{action}")


# How often CPython asks the running thread to hand over the GIL (its default is 5 ms). The sampler
# thread decodes 50 ms of text per GIL-free call, then needs the GIL for a moment to post it; with the
# default it can wait up to 5 ms for the UI thread each time, about a tenth of its speed. Measured on
# an AMD EPYC Zen 3 with both cores free, `python -m bench.bench_app --skip first-screen`, three runs
# each: on screen vs `tinygpt generate` 0.87, 0.82, 0.90 at 5 ms; 1.00, 0.88, 1.00 at 0.5 ms. Set for
# the app's process only, where the UI and the sampler share it (docs/performance.md, streaming).
SWITCH_INTERVAL_S = 0.0005


def run_app(models_dir=None) -> int:
    """Open the app (what `tinygpt` with no command does); the exit status: not 0 if it crashed."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    app = TinyGPTApp(models_dir=models_dir)
    app.run()
    return app.return_code or 0
