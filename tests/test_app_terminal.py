"""The app on a real (pseudo-)terminal: what reaches the screen, not what the compositor holds.

Pilot tests run Textual's headless driver, which writes nothing; this runs `tinygpt` on a pty
with Textual's own driver, reads what it writes, and quits it with Ctrl+Q.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from bench.bench_app import first_frame
from tests.conftest import make_models_dir, small_corpus_file
from tinygpt_tui.engine import folder as ckpt


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


# The app on a terminal with a run training from its first frame (as the training screen's Start does).
TRAINING_APP = r"""
import signal, sys
from tinygpt_tui.app.app import TinyGPTApp

# as an app started from a terminal: the suite may run under nohup or in the background, whose ignored SIGHUP
# the child inherits (and the app leaves an ignored SIGHUP ignored)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
from tinygpt_tui.engine.train import TrainConfig

class Training(TinyGPTApp):
    def on_ready(self):
        super().on_ready()
        self.start_training(TrainConfig(corpus=sys.argv[1], name="run", models_dir=sys.argv[2], preset="tiny", n_layer=1, n_head=2,
                                        n_embd=32, block_size=16, batch_size=8, max_steps=1_000_000, eval_interval=1_000_000,
                                        eval_iters=1, sample_chars=0, device="cpu", dtype="fp32", threads=1))

Training(models_dir=sys.argv[2]).run()
"""


@pytest.mark.slow
@pytest.mark.parametrize("hangup", [False, True])
def test_sigterm_or_the_terminal_closing_while_training_saves_the_run_and_ends(tmp_path, hangup):
    """`kill` (SIGTERM) ended the app at once, and so did closing its terminal or tmux pane (SIGHUP): the run lost
    every step since its last checkpoint (here: all of them). Now it stops and saves as Ctrl+Q does; with the
    terminal gone (writes to it fail) the process still ends once the run has saved, instead of hanging."""
    import pty

    models = tmp_path / "models"
    corpus = small_corpus_file(tmp_path)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", TRAINING_APP, str(corpus), str(models)], stdin=slave, stdout=slave,
                            stderr=slave, env=dict(os.environ, TERM="xterm-256color"), start_new_session=True)
    os.close(slave)

    def drain():  # the terminal reads what the app draws
        try:
            while os.read(master, 1 << 16):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    metrics = models / "run" / "metrics.jsonl"
    try:
        deadline = time.monotonic() + 120
        while '"event": "step"' not in (metrics.read_text() if metrics.is_file() else "") and time.monotonic() < deadline:
            time.sleep(0.1)  # (polling the file the run writes)
        assert '"event": "step"' in metrics.read_text(), "the run did not start"
        if hangup:
            os.close(master)  # the terminal is gone: the app's writes to it fail from now on
        proc.send_signal(signal.SIGHUP if hangup else signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        if not hangup:
            os.close(master)
    assert code == 0
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert records[-1]["event"] == "finish" and records[-1]["reason"] == "stopped"
    stopped_at = records[-1]["step"]
    assert stopped_at > 0 and ckpt.load_train_state(models / "run")[1]["step"] == stopped_at
    ckpt.load_model(models / "run")
