"""Issue 15, the app's side: it never dies of a record or a folder, and if it ever does, it exits non-zero.

Each class of hostile input is given to the app as a user would meet it: a followed metrics.jsonl
with a record that lies, a models folder with a special file where a config should be, a model
whose vocabulary holds escape sequences.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from tests.conftest import CHARS, make_model, make_models_dir
from tests.test_app import follow, generated, listed, load, make_app, notes, titles, wait_for, write_run


async def test_a_followed_record_with_a_400_digit_step_is_left_out_and_the_app_goes_on(tmp_path):
    d = make_models_dir(tmp_path)
    huge = 10**400
    write_run(d / "run", [
        {"event": "start", "step": 0, "max_steps": 100, "device": "CPU", "dtype": "fp32"},
        {"event": "step", "step": huge, "loss": 3.0, "progress": 0.1, "tokens_per_s": 1e3, "eta_s": 5},
        {"event": "step", "step": 10, "loss": 2.5, "progress": 0.2, "tokens_per_s": 1e3, "eta_s": 5},
        {"event": "eval", "step": huge, "train_loss": 2.4, "val_loss": 2.6, "sample": "x"},
    ])
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts = await follow(pilot, app, "run")
        assert await wait_for(pilot, lambda: ts.view is not None and ts.view.steps == [10], timeout=15), notes(app)
        write_run(d / "run", [{"event": "step", "step": 20, "loss": 2.0, "progress": 0.3}])  # and it keeps following
        assert await wait_for(pilot, lambda: ts.view.steps == [10, 20], timeout=15), notes(app)
        await pilot.pause()
        assert ts.chart.points == 2 and "step 20" in str(ts.query_one("#run-progress-text").render())
        ts.view.apply({"event": "step", "step": huge, "loss": 1.0})  # a record a run itself might pass on
        ts.poll()
        await pilot.pause()
        assert ts.view.steps == [10, 20] and app.is_running


async def test_a_fifo_where_a_config_should_be_neither_hangs_the_first_frame_nor_kills_the_app(tmp_path):
    d = make_models_dir(tmp_path)
    (d / "pipe").mkdir()
    fifo = d / "pipe" / "config.json"
    os.mkfifo(fifo)

    def unblock():  # if the app ever blocks on opening the FIFO, this lets it go (and the test fails on time)
        time.sleep(20)
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # no reader waiting: nothing was blocked

    threading.Thread(target=unblock, daemon=True).start()
    t0 = time.monotonic()
    app = make_app(d)
    async with app.run_test(size=(100, 30)) as pilot:
        await listed(pilot, app)
        assert time.monotonic() - t0 < 15
        infos = {i.name: i for i in app.screen.infos}
        assert not infos["pipe"].ok and infos["alpha"].ok
        await load(pilot, app, "alpha")  # the rest of the folder works
        await app.screen.run_action("refresh_models")  # and so does reading it again, in a worker
        assert await wait_for(pilot, lambda: "Models refreshed" in notes(app))
        assert app.is_running


async def test_a_vocabulary_and_a_name_with_escape_sequences_reach_the_screen_inert(tmp_path):
    import torch

    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.engine.folder import save_model
    from tinygpt_tui.model import GPT
    from tinygpt_tui.tokenizer import CharTokenizer

    d = tmp_path / "models"
    d.mkdir()
    tok = CharTokenizer(sorted(set(CHARS) | set("\x1b\x07\x9b\u202e\x7f")))
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=32).validate()
    torch.manual_seed(0)
    model = GPT(cfg)
    name = "evil\x1b[2J\u202e"
    doc = {"name": name, "model": cfg.to_dict(), "training": {}, "corpus": {"name": "c\x1b]0;x\x07", "sha256": "0" * 64},
           "figures": {"step": 1, "val_loss": 2.0, "params": model.num_params()}}
    save_model(d / name, model, tok, doc)
    app = make_app(d)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = await load(pilot, app, name)
        gen.query_one("#sampling").set_value("temperature", 5)  # near uniform: the escape characters get written
        await generated(pilot, gen, "a", 300)
        shown = gen.query_one("#output").text + str(gen.query_one("#status").render()) + gen.sub_title
        assert not any(c in shown for c in "\x1b\x07\x9b\u202e\x7f"), repr(shown[:200])
        assert "␛" in shown  # written, visibly
        assert app.is_running and "generation failed" not in titles(app)


def test_an_app_that_crashes_exits_non_zero(tmp_path):
    """Issue 15: a crash ended with a traceback and exit status 0."""
    script = f"""
import sys
import tinygpt_tui.app.app as A
run = A.TinyGPTApp.run
A.TinyGPTApp.run = lambda self, **kw: run(self, headless=True, **kw)
def boom(self):
    raise RuntimeError("a bug")
