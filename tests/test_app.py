"""The app, driven with Textual's Pilot: sidebar, loading, streaming, stopping, training, following."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_model, make_models_dir, small_corpus_file as small_corpus  # noqa: E402
from tinygpt_tui.engine import folder as ckpt  # noqa: E402

from tinygpt_tui.app.app import Confirm, TinyGPTApp  # noqa: E402
from tinygpt_tui.app.output import OutputView  # noqa: E402


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return make_models_dir(tmp_path_factory.mktemp("app"))


async def wait_for(pilot, cond, timeout=60.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        await pilot.pause(step)
    return cond()


class RecordingApp(TinyGPTApp):
    """The app, keeping every notification it showed (title and message) for the tests to read."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.notes: list[tuple[str, str]] = []

    def notify(self, message, *, title="", **kw):
        self.notes.append((str(title), str(message)))
        super().notify(message, title=title, **kw)


def notes(app) -> str:
    return "\n".join(m for _, m in app.notes)


def titles(app) -> str:
    return "\n".join(t for t, _ in app.notes)


async def listed(pilot, app):
    """The models folder is read in a worker right after the first paint."""
    assert await wait_for(pilot, lambda: app.get_screen("generate").models_listed, timeout=30)
    await pilot.pause()


async def load(pilot, app, name="alpha"):
    await listed(pilot, app)
    gen = app.get_screen("generate")
    models = gen.query_one("#models")
    models.focus()
    models.highlighted = [i.name for i in models.infos].index(name)
    await pilot.press("enter")
    assert await wait_for(pilot, lambda: gen.loaded is not None and gen.loaded.name == name), notes(app)
    return gen


async def generated(pilot, gen, prompt: str, length: int, timeout: float = 60):
    """``length`` characters generated after ``prompt``, typed in the prompt and sent: waited for to the end."""
    gen.query_one("#sampling").set_value("length", length)
    gen.query_one("#prompt").focus()
    await pilot.press(*prompt, "enter")
    assert await wait_for(pilot, lambda: gen.stream is not None and gen.stream.finished, timeout=timeout)


def option_lines(models, index: int) -> list[str]:
    """A sidebar entry as the terminal shows it: rendered at the list's width, one string a line."""
    from rich.console import Console

    width = models.scrollable_content_region.width - 1  # (the option's right padding)
    console = Console(width=width, color_system=None, legacy_windows=False)
    lines = console.render_lines(models.get_option_at_index(index).prompt, console.options.update_width(width), pad=False)
    return ["".join(seg.text for seg in line).rstrip() for line in lines]


def select_options(select) -> list[str]:
    """The labels a Select offers, as its open list shows them (public OptionList API)."""
    listing = select.query_one("SelectOverlay")
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


def footer_keys(screen) -> list[str]:
    """The footer's keys drawn whole on screen, as their text ("l Lens")."""
    from tinygpt_tui.app.bars import KeyBar

    return [k.text for k in screen.query_one(KeyBar).drawn]


def make_app(models_dir, watch_models=False):
    return RecordingApp(models_dir=models_dir, watch_models=watch_models)


