"""What a newcomer meets first in the app: the keys they press by habit, the steps they take out of order."""

from __future__ import annotations

from tests.test_app import listed, load, make_app, models_dir, notes, wait_for  # noqa: F401  (models_dir is a fixture)


async def test_ctrl_c_says_in_plain_words_which_key_quits(models_dir):
    """Ctrl+C (what quits most terminal programs) showed Textual's reminder as "Press [b]ctrl+q[/b] to quit the
    app": the app shows every notification as plain text, and Textual's own was written as markup."""
    app = make_app(models_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await listed(pilot, app)
        app.screen.query_one("#models").focus()
        await pilot.press("ctrl+c")
        assert await wait_for(pilot, lambda: "quit" in notes(app), timeout=5), notes(app)
        assert "Press Ctrl+Q to quit the app." in notes(app)
        assert "[" not in notes(app)
        assert app.is_running


async def test_a_prompt_sent_before_a_model_is_picked_stays_in_the_prompt(models_dir):
    """Typing a prompt and pressing Enter before picking a model said "Pick a model first" and threw the prompt
    away: picked, the model wrote nothing and the prompt was to type again. Now it stays, and Enter sends it."""
    app = make_app(models_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await listed(pilot, app)
        gen = app.screen
        prompt = gen.query_one("#prompt")
        prompt.focus()
        await pilot.press(*"ROMEO:", "enter")
        assert await wait_for(pilot, lambda: "Pick a model" in notes(app), timeout=5)
        assert prompt.value == "ROMEO:"
        await load(pilot, app, "alpha")
        assert gen.focused is prompt and prompt.value == "ROMEO:"
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: gen.stream is not None and gen.stream.finished, timeout=60)
        assert prompt.value == ""  # (sent: the prompt is empty for the next one)
        assert gen.query_one("#output").text.startswith("ROMEO:")


async def test_the_keys_panel_lists_enter_as_done_only_in_a_setting(models_dir):
    """The keys panel (Ctrl+P, Keys) over the prompt listed "⏎ Done", the sampling fields' Enter (back to the
    prompt), where Enter generates. It is listed in a setting, and Enter there still goes back to the prompt."""
    from tests.test_inspect import shown_lines

    app = make_app(models_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        gen = await load(pilot, app, "alpha")
        prompt = gen.query_one("#prompt")
        prompt.focus()
        app.action_show_help_panel()
        table = lambda: shown_lines(gen.query_one("BindingsTable")) if gen.query("BindingsTable") else ""  # noqa: E731
        done = lambda: any(ln.split()[1:2] == ["Done"] for ln in table().splitlines() if ln.strip())  # noqa: E731
        assert await wait_for(pilot, lambda: "Inspect" in table(), timeout=10), table()
        assert not done(), table()
        await pilot.press("f6")
        assert await wait_for(pilot, lambda: gen.focused is not prompt and done(), timeout=10), table()
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: gen.focused is prompt and not done(), timeout=10), table()
