"""The text chart (tinygpt_tui/chart.py): what it draws, where, and that odd input never breaks it."""

import math

import pytest

from tinygpt_tui.chart import Axis, Series, draw, nice_ticks, step_ticks, to_text

BRAILLE = range(0x2801, 0x2900)


def plot_rows(rows) -> list[str]:
    """The rows between the top of the y axis and the x axis, as plain text."""
    lines = to_text(rows, colour=False).plain.splitlines()
    axis = next(i for i, ln in enumerate(lines) if "└" in ln)
    first = next(i for i, ln in enumerate(lines) if "│" in ln or "┤" in ln)
    return lines[first:axis]


def cells_with(line: str, pred) -> list[int]:
    return [i for i, ch in enumerate(line) if pred(ch)]


def is_braille(ch: str) -> bool:
    return ord(ch) in BRAILLE


def test_a_falling_line_runs_from_the_top_left_to_the_bottom_right():
    rows = draw([Series([0, 100], [4.0, 1.0])], 60, 20)
    plot = plot_rows(rows)
    top = cells_with(plot[0] if any(map(is_braille, plot[0])) else plot[1], is_braille)
    bottom = cells_with(plot[-1] if any(map(is_braille, plot[-1])) else plot[-2], is_braille)
    assert top and bottom and max(top) < min(bottom)
    # every row of the plot is crossed (a line, not two dots)
    assert all(any(map(is_braille, row)) for row in plot[1:-1])


def test_the_chart_fills_its_size_and_no_wider():
    series = [Series(list(range(500)), [3 - i / 250 for i in range(500)], "cyan", label="loss"),
              Series([100, 200, 300], [2.5, 2.1, 1.9], 39, "dot", "val")]
    for width, height in ((120, 40), (80, 24), (40, 10), (12, 4)):
        rows = draw(series, width, height, title="loss", xlabel="step")
        text = to_text(rows, colour=False).plain.splitlines()
        assert len(text) == height
        assert max(len(ln) for ln in text) <= width


def test_marks_are_bullets_at_the_points_and_labels_make_a_legend():
    rows = draw([Series([0, 50, 100], [3.0, 2.0, 1.0], "magenta", "dot", "val (eval)")], 50, 16, title="t")
    plain = to_text(rows, colour=False).plain
    assert plain.count("•") == 3 + 2  # three points, and the legend's ••
    assert "•• val (eval)" in plain
    assert not any(is_braille(ch) for ch in plain)


def test_a_final_mark_is_its_own_character_drawn_over_the_evaluation_it_sits_on():
    """A finished run's loss over the whole split (◆) beside its estimates (•): at its own height, over a dot of the
    same step, and named in the legend with its own mark."""
    from tinygpt_tui.chart import FINAL

    rows = draw([Series([0, 50, 100], [3.0, 2.0, 1.0], "magenta", "dot", "val (estimate)"),
                 Series([100], [2.5], "green", FINAL, "final val (whole split)")], 50, 16, title="t")
    plain = to_text(rows, colour=False).plain
    assert "•• val (estimate)" in plain and f"{FINAL} final val (whole split)" in plain
    plot = plot_rows(rows)
    assert sum(ln.count(FINAL) for ln in plot) == 1 and sum(ln.count("•") for ln in plot) == 3
    final_row = next(i for i, ln in enumerate(plot) if FINAL in ln)
    dots = [i for i, ln in enumerate(plot) if "•" in ln]
    assert dots[0] < final_row < dots[-1] and plot[final_row].index(FINAL) == plot[dots[-1]].index("•")  # 2.5, at step 100


def test_colours_reach_the_text_and_the_last_line_drawn_is_on_top():
    both = [Series([0, 10], [1.0, 1.0], "red"), Series([0, 10], [1.0, 1.0], 39)]
    styles = {str(span.style) for span in to_text(draw(both, 40, 12)).spans}
    assert "color(39)" in styles and "red" not in styles  # the same cells: the second line's colour
    assert not to_text(draw(both, 40, 12), colour=False).spans


def test_y_ticks_are_round_and_printed_alike():
    rows = draw([Series([0, 1, 2], [1.52, 1.9, 2.61])], 60, 20)
    labels = [ln.split("┤")[0].strip() for ln in plot_rows(rows) if "┤" in ln]
    assert len(labels) >= 2
    values = [float(v) for v in labels]
    assert values == sorted(values, reverse=True) and 1.4 < values[-1] and values[0] < 2.7
    assert len({len(v.split(".")[-1]) for v in labels}) == 1  # the same decimals on every label


