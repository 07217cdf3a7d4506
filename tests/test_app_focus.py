"""Where typing goes, and what the status line keeps, on the generate screen (found trying the app in tmux)."""

from __future__ import annotations

import pytest

from tests.test_app import generated, load, make_app, models_dir, wait_for  # noqa: F401  (models_dir is a fixture)

pytest.importorskip("textual")


async def test_typing_is_never_lost_and_escape_returns_to_the_prompt(models_dir):  # noqa: F811
    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = await load(pilot, app, "alpha")
        prompt = gen.query_one("#prompt")
        gen.query_one("#output").focus()
        await pilot.press(*"KING")  # typed in the read-only pane: it goes to the prompt
        assert prompt.has_focus and prompt.value == "KING"

        (await gen.query_one("#sampling").edit("temperature")).focus()  # (the fields are mounted on the first edit)
        await pilot.press("enter")  # a setting confirmed: back to the prompt, the prompt kept
        assert prompt.has_focus and prompt.value == "KING"

        gen.query_one("#models").focus()
        await pilot.press("escape")  # nothing to stop: Escape means "back to the prompt"
        assert prompt.has_focus and not gen.generating

        gen.query_one("#models").focus()
        await pilot.press(*" Hi")  # typed in the model list (while a model loads, say): the prompt too
        assert prompt.has_focus and prompt.value == "KING Hi"
        gen.query_one("#set-temperature").focus()
        await pilot.press("x")  # refused by a number field: not passed on to the prompt either
        assert prompt.value == "KING Hi" and "x" not in gen.query_one("#set-temperature").value
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Write a prompt" in titles


