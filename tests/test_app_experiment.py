"""The experiment screen (F4) after a stop and on resuming: a stopped member's row, the form filled from the
experiment saved before, a lesson at another budget. Driven with Pilot."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Input

from tests.conftest import make_models_dir, small_corpus_file
from tests.test_app import RecordingApp, notes, wait_for
from tests.test_app_runs import experiment_screen, experiment_started, grid_with_samples, one_thread  # noqa: F401 (a fixture)

SETTINGS = dict(n_embd=32, n_head=2, block_size=32, batch_size=8, eval_interval=5, eval_iters=1, sample_chars=0)


async def test_a_stopped_member_s_row_gives_the_loss_it_kept(tmp_path, one_thread):  # noqa: F811
    """Stop during the first member, after an evaluation: its row shows what its checkpoint kept (the figure
    `tinygpt runs` prints), marked stopped even where the status column is off screen (80 columns)."""
    from tinygpt_tui.engine.runs import summarize

    async with experiment_started(tmp_path, "halt", steps=100000, size=(80, 24)) as (pilot, app, job):
        screen = app.get_screen("experiment")
        assert await wait_for(pilot, lambda: job.running == "n_layer=1" and job.curves["n_layer=1"].evals, timeout=120), notes(app)
        await pilot.press("ctrl+o")
        assert await wait_for(pilot, lambda: not job.active, timeout=120), notes(app)
        assert job.members == {"n_layer=1": "stopped", "n_layer=2": "queued"}
        table = screen.query_one("#exp-table", DataTable)
        assert await wait_for(pilot, lambda: table.row_count == 2)
        kept = summarize(job.plan.folder / "n_layer=1")
        assert kept.status == "stopped" and kept.val_loss is not None
        first, second = table.all_rows  # (every column's cells: at 80 columns the status is off screen, → brings it)
        assert str(first[1]) == "n_layer=1" and str(first[2]) == f"{kept.val_loss:.4f} ■" and str(first[7]) == "stopped"
        assert str(first[3]) == f"{kept.bpc:.3f}"
        assert str(second[1]) == "n_layer=2" and str(second[2]) == "—" and str(second[7]) == "queued"


async def test_resuming_by_name_fills_the_form_with_the_saved_experiment(tmp_path, one_thread):  # noqa: F811
    """Only the name typed: the form shows what is resumed (corpus, budget, grid, settings), its grid not
    editable; a budget changed is refused, not silently ignored; another name is a new experiment again."""
    import threading

    from tinygpt_tui.engine import experiment as E

    d = make_models_dir(tmp_path)
    corpus = small_corpus_file(tmp_path)
    plan = E.make_plan(E.Spec(name="ran", corpus=str(corpus), max_steps=5, vary={"n_layer": [1, 2]}, settings=SETTINGS, threads=1), d)
    stop = threading.Event()
    for ev in E.run(plan, stop):  # the first member finishes, then it stops
        if isinstance(ev, E.MemberEnded):
            stop.set()
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await experiment_screen(pilot, app)
        field = lambda wid: screen.query_one(f"#exp-{wid}", Input)  # noqa: E731
        assert field("corpus").value == "" and field("vary1").value == ""
        field("name").focus()
        await pilot.press("r", "a", "n", "enter")
        assert await wait_for(pilot, lambda: field("vary1").value == "n_layer=1,2"), notes(app)
        assert Path(field("corpus").value).resolve() == corpus.resolve()
        assert (field("steps").value, field("minutes").value, field("vary2").value) == ("5", "", "")
        assert field("set").value.split() == [f"{k}={v}" for k, v in SETTINGS.items()]
        assert all(field(w).disabled for w in ("vary1", "vary2", "set"))
        assert await wait_for(pilot, lambda: "1 of 2 runs left, 5 steps each" in str(screen.query_one("#exp-estimate").render()),
                              timeout=60), str(screen.query_one("#exp-estimate").render())
        # a budget changed: refused, by name
        field("steps").value = "7"
        await pilot.press("ctrl+s")
        error = str(screen.query_one("#exp-error").render())
        assert "experiment ran was run with 5 steps per member" in error and app.experiment is None
        field("steps").value = "5"
        await pilot.press("ctrl+s")
        job = app.experiment
        assert job is not None and job.resume and job.name == "ran"
        assert await wait_for(pilot, lambda: not job.active, timeout=120), notes(app)
        assert job.members == {"n_layer=1": "kept", "n_layer=2": "finished"}, job.error
        # another name: a new experiment, its grid the form's to edit
        field("name").focus()
        await pilot.press("end", "2")
        assert await wait_for(pilot, lambda: not field("vary1").disabled)
        plan2, resume = screen.read_plan()
        assert plan2.spec.name == "ran2" and not resume and [m.name for m in plan2.members] == ["n_layer=1", "n_layer=2"]


async def test_a_lesson_at_another_budget_is_named_for_it_in_the_form(tmp_path, one_thread):  # noqa: F811
    """As `tinygpt lesson NAME --corpus C --minutes M`: the corpus and budget typed rename the lesson's folder (its
    own results stay whole); its own budget again, its own name on that corpus; a name the user typed stays theirs."""
    from tinygpt_tui.engine.lessons import find_lesson

    d = make_models_dir(tmp_path)
    corpus = small_corpus_file(tmp_path)
    lesson = find_lesson("dropout")
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await experiment_screen(pilot, app)
        field = lambda wid: screen.query_one(f"#exp-{wid}", Input)  # noqa: E731
        screen.query_one("#exp-lesson").value = "dropout"
        assert await wait_for(pilot, lambda: field("name").value == lesson.spec.name)
        field("corpus").value = str(corpus)
        assert await wait_for(pilot, lambda: field("name").value == "lesson-dropout-small"), field("name").value
        field("minutes").focus()
        field("minutes").value = ""
        await pilot.press("1", ".", "5")
        assert await wait_for(pilot, lambda: field("name").value == "lesson-dropout-1.5min-small"), field("name").value
        plan, resume = screen.read_plan()
        assert (plan.spec.name, plan.spec.minutes, plan.spec.max_steps, resume) == ("lesson-dropout-1.5min-small", 1.5, None, False)
        assert [m.config.time_budget for m in plan.members] == [90.0, 90.0]
        field("steps").focus()  # Minutes still filled: typing Steps clears it (a budget is one or the other)
        await pilot.press("4", "0")
        assert await wait_for(pilot, lambda: field("name").value == "lesson-dropout-40steps-small"), field("name").value
        assert field("minutes").value == ""
        field("steps").value = ""
        field("minutes").focus()
        await pilot.press("3")
        assert await wait_for(pilot, lambda: field("name").value == "lesson-dropout-small"), field("name").value
        # a name of the user's own is left alone
        field("name").value = "mine"
        field("minutes").focus()
        await pilot.press("backspace", "2")
        await pilot.pause()
        assert field("name").value == "mine" and field("minutes").value == "2"
        plan, _ = screen.read_plan()
        assert (plan.spec.name, plan.spec.minutes) == ("mine", 2.0)


async def test_a_lesson_on_another_corpus_is_one_folder_from_the_command_line_or_the_form(tmp_path, one_thread):  # noqa: F811
    """The form named a lesson on another corpus lesson-dropout-2steps, `tinygpt lesson` lesson-dropout-2steps-small:
    two folders for one run, and in the form the same lesson and budget on a second corpus was refused ("was run on").
    One name now (lessons.as_run): the form resumes what the command line ran, and another corpus is another folder."""
    from tests.test_cli import tinygpt_inproc

    d = make_models_dir(tmp_path)
    corpus = small_corpus_file(tmp_path)
    other = tmp_path / "other.txt"
    other.write_text(corpus.read_text(encoding="utf-8"), encoding="utf-8")
    r = tinygpt_inproc("lesson", "dropout", "--corpus", corpus, "--max-steps", "2", "--threads", "1", "--models-dir", d)
    assert r.returncode == 0 and "lesson-dropout-2steps-small: 2 runs of 2 steps each" in r.stdout, r.stdout + r.stderr
    app = RecordingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await experiment_screen(pilot, app)
        field = lambda wid: screen.query_one(f"#exp-{wid}", Input)  # noqa: E731
        screen.query_one("#exp-lesson").value = "dropout"
        assert await wait_for(pilot, lambda: field("name").value == "lesson-dropout")
        field("corpus").value = str(corpus)
        field("steps").focus()
        await pilot.press("2")
        assert await wait_for(pilot, lambda: field("name").value == "lesson-dropout-2steps-small"), field("name").value
        plan, resume = screen.read_plan()
        assert resume and plan.folder == d / "lesson-dropout-2steps-small"
        assert "Run here on small.txt instead of the lesson's Tiny Shakespeare" in plan.spec.text
        assert await wait_for(pilot, lambda: "all 2 runs finished" in str(screen.query_one("#exp-estimate").render()), timeout=60)
        field("corpus").value = str(other)  # the same lesson and budget on another book: a folder of its own, not refused
        assert await wait_for(pilot, lambda: field("name").value == "lesson-dropout-2steps-other"), field("name").value
        plan, resume = screen.read_plan()
        assert not resume and plan.source == str(other)


async def test_a_lesson_s_long_title_is_read_whole_in_an_80_by_24_terminal(tmp_path):
    """The picker showed 'depth: A bigram, one' and cut the rest of the title at 80 columns: the title picked
    wraps in its row, over the next field, which moves down."""
    from textual.widgets import Select

    from tinygpt_tui.engine.lessons import list_lessons

    longest = max(list_lessons(), key=lambda x: len(x.spec.title))
    app = RecordingApp(models_dir=make_models_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await experiment_screen(pilot, app)
        select = screen.query_one("#exp-lesson", Select)
        select.value = longest.name
        assert await wait_for(pilot, lambda: screen.query_one("#exp-name", Input).value == longest.spec.name)
        await pilot.pause()
        label = select.query_one("SelectCurrent Static")  # (the value shown)
        lines = ["".join(seg.text for seg in label.render_line(y)).strip() for y in range(label.size.height)]
        assert " ".join(lines) == f"{longest.name}: {longest.spec.title}", lines
        assert len(lines) > 1  # (it does wrap)
        assert screen.query_one("#exp-name", Input).region.y >= label.region.bottom  # each line on screen, none under the name


async def test_each_form_field_s_hint_fits_and_says_more_than_its_label_at_80_by_24(tmp_path):
    """A newcomer at 80x24 read 'Steps  or steps': the hint said its label again, not that steps go instead of
    minutes (typing one clears the other)."""
    from rich.cells import cell_len
    from textual.widgets import Label

    app = RecordingApp(models_dir=make_models_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await experiment_screen(pilot, app)
        rows = [(r.query_one(Label), r.query_one(Input)) for r in screen.query(".form-row") if r.query(Input)]
        assert len(rows) >= 6
        for label, field in rows:
            words = set(str(label.render()).lower().split())
            assert words and not words & set(field.placeholder.lower().replace(",", " ").split()), (str(label.render()), field.placeholder)
            assert cell_len(field.placeholder) <= field.content_region.width, field.placeholder
        assert "minutes" in screen.query_one("#exp-steps", Input).placeholder


async def test_an_experiment_another_process_is_running_is_refused_from_the_form(tmp_path, one_thread):  # noqa: F811
    """`tinygpt experiment NAME` running in a terminal, the same name started in the app: the app made its job,
    said 'Resuming NAME', and the job then failed ('finished with failures'). Refused in the form instead,
    for Enter (the estimate) and Start alike, a new experiment's folder as well as one to resume."""
    import threading

    from tinygpt_tui.engine import experiment as E
    from tinygpt_tui.engine.folder import FolderLock

    d = make_models_dir(tmp_path)
    corpus = small_corpus_file(tmp_path)
    plan = E.make_plan(E.Spec(name="held", corpus=str(corpus), max_steps=5, vary={"n_layer": [1, 2]}, settings=SETTINGS, threads=1), d)
    stop = threading.Event()
    for ev in E.run(plan, stop):  # the first member finishes, then it stops
        if isinstance(ev, E.MemberEnded):
            stop.set()
    held, fresh = FolderLock(plan.folder), FolderLock(d / "fresh")  # as another process's run holds them
    try:
        app = RecordingApp(models_dir=d, watch_models=False)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await experiment_screen(pilot, app)
            error = lambda: str(screen.query_one("#exp-error").render())  # noqa: E731
            name = screen.query_one("#exp-name", Input)
            name.focus()
            await pilot.press("h", "e", "l", "d", "enter")
            assert "experiment held is being run by another process" in error(), error()
            assert "timing" not in str(screen.query_one("#exp-estimate").render())
            await pilot.press("ctrl+s")
            assert "being run by another process" in error() and app.experiment is None, notes(app)
            await experiment_screen(pilot, app, name="fresh", corpus=corpus, steps=5, vary1="n_layer=1,2", set="n_embd=32")
            await pilot.press("ctrl+s")
            assert "experiment fresh is being run by another process" in error() and app.experiment is None, notes(app)
            assert not any(n.startswith(("Resuming", "Starting")) for _, n in app.notes), notes(app)
    finally:
        held.release()
        fresh.release()
    assert E.member_states(plan)["n_layer=2"]["state"] == "queued" and not (d / "fresh" / "experiment.json").exists()


