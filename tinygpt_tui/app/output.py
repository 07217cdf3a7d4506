"""The output pane: a prompt and its continuation, streamed in, wrapped and scrolled cheaply.

Text is kept as paragraphs (split at newlines). Appending re-wraps only the
last, open paragraph, so a flush costs the same at character 100 as at
character 100,000. Every character shown has passed through
``printable()``: nothing from a prompt, a corpus or a vocabulary can reach
the terminal as a control sequence, and nothing is parsed as markup.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..core.tokenizer import printable

PROMPT, GENERATED, NOTE = "prompt", "generated", "note"


class OutputView(ScrollView, can_focus=True):
    """A read-only, append-only styled text pane that follows the end unless scrolled back."""

    COMPONENT_CLASSES = {"output--prompt", "output--generated", "output--note"}

    DEFAULT_CSS = """
    OutputView {
        background: $surface;
        padding: 0 1;
        scrollbar-gutter: stable;  /* the wrap width does not change when the scrollbar appears */
    }
    OutputView > .output--prompt { color: $text; text-style: bold; background: $primary 25%; }
    OutputView > .output--generated { color: $text; }
    OutputView > .output--note { color: $text-muted; text-style: italic; }
    """

    BINDINGS = [
        ("up", "scroll_up", "Scroll up"),
        ("down", "scroll_down", "Scroll down"),
        ("pageup", "page_up", "Page up"),
        ("pagedown", "page_down", "Page down"),
        ("home", "scroll_home", "Top"),
        ("end", "scroll_end", "Bottom"),
    ]

    def __init__(self, *, name=None, id=None, classes=None):
        super().__init__(name=name, id=id, classes=classes)
        self._ov_closed: list[list[tuple[str, str]]] = []  # finished paragraphs, as (text, kind) spans
        self._ov_open: list[tuple[str, str]] = []
        self._ov_styles: dict[str, Style] = {}
        self._ov_closed_lines: list[Strip] = []
        self._ov_open_lines: list[Strip] = []
        self._ov_wrap_width = 0
        self._ov_plain: list[str] = []
        self._ov_length = 0
        self.following = True  # stick to the end until the user scrolls up; back at the end, stick again

    # ------------------------------------------------------------ content
    @property
    def text(self) -> str:
        """Everything shown, as plain text (after printable())."""
        return "".join(self._ov_plain)

    def __len__(self) -> int:
        return self._ov_length

    def clear(self) -> None:
        self._ov_closed.clear()
        self._ov_open = []
        self._ov_closed_lines.clear()
        self._ov_open_lines.clear()
        self._ov_plain.clear()
        self._ov_length = 0
        self._update_size(follow=False)
        self.scroll_to(0, 0, animate=False, immediate=True, force=True)
        self.following = True
        self.refresh()

    def append(self, text: str, kind: str = GENERATED) -> None:
        """Add text in a style: prompt, generated or note."""
        if not text:
            return
        text = printable(text)
        follow = self._at_end()
        self._ov_plain.append(text)
        self._ov_length += len(text)
        width = self._width()
        pieces = text.split("\n")
        for i, piece in enumerate(pieces):
            if piece:
                if self._ov_open and self._ov_open[-1][1] == kind:
                    self._ov_open[-1] = (self._ov_open[-1][0] + piece, kind)
                else:
                    self._ov_open.append((piece, kind))
            if i < len(pieces) - 1:  # a newline closes the paragraph
                self._ov_closed.append(self._ov_open)
                self._ov_closed_lines.extend(self._wrap(self._ov_open, width))
                self._ov_open = []
        self._ov_open_lines = self._wrap(self._ov_open, width) if self._ov_open else []
        self._update_size(follow)
        self.refresh()

    # ------------------------------------------------------------ layout
    def _style(self, kind: str) -> Style:
        style = self._ov_styles.get(kind)
        if style is None:
            try:
                style = self.get_component_rich_style(f"output--{kind}", partial=True)
            except Exception:  # before the stylesheet applies (not mounted yet)
                style = Style(bold=kind == PROMPT)
            self._ov_styles[kind] = style
        return style

    def _width(self) -> int:
        return max(8, self.scrollable_content_region.width or self.size.width or 80)

    def _wrap(self, spans: list[tuple[str, str]], width: int) -> list[Strip]:
        if not spans:
            return [Strip.blank(0)]
        paragraph = Text(end="")
        for text, kind in spans:
            paragraph.append(text, self._style(kind))
        console = self.app.console
        lines = paragraph.wrap(console, width, overflow="fold", no_wrap=False, tab_size=4)
        out = []
        for line in lines:
            line.rstrip()
            segments = list(line.render(console))
            out.append(Strip(segments, line.cell_len))
        return out

    def _rewrap(self) -> None:
        width = self._width()
        self._ov_wrap_width = width
        self._ov_closed_lines = [s for p in self._ov_closed for s in self._wrap(p, width)]
        self._ov_open_lines = self._wrap(self._ov_open, width) if self._ov_open else []

    def _line_count(self) -> int:
        return len(self._ov_closed_lines) + len(self._ov_open_lines)

    def _at_end(self) -> bool:
        return self.following or self.scroll_offset.y >= self.max_scroll_y

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value >= self.max_scroll_y:
            self.following = True
        elif new_value < old_value:
            self.following = False  # the user scrolled back: leave the view where they put it

    def _update_size(self, follow: bool) -> None:
        self.virtual_size = Size(self._width(), self._line_count())
        if follow:
            self.scroll_to(y=max(0, self._line_count() - self.scrollable_content_region.height), animate=False, immediate=True, force=True)

    def on_resize(self) -> None:
        follow = self._at_end()
        if self._width() != self._ov_wrap_width:
            self._rewrap()
        self._update_size(follow)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._ov_styles.clear()  # the theme changed: re-style what is shown
        if self._ov_plain and self.is_mounted:
            self._rewrap()

    # ------------------------------------------------------------ rendering
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        n_closed = len(self._ov_closed_lines)
        if index < n_closed:
            strip = self._ov_closed_lines[index]
        elif index - n_closed < len(self._ov_open_lines):
            strip = self._ov_open_lines[index - n_closed]
        else:
            return Strip([Segment(" " * width, base)], width)
        strip = strip.crop_extend(scroll_x, scroll_x + width, base)
        return strip.apply_style(base) if base else strip
