"""The app at rest does no work: no screen polls or redraws while nothing can change by itself, and a text
cursor stops blinking (each blink is a frame) a while after the last key. What each test counts is work done
(polls, redraws, frames asked for), over a stretch measured by a timer of the test's own, which a loaded
machine slows as it slows the app's: a count depends on what the app does, not on how busy the machine is."""

from __future__ import annotations

import json

from tests.conftest import make_models_dir
from tests.test_app import listed, run_records, wait_for, write_run
from tests.test_app_runs import runs_dir, runs_shown

from tinygpt_tui.app.app import TinyGPTApp
from tinygpt_tui.app.experiment import ExperimentScreen
from tinygpt_tui.app.training import TrainingScreen

TICK_S = 0.25  # the polling screens' period (training and experiment screens): the test's clock ticks at it


async def ticks(pilot, n: int) -> None:
    """n ticks of a timer of the test's own, at the screens' own period."""
    count = 0

    def tick() -> None:
        nonlocal count
        count += 1

    timer = pilot.app.set_interval(TICK_S, tick)
    assert await wait_for(pilot, lambda: count >= n, timeout=60)
    timer.stop()


class CountingTraining(TrainingScreen):
    def __init__(self):
        super().__init__()
        self.polls = 0

    def poll(self) -> None:
        self.polls += 1
        super().poll()


class CountingExperiment(ExperimentScreen):
    def __init__(self):
        super().__init__()
        self.drawings = 0

    def render_view(self) -> None:
        self.drawings += 1
        super().render_view()


class CountingApp(TinyGPTApp):
    SCREENS = {**TinyGPTApp.SCREENS, "training": CountingTraining, "experiment": CountingExperiment}


def counted(widget, method: str) -> list:
    """The calls of one of a widget's public methods from now on (the method still does its work)."""
    calls, real = [], getattr(widget, method)

    def wrapper(*a, **kw):
        calls.append(a)
        return real(*a, **kw)

    setattr(widget, method, wrapper)
    return calls


async def test_the_training_screen_with_no_run_does_not_poll_and_a_followed_run_is_polled_without_redrawing(tmp_path):
    d = make_models_dir(tmp_path)
    write_run(d / "remote", run_records(finish=False))
    app = CountingApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        ts = app.screen
        assert isinstance(ts, CountingTraining)
        await ticks(pilot, 2)
        before = ts.polls
        await ticks(pilot, 8)
        assert ts.polls - before <= 1  # (it was 8: four polls a second, each a layout pass and a frame)

        ts.follow("remote")  # a run followed: its log may grow at any time, so it is polled
        title = ts.query_one("#run-title")
        assert await wait_for(pilot, lambda: "remote" in str(title.render()))
        updates, before = counted(title, "update"), ts.polls
        await ticks(pilot, 8)
        assert ts.polls - before >= 4
        assert updates == []  # polled, unchanged: its title is not set again (a layout pass and a frame each time)
        with open(d / "remote" / "metrics.jsonl", "a") as f:  # and what it appends is shown
            f.write(json.dumps(run_records()[-1]) + "\n")
        assert await wait_for(pilot, lambda: "finished" in str(title.render()), timeout=15)
        assert len(updates) == 1


