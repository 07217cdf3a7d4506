"""Loss curves drawn as text: one renderer for the app's charts and `tinygpt compare` in a terminal.

A braille character is a cell of 2x4 dots, so a plot of W columns and H rows has 2W x 4H points to
draw lines on. A line ("braille") joins its points dot by dot; a marker line ("dot") puts a • in the
cell of each point (evaluations: a few points a run), another marker its character (FINAL: a finished
run's loss over the whole validation split). A cell shows the colour of the last line drawn
through it, so lines drawn first (a reference) sit behind the rest. Axes get round ticks.

``draw`` returns rows of (text, style) runs: the app's widget turns a row into a Strip, the CLI into
Rich Text. Nothing here imports Textual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from rich.cells import cell_len
from rich.text import Text

# the bit of the dot at (column dx, row dy) of a braille cell: BITS[dy][dx] (Unicode's dot numbering)
BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
AXIS = "dim"
FINAL = "◆"  # the marker of a finished run's final validation loss, over the whole split (the evaluations' are estimates)
Row = list  # [(text, style)]: one line of the chart


@dataclass
class Series:
    xs: Sequence[float]
    ys: Sequence[float]
    colour: str | int = ""  # a Rich colour ("cyan", "#1f77b4") or a 256-colour number; "": the terminal's own
    marker: str = "braille"  # "braille": points joined by dots; "dot": a • at each point; another character: it at each point
    label: str = ""  # its legend entry ("" for none)
    short: str = ""  # a shorter one, for a legend narrower than the label


@dataclass
class Axis:
    """An axis's range and its ticks (values, and the labels printed for them)."""
    lo: float
    hi: float
    ticks: list = field(default_factory=list)
    labels: list = field(default_factory=list)


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """At most about n round numbers (1, 2, 2.5 or 5 times a power of ten) from lo to hi."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(1, n - 1)
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def step_ticks(lo, hi, n: int = 6) -> list[int]:
    """At most n whole numbers from lo to hi, spaced 1, 2, 2.5 or 5 times a power of 10 (steps, tokens);
    without 2.5 (25, 250), steps 1 to 140 got two ticks, 50 and 100."""
    lo, hi = math.floor(lo), math.ceil(hi)
    if hi <= lo:
        return [lo]
    mag = 1
    while True:
        for m in (1, 2, 2.5, 5):
            if m == 2.5 and mag == 1:
                continue  # not a whole number
            sp = int(m * mag)
            first = -(-lo // sp) * sp
            if (hi - first) // sp + 1 <= n:
                return list(range(first, hi + 1, sp)) or [lo, hi]
        mag *= 10


def fmt_tick(v: float) -> str:
    """A tick's label: 1.5k, 2M, 0.25."""
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:.6g}"


def decimals(ticks: list[float]) -> int:
    """The fewest decimals that print every tick exactly (0.25 needs 2, 1.5 needs 1)."""
    for d in range(5):
        if all(abs(round(t, d) - t) <= 1e-9 * max(1.0, abs(t)) for t in ticks):
            return d
    return 5


def style_of(colour: str | int) -> str:
    return f"color({colour})" if isinstance(colour, int) else colour


PLAIN = {int, float}


def finite_points(s: Series) -> list[tuple[float, float]]:
    """The points whose x and y are both finite numbers (an int or a float)."""
    try:  # (at once, where all are: a sum of plain numbers is finite only if each is; 40 curves a frame on the runs screen)
        if set(map(type, s.xs)) <= PLAIN and set(map(type, s.ys)) <= PLAIN and math.isfinite(sum(s.xs) + sum(s.ys)):
            return list(zip(s.xs, s.ys))
    except OverflowError:  # (ints too big for a float: one by one)
        pass
    return [(x, y) for x, y in zip(s.xs, s.ys) if isinstance(x, (int, float)) and isinstance(y, (int, float))
            and math.isfinite(x) and math.isfinite(y)]


def data_range(values: list[float], pad: float = 0.0) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi <= lo:
        return lo - 0.5, hi + 0.5
    return lo - (hi - lo) * pad, hi + (hi - lo) * pad


def legend_rows(series: list[Series], width: int, most: int = 2) -> list[Row]:
    """The labelled series' entries (━━ or •• in their colour, then the label), wrapped onto at most `most` rows;
    where they don't all fit, the short labels, so that no entry is left out that the short ones keep."""
    labelled = [s for s in series if s.label]
    for shorter in (False, True):
        rows: list[Row] = [[]]
        used = placed = 0
        for s in labelled:
            label = s.short if s.short and (shorter or cell_len(s.label) + 3 > width) else s.label
            entry = [({"braille": "━━ ", "dot": "•• "}.get(s.marker, f"{s.marker} "), style_of(s.colour)), (label + "  ", "")]
            n = sum(cell_len(t) for t, _ in entry)  # (a name in Chinese takes two cells a character)
            if used and used + n > width:
                if len(rows) == most:
                    break
                rows.append([])
                used = 0
            rows[-1].extend(entry)
            used += n
            placed += 1
        if placed == len(labelled):
            break
    return [r for r in rows if r]


