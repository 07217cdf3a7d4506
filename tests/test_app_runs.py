"""The runs screen (F3), the experiment screen (F4) and the training chart's reference, driven with Pilot."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import make_model, make_models_dir, small_corpus_file
from tests.test_app import RecordingApp, notes, wait_for

from tinygpt_tui.app.app import TinyGPTApp
from tinygpt_tui.app.runs import TABLE_COLUMNS


def write_metrics(folder: Path, steps: int = 60, every: int = 10, eval_every: int = 20, corpus: str = "fixture",
                  finish: bool = True, start_loss: float = 4.0, tokens_per_step: int = 256, offset: int = 0) -> None:
    """A run's metrics.jsonl as train.py writes it: start, a step record every `every` steps, an evaluation
    every `eval_every`, finish (steps from `offset`, appended to what is there)."""
    recs = [] if offset else [{"event": "start", "step": 0, "max_steps": steps, "params": 1000, "corpus": corpus,
                               "tokens_per_step": tokens_per_step, "model": {"block_size": 32}}]
    for s in range(offset + every, offset + steps + 1, every):
        loss = start_loss - 0.02 * s
        recs.append({"event": "step", "step": s, "loss": loss, "tokens_seen": s * tokens_per_step, "elapsed_s": s * 0.5,
                     "progress": s / steps, "tokens_per_s": 512.0})
        if s % eval_every == 0:
            recs.append({"event": "eval", "step": s, "train_loss": loss, "val_loss": loss + 0.1, "best_val_loss": loss + 0.1,
                         "elapsed_s": s * 0.5, "sample": f"sample at {s}"})
    if finish:
        recs.append({"event": "finish", "step": offset + steps, "reason": "done", "val_loss": start_loss - 0.02 * (offset + steps) + 0.1,
                     "elapsed_s": (offset + steps) * 0.5, "tokens_seen": (offset + steps) * tokens_per_step})
    with open(folder / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in recs))


def runs_dir(root: Path) -> Path:
    """models/: alpha (fixture corpus), beta (another corpus), gamma (fixture, newest), broken; fixed times."""
    d = make_models_dir(root)
    make_model(d, "gamma", seed=3, val_loss=2.1)
    write_metrics(d / "alpha", start_loss=4.0)
    write_metrics(d / "beta", corpus="other", start_loss=3.5)
    write_metrics(d / "gamma", steps=80, start_loss=3.8)
    for i, name in enumerate(("alpha", "beta", "gamma")):
        for f in ("metrics.jsonl", "config.json"):
            os.utime(d / name / f, (1_700_000_000 + i, 1_700_000_000 + i))
    return d


async def runs_shown(pilot, app) -> object:
    """The runs screen, once the folder is read and every checked run's curves are in."""
    await pilot.press("f3")
    screen = app.get_screen("runs")
    assert await wait_for(pilot, lambda: screen.listed and all(n in screen.curves for n in screen.checked), timeout=30)
    await pilot.pause()
    return screen


async def test_g_on_a_run_loads_it_on_the_generate_screen_and_a_broken_one_says_why(tmp_path, monkeypatch):
    """A run the generate screen hasn't listed yet is found by reading the folder again: in the models
    worker, not on Textual's thread (the whole folder is read; a big one held every key meanwhile)."""
    import threading

    from tinygpt_tui.engine import folder

    read_on, list_models = [], folder.list_models

    def recording(*a, **kw):  # the real listing, its thread noted
        read_on.append(threading.current_thread() is threading.main_thread())
        return list_models(*a, **kw)

    monkeypatch.setattr(folder, "list_models", recording)
    d = runs_dir(tmp_path)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        make_model(d, "delta", seed=4, val_loss=2.0)  # trained since the generate screen listed the folder
        await pilot.press("f5")
        from textual.widgets import SelectionList

        sl = screen.query_one("#runs-list", SelectionList)
        index = lambda name: next(i for i in range(sl.option_count) if sl.get_option_at_index(i).value == name)  # noqa: E731
        assert await wait_for(pilot, lambda: any(sl.get_option_at_index(i).value == "delta" for i in range(sl.option_count)))
        sl.highlighted = index("broken")
        await pilot.press("g")
        assert await wait_for(pilot, lambda: "broken" in notes(app))
        assert app.showing() == "runs"
        sl.highlighted = index("delta")
        await pilot.press("g")
        gen = app.get_screen("generate")
        assert await wait_for(pilot, lambda: app.showing() == "generate" and gen.loaded is not None and gen.loaded.name == "delta"), notes(app)
        assert app.focused is not None and app.focused.id == "prompt"
        assert read_on and not any(read_on), read_on  # read again, and never on Textual's (the main) thread
        app.run_on("generate", "pick_named('gone')")  # (as the palette does) a name not there once read: said so
        assert await wait_for(pilot, lambda: "no model named gone" in notes(app)), notes(app)
        assert len(read_on) == 2 and not any(read_on) and gen.loaded.name == "delta"


async def test_when_every_checked_run_is_deleted_the_newest_left_is_checked_but_none_chosen_stays_none(tmp_path):
    """A newcomer's test run on another file, checked as the newest, then deleted: the screen said "0 of 3 runs
    drawn" until runs were checked by hand. Unchecking all (n) is a choice, kept across a refresh."""
    import shutil

    d = runs_dir(tmp_path)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        assert sorted(screen.checked) == ["alpha", "gamma"]
        shutil.rmtree(d / "alpha")
        shutil.rmtree(d / "gamma")
        await pilot.press("f5")
        assert await wait_for(pilot, lambda: "gamma" not in screen.summaries and screen.checked == ["beta"] and "beta" in screen.curves)
        assert screen.query_one("#runs-view").border_title.startswith("1 of 2 runs drawn")
        await pilot.press("n")
        assert await wait_for(pilot, lambda: screen.checked == [])
        make_model(d, "delta", seed=4, val_loss=2.0)
        await pilot.press("f5")
        assert await wait_for(pilot, lambda: "delta" in screen.summaries)
        await pilot.pause()
        assert screen.checked == []


