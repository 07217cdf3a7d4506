"""The launch screen: the app's first frame from its last start, on the terminal before Textual loads.

Importing Textual is most of the time before a Textual app can draw anything: a bare one-widget
Textual app takes 0.3-0.45 s here to show its first frame, and `tinygpt` 1.2-1.4 times that. Like
a phone app's launch screen, `tinygpt` shows a picture of its first screen at once, taken from the
frame Textual itself wrote the last time the app started in the same conditions. Textual's first
live frame then replaces it cell for cell. Keys typed meanwhile wait in the terminal (echo off)
and reach the app once it reads them.

The picture is kept per terminal size under the user's cache folder ($XDG_CACHE_HOME/tinygpt,
~/.cache/tinygpt, or ~/Library/Caches/tinygpt on macOS). Its key is everything that shapes the
first frame:
- the terminal: its size, TERM, and the colour and Textual settings in the environment;
- the code: tinygpt's files, Textual's and Rich's installed files;
- the models folder: its path, the names of its model folders and their files' times and sizes
  (what the sidebar watches to notice a change).
Where any of them differs, nothing is shown early and Textual's frame is the first, as before.
Textual's first frame is always the whole screen (TinyGPTApp._display), so even a picture that
went stale some other way is replaced in full the moment the app is live.

Shown only where Textual would use its Linux/macOS driver on a real terminal; TINYGPT_LAUNCH_SCREEN=0
turns it off. Nothing here imports Textual (the driver subclass is built when the app starts).
"""

from __future__ import annotations

import json
import os
import sys
from importlib.machinery import PathFinder
from pathlib import Path

MAGIC = b"tinygpt launch screen 1"
ENV_SWITCH = "TINYGPT_LAUNCH_SCREEN"
# what else in the environment changes how Textual and Rich draw
TERMINAL_VARS = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TERM_PROGRAM", "COLUMNS", "LINES")
MAX_FRAME_BYTES = 8 << 20
ALT_SCREEN_ON = "\x1b[?1049h"
# before the picture: the alternate screen (as Textual starts), no cursor, no line wrap (as Textual
# draws); after it, should Textual never start: all of it undone
SHOW = b"\x1b[?1049h\x1b[?25l\x1b[?7l"
UNDO = b"\x1b[?7h\x1b[?25h\x1b[?1049l"


def cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "tinygpt"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "tinygpt"
    return Path.home() / ".cache" / "tinygpt"


def wanted() -> bool:
    """A real terminal that Textual's Linux/macOS driver would draw on, and not turned off."""
    if os.environ.get(ENV_SWITCH, "1") == "0" or sys.platform == "win32":
        return False
    if os.environ.get("TEXTUAL_DRIVER") or os.environ.get("TERM", "") in ("", "dumb"):
        return False
    try:
        return sys.__stdin__.isatty() and sys.__stderr__.isatty()  # Textual reads stdin, writes stderr
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