def test_given_axes_set_the_range_and_labels():
    rows = draw([Series([0, 1000], [5.0, 0.0])], 70, 14, x=Axis(0, 1000, [0, 500, 1000], ["0", "500", "1,000"]), y=Axis(0, 5))
    lines = to_text(rows, colour=False).plain.splitlines()
    under = lines[next(i for i, ln in enumerate(lines) if "└" in ln) + 1]
    assert under.split() == ["0", "500", "1,000"]
    assert under.index("500") < under.index("1,000")


@pytest.mark.parametrize("xs, ys", [
    ([], []),
    ([0.0], [2.0]),
    ([1, 1, 1], [2.0, 2.0, 2.0]),
    ([0, 1, 2, 3], [math.nan, math.inf, -math.inf, 1.0]),
    ([0, math.nan, 2], [1.0, 2.0, 3.0]),
    ([0, 10**15], [1e-9, 1e9]),
    (["a", None, 3], [1.0, "x", 2.0]),
])
def test_odd_points_draw_without_error(xs, ys):
    rows = draw([Series(xs, ys, label="odd")], 50, 14, title="odd", xlabel="step")
    assert len(to_text(rows, colour=False).plain.splitlines()) == 14


def test_hlines_cross_the_plot_behind_the_series():
    rows = draw([Series([0, 10], [1.0, 3.0], "cyan")], 40, 14, hlines=[(2.0, "grey50")])
    plot = plot_rows(rows)
    crossed = [row for row in plot if sum(map(is_braille, row)) >= 30]
    assert len(crossed) == 1


def test_ticks():
    assert step_ticks(0, 5000, 6) == [0, 1000, 2000, 3000, 4000, 5000]
    assert all(isinstance(t, int) for t in step_ticks(3, 77, 6)) and len(step_ticks(3, 77, 6)) <= 6
    t = nice_ticks(1.43, 3.07, 5)
    assert 2 <= len(t) <= 5 and all(1.43 <= v <= 3.07 for v in t)
    assert nice_ticks(2.0, 2.0) == [2.0] and nice_ticks(math.nan, 1.0) == []


def test_the_terminal_chart_names_every_run_however_many():
    from tinygpt_tui.cli.chart import Line, terminal

    lines = [Line(f"experiment-with-a-long-name/member-{i:02d}", kind, [0, 50, 100], [3.0 - i / 50, 2.5, 2.0 + i / 100], i % 10)
             for i in range(20) for kind in ("train", "val")]
    text = terminal(lines, "steps", 80, 22, color=False).plain
    assert all(f"member-{i:02d}" in text for i in range(20))
    assert max(len(ln) for ln in text.splitlines()) <= 80
    assert "└" in text  # the plot itself still drawn below the legend


@pytest.mark.parametrize("xs", [[10], [10, 10], [3, 7], [0, 250, 6748]])
def test_the_terminal_chart_of_steps_labels_whole_steps_only(xs):
    """`tinygpt lesson NAME --max-steps 10`: every run's one evaluation at step 10 drew ticks 9.6 9.8 10 10.2."""
    from tinygpt_tui.cli.chart import Line, terminal

    text = terminal([Line("a", "val", xs, [3.0 + i * 0.1 for i in range(len(xs))], 0)], "steps", 80, 20, color=False)
    lines = text.plain.splitlines()
    labels = lines[next(i for i, ln in enumerate(lines) if "└" in ln) + 1].split()
    assert labels and all("." not in lab for lab in labels), text.plain


def test_step_ticks_never_leave_a_wide_axis_with_two_labels():
    """A resumed run at step 140 (steps 1 to 140) was labelled 50 and 100 alone: 25 is a round step too."""
    assert step_ticks(1, 140, 6) == [25, 50, 75, 100, 125]
    assert min(len(step_ticks(1, hi, 6)) for hi in range(30, 20_000)) >= 3


def test_the_terminal_chart_says_what_its_grey_lines_are():
    """`tinygpt compare shakespeare mine` drew the book's stages as grey lines across the chart, named nowhere:
    they read as grid lines at odd places (2.5, 2.0, 1.65)."""
    from tinygpt_tui.cli.chart import Line, terminal

    lines = [Line("a", "train", [0, 100], [3.0, 1.5], 0), Line("a", "val", [100], [1.6], 0)]
    marked = terminal(lines, "steps", 100, 20, color=False, title="loss", marks=[(2.0, "words")]).plain
    assert "stages" in marked.splitlines()[0], marked
    assert "stages" not in terminal(lines, "steps", 100, 20, color=False, title="loss").plain


