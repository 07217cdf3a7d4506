"""The experiment screen's samples (F7): a box per member, titled with what tells it apart, as many side by
side as keep each title whole and its text readable, the rest in rows below; rows that don't fit the height
(or a sample longer than its box) scroll, each box then as tall as its text.

Five boxes side by side at 80 columns were 7 columns wide: their titles read "…", "s…", "a…" and which
sample was whose could not be told.
"""

from __future__ import annotations

import math

from rich.cells import cell_len
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from tinygpt_tui.app.runs import short_name
from tinygpt_tui.tokenizer import one_line, printable

TEXT = 20  # the least columns of text a box keeps (fewer boxes a row below that)
LINES = 4  # the least lines of text a row of boxes keeps (below that, the rows scroll)
FRAME = 4  # a box's border and padding, across (and its border, 2, down)
TITLE = 6  # a title's frame in the top border: ╭─ title ─╮


def grid_shape(count: int, title: int, width: int, height: int) -> tuple[int, bool]:
    """(boxes a row, whether the rows fit the height) for `count` boxes whose longest title is `title` cells, in
    `width` x `height` cells. The rows are evened out (5 in two rows: 3 and 2, not 4 and 1)."""
    need = max(TEXT + FRAME, title + TITLE)
    cols = max(1, min(count, width // need))
    rows = math.ceil(count / cols)
    return math.ceil(count / rows), height // rows >= LINES + 2


class SampleGrid(VerticalScroll):
    """The members' samples (grid_shape lays them out, again when the size changes)."""

    DEFAULT_CSS = """
    SampleGrid { layout: grid; grid-size: 1; grid-rows: auto; grid-gutter: 0 0; scrollbar-size-vertical: 1; }
    SampleGrid > .exp-sample { width: 1fr; border: round $secondary 50%; border-title-style: bold; padding: 0 1; }
    """

    def __init__(self, **kw):
        super().__init__(**kw)
        self.titles: list[str] = []
        self.texts: list[Text] = []
        self.boxes: list[Static] = []  # the boxes shown (a query would also find those still being removed)
        self.shape = None  # (cols, fits) laid out, for the size it was worked out at

    def show(self, samples: list[tuple[str, str, str]]) -> None:
        """samples: (name, title, text) a member; the whole name is its box's tooltip."""
        self.remove_children()
        self.titles = [one_line(title) for _, title, _ in samples]
        self.texts = [Text(printable(text)) for _, _, text in samples]
        boxes = []
        for (name, title, _), text in zip(samples, self.texts):
            box = Static(text, classes="exp-sample")
            box.border_title, box.tooltip = one_line(title), one_line(name)
            boxes.append(box)
        self.shape, self.boxes = None, boxes
        self.mount_all(boxes)
        self.lay_out()

    def lay_out(self) -> None:
        width, height = self.size
        if not self.titles or not width:
            return
        longest = max(cell_len(t) for t in self.titles)  # (cells: a Chinese character takes two)
        cols, fits = grid_shape(len(self.titles), longest, width, height)
        if fits:  # a row's boxes share the height: a sample longer than its box would be cut, so they scroll instead
            room = height // math.ceil(len(self.texts) / cols) - 2
            fits = all(len(t.wrap(self.app.console, max(1, width // cols - FRAME))) <= room for t in self.texts)
        if not fits:  # (the scrollbar takes a column)
            cols, _ = grid_shape(len(self.titles), longest, width - 1, height)
        if (cols, fits, width) == self.shape:
            return
        self.shape = (cols, fits, width)
        self.styles.grid_size_columns = cols
        self.styles.grid_rows = "1fr" if fits else "auto"
        room = max(3, (width if fits else width - 1) // cols - TITLE)  # a title longer than its box: cut in the middle (in cells)
        for box, title in zip(self.boxes, self.titles):
            box.styles.height = "1fr" if fits else "auto"
            box.border_title = short_name(title, room)

    def on_resize(self) -> None:
        self.lay_out()
