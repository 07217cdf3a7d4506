"""The output pane: a prompt and its continuation, streamed in, wrapped and scrolled cheaply.

Text is kept as paragraphs (split at newlines), each wrapped into lines once.
Appending re-wraps only from the start of the last line of the last, open
paragraph (greedy wrapping never moves an earlier line's break), and only
the lines that changed are repainted: a flush costs the same at character
100 as at character 100,000, in a paragraph of any length. A new line while
following the end scrolls, which repaints the pane once; nothing else on the
screen is laid out again (the virtual size changes without a layout pass).

Every character shown has passed through ``printable()``: nothing from a
prompt, a corpus or a vocabulary can reach the terminal as a control
sequence, and nothing is parsed as markup.
"""

from __future__ import annotations

import time
from math import ceil

from rich._wrap import divide_line
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip

from tinygpt_tui.tokenizer import printable

PROMPT, GENERATED, NOTE = "prompt", "generated", "note"
TAB = "    "
BAR_INTERVAL = 0.2  # seconds between scrollbar repaints while the text streams


class OutputView(ScrollView, can_focus=True):
    """A read-only, append-only styled text pane that follows the end unless scrolled back."""

    COMPONENT_CLASSES = {"output--prompt", "output--generated", "output--note"}

    DEFAULT_CSS = """
    OutputView {
        background: $surface;
        padding: 0;  /* border and padding belong on a container: lines here are drawn without them */
        scrollbar-gutter: stable;  /* the wrap width does not change when the scrollbar appears */
    }
    OutputView > .output--prompt { color: $text; text-style: bold; background: $primary 25%; }
    OutputView > .output--generated { color: $text; }
    OutputView > .output--note { color: $text-muted; text-style: italic; }
    """

    # the usual keys, left out of the footer: listed there they pushed the screen's own keys out
    # of a 120-column footer when the pane had the focus
    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", show=False, id="output-up"),
        Binding("down", "scroll_down", "Scroll down", show=False, id="output-down"),
        Binding("pageup", "page_up", "Page up", show=False, id="output-page-up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="output-page-down"),
        Binding("home", "scroll_home", "Top", show=False, id="output-top"),
        Binding("end", "scroll_end", "Bottom", show=False, id="output-bottom"),
    ]

    def __init__(self, *, name=None, id=None, classes=None):
        super().__init__(name=name, id=id, classes=classes)
        self._ov_closed: list[tuple[str, list]] = []  # finished paragraphs: (text, [[start, end, kind], ...])
        self._ov_open = ""  # the paragraph being written (no newline yet)
        self._ov_open_spans: list[list] = []
        self._ov_lines: list[Strip] = []  # every wrapped line: closed paragraphs', then the open one's
        self._ov_open_first = 0  # index in _ov_lines of the open paragraph's first line
        self._ov_open_starts: list[int] = []  # where each of its lines starts in _ov_open
        self._ov_shown: dict[int, Strip] = {}  # line index -> the strip render_line returns (padded, base style)
        self._ov_shown_key = None
        self._ov_context = None  # (key, base style, background, filters) for render_lines
        self._ov_bar_thumb = None  # the scrollbar thumb as last painted
        self._ov_bar_painted = 0.0
        self._ov_bar_timer = None
        self._ov_appending = False  # the scroll comes from new text, not from the user
        self._ov_styles: dict[str, Style] = {}
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
        self._ov_open = ""
        self._ov_open_spans = []
        self._ov_lines.clear()
        self._ov_open_first = 0
        self._ov_open_starts = []
        self._ov_shown.clear()
        self._ov_plain.clear()
        self._ov_length = 0
        self._set_line_count(0)
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
        if width != self._ov_wrap_width:
            self._rewrap()
        old_count = len(self._ov_lines)
        # the first line that changes: the open paragraph's last line (or a new one)
        first_changed = self._ov_open_first + max(0, len(self._ov_open_starts) - 1)
        pieces = text.replace("\t", TAB).split("\n")
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            if piece:
                n = len(self._ov_open)
                self._ov_open += piece
                spans = self._ov_open_spans
                if spans and spans[-1][2] == kind:
                    spans[-1][1] = n + len(piece)
                else:
                    spans.append([n, n + len(piece), kind])
            if i < last:  # a newline closes the paragraph
                self._wrap_open_tail(width)
                if not self._ov_open_starts:  # an empty paragraph is one blank line
                    self._ov_lines.append(Strip.blank(0))
                self._ov_closed.append((self._ov_open, self._ov_open_spans))
                self._ov_open, self._ov_open_spans = "", []
                self._ov_open_first = len(self._ov_lines)
                self._ov_open_starts = []
        self._wrap_open_tail(width)
        for index in [i for i in self._ov_shown if i >= first_changed]:
            del self._ov_shown[index]
        count = len(self._ov_lines)
        if count != old_count:
            self._set_line_count(count)
        if follow:
            target = max(0, count - self.scrollable_content_region.height)
            if target != self.scroll_offset.y:
                # scrolling repaints the whole pane (ScrollView.watch_scroll_y)
                self._ov_appending = True
                try:
                    self.scroll_to(y=target, animate=False, immediate=True, force=True)
                finally:
                    self._ov_appending = False
                return
        if first_changed < max(count, old_count):
            self.refresh_lines(first_changed, max(count, old_count) - first_changed)

    # ------------------------------------------------------------ layout
    def _style(self, kind: str) -> Style:
        style = self._ov_styles.get(kind)
        if style is None:
            try:
                style = self.get_component_rich_style(f"output--{kind}", partial=True)
            except Exception:  # before the stylesheet applies (not mounted yet)
                return Style(bold=kind == PROMPT)
            self._ov_styles[kind] = style
        return style

    def _width(self) -> int:
        return max(8, self.scrollable_content_region.width or self.size.width or 80)

    def _line(self, text: str, spans: list, a: int, b: int) -> Strip:
        """Characters a:b of a paragraph as a strip of styled segments (trailing spaces dropped)."""
        b = a + len(text[a:b].rstrip())
        segments = []
        for s, e, kind in spans:
            if e <= a:
                continue
            if s >= b:
                break
            segments.append(Segment(text[max(s, a) : min(e, b)], self._style(kind)))
        return Strip(segments)

    def _wrap_open_tail(self, width: int) -> None:
        """Re-wrap the open paragraph from the start of its last line (earlier lines cannot change)."""
        text, spans = self._ov_open, self._ov_open_spans
        starts = self._ov_open_starts
        start = starts.pop() if starts else 0
        del self._ov_lines[self._ov_open_first + len(starts) :]
        if start >= len(text):
            return
        cuts = [start + o for o in divide_line(text[start:], width, fold=True)]
        bounds = [start, *cuts, len(text)]
        starts.extend(bounds[:-1])
        self._ov_lines.extend(self._line(text, spans, a, b) for a, b in zip(bounds, bounds[1:]))

    def _wrap(self, text: str, spans: list, width: int) -> list[Strip]:
        if not text:
            return [Strip.blank(0)]
        bounds = [0, *divide_line(text, width, fold=True), len(text)]
        return [self._line(text, spans, a, b) for a, b in zip(bounds, bounds[1:])]

    def _rewrap(self) -> None:
        """Everything again, at a new width or in a new style (a resize, a theme change)."""
        width = self._width()
        self._ov_wrap_width = width
        lines = [s for text, spans in self._ov_closed for s in self._wrap(text, spans, width)]
        self._ov_lines = lines
        self._ov_open_first = len(lines)
        self._ov_open_starts = []
        self._wrap_open_tail(width)
        self._ov_shown.clear()

    def _line_count(self) -> int:
        return len(self._ov_lines)

    def _set_line_count(self, count: int) -> None:
        """Set the virtual height without a layout pass: the pane's own size does not depend on it."""
        size = Size(self._width(), count)
        if size == self.virtual_size:
            return
        if not self.is_mounted or not self.container_size:
            self.virtual_size = size
            return
        self.set_reactive(OutputView.virtual_size, size)
        self._refresh_scrollbars()  # shown or hidden: that one lays out (once, when the text outgrows the pane)
        if self.show_vertical_scrollbar:
            self._sync_scrollbar(count, self.container_size.height - self.scrollbar_size_horizontal, self.scroll_y)

    def _sync_scrollbar(self, virtual: int, window: int, position: float, throttle: bool = True) -> None:
        """Update the scrollbar without repainting it; the thumb is redrawn at most 5 times a second.

        (Textual repaints the whole bar whenever the virtual size or the position
        changes: with text streaming in that was a full-height repaint per flush.)
        """
        bar = self.vertical_scrollbar
        bar.set_reactive(ScrollBar.window_virtual_size, virtual)
        bar.set_reactive(ScrollBar.window_size, window)
        bar.set_reactive(ScrollBar.position, bar.validate_position(position))
        if self._ov_bar_timer is not None:
            if throttle:
                return  # a repaint is already due
            self._ov_bar_timer.stop()
        wait = self._ov_bar_painted + BAR_INTERVAL - time.monotonic() if throttle else 0
        if wait <= 0:
            self._paint_scrollbar()
        else:
            self._ov_bar_timer = self.set_timer(wait, self._paint_scrollbar)

    def _paint_scrollbar(self) -> None:
        """Repaint the scrollbar if its thumb moved or resized by a visible step (1/8 cell)."""
        self._ov_bar_timer = None
        thumb = self._thumb(self.vertical_scrollbar)
        if thumb != self._ov_bar_thumb:
            self._ov_bar_thumb = thumb
            self._ov_bar_painted = time.monotonic()
            self.vertical_scrollbar.refresh()

    @staticmethod
    def _thumb(bar: ScrollBar):
        """Where ScrollBarRender.render_bar draws the thumb, in eighths of a cell."""
        size = bar.size.height
        virtual = ceil(bar.window_virtual_size)
        window = ceil(bar.window_size) if bar.window_size < bar.window_virtual_size else 0
        if not (window and size and virtual and size != virtual):
            return None
        thumb = max(1, window / (virtual / size))
        start = int((size - thumb) * (bar.position / (virtual - window)) * 8)
        return start, start + ceil(thumb * 8), size

    def _at_end(self) -> bool:
        return self.following or self.scroll_offset.y >= self.max_scroll_y

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        # ScrollView's, except that the scrollbar repaints only when its thumb visibly moves
        if self.show_vertical_scrollbar:
            bar = self.vertical_scrollbar
            self._sync_scrollbar(bar.window_virtual_size, bar.window_size, new_value, throttle=self._ov_appending)
        if round(old_value) != round(new_value):
            self.refresh(self.size.region)
        if new_value >= self.max_scroll_y:
            self.following = True
        elif new_value < old_value:
            self.following = False  # the user scrolled back: leave the view where they put it

    def _update_size(self, follow: bool) -> None:
        self._set_line_count(self._line_count())
        if follow:
            self.scroll_to(y=max(0, self._line_count() - self.scrollable_content_region.height), animate=False, immediate=True, force=True)

    def on_resize(self) -> None:
        follow = self._at_end()
        if self._width() != self._ov_wrap_width:
            self._rewrap()
        self._update_size(follow)
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._ov_styles.clear()  # the theme changed: re-style what is shown
        self._ov_shown.clear()
        self._ov_context = None
        if self._ov_plain and self.is_mounted:
            self._rewrap()

    # ------------------------------------------------------------ rendering
    def render_lines(self, crop: Region) -> list[Strip]:
        """The visible lines, straight from the line cache.

        Textual's per-line styling pass (borders, padding, tint, opacity) is
        skipped: this widget has none of them (its container draws the border),
        so a repaint costs a list lookup and the app's filters per line.
        """
        styles = self.styles
        if any(styles.gutter) or styles.opacity != 1 or styles.text_opacity != 1 or styles.tint.a:
            return super().render_lines(crop)
        width = self.size.width
        app = self.app
        key = (width, app.theme, app.ansi_color)
        context = self._ov_context
        if context is None or context[0] != key:
            _, background = self.background_colors
            context = self._ov_context = (key, self.rich_style, background, tuple(self.get_line_filters()))
        _, base, background, filters = context
        scroll_y = self.scroll_offset.y
        line = self._shown_line
        strips = [line(scroll_y + y, width, base) for y in crop.line_range]
        for f in filters:
            strips = [strip.apply_filter(f, background) for strip in strips]
        if crop.column_span != (0, width):
            x1, x2 = crop.column_span
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    def _shown_line(self, index: int, width: int, base: Style) -> Strip:
        """Line `index` padded to `width` in the pane's style, cached until it changes."""
        key = (width, 0, base)
        if key != self._ov_shown_key:
            self._ov_shown.clear()
            self._ov_shown_key = key
        shown = self._ov_shown
        strip = shown.get(index)
        if strip is not None:
            return strip
        if index < len(self._ov_lines):
            strip = self._ov_lines[index].crop_extend(0, width, base)
            strip = strip.apply_style(base) if base else strip
        else:
            strip = Strip([Segment(" " * width, base)], width)
        shown[index] = strip
        height = self.size.height
        if len(shown) > 4 * height + 64:  # keep the cache to about what is on screen
            top = self.scroll_offset.y
            for i in [i for i in shown if not top - height <= i <= top + 2 * height]:
                del shown[i]
        return strip

    def render_line(self, y: int) -> Strip:
        """Used only when CSS gives this widget a border, padding or opacity (see render_lines)."""
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        index = scroll_y + y
        if index < len(self._ov_lines):
            strip = self._ov_lines[index].crop_extend(scroll_x, scroll_x + width, base)
            return strip.apply_style(base) if base else strip
        return Strip([Segment(" " * width, base)], width)
