"""The inspector: what the model predicts next and where it looks, for the current context.

The top-k next characters as bars, and an attention heatmap: rows are the heads of one layer (and
their average), columns the context's characters. The PyTorch model is loaded by the first pass
(the sampler's compiled weights cannot show attention). ``update_context`` follows a generation:
one pass at a time in a thread worker, starts spaced by ``interval()`` so it takes at most about a
third of a core. One pass keeps every position's logits and attention: moving costs no pass.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Region
from textual.screen import ModalScreen
from textual.widgets import Static

from tinygpt_tui.app.bars import KeyBar
from tinygpt_tui.app.messages import Inspected, error_line, reported
from tinygpt_tui.app.panel import Panel
from tinygpt_tui.cli.inspect import (ablation_text, cell, embedding_text, head_rows, heads_key, heatmap_column_at, heatmap_layout, heatmap_lines,
                                     with_cell_note, layer_rows, legend, lens_text, prob_bars, quoted, ranked_line, top_attended)
from tinygpt_tui.engine.inspect import tokens_slid
from tinygpt_tui.errors import TinyGPTError


class InspectorScreen(ModalScreen):
    """Next-character probabilities and attention heatmaps for a context."""

    DEFAULT_CSS = """
    InspectorScreen { align: center middle; }
    InspectorScreen > #inspector { width: 100%; height: 100%; background: $surface; border: round $accent; padding: 0 1; }
    InspectorScreen #insp-title { height: auto; text-style: bold; }
    InspectorScreen #insp-status, InspectorScreen #insp-key { height: auto; color: $text-muted; }
    InspectorScreen #insp-next { height: auto; max-height: 50%; }
    InspectorScreen #insp-body { height: 1fr; }
    InspectorScreen .insp-heading { height: auto; }
    InspectorScreen.-roomy .insp-heading { margin-top: 1; }
    """
    ROOMY = 34  # terminal rows from which the full top-k list and blank lines are shown

    # the footer: the keys that move and the four deeper views, short names; all heads (a), all layers (g), the rest: Ctrl+P, Keys.
    # A pair's second key is in the first's row of the keys panel (←→ Pos), not a row of its own (system: "→ Position" below it)
    BINDINGS = [
        Binding("escape", "dismiss", "Close", id="inspector-close"),
        Binding("left", "move(-1)", "Pos", key_display="←→", priority=True, tooltip="the query position: back, on", id="inspector-left"),
        Binding("right", "move(1)", "Position", show=False, priority=True, system=True, id="inspector-right"),
        Binding("home", "move_to(0)", "First", show=False, priority=True, tooltip="position", id="inspector-first"),
        Binding("end", "move_to(-1)", "Last", show=False, priority=True, tooltip="position", id="inspector-last"),
        Binding("up", "head(-1)", "Head", key_display="↑↓", priority=True, tooltip="the previous, the next, the average", id="inspector-head-up"),
        Binding("down", "head(1)", "Head", show=False, priority=True, system=True, id="inspector-head-down"),
        Binding("left_square_bracket", "layer(-1)", "Layer", key_display="[]", tooltip="the previous, the next", id="inspector-layer-down"),
        Binding("right_square_bracket", "layer(1)", "Layer", show=False, system=True, id="inspector-layer-up"),
        Binding("a", "all_heads", "All heads", show=False, id="inspector-all-heads"),
        Binding("g", "all_layers", "All layers", show=False, id="inspector-all-layers"),
        Binding("l", "deeper('lens')", "Lens", id="inspector-lens"),
        Binding("x", "deeper('ablation')", "Ablate", id="inspector-ablation"),
        Binding("e", "deeper('embeddings')", "Embed", tooltip="Embeddings", id="inspector-embeddings"),
        Binding("h", "deeper('heads')", "Hints", tooltip="Head hints", id="inspector-heads"),
        # the all-layers view is taller than most terminals: its scrolling key is in the footer
        Binding("pagedown", "page(1)", "More", key_display="PgDn", priority=True, id="inspector-page-down"),
        Binding("pageup", "page(-1)", "Scroll up", key_display="PgUp", show=False, priority=True, id="inspector-page-up"),
        # the app's keys for its screens, "anywhere" (a modal screen keeps the app's own bindings from its keys)
        Binding("ctrl+g", "app.show_generate", "Generate", show=False, id="inspector-show-generate"),
        Binding("ctrl+t", "app.show_training", "Train", show=False, id="inspector-show-training"),
        Binding("f3", "app.show_runs", "Runs", show=False, id="inspector-show-runs"),
        Binding("f4", "app.show_experiment", "Experiment", show=False, id="inspector-show-experiment"),
    ]

    def __init__(self, folder, tokenizer, context_text: str, model=None, top_k: int = 10, temperature: float = 1.0,
                 min_interval: float = 0.3, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.folder, self.model, self.tokenizer = folder, model, tokenizer
        self.top_k, self.temperature, self.min_interval = top_k, temperature, min_interval
        self.text = context_text
        self.analysis = None  # core.inspect.Analysis of the last computed text
        self.view = None  # core.inspect.Inspection at the current position
        self.error: str | None = None
        self.position: int | None = None  # None: follow the last character
        self.layer_index = 0
        self.head_index: int | None = 0  # None: the all-heads average row
        self.all_layers = False
        self.computing = False
        self.computations = 0  # forward passes done (tests and the docs' throttling claim)
        self._pending: str | None = context_text
        # characters the text has lost at its start since the inspector opened (a long generation trims its
        # context), for the text pending and for the one analysed: a pinned position follows its character
        self._pending_start = self._analysed_start = 0
        self._last_start = 0.0
        self.last_duration = 0.0  # seconds the last forward pass took
        self._timer = None
        self.query_wanted = False  # the query position to bring into view (show_query) once the map is laid out
        self.deeper: str | None = None  # lens, ablation, embeddings or heads: the view under the bars
        self.deeper_result: dict = {}  # ablation (per analysis and position), embeddings, heads: computed in a worker
        self.lens_rows = None  # the logit lens at the position, while it is shown

    # ------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        with Vertical(id="inspector"):
            yield Panel(self._build_title, id="insp-title")
            yield Static("computing…", id="insp-status")
            with Vertical(id="insp-next"):  # the bars stay in view above the scrolling maps: at 80x24 they were scrolled off
                yield Static("", id="insp-probs-title", classes="insp-heading")
                yield Panel(self._build_probs, id="insp-probs")
                yield Panel(self._build_rank, id="insp-rank")  # (one line where it fits: cut by the bars' max-height at 60x18)
                yield Static("", id="insp-key")  # where a byte token (‹e2›) shows: what it is, as under `tinygpt inspect`'s bars
            with VerticalScroll(id="insp-body"):
                yield Panel(self._build_deeper, id="insp-deeper", classes="insp-heading")
                yield Panel(self._build_map_title, id="insp-map-title", classes="insp-heading")
                # (resized: laid out, the query position brought into view; a click on a column: the query position)
                yield Panel(self._build_map, lambda: self.call_after_refresh(self.show_query), self.click_map, id="insp-map")
                yield Panel(self._build_summary, id="insp-summary")  # (fitted to its width as drawn: a scrollbar takes 2)
            yield KeyBar(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.set_class(self.app.size.height >= self.ROOMY, "-roomy")  # the first frame too, not from the first resize on
        self._kick()

    def on_resize(self, event) -> None:
        roomy = self.app.size.height >= self.ROOMY
        if roomy != self.has_class("-roomy"):
            self.set_class(roomy, "-roomy")
            self._refresh_view()

    def shown_k(self) -> int:
        """The top-k list shrinks to 5 in a short terminal so the heatmap starts on the first screen."""
        return self.top_k if self.app.size.height >= self.ROOMY else min(self.top_k, 5)

    # ------------------------------------------------------------ live updates
    def update_context(self, text: str, trimmed: int = 0) -> None:
        """Show this text instead (recomputed in a worker, throttled; see the module docstring). Once closed,
        nothing: a palette command closes it by popping the screen, which calls no dismiss callback, so
        the generate screen may still be sending text to an inspector whose widgets are gone. ``trimmed``:
        characters cut from the start of the text since the last call."""
        self._pending_start += trimmed
        if text == self.text and self._pending is None and self.analysis is not None and not trimmed:
            return
        self.text = text
        self._pending = text
        if self.is_mounted and self.is_attached:
            self._kick()

    def interval(self) -> float:
        """Seconds between the starts of two passes: at least 3x the last one's time."""
        return max(self.min_interval, 3 * self.last_duration)

    def _kick(self, from_timer: bool = False) -> None:
        if from_timer:
            self._timer = None
        if self._pending is None or self.computing or self._timer is not None:
            return  # a finished computation, or the timer, kicks again
        wait = self.interval() - (time.monotonic() - self._last_start)
        if wait > 0:
            self._timer = self.set_timer(wait, lambda: self._kick(True))
            return
        text, start, self._pending = self._pending, self._pending_start, None
        self.computing = True
        self._last_start = time.monotonic()
        self._set_status()
        self.run_worker(lambda: self._compute(text, start), thread=True, group="inspector", name="inspect", exit_on_error=False)

    def waiting(self) -> str:
        """What the first view waits for: the model's load (seconds for a big one, torch's import too) said as such."""
        return "loading the model…" if self.model is None else "computing…"

    def _compute(self, text: str, start: int) -> None:
        """(worker thread) One forward pass, posted back as an Inspected message."""
        from tinygpt_tui.engine.inspect import analyze

        analysis, error = None, ""
        try:
            if self.model is None:  # the first pass loads the model (once per opening of the inspector)
                from tinygpt_tui.engine.folder import load_model

                self.model = load_model(self.folder).model
            t0 = time.perf_counter()  # the pass, not the load: 3x a 5 s load held the view still for 15 s
            analysis = analyze(self.model, self.tokenizer, text)
            self.last_duration = time.perf_counter() - t0
        except Exception as e:  # never take the app down: show it
            error = error_line(e)
        self.post_message(Inspected(text, analysis, error, start))

    @on(Inspected)
    @reported("inspector")
    def _inspected(self, message: Inspected) -> None:
        analysis, error = message.result, message.error or None
        self.computing = False
        self.computations += 1
        if analysis is not None:
            old = self.analysis
            if self.position is not None and old is not None:
                # keep looking at the same character (or token) when the window slid
                slid = message.start + analysis.truncated - (self._analysed_start + old.truncated)
                shift = tokens_slid(self.tokenizer, old.ids, slid)
                self.position = min(max(self.position - shift, 0), analysis.length - 1)
            self.analysis, self.error, self._analysed_start = analysis, None, message.start
            self.layer_index = min(self.layer_index, analysis.n_layer - 1)
            if self.head_index is not None:
                self.head_index = min(self.head_index, analysis.n_head - 1)
        else:
            self.analysis, self.view, self.error = None, None, error
        self._refresh_view(show_query=self.computations == 1)  # (opened: the query in view; later passes leave the scroll be)
        if self._pending is not None:
            self._kick()

    # ------------------------------------------------------------ actions
    def _pos(self) -> int:
        return self.analysis.length - 1 if self.position is None else self.position

    def action_move(self, delta: int) -> None:
        if self.analysis is None:
            return
        p = min(max(self._pos() + delta, 0), self.analysis.length - 1)
        self.position = None if p == self.analysis.length - 1 else p
        self._refresh_view(show_query=True)

    def action_move_to(self, where: int) -> None:
        if self.analysis is None:
            return
        self.position = None if where < 0 or where >= self.analysis.length - 1 else where
        self._refresh_view(show_query=True)

    def click_map(self, x: int, y: int, width: int) -> None:
        """A click on a heatmap column makes that character the query position."""
        if self.view is None:
            return
        rows, _ = self._rows()
        j = heatmap_column_at(self.view.chars, [r[0] for r in rows], width, x, y)
        if j is not None and j != self.view.position:
            self.action_move_to(j)

    def action_head(self, delta: int) -> None:
        if self.analysis is None:
            return
        self.all_layers = False
        n = self.analysis.n_head + 1  # the heads, then the average row
        cur = n - 1 if self.head_index is None else self.head_index
        cur = (cur + delta) % n
        self.head_index = None if cur == n - 1 else cur
        self._refresh_view()

    def action_layer(self, delta: int) -> None:
        if self.analysis is None:
            return
        self.all_layers = False
        self.layer_index = (self.layer_index + delta) % self.analysis.n_layer
        self._refresh_view()

    def action_page(self, direction: int) -> None:
        body = self.query_one("#insp-body", VerticalScroll)
        body.scroll_page_down() if direction > 0 else body.scroll_page_up()

    def action_all_heads(self) -> None:
        self.all_layers = False
        self.head_index = None
        self._refresh_view()

    def action_all_layers(self) -> None:
        self.all_layers = not self.all_layers
        self._refresh_view()

    def action_deeper(self, what: str) -> None:
        """l, x, e, h: the logit lens, the ablation, the embedding map, the head hints (again: hidden)."""
        self.deeper = None if self.deeper == what else what
        self._refresh_view()
        self.call_after_refresh(self._show_deeper)

    def _show_deeper(self) -> None:
        """The view asked for from its first line (after PgDn an orphaned line of the bars showed); hidden: the top."""
        body, panel = self.query_one("#insp-body", VerticalScroll), self.query_one("#insp-deeper", Panel)
        body.scroll_to_widget(panel, animate=False, top=True) if self.deeper else body.scroll_home(animate=False)

    def _deeper_key(self):
        if self.deeper != "ablation":
            return self.deeper
        # (no analysis while the first pass runs, or after an error: no position either)
        return ("ablation", self.computations, self._pos() if self.analysis is not None else None)

    def _compute_deeper(self, key, a) -> None:
        """(worker thread) The ablation nearest characters first, or a whole-model view; each result redrawn."""
        from tinygpt_tui.engine import corpora, lens

        def show(result):
            self.deeper_result[key] = result
            self.query_one("#insp-deeper", Panel).changed()

        try:
            model, tok = self.model, self.tokenizer
            if key[0] == "ablation":
                for step in lens.ablation_steps(a, key[2]):
                    if self._deeper_key() != key:
                        return  # the position or the text moved on: stop
                    self.app.call_from_thread(show, step)
                return
            text, why = corpora.own_text(self.folder)
            if key == "embeddings":  # without the corpus: the characters of the text on screen, not the vocabulary's first 300
                seen = len(set(self.text)) if tok.kind == "char" else len(set(tok.encode(self.text).ids))
                on_screen = not text and seen > 0
                result = (lens.embedding_map(model, tok, seen if on_screen else 300, text or self.text), on_screen)
            else:
                result = lens.head_roles(model, tok, text) if text else f"no head hints: the model's corpus is not here ({why})"
        except TinyGPTError as e:
            result = str(e)
        self.app.call_from_thread(show, result)

    def _build_deeper(self, width: int) -> Text:
        r = self.deeper_result.get(self._deeper_key())
        if self.deeper is None or self.view is None:
            t = Text("")
        elif self.deeper == "lens":
            t = lens_text(self.lens_rows, self.view, width, self.model.cfg.tie_weights, self.tokenizer.unit)
        elif isinstance(r, str) or r is None:
            t = Text(r or "", style="dim")
        elif self.deeper == "ablation":
            t = ablation_text(self.view.chars, r, True, width, self.tokenizer.unit)
        elif self.deeper == "embeddings":
            t = embedding_text(r[0], None, None, width, max(8, self.app.size.height - 12), self.tokenizer.unit)
            if r[1]:
                t = Text(f"the model's corpus is not here: the {self.tokenizer.unit}s of the text on screen\n", style="dim") + t
        else:
            key = heads_key(self.tokenizer.unit, r[0].spaced) + "\n"
            t = Text("Head hints over the validation split\n", style="bold") + Text(key, style="dim") + Text("\n".join(x.line() for x in r))
        return Text("\n").join(t.wrap(self.app.console, width))  # (the panel crops what is wider)

    # ------------------------------------------------------------ drawing
    def _set_status(self) -> None:
        status = self.query_one("#insp-status", Static)
        if self.error:
            status.update(Text(self.error, style="bold red"))
            status.display = True
            return
        t = Text()
        a = self.analysis
        if a is not None:
            if a.truncated:
                t.append(f"{a.truncated} earlier character(s) lie outside the model's {self.model.cfg.block_size}-{self.tokenizer.unit} window. ")
            if a.dropped:
                t.append(f"left out (not in the vocabulary): {' '.join(cell(c)[0] for c in a.dropped[:12])}. ", style="yellow")
        if self.computing and self.analysis is None:
            t.append(self.waiting(), style="italic")
        status.update(t)
        status.display = bool(t.plain)

    def _refresh_view(self, show_query: bool = False) -> None:
        if not self.is_mounted:
            return
        a = self.analysis
        self.view = a.at(self._pos(), self.shown_k(), self.temperature) if a is not None else None
        self._set_status()
        probs_title = self.query_one("#insp-probs-title", Static)
        if self.view is None:
            probs_title.update("")
        else:
            v = self.view
            after = "".join(cell(c)[0] for c in v.chars[max(0, v.position - 15) : v.position + 1])
            probs_title.update(Text.assemble((f"Next {self.tokenizer.unit} after ", "bold"), "…" if v.position > 15 else "", (after, "bold")))
        if self.view is not None and self.deeper == "lens":
            from tinygpt_tui.engine.lens import logit_lens

            self.lens_rows = logit_lens(a, self.view.position, 5)  # (before any panel is laid out: the lens panel draws them)
        key = self._deeper_key()
        if self.deeper not in (None, "lens") and a is not None and key not in self.deeper_result:
            self.deeper_result[key] = f"computing the {self.deeper}…"
            self.run_worker(lambda: self._compute_deeper(key, a), thread=True, group="deeper", exit_on_error=False)
        self.query_one("#insp-deeper").display = self.deeper is not None  # (else a blank line and its margin)
        self.query_one("#insp-next").display = self.deeper not in ("embeddings", "heads")  # (whole-model views: their room)
        # (an ablation's target is the bars' first token)
        byte_key = self.view.byte_key(lens=self.lens_rows if self.deeper == "lens" else None) if self.view is not None else None
        self.query_one("#insp-key", Static).update(Text(byte_key or ""))
        self.query_one("#insp-key").display = byte_key is not None
        for pid in ("#insp-title", "#insp-probs", "#insp-rank", "#insp-deeper", "#insp-map-title", "#insp-map", "#insp-summary"):
            self.query_one(pid, Panel).changed()
        self.query_wanted = show_query or self.query_wanted  # (done once the map is laid out for the view: show_query)
        self.show_query()

    def show_query(self) -> None:
        """The heatmap's block of columns holding the query position scrolled into view, and the line under it (what it looks at
        most), with the block before it (its nearest keys) where the screen has room: a long context wraps into blocks."""
        body, heat = self.query_one("#insp-body", VerticalScroll), self.query_one("#insp-map", Panel)
        rows = self._rows()[0] if self.query_wanted and self.view is not None else []
        chunks, tall = heatmap_layout(self.view.chars, [r[0] for r in rows], heat.size.width)[1] if rows else [], len(rows) + 2
        if not rows or heat.size.height != len(chunks) * tall:  # (not laid out for this view yet: its Resize calls again)
            return
        k = next(i for i, (a, b) in enumerate(chunks) if a <= self.view.position < b)
        bottom = heat.virtual_region.y + (k + 1) * tall  # (the query's block's end; from its start, or the block before's where it fits)
        top = min(bottom - tall, max(bottom - tall * (1 + (k > 0)), bottom + 1 - body.scrollable_content_region.height))
        body.scroll_to_region(Region(0, top, 1, bottom + 1 - top), animate=False)
        self.query_wanted = False

    def _rows(self):
        v = self.view
        if self.all_layers:
            return layer_rows(v), len(v.mean_over_heads)
        rows = head_rows(v, self.layer_index)
        return rows, (len(rows) - 1 if self.head_index is None else self.head_index)

    def _weights(self):
        v = self.view
        return v.mean_all if self.all_layers else v.mean_over_heads[self.layer_index] if self.head_index is None else v.attention[self.layer_index][self.head_index]

    def _vmax(self, rows) -> float:
        return max((w for _, ws in rows for w in ws[: self.view.position + 1]), default=0.0)

    def _build_title(self, width: int) -> Text:
        """Its parts, a line broken between two where the next does not fit (at 80x24 "head" ended a line, "0/3" began the next)."""
        v = self.view
        if v is None:
            return Text("Inspector", style="bold")
        # (the query quoted, not JSON-escaped: a backslash, a BPE byte's ‹e2›, as the heatmap shows it)
        query = Text.assemble(f"position {v.position}: ", (quoted(v.query_char), "bold"), (" (last)" if self.position is None else "", "dim"))
        where = ["all layers"] if self.all_layers else [f"layer {self.layer_index}/{v.n_layer - 1}", "all heads" if self.head_index is None else f"head {self.head_index}/{v.n_head - 1}"]
        parts = [Text("Inspector", style="bold"), Text(f"{len(v.chars)} {self.tokenizer.unit}s"), query, *map(Text, where)]
        lines = [Text()]
        for part in parts + [Text(f"T={self.temperature:g}")] * (self.temperature != 1.0):
            if lines[-1].cell_len and lines[-1].cell_len + 3 + part.cell_len > width:
                lines.append(Text())
            lines[-1] += Text(" · ") + part if lines[-1].cell_len else part
        return Text("\n").join(ln for line in lines for ln in line.wrap(self.app.console, width))

    def _build_probs(self, width: int) -> Text:
        if self.view is None:
            return Text(self.error or self.waiting(), style="dim")
        return prob_bars(self.view, min(width, 90), highlight=self.view.actual.char if self.view.actual else None)

    def _build_rank(self, width: int) -> Text:
        """Where the context's next character ranked (at the last position: the last one, one step earlier), shortened to fit."""
        a, v = self.analysis, self.view
        if v is None or (v.actual is None and a.length < 2):
            return Text("")
        r, what, short = (v.actual, "next in the context:", "actual next:") if v.actual is not None else (
            a.at(a.length - 2, 1, self.temperature).actual, f"one step earlier, the last {self.tokenizer.unit}", "one step earlier,")
        return Text("\n").join(ranked_line(r, what, width, short).wrap(self.app.console, width))

    def _build_map_title(self, width: int) -> Text:
        if self.view is None:
            return Text("")
        v = self.view
        rows, _ = self._rows()
        if self.all_layers:
            t = Text("Attention, all layers", style="bold")
            t.append(": rows are each layer's mean over heads, 'all' the mean of every head (g: one layer)", style="dim")
        else:
            t = Text(f"Attention, layer {self.layer_index}", style="bold")
            t.append(f" of 0..{v.n_layer - 1}: how position {v.position} attends, per head (g: all layers)", style="dim")
        lg = legend(self._vmax(rows), True)
        if t.cell_len + 3 + lg.cell_len <= width:
            return t + Text("   ") + with_cell_note(lg, width - t.cell_len - 3, self.tokenizer.unit)
        return Text("\n", style=t.style).join([*t.wrap(self.app.console, width), with_cell_note(lg, width, self.tokenizer.unit)])  # (cut, it lost what the rows are)

    def _build_summary(self, width: int) -> Text:
        if self.view is None:
            return Text("")
        label = "all layers and heads" if self.all_layers else (f"layer {self.layer_index} average" if self.head_index is None else f"layer {self.layer_index} head {self.head_index}")
        verb = "look" if self.all_layers else "looks"  # ("all layers and heads looks most at" read as a slip)
        return top_attended(self.view, self._weights(), 8, f"{label} {verb} most at: ", width)  # (whole items: a wrap split "o@5" from its weight)

    def _build_map(self, width: int) -> Text:
        if self.view is None:
            return []
        rows, selected = self._rows()
        return heatmap_lines(self.view.chars, rows, width, self.view.position, color=True, vmax=self._vmax(rows), selected=selected)