# ------------------------------------------------------------------ generate screen
async def test_the_first_frame_lists_the_models_and_odd_folders(models_dir, tmp_path):
    app = make_app(models_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        gen = app.screen
        assert gen.models_listed  # read before the first frame: a small folder
        assert [i.name for i in gen.query_one("#models").infos] == ["alpha", "beta", "broken"]
        panel = gen.query_one("#sampling")
        panel.set_value("length", 77)
        assert panel.values().max_new_tokens == 77 and "length 77" in str(panel.query_one("#sampling-view").render())
        assert (await panel.edit("length")).value == "77"  # the field, once mounted, has it
    # a weights file whose header would crash a careless reader: the folder is listed as broken
    import struct

    odd = tmp_path / "odd"
    shutil.copytree(models_dir / "alpha", odd / "alpha")
    hdr = json.dumps({"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}).encode()
    (odd / "alpha" / "model.safetensors").write_bytes(struct.pack("<Q", len(hdr)) + hdr + b"\0" * 4)
    app = make_app(odd)
    async with app.run_test(size=(120, 40)) as pilot:
        [info] = app.screen.infos
        assert not info.ok and "unknown dtype" in info.error
    # a folder with more entries than are read before the first frame: read in a worker after it
    from tinygpt_tui.engine.folder import SYNC_LISTING

    big = tmp_path / "big"
    for n in range(SYNC_LISTING + 1):
        (big / f"m{n:03d}").mkdir(parents=True)
    app = make_app(big)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.screen.models_listed, timeout=30)
        assert len(app.screen.query_one("#models").infos) == SYNC_LISTING + 1


async def test_sidebar_lists_models_and_broken_folder(models_dir):
    app = make_app(models_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await listed(pilot, app)
        models = app.get_screen("generate").query_one("#models")
        assert [i.name for i in models.infos] == ["alpha", "beta", "broken"]
        assert models.option_count == 3
        shown = ["\n".join(option_lines(models, i)) for i in range(3)]
        assert "alpha" in shown[0] and "15k params" in shown[0] and "ctx 32" in shown[0] and "val 2.345" in shown[0]
        assert "other" in shown[1] and "val 1.987" in shown[1]
        assert "broken" in shown[2] and 'no "model" section' in " ".join(shown[2].split())
        assert shown[0].splitlines()[1:] == ["  15k params · val 2.345", "  fixture · ctx 32"]
        # picking the broken one explains why, and nothing else happens
        models.focus()
        models.highlighted = 2
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: 'no "model" section' in notes(app))
        assert app.get_screen("generate").loaded is None


async def test_a_narrow_sidebar_keeps_the_figures_on_a_line_and_indents_what_wraps(tmp_path):
    """Issue 16 #14: at 60x18 the parameter count and loss fit; a wrapped line starts under the text, not at column 0."""
    d = tmp_path / "models"
    d.mkdir()
    make_model(d, "wide", n_embd=128, n_layer=4, block_size=128, val_loss=1.4859, corpus="a-long-corpus-name-that-wraps")
    app = make_app(d)
    async with app.run_test(size=(60, 18)) as pilot:
        await listed(pilot, app)
        lines = option_lines(app.screen.query_one("#models"), 0)
        assert lines[1] == "  812k params · val 1.486", lines
        assert len(lines) >= 4 and all(line.startswith("  ") for line in lines[1:]), lines  # the corpus line wrapped, indented


LONG_NAMES = ("lesson-positions-10steps/pos_encoding=alibi,n_layer=4", "my-shakespeare-with-rope_positions-and-a-long-context",
              "shakespeare fine tuned on the sonnets")


@pytest.mark.parametrize("size", [(80, 24), (60, 18)])  # the sidebar 34 and 28 columns wide
async def test_a_long_model_name_in_the_sidebar_breaks_after_a_separator_not_inside_a_word(tmp_path, size):
    """A newcomer's review: "lesson-positions-10steps/pos_" then "encoding=alibi,n_layer=4", and
    "my-shakespeare-with-rope_posi" then "tions-and-...": the names were folded at the sidebar's edge."""
    from rich.cells import cell_len

    from tests.conftest import make_model

    d = tmp_path / "models"
    for name in LONG_NAMES:
        make_model(d, name)
    app = make_app(d)
    async with app.run_test(size=size) as pilot:
        await listed(pilot, app)
        models = app.screen.query_one("#models")
        assert models.outer_size.width == {80: 34, 60: 28}[size[0]]
        for i, info in enumerate(models.infos):
            lines = option_lines(models, i)
            name = [line[2:] for line in lines[:next(n for n, line in enumerate(lines) if "params" in line)]]
            assert len(name) > 1 and all(cell_len(line) <= models.scrollable_content_region.width - 3 for line in name), name
            at = 0  # where the name's next line starts: after a separator, or between words (the space not shown)
            for line in name:
                assert info.name.startswith(line, at), (line, name)
                at += len(line)
                if at < len(info.name):
                    assert line[-1] in "/-_,=" or info.name[at] == " ", name
                    at += info.name[at] == " "
            assert at == len(info.name), name
        if size[0] == 80:
            assert option_lines(models, 0)[:2] == ["  lesson-positions-10steps/", "  pos_encoding=alibi,n_layer=4"]


async def test_the_first_hint_is_read_from_its_first_line_in_a_small_terminal(models_dir):
    """At 60x20 the pick-a-model hint is longer than the pane: it shows from its first line (what to do)
    even as the terminal shrinks; a model's text then follows the end again."""
    app = make_app(models_dir)
    async with app.run_test(size=(60, 20)) as pilot:
        await listed(pilot, app)
        out = app.screen.query_one("#output", OutputView)
        await pilot.pause()
        assert out.text.startswith("Pick a model") and out.max_scroll_y > 0 and out.scroll_offset.y == 0
        await pilot.resize_terminal(50, 16)
        await pilot.pause()
        assert out.max_scroll_y > 0 and out.scroll_offset.y == 0
        gen = await load(pilot, app, "alpha")
        await generated(pilot, gen, "ROMEO:", 2000)
        assert await wait_for(pilot, lambda: out.scroll_offset.y == out.max_scroll_y > 0)  # following the text again


async def test_pick_stream_stop_continue_clear(models_dir):
    app = make_app(models_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        gen = await load(pilot, app, "alpha")
        assert "alpha" in gen.sub_title and "CPU" in gen.sub_title
        assert app.focused is gen.query_one("#prompt")
        gen.query_one("#sampling").set_value("length", 100000)
        await pilot.press(*"ROMEO:", "enter")
        out = gen.query_one("#output", OutputView)
        assert await wait_for(pilot, lambda: gen.stream.generated > 40)
        assert out.text.startswith("ROMEO:")
        assert gen.generating
        await pilot.press("escape")
        stream = gen.stream
        assert await wait_for(pilot, lambda: stream.finished, timeout=10)
        assert stream.stop_event.is_set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        stopped_len = len(out.text)
        assert stopped_len == len("ROMEO:") + stream.generated  # everything sampled is shown, nothing more arrives
        status = str(gen.query_one("#status").render())
        assert "stopped" in status and "chars" in status

        # continue from where it stopped: the old text stays, more follows
        before = out.text
        gen.query_one("#sampling").set_value("length", 30)
        await pilot.press("ctrl+n")
        assert await wait_for(pilot, lambda: gen.stream is not stream and gen.stream.finished and len(out.text) == len(before) + 30)
        assert out.text.startswith(before)

        # clear
        await pilot.press("ctrl+l")
        assert out.text == "" and gen.context == ""


async def test_the_sidebar_hides_and_comes_back_and_the_screen_keeps_its_text_across_modes(models_dir):
    app = make_app(models_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        gen = await load(pilot, app, "alpha")
        await generated(pilot, gen, "ROMEO:", 20)
        out, prompt, sidebar = gen.query_one("#output"), gen.query_one("#prompt"), gen.query_one("#sidebar")
        text = out.text
        assert sidebar.region.width == 34 and out.region.x == prompt.region.x == 34 and out.region.right == 80
        await pilot.press("ctrl+b")  # hidden: the output and the prompt take the whole width
        await pilot.pause()
        assert not sidebar.display and out.region.x == prompt.region.x == 0 and out.region.width == 80
        await pilot.press("f6")  # the sampling settings bring it back, focused
        await pilot.pause()
        assert sidebar.display and out.region.x == 34 and app.focused in gen.query("#sampling Input").nodes
        await pilot.press("ctrl+t")
        assert await wait_for(pilot, lambda: app.current_mode == "training")
        await pilot.press("ctrl+g")  # the same screen again, its text and model kept
        assert await wait_for(pilot, lambda: app.screen is gen)
        assert out.text == text and gen.loaded.name == "alpha"


async def test_new_prompt_replaces_running_one_and_unknown_chars_are_reported(models_dir):
    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = await load(pilot, app, "beta")
        gen.query_one("#sampling").set_value("length", 100000)
        await pilot.press(*"first", "enter")
        assert await wait_for(pilot, lambda: gen.stream.generated > 10)
        first = gen.stream
        gen.query_one("#sampling").set_value("length", 20)
        gen.query_one("#prompt").value = "second€"
        await pilot.press("enter")
        assert first.stop_event.is_set()
        out = gen.query_one("#output", OutputView)
        assert await wait_for(pilot, lambda: gen.stream is not first and gen.stream.finished)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert out.text.startswith("second€") and "first" not in out.text
        assert len(out.text) == len("second€") + 20
        assert "€" in notes(app) and "does not know" in notes(app)


async def test_text_is_inert_and_settings_apply(models_dir):
    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = await load(pilot, app, "alpha")
        panel = gen.query_one("#sampling")
        panel.set_value("temperature", 0)
        panel.set_value("length", 25)
        gen.start("\x1b[2J\x1b]0;pwned\x07hi [bold]x[/bold]", fresh=True)
        assert await wait_for(pilot, lambda: gen.stream.finished)
        out = gen.query_one("#output", OutputView)
        shown = out.text
        assert "\x1b" not in shown and "\x07" not in shown
        assert "␛[2J" in shown and "[bold]x[/bold]" in shown  # visible, not obeyed, not parsed as markup
        # greedy (temperature 0) is deterministic: the same prompt gives the same text
        first = out.text
        gen.start("\x1b[2J\x1b]0;pwned\x07hi [bold]x[/bold]", fresh=True)
        assert await wait_for(pilot, lambda: gen.stream.finished)
        assert out.text == first
        # a bad setting is reported, nothing starts
        panel.set_value("top_p", "1.5")
        old = gen.stream
        gen.start("x", fresh=True)
        await pilot.pause()
        assert gen.stream is old and "top-p" in notes(app)


async def test_scrolling_back_is_not_yanked_to_the_bottom(models_dir):
    app = make_app(models_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        gen = await load(pilot, app, "alpha")
        gen.query_one("#sampling").set_value("length", 100000)
        out = gen.query_one("#output", OutputView)
        await pilot.press("enter")
        # wait until the text is several screens long, following the end meanwhile
        assert await wait_for(pilot, lambda: out.virtual_size.height > out.size.height + 8, timeout=120, step=0.2), (
            gen.stream and gen.stream.generated, out.virtual_size, out.size)
        assert out.scroll_y >= out.max_scroll_y - 1
        out.scroll_to(y=0, animate=False, immediate=True)
        grown = out.virtual_size.height
        assert await wait_for(pilot, lambda: out.virtual_size.height > grown + 3, step=0.2)
        assert out.scroll_y == 0
        # back at the end, it follows again
        out.scroll_end(animate=False, immediate=True)
        grown = out.virtual_size.height
        assert await wait_for(pilot, lambda: out.virtual_size.height > grown + 3, step=0.2)
        assert await wait_for(pilot, lambda: out.scroll_y >= out.max_scroll_y - 2)
        await pilot.press("escape")


async def test_chunks_arriving_faster_than_25_a_second_share_a_repaint(models_dir, monkeypatch):
    app = make_app(models_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        out = app.screen.query_one("#output", OutputView)
        repaints = []
        monkeypatch.setattr(out, "refresh_lines", lambda *a, **kw: repaints.append(time.perf_counter()))
        start = time.perf_counter()
        for i in range(60):  # a chunk every 5 ms or so, as a fast sampler sends them
            out.append(f"chunk {i} ")
            await pilot.pause(0.005)
        took = time.perf_counter() - start
        assert await wait_for(pilot, lambda: out.dirty_from is None)
        assert out.text.endswith("chunk 59 ")
        assert 1 <= len(repaints) <= took / 0.04 + 2, (len(repaints), took)


async def test_inspect_key_pushes_the_inspector_which_loads_its_own_model(models_dir):
    from tinygpt_tui.app.inspector import InspectorScreen

    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = await load(pilot, app, "alpha")
        assert not hasattr(gen.loaded.model, "parameters")  # the pick loaded the compiled step's weights only
        await generated(pilot, gen, "hello", 10)
        gen.query_one("#prompt").focus()
        await pilot.press("f2")  # F2 reaches the inspector even from the prompt
        assert await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen))
        insp = app.screen
        assert insp.text == gen.context and gen.context.startswith("hello") and len(gen.context) == 15
        assert await wait_for(pilot, lambda: insp.analysis is not None)
        assert hasattr(insp.model, "parameters") and insp.tokenizer is gen.loaded.tokenizer  # the PyTorch model, loaded on F2
        assert gen.query_one("#prompt").value == ""
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: app.screen is gen)


async def test_the_inspector_s_bars_are_at_the_temperature_the_text_was_sampled_at(models_dir):
    """The bars were at temperature 1 while the text was sampled at the panel's 0.8, and nothing said so: now
    they are the odds the text was drawn from, with the model's own (T=1) beside them."""
    from tests.test_inspect import shown_lines
    from tinygpt_tui.app.inspector import InspectorScreen
    from tinygpt_tui.app.sidebar import SamplingPanel

    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        gen = await load(pilot, app, "alpha")
        await generated(pilot, gen, "hello", 10)
        for temperature, shown in (("", "T=0.8"), ("1.3", "T=1.3"), ("1", None), ("x", None)):  # (a mistake: the model's own)
            gen.query_one("#sampling", SamplingPanel).set_value("temperature", temperature)
            await pilot.press("f2")
            assert await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen))
            insp = app.screen
            assert await wait_for(pilot, lambda: insp.analysis is not None)
            bars = insp.query_one("#insp-probs")
            assert await wait_for(pilot, lambda: "%" in shown_lines(bars))
            title, bars = shown_lines(insp.query_one("#insp-title")), shown_lines(bars)
            if shown:
                assert shown in title and "T=1 " in bars, (title, bars)
            else:
                assert "T=" not in title and "T=1 " not in bars, (title, bars)
            await pilot.press("escape")
            assert await wait_for(pilot, lambda: app.screen is gen)


async def test_f2_before_generating_inspects_the_prompt_typed_or_says_to_write_one(models_dir):
    """F2 with a prompt typed but nothing generated opened an inspector that said twice "the prompt is
    empty", though the prompt was on screen; with no prompt at all, the same dead screen."""
    from tinygpt_tui.app.inspector import InspectorScreen

    app = make_app(models_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        gen = await load(pilot, app, "alpha")
        gen.query_one("#prompt").focus()
        await pilot.press("f2")
        assert await wait_for(pilot, lambda: "Write a prompt first" in notes(app)) and app.screen is gen
        await pilot.press(*"hello", "f2")
        assert await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen))
        insp = app.screen
        assert await wait_for(pilot, lambda: insp.analysis is not None or insp.error is not None)
        assert insp.error is None and insp.text == "hello"


async def test_generating_after_the_palette_closed_the_inspector_does_not_crash(models_dir):
    """A palette command for the generate screen (Write a prompt, Continue, Sampling settings, ...) run from
    the inspector closes it by popping the screen, which does not call its dismiss callback: the next text
    generated went to the closed inspector, whose widgets were gone (NoMatches: the app died)."""
    from tinygpt_tui.app.inspector import InspectorScreen

    app = make_app(models_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        gen = await load(pilot, app, "alpha")
        gen.query_one("#sampling").set_value("length", 20)
        gen.query_one("#prompt").focus()
        await pilot.press(*"hello", "f2")
        assert await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen))
        insp = app.screen
        assert await wait_for(pilot, lambda: insp.analysis is not None)
        insp.min_interval = insp.last_duration = 0.0  # (no pause between passes: a person is slower than the throttle)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        commands["Write a prompt"].callback()  # (as the palette does)
        assert await wait_for(pilot, lambda: app.screen is gen and not insp.children)  # closed and taken apart
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: gen.stream is not None and gen.stream.finished)
        assert app.screen is gen and app.return_code is None and len(gen.context) == 25
        await pilot.press("f2")  # a new inspector follows the text as before
        assert await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen) and app.screen is not insp)
        assert await wait_for(pilot, lambda: app.screen.analysis is not None and app.screen.text == gen.context)


