"""app/table.py's WholeColumnsTable on its own, in a bare app: a resize, rows that change, a scroll kept."""

from __future__ import annotations

from textual.app import App

from tests.test_app import wait_for
from tinygpt_tui.app.table import WholeColumnsTable

LABELS = ("#", "run", "val loss", "time", "corpus")


def rows_of(names, corpus="a-corpus-with-a-name-far-wider-than-the-room-beside-the-run's-name") -> list:
    return [[str(i + 1), name, f"{2 + i / 100:.4f}", f"{i}m 07s", corpus] for i, name in enumerate(names)]


class TableApp(App):
    def compose(self):
        yield WholeColumnsTable(LABELS, fixed=2, id="t", cursor_type="row")


def screen_lines(table) -> list[str]:
    return ["".join(seg.text for seg in table.render_line(y)) for y in range(table.size.height)]


async def test_a_column_cut_to_the_room_is_cut_anew_when_the_room_changes_by_a_few_cells():
    """A column wider alone than the room beside the names is cut at its end ("…") to fit. A resize that kept the same
    columns on screen left that cut as it was: narrower by 4 cells, the table ran 4 cells past its edge (a scrollbar,
    the "…" off screen); wider, the column stayed cut shorter than its room."""
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(WholeColumnsTable)
        table.focus()
        table.show(rows_of(["a", "b", "c"]), ["a", "b", "c"])
        for _ in LABELS:
            await pilot.press("right")  # (to the corpus: cut to the room)
        assert await wait_for(pilot, lambda: table.shown is not None and table.shown[-1] == len(LABELS) - 1)
        for width in (36, 46, 40):
            await pilot.resize_terminal(width, 12)
            assert await wait_for(pilot, lambda: table.size.width == width)
            await pilot.pause()
            lines = screen_lines(table)
            assert table.max_scroll_x == 0, (width, lines)  # (nothing past its edge)
            assert table.virtual_size.width >= width - 1, (width, lines)  # (the room used: the cut column fills it)
            assert all(line.rstrip().endswith("…") for line in lines[table.header_height:][:3]), (width, lines)


async def test_the_cursor_stays_on_its_row_when_the_rows_are_ranked_anew():
    """The runs table ranks its rows by val loss, which a training run changes as it goes: the cursor stayed at its
    index, on another run than the one the reader had put it on. It follows its row's key; a row gone (the last, under
    the cursor), it stays at the end, not back at the top."""
    app = TableApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(WholeColumnsTable)
        table.focus()
        table.show(rows_of(["a", "b", "c", "d"]), ["a", "b", "c", "d"])
        await pilot.press("down")
        assert await wait_for(pilot, lambda: table.cursor_row == 1)
        table.show(rows_of(["b", "c", "a", "d"]), ["b", "c", "a", "d"])
        assert await wait_for(pilot, lambda: table.cursor_row == 0)  # ("b" now ranks first)
        await pilot.press("down", "down", "down")
        assert await wait_for(pilot, lambda: table.cursor_row == 3)
        table.show(rows_of(["b", "c", "a"]), ["b", "c", "a"])  # ("d", under the cursor, deleted)
        assert await wait_for(pilot, lambda: table.cursor_row == 2)


async def test_a_table_scrolled_by_the_wheel_stays_there_when_redrawn_or_moved_along():
    """DataTable.clear takes a table back to its top: the experiment screen redraws its table at each update, and → lays
    it out again, so rows scrolled to with the wheel (the cursor left on the first) jumped back to the top."""
    names = [f"member-{i:02d}" for i in range(40)]
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(WholeColumnsTable)
        table.focus()
        table.show(rows_of(names), names)
        await pilot.pause()
        table.scroll_to(y=20, animate=False)
        assert await wait_for(pilot, lambda: table.scroll_y == 20)
        table.show(rows_of(names), names)  # (an update's redraw)
        await pilot.pause()
        await pilot.pause()
        assert table.scroll_y == 20 and table.cursor_row == 0
        await pilot.press("right")
        assert await wait_for(pilot, lambda: table.shown is not None and table.shown[2] == 3)
        await pilot.pause()
        assert table.scroll_y == 20
        assert "member-20" in screen_lines(table)[table.header_height]


async def test_a_table_that_fitted_whole_starts_again_from_its_first_columns():
    """Moved along (→) to the last columns, then given rows that all fit (shorter names, a run unchecked), then wide
    rows again: it showed the columns from where → had left it, the first figures (val loss) off to the left."""
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(WholeColumnsTable)
        table.focus()
        table.show(rows_of(["a", "b"]), ["a", "b"])
        for _ in LABELS:
            await pilot.press("right")
        assert await wait_for(pilot, lambda: table.shown is not None and table.shown[2] > 2)
        table.show(rows_of(["a", "b"], corpus="short"), ["a", "b"])
        assert table.shown == tuple(range(len(LABELS)))
        table.show(rows_of(["a", "b"]), ["a", "b"])
        assert table.shown[:3] == (0, 1, 2) and "←" not in str(table.ordered_columns[1].label)


async def test_rows_that_no_longer_need_a_scrollbar_get_its_cells_back():
    """room() took a scrollbar's cells off where the rows would bring one, and kept them off while one was shown: rows
    fewer than the lines (a run unchecked) left the table laid out for the bar that went with them, a column short."""
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(WholeColumnsTable)
        rows = rows_of(["a", "b"], corpus="x" * 11)
        width = sum(max(len(label), *(len(r[i]) for r in rows)) + 2 for i, label in enumerate(LABELS))
        await pilot.resize_terminal(width, 12)  # (every column fits exactly: none with a scrollbar beside them)
        assert await wait_for(pilot, lambda: table.size.width == width)
        names = [chr(97 + i) for i in range(20)]
        table.show(rows_of(names, corpus="x" * 11), names)
        assert await wait_for(pilot, lambda: table.show_vertical_scrollbar)
        assert len(table.shown) < len(LABELS)  # (20 rows: the bar's 2 cells off, the corpus on a page of its own)
        table.show(rows, ["a", "b"])
        assert table.shown == tuple(range(len(LABELS)))
        assert await wait_for(pilot, lambda: not table.show_vertical_scrollbar)
        assert table.max_scroll_x == 0
