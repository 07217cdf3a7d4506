"""The training screen: start, stop, resume or follow a run, with a live loss chart.

A run started here belongs to the app (jobs.TrainingJob), not to the screen: it keeps going
while the user generates on the other screen. The screen shows a runs.Watched: that job's
RunState, or the RunState read from the metrics.jsonl of a run started elsewhere (`tinygpt
train` in another terminal, torchrun on a cluster): the same records either way.
"""

from __future__ import annotations

import os
import shlex
from functools import cache
from itertools import chain, count
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Collapsible, Input, Label, ProgressBar, Select, Static

from tinygpt_tui.app.bars import FitLine, KeyBar, TitleBar
from tinygpt_tui.app.messages import FOCUS_KEYS, error_line, reported
from tinygpt_tui.app.jobs import TrainingJob, form_words
from tinygpt_tui.app.progress import LossChart, RunState, Watched, good_looks_like, name_taken, progress_parts
from tinygpt_tui.errors import SettingsError, TinyGPTError
from tinygpt_tui.tokenizer import one_line, printable, shell_word

NO_SAMPLE = Text("The model writes a sample at each evaluation.", style="dim")
CHECK_CORPUS_BYTES = 16 * 1024**2  # a corpus up to this size is read before a run starts (bigger ones by the run)


def check_corpus(path: str, block_size: int | None = None) -> None:
    """What the run would say of the corpus (binary, not UTF-8, empty, too short for the context
    length), said before it starts; corpora past CHECK_CORPUS_BYTES, folders and globs are left to the run."""
    from tinygpt_tui.data import check_length
    from tinygpt_tui.engine.corpora import read_corpus

    p = Path(path).expanduser()
    if p.is_dir() or (not p.exists() and any(c in str(path) for c in "*?[")):
        return  # a folder or a glob of books: the run says what is wrong with them
    try:
        big = p.stat().st_size > CHECK_CORPUS_BYTES
    except OSError:
        big = False  # read_corpus says what is wrong with it
    if not big:
        corpus = read_corpus(path)
        if block_size:
            check_length(corpus.text, block_size)


def dropped_path(text: str) -> str:
    """A path as typed, or as a terminal pastes a file dragged onto it: quoted ('/my book.txt') or with its
    spaces escaped (/my\\ book.txt), and a space after it."""
    text = text.strip()
    if not text or Path(text).expanduser().exists():
        return text
    try:
        words = shlex.split(text)
    except ValueError:  # (an unclosed quote: a name of its own)
        return text
    return words[0] if len(words) == 1 else text


PRESET_NAMES = ("auto", "1min", "5min", "tiny", "small", "medium", "large", "nanogpt")  # as `tinygpt train --preset`
CUSTOM_FIELDS = (  # TrainConfig field, label, kind
    ("n_layer", "layers", int), ("n_head", "heads", int), ("n_embd", "width", int), ("block_size", "context", int),
    ("batch_size", "batch", int), ("lr", "learning rate", float), ("dropout", "dropout", float),
    ("eval_interval", "eval every", int),
)

TOKENIZERS = [("characters", "char"), *((f"BPE {n}", f"bpe {n}") for n in (256, 512, 1024, 4096))]  # as --tokenizer/--vocab-size


def tokenizer_fields(choice, init_from: str) -> dict:
    """The form's tokens and start-from fields as TrainConfig fields (--from keeps the model's own tokenizer)."""
    kw = {"init_from": init_from} if init_from else {}
    if not init_from and isinstance(choice, str) and choice.startswith("bpe "):
        kw.update(tokenizer="bpe", vocab_size=int(choice.split()[1]))
    return kw


