"""The training screen: start, stop, resume or follow a run, with a live loss chart.

A run started here belongs to the app (``TrainingJob``), not to the screen:
it keeps going while the user generates on the other screen. The screen
shows a ``RunState`` fed either by that job's events, or by the
``metrics.jsonl`` of a run started elsewhere (``tinygpt train`` in another
terminal, torchrun on a cluster): the same records either way.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Collapsible, Input, Label, ProgressBar, Select, Static

from tinygpt_tui.errors import SettingsError, TinyGPTError
from tinygpt_tui.tokenizer import printable
from tinygpt_tui.app.bars import KeyBar, TitleBar

MAX_POINTS = 400  # points drawn per curve (older points are thinned)
CHECK_CORPUS_BYTES = 16 * 1024**2  # a corpus up to this size is read before a run starts (bigger ones by the run)


def fmt_duration(s) -> str:
    if s is None or not isinstance(s, (int, float)) or not math.isfinite(s):
        return "?"
    s = int(s)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def fmt_rate(x) -> str:
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "?"
    return f"{x / 1000:,.1f}k" if x >= 1000 else f"{x:,.0f}"


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


# ----------------------------------------------------------------- what a run looks like
@dataclass
class RunState:
    """Everything the screen shows, built from metrics records (start/step/eval/saved/finish)."""

    steps: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    eval_steps: list = field(default_factory=list)
    train_losses: list = field(default_factory=list)
    val_losses: list = field(default_factory=list)
    start: dict = field(default_factory=dict)
    last: dict = field(default_factory=dict)
    finish: dict = field(default_factory=dict)
    sample: str = ""
    sample_step: int | None = None
    saved_step: int | None = None
    records: int = 0

    def apply(self, rec: dict) -> None:
        kind = rec.get("event")
        step = rec.get("step") if isinstance(rec.get("step"), int) and not isinstance(rec.get("step"), bool) else None
        self.records += 1
        if kind == "start":
            self.start, self.finish, self.last = rec, {}, {}  # a resumed run's figures start afresh
            if step is not None:  # a resumed run rewrites what came after its checkpoint
                self._cut(step)
        elif kind == "step" and step is not None:
            loss = _num(rec.get("loss"))
            if loss is not None:
                if self.steps and step <= self.steps[-1]:
                    self._cut(step - 1)
                self.steps.append(step)
                self.losses.append(loss)
            self.last = rec
        elif kind == "eval" and step is not None:
            tl, vl = _num(rec.get("train_loss")), _num(rec.get("val_loss"))
            if tl is not None and vl is not None:
                if self.eval_steps and step <= self.eval_steps[-1]:
                    self._cut(step - 1, evals_only=True)
                self.eval_steps.append(step)
                self.train_losses.append(tl)
                self.val_losses.append(vl)
            if isinstance(rec.get("sample"), str) and rec["sample"]:
                self.sample, self.sample_step = rec["sample"], step
        elif kind == "saved":
            self.saved_step = step
        elif kind == "finish":
            self.finish = rec

    def _cut(self, step: int, evals_only: bool = False) -> None:
        if not evals_only:
            keep = sum(1 for s in self.steps if s <= step)
            del self.steps[keep:], self.losses[keep:]
        keep = sum(1 for s in self.eval_steps if s <= step)
        del self.eval_steps[keep:], self.train_losses[keep:], self.val_losses[keep:]

    @property
    def step(self) -> int:
        for r in (self.finish, self.last, self.start):
            if isinstance(r.get("step"), int):
                return r["step"]
        return 0

    @property
    def progress(self) -> float:
        if self.finish:
            return 1.0 if self.finish.get("reason") in ("done", "budget") else (_num(self.last.get("progress")) or 0.0)
        p = _num(self.last.get("progress"))
        if p is None:  # no step logged yet (a resumed run starts part-way)
            ms, st = self.start.get("max_steps"), self.start.get("step")
            p = st / ms if isinstance(ms, int) and ms > 0 and isinstance(st, int) else 0.0
        return min(1.0, max(0.0, p))


class TrainingJob:
    """A training run owned by the app: a thread running core.trainer.train, its events kept in memory."""

    def __init__(self, cfg, resume: bool = False):
        self.cfg = cfg
        self.name = cfg.name
        self.resume = resume
        self.stop_event = threading.Event()
        self.records: list[dict] = []  # appended by the thread (atomic), read by the screen
        self.state = "starting"  # starting, running, stopping, done, stopped, failed
        self.error = ""
        self.folder: Path | None = None
        self.run = RunState()

    @property
    def active(self) -> bool:
        return self.state in ("starting", "running", "stopping")

    def stop(self) -> None:
        if self.active:
            self.stop_event.set()
            self.state = "stopping"

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

    def thread_main(self) -> None:
        """Runs in a worker thread."""
        from tinygpt_tui.engine.train import NameTaken, train

        try:
            for ev in train(self.cfg, self.stop_event):
                rec = ev.record()
                rec["time"] = round(time.time(), 3)
                if rec["event"] == "start" and rec.get("resumed") and not self.records:
                    for old in self.history():
                        self.records.append(old)
                        self.run.apply(old)
                self.records.append(rec)
                self.run.apply(rec)
                if rec["event"] == "start" and self.state == "starting":
                    self.state = "running"
                elif rec["event"] == "finish":
                    self.folder = Path(rec.get("path", "")) if rec.get("path") else None
                    self.state = "stopped" if rec.get("reason") == "stopped" else "done"
            if self.active:
                self.state = "stopped" if self.stop_event.is_set() else "done"
        except NameTaken as e:  # the screen checks first; this is a folder made in between
            self.error, self.state = name_taken(e.name, e.models_dir, default_key("resume")), "failed"
        except TinyGPTError as e:
            self.error, self.state = str(e), "failed"
        except MemoryError:
            self.error, self.state = "out of memory: try a smaller model or batch", "failed"
        except Exception as e:  # never a traceback in the UI; one line that says what broke
            self.error, self.state = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300], "failed"

    def summary(self) -> Text:
        t = Text()
        r = self.run
        name = printable(self.name)
        if self.state in ("starting", "running", "stopping"):
            t.append("training ", style="bold magenta")
            t.append(name, style="bold")
            if self.state == "starting":
                t.append(" · preparing …")
            else:
                t.append(f" · step {r.step:,} · {r.progress:.0%}")
                if r.losses:
                    t.append(f" · loss {r.losses[-1]:.3f}")
                if self.state == "stopping":
                    t.append(" · saving …", style="yellow")
        elif self.state == "failed":
            t.append("training failed: ", style="bold red")
            t.append(printable(self.error)[:120])
        else:
            t.append(f"trained {name}", style="bold")
            t.append(f" · {self.state} at step {r.step:,}")
            vl = _num(r.finish.get("val_loss"))
            if vl is not None:
                t.append(f" · val {vl:.3f}")
        return t


# ----------------------------------------------------------------- widgets
def _plot_class():
    from textual_plotext import PlotextPlot

    class LossChart(PlotextPlot):
        """Train loss (every log step), and the train/val estimates at each evaluation."""

        def __init__(self, **kw):
            super().__init__(**kw)
            self.series: dict[str, tuple[list, list]] = {}
            self.points = 0

        def on_mount(self) -> None:
            super().on_mount()
            self.draw()

        def show(self, run: RunState) -> None:
            self.series = {
                "loss": thin(run.steps, run.losses),
                "train (eval)": thin(run.eval_steps, run.train_losses),
                "val (eval)": thin(run.eval_steps, run.val_losses),
            }
            self.points = len(run.steps) + len(run.eval_steps)
            self.draw()

        def draw(self) -> None:
            plt = self.plt
            plt.clear_data()
            plt.clear_figure()
            plt.title("loss")
            plt.xlabel("step")
            xs_all = [x for xs, _ in self.series.values() for x in xs]
            n = 6 if self.size.width == 0 or self.size.width >= 60 else 4  # labels like 10,000 need room
            ticks = step_ticks(min(xs_all), max(xs_all), n) if xs_all else step_ticks(0, 100, n)
            plt.xticks(ticks, [f"{t:,}" for t in ticks])  # whole steps (plotext's own ticks are fractions)
            colors = {"loss": "cyan", "train (eval)": "orange", "val (eval)": "magenta"}
            markers = {"loss": "braille", "train (eval)": "dot", "val (eval)": "dot"}
            drawn = False
            for label, (xs, ys) in self.series.items():
                if xs:
                    plt.plot(xs, ys, label=label, color=colors[label], marker=markers[label])
                    drawn = True
            if not drawn:  # an empty frame, not a meaningless -1..1 axis
                plt.title("loss (waiting for the first steps)")
                plt.xlim(0, 100)
                plt.ylim(0, 5)
                plt.plot([0], [0], marker=" ")
            self.refresh()

    return LossChart


def step_ticks(lo, hi, n: int = 6) -> list[int]:
    """At most n whole steps from lo to hi, spaced 1, 2 or 5 times a power of 10 (for the chart's step axis)."""
    lo, hi = math.floor(lo), math.ceil(hi)
    if hi <= lo:
        return [lo]
    mag = 1
    while True:
        for m in (1, 2, 5):
            sp = m * mag
            first = -(-lo // sp) * sp
            if (hi - first) // sp + 1 <= n:
                return list(range(first, hi + 1, sp)) or [lo, hi]
        mag *= 10


@dataclass
class Part:
    """One figure of the progress line: its text, a shorter form, and its rank (the highest is dropped first)."""

    text: str
    short: str
    rank: int
    style: str = ""


def fit_line(parts: list[Part], width: int) -> Text:
    """The parts, joined, in at most width cells: short forms first, then the least important parts dropped.

    A part is shown whole or not at all; the most important one is always shown.
    """
    sep = " · "
    kept = list(parts)
    while True:
        for short in (False, True):
            texts = [p.short if short else p.text for p in kept]
            if len(kept) <= 1 or sum(cell_len(t) for t in texts) + len(sep) * (len(texts) - 1) <= width:
                out = Text(no_wrap=True, overflow="crop")
                for i, (p, t) in enumerate(zip(kept, texts)):
                    if i:
                        out.append(sep)
                    out.append(t, style=p.style)
                return out
        worst = max(range(len(kept)), key=lambda i: (kept[i].rank, i))
        del kept[worst]


class ProgressLine(Widget):
    """The run's figures on one line that fits the width it gets (80 columns to 120 and more)."""

    DEFAULT_CSS = "ProgressLine { height: 1; }"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.parts: list[Part] = []

    def show(self, parts: list[Part]) -> None:
        if parts != self.parts:
            self.parts = parts
            self.refresh()

    def render(self) -> Text:
        return fit_line(self.parts, self.size.width)


def progress_parts(v: RunState) -> list[Part]:
    """The figures under the progress bar; kept longest: step, loss, ETA and full val, val, time, speed."""
    s, last = v.start, v.last
    max_steps = s.get("max_steps") if s else None
    of = f" / {max_steps:,}" if isinstance(max_steps, int) else ""
    parts = [Part(f"step {v.step:,}{of}", f"{v.step:,}{of.replace(' ', '')}", 0, "bold")]
    if last and not v.finish:
        rate = fmt_rate(last.get("tokens_per_s"))
        parts.append(Part(f"{rate} tok/s", f"{rate}/s", 5))
        eta = fmt_duration(last.get("eta_s"))
        parts.append(Part(f"ETA {eta}", f"ETA {eta}", 2))
    if v.losses:
        parts.append(Part(f"loss {v.losses[-1]:.3f}", f"loss {v.losses[-1]:.3f}", 1))
    fv = _num(v.finish.get("val_loss")) if v.finish else None
    if v.val_losses and fv is None:
        parts.append(Part(f"val {v.val_losses[-1]:.3f}", f"val {v.val_losses[-1]:.3f}", 3))
    if v.finish:
        took = fmt_duration(v.finish.get("elapsed_s"))
        parts.append(Part(f"done in {took}", f"in {took}", 4, "green"))
        if fv is not None:  # the whole validation split, not the estimate
            parts.append(Part(f"val (full split) {fv:.3f}", f"val {fv:.3f}", 2, "green"))
    return parts


def key_label(key: str) -> str:
    """ctrl+r -> Ctrl+R, as the README and the help write keys."""
    return "+".join(k.upper() if len(k) == 1 else k.capitalize() for k in key.split("+"))


def default_key(action: str) -> str:
    """The training screen's own key for an action (before any keymap), as Ctrl+R."""
    return key_label(next(b.key for b in TrainingScreen.BINDINGS if b.action == action))


def name_taken(name: str, models_dir, key: str) -> str:
    return f"a model named {name!r} already exists in {models_dir}; pick another name, or press {key} to resume it"


def check_corpus(path: str, block_size: int | None = None) -> None:
    """What the run would say of the corpus (binary, not UTF-8, empty, too short for the context
    length), said before it starts.

    Corpora past CHECK_CORPUS_BYTES are left to the run, so a keypress never waits long (and
    are long enough for any context length the form allows).
    """
    from tinygpt_tui.data import check_length, read_corpus

    try:
        big = Path(path).expanduser().stat().st_size > CHECK_CORPUS_BYTES
    except OSError:
        big = False  # read_corpus says what is wrong with it
    if not big:
        corpus = read_corpus(path)
        if block_size:
            check_length(corpus.text, block_size)


def thin(xs: list, ys: list, n: int = MAX_POINTS):
    if len(xs) <= n:
        return list(xs), list(ys)
    stride = len(xs) / n
    idx = sorted({int(i * stride) for i in range(n)} | {len(xs) - 1})
    return [xs[i] for i in idx], [ys[i] for i in idx]


PRESET_NAMES = ("auto", "1min", "5min", "tiny", "small", "medium", "large", "nanogpt")  # as `tinygpt train --preset`
CUSTOM_FIELDS = (
    # id, label, kind, TrainConfig field
    ("n_layer", "layers", int, "n_layer"),
    ("n_head", "heads", int, "n_head"),
    ("n_embd", "width", int, "n_embd"),
    ("block_size", "context", int, "block_size"),
    ("batch_size", "batch", int, "batch_size"),
    ("lr", "learning rate", float, "lr"),
    ("dropout", "dropout", float, "dropout"),
    ("eval_interval", "eval every", int, "eval_interval"),
)


class TrainingScreen(Screen):
    """Start, stop, resume or follow a training run."""

    AUTO_FOCUS = "#train-corpus"
    CSS_PATH = Path(__file__).with_name("training.tcss")  # global, loaded when this screen is first shown

    BINDINGS = [
        Binding("ctrl+s", "start", "Start", id="train-start"),
        Binding("ctrl+o", "stop_training", "Stop & save", id="train-stop"),
        Binding("ctrl+r", "resume", "Resume", id="train-resume"),
        Binding("ctrl+l", "follow", "Follow run", id="train-follow"),
    ]

    def key_for(self, action: str) -> str:
        """The key bound to one of this screen's actions now (a keymap may have changed it), as Ctrl+R."""
        if self.is_mounted:
            for key, active in self.active_bindings.items():
                if active.binding.action == action and active.node is self:
                    return key_label(key)
        return default_key(action)

    def __init__(self):
        super().__init__(id="training")
        self.view: RunState | None = None
        self.source = None  # ("job", TrainingJob) or ("file", folder, offset)
        self._seen = 0
        self._drawn = (-1, -1)
        self._sample_shown = None
        self.chart = None

    # ------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        from tinygpt_tui.engine.device import DEVICES

        yield TitleBar()
        with Horizontal(id="train-body"):
            with VerticalScroll(id="train-form"):
                with Horizontal(classes="form-row"):
                    yield Label("Corpus", classes="form-label")
                    yield Select(self._corpus_options(), id="train-corpus", prompt="the catalog", allow_blank=True, compact=True)
                with Horizontal(classes="form-row -tight"):
                    yield Label("", classes="form-label")
                    yield Input(placeholder="…or a text file path", id="train-corpus-path", compact=True)
                with Horizontal(classes="form-row"):
                    yield Label("Name", classes="form-label")
                    yield Input(placeholder="e.g. my-shakespeare", id="train-name", restrict=r"[^/\\]*", max_length=100, compact=True)
                with Horizontal(classes="form-row -tight"):
                    yield Label("Size", classes="form-label")
                    yield Select([(self._preset_label(p), p) for p in PRESET_NAMES], value="tiny", id="train-preset", allow_blank=False, compact=True)
                with Collapsible(title="Custom hyperparameters", id="train-custom", collapsed=True):
                    for fid, label, kind, _ in CUSTOM_FIELDS:
                        with Horizontal(classes="hp-row"):
                            yield Label(label, classes="hp-label")
                            yield Input(id=f"hp-{fid}", compact=True, restrict=r"[0-9.eE+-]*")
                with Horizontal(classes="form-row"):
                    yield Label("Steps", classes="form-label")
                    yield Input(placeholder="2000", id="train-steps", restrict=r"[0-9]*", compact=True)
                with Horizontal(classes="form-row -tight"):
                    yield Label("Minutes", classes="form-label")
                    yield Input("5", placeholder="no limit", id="train-minutes", restrict=r"[0-9.]*", compact=True)
                with Horizontal(classes="form-row -tight"):
                    yield Label("Device", classes="form-label")
                    yield Select([(d, d) for d in DEVICES], value="auto", id="train-device", allow_blank=False, compact=True)
                yield Static("Training stops at whichever limit comes first.", classes="form-hint")
                with Horizontal(id="train-buttons"):
                    yield Button("Start", id="btn-start", variant="success", compact=True)
                    yield Button("Stop", id="btn-stop", variant="error", compact=True)
                    yield Button("Resume", id="btn-resume", variant="primary", compact=True)
                yield Static(id="train-error")
                yield Label("Follow a run started anywhere", classes="field-label")
                with Horizontal(classes="form-row -tight"):
                    yield Label("Run", classes="form-label")
                    yield Input(placeholder="model name or folder, Enter", id="train-follow", compact=True)
            with Vertical(id="run-view"):
                yield Static(id="run-title")
                with Horizontal(id="run-progress-row"):
                    yield ProgressBar(total=1.0, show_eta=False, show_percentage=True, id="run-progress")
                yield ProgressLine(id="run-progress-text")
                yield _plot_class()(id="loss-chart")
                with VerticalScroll(id="run-sample-box"):
                    yield Static(Text("The model writes a sample at each evaluation.", style="dim"), id="run-sample")
        yield KeyBar()

    def on_mount(self) -> None:
        self.chart = self.query_one("#loss-chart")
        self.query_one("#train-form").border_title = "New run"
        self.query_one("#run-sample-box").border_title = "Latest sample"
        self._preset_placeholders("tiny")
        job = self.app.training
        if job is not None:
            self.watch_job(job)
        self.render_view()
        self.set_interval(0.25, self.poll)

    def _corpus_options(self):
        try:
            from tinygpt_tui.engine.corpora import list_corpora

            listing = list_corpora()
        except TinyGPTError as e:
            self.app.call_later(self.show_error, str(e))
            return []
        out = []
        for c in listing:
            size = f"{c.size / 1e6:.1f} MB" if c.size >= 1e5 else f"{c.size / 1e3:.0f} kB"
            state = "" if c.present else " (not fetched)"
            label = f"{printable(c.name)} · {size}{state}"
            out.append((label, c.name))
        return out

    @staticmethod
    def _preset_label(p: str) -> str:
        from tinygpt_tui.engine.train import PRESETS  # noqa: F401  (cheap: no torch at module level)

        if p == "auto":
            return "auto (sized for the minutes)"
        d = PRESETS[p]
        return f"{p} ({d['n_layer']} layers × {d['n_embd']})"

    def _preset_placeholders(self, preset: str) -> None:
        from tinygpt_tui.config import GPTConfig
        from tinygpt_tui.engine.train import PRESETS, budget_preset

        if preset == "auto":  # what auto stands for with the minutes in the form (as the CLI picks it)
            try:
                minutes = float(self.query_one("#train-minutes", Input).value.strip() or 0)
            except ValueError:
                minutes = 0
            preset = budget_preset(minutes * 60 if minutes > 0 else None)
        d = {**GPTConfig().__dict__, "batch_size": 32, "lr": 1e-3, "eval_interval": 250, **PRESETS[preset]}
        for fid, _label, _kind, key in CUSTOM_FIELDS:
            self.query_one(f"#hp-{fid}", Input).placeholder = str(d.get(key, ""))

    @on(Select.Changed, "#train-preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self._preset_placeholders(event.value)

    @on(Input.Changed, "#train-minutes")
    def _minutes_changed(self, event: Input.Changed) -> None:
        preset = self.query_one("#train-preset", Select).value
        if preset == "auto":
            self._preset_placeholders("auto")

    @on(Select.Changed, "#train-corpus")
    def _corpus_changed(self, event: Select.Changed) -> None:
        name = self.query_one("#train-name", Input)
        if isinstance(event.value, str) and not name.value:
            name.value = f"my-{event.value}"

    # ------------------------------------------------------------ reading the form
    def _config(self, resume: bool = False):
        from tinygpt_tui.engine.train import TrainConfig

        q = lambda i: self.query_one(i, Input).value.strip()  # noqa: E731
        path, pick = q("#train-corpus-path"), self.query_one("#train-corpus", Select).value
        corpus = path or (pick if isinstance(pick, str) else "")
        name = q("#train-name")
        if not name:
            raise SettingsError("give the model a name (it becomes the folder under the models directory)")
        if not corpus and not resume:
            raise SettingsError("pick a corpus from the list, or type the path of a UTF-8 text file")
        if corpus:
            from tinygpt_tui.engine.corpora import resolve_corpus

            corpus = str(resolve_corpus(corpus))  # a catalog name or a file added to corpora/ -> its path
        kw = {}
        for fid, label, kind, key in CUSTOM_FIELDS:
            v = q(f"#hp-{fid}")
            if v:
                try:
                    kw[key] = kind(v)
                except ValueError:
                    raise SettingsError(f"{label} must be {'a whole number' if kind is int else 'a number'}, got {v!r}") from None
        steps, minutes = q("#train-steps"), q("#train-minutes")
        max_steps = time_budget = None
        try:
            if steps:
                max_steps = int(steps)
            if minutes:
                time_budget = float(minutes) * 60
        except ValueError:
            raise SettingsError(f"length must be a number of steps or minutes, got {steps or minutes!r}") from None
        if time_budget is not None and time_budget <= 0:
            raise SettingsError("minutes must be more than 0")
        device = self.query_one("#train-device", Select).value
        preset = self.query_one("#train-preset", Select).value
        cfg = TrainConfig(
            corpus=corpus, name=name, models_dir=str(self.app.models_dir), preset=preset, max_steps=max_steps,
            time_budget=time_budget, device=device if isinstance(device, str) else "auto", resume=resume,
            command=f"(tinygpt app) {'resume' if resume else 'train'} {name}", **kw,
        )
        if not resume:
            cfg.resolved()  # impossible hyperparameters are caught here, before anything loads
            if cfg.eval_interval is None and cfg.max_steps:
                pass
        return cfg

    # ------------------------------------------------------------ actions
    def show_error(self, message: str, notify: bool = True) -> None:
        """The form's error line, and a notification unless the caller has given one already."""
        self.query_one("#train-error", Static).update(Text("✗ " + printable(message), style="bold red"))
        if notify:
            self.notify(printable(message), title="training", severity="error", timeout=8)

    def clear_error(self) -> None:
        self.query_one("#train-error", Static).update("")

    def action_start(self, resume: bool = False) -> None:
        job = self.app.training
        if job is not None and job.active:
            self.show_error(f"{job.name} is still training; stop it first (one run at a time)")
            return
        try:
            cfg = self._config(resume=resume)
            self._check_before_start(cfg)
        except TinyGPTError as e:
            self.show_error(str(e))
            return
        self.clear_error()
        job = self.app.start_training(cfg, resume=resume)
        self.watch_job(job)
        self.notify(f"{'Resuming' if resume else 'Training'} {printable(cfg.name)} …", title="training")

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
        self.notify("Stopping: the model is saved at the current step …", title="training")
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
    def watch_job(self, job: TrainingJob) -> None:
        self.source = ("job", job)
        self.view = RunState()
        self._seen = 0
        self._drawn = (-1, -1)
        self.poll()

    def follow(self, name_or_path: str) -> None:
        from tinygpt_tui.engine.folder import METRICS

        p = Path(name_or_path).expanduser()
        folder = p if p.is_dir() else Path(self.app.models_dir) / name_or_path
        if p.is_file() and p.name == METRICS:
            folder = p.parent
        if not folder.is_dir():
            self.show_error(f"no run to follow: {name_or_path} is not a model name in {self.app.models_dir} or a folder")
            return
        if not (folder / METRICS).exists():
            self.notify(f"{folder.name} has no {METRICS} yet; waiting for it to appear.", severity="warning")
        self.clear_error()
        self.source = ["file", folder, 0, 0]  # folder, offset, file size seen
        self.view = RunState()
        self._drawn = (-1, -1)
        self.notify(f"Following {printable(folder.name)} ({folder / METRICS})", title="follow")
        self.poll()

    def poll(self) -> None:
        """Take new records from the source (4 times a second) and redraw what changed."""
        if self.source is None or self.view is None:
            return
        if self.source[0] == "job":
            job = self.source[1]
            recs = job.records
            n = len(recs)
            for rec in recs[self._seen : n]:
                self.view.apply(rec)
            self._seen = n
        else:
            from tinygpt_tui.engine.folder import METRICS, read_metrics

            _, folder, offset, _size = self.source
            try:
                size = (folder / METRICS).stat().st_size
            except OSError:
                size = 0
            if size < offset:  # rewritten (a resume cut it back): start over
                self.view, offset = RunState(), 0
                self._drawn = (-1, -1)
            if size != offset:
                records, offset = read_metrics(folder, offset)
                for rec in records:
                    self.view.apply(rec)
            self.source[2], self.source[3] = offset, size
        self.render_view()

    # ------------------------------------------------------------ drawing
    def render_view(self) -> None:
        v = self.view
        title = Text()
        if v is None:
            title.append("No run yet. ", style="bold")
            title.append("Fill in the form and press Start (Ctrl+S), or follow a run started elsewhere.", style="dim")
            self.query_one("#run-title", Static).update(title)
            self.query_one("#run-progress-text", ProgressLine).show([])
            return
        if self.source[0] == "job":
            src = self.source[1]
            title.append(printable(src.name), style="bold")
            state = {"starting": "preparing", "running": "training", "stopping": "stopping · saving",
                     "done": "finished", "stopped": "stopped (saved; Resume continues it)", "failed": "failed"}[src.state]
            style = {"failed": "bold red", "done": "bold green"}.get(src.state, "bold magenta")
            title.append(f"  {state}", style=style)
            if src.state == "failed":
                title.append(f": {printable(src.error)}", style="red")
        else:
            folder = self.source[1]
            title.append(printable(folder.name), style="bold")
            title.append("  following metrics.jsonl", style="bold cyan")
            if v.finish:
                title.append(f" · {printable(str(v.finish.get('reason', 'finished')))}", style="green")
            elif not v.records:
                title.append(" · waiting for records", style="dim")
        s = v.start
        if s:
            parts = [str(s.get("device", "?")), str(s.get("dtype", ""))]
            if isinstance(s.get("params"), int):
                parts.append(f"{s['params']:,} params")
            if s.get("corpus"):
                parts.append(f"corpus {s['corpus']}")
            title.append("\n" + printable(" · ".join(p for p in parts if p)), style="dim")
        self.query_one("#run-title", Static).update(title)

        bar = self.query_one("#run-progress", ProgressBar)
        bar.update(total=1.0, progress=v.progress)
        self.query_one("#run-progress-text", ProgressLine).show(progress_parts(v))

        key = (len(v.steps) + len(v.eval_steps), v.steps[-1] if v.steps else -1)
        if key != self._drawn and self.chart is not None:
            self._drawn = key
            self.chart.show(v)
        shown = (id(v), v.sample_step, len(v.sample))
        if shown != self._sample_shown:
            self._sample_shown = shown
            box = self.query_one("#run-sample-box")
            if v.sample_step is not None:
                box.border_title = f"Latest sample (step {v.sample_step:,})"
                self.query_one("#run-sample", Static).update(Text(printable(v.sample)))
            else:
                box.border_title = "Latest sample"
                self.query_one("#run-sample", Static).update(Text("The model writes a sample at each evaluation.", style="dim"))
