"""A training run's progress as the app sees it: its records folded into one RunState, and the widgets
that draw it (the loss chart, the legend, and the progress line's parts, which app/bars.py's FitLine
draws), used by the training, runs and experiment screens. A run started in the app is a ``TrainingJob`` owned by the app (app/jobs.py: it outlives
the training screen); the training screen shows a ``Watched``: that job, or a run followed
through its ``metrics.jsonl`` (the same records, read from the file).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from tinygpt_tui import chart
from tinygpt_tui.app.bars import Part
from tinygpt_tui.chart import Series
from tinygpt_tui.engine.events import measuring_words
from tinygpt_tui.tokenizer import one_line

if TYPE_CHECKING:
    from tinygpt_tui.app.jobs import TrainingJob

RESUME_KEY = "Ctrl+R"  # the training screen's key for resuming (named in the error for a name taken)


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


MAX_STEP = 10**15  # a step past this is a damaged record, not a run (a 400-digit step overflowed the chart)


def _step(v):
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_STEP else None


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
    preparing: dict = field(default_factory=dict)  # the corpus's preparation (its last "prepare" record), until the start
    prep_from: tuple = (None, 0)  # (time, bytes done) the pace of its stage is measured from
    measuring: dict = field(default_factory=dict)  # the "measuring" record: the whole validation split, after the last step

    def apply(self, rec: dict) -> None:
        kind = rec.get("event")
        step = _step(rec.get("step"))
        self.records += 1
        if kind == "prepare":
            if rec.get("stage") != self.preparing.get("stage"):  # a stage starts as the one before it ends
                before = _num(self.preparing.get("time"))
                self.prep_from = (before, 0) if before is not None else (_num(rec.get("time")), _num(rec.get("done")) or 0)
            self.preparing = rec
        elif kind == "start":
            self.start, self.finish, self.last, self.preparing, self.measuring = rec, {}, {}, {}, {}  # a resumed run's figures start afresh
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
        elif kind == "measuring":
            self.measuring = rec
        elif kind == "finish":
            self.finish = rec

    def _cut(self, step: int, evals_only: bool = False) -> None:
        if not evals_only:
            keep = sum(1 for s in self.steps if s <= step)
            del self.steps[keep:], self.losses[keep:]
        keep = sum(1 for s in self.eval_steps if s <= step)
        del self.eval_steps[keep:], self.train_losses[keep:], self.val_losses[keep:]

    @property
    def full_val_loss(self) -> float | None:
        """The validation loss on the whole split, measured once the run finished (None before, or if damaged)."""
        return _num(self.finish.get("val_loss")) if self.finish else None

    @property
    def measuring_note(self) -> str | None:
        """What the run's end is doing while it measures the whole validation split (its steps done), or None."""
        if not self.measuring or self.finish:
            return None
        return measuring_words(one_line(self.measuring.get("scope"))[:100], _step(self.measuring.get("tokens")))

    @property
    def step(self) -> int:
        for r in (self.finish, self.measuring, self.last, self.start):
            if _step(r.get("step")) is not None:
                return r["step"]
        return 0

    @property
    def progress(self) -> float | None:
        if self.preparing and not self.start:  # (how far the preparation's stage has got; None: nothing measures it)
            return preparation(self)[0]
        if self.measuring_note is not None:  # the steps are done (the last perhaps not logged); the whole split is measured
            return 1.0
        if self.finish:
            return 1.0 if self.finish.get("reason") in ("done", "budget") else (_num(self.last.get("progress")) or 0.0)
        p = _num(self.last.get("progress"))
        if p is None:  # no step logged yet (a resumed run starts part-way)
            ms, st = _step(self.start.get("max_steps")), _step(self.start.get("step"))
            p = st / ms if ms and st is not None else 0.0
        return min(1.0, max(0.0, p))


class Watched:
    """What the training screen shows: the app's run (job), or a run followed through its
    metrics.jsonl (folder), read on from where the last poll stopped."""

    def __init__(self, job: TrainingJob | None = None, folder: Path | None = None):
        self.job, self.folder = job, folder
        self.run = job.run if job is not None else RunState()
        self.offset = 0

    def poll(self) -> None:
        """Read what a followed run appended since the last poll (a job's records arrive as messages)."""
        if self.folder is None:
            return
        from tinygpt_tui.engine.folder import METRICS, read_metrics

        try:
            size = (self.folder / METRICS).stat().st_size
        except OSError:
            size = 0
        if size < self.offset:  # rewritten (a resume cut it back): start over
            self.run, self.offset = RunState(), 0
        if size != self.offset:
            records, self.offset = read_metrics(self.folder, self.offset)
            for rec in records:
                self.run.apply(rec)


