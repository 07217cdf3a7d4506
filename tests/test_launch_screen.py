"""The launch screen's picture: its key, the file it is kept in, and bad files (no terminal needed;
tests/test_app_terminal.py runs it on a pty)."""

from __future__ import annotations

import os
import stat

import pytest

from tinygpt_tui.app import launch_screen as ls
from tinygpt_tui.engine.folder import SYNC_LISTING, folder_signature

from tests.app_fixtures import make_models_dir


@pytest.fixture
def models(tmp_path):
    return make_models_dir(tmp_path)


def screen(models, tmp_path, size=(100, 30)):
    return ls.LaunchScreen(models, size, folder=tmp_path / "cache")


def test_a_kept_frame_is_read_back_under_the_same_key_only(models, tmp_path, monkeypatch):
    a = screen(models, tmp_path)
    assert a.cached() is None
    assert a.keep("\x1b[1;1Hframe ◆ one", (100, 30))
    assert stat.S_IMODE(os.stat(a.path).st_mode) == 0o600
    assert screen(models, tmp_path).cached() == "\x1b[1;1Hframe ◆ one".encode()
    assert screen(models, tmp_path, (101, 30)).cached() is None  # another size: another file
    monkeypatch.setenv("COLORTERM", "something-else")
    assert screen(models, tmp_path).cached() is None  # the terminal's colours are in the key
    monkeypatch.undo()
    (models / "alpha" / "config.json").write_text((models / "alpha" / "config.json").read_text() + " ")
    assert screen(models, tmp_path).cached() is None  # so is every model folder's files


def test_a_frame_is_kept_once_and_only_at_the_size_of_its_key(models, tmp_path):
    a = screen(models, tmp_path)
    assert not a.keep("frame", (80, 24))  # drawn after a resize: not the picture for this size
    assert not a.path.exists()
    assert a.keep("frame", (100, 30))
    mtime = os.stat(a.path).st_mtime_ns
    b = screen(models, tmp_path)
    b.frame = b.cached()  # as show() leaves it
    assert not b.keep("frame", (100, 30))  # the same picture is not written again
    assert os.stat(a.path).st_mtime_ns == mtime
    assert b.keep("another frame", (100, 30))
    assert screen(models, tmp_path).cached() == b"another frame"
    assert [p.name for p in a.path.parent.iterdir()] == [a.path.name]  # no temporary file left


@pytest.mark.parametrize("damage", ["empty", "magic", "key", "no frame", "binary", "huge"])
def test_a_damaged_file_shows_nothing(models, tmp_path, damage):
    a = screen(models, tmp_path)
    a.keep("frame", (100, 30))
    data = a.path.read_bytes()
    magic, key, frame = data.split(b"\n", 2)
    bad = {"empty": b"", "magic": b"something else\n" + key + b"\n" + frame, "key": magic + b"\n{}\n" + frame,
           "no frame": magic + b"\n" + key + b"\n", "binary": os.urandom(4096),
           "huge": data + b"x" * (ls.MAX_FRAME_BYTES + 1)}[damage]
    a.path.write_bytes(bad)
    assert screen(models, tmp_path).cached() is None


