"""Panel: a block of rich Text rebuilt for the widget's width, drawn with the line API (the inspector's bars,
heatmaps and deeper views: a heatmap wraps its columns to fit)."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget


class Panel(Widget):
    """``build(width)`` gives rich Text (or lines of (text, style) runs), rendered to Strips once per width and
    version, not on every repaint (a heatmap line holds a styled run per character). ``resized()`` is called on
    a resize, ``clicked(x, y, width)`` on a click."""

    DEFAULT_CSS = "Panel { height: auto; width: 1fr; }"

    def __init__(self, build, resized=None, clicked=None, **kw):
        super().__init__(**kw)
        self._build, self._resized, self._clicked = build, resized, clicked
        self._cache: tuple[tuple, list[Strip]] | None = None
        self.version = 0  # bumped by the screen when what it draws changed

    def _lines(self, width: int) -> list[Strip]:
        key = (width, self.version)
        if self._cache is None or self._cache[0] != key:
            built, base = self._build(max(width, 8)), self.rich_style
            if isinstance(built, Text):
                built = [[(seg.text, seg.style or Style()) for seg in line.render(self.app.console)]
                         for line in built.split("\n", allow_blank=True)]
            self._cache = (key, [Strip([Segment(t, base + st) for t, st in line]).crop_extend(0, width, base) for line in built])
        return self._cache[1]

    def changed(self) -> None:
        width = self.size.width
        before = len(self._cache[1]) if self._cache is not None else -1
        self.version += 1
        self.refresh(layout=width <= 0 or len(self._lines(width)) != before)  # (a new layout only when the number of lines changed)

    def render_line(self, y: int) -> Strip:
        lines = self._lines(self.size.width)
        return lines[y] if 0 <= y < len(lines) else Strip.blank(self.size.width)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines(width))

    def on_resize(self) -> None:
        if self._resized is not None:
            self._resized()

    def on_click(self, event) -> None:
        if self._clicked is not None:
            self._clicked(event.x, event.y, self.size.width)
