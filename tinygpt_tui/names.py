"""A run's name shown in a given width, by both faces: cut in the middle where a line is all it has (the app's
lists and tables, a sample's title), or wrapped between its parts (`tinygpt runs`), never inside a value."""

from __future__ import annotations

import os
import re

from rich.cells import cell_len

from tinygpt_tui.tokenizer import one_line

LIST_NAME = 17  # a name's characters the app's list shows whole at 80 columns (26 wide: a border, a scrollbar, the box)


def short_name(name: str, most: int = LIST_NAME, peers=()) -> str:
    """A name cut in the middle, not at its end: a lesson's members (lesson-positions-10steps/pos_encoding=alibi,
    ...=rope) differ at the end, and cut there they all read alike. Its start is kept short (3 cells). `most` is
    terminal cells, not characters: a Chinese character takes two. Where it differs from one of `peers` (the
    other names shown) in the part cut out, what they share at the start goes instead: a grid's members with
    seeds (d1/pos_encoding=learned,seed=1337 and =rope,seed=1337) differ in the middle, and both read
    'd1/…seed=1337'. Cut as shown: on one line, inert (one_line)."""
    name, peers = one_line(name), [one_line(p) for p in peers]
    cut = _middle_cut(name, most)
    head = leading_cells(name, max(1, min(3, (most - 1) // 3)))  # (the experiment's start, as the plain cut keeps it)
    kept = len(cut) - len(head) - 1  # (the characters of its end the plain cut keeps)
    hidden = [len(os.path.commonprefix([name, p])) for p in peers if p != name and _hides(name, p, len(head), kept)]
    if cut == name or not hidden:
        return cut
    shared = name[: max(hidden)]  # what it shares with the name nearest it
    shared = shared[: max(shared.rfind(c) for c in "/,=-") + 1]  # (to a separator: "=rope" and "=rule" stay words)
    if shared.endswith("=") and not name[len(shared):].split(",")[0].replace("_", "").isalpha():
        shared = shared[: max(shared.rfind(c) for c in "/,") + 1]  # (a bare 2 says nothing: n_layer=2, as engine's short_names)
    head = name[: min(len(head), len(shared))]
    rest, room = name[len(shared):], most - cell_len(head) - 1
    if not shared or room < 5:
        return cut
    if cell_len(rest) <= room:
        return head + "…" + rest
    # what differs comes first now: its value whole (to the next comma) where it leaves 4 cells for the end;
    # cut, a setting's value is at its end (n_layer=2: "yer=2"), a bare word's start is what reads (learned: "lea")
    first, fits = rest.split(",")[0].split("/")[0], max((room - 1) // 2, room - 5)
    start = leading_cells(first[::-1], fits)[::-1] if "=" in first else leading_cells(first, fits)
    return head + "…" + start + "…" + leading_cells(rest[::-1], room - 1 - cell_len(start))[::-1]


def _hides(name: str, peer: str, head: int, kept: int) -> bool:
    """Whether the plain cut hides what tells `name` from `peer`: they differ in the part cut out, and the ends
    kept differ in fewer than 4 characters ('d1/…ed,seed=1337', 'd1/…pe,seed=1337')."""
    differ = len(os.path.commonprefix([name, peer]))
    same_end = len(os.path.commonprefix([name[::-1], peer[::-1]]))
    return head <= differ < len(name) - kept and kept - min(same_end, kept) < 4


def _middle_cut(name: str, most: int) -> str:
    if cell_len(name) <= most:
        return name
    start = leading_cells(name, max(1, min(3, (most - 1) // 3)))
    return start + "…" + leading_cells(name[::-1], most - 1 - cell_len(start))[::-1]


def leading_cells(text: str, most: int) -> str:
    """The longest start of text that takes at most `most` terminal cells."""
    used = 0
    for i, ch in enumerate(text):
        used += cell_len(ch)
        if used > most:
            return text[:i]
    return text


def table_name_room(labels: tuple, rows: list, col: int, width: int, least: int = 12, gap: int = 2, edge: int = 0) -> int | None:
    """The cells the names in column `col` may take for a table of these rows (str or Text cells) to fit in `width`
    cells: each column is its widest cell and `gap` cells beside it (a DataTable: a cell of padding either side;
    a rich table: its border too), and `edge` more once. At least `least`; None: no cut needed."""
    width_of = lambda c: max(map(cell_len, c.split("\n"))) if isinstance(c, str) else c.cell_len  # noqa: E731
    widths = [max([width_of(label)] + [width_of(r[i]) for r in rows]) for i, label in enumerate(labels)]  # (a label: its widest line)
    room = width - sum(w + gap for i, w in enumerate(widths) if i != col) - gap - edge
    return None if not width or room >= widths[col] else max(least, room)


def wrap_name(name: str, width: int) -> str:
    """`name` on lines of at most `width` cells, broken only between its parts: after a / or a comma, or a - of a
    part that holds no value (lesson-dropout-60steps-small/dropout=0.2: never "dropout=0." and "2"). A part wider
    than the width has its lines to itself. Inert (one_line) but for the line breaks it adds."""
    lines = [""]
    for part in re.findall(r"[^/,]+[/,]*|[/,]+", one_line(name)):
        for piece in [part] if "=" in part else re.findall(r"[^-]+-*|-+", part):
            if lines[-1] and cell_len(lines[-1] + piece) > width:
                lines.append("")
            lines[-1] += piece
    return "\n".join(lines)