@pytest.mark.parametrize("key, want", [("a", ["alpha", "beta", "gamma"]), ("n", [])])
async def test_a_or_n_pressed_before_the_list_comes_is_done_when_it_comes(tmp_path, monkeypatch, key, want):
    """F3 and a typed at once: a reached an empty list, then the listing checked its default runs (6 of 20)."""
    import threading

    from tinygpt_tui.app import runs as runs_app

    held, real = threading.Event(), runs_app.run_folders
    monkeypatch.setattr(runs_app, "run_folders", lambda d: (held.wait(30), real(d))[1])  # the listing waits for the key
    app = RecordingApp(models_dir=runs_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f3")
        screen = app.get_screen("runs")
        assert await wait_for(pilot, lambda: app.showing() == "runs" and not screen.listed)
        await pilot.press(key)
        held.set()
        assert await wait_for(pilot, lambda: screen.listed and sorted(screen.checked) == want and all(n in screen.curves for n in want))
        assert screen.query_one("#runs-view").border_title.startswith(f"{len(want)} of 4 runs drawn")


async def test_the_runs_screen_compares_the_checked_runs_and_flags_the_odd_ones(tmp_path):
    app = RecordingApp(models_dir=runs_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        from textual.widgets import DataTable, SelectionList

        sl = screen.query_one("#runs-list", SelectionList)
        assert sl.option_count == 4
        broken = next(sl.get_option_at_index(i) for i in range(4) if "broken" in str(sl.get_option_at_index(i).prompt))
        assert broken.disabled and "✗" in str(broken.prompt)
        # opened with the newest run and the others on its corpus checked, not the other corpus
        assert sorted(screen.checked) == ["alpha", "gamma"]
        chart = screen.chart
        assert len(chart.lines) == 6  # train, val estimates and the final val (whole split) of each, one colour per run
        assert {ln.colour for ln in chart.lines} == {screen.colours["alpha"], screen.colours["gamma"]}
        assert screen.colours["alpha"] != screen.colours["gamma"]
        gamma = [ln for ln in chart.lines if ln.colour == screen.colours["gamma"]]
        assert gamma[0].xs == list(range(10, 81, 10)) and gamma[1].xs == [20, 40, 60, 80]
        legend = str(screen.query_one("#runs-legend").render())
        assert "alpha" in legend and "gamma" in legend
        assert "not drawn (another corpus; Space checks): beta" in legend  # left off the chart, and said so
        assert screen.query_one("#runs-view").border_title.startswith("2 of 4 runs drawn")
        table = screen.query_one("#runs-table", DataTable)
        assert [table.get_row(k)[1] for k in table.rows] == ["gamma", "alpha"]  # ranked by validation loss
        # check everything: the run on another corpus is said to be one
        await pilot.press("a")
        assert await wait_for(pilot, lambda: "beta" in screen.curves and len(screen.chart.lines) == 9)
        assert table.row_count == 3
        beta = table.get_row("beta")
        assert "≠" in str(beta[-1]) and "other" in str(beta[-1])
        assert "another corpus" in screen.query_one("#runs-view").border_subtitle
        assert "beta ≠ other corpus" in str(screen.query_one("#runs-legend").render())  # drawn, and marked
        assert "not drawn" not in str(screen.query_one("#runs-legend").render())
        # the x axis: steps, then tokens, then minutes
        await pilot.press("x")
        assert screen.chart.xlabel == "tokens"
        assert [ln for ln in screen.chart.lines if ln.colour == screen.colours["gamma"]][0].xs == [s * 256 for s in range(10, 81, 10)]
        await pilot.press("x")
        assert screen.chart.xlabel == "minutes"
        assert [ln for ln in screen.chart.lines if ln.colour == screen.colours["gamma"]][0].xs[-1] == 80 * 0.5 / 60
        await pilot.press("n")
        assert await wait_for(pilot, lambda: not screen.chart.lines and table.row_count == 0)
        drawn = " ".join(list_lines(screen.chart))  # nothing checked: nothing to wait for
        assert "check runs in the list" in drawn and "waiting" not in drawn, drawn
        await pilot.press("space")  # the list opens with its first run highlighted: Space checks it at once
        assert screen.checked == [sl.get_option_at_index(0).value]
        assert "F3" in " ".join(f"{c.title} {c.help}" for c in app.get_system_commands(app.screen) if c.title == "Runs screen")
        assert not [n for n in app.notes if n[0] == "runs"], notes(app)


async def test_a_run_on_another_text_of_the_same_name_is_marked_as_another_corpus(tmp_path):
    """A book edited and trained on again keeps its name; its sha256 differs, and `tinygpt compare` said its
    losses don't compare while this screen opened it checked beside the others, unmarked."""
    from textual.widgets import DataTable

    d = runs_dir(tmp_path)
    make_model(d, "delta", seed=4, val_loss=2.0)  # (fixture, as alpha and gamma, by name)
    doc = json.loads((d / "delta" / "config.json").read_text(encoding="utf-8"))
    doc["corpus"]["sha256"] = "1" * 64
    (d / "delta" / "config.json").write_text(json.dumps(doc), encoding="utf-8")
    write_metrics(d / "delta")
    for f in ("metrics.jsonl", "config.json"):
        os.utime(d / "delta" / f, (1_600_000_000, 1_600_000_000))  # the oldest
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        assert sorted(screen.checked) == ["alpha", "gamma"]
        assert "not drawn (another corpus; Space checks): beta, delta" in str(screen.query_one("#runs-legend").render())
        await pilot.press("a")
        table = screen.query_one("#runs-table", DataTable)
        assert await wait_for(pilot, lambda: table.row_count == 4)
        assert "≠" in str(table.get_row("delta")[-1]) and "≠" not in str(table.get_row("alpha")[-1])
        assert "delta ≠ other corpus" in str(screen.query_one("#runs-legend").render())


async def test_runs_on_different_tokens_are_charted_and_ranked_in_bits_per_character(tmp_path):
    """A BPE run's loss is per token of several characters: ranked and drawn by loss, the run with the fewest
    bits per character came last. Its runs' tokens differing, the screen goes by bits per character."""
    from tests.conftest import make_tiny_model
    from tinygpt_tui.tokenizer import BpeTokenizer

    d = runs_dir(tmp_path)
    text = small_corpus_file(tmp_path).read_text(encoding="utf-8")
    make_tiny_model(d / "delta", text, tokenizer=BpeTokenizer.train(text[:5000], 280))
    write_metrics(d / "delta", start_loss=5.0)  # a higher loss (per token) than the character runs'
    for name, bpc in (("alpha", 4.5), ("delta", 2.0)):
        lines = (d / name / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        recs = [json.loads(ln) for ln in lines]
        (d / name / "metrics.jsonl").write_text("".join(json.dumps({**r, "bpc": bpc} if r["event"] == "eval" else r) + "\n"
                                                        for r in recs), encoding="utf-8")
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        assert sorted(screen.checked) == ["alpha", "delta", "gamma"]
        from textual.widgets import DataTable

        table = screen.query_one("#runs-table", DataTable)
        assert await wait_for(pilot, lambda: table.row_count == 3)
        assert [table.get_row(k)[1] for k in table.rows][0] == "delta"  # the fewest bits per character first
        assert "bits per character" in screen.chart.title_text
        drawn = {ln.colour: ln.ys for ln in screen.chart.lines if ln.ys}
        assert drawn == {screen.colours["alpha"]: [4.5, 4.5, 4.5], screen.colours["delta"]: [2.0, 2.0, 2.0]}
        assert "tokens differ" in screen.query_one("#runs-view").border_subtitle
        from textual.widgets import SelectionList

        screen.query_one("#runs-list", SelectionList).deselect("delta")  # characters alone: their losses compare
        assert await wait_for(pilot, lambda: screen.chart.title_text.startswith("loss") and len(screen.chart.lines) == 6)
        assert [table.get_row(k)[1] for k in table.rows] == ["gamma", "alpha"] and not screen.query_one("#runs-view").border_subtitle


async def test_a_run_still_training_is_followed_as_its_log_grows(tmp_path):
    d = runs_dir(tmp_path)
    live = make_model(d, "live", seed=4)
    write_metrics(live, steps=40, finish=False)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        assert "live" in screen.checked  # the newest
        assert screen.curves["live"].steps[-1] == 40
        write_metrics(live, steps=40, offset=40, finish=False)
        assert await wait_for(pilot, lambda: screen.curves["live"].steps[-1] == 80, timeout=10)
        line = next(ln for ln in screen.chart.lines if ln.colour == screen.colours["live"])
        assert await wait_for(pilot, lambda: next(ln for ln in screen.chart.lines if ln.colour == screen.colours["live"]).xs[-1] == 80)
        assert line is not None


async def test_twenty_runs_of_5000_steps_open_fast_and_keys_stay_quick(tmp_path):
    """The figure of docs/experiments.md, as a check with room to spare on a loaded machine."""
    d = tmp_path / "models"
    d.mkdir()
    for i in range(20):
        f = make_model(d, f"run{i:02d}", seed=i)
        write_metrics(f, steps=5000, every=1, eval_every=250, start_loss=4 + i * 0.01)
    app = TinyGPTApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        t = time.perf_counter()
        await pilot.press("f3")
        screen = app.get_screen("runs")
        assert await wait_for(pilot, lambda: screen.listed, timeout=60)
        await pilot.press("a")
        assert await wait_for(pilot, lambda: len(screen.chart.lines) == 60, timeout=60)
        await pilot.pause()
        opened = time.perf_counter() - t
        t = time.perf_counter()
        await pilot.press("x")
        await pilot.pause()
        key = time.perf_counter() - t
        assert screen.chart.xlabel == "tokens"
    assert opened < 8 and key < 2, (opened, key)  # (the figures measured on a quiet machine are in docs/experiments.md)


async def test_unchecked_runs_are_read_ahead_and_one_that_fails_is_said_when_checked(tmp_path, monkeypatch):
    """Checking a run drew it once its log was read (`a` on 20 runs of 5,000 steps: 0.3 s of a Zen 3's 0.5):
    the unchecked runs' curves are read while the user reads the screen; one that can't be read says so when
    its run is checked, not before; and read again once its log is written again."""
    from textual.widgets import SelectionList

    from tinygpt_tui.app import runs as runs_screen

    real = runs_screen.Curves

    broken = True

    def curves(folder, **kw):
        if Path(folder).name == "beta" and broken:
            raise OSError("damaged on disk")
        return real(folder, **kw)

    monkeypatch.setattr(runs_screen, "Curves", curves)
    d = runs_dir(tmp_path)
    write_metrics(make_model(d, "delta", seed=4, val_loss=2.2, corpus="other"), corpus="other")
    for f in ("metrics.jsonl", "config.json"):  # (the oldest: not among the runs checked at first)
        os.utime(d / "delta" / f, (1_600_000_000, 1_600_000_000))
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        assert "delta" not in screen.checked and "beta" not in screen.checked
        assert await wait_for(pilot, lambda: "delta" in screen.curves)  # read, not checked
        await pilot.pause()
        assert "beta" not in notes(app)
        screen.query_one("#runs-list", SelectionList).select("beta")
        assert await wait_for(pilot, lambda: "beta: OSError: damaged on disk" in notes(app)), notes(app)
        await pilot.press("x")  # (a redraw: not read, nor said, again)
        await pilot.pause()
        assert notes(app).count("damaged on disk") == 1, notes(app)
        broken = False  # mended, and written since: read again when the folder is listed again
        os.utime(d / "beta" / "metrics.jsonl", (1_800_000_000, 1_800_000_000))
        await pilot.press("f5")
        assert await wait_for(pilot, lambda: "beta" in screen.curves and len(screen.curves["beta"].steps) == 6), notes(app)


async def test_a_huge_log_is_not_read_ahead_and_a_run_checked_meanwhile_is_drawn_alone(tmp_path, monkeypatch):
    """60 unchecked runs of 45 MB logs were read ahead 34 in one go: for 13 s keys waited 0.1-0.4 s on the reading
    thread, and a run checked meanwhile was drawn when all 34 were read (12 s, where reading it alone took 0.6 s).
    A log over AHEAD_BYTES is read only once its run is checked; the others one at a time."""
    from textual.widgets import SelectionList

    from tinygpt_tui.app import runs as runs_screen

    monkeypatch.setattr(runs_screen, "AHEAD_BYTES", 50_000)
    d = runs_dir(tmp_path)
    write_metrics(make_model(d, "aaa", seed=4, val_loss=2.2, corpus="other"), steps=2000, every=1, corpus="other")  # (~0.4 MB)
    for f in ("metrics.jsonl", "config.json"):  # (the oldest, on another corpus: not among the runs checked at first)
        os.utime(d / "aaa" / f, (1_600_000_000, 1_600_000_000))
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        assert "aaa" not in screen.checked and "beta" not in screen.checked
        assert await wait_for(pilot, lambda: "beta" in screen.curves and not screen.loading)  # (listed after aaa: read ahead)
        assert "aaa" not in screen.curves
        screen.query_one("#runs-list", SelectionList).select("aaa")
        assert await wait_for(pilot, lambda: "aaa" in screen.curves and len(screen.curves["aaa"].steps) > 100)
        assert not [n for n in notes(app) if "aaa" in n], notes(app)


async def test_the_training_chart_shows_the_shipped_curve_the_stage_and_overfitting(tmp_path):
    """A followed Tiny Shakespeare run: the shipped model's validation curve up to the run's last step, the
    stage its validation loss has reached, and, once validation rises while training falls, a warning."""
    from tests.test_app import follow, write_run

    from tinygpt_tui.engine.runs import STAGES

    d = make_models_dir(tmp_path)
    recs = [{"event": "start", "step": 0, "max_steps": 900, "params": 1000, "corpus": "tinyshakespeare", "tokens_per_step": 256}]
    vals = {150: 2.6, 300: 2.3, 450: 1.95}
    for s, v in vals.items():
        recs += [{"event": "step", "step": s, "loss": v - 0.05, "elapsed_s": s / 10, "progress": s / 900},
                 {"event": "eval", "step": s, "train_loss": v - 0.05, "val_loss": v, "best_val_loss": min(vals.values())}]
    write_run(d / "run", recs)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        ts = await follow(pilot, app, "run")
        assert await wait_for(pilot, lambda: ts.chart.points == 6)
        ref = next(ln for ln in ts.chart.lines if ln.label and "shipped" in ln.label)
        assert ref.label.startswith("shakespeare") and ref.xs and max(ref.xs) <= 900 and min(ref.ys) > 1.0
        note = ts.query_one("#run-note")
        words = dict((round(loss, 1), label) for loss, label in STAGES["tinyshakespeare"])[2.0]
        assert note.display and f"≈2.0: {words}" in str(note.render())
        assert "overfitting" not in str(note.render())
        # validation climbs three evaluations running while the training loss goes on down
        later = []
        for i, s in enumerate((600, 750, 900)):
            later += [{"event": "step", "step": s, "loss": 1.7 - 0.1 * i, "elapsed_s": s / 10, "progress": s / 900},
                      {"event": "eval", "step": s, "train_loss": 1.7 - 0.1 * i, "val_loss": 2.1 + 0.1 * i, "best_val_loss": 1.95}]
        write_run(d / "run", later)
        assert await wait_for(pilot, lambda: "overfitting" in str(note.render()), timeout=15)
        # said once: "validation rising while training falls: overfitting: validation loss rose ... while training
        # loss fell ..." said it twice, in 7 of an 80x24 screen's lines, the chart squeezed out below them
        assert str(note.render()).splitlines()[-1].startswith("overfitting: validation loss rose from its best 1.950")




@pytest.mark.parametrize("size,steps", [((120, 40), 300), ((80, 24), 300), ((120, 40), 200)])
async def test_a_short_run_s_reference_is_drawn_as_far_as_its_chart_and_said_where_it_starts(tmp_path, size, steps):
    """The shipped model's first evaluation is at step 200: following a 300-step run, its curve was one dot
    at step 200 while the legend named a curve. It is drawn on to the chart's right edge, and the legend says
    it starts at step 200 (in the width it has, at 80x24 too); a lone evaluation is a • said to be a point."""
    from tests.test_app import follow, write_run

    from tinygpt_tui.app.progress import REFERENCE_COLOUR

    d = make_models_dir(tmp_path)
    recs = [{"event": "start", "step": 0, "max_steps": steps, "params": 1000, "corpus": "tinyshakespeare", "tokens_per_step": 256}]
    for s in range(50, steps + 1, 50):
        recs += [{"event": "step", "step": s, "loss": 3.0 - s / 500, "elapsed_s": s / 10, "progress": s / steps},
                 {"event": "eval", "step": s, "train_loss": 3.0 - s / 500, "val_loss": 3.1 - s / 500, "best_val_loss": 3.1 - s / 500}]
    write_run(d / "short", recs)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=size) as pilot:
        ts = await follow(pilot, app, "short")
        assert await wait_for(pilot, lambda: ts.chart.points == 2 * steps // 50)
        await pilot.pause()
        ref = next(ln for ln in ts.chart.lines if ln.label and "shipped" in ln.label)
        text = ts.chart.render().plain
        grey = sum(len(t.strip()) for row in ts.chart.drawn() for t, style in row  # (cells drawn in its colour, not its legend's ━━)
                   if style == f"color({REFERENCE_COLOUR})" and t.strip() not in ("━━", "••"))
        if steps == 200:  # its one evaluation inside the chart: a point, and said to be one
            assert (list(ref.xs), ref.marker) == ([200], "dot") and "val at step 200" in text and grey == 1, (grey, text)
            return
        assert ref.xs[0] == 200 and ref.xs[-1] == steps and ref.marker == "braille", ref.xs
        assert "from step 200" in text, text
        assert grey >= ts.chart.size.width // 6, (grey, text)  # a line a third of the chart wide, not a dot


# ------------------------------------------------------------------ the experiment screen (F4)
@pytest.fixture
def one_thread():
    """Tiny models train fastest on one thread (two, on a busy two-core machine, wait on each other)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY_SET = "n_embd=32 block_size=32 batch_size=8 eval_interval=10 eval_iters=2 sample_chars=16"


async def experiment_screen(pilot, app, **values):
    from textual.widgets import Input

    await pilot.press("f4")
    await pilot.pause()
    screen = app.get_screen("experiment")
    for wid, v in values.items():
        screen.query_one(f"#exp-{wid}", Input).value = str(v)
    return screen


async def grid_with_samples(pilot, app, tmp_path, name: str, vary1: str, steps: int):
    """A tiny grid (TINY_SET, `vary1`) on the experiment screen, started, finished and its samples shown: (screen, job)."""
    screen = await experiment_screen(pilot, app, name=name, corpus=small_corpus_file(tmp_path), steps=steps, vary1=vary1, set=TINY_SET)
    await pilot.press("ctrl+s")
    job = app.experiment
    assert await wait_for(pilot, lambda: not job.active, timeout=180), notes(app)
    assert job.state == "finished", job.error
    assert await wait_for(pilot, lambda: len(screen.query(".exp-sample")) == len(job.members))
    await pilot.pause()
    return screen, job


@contextlib.asynccontextmanager
async def experiment_filled(tmp_path, name: str, steps: int, size=(120, 40)):
    """The app on the experiment screen, its form filled with a grid of two tiny members (n_layer 1 and 2,
    `steps` each): (pilot, app, screen)."""
    d = make_models_dir(tmp_path)
    corpus = small_corpus_file(tmp_path)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=size) as pilot:
        screen = await experiment_screen(pilot, app, name=name, corpus=corpus, steps=steps, vary1="n_layer=1,2", set=TINY_SET)
        yield pilot, app, screen


@contextlib.asynccontextmanager
async def experiment_started(tmp_path, name: str, steps: int, size=(120, 40)):
    """That grid (experiment_filled) just started: (pilot, app, job)."""
    async with experiment_filled(tmp_path, name, steps, size) as (pilot, app, screen):
        await pilot.press("ctrl+s")
        assert app.experiment is not None and app.experiment.name == name
        yield pilot, app, app.experiment


@contextlib.asynccontextmanager
async def estimate_shown(tmp_path, name: str, size=(120, 40)):
    """That grid (5 steps a member) in the form, Enter pressed in its name: its estimate is worked out.
    (pilot, app, screen, the estimate's widget) once it reads "about"."""
    from textual.widgets import Input

    async with experiment_filled(tmp_path, name, 5, size) as (pilot, app, screen):
        estimate = screen.query_one("#exp-estimate")
        screen.query_one("#exp-name", Input).focus()
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: "about" in str(estimate.render()), timeout=60), str(estimate.render())
        yield pilot, app, screen, estimate


def test_a_training_run_and_an_experiment_stop_alike(tmp_path):
    """Both are a Job the app owns: Stop sets the event the thread watches and says stopping; once ended,
    Stop does nothing."""
    from tinygpt_tui.app.jobs import ExperimentJob
    from tinygpt_tui.app.jobs import Job, TrainingJob
    from tinygpt_tui.engine.experiment import Spec, make_plan
    from tinygpt_tui.engine.presets import TrainConfig

    corpus = small_corpus_file(tmp_path)
    plan = make_plan(Spec(name="grid", corpus=str(corpus), max_steps=10, vary={"n_layer": [1, 2]}), tmp_path / "models")
    for job, ended in ((TrainingJob(TrainConfig(corpus=str(corpus), name="mine")), "stopped"), (ExperimentJob(plan), "stopped")):
        assert isinstance(job, Job) and job.active and job.state == "starting" and not job.stop_event.is_set()
        job.stop()
        assert job.stop_event.is_set() and job.state == "stopping" and job.active
        job.ended(ended, "")
        assert not job.active and job.state == ended
        job.stop()
        assert job.state == ended


async def test_an_experiment_runs_in_the_app_ranks_its_members_and_shows_samples(tmp_path, one_thread):
    from textual.widgets import DataTable

    async with experiment_started(tmp_path, "grid", steps=20) as (pilot, app, job):
        screen = app.get_screen("experiment")
        assert job is not None and [m.name for m in job.plan.members] == ["n_layer=1", "n_layer=2"]
        # it belongs to the app: it goes on while another screen is shown
        await pilot.press("f3")
        assert await wait_for(pilot, lambda: job.members["n_layer=1"] == "finished", timeout=120), notes(app)
        await pilot.press("f4")
        assert await wait_for(pilot, lambda: not job.active, timeout=120), notes(app)
        assert job.state == "finished", job.error
        assert job.members == {"n_layer=1": "finished", "n_layer=2": "finished"}
        assert [e.step for e in job.curves["n_layer=2"].evals] == [10, 20]
        assert await wait_for(pilot, lambda: screen.query_one("#exp-table", DataTable).row_count == 2)
        rows = job.rows
        assert rows[0].val_loss <= rows[1].val_loss and all(r.status == "finished" for r in rows)
        table = screen.query_one("#exp-table", DataTable)
        assert [str(table.get_row_at(i)[1]) for i in range(2)] == [r.group for r in rows]
        assert len(screen.chart.lines) == 6  # each member's training and validation curves and final val (a grid of 2)
        # the samples, side by side, same prompt and seed
        assert [n for n, _ in job.samples] == ["n_layer=1", "n_layer=2"] and all(len(t) >= 200 for _, t in job.samples)
        assert await wait_for(pilot, lambda: screen.query_one("#exp-switch").current == "exp-samples")
        assert len(screen.query(".exp-sample")) == 2
        await pilot.press("f7")
        assert screen.query_one("#exp-switch").current == "exp-chart"
        # the x axis: the budget's (steps), then tokens, minutes, steps again (F6, as x on the runs screen)
        assert screen.chart.xlabel == "step"
        await pilot.press("f6")
        assert screen.chart.xlabel == "tokens"
        tokens = job.curves["n_layer=2"].tokens_per_step
        val = [ln for ln in screen.chart.lines if ln.marker == "dot"]  # (the evaluations; training's are braille)
        assert tokens > 0 and sorted(x for ln in val for x in ln.xs) == sorted([10 * tokens, 20 * tokens] * 2)
        await pilot.press("f6")
        assert screen.chart.xlabel == "minutes" and all(0 < x < 5 for ln in screen.chart.lines for x in ln.xs)
        await pilot.press("f6")
        assert screen.chart.xlabel == "step"
        assert "grid/n_layer=1" in [s.name for s in __import__("tinygpt_tui.engine.runs", fromlist=["x"]).list_runs(app.models_dir)]
        # start again: nothing left to run, both kept as they are
        await pilot.press("ctrl+s")
        again = app.experiment
        assert again is not job and again.resume
        assert await wait_for(pilot, lambda: not again.active, timeout=60), notes(app)
        assert again.members == {"n_layer=1": "kept", "n_layer=2": "kept"} and again.state == "finished"
        # Enter on a member's row: its model on the generate screen
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("enter")
        gen = app.get_screen("generate")
        want = f"grid/{rows[1].group}"
        assert await wait_for(pilot, lambda: app.showing() == "generate" and gen.loaded is not None
                              and gen.loaded.path == app.models_dir / want, timeout=30), notes(app)


async def test_the_runs_and_experiment_screens_actions_are_in_the_palette(tmp_path):
    """The palette had the generate and training screens' actions only: on the experiment screen, "start"
    found Start training, which went to another screen. Each screen's own are offered on it."""
    app = RecordingApp(models_dir=runs_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        commands = lambda: {c.title: c for c in app.get_system_commands(app.screen)}  # noqa: E731
        assert "Start experiment" not in commands() and "Check all runs" not in commands()  # (the generate screen)
        exp = await experiment_screen(pilot, app)
        assert {"Start experiment", "Stop experiment", "Experiment x axis", "Experiment samples", "Start training"} <= set(commands())
        commands()["Start experiment"].callback()  # (as the palette does)
        assert await wait_for(pilot, lambda: "give the experiment a name" in str(exp.query_one("#exp-error").render())), notes(app)
        assert app.screen is exp and app.experiment is None and app.training is None
        runs = await runs_shown(pilot, app)
        assert {"Check all runs", "Check no runs", "Runs x axis", "Generate with the highlighted run"} <= set(commands())
        commands()["Check all runs"].callback()
        assert await wait_for(pilot, lambda: set(runs.checked) == {"alpha", "beta", "gamma"}), runs.checked  # (beta: not at first)


async def test_f7_before_there_are_samples_keeps_the_chart_and_says_when_they_come(tmp_path):
    """F7 (Samples) before an experiment has finished swapped the chart for an empty pane."""
    app = RecordingApp(models_dir=make_models_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await experiment_screen(pilot, app)
        await pilot.press("f7")
        await pilot.pause()
        assert screen.query_one("#exp-switch").current == "exp-chart"
        assert "when the experiment finishes" in notes(app)


async def test_the_samples_of_a_grid_are_told_apart_in_a_narrow_terminal(tmp_path, one_thread):
    """Side by side at 80 columns, each sample box's title was cut to the same "n_layer…", then shortened to a
    bare "1", "2", "3" that read as the ranked table's ranks; now each box's title is whole."""
    from textual.geometry import Region

    d = make_models_dir(tmp_path)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, job = await grid_with_samples(pilot, app, tmp_path, "three", "n_layer=1,2,3", steps=5)
        boxes = list(screen.query(".exp-sample"))
        tops = ["".join(seg.text for seg in b.render_lines(Region(0, 0, b.outer_size.width, 1))[0]) for b in boxes]
        assert [t.strip("╭─╮ ") for t in tops] == ["n_layer=1", "n_layer=2", "n_layer=3"], tops
        assert [str(b.tooltip) for b in boxes] == ["n_layer=1", "n_layer=2", "n_layer=3"]


def test_short_names_keep_what_tells_grid_members_apart():
    from tinygpt_tui.engine.experiment import short_names

    assert short_names(["pos_encoding=rope", "pos_encoding=alibi"]) == ["rope", "alibi"]
    assert short_names(["n_layer=2,n_embd=64", "n_layer=4,n_embd=64"]) == ["n_layer=2,n_embd=64", "n_layer=4,n_embd=64"]
    assert short_names(["pos_encoding=rope,n_layer=1", "pos_encoding=none,n_layer=2"]) == ["rope,n_layer=1", "none,n_layer=2"]
    assert short_names(["tie_weights=true", "tie_weights=false"]) == ["tie_weights=true", "tie_weights=false"]  # (a bare "2" read as a rank)
    assert short_names(["small", "n_layer=4"]) == ["small", "n_layer=4"]  # (members named by hand: as they are)
    assert short_names(["n_layer=2", "n_embd=64"]) == ["n_layer=2", "n_embd=64"]


async def test_members_on_different_tokens_are_charted_in_bits_per_character(tmp_path, one_thread):
    d = make_models_dir(tmp_path)
    corpus = small_corpus_file(tmp_path)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await experiment_screen(pilot, app, name="tok", corpus=corpus, steps=20, vary1="vocab_size=256,300",
                                         set=TINY_SET + " tokenizer=bpe")
        await pilot.press("ctrl+s")
        job = app.experiment
        assert await wait_for(pilot, lambda: not job.active, timeout=120), notes(app)
        assert job.state == "finished", job.error
        await pilot.press("f7")  # (the samples were shown): the chart
        assert await wait_for(pilot, lambda: len(screen.chart.lines) == 4)  # (validation bits/char and the final's, of each)
        assert "bits per character" in screen.chart.title_text
        assert "tokens differ" in screen.query_one("#exp-legend").laid.plain  # (the why: the title has no room at 80 columns)
        want = sorted([e.bpc for c in job.curves.values() for e in c.evals] + [c.final.bpc for c in job.curves.values()])
        assert None not in want and sorted(y for ln in screen.chart.lines for y in ln.ys) == pytest.approx(want)


@pytest.mark.slow
async def test_stopping_an_experiment_keeps_what_finished_and_start_resumes_it(tmp_path, one_thread):
    # enough steps that Ctrl+O lands inside the second member however fast the machine is
    async with experiment_started(tmp_path, "halt", steps=400) as (pilot, app, job):
        # the second member under way: stop it
        assert await wait_for(pilot, lambda: job.running == "n_layer=2" and job.curves["n_layer=2"].steps, timeout=120), notes(app)
        # its row in the table says so (the rows are read as members end: it said queued, and stopped once resumed)
        table = app.get_screen("experiment").query_one("#exp-table")
        status = lambda: {str(table.get_row_at(i)[1]): str(table.get_row_at(i)[7]) for i in range(table.row_count)}  # noqa: E731
        assert await wait_for(pilot, lambda: status() == {"n_layer=1": "finished", "n_layer=2": "running"}), status()
        await pilot.press("ctrl+o")
        assert await wait_for(pilot, lambda: not job.active, timeout=60), notes(app)
        assert job.state == "stopped" and job.members == {"n_layer=1": "finished", "n_layer=2": "stopped"}
        title = app.get_screen("experiment").query_one("#exp-title")
        assert await wait_for(pilot, lambda: "Start resumes it" in str(title.render()))
        await pilot.press("ctrl+s")
        again = app.experiment
        assert again.resume and again.members["n_layer=1"] in ("finished", "kept")  # (from its manifest, then kept)
        assert await wait_for(pilot, lambda: not again.active, timeout=120), notes(app)
        assert again.members == {"n_layer=1": "kept", "n_layer=2": "finished"}, again.error
        assert again.curves["n_layer=2"].steps[-1] == 400


async def test_quitting_while_an_experiment_runs_asks_then_saves_the_member(tmp_path, one_thread):
    from tinygpt_tui.app.app import Confirm
    from tinygpt_tui.engine.experiment import member_states

    async with experiment_started(tmp_path, "quit", steps=100000) as (pilot, app, job):
        assert await wait_for(pilot, lambda: job.running and len(job.curves[job.running].steps) >= 2, timeout=120), notes(app)
        await pilot.press("ctrl+q")
        assert await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        assert await wait_for(pilot, lambda: not job.active, timeout=120)
    assert job.state == "stopped" and job.members == {"n_layer=1": "stopped", "n_layer=2": "queued"}
    assert member_states(job.plan)["n_layer=1"]["state"] == "stopped"
    assert (job.plan.folder / "n_layer=1" / "model.safetensors").exists()  # saved where it stopped: Start resumes it


async def test_an_impossible_grid_is_refused_before_anything_runs(tmp_path, monkeypatch):
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    monkeypatch.setenv("TINYGPT_CORPORA_DIR", str(corpora))
    d = make_models_dir(tmp_path)
    corpus = small_corpus_file(tmp_path)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await experiment_screen(pilot, app, name="bad", corpus=corpus, steps=20, vary1="n_embd=32,30", set="n_head=4")
        await pilot.press("ctrl+s")
        error = str(screen.query_one("#exp-error").render())
        assert "member n_embd=30" in error and app.experiment is None
        await experiment_screen(pilot, app, vary1="colour=red,blue", set="")
        await pilot.press("ctrl+s")
        error = str(screen.query_one("#exp-error").render())
        assert "unknown setting 'colour'" in error and "n_layer" in error and app.experiment is None
        assert not (d / "bad").exists()
        # a shipped lesson fills the form and shows its text; a corpus not fetched is said so
        from tinygpt_tui.engine.lessons import list_lessons

        lesson = list_lessons()[0]
        screen.query_one("#exp-lesson").value = lesson.name
        assert await wait_for(pilot, lambda: screen.query_one("#exp-name").value == lesson.spec.name)
        assert screen.query_one("#exp-vary1").disabled
        assert lesson.spec.title in str(screen.query_one("#exp-text").render()) and screen.query_one("#exp-text-box").display
        assert await wait_for(pilot, lambda: "not fetched" in str(screen.query_one("#exp-error").render()))
        assert "F4" in " ".join(c.help for c in app.get_system_commands(app.screen) if c.title == "Experiment screen")


async def test_the_estimate_and_start_read_the_form_alike(tmp_path, monkeypatch):
    """Enter (the estimate) and Ctrl+S (start) show the form's error the same way, and clear it once it is mended."""
    d = make_models_dir(tmp_path)
    corpus = small_corpus_file(tmp_path)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await experiment_screen(pilot, app, name="bad", corpus=corpus, steps=20, vary1="n_embd=32,30", set="n_head=4")
        error = lambda: str(screen.query_one("#exp-error").render())  # noqa: E731
        screen.query_one("#exp-vary1").focus()
        await pilot.press("enter")
        assert "member n_embd=30" in error() and "timing" not in str(screen.query_one("#exp-estimate").render())
        await experiment_screen(pilot, app, vary1="n_layer=1,2", set=TINY_SET)
        screen.query_one("#exp-vary1").focus()
        await pilot.press("enter")
        assert error() == "" and "2 runs" in str(screen.query_one("#exp-estimate").render())
        assert await wait_for(pilot, lambda: "about" in str(screen.query_one("#exp-estimate").render()), timeout=60)
        await experiment_screen(pilot, app, vary1="n_embd=32,30", set="n_head=4")
        await pilot.press("ctrl+s")
        assert "member n_embd=30" in error() and app.experiment is None
        assert not (d / "bad").exists()


async def test_the_runs_bench_times_the_screen_it_opens(tmp_path):
    """bench/bench_runs_app's timings start from one helper: F3, then the folder listed."""
    from bench.bench_runs_app import empty_screen, make_runs, runs_listed

    d = make_models_dir(tmp_path)
    make_runs(d, 2, 500)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_listed(pilot)
        assert screen is app.screen and screen.listed and {"run00", "run01"} <= set(screen.summaries)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert 0 < await empty_screen(empty) < 60


# ------------------------------------------------------------------ snapshots (pytest-textual-snapshot)
def runs_app(tmp_path, monkeypatch):
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    monkeypatch.setenv("TINYGPT_CORPORA_DIR", str(corpora))
    return TinyGPTApp(models_dir=runs_dir(tmp_path), watch_models=False)


async def all_runs_drawn(pilot):
    await pilot.press("f3")
    screen = pilot.app.get_screen("runs")
    assert await wait_for(pilot, lambda: screen.listed)
    await pilot.press("a")
    assert await wait_for(pilot, lambda: len(screen.chart.lines) == 9)
    await pilot.pause()


def test_runs_screen(tmp_path, monkeypatch, snap_compare):
    assert snap_compare(runs_app(tmp_path, monkeypatch), terminal_size=(120, 40), run_before=all_runs_drawn)


def test_runs_screen_small_terminal(tmp_path, monkeypatch, snap_compare):
    assert snap_compare(runs_app(tmp_path, monkeypatch), terminal_size=(80, 24), run_before=all_runs_drawn)


async def experiment_form(pilot):
    await pilot.press("f4")
    await pilot.pause()


def test_experiment_screen(tmp_path, monkeypatch, snap_compare):
    assert snap_compare(runs_app(tmp_path, monkeypatch), terminal_size=(120, 40), run_before=experiment_form)


def test_experiment_screen_small_terminal(tmp_path, monkeypatch, snap_compare):
    assert snap_compare(runs_app(tmp_path, monkeypatch), terminal_size=(80, 24), run_before=experiment_form)


def two_member_plan(tmp_path):
    """A models folder, a corpus and an experiment "done" of two members (1 and 2 layers) of 5 steps, planned."""
    from tinygpt_tui.engine import experiment as E

    d = make_models_dir(tmp_path)
    corpus = small_corpus_file(tmp_path)
    settings = dict(n_embd=32, n_head=2, block_size=32, batch_size=8, eval_interval=5, eval_iters=1, sample_chars=0)
    return d, corpus, E.make_plan(E.Spec(name="done", corpus=str(corpus), max_steps=5, vary={"n_layer": [1, 2]}, settings=settings, threads=1), d)


async def test_the_estimate_of_an_experiment_to_resume_counts_only_what_is_left(tmp_path, one_thread):
    """Picking an experiment that ran before (a lesson run from the command line, say): the estimate is of
    the members left, and one whose members all finished says Start shows the results, not minutes of work."""
    import threading

    from textual.widgets import Input

    from tinygpt_tui.engine import experiment as E

    d, corpus, plan = two_member_plan(tmp_path)
    stop = threading.Event()
    for ev in E.run(plan, stop):  # the first member finishes, then it stops
        if isinstance(ev, E.MemberEnded):
            stop.set()
    assert {k: v["state"] for k, v in E.member_states(plan).items()} == {"n_layer=1": "finished", "n_layer=2": "queued"}
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await experiment_screen(pilot, app, name="done", corpus=corpus, steps=5)
        estimate = screen.query_one("#exp-estimate")
        screen.query_one("#exp-name", Input).focus()
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: "about" in str(estimate.render()), timeout=60), str(estimate.render())
        assert "1 of 2 runs left" in str(estimate.render())
        list(E.run(plan, resume=True))  # now both finished
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: "all 2 runs finished" in str(estimate.render()), timeout=60), str(estimate.render())
        assert "their results" in str(estimate.render())
        # shown without Start: the table ranks both members, the experiment finished with nothing trained
        assert await wait_for(pilot, lambda: screen.query_one("#exp-table").row_count == 2, timeout=60), notes(app)
        assert await wait_for(pilot, lambda: app.experiment is not None and app.experiment.state == "finished", timeout=60)
        assert app.experiment.members == {"n_layer=1": "kept", "n_layer=2": "kept"}


async def test_enter_while_a_finished_experiment_s_results_are_read_says_they_are_all_finished(tmp_path, one_thread, monkeypatch):
    """Its results being read (nothing trains), a second Enter said "the estimate waits for the run under way" and
    stayed so (an estimate due after typing could start that reading behind the test's back: it failed 1 run in 3)."""
    import threading

    from textual.widgets import Input

    from tinygpt_tui.engine import experiment as E

    d, corpus, plan = two_member_plan(tmp_path)
    list(E.run(plan))
    held, samples = threading.Event(), E.samples
    monkeypatch.setattr(E, "samples", lambda *a, **kw: (held.wait(30), samples(*a, **kw))[1])  # the reading holds here
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await experiment_screen(pilot, app, name="done", corpus=corpus, steps=5)
        estimate = screen.query_one("#exp-estimate")
        screen.query_one("#exp-name", Input).focus()
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: app.experiment is not None and app.experiment.active, timeout=60), str(estimate.render())
        screen.show_estimate("")
        await pilot.press("enter")  # while its results are read
        assert await wait_for(pilot, lambda: "all 2 runs finished" in str(estimate.render()), timeout=60), str(estimate.render())
        held.set()
        assert await wait_for(pilot, lambda: not app.experiment.active and screen.query_one("#exp-table").row_count == 2, timeout=60)


async def test_the_experiment_chart_s_legend_says_which_member_overfitted(tmp_path, one_thread):
    from tinygpt_tui.engine import experiment as E

    d = make_models_dir(tmp_path)
    corpus = small_corpus_file(tmp_path)
    settings = dict(n_embd=32, n_head=2, block_size=32, batch_size=8, eval_interval=5, eval_iters=1, sample_chars=0)
    plan = E.make_plan(E.Spec(name="over", corpus=str(corpus), max_steps=5, vary={"n_layer": [1, 2]}, settings=settings, threads=1), d)
    list(E.run(plan))
    with open(plan.folder / "n_layer=2" / "metrics.jsonl", "a", encoding="utf-8") as f:  # later evaluations: memorising
        for i, (train, val) in enumerate([(1.0, 1.5), (0.8, 1.9), (0.6, 2.0), (0.4, 2.1)]):
            f.write(json.dumps({"event": "eval", "step": 100 + 10 * i, "train_loss": train, "val_loss": val, "elapsed_s": 10.0 + i}) + "\n")
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await experiment_screen(pilot, app, name="over", corpus=corpus, steps=5)
        await pilot.press("ctrl+s")  # every member finished: kept, and shown
        job = app.experiment
        assert await wait_for(pilot, lambda: not job.active, timeout=120), notes(app)
        legend = screen.query_one("#exp-legend")
        assert await wait_for(pilot, lambda: "n_layer=2  overfitting" in str(legend.render())), str(legend.render())
        assert "n_layer=1  overfitting" not in str(legend.render())


async def test_the_experiment_estimate_shows_in_an_80_by_24_terminal(tmp_path, one_thread):
    """How long the experiment will take is said before it starts, in the smallest terminal too."""
    async with estimate_shown(tmp_path, "small", size=(80, 24)) as (pilot, app, screen, estimate):
        await pilot.pause()
        assert estimate.display and estimate.region.height >= 1 and screen.query_one("#exp-form").region.contains_region(estimate.region)


async def test_an_experiment_is_not_resumed_on_another_corpus_from_the_form(tmp_path, one_thread):
    """The form names an experiment that ran on another text: refused, not its old results shown as this one's."""
    from tinygpt_tui.engine import experiment as E

    d = make_models_dir(tmp_path)
    corpus = small_corpus_file(tmp_path)
    settings = dict(n_embd=32, n_head=2, block_size=32, batch_size=8, eval_interval=5, eval_iters=1, sample_chars=0)
    list(E.run(E.make_plan(E.Spec(name="ran", corpus=str(corpus), max_steps=5, vary={"n_layer": [1, 2]}, settings=settings,
                                  threads=1), d)))
    other = tmp_path / "other.txt"
    other.write_text(corpus.read_text()[::-1])
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await experiment_screen(pilot, app, name="ran", corpus=other, steps=5, vary1="n_layer=1,2", set=TINY_SET)
        await pilot.press("ctrl+s")
        error = str(screen.query_one("#exp-error").render())
        assert "was run on" in error and "not other.txt" in error and app.experiment is None


async def test_the_runs_list_tells_a_lessons_members_apart_at_80_columns(tmp_path):
    """Cut at their end, lesson-positions-10steps/pos_encoding=alibi and =learned both read
    'lesson-positions-10step…' in the list: it keeps the end of a long name."""
    from textual.widgets import SelectionList

    d = tmp_path / "models"
    names = ["lesson-positions-10steps-pos_encoding=alibi", "lesson-positions-10steps-pos_encoding=learned"]
    for n in names + [f"run{i}" for i in range(20)]:  # more runs than rows: the list has a scrollbar too
        make_model(d, n)
        write_metrics(d / n)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_shown(pilot, app)
        sl = screen.query_one("#runs-list", SelectionList)
        lines = ["".join(seg.text for seg in sl.render_line(y)) for y in range(sl.size.height)]
        assert any("=alibi" in ln for ln in lines) and any("=learned" in ln for ln in lines), lines


def list_lines(sl) -> list[str]:
    return ["".join(seg.text for seg in sl.render_line(y)) for y in range(sl.size.height)]


@pytest.mark.parametrize("size", [(60, 20), (80, 24), (120, 40)])
async def test_an_experiment_s_members_are_told_apart_in_the_runs_list(tmp_path, size):
    """At 60x20 the list is 21 columns wide: cut at 17 characters, then at its edge, the members of
    lesson-positions-10steps read 'les…ncoding=…' and 'les…oding=le…'. Cut to the room the list has, each
    keeps its end; the list follows the terminal when it is resized."""
    from textual.widgets import SelectionList

    d = tmp_path / "models"
    exp = d / "lesson-positions-10steps"
    members = ("pos_encoding=alibi", "pos_encoding=learned", "pos_encoding=rope")
    for m in members:
        make_model(exp, m)
        write_metrics(exp / m)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=size) as pilot:
        screen = await runs_shown(pilot, app)
        sl = screen.query_one("#runs-list", SelectionList)
        assert sl.option_count == 3
        lines = list_lines(sl)
        for end in ("=alibi", "=learned", "=rope"):
            assert sum(end in ln for ln in lines) == 1, (end, lines)
        assert all(ln.count("les") == 1 for ln in lines[:3]), lines  # (the experiment's name begins each)
        if size != (60, 20):
            await pilot.resize_terminal(60, 20)
            assert await wait_for(pilot, lambda: all(any(end in ln for ln in list_lines(sl)) for end in ("=alibi", "=learned", "=rope"))), \
                list_lines(sl)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_a_grid_s_members_with_seeds_are_told_apart_in_the_list_and_the_table(tmp_path, size):
    """`tinygpt experiment d1 --vary pos=learned,rope --seeds 2` names its members pos_encoding=learned,seed=1337
    and so on: they differ in the middle, and cut there the list read 'd1/…seed=1337' for learned and rope
    alike, the table 'd1/…eed=1338' twice. What they share at the start goes instead."""
    from textual.widgets import DataTable, SelectionList

    d = tmp_path / "models"
    members = [f"pos_encoding={p},seed={s}" for p in ("learned", "rope") for s in (1337, 1338)]
    for i, m in enumerate(members):
        make_model(d / "d1", m, val_loss=2.5 + i / 50)
        write_metrics(d / "d1" / m)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=size) as pilot:
        screen = await runs_shown(pilot, app)
        sl = screen.query_one("#runs-list", SelectionList)
        names = [ln.split("▌", 1)[1].split()[0] for ln in list_lines(sl)[:4]]
        assert len(set(names)) == 4 and all(("lea" in n) != ("rop" in n) for n in names), names
        table = screen.query_one("#runs-table", DataTable)
        assert await wait_for(pilot, lambda: table.row_count == 4)
        cells = [str(table.get_row_at(i)[1]) for i in range(4)]
        assert len(set(cells)) == 4 and all(("lea" in c) != ("rop" in c) for c in cells), cells