class LaunchScreen:
    """The picture for one start of the app: shown (or not) before Textual is imported, then kept
    up to date with the first frame Textual writes."""

    def __init__(self, models_dir: Path, size: tuple[int, int], folder: Path | None = None):
        from ..core.checkpoint import folder_signature

        self.size = size
        self.path = (folder or cache_dir()) / f"launch-{size[0]}x{size[1]}.frame"
        env = {k: v for k, v in os.environ.items() if k in TERMINAL_VARS or k.startswith("TEXTUAL")}
        models = Path(models_dir).resolve()
        self.key = json.dumps({"size": size, "env": env, "code": code_stamp(),
                               "models": [str(models), folder_signature(models)]}, sort_keys=True)
        self.frame: bytes | None = None  # the picture shown
        self.shown = False
        self.handed_over = False  # Textual's driver has started: it restores the terminal from here
        self.recording: list[str] | None = None  # what the driver writes, while the app records it
        self._attrs = None  # the terminal's settings before the picture
        self._skip_alt_screen = False

    @classmethod
    def prepare(cls, models_dir: Path) -> LaunchScreen | None:
        """None where there is no picture to show or keep (not a terminal, turned off)."""
        if not wanted():
            return None
        import shutil

        width, height = shutil.get_terminal_size()
        size = (width or 80, height or 25)  # what Textual's driver makes of it
        try:
            return cls(models_dir, size)
        except (OSError, ValueError, TypeError):  # a cwd or home that went away, an odd environment
            return None

    def cached(self) -> bytes | None:
        """The picture kept for this key, if there is one."""
        try:
            with open(self.path, "rb") as f:
                data = f.read(MAX_FRAME_BYTES + len(self.key) + 64)
        except OSError:
            return None
        magic, _, rest = data.partition(b"\n")
        key, _, frame = rest.partition(b"\n")
        if magic != MAGIC or key != self.key.encode() or not frame or len(frame) > MAX_FRAME_BYTES:
            return None
        return frame

    def show(self) -> bool:
        """Write the picture kept for this key, if any; keys typed from now wait for the app."""
        frame = self.cached()
        if frame is None:
            return False
        self._echo_off()
        try:
            _write_all(sys.__stderr__.fileno(), SHOW + frame)
        except OSError:
            self.close()
            return False
        self.frame, self.shown, self._skip_alt_screen = frame, True, True
        return True

    def _echo_off(self) -> None:
        """The terminal as Textual sets it up, but for Ctrl+C, which still interrupts the start: a key
        typed now must not be echoed over the picture, and reaches the app as it would once Textual
        reads it (no line editing; Enter stays a carriage return, Ctrl+Q and Ctrl+S are not flow
        control, Ctrl+Z is a key for the app rather than a stop with the picture up)."""
        import termios  # a POSIX terminal: see wanted()

        try:
            fd = sys.__stdin__.fileno()
            self._attrs = termios.tcgetattr(fd)
            attrs = termios.tcgetattr(fd)
            attrs[0] &= ~(termios.IXON | termios.IXOFF | termios.ICRNL)
            attrs[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN)
            attrs[6][termios.VSUSP] = b"\0"  # disabled (_POSIX_VDISABLE)
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except (OSError, ValueError, termios.error):
            self._attrs = None

    def close(self) -> None:
        """After the app (or instead of it): the picture must not outlive a start that failed, and
        the terminal's settings are as they were."""
        if self.shown and not self.handed_over:
            try:
                _write_all(sys.__stderr__.fileno(), UNDO)
            except OSError:
                pass
            self.shown = False
        if self._attrs is not None:
            import termios

            try:
                termios.tcsetattr(sys.__stdin__.fileno(), termios.TCSANOW, self._attrs)
            except (OSError, ValueError, termios.error):
                pass

    def keep(self, frame: str, size: tuple[int, int]) -> bool:
        """Keep the first frame Textual wrote, drawn at this size, for the next start (once per
        change: an unchanged picture is not written again). True if it was written."""
        if tuple(size) != tuple(self.size) or not frame:
            return False
        data = frame.encode("utf-8", "surrogateescape")
        if data == self.frame or len(data) > MAX_FRAME_BYTES:
            return False
        import tempfile

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".launch-", suffix=".tmp")  # mode 0600
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(MAGIC + b"\n" + self.key.encode() + b"\n" + data)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:  # a read-only home, a full disk: no picture next time, nothing else
            return False
        self.frame = data
        return True

    def driver_class(self):
        """Textual's own driver, told about the picture: it does not enter the alternate screen a
        second time (some terminals clear it when asked again), it restores the terminal's settings
        from before the picture, and it lets the app record its first frame."""
        from textual.drivers.linux_driver import LinuxDriver

        launch = self

        class AfterLaunchScreen(LinuxDriver):
            def start_application_mode(self):
                launch.handed_over = True
                super().start_application_mode()
                if launch._attrs is not None:
                    self.attrs_before = launch._attrs  # restored on exit and on Ctrl+Z

            def write(self, data: str) -> None:
                if launch.recording is not None:
                    launch.recording.append(data)
                if launch._skip_alt_screen and data == ALT_SCREEN_ON:
                    launch._skip_alt_screen = False
                    return
                super().write(data)

        return AfterLaunchScreen


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