A.TinyGPTApp.on_mount = boom
sys.argv = ["tinygpt", "--models-dir", {str(tmp_path)!r}]
from tinygpt_tui.__main__ import main
main()
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "a bug" in out.stdout + out.stderr, (out.returncode, out.stderr[-500:])


async def test_a_read_that_fails_while_following_is_reported_once_and_following_goes_on(tmp_path, monkeypatch):
    """A periodic callback that touches the disk: an error (here EIO from a network drive) is one
    notification, not a crash, and not one every quarter second."""
    import errno

    from tinygpt_tui.engine import folder

    d = make_models_dir(tmp_path)
    write_run(d / "run", [{"event": "start", "step": 0, "max_steps": 100}, {"event": "step", "step": 10, "loss": 2.5}])
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts = await follow(pilot, app, "run")
        assert await wait_for(pilot, lambda: ts.view.steps == [10], timeout=15)
        real = folder.read_metrics

        calls = []

        def failing(*a, **kw):
            calls.append(1)
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(folder, "read_metrics", failing)
        write_run(d / "run", [{"event": "step", "step": 20, "loss": 2.0}])
        assert await wait_for(pilot, lambda: "Input/output error" in notes(app), timeout=15)
        assert await wait_for(pilot, lambda: len(calls) >= 4, timeout=15)  # polls go on, each failing
        assert sum("Input/output error" in m for _, m in app.notes) == 1 and app.is_running
        monkeypatch.setattr(folder, "read_metrics", real)
        assert await wait_for(pilot, lambda: ts.view.steps == [10, 20], timeout=15)


async def test_a_broken_folder_whose_error_reads_as_markup_is_notified_as_plain_text(tmp_path):
    """A stranger's config.json with format "[/]": picking it notified its error as Textual markup, and the toast's
    MarkupError ("auto closing tag has nothing to close") ended the app with a traceback."""
    d = make_models_dir(tmp_path)
    (d / "odd").mkdir()
    (d / "odd" / "config.json").write_text(json.dumps({"format": "[/]", "name": "odd"}))
    app = make_app(d)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:  # (toasts drawn: the markup is read then)
        await listed(pilot, app)
        models = app.get_screen("generate").query_one("#models")
        models.focus()
        models.highlighted = [i.name for i in models.infos].index("odd")
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: "format '[/]'" in notes(app))
        await pilot.pause(0.5)  # (the toast is drawn)
        assert app.is_running
        await load(pilot, app, "alpha")  # and the app goes on


async def test_a_followed_log_s_stage_and_end_of_the_wrong_kind_are_shown_inert_and_the_view_goes_on(tmp_path):
    """A followed metrics.jsonl is a stranger's file: its "prepare" record's stage reached the terminal as escape
    sequences (a run's log set the terminal's title), and a "finish" whose reason was a list stopped the view
    (a TypeError notified at each poll, the screen left on the preparation)."""
    d = make_models_dir(tmp_path)
    evil = "\x1b]2;PWNED\x1b\\\x1b[41mRED"
    write_run(d / "run", [{"event": "prepare", "stage": evil, "done": 5, "total": 10, "time": 1.0}])
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts = await follow(pilot, app, "run")
        line = lambda: str(ts.query_one("#run-progress-text").render())  # noqa: E731
        assert await wait_for(pilot, lambda: "preparing the corpus" in line(), timeout=15), notes(app)
        assert "\x1b" not in line() and "␛]2;PWNED" in line(), repr(line())
        write_run(d / "run", [{"event": "start", "step": 0, "max_steps": 100},
                              {"event": "step", "step": 100, "loss": 2.0, "progress": 1.0},
                              {"event": "finish", "step": 100, "reason": ["done"], "elapsed_s": 5}])
        assert await wait_for(pilot, lambda: "step 100 / 100" in line(), timeout=15), (line(), notes(app))
        assert "finished" in str(ts.query_one("#run-title").render()) and "Error" not in notes(app), notes(app)


async def test_following_a_folder_whose_log_is_a_fifo_or_a_looping_link_says_so_at_once(tmp_path):
    """A metrics.jsonl that is a FIFO was "waiting for records" for ever (it is never read); one that is a link to
    itself was called "not a run's folder: it holds no metrics.jsonl ... but other files (metrics.jsonl, …)"."""
    d = make_models_dir(tmp_path)
    (d / "piped").mkdir()
    os.mkfifo(d / "piped" / "metrics.jsonl")
    (d / "looped").mkdir()
    os.symlink("metrics.jsonl", d / "looped" / "metrics.jsonl")
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        await follow(pilot, app, "piped")
        assert await wait_for(pilot, lambda: "metrics.jsonl is a FIFO" in notes(app), timeout=15), notes(app)
        await follow(pilot, app, "looped")
        assert await wait_for(pilot, lambda: "metrics.jsonl is a symbolic link that loops" in notes(app), timeout=15), notes(app)
        assert "Following" not in notes(app) and app.is_running