@pytest.mark.parametrize("height", [8, 9, 10, 11, 12])
def test_a_short_chart_still_has_two_y_labels(height):
    """The training screen at 80x24 has a plot five rows high: a loss from 3.4 to 0.63 was labelled '2' alone."""
    for lo in (0.2, 0.63, 0.9, 1.1, 1.45, 2.0):
        for hi in (2.5, 3.4, 4.2, 8.0):
            rows = draw([Series([1, 400], [hi, lo], label="loss"), Series([400], [lo], marker="dot", label="val")], 35, height, "loss", "step")
            labels = [ln.split("┤")[0].strip() for ln in plot_rows(rows) if "┤" in ln]
            assert len(labels) >= 2, (lo, hi, to_text(rows, colour=False).plain)


def test_a_legend_of_wide_characters_wraps_by_the_cells_they_take():
    from rich.cells import cell_len

    from tinygpt_tui.chart import legend_rows

    names = ["红楼梦一", "红楼梦二", "红楼梦三", "红楼梦四"]
    rows = legend_rows([Series([0, 1], [1, 2], 39, label=n) for n in names], 30, most=4)
    assert [n for row in rows for t, _ in row for n in names if t.startswith(n)] == names
    assert all(sum(cell_len(t) for t, _ in row) <= 30 for row in rows)


def test_a_legend_too_narrow_for_every_label_takes_the_short_ones_before_leaving_an_entry_out():
    """The training chart at 80x24: the shipped curve's long label pushed "•• val (eval)" out of the legend's two
    rows, and the magenta dots went unexplained."""
    from tinygpt_tui.app.progress import reference_line
    from tinygpt_tui.chart import legend_rows

    series = [reference_line("shakespeare", [200, 400], [2.0, 1.8], 300), Series([1], [1], "cyan", label="loss"),
              Series([1], [1], "dark_orange", "dot", "train (eval)", "train"), Series([1], [1], "magenta", "dot", "val (eval)", "val")]
    for width, want in ((30, ["shipped val, from step 200", "loss", "train", "val"]),  # short: all four kept
                        (76, ["shakespeare (shipped, val from step 200)", "loss", "train (eval)", "val (eval)"])):  # room: whole
        rows = legend_rows(series, width)
        shown = [t.strip() for row in rows for t, style in row if not t.startswith(("━━", "••"))]
        assert shown == want, (width, shown)
        assert len(rows) <= 2


# ---------------------------------------------------------------- the fast plotting, held to a plain one
def plain_finite_points(s: Series) -> list:
    return [(x, y) for x, y in zip(s.xs, s.ys) if isinstance(x, (int, float)) and isinstance(y, (int, float))
            and math.isfinite(x) and math.isfinite(y)]


def plain_paint(series, points, cols, rows, x, y, hlines=()):
    """chart.paint as it was first written: a call a dot, each line's points joined a dot per step."""
    from tinygpt_tui.chart import BITS, style_of

    w, h = 2 * cols, 4 * rows
    xspan, yspan = (x.hi - x.lo) or 1.0, (y.hi - y.lo) or 1.0
    bits, glyph, colour = [0] * (cols * rows), [None] * (cols * rows), [""] * (cols * rows)

    def px(v):
        return round((v - x.lo) / xspan * (w - 1))

    def py(v):
        return round((y.hi - v) / yspan * (h - 1))

    def dot(i, j, c):
        if 0 <= i < w and 0 <= j < h:
            k = (j >> 2) * cols + (i >> 1)
            bits[k] |= BITS[j & 3][i & 1]
            colour[k] = c

    for v, c in hlines:
        if y.lo <= v <= y.hi:
            for i in range(w):
                dot(i, py(v), c)
    for s, pts in zip(series, points):
        c = style_of(s.colour)
        if s.marker != "braille":
            for a, b in pts:
                i, j = px(a), py(b)
                if 0 <= i < w and 0 <= j < h:
                    glyph[(j >> 2) * cols + (i >> 1)] = "•" if s.marker == "dot" else s.marker
                    colour[(j >> 2) * cols + (i >> 1)] = c
            continue
        last = None
        for a, b in pts:
            i, j = px(a), py(b)
            if last is None:
                dot(i, j, c)
            elif (i, j) != last:
                i0, j0 = last
                n = max(abs(i - i0), abs(j - j0))
                for t in range(1, n + 1):
                    dot(i0 + round((i - i0) * t / n), j0 + round((j - j0) * t / n), c)
            last = (i, j)
    return bits, glyph, colour


