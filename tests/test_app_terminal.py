"""The app on a real (pseudo-)terminal: what reaches the screen, not what the compositor holds.

Pilot tests run Textual's headless driver, which writes nothing; these run `tinygpt` on a pty
with Textual's own driver and read what it writes.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

from tinygpt_tui.app.bench_app import first_frame

from .app_fixtures import make_models_dir

pytest.importorskip("textual")

# `tinygpt --models-dir DIR`, logging each write the terminal driver makes (one line of JSON each)
LOGGING_LAUNCHER = textwrap.dedent(
    """
    import json, sys
    import textual.drivers.linux_driver as L
    log, write = open(sys.argv.pop(1), "w"), L.LinuxDriver.write
    def logged(self, data):
        log.write(json.dumps(data) + "\\n"); log.flush()
        return write(self, data)
    L.LinuxDriver.write = logged
    from tinygpt_tui.app.launch import run
    run()
    """
)


def test_the_first_frame_written_is_the_whole_screen(tmp_path):
    """Textual draws the first screen inside its start-up batch (where frames are not written) and
    then sent only the regions that changed next: the prompt reached the terminal 50-150 ms after
    the rest. The first frame written must hold all of it: the models, the prompt, the keys."""
    import json

    models = make_models_dir(tmp_path)
    log = tmp_path / "writes.jsonl"
    markers = ["Models", "alpha", "beta", "broken", "Write a prompt", "palette", "Output", "Sampling"]
    got = first_frame([sys.executable, "-c", LOGGING_LAUNCHER, str(log), "--models-dir", str(models)], markers, size=(100, 30))
    assert got["first_frame_s"] > 0
    writes = [json.loads(line) for line in log.read_text().splitlines()]
    frames = [w for w in writes if len(w) > 1000]  # the set-up sequences before are a few bytes each
    assert frames, writes
    missing = [m for m in markers if m not in frames[0]]
    assert not missing, f"the first frame lacks {missing}"
