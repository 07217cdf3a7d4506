"""`tinygpt` (and `python -m tinygpt_tui`): with no arguments the app, with any the command line.

The app is opened without importing the command line (typer and click): they are not needed
to show the first screen. `--models-dir DIR` alone opens the app on that folder.
"""

from __future__ import annotations

import gc
import os
import sys
import threading


def app_args(argv: list[str]) -> tuple[bool, str | None]:
    """(True, models_dir or None) when argv asks for the app and nothing else."""
    if not argv:
        return True, None
    if len(argv) == 1 and argv[0].startswith("--models-dir=") and len(argv[0]) > len("--models-dir="):
        return True, argv[0].split("=", 1)[1]
    if len(argv) == 2 and argv[0] == "--models-dir" and argv[1] and not argv[1].startswith("-"):
        return True, argv[1]
    return False, None


def file_in_the_way(folder: str) -> str | None:
    """The file that keeps ``folder`` from being a models folder: itself, or the nearest of its parents that
    exists, where that is not a folder; None if there is none (a missing folder is made by a run)."""
    p = os.path.abspath(os.path.expanduser(folder))
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    return p if os.path.exists(p) and not os.path.isdir(p) else None


def main() -> None:
    is_app, models_dir = app_args(sys.argv[1:])
    folder = models_dir or os.environ.get("TINYGPT_MODELS_DIR") or ""
    if is_app and folder and file_in_the_way(folder):
        is_app = False  # (the app said "no models yet in" a file: the command line refuses it, as it does elsewhere)
    if not is_app:
        from tinygpt_tui.cli.main import run

        run()
        return
    # Start-up makes many objects and frees few: the cyclic collector would walk them again and
    # again before the first frame. The app turns it back on (after gc.freeze) once it is shown.
    gc.disable()
    from tinygpt_tui.app.app import run_app

    try:
        code = run_app(models_dir=models_dir)
    except KeyboardInterrupt:
        code = 130
    leave(code)  # an app that died of an exception exits with 1 (App.return_code), never 0


def leave(code: int) -> None:
    """Exit now that the app has closed: its workers are done and a run it trained has saved.

    The interpreter's own teardown (torch's and numba's modules, every object the session made)
    takes about a second and saves nothing, so it is skipped. A decoder compile still running (once
    per machine) is waited for, saying so, so that the next start finds it cached; Ctrl+C skips it.
    """
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if busy:
        print("tinygpt: finishing the decoder's one-time compile, so the next start has it (Ctrl+C skips) …", file=sys.stderr, flush=True)
        try:
            for t in busy:
                t.join()
        except KeyboardInterrupt:
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
