"""`tinygpt` (and `python -m tinygpt_tui`): with no arguments the app, with any the command line.

The app is opened without importing the command line (typer and click): they are not needed
to show the first screen. `--models-dir DIR` alone opens the app on that folder.
"""

from __future__ import annotations

import gc
import sys


def app_args(argv: list[str]) -> tuple[bool, str | None]:
    """(True, models_dir or None) when argv asks for the app and nothing else."""
    if not argv:
        return True, None
    if len(argv) == 1 and argv[0].startswith("--models-dir=") and len(argv[0]) > len("--models-dir="):
        return True, argv[0].split("=", 1)[1]
    if len(argv) == 2 and argv[0] == "--models-dir" and argv[1] and not argv[1].startswith("-"):
        return True, argv[1]
    return False, None


def main() -> None:
    is_app, models_dir = app_args(sys.argv[1:])
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
    sys.exit(code)  # an app that died of an exception exits with 1 (App.return_code), never 0


if __name__ == "__main__":
    main()