async def test_the_screen_keys_work_in_the_inspector_too(models_dir):
    """The README's "anywhere" keys (Ctrl+G, Ctrl+T, F3, F4) did nothing in the inspector: a modal screen
    keeps the app's bindings from its keys."""
    from tinygpt_tui.app.inspector import InspectorScreen

    app = make_app(models_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        gen = await load(pilot, app, "alpha")
        gen.query_one("#prompt").focus()
        await pilot.press(*"hello", "f2")
        for key, mode in (("ctrl+t", "training"), ("f3", "runs"), ("f4", "experiment"), ("ctrl+g", "generate")):
            if app.showing() != "generate":
                await pilot.press("ctrl+g")  # back to the generate screen, where the inspector is still open
            assert await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen))
            await pilot.press(key)
            assert await wait_for(pilot, lambda: app.showing() == mode and not isinstance(app.screen, InspectorScreen)), key
        assert app.screen is gen


async def test_every_action_is_in_the_command_palette(models_dir):
    app = make_app(models_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await listed(pilot, app)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for t in ("Generate screen", "Training screen", "Refresh models", "Stop generating", "Continue", "Clear output",
                  "Toggle sidebar", "Sampling settings", "Inspect", "Start training", "Stop training", "Resume training",
                  "Follow a run", "Load model: alpha", "Quit"):
            assert t in titles, t
        assert "Load model: broken" not in titles
        # every binding has an id (for keymaps)
        from tinygpt_tui.app.generate import GenerateScreen
        from tinygpt_tui.app.training import TrainingScreen

        for cls in (TinyGPTApp, GenerateScreen, TrainingScreen):
            for b in cls.BINDINGS:
                assert b.id, (cls.__name__, b.key)


# ------------------------------------------------------------------ training screen
async def open_training(pilot, app):
    """The training screen, and a function that reads its error line."""
    await pilot.press("ctrl+t")
    await pilot.pause()
    ts = app.screen
    return ts, lambda: str(ts.query_one("#train-error").render())


def fill(screen, **values):
    from textual.widgets import Input, Select

    for wid, v in values.items():
        w = screen.query_one(f"#{wid}")
        if isinstance(w, Select):
            w.value = v
        else:
            assert isinstance(w, Input)
            w.value = str(v)

TINY_RUN = {"train-preset": "tiny", "hp-n_layer": 1, "hp-n_embd": 32, "hp-block_size": 32, "hp-batch_size": 8,
            "train-minutes": "", "train-device": "cpu"}


def fill_tiny_run(ts, corpus, name, **values):
    """The training form set for a one-layer, 32-wide model on ``corpus`` (values override)."""
    fill(ts, **{"train-corpus-path": corpus, "train-name": name, **TINY_RUN, **values})


async def long_run_started(pilot, app, corpus, name, steps=1):
    """A tiny run of 100,000 steps started from the training screen, once it has taken ``steps``: (screen, job)."""
    await pilot.press("ctrl+t")
    await pilot.pause()
    ts = app.screen
    fill_tiny_run(ts, corpus, name, **{"hp-eval_interval": 100000, "train-steps": 100000})
    await pilot.press("ctrl+s")
    job = app.training
    assert await wait_for(pilot, lambda: job.run.step >= steps, timeout=120), job.error
    return ts, job


async def test_training_screen_offers_the_budget_presets_as_the_cli_does(tmp_path):
    from textual.widgets import Input, Select

    from tinygpt_tui.engine.presets import PRESETS

    d = make_models_dir(tmp_path)
    corpus = small_corpus(tmp_path)
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        ts = app.screen
        preset = ts.query_one("#train-preset", Select)
        offered = [label.split(":")[0] for label in select_options(preset)]
        assert offered == ["auto", *PRESETS]  # auto, 1min, 5min, tiny, small, medium, large, nanogpt
        layers = ts.query_one("#hp-n_layer", Input)
        # auto: what it stands for follows the minutes in the form, as `tinygpt train --preset auto --minutes M`
        fill(ts, **{"train-preset": "auto", "train-minutes": "1"})
        await pilot.pause()
        assert layers.placeholder == str(PRESETS["1min"]["n_layer"]) and ts.query_one("#hp-block_size", Input).placeholder == "64"
        fill(ts, **{"train-minutes": "10"})
        await pilot.pause()
        assert layers.placeholder == str(PRESETS["5min"]["n_layer"])
        fill(ts, **{"train-corpus-path": corpus, "train-name": "budget", "train-steps": ""})
        cfg = ts.read_form()
        assert cfg.preset == "auto" and cfg.time_budget == 600 and cfg.resolved().preset == "5min"
        fill(ts, **{"train-preset": "1min", "train-minutes": "2"})
        await pilot.pause()
        assert layers.placeholder == str(PRESETS["1min"]["n_layer"])
        cfg = ts.read_form()
        assert cfg.resolved().preset == "1min" and cfg.resolved().block_size == 64 and cfg.time_budget == 120
        # an empty Steps with minutes is no step limit (as on the command line): "2000" beside "5" read as one
        steps, minutes = ts.query_one("#train-steps", Input), ts.query_one("#train-minutes", Input)
        assert steps.placeholder == "no limit" and cfg.max_steps is None and cfg.resolved().max_steps is None
        minutes.focus()
        await pilot.press("backspace")
        assert await wait_for(pilot, lambda: steps.placeholder == "2000")
        assert ts.read_form().resolved().max_steps == 2000
        await pilot.press("5")
        assert await wait_for(pilot, lambda: steps.placeholder == "no limit")


@pytest.mark.slow  # (two trainings in the app, a model loaded after: 23 s)
async def test_training_screen_trains_resumes_and_the_model_appears(tmp_path):
    d = make_models_dir(tmp_path)
    corpus = small_corpus(tmp_path)
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        ts = app.screen
        assert ts.id == "training"
        fill_tiny_run(ts, corpus, "fresh", **{"hp-eval_interval": 10, "train-steps": 30})
        await pilot.press("ctrl+s")
        job = app.training
        assert job is not None and job.cfg.max_steps == 30
        # training goes on while the user is on the other screen, and the status says so
        await pilot.press("ctrl+g")
        assert await wait_for(pilot, lambda: job.state in ("running", "done"), timeout=120), job.error
        app.get_screen("generate").update_status()
        assert "fresh" in str(app.get_screen("generate").query_one("#status").render())
        await pilot.press("ctrl+t")
        assert await wait_for(pilot, lambda: not job.active, timeout=180), job.error
        assert job.state == "done", job.error
        assert await wait_for(pilot, lambda: ts.view.steps[-1:] == [30] and ts.chart.points == len(ts.view.steps) + len(ts.view.eval_steps))
        view = ts.view
        assert view.steps[-1] == 30 and len(view.steps) >= 3
        assert view.eval_steps == [10, 20, 30] and all(v > 0 for v in view.val_losses)
        assert view.sample
        assert ts.chart.points == len(view.steps) + len(view.eval_steps)
        assert ts.chart.series["val (eval)"][0] == [10, 20, 30]
        assert "step 30 / 30" in str(ts.query_one("#run-progress-text").render())
        # the new model is in the sidebar, ready to generate from
        assert await wait_for(pilot, lambda: any(i.name == "fresh" and i.ok for i in app.get_screen("generate").infos), timeout=30)
        names = [i.name for i in app.get_screen("generate").query_one("#models").infos]
        assert "fresh" in names

        # resume it for 10 more steps
        fill(ts, **{"train-steps": 40})
        await pilot.press("ctrl+r")
        job2 = app.training
        assert job2 is not job and job2.resume
        assert await wait_for(pilot, lambda: not job2.active, timeout=120), job2.error
        assert job2.state == "done", job2.error
        assert await wait_for(pilot, lambda: ts.view.steps[-1:] == [40])
        assert ts.view.start["step"] == 30

        await pilot.press("ctrl+g")
        gen = await load(pilot, app, "fresh")
        await generated(pilot, gen, "ROMEO:", 20)
        assert len(gen.query_one("#output", OutputView).text) == len("ROMEO:") + 20


async def test_the_machine_probe_says_in_the_app_why_a_run_waits_for_it(tmp_path, cache, measured, small_probe):
    """A probe cache from another machine was ignored and the machine measured again in silence: the run sat at
    "preparing" for ten seconds or more and nothing said why. The probe's notes are notifications now."""
    other = json.loads(json.dumps(measured))
    other["machine"]["cpu"] = "Another CPU"
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps(other))
    app = make_app(make_models_dir(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        fill_tiny_run(app.screen, small_corpus(tmp_path), "probed", **{"hp-eval_interval": 2, "train-steps": 2, "train-device": "auto"})
        await pilot.press("ctrl+s")
        job = app.training
        assert await wait_for(pilot, lambda: not job.active, timeout=240), job.error
        assert job.state == "done", job.error
        said = notes(app)
        assert f"ignoring the probe cache {cache} (it was measured on another machine)" in said
        assert "measuring this machine once" in said
        assert "Traceback" not in said


async def test_a_book_dragged_onto_the_corpus_field_is_read_as_its_path(tmp_path):
    """A terminal pastes a dragged file quoted (GNOME) or with its spaces escaped (macOS), a space after it."""
    d = make_models_dir(tmp_path)
    book = tmp_path / "my book's draft.txt"
    book.write_text("To be, or not to be.\n" * 100, encoding="utf-8")
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts, _ = await open_training(pilot, app)
        for pasted in (f"'{tmp_path}/my book'\\''s draft.txt' ", f"{tmp_path}/my\\ book\\'s\\ draft.txt ", f'"{book}"', f" {book} "):
            fill(ts, **{"train-corpus-path": pasted, "train-name": "x"})
            assert ts.read_form().corpus == str(book), pasted


async def test_a_catalog_corpus_not_fetched_is_said_as_it_is_picked(tmp_path, monkeypatch):
    """The form lists the catalog's corpora, those not fetched marked so; picking one said nothing until Start. It
    says at once how to fetch it, and picking a fetched one clears that."""
    from tests.conftest import shakespeare_path

    corpora = tmp_path / "corpora"
    corpora.mkdir()
    monkeypatch.setenv("TINYGPT_CORPORA_DIR", str(corpora))
    app = make_app(make_models_dir(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        ts, err = await open_training(pilot, app)
        fill(ts, **{"train-corpus": "shakespeare"})
        await pilot.pause()
        assert "shakespeare is not fetched yet: `tinygpt corpus fetch shakespeare`" in err(), err()
    shutil.copy(shakespeare_path(), corpora / "tinyshakespeare.txt")
    app = make_app(make_models_dir(tmp_path / "again"))
    async with app.run_test(size=(120, 40)) as pilot:
        ts, err = await open_training(pilot, app)
        fill(ts, **{"train-corpus": "hongloumeng"})  # (not fetched here)
        await pilot.pause()
        assert "hongloumeng is not fetched yet" in err(), err()
        fill(ts, **{"train-corpus": "shakespeare"})
        await pilot.pause()
        assert err() == "", err()  # (fetched: nothing to say)


async def test_a_book_too_small_for_the_form_is_said_in_the_form_s_words(tmp_path):
    """Too short for the context, or for a BPE of 4096: the form's fields are named (context, BPE), not
    the command line's --block-size and --vocab-size, which the form does not have."""
    d = make_models_dir(tmp_path)
    poem = tmp_path / "poem.txt"
    poem.write_text("To be, or not to be.\n" * 30, encoding="utf-8")  # 630 characters: context 128 needs 1,302
    book = small_corpus(tmp_path)  # (60 kB: its pairs merge to fewer than 4096 tokens)
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts, err = await open_training(pilot, app)
        fill(ts, **{"train-corpus-path": str(poem), "train-name": "poem", "train-device": "cpu"})
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: "too short" in err())
        assert "smaller context" in err() and "--" not in err() and app.training is None
        fill_tiny_run(ts, book, "bpe", **{"train-steps": 1, "hp-tokenizer": "bpe 4096"})
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: app.training is not None and app.training.state == "failed", timeout=120)
        assert await wait_for(pilot, lambda: "BPE 4,096 is more than this corpus supports" in err())
        assert "pick a BPE of at most" in err() and "--" not in err() and "--" not in notes(app), notes(app)


async def test_training_screen_bad_input_shows_an_error_and_the_app_survives(tmp_path):
    d = make_models_dir(tmp_path)
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 100)
    short = tmp_path / "short.txt"
    short.write_text("hello there\n" * 5)
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts, err = await open_training(pilot, app)

        fill(ts, **{"train-corpus-path": "", "train-name": "x"})
        await pilot.press("ctrl+s")
        assert "pick a corpus" in err()

        fill(ts, **{"train-corpus-path": str(tmp_path / "nope.txt"), "train-name": "x", "train-device": "cpu"})
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "not found" in err() and app.training is None

        fill(ts, **{"train-corpus-path": str(binary), "train-name": "y"})
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert ("binary" in err() or "UTF-8" in err()) and app.training is None  # refused before a run starts

        fill(ts, **{"train-corpus-path": str(short), "train-name": "z"})
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "too short" in err() and app.training is None  # refused before a run starts

        # impossible hyperparameters: caught before anything starts
        before = app.training
        fill(ts, **{"train-corpus-path": str(short), "train-name": "w", "hp-n_embd": 30, "hp-n_head": 4})
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.training is before and "n-embd" in err()
        fill(ts, **{"hp-n_embd": "", "hp-n_head": "", "hp-lr": "abc"})
        await pilot.press("ctrl+s")
        assert "learning rate" in err()

        # resuming a model that has no training state
        fill(ts, **{"hp-lr": "", "train-name": "alpha"})
        await pilot.press("ctrl+r")
        assert await wait_for(pilot, lambda: app.training.name == "alpha" and app.training.state == "failed")
        assert await wait_for(pilot, lambda: "resume" in err())

        # the app still works
        await pilot.press("ctrl+g")
        await load(pilot, app, "alpha")
        assert not any(i.name in ("x", "y", "z", "w") and i.ok for i in app.get_screen("generate").infos)


WRITER = r"""
import json, sys, time
folder = sys.argv[1]
recs = [{"event": "start", "step": 0, "max_steps": 60, "time_budget": None, "params": 1234, "device": "CPU (1 threads)",
         "dtype": "fp32", "tokens_per_step": 256, "world_size": 2, "corpus": "far"}]
for s in range(10, 61, 10):
    recs.append({"event": "step", "step": s, "loss": 4.0 - s / 30, "lr": 0.001, "tokens_per_s": 5000.0, "elapsed_s": s / 10,
                 "progress": s / 60, "eta_s": (60 - s) / 10, "tokens_seen": s * 256})
    if s % 20 == 0:
        recs.append({"event": "eval", "step": s, "train_loss": 3.9 - s / 30, "val_loss": 4.1 - s / 30, "best_val_loss": 4.1 - s / 30,
                     "elapsed_s": s / 10, "sample": f"sample at {s}"})
recs.append({"event": "finish", "step": 60, "reason": "done", "val_loss": 2.0, "best_val_loss": 2.0, "elapsed_s": 6.0, "path": folder})
with open(folder + "/metrics.jsonl", "a") as f:
    for r in recs:
        line = json.dumps(r) + "\n"
        half = len(line) // 2
        f.write(line[:half]); f.flush(); time.sleep(0.03)  # a reader may see half a line
        f.write(line[half:]); f.flush(); time.sleep(0.03)
"""


async def test_following_a_run_written_by_another_process(tmp_path):
    d = make_models_dir(tmp_path)
    run = d / "remote"
    run.mkdir()
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        ts = app.screen
        fill(ts, **{"train-follow": "remote"})
        await pilot.press("ctrl+l")
        assert ts.source.folder is not None and ts.source.job is None
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(run)])
        try:
            seen_partial = await wait_for(pilot, lambda: 0 < len(ts.view.steps) < 6, timeout=15)
            assert await wait_for(pilot, lambda: bool(ts.view.finish), timeout=20)
        finally:
            proc.wait(timeout=20)
        assert seen_partial  # it was followed while growing, not read once at the end
        assert await wait_for(pilot, lambda: ts.chart.points == 9)
        v = ts.view
        assert v.steps == [10, 20, 30, 40, 50, 60]
        assert v.eval_steps == [20, 40, 60] and v.sample == "sample at 60"
        assert ts.chart.points == 9
        title = str(ts.query_one("#run-title").render())
        assert "remote" in title and "CPU (1 threads)" in title
        assert "step 60 / 60" in str(ts.query_one("#run-progress-text").render())
        # a resumed run rewrites the file shorter: the view starts over instead of breaking
        (run / "metrics.jsonl").write_text(json.dumps({"event": "start", "step": 0, "max_steps": 5, "device": "CPU"}) + "\n")
        assert await wait_for(pilot, lambda: ts.view.steps == [] and ts.view.start.get("max_steps") == 5, timeout=15)