async def test_the_status_line_leads_with_the_generation_and_forgets_it_with_the_model(models_dir):  # noqa: F811
    app = make_app(models_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        gen = await load(pilot, app, "alpha")
        await generated(pilot, gen, "ab", 30)
        gen.update_status()
        status = str(gen.query_one("#status").render())
        assert status.startswith("done · 30 chars"), status  # first: a narrow terminal cuts the end
        assert "alpha" in status
        gen = await load(pilot, app, "beta")
        status = str(gen.query_one("#status").render())
        assert gen.stream is None and status.startswith("beta"), status


async def test_the_footer_shows_each_screens_keys(models_dir):  # noqa: F811
    app = make_app(models_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        keys = {key for key, active in app.screen.active_bindings.items() if active.binding.show}
        assert {"escape", "ctrl+t", "f2", "ctrl+q"} <= keys and "ctrl+y" not in keys  # show=False bindings are left out
        await pilot.press("ctrl+t")
        assert await wait_for(pilot, lambda: app.current_mode == "training")
        keys = {key for key, active in app.screen.active_bindings.items() if active.binding.show and app.screen.check_action(active.binding.action, ()) is not False}
        assert {"ctrl+s", "ctrl+g"} <= keys


async def test_a_pick_and_a_prompt_typed_in_one_burst_generate_from_that_model(models_dir):  # noqa: F811
    """Keys typed on the launch screen (or pasted) reach the app in one burst, each sent to the widget
    that had focus when the app read it: Down, Enter (pick), a prompt and Enter. The prompt used to be
    refused ("pick a model first") because the pick was a message handled after the burst; it must
    wait for the model and run."""
    from textual import events

    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = app.screen
        assert await wait_for(pilot, lambda: isinstance(app.focused, type(gen.query_one("#models"))))
        keys = [("down", None), ("enter", "\r")] + [(c.lower(), c) for c in "KING"] + [("enter", "\r")]
        for key, char in keys:  # posted together, as a terminal's burst is read
            app.post_message(events.Key(key, char))
        assert await wait_for(pilot, lambda: gen.stream is not None and gen.stream.generated > 0, timeout=30)
        picked = gen.query_one("#models").infos[1].name
        assert gen.loaded.name == picked and gen.context.startswith("KING")


async def test_a_value_typed_right_behind_f6_goes_to_the_settings_not_the_prompt(models_dir):  # noqa: F811
    """F6 and digits in one burst: the digits were read while the prompt still had focus and landed in
    it. They follow the focus to the temperature field, as when typed slowly."""
    from textual import events

    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = await load(pilot, app, "alpha")
        prompt = gen.query_one("#prompt")
        prompt.focus()
        await pilot.press(*"hi")
        slow = str(gen.query_one("#sampling").values().temperature)
        for key, char in [("f6", None), ("1", "1"), ("2", "2")]:  # F6 mounts the fields (the first edit) before the digits are read
            app.post_message(events.Key(key, char))
        assert await wait_for(pilot, lambda: "12" in getattr(app.focused, "value", "")), app.focused
        temp = gen.query_one("#set-temperature")
        assert prompt.value == "hi"
        assert temp.has_focus and temp.value != slow and "12" in temp.value


async def test_a_click_on_a_model_picks_it(models_dir):  # noqa: F811
    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = app.screen
        models = gen.query_one("#models")
        assert await wait_for(pilot, lambda: len(models.infos) > 0 and models.region.height > 0)
        first = models.infos[0].name
        assert await pilot.click("#models", offset=(4, 1))  # inside the border, on the first model
        assert await wait_for(pilot, lambda: gen.loaded is not None and gen.loaded.name == first, timeout=30)


async def test_a_short_terminal_shows_a_model_to_pick_and_every_setting(models_dir):  # noqa: F811
    """At 40x12 Sampling's seven rows left the model list its border alone: "3 ready" and no model to see or
    click. The list keeps a model's first lines; Sampling scrolls under it, a focused setting in sight."""
    app = make_app(models_dir)
    async with app.run_test(size=(40, 12)) as pilot:
        gen = app.screen
        models = gen.query_one("#models")
        assert await wait_for(pilot, lambda: len(models.infos) > 0)
        await pilot.pause()
        assert models.scrollable_content_region.height >= 2
        first = models.infos[0].name
        assert await pilot.click("#models", offset=(4, 1))  # inside the border, on the first model
        assert await wait_for(pilot, lambda: gen.loaded is not None and gen.loaded.name == first, timeout=30)
        await pilot.press("f6")
        await pilot.pause()
        for fid in ("temperature", "top_k", "top_p", "length", "seed"):
            field = gen.query_one(f"#set-{fid}")
            field.focus()
            assert await wait_for(pilot, lambda: gen.get_widget_at(*field.region.offset)[0] is field, timeout=5), fid


async def test_keys_typed_fast_land_in_the_field_focused_when_they_were_typed(models_dir):  # noqa: F811
    """Issue 16: "0.7", Tab, "7" in one burst gave temperature 0.77 and left top-k alone. Tab (and Enter
    in a setting) move the focus as they are read, so the keys behind them follow it."""
    from textual import events

    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = await load(pilot, app, "alpha")
        await gen.query_one("#sampling").edit()
        temp, top_k, prompt = gen.query_one("#set-temperature"), gen.query_one("#set-top_k"), gen.query_one("#prompt")
        temp.value = ""
        temp.focus()
        await pilot.pause()
        burst = [("0", "0"), ("full_stop", "."), ("7", "7"), ("tab", "\t"), ("7", "7"), ("enter", "\r"), ("h", "h"), ("i", "i")]
        for key, char in burst:  # posted together, as a terminal's burst is read
            app.post_message(events.Key(key, char))
        assert await wait_for(pilot, lambda: prompt.value == "hi", timeout=10), (temp.value, top_k.value, prompt.value)
        assert (temp.value, top_k.value) == ("0.7", "7")
        settings = gen.query_one("#sampling").values()
        assert settings.temperature == 0.7 and settings.top_k == 7
        assert prompt.has_focus
        # Shift+Tab goes back as promptly
        top_k.focus()
        await pilot.pause()
        for key, char in [("shift+tab", None), ("1", "1")]:
            app.post_message(events.Key(key, char))
        # (a field focused by Tab has its text selected, so the key replaces it)
        assert await wait_for(pilot, lambda: temp.value in ("1", "0.71"), timeout=10), (temp.value, top_k.value)
        assert top_k.value == "7" and temp.has_focus


async def test_ctrl_u_or_ctrl_w_and_keys_typed_behind_it_keep_those_keys(models_dir):  # noqa: F811
    """Ctrl+U (or Ctrl+W) and characters in one burst: as the Input's own binding the deletion ran
    after the characters were inserted, and took them too."""
    from textual import events

    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = app.screen
        prompt = gen.query_one("#prompt")
        prompt.focus()
        await pilot.press(*"old words")
        for key, char in [("ctrl+w", None), ("n", "n"), ("e", "e"), ("w", "w")]:
            app.post_message(events.Key(key, char))
        assert await wait_for(pilot, lambda: prompt.value == "old new"), prompt.value
        for key, char in [("ctrl+u", None), ("h", "h"), ("i", "i")]:
            app.post_message(events.Key(key, char))
        assert await wait_for(pilot, lambda: prompt.value == "hi"), prompt.value
        assert prompt.cursor_position == 2


@pytest.mark.parametrize("size", [(60, 18), (80, 24), (120, 40)])
async def test_the_status_line_keeps_the_model_and_device_and_cuts_no_part(models_dir, size):  # noqa: F811
    """Issue 16 #15: at 80x24 the model and device were dropped; at 120 columns a run training meanwhile
    was cut with an ellipsis. Parts go whole, the least important first."""
    from rich.cells import cell_len

    from tinygpt_tui.app.jobs import TrainingJob
    from tinygpt_tui.engine.train import TrainConfig

    app = make_app(models_dir)
    async with app.run_test(size=size) as pilot:
        gen = await load(pilot, app, "alpha")
        job = TrainingJob(TrainConfig(corpus="x", name="a-rather-long-run-name"))
        for rec in ({"event": "start", "step": 0, "max_steps": 5000}, {"event": "step", "step": 1234, "loss": 2.3456, "progress": 0.2468}):
            job.apply(rec)
        app.training = job  # a run training meanwhile, as the app holds one (its thread is not needed to show it)
        await generated(pilot, gen, "ab", 300)
        gen.update_status()
        status = gen.query_one("#status")
        text = str(status.render())
        assert text.startswith("done") and "alpha" in text and gen.device_name in text, text
        assert gen.device_name in gen.sub_title  # the header names the device as the status line does
        assert cell_len(text) <= status.content_region.width and "…" not in text, text
        whole = {p.text for p in job.status_parts()} | {p.short for p in job.status_parts()}
        assert all(piece in whole or piece in text for piece in text.split(" · ")), text
        if size[0] >= 120:
            assert "training a-rather-long-run-name · step 1,234" in text and "loss 2.346" in text, text
        app.training = None


async def test_a_finished_runs_status_keeps_its_validation_loss_at_80_columns(models_dir):  # noqa: F811
    """A newcomer's first hour: after a run ended, the status line at 80x24 read "done · my-shakespeare · CPU
    (compiled) · trained my-shakespeare · done", a second "done" where the run's validation loss was the news; then
    "trained my-shakespeare · val 1.630", which read as if my-shakespeare were the model loaded."""
    from tinygpt_tui.app.jobs import TrainingJob
    from tinygpt_tui.engine.train import TrainConfig

    app = make_app(models_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        gen = await load(pilot, app, "alpha")
        job = TrainingJob(TrainConfig(corpus="x", name="my-shakespeare"))
        for rec in ({"event": "start", "step": 0, "max_steps": None}, {"event": "step", "step": 1607, "loss": 1.455, "progress": 1.0},
                    {"event": "finish", "step": 1607, "reason": "budget", "val_loss": 1.6303, "best_val_loss": 1.62, "elapsed_s": 60.0}):
            job.apply(rec)
        job.ended("done", "")
        app.training = job
        await generated(pilot, gen, "ab", 300)
        gen.update_status()
        text = str(gen.query_one("#status").render())
        assert "run my-shakespeare done" in text and "val 1.630" in text, text  # (not "trained X": read as the loaded model)
        assert text.index("alpha") < text.index("run my-shakespeare"), text
        app.training = None


async def test_the_settings_show_as_one_widget_until_edited_then_as_fields(models_dir):  # noqa: F811
    """The first screen draws the five settings in one widget; the first edit (Tab into them, a click
    on a line, F6) mounts the fields, with the values set meanwhile, and focuses the field wanted."""
    from textual import events
    from textual.widgets import Input

    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = app.screen
        panel = gen.query_one("#sampling")
        assert await wait_for(pilot, lambda: app.focused is gen.query_one("#models"))
        assert not panel.query(Input)
        panel.set_value("length", 42)
        view = panel.query_one("#sampling-view")
        shown = str(view.render())
        assert "temp 0.8" in shown and "length 42" in shown and "seed random" in shown
        for key, char in [("tab", "\t"), ("3", "3")]:  # the key behind Tab waits for the fields
            app.post_message(events.Key(key, char))
        assert await wait_for(pilot, lambda: getattr(app.focused, "id", "") == "set-temperature" and app.focused.value == "3")
        assert gen.query_one("#set-length", Input).value == "42" and not view.display
        assert panel.values().temperature == 3.0 and panel.values().max_new_tokens == 42


async def test_a_click_on_a_setting_focuses_its_field(models_dir):  # noqa: F811
    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = app.screen
        assert await wait_for(pilot, lambda: gen.query_one("#sampling-view").region.height == 5)
        assert await pilot.click("#sampling-view", offset=(12, 4))  # the fifth line: seed
        assert await wait_for(pilot, lambda: getattr(app.focused, "id", "") == "set-seed")


async def test_the_footer_follows_the_bindings(models_dir):  # noqa: F811
    """The key bar (app/bars.py) draws the screen's keys as they are: Continue comes on with a model, and
    a click on a key presses it."""
    from tinygpt_tui.app.bars import KeyBar

    app = make_app(models_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        gen = app.screen
        footer = gen.query_one(KeyBar)

        def key(action):
            return next((k for k in footer.drawn if k.action == action), None)

        assert await wait_for(pilot, lambda: key("continue") is not None and not key("continue").enabled)
        assert key("quit") is not None and key("quit").enabled and key("quit").text == "^q Quit"
        await load(pilot, app, "alpha")
        assert await wait_for(pilot, lambda: key("continue") is not None and key("continue").enabled)
        gen.query_one("#output").focus()
        await pilot.pause()
        assert await wait_for(pilot, lambda: key("stop") is not None and key("stop").enabled)
        train = key("show_training") or key("app.show_training")
        assert train is not None and await pilot.click(KeyBar, offset=(train.start + 1, 0))
        assert await wait_for(pilot, lambda: type(app.screen).__name__ == "TrainingScreen"), type(app.screen).__name__


async def test_the_title_bar_names_the_model_and_its_icon_opens_the_palette(models_dir):  # noqa: F811
    """The title bar (app/bars.py) follows the screen's sub-title, and its icon opens the command palette,
    as Textual's Header's does."""
    from textual.command import CommandPalette

    from tinygpt_tui.app.bars import TitleBar

    app = make_app(models_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        bar = app.screen.query_one(TitleBar)
        drawn = lambda: "".join(seg.text for seg in bar.render_line(0))  # noqa: E731  (what is on screen)
        assert await wait_for(pilot, lambda: drawn().strip().endswith("tinygpt")), drawn()
        await load(pilot, app, "alpha")
        assert await wait_for(pilot, lambda: "tinygpt — alpha" in drawn()), drawn()
        await pilot.click(TitleBar, offset=(1, 0))
        assert await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))


async def test_two_edits_at_once_both_get_their_field(models_dir):  # noqa: F811
    """F6 and a click read in one burst: the second edit waits for the fields the first is mounting."""
    import asyncio

    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        panel = app.screen.query_one("#sampling")
        await pilot.pause()
        seed, top_k = await asyncio.gather(panel.edit("seed"), panel.edit("top_k"))
        assert (seed.id, top_k.id) == ("set-seed", "set-top_k") and len(panel.query("#sampling-grid")) == 1


async def test_load_model_from_the_palette_on_any_screen(models_dir):  # noqa: F811
    """"Load model: NAME" was only in the palette on the generate screen; the README says anywhere."""
    from textual.command import CommandPalette
    from textual.widgets import OptionList

    from tests.test_app import listed

    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await listed(pilot, app)
        gen = app.get_screen("generate")
        await pilot.press("ctrl+t")
        assert await wait_for(pilot, lambda: app.screen is app.get_screen("training"))
        await pilot.press("ctrl+p")
        assert await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        palette = app.screen
        await pilot.press(*"Load model: alpha")
        found = lambda: [str(o.prompt) for o in palette.query_one(OptionList).options]  # noqa: E731
        assert await wait_for(pilot, lambda: any("alpha" in o for o in found()), timeout=10), found()
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: app.screen is gen and gen.loaded is not None and gen.loaded.name == "alpha", timeout=30)


async def test_resume_without_a_name_asks_for_the_run_to_resume(models_dir):  # noqa: F811
    """Ctrl+R with no name said "it becomes the folder": true of a new run, not of one to resume."""
    from tests.test_app import notes

    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+t")
        assert await wait_for(pilot, lambda: app.screen is app.get_screen("training"))
        await pilot.press("ctrl+r")
        assert await wait_for(pilot, lambda: "resume" in notes(app)), notes(app)
        assert "becomes the folder" not in notes(app)
        await pilot.press("ctrl+s")  # a new run: the name becomes its folder
        assert await wait_for(pilot, lambda: "becomes the folder" in notes(app)), notes(app)


async def test_the_status_says_compiling_only_for_a_wait_longer_than_a_cache_load(models_dir, monkeypatch):  # noqa: F811
    """The status said "compiling the decoder (once per machine)" on every first generation of a start,
    while numba loaded the step compiled before (a second or two); as `tinygpt generate`, it now waits."""
    import threading

    from tinygpt_tui import sampler
    from tinygpt_tui.fast import decode

    monkeypatch.setattr(decode, "WAIT_S", 0.0)  # the text from numpy meanwhile, as on a first run
    monkeypatch.setattr(decode, "compiling", lambda types, *_: threading.Event())  # never ready
    app = make_app(models_dir)
    async with app.run_test(size=(120, 30)) as pilot:
        gen = await load(pilot, app, "alpha")
        gen.query_one("#sampling").set_value("length", 100_000)
        status = lambda: str(gen.query_one("#status").render())  # noqa: E731
        for quiet_s, said in ((60.0, False), (0.3, True)):
            monkeypatch.setattr(sampler, "COMPILE_QUIET_S", quiet_s)
            gen.query_one("#prompt").focus()
            await pilot.press("a", "enter")
            assert await wait_for(pilot, lambda: gen.stream is not None and not gen.stream.finished and gen.stream.compiling
                                  and gen.stream.generated > 50)
            if said:
                assert await wait_for(pilot, lambda: "compiling" in status()), status()  # (at 120 columns, its short form)
            else:
                await pilot.pause(0.8)  # (two refreshes of the status line)
                assert "compiling" not in status() and status().startswith("generating"), status()
            await pilot.press("escape")
            assert await wait_for(pilot, lambda: gen.stream.finished) and status().startswith("stopped"), status()


@pytest.mark.parametrize("size, said", [((120, 30), "compiling the decoder (once): faster soon"), ((80, 24), "compiling decoder")])
async def test_the_compiling_note_says_what_and_that_it_passes(models_dir, monkeypatch, size, said):  # noqa: F811
    """The first generation on a machine runs on numpy while the decoder compiles. Its note, 58 characters, fit
    only from 133 columns: at 120 and at 80 the status said "generating · compiling · … · CPU (compiled)",
    compiling what, and for how long, unsaid. Now the whole note fits 120 columns and its short form names it."""
    import threading

    from tinygpt_tui import sampler
    from tinygpt_tui.fast import decode

    monkeypatch.setattr(decode, "WAIT_S", 0.0)  # the text from numpy meanwhile, as on a first run
    monkeypatch.setattr(decode, "compiling", lambda types, *_: threading.Event())  # never ready
    monkeypatch.setattr(sampler, "COMPILE_QUIET_S", 0.0)
    app = make_app(models_dir)
    async with app.run_test(size=size) as pilot:
        gen = await load(pilot, app, "alpha")
        gen.query_one("#sampling").set_value("length", 100_000)
        status = lambda: str(gen.query_one("#status").render())  # noqa: E731
        gen.query_one("#prompt").focus()
        await pilot.press("a", "enter")
        assert await wait_for(pilot, lambda: gen.stream is not None and gen.stream.generated > 50 and said in status()), status()
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: gen.stream.finished)


async def test_in_a_browser_the_model_list_has_focus_once_the_page_takes_it(models_dir):  # noqa: F811
    """`tinygpt serve`: Textual's web driver starts the app unfocused (an AppBlur as it starts) and the screen's
    AUTO_FOCUS waits for a focused app; when the page took focus, nothing had it, so Enter picked no model."""
    from textual import events

    from tinygpt_tui.app.app import TinyGPTApp

    class AsInABrowser(TinyGPTApp):
        def on_load(self) -> None:  # (what textual.drivers.web_driver does as it starts)
            self.call_later(self.post_message, events.AppBlur())

    app = AsInABrowser(models_dir=models_dir, watch_models=False)
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.get_screen("generate").models_listed and not app.app_focus)
        app.post_message(events.AppFocus())  # the page takes focus
        assert await wait_for(pilot, lambda: app.focused is app.screen.query_one("#models"))
        await pilot.press("enter")  # and Enter picks the highlighted model
        assert await wait_for(pilot, lambda: app.screen.loaded is not None)
