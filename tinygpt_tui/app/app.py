"""The tinygpt app: `tinygpt` with no command.

Nothing here imports torch: the first screen paints from JSON and file
headers alone. Torch loads in a worker thread right after the first paint
(so picking a model is quick), and inside the workers that load, sample and
train.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tinygpt_tui.engine.folder import SYNC_LISTING, default_models_dir, folder_signature

MODELS_POLL_S = 2.0
SYNC_LISTING_S = 0.15  # a folder of up to SYNC_LISTING entries that takes longer than this to read (a network drive, huge files)
FIRST_FRAME_WAIT_S = 3.0  # if no frame is seen written by then, what waits for the first frame runs anyway


class ConfirmQuit(ModalScreen[bool]):
    """Training is running: stop (saving a checkpoint) and quit, or stay."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel"), Binding("y", "dismiss(True)", "Stop & quit")]
    CSS_PATH = Path(__file__).with_name("training.tcss")

    def __init__(self, name: str):
        super().__init__(id="confirm-quit")
        self.run_name = name

    def compose(self):
        from rich.text import Text

        from tinygpt_tui.tokenizer import printable

        with Vertical(id="confirm-box"):
            yield Static(Text.assemble(("Training is running", "bold"), "\n\n", f"Stop {printable(self.run_name)}, save a checkpoint at the current step, and quit?\n(You can resume it later.)"))
            with Horizontal(id="confirm-buttons"):
                yield Button("Stop, save & quit (y)", id="confirm-yes", variant="error")
                yield Button("Cancel (Esc)", id="confirm-no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")


