"""A monkey test: thousands of random keys and clicks through Textual's Pilot while a tiny model
generates and another one trains. The app must never crash.

Quitting is the one thing the monkey may not do (it would end the test, not find a bug): the quit
action is replaced by a counter, and everything else (screens, the inspector, the command
palette's absence, forms filled with garbage, training started with nonsense settings) is fair game.
"""

from __future__ import annotations

import asyncio
import random

import pytest
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from tests.conftest import make_models_dir, small_corpus_file as small_corpus  # noqa: E402

from tinygpt_tui.app.app import TinyGPTApp  # noqa: E402

KEYS = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + ["space", "enter", "tab", "shift+tab", "escape", "backspace", "delete", "up", "down", "left", "right", "home", "end",
       "pageup", "pagedown", "ctrl+g", "ctrl+t", "ctrl+n", "ctrl+l", "ctrl+s", "ctrl+r", "ctrl+o", "ctrl+b", "ctrl+y", "f5",
       "f6", "i", "minus", "full_stop", "comma", "colon", "question_mark", "exclamation_mark", "left_square_bracket",
       "ctrl+a", "ctrl+e", "ctrl+k", "ctrl+u", "ctrl+w", "shift+up", "shift+down", "ctrl+home", "ctrl+end"]
    + ["\u7ea2", "\u00e9", "\U0001f600", "\x1b"]  # CJK, accents, emoji, a raw ESC typed into inputs
)
EVENTS = 3000
TIME_LIMIT_S = 30.0  # the event budget or this, whichever comes first


@pytest.mark.slow
async def test_random_keys_and_clicks_never_crash_the_app(tmp_path, monkeypatch):
    models = make_models_dir(tmp_path)
    corpus = small_corpus(tmp_path)
    quits = []

    async def no_quit(self):
        quits.append(1)

    # Pilot waits, after every key and click, until the process is idle (CPU time not advancing),
    # for up to a second; with a model generating and training in threads it never is. The monkey
    # only needs the event loop to get a turn, like a fast typist at a real terminal.
    import textual.app
    import textual.pilot

    async def brief_turn(min_sleep: float = 0.0, max_sleep: float = 1.0) -> None:
        await asyncio.sleep(0.003)

    monkeypatch.setattr(textual.app, "wait_for_idle", brief_turn)
    monkeypatch.setattr(textual.pilot, "wait_for_idle", brief_turn)
    monkeypatch.setattr(TinyGPTApp, "action_quit", no_quit)
    monkeypatch.setattr(TinyGPTApp, "exit", lambda self, *a, **kw: quits.append(2))
    rng = random.Random(1234)
    app = TinyGPTApp(models_dir=models, watch_models=False)
    done = 0
    async with app.run_test(size=(90, 28)) as pilot:
        # a model loaded and generating a long text ...
        gen = app.get_screen("generate")  # (a small folder is listed before the first frame)
        lst = gen.query_one("#models")
        lst.focus()
        lst.highlighted = 0
        await pilot.press("enter")
        for _ in range(400):
            if gen.loaded is not None:
                break
            await pilot.pause(0.05)
        assert gen.loaded is not None
        gen.query_one("#sampling").set_value("length", 300)  # the monkey's own Enters start more
        await pilot.press(*"ROMEO:", "enter")
        # ... and a tiny training running in the background
        await pilot.press("ctrl+t")
        await pilot.pause()
        ts = app.screen
        from textual.widgets import Input, Select

        for wid, v in {"train-corpus-path": corpus, "train-name": "monkey", "train-preset": "tiny", "hp-n_layer": 1,
                       "hp-n_embd": 32, "hp-block_size": 16, "hp-batch_size": 4, "hp-eval_interval": 5,
                       "train-steps": 100000, "train-minutes": "", "train-device": "cpu"}.items():
            w = ts.query_one(f"#{wid}")
            w.value = v if isinstance(w, Select) else str(v)
            assert isinstance(w, (Input, Select))
        await pilot.press("ctrl+s")
        assert app.training is not None
        await pilot.press("ctrl+g")

        t0 = time.monotonic()
        while done < EVENTS and time.monotonic() - t0 < TIME_LIMIT_S:
            r = rng.random()
            if r < 0.8:
                await pilot.press(rng.choice(KEYS))
            elif r < 0.97:
                w, h = app.size
                await pilot.click(offset=(rng.randrange(w), rng.randrange(h)))
            else:
                await pilot.resize_terminal(rng.randint(40, 160), rng.randint(12, 50)) if hasattr(pilot, "resize_terminal") else None
            done += 1
            if done % 200 == 0:
                assert app.is_running
        elapsed = time.monotonic() - t0
        assert app.is_running
        job = app.training
        if job is not None and job.active:
            job.stop()
            for _ in range(600):
                if not job.active:
                    break
                await pilot.pause(0.05)
        if gen.stream is not None:
            gen.stop_generation()
        await pilot.pause(0.2)
    assert not quits or True  # (a crash would have raised as the test app closed)
    assert done >= 10, f"the monkey drove only {done} events in {elapsed:.0f} s"
    print(f"monkey: {done} random keys/clicks in {elapsed:.1f} s, no crash")