REFERENCE_COLOUR = 245  # the shipped model's curve: grey, behind the run's own


@functools.lru_cache(maxsize=8)
def reference_curves(corpus: str):
    """(name, engine.runs.Curves) of the shipped model trained on this corpus, or None (read once)."""
    from tinygpt_tui.engine.runs import Curves, shipped_models, summarize

    for f in shipped_models():
        s = summarize(f)
        if corpus and s.ok and s.corpus == corpus:
            return f.name, Curves(f)
    return None


def reference_line(name: str, xs: list, ys: list, up_to: int) -> Series:
    """The shipped model's validation curve (xs, ys: its evaluations) over a chart that ends at step `up_to`:
    drawn on to that edge (between its evaluations either side), its legend saying from which step when it
    starts late (the shipped run's first evaluation is at step 200: a 300-step run's chart showed one dot
    while the legend named a curve), and a lone evaluation drawn as a point and said to be one."""
    pts = [(x, y) for x, y in zip(xs, ys) if x <= up_to]
    after = next(((x, y) for x, y in zip(xs, ys) if x > up_to), None)
    if pts and after is not None and pts[-1][0] < up_to:
        (x0, y0), (x1, y1) = pts[-1], after
        pts.append((up_to, y0 + (y1 - y0) * (up_to - x0) / (x1 - x0)))
    label, short, marker = f"{name} (shipped, val)", "shipped val", "braille"
    if len(pts) == 1:
        label, short, marker = f"{name} (shipped, val at step {pts[0][0]:,})", f"shipped val at step {pts[0][0]:,}", "dot"
    elif pts and pts[0][0] > up_to / 10:
        label, short = f"{name} (shipped, val from step {pts[0][0]:,})", f"shipped val, from step {pts[0][0]:,}"
    return Series([x for x, _ in pts], [y for _, y in pts], REFERENCE_COLOUR, marker, label, short)


def good_looks_like(run: RunState) -> tuple[Series | None, Text]:
    """What good looks like for this run: the shipped model's validation curve on its corpus (over the
    run's steps: reference_line), and a line naming the stage its validation loss has reached, and overfitting if so."""
    from tinygpt_tui.engine.runs import EvalPoint, overfitting, stage

    corpus = str(run.start.get("corpus", "")) if run.start else ""
    ref, note = reference_curves(corpus) if corpus else None, Text()
    line = None
    if ref is not None:
        line = reference_line(ref[0], *ref[1].val("steps", None), _step(run.start.get("max_steps")) or run.step)
    reached = stage(corpus, run.val_losses[-1]) if run.val_losses else None
    if reached:
        note.append(f"stage ≈{reached[0]:.1f}: {reached[1]}", style="bold green")
    warning = overfitting([EvalPoint(s, 0, 0.0, t, v) for s, t, v in zip(run.eval_steps, run.train_losses, run.val_losses)])
    if warning:
        note.append(("\n" if note else "") + warning, style="bold yellow")  # ("overfitting: validation loss rose ...")
    return line, note


