"""The title bar, the key bar and the fit line (a status or progress line), one widget each, drawn as a
line of text.

Built on Textual's public API only (``Screen.active_bindings`` and its ``bindings_updated_signal``,
``App.get_key_display``, ``App.simulate_key``, ``App.format_title``, ``watch``). Textual's Footer mounts
a widget per key, after the first frame, and again each time the bindings may have changed (focus moved,
a generation started or ended); its Header is three widgets. Drawn as text, the keys are in the first
frame and a change repaints one line: the first screen comes 7% sooner at rest, 14% on a busy machine
(docs/performance.md).
"""
from __future__ import annotations

from typing import NamedTuple


from rich.text import Text
from textual.widget import Widget

from tinygpt_tui.chart import Part, fit_line  # noqa: F401 (the app's screens take them from here)


class Key(NamedTuple):
    """A key as the bar drew it: its cells, the key pressed by a click, its action, tooltip and text."""

    start: int
    end: int
    key: str
    action: str
    tooltip: str
    enabled: bool
    text: str  # ("l Lens")


class KeyBar(Widget):
    """The keys of the screen it is on, as Textual's Footer shows them: each shown binding once per action
    ("key Description"), dimmed while disabled, the command palette's key at the right edge. Keys that do
    not fit are left out from the right (the palette lists them all)."""

    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
    }
    KeyBar > .footer--key { color: $footer-key-foreground; text-style: bold; }
    KeyBar > .footer--description { color: $footer-description-foreground; }
    KeyBar > .footer--disabled { color: $text-disabled; }
    """
    COMPONENT_CLASSES = {"footer--key", "footer--description", "footer--disabled"}

    def __init__(self, compact: bool = False, show_command_palette: bool = True, *, name=None, id=None, classes=None):
        super().__init__(name=name, id=id, classes=classes)
        self.compact, self.show_command_palette = compact, show_command_palette
        self.drawn: list[Key] = []  # the keys as last drawn

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, lambda _screen: self.refresh())

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def items(self) -> tuple[list, tuple | None]:
        """([(binding, enabled, tooltip)] to show, one per action, in order; the palette's, or None)."""
        active = self.screen.active_bindings
        shown, actions = [], set()
        for _node, binding, enabled, tooltip in active.values():
            if binding.show and binding.action not in actions:
                actions.add(binding.action)
                shown.append((binding, enabled, tooltip))
        palette = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            found = active.get(self.app.COMMAND_PALETTE_BINDING)
            if found is not None:
                palette = found[1:]
        return shown, palette

    def render(self) -> Text:
        width = self.size.width
        styles = {c: self.get_component_rich_style(f"footer--{c}") for c in ("key", "description", "disabled")}
        shown, palette = self.items()

        def item(binding, enabled: bool) -> Text:
            key = self.app.get_key_display(binding)
            t = Text()
            t.append(f" {key} ", styles["key"] if enabled else styles["disabled"])
            t.append(binding.description + ("" if self.compact else " "), styles["description"] if enabled else styles["disabled"])
            return t

        right = Text("▏") + item(palette[0], palette[1])[1:] if palette else Text()  # ("▏^p palette", as Textual's)
        right.rstrip()
        line, drawn = Text(no_wrap=True, overflow="crop"), []
        room = width - right.cell_len
        for binding, enabled, tooltip in shown:
            t = item(binding, enabled)
            if line.cell_len + t.cell_len > room:
                break
            drawn.append(Key(line.cell_len, line.cell_len + t.cell_len, binding.key, binding.action,
                             tooltip or binding.tooltip or binding.description, enabled, " ".join(t.plain.split())))
            line.append_text(t)
        if palette and right.cell_len <= width:
            line.append(" " * (width - line.cell_len - right.cell_len))
            b, enabled, _ = palette
            drawn.append(Key(width - right.cell_len + 1, width, b.key, b.action, b.tooltip or b.description, enabled,
                             right.plain[1:].strip()))
            line.append_text(right)
        self.drawn = drawn
        return line

    def key_at(self, x: int) -> Key | None:
        return next((k for k in self.drawn if k.start <= x < k.end), None)

    def on_click(self, event) -> None:
        hit = self.key_at(event.x)
        if hit and hit.enabled:
            self.app.simulate_key(hit.key)

    def on_mouse_move(self, event) -> None:
        hit = self.key_at(event.x)
        tip = hit.tooltip if hit else None
        if tip != self.tooltip:  # (set only when the key under the pointer changes: a set shows it anew)
            self.tooltip = tip


class TitleBar(Widget):
    """The title line, as Textual's Header draws it (its icon opens the command palette; the app's title and
    the screen's sub-title, centred), in one widget: Textual's Header is three, laid out for the first frame."""

    DEFAULT_CSS = """
    TitleBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """
    ICON = "⭘"

    def on_mount(self) -> None:
        for node in (self.app, self.screen):
            for name in ("title", "sub_title"):
                self.watch(node, name, lambda: self.refresh(), init=False)

    def render(self):
        from textual.content import Content

        title = self.screen.title if self.screen.title is not None else self.app.title
        sub = self.screen.sub_title if self.screen.sub_title is not None else self.app.sub_title
        text = self.app.format_title(title, sub)
        room = max(self.size.width - 8 - 10, 1)  # (as Textual's Header: an icon of 8 cells, a clock's space of 10)
        if text.cell_length > room:
            text = text.truncate(room - 1) + Content("…")
        return Content(f" {self.ICON}".ljust(8 + (room - text.cell_length) // 2)) + text

    async def on_click(self, event) -> None:
        if event.x < 8:
            await self.run_action("app.command_palette")


class FitLine(Widget):
    """Parts on one line that fits the width it gets (fit_line): a run's progress, the status line."""

    DEFAULT_CSS = "FitLine { height: 1; }"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.parts: list[Part] = []

    def show(self, parts: list[Part]) -> None:
        if parts != self.parts:
            self.parts = parts
            self.refresh()

    def render(self) -> Text:
        return fit_line(self.parts, self.size.width)
