"""The launch screen: the app's first frame from its last start, on the terminal before Textual loads.

Importing Textual is most of the time before a Textual app can draw anything: a bare one-widget
Textual app takes 0.3-0.45 s here to show its first frame, and `tinygpt` 1.2-1.4 times that. Like
a phone app's launch screen, `tinygpt` shows a picture of its first screen at once, taken from the
frame Textual itself wrote the last time the app started in the same conditions. Textual's first
live frame then replaces it cell for cell. Keys typed meanwhile wait in the terminal (echo off)
and reach the app once it reads them.

The picture is kept per terminal size and models folder under the user's cache folder
($XDG_CACHE_HOME/tinygpt, ~/.cache/tinygpt, or ~/Library/Caches/tinygpt on macOS). Its key is
everything that shapes the first frame:
- the terminal: its size, TERM, and the colour and Textual settings in the environment;
- the code: tinygpt's files, Textual's and Rich's installed files;
- the models folder: its path, the names of its model folders and their files' times and sizes
  (what the sidebar watches to notice a change).
Where any of them differs, nothing is shown early and Textual's frame is the first, as before.
Textual's first frame is always the whole screen (TinyGPTApp._display), so even a picture that
went stale some other way is replaced in full the moment the app is live.

The file is trusted only so far: it must be a regular file of this user's, writable by no one
else, and its frame may hold nothing but text, colours and cursor moves (what Textual's first frame
is made of): it can draw, and do nothing else to the terminal.

Shown only where Textual would use its Linux/macOS driver on a real UTF-8 terminal;
TINYGPT_LAUNCH_SCREEN=0 turns it off. Nothing here imports Textual (the driver subclass is built
when the app starts).
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import sys
import threading
from importlib.machinery import PathFinder
from pathlib import Path

MAGIC = b"tinygpt launch screen 2"
ENV_SWITCH = "TINYGPT_LAUNCH_SCREEN"
# what else in the environment changes how Textual and Rich draw
TERMINAL_VARS = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TERM_PROGRAM", "COLUMNS", "LINES",
                 "TTY_COMPATIBLE", "TTY_INTERACTIVE")
MAX_FRAME_BYTES = 8 << 20
MAX_PICTURES = 16  # kept files (one per terminal size and models folder); the oldest go
ALT_SCREEN_ON = "\x1b[?1049h"
# before the picture: the alternate screen (as Textual starts), no cursor, no line wrap (as Textual
# draws), mouse reports on (as Textual will have them: a wheel turned on the picture is not turned
# into arrow keys by the terminal); after it, should Textual never start: all of it undone
SHOW = b"\x1b[?1049h\x1b[?25l\x1b[?7l\x1b[?1000h\x1b[?1006h"
UNDO = b"\x1b[?1006l\x1b[?1000l\x1b[?7h\x1b[?25h\x1b[?1049l"
# what a first frame is made of: colours (SGR), cursor moves, synchronized-update marks
DRAWING = re.compile(r"\x1b\[[0-9;]*[mH]|\x1b\[\?2026[hl]|\r|\n")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is ignored
        return Path(xdg) / "tinygpt"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "tinygpt"
    return Path.home() / ".cache" / "tinygpt"


def wanted() -> bool:
    """A real UTF-8 terminal that Textual's Linux/macOS driver would draw on, and not turned off."""
    if os.environ.get(ENV_SWITCH, "1") == "0" or sys.platform == "win32":
        return False
    if os.environ.get("TEXTUAL_DRIVER") or os.environ.get("TERM", "") in ("", "dumb"):
        return False
    try:
        err = sys.__stderr__  # Textual writes here and reads stdin
        if (err.encoding or "").replace("-", "").lower() != "utf8":
            return False
        return sys.__stdin__.isatty() and err.isatty()
    except (AttributeError, ValueError, OSError):  # closed or missing
        return False


def _files_stamp(folder: Path, suffixes: tuple[str, ...]) -> list:
    stamp = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                if e.name.endswith(suffixes):
                    st = e.stat()
                    stamp.append((e.name, st.st_mtime_ns, st.st_size))
    except OSError:
        return [str(folder), None]
    return [str(folder), sorted(stamp)]


