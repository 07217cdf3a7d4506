"""The app on a real (pseudo-)terminal: what reaches the screen, not what the compositor holds.

Pilot tests run Textual's headless driver, which writes nothing; these run `tinygpt` on a pty
with Textual's own driver and read what it writes.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap

import pytest

from bench.bench_app import first_frame

from tests.app_fixtures import make_models_dir

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


# ------------------------------------------------------------------ the launch screen
def _launch_env(cache) -> dict:
    import os

    return dict(os.environ, XDG_CACHE_HOME=str(cache), TINYGPT_LAUNCH_SCREEN="1")


def _kept(cache, size) -> bytes:
    """The picture kept for this terminal size (launch_screen's file: two header lines, then the frame)."""
    (path,) = (cache / "tinygpt").glob(f"launch-{size[0]}x{size[1]}-*.frame")  # one per size and models folder
    data = path.read_bytes()
    return data.split(b"\n", 2)[2]


def test_the_launch_screen_is_the_first_frame_textual_wrote_last_time(tmp_path):
    """The first start keeps Textual's first frame; the next shows it before Textual is even imported
    (nothing of the driver's set-up before it), and Textual's own first frame then matches it byte
    for byte. The alternate screen is entered once: some terminals clear it when asked again."""
    from bench.bench_app import DRIVER_STARTED

    models, cache, size = make_models_dir(tmp_path), tmp_path / "cache", (100, 30)
    cmd = [sys.executable, "-m", "tinygpt_tui.app.launch", "--models-dir", str(models)]
    markers = ["Models", "alpha", "beta", "broken", "Write a prompt", "palette"]

    cold = first_frame(cmd, markers, size=size, env=_launch_env(cache))
    assert DRIVER_STARTED in cold["output"][:cold["first_frame_end"]], "no picture yet: Textual drew the first frame"
    picture = _kept(cache, size)
    assert all(m.encode() in picture for m in markers)
    on_terminal = picture.replace(b"\n", b"\r\n")  # as the pty passes it on (ONLCR), for the app and the picture alike

    warm = first_frame(cmd, markers, size=size, env=_launch_env(cache))
    out, end = warm["output"], warm["first_frame_end"]
    assert DRIVER_STARTED not in out[:end], "the first frame came after Textual's driver started"
    assert out.startswith(b"\x1b[?1049h") and 0 < out.find(on_terminal) < out.find(DRIVER_STARTED)
    assert on_terminal in out[out.find(DRIVER_STARTED):], "Textual's first frame differs from the picture"
    assert out.count(b"\x1b[?1049h") == 1
    assert warm["live_frame_s"] > warm["first_frame_s"]
    assert _kept(cache, size) == picture

    other = first_frame(cmd, markers, size=(90, 30), env=_launch_env(cache))  # another size: its own picture
    assert DRIVER_STARTED in other["output"][:other["first_frame_end"]]
    assert _kept(cache, (90, 30)) != picture


def test_a_changed_models_folder_or_code_shows_no_stale_picture(tmp_path):
    """The key covers the models folder: after a model is added, the old picture (without it) is not
    shown, and the new first frame is kept in its place. Turned off, nothing is shown or kept."""
    from bench.bench_app import DRIVER_STARTED

    from tests.app_fixtures import make_model

    models, cache, size = make_models_dir(tmp_path), tmp_path / "cache", (100, 30)
    cmd = [sys.executable, "-m", "tinygpt_tui.app.launch", "--models-dir", str(models)]
    first_frame(cmd, ["Write a prompt", "alpha"], size=size, env=_launch_env(cache))
    before = _kept(cache, size)
    make_model(models, "gamma")
    got = first_frame(cmd, ["Write a prompt", "gamma"], size=size, env=_launch_env(cache))
    assert DRIVER_STARTED in got["output"][:got["first_frame_end"]]
    after = _kept(cache, size)
    assert b"gamma" in after and b"gamma" not in before

    off = tmp_path / "off"
    got = first_frame(cmd, ["Write a prompt", "gamma"], size=size, env=dict(_launch_env(off), TINYGPT_LAUNCH_SCREEN="0"))
    assert DRIVER_STARTED in got["output"][:got["first_frame_end"]]
    assert not off.exists()


def _picture_first(seen: bytes) -> bool:
    """The whole picture (its key bar last) came before Textual's driver started (in one read or not)."""
    from bench.bench_app import DRIVER_STARTED

    started = seen.find(DRIVER_STARTED)
    return b"palette" in seen and (started < 0 or seen.find(b"palette") < started)


def _as_from_a_shell() -> None:
    """Ctrl+C as a program started from an interactive shell has it: pytest run in the background
    (CI, nohup) passes SIGINT on ignored, and a Python started so never raises KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(cmd, env, size=(100, 30)):
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=dict(env, TERM="xterm-256color", COLORTERM="truecolor"),  # as first_frame runs it
                            start_new_session=True, preexec_fn=_as_from_a_shell)
    os.close(slave)
    return proc, master


def _read_until(master, proc, test, timeout=60.0) -> bytes:
    import os
    import select
    import time

    seen, t0 = b"", time.monotonic()
    while not test(seen):
        assert time.monotonic() - t0 < timeout, seen[-400:]
        if select.select([master], [], [], 0.05)[0]:
            try:
                seen += os.read(master, 1 << 16)
            except OSError:
                break
        elif proc.poll() is not None:
            break
    return seen


@contextlib.contextmanager
def _started_on_a_picture(tmp_path, script: str | None = None, size=(100, 30)):
    """`tinygpt` (or a script that runs its launcher) on a pty, a first start having kept its
    picture: (process, the pty's master, the cache folder)."""
    import os

    models, cache = make_models_dir(tmp_path), tmp_path / "cache"
    app = [sys.executable, "-m", "tinygpt_tui.app.launch", "--models-dir", str(models)]
    first_frame(app, ["Write a prompt"], size=size, env=_launch_env(cache))
    cmd = app if script is None else [sys.executable, "-c", script, "--models-dir", str(models)]
    proc, master = _spawn(cmd, _launch_env(cache), size)
    try:
        yield proc, master, cache
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_keys_typed_on_the_launch_screen_reach_the_app_and_the_terminal_is_restored(tmp_path):
    """Ctrl+T pressed while the picture is up (before Textual has started) opens the training screen
    once the app is live; the key is not echoed over the picture; after Ctrl+Q the terminal has its
    echo and line editing back (Textual restores what it found, and it found them turned off)."""
    import os
    import termios

    from bench.bench_app import DRIVER_STARTED

    with _started_on_a_picture(tmp_path) as (proc, master, _):
        before = termios.tcgetattr(master)  # a pty master reads its terminal's settings
        shown = _read_until(master, proc, lambda s: b"palette" in s)
        assert _picture_first(shown), "the picture is meant to come before Textual starts"
        os.write(master, b"\x14zz")  # Ctrl+T, then two letters
        seen = _read_until(master, proc, lambda s: DRIVER_STARTED in s and b"Corpus" in s[s.find(DRIVER_STARTED):])
        assert b"zz" not in seen[:seen.find(DRIVER_STARTED)], "a key typed on the picture was echoed"
        os.write(master, b"\x11")  # Ctrl+Q
        _read_until(master, proc, lambda s: proc.poll() is not None, timeout=20)
        proc.wait(timeout=20)
        after = termios.tcgetattr(master)
    assert before[3] & (termios.ECHO | termios.ICANON) == termios.ECHO | termios.ICANON
    assert after[3] == before[3], "the terminal's settings were not restored"


def test_ctrl_q_on_the_launch_screen_quits_the_app(tmp_path):
    """Ctrl+Q is flow control on a terminal as the shell leaves it (IXON): pressed on the picture, it
    must still reach the app and quit it."""
    import os

    with _started_on_a_picture(tmp_path) as (proc, master, _):
        shown = _read_until(master, proc, lambda s: b"palette" in s)
        assert _picture_first(shown)
        os.write(master, b"\x11")
        _read_until(master, proc, lambda s: proc.poll() is not None, timeout=30)
        assert proc.wait(timeout=20) == 0


FAILING_LAUNCHER = textwrap.dedent(
    """
    import sys
    import tinygpt_tui.app.app as A
    def fail(**kw):
        raise RuntimeError("the app could not start")
    A.run_app = fail
    from tinygpt_tui.app.launch import run
    run()
    """
)


def test_a_start_that_fails_after_the_picture_leaves_the_terminal_as_it_was(tmp_path):
    """Should the app fail before Textual takes over, the picture is taken down (the alternate screen
    left, the cursor and line wrap back) and the terminal's settings restored."""
    import termios

    from tinygpt_tui.app.launch_screen import UNDO

    with _started_on_a_picture(tmp_path, FAILING_LAUNCHER) as (proc, master, _):
        before = termios.tcgetattr(master)
        seen = _read_until(master, proc, lambda s: proc.poll() is not None and b"could not start" in s)
        proc.wait(timeout=20)
        after = termios.tcgetattr(master)
    assert proc.returncode != 0
    assert b"palette" in seen, "no picture was shown"
    assert UNDO in seen[seen.find(b"palette"):]
    assert after[3] == before[3]


def _in_write(pid: int, fd: int) -> bool:
    """The process is inside write(2) on this descriptor (Linux: /proc/PID/syscall)."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    import platform

    write = {"x86_64": "1", "aarch64": "64"}.get(platform.machine(), "1")
    return len(fields) > 1 and fields[0] == write and int(fields[1], 16) == fd


SLOW_LAUNCHER = textwrap.dedent(
    """
    import sys, time
    import tinygpt_tui.app.app as A
    run_app = A.run_app
    def slow(**kw):
        time.sleep(30)  # a slow import of Textual, stretched
        run_app(**kw)
    A.run_app = slow
    from tinygpt_tui.app.launch import run
    run()
    """
)


@pytest.mark.parametrize("how", ["ctrl+c while the picture is written", "SIGTERM while it is up", "SIGHUP while it is up"])
def test_a_start_interrupted_on_the_picture_leaves_the_terminal_as_it_was(tmp_path, how):
    """Ctrl+C while a terminal is slow to read the picture (the write blocks: nothing reads the pty
    here), or SIGTERM or SIGHUP before Textual takes over: the picture is taken down and the
    terminal's settings restored. The first used to leave the alternate screen on, the others
    killed the process with the picture up."""
    import os
    import signal
    import termios
    import time

    from tinygpt_tui.app.launch_screen import UNDO

    size = (400, 150)  # a picture of 100+ kB: more than a pty holds unread, so writing it blocks
    with _started_on_a_picture(tmp_path, SLOW_LAUNCHER, size) as (proc, master, cache):
        assert len(_kept(cache, size)) > 100_000
        before = termios.tcgetattr(master)
        shown = b""
        if how.startswith("ctrl+c"):
            # the picture has begun, and the process is stuck writing the rest into the full pty
            shown = _read_until(master, proc, lambda s: s.startswith(b"\x1b[?1049h"))
            deadline = time.monotonic() + 30
            while not _in_write(proc.pid, fd=2):
                assert time.monotonic() < deadline, "never seen writing the picture"
                time.sleep(0.01)
            os.kill(proc.pid, signal.SIGINT)
            expected = 130
        else:
            shown = _read_until(master, proc, lambda s: b"palette" in s)
            sig = signal.SIGTERM if "TERM" in how else signal.SIGHUP
            os.kill(proc.pid, sig)
            expected = 128 + sig
        seen = shown + _read_until(master, proc, lambda s: proc.poll() is not None and (shown + s).endswith(UNDO), timeout=30)
        assert proc.wait(timeout=20) == expected
        after = termios.tcgetattr(master)
    assert seen.startswith(b"\x1b[?1049h") and seen.endswith(UNDO)
    assert after[3] == before[3] and after[0] == before[0] and after[6] == before[6]