@pytest.mark.slow
async def test_quitting_while_training_asks_then_saves(tmp_path):
    d = make_models_dir(tmp_path)
    corpus = small_corpus(tmp_path)
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts, job = await long_run_started(pilot, app, corpus, "long", steps=10)
        ts.set_focus(None)  # (in a field, Ctrl+C copies)
        await pilot.press("ctrl+c")  # by habit: it says which key quits, and what that does to the run
        assert await wait_for(pilot, lambda: "Press Ctrl+Q to quit the app (it asks first, then stops long and saves it)."
                              in notes(app), timeout=5), notes(app)
        assert job.active
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        await pilot.press("escape")  # changed my mind
        await pilot.pause()
        assert not isinstance(app.screen, Confirm) and job.active and app.is_running
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
        assert await wait_for(pilot, lambda: not job.active and job.state == "stopped", timeout=120)
    assert job.state == "stopped"
    cfg = json.loads((d / "long" / "config.json").read_text())
    assert cfg["figures"]["step"] == job.run.step > 0
    assert ckpt.load_train_state(d / "long")[1]["step"] == job.run.step


async def test_a_run_preparing_its_corpus_shows_the_stage_and_stop_ends_it_saving_nothing(tmp_path):
    """A run started here sat at "preparing" with no figure through its corpus's preparation (minutes of BPE
    learning and encoding for a big corpus): the engine never passed its progress on. Now the progress line
    says the stage and how far it got; Stop ends the preparation there, and nothing is saved: while it waits for
    another process preparing the same corpus too (it waited for that process to finish first)."""
    import os

    from tests.conftest import hold_preparation

    d = make_models_dir(tmp_path)
    corpus = tmp_path / "book.txt"  # (its own text: a BPE learned by an earlier test is not reused)
    corpus.write_text(f"{tmp_path}\n" + small_corpus(tmp_path, 400_000).read_text(encoding="utf-8"), encoding="utf-8")
    folder, lock = hold_preparation(corpus)  # as another process encoding it: the run learns its BPE, then waits here
    app = make_app(d)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            ts, _ = await open_training(pilot, app)
            fill_tiny_run(ts, str(corpus), "prep", **{"hp-tokenizer": "bpe 512", "train-steps": 5})
            await pilot.press("ctrl+s")
            job, line = app.training, ts.query_one("#run-progress-text")
            # (its BPE learned, it waits for the lock: said so, not the merges' figures frozen)
            learned = lambda: [p.text for p in line.parts][:1] == ["preparing the corpus: waiting for another process preparing this corpus"]  # noqa: E731
            assert await wait_for(pilot, learned, timeout=120), ([p.text for p in line.parts], job.error)
            assert [p.text for p in line.parts][-1] == "time left unknown" and ts.query_one("#run-progress").total is None
            assert "preparing" in str(ts.query_one("#run-title").render()) and job.active
            await pilot.press("ctrl+o")
            await pilot.pause()
            assert any("nothing is trained or saved" in m for _, m in app.notes), app.notes
            # (the lock still held: the run ends while it waits, not when the other process is done)
            assert await wait_for(pilot, lambda: not job.active, timeout=120), job.error
            assert job.state == "stopped" and not job.run.start
            title = lambda: str(ts.query_one("#run-title").render())  # noqa: E731 (redrawn 4 times a second)
            assert await wait_for(pilot, lambda: "stopped while preparing its corpus: nothing saved" in title()), title()
            assert any("nothing trained, nothing saved" in m for _, m in app.notes), app.notes
    finally:
        os.close(lock)
    assert not (d / "prep").exists()
    assert len(list(folder.glob("bpe512-*.tokenizer.json"))) == 1  # the BPE it learned: kept for the next run
    assert not list(folder.glob("*.partial")) and len(list(folder.glob("*.bin"))) == 2  # (the characters' files alone)


