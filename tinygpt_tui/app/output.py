"""The output pane: a prompt and its continuation, streamed in, wrapped and scrolled cheaply.

Text is kept as paragraphs (split at newlines), each wrapped into lines once. Appending re-wraps
only from the start of the open paragraph's last line (greedy wrapping never moves an earlier
line's break) and repaints only the lines that changed, the chunks of 80 ms at once: a chunk
costs the same at character 100 as at character 100,000. Drawn with Textual's line API (a ScrollView's render_line), as
Toolong draws its logs.

Every character shown has passed through ``printable()``: nothing from a prompt, a corpus or a
vocabulary reaches the terminal as a control sequence, and nothing is parsed as markup.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tinygpt_tui.tokenizer import printable

PROMPT, GENERATED, NOTE = "prompt", "generated", "note"
TAB = "    "
NO_LINE_START = set("，。、；：？！）」』”’》〉】…")
# chunks arriving faster are drawn together: at most 12.5 repaints a second. Each repaint is a
# frame of the whole pane (it scrolls), the UI thread's largest cost while text streams, and on a
# machine with one free core that time is taken from the sampler; at 3,000 chars/s a frame adds
# about two lines, which still reads as text flowing (docs/performance.md, streaming)
REPAINT_S = 0.08


def wrap_points(text: str, width: int) -> list[int]:
    """Where greedy wrapping breaks text into lines of at most `width` cells: after the last space
    that fits, or inside a word longer than a line."""
    cuts, start, used, space = [], 0, 0, -1
    for i, ch in enumerate(text):
        w = cell_len(ch)
        if used + w > width and i > start:
            if ch == " ":  # a space at the edge: the next line starts after it
                cuts.append(i + 1)
                start, used, space = i + 1, 0, -1
                continue
            cut = space + 1 if space >= start else i
            while cut > start + 1 and text[cut] in NO_LINE_START and space < start:
                cut -= 1  # Chinese punctuation never starts a line: it takes the character before it along
            cuts.append(cut)
            start, space = cut, -1
            used = cell_len(text[start:i])
        used += w
        if ch == " ":
            space = i
    return cuts


class OutputView(ScrollView, can_focus=True):
    """A read-only, append-only styled text pane that follows the end unless scrolled back."""

    COMPONENT_CLASSES = {"output--prompt", "output--generated", "output--note"}

    DEFAULT_CSS = """
    OutputView {
        background: $surface;
        padding: 0;  /* border and padding belong on a container: lines here are drawn without them */
        overflow-y: scroll;  /* always shown: the wrap width and the layout never change as text arrives */
    }
    OutputView > .output--prompt { color: $text; text-style: bold; background: $primary 25%; }
    OutputView > .output--generated { color: $text; }
    OutputView > .output--note { color: $text-muted; text-style: italic; }
    """

    def __init__(self, *, name=None, id=None, classes=None):
        super().__init__(name=name, id=id, classes=classes)
        self.closed: list[tuple[str, list]] = []  # finished paragraphs: (text, [[start, end, kind], ...])
        self.open_text = ""  # the paragraph being written (no newline yet)
        self.open_spans: list[list] = []
        self.lines: list[Strip] = []  # every wrapped line: the closed paragraphs', then the open one's
        self.open_first = 0  # index in lines of the open paragraph's first line
        self.open_starts: list[int] = []  # where each of its lines starts in open_text
        self.wrap_width = 0
        self.styles_by_kind: dict[str, Style] = {}
        self.plain: list[str] = []
        self.length = 0
        self.shown: dict[int, Strip] = {}  # line index -> the strip render_line returned (cropped, styled)
        self.shown_key = None  # (width, base style) those strips were drawn for
        self.following = True  # stick to the end until the user scrolls up; back at the end, stick again
        self.dirty_from: int | None = None  # the first line changed since the last repaint
        self.scrolled = False  # the view followed the end since the last repaint
        self.repaint_timer = None

    # ------------------------------------------------------------ content
    @property
    def text(self) -> str:
        """Everything shown, as plain text (after printable())."""
        return "".join(self.plain)

    def __len__(self) -> int:
        return self.length

    def clear(self) -> None:
        self.closed, self.open_text, self.open_spans = [], "", []
        self.lines, self.open_first, self.open_starts = [], 0, []
        self.plain, self.length = [], 0
        self.following, self.dirty_from = True, None
        self.shown.clear()
        self.set_line_count()
        self.scroll_to(0, 0, animate=False, immediate=True, force=True)
        self.refresh()

    def append(self, text: str, kind: str = GENERATED) -> None:
        """Add text in a style: prompt, generated or note."""
        if not text:
            return
        text = printable(text)
        follow = self.at_end()
        self.plain.append(text)
        self.length += len(text)
        width = self.width()
        if width != self.wrap_width:
            self.rewrap()
        old_count = len(self.lines)
        first_changed = self.open_first + max(0, len(self.open_starts) - 1)  # the open paragraph's last line
        pieces = text.replace("\t", TAB).split("\n")
        for i, piece in enumerate(pieces):
            if piece:
                n = len(self.open_text)
                self.open_text += piece
                if self.open_spans and self.open_spans[-1][2] == kind:
                    self.open_spans[-1][1] = n + len(piece)
                else:
                    self.open_spans.append([n, n + len(piece), kind])
            if i < len(pieces) - 1:  # a newline closes the paragraph
                self.wrap_open_tail(width)
                if not self.open_starts:  # an empty paragraph is one blank line
                    self.lines.append(Strip.blank(0))
                self.closed.append((self.open_text, self.open_spans))
                self.open_text, self.open_spans = "", []
                self.open_first, self.open_starts = len(self.lines), []
        self.wrap_open_tail(width)
        count = len(self.lines)
        for index in [i for i in self.shown if i >= first_changed]:
            del self.shown[index]
        if count != old_count:
            self.set_line_count(bar=False)  # the scroll bar follows at the repaint
        height = self.scrollable_content_region.height
        if follow and count > height and self.is_mounted:  # at the end now; on screen at the next repaint
            self.set_reactive(OutputView.scroll_y, float(count - height))
            self.scroll_target_y, self.scrolled = self.scroll_y, True
        self.dirty_from = first_changed if self.dirty_from is None else min(self.dirty_from, first_changed)
        if self.repaint_timer is None and self.is_mounted:  # one repaint for the chunks of the next 80 ms
            self.repaint_timer = self.set_timer(REPAINT_S, self.repaint)

    def repaint(self) -> None:
        """The lines changed since the last repaint, or the whole pane if it scrolled meanwhile."""
        self.repaint_timer = None
        self.update_bar()
        if self.scrolled:
            self.vertical_scrollbar.position = self.scroll_y
            self.refresh()
        elif self.dirty_from is not None:
            self.refresh_lines(self.dirty_from, max(1, len(self.lines) - self.dirty_from))
        self.dirty_from, self.scrolled = None, False

    # ------------------------------------------------------------ wrapping
    def style_of(self, kind: str) -> Style:
        style = self.styles_by_kind.get(kind)
        if style is None:
            if not self.is_mounted:
                return Style(bold=kind == PROMPT)
            style = self.styles_by_kind[kind] = self.get_component_rich_style(f"output--{kind}", partial=True)
        return style

    def width(self) -> int:
        return max(8, self.scrollable_content_region.width or self.size.width or 80)

    def line(self, text: str, spans: list, a: int, b: int) -> Strip:
        """Characters a:b of a paragraph as a strip of styled segments (trailing spaces dropped)."""
        b = a + len(text[a:b].rstrip())
        segments = [Segment(text[max(s, a) : min(e, b)], self.style_of(kind)) for s, e, kind in spans if e > a and s < b]
        return Strip(segments)

    def wrap(self, text: str, spans: list, width: int, start: int = 0) -> tuple[list[int], list[Strip]]:
        """Line starts and lines of text[start:] wrapped to width."""
        bounds = [start, *(start + c for c in wrap_points(text[start:], width)), len(text)]
        return bounds[:-1], [self.line(text, spans, a, b) for a, b in zip(bounds, bounds[1:])]

    def wrap_open_tail(self, width: int) -> None:
        """Re-wrap the open paragraph from the start of its last line (earlier lines cannot change)."""
        start = self.open_starts.pop() if self.open_starts else 0
        del self.lines[self.open_first + len(self.open_starts) :]
        if start < len(self.open_text):
            starts, lines = self.wrap(self.open_text, self.open_spans, width, start)
            self.open_starts += starts
            self.lines += lines

    def rewrap(self) -> None:
        """Everything again, at a new width or in a new style (a resize, a theme change)."""
        width = self.wrap_width = self.width()
        self.lines = []
        for text, spans in self.closed:
            self.lines += self.wrap(text, spans, width)[1] if text else [Strip.blank(0)]
        self.open_first, self.open_starts = len(self.lines), []
        self.wrap_open_tail(width)

    # ------------------------------------------------------------ scrolling and drawing
    def set_line_count(self, bar: bool = True) -> None:
        """The virtual height (the wrapped lines), set without a layout pass of the screen (the pane's own size does not
        depend on it; Textual lays out the whole screen on every change of virtual_size otherwise).
        With bar=False the scroll bar is left to the next repaint: each change of it is a frame of
        its own, outside the repaint's pace."""
        size = Size(self.width(), len(self.lines))
        if not self.is_mounted:
            self.virtual_size = size
            return
        self.set_reactive(OutputView.virtual_size, size)
        if bar:
            self.update_bar()

    def update_bar(self) -> None:
        if self.is_mounted:
            bar = self.vertical_scrollbar
            bar.window_virtual_size = len(self.lines)
            bar.window_size = self.scrollable_content_region.height

    def at_end(self) -> bool:
        return self.following or self.scroll_offset.y >= self.max_scroll_y

    def show_from_top(self) -> None:
        """Read what the pane holds from its first line (a hint, not a stream): it stays at the top, however
        small the pane, until the pane is cleared or scrolled to its end."""
        self.following = False
        self.scroll_to(0, 0, animate=False, immediate=True, force=True)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value >= self.max_scroll_y:
            self.following = True
        elif new_value < old_value:
            self.following = False  # the user scrolled back: leave the view where they put it

    def on_resize(self) -> None:
        follow = self.following or self.scroll_offset.y >= self.max_scroll_y > 0  # (a pane shown from the top stays there)
        if self.width() != self.wrap_width:
            self.rewrap()
        self.shown.clear()
        self.virtual_size = Size(self.width(), len(self.lines))
        if follow:
            self.scroll_to(y=max(0, len(self.lines) - self.scrollable_content_region.height), animate=False, immediate=True, force=True)
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.styles_by_kind.clear()  # the theme changed: re-style what is shown
        self.shown.clear()
        if self.plain and self.is_mounted:
            self.rewrap()

    def render_line(self, y: int) -> Strip:
        """Line y of the pane, from the cache of lines drawn: a scroll by one line (each new line of
        a stream) crops and styles one line, not the whole pane."""
        width = self.scrollable_content_region.width
        key = (width, self.scroll_offset.x, self.app.theme)
        if key != self.shown_key:
            self.shown.clear()
            self.shown_key, self.base_style = key, self.rich_style
        index = self.scroll_offset.y + y
        strip = self.shown.get(index)
        if strip is None:
            base, x = self.base_style, self.scroll_offset.x
            if index < len(self.lines):
                strip = self.lines[index].crop_extend(x, x + width, base).apply_style(base)
            else:
                strip = Strip([Segment(" " * width, base)], width)
            self.shown[index] = strip
            if len(self.shown) > 8 * max(self.size.height, 8):  # about what is on screen, not the whole text
                top = self.scroll_offset.y
                for i in [i for i in self.shown if abs(i - top) > 2 * self.size.height]:
                    del self.shown[i]
        return strip