async def test_a_grid_without_a_corpus_is_asked_for_one_in_the_form_s_words(tmp_path):
    """The engine's message names the command line's --corpus; the form says which field and what it takes."""
    app = RecordingApp(models_dir=make_models_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await experiment_screen(pilot, app, name="nocorpus", steps=5, vary1="n_layer=1,2")
        await pilot.press("ctrl+s")
        error = str(screen.query_one("#exp-error").render())
        assert "give a corpus" in error and "--corpus" not in error and app.experiment is None, (error, notes(app))


async def test_five_members_samples_keep_their_titles_and_text_at_80_by_24_and_120_by_40(tmp_path, one_thread):  # noqa: F811
    """Five boxes side by side at 80 columns were 7 wide: their titles read '…', 's…', 'a…' and which sample
    came from which member could not be told. Each box keeps its whole title and lines of text worth reading:
    at 80x24 one under another, each its whole sample (the pane scrolls); at 120x40 three and two, each whole too."""
    from textual.geometry import Region

    def lines(box) -> list[str]:
        return ["".join(seg.text for seg in line) for line in box.render_lines(Region(0, 0, *box.outer_size))]

    def flat(s: str) -> str:
        return "".join(s.split())

    titles = ["learned", "sinusoidal", "rope", "alibi", "none"]
    app = RecordingApp(models_dir=make_models_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, job = await grid_with_samples(pilot, app, tmp_path, "five", "pos_encoding=" + ",".join(titles), steps=3)
        assert len(screen.query(".exp-sample")) == 5
        pane, boxes = screen.query_one("#exp-samples"), list(screen.query(".exp-sample"))
        texts = dict(job.samples)
        for box, title in zip(boxes, titles):
            shown = lines(box)
            assert shown[0].strip("╭─╮ ") == title, shown[0]
            assert box.content_size.width >= 20, box.content_size
            assert flat(texts[f"pos_encoding={title}"]) in flat("".join(ln[1:-1] for ln in shown[1:-1])), shown  # the whole sample
        assert pane.max_scroll_y > 0  # (they don't fit 24 rows: the pane scrolls to each)

        await pilot.resize_terminal(120, 40)
        assert await wait_for(pilot, lambda: pane.size.width > 60)
        await pilot.pause()
        assert sorted({b.region.y for b in boxes}) == [boxes[0].region.y, boxes[3].region.y] and boxes[3].region.y > boxes[0].region.y
        for box, title in zip(boxes, titles):
            shown = lines(box)
            assert shown[0].strip("╭─╮ ") == title
            assert box.content_size.width >= 20 and box.content_size.height >= 4, box.content_size
            assert flat(texts[f"pos_encoding={title}"]) in flat("".join(ln[1:-1] for ln in shown[1:-1])), shown  # whole, here too


async def test_a_sample_longer_than_its_box_scrolls_instead_of_being_cut():
    """At 120x40 five samples sat in boxes of a fixed share of the height: a long one lost its last lines."""
    from textual.app import App
    from textual.geometry import Region

    from tinygpt_tui.app.samples import SampleGrid

    class Host(App):
        def compose(self):
            yield SampleGrid(id="grid")

    long = "\n".join(f"line {i} of a long sample" for i in range(60))
    samples = [(f"pos_encoding={n}", n, long if n == "rope" else "short") for n in ("learned", "sinusoidal", "rope", "alibi", "none")]
    app = Host()
    async with app.run_test(size=(120, 40)) as pilot:
        grid = app.query_one(SampleGrid)
        grid.show(samples)
        await pilot.pause()
        assert await wait_for(pilot, lambda: len(grid.query(".exp-sample")) == 5)
        await pilot.pause()
        box = list(grid.query(".exp-sample"))[2]
        shown = ["".join(seg.text for seg in line) for line in box.render_lines(Region(0, 0, *box.outer_size))]
        assert "line 59 of a long sample" in "".join(shown), shown[-3:]  # the whole sample, its last line too
        assert grid.max_scroll_y > 0  # (the pane scrolls to it)
        grid.show([(n, t, "short") for n, t, _ in samples])  # short samples: side by side, no scrolling
        await pilot.pause()
        assert await wait_for(pilot, lambda: grid.max_scroll_y == 0)


async def test_chinese_sample_titles_are_measured_in_cells_and_kept_whole_where_they_fit():
    """Titles were measured with len(): a Chinese character takes two cells, so three boxes a row were laid out
    at 80 columns for titles of 24 cells, and each was cut. A title too long for any box is cut in the middle
    to the cells it has."""
    from rich.cells import cell_len
    from textual.app import App
    from textual.geometry import Region

    from tinygpt_tui.app.samples import SampleGrid

    class Host(App):
        def compose(self):
            yield SampleGrid(id="grid")

    titles = ["甄士隐梦幻识通灵贾雨村风尘", "贾夫人仙逝扬州城冷子兴演说", "托内兄如海荐西宾接外孙贾母"]
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        grid = app.query_one(SampleGrid)
        grid.show([(t, t, "满纸荒唐言") for t in titles])
        assert await wait_for(pilot, lambda: len(grid.query(".exp-sample")) == 3)
        await pilot.pause()
        for box, title in zip(grid.query(".exp-sample"), titles):
            top = "".join(seg.text for seg in box.render_lines(Region(0, 0, *box.outer_size))[0])
            assert title in top, (title, top)  # whole
        grid.show([(t * 4, t * 4, "满纸荒唐言") for t in titles[:1]])  # 104 cells: more than the 80 there are
        assert await wait_for(pilot, lambda: len(grid.query(".exp-sample")) == 1)
        await pilot.pause()
        shown = str(grid.query_one(".exp-sample").border_title)
        assert "…" in shown and cell_len(shown) <= 80 - 6 and shown.startswith("甄") and shown.endswith("尘"), shown


async def test_samples_shown_again_for_another_experiment_are_titled_as_theirs():
    """The pane showing a second experiment's samples (one lesson's, then another's) titled its new boxes from a
    layout made while the old boxes were still there: the first box read the last member's title, and a box
    beside it the same title again."""
    from textual.app import App

    from tinygpt_tui.app.samples import SampleGrid

    class Host(App):
        def compose(self):
            yield SampleGrid(id="grid")

    app = Host()
    async with app.run_test(size=(120, 40)) as pilot:
        grid = app.query_one(SampleGrid)
        grid.show([("n_layer=1", "n_layer=1", "one"), ("n_layer=2", "n_layer=2", "two")])
        assert await wait_for(pilot, lambda: len(grid.query(".exp-sample")) == 2)
        grid.show([(f"pos_encoding={n}", n, n) for n in ("learned", "rope", "alibi")])
        assert await wait_for(pilot, lambda: len(grid.query(".exp-sample")) == 3)
        await pilot.pause()
        assert [str(b.border_title) for b in grid.query(".exp-sample")] == ["learned", "rope", "alibi"]


async def test_a_member_preparing_its_corpus_shows_how_far_and_stop_there_saves_nothing(tmp_path, one_thread):  # noqa: F811
    """The screen said "running" and nothing more while a member prepared its corpus (minutes for a big corpus, or a
    BPE member learning its tokens): the engine never passed the preparation on. Its status now says the member's
    stage and how far it got; Stop there says nothing is saved, and the member ends stopped with no folder: while it
    waits for another process preparing the same corpus too (it waited for that process to finish first)."""
    import os

    from tests.conftest import hold_preparation
    from tests.test_app_runs import TINY_SET

    d = make_models_dir(tmp_path)
    corpus = tmp_path / "book.txt"  # (its own text: a BPE learned by an earlier test is not reused)
    corpus.write_text(f"{tmp_path}\n" + small_corpus_file(tmp_path, 400_000).read_text(encoding="utf-8"), encoding="utf-8")
    _, lock = hold_preparation(corpus)  # as another process encoding it: the member learns its BPE, then waits here
    app = RecordingApp(models_dir=d, watch_models=False)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await experiment_screen(pilot, app, name="prep", corpus=corpus, steps=5, vary1="tokenizer=bpe,char", set=TINY_SET)
            await pilot.press("ctrl+s")
            job = app.experiment
            title = lambda: str(screen.query_one("#exp-title").render())  # noqa: E731 (redrawn 4 times a second)
            # (its BPE learned, it waits for the lock: said so, not the merges' figures frozen)
            waiting = lambda: "\ntokenizer=bpe: waiting for another process preparing this corpus · " in title()  # noqa: E731
            assert await wait_for(pilot, waiting, timeout=120), (title(), notes(app))
            assert job.preparing
            await pilot.press("ctrl+o")
            await pilot.pause()
            assert "Stopping: tokenizer=bpe is preparing its corpus: nothing is trained or saved; Start resumes the rest." in notes(app)
            # (the lock still held: the member ends while it waits, not when the other process is done)
            assert await wait_for(pilot, lambda: not job.active, timeout=120), notes(app)
            assert job.members == {"tokenizer=bpe": "stopped", "tokenizer=char": "queued"}, job.error
            assert await wait_for(pilot, lambda: "stopped (Start resumes it)" in title() and "waiting" not in title()), title()
    finally:
        os.close(lock)
    assert not (d / "prep" / "tokenizer=bpe").exists()


async def test_a_first_estimate_says_the_machine_is_being_measured(tmp_path, one_thread, cache, measured, small_probe):  # noqa: F811
    """The estimate settled the plan with the probe but dropped its notes: a first estimate (a probe cache from
    another machine here) sat at "timing a few steps" for ten seconds or more with nothing saying why. They are
    notifications now, as the training screen's are."""
    import json

    other = json.loads(json.dumps(measured))
    other["machine"]["cpu"] = "Another CPU"
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps(other))
    app = RecordingApp(models_dir=make_models_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await experiment_screen(pilot, app, name="probed", corpus=small_corpus_file(tmp_path), steps=5, vary1="n_layer=1,2",
                                         set="n_embd=32 block_size=32 batch_size=8 eval_interval=5 eval_iters=1 sample_chars=0")
        estimate = screen.query_one("#exp-estimate")
        assert await wait_for(pilot, lambda: "about" in str(estimate.render()), timeout=240), str(estimate.render())
        said = notes(app)
        assert f"ignoring the probe cache {cache} (it was measured on another machine)" in said
        assert "measuring this machine once" in said and "Traceback" not in said
        assert "experiment" in {t for t, m in app.notes if "measuring this machine once" in m}


async def test_an_experiment_passes_on_what_the_probe_says(tmp_path, one_thread, cache, measured):  # noqa: F811
    """The experiment's own settle (engine/experiment.run, as it starts) had no note either: bf16 asked for on a
    CPU measured slower in it was trained without the warning `tinygpt train` prints."""
    import json

    slow = json.loads(json.dumps(measured))
    slow["bf16_loss_ok"] = False  # (bf16 lost here: the run in it will be slow)
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps(slow))
    app = RecordingApp(models_dir=make_models_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await experiment_screen(pilot, app, name="warned", corpus=small_corpus_file(tmp_path), steps=2, vary1="n_layer=1,2",
                                set="n_embd=32 block_size=32 batch_size=8 eval_interval=2 eval_iters=1 sample_chars=0 dtype=bf16")
        await pilot.press("ctrl+s")  # (before the estimate: the run's settle is the one heard)
        job = app.experiment
        assert job is not None
        assert await wait_for(pilot, lambda: not job.active, timeout=180), notes(app)
        assert job.state == "finished", job.error
        assert ("experiment", "this CPU has no fast bf16 (measured slower than fp32, or no AMX/AVX-512 BF16): this run will be slow; "
                "--dtype auto picks fp32") in app.notes