def test_names_that_differ_in_the_middle_are_cut_apart():
    """A lesson run at two budgets (lesson-depth-40steps/1 layer, lesson-depth-60steps/1 layer) read
    'les…ps/1 layer' twice in the list; a grid varying a number, 'g/…=64,seed=1' for each member."""
    from tinygpt_tui.app.runs import short_name

    for names in (["lesson-depth-40steps/1 layer", "lesson-depth-60steps/1 layer"],
                  ["g/n_layer=1,n_embd=64,seed=1", "g/n_layer=2,n_embd=64,seed=1"],
                  ["d1/pos_encoding=learned,seed=1337", "d1/pos_encoding=rope,seed=1337"]):
        for most in (8, 12, 13, 16, 20):
            cut = [short_name(n, most, names) for n in names]
            assert len(set(cut)) == 2 and all(len(c) <= most for c in cut), (most, cut)
    lesson = [f"lesson-positions-10steps/pos_encoding={p}" for p in ("alibi", "learned")]
    assert [short_name(n, 17, lesson) for n in lesson] == ["les…ncoding=alibi", "les…oding=learned"]  # (ends apart: as before)


@pytest.mark.parametrize("size,more", [((80, 24), 0), ((120, 40), 0), ((80, 24), 30)])
async def test_the_runs_list_keeps_each_run_s_val_loss_whole_beside_its_name(tmp_path, size, more):
    """At 80x24 the list cut the figures, not the names: 'les…ncoding=alibi  …', 'a-run-of-my-own  val 3.…'.
    Each line keeps its run's val loss whole (after "val" where that fits: at 120 columns) and the end of its
    name, which is cut in the middle first; with a scrollbar too."""
    from textual.widgets import SelectionList

    d = tmp_path / "models"
    exp = d / "lesson-positions-20steps"
    ends = {}
    for i, m in enumerate(("pos_encoding=alibi", "pos_encoding=learned", "pos_encoding=sinusoidal")):
        make_model(exp, m, val_loss=2.6 + i / 7)
        write_metrics(exp / m)
        ends[f"lesson-positions-20steps/{m}"] = m[-6:]
    for n in ["a-run-of-my-own"] + [f"run{i:02d}" for i in range(more)]:  # (more runs than rows: a scrollbar)
        make_model(d, n, val_loss=3.4321)
        write_metrics(d / n)
        ends[n] = n[-6:]
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=size) as pilot:
        screen = await runs_shown(pilot, app)
        sl = screen.query_one("#runs-list", SelectionList)
        lines = list_lines(sl)
        label = "val " if size == (120, 40) else " "
        shown = [n for n, s in screen.summaries.items() if any(ends[n] in ln for ln in lines)]
        assert len(shown) >= min(len(ends), sl.size.height), lines
        for n in shown:
            assert any(ends[n] in ln and f"{label}{screen.summaries[n].val_loss:.3f}" in ln for ln in lines), (n, lines)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_runs_table_keeps_the_figures_of_long_names_on_screen(tmp_path, size):
    """A lesson's members (lesson-positions-10steps/pos_encoding=alibi) made the name column so wide that at
    80 columns the table showed names only: every figure was off its right edge. The names are cut in the
    middle, as in the list, to the table's width, and again when the terminal is resized."""
    from textual.widgets import DataTable

    d = tmp_path / "models"
    exp = d / "lesson-positions-10steps"
    for i, m in enumerate(("pos_encoding=alibi", "pos_encoding=learned", "pos_encoding=sinusoidal")):
        make_model(exp, m, val_loss=2.1 + i / 10)
        write_metrics(exp / m)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=size) as pilot:
        screen = await runs_shown(pilot, app)
        table = screen.query_one("#runs-table", DataTable)

        def shown() -> list[str]:
            return ["".join(seg.text for seg in table.render_line(y)) for y in range(table.size.height)]

        def each_with_its_figures() -> bool:
            lines = shown()
            return all(any(end in ln and f"{loss:.4f}" in ln and "bits/char" not in ln for ln in lines)
                       for end, loss in (("alibi", 2.1), ("learned", 2.2), ("soidal", 2.3)))

        assert await wait_for(pilot, lambda: table.row_count == 3 and each_with_its_figures()), shown()
        await pilot.resize_terminal(60, 20)
        assert await wait_for(pilot, each_with_its_figures), shown()


