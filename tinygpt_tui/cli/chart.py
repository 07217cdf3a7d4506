"""Loss curves of several runs on one chart: in the terminal (tinygpt_tui/chart.py), or to a file for a write-up
(SVG written here; PNG through matplotlib, the optional `[plot]` extra).

A chart is a list of ``Line``s (one colour per run; in a file validation solid with a dot at each
evaluation, training dashed; in the terminal training a line, validation a • at each evaluation; a finished
run's final validation loss over the whole split, the tables' figure, a ◆ where its kept weights are from: the
evaluations' are estimates on a few batches) and the x axis it is drawn against; engine/runs.py's Curves give
the points."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from rich.text import Text

from tinygpt_tui.chart import FINAL, fmt_tick, nice_ticks
from tinygpt_tui.errors import SettingsError

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
X_LABELS = {"steps": "steps", "tokens": "tokens seen", "minutes": "minutes of training"}
PNG_NEEDS = "a PNG needs matplotlib: pip install 'tinygpt-tui[plot]' (or write an .svg)"
KIND_LABELS = {"val": "val (estimate)", "final": "final val (whole split)"}  # in a file's legend: which is which


@dataclass
class Line:
    label: str  # the run's name
    kind: str  # "val", "train" or "final" (one point: the finished run's validation loss over the whole split)
    xs: list
    ys: list
    color: int  # index into COLORS: one per run


def lines_of(named_curves, x: str = "steps", curves: str = "both", max_points: int = 400) -> list[Line]:
    """[(name, Curves)] as lines: validation (each evaluation, and the final one over the whole split) and/or training
    loss (each logged step); "bits": validation bits per character alone (what compares across tokenizers)."""
    from tinygpt_tui.tokenizer import one_line

    out = []
    for i, (name, c) in enumerate(named_curves):
        name = one_line(name)  # (a run's name is a folder's: an escape in it is shown, not run, in a legend or a file)
        if curves == "bits":
            out.append(Line(name, "val", *c.val_bpc(x, max_points), color=i % len(COLORS)))
        if curves in ("val", "both"):
            out.append(Line(name, "val", *c.val(x, max_points), color=i % len(COLORS)))
        if curves in ("val", "both", "bits"):
            out.append(Line(name, "final", *c.final_val(x, bits=curves == "bits"), color=i % len(COLORS)))
        if curves in ("train", "both"):
            out.append(Line(name, "train", *c.train(x, max_points), color=i % len(COLORS)))
    return [ln for ln in out if ln.xs]


def terminal(lines: list[Line], x: str, width: int, height: int, color: bool = True, title: str = "",
             marks: list[tuple[float, str]] | None = None) -> Text:
    """The chart for a terminal, as the app draws it (tinygpt_tui/chart.py): training loss a line of
    braille dots, validation a • at each evaluation and a finished run's whole split a ◆ (at the evaluation whose
    weights it kept), one colour per run, the legend saying which is which; ``marks`` are grey horizontal lines (milestones) at (loss, label)."""
    from tinygpt_tui import chart
    from tinygpt_tui.tokenizer import one_line

    title = one_line(title)
    has_train = {ln.label for ln in lines if ln.kind == "train"}
    series = [chart.Series(ln.xs, ln.ys, COLORS[ln.color], {"train": "braille", "val": "dot"}.get(ln.kind, FINAL),
                           ln.label if ln.kind == "train" or (ln.kind == "val" and ln.label not in has_train) else "") for ln in lines]
    ys = [y for ln in lines for y in ln.ys]
    hlines = [(loss, "grey50") for loss, _label in marks or [] if ys and min(ys) <= loss <= max(ys)]
    kinds = {ln.kind for ln in lines}
    key = ", ".join(w for k, w in (("train", "training ─"), ("val", "validation estimates •" if "final" in kinds else "validation •"),
                                   ("final", f"final {FINAL}")) if k in kinds)
    if "final" in kinds:  # which is which: the dots are estimates on a few batches, the ◆ the tables' figure
        series.append(chart.Series([], [], "", FINAL, KIND_LABELS["final"]))
    key += ", grey: the book's stages" if hlines else ""  # (unsaid, they read as grid lines at odd places: 1.65)
    width = max(40, width)
    axis = None
    xs = [v for ln in lines for v in ln.xs]
    if x != "minutes" and xs:  # whole steps or tokens: no tick at step 9.6 (as the app draws them)
        lo, hi = min(xs), max(xs)
        ticks = chart.step_ticks(lo, hi)
        axis = chart.Axis(lo, hi if hi > lo else lo + 1, ticks, [chart.fmt_tick(t) for t in ticks])
    legend = len(chart.legend_rows(series, width, most=len(series)))  # every run named, however many: the chart grows
    rows = chart.draw(series, width, max(10, height) + max(0, legend - 2), f"{title} ({key})" if title else key, X_LABELS[x],
                      axis, hlines=hlines, legend=max(2, legend))
    return chart.to_text(rows, color)


# ----------------------------------------------------------------- files
def svg(lines: list[Line], x: str, title: str = "", width: int = 900, height: int = 520) -> str:
    """The chart as an SVG document: axes with round ticks, one polyline per line, a legend. The legend
    names each line whole (a lesson's members share a long prefix: cut, they read alike), so the
    document widens for a long name and grows taller for many lines."""
    left, right, top, bottom = 70, 230, 40, 50
    pw, ph = width - left - right, height - top - bottom
    labels = [f"{ln.label} {KIND_LABELS.get(ln.kind, ln.kind)}" for ln in lines]
    right = max(right, 60 + 8 * max((len(t) for t in labels), default=0))  # (8 px a character at 12 px: wide enough)
    width, height = left + pw + right, max(height, top + 10 + 18 * len(lines) + bottom)
    ph = height - top - bottom
    xs = [v for ln in lines for v in ln.xs] or [0.0, 1.0]
    ys = [v for ln in lines for v in ln.ys] or [0.0, 1.0]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if x1 <= x0:
        x1 = x0 + 1
    pad = (y1 - y0) * 0.05 or 0.5
    y0, y1 = y0 - pad, y1 + pad

    def px(v):
        return left + (v - x0) / (x1 - x0) * pw

    def py(v):
        return top + (y1 - v) / (y1 - y0) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'font-family="sans-serif" font-size="12">', f"<desc>{MARK}</desc>", f'<rect width="{width}" height="{height}" fill="white"/>']
    if title:  # (XML has no place for a control character: an escape in it made the file unreadable)
        from tinygpt_tui.tokenizer import one_line

        title = one_line(title)
        out.append(f'<text x="{left + pw / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>')
    for t in nice_ticks(x0, x1, 7):
        if x0 <= t <= x1:
            out.append(f'<line x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" y2="{top + ph}" stroke="#eee"/>')
            out.append(f'<text x="{px(t):.1f}" y="{top + ph + 18}" text-anchor="middle">{fmt_tick(t)}</text>')
    for t in nice_ticks(y0, y1, 7):
        if y0 <= t <= y1:
            out.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + pw}" y2="{py(t):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{left - 8}" y="{py(t) + 4:.1f}" text-anchor="end">{fmt_tick(t)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 12}" text-anchor="middle">{escape(X_LABELS[x])}</text>')
    out.append(f'<text x="18" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 18 {top + ph / 2})">loss</text>')

    def diamond(cx, cy, color):  # the final loss over the whole split (as the terminal's ◆), outlined to stand on a line
        return (f'<path d="M{cx:.1f},{cy - 5.5:.1f} L{cx + 5.5:.1f},{cy:.1f} L{cx:.1f},{cy + 5.5:.1f} L{cx - 5.5:.1f},{cy:.1f} Z" '
                f'fill="{color}" stroke="white" stroke-width="1"/>')

    for i, ln in enumerate(lines):
        dash = ' stroke-dasharray="4 3" opacity="0.7"' if ln.kind == "train" else ""
        ly = top + 10 + i * 18
        if ln.kind == "final":
            out += [diamond(px(a), py(b), COLORS[ln.color]) for a, b in zip(ln.xs, ln.ys)]
            out += [diamond(left + pw + 27.5, ly, COLORS[ln.color]), f'<text x="{left + pw + 46}" y="{ly + 4}">{escape(labels[i])}</text>']
            continue
        pts = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(ln.xs, ln.ys))
        out.append(f'<polyline fill="none" stroke="{COLORS[ln.color]}" stroke-width="1.6"{dash} points="{pts}"/>')
        if ln.kind == "val":  # a dot at each evaluation, as the terminal draws them: a run evaluated once is a point, no line
            out += [f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="2.5" fill="{COLORS[ln.color]}"/>' for a, b in zip(ln.xs, ln.ys)]
        out.append(f'<line x1="{left + pw + 15}" y1="{ly}" x2="{left + pw + 40}" y2="{ly}" stroke="{COLORS[ln.color]}" '
                   f'stroke-width="2"{dash}/>')
        if ln.kind == "val":
            out.append(f'<circle cx="{left + pw + 27.5}" cy="{ly}" r="2.5" fill="{COLORS[ln.color]}"/>')
        out.append(f'<text x="{left + pw + 46}" y="{ly + 4}">{escape(labels[i])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def png(lines: list[Line], x: str, title: str = "") -> bytes:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SettingsError(PNG_NEEDS) from None
    fig, ax = plt.subplots(figsize=(9, 5.2), dpi=110)
    for ln in lines:
        if ln.kind == "final":  # (the whole split's loss: a diamond, as the SVG's)
            ax.plot(ln.xs, ln.ys, color=COLORS[ln.color], linestyle="none", marker="D", markersize=6, markeredgecolor="white",
                    label=f"{ln.label} {KIND_LABELS['final']}", zorder=3)
            continue
        ax.plot(ln.xs, ln.ys, color=COLORS[ln.color], linestyle="--" if ln.kind == "train" else "-",
                marker="o" if ln.kind == "val" else None, markersize=3,  # (one evaluation: a dot, not nothing)
                alpha=0.7 if ln.kind == "train" else 1.0, label=f"{ln.label} {KIND_LABELS.get(ln.kind, ln.kind)}")
    ax.set_xlabel(X_LABELS[x])
    ax.set_ylabel("loss")
    if title:
        from tinygpt_tui.tokenizer import one_line

        ax.set_title(one_line(title))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": MARK})
    plt.close(fig)
    return buf.getvalue()


def check_out(path) -> None:
    """Refuse an output the chart can't be written to, before any work is done."""
    import errno
    import importlib.util
    import os

    path = Path(path).expanduser()
    if path.suffix.lower() not in (".svg", ".png"):
        raise SettingsError(f"--out takes a file ending in .svg or .png, got {path.name!r}")
    if path.suffix.lower() == ".png" and importlib.util.find_spec("matplotlib") is None:
        raise SettingsError(PNG_NEEDS)
    if path.is_dir():
        raise SettingsError(f"cannot write {path}: it is a folder")
    if not path.parent.is_dir():  # (a parent that is a file, or a loop of links, is not one that "does not exist")
        from tinygpt_tui.__main__ import file_in_the_way

        try:
            os.stat(path.parent)
            why = None
        except OSError as e:
            why = None if e.errno in (errno.ENOENT, errno.ENOTDIR) else e.strerror
        blocked = file_in_the_way(str(path.parent))
        raise SettingsError(f"cannot write {path}: " + (f"{blocked} is a file, not a folder" if blocked else f"{path.parent}: {why}" if why
                                                        else f"the folder {path.parent} does not exist"))
    if (path.exists() or path.is_symlink()) and not earlier_chart(path):  # (a chart written again is the usual case; a file of yours is kept)
        raise SettingsError(f"{path} exists and is not a chart tinygpt wrote: delete it first, or choose another name")


MARK = "tinygpt loss chart"  # in every chart file written here: <desc> of an SVG, the PNG's Software text


def earlier_chart(path: Path) -> bool:
    """Whether ``path`` is a chart written here, which --out may replace (never a link or a device)."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(4096)
    if path.suffix.lower() == ".svg":
        return head.startswith(b"<svg ") and f"<desc>{MARK}</desc>".encode() in head
    return head.startswith(b"\x89PNG") and b"Software\x00" + MARK.encode() in head


def write_chart(lines: list[Line], x: str, path, title: str = "") -> None:
    """An .svg or .png file of the chart (written to a temporary name, then renamed)."""
    from tinygpt_tui.engine.files import atomic_write

    check_out(path)
    path = Path(path).expanduser()
    atomic_write(path, svg(lines, x, title) if path.suffix.lower() == ".svg" else png(lines, x, title))