class LossChart(Widget):
    """Loss curves (tinygpt_tui/chart.py draws them): a training run's (show: the training loss at every
    logged step, the train/val estimates at each evaluation, a reference curve behind them), or any
    series against steps, tokens or minutes (show_lines)."""

    DEFAULT_CSS = "LossChart { width: 1fr; height: 1fr; }"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.lines: list[Series] = []
        self.series: dict[str, tuple[list, list]] = {}  # label: (xs, ys), of the labelled lines
        self.points = 0
        self.xlabel, self.title_text = "step", "loss"
        self.rows: list = []  # the chart drawn at the size in rows_size (drawn again when either changes)
        self.rows_size = None

    def show(self, run: RunState, reference: Series | None = None) -> None:
        from tinygpt_tui.engine.runs import kept_at, thin

        lines = [Series(*thin(run.steps, run.losses), "cyan", label="loss"),
                 Series(*thin(run.eval_steps, run.train_losses), "dark_orange", "dot", "train (eval)", "train"),
                 Series(*thin(run.eval_steps, run.val_losses), "magenta", "dot", "val (eval)", "val")]
        at, fv = kept_at(run.finish, run.val_losses), run.full_val_loss  # (the evaluations' are estimates on a few batches)
        if fv is not None and at is not None:  # the progress line's "val (full split)", where the weights kept are from
            lines.append(Series([run.eval_steps[at]], [fv], "green", chart.FINAL, "final val (whole split)", "final val"))
        self.show_lines(([reference] if reference and reference.xs else []) + lines, "step", "loss",
                        len(run.steps) + len(run.eval_steps))

    def show_lines(self, lines: list[Series], xlabel: str = "step", title: str = "loss", points: int | None = None) -> None:
        self.lines, self.xlabel, self.title_text = lines, xlabel, title
        self.series = {ln.label: (ln.xs, ln.ys) for ln in lines if ln.label}
        self.points = sum(len(ln.xs) for ln in lines) if points is None else points
        self.rows_size = None
        self.refresh()

    def draw(self, width: int, height: int) -> list:
        xs_all = [x for ln in self.lines for x in ln.xs]
        if not xs_all:  # an empty frame, not a meaningless -1..1 axis; waiting only if there are curves to wait for
            waiting = " (waiting for the first steps)" if self.lines else ""
            return chart.draw([], width, height, f"{self.title_text}{waiting}", self.xlabel,
                              chart.Axis(0, 100), chart.Axis(0, 5))
        x = None
        if self.xlabel != "minutes":  # whole steps or tokens
            lo, hi = min(xs_all), max(xs_all)
            ticks = chart.step_ticks(lo, hi, 6 if width >= 60 else 4)  # labels like 10,000 need room
            x = chart.Axis(lo, hi if hi > lo else lo + 1, ticks, [chart.fmt_tick(t) if self.xlabel == "tokens" else f"{t:,}" for t in ticks])
        return chart.draw(self.lines, width, height, self.title_text, self.xlabel, x)

    def drawn(self) -> list:
        size = (self.size.width, self.size.height)
        if size != self.rows_size:
            self.rows, self.rows_size = self.draw(*size), size
        return self.rows

    def render(self) -> Text:
        """The chart as text (what render_line paints a line at a time)."""
        return chart.to_text(self.drawn())

    def render_line(self, y: int) -> Strip:
        size, rows = (self.size.width, self.size.height), self.drawn()
        base = self.rich_style
        if y >= len(rows):
            return Strip.blank(size[0], base)
        return Strip([Segment(text, base + Style.parse(style) if style else base) for text, style in rows[y]]).adjust_cell_length(size[0], base)


def legend_text(entries: list[Text], tail: Text, width: int, rows: int, more: str = "") -> Text:
    """A legend's entries (a run's ━━ and its name: one never broken across lines), then `tail`, in lines of
    `width` cells, `rows` at most: the entries that don't fit are counted ("+3 more" and `more`)."""
    width = max(20, width)

    def cut(t: Text) -> Text:
        t = t.copy()
        t.truncate(width, overflow="ellipsis")
        return t

    items, tail = [cut(e) for e in entries], cut(tail)
    for n in range(len(items), -1, -1):
        left = len(items) - n
        extra = ([cut(Text(f"+{left} more{more}", style="dim"))] if left else []) + ([tail] if tail.plain else [])
        lines: list[Text] = []
        for t in items[:n] + extra:
            if lines and lines[-1].cell_len + 2 + t.cell_len <= width:
                lines[-1] = Text.assemble(lines[-1], "  ", t)
            else:
                lines.append(t)
        if len(lines) <= rows:
            break
    return Text("\n").join(lines[:rows])


class Legend(Static):
    """A chart's legend (legend_text), laid out at the width the widget has, and again when that changes:
    laid out before the screen had its size, it was wrapped for 80 columns, and at 80x24 a run's ━━ ended
    one line, its name began the next, and the runs past the third line were cut off unsaid."""

    ROWS = 3  # (its CSS max-height)

    def __init__(self, more: str = "", **kw):
        super().__init__(**kw)
        self.more, self.entries, self.tail, self.laid = more, [], Text(), None

    def show(self, entries: list[Text], tail: Text | None = None) -> None:
        self.entries, self.tail = entries, tail or Text()
        self.lay_out()

    def lay_out(self) -> None:
        text = legend_text(self.entries, self.tail, self.content_region.width or 78, self.ROWS, self.more)
        if text != self.laid:  # (an update lays the screen out again)
            self.laid = text
            self.update(text)

    def on_resize(self) -> None:
        self.lay_out()