def train_command(cfg, custom: dict) -> str:
    """The `tinygpt train` command line that starts this run (the model card's "Trained with")."""
    args = [cfg.corpus] if cfg.corpus else []
    # a resume with Size left at auto goes on with the saved size: `--preset auto --resume` is refused on the CLI
    args += ["--name", cfg.name, *([] if cfg.resume and cfg.preset == "auto" else ["--preset", cfg.preset]), "--models-dir", cfg.models_dir]
    if cfg.time_budget is not None:
        args += ["--minutes", repr(cfg.time_budget / 60)]
    if cfg.max_steps is not None:
        args += ["--max-steps", str(cfg.max_steps)]
    for fid, value in custom.items():  # each field is its option: n_layer is --n-layer (init_from is --from)
        args += ["--from" if fid == "init_from" else "--" + fid.replace("_", "-"), str(value)]
    args += ["--device", cfg.device] + (["--resume"] if cfg.resume else [])
    return " ".join(["tinygpt train", *map(shell_word, args)])  # (a path with an escape: inert in the card, $'...')


@cache
def preset_run(preset: str):
    """The run a preset makes (its model's shape, its batch), with the defaults it leaves as they are."""
    from tinygpt_tui.engine.presets import TrainConfig

    return TrainConfig(corpus="x", name="x", preset=preset).resolved()


def size_note(preset: str, auto: bool, unit: str = "characters", over: str | None = None) -> Text:
    """What the size in the form is, in words: its shape, what a step reads (``unit``: characters, or a BPE's
    tokens), what it is for; ``over``: the larger size the minutes alone would take, passed over by the measured speed."""
    from tinygpt_tui.engine.presets import PRESET_USES

    run, use = preset_run(preset), PRESET_USES[preset]
    use = f"picked by this machine's measured speed: in these minutes, {over} would get too few steps to learn more" if over else use
    return Text(f"{f'auto picks {preset}: ' if auto else ''}{run.n_layer} layers, {run.n_embd} wide; {run.batch_size} passages of "
                f"{run.block_size} {unit} a step. {use[0].upper()}{use[1:]}.", style="dim")


def row(label: str, field, tight: bool = True) -> Horizontal:
    """A line of the form: its label, then the field."""
    return Horizontal(Label(label, classes="form-label"), field, classes="form-row -tight" if tight else "form-row")