def test_an_unwritable_cache_folder_keeps_nothing_and_raises_nothing(models, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    a = ls.LaunchScreen(models, (100, 30), folder=blocked / "cache")
    assert not a.keep("frame", (100, 30))
    assert a.cached() is None


def test_shown_only_on_a_utf8_terminal_and_when_not_turned_off(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv(ls.ENV_SWITCH, "1")
    monkeypatch.setattr(ls.sys, "__stdin__", _Tty(False))
    monkeypatch.setattr(ls.sys, "__stderr__", _Tty(False))
    assert not ls.wanted()
    assert ls.LaunchScreen.prepare(os.getcwd()) is None
    monkeypatch.setattr(ls.sys, "__stdin__", _Tty())
    monkeypatch.setattr(ls.sys, "__stderr__", _Tty())
    assert ls.wanted()
    for var, value in [(ls.ENV_SWITCH, "0"), ("TERM", "dumb"), ("TERM", ""), ("TEXTUAL_DRIVER", "x:Y")]:
        with monkeypatch.context() as m:
            m.setenv(var, value)
            assert not ls.wanted(), (var, value)
    monkeypatch.setattr(ls.sys, "__stderr__", _Tty(encoding="latin-1"))
    assert not ls.wanted()  # the picture is kept as UTF-8 bytes


def test_never_a_reason_not_to_start(models, tmp_path, monkeypatch):
    """No home folder to find (HOME unset, a user id with no passwd entry), a models folder too big to
    read before the first frame: no launch screen, and no error."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv(ls.ENV_SWITCH, "1")
    monkeypatch.setattr(ls.sys, "__stdin__", _Tty())
    monkeypatch.setattr(ls.sys, "__stderr__", _Tty())
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(ls.Path, "home", staticmethod(no_home))
    assert ls.LaunchScreen.prepare(models) is None
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG spec says
    assert ls.LaunchScreen.prepare(models) is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert ls.LaunchScreen.prepare(models) is not None
    big = tmp_path / "big"
    for n in range(SYNC_LISTING + 1):
        (big / f"m{n:02d}").mkdir(parents=True)
    assert ls.LaunchScreen.prepare(big) is None
    assert folder_signature(big, limit=SYNC_LISTING) is None  # counted, not looked into
    assert len(folder_signature(big)) == SYNC_LISTING + 1


@pytest.mark.parametrize("sequence", ["\x1b]52;c;aGVsbG8=\x07", "\x1b[?1000h", "\x1b[21t", "\x1bP+q544e\x1b\\", "\x07", "\x9b31m"])
def test_a_frame_that_does_more_than_draw_is_neither_kept_nor_shown(models, tmp_path, sequence):
    """The file is written raw to the terminal: anything but text, colours and cursor moves (a
    clipboard write, a mode switch, a query whose answer would be typed into the app) is refused."""
    frame = "\x1b[1;1H\x1b[38;2;1;2;3mhello\x1b[0m\r\n" + sequence + "x"
    a = screen(models, tmp_path)
    assert a.keep("\x1b[1;1H\x1b[38;2;1;2;3mhello\x1b[0m\r\nx", (100, 30))  # the same without it is fine
    assert not a.keep(frame, (100, 30))
    magic, key, _ = a.path.read_bytes().split(b"\n", 2)
    a.path.write_bytes(magic + b"\n" + key + b"\n" + frame.encode())
    assert screen(models, tmp_path).cached() is None


def test_only_a_file_of_this_users_that_no_one_else_can_write_is_read(models, tmp_path):
    a = screen(models, tmp_path)
    a.keep("frame", (100, 30))
    good = a.path.read_bytes()
    os.chmod(a.path, 0o622)  # writable by others
    assert screen(models, tmp_path).cached() is None
    a.path.unlink()
    real = tmp_path / "elsewhere.frame"
    real.write_bytes(good)
    a.path.symlink_to(real)
    assert screen(models, tmp_path).cached() is None
    a.path.unlink()
    os.mkfifo(a.path)  # a FIFO would block the start until someone wrote to it
    assert screen(models, tmp_path).cached() is None


def test_only_the_apps_own_thread_is_recorded(models, tmp_path):
    """Textual's input thread writes too (answers to the terminal's replies): not part of the frame."""
    import threading

    a = screen(models, tmp_path)
    a.record("before")
    a.recording = []
    a.record("frame")
    t = threading.Thread(target=a.record, args=("\x1b[?2048h",))
    t.start()
    t.join()
    assert a.recording == ["frame"]


def test_old_pictures_go(models, tmp_path):
    for n in range(ls.MAX_PICTURES + 3):
        assert screen(models, tmp_path, (80 + n, 24)).keep("frame", (80 + n, 24))
    kept = list((tmp_path / "cache").glob("launch-*.frame"))
    assert len(kept) == ls.MAX_PICTURES
    assert screen(models, tmp_path, (80 + ls.MAX_PICTURES + 2, 24)).cached() == b"frame"  # the newest stay


def test_the_cache_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ls.cache_dir() == tmp_path / "tinygpt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ls.cache_dir().name == "tinygpt"


class _Tty:
    def __init__(self, tty: bool = True, encoding: str = "utf-8"):
        self.tty, self.encoding = tty, encoding

    def isatty(self):
        return self.tty