def draw(series: list[Series], width: int, height: int, title: str = "", xlabel: str = "", x: Axis | None = None,
         y: Axis | None = None, hlines: Sequence[tuple[float, str]] = (), xticks: int = 6, legend: int = 2) -> list[Row]:
    """The chart in `width` x `height` cells: a title, a legend, the plot with its y labels, the x axis and
    its labels. `x`/`y` fix an axis's range and ticks (default: the data's, with round ticks); `hlines`
    are horizontal lines (a loss, its colour) drawn behind the series; `legend`: its rows at most."""
    head: list[Row] = []
    if title and height >= 6:
        head.append([(title[:width].center(width).rstrip(), "bold")])
    if height >= 8:
        head += legend_rows(series, width, legend)
    foot = 3 if xlabel and height >= 12 else 2  # the x axis, its labels and (room allowing) its name
    plot_h = height - len(head) - foot
    if plot_h < 1 or width < 12:
        return head[:height]
    points = [finite_points(s) for s in series]
    xs = [p[0] for pts in points for p in pts]
    ys = [p[1] for pts in points for p in pts] + [v for v, _ in hlines if math.isfinite(v)]
    if x is None:
        lo, hi = data_range(xs) if xs else (0.0, 1.0)
        x = Axis(lo, hi)
    if not x.ticks:
        x.ticks = nice_ticks(x.lo, x.hi, xticks)
        x.labels = [fmt_tick(t) for t in x.ticks]
    if y is None:
        lo, hi = data_range(ys, 0.05) if ys else (0.0, 1.0)
        y = Axis(lo, hi)
    if not y.ticks:
        n = max(2, min(8, plot_h // 2 + 1))  # a label every other row at most
        y.ticks = nice_ticks(y.lo, y.hi, n)
        while len(y.ticks) < 2 and n < 4 * plot_h:  # one label alone gives no scale (0.6 to 3.4 in five rows: "2")
            n += 1
            y.ticks = nice_ticks(y.lo, y.hi, n)
        d = decimals(y.ticks)
        y.labels = [f"{t:.{d}f}" for t in y.ticks]
    margin = max((len(s) for s in y.labels), default=0) + 1
    cols = width - margin
    bits, glyph, colour = paint(series, points, cols, plot_h, x, y, hlines)
    w, h = 2 * cols, 4 * plot_h
    xspan, yspan = (x.hi - x.lo) or 1.0, (y.hi - y.lo) or 1.0

    def px(v: float) -> int:
        return round((v - x.lo) / xspan * (w - 1))

    def py(v: float) -> int:
        return round((y.hi - v) / yspan * (h - 1))

    tick_rows = {}
    for t, lab in zip(y.ticks, y.labels):
        if y.lo <= t <= y.hi:
            tick_rows.setdefault(py(t) >> 2, lab)
    rows = list(head)
    for r in range(plot_h):
        lab = tick_rows.get(r)
        row: Row = [((lab or "").rjust(margin - 1) + ("┤" if lab else "│"), AXIS)]
        run, style = [], ""
        for k in range(r * cols, (r + 1) * cols):
            ch = glyph[k] or (chr(0x2800 + bits[k]) if bits[k] else " ")
            st = colour[k] if ch != " " else ""
            if st != style and run:
                row.append(("".join(run), style))
                run = []
            style = st
            run.append(ch)
        row.append(("".join(run).rstrip() if not style else "".join(run), style))
        rows.append(row)
    axis = ["─"] * cols
    under = [" "] * cols
    end = -2
    for t, lab in zip(x.ticks, x.labels):
        if not x.lo <= t <= x.hi:
            continue
        c = px(t) >> 1
        axis[c] = "┬"
        start = min(max(0, c - len(lab) // 2), cols - len(lab))
        if start > end + 1 and start >= 0:  # a label that would touch the last one is left out
            under[start:start + len(lab)] = lab
            end = start + len(lab) - 1
    rows.append([(" " * (margin - 1) + "└" + "".join(axis), AXIS)])
    rows.append([(" " * margin + "".join(under).rstrip(), AXIS)])
    if foot == 3:
        rows.append([(" " * margin + xlabel[:cols].center(cols).rstrip(), AXIS)])
    return rows


def paint(series: list[Series], points: list[list[tuple[float, float]]], cols: int, rows: int, x: Axis, y: Axis,
          hlines: Sequence[tuple[float, str]] = ()) -> tuple[list[int], list[str | None], list[str]]:
    """The plot's cells, `cols` x `rows` of them, a row after another: each one's braille bits, its marker
    character (None: none) and its colour (the last line's through it). A point at value (a, b) is the dot
    round((a - x.lo) / xspan * (2 cols - 1)) across, round((y.hi - b) / yspan * (4 rows - 1)) down; a line joins
    its points a dot per step along the longer side (the shorter side's offset rounded: dj * t / n).

    Written for speed (40 curves a frame on the runs screen): the dots of a line are gathered first, then
    painted once each, no call a dot; tests/test_chart.py holds it to a plain dot-by-dot drawing."""
    w, h = 2 * cols, 4 * rows
    xlo, yhi, wm, hm = x.lo, y.hi, w - 1, h - 1
    xspan, yspan = (x.hi - x.lo) or 1.0, (y.hi - y.lo) or 1.0
    bits = [0] * (cols * rows)
    glyph: list[str | None] = [None] * (cols * rows)
    colour = [""] * (cols * rows)
    flat = [BITS[j][i] for j in range(4) for i in range(2)]  # a dot's bit: flat[(j & 3) << 1 | (i & 1)]

    def steps(start: int, n: int, size: int) -> range:
        """The steps t (1 to n) of a line from `start` on, a dot a step, that are inside 0..size-1: a point far off the
        plot (an axis fixed by the caller) makes a line of as many dots, of which only these are drawn."""
        return range(max(1, -start), min(n, size - 1 - start) + 1)

    def paint_dots(dots, c: str) -> None:
        for i, j in dots:
            if 0 <= i < w and 0 <= j < h:
                k = (j >> 2) * cols + (i >> 1)
                bits[k] |= flat[(j & 3) << 1 | (i & 1)]
                colour[k] = c

    for v, c in hlines:
        if y.lo <= v <= y.hi:
            j = round((yhi - v) / yspan * hm)
            paint_dots([(i, j) for i in range(w)], c)
    for s, pts in zip(series, points):
        c = style_of(s.colour)
        xs = [round((a - xlo) / xspan * wm) for a, _ in pts]
        ys = [round((yhi - b) / yspan * hm) for _, b in pts]
        if s.marker != "braille":
            g = "•" if s.marker == "dot" else s.marker
            for i, j in zip(xs, ys):
                if 0 <= i < w and 0 <= j < h:
                    k = (j >> 2) * cols + (i >> 1)
                    glyph[k], colour[k] = g, c
            continue
        dots = set(zip(xs, ys))  # each point, and where the next is not a neighbour, the dots between
        for i0, i, j0, j in [seg for seg in zip(xs, xs[1:], ys, ys[1:]) if not (-2 < seg[1] - seg[0] < 2 and -2 < seg[3] - seg[2] < 2)]:
            di, dj = i - i0, j - j0
            if abs(di) >= abs(dj):  # a dot a step along x, the y offset rounded (what dj * t / n rounds to)
                n = abs(di)
                dots.update([(i0 + t, j0 + round(dj * t / n)) for t in steps(i0, n, w)] if di > 0 else
                            [(i0 - t, j0 + round(dj * t / n)) for t in steps(w - 1 - i0, n, w)])
            else:
                n = abs(dj)
                dots.update([(i0 + round(di * t / n), j0 + t) for t in steps(j0, n, h)] if dj > 0 else
                            [(i0 + round(di * t / n), j0 - t) for t in steps(h - 1 - j0, n, h)])
        paint_dots(dots, c)
    return bits, glyph, colour


def to_text(rows: list[Row], colour: bool = True) -> Text:
    """The chart as Rich Text (a line a row); colour False: the characters alone."""
    out = Text(no_wrap=True, overflow="crop")
    for n, row in enumerate(rows):
        if n:
            out.append("\n")
        for text, style in row:
            out.append(text, style=style if colour else "")
    return out


# ---------------------------------------------------------------- a line of figures that fits its width
@dataclass
class Part:
    """One figure of a line: its text, its rank (the highest is dropped first), a style and a shorter form."""

    text: str
    rank: int
    style: str = ""
    short: str = ""  # (none: the text)


def fit_line(parts: list[Part], width: int, sep: str = " · ") -> Text:
    """The parts, joined, in at most width cells: short forms first, then the least important parts dropped.

    A part is shown whole or not at all; the most important one is always shown (in its short form where only that fits).
    The app's status and progress lines, and `tinygpt train`'s figures beside its bar (``sep``: two spaces).
    """
    kept = list(parts)
    while True:
        for short in (False, True):
            texts = [(p.short or p.text) if short else p.text for p in kept]
            if len(kept) <= 1 and short or sum(cell_len(t) for t in texts) + len(sep) * (len(texts) - 1) <= width:
                out = Text(no_wrap=True, overflow="crop")
                for i, (p, t) in enumerate(zip(kept, texts)):
                    if i:
                        out.append(sep)
                    out.append(t, style=p.style)
                return out
        worst = max(range(len(kept)), key=lambda i: (kept[i].rank, i))
        del kept[worst]