async def test_the_experiment_screen_with_no_experiment_does_not_redraw(tmp_path):
    app = CountingApp(models_dir=make_models_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f4")
        screen = app.screen
        assert isinstance(screen, CountingExperiment)
        await ticks(pilot, 2)
        before = screen.drawings
        await ticks(pilot, 8)
        assert screen.drawings - before <= 1  # (it was 8: four a second, for good)


async def test_the_runs_screen_reading_its_folder_again_unchanged_draws_no_frame(tmp_path):
    app = TinyGPTApp(models_dir=runs_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        view = screen.query_one("#runs-view")
        frames = counted(view, "refresh")
        for _ in range(3):  # what its timer does every few seconds
            screen.action_relist()
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert frames == []  # (it was one a listing: the same border title set again)
        await pilot.press("x")  # a title that changes is drawn
        assert "x: tokens" in view.border_title and len(frames) >= 1


async def focused_prompt(pilot, app):
    """The generate screen's prompt, focused, once the models are listed."""
    await listed(pilot, app)
    prompt = app.screen.query_one("#prompt")
    prompt.focus()
    await pilot.pause()
    return prompt


class QuickBlink(TinyGPTApp):
    CURSOR_BLINK_S = 0.3


async def test_the_prompt_s_cursor_stops_blinking_after_a_while_and_a_key_starts_it_again(tmp_path):
    app = QuickBlink(models_dir=make_models_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        prompt = await focused_prompt(pilot, app)
        assert prompt.cursor_blink
        assert await wait_for(pilot, lambda: not prompt.cursor_blink, timeout=15)  # lit, and its blink timer paused
        await pilot.press("a")
        assert prompt.cursor_blink and prompt.value == "a"
        assert await wait_for(pilot, lambda: not prompt.cursor_blink, timeout=15)
        await pilot.press("tab")  # focus moves on: the prompt blinks again once it is back, not meanwhile
        assert not prompt.has_focus and prompt.cursor_blink
        prompt.focus()
        await pilot.pause()
        assert prompt.cursor_blink
        assert await wait_for(pilot, lambda: not prompt.cursor_blink, timeout=15)


async def test_the_runs_screen_at_rest_reads_nothing_and_still_sees_a_run_added_grown_or_killed(tmp_path, monkeypatch):
    """It listed the folder again every RELIST_S in a new thread worker, changed or not (20 runs: 0.25 s of CPU a
    minute at rest). Now a stat() of the runs' files each time, and a listing only when it differs."""
    import fcntl

    from tests.conftest import make_model
    from tinygpt_tui.app import runs

    monkeypatch.setattr(runs, "RELIST_S", TICK_S)
    listings, run_folders = [], runs.run_folders
    monkeypatch.setattr(runs, "run_folders", lambda *a: listings.append(a) or run_folders(*a))  # (each listing reads the folder)
    d = runs_dir(tmp_path)
    make_model(d, "live", seed=4)
    held = open(d / "live" / ".lock", "w")
    fcntl.flock(held, fcntl.LOCK_EX)  # as a run holds it while it trains
    app = TinyGPTApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await runs_shown(pilot, app)
        assert screen.summaries["live"].status == "training"
        await ticks(pilot, 3)  # (a listing may follow the first: the runs it found are in the stat() from then on)
        n = len(listings)
        await ticks(pilot, 8)
        assert len(listings) == n  # (it was 8 more)

        make_model(d, "delta", seed=5)  # a run added is listed
        assert await wait_for(pilot, lambda: "delta" in screen.summaries, timeout=15)
        with open(d / "alpha" / "metrics.jsonl", "a") as f:  # a run's log that grows is read again
            f.write(json.dumps(run_records()[-1]) + "\n")
        grown = (d / "alpha" / "metrics.jsonl").stat().st_mtime
        assert await wait_for(pilot, lambda: screen.summaries["alpha"].updated == grown, timeout=15)
        held.close()  # a live run killed changes no file: its lock, dropped, is seen
        assert await wait_for(pilot, lambda: screen.summaries["live"].status != "training", timeout=15)
        n = len(listings)
        await ticks(pilot, 8)
        assert len(listings) - n <= 1


class TimerCounting(QuickBlink):
    """QuickBlink, counting the timers the app sets (the cursor's among them)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.timers = 0

    def set_timer(self, *a, **kw):
        self.timers += 1
        return super().set_timer(*a, **kw)

    def set_interval(self, *a, **kw):
        self.timers += 1
        return super().set_interval(*a, **kw)


async def test_the_prompt_s_cursor_blinks_while_keys_come_then_draws_nothing_and_keys_set_no_new_timer(tmp_path):
    """Each key stopped the timer that stills the cursor and set a new one: a timer (an asyncio task) a key.
    One timer now, paused while the cursor is still. What is seen: it blinks (a frame every half second) while
    keys come, even past CURSOR_BLINK_S; a quiet spell and it draws nothing; a key and it blinks again."""
    app = TimerCounting(models_dir=make_models_dir(tmp_path), watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        prompt = await focused_prompt(pilot, app)
        frames, timers, typed = counted(prompt, "refresh"), 0, 0
        while typed < 8 or len(frames) < 4:  # keys for longer than CURSOR_BLINK_S (and than a few blinks)
            before = app.timers
            await pilot.press("a")
            timers, typed = timers + app.timers - before, typed + 1
            assert prompt.cursor_blink
            await ticks(pilot, 1)
        assert timers <= 1, (timers, typed)  # (it was one a key)
        assert await wait_for(pilot, lambda: not prompt.cursor_blink, timeout=15)
        await pilot.pause()
        frames.clear()
        await ticks(pilot, 8)  # two seconds: four blinks, were it blinking
        assert frames == []
        await pilot.press("b")
        assert await wait_for(pilot, lambda: len(frames) >= 3, timeout=15)  # blinking again
        assert prompt.value == "a" * typed + "b"
