"""The app on a real (pseudo-)terminal: what reaches the screen, not what the compositor holds.

Pilot tests run Textual's headless driver, which writes nothing; this runs `tinygpt` on a pty
with Textual's own driver, reads what it writes, and quits it with Ctrl+Q.
"""

from __future__ import annotations

import sys

import pytest

from bench.bench_app import first_frame
from tests.conftest import make_models_dir


@pytest.mark.slow
@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_tinygpt_on_a_terminal_shows_the_whole_first_screen_and_quits(tmp_path, size):
    models = make_models_dir(tmp_path)
    markers = ["Models", "alpha", "beta", "broken", "Write a prompt", "palette", "Output"]
    got = first_frame([sys.executable, "-m", "tinygpt_tui", "--models-dir", str(models)], markers, size=size)
    assert 0 < got["first_frame_s"] < 60
    assert b"Traceback" not in got["output"]


@pytest.mark.slow
def test_quitting_with_a_model_loaded_is_prompt(tmp_path):
    """Ctrl+Q with a model loaded: the process ends without the interpreter's teardown of torch."""
    models = make_models_dir(tmp_path)
    cmd = [sys.executable, "-m", "tinygpt_tui", "--models-dir", str(models)]
    got = first_frame(cmd, ["Models", "alpha", "Write a prompt"], then=(b"\r", b"CPU"))
    assert b"CPU" in got["output"][got["first_frame_end"]:], "the model did not load"
    assert got["quit_s"] < 1.5, got["quit_s"]
