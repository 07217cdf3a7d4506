"""The title bar and the key bar, each one line drawn by one widget.

Textual's Header is four widgets, and its Footer mounts a widget per key and mounts them all
again whenever the bindings change (each focus move, each start and end of a generation). Here
each bar is one line of text: a change is a repaint, and the first frame costs two widgets
instead of fifteen (a quarter of the work between Textual's import and the first frame).
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widget import Widget


class TitleBar(Widget, can_focus=False):
    """The app's title and sub-title, centred; a click on the icon opens the command palette."""

    ALLOW_SELECT = False
    ICON_WIDTH = 5
    DEFAULT_CSS = """
    TitleBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """

    def __init__(self, icon: str = "◆", **kw):
        super().__init__(**kw)
        self.icon = icon

    def on_mount(self) -> None:
        self.watch(self.app, "title", lambda _title: self.refresh(), init=False)
        self.watch(self.app, "sub_title", lambda _sub: self.refresh(), init=False)
        if self.app.ENABLE_COMMAND_PALETTE:
            self.tooltip = "Click the icon for the command palette"

    def render(self) -> Text:
        width = self.size.width
        title = Text(self.app.title, no_wrap=True, overflow="ellipsis")
        if self.app.sub_title:
            title.append(" — ")
            title.append(self.app.sub_title, "dim")
        room = max(0, width - 2 * self.ICON_WIDTH)
        title.truncate(room, overflow="ellipsis")
        left = (" " + self.icon).ljust(self.ICON_WIDTH)
        pad = max(0, (width - title.cell_len) // 2 - len(left))
        return Text.assemble(left, " " * pad, title, no_wrap=True, overflow="crop")

    async def on_click(self, event: events.Click) -> None:
        if event.x < self.ICON_WIDTH and self.app.ENABLE_COMMAND_PALETTE:
            event.stop()
            await self.run_action("app.command_palette")


class KeyBar(Widget, can_focus=False):
    """The keys of the screen's active bindings (those with show=True), and the command palette's
    key at the right. A click on a key presses it; keys that do not fit are left out."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--hover"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        .keybar--key { color: $footer-key-foreground; text-style: bold; }
        .keybar--description { color: $footer-description-foreground; }
        .keybar--hover { background: $block-hover-background; }
    }
    """

    def __init__(self, **kw):
        super().__init__(**kw)
        self._spans: list[tuple[int, int, str, bool]] = []  # (start, end, key, enabled) of each key drawn
        self._hover: str | None = None  # the key under the mouse

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def _bindings_changed(self, _screen) -> None:
        self._hover = None
        self.refresh()

    def _entries(self) -> tuple[list, tuple | None]:
        """[(key, display, description, enabled)] in order, one per action, and the palette's."""
        app = self.app
        seen: set[str] = set()
        keys, palette = [], None
        for key, (_node, binding, enabled, _tooltip) in self.screen.active_bindings.items():
            if app.ENABLE_COMMAND_PALETTE and key == app.COMMAND_PALETTE_BINDING:
                palette = (key, app.get_key_display(binding), binding.description, enabled)
            elif binding.show and binding.action not in seen:
                seen.add(binding.action)
                keys.append((key, app.get_key_display(binding), binding.description, enabled))
        return keys, palette

    def render(self) -> Text:
        width = self.size.width
        key_style = self.get_component_rich_style("keybar--key", partial=True)
        desc_style = self.get_component_rich_style("keybar--description", partial=True)
        hover_style = self.get_component_rich_style("keybar--hover", partial=True)
        keys, palette = self._entries()

        def entry(key, display, description, enabled):
            piece = Text.assemble((display, key_style), " ", (description, desc_style)) if description else Text(display, key_style)
            if not enabled:
                piece.stylize("dim")
            elif key == self._hover:
                piece.stylize(hover_style)
            return piece

        right = entry(*palette) if palette is not None else None
        if right is not None and right.cell_len + 1 > width:
            right = None
        room = width - (right.cell_len + 2 if right is not None else 0)  # a space, and the separator
        text, spans = Text(no_wrap=True, overflow="crop"), []
        for key, display, description, enabled in keys:  # in order; one that does not fit is left out whole
            at = text.cell_len + (1 if text.cell_len else 0)
            piece = entry(key, display, description, enabled)
            if at + piece.cell_len > room:
                continue
            if text.cell_len:
                text.append(" ")
            text.append_text(piece)
            spans.append((at, at + piece.cell_len, key, enabled))
        if right is not None:
            text.append(" " * max(0, width - text.cell_len - right.cell_len - 1))
            text.append("▏", "dim")
            spans.append((text.cell_len, text.cell_len + right.cell_len, palette[0], palette[3]))
            text.append_text(right)
        self._spans = spans
        return text

    def key_at(self, x: int) -> tuple[str, bool] | None:
        for start, end, key, enabled in self._spans:
            if start <= x < end:
                return key, enabled
        return None

    def on_mouse_down(self, event: events.MouseDown) -> None:
        hit = self.key_at(event.x)
        if hit is None:
            return
        key, enabled = hit
        if enabled:
            self.app.simulate_key(key)
        else:
            self.app.bell()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        hit = self.key_at(event.x)
        hover = hit[0] if hit else None
        if hover != self._hover:
            self._hover = hover
            self.refresh()

    def on_leave(self, _event: events.Leave) -> None:
        if self._hover is not None:
            self._hover = None
            self.refresh()
