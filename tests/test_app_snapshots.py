"""Snapshot tests of the app's screens (pytest-textual-snapshot).

Deterministic: fixture models with fixed figures, an empty corpora folder (so
the corpus list shows the catalog only), no model loaded (no device name or
timing text on screen). Update after an intended change with
`pytest tests/test_app_snapshots.py --snapshot-update` and look at the report.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tests.conftest import make_models_dir  # noqa: E402

from tinygpt_tui.app.app import TinyGPTApp  # noqa: E402


@pytest.fixture
def app(tmp_path, monkeypatch):
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    monkeypatch.setenv("TINYGPT_CORPORA_DIR", str(corpora))
    return TinyGPTApp(models_dir=make_models_dir(tmp_path), watch_models=False)


async def models_listed(pilot):
    """The models folder is read in a worker right after the first paint: wait for it."""
    await pilot.app.workers.wait_for_complete()  # (a small folder is listed before the first frame)
    await pilot.pause()


def test_generate_screen(app, snap_compare):
    assert snap_compare(app, terminal_size=(120, 40), run_before=models_listed)


def test_generate_screen_small_terminal(app, snap_compare):
    assert snap_compare(app, terminal_size=(80, 24), run_before=models_listed)


def test_training_screen(app, snap_compare):
    assert snap_compare(app, press=["ctrl+t"], terminal_size=(120, 40), run_before=models_listed)


def test_inspector_screen(tmp_path, snap_compare):
    """The inspector on a fixture model (fixed seed): bars, the heatmap of layer 0, and its key hints."""
    from textual.app import App

    from tinygpt_tui.app.inspector import InspectorScreen
    from tinygpt_tui.engine.folder import load_model

    folder = make_models_dir(tmp_path) / "beta"
    loaded = load_model(folder)
    screen = InspectorScreen(folder, loaded.tokenizer, "ROMEO: what say you, my lord?", model=loaded.model)

    class Host(App):
        def on_mount(self):
            self.push_screen(screen)

    async def analysed(pilot):
        while screen.analysis is None:  # one forward pass in a worker
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
        await pilot.pause()

    assert snap_compare(Host(), terminal_size=(100, 34), run_before=analysed)
