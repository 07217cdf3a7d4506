"""The runs screen (F3): every model folder with a checkbox, the checked runs' loss curves overlaid on one
chart (train and validation, one colour per run), the x axis switchable (steps, tokens, minutes), and a
table of their final figures. Runs still training are followed through their metrics.jsonl.

Reading is done by thread workers that post messages (RunsListed, CurvesLoaded): a worker builds new
engine.runs objects and hands them over; from then on only Textual's thread touches them (a timer reads
what a live run appended, a few records a second).
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Checkbox, DataTable, SelectionList
from textual.widgets.selection_list import Selection
from textual.worker import get_current_worker

from tinygpt_tui.app.bars import KeyBar, TitleBar
from tinygpt_tui.app.messages import CurvesLoaded, RunsListed, error_line, reported
from tinygpt_tui.app.progress import Legend, LossChart, fmt_duration, fmt_rate
from tinygpt_tui.app.sidebar import human_count
from tinygpt_tui.app.table import WholeColumnsTable
from tinygpt_tui.chart import FINAL, Series
from tinygpt_tui.engine.folder import METRICS
from tinygpt_tui.names import LIST_NAME, short_name, table_name_room
from tinygpt_tui.engine.runs import SHIPPED, Curves, common_corpus, other_corpus, run_folders, stamp, summarize, tokenizers, updated_at
from tinygpt_tui.tokenizer import one_line

AXES = ("steps", "tokens", "minutes")
# 256-colour numbers, told apart on dark and light themes; a run keeps its colour while it is checked
PALETTE = (39, 208, 40, 199, 226, 51, 135, 196, 118, 33, 214, 171, 44, 160, 190, 99, 36, 202, 141, 82)
FIRST_CHECKED = 6  # runs checked when the screen opens: the newest, and others on its corpus
REFERENCE = "shakespeare"  # the shipped model checked first where there is no run of one's own
AHEAD = 40  # runs whose curves are read, unchecked, once the checked ones are drawn: checking one draws it at once
AHEAD_BYTES = 8 * 1024**2  # read ahead, one at a time, only a log this small (a 45 MB one held the GIL: keys took 0.1-0.4 s)
KEPT = 256  # a run's training-loss points read (129 to 256, and the latest): about the chart's width, half the parsing
POLL_S = 1.0  # a live run's new records are read this often
RELIST_S = 5.0  # the folder is checked (stat() alone) this often, and re-read if it changed (new runs, a live run's figures)


def colour_style(c: int) -> str:
    return f"bold color({c})"


# (two header lines, as `tinygpt runs` prints them: a column as wide as its figures, and room for the corpus at 120 columns)
TABLE_COLUMNS = ("", "run", "val\nloss", "bits/\nchar", "params", "ctx", "time", "tok/s", "status", "corpus")
CHECKBOX = cell_len(Checkbox.BUTTON_LEFT + Checkbox.BUTTON_INNER + Checkbox.BUTTON_RIGHT + " ")  # before each name in the list


LEAST_NAME = 12  # a name's characters kept beside its val loss ("les…=learned", "les…ing=rope": told apart)
LEAST_CORPUS = 8  # the runs table's corpus is cut to no fewer cells ("tinysha…"): narrower, it is left whole (→ brings it, cut to the room)
LIST_ROOM = 40  # the cells a list line has before the list is laid out


def run_prompt(s, room: int = LIST_ROOM, peers=()) -> Text:
    """A run in the list, in `room` cells: its name, then its figures (or why it is broken) dimmed. The val loss
    is the figure kept whole: the name is cut first (in the middle), down to LEAST_NAME characters, then "val"
    goes, then the word "training" of a live run's mark; the figures after it are those that fit whole.
    Narrower still, the name first (its end tells the runs apart), the figures cut."""
    t = Text(no_wrap=True, overflow="ellipsis")
    most = max(6, min(LIST_NAME, room - 1))  # (a cell for the … of the figures cut)
    if not s.ok:
        t.append("✗ ", style="bold red")
        t.append(short_name(s.name, most - 2, peers), style="bold")
        t.append(f" {one_line(s.status)}", style="red")
        return t
    live = s.status == "training"
    rest = [f for f in (human_count(s.params) if s.params else "", one_line(s.corpus) if s.corpus else "") if f]
    mark, val = " ◌ training" if live else "", f"  val {s.val_loss:.3f}" if s.val_loss is not None else ""
    if val:
        v = f"{s.val_loss:.3f}"
        forms = [(m, f) for f in (f"  val {v}", f" val {v}", f" {v}") for m in ((mark, " ◌") if live else ("",))]
        fit = next(((m, f) for m, f in forms if room - cell_len(m + f) >= min(LEAST_NAME, cell_len(one_line(s.name)))), None)
        if fit is not None:  # the figures after the val loss: those that fit whole
            (mark, val), most = fit, min(LIST_NAME, room - cell_len(fit[0] + fit[1]))
            left = room - min(most, cell_len(one_line(s.name))) - cell_len(mark + val)
            rest = rest[:next((i for i in range(len(rest)) if cell_len(" · ".join(rest[:i + 1])) + 3 > left), len(rest))]
    t.append(short_name(s.name, most, peers), style="bold")
    t.append(mark, style="magenta")
    t.append(val + ((" · " if val else "  ") + " · ".join(rest) if rest else ""), style="dim")
    return t


def not_drawn(unchecked: list, corpus: tuple[str, str]) -> Text:
    """What the legend says of the runs left unchecked (so none is left off the chart silently): why and how
    first, then the names, which the list shows anyway (cut to its one line, the names had left no room for why)."""
    if not unchecked:
        return Text()
    names = ", ".join(one_line(s.name) for s in unchecked[:3]) + (f" and {len(unchecked) - 3} more" if len(unchecked) > 3 else "")
    other = all(other_corpus(s, corpus) for s in unchecked)
    return Text(f"not drawn ({'another corpus; ' if other else ''}Space checks): {names}", style="dim")


class RunList(SelectionList):
    """The runs, a checkbox each: a long name is cut in the middle to the room the list has beside its val
    loss (its end tells an experiment's members apart), again when that room changes."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.runs: list = []  # engine.runs.RunSummary, in the list's order
        self.room = 0  # the room the lines were cut for

    def name_room(self, count: int) -> int:
        """The cells a run's name and figures have after its checkbox, with `count` runs in the list (a
        scrollbar beyond its height); run_prompt shares them out."""
        region = self.content_region
        if not region.width:
            return LIST_ROOM  # (not laid out yet)
        bar = self.styles.scrollbar_size_vertical if count > region.height else 0
        return max(7, region.width - CHECKBOX - bar)

    def show_runs(self, runs: list, checked: set) -> None:
        highlighted = self.highlighted
        self.runs, self.room = list(runs), self.name_room(len(runs))
        names = [s.name for s in runs]
        self.clear_options()
        self.add_options([Selection(run_prompt(s, self.room, names), s.name, s.name in checked, disabled=not s.ok) for s in runs])
        if highlighted is not None and highlighted < self.option_count:
            self.highlighted = highlighted

    def on_resize(self) -> None:
        if self.runs and self.name_room(len(self.runs)) != self.room:
            self.show_runs(self.runs, set(self.selected))


class RunsScreen(Screen):
    """Compare runs: pick them in the list (Space), read the chart and the table."""

    AUTO_FOCUS = "#runs-list"
    DEFAULT_CSS = Path(__file__).with_name("runs.tcss").read_text(encoding="utf-8")  # (runs.tcss says why not CSS_PATH)
    SCOPED_CSS = False
    BINDINGS = [
        Binding("x", "axis", "Axis", tooltip="Steps, tokens or minutes along the chart", id="runs-axis"),
        Binding("a", "check_all", "All", tooltip="Check every run", id="runs-all"),
        Binding("n", "check_none", "None", show=False, id="runs-none"),
        Binding("f5", "relist", "Refresh", show=False, id="runs-refresh"),
        Binding("g", "write", "Generate", tooltip="Generate with the highlighted run: the generate screen, that model loaded",
                id="runs-write"),  # (not "Write": read as writing the chart to a file)
        Binding("f4", "app.show_experiment", "Experiment", tooltip="Run a lesson or a grid of runs", id="runs-show-experiment"),
        # Ctrl+G still goes back, left out of this key bar: beside "g Generate" a second "Generate" read as the same
        Binding("ctrl+g", "app.show_generate", "Generate", show=False, id="runs-show-generate"),
    ]

    def __init__(self):
        super().__init__(id="runs")
        self.summaries: dict[str, object] = {}  # name: engine.runs.RunSummary (every folder)
        self.curves: dict[str, object] = {}  # name: engine.runs.Curves (the runs checked once, and AHEAD more)
        self.colours: dict[str, int] = {}  # name: palette colour, while checked
        self.axis = "steps"
        self.listed = False  # the folder was read once
        self.defaulted = False  # the first runs listed were checked (a folder empty at first: once runs appear in it)
        self.early: str | None = None  # "all" or "none": a or n pressed before the list came (F3 then a at once), done then
        self.loading: set[str] = set()
        self.unread: dict[str, str] = {}  # name: why its log could not be read (read again once its folder changes)
        self.said: set[str] = set()  # the unread said (when checked: one read ahead is said only then)
        self.passed: set[str] = set()  # logs too big to read ahead (read when checked)
        self.drawn = 0  # runs on the chart and in the table
        self.drawn_key = self.table_key = None
        self.seen = None  # engine.runs.stamp of the runs when last listed: listed again only when it changes

    def compose(self) -> ComposeResult:
        yield TitleBar()
        with Horizontal(id="runs-body"):
            yield RunList(id="runs-list")
            with Vertical(id="runs-view"):
                chart = LossChart(id="runs-chart")
                chart.visible = False  # shown when first drawn, with the runs read: not an empty frame, then the chart
                yield chart
                yield Legend(" (■ in the table)", id="runs-legend")
                yield WholeColumnsTable(TABLE_COLUMNS, fixed=2, id="runs-table", cursor_type="row", zebra_stripes=True, header_height=2)
        yield KeyBar(compact=True)

    def on_mount(self) -> None:
        self.chart = self.query_one("#runs-chart")
        self.query_one("#runs-list").border_title = "Runs (Space checks)"
        self.action_relist()
        self.set_interval(POLL_S, self.poll)
        self.set_interval(RELIST_S, lambda: self.action_relist(if_changed=True))

    @property
    def checked(self) -> list[str]:
        return [n for n in self.query_one("#runs-list", SelectionList).selected if n in self.summaries and self.summaries[n].ok]

    # ------------------------------------------------------------ reading (thread workers)
    @work(thread=True, exclusive=True, group="runs-list", exit_on_error=False)
    def list_runs(self) -> None:
        """Summarize the runs; one whose files have not changed since the last listing keeps its summary."""
        before = dict(self.summaries)  # (read only: a summary is never changed once made)
        try:
            out = []
            for name, p in run_folders(self.app.models_dir):
                old = before.get(name)
                out.append(old if old is not None and old.folder == p and old.status != "training" and old.updated == updated_at(p)
                           else summarize(p, name))
            self.post_message(RunsListed(out))
        except Exception as e:  # noqa: BLE001 (an unreadable folder: a notification, not a crash)
            self.post_message(RunsListed([], error_line(e)))

    @work(thread=True, group="runs-load", exit_on_error=False)
    def load_curves(self, wanted: list[tuple[str, Path]], most: int | None = None) -> None:
        worker, out = get_current_worker(), {}
        for name, folder in wanted:
            if worker.is_cancelled:
                return
            try:  # (most: the bytes of a log read ahead; a bigger one is left, None, to be read when checked)
                big = most and os.path.isfile(folder / METRICS) and os.path.getsize(folder / METRICS) > most
                out[name] = None if big else Curves(folder, max_kept=KEPT)
            except Exception as e:  # noqa: BLE001 (a damaged log: the run is drawn without curves)
                out[name] = error_line(e)
        self.post_message(CurvesLoaded(out))

    @on(RunsListed)
    def _listed(self, message: RunsListed) -> None:
        if message.error:
            self.notify(message.error, title="runs", severity="error", timeout=8)
            return
        first = not self.defaulted and any(s.ok for s in message.summaries)
        self.listed = True
        old = self.summaries
        self.summaries = {s.name: s for s in message.summaries}
        sl = self.query_one("#runs-list", RunList)
        checked = set(sl.selected)
        # the first view draws something (an empty chart stayed empty once a run came), as does one whose checked runs were all deleted
        if first or checked and not checked & self.summaries.keys():
            self.defaulted, early = True, self.early if first else None
            checked = {s.name for s in message.summaries if s.ok} if early == "all" else set() if early else set(self.first_checked(message.summaries))
        if [(s.name, s.status, s.val_loss) for s in old.values()] != [(s.name, s.status, s.val_loss) for s in message.summaries]:
            sl.show_runs(message.summaries, checked)
            if first and sl.option_count:
                sl.highlighted = 0  # (Space checks the first run at once)
        for name in [*self.curves, *self.unread]:  # a folder gone, or rewritten by a new run (an unread log: changed): read it afresh
            if name not in self.summaries or (name in old and (self.summaries[name].updated < old[name].updated
                                                                or name in self.unread and self.summaries[name].updated != old[name].updated)):
                self.curves.pop(name, None)
                self.unread.pop(name, None)
                self.said.discard(name)
        self.passed &= self.summaries.keys()
        self.update_view()

    def first_checked(self, summaries: list) -> list[str]:
        """The runs checked when the screen opens: the user's newest run and others on its corpus; with none of
        their own yet, the shipped Shakespeare model (a fresh checkout's folders share one time: newest was chance)."""
        if not (ok := [s for s in summaries if s.ok]):
            return []
        own = [s for s in ok if s.name not in SHIPPED]
        newest = max(own, key=lambda s: s.updated) if own else next((s for s in ok if s.name == REFERENCE), max(ok, key=lambda s: s.updated))
        same = [s for s in sorted(ok, key=lambda s: -s.updated) if not other_corpus(s, (newest.corpus, newest.corpus_sha256))]
        return [s.name for s in same[:FIRST_CHECKED]]

    @on(CurvesLoaded)
    def _curves_loaded(self, message: CurvesLoaded) -> None:
        for name, c in message.curves.items():
            self.loading.discard(name)
            if isinstance(c, str):
                self.unread[name] = c  # (said by update_view once checked; not read again and again)
            if c is None or isinstance(c, str):  # (None: a log too big to read ahead)
                self.passed.add(name)
                continue
            self.curves[name] = c
        self.update_view()

    @reported("runs")
    def poll(self) -> None:
        """Read what the checked live runs appended (a few records: done here, on Textual's thread)."""
        changed = False
        for name in self.checked:
            c, s = self.curves.get(name), self.summaries.get(name)
            if c is not None and s is not None and (s.status == "training" or not c.finished):
                changed |= c.update()
        if changed:
            self.update_view()

    def on_resize(self) -> None:
        if self.listed:  # the table's names are cut to its width
            self.call_after_refresh(self.update_view)

    # ------------------------------------------------------------ actions
    @on(SelectionList.SelectedChanged)
    def _checked(self) -> None:
        self.update_view()

    def action_axis(self) -> None:
        self.axis = AXES[(AXES.index(self.axis) + 1) % len(AXES)]
        self.notify(f"x axis: {self.axis}", timeout=2)
        self.update_view()

    def action_check_all(self) -> None:
        self.early = None if self.defaulted else "all"
        self.query_one("#runs-list", SelectionList).select_all()

    def action_check_none(self) -> None:
        self.early = None if self.defaulted else "none"
        self.query_one("#runs-list", SelectionList).deselect_all()

    def action_relist(self, if_changed: bool = False) -> None:
        """F5; every RELIST_S, only if the runs' files' stat() changed (engine.runs.stamp): no worker every 5 s at rest."""
        if (seen := stamp(self.app.models_dir, self.summaries.values())) != self.seen or not if_changed:
            self.seen = seen
            self.list_runs()

    def action_write(self) -> None:
        """The highlighted run's model, loaded on the generate screen (what a comparison leads to: read what it writes)."""
        sl = self.query_one("#runs-list", SelectionList)
        s = self.summaries.get(sl.get_option_at_index(sl.highlighted).value) if sl.highlighted is not None else None
        if s is None:
            return
        if not s.ok:
            self.notify(f"{one_line(s.name)}: {one_line(s.status)}", title="runs", severity="error", timeout=8)
            return
        self.app.run_on("generate", f"pick_named({s.name!r})")

    # ------------------------------------------------------------ drawing
    def update_view(self) -> None:
        checked = self.checked
        self.colours = {n: c for n, c in self.colours.items() if n in checked}
        for name in checked:
            if name not in self.colours:
                used = set(self.colours.values())
                self.colours[name] = next((c for c in PALETTE if c not in used), PALETTE[len(self.colours) % len(PALETTE)])
        for name in [n for n in checked if n in self.unread and n not in self.said]:
            self.said.add(name)
            self.notify(f"{one_line(name)}: {self.unread[name]}", title="runs", severity="error", timeout=8)
        missing = [(n, self.summaries[n].folder) for n in checked if n not in self.curves and n not in self.loading | self.unread.keys()]
        if missing:
            self.loading.update(n for n, _ in missing)
            self.load_curves(missing)
        waiting = [n for n in checked if n in self.loading]
        if waiting:  # chart, legend and table change once, when the curves are in (each change is a frame)
            self.query_one("#runs-view").border_title = f"{self.drawn} of {len(self.summaries)} runs drawn · reading {len(waiting)} …"
            return
        self.draw_chart(checked)
        self.draw_table(checked)
        ahead = [(n, s.folder) for n, s in self.summaries.items() if s.ok and n not in self.curves and n not in self.passed]
        if ahead and not self.loading and len(self.curves) < AHEAD:  # (one at a time, while the user reads the screen:
            self.loading.add(ahead[0][0])                             # a run checked meanwhile waits for that one at most)
            self.load_curves(ahead[:1], AHEAD_BYTES)

    def draw_chart(self, checked: list[str]) -> None:
        points = 2 * max(60, min(200, self.chart.size.width or 100))  # a point for each braille dot across
        corpus = common_corpus([self.summaries[n] for n in checked])
        bits = len(tokenizers([self.summaries[n] for n in checked])) > 1  # (losses per token don't compare: bits/char do)
        lines, entries = [], []
        for name in checked:
            c, colour = self.curves.get(name), self.colours[name]
            if c is None:
                continue
            if bits:  # (a loss per token: a BPE run's is per several characters; bits per character compare)
                lines.append(Series(*c.val_bpc(self.axis, points), colour, "dot"))
            else:
                lines.append(Series(*c.train(self.axis, points), colour))
                lines.append(Series(*c.val(self.axis, points), colour, "dot"))
            if c.final_val(self.axis, bits)[0]:  # the table's figure, over the whole split (a finished run's)
                lines.append(Series(*c.final_val(self.axis, bits), colour, FINAL))
            entry = Text("━━ ", style=colour_style(colour)) + Text(one_line(name))
            if not c.steps and not c.evals:  # (a converted or imported model: in the table, no line to draw)
                entry.append(" no loss log", style="dim")
            elif self.summaries[name].log_cut is not None:  # (its lines stop short; the table's figures are config.json's)
                entry.append(f" log cut at step {self.summaries[name].log_cut:,}", style="bold yellow")
            if c.skipped:  # (a log past engine.runs.MAX_LOG: its end is drawn)
                entry.append(f" its log's first {c.skipped >> 20:,} MB not read", style="bold yellow")
            if other_corpus(self.summaries[name], corpus):  # drawn, and said to be apart
                entry.append(" ≠ other corpus", style="bold yellow")
            entries.append(entry)
        key = (tuple(checked), self.axis, tuple((len(c.steps), len(c.evals), c.final) for c in map(self.curves.get, checked) if c),
               self.chart.size.width, tuple(self.summaries))
        if key == self.drawn_key:
            return
        self.drawn_key = key
        # which is which: the dots are estimates on a few batches, the ◆ the table's figure (the whole split)
        final = f", final {FINAL} (whole split: the table's)" if any(ln.marker == FINAL and ln.xs for ln in lines) else ""
        title = (f"validation bits per character: estimates •{final}" if bits  # (why: the border, which has the room)
                 else f"loss: train ─, val estimates •{final}" if lines else "loss (check runs in the list)" if self.summaries
                 else "loss (no runs yet)")  # (not "check runs" beside an empty list)
        # (80x24: the words in brackets go; the chart is hidden, 0 wide, until its first drawing: its box's width)
        if len(title) > (self.chart.size.width or self.query_one("#runs-view").content_region.width or 80):
            title = title.split(" (whole")[0].replace("validation bits per character", "bits/char")
        self.chart.show_lines(lines, self.axis if self.axis != "steps" else "step", title)
        self.chart.visible = True
        if not self.summaries:  # (how to add one: the list beside is empty too)
            entries, tail = [], Text(f"No runs yet: train one (Ctrl+T); read from {one_line(str(self.app.models_dir))}", style="dim")
        elif not checked:
            entries, tail = [], Text("Space checks a run (a: all) to draw it here.", style="dim")
        else:
            tail = not_drawn([s for s in self.summaries.values() if s.ok and s.name not in checked], corpus)
        self.query_one("#runs-legend", Legend).show(entries, tail)

    def draw_table(self, checked: list[str]) -> None:
        runs = [self.summaries[n] for n in checked]
        self.drawn = len(runs)
        view = self.query_one("#runs-view")
        if (title := f"{len(runs)} of {len(self.summaries)} runs drawn · x: {self.axis} (x switches)") != view.border_title:
            view.border_title = title  # (set, the same, it is a frame: one each relisting, every RELIST_S, idle)
        table = self.query_one("#runs-table", DataTable)
        key = (tuple(id(s) for s in runs), table.size.width)  # (a resize cuts the names anew)
        if key == self.table_key:
            return
        self.table_key = key
        corpus = common_corpus(runs)
        by_bpc = len(tokenizers(runs)) > 1  # ranked by what compares across tokenizers
        runs.sort(key=lambda s: (s.bpc is None, s.bpc or 0.0) if by_bpc else (s.val_loss is None, s.val_loss or 0.0))
        rows = []
        for s in runs:
            other = other_corpus(s, corpus)
            status = Text(one_line(s.status), style={"finished": "green", "training": "magenta", "stopped": "yellow"}.get(s.status, "red"))
            num = lambda v, f: Text("—", style="dim") if v is None else Text(f.format(v), justify="right")  # noqa: E731
            rows.append([
                Text("■", style=colour_style(self.colours[s.name])), one_line(s.name), num(s.val_loss, "{:.4f}"), num(s.bpc, "{:.3f}"),
                Text(human_count(s.params) if s.params else "—", justify="right"), Text(str(s.context or "—"), justify="right"),
                Text(fmt_duration(s.minutes * 60) if s.minutes else "—", justify="right"),
                Text(fmt_rate(s.tokens_per_s) if s.tokens_per_s else "—", justify="right"), status,
                Text(("≠ " if other else "") + one_line(s.corpus or "?"), style="bold yellow" if other else "")])
        # long names (a lesson's members) are cut in the middle, as in the list (told apart from the same runs),
        # so the figures stay on screen
        width = table.room(len(rows))
        room = table_name_room(TABLE_COLUMNS, rows, 1, width)
        for s, row in zip(runs, rows):
            row[1] = short_name(s.name, room, list(self.summaries)) if room else row[1]
        # then, where that alone leaves the table too wide by a little, the corpus is cut at its end ("tinyshakesp…");
        # by more (80 columns), it is left whole: ← → bring it
        room = table_name_room(TABLE_COLUMNS, rows, len(TABLE_COLUMNS) - 1, width, least=0)
        for row in rows if room is not None and room >= LEAST_CORPUS else ():
            row[-1].truncate(room, overflow="ellipsis")
        table.show(rows, [s.name for s in runs])  # (the columns that fit whole; ← → the rest)
        others = [s for s in runs if other_corpus(s, corpus)]
        view.border_subtitle = " · ".join((["≠ another corpus: its loss doesn't compare"] if others else []) +
                                          (["tokens differ: bits/char, not loss per token"] if by_bpc else []))
