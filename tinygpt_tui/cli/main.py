"""The `tinygpt` command line: `tinygpt` alone opens the app; subcommands work headless.

Each command group lives in a file of its own (train.py, generate.py, inspect.py, convert.py,
corpus.py, export.py, serve.py, runs.py, bench.py); this file puts them together. Only typer and the standard library are imported at
start: torch loads inside the commands that need it, so `tinygpt --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from tinygpt_tui.cli import bench, convert, corpus, export, generate, inspect, runs, serve, train
from tinygpt_tui.cli.common import HELP, Command, Group, ModelsDir, fail

app = typer.Typer(
    name="tinygpt",
    cls=Group,
    context_settings=HELP,
    help="Train and play with tiny GPT models, of characters or subword tokens. Run with no command to open the app.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: nothing cut at 80 columns, no boxes
)
for fn, name in ((train.train, "train"), (generate.generate, "generate"), (generate.eval_cmd, "eval"),
                 (inspect.inspect_cmd, "inspect"), (corpus.models, "models"), (convert.convert, "convert"),
                 (bench.bench, "bench")):
    app.command(name, cls=Command, context_settings=HELP)(fn)
app.add_typer(corpus.corpus_app, name="corpus")
export.register(app)  # export, import
serve.register(app)  # serve
runs.register(app)  # runs, compare, experiment, lesson


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    models_dir: Optional[Path] = ModelsDir,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
):
    """Train and play with tiny GPT models, of characters or subword tokens. With no command, opens the app."""
    if models_dir is not None:  # the default every subcommand's --models-dir reads (through its envvar)
        os.environ[ModelsDir.envvar] = str(models_dir)
    if version:
        from tinygpt_tui import __version__

        typer.echo(f"tinygpt {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        from tinygpt_tui.app.app import run_app

        from tinygpt_tui.__main__ import file_in_the_way

        blocked = file_in_the_way(str(models_dir)) if models_dir is not None else None  # (a missing one: a run makes it)
        if blocked:
            fail(f"--models-dir {models_dir}: not a folder" + ("" if blocked == str(models_dir.expanduser().absolute()) else f" ({blocked} is a file)"))

        run_app(models_dir=models_dir)


def run():
    """The `tinygpt` entry point: Ctrl+C outside of training is a quiet exit."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    run()