def preparation(v: RunState, live: bool = True) -> tuple[float | None, list[Part]] | None:
    """A run preparing its corpus (not started yet): how far its stage has got (0..1; None for one nothing measures, the
    BPE's merges), and the figures saying it: the stage, kept longest, then the share done, the time left (while it goes
    on) and the bytes (unmeasured: the time it has taken, and that the time left is unknown); None once started."""
    from tinygpt_tui.engine.sources import STAGE_WORDS

    p = v.preparing
    if not p or v.start:
        return None
    done, total, t = _num(p.get("done")) or 0, _num(p.get("total")) or 0, _num(p.get("time"))
    frac, stage = min(1.0, max(0.0, done / total)) if total > 0 else 0.0, str(p.get("stage", ""))
    words = STAGE_WORDS.get(stage, one_line(stage)[:100])  # (a followed log's own words: escapes set the terminal's title)
    t0, d0 = v.prep_from
    if total <= 0:
        took = f"{fmt_duration(t - t0)} so far" if t is not None and t0 is not None and t >= t0 else ""
        return None, [Part(f"preparing the corpus: {words}", 0, "bold", words), *([Part(took, 1)] if took else []),
                      *([Part("time left unknown", 2)] if live else [])]
    parts = [Part(f"preparing the corpus: {words}", 0, "bold", words), Part(f"{frac:.0%}", 1)]
    if live and t is not None and t0 is not None and done > d0 and t > t0:
        parts.append(Part(f"{fmt_duration((t - t0) * (total - done) / (done - d0))} left", 2))
    if total > 0:
        parts.append(Part(f"{done / 1e6:,.1f} of {total / 1e6:,.1f} MB", 3))
    return frac, parts


def progress_parts(v: RunState, live: bool = True, failed: bool = False) -> list[Part]:
    """The figures under the progress bar; kept longest: step, loss (at the end: full val), ETA, val, time, speed (while the
    corpus is prepared: its stage, share done and time left; ``live``: the preparation is going on; ``failed``: the
    run failed, where it got to, not its preparation's 100%: the title says why)."""
    if failed:
        return [Part(f"failed at step {v.step:,}" if v.start else "failed before training began: nothing trained", 0, "bold red", "failed"),
                *([Part(f"loss {v.losses[-1]:.3f}", 1)] if v.start and v.losses else [])]
    if (prep := preparation(v, live)) is not None:
        return prep[1]
    s, last = v.start, v.last
    max_steps = _step(s.get("max_steps")) if s else None
    of = f" / {max_steps:,}" if max_steps is not None else ""
    parts = [Part(f"step {v.step:,}{of}", 0, "bold", f"{v.step:,}{of.replace(' ', '')}" if of else "")]  # (a bare 50 says nothing)
    if (measuring := v.measuring_note) is not None:  # the steps are done, the bar full: what it waits for (seconds, a minute
        parts[0].rank = 1  # for a big corpus) is kept longest, and the last step's figures, not what it waits on, left out
        return [*parts, Part(measuring, 0, "bold yellow", "measuring the validation split …")]
    if last and not v.finish:
        rate = fmt_rate(last.get("tokens_per_s"))
        parts += [Part(f"{rate} tok/s", 5, short=f"{rate}/s"), Part(f"ETA {fmt_duration(last.get('eta_s'))}", 2)]
    fv = v.full_val_loss
    if v.losses:  # (at a run's end, its last batch's loss gives way before the whole split's, the run's result)
        parts.append(Part(f"loss {v.losses[-1]:.3f}", 3 if v.finish and fv is not None else 1))
    if v.val_losses and fv is None:
        parts.append(Part(f"val {v.val_losses[-1]:.3f}", 3))
    if v.finish:
        took = fmt_duration(v.finish.get("elapsed_s"))  # (a run stopped (Ctrl+O) is not "done": it resumes)
        said = "stopped after" if v.finish.get("reason") == "stopped" else "done in"
        parts.append(Part(f"{said} {took}", 4, "green", f"in {took}"))
        if fv is not None:  # the whole validation split, not the estimate
            parts.append(Part(f"val (full split) {fv:.3f}", 1, "green", f"val {fv:.3f}"))
    return parts


def name_taken(name: str, models_dir, key: str) -> str:
    return f"a model named {name!r} already exists in {models_dir}; pick another name, or press {key} to resume it"
