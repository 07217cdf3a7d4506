"""The experiment screen (F4): pick a shipped lesson or fill a small form (name, corpus, budget, one or two
settings to vary), see the time estimate, start. It shows the queue, the live chart of the member training
over the finished ones, the table ranked as members finish with the lesson's text beside it, and the
members' samples at the end (app/samples.py: side by side as the width allows).

The experiment is an ``ExperimentJob`` owned by the app (app/jobs.py: it outlives the screen, as a training run does):
its thread walks engine.experiment.run's events and posts them (ExperimentUpdate); the
job changes on Textual's thread only. Stop (Ctrl+O) saves the member under way; Start again resumes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, ContentSwitcher, DataTable, Input, Select, Static

from tinygpt_tui.app.bars import KeyBar, TitleBar, fit_line
from tinygpt_tui.app.form import form_budget, form_spec, form_values
from tinygpt_tui.app.messages import FOCUS_KEYS, Estimated, ProbeNote, error_line, reported
from tinygpt_tui.app.progress import Legend, LossChart, fmt_duration, fmt_rate, preparation
from tinygpt_tui.app.runs import PALETTE, colour_style
from tinygpt_tui.app.samples import SampleGrid
from tinygpt_tui.app.table import WholeColumnsTable
from tinygpt_tui.app.training import row
from tinygpt_tui.chart import FINAL, Series
from tinygpt_tui.engine.experiment import short_names
from tinygpt_tui.engine.lessons import list_lessons
from tinygpt_tui.errors import SettingsError, TinyGPTError
from tinygpt_tui.tokenizer import one_line, printable

OWN = "(your own: the form)"
ESTIMATE_AFTER_S = 0.8  # a pause in the typing after which the estimate is worked out again
MARKS = {"queued": ("·", "dim"), "running": ("▶", "bold magenta"), "finished": ("✓", "green"), "kept": ("✓", "green"),
         "stopped": ("■", "yellow"), "failed": ("✗", "bold red")}


class ExperimentScreen(Screen):
    """Run a lesson or a grid of your own, and read its results."""

    AUTO_FOCUS = "#exp-lesson"
    DEFAULT_CSS = "\n".join(Path(__file__).with_name(f).read_text(encoding="utf-8") for f in ("training.tcss", "runs.tcss")) + """
    ExperimentScreen #exp-estimate { color: $text-muted; margin-top: 1; }
    ExperimentScreen.-short #exp-estimate { margin-top: 0; }
    ExperimentScreen.-short #exp-estimate.-empty { display: none; }
    ExperimentScreen .form-row.-wraps { height: auto; }
    """  # (the form's rows: training's; the estimate is no form-hint, which a short terminal hides; a lesson's
    # title picked wraps in its row, not cut at 80 columns)
    SCOPED_CSS = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", tooltip="Start, or resume a stopped experiment of this name", id="exp-start"),
        Binding("ctrl+o", "stop", "Stop", tooltip="Stop; finished members are kept", id="exp-stop"),
        Binding("f6", "axis", "Axis", tooltip="Steps, tokens or minutes along the chart", id="exp-axis"),
        Binding("f7", "samples", "Samples", tooltip="The chart, or the members' samples side by side", id="exp-samples"),
        Binding("f3", "app.show_runs", "Runs", show=False, tooltip="Compare runs", id="exp-show-runs"),  # (room for F6 at 80 columns)
        *FOCUS_KEYS,
    ]

    def __init__(self):
        super().__init__(id="experiment")
        self.lessons: list = []
        self.auto_name = ""  # the name the form gave itself (a lesson's, at its budget): a budget typed renames it
        self.saved: str | None = None  # the experiment saved before whose settings the form shows (it resumes)
        self.drawn = self.text_for = self.samples_of = None  # the job drawn; whose lesson text is shown; (job, samples) shown
        self.reading = None  # the job that reads a finished experiment's results (it trains nothing)
        self.rows: list = []  # the results table's rows (engine.experiment.Row), in its order
        self.axis: str | None = None  # the chart's x (F6); None: the budget's, minutes or steps
        self.estimate_timer = None  # the estimate worked out again once the typing stops
        self.estimating = None  # the plan whose estimate is awaited (one typed before a start is stale: it is dropped)

    def compose(self) -> ComposeResult:
        yield TitleBar()
        with Horizontal(id="exp-body"):
            with VerticalScroll(id="exp-form"):
                yield row("Lesson", Select([], id="exp-lesson", prompt=OWN, allow_blank=True, compact=True), tight=False).add_class("-wraps")
                yield row("Name", Input(placeholder="e.g. my-grid", id="exp-name", restrict=r"[^/\\]*", max_length=100, compact=True), tight=False)
                yield row("Corpus", Input(placeholder="shakespeare, or a file", id="exp-corpus", compact=True))
                yield row("Minutes", Input(placeholder="each member", id="exp-minutes", restrict=r"[0-9.]*", compact=True))
                yield row("Steps", Input(placeholder="instead of minutes", id="exp-steps", restrict=r"[0-9]*", compact=True))
                yield row("Vary", Input(placeholder="pos=learned,rope", id="exp-vary1", compact=True), tight=False)
                yield row("and", Input(placeholder="n_layer=2,4 (optional)", id="exp-vary2", compact=True))
                yield row("Set", Input(placeholder="n_embd=64 dropout=0", id="exp-set", compact=True))
                yield Static(id="exp-estimate", classes="-empty")  # (not a form-hint: those hide in a short terminal; this is the figure to read)
                yield Horizontal(Button("Start", id="exp-btn-start", variant="success", compact=True),
                                 Button("Stop", id="exp-btn-stop", variant="error", compact=True), id="exp-buttons")
                yield Static(id="exp-error")
                yield Static(id="exp-queue")
                with Vertical(id="exp-text-box"):  # the lesson's text, under its queue (the table keeps the view's width)
                    yield Static(id="exp-text")
            with Vertical(id="exp-view"):
                yield Static(id="exp-title")
                with ContentSwitcher(initial="exp-chart", id="exp-switch"):
                    yield LossChart(id="exp-chart")
                    yield SampleGrid(id="exp-samples")
                yield Legend(id="exp-legend")
                yield WholeColumnsTable(("#", "member", "val loss", "bits/char", "params", "time", "tok/s", "status"), fixed=2,
                                        id="exp-table", cursor_type="row", zebra_stripes=True)  # (whole columns: ← → the rest)
        yield KeyBar(compact=True)

    def on_mount(self) -> None:
        self.chart = self.query_one("#exp-chart")
        self.query_one("#exp-form").border_title = "Experiment"
        self.query_one("#exp-text-box").border_title = "What it shows"
        self.query_one("#exp-table", WholeColumnsTable).show([], [])
        try:
            self.lessons = list_lessons()
        except TinyGPTError as e:
            self.show_error(str(e))
        self.query_one("#exp-lesson", Select).set_options(
            [(f"{one_line(x.name)}: {one_line(x.spec.title or x.name)}", x.name) for x in self.lessons])
        self.query_one("#exp-queue").display = False
        self.query_one("#exp-text-box").display = False
        self.redraws = self.set_interval(0.25, self.render_view, pause=True)  # (while an experiment runs: render_view)
        self.render_view()

    # ------------------------------------------------------------ the form
    @property
    def lesson(self):
        v = self.query_one("#exp-lesson", Select).value
        return next((x for x in self.lessons if x.name == v), None)

    def lock_grid(self) -> None:
        """What members there are is a lesson's, or a saved experiment's: their fields are shown, not edited."""
        for wid in ("#exp-vary1", "#exp-vary2", "#exp-set"):
            self.query_one(wid, Input).disabled = self.lesson is not None or self.saved is not None

    def fill(self, spec) -> None:
        """The form shows spec (no Changed messages: this is not the user typing)."""
        with self.prevent(Input.Changed):
            for wid, v in form_values(spec).items():
                self.query_one(wid, Input).value = v

    @on(Select.Changed, "#exp-lesson")
    def _lesson_picked(self) -> None:
        lesson = self.lesson
        self.saved = None
        self.lock_grid()
        if lesson is None:
            self.show_text("", "")
            return
        self.fill(lesson.spec)
        self.auto_name = lesson.spec.name
        self.show_text(lesson.spec.title, lesson.spec.text)
        self.action_estimate()

    @on(Input.Changed, "#exp-corpus, #exp-minutes, #exp-steps")
    def _budget_typed(self, event: Input.Changed) -> None:
        """A budget is minutes or steps: typing one clears the other (a lesson fills Minutes). A lesson at another
        budget or on another corpus goes to the folder `tinygpt lesson NAME --corpus C --minutes M` names (lessons.as_run:
        either resumes the other's), not a name typed."""
        from tinygpt_tui.engine.lessons import as_run

        if event.input.id != "exp-corpus":
            other = self.query_one("#exp-steps" if event.input.id == "exp-minutes" else "#exp-minutes", Input)
            if event.value.strip() and other.value:
                with self.prevent(Input.Changed):
                    other.value = ""
        name = self.query_one("#exp-name", Input)
        if self.lesson is None or name.value.strip() != self.auto_name:
            return
        try:
            minutes, steps = form_budget(lambda i: self.query_one(i, Input).value.strip())
            spec = as_run(self.lesson.spec, minutes, steps, self.query_one("#exp-corpus", Input).value.strip())
        except TinyGPTError:
            return  # (no budget, or half of two: Start says what is wrong)
        self.auto_name = spec.name
        with self.prevent(Input.Changed):
            name.value = spec.name

    @on(Input.Changed, "#exp-corpus, #exp-minutes, #exp-steps, #exp-vary1, #exp-vary2, #exp-set")
    def _settings_typed(self) -> None:
        """The estimate is of the form as it was: it is worked out again once the typing stops (cleared while incomplete)."""
        if self.estimate_timer is not None:
            self.estimate_timer.stop()
        self.estimate_timer = self.set_timer(ESTIMATE_AFTER_S, self.reestimate)

    def reestimate(self) -> None:
        if self.busy() is not None:
            return
        try:
            self.read_plan()
        except TinyGPTError:
            self.show_estimate("")  # (half typed: Enter or Start says what is wrong)
            return
        self.action_estimate()

    @on(Input.Changed, "#exp-name")
    def _name_typed(self, event: Input.Changed) -> None:
        if self.saved is not None and event.value.strip() != self.saved:
            self.saved = None  # another name: a new experiment, whose grid is the form's again
            self.lock_grid()

    def show_text(self, title: str, text: str) -> None:
        """The lesson's text beside the results (hidden when there is none)."""
        from tinygpt_tui.engine.lessons import paragraphs  # (an experiment saved before texts were kept as paragraphs)

        self.query_one("#exp-text", Static).update(Text.assemble((printable(title), "bold"), "\n", printable(paragraphs(text))))
        self.query_one("#exp-text-box").display = bool(text.strip())

    def read_plan(self):
        """(plan, resume) the form describes; a SettingsError if it can't run: a folder that another process
        writes (the command line, another app) is refused here, before it is timed or started."""
        from tinygpt_tui.engine.experiment import check_claim, load_plan, make_plan
        from tinygpt_tui.engine.runs import MANIFEST

        q = lambda i: self.query_one(i, Input).value.strip()  # noqa: E731
        models = Path(self.app.models_dir)
        name, corpus = q("#exp-name"), q("#exp-corpus")
        if name and (models / name / MANIFEST).exists():  # started before: go on with it, as it was set up
            from tinygpt_tui.engine.corpora import resolve_corpus

            plan = load_plan(name, models)
            s = plan.spec
            if corpus and Path(resolve_corpus(corpus)).resolve() != Path(plan.source).resolve():
                raise SettingsError(f"experiment {name} was run on {Path(plan.source).name}, not "
                                    f"{Path(corpus).name}; give this one another name")
            budget = form_budget(q)
            if budget != (None, None) and budget != (s.minutes, s.max_steps):
                was = f"{s.minutes:g} min" if s.minutes else f"{s.max_steps:,} steps"
                raise SettingsError(f"experiment {name} was run with {was} per member; give another budget another name")
            resume = True
        else:
            plan, resume = make_plan(form_spec(q, self.lesson), models), False
        check_claim(plan, resume)  # (a few stat calls, and the manifest read again)
        return plan, resume

    def plan_or_error(self):
        """(plan, resume) read from the form, its error cleared; or (None, False), the error shown (a saved one: its own settings)."""
        try:
            plan, resume = self.read_plan()
        except TinyGPTError as e:
            self.show_error(str(e))
            return None, False
        self.query_one("#exp-error", Static).update("")
        if resume:
            s = plan.spec
            if self.lesson is not None and self.lesson.spec.title != s.title:  # (the lesson picked is not the one saved)
                with self.prevent(Select.Changed):
                    self.query_one("#exp-lesson", Select).clear()
            self.saved = s.name
            self.fill(replace(s, corpus=self.query_one("#exp-corpus", Input).value.strip() or s.corpus))  # (the word typed stays)
            self.auto_name = s.name if self.lesson is not None else self.auto_name
            self.lock_grid()
            self.show_text(s.title, s.text)
        return plan, resume

    def action_estimate(self) -> None:
        """Work out the members and time the experiment will take (a thread: it times a few steps)."""
        if (busy := self.busy()) is not None and busy is not self.reading:  # (reading a finished one's results trains nothing)
            self.show_estimate("(the estimate waits for the run under way)")
            return
        plan, resume = self.plan_or_error()
        if plan is not None:
            self.show_estimate(f"{len(plan.members)} runs; timing a few steps …")
            self.estimating = plan
            self._estimate(plan, resume)

    def show_estimate(self, content) -> None:
        box = self.query_one("#exp-estimate", Static)
        box.update(content)
        box.set_class(not content, "-empty")  # (a short terminal gives no row to an empty one)

    @work(thread=True, exclusive=True, group="exp-estimate", exit_on_error=False)
    def _estimate(self, plan, resume: bool) -> None:
        from tinygpt_tui.engine.experiment import estimate, member_states, settle

        try:
            states = member_states(plan) if resume else {}  # a resumed experiment: only what is left to run
            todo = [m.name for m in plan.members if states.get(m.name, {}).get("state") != "finished"]
            settled = settle(plan, ProbeNote.poster(self.app.post_message, "experiment")) if todo else plan  # (a first probe: said)
            left = estimate(replace(settled, members=[m for m in settled.members if m.name in todo])) if todo else None
            self.post_message(Estimated(plan, left, resume))
        except Exception as e:  # noqa: BLE001
            self.post_message(Estimated(plan, None, resume, error_line(e)))

    @on(Estimated)
    def _estimated(self, m: Estimated) -> None:
        if m.plan is not self.estimating:
            return
        if m.error:
            self.show_estimate(Text(f"no estimate: {m.error}", style="red"))
            return
        n = len(m.plan.members)
        if m.estimate is None:  # resumed, and every member finished before: nothing to train, the results to show
            self.show_estimate(Text.assemble(f"all {n} runs finished: ", ("their results", "bold"), " (nothing to train)"))
            shown = self.app.experiment is not None and self.app.experiment.plan.folder == m.plan.folder  # (its results are)
            if self.busy() is None and not shown:
                self.query_one("#exp-switch", ContentSwitcher).current = "exp-chart"
                self.reading = self.app.start_experiment(m.plan, True)  # (it trains nothing: it reads the members, draws, samples)
                self.render_view()
            return
        budget = f"{m.plan.spec.minutes:g} min" if m.plan.spec.minutes else f"{m.plan.spec.max_steps:,} steps"
        left = len(m.estimate.member_s)
        what = f"{left} of {n} runs left, {budget} each: " if left < n else f"{n} runs of {budget}: "
        self.show_estimate(Text.assemble(
            what, (f"about {fmt_duration(m.estimate.total_s)}", "bold"),
            (" (finished runs are kept)" if left < n else " in all (resumes where each run stopped)" if m.resume else " in all"),
            f", preparing the corpus for the BPE ({fmt_duration(sum(m.estimate.prepare_s))}) included" if sum(m.estimate.prepare_s) else ""))

    # ------------------------------------------------------------ actions
    def show_error(self, message: str, notify: bool = True) -> None:
        self.query_one("#exp-error", Static).update(Text("✗ " + one_line(message), style="bold red"))
        if notify:
            self.notify(one_line(message), title="experiment", severity="error", timeout=8)

    def busy(self):
        """The app's training run or experiment under way, if any (one runs at a time)."""
        return next((j for j in (self.app.experiment, self.app.training) if j is not None and j.active), None)

    def action_start(self) -> None:
        busy = self.busy()
        if busy is not None and busy is self.reading:  # (its results, read on their own: nothing trains)
            self.notify(f"Every run of {one_line(busy.name)} has finished: its results are on their way.", title="experiment")
            return
        if busy is not None:
            self.show_error(f"{busy.name} is still running; stop it first (one run at a time)")
            return
        plan, resume = self.plan_or_error()
        if plan is None:
            return
        self.query_one("#exp-switch", ContentSwitcher).current = "exp-chart"
        if self.estimating is not None:  # (an estimate asked for before the start is of the form as it was then: dropped,
            self.estimating = None       # and "timing a few steps …" with it, which stayed for good)
            self.show_estimate("")
        self.app.start_experiment(plan, resume)
        self.render_view()
        self.notify(f"{'Resuming' if resume else 'Starting'} {one_line(plan.spec.name)}: {len(plan.members)} runs", title="experiment")

    def action_stop(self) -> None:
        job = self.app.experiment
        if job is None or not job.active:
            self.notify("No experiment is running.", severity="warning")
            return
        job.stop()
        saved = (f"{one_line(job.running)} is preparing its corpus: nothing is trained or saved" if job.preparing
                 else "the member under way is saved")
        self.notify(f"Stopping: {saved}; Start resumes the rest.", title="experiment")

    def x_axis(self, job) -> str:
        return self.axis or ("minutes" if job is not None and job.plan.spec.minutes else "steps")

    def action_axis(self) -> None:
        from tinygpt_tui.app.runs import AXES

        self.axis = AXES[(AXES.index(self.x_axis(self.app.experiment)) + 1) % len(AXES)]
        self.notify(f"x axis: {self.axis}", timeout=2)
        self.query_one("#exp-switch", ContentSwitcher).current = "exp-chart"
        self.render_view()

    def action_samples(self) -> None:
        switch, job = self.query_one("#exp-switch", ContentSwitcher), self.app.experiment
        if switch.current == "exp-chart" and not (job is not None and job.samples):  # (not an empty pane in place of the chart)
            self.notify("Each member writes a sample from the same prompt when the experiment finishes.", title="samples", timeout=4)
            return
        switch.current = "exp-samples" if switch.current == "exp-chart" else "exp-chart"

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        {"exp-btn-start": self.action_start, "exp-btn-stop": self.action_stop}[event.button.id]()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_estimate()

    # ------------------------------------------------------------ drawing
    @reported("experiment view")
    def render_view(self) -> None:
        job = self.app.experiment
        # redrawn 4 times a second while it runs; once it has ended (its last update drawn), nothing changes by itself
        (self.redraws.resume if job is not None and job.active else self.redraws.pause)()
        key = (id(job), job.version if job else 0, job.state if job else "", self.axis)
        if key == self.drawn:
            return
        self.drawn = key
        title = self.query_one("#exp-title", Static)
        if job is None:
            title.update(Text.assemble(("No experiment yet. ", "bold"), ("Pick a lesson or fill the form, then Start (Ctrl+S).", "dim")))
            return
        done = sum(st in ("finished", "kept") for st in job.members.values())
        state = {"starting": "preparing", "running": "running", "stopping": "stopping · saving", "finished": "finished",
                 "stopped": "stopped (Start resumes it)", "failed": "finished with failures"}[job.state]
        if job.state in ("starting", "running") and done == len(job.members):  # (every member trained or kept: the samples)
            state = "writing the samples …"
        if job.state == "stopping" and job.preparing:
            state = "stopping (preparing a member's corpus: nothing saved)"
        text = Text.assemble((one_line(job.name), "bold"), (f"  {state}", "bold magenta" if job.active else "bold green"),
                             f" · {done} of {len(job.members)} done", (f"\n{one_line(job.error)}", "red") if job.error else "")
        if job.active and (prep := preparation(job.live)) is not None:  # (minutes for a big corpus, or a BPE to learn)
            who = Text(f"{one_line(job.running)}: ", style=colour_style(self.colour(job, job.running)))
            text.append_text(Text("\n") + who + fit_line(prep[1], max(20, title.size.width - who.cell_len)))
        title.update(text)
        self.draw_queue(job)
        self.draw_chart(job)
        self.draw_table(job)
        self.draw_samples(job)
        if self.text_for is not job:
            self.text_for = job
            self.show_text(job.plan.spec.title, job.plan.spec.text)

    def colour(self, job, name: str) -> int:
        return PALETTE[list(job.members).index(name) % len(PALETTE)]

    def draw_queue(self, job) -> None:
        t = Text()
        for name, st in job.members.items():
            mark, style = MARKS.get(st, ("?", ""))
            t.append(f"{mark} ", style=style)
            t.append(one_line(name), style=colour_style(self.colour(job, name)))
            t.append(f"  {st}\n", style="dim")
        box = self.query_one("#exp-queue", Static)
        box.update(t)
        box.border_title = "Queue"
        box.display = True

    def draw_chart(self, job) -> None:
        from tinygpt_tui.engine.runs import overfitting

        x = self.x_axis(job)
        bits = job.plan.tokens_differ
        lines, legend = [], []
        for name in job.members:
            c = job.curves.get(name)
            if c is None:
                continue
            colour = self.colour(job, name)
            # training loss too for the member training, and for every member of a small grid (where validation
            # parts from training: overfitting, as the dropout lesson shows); more members' would be a tangle
            if not bits and (name == job.running or len(job.members) <= 4):
                lines.append(Series(*c.train(x, 200), colour))
            lines.append(Series(*(c.val_bpc(x, 200) if bits else c.val(x, 200)), colour, "dot"))
            if c.final_val(x, bits)[0]:  # the table's figure, over the whole split (a finished member's)
                lines.append(Series(*c.final_val(x, bits), colour, FINAL))
            legend.append(Text("━━ ", style=colour_style(colour)) + Text(one_line(name) + ("  (training)" if name == job.running else "")))
            if overfitting(c):  # (what the dropout lesson's text points to)
                legend[-1].append("  overfitting", style="bold yellow")
        title = ("validation bits per character •" if bits  # (why: the legend's tail, which has the room at 80 columns)
                 else "validation loss •, training loss ─" if len(job.members) <= 4 else "validation loss •, and training loss ─ of the member training")
        if any(ln.marker == FINAL and ln.xs for ln in lines):  # which is which: the dots are estimates, the ◆ the table's figure
            title = (title.replace("validation loss •", "validation estimates •").replace("training loss", "training")
                     + f", final {FINAL} (whole split)")
            title = title if len(title) <= (self.chart.size.width or 80) else title.split(" (whole")[0]
        self.chart.show_lines(lines, "step" if x == "steps" else x, title)
        why = Text("tokens differ, so bits per char", style="dim") if bits else None
        self.query_one("#exp-legend", Legend).show(legend, why)

    def draw_table(self, job) -> None:
        table, cells = self.query_one("#exp-table", WholeColumnsTable), []  # (its cursor kept across the redraw each update brings)
        self.rows = list(job.rows)
        seeds = job.plan.spec.seeds > 1
        for i, r in enumerate(job.rows):  # (the rows are read as members end: the one training now is said live)
            status = "running" if job.running in {x.name for x in r.runs} else r.status
            vl = Text("—" if r.val_loss is None else f"{r.val_loss:.4f}" + (f" ± {r.spread:.3f}" if seeds and r.spread is not None else ""))
            if r.val_loss is not None and status != "finished":  # what a stopped run kept, marked as the queue marks it
                mark, style = MARKS.get(status, ("?", ""))  # (the status column may be off screen: 80 columns)
                vl.append(f" {mark}", style=style)
            cells.append((str(i + 1), one_line(r.group), vl, "—" if r.bpc is None else f"{r.bpc:.3f}",
                          f"{r.params / 1e6:.2f}M" if r.params else "—", fmt_duration(r.minutes * 60) if r.minutes else "—",
                          fmt_rate(r.tokens_per_s) if r.tokens_per_s else "—",
                          Text(one_line(status)[:40], style="green" if status == "finished" else "yellow")))
        table.show(cells, [r.group for r in job.rows])

    @on(DataTable.RowSelected, "#exp-table")
    def _write_with(self, event: DataTable.RowSelected) -> None:
        """Enter (or a click) on a member: its model loaded on the generate screen (its first seed's), to read what it writes."""
        if not 0 <= event.cursor_row < len(self.rows):
            return
        row = self.rows[event.cursor_row]
        run = next((r for r in row.runs if r.folder.exists()), None)  # (one stopped before its first step has none)
        if run is None:
            self.notify(f"{one_line(row.group)} has not started yet: no model to generate with", timeout=4)
            return
        try:
            name = run.folder.relative_to(self.app.models_dir).as_posix()
        except ValueError:
            name = f"{run.folder.parent.name}/{run.folder.name}"
        self.app.run_on("generate", f"pick_named({name!r})")

    def draw_samples(self, job) -> None:
        if self.samples_of == (job, len(job.samples)):
            return
        self.samples_of = (job, len(job.samples))
        titles = short_names([n for n, _ in job.samples])
        self.query_one("#exp-samples", SampleGrid).show([(name, title, text) for (name, text), title in zip(job.samples, titles)])
        if job.samples:
            self.query_one("#exp-switch", ContentSwitcher).current = "exp-samples"
