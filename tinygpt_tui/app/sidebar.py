"""The model sidebar and the sampling settings (no torch here: listing reads JSON and headers only)."""

from __future__ import annotations

import asyncio

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from tinygpt_tui.app.messages import reported
from tinygpt_tui.engine.folder import NO_CHECKPOINT, TRAINING, ModelInfo
from tinygpt_tui.errors import SettingsError
from tinygpt_tui.tokenizer import one_line


def human_count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000:
        return f"{n / 1e3:.0f}k"
    return str(n)


NAME_BREAKS = {"/": 3, " ": 2, ",": 2, "-": 1, "_": 1, "=": 1}  # a long name's line ends after one (the strongest it can)


def fold_points(name: str, width: int) -> list[int]:
    """Where a name is cut into lines of at most `width` cells: after a /, space, comma, -, _ or = (of those in
    the line and leaving it a third full, the strongest, the latest of equals: "lesson-positions-10steps/"
    "pos_encoding=alibi"); inside a word only where no break is in the line (a Chinese name: cell by cell)."""
    from rich.cells import cell_len

    cuts, start, used, breaks = [], 0, 0, []  # breaks: (strength, position after it) in the current line
    for i, ch in enumerate(name):
        if used + cell_len(ch) > width and i > start:  # ch would overflow: end the line at its best break
            full = [b for b in breaks if cell_len(name[start:b[1]]) * 3 >= width]
            cut = max(full)[1] if full else breaks[-1][1] if breaks else i
            cuts.append(cut)
            start, used, breaks = cut, cell_len(name[cut:i]), [b for b in breaks if b[1] > cut]
        used += cell_len(ch)
        if ch in NAME_BREAKS and i + 1 < len(name):
            breaks.append((NAME_BREAKS[ch], i + 1))
    return cuts


def model_prompt(info: ModelInfo, loaded: bool = False, name_width: int = 0) -> Group:
    """A model's entry: a mark, its name, then its figures indented. A name or a line too long for the
    sidebar wraps under itself, not at the left edge; a name in `name_width` cells breaks after a / - _ , =
    or space (fold_points: "exp/pos=rope,n_layer=4" is one long word to Rich); parameters and loss come first,
    so a narrow sidebar keeps them."""
    mark, name = Text(), Text()
    if info.status in (TRAINING, NO_CHECKPOINT) and not info.ok:  # a run before its first checkpoint
        mark.append("◌" if info.status == TRAINING else "✗", style="bold magenta" if info.status == TRAINING else "bold yellow")
        name.append(one_line(info.name), style="bold")
        details = [Text(info.status if info.status == TRAINING else f"{info.status} · Delete removes it", style="dim")]
    elif not info.ok:
        mark.append("✗", style="bold red")
        name.append(one_line(info.name), style="bold")
        details = [Text.assemble(("broken: ", "red"), (one_line(info.error), "dim"))]
    else:
        mark.append("●" if loaded else ("◌" if info.status == TRAINING else " "), style="bold green")
        experiment, _, member = info.name.rpartition("/")  # an experiment's member: "exp/member"
        name.append(one_line(experiment + "/") if experiment else "", style="dim")
        name.append(one_line(member), style="bold")
        loss = f"val {info.val_loss:.3f}" if info.val_loss is not None else "val n/a"
        details = [Text(f"{human_count(info.params)} params · {loss}" + (f" · {TRAINING}" if info.status == TRAINING else ""), style="dim"),
                   Text(f"{one_line(info.corpus) or '?'} · ctx {info.block_size}" + (f" · {info.tokenizer}" if info.tokenizer != "char" else ""),
                        style="dim")]  # (characters, the default, go unsaid)
    if name_width > 0:
        lines = name.divide(fold_points(name.plain, name_width))
        for line in lines:
            line.rstrip()  # (a space that ends a line goes)
        name = Text("\n").join(lines)
    head = Table.grid()
    head.add_column(width=2)
    head.add_column(overflow="fold")
    head.add_row(mark, name)
    return Group(head, *(Padding(t, (0, 0, 0, 2)) for t in details))


