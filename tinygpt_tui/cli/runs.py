"""`tinygpt runs`, `tinygpt compare`, `tinygpt experiment`, `tinygpt lesson`: runs side by side, a grid
of runs, the ready-made lessons. engine/runs.py and engine/experiment.py do the work; this file prints."""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table
from rich.text import Text

from tinygpt_tui.cli.common import (HELP, Command, ModelsDir, console as new_console, error_line, fail, friendly, given_corpus, model_folder, models_dir_words, models_folder,
                                    one_line, prose, shell_word, waiting)
from tinygpt_tui.names import table_name_room, wrap_name

O = typer.Option


def _f(v, fmt: str = ".3f") -> str:
    return "–" if v is None else format(v, fmt)


def _minutes(v) -> str:
    return "–" if v is None else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _status(s) -> Text:
    """The status in a word (a broken folder's reason is printed under the table)."""
    style = {"finished": "green", "training": "cyan", "stopped": "yellow", "no checkpoint": "yellow"}.get(s.status.split(":")[0], "red")
    return Text(s.status.split(":")[0], style=style)


def print_runs(con, summaries, other: set | None = None) -> None:
    con.print(runs_table(summaries, other=other, width=con.width))
    for s in summaries:
        if not s.ok:
            prose(con, Text(one_line(f"{s.name}: {s.status}"), style="red"))
        elif s.log_cut is not None:  # (its curves stop there; the table's figures are config.json's)
            prose(con, Text(one_line(f"{s.name}: log cut at step {s.log_cut:,} of {s.steps:,}: metrics.jsonl ends there, and so "
                                     "do its curves; its time and speed are config.json's"), style="yellow"))


def runs_table(summaries, title: str = "", other: set | None = None, width: int = 0) -> Table:
    """A row per run; a run in ``other`` (trained on another corpus than the rest) has its corpus marked ≠. Under
    100 columns: no padding and no minutes or tokens/s columns. A name wider than its column is wrapped between
    its parts (``grid/`` and ``pos_encoding=alibi``), never inside one (names.wrap_name)."""
    narrow = 0 < width < 100
    t = Table(title=title or None, title_justify="left", header_style="bold", pad_edge=False, padding=(0, 0) if narrow else (0, 1))
    timing = () if narrow else ("min", "tok/s")
    labels = ("run", "status", "corpus", "params", "ctx", "val\nloss", "bits/\nchar", *timing, "steps")
    for col in labels[:3]:
        t.add_column(col, no_wrap=col == "status", overflow="fold", max_width=16 if col == "corpus" else None)
    for col in labels[3:]:
        t.add_column(col, justify="right", no_wrap=True)
    rows = []
    for s in summaries:
        corpus = Text(("≠ " if other and s.name in other else "") + (one_line(s.corpus) or "–"),
                      style="red" if other and s.name in other else "")
        times = () if narrow else (_minutes(s.minutes), _f(s.tokens_per_s, ",.0f"))
        rows.append([one_line(s.name), _status(s), corpus, f"{s.params / 1e6:.2f}M" if s.params else "–",
                     str(s.context or "–"), _f(s.val_loss), _f(s.bpc), *times, f"{s.steps:,}"])
    measured = [[r[0], r[1], r[2][:16], *r[3:]] for r in rows]  # (the corpus column is at most 16 wide)
    room = table_name_room(labels, measured, 0, width, gap=1 if narrow else 3, edge=1 if narrow else -1)
    for r in rows:
        t.add_row(wrap_name(r[0], room) if room else r[0], *r[1:])
    return t


@friendly
def runs_cmd(models_dir: Optional[Path] = ModelsDir):
    """List every run (experiments' members too): status, corpus, size, validation loss, bits/char, time."""
    from tinygpt_tui.engine.runs import list_runs

    d = models_folder(models_dir)
    summaries = list_runs(d)
    if not summaries:
        typer.echo(one_line(f"no runs in {d}"))
        return
    print_runs(new_console(), summaries)


def _chart(named, x, curves, out, title, marks=None):
    from tinygpt_tui.cli import chart

    lines = chart.lines_of(named, x, curves)
    if out is not None:
        chart.write_chart(lines, x, out, title)
        typer.echo(one_line(f"wrote {out}"))
        return
    if not lines:
        typer.echo("no loss records to draw yet")
        return
    con = new_console()
    width = min(shutil.get_terminal_size((100, 30)).columns, 140)
    con.print(chart.terminal(lines, x, width, 22, color=con.is_terminal, title=title, marks=marks))


