"""The `tinygpt` entry point's fast path: with no command, open the app without loading the CLI.

`tinygpt` alone (or with only `--models-dir DIR`) opens the app; importing typer, click and the
command definitions first cost 50-80 ms of the first paint. Anything else (a command, --help,
--version, a typo) goes to the full command line unchanged.

    [project.scripts]
    tinygpt = "tinygpt_tui.app.launch:run"
"""

from __future__ import annotations

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


def run():
    is_app, models_dir = app_args(sys.argv[1:])
    if not is_app:
        from tinygpt_tui.cli.main import run as cli_run

        return cli_run()
    import gc

    # No garbage collections while the app starts: importing Textual and building the first screen
    # allocate enough to trigger dozens, 40-70 ms in all here. The app turns collection back on
    # after its first frame, freezing what start-up built (never to be scanned again).
    gc.disable()
    launch = None
    try:
        from pathlib import Path

        from tinygpt_tui.engine.folder import default_models_dir
        from tinygpt_tui.app.launch_screen import LaunchScreen

        # the models folder as the CLI finds it: --models-dir, else $TINYGPT_MODELS_DIR, else ./models
        folder = Path(models_dir) if models_dir else default_models_dir()
        # the app's first frame from its last start, on the terminal before Textual is imported
        launch = LaunchScreen.prepare(folder)
        if launch is not None:
            launch.show()
        from tinygpt_tui.app.app import run_app

        run_app(models_dir=folder, resume_gc=True, launch=launch)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        if launch is not None:
            launch.close()
        gc.enable()


if __name__ == "__main__":
    run()
