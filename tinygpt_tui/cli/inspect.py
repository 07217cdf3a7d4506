"""`tinygpt inspect`: next-character probabilities and attention heatmaps, printed with rich.

The renderers build rich ``Text`` for a given width; the app's inspector draws the same pictures.
A column is as wide as its character (2 cells for CJK), so heatmap rows line up in any script.
"""

from __future__ import annotations

import functools
import json
import math
import unicodedata
from pathlib import Path
from typing import Optional

import typer
from rich.cells import cell_len
from rich.color import Color
from rich.style import Style
from rich.text import Text

from tinygpt_tui.cli.common import ModelsDir, console as new_console, friendly, given_corpus, model_folder, one_line, prose
from tinygpt_tui.engine.inspect import display_char
from tinygpt_tui.errors import SettingsError, TinyGPTError
from tinygpt_tui.tokenizer import printable

O = typer.Option


@friendly
def inspect_cmd(
    model: str = typer.Argument(..., help="Model name or folder."),
    prompt: Optional[str] = O(None, "--prompt", "-p", help="The context (its last block_size characters are used; tokens, for a BPE model)."),
    top_k: int = O(10, "--top-k", "-k", help="How many next-character candidates to show (next tokens, for a BPE model)."),
    layer: Optional[int] = O(None, "--layer", "-l", help="Show only this layer's heatmap (0-based) (default: every layer)."),
    position: int = O(-1, "--position", help="Query position in the context, 0-based; negative counts from the end."),
    temperature: float = O(1.0, "--temperature", "-t", help="Probabilities are softmax(logits / temperature)."),
    rank_of: Optional[str] = O(None, "--rank-of", help="Also show where this character (a BPE model's token) ranks (as shown, too: · for a space, ⏎ for a newline)."),
    lens: bool = O(False, "--lens", help="The logit lens: what each layer would predict at the position."),
    ablate: bool = O(False, "--ablate", help="What changes the answer: each character (token, for a BPE model) up to the position, itself included, replaced one at a time."),
    embeddings: bool = O(False, "--embeddings", help="The embedding map (PCA) of the most frequent characters (tokens, for a BPE model)."),
    top: int = O(80, "--top", help="With --embeddings: how many characters (or BPE tokens) to place."),
    near: Optional[str] = O(None, "--near", help="With --embeddings: the nearest characters (or BPE tokens) to this one (cosine)."),
    heads: bool = O(False, "--heads", help="One line of role hints per head, over the validation split."),
    corpus: Optional[str] = O(None, "--corpus", parser=given_corpus, help="For --heads and --embeddings (default: the model's own corpus)."),
    json_out: bool = O(False, "--json", help="Print the numbers as JSON (top-k, attention per layer and head)."),
    device: str = O("auto", "--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Next-character (a BPE model: next-token) probabilities and attention for a prompt. Bars for the top candidates, a heatmap per layer."""
    console = new_console()  # (a pipe gets each sentence whole, as from every command: `prose` wraps it on a terminal)
    from tinygpt_tui.engine.folder import load_model
    from tinygpt_tui.engine.device import pick_device
    from tinygpt_tui.engine.inspect import analyze, check_temperature, check_top_k

    check_top_k(top_k, "--top-k")
    check_temperature(temperature)
    for ignored, why in ((near is not None and not embeddings, "--near goes with --embeddings (the nearest characters on its map)"),
                         (corpus is not None and not (heads or embeddings), "--corpus goes with --heads or --embeddings (the text they read)"),
                         (layer is not None and (lens or ablate or embeddings or heads),
                          "--layer picks one layer's heatmap; --lens, --ablate, --embeddings and --heads have none"),
                         ((lens or ablate) and (embeddings or heads),
                          "--lens and --ablate look at a prompt, --embeddings and --heads at the whole model: ask for one or the other"),
                         (prompt is not None and (embeddings or heads),
                          "--embeddings and --heads read no prompt (they show the whole model): leave out --prompt"),
                         ((temperature != 1.0 or rank_of is not None) and (lens or ablate or embeddings or heads),
                          "--temperature and --rank-of go with the bars; --lens, --ablate, --embeddings and --heads show the model's own numbers"),
                         ((position != -1 or top_k != 10) and (embeddings or heads),
                          "--position and --top-k look at a prompt; --embeddings and --heads show the whole model: leave them out"),
                         (top != 80 and not embeddings, "--top goes with --embeddings (how many characters its map places)")):
        if ignored:  # (said, not ignored: the view without it would look like its answer)
            raise SettingsError(why)
    if rank_of is not None and not rank_of:
        raise SettingsError("--rank-of takes a character (or a BPE model's token), got nothing")
    folder = model_folder(model, models_dir)
    loaded = load_model(folder, device=pick_device(device))
    if rank_of is not None and loaded.tokenizer.kind == "char" and len(rank_of) != 1:
        raise SettingsError(f"--rank-of takes one character, got {len(rank_of)}")
    if embeddings or heads:
        return deeper(console, loaded, embeddings, top, near, heads, corpus, json_out)
    if prompt is None:
        raise SettingsError("--prompt is needed (only --embeddings and --heads do without)")
    analysis = analyze(loaded.model, loaded.tokenizer, prompt)
    layer = check_index(layer, analysis.n_layer, "layer")
    view = analysis.at(position, top_k, temperature, sampled=rank_of)
    if lens or ablate:
        return lens_and_ablation(console, analysis, view, lens, ablate, top_k, json_out, loaded.tokenizer.unit)
    if json_out:
        return print_json({"model": loaded.name, "block_size": loaded.model.cfg.block_size,
                           "vocab_size": loaded.tokenizer.vocab_size, **view.to_dict()})
    render(console, one_line(loaded.name), view, layer, loaded.model.cfg.block_size, loaded.tokenizer.unit)


def print_json(doc) -> None:
    """JSON with readable text, but every control, format or separator character escaped
    (DEL, C1 controls, bidi overrides): the output may be shown on a terminal. A lone surrogate (a
    prompt's byte that was not UTF-8) is escaped too: written raw, it was not UTF-8 either."""
    text = json.dumps(doc, ensure_ascii=False)
    print("".join(json.dumps(c)[1:-1] if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") else c for c in text), flush=True)


def lens_and_ablation(console, analysis, view, lens: bool, ablate: bool, top_k: int, json_out: bool, unit: str = "character") -> None:
    from tinygpt_tui.engine.lens import ablate as run_ablation, logit_lens

    rows = logit_lens(analysis, view.position, top_k) if lens else None
    abl = run_ablation(analysis, view.position) if ablate else None
    if json_out:
        return print_json({"position": view.position, "context": "".join(view.chars),
                           # "layer" counts the embeddings as 0; "after" names the row as the text and heatmaps do (layers from 0)
                           "lens": [{**r.__dict__, "after": "embeddings" if r.layer == 0 else f"layer {r.layer - 1}"} for r in rows] if rows else None, "ablation": abl.__dict__ if abl else None})
    console.print(context_line(view))
    if rows:
        prose(console, lens_text(rows, view, console.width, analysis.model.cfg.tie_weights, unit))
    if abl:
        prose(console, ablation_text(view.chars, abl, console.color_system is not None, console.width, unit))
    if key := view.byte_key(bars=False, lens=rows, ablation=abl):
        prose(console, Text(key, style="dim"))  # (as under the main view's bars: ‹e2› in the context or the lens's rows)


def lens_text(rows, view, width: int, tied: bool = False, unit: str = "character") -> Text:
    """One line per layer: the character (or BPE token: ``unit``) that came next (rank, probability), then the top-k. A
    key says what the first column is, and, with tied weights, why the embeddings row names the query's own."""
    t = Text("Logit lens", style="bold")
    t.append(f" at position {view.position}: what the model would predict if it stopped after each layer", style="dim")
    if view.actual:
        t.append(f"\n  each row: {cell(view.actual.char)[0]} (next in the context) #rank probability, then the top {len(rows[0].top)}", style="dim")
    if tied:  # (head(norm(e_c)) is the embeddings' dot products with e_c's own direction: c wins)
        t.append(f"\n  embeddings: before any layer (tied weights: it mostly names the {unit} itself)", style="dim")
    for r in rows:
        # r.layer counts the embeddings as 0: the row after layer i (numbered from 0, as the heatmaps are) is i + 1
        t.append("\nembeddings " if r.layer == 0 else f"\nlayer {r.layer - 1:<4} ", style="cyan")
        if r.actual:
            t.append(f"{cell(view.actual.char)[0]} #{r.actual[0]:<4,} {r.actual[1]:6.1%}   ", style="magenta")
        t.append_text(items_line("", [(cell(c)[0], f" {p:.0%}") for c, p in r.top], max(width - 28, 20)))
    return t


def ablation_text(chars, abl, color: bool, width: int, unit: str = "character") -> Text:
    """The context coloured by each character's (or BPE token's: ``unit``) effect on the top prediction: red where replacing it
    lowers the prediction's log-probability (the character supported it), blue where it raises it; a key says so."""
    t = Text("What changes the answer", style="bold")
    t.append(f": each {unit} replaced by the average embedding, the change in log p({cell(abl.target)[0]}) (-0.69: p halved)\n", style="dim")
    vmax = max((abs(d) for d in abl.deltas if d == d), default=0.0) or 1.0
    for ch, d in zip(chars[: abl.position + 1], abl.deltas):
        v = 255 if d != d else round(255 * (1 - math.sqrt(min(abs(d) / vmax, 1.0))))
        rgb = (255, v, v) if d < 0 else (v, v, 255)
        t.append(cell(ch)[0], style=Style(bgcolor=Color.from_rgb(*rgb), color="black") if color else None)
    if color:
        t.append("\n  red: the answer leaned on it (log p falls without it) · blue: against it", style="dim")
    # only those whose loss lowers the answer's log p (a +0.00 was listed as "needed")
    ranked = sorted((j for j in range(len(abl.deltas)) if abl.deltas[j] < 0), key=lambda j: abl.deltas[j])
    items = [(cell(chars[j])[0], f"@{j} {abl.deltas[j]:+.2f}") for j in ranked[:8]] or [("none", "")]
    t.append_text(items_line("\n  most needed: ", items, width))
    return t


def heads_key(unit: str = "character", spaced: bool = True) -> str:
    """How to read a head hint's line (the CLI's and the app's); spaced False: a text without spaces between words."""
    what = ("word start", "the word's first") if spaced else ("clause start", "the first since punctuation or a space (no spaces between words here)")
    return (f"  distance: how far back it looks ({unit}s, mean) · previous, {what[0]}, induction: its share of attention "
            f"on the {unit} before, on {what[1]}, on the one after an earlier copy of this {unit} (a role from 40%)")


def scatter(labels: list[str], xy, width: int, height: int) -> tuple[list[str], int]:
    """The labels (display strings: a character's 1 or 2 cells, a BPE token's several) placed on a width x
    height grid by their coordinates; an earlier label wins its cells. Returns the lines and how many labels
    found no room."""
    import numpy as np

    grid, hidden = [[" "] * width for _ in range(height)], 0
    lo, span = xy.min(0), np.maximum(np.ptp(xy, 0), 1e-12)
    for s, (x, y) in zip(labels, xy):
        w = min(cell_len(s), width) or 1  # every cell it covers, so the labels after it keep their columns
        c, r = int(round((x - lo[0]) / span[0] * (width - w))), int(round((1 - (y - lo[1]) / span[1]) * (height - 1)))
        if any(grid[r][c + d] != " " for d in range(w)):
            hidden += 1
            continue
        grid[r][c : c + w] = [s] + [""] * (w - 1)  # a wide label covers the next cells
    return ["".join(row).rstrip() for row in grid], hidden


def embedding_text(emap, near_list, near: str | None, width: int, height: int = 18, unit: str = "character") -> Text:
    lines, hidden = scatter([cell(c)[0] for c in emap.chars], emap.xy, max(width, 20), height)
    t = Text(f"The {'output layer' if emap.which == 'output' else 'embedding'} map", style="bold")
    t.append(f" ({emap.method}: x {emap.explained[0]:.0%} of the variance, y {emap.explained[1]:.0%}), "
             + (f"all {len(emap.chars):,} {unit}s" if len(emap.chars) == emap.vocab_size else f"the {len(emap.chars):,} most frequent {unit}s")
             + (f"; {hidden:,} hidden by others" if hidden else ""), style="dim")
    t.append(f"\n  close: {unit}s the model uses alike (roughly: 2 of many dimensions)", style="dim")
    t.append("\n" + "\n".join(lines))
    if near_list:
        t.append_text(items_line(f"\n  nearest to {cell(near)[0]} (cosine): ", [(cell(c)[0], f" {v:.2f}") for c, v in near_list], width))
    return t


def deeper(console, loaded, embeddings: bool, top: int, near: str | None, heads: bool, corpus: str | None, json_out: bool) -> None:
    """--embeddings and --heads: views of the whole model, not of one prompt."""
    from tinygpt_tui.engine.corpora import own_corpus, resolve_corpus, whole_text
    from tinygpt_tui.engine.lens import embedding_map, head_roles, neighbours

    model, tok, doc, text, note = loaded.model, loaded.tokenizer, {}, None, None
    try:
        text = whole_text(resolve_corpus(corpus or own_corpus(loaded.doc)))
    except TinyGPTError as e:  # (the corpus is optional for the map: frequencies, else vocabulary order)
        if heads or corpus:
            raise SettingsError(str(e) if corpus else f"{e} (give --corpus FILE)") from None  # (the one given is named in e)
        note = f"note: the model's corpus is not here: {tok.unit}s in vocabulary order (give --corpus FILE)"
    if embeddings:
        near_list = neighbours(model, tok, near) if near is not None else None
        which = ["embedding"] + ([] if model.cfg.tie_weights else ["output"])
        maps = [embedding_map(model, tok, top, text, w) for w in which]
        doc["embeddings"] = [{"which": m.which, "method": m.method, "explained": m.explained,
                              "points": [{"char": c, "x": float(x), "y": float(y)} for c, (x, y) in zip(m.chars, m.xy)]} for m in maps]
        doc["near"] = [{"char": c, "cosine": v} for c, v in near_list] if near_list else None
        if note and not json_out:
            prose(console, Text(note, style="yellow"))
        for m in [] if json_out else maps:
            prose(console, embedding_text(m, near_list if m is maps[0] else None, near, console.width, unit=tok.unit))
    if heads:
        roles = head_roles(model, tok, text)
        doc["heads"] = [r.__dict__ for r in roles]
        if not json_out:
            n = roles[0].windows
            prose(console, Text(f"Head hints over {n} window{'s' * (n != 1)} of the validation split", style="bold"))
            prose(console, Text(heads_key(tok.unit, roles[0].spaced), style="dim"))
            console.print("\n".join(r.line() for r in roles), markup=False)
    if json_out:
        print_json(doc)


# inferno-like ramp: dark (no weight) to bright yellow (the heaviest weight shown)
RAMP = [(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21), (250, 193, 39), (252, 255, 164)]
SHADES = " ░▒▓█"
EIGHTHS = " ▏▎▍▌▋▊▉█"


def cell(ch: str) -> tuple[str, int]:
    """The label shown for a context character and its width in cells (at least 1)."""
    s = display_char(ch)
    return (s, cell_len(s)) if cell_len(s) else ("?", 1)


def quoted(ch: str) -> str:
    """A character (a BPE token) named in a sentence: in quotes as it is, a space a space (drawn as · it read as one
    more separator: "position 10 · · temperature 1"); a control or a newline as the heatmap draws it."""
    return f'"{ch}"' if ch.isprintable() else cell(ch)[0]


LEVELS = 64  # colours in the ramp actually used (styles are cached per level)


@functools.lru_cache(maxsize=None)
def level_style(level: int) -> Style:
    """The background of colour ``level`` (0..LEVELS - 1), interpolated along RAMP."""
    x = level / (LEVELS - 1) * (len(RAMP) - 1)
    i = min(int(x), len(RAMP) - 2)
    return Style(bgcolor=Color.from_rgb(*(round(a + (b - a) * (x - i)) for a, b in zip(RAMP[i], RAMP[i + 1]))))


def cell_parts(w: float, vmax: float, width: int, color: bool) -> tuple[str, Style | None]:
    """The text and style of one heatmap cell of ``width`` cells for weight w."""
    # square-root scale: one head that puts 0.9 on a single character would
    # otherwise leave every weight of 0.1 or less looking like nothing
    level = 0.0 if vmax <= 0 else math.sqrt(min(max(w / vmax, 0.0), 1.0))
    if color:
        return " " * width, level_style(round(level * (LEVELS - 1)))
    return SHADES[min(int(level * (len(SHADES) - 1) + 0.5), len(SHADES) - 1)] * width, None


def heatmap_layout(chars: list[str], row_labels: list[str], width: int) -> tuple[int, list[tuple[int, int]]]:
    """The label width and the (start, end) column blocks a heatmap of this width wraps into."""
    lab_w = max((cell_len(r) for r in row_labels), default=0) + 1
    avail = max(width - lab_w, 2)
    chunks, start, used = [], 0, 0
    for j, ch in enumerate(chars):
        w = cell(ch)[1]
        if used + w > avail and j > start:
            chunks.append((start, j))
            start, used = j, 0
        used += w
    chunks.append((start, len(chars)))
    return lab_w, chunks


def heatmap_column_at(chars: list[str], row_labels: list[str], width: int, x: int, y: int) -> int | None:
    """The context position under cell (x, y) of a heatmap drawn by ``heatmap`` (for mouse clicks)."""
    lab_w, chunks = heatmap_layout(chars, row_labels, width)
    k = y // (len(row_labels) + 2)  # each block: the ruler, the characters, one line per row
    if y < 0 or k >= len(chunks) or x < lab_w:
        return None
    col = lab_w
    for j in range(*chunks[k]):
        col += cell(chars[j])[1]
        if x < col:
            return j
    return None


@functools.lru_cache(maxsize=64)
def named_style(name: str) -> Style:
    return Style.parse(name) if name else Style()


def heatmap_lines(chars: list[str], rows: list[tuple[str, list[float]]], width: int, query: int,
                  color: bool = True, vmax: float | None = None, selected: int | None = None) -> list[list[tuple[str, Style]]]:
    """The heatmap as lines of (text, style) runs: cheap to turn into rich Text or Textual Strips.

    Each block of columns has a position ruler, the characters themselves as
    column labels (the query character underlined), then one line per row.
    Columns after ``query`` cannot be attended to and are left blank.
    """
    labels = [cell(c) for c in chars]
    lab_w, chunks = heatmap_layout(chars, [r[0] for r in rows], width)
    if vmax is None:
        vmax = max((w for _, ws in rows for w in ws[: query + 1]), default=0.0)
    plain, dim, bold = named_style(""), named_style("dim"), named_style("bold")
    lines: list[list[tuple[str, Style]]] = []
    for a, b in chunks:
        col, marks = 0, []
        for j in range(a, b):
            if j % 10 == 0 or j == query:
                marks.append((col, str(j)))
            col += labels[j][1]
        room = max(col, width - lab_w)
        buf, taken = [" "] * room, [False] * (room + 1)
        # the ruler: the query's mark first, then every tenth position where it does not collide
        for c, m in sorted(marks, key=lambda m: m[1] != str(query)):
            end = c + len(m)
            if end <= room and not any(taken[max(c - 1, 0) : end + 1]):
                buf[c:end] = list(m)
                taken[c:end] = [True] * len(m)
        lines.append([(" " * lab_w + "".join(buf).rstrip(), dim)])
        lines.append([(" " * lab_w, plain)] + [(labels[j][0], named_style("bold underline reverse") if j == query
                                                  else (dim if j > query else bold)) for j in range(a, b)])
        for r, (label, ws) in enumerate(rows):
            line = [(label.ljust(lab_w - 1) + " ", named_style("reverse bold" if r == selected else "cyan"))]
            for j in range(a, b):
                w = labels[j][1]
                if j > query:
                    line.append((" " * w, plain))
                else:
                    text, st = cell_parts(ws[j], vmax, w, color)
                    line.append((text, st or plain))
            lines.append(line)
    return lines


def heatmap(chars: list[str], rows: list[tuple[str, list[float]]], width: int, query: int,
            color: bool = True, vmax: float | None = None) -> Text:
    """``heatmap_lines`` as one rich Text (for the command line)."""
    return Text("\n").join(Text.assemble(*line) for line in heatmap_lines(chars, rows, width, query, color, vmax))


def with_cell_note(line: Text, width: int, unit: str = "character") -> Text:
    """The legend's line with what a cell is, where it fits in width (never wrapped for it)."""
    notes = [f"   a cell: its row's share of attention on that {unit}; a row sums to 1", "   cell: share of the row; rows sum to 1"]
    return next((line + Text(n, style="dim") for n in notes if line.cell_len + cell_len(n) <= width), line)


def legend(vmax: float, color: bool = True, width: int = 16) -> Text:
    """The colour scale: 0 to the heaviest weight shown, on a square-root scale."""
    t = Text("0 ", style="dim")
    for i in range(width):
        t.append(*cell_parts((i / (width - 1)) ** 2 * vmax, vmax, 1, color))
    t.append(f" {vmax:.3f} (√ scale)", style="dim")
    return t


def bar(fraction: float, width: int) -> str:
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    s = "█" * full + (EIGHTHS[part] if part else "")
    return s.ljust(width)


def prob_bars(view, width: int, highlight: str | None = None) -> Text:
    """The top-k candidates as labelled bars: rank, character, bar, probability (and the model's own at T=1)."""
    show_raw = view.temperature != 1.0
    pct_w = 8  # " 100.00%"
    extra = 12 if show_raw else 0  # "  T=1 100.0%"
    char_w = max([2] + [cell(c.char)[1] for c in view.candidates])
    bar_w = min(max(width - 4 - char_w - 2 - pct_w - extra - 1, 4), 50)
    out = Text()
    for i, c in enumerate(view.candidates):
        if i:
            out.append("\n")
        s, w = cell(c.char)
        mark = c.char == highlight
        out.append(f"{c.rank:>3,} ", style="dim")
        out.append(s + " " * (char_w - w), style="bold magenta" if mark else "bold")
        out.append("  ")
        out.append(bar(c.prob, bar_w), style="magenta" if mark else "green")
        out.append(f" {c.prob * 100:6.2f}%")
        if show_raw:
            out.append(f"  T=1 {c.raw_prob * 100:5.1f}%", style="dim")
    return out


def ranked_line(r, what: str, width: int | None = None, short: str = "") -> Text:
    """'WHAT "c" ranks #n at p% (q% at temperature 1)'; to fit in width: the note as (T=1 q%), WHAT as SHORT, no note."""
    t1 = f" (T=1 {r.raw_prob * 100:.2f}%)" if r.raw_prob != r.prob else ""
    for w, note in ((what, f" ({r.raw_prob * 100:.2f}% at temperature 1)" if t1 else ""), (what, t1), (short or what, t1), (short or what, "")):
        t = Text.assemble(f"{w} ", (quoted(r.char), "bold magenta"), f" ranks #{r.rank:,} at {r.prob * 100:.2f}%", (note, "dim"))
        if width is None or t.cell_len <= width:
            return t
    return t  # (the shortest: the caller wraps it)


def context_line(view) -> Text:
    """The context as the model sees it, the query character highlighted."""
    t = Text()
    for j, ch in enumerate(view.chars):
        s, _ = cell(ch)
        t.append(s, style="bold underline reverse" if j == view.position else ("dim" if j > view.position else ""))
    return t


def items_line(prefix: str, items: list[tuple[str, str]], width: int | None = None) -> Text:
    """A dim prefix then "char value" items, as many as fit in width (no item is split)."""
    t = Text(prefix, style="dim")
    for k, (ch, value) in enumerate(items):
        item = Text("  " if k else "")
        item.append(ch, style="bold")
        item.append(value, style="dim")
        if width is not None and k and t.cell_len + item.cell_len > width:
            break
        t.append_text(item)
    return t


def top_attended(view, weights: list[float], n: int = 6, prefix: str = "", width: int | None = None) -> Text:
    """The context positions with the most weight: char@position weight."""
    items = [(cell(view.chars[j])[0], f"@{j} {w:.2f}") for j, w in view.top_positions(weights, n)]
    return items_line(prefix, items, width)


def head_rows(view, layer: int) -> list[tuple[str, list[float]]]:
    rows = [(f"h{h}", view.attention[layer][h]) for h in range(view.n_head)]
    rows.append(("avg", view.mean_over_heads[layer]))
    return rows


def layer_rows(view) -> list[tuple[str, list[float]]]:
    rows = [(f"L{i}", view.mean_over_heads[i]) for i in range(view.n_layer)]
    rows.append(("all", view.mean_all))
    return rows


def check_index(value: int | None, n: int, what: str) -> int | None:
    if value is None:
        return None
    if not -n <= value < n:
        raise SettingsError(f"{what} {value} does not exist: the model has {n} {what}s (0..{n - 1})")
    return value % n


def render(console, name: str, view, layer: int | None = None, block_size: int | None = None, unit: str = "character") -> None:
    """The whole picture; ``unit`` is what a column stands for (a character, or a BPE token)."""
    width, color, p = console.width, console.color_system is not None, view.position

    def heat(title: Text, rows, weights, label: str) -> None:
        """A titled heatmap (the legend beside the title when both fit), then the most attended positions."""
        vmax = max(w for _, ws in rows for w in ws[: p + 1])
        key = legend(vmax, color)
        beside = title.cell_len + 3 + key.cell_len <= width
        prose(console, title + Text("   " if beside else "\n") + with_cell_note(key, width - (title.cell_len + 3) * beside, unit))
        console.print(heatmap(view.chars, rows, width, p, color=color, vmax=vmax))
        console.print(top_attended(view, weights, 8, label, width))

    window = f"/{block_size:,}" if block_size else ""
    prose(console, Text.assemble((name, "bold"), f" · context {len(view.chars):,}{window} {unit}s · position ", (f"{p}", "bold"), ": ",
                                (quoted(view.query_char), "bold"), f" · temperature {view.temperature:g}"))
    if view.truncated:
        prose(console, Text(f"note: the first {view.truncated} character(s) lie before the model's window and are not seen", style="yellow"))
    if view.dropped:
        prose(console, Text(f"note: {len(view.dropped)} character(s) the model does not know were left out: "
                           + printable(" ".join(view.dropped[:20])), style="yellow"))
    console.print(context_line(view))
    console.print()
    after = "…" * (p > 11) + "".join(cell(c)[0] for c in view.chars[max(0, p - 11) : p + 1])
    prose(console, Text(f"Next {unit} after {after}", style="bold").append(f"  (top {len(view.candidates)})", style="dim"))
    known = view.sampled or view.actual
    console.print(prob_bars(view, width, highlight=known.char if known else None))
    if view.actual:
        console.print(ranked_line(view.actual, "next in the context:"))
    if view.sampled:
        console.print(ranked_line(view.sampled, "asked about:"))
    elif view.sampled_unknown:
        console.print(Text(f"asked about a {unit} the model does not know", style="yellow"))
    if key := view.byte_key():
        prose(console, Text(key, style="dim"))  # (under the table; the context above and the heatmaps below show them too)
    for i in range(view.n_layer) if layer is None else [layer]:
        console.print()
        title = Text(f"Layer {i} of 0..{view.n_layer - 1}: how position {p} attends over the context, per head", style="bold")
        heat(title, head_rows(view, i), view.mean_over_heads[i], "  avg looks most at: ")
    console.print()
    title = Text("All layers and heads: " + ("each layer's mean over heads, and the mean of all" if layer is None
                                              else "the mean of every layer and head"), style="bold")
    heat(title, layer_rows(view) if layer is None else [("all", view.mean_all)], view.mean_all, "  most attended: ")
    by_char = [(cell(ch)[0], f" {w:.2f}") for ch, w in view.weight_by_char()[:10]]
    console.print(items_line(f"  by {unit}:  ", by_char, width))