class TinyGPTApp(App):
    """Generate from tiny character-level GPTs and train new ones."""

    TITLE = "tinygpt"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses defined elsewhere still find it
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
        Binding("ctrl+g", "show_generate", "Generate", id="show-generate"),
        Binding("ctrl+t", "show_training", "Train", id="show-training"),
        Binding("f5", "refresh_models", "Refresh models", show=False, id="refresh-models"),
    ]

    def __init__(self, models_dir=None, watch_models: bool = True, warm_torch: bool = True, sampler_process: bool = True,
                 launch=None):
        # launch: the launch screen (launch_screen.LaunchScreen) shown before Textual was imported;
        # the app keeps its first frame for the next start
        self.launch = launch
        super().__init__(driver_class=launch.driver_class() if launch is not None else None)
        # Generation runs in a child process (core.remote.SamplerProcess): a sampler thread here
        # would share the GIL with the screen and lose 40-50% of its speed. Started when torch
        # warms up (or at the first pick); if it cannot start or dies, sampling falls back to a
        # thread in this process, and a notification says so.
        # TINYGPT_SAMPLER_PROCESS=0 keeps it in this process (to compare, or on a system where it misbehaves).
        self.use_sampler_process = sampler_process and os.environ.get("TINYGPT_SAMPLER_PROCESS", "1") != "0"
        self.sampler = None  # core.remote.SamplerProcess
        self.sampler_off = ""  # why generation runs in this process instead
        self.models_dir = Path(models_dir) if models_dir else default_models_dir()
        # the folder is read before the first frame (a few JSON files and safetensors headers per
        # model, about 1 ms each), so the first frame lists the models; a folder of more than
        # SYNC_LISTING entries, or one slower to read than SYNC_LISTING_S, is read in a worker after it
        self.model_infos: list = []
        self.models_listed = False
        self.models_listed_at: float | None = None
        self._signature: tuple | None = None
        self.training = None  # training.TrainingJob
        self._quitting = False
        self.watch_models = watch_models
        self.warm_torch = warm_torch
        self.first_paint_at: float | None = None  # when the first frame was written (perf_counter)
        self._after_first_frame: list = []

    # ------------------------------------------------------------ screens
    # Both screens live for the whole session (modes keep their state); the
    # training screen is built on first use, so its imports stay off the first paint.
    SCREENS = {"generate": lambda: _generate_screen(), "training": lambda: _training_screen()}
    MODES = {"generate": "generate", "training": "training"}
    DEFAULT_MODE = "generate"

    # The GIL is handed over at most every 5 ms by default: while the screen repaints, a
    # worker (the sampler, the trainer) that released it for a torch op waits that long to
    # get it back, dozens of times per character. 1 ms lets both run on two cores.
    SWITCH_INTERVAL = 0.001

    def on_mount(self) -> None:
        self._switch_interval = sys.getswitchinterval()
        if self.SWITCH_INTERVAL:
            sys.setswitchinterval(self.SWITCH_INTERVAL)
        # the first frame is written once Textual's start-up batch is over (see _display); should
        # nothing else ask for a repaint by then, this does
        self.call_later(lambda: None if self.first_paint_at is not None else self.refresh())
        self.set_timer(FIRST_FRAME_WAIT_S, self._first_frame_overdue)
        if self.watch_models:
            self.set_interval(MODELS_POLL_S, self.check_models)

    # Textual draws the first screen inside its start-up batch, where a frame is not written, and
    # then sends only the regions that change next: the first screen reached the terminal in
    # pieces, the prompt last, 50-150 ms later. A frame held back by the batch now leaves the whole
    # screen to repaint, so the first frame written is all of it (the generate screen does not even
    # draw it: GenerateScreen._compositor_refresh).
    def in_start_up_batch(self) -> bool:
        """Before the first frame, inside Textual's start-up batch: a frame drawn now is not written."""
        try:
            return self.first_paint_at is None and bool(self._batch_count)
        except AttributeError:  # a Textual without it: its own behaviour
            return False

    def hold_frame(self, screen) -> None:
        """A frame of this screen was not written: the next one repaints all of it."""
        try:
            screen._compositor._dirty_regions.add(screen.size.region)
        except AttributeError:
            pass

    def _display(self, screen, renderable) -> None:
        held = self.in_start_up_batch()
        if held and renderable is not None and screen is self.screen:
            self.hold_frame(screen)
        first = renderable is not None and not held and self.first_paint_at is None
        launch = self.launch if first else None
        if launch is not None:
            launch.recording = []  # what the driver writes for the first frame: the next launch screen
        try:
            super()._display(screen, renderable)
        finally:
            if launch is not None:
                frame, launch.recording = "".join(launch.recording), None
                size = tuple(self.size)
                self.after_first_frame(lambda: launch.keep(frame, size))
        if first:
            self._first_frame()

    def _first_frame(self) -> None:
        self.first_paint_at = time.perf_counter()
        self.call_later(self._painted)

    def _first_frame_overdue(self) -> None:
        """Should the first frame go unseen (a Textual that draws differently), nothing waits on it for long."""
        if self.first_paint_at is None:
            self._first_frame()

    def after_first_frame(self, callback) -> None:
        """Run callback once the first frame is on the terminal (now, if it is): work the first
        screen can show a moment later stays off the path to it."""
        if self.first_paint_at is not None:
            self.call_later(callback)
        else:
            self._after_first_frame.append(callback)

    resume_gc = False  # see run_app

    def _painted(self) -> None:
        """The first frame is written."""
        if self.resume_gc:
            import gc

            self.resume_gc = False
            gc.freeze()
            gc.enable()
        callbacks, self._after_first_frame = self._after_first_frame, []
        for callback in callbacks:
            self.call_later(callback)
        if not self.models_listed:
            self.action_refresh_models_quiet()  # a large folder: read now (torch warms up once it is listed)
        else:
            self._warm_up()

    def list_models_now(self) -> None:
        """Read the models folder here and now, if it is small and quick to read (called before the
        first frame); otherwise it is read in a worker after the first frame."""
        from tinygpt_tui.engine.folder import model_folders, read_info

        if self.models_listed:
            return
        t0 = time.perf_counter()
        folders = model_folders(self.models_dir)  # none if the folder is missing or unreadable
        if len(folders) > SYNC_LISTING:
            return
        signature = folder_signature(self.models_dir)
        infos = []
        for folder in folders:
            infos.append(read_info(folder))
            if time.perf_counter() - t0 > SYNC_LISTING_S:
                return
        self._signature = signature
        self.model_infos = infos
        self.models_listed = True
        self.models_listed_at = time.perf_counter()

    def _warm_up(self) -> None:
        """After the first frame: start the sampler process and import torch in the background."""
        if self.warm_torch:
            self.start_sampler()  # it imports torch beside this process's warm-up
            self._warm()

    @work(thread=True, group="warm", exit_on_error=False)
    def _warm(self) -> None:
        """Import torch and the model code in the background, so the first load is quick."""
        import torch  # noqa: F401

        from tinygpt_tui.engine import model, sampler  # noqa: F401

    # ------------------------------------------------------------ the sampler process
    def start_sampler(self):
        """Start the sampler process if it is wanted and not running (returns it, or None)."""
        if not self.use_sampler_process or self.sampler_off:
            return None
        if self.sampler is not None:
            return self.sampler
        from tinygpt_tui.engine.remote import RemoteError, SamplerProcess

        try:
            self.sampler = SamplerProcess().start()
        except RemoteError as e:
            self.sampler_failed(str(e))
        return self.sampler

    def prepare_sampler(self, path) -> None:
        """A model was picked: the sampler process loads it too, while this process does."""
        sp = self.start_sampler()
        if sp is None:
            return
        try:
            sp.load(path)
        except Exception as e:
            self.sampler_failed(str(e))

    def sampler_ready_for(self, path):
        """The sampler process, if it is alive with this model loaded (else generate in this process)."""
        sp = self.sampler
        if sp is None:
            return None
        if sp.dead:
            self.sampler_failed(sp.dead)
            return None
        if sp.load_error and sp.model_path == str(path):
            self.sampler_failed(f"it could not load the model: {sp.load_error}")
            return None
        return sp if sp.ready_for(path) else None  # still loading: this one runs here, the next there

    def sampler_failed(self, reason: str) -> None:
        """Fall back to sampling in this process, and say so once."""
        from tinygpt_tui.tokenizer import printable

        if self.sampler_off:
            return
        self.sampler_off = reason or "unknown reason"
        sp, self.sampler = self.sampler, None
        if sp is not None:
            sp.close(timeout=0.2)
        self.notify(
            f"Generating in the app's own process from now on ({printable(self.sampler_off)}); "
            "it runs slower while the screen repaints.",
            title="sampler process unavailable",
            severity="warning",
            timeout=8,
        )

    @property
    def generate_screen(self):
        return self.get_screen("generate")

    def training_screen(self):
        return self.get_screen("training")

    @property
    def training_screen_if_built(self):
        return self._built("training")

    def _built(self, name: str):
        """An installed screen if it has been created already (never creates one)."""
        from textual.screen import Screen

        screen = self._installed_screens.get(name)
        return screen if isinstance(screen, Screen) else None

    def check_action(self, action: str, parameters) -> bool | None:
        # the key for the screen you are on is left out of the footer
        if action == "show_generate":
            return self.current_mode != "generate" or len(self.screen_stack) > 1
        if action == "show_training":
            return self.current_mode != "training"
        return True

    def action_show_generate(self) -> None:
        if self.current_mode != "generate":
            self.switch_mode("generate")
        else:
            while len(self.screen_stack) > 1:
                self.pop_screen()

    def action_show_training(self) -> None:
        if self.current_mode != "training":
            self.switch_mode("training")

    # ------------------------------------------------------------ models
    def check_models(self) -> None:
        """Cheap: a few stat calls; the sidebar reloads only when something changed."""
        sig = folder_signature(self.models_dir)
        if sig != self._signature:
            self._signature = sig
            self.refresh_models()

    @work(thread=True, exclusive=True, group="models", exit_on_error=False)
    def refresh_models(self) -> None:
        from tinygpt_tui.engine.folder import list_models

        infos = list_models(self.models_dir)
        try:
            self.call_from_thread(self._models_listed, infos)
        except RuntimeError:  # the app already closed
            pass

    def action_refresh_models(self) -> None:
        self._signature = folder_signature(self.models_dir)
        self.refresh_models()
        self.notify("Models refreshed.", timeout=2)

    def _models_listed(self, infos) -> None:
        first = not self.models_listed
        self.model_infos = infos
        self.models_listed = True
        if first:
            self.models_listed_at = time.perf_counter()
        self.generate_screen.set_models(infos)
        if first:
            self._warm_up()

    # ------------------------------------------------------------ training (owned by the app, not the screen)
    def start_training(self, cfg, resume: bool = False):
        from tinygpt_tui.app.training import TrainingJob

        job = TrainingJob(cfg, resume=resume)
        self.training = job
        self.run_worker(lambda: self._train(job), thread=True, group="train", name=f"train {cfg.name}", exit_on_error=False)
        return job

    def _train(self, job) -> None:
        try:
            job.thread_main()
        finally:
            try:
                self.call_from_thread(self._training_ended, job)
            except RuntimeError:  # the app already closed
                pass

    def _training_ended(self, job) -> None:
        from tinygpt_tui.tokenizer import printable

        self.action_refresh_models_quiet()
        if job.state == "failed":
            self.notify(printable(job.error), title=f"training {printable(job.name)} failed", severity="error", timeout=10)
            ts = self.training_screen_if_built
            if ts is not None and ts.is_mounted:
                ts.show_error(job.error, notify=False)  # (notified just above)
        else:
            self.notify(job.summary().plain, title="training finished" if job.state == "done" else "training stopped", timeout=8)
        if self._quitting:
            self.exit()

    def action_refresh_models_quiet(self) -> None:
        self._signature = folder_signature(self.models_dir)
        self.refresh_models()

    # ------------------------------------------------------------ quitting
    def on_unmount(self) -> None:
        sys.setswitchinterval(getattr(self, "_switch_interval", 0.005))
        # however the app ends, no thread keeps working: a run still going stops (and saves)
        gen = self._built("generate")
        if gen is not None and gen.stream is not None:
            gen.stream.stop()
        if self.sampler is not None:
            self.sampler.close(timeout=0.5)
        job = self.training
        if job is not None and job.active:
            job.stop()

    async def action_quit(self) -> None:
        job = self.training
        if job is not None and job.active:
            if self._quitting:
                return

            def answer(yes: bool | None) -> None:
                if yes:
                    self._quitting = True
                    job.stop()
                    self.notify("Saving a checkpoint, then quitting …", title="training", timeout=30)

            self.push_screen(ConfirmQuit(job.name), answer)
            return
        gen = self._built("generate")
        if gen is not None:
            gen.stop_generation()
        self.exit()

    # ------------------------------------------------------------ command palette
    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        yield SystemCommand("Generate screen", "Pick a model and generate text (Ctrl+G)", self.action_show_generate)
        yield SystemCommand("Training screen", "Train a model with a live loss chart (Ctrl+T)", self.action_show_training)
        yield SystemCommand("Refresh models", "Re-read the models folder (F5)", self.action_refresh_models)
        gen = self.generate_screen
        if gen is not None:
            yield SystemCommand("Write a prompt", "Put the cursor in the prompt (Esc when nothing is being written)", gen.action_focus_prompt)
            yield SystemCommand("Stop generating", "Stop the text being written (Esc)", gen.action_stop)
            yield SystemCommand("Continue", "Generate more from where the text stopped (Ctrl+N)", gen.action_continue)
            yield SystemCommand("Clear output", "Clear the output pane (Ctrl+L)", gen.action_clear)
            yield SystemCommand("Toggle sidebar", "Show or hide the models and sampling settings (Ctrl+B)", gen.action_toggle_sidebar)
            yield SystemCommand("Sampling settings", "Edit temperature, top-k, top-p, length, seed (F6)", gen.action_focus_settings)
            yield SystemCommand("Copy output", "Copy the output pane to the clipboard (Ctrl+Y)", gen.action_copy_output)
            yield SystemCommand("Inspect", "Attention and next-character probabilities for the current text (F2)", gen.action_inspect)
            for info in self.model_infos:
                if info.ok:
                    yield SystemCommand(f"Load model: {info.name}", f"{info.params:,} parameters, trained on {info.corpus or '?'}", lambda i=info: self._load_from_palette(i))
        ts = self.training_screen()
        yield SystemCommand("Start training", "Start a run with the training form (Ctrl+S on the training screen)", lambda: self._on_training(ts.action_start))
        yield SystemCommand("Stop training", "Stop the run, saving a checkpoint (Ctrl+O on the training screen)", lambda: self._on_training(ts.action_stop_training))
        yield SystemCommand("Resume training", "Continue a stopped run named in the form (Ctrl+R on the training screen)", lambda: self._on_training(ts.action_resume))
        yield SystemCommand("Follow a run", "Watch a run started elsewhere through its metrics.jsonl (Ctrl+L on the training screen)", lambda: self._on_training(ts.action_follow))

    def _load_from_palette(self, info) -> None:
        self.action_show_generate()
        self.generate_screen.pick(info)

    def _on_training(self, action) -> None:
        self.action_show_training()
        self.call_after_refresh(action)


def _generate_screen():
    from tinygpt_tui.app.generate import GenerateScreen

    screen = GenerateScreen()
    # Built with the stylesheet as it is now. Textual re-parses every stylesheet and restyles a
    # mode's new screen once more unless its CSS count matches the app's (a check meant for a
    # screen built before a change of theme): 5% of the work before the first frame.
    try:
        from textual._context import active_app

        screen._css_update_count = active_app.get()._css_update_count
    except (ImportError, LookupError, AttributeError):  # a Textual without these: its own behaviour
        pass
    return screen


def _training_screen():
    from tinygpt_tui.app.training import TrainingScreen

    return TrainingScreen()


def run_app(models_dir=None, resume_gc: bool = False, launch=None) -> None:
    """Open the app (called by `tinygpt` with no command; resume_gc: garbage collection was turned off
    for start-up, and the app turns it back on after its first frame; launch: the launch screen)."""
    app = TinyGPTApp(models_dir=models_dir, launch=launch)
    app.resume_gc = resume_gc
    app.run()


if __name__ == "__main__":
    run_app()