def logged_runs(d, names) -> None:
    """A model folder with a metrics log for each name, under d."""
    for n in names:
        make_model(d, n)
        write_metrics(d / n)


async def test_the_runs_legend_keeps_each_swatch_beside_its_name(tmp_path):
    """With many runs checked the legend wrapped between a run's ━━ and its name: a line ended in a
    swatch and the next began with a name, and which colour was whose could not be read."""
    d = tmp_path / "models"
    names = [f"run-with-a-rather-long-name-{i}" for i in range(6)]
    logged_runs(d, names)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        await pilot.press("a")
        assert await wait_for(pilot, lambda: len(screen.chart.lines) == 3 * len(names))
        await pilot.pause()
        legend = screen.query_one("#runs-legend")
        lines = ["".join(seg.text for seg in legend.render_line(y)).strip() for y in range(legend.size.height)]
        assert len([ln for ln in lines if ln]) >= 2, lines  # it does wrap
        assert all(ln.startswith("━━ run-") for ln in lines if ln), lines


async def test_the_estimate_follows_a_budget_typed_after_it(tmp_path, one_thread):
    """A lesson picked shows its estimate (2 runs of 3 min); typing 20 steps left '3 min: about 6m' on
    screen until Enter. It is worked out again once the typing stops."""
    from textual.widgets import Input

    async with estimate_shown(tmp_path, "grid") as (pilot, app, screen, estimate):
        assert "2 runs of 5 steps: about" in str(estimate.render()), str(estimate.render())
        screen.query_one("#exp-steps", Input).focus()
        await pilot.press("end", "backspace", "7")
        assert await wait_for(pilot, lambda: "2 runs of 7 steps: about" in str(estimate.render()), timeout=60), str(estimate.render())
        await pilot.press("backspace")  # no budget at all: no figure for one that is gone
        assert await wait_for(pilot, lambda: "of 7 steps" not in str(estimate.render()), timeout=30), str(estimate.render())
        assert not [n for n in app.notes if n[0] == "experiment"], notes(app)  # (no error toasts while typing)