def code_stamp() -> list:
    """tinygpt's files, and the files of Textual and Rich that were installed (a new version writes new ones)."""
    here = Path(__file__).resolve().parent
    stamp = [_files_stamp(d, (".py", ".tcss")) for d in (here, here.parent, here.parent / "core")]
    for package in ("textual", "rich"):
        spec = PathFinder.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        stamp.append([package, [_files_stamp(Path(d), (".py", ".tcss")) for d in locations]])
    return stamp


def only_drawing(frame: bytes) -> bool:
    """UTF-8 text with colours and cursor moves, and no other control character or sequence."""
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return CONTROL.search(DRAWING.sub("", text)) is None


class LaunchScreen:
    """The picture for one start of the app: shown (or not) before Textual is imported, then kept
    up to date with the first frame Textual writes."""

    def __init__(self, models_dir: Path, size: tuple[int, int], folder: Path | None = None):
        import zlib

        from tinygpt_tui.engine.folder import SYNC_LISTING, folder_signature

        models = Path(models_dir).resolve()
        # a bigger models folder is listed after the first frame: no picture
        signature = folder_signature(models, limit=SYNC_LISTING)
        if signature is None:  # not a stat call more for a big folder (on a network drive, say)
            raise ValueError("a models folder too big to read before the first frame")
        self.size = size
        where = zlib.crc32(str(models).encode("utf-8", "surrogateescape"))
        self.path = (folder or cache_dir()) / f"launch-{size[0]}x{size[1]}-{where:08x}.frame"
        env = {k: v for k, v in os.environ.items() if k in TERMINAL_VARS or k.startswith("TEXTUAL")}
        self.key = json.dumps({"size": size, "env": env, "code": code_stamp(),
                               "models": [str(models), signature]}, sort_keys=True)
        self.frame: bytes | None = None  # the picture shown
        self.shown = False
        self.handed_over = False  # Textual's driver has started: it restores the terminal from here
        self.recording: list[str] | None = None  # what the driver writes, while the app records it
        self._main_thread = threading.get_ident()
        self._attrs = None  # the terminal's settings before the picture
        self._signals: dict = {}  # handlers replaced while the picture is up
        self._skip_alt_screen = False

    @classmethod
    def prepare(cls, models_dir: Path) -> LaunchScreen | None:
        """None where there is no picture to show or keep (not a terminal, turned off, a models
        folder too big, no home folder...): the launch screen is never a reason not to start."""
        if not wanted():
            return None
        import shutil

        width, height = shutil.get_terminal_size()
        size = (width or 80, height or 25)  # what Textual's driver makes of it
        try:
            return cls(models_dir, size)
        except Exception:  # a cwd or home that went away, an odd environment
            return None

    def cached(self) -> bytes | None:
        """The picture kept for this key, if there is one and it is safe to write to the terminal."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # no link, no FIFO
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read(MAX_FRAME_BYTES + len(self.key) + 64)
        except OSError:
            return None
        finally:
            os.close(fd)
        magic, _, rest = data.partition(b"\n")
        key, _, frame = rest.partition(b"\n")
        if magic != MAGIC or key != self.key.encode() or not frame or len(frame) > MAX_FRAME_BYTES:
            return None
        return frame if only_drawing(frame) else None

    def show(self) -> bool:
        """Write the picture kept for this key, if any; keys typed from now wait for the app."""
        try:
            frame = self.cached()
        except Exception:
            return False
        if frame is None:
            return False
        self._echo_off()
        self._catch_signals()
        # shown before the first byte: however the write ends (Ctrl+C while a slow terminal reads
        # it), close() takes down what reached the terminal
        self.frame, self.shown, self._skip_alt_screen = frame, True, True
        try:
            _write_all(sys.__stderr__.fileno(), SHOW + frame)
        except OSError:
            self.close()
            return False
        return True

    def _echo_off(self) -> None:
        """The terminal as Textual sets it up, but for Ctrl+C, which still interrupts the start: a key
        typed now must not be echoed over the picture, and reaches the app as it would once Textual
        reads it (no line editing; Enter stays a carriage return, Ctrl+Q and Ctrl+S are not flow
        control, Ctrl+Z and Ctrl+\\ are keys for the app rather than a stop or a kill with the
        picture up)."""
        import termios  # a POSIX terminal: see wanted()

        try:
            fd = sys.__stdin__.fileno()
            self._attrs = termios.tcgetattr(fd)
            attrs = termios.tcgetattr(fd)
            attrs[0] &= ~(termios.IXON | termios.IXOFF | termios.ICRNL)
            attrs[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN)
            try:
                off = os.fpathconf(fd, "PC_VDISABLE")  # 0 on Linux, 0xff on macOS and the BSDs
            except (OSError, ValueError):
                off = 0
            for c in (termios.VSUSP, termios.VQUIT):
                attrs[6][c] = bytes([off & 0xFF])
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except (OSError, ValueError, termios.error):
            self._attrs = None

    def _catch_signals(self) -> None:
        """Until Textual takes over, a SIGTERM or SIGHUP ends the start through close() (which takes
        the picture down) rather than leaving the terminal in the alternate screen."""

        def leave(signum, _frame):
            raise SystemExit(128 + signum)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                self._signals[sig] = signal.signal(sig, leave)
            except (ValueError, OSError):  # not the main thread
                pass

    def _release_signals(self) -> None:
        for sig, handler in self._signals.items():
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError, TypeError):
                pass
        self._signals = {}

    def close(self) -> None:
        """After the app (or instead of it): the picture must not outlive a start that failed, and
        the terminal's settings are as they were. A second Ctrl+C meanwhile is ignored, so both happen."""
        try:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        except (ValueError, OSError):
            previous = None
        try:
            self._release_signals()
            if self._attrs is not None:
                import termios

                try:
                    termios.tcsetattr(sys.__stdin__.fileno(), termios.TCSANOW, self._attrs)
                except (OSError, ValueError, termios.error):
                    pass
            if self.shown and not self.handed_over:
                try:
                    _write_all(sys.__stderr__.fileno(), UNDO)
                except OSError:
                    pass
                self.shown = False
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def record(self, data: str) -> None:
        """What the driver writes from the app's own thread while the app records its first frame
        (Textual's input thread also writes, answering the terminal: that is not the frame)."""
        recording = self.recording
        if recording is not None and threading.get_ident() == self._main_thread:
            recording.append(data)

    def keep(self, frame: str, size: tuple[int, int]) -> bool:
        """Keep the first frame Textual wrote, drawn at this size, for the next start (once per
        change: an unchanged picture is not written again). True if it was written."""
        try:
            if tuple(size) != tuple(self.size) or not frame:
                return False
            data = frame.encode("utf-8")
            if data == self.frame or len(data) > MAX_FRAME_BYTES or not only_drawing(data):
                return False
            return self._write(data)
        except Exception:  # a read-only home, a full disk, an odd frame: no picture next time, nothing else
            return False

    def _write(self, data: bytes) -> bool:
        import tempfile

        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".launch-", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + b"\n" + self.key.encode() + b"\n" + data)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.frame = data
        pictures = sorted(folder.glob("launch-*.frame"), key=lambda p: p.stat().st_mtime_ns)
        for old in pictures[:-MAX_PICTURES]:
            old.unlink(missing_ok=True)
        return True

    def driver_class(self):
        """Textual's own driver, told about the picture: it does not enter the alternate screen a
        second time (some terminals clear it when asked again), it restores the terminal's settings
        from before the picture, and it lets the app record its first frame."""
        from textual.drivers.linux_driver import LinuxDriver

        launch = self

        class AfterLaunchScreen(LinuxDriver):
            def start_application_mode(self):
                super().start_application_mode()
                if not launch.handed_over:  # from here Textual restores the terminal, on exit and on Ctrl+Z
                    launch.handed_over = True
                    launch._release_signals()
                    if launch._attrs is not None:  # what it found was the picture's settings
                        self.attrs_before = launch._attrs

            def write(self, data: str) -> None:
                launch.record(data)
                if launch._skip_alt_screen and data == ALT_SCREEN_ON:
                    launch._skip_alt_screen = False
                    return
                super().write(data)

        return AfterLaunchScreen


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
