"""A table of figures that never shows part of a column. A DataTable wider than its room scrolls a cell at a
time, and the column at its edge is cut wherever the scroll stops: the runs table at 80 columns read "3.3" for
3.3k tokens/s and "12m" for 12m 47s. This one keeps its first columns (what names a row) and shows as many of
the rest as fit whole beside them; ← and → (or the mouse's sideways scroll) move along them a column at a time,
and the header of the last kept column says which way more lie.

    table = WholeColumnsTable(("", "run", "val\\nloss", ...), fixed=2, id="runs-table", cursor_type="row")
    table.show(rows, keys)          # every column's cells; the table picks the columns that fit, again on a resize
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable


def cell_width(cell) -> int:
    """A cell's width in terminal cells: its widest line (a two-line header: "val" over "loss")."""
    text = cell.plain if isinstance(cell, Text) else str(cell)
    return max(map(cell_len, text.split("\n")))


class WholeColumnsTable(DataTable):
    def __init__(self, labels: tuple, fixed: int = 1, **kw):
        super().__init__(**kw)
        self.labels, self.fixed = tuple(labels), fixed
        self.first = fixed  # the first column shown after the fixed ones
        self.all_rows: list = []
        self.keys: list = []
        self.shown: tuple | None = None  # the columns on screen (their indices)
        self.over = self.laid_over = 0  # (cells the last column shown is cut by: now, and when laid out)

    def show(self, rows: list, keys: list) -> None:
        """Rows of a cell for every label (the row's key beside each): shown, the columns that fit picked anew. The
        cursor stays on its row where the same rows come in another order (a training run's val loss ranks it anew
        every few seconds), else at its place (the last row, where it was past the end)."""
        at, keys = self.cursor_row, list(keys)
        key = self.keys[at] if self.row_count and 0 <= at < len(self.keys) and set(keys) == set(self.keys) else None
        self.all_rows, self.keys, self.shown = [list(r) for r in rows], keys, None
        self.lay_out(keys.index(key) if key is not None else min(at, len(keys) - 1))

    def room(self, rows: int | None = None) -> int:
        """The cells across for the columns with ``rows`` rows (default: those shown): less a scrollbar's where they
        outnumber the lines below the header, as it will be once they are added (no resize says so), and its cells
        back where the bar shown now goes with the rows that needed it."""
        region, rows, size = self.scrollable_content_region, len(self.all_rows) if rows is None else rows, self.styles.scrollbar_size_vertical
        bar = size if region.height and rows > region.height - self.header_height else 0
        return max(0, region.width + (size if self.show_vertical_scrollbar else 0) - bar)

    def widths(self) -> list[int]:
        return [max([cell_width(label)] + [cell_width(r[i]) for r in self.all_rows]) + 2 * self.cell_padding
                for i, label in enumerate(self.labels)]

    def columns_shown(self) -> tuple[int, ...]:
        """The fixed columns and, from self.first, the rest that fit whole (one at least); all of them where they fit."""
        widths, room = self.widths(), self.room()
        if not room or sum(widths) <= room:  # (all of them: the next time some don't fit, they start from the first)
            self.over, self.first = 0, self.fixed
            return tuple(range(len(widths)))
        if self.fixed:  # (its header says which way the rest lie: "run ←→")
            widths[self.fixed - 1] = max(widths[self.fixed - 1], cell_width(self.labels[self.fixed - 1]) + 3 + 2 * self.cell_padding)
        self.first = max(self.fixed, min(self.first, len(widths) - 1))
        used, shown = sum(widths[: self.fixed]), list(range(self.fixed))
        for i in range(self.first, len(widths)):
            if shown[self.fixed:] and used + widths[i] > room:
                break
            used += widths[i]
            shown.append(i)
        while shown[-1] == len(widths) - 1 and self.first > self.fixed and used + widths[self.first - 1] <= room:  # (at the end: no room left empty)
            self.first -= 1
            used += widths[self.first]
            shown.insert(self.fixed, self.first)
        self.over = max(0, used - room)  # (a column wider alone than the room beside the fixed ones: cut at its end, "…")
        return tuple(shown)

    def lay_out(self, cursor: int | None = None) -> None:
        """The columns that fit, rows and all, again: the cursor on row `cursor` (default: its own) and the rows
        scrolled to where they were (DataTable.clear takes both to the top: → or an update's redraw, while the wheel
        had scrolled away from the cursor, showed the top rows)."""
        shown = self.columns_shown()
        cursor, y = self.cursor_row if cursor is None else cursor, self.scroll_y
        label = list(self.labels)
        if len(shown) < len(self.labels) and self.fixed:  # which way the other columns lie
            ways = ("←" if shown[self.fixed] > self.fixed else "") + ("→" if shown[-1] < len(self.labels) - 1 else "")
            label[self.fixed - 1] = f"{label[self.fixed - 1]} {ways}"
        self.clear(columns=True)
        self.add_columns(*(label[i] for i in shown))
        last = shown[-1]
        most = max([cell_width(label[last])] + [cell_width(r[last]) for r in self.all_rows]) - self.over
        for row, key in zip(self.all_rows, self.keys):
            cells = [row[i] for i in shown]
            if self.over and len(shown) < len(self.labels):
                cells[-1] = cells[-1].copy() if isinstance(cells[-1], Text) else Text(str(cells[-1]))
                cells[-1].truncate(max(1, most), overflow="ellipsis")
            self.add_row(*cells, key=key)
        self.shown, self.laid_over = shown, self.over
        if 0 < cursor < self.row_count:
            self.move_cursor(row=cursor, animate=False, scroll=False)
        self.call_after_refresh(self.scroll_to, y=y, animate=False)  # (once the rows' height is known)

    def on_resize(self) -> None:
        """The columns picked anew, and a column cut to the room (over) cut anew: wider or narrower, by a cell."""
        if self.shown is not None and (self.columns_shown(), self.over) != (self.shown, self.laid_over):
            self.lay_out()

    def step(self, by: int) -> bool:
        """Show the next column to the right (by=1) or left (-1); False where none lies that way."""
        if self.shown is None or len(self.shown) == len(self.labels):
            return False
        if (by > 0 and self.shown[-1] == len(self.labels) - 1) or (by < 0 and self.shown[self.fixed] == self.fixed):
            return False
        self.first = self.shown[self.fixed] + by
        self.lay_out()
        return True

    def action_cursor_right(self) -> None:
        if not self.step(1):
            super().action_cursor_right()

    def action_cursor_left(self) -> None:
        if not self.step(-1):
            super().action_cursor_left()

    def on_mouse_scroll_right(self) -> None:
        self.step(1)

    def on_mouse_scroll_left(self) -> None:
        self.step(-1)