async def test_a_model_named_with_a_newline_and_escapes_shows_on_one_line_inert_on_every_screen(tmp_path):
    """A folder named "new⏎line⇥␛[31m" (made by hand, or a stranger's) spanned two lines in the runs screen's legend,
    three in the sidebar and the table, and reached the command palette with its escape sequence raw."""
    from tests.test_app_runs import runs_shown, write_metrics
    from tests.test_app import option_lines

    d = make_models_dir(tmp_path)
    name, shown = "new\nline\t\x1b[31m", "new\\nline\\t␛[31m"
    make_model(d, name, seed=3)
    write_metrics(d / name)
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        gen = await load(pilot, app, name)
        models = gen.query_one("#models")
        assert option_lines(models, [i.name for i in models.infos].index(name))[0] == f"● {shown}"
        palette = [str(c.title) for c in app.get_system_commands(app.screen)]
        assert f"Load model: {shown}" in palette and not any("\x1b" in t or "\n" in t for t in palette), palette
        assert gen.sub_title.startswith(shown) and str(gen.query_one("#status").render()).startswith(shown)
        screen = await runs_shown(pilot, app)  # (opened with it checked: the newest run)
        legend = str(screen.query_one("#runs-legend").render())
        assert f"━━ {shown}" in legend.split("\n")[0], legend
        table = screen.query_one("#runs-table")
        assert shown in [str(table.get_row(k)[1]) for k in table.rows]
        listing = screen.query_one("#runs-list")
        prompts = [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]
        assert not any(c in p for p in prompts for c in "\n\t\x1b"), prompts


async def test_following_a_run_named_tilde_follows_that_run_not_the_home_folder(tmp_path, monkeypatch):
    """The training screen's follow field took "~" for the home folder ("home is not a run's folder"): the name of a
    run in models/ is that run; a path typed with ~ (not a name there) still starts at home."""
    d = make_models_dir(tmp_path)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_run(d / "~", [{"event": "start", "step": 0, "max_steps": 100}, {"event": "step", "step": 10, "loss": 2.5}])
    write_run(tmp_path / "home" / "elsewhere", [{"event": "start", "step": 0, "max_steps": 100}, {"event": "step", "step": 20, "loss": 2.0}])
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts = await follow(pilot, app, "~")
        assert await wait_for(pilot, lambda: ts.view is not None and ts.view.steps == [10], timeout=15), notes(app)
        ts = await follow(pilot, app, "~/elsewhere")
        assert await wait_for(pilot, lambda: ts.view is not None and ts.view.steps == [20], timeout=15), notes(app)


def test_one_line_passes_a_printable_name_through_at_c_speed_and_changes_what_printable_changes():
    """The runs screen cuts each name against every other shown (short_name's peers): one_line ran printable's loop over
    each, and a grid of 100 members took 0.31 s a redraw where it had taken 0.10 s. A name str.isprintable() passes
    is returned as it is: no character printable() changes is printable (every code point checked)."""
    import sys
    import time

    from tinygpt_tui.tokenizer import one_line, printable

    for o in range(sys.maxunicode + 1):
        c = chr(o)
        assert not c.isprintable() or printable(c) == one_line(c) == c, hex(o)
    names = [f"lesson-positions-10steps/pos_encoding=alibi,seed={i}" for i in range(10_000)]
    took = {"one_line": [], "printable": []}
    for _ in range(3):  # (side by side: a loaded machine slows both)
        for fn in (one_line, printable):
            t = time.perf_counter()
            list(map(fn, names))
            took[fn.__name__].append(time.perf_counter() - t)
    assert min(took["one_line"]) * 3 < min(took["printable"]), took


def test_a_followed_logs_own_stage_and_scope_words_stay_on_one_line():
    """A followed metrics.jsonl is anyone's file: its preparation stage and its measuring scope are shown in the
    progress line, where a newline in them broke the line in two."""
    from tinygpt_tui.app.progress import RunState, preparation

    v = RunState()
    v.apply({"event": "prepare", "step": 0, "stage": "reading\nsecond line\x1b]0;title\x07", "done": 1, "total": 4, "time": 1.0})
    words = " ".join(p.text for p in preparation(v)[1])
    assert "\n" not in words and "\x1b" not in words and "reading\\nsecond line" in words
    v.apply({"event": "start", "step": 0, "max_steps": 10})
    v.apply({"event": "measuring", "step": 10, "scope": "the whole\nsplit", "tokens": 1000})
    assert "\n" not in v.measuring_note and "the whole\\nsplit" in v.measuring_note