def test_the_tokens_axis_labels_read_5M_not_5_0M():
    """F3 with x: tokens labelled its round ticks 5.0M 10.0M 15.0M."""
    from tinygpt_tui.app.progress import LossChart
    from tinygpt_tui.chart import Series, to_text

    chart = LossChart()
    chart.show_lines([Series([0, 5_000_000, 27_000_000], [4.0, 2.0, 1.5])], "tokens", "loss")
    lines = to_text(chart.draw(100, 14), colour=False).plain.splitlines()
    labels = lines[next(i for i, ln in enumerate(lines) if "└" in ln) + 1].split()
    assert "5M" in labels and "10M" in labels and not any(lab.endswith(".0M") for lab in labels), labels


async def test_the_estimate_due_after_typing_does_not_start_the_finished_experiment_again(tmp_path, one_thread):
    """The form's estimate is worked out again 0.8 s after the typing stops. A short experiment could finish
    first; the estimate then found every member finished and started the experiment again (to show results
    already shown), replacing the job on screen and its samples (two tests failed that way under load)."""
    async with experiment_started(tmp_path, "grid", steps=5) as (pilot, app, job):
        screen = app.get_screen("experiment")
        assert await wait_for(pilot, lambda: not job.active, timeout=120), notes(app)
        assert job.state == "finished", job.error
        screen.reestimate()  # (what the typing's timer calls)
        estimate = screen.query_one("#exp-estimate")
        assert await wait_for(pilot, lambda: "all 2 runs finished" in str(estimate.render()), timeout=60), str(estimate.render())
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.experiment is job and notes(app).count("grid: finished") == 1, notes(app)