class ModelList(OptionList):
    """The models in the models folder; Enter or a click picks one (on_pick is called with it);
    Delete removes a run that died before its first checkpoint (offered on such a one only)."""

    BINDINGS = [Binding("delete", "delete_dead_run", "Delete run", id="delete-run")]

    def __init__(self, on_pick=None, **kw):
        super().__init__(**kw)
        self.infos: list[ModelInfo] = []
        self.loaded_name: str | None = None
        self.width = 0  # the name_width the entries were laid out for
        self.on_pick = on_pick

    def set_models(self, infos: list[ModelInfo]) -> None:
        keep = None
        if self.highlighted is not None and self.highlighted < len(self.infos):
            keep = self.infos[self.highlighted].name
        self.infos = list(infos)
        self.clear_options()
        self.width = self.name_width()
        self.add_options([Option(model_prompt(i, i.name == self.loaded_name, self.width), id=f"m{n}") for n, i in enumerate(self.infos)])
        if not self.infos:
            return
        names = [i.name for i in self.infos]
        if keep in names:
            self.highlighted = names.index(keep)
        else:
            ok = [n for n, i in enumerate(self.infos) if i.ok]
            self.highlighted = ok[0] if ok else 0

    def name_width(self) -> int:
        """The cells a name has on its line: the list's, less the option's right padding and the mark's 2 (0 before
        the list is laid out: Rich folds it)."""
        return max(0, self.scrollable_content_region.width - 3)

    def mark_loaded(self, name: str | None) -> None:
        self.loaded_name = name
        self.width = self.name_width()
        for n, info in enumerate(self.infos):
            self.replace_option_prompt_at_index(n, model_prompt(info, info.name == name, self.width))

    def on_resize(self) -> None:
        if self.infos and self.name_width() != self.width:  # (the names broken for the new width; a scrollbar coming counts)
            self.mark_loaded(self.loaded_name)

    def dead_run(self) -> ModelInfo | None:
        i = self.highlighted
        info = self.infos[i] if i is not None and i < len(self.infos) else None
        return info if info is not None and info.status == NO_CHECKPOINT else None

    def check_action(self, action: str, parameters) -> bool | None:
        return self.dead_run() is not None if action == "delete_dead_run" else True

    def on_option_list_option_highlighted(self) -> None:
        self.screen.refresh_bindings()  # Delete comes and goes with the highlighted model

    def action_delete_dead_run(self) -> None:
        from tinygpt_tui.app.app import Confirm

        info = self.dead_run()
        if info is None:
            return

        @reported("delete")
        def answer(_self, yes: bool | None) -> None:
            if yes:
                from tinygpt_tui.engine.folder import remove_dead_run

                remove_dead_run(info.path)
                self.notify(f"Deleted {one_line(str(info.path))}.")
                self.screen.action_refresh_models(quiet=True)

        self.app.push_screen(Confirm("A run without a checkpoint", f"Delete {one_line(str(info.path))}? It holds only the "
                                     "files of a run that stopped before saving a model.", "Delete"), lambda yes: answer(self, yes))

    def _pick(self, index: int | None) -> None:
        if self.on_pick is not None and index is not None and 0 <= index < len(self.infos):
            self.on_pick(self.infos[index])

    def action_select(self) -> None:
        """Enter (and a click) picks the highlighted model now, not by a message handled later: a
        prompt typed right behind it, in one burst, then finds the model loading and waits for it."""
        self._pick(self.highlighted)


FIELDS = (
    # id, label, default, restrict, help
    ("temperature", "temp", "0.8", r"[0-9.]*", "0 = always the most likely character; higher = wilder"),
    ("top_k", "top-k", "", r"[0-9]*", "keep only the k most likely characters (blank = all)"),
    ("top_p", "top-p", "", r"[0-9.]*", "keep the smallest set with this much probability (blank = all)"),
    ("length", "length", "500", r"[0-9]*", "characters to generate (tokens, for a BPE model)"),
    ("seed", "seed", "", r"[0-9]*", "blank = a new random draw each time"),
)
LABEL_CELLS = 8  # the labels' column (#sampling-grid's first)


def placeholder(fid: str) -> str:
    return "all" if fid.startswith("top") else "random" if fid == "seed" else ""