class TrainingScreen(Screen):
    """Start, stop, resume or follow a training run."""

    AUTO_FOCUS = "#train-corpus"
    DEFAULT_CSS = Path(__file__).with_name("training.tcss").read_text(encoding="utf-8")  # (see training.tcss)
    SCOPED_CSS = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-wide")]  # (training.tcss: a wider form in a narrow terminal)
    VERTICAL_BREAKPOINTS = [(0, "-cramped"), (20, "-short"), (30, "-tall")]  # (no blank lines between the form's groups; under 20, no size note)

    BINDINGS = [
        Binding("ctrl+s", "start", "Start", id="train-start"),
        Binding("ctrl+o", "stop_training", "Stop", tooltip="Stop and save a checkpoint", id="train-stop"),
        Binding("ctrl+r", "resume", "Resume", id="train-resume"),
        Binding("ctrl+l", "follow", "Follow", tooltip="Follow a run started elsewhere", id="train-follow"),
        *FOCUS_KEYS,
    ]

    def key_for(self, action: str) -> str:
        """The key bound to one of this screen's actions now (a keymap may have changed it), as Ctrl+R."""
        keys = [k for k, a in self.active_bindings.items() if a.binding.action == action and a.node is self]
        key = keys[0] if keys else next(b.key for b in self.BINDINGS if b.action == action)
        return "+".join(k.upper() if len(k) == 1 else k.capitalize() for k in key.split("+"))

    def __init__(self):
        super().__init__(id="training")
        self.source: Watched | None = None  # the app's run, or one followed through its metrics.jsonl
        self.drawn = self.sample_shown = self.title_shown = None  # what the chart, sample box and title show (redrawn on a change)
        self.shown_failure = None  # the failed job whose error the form shows
        self.chart = None
        self.unfetched: set[str] = set()  # the catalog's corpora not fetched yet (said as one is picked)

    # ------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        from tinygpt_tui.engine.device import DEVICES

        yield TitleBar()
        with Horizontal(id="train-body"):
            with VerticalScroll(id="train-form"):
                yield row("Corpus", Select(self._corpus_options(), id="train-corpus", prompt="pick from the list", allow_blank=True, compact=True), tight=False)
                yield row("", Input(placeholder="…or a text file path", id="train-corpus-path", compact=True))
                yield row("Name", Input(placeholder="e.g. my-shakespeare", id="train-name", restrict=r"[^/\\]*", max_length=100, compact=True), tight=False)
                preset = Select([(self._preset_label(p), p) for p in PRESET_NAMES], value="auto", id="train-preset", allow_blank=False, compact=True)
                preset.tooltip = "auto picks the largest size that trains well in the minutes given"
                yield row("Size", preset)
                yield Static(id="train-size-note", classes="size-note")  # the size in words: what it is, what it is for
                with Collapsible(title="Custom hyperparameters", id="train-custom", collapsed=True):
                    for fid, label, _ in CUSTOM_FIELDS:
                        yield Horizontal(Label(label, classes="hp-label"), Input(id=f"hp-{fid}", compact=True, restrict=r"[0-9.eE+-]*"), classes="hp-row")
                    yield Horizontal(Label("tokens", classes="hp-label"), Select(TOKENIZERS, value="char", id="hp-tokenizer", allow_blank=False,
                                                                         compact=True), classes="hp-row")
                    yield Horizontal(Label("start from", classes="hp-label"), Input(placeholder="a model (optional)", id="hp-from", compact=True),
                                     classes="hp-row")
                yield row("Steps", Input(placeholder="no limit", id="train-steps", restrict=r"[0-9]*", compact=True), tight=False)
                yield row("Minutes", Input("5", placeholder="no limit", id="train-minutes", restrict=r"[0-9.]*", compact=True))
                yield row("Device", Select([(d, d) for d in DEVICES], value="auto", id="train-device", allow_blank=False, compact=True))
                yield Static("Training stops at whichever limit comes first.", classes="form-hint")
                yield Horizontal(Button("Start", id="btn-start", variant="success", compact=True),
                                 Button("Stop", id="btn-stop", variant="error", compact=True),
                                 Button("Resume", id="btn-resume", variant="primary", compact=True), id="train-buttons")
                yield Static(id="train-error")
                yield Label("Follow a run started anywhere", classes="field-label")
                yield row("Run", Input(placeholder="name or folder, Enter", id="train-follow", compact=True))
            with Vertical(id="run-view"):
                yield Static(id="run-title")
                with Horizontal(id="run-progress-row"):
                    yield ProgressBar(total=1.0, show_eta=False, show_percentage=True, id="run-progress")
                yield FitLine(id="run-progress-text")
                yield Static(id="run-note")  # what good looks like: the stage reached, overfitting
                yield LossChart(id="loss-chart")
                with VerticalScroll(id="run-sample-box"):
                    yield Static(NO_SAMPLE, id="run-sample")
        yield KeyBar(compact=True)  # (with ^q Quit at 60 columns)

    def on_mount(self) -> None:
        self.chart = self.query_one("#loss-chart")
        self.query_one("#train-form").border_title = "New run"
        self.query_one("#run-sample-box").border_title = "Latest sample"
        self._preset_placeholders("auto")  # the default, as on the command line
        self.poller = self.set_interval(0.25, self.poll, pause=True)  # (resumed while the view can change: render_view)
        self.source = Watched(job=self.app.training) if self.app.training is not None else None
        self.render_view()

    def _corpus_options(self):
        from tinygpt_tui.engine.corpora import list_corpora

        try:
            listing = list_corpora()
        except Exception as e:  # the form opens all the same; its error line says why the list is empty
            self.call_after_refresh(self.show_error, error_line(e))
            return []
        size = lambda n: f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"  # noqa: E731
        self.unfetched = {c.name for c in listing if not c.present}
        return [(f"{one_line(c.name)} · {size(c.size)}{'' if c.present else ' (not fetched)'}", c.name) for c in listing]

    @staticmethod
    def _preset_label(p: str) -> str:
        """A size as a newcomer reads it: its layers and parameters (twins, one shape: by batch), short enough
        for the form at 80 columns; the line under it says the rest."""
        if p == "auto":
            return "auto: sized to the minutes"
        shape = lambda r: (r.n_layer, r.n_embd, r.model_config(65).param_count())  # noqa: E731 (65: Tiny Shakespeare's characters)
        run = preset_run(p)
        twin = any(shape(preset_run(q)) == shape(run) for q in PRESET_NAMES[1:] if q != p)
        size = f"{shape(run)[2] / 1e6:.{1 if shape(run)[2] < 9.95e6 else 0}f}M params"
        return f"{p}: {size}, batch {run.batch_size}" if twin else f"{p}: {run.n_layer} layers, {size}"

    def _preset_placeholders(self, preset: str) -> None:
        from tinygpt_tui.engine.presets import budget_preset
        from tinygpt_tui.engine.probe import auto_preset

        over = None
        if preset == "auto":  # what auto stands for with the minutes in the form (as a run picks it), and why where the probe chose
            try:
                minutes = float(self.query_one("#train-minutes", Input).value.strip() or 0)
            except ValueError:
                minutes = 0
            seconds = minutes * 60 if minutes > 0 else None  # (none, negative or nan: as without minutes)
            preset = auto_preset(seconds, str(self.query_one("#train-device", Select).value))
            over = budget_preset(seconds) if budget_preset(seconds) != preset else None
        run = preset_run(preset)  # (the preset with the defaults it leaves, as a run resolves them)
        for fid, _label, _kind in CUSTOM_FIELDS:
            self.query_one(f"#hp-{fid}", Input).placeholder = str(getattr(run, fid))
        picked, tokens = self.query_one("#train-preset", Select).value, self.query_one("#hp-tokenizer", Select).value
        unit = "tokens" if isinstance(tokens, str) and tokens.startswith("bpe ") else "characters"  # (a context of BPE tokens)
        self.query_one("#train-size-note", Static).update(size_note(preset, picked == "auto", unit, over))

    @on(Select.Changed, "#train-preset")
    @on(Select.Changed, "#hp-tokenizer")  # (the note's unit: characters or tokens)
    @on(Select.Changed, "#train-device")  # (auto's size: by the CPU's probe, or the budget alone)
    def _preset_changed(self, event: Select.Changed) -> None:
        if isinstance(preset := self.query_one("#train-preset", Select).value, str):
            self._preset_placeholders(preset)

    @on(Input.Changed, "#train-minutes")
    def _minutes_changed(self, event: Input.Changed) -> None:
        # an empty Steps is 2000 only without minutes (as on the command line): "2000" beside "5" read as a limit
        self.query_one("#train-steps", Input).placeholder = "no limit" if event.value.strip() else "2000"
        preset = self.query_one("#train-preset", Select).value
        if preset == "auto":
            self._preset_placeholders("auto")

    @on(Select.Changed, "#train-corpus")
    def _corpus_changed(self, event: Select.Changed) -> None:
        name = self.query_one("#train-name", Input)
        if isinstance(event.value, str) and not name.value:  # a name not taken: a second run on a book was refused
            base, models = f"my-{event.value}", Path(self.app.models_dir)
            name.value = next(n for n in chain([base], (f"{base}-{i}" for i in count(2))) if not (models / n).exists())
        if event.value in self.unfetched:  # said as it is picked, not only at Start
            self.show_error(f"{event.value} is not fetched yet: `tinygpt corpus fetch {event.value}`, or a text file's path below", notify=False)
        elif isinstance(event.value, str):
            self.clear_error()

    # ------------------------------------------------------------ reading the form
    def read_form(self, resume: bool = False):
        from tinygpt_tui.engine.train import TrainConfig

        q = lambda i: self.query_one(i, Input).value.strip()  # noqa: E731
        path, pick = dropped_path(q("#train-corpus-path")), self.query_one("#train-corpus", Select).value
        corpus = path or (pick if isinstance(pick, str) else "")
        name = q("#train-name")
        if not name:
            raise SettingsError("type the name of the run to resume (its folder under the models directory)" if resume
                                else "give the model a name (it becomes the folder under the models directory)")
        if not corpus and not resume:
            raise SettingsError("pick a corpus from the list, or type the path of a UTF-8 text file")
        if corpus:
            from tinygpt_tui.engine.corpora import resolve_corpus

            corpus = str(resolve_corpus(corpus))  # a catalog name or a file added to corpora/ -> its path
        kw = {}
        for fid, label, kind in CUSTOM_FIELDS:
            v = q(f"#hp-{fid}")
            if v:
                try:
                    kw[fid] = kind(v)
                except ValueError:
                    raise SettingsError(f"{label} must be {'a whole number' if kind is int else 'a number'}, got {v!r}") from None
        kw.update(tokenizer_fields(self.query_one("#hp-tokenizer", Select).value, q("#hp-from")))
        steps, minutes = q("#train-steps"), q("#train-minutes")
        try:
            max_steps, time_budget = int(steps) if steps else None, float(minutes) * 60 if minutes else None
        except ValueError:
            raise SettingsError(f"length must be a number of steps or minutes, got {steps or minutes!r}") from None
        if time_budget is not None and time_budget <= 0:
            raise SettingsError("minutes must be more than 0")
        device = self.query_one("#train-device", Select).value
        preset = self.query_one("#train-preset", Select).value
        cfg = TrainConfig(corpus=corpus, name=name, models_dir=str(self.app.models_dir), preset=preset, max_steps=max_steps,
                          time_budget=time_budget, device=device if isinstance(device, str) else "auto", resume=resume, **kw)
        cfg.command = train_command(cfg, kw)
        if not resume:
            cfg.resolved()  # impossible hyperparameters are caught here, before anything loads
        else:  # a resumed run goes on with its saved settings: one changed in the form would be ignored
            from tinygpt_tui.engine.presets import resume_changes

            typed = {k: v for k, v in kw.items() if k not in ("eval_interval", "init_from")}
            labels = {**{f: label for f, label, _ in CUSTOM_FIELDS}, "preset": "size", "tokenizer": "tokens", "vocab_size": "tokens"}
            changed = dict.fromkeys(labels[k] for k in resume_changes(Path(cfg.models_dir) / name, {**typed, **({"preset": preset} if preset != "auto" else {})}))
            if changed:
                raise SettingsError(f"Resume goes on with {name}'s saved settings; {', '.join(changed)} cannot change "
                                    "(clear them, or Start a new run with another name)")
        return cfg

    # ------------------------------------------------------------ actions
    def show_error(self, message: str, notify: bool = True) -> None:
        """The form's error line, and a notification unless the caller has given one already."""
        self.query_one("#train-error", Static).update(Text("✗ " + one_line(message), style="bold red"))
        if notify:
            self.notify(one_line(message), title="training", severity="error", timeout=8)

    def clear_error(self) -> None:
        self.query_one("#train-error", Static).update("")

    def action_start(self, resume: bool = False) -> None:
        job = self.app.training
        if job is not None and job.active:
            self.show_error(f"{job.name} is still training; stop it first (one run at a time)")
            return
        exp = self.app.experiment
        if exp is not None and exp.active:
            self.show_error(f"experiment {exp.name} is running; stop it first (F4, one run at a time)")
            return
        try:
            cfg = self.read_form(resume=resume)
            self._check_before_start(cfg)
        except TinyGPTError as e:
            self.show_error(form_words(str(e)))
            return
        self.clear_error()
        job = self.app.start_training(cfg, resume=resume)
        self.watch_job(job)
        self.notify(f"{'Resuming' if resume else 'Training'} {one_line(cfg.name)} …", title="training")

    def _check_before_start(self, cfg) -> None:
        """What would make the run fail at once, found before it replaces the run on display."""
        from tinygpt_tui.engine.folder import CONFIG

        if not cfg.resume and (Path(cfg.models_dir) / cfg.name / CONFIG).exists():
            raise SettingsError(name_taken(cfg.name, cfg.models_dir, self.key_for("resume")))
        if cfg.corpus:  # (a resumed run keeps its saved context length: the run checks that one)
            check_corpus(cfg.corpus, None if cfg.resume else cfg.resolved().block_size)

    def action_resume(self) -> None:
        self.action_start(resume=True)

    def action_stop_training(self) -> None:
        job = self.app.training
        if job is None or not job.active:
            self.notify("Nothing is training.", severity="warning")
            return
        job.stop()
        if self.source is None or self.source.job is not job:  # (a run followed meanwhile is not the one stopping: show it)
            self.watch_job(job)
        saved = "the model is saved at the current step" if job.run.start else "it is preparing its corpus: nothing is trained or saved"
        self.notify(f"Stopping {one_line(job.name)}: {saved} …", title="training")
        self.render_view()

    def action_follow(self) -> None:
        inp = self.query_one("#train-follow", Input)
        if not inp.value.strip():
            inp.focus()
            self.notify("Type a model name or folder to follow, then Enter.")
            return
        self.follow(inp.value.strip())

    @on(Input.Submitted, "#train-follow")
    def _follow_submitted(self, event: Input.Submitted) -> None:
        self.action_follow()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        {"btn-start": self.action_start, "btn-stop": self.action_stop_training, "btn-resume": self.action_resume}[event.button.id]()

    # ------------------------------------------------------------ sources
    @property
    def view(self) -> RunState | None:
        return self.source.run if self.source is not None else None

    def watch_job(self, job: TrainingJob) -> None:
        self.source = Watched(job=job)
        self.render_view()

    @reported("follow")
    def follow(self, name_or_path: str) -> None:
        from tinygpt_tui.engine.files import open_regular
        from tinygpt_tui.engine.folder import METRICS

        p = Path(name_or_path) if os.path.exists(name_or_path) or os.path.exists(Path(self.app.models_dir) / name_or_path) else Path(name_or_path).expanduser()
        folder = p if p.is_dir() else p.parent if p.is_file() and p.name == METRICS else Path(self.app.models_dir) / name_or_path
        if not folder.is_dir():
            self.show_error(f"no run to follow: {name_or_path} is not a model name in {self.app.models_dir} or a folder")
            return
        try:  # a FIFO or a looping link in its place: said now, not "waiting for records" for ever
            os.close(open_regular(folder / METRICS, METRICS)) if os.path.lexists(folder / METRICS) else None
        except TinyGPTError as e:
            return self.show_error(str(e))
        if not (folder / METRICS).exists():
            from tinygpt_tui.engine.folder import CONFIG

            others = [f for f in folder.iterdir() if not f.name.startswith(".")] if not (folder / CONFIG).exists() else []
            if others:  # (a folder of books, or the models folder itself: nothing a run would write there)
                self.show_error(f"{one_line(folder.name)} is not a run's folder: it holds no {METRICS} or {CONFIG} but other files "
                                f"({one_line(others[0].name)}, …); give the folder a run writes")
                return
            self.notify(f"{one_line(folder.name)} has no {METRICS} yet; waiting for it to appear.", severity="warning")
        self.clear_error()
        self.source = Watched(folder=folder)
        self.notify(f"Following {one_line(folder.name)} ({one_line(str(folder / METRICS))})", title="follow")
        self.poll()

    @reported("training view")
    def poll(self) -> None:
        """Take new records (4 times a second while the view can change by itself) and redraw what changed."""
        if self.source is not None:
            self.source.poll()
        self.render_view()

    # ------------------------------------------------------------ drawing
    def render_view(self) -> None:
        v = self.view
        if (title := self._title(v)) != self.title_shown:  # (an update is a layout pass and a frame: 4 a second, idle, were
            self.title_shown = title                        # 5% of a core)
            self.query_one("#run-title", Static).update(title)
        failed = self.source is not None and self.source.job is not None and self.source.job.state == "failed"
        # a failed run's bar stops where its steps got to (its corpus's preparation, perhaps at 100%, is not the run's)
        progress = (v.progress if v.start else 0.0) if failed else v.progress if v else 0.0
        bar = self.query_one("#run-progress", ProgressBar)
        bar.update(total=None if progress is None else 1.0, progress=progress or 0.0)
        bar.set_class(failed, "-failed")
        live = self.source is not None and (self.source.job is None or self.source.job.active)
        (self.poller.resume if live else self.poller.pause)()  # polled while live: a run training here, or one followed (a stat)
        self.query_one("#run-progress-text", FitLine).show(progress_parts(v, live, failed) if v else [])
        if v is None:
            return
        key = (id(v), len(v.steps) + len(v.eval_steps), v.steps[-1] if v.steps else -1)
        if key != self.drawn and self.chart is not None:
            self.drawn = key
            reference, note = good_looks_like(v)
            self.chart.show(v, reference)
            self.query_one("#run-note", Static).update(note)
            self.query_one("#run-note").display = bool(note)
        shown = (id(v), v.sample_step, len(v.sample))
        if shown != self.sample_shown:
            self.sample_shown = shown
            self.query_one("#run-sample-box").border_title = "Latest sample" + (f" (step {v.sample_step:,})" if v.sample else "")
            self.query_one("#run-sample", Static).update(Text(printable(v.sample)) if v.sample else NO_SAMPLE)

    def _title(self, v: RunState | None) -> Text:
        """The run's name and state, then what it runs on."""
        if v is None:
            return Text.assemble(("No run yet. ", "bold"), ("Fill in the form and press Start (Ctrl+S), or follow a run started elsewhere.", "dim"))
        job = self.source.job
        if job is not None:
            state = {"starting": "preparing", "running": "training", "stopping": "stopping · saving",
                     "done": "finished", "stopped": "stopped (saved; Resume continues it)", "failed": "failed"}[job.state]
            if not v.start and job.state in ("stopping", "stopped"):  # stopped while the corpus is prepared: nothing to save
                state = "stopping (preparing its corpus: nothing saved)" if job.active else "stopped while preparing its corpus: nothing saved"
            title = Text.assemble((one_line(job.name), "bold"), (f"  {state}", {"failed": "bold red", "done": "bold green"}.get(job.state, "bold magenta")))
            if job.state == "failed":
                title.append(f": {one_line(job.error)}", style="red")
                if self.shown_failure is not job:  # the form's error line too (the app has notified)
                    self.shown_failure = job
                    self.show_error(job.error, notify=False)
        else:
            title = Text.assemble((one_line(self.source.folder.name), "bold"), ("  following metrics.jsonl", "bold cyan"))
            if v.finish:
                ended = {"budget": "finished: its time was up", "stopped": "stopped"}.get(str(v.finish.get("reason")), "finished")
                title.append(f" · {ended}", style="green")
            elif not v.records:
                title.append(" · waiting for records", style="dim")
        s = v.start
        if s:
            facts = [s.get("device", "?"), s.get("dtype", ""), f"{s['params']:,} params" if isinstance(s.get("params"), int) else "",
                     f"corpus {s['corpus']}" if s.get("corpus") else ""]
            title.append("\n" + one_line(" · ".join(str(f) for f in facts if f)), style="dim")
        return title