def _check_x(x: str) -> None:
    from tinygpt_tui.engine.runs import X_AXES

    if x not in X_AXES:
        fail(f"--x must be one of {', '.join(X_AXES)}, got {x!r}")


@friendly
def compare_cmd(
    runs: List[str] = typer.Argument(..., help="Model folders or names (an experiment's member as EXPERIMENT/MEMBER, "
                                                "or an experiment's name for all its members)."),
    x: str = O("steps", "--x", help="The x axis: steps, tokens or minutes."),
    curves: str = O("both", "--curves", help="val, train or both."),
    out: Optional[Path] = O(None, "--out", help="Write the chart to a file (.svg, or .png with the [plot] extra) instead; it replaces only a chart written here."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Overlay the loss curves of several runs on one chart, with a table of their final figures."""
    from tinygpt_tui.engine.runs import (LN2, MAX_LOG, STAGES, Curves, book_of, common_corpus, expand_run, other_corpus, overfitting, stage,
                                         summarize, tokenizers)

    _check_x(x)
    if curves not in ("val", "train", "both"):
        fail(f"--curves must be val, train or both, got {curves!r}")
    if out is not None:
        from tinygpt_tui.cli.chart import check_out

        check_out(out)  # before anything is printed
    summaries, named, seen, twice = [], [], set(), []
    for r in runs:
        for name, folder in model_folder(r, models_dir, expand_run):  # (a file named: said for what it is)
            if os.path.realpath(folder) in seen:  # (named twice, or by a name and a path: one line, one row)
                twice.append(name)
                continue
            seen.add(os.path.realpath(folder))
            s = summarize(folder, name)
            summaries.append(s)
            if s.ok or os.path.exists(folder / "metrics.jsonl"):  # (False where it cannot be read)
                named.append((name, Curves(folder)))
    # the corpus most runs share is the comparison's; a run trained on another is marked, not dropped
    common = common_corpus(summaries)
    other = {s.name for s in summaries if other_corpus(s, common)}
    con = new_console()
    print_runs(con, summaries, other)
    if twice:
        prose(con, Text(one_line(f"named more than once, drawn once: {', '.join(twice)}"), style="dim"))
    for name, c in named:  # (a log of gigabytes: its end is drawn, and said to be)
        if c.skipped:
            prose(con, Text(one_line(f"{name}: metrics.jsonl is {c.skipped + MAX_LOG:,} bytes: its last {MAX_LOG >> 20} MB are drawn"), style="yellow"))
    shared = common[0]
    for s in summaries:
        if s.name in other:
            what = f"another text named {s.corpus} (its sha256 differs)" if s.corpus == shared else s.corpus
            prose(con, Text(one_line(f"{s.name}: trained on {what}, not {shared}: its losses do not compare"), style="red"))
    for name, c in named:
        s = next(s for s in summaries if s.name == name)
        per_char = s.bpc * LN2 if s.bpc is not None else None  # (the stages are in nats per character, whatever the tokens)
        reached = stage(s.corpus, per_char)
        if reached and name not in other:
            prose(con, Text(one_line(f"{name}: at a validation loss of {per_char:.2f} per character, a model on this book shows {reached[1]}"), style="dim"))
        note = overfitting(c)
        if note:
            prose(con, Text(one_line(f"{name}: {note}"), style="yellow"))
        if s.ok and not c.steps and not c.evals:  # (a converted or imported model: in the table, with no line to draw)
            prose(con, Text(one_line(f"{name}: no loss records (metrics.jsonl): not on the chart"), style="yellow"))
    # losses per token of different tokenizers don't compare (a BPE token is several characters): bits per character do
    used = tokenizers(summaries)
    bits = len(used) > 1
    if bits:
        prose(con, Text(one_line(f"the runs' tokens differ ({', '.join(used)}): their losses per token don't compare; "
                                 "compare bits/char (the chart draws validation bits per character)"), style="yellow"))
    # the chart (a file for a write-up, too) says which runs don't compare, as the table does
    ok = {s.name for s in summaries if s.ok}
    labelled = [(f"{name} (other corpus)" if name in other else name if name in ok else f"{name} (broken)", c) for name, c in named]
    _chart(labelled, x, "bits" if bits else curves, out, "bits per character" if bits else "loss",
           marks=STAGES.get(book_of(shared) or "", []) if not other and not bits else None)


# ----------------------------------------------------------------- experiments
def run_plan(plan, resume: bool, prompt: str, sample_chars: int, x: str | None = None, dry: bool = False) -> None:
    """Print the plan and its estimate, run it (Ctrl+C stops the member under way after a save), then the
    ranked table, side-by-side samples and the chart."""
    from rich.progress import BarColumn, Progress, TextColumn

    from tinygpt_tui.cli.train import fmt_time, install_stop_handlers, note, restore_interrupt
    from tinygpt_tui.engine import experiment as E
    from tinygpt_tui.engine.events import measuring_words
    from tinygpt_tui.engine.runs import Curves, overfitting
    from tinygpt_tui.engine.train import Eval
    from tinygpt_tui.tokenizer import printable

    con = new_console()
    spec = plan.spec
    budget = f"{spec.minutes:g} min" if spec.minutes else f"{spec.max_steps:,} steps"
    E.check_claim(plan, resume, dry)  # a folder another experiment holds or already used: refused before the plan and its estimate
    with waiting("starting: loading PyTorch …"):  # (seconds of a blank terminal, as `tinygpt train` had)
        plan = E.settle(plan, note)  # threads, precision, preset: the probe's, as `tinygpt train` has them, alike for every member
    states = E.member_states(plan) if resume else {}
    todo = [m for m in plan.members if states.get(m.name, {}).get("state") != "finished"]
    prose(con, Text(one_line(f"experiment {spec.name}: {len(plan.members)} run{'s' if len(plan.members) != 1 else ''} of {budget} each on {Path(plan.corpus).name}, "
                             f"seed {spec.seed}" + (f" to {spec.seed + spec.seeds - 1}" if spec.seeds > 1 else "")), style="bold"))
    if spec.text and (todo or dry):  # (with nothing to train, the results below show it once, beside the table)
        prose(con, Text(printable(spec.text.strip()), style="italic"))
    est = None
    if todo and not plan.unfetched:  # (seconds a member, more for a deep one, said nothing meanwhile: a 30-member grid sat silent for minutes)
        timing = f"timing a few steps of each member on this machine ({len(todo)} to time) …"
        with waiting(timing, con):  # (on stdout, beside the plan it is working out)
            est = E.estimate(E.Plan(spec, plan.folder, plan.corpus, todo, plan.source), own_threads=True)  # (it trains here next)
    for i, m in enumerate(plan.members):
        st = states.get(m.name, {}).get("state", "queued")
        j = todo.index(m) if m in todo else None
        when = (f"about {fmt_time(est.member_s[j])}" + (f", on from step {est.done[j]:,}" if est.done[j] else "")) if est and j is not None else st
        prose(con, Text(one_line(f"  {i + 1}. {m.name}  ({when})")))
    if est:
        prep = f", plus preparing the corpus for the BPE ({fmt_time(sum(est.prepare_s))})" if sum(est.prepare_s) else ""
        prose(con, Text(f"estimated time: {fmt_time(est.total_s)} (measured step time x budget, plus evaluations{prep})", style="bold"))
    elif todo and plan.unfetched:  # (a plan only: the members need no text; timing their steps does)
        least = (f"estimated time: at least {fmt_time(len(todo) * spec.minutes * 60)} (the budgets); their evaluations are"
                 if spec.minutes else "no time estimate yet: a few steps are")
        prose(con, Text(one_line(f"{least} timed on the corpus, not fetched yet: `tinygpt corpus fetch {shell_word(plan.unfetched)}`"),
                        style="yellow"))
    if dry:
        return
    stop, preparing, pace = threading.Event(), [None], {}  # (the member preparing its corpus; its stage's pace)
    install_stop_handlers(stop, quiet=False, saying=lambda: preparing[0] and f"stopping: {one_line(preparing[0])} is preparing its corpus, "
                          "which ends there: nothing trained, nothing saved (Ctrl+C again to quit at once)")
    t0 = time.perf_counter()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), console=con)
    task, ended, failed = None, None, {}  # (failed: each failed member's error)
    curves = Curves()
    with progress:
        for ev in E.run(plan, stop, resume):
            if isinstance(ev, E.MemberStarted):
                curves, preparing[0], pace = Curves(), ev.name, {}
                prose(progress.console, Text(one_line(f"[{ev.index + 1}/{ev.total}] {ev.name}: {ev.how}")))
                task = progress.add_task(one_line(ev.name)[:40], total=1000, info="starting…")
            elif isinstance(ev, E.MemberEvent):
                rec = ev.event.record()
                curves.apply(rec)
                preparing[0] = preparing[0] if rec["event"] == "prepare" else None
                if task is not None and rec["event"] == "prepare":  # (minutes for a big corpus, or a BPE to learn)
                    share, info = preparation_line(rec, pace)
                    progress.update(task, total=None if share is None else 1000, completed=int((share or 0) * 1000), info=info)
                elif task is not None and rec["event"] == "step":
                    note = " (overfitting)" if overfitting(curves) else ""
                    progress.update(task, total=1000, completed=int(rec["progress"] * 1000),
                                    info=f"loss {rec['loss']:.3f}  {rec['tokens_per_s']:,.0f} tok/s  ETA {fmt_time(rec['eta_s'])}{note}")
                elif task is not None and rec["event"] == "measuring":  # (the bar full: what it waits for)
                    progress.update(task, completed=1000, info=measuring_words(rec["scope"], rec["tokens"]), refresh=True)
                elif isinstance(ev.event, Eval):
                    progress.console.print(Text(f"    step {ev.event.step:>6,}  train {ev.event.train_loss:.3f}  val {ev.event.val_loss:.3f}"))
            elif isinstance(ev, E.MemberEnded):
                unstarted, preparing[0] = preparing[0] == ev.name, None
                if task is not None:
                    progress.update(task, completed=1000 if ev.state == "finished" else None, info=ev.state)
                    progress.remove_task(task)
                    task = None
                s = ev.summary
                if ev.state == "failed":
                    failed[ev.name] = ev.error
                msg = {"kept": "kept (finished before)", "failed": f"failed: {ev.error}",
                       "stopped": "stopped while preparing its corpus: nothing trained, nothing saved" if unstarted else "stopped"}.get(ev.state, ev.state)
                # (a finished member's is over the whole split, not the estimate its progress line showed last)
                scope = " (whole split)" if ev.state in ("finished", "kept") else " (its last estimate)"
                vl = f", val loss {s.val_loss:.3f}{scope}" if s and s.val_loss is not None else ""
                prose(progress.console, Text(one_line(f"  {ev.name}: {msg}{vl}"), style="red" if ev.state == "failed" else "green"))
            elif isinstance(ev, E.Ended):
                ended = ev
    restore_interrupt()  # (nothing left to save: a Ctrl+C during the samples would otherwise wait for them)
    wall = time.perf_counter() - t0
    con.print(Text(f"{ended.state if ended else 'ended'} in {fmt_time(wall)}" + (f" (estimated {fmt_time(est.total_s)})" if est else ""), style="bold"))
    show_results(plan, prompt, sample_chars, x)
    if failed:  # (last, under the results: what went wrong and how to go on, as a stopped experiment says it)
        (name, why), more = next(iter(failed.items())), list(failed)[1:]
        error_line(one_line(f"member {name} failed: {why}" + (f" (and {len(more)} more: {', '.join(more)})" if more else "")))
    if ended and ended.state in ("stopped", "failed"):
        con.print(Text(one_line(f"continue with: tinygpt experiment {shell_word(spec.name)} --resume{models_dir_words(plan.folder.parent)}")))
    if failed:
        raise typer.Exit(2)


def preparation_line(rec: dict, pace: dict, now: float | None = None) -> tuple[float | None, str]:
    """A member preparing its corpus on its progress line: the share of its stage done (None: nothing measures it, the
    BPE's merges) and what the line says: the stage, the share and the time left at the stage's pace so far (measured
    from the stage before it's end: ``pace`` keeps it), or for the merges the time they have taken."""
    from tinygpt_tui.cli.train import fmt_time
    from tinygpt_tui.engine.sources import STAGE_WORDS

    now = time.monotonic() if now is None else now
    stage, done, total = rec.get("stage"), rec.get("done", 0), rec.get("total", 0)
    if stage != pace.get("stage"):
        pace.update(stage=stage, since=pace.get("last", now), from_done=0 if "last" in pace else done)
    pace["last"], words = now, STAGE_WORDS.get(stage, stage)
    if total <= 0:
        return None, f"{words}  {fmt_time(now - pace['since'])}, time left unknown"
    gained, took = done - pace["from_done"], now - pace["since"]
    left = took * (total - done) / gained if gained > 0 and took > 0 else None
    return min(done / total, 1.0), f"{words} {min(done / total, 1.0):.0%}  ETA {fmt_time(left)}"


def show_results(plan, prompt: str, sample_chars: int, x: str | None = None) -> None:
    """The ranked table, the samples side by side and the validation chart (x: the budget's unit when None)."""
    from tinygpt_tui.engine import experiment as E
    from tinygpt_tui.engine.runs import Curves, overfitting
    from tinygpt_tui.tokenizer import printable

    con = new_console()
    rows = E.results(plan)
    seeds = plan.spec.seeds > 1
    t = Table(title=one_line(f"{plan.spec.title or plan.spec.name}: ranked by bits per character"), title_justify="left", header_style="bold",
              padding=(0, 0) if con.width < 100 else (0, 1))  # (as runs_table: a member's name keeps its line at 80)
    for col in ("#", "member", "val loss" + (" (mean ± std)" if seeds else ""), "bits/\nchar", "params", "min", "tok/s", "status"):
        t.add_column(col, justify="left" if col in ("member", "status") else "right", overflow="fold")
    for i, r in enumerate(rows):
        vl = _f(r.val_loss) + (f" ± {r.spread:.3f}" if seeds and r.spread is not None else "")
        t.add_row(str(i + 1), one_line(r.group), vl, _f(r.bpc), f"{r.params / 1e6:.2f}M" if r.params else "–",
                  _minutes(r.minutes), _f(r.tokens_per_s, ",.0f"), Text(one_line(r.status)[:50], style="green" if r.status == "finished" else "yellow"))
    con.print(t)
    if plan.spec.text:
        from tinygpt_tui.engine.lessons import paragraphs

        prose(con, Text(printable(paragraphs(plan.spec.text)), style="italic"))
    done = [m for m in plan.members if (plan.folder / m.name / "config.json").exists()]
    if sample_chars and done:
        st = Table(title=f"samples, prompt '{one_line(prompt)}', same seed", title_justify="left", header_style="bold", show_lines=True)
        st.add_column("member", overflow="fold")
        st.add_column("sample", overflow="fold")
        for name, text in E.samples(plan, prompt, sample_chars):
            st.add_row(one_line(name), Text(text.replace("\r", "")))
        con.print(st)
    named = [(m.name, Curves(plan.folder / m.name)) for m in done]
    for name, c in named:  # (the progress line's note is gone with its bar: say it where it stays)
        note = overfitting(c)
        if note:
            prose(con, Text(one_line(f"{name}: {note}"), style="yellow"))
    x = x or ("minutes" if plan.spec.minutes else "steps")  # a step budget: members end together on a step axis
    if plan.tokens_differ:  # (as the experiment screen)
        _chart(named, x, "bits", None, f"{plan.spec.name}: validation bits per character (the members' tokens differ: "
                                       "loss per token doesn't compare)")
    elif len(named) <= 4:  # training curves too (where validation parts from training: overfitting); more is a tangle
        _chart(named, x, "both", None, f"{plan.spec.name}: training and validation loss")
    else:
        _chart(named, x, "val", None, f"{plan.spec.name}: validation loss")


@friendly
def experiment_cmd(
    name: str = typer.Argument(..., help="The experiment's name: its folder under the models directory."),
    corpus: Optional[str] = O(None, "--corpus", "-c", parser=given_corpus, help="A text file or a corpus name."),
    minutes: Optional[float] = O(None, "--minutes", "-m", help="Each member's budget in minutes."),
    max_steps: Optional[int] = O(None, "--max-steps", help="Each member's budget in steps (same numbers on a re-run)."),
    vary: List[str] = O([], "--vary", metavar="KEY=V1,V2", help="A setting to vary (once or twice), e.g. pos=learned,rope."),
    set_: List[str] = O([], "--set", metavar="KEY=VALUE", help="A setting for every member, e.g. n_layer=2."),
    seeds: Optional[int] = O(None, "--seeds", help="Train each member with this many seeds (the table gives mean ± std)."),
    seed: Optional[int] = O(None, "--seed", help="The first seed (default 1337)."),
    file: Optional[Path] = O(None, "--file", "-f", help="A TOML file holding the grid (options given here override it)."),
    resume: bool = O(False, "--resume", help="Continue a stopped or killed experiment (finished members are kept)."),
    threads: Optional[int] = O(None, "--threads", help="CPU threads for torch (the same count gives the same numbers)."),
    plan_only: bool = O(False, "--plan", help="Print the members and the time estimate; train nothing."),
    prompt: str = O("\n", "--prompt", show_default=False, help="The prompt of the side-by-side samples (default: a new line)."),
    sample_chars: int = O(200, "--sample-chars", help="Characters of each sample (0: none)."),
    x: Optional[str] = O(None, "--x", help="The chart's x axis: steps, tokens or minutes (default: the budget's, minutes or steps)."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Train a grid of runs that differ in one or two settings, everything else equal; rank them."""
    from tinygpt_tui.engine import experiment as E
    from tinygpt_tui.engine.lessons import read_spec_file

    if x is not None:
        _check_x(x)
    given = any(v not in (None, [], ()) for v in (corpus, minutes, max_steps, vary, set_, seeds, seed, file))
    from tinygpt_tui.engine.folder import default_models_dir
    from tinygpt_tui.engine.presets import check_name
    from tinygpt_tui.engine.runs import MANIFEST

    home = Path(models_dir) if models_dir else default_models_dir()
    started = isinstance(name, str) and (home / name / MANIFEST).is_file()
    check_name(name, "an experiment needs a name: tinygpt experiment NAME ...", "experiment name", new=not started)  # (older: go on)
    again = f"tinygpt experiment {shell_word(name)} --resume{models_dir_words(home)}"
    if not given and not resume and started:
        fail(f"{one_line(name)} is an experiment already: `{again}` shows its results or goes on")
    if resume and not given:
        plan = E.load_plan(name, models_dir)
        if threads is not None:  # (the one setting a resumed experiment takes: how this machine runs it)
            plan.spec.threads = threads
            plan = E.make_plan(plan.spec, plan.folder.parent)
    else:
        if resume and corpus is None and file is None:  # (not "needs a corpus": the saved one is meant)
            fail(f"--resume goes on as saved with no other settings (--threads aside): `{again}`; "
                 "or give the whole command again, --corpus included")
        spec = read_spec_file(file, name) if file else E.Spec(name=name)
        spec.name = name
        if corpus is not None:
            spec.corpus = corpus
        if minutes is not None or max_steps is not None:
            spec.minutes, spec.max_steps = minutes, max_steps
        if vary:
            spec.vary, spec.members = E.parse_pairs(vary, "vary"), []
        spec.settings.update(E.parse_pairs(set_, "set"))
        for k, v in (("seeds", seeds), ("seed", seed), ("threads", threads)):
            if v is not None:
                setattr(spec, k, v)
        plan = E.make_plan(spec, models_dir, dry=plan_only)
    run_plan(plan, resume, prompt, sample_chars, x, dry=plan_only)


@friendly
def lesson_cmd(
    name: Optional[str] = typer.Argument(None, help="The lesson to run; none: list them."),
    corpus: Optional[str] = O(None, "--corpus", "-c", parser=given_corpus, help="Run it on another corpus than the lesson's."),
    minutes: Optional[float] = O(None, "--minutes", "-m", help="Each member's budget in minutes instead of the lesson's (its own folder)."),
    max_steps: Optional[int] = O(None, "--max-steps", help="Each member's budget in steps instead (same numbers on a re-run; its own folder)."),
    plan_only: bool = O(False, "--plan", help="Print the members and the time estimate; train nothing."),
    threads: Optional[int] = O(None, "--threads", help="CPU threads for torch (the same count gives the same numbers)."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Ready-made experiments that each teach one idea; run one again to see its results (or go on)."""
    from tinygpt_tui.engine import experiment as E
    from tinygpt_tui.engine.lessons import as_run, find_lesson, list_lessons

    if name is None:
        t = Table(header_style="bold")
        for col in ("lesson", "what it shows", "runs", "budget"):
            t.add_column(col, overflow="fold")
        for lesson in list_lessons():
            s = lesson.spec
            n = (len(s.members) or math.prod(map(len, s.vary.values()))) * s.seeds
            t.add_row(lesson.name, one_line(s.title), str(n), f"{s.minutes:g} min each" if s.minutes else f"{s.max_steps:,} steps each")
        new_console().print(t)
        prose(new_console(), "run one: tinygpt lesson NAME   (--plan: its members and time estimate first; --minutes or "
                             "--max-steps: another budget)")
        return
    spec = as_run(find_lesson(name).spec, minutes, max_steps, corpus)  # (its own folder: the lesson's own results stay whole)
    spec.threads = threads
    plan = E.make_plan(spec, models_dir, dry=plan_only)
    resume = (plan.folder / "experiment.json").exists()
    run_plan(plan, resume, "\n", 200, dry=plan_only)


def register(app) -> None:
    for fn, name in ((runs_cmd, "runs"), (compare_cmd, "compare"), (experiment_cmd, "experiment"), (lesson_cmd, "lesson")):
        app.command(name, cls=Command, context_settings=HELP)(fn)