def test_the_progress_line_of_a_preparation_says_the_time_its_stage_has_left():
    """The time left is the stage's pace so far (from the stage before it's end) over what it has left."""
    from tinygpt_tui.app.progress import RunState, progress_parts

    run = RunState()
    for rec in ({"stage": "scanning", "done": 50_000_000, "total": 100_000_000, "time": 100.0},
                {"stage": "scanning", "done": 100_000_000, "total": 100_000_000, "time": 110.0},
                {"stage": "learning", "done": 30_000_000, "total": 90_000_000, "time": 140.0}):
        run.apply({"event": "prepare", "file": "book.txt", **rec})
    assert [p.text for p in progress_parts(run)] == ["preparing the corpus: reading it for the BPE", "33%", "1m 00s left",
                                                      "30.0 of 90.0 MB"]
    assert run.progress == 30 / 90
    assert [p.text for p in progress_parts(run, live=False)][-2:] == ["33%", "30.0 of 90.0 MB"]  # (stopped: no time left)
    run.apply({"event": "start", "step": 0, "max_steps": 10})
    assert progress_parts(run)[0].text == "step 0 / 10" and run.progress == 0.0


def test_a_stopped_run_s_progress_line_says_stopped_not_done():
    """After Stop (Ctrl+O) the line read "done in 34s", as for a run that had reached its end; it resumes."""
    from tinygpt_tui.app.progress import RunState, progress_parts

    for reason, said in (("stopped", "stopped after 1m 02s"), ("done", "done in 1m 02s"), ("budget", "done in 1m 02s")):
        run = RunState()
        for rec in run_records(upto=100):
            run.apply({**rec, "reason": reason} if rec["event"] == "finish" else rec)
        assert said in [p.text for p in progress_parts(run)], reason


def test_the_bpe_merges_say_the_time_they_have_taken_and_no_time_left():
    """The line said "learning the BPE tokenizer · 100% · 0s left" while the trainer worked out the merges (most of
    the learning's time): nothing measures them, so it says how long they have taken, and no share or time left."""
    from tinygpt_tui.app.progress import RunState, progress_parts

    run = RunState()
    for rec in ({"stage": "learning", "done": 90_000_000, "total": 90_000_000, "time": 100.0},
                {"stage": "merging", "done": 0, "total": 0, "time": 100.25},
                {"stage": "merging", "done": 0, "total": 0, "time": 173.0}):
        run.apply({"event": "prepare", "file": "book.txt", **rec})
    assert [p.text for p in progress_parts(run)] == ["preparing the corpus: working out the BPE's merges",
                                                      "1m 13s so far", "time left unknown"]
    assert run.progress is None  # (the bar: no share done)
    assert [p.text for p in progress_parts(run, live=False)][1:] == ["1m 13s so far"]


async def test_following_a_folder_that_is_not_a_run_says_so_instead_of_waiting(tmp_path):
    """A folder of books given to Follow waited forever for a metrics.jsonl no run would write there."""
    d = make_models_dir(tmp_path)
    books = tmp_path / "books"
    books.mkdir()
    (books / "a.txt").write_text("a book\n")
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts, err = await open_training(pilot, app)
        for where in (books, d):  # (the models folder itself: its runs are inside it)
            fill(ts, **{"train-follow": str(where)})
            await pilot.press("ctrl+l")
            await pilot.pause()
            assert f"{where.name} is not a run's folder" in err() and ts.source is None, err()
        fill(ts, **{"train-follow": "r" * 5000})  # (the system refuses the name: said in its words, the name cut)
        await pilot.press("ctrl+l")
        await pilot.pause()
        said = notes(app).splitlines()[-1]
        assert said.startswith("File name too long: rrr") and "…" in said and len(said) < 200 and ts.source is None, said
        (d / "empty").mkdir()  # a run about to start: followed, and waited for
        fill(ts, **{"train-follow": "empty"})
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert ts.source is not None and ts.source.folder == d / "empty" and err() == ""


async def test_stop_while_following_another_run_shows_the_run_it_stops(tmp_path):
    """Ctrl+O stops the app's own run; while another run was followed it stopped the app's run off screen,
    the followed one going on as if Stop had done nothing. The view goes back to the run stopping, named."""
    d = make_models_dir(tmp_path)
    corpus = small_corpus(tmp_path)
    write_run(d / "remote", run_records(upto=50, finish=False))
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts, job = await long_run_started(pilot, app, corpus, "mine")
        await follow(pilot, app, "remote")
        assert ts.source.job is None
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert ts.source.job is job and "mine" in str(ts.query_one("#run-title").render())
        assert any("Stopping mine" in m for _, m in app.notes)
        assert await wait_for(pilot, lambda: not job.active, timeout=120)


async def test_ctrl_q_twice_while_training_asks_once_and_esc_answers_it(tmp_path):
    """A second Ctrl+Q while the question is up crashed the app (two screens with one id), stopping the run;
    now it leaves the one question, and Esc goes back to the running run."""
    d = make_models_dir(tmp_path)
    corpus = small_corpus(tmp_path)
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        _, job = await long_run_started(pilot, app, corpus, "long")
        await pilot.press("ctrl+q", "ctrl+q")
        await pilot.pause()
        assert app.is_running and [type(s) for s in app.screen_stack].count(Confirm) == 1
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and not isinstance(app.screen, Confirm) and job.active
        job.stop()
        assert await wait_for(pilot, lambda: not job.active, timeout=120)
    assert app.return_code in (None, 0)