def random_series(rng, far: float = 0.0) -> list:
    """Curves of every shape: dense and sparse, rising and falling, steps, flat runs, repeats, a few colours and
    markers; `far`: some points that far beyond the plot (an axis fixed by the caller)."""
    out = []
    for _ in range(rng.randint(1, 6)):
        n = rng.choice([1, 2, 3, 10, 60, 400])
        xs = sorted(rng.uniform(0, 5000) for _ in range(n)) if rng.random() < 0.5 else [rng.randint(0, 5000) for _ in range(n)]
        ys = [rng.choice([rng.uniform(1, 4), rng.gauss(2.5, 1.5), 2.0]) for _ in range(n)]
        for _ in range(rng.randint(0, 2) if far else 0):
            (xs if rng.random() < 0.5 else ys)[rng.randrange(n)] = rng.choice([-far, far])
        out.append(Series(xs, ys, rng.choice(["red", 39, "", "#1f77b4"]), rng.choice(["braille", "braille", "dot", "◆"])))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_the_plot_is_the_plain_dot_by_dot_drawing(seed):
    """paint gathers each line's dots and paints each once (40 curves a frame on the runs screen): the same cells,
    bits, markers and colours as a call a dot, for curves of every shape, points off the plot, and lines across it."""
    import random

    from tinygpt_tui.chart import paint

    rng = random.Random(seed)
    series = random_series(rng, far=rng.choice([0.0, 50.0, 20_000.0]))
    points = [plain_finite_points(s) for s in series]
    cols, rows = rng.randint(1, 120), rng.randint(1, 40)
    x = Axis(*sorted([rng.uniform(-100, 2500), rng.uniform(2500, 6000)])) if seed % 3 else Axis(0, 5000)
    y = Axis(1.0, rng.choice([1.0, 3.5, 4.0]))
    hlines = [(rng.uniform(0.5, 4.5), "grey50")] if seed % 4 == 0 else []
    assert paint(series, points, cols, rows, x, y, hlines) == plain_paint(series, points, cols, rows, x, y, hlines)


def test_the_runs_screens_chart_is_the_plain_drawing(monkeypatch):
    """What the runs screen draws (20 runs: 158 points of training loss each, 20 evaluations, a final mark) at its
    sizes: the whole chart, row by row, as the plain plotting draws it."""
    import random

    import tinygpt_tui.chart as chart

    rng = random.Random(0)
    series = []
    for r in range(20):
        steps = sorted(rng.sample(range(1, 5001), 157)) + [5000]
        series += [Series(steps, [4 - 2 * s / 5000 + r / 100 + rng.uniform(-0.05, 0.05) for s in steps], 39 + r),
                   Series(list(range(250, 5001, 250)), [4 - 2 * s / 5000 + r / 100 + 0.05 for s in range(250, 5001, 250)], 39 + r, "dot"),
                   Series([5000], [2 + r / 100], 39 + r, chart.FINAL)]
    for width, height in ((88, 19), (120, 40), (40, 12)):
        fast = draw(series, width, height, "loss", "step")
        with monkeypatch.context() as m:
            m.setattr(chart, "paint", plain_paint)
            m.setattr(chart, "finite_points", plain_finite_points)
            assert draw(series, width, height, "loss", "step") == fast


class Half(float):
    pass


@pytest.mark.parametrize("xs, ys", [
    ([0, 1, 2], [1.0, 2.0, 3.0]),
    ([0, 1.5, 2], [1, 2, 3]),
    ([0, 1, 2, 3], [math.nan, math.inf, -math.inf, 1.0]),
    ([math.inf, -math.inf], [1.0, 2.0]),
    ([0, 10**20, 2], [1.0, 2.0, 3.0]),
    ([1e308, 1e308], [1.0, 2.0]),
    ([True, 2], [1.0, False]),
    ([Half(1.0), 2.0], [1.0, Half(math.nan)]),
    (["a", None, 3], [1.0, "x", 2.0]),
    ([0, 1, 2], [1.0, 2.0]),
])
def test_finite_points_keeps_what_the_plain_filter_keeps(xs, ys):
    from tinygpt_tui.chart import finite_points

    assert finite_points(Series(xs, ys)) == plain_finite_points(Series(xs, ys))


def test_a_point_far_off_the_plot_draws_only_the_dots_on_it():
    """An axis fixed by the caller and a point 10^12 dots beyond it: the line to it was joined a dot per step, every
    one of 10^12 (the app hung); only those on the plot are drawn now, the same as a point nearer on that line."""
    from tinygpt_tui.chart import paint

    x, y = Axis(0, 100), Axis(0, 4)
    far = paint([Series([0, 1e12], [2.0, 2.0])], [[(0, 2.0), (1e12, 2.0)]], 40, 10, x, y)
    near = plain_paint([Series([0, 1e4], [2.0, 2.0])], [[(0, 2.0), (1e4, 2.0)]], 40, 10, x, y)
    assert far == near and sum(map(bool, far[0])) == 40  # a row of cells, across