async def test_start_while_a_finished_experiment_s_results_are_read_says_so(tmp_path, one_thread, monkeypatch):
    """With every member finished, the estimate starts a job that only reads the results (it trains nothing).
    Ctrl+S pressed meanwhile said "... is still running; stop it first", though nothing trained."""
    import threading

    from textual.widgets import Static

    from tinygpt_tui.engine import experiment as E

    async with experiment_started(tmp_path, "grid", steps=5) as (pilot, app, job):
        screen = app.get_screen("experiment")
        assert await wait_for(pilot, lambda: not job.active, timeout=120), notes(app)
        assert job.state == "finished", job.error
        release, sampling = threading.Event(), threading.Event()
        real = E.samples

        def held(*a, **kw):  # the reading job stays under way until the test lets it go on
            sampling.set()
            release.wait(60)
            return real(*a, **kw)

        monkeypatch.setattr(E, "samples", held)
        app.experiment = None  # (as after a restart of the app: its results not on screen yet)
        screen.reestimate()
        assert await wait_for(pilot, sampling.is_set, timeout=60), notes(app)
        reading = app.experiment
        assert reading is not None and reading is not job and reading.active
        title = screen.query_one("#exp-title", Static)  # (it said "preparing" while the members wrote their samples)
        assert await wait_for(pilot, lambda: "writing the samples" in str(title.render())), str(title.render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "still running" not in str(screen.query_one("#exp-error", Static).render())
        assert "Every run of grid has finished: its results are on their way." in notes(app)
        assert app.experiment is reading  # nothing else started
        release.set()
        assert await wait_for(pilot, lambda: not reading.active, timeout=60)
        assert reading.state == "finished" and reading.members == {"n_layer=1": "kept", "n_layer=2": "kept"}


async def test_starting_before_the_estimate_is_in_leaves_no_timing_note_behind(tmp_path, one_thread):
    """Start pressed while the estimate was still being worked out (a budget typed, then Ctrl+S at once) dropped
    that estimate, but its "timing a few steps …" stayed under the form through the run and after it."""
    async with experiment_filled(tmp_path, "quick", steps=5) as (pilot, app, screen):
        estimate = screen.query_one("#exp-estimate")
        screen.reestimate()  # (what the typing's timer calls) ...
        assert "timing a few steps" in str(estimate.render())
        screen.action_start()  # ... and Ctrl+S before its thread is back
        job = app.experiment
        assert job is not None and job.name == "quick"
        assert await wait_for(pilot, lambda: not job.active, timeout=120), notes(app)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "timing" not in str(estimate.render())


async def test_the_form_s_budget_errors_name_its_fields_not_the_command_line_s_flags(tmp_path):
    """The budget errors said "give each member a budget: --minutes or --max-steps (one of them)": flags the
    app has none of."""
    d = make_models_dir(tmp_path)
    corpus = small_corpus_file(tmp_path)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        for minutes, steps, needle in (("", "", "Minutes or Steps"), ("0", "", "Minutes must be above 0")):  # (typing one clears the other)
            screen = await experiment_screen(pilot, app, name="b", corpus=corpus, minutes=minutes, steps=steps,
                                             vary1="n_layer=1,2", set=TINY_SET)
            await pilot.press("ctrl+s")
            error = str(screen.query_one("#exp-error").render())
            assert needle in error and "--" not in error and app.experiment is None, error


async def test_at_80_by_24_the_legend_says_why_runs_are_not_drawn_however_long_their_names(tmp_path):
    """The shipped models beside a run on a book of one's own: 'not drawn: hongloumeng, shakespeare (another co…',
    the names first, and the why and the Space to check them cut off its one line."""
    d = tmp_path / "models"
    for i, name in enumerate(("hongloumeng", "shakespeare", "mybook")):
        make_model(d, name, corpus=name)
        write_metrics(d / name, corpus=name)
        for f in ("metrics.jsonl", "config.json"):
            os.utime(d / name / f, (1_700_000_000 + i, 1_700_000_000 + i))  # mybook the newest: the one checked
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_shown(pilot, app)
        assert screen.checked == ["mybook"]
        legend = screen.query_one("#runs-legend")
        text = " ".join("".join(seg.text for seg in legend.render_line(y)) for y in range(legend.size.height))
        assert "not drawn (another corpus; Space checks): hong" in text, text


async def test_the_runs_legend_at_80_by_24_keeps_swatches_whole_and_counts_what_it_leaves_out(tmp_path):
    """Laid out before the screen had its size, the legend was wrapped for 80 columns in a 48-cell box:
    a line ended in a run's ━━ and the next began with its name; and its max three lines cut off the
    other runs and the "not drawn" line without a word."""
    d = tmp_path / "models"
    names = [f"grid/pos_encoding=member-{i}" for i in range(7)] + ["other"]
    logged_runs(d, names)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_shown(pilot, app)
        sl = screen.query_one("#runs-list")
        sl.select_all()
        sl.deselect("other")
        assert await wait_for(pilot, lambda: len(screen.chart.lines) == 3 * 7)
        await pilot.pause()
        legend = screen.query_one("#runs-legend")
        lines = ["".join(seg.text for seg in legend.render_line(y)).strip() for y in range(legend.size.height)]
        text = " ".join(lines)
        assert all(not ln.endswith("━━") for ln in lines) and lines[0].startswith("━━ grid/"), lines
        shown = text.count("━━ grid/pos_encoding=member-")
        assert 0 < shown < 7 and f"+{7 - shown} more" in text and "not drawn (Space checks): other" in text, lines


def test_a_run_s_line_in_the_list_fits_its_room_with_a_chinese_name(tmp_path):
    """The list measured a name's room in characters, not cells: a Chinese name (two cells a character) left
    figures for room it did not have, and the line ran past its room into an ellipsis."""
    from rich.cells import cell_len

    from tinygpt_tui.app.runs import run_prompt
    from tinygpt_tui.engine.runs import summarize

    make_model(tmp_path, "红楼梦的第一次训练", val_loss=3.4321)
    s = summarize(tmp_path / "红楼梦的第一次训练")
    for room in range(24, 48):
        line = run_prompt(s, room)
        assert line.cell_len <= room and "3.432" in line.plain, (room, line.plain)


def test_an_experiment_resumed_after_a_kill_does_not_show_a_member_running(tmp_path):
    """Killed (SIGKILL, a power cut) while a member ran, the manifest still said "running"; resumed in the app,
    the queue showed that member running before the job had reached it. It is stopped, as it was left."""
    from tinygpt_tui.app.jobs import ExperimentJob
    from tinygpt_tui.engine.experiment import Spec, make_plan, write_manifest

    plan = make_plan(Spec(name="grid", corpus=str(small_corpus_file(tmp_path)), max_steps=10, vary={"n_layer": [1, 2]}), tmp_path / "models")
    plan.folder.mkdir(parents=True)
    write_manifest(plan, {"n_layer=1": {"state": "finished"}, "n_layer=2": {"state": "running"}})  # as the killed process left it
    assert ExperimentJob(plan, resume=True).members == {"n_layer=1": "finished", "n_layer=2": "stopped"}


async def test_a_checked_run_with_no_loss_log_says_so_in_the_legend(tmp_path):
    """A model converted from nanoGPT or imported has no metrics.jsonl: checked, it had a swatch in the legend
    and a ■ in the table, and no line anywhere, with nothing said."""
    d = tmp_path / "models"
    logged_runs(d, ["alpha"])
    make_model(d, "converted")  # (no log)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        await pilot.press("a")
        assert await wait_for(pilot, lambda: set(screen.checked) == {"alpha", "converted"} and "converted" in screen.curves)
        await pilot.pause()
        legend = screen.query_one("#runs-legend")
        text = " ".join("".join(seg.text for seg in legend.render_line(y)) for y in range(legend.size.height))
        assert "converted no loss log" in text and "alpha no loss log" not in text, text


async def test_a_run_whose_log_was_cut_short_says_so_and_keeps_its_checkpoint_s_speed(tmp_path):
    """The shipped run with its metrics.jsonl cut to 5,000 bytes: its line stops at step 160 of 6,000 with nothing
    said, and the table gave it 487.9k tok/s (the log's time over the checkpoint's tokens)."""
    import shutil

    from textual.widgets import DataTable

    from tinygpt_tui.engine.runs import shipped_models_dir

    d = tmp_path / "models"
    shutil.copytree(shipped_models_dir() / "shakespeare", d / "shakespeare")
    log = d / "shakespeare" / "metrics.jsonl"
    log.write_bytes(log.read_bytes()[:5000])
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        table = screen.query_one("#runs-table", DataTable)
        assert await wait_for(pilot, lambda: table.row_count == 1)
        legend = screen.query_one("#runs-legend")
        text = " ".join("".join(seg.text for seg in legend.render_line(y)) for y in range(legend.size.height))
        assert "shakespeare log cut at step 160" in text, text
        row = [str(c) for c in table.get_row("shakespeare")]
        assert "16.0k" in row and "12m 47s" in row and not any("487" in c for c in row), row


async def test_the_runs_chart_marks_the_table_s_whole_split_loss_apart_from_the_estimates(tmp_path):
    """A lesson's bigram: its chart's last dot (an estimate on 10 batches) sat near 3.3 while the table said 3.07,
    nothing saying why. The table's figure, the whole split's, is now a ◆ of the run's colour where its kept weights
    are from, and the chart's title says which is which."""
    import shutil

    from textual.widgets import DataTable

    from tinygpt_tui.chart import FINAL, to_text
    from tinygpt_tui.engine.runs import shipped_models_dir

    d = tmp_path / "models"
    shutil.copytree(shipped_models_dir() / "shakespeare", d / "shakespeare")
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        table = screen.query_one("#runs-table", DataTable)
        assert await wait_for(pilot, lambda: table.row_count == 1 and screen.chart.lines)
        final = [ln for ln in screen.chart.lines if ln.marker == FINAL]
        s = screen.summaries["shakespeare"]
        assert len(final) == 1 and final[0].xs == [6000] and final[0].ys == [s.val_loss], screen.chart.lines
        assert f"{s.val_loss:.4f}" in str(table.get_row("shakespeare")[2])
        drawn = to_text(screen.chart.drawn(), colour=False).plain
        assert "val estimates •, final ◆ (whole split: the table's)" in drawn and drawn.count("◆") == 2, drawn
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:  # the title shortened to the chart's width, not cut in a word
        screen = await runs_shown(pilot, app)
        assert await wait_for(pilot, lambda: screen.chart.lines and screen.chart.size.width)
        await pilot.pause()
        title = to_text(screen.chart.drawn(), colour=False).plain.splitlines()[0].strip()
        assert title == "loss: train ─, val estimates •, final ◆", title


async def test_the_training_chart_of_a_finished_run_marks_its_whole_split_loss(tmp_path):
    """The training screen's progress line said "val (full split) 3.511" beside a chart whose last dot said 3.510 (the
    last step's estimate): the whole split's loss is a green ◆ at the step whose weights the run kept (4,750, its best
    estimate's, not the last step's), named in the chart's legend."""
    import shutil

    from tinygpt_tui.engine.runs import shipped_models_dir

    d = tmp_path / "models"
    (d / "hl").mkdir(parents=True)
    shutil.copy(shipped_models_dir() / "hongloumeng" / "metrics.jsonl", d / "hl" / "metrics.jsonl")
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        ts = app.get_screen("training")
        assert await wait_for(pilot, lambda: app.screen is ts)
        ts.follow("hl")
        assert await wait_for(pilot, lambda: ts.view is not None and ts.view.finish and "final val (whole split)" in ts.chart.series)
        assert ts.chart.series["final val (whole split)"] == ([4750], [ts.view.full_val_loss])
        assert ts.view.eval_steps[-1] == 4861 and "val (full split) 3.511" in str(ts.query_one("#run-progress-text").render())


async def test_the_runs_screen_s_g_key_says_it_generates_as_the_readme_does(tmp_path):
    """The key bar said "g Write", read as writing the chart to a file; g opens the generate screen with the
    highlighted run's model. The bar, the palette and the README's keys table say Generate."""
    from tests.test_cli import ROOT
    from tinygpt_tui.app.bars import KeyBar

    app = RecordingApp(models_dir=runs_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_shown(pilot, app)
        bar = screen.query_one(KeyBar)
        assert await wait_for(pilot, lambda: any(k.key == "g" for k in bar.drawn))
        texts = [k.text for k in bar.drawn]
        assert "g Generate" in texts and not any("Write" in t for t in texts), texts
        assert "Generate with the highlighted run" in {c.title for c in app.get_system_commands(screen)}
        # one Generate in the bar: Ctrl+G (back to the generate screen, its model kept) works unshown
        assert not any(t.startswith("^g") for t in texts), texts
        await pilot.press("ctrl+g")
        assert await wait_for(pilot, lambda: app.showing() == "generate")
        assert app.get_screen("generate").loaded is None  # (g would have loaded the highlighted run's model)
    row = next(ln for ln in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if ln.startswith("| runs (F3) |"))
    assert "/ g |" in row and row.rstrip(" |").endswith("generate: the highlighted run's model, loaded on the generate screen"), row


async def test_a_log_of_gigabytes_is_drawn_from_its_end_and_the_legend_says_so(tmp_path):
    """A metrics.jsonl past engine.runs.MAX_LOG is read from its end (compare says so); the app drew it saying nothing."""
    from tinygpt_tui.engine.runs import MAX_LOG

    d = tmp_path / "models"
    make_model(d, "huge", corpus="fixture")
    write_metrics(d / "huge")
    log = d / "huge" / "metrics.jsonl"
    tail = log.read_bytes()
    with open(log, "r+b") as f:
        f.truncate(MAX_LOG + (1 << 30))  # (a hole of zeros, then the records)
        f.seek(0, 2)
        f.write(tail)
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        legend = screen.query_one("#runs-legend")
        text = lambda: " ".join("".join(seg.text for seg in legend.render_line(y)) for y in range(legend.size.height))  # noqa: E731
        assert await wait_for(pilot, lambda: "huge" in text())
        assert "huge its log's first 1,024 MB not read" in text(), text()


async def test_the_runs_table_at_80_columns_shows_no_figure_in_part(tmp_path):
    """At 80x24 the runs table is wider than its room, and it scrolled a cell at a time: wherever it stopped, the column
    at its edge was cut ("3.3" for 3.3k tokens/s, "12m" for 12m 47s, a time's "46s" gone). Now it shows only whole
    columns beside each run's name, its header saying which way the others lie, and → and ← bring them one by one."""
    d = tmp_path / "models"
    exp = d / "lesson-depth-60steps"
    for i, m in enumerate(("bigram", "1 layer", "4 layers")):
        make_model(exp, m, val_loss=2.9 - i / 5, corpus="tinyshakespeare")
        write_metrics(exp / m, corpus="tinyshakespeare")
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await all_checked(pilot, app, 3)
        await assert_whole_columns(pilot, table, TABLE_COLUMNS)


async def all_checked(pilot, app, rows: int):
    """The runs screen with every run checked (`a`): its table, once it holds ``rows`` rows."""
    from textual.widgets import DataTable

    screen = await runs_shown(pilot, app)
    await pilot.press("a")
    table = screen.query_one("#runs-table", DataTable)
    assert await wait_for(pilot, lambda: table.row_count == rows)
    return table


async def test_a_runs_table_with_a_scrollbar_still_shows_every_column_at_120_columns(tmp_path):
    """Rows past the table's height bring a scrollbar, narrowing it by two cells after its columns were laid out (no
    resize says so): the corpus column went to a second page of columns (→) instead of being cut to the room."""
    d = tmp_path / "models"
    for i in range(30):
        make_model(d, f"a-run-with-a-long-name-{i:02d}", val_loss=2.9 - i / 50, corpus="tinyshakespeare-and-more")
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await all_checked(pilot, app, 30)
        await pilot.pause()
        assert table.show_vertical_scrollbar and table.max_scroll_x == 0
        assert [c.label.plain.split("\n")[0].split(" ")[0] for c in table.ordered_columns] == [c.split("\n")[0] for c in TABLE_COLUMNS]
        assert "→" not in str(table.ordered_columns[1].label)


async def assert_whole_columns(pilot, table, labels) -> None:
    """Along a table too wide for its room (→ to its end, ← back): nothing past its edge, each cell on screen whole,
    every column brought on screen, and its header saying which way the others lie."""
    table.focus()
    seen = set()
    for key in ["right"] * len(labels) + ["left"] * len(labels):
        await pilot.pause()
        lines = ["".join(seg.text for seg in table.render_line(y)) for y in range(table.size.height)]
        assert table.max_scroll_x == 0, lines  # nothing past its edge to scroll to
        for r in range(table.row_count):
            for cell in table.get_row_at(r):
                assert str(cell) in lines[table.header_height + r], (str(cell), lines)  # each figure whole
        seen |= {c.label.plain.split(" ")[0] for c in table.columns.values()}
        await pilot.press(key)
    assert seen == {c.split(" ")[0] for c in labels}, seen  # every column brought on screen
    assert "→" in str(table.ordered_columns[1].label) and "←" not in str(table.ordered_columns[1].label)  # (back at the start)


async def test_the_experiment_table_at_80_columns_shows_no_figure_in_part(tmp_path, one_thread):
    """The experiment screen's table at 80x24 ran past its edge as the runs table did ("param" of params, the
    times and speeds off screen): it too shows whole columns beside each member's name, ← → the rest."""
    from textual.widgets import DataTable

    from tinygpt_tui.engine import experiment as E

    d, corpus, plan = two_member_plan(tmp_path)
    list(E.run(plan))
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await experiment_screen(pilot, app, name="done", corpus=corpus, steps=5)
        screen.query_one("#exp-name").focus()
        await pilot.press("enter")  # (all finished: their results shown)
        table = screen.query_one("#exp-table", DataTable)
        assert await wait_for(pilot, lambda: table.row_count == 2, timeout=60), notes(app)
        await assert_whole_columns(pilot, table, ("#", "member", "val loss", "bits/char", "params", "time", "tok/s", "status"))


@pytest.mark.parametrize("corpus", ["tinyshakespeare", "tinyshakespeare-with-the-sonnets"])
async def test_at_120_columns_the_runs_table_shows_every_column_the_corpus_too(tmp_path, corpus):
    """At 120x40, `tinygpt lesson depth`'s members and the shipped runs: the table ran past its right edge and the
    corpus column read "tinyshak". The two-word headers take two lines (as `tinygpt runs` prints them) and the list
    two cells less, so it is whole; a corpus too long for the room left is cut at its end ("…"), not off the edge.
    At 80x24 the table scrolls, as before: its corpus is whole, to the right."""
    from textual.widgets import DataTable

    d = tmp_path / "models"
    exp = d / "lesson-depth-60steps"
    for i, m in enumerate(("bigram", "1 layer", "4 layers")):
        make_model(exp, m, val_loss=2.9 - i / 5, corpus=corpus)
        write_metrics(exp / m, corpus=corpus)
    make_model(d, "hongloumeng", val_loss=3.5, corpus="hongloumeng")
    write_metrics(d / "hongloumeng", corpus="hongloumeng")
    for size in ((120, 40), (80, 24)):
        app = RecordingApp(models_dir=d, watch_models=False)
        async with app.run_test(size=size) as pilot:
            screen = await runs_shown(pilot, app)
            await pilot.press("a")
            table = screen.query_one("#runs-table", DataTable)
            assert await wait_for(pilot, lambda: table.row_count == 4)
            await pilot.pause()
            shown = ["".join(seg.text for seg in table.render_line(y)) for y in range(table.size.height)]
            cells = [str(table.get_row(k)[-1]) for k in table.rows]
            if size == (80, 24):  # → brings it, to the right: whole, or cut at its end where alone it is wider than the room
                table.focus()
                for _ in range(len(TABLE_COLUMNS)):
                    await pilot.press("right")
                await pilot.pause()
                cells = [str(table.get_row(k)[-1]) for k in table.rows]
                whole = corpus == "tinyshakespeare"
                assert table.max_scroll_x == 0 and sum(c == corpus if whole else corpus.startswith(c[:-1]) and c.endswith("…")
                                                       for c in cells) == 3, cells
                continue
            assert table.max_scroll_x == 0, shown  # every column on screen
            assert "loss" in shown[1] and "char" in shown[1]  # ("val", "bits/" above)
            if corpus == "tinyshakespeare":
                assert sum(corpus in ln for ln in shown) == 3 and any("≠ hongloumeng" in ln for ln in shown), shown
            else:
                assert all(c.endswith("…") and corpus.startswith(c[:-1]) and len(c) >= 8 for c in cells if "hong" not in c), cells


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_runs_screen_opened_on_an_empty_folder_says_how_to_add_a_run_and_draws_the_first(tmp_path, size):
    """A newcomer's review: F3 opened before any run was trained showed an empty chart, and kept it empty
    when the first run came: only the first listing checked runs, and it had none."""
    from textual.widgets import SelectionList

    d = tmp_path / "models"
    d.mkdir()
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=size) as pilot:
        screen = await runs_shown(pilot, app)
        legend = lambda: str(screen.query_one("#runs-legend").render())  # noqa: E731
        assert await wait_for(pilot, lambda: legend().startswith("No runs yet: train one (Ctrl+T)")), legend()
        make_model(d, "first", val_loss=2.2)
        write_metrics(d / "first")
        await pilot.press("f5")
        assert await wait_for(pilot, lambda: screen.checked == ["first"] and "first" in screen.curves)
        assert await wait_for(pilot, lambda: "━━ first" in legend() and len(screen.chart.lines) == 3), legend()
        make_model(d, "second", val_loss=2.1)  # a run after the first: the user's choice stays as it is
        write_metrics(d / "second")
        await pilot.press("f5")
        sl = screen.query_one("#runs-list", SelectionList)
        assert await wait_for(pilot, lambda: sl.option_count == 2)
        assert screen.checked == ["first"] and "not drawn (Space checks): second" in legend(), legend()
        await pilot.press("n")
        assert await wait_for(pilot, lambda: legend() == "Space checks a run (a: all) to draw it here."), legend()


async def test_a_fresh_checkout_s_runs_screen_opens_on_the_shipped_shakespeare_model(tmp_path):
    """The shipped folders share their checkout's time: the newest was chance (here hongloumeng, its loss per
    character of 4,436 no lesson for a first look). Shakespeare is checked, and the legend says how to add the other."""
    d = tmp_path / "models"
    for i, name in enumerate(("shakespeare", "hongloumeng")):
        make_model(d, name, corpus=name)
        write_metrics(d / name, corpus=name)
        for f in ("metrics.jsonl", "config.json"):
            os.utime(d / name / f, (1_700_000_000 + i, 1_700_000_000 + i))
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        assert screen.checked == ["shakespeare"] and len(screen.chart.lines) == 3
        legend = str(screen.query_one("#runs-legend").render())
        assert "━━ shakespeare" in legend and "not drawn (another corpus; Space checks): hongloumeng" in legend, legend
        make_model(d, "mine", corpus="shakespeare")  # a run of one's own: the newest, first on the next opening
        write_metrics(d / "mine", corpus="shakespeare")
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        assert sorted(screen.checked) == ["mine", "shakespeare"]


async def test_the_chart_of_an_empty_folder_does_not_send_the_reader_to_an_empty_list(tmp_path):
    """F3 before any run: the chart's title said "check runs in the list" beside a list with nothing in it."""
    from tinygpt_tui.chart import to_text

    d = tmp_path / "models"
    d.mkdir()
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await runs_shown(pilot, app)
        legend = lambda: str(screen.query_one("#runs-legend").render())  # noqa: E731
        assert await wait_for(pilot, lambda: legend().startswith("No runs yet")), legend()
        title = lambda: to_text(screen.chart.drawn(), colour=False).plain.splitlines()[0].strip()  # noqa: E731
        assert title() == "loss (no runs yet)", title()
        make_model(d, "first", val_loss=2.2)
        write_metrics(d / "first")
        await pilot.press("f5")
        assert await wait_for(pilot, lambda: title().startswith("loss: train ─")), title()


class RestyleCountingApp(RecordingApp):
    """The app, counting its restyles of every widget from the whole stylesheet (App.refresh_css)."""

    restyles = 0

    def refresh_css(self, animate: bool = True) -> None:
        self.restyles += 1
        super().refresh_css(animate)


async def test_f3_opens_the_runs_screen_without_a_restyle_and_each_screen_s_key_leaves_it(tmp_path):
    """F3 opened the runs screen as a mode of its own, and Textual's first switch to a mode restyles every widget
    twice, reparsing the whole stylesheet each time (85 ms of CPU on a Zen 3). The screen is pushed
    over the one on show instead; each screen's key leaves it, and it is never left behind under another screen."""
    app = RestyleCountingApp(models_dir=runs_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        gen, runs, training, experiment = (app.get_screen(n) for n in ("generate", "runs", "training", "experiment"))
        await pilot.pause()
        before = app.restyles
        await runs_shown(pilot, app)
        assert app.screen is runs and app.showing() == "runs" and app.restyles == before
        assert not app.check_action("show_runs", ()) and app.check_action("show_training", ())
        for key, shown in (("ctrl+g", gen), ("ctrl+t", training), ("f3", runs), ("ctrl+t", training), ("f3", runs),
                           ("f4", experiment), ("ctrl+t", training), ("ctrl+g", gen), ("f3", runs), ("f4", experiment),
                           ("f3", runs), ("ctrl+g", gen)):
            await pilot.press(key)
            assert await wait_for(pilot, lambda: app.screen is shown), (key, app.screen)
            assert app.showing() == shown.id and not app.check_action(f"show_{shown.id}", ()), key
        assert [s.id for s in app.screen_stack] == ["generate"]