# ------------------------------------------------------------------ the entry point's fast path
def test_tinygpt_alone_opens_the_app_and_anything_else_is_the_command_line(tmp_path):
    from tinygpt_tui.__main__ import app_args

    assert app_args([]) == (True, None)
    assert app_args(["--models-dir", "x/y"]) == (True, "x/y")
    assert app_args(["--models-dir=x"]) == (True, "x")
    for argv in (["models"], ["--help"], ["--version"], ["--models-dir"], ["--models-dir", "--help"], ["--models-dir", "d", "models"], ["-x"]):
        assert app_args(argv)[0] is False, argv
    out = subprocess.run([sys.executable, "-m", "tinygpt_tui", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("tinygpt ")
    out = subprocess.run([sys.executable, "-m", "tinygpt_tui", "models", "--models-dir", str(tmp_path / "none")], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in out.stderr


# ------------------------------------------------------------------ the training screen as a tester found it in tmux
def run_records(upto=300, max_steps=300, finish=True):
    """A run's metrics.jsonl records: a step every 10, an evaluation every 50, the last loss 2.305 and val 2.400."""
    recs = [{"event": "start", "step": 0, "max_steps": max_steps, "time_budget": None, "params": 110976, "device": "CPU (2 threads)",
             "dtype": "fp32", "tokens_per_step": 8192, "world_size": 1, "corpus": "tinyshakespeare"}]
    for s in [1, *range(10, upto + 1, 10)]:
        recs.append({"event": "step", "step": s, "loss": 2.305 if s == upto else 4.0 - s / 200, "lr": 0.003, "tokens_per_s": 46500.0,
                     "elapsed_s": s / 5, "progress": s / max_steps, "eta_s": 62.0, "tokens_seen": s * 8192})
        if s % 50 == 0:
            recs.append({"event": "eval", "step": s, "train_loss": 2.39, "val_loss": 2.400 if s == upto else 4.1 - s / 200,
                         "best_val_loss": 2.4, "elapsed_s": s / 5, "sample": f"sample at {s}"})
    if finish:
        recs.append({"event": "finish", "step": upto, "reason": "done", "val_loss": 2.290, "best_val_loss": 2.4, "elapsed_s": 62.0,
                     "path": "x"})
    return recs


def write_run(folder: Path, recs) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "metrics.jsonl", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs)


async def follow(pilot, app, name):
    await pilot.press("ctrl+t")
    await pilot.pause()
    ts = app.screen
    fill(ts, **{"train-follow": name})
    await pilot.press("ctrl+l")
    return ts


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_the_progress_line_fits_and_never_cuts_a_figure(tmp_path, size):
    from rich.cells import cell_len

    from tinygpt_tui.app.training import progress_parts

    d = make_models_dir(tmp_path)
    write_run(d / "run", run_records(upto=50, finish=False))
    app = make_app(d)
    async with app.run_test(size=size) as pilot:
        ts = await follow(pilot, app, "run")
        line = ts.query_one("#run-progress-text")

        async def shown(until):
            assert await wait_for(pilot, until, timeout=15)
            assert await wait_for(pilot, lambda: line.parts == progress_parts(ts.view))
            text = str(line.render())
            assert cell_len(text) <= line.size.width and line.region.right <= size[0], text
            whole = {f for p in progress_parts(ts.view) for f in (p.text, p.short)}
            assert all(piece in whole for piece in text.split(" · ")), text  # each figure whole, or left out
            return text

        text = await shown(lambda: ts.view.steps[-1:] == [50])
        if size == (120, 40):
            assert text == "step 50 / 300 · 46.5k tok/s · ETA 1m 02s · loss 2.305 · val 2.400"
        else:
            assert text.split(" · ")[0] in ("step 50 / 300", "50/300") and "ETA 1m 02s" in text and "loss 2.305" in text
        write_run(d / "run", run_records()[len(run_records(upto=50, finish=False)):])
        text = await shown(lambda: bool(ts.view.finish))
        if size == (120, 40):
            assert text == "step 300 / 300 · loss 2.305 · done in 1m 02s · val (full split) 2.290"
        else:
            assert text.split(" · ")[0] in ("step 300 / 300", "300/300") and "loss 2.305" in text and "2.290" in text


def run_by_minutes(tmp_path, **records):
    """A models folder holding "run", a run with no step limit (the form's default: minutes only)."""
    d = make_models_dir(tmp_path)
    recs = run_records(**records)
    recs[0]["max_steps"] = None
    write_run(d / "run", recs)
    return d


async def test_a_run_by_minutes_keeps_the_word_step_at_80_columns(tmp_path):
    """A run with no step limit (the form's default: minutes only) showed a bare "50 · ETA 1m 02s" at 80
    columns: the short form of "step 50" dropped the word and left a number that said nothing."""
    app = make_app(run_by_minutes(tmp_path, upto=50, finish=False))
    async with app.run_test(size=(80, 24)) as pilot:
        ts = await follow(pilot, app, "run")
        line = ts.query_one("#run-progress-text")
        assert await wait_for(pilot, lambda: ts.view.steps[-1:] == [50] and "loss 2.305" in str(line.render())), str(line.render())
        assert str(line.render()).startswith("step 50 · "), str(line.render())


async def test_a_finished_run_by_minutes_keeps_its_validation_loss_at_80_columns(tmp_path):
    """A one-minute run ended on "step 1,607 · loss 1.455" at 80x24: the last batch's loss was kept and the
    whole split's 1.630, the figure the models list shows beside it, was the one left out."""
    app = make_app(run_by_minutes(tmp_path, upto=1600, max_steps=1600))
    async with app.run_test(size=(80, 24)) as pilot:
        ts = await follow(pilot, app, "run")
        line = ts.query_one("#run-progress-text")
        assert await wait_for(pilot, lambda: bool(ts.view.finish) and "step 1,600" in str(line.render()), timeout=15)
        assert "val 2.290" in str(line.render()) or "val (full split) 2.290" in str(line.render()), str(line.render())


async def test_the_chart_counts_whole_steps(tmp_path):
    d = make_models_dir(tmp_path)
    write_run(d / "run", run_records())
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts = await follow(pilot, app, "run")
        assert await wait_for(pilot, lambda: bool(ts.view.finish), timeout=15)
        assert await wait_for(pilot, lambda: ts.chart.points == len(ts.view.steps) + len(ts.view.eval_steps) > 0)
        lines = ts.chart.render().plain.splitlines()
        axis = next(i for i, text in enumerate(lines) if "└" in text)
        labels = lines[axis + 1].split()
        assert labels[-1] == "300" and len(labels) >= 3 and all(x.replace(",", "").isdigit() for x in labels), labels
        assert "following metrics.jsonl · finished\n" in str(ts.query_one("#run-title").render())


async def test_a_followed_run_that_ran_out_of_time_says_so(tmp_path):
    d = make_models_dir(tmp_path)
    recs = run_records()
    recs[-1]["reason"] = "budget"
    write_run(d / "run", recs)
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts = await follow(pilot, app, "run")
        assert await wait_for(pilot, lambda: "finished: its time was up" in str(ts.query_one("#run-title").render()), timeout=15)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_a_runs_end_says_it_measures_the_whole_validation_split_while_the_bar_is_full(tmp_path, size):
    """After the last step the bar sat at 100% for up to 30 s (longer on a big corpus) while the whole validation
    split was measured, with the last step's figures and nothing saying what it waited for."""
    from textual.widgets import ProgressBar

    d = make_models_dir(tmp_path)
    write_run(d / "run", run_records(upto=290, finish=False))  # (its last step, 300, not logged: the bar stood at 97%)
    write_run(d / "run", [{"event": "measuring", "step": 300, "scope": "whole validation split", "tokens": 111540}])
    app = make_app(d)
    async with app.run_test(size=size) as pilot:
        ts = await follow(pilot, app, "run")
        line, bar = ts.query_one("#run-progress-text"), ts.query_one("#run-progress", ProgressBar)
        assert await wait_for(pilot, lambda: "measuring" in str(line.render()), timeout=15), str(line.render())
        text = str(line.render())
        assert bar.percentage == 1.0 and "ETA" not in text, text
        if size == (120, 40):
            assert text == "step 300 / 300 · measuring the whole validation split (111,540 tokens) …", text
        else:  # (32 cells)
            assert text == "measuring the validation split …", text
        write_run(d / "run", run_records()[-1:])  # the finish
        assert await wait_for(pilot, lambda: "2.290" in str(line.render()), timeout=15)  # (the whole split's loss)
        assert "measuring" not in str(line.render())


def test_the_generate_screens_status_line_says_a_run_is_measuring_its_validation_split():
    from tinygpt_tui.app.jobs import TrainingJob
    from tinygpt_tui.engine.presets import TrainConfig

    job = TrainingJob(TrainConfig(corpus="book.txt", name="mine", max_steps=300))
    for rec in run_records(upto=290, finish=False):
        job.apply(rec)
    assert "29%" not in job.summary().plain and "97%" in job.summary().plain
    job.apply({"event": "measuring", "step": 300, "scope": "whole validation split", "tokens": 111540})
    assert "step 300 · measuring the validation split …" in job.summary().plain, job.summary().plain


def test_a_run_from_the_app_says_what_the_command_line_says_of_its_corpus(tmp_path):
    """`tinygpt train` names a folder's files and says a file is an HTML page or a Gutenberg book as downloaded; a run
    started in the app said none of it. Its job passes the same lines on as notes (the app shows each), before it trains."""
    from tinygpt_tui.app.jobs import TrainingJob
    from tinygpt_tui.engine.presets import TrainConfig

    books = tmp_path / "books"
    books.mkdir()
    (books / "a.txt").write_text(small_corpus(tmp_path).read_text(encoding="utf-8"), encoding="utf-8")
    (books / "notes.md").write_text("# not a book\n")
    page = tmp_path / "page.txt"
    page.write_text("<!DOCTYPE html>\n<html><body>\n" + (books / "a.txt").read_text(encoding="utf-8") + "</body></html>\n")
    models = make_models_dir(tmp_path)
    for corpus, said in ((books, "reads 1 .txt file(s); left out, not .txt: notes.md"), (page, "page.txt is an HTML page")):
        posted = []  # (the name is taken: the run stops before training, after what it says first)
        job = TrainingJob(TrainConfig(corpus=str(corpus), name="alpha", models_dir=str(models), threads=1, dtype="fp32", max_steps=1))
        assert job.run_thread(posted.append)[0] == "failed"
        notes = [r["text"] for r in posted if r.get("event") == "note"]
        assert any(said in text for text in notes), notes


async def test_a_resume_that_fails_shows_the_failure_not_a_full_bar(tmp_path):
    """A resume refused by its run (the corpus changed since, a training state that does not fit) left the bar
    full and the line at "preparing the corpus: checking the token files · 100%" beside the title's "failed"."""
    from textual.widgets import ProgressBar

    d = make_models_dir(tmp_path)
    corpus = small_corpus(tmp_path)
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts, err = await open_training(pilot, app)
        fill_tiny_run(ts, corpus, "again", **{"hp-eval_interval": 5, "train-steps": 5})
        await pilot.press("ctrl+s")
        job = app.training
        assert await wait_for(pilot, lambda: job.state == "done", timeout=120), job.error
        bar, line = ts.query_one("#run-progress", ProgressBar), ts.query_one("#run-progress-text")
        assert await wait_for(pilot, lambda: bar.percentage == 1.0)
        corpus.write_text(corpus.read_text(encoding="utf-8")[:-100], encoding="utf-8")  # not the book it was trained on
        fill(ts, **{"train-steps": 10})
        await pilot.press("ctrl+r")
        resumed = app.training
        assert await wait_for(pilot, lambda: resumed.state == "failed", timeout=120), resumed.state
        assert await wait_for(pilot, lambda: "failed" in str(line.render()))
        assert "is not the corpus again was trained on" in str(ts.query_one("#run-title").render())
        assert bar.percentage == 0.0 and bar.has_class("-failed"), bar.percentage
        assert str(line.render()) == "failed before training began: nothing trained"


@pytest.mark.slow
async def test_resume_takes_the_forms_steps_and_minutes_and_keeps_the_earlier_curve(tmp_path):
    d = make_models_dir(tmp_path)
    corpus = small_corpus(tmp_path)
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        ts = app.screen
        fill_tiny_run(ts, corpus, "again", **{"hp-eval_interval": 10, "train-steps": 20, "train-minutes": "60"})
        await pilot.press("ctrl+s")
        job = app.training
        assert await wait_for(pilot, lambda: not job.active, timeout=180), job.error
        assert job.state == "done" and job.run.start["time_budget"] == 3600
        # more steps, and Minutes left blank ("no limit"): the hour given before no longer applies
        fill(ts, **{"train-steps": 30, "train-minutes": ""})
        await pilot.press("ctrl+r")
        job2 = app.training
        assert job2 is not job and job2.resume
        assert await wait_for(pilot, lambda: not job2.active, timeout=180), job2.error
        assert job2.state == "done", job2.error
        assert (job2.run.start["max_steps"], job2.run.start["time_budget"]) == (30, None)
        assert job2.run.finish["reason"] == "done" and job2.run.step == 30
        assert await wait_for(pilot, lambda: ts.view.steps[-1:] == [30] and ts.chart.points == len(ts.view.steps) + len(ts.view.eval_steps))
        # the chart carries the first session's points on, from metrics.jsonl
        v = ts.view
        assert v.start["step"] == 20 and v.steps[0] == 1 and v.steps[-1] == 30 and 20 in v.steps
        assert v.eval_steps == [10, 20, 30] and ts.chart.series["val (eval)"][0] == [10, 20, 30]
        assert "step 30 / 30" in str(ts.query_one("#run-progress-text").render())
        # again, with its 30 steps trained: nothing to train, said in the form's words
        await pilot.press("ctrl+r")
        assert await wait_for(pilot, lambda: app.training is not job2 and not app.training.active, timeout=60)
        assert app.training.state == "failed" and "nothing to train; set Steps above 30" in app.training.error, app.training.error


async def test_the_model_card_command_is_the_cli_command_for_the_forms_settings(tmp_path, monkeypatch):
    """The command the app records runs as printed: the CLI reads it into the same TrainConfig."""
    import dataclasses
    import shlex

    import tinygpt_tui.cli.train as cli_train
    from tinygpt_tui.cli.main import app as cli

    d = make_models_dir(tmp_path)
    corpus = tmp_path / "my corpus.txt"  # a space: the command quotes it
    shutil.copy(small_corpus(tmp_path), corpus)
    app = make_app(d)
    forms = [{"train-preset": "tiny", "train-minutes": "0.5", "hp-n_layer": 2, "hp-lr": "3e-4", "hp-dropout": "0.1"},
             {"train-minutes": "", "train-steps": 300, "train-device": "cpu", "hp-block_size": 64, "hp-batch_size": 8}]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        await pilot.pause()
        ts = app.screen
        for values in forms:
            fill(ts, **{"train-corpus-path": str(corpus), "train-name": "new one", **values})
            cfg = ts.read_form()
            argv = shlex.split(cfg.command)
            assert argv[:2] == ["tinygpt", "train"], cfg.command
            got = []
            monkeypatch.setattr(cli_train, "run_training", lambda c, jsonl=False, why=None, tokenizer=None: got.append(c))
            cli(argv[1:], standalone_mode=False)
            assert len(got) == 1
            ours, theirs = dataclasses.asdict(cfg), dataclasses.asdict(got[0])
            assert theirs.pop("command").startswith("tinygpt train")
            ours.pop("command")
            assert theirs == ours
        odd = tmp_path / "b\x1b[2J\nook.txt"  # (an escape and a newline: the card's command, inert on one line, as typed)
        shutil.copy(corpus, odd)
        fill(ts, **{"train-corpus-path": str(odd)})
        command = ts.read_form().command
        assert command.isprintable(), repr(command)
        pasted = subprocess.run(["bash", "-c", "tinygpt() { printf '%s\\0' \"$@\"; }; " + command], capture_output=True, timeout=30)
        assert pasted.stdout.decode("utf-8").split("\0")[1] == str(odd), pasted


async def test_a_resumed_runs_recorded_command_runs_as_printed_with_size_left_at_auto(tmp_path, monkeypatch):
    """Resuming from the form with Size left at auto recorded `--preset auto ... --resume`: the card's command,
    run as printed, was refused ("--preset cannot change") for a run saved as tiny."""
    import shlex

    import tinygpt_tui.cli.train as cli_train
    from tinygpt_tui.cli.main import app as cli

    d = make_models_dir(tmp_path)
    saved = json.loads((d / "alpha" / "config.json").read_text())
    saved.setdefault("training", {}).update(preset="tiny")  # (as `tinygpt train --preset tiny` saves it)
    (d / "alpha" / "config.json").write_text(json.dumps(saved))
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts, _ = await open_training(pilot, app)
        fill(ts, **{"train-name": "alpha", "train-preset": "auto", "train-minutes": "0.5", "train-device": "cpu"})
        cfg = ts.read_form(resume=True)
    got = []
    monkeypatch.setattr(cli_train, "run_training", lambda c, jsonl=False, why=None, tokenizer=None: got.append(c))
    cli(shlex.split(cfg.command)[1:], standalone_mode=False)
    assert len(got) == 1 and got[0].resume and got[0].time_budget == 30.0, cfg.command


async def test_a_name_being_trained_elsewhere_is_refused_in_the_forms_words(tmp_path):
    """A run of the same name going on in another terminal: the form said "train under another --name"."""
    d = make_models_dir(tmp_path)
    lock = ckpt.FolderLock(d / "busy")  # (as a `tinygpt train --name busy` running elsewhere holds it)
    try:
        app = make_app(d)
        async with app.run_test(size=(120, 40)) as pilot:
            ts, err = await open_training(pilot, app)
            fill_tiny_run(ts, small_corpus(tmp_path), "busy", **{"train-steps": 5})
            await pilot.press("ctrl+s")
            assert await wait_for(pilot, lambda: "being trained by another process" in err()), err()
            assert "train under another name" in err() and "--name" not in err()
    finally:
        lock.release()


async def test_an_existing_name_says_which_key_resumes_it(tmp_path):
    d = make_models_dir(tmp_path)
    corpus = small_corpus(tmp_path)
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts, err = await open_training(pilot, app)
        fill(ts, **{"train-corpus-path": corpus, "train-name": "alpha", "train-device": "cpu"})
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "a model named 'alpha' already exists" in err() and "pick another name, or press Ctrl+R to resume it" in err()
        assert "--name" not in err() and "--resume" not in err() and app.training is None
        # the key the binding has now (a keymap may move it)
        app.set_keymap({"train-resume": "ctrl+e"})
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "press Ctrl+E to resume it" in err()


async def test_picking_a_corpus_suggests_a_name_not_taken(tmp_path):
    """The form filled in "my-shakespeare" for a second run on the book too, and Start then said the name was taken."""
    d = make_models_dir(tmp_path)
    make_model(d, "my-shakespeare")
    make_model(d, "my-shakespeare-2")
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts, err = await open_training(pilot, app)
        fill(ts, **{"train-corpus": "shakespeare"})
        await pilot.pause()
        assert ts.query_one("#train-name").value == "my-shakespeare-3"


async def test_resume_refuses_a_setting_changed_in_the_form_instead_of_ignoring_it(tmp_path):
    """Resume went on with the saved settings whatever the form said: 8 layers typed, 2 trained."""
    d = make_models_dir(tmp_path)
    saved = json.loads((d / "alpha" / "config.json").read_text())
    saved.setdefault("training", {}).update(lr=0.003, preset="tiny")  # (as `tinygpt train` saves them)
    (d / "alpha" / "config.json").write_text(json.dumps(saved))
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts, err = await open_training(pilot, app)
        fill(ts, **{"train-name": "alpha", "hp-n_layer": saved["model"]["n_layer"] + 1, "hp-lr": "0.5", "train-preset": "large"})
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert "Resume goes on with alpha's saved settings; layers, learning rate, size cannot change" in err()
        assert app.training is None
        fill(ts, **{"hp-n_layer": saved["model"]["n_layer"], "hp-lr": "", "train-preset": "auto"})  # as saved: no complaint
        assert ts.read_form(resume=True).resume


async def test_a_binary_non_utf8_short_or_blank_corpus_is_refused_before_the_run_starts(tmp_path):
    d = make_models_dir(tmp_path)
    write_run(d / "earlier", run_records())
    binary = tmp_path / "prog"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 100)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Où est le café ?\n".encode("latin-1") * 200)
    short = tmp_path / "short.txt"
    short.write_text("To be, or not to be.\n" * 30, encoding="utf-8")  # 630 characters: the tiny preset's context (128) needs 1,302
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\t\n" * 100, encoding="utf-8")
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        ts = await follow(pilot, app, "earlier")
        assert await wait_for(pilot, lambda: bool(ts.view.finish), timeout=15)
        assert await wait_for(pilot, lambda: ts.chart.points == len(ts.view.steps) + len(ts.view.eval_steps) > 0)
        view, source, title = ts.view, ts.source, str(ts.query_one("#run-title").render())
        points = ts.chart.points
        for path, words in ((binary, "corpus looks binary"), (latin, "corpus is not UTF-8"), (short, "corpus is too short: 630 characters"),
                             (blank, "corpus holds only whitespace")):
            fill(ts, **{"train-corpus-path": str(path), "train-name": "new", "train-device": "cpu"})
            await pilot.press("ctrl+s")
            assert await wait_for(pilot, lambda: words in str(ts.query_one("#train-error").render()))
            assert app.training is None and not (d / "new").exists()
            # said once (a notification and the form's line), and the run on display stays
            assert sum(words in m for _, m in app.notes) == 1, notes(app)
            assert ts.view is view and ts.source is source and ts.chart.points == points == len(view.steps) + len(view.eval_steps)
            assert str(ts.query_one("#run-title").render()) == title


async def test_a_run_in_progress_and_a_dead_one_say_so_and_the_dead_one_can_be_deleted(tmp_path):
    """Issue 16 #2: a folder being trained showed `broken: config.json is missing` until its first
    checkpoint, and one left by a run killed before it stayed "broken"."""
    import fcntl

    d = make_models_dir(tmp_path)
    for name in ("live", "dead"):
        (d / name).mkdir()
        (d / name / ".lock").write_text("1")
        (d / name / "metrics.jsonl").write_text(json.dumps({"event": "start", "step": 0}) + "\n")
    with open(d / "live" / ".lock") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a run holds it while it trains
        app = make_app(d)
        async with app.run_test(size=(120, 40)) as pilot:
            await listed(pilot, app)
            gen = app.screen
            models = gen.query_one("#models")
            names = [i.name for i in models.infos]
            text = {n: " ".join(option_lines(models, i)) for i, n in enumerate(names)}
            assert "training…" in text["live"] and "broken" not in text["live"]
            assert "no checkpoint yet" in text["dead"] and "Delete" in text["dead"] and "broken" not in text["dead"]
            assert models.border_subtitle == "2 ready, 1 training, 1 no checkpoint, 1 broken"  # (not "3 broken")
            models.focus()
            models.highlighted = names.index("live")
            await pilot.press("enter")
            assert await wait_for(pilot, lambda: "is training" in notes(app)) and gen.loaded is None
            await pilot.press("delete")
            assert (d / "live").is_dir() and not isinstance(app.screen, Confirm)  # not offered on a live run
            models.highlighted = names.index("dead")
            await pilot.pause()
            assert any(b.binding.action == "delete_dead_run" and b.binding.show for b in gen.active_bindings.values())
            await pilot.press("delete")
            assert await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
            await pilot.press("y")
            assert await wait_for(pilot, lambda: not (d / "dead").exists() and "dead" not in [i.name for i in gen.infos])
            assert (d / "live").is_dir() and "Deleted" in notes(app)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_training_form_shows_its_focus_and_cuts_no_size(tmp_path, size):
    """Issue 16 #10 and #7: the focused field stood out by one shade; the size labels were cut at 80
    columns; the form defaulted to tiny where the command line defaults to auto."""
    from rich.cells import cell_len
    from textual.widgets import Input, Select

    app = make_app(make_models_dir(tmp_path))
    async with app.run_test(size=size) as pilot:
        await pilot.press("ctrl+t")
        assert await wait_for(pilot, lambda: app.current_mode == "training")
        ts = app.screen
        # (the width class comes with the screen's first resize; on a busy machine after the mode switch)
        assert await wait_for(pilot, lambda: ts.has_class("-narrow" if size[0] < 90 else "-wide"))
        await pilot.pause()
        preset = ts.query_one("#train-preset", Select)
        assert preset.value == "auto"
        room = preset.content_region.width - 3  # (the arrow and its padding)
        labels = select_options(preset)
        for label in labels:
            assert cell_len(label) <= room, (label, room)
        shapes = [label.split(" ", 1)[1] for label in labels]
        assert len(set(shapes)) == len(shapes), shapes  # medium and nanogpt: one shape, told apart by batch
        steps, minutes = ts.query_one("#train-steps", Input), ts.query_one("#train-minutes", Input)
        steps.focus()
        await pilot.pause()
        assert steps.styles.background != minutes.styles.background  # the focused field stands out
        assert steps.styles.background.brightness - minutes.styles.background.brightness > 0.05


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_size_list_says_in_words_what_each_size_is(tmp_path, size):
    """A newcomer's review: the sizes read "tiny (2×64)", "medium (6×384, b32)", shorthand that means
    nothing yet. Each says its layers and parameters; the line under it, its shape and what it is for."""
    from textual.widgets import Select, Static

    from tinygpt_tui.engine.presets import PRESETS

    app = make_app(make_models_dir(tmp_path))
    async with app.run_test(size=size) as pilot:
        await pilot.press("ctrl+t")
        assert await wait_for(pilot, lambda: app.current_mode == "training")
        ts = app.screen
        labels = dict(zip(["auto", *PRESETS], select_options(ts.query_one("#train-preset", Select))))
        assert labels["auto"] == "auto: sized to the minutes" and labels["tiny"] == "tiny: 2 layers, 0.1M params"
        assert labels["medium"] == "medium: 11M params, batch 32" and labels["nanogpt"] == "nanogpt: 11M params, batch 64"
        assert all("params" in label and "×" not in label for label in list(labels.values())[1:]), labels
        note = ts.query_one("#train-size-note", Static)
        said = lambda: " ".join(str(note.render()).split())  # noqa: E731 (as wrapped on screen, in one line)
        assert said().startswith("auto picks 5min: 4 layers, 128 wide") and "shipped shakespeare" in said()
        fill(ts, **{"train-preset": "tiny"})
        assert await wait_for(pilot, lambda: said().startswith("2 layers, 64 wide; 16 passages of 128 characters a step."))
        assert said().endswith("A first try: it runs in seconds and learns little.")
        fill(ts, **{"train-preset": "auto", "train-minutes": "1"})
        assert await wait_for(pilot, lambda: said().startswith("auto picks 1min: 2 layers, 128 wide; 16 passages of 64"))
        await pilot.pause()
        assert ts.query_one("#train-form").content_region.contains_region(note.region)  # on screen, whole


async def test_the_size_note_counts_tokens_where_a_bpe_is_picked(tmp_path):
    """With a BPE picked under Custom hyperparameters the note still read "16 passages of 128 characters a step":
    a context of 128 BPE tokens is several hundred characters."""
    from textual.widgets import Static

    app = make_app(make_models_dir(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+t")
        assert await wait_for(pilot, lambda: app.current_mode == "training")
        ts = app.screen
        said = lambda: " ".join(str(ts.query_one("#train-size-note", Static).render()).split())  # noqa: E731
        fill(ts, **{"train-preset": "tiny", "hp-tokenizer": "bpe 512"})
        assert await wait_for(pilot, lambda: said().startswith("2 layers, 64 wide; 16 passages of 128 tokens a step.")), said()
        fill(ts, **{"hp-tokenizer": "char"})
        assert await wait_for(pilot, lambda: "16 passages of 128 characters a step." in said()), said()


async def test_the_corpus_field_unpicked_asks_for_a_pick_in_the_words_its_error_uses(tmp_path):
    """Walking the form at 80x24, a newcomer read "Corpus  the catalog ▼" as a corpus chosen, pressed Start and was
    told "pick a corpus from the list". Unpicked, the field says so, in those words."""
    from textual.widgets import Select

    app = make_app(make_models_dir(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+t")
        assert await wait_for(pilot, lambda: app.current_mode == "training")
        ts = app.screen
        field = ts.query_one("#train-corpus", Select)
        await pilot.pause()
        shown = field.query_one("SelectCurrent Static")
        line = "".join(seg.text for seg in shown.render_line(0)).strip()
        assert field.is_blank() and line.startswith("pick") and "from the list" in line, line
        assert field.region.contains_region(shown.region)


@pytest.mark.parametrize("size", [(60, 18), (80, 24), (120, 40)])
async def test_the_training_screen_fits_a_small_terminal(tmp_path, size):
    """A tester at 60x18: Start, Stop and Resume below the fold, no ^q Quit, labels cut ("e.g.",
    "auto (by", "Custom hyperparamet", "0%"); at 80x24 the footer ended "^g Gen"."""
    from rich.cells import cell_len
    from textual.widgets import Button, Input

    app = make_app(make_models_dir(tmp_path))
    async with app.run_test(size=size) as pilot:
        await pilot.press("ctrl+t")
        assert await wait_for(pilot, lambda: app.current_mode == "training")
        ts = app.screen
        assert await wait_for(pilot, lambda: footer_keys(ts))  # the footer's keys come after the first frame
        await pilot.pause()
        form = ts.query_one("#train-form").content_region
        for button in ts.query("#train-buttons Button").results(Button):
            assert form.contains_region(button.region), (button.id, button.region, form)
            assert cell_len(str(button.label)) <= button.content_region.width
        for inp in ts.query("#train-form .form-row Input").results(Input):  # (the custom ones are folded)
            assert cell_len(inp.placeholder) <= inp.content_region.width, (inp.id, inp.placeholder)
        custom = ts.query_one("#train-custom CollapsibleTitle")
        assert cell_len(str(custom.render())) <= custom.region.width and custom.region.right <= form.right
        percent = ts.query_one("#run-progress PercentageStatus")
        assert percent.region.width and percent.region.right <= ts.query_one("#run-view").region.right
        keys = footer_keys(ts)
        assert {"^s Start", "^o Stop", "^r Resume", "^q Quit"} <= set(keys), keys
        if size[0] >= 80:
            assert "^g Generate" in keys


def test_wrapped_chinese_lines_never_start_with_closing_punctuation():
    from rich.cells import cell_len

    from tinygpt_tui.app.output import NO_LINE_START, wrap_points

    text = "林黛玉道：你们也太好了，这是什么意思？宝玉笑道“我知道了”，便走了。" * 3
    for width in range(6, 31):
        cuts = wrap_points(text, width)
        lines = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        assert "".join(lines) == text and all(cell_len(line) <= width for line in lines)
        assert not any(line[0] in NO_LINE_START for line in lines[1:]), (width, lines)


async def test_the_status_line_names_an_experiments_member_whole(tmp_path):
    """Two experiments' members are both "pos_encoding=rope" on their own: the status line said only that."""
    from tests.conftest import make_model

    d = tmp_path / "models"
    for exp in ("grid-a", "grid-b"):
        make_model(d / exp, "pos_encoding=rope")
    app = make_app(d)
    async with app.run_test(size=(120, 40)) as pilot:
        await listed(pilot, app)
        gen = app.get_screen("generate")
        models = gen.query_one("#models")
        models.focus()
        models.highlighted = [i.name for i in models.infos].index("grid-b/pos_encoding=rope")
        await pilot.press("enter")
        status = lambda: str(gen.query_one("#status").render())  # noqa: E731
        assert await wait_for(pilot, lambda: gen.loaded is not None and "grid-b/pos_encoding=rope" in status()), status()