class SettingsView(Widget, can_focus=True):
    """The five settings drawn as the fields draw them, in one widget: what the panel shows until
    one is edited. Focus (Tab) or a click on a line mounts the fields and moves to one of them."""

    FOCUS_ON_CLICK = False  # (a click picks its line's field: on_mouse_down)
    COMPONENT_CLASSES = {"settings--label", "settings--value", "settings--empty"}
    DEFAULT_CSS = """
    SettingsView { height: auto; }
    SettingsView > .settings--label { color: $text-muted; }
    SettingsView > .settings--value { background: $surface; color: $foreground; }
    SettingsView > .settings--empty { background: $surface; color: $text-disabled; }
    """

    def __init__(self, values: dict, **kw):
        super().__init__(**kw)
        self.values = values  # the panel's: {field id: text}
        self.tooltip = "\n".join(f"{label}: {help_text}" for _, label, _, _, help_text in FIELDS)

    def render(self) -> Text:
        label, value, empty = (self.get_component_rich_style(f"settings--{c}") for c in ("label", "value", "empty"))
        width = max(self.size.width - LABEL_CELLS - 1, 1)
        lines = []
        for fid, name, *_ in FIELDS:
            shown = self.values[fid] or placeholder(fid)
            line = Text(name.rjust(LABEL_CELLS)[-LABEL_CELLS:], style=label, end="")
            line.append(" ")
            cell = Text(shown, style=value if self.values[fid] else empty, end="")
            cell.truncate(width, pad=True)
            line.append_text(cell)
            lines.append(line)
        return Text("\n", end="").join(lines)

    async def on_focus(self) -> None:
        self.screen.set_focus(await self.parent.edit("temperature"))

    async def on_mouse_down(self, event) -> None:
        row = min(max(event.y, 0), len(FIELDS) - 1)
        (await self.parent.edit(FIELDS[row][0])).focus()

    def on_key(self, event) -> None:
        """A key that reached the view while the fields were being mounted: to the field now focused."""
        focused = self.screen.focused
        if isinstance(focused, Input) and focused is not self:
            event.stop()
            event.prevent_default()
            focused.post_message(type(event)(event.key, event.character))


class SamplingPanel(Vertical):
    """Temperature, top-k, top-p, length and seed; they apply to the next generation.

    Until one is edited the panel is one widget drawing them (SettingsView): five fields, their
    labels and a grid are 11 widgets for Textual to build before the first frame. The fields are
    mounted on the first edit (F6, Tab into the panel, a click) and stay."""

    FIELDS = FIELDS

    def __init__(self, **kw):
        super().__init__(**kw)
        self.raw = {fid: default for fid, _, default, *_ in FIELDS}
        self.editing = False
        self.fields_mounted = asyncio.Event()

    def compose(self):
        yield SettingsView(self.raw, id="sampling-view")

    def fields_widgets(self) -> list:
        widgets = []
        for fid, label, _, restrict, help_text in FIELDS:
            widgets.append(Label(label, classes="setting-label"))
            inp = Input(self.raw[fid], id=f"set-{fid}", restrict=restrict, compact=True, placeholder=placeholder(fid))
            inp.tooltip = help_text
            widgets.append(inp)
        return widgets

    async def edit(self, fid: str = "temperature") -> Input:
        """The field for fid, the fields mounted first (in place of the view) if they are not yet."""
        if not self.editing:
            self.editing = True
            await self.mount(Grid(*self.fields_widgets(), id="sampling-grid"))
            self.query_one("#sampling-view", SettingsView).display = False  # (kept: keys sent to it meanwhile are passed on)
            self.fields_mounted.set()
        await self.fields_mounted.wait()  # (a second edit while the first mounts them: F6, then a click)
        return self.query_one(f"#set-{fid}", Input)

    def _raw(self, fid: str) -> str:
        return self.query_one(f"#set-{fid}", Input).value if self.editing else self.raw[fid]

    def values(self):
        """The SamplingSettings the fields describe, or a SettingsError saying which is wrong."""
        from tinygpt_tui.sampler import SamplingSettings

        raw = {fid: self._raw(fid).strip() for fid, *_ in self.FIELDS}

        def num(fid, kind, what):
            v = raw[fid]
            if v == "":
                return None
            try:
                return kind(v)
            except ValueError:
                raise SettingsError(f"{what} must be a number, got {v!r}") from None

        temperature = num("temperature", float, "temperature")
        length = num("length", int, "length")
        settings = SamplingSettings(
            max_new_tokens=500 if length is None else length,
            temperature=0.8 if temperature is None else temperature,
            top_k=num("top_k", int, "top-k"),
            top_p=num("top_p", float, "top-p"),
            seed=num("seed", int, "seed"),
        )
        if settings.max_new_tokens > 1_000_000:
            raise SettingsError("length must be at most 1,000,000 characters")
        return settings.validate()

    def temperature(self) -> float:
        """The temperature the text is sampled at (1, the model's own, while the fields hold a mistake)."""
        try:
            return self.values().temperature
        except SettingsError:
            return 1.0

    def set_value(self, fid: str, value) -> None:
        text = "" if value is None else str(value)
        if self.editing:
            self.query_one(f"#set-{fid}", Input).value = text
        else:
            self.raw[fid] = text
            self.query_one("#sampling-view", SettingsView).refresh()
