"""What every command shares: the command classes, one-line errors, inert text, the corpus lookup.

Only typer and the standard library at import: `tinygpt --help` must not wait for torch.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperCommand, TyperGroup

from tinygpt_tui.errors import CorpusError, TinyGPTError

HELP = {"help_option_names": ["-h", "--help"]}
ModelsDir = typer.Option(None, "--models-dir", envvar="TINYGPT_MODELS_DIR", help="Folder of model folders (default: ./models).")


def error_line(message: str) -> None:
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, highlight=False, soft_wrap=True).print(Text("error: ", style="bold red") + Text(one_line(message)))


def fail(message: str, code: int = 2):
    error_line(message)
    raise typer.Exit(code)


def safe(text) -> str:
    """Text from a file or a user, shown inert: control characters and escapes become symbols."""
    from tinygpt_tui.tokenizer import printable

    return printable(str(text))


def one_line(text) -> str:
    """``safe`` for a name or a message: a newline or tab in it shows as \\n or \\t, on one line."""
    return safe(text).replace("\n", "\\n").replace("\t", "\\t")


class _OneLineErrors:
    """Flags show no `<bool>` value in --help, and a mistyped option is one `error:` line with exit
    code 2 (typer's own is a boxed usage text): every mistake on the command line is one line."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_flag", False):
                p.metavar = ""
        return params

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as e:  # typer's usage errors (click's, vendored)
            ctx = getattr(e, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            error_line(e.format_message() + hint)
            code = e.exit_code
        except typer.Abort:
            code = 130
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


class Command(_OneLineErrors, TyperCommand):
    pass


class Group(_OneLineErrors, TyperGroup):
    def format_commands(self, ctx, formatter):
        """Each command's first sentence in full, wrapped (click cuts it at the width with "...")."""
        commands = [(n, self.get_command(ctx, n)) for n in self.list_commands(ctx)]
        rows = [(n, c.get_short_help_str(limit=1000)) for n, c in commands if c is not None and not c.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def friendly(fn):
    """Turn the user's mistakes into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TinyGPTError as e:
            fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            raise typer.Exit(130)
        except BrokenPipeError:
            sys.stderr.close()
            raise typer.Exit(0)
        except MemoryError:
            fail("out of memory: try a smaller model, batch or prompt")

    return wrapper


def corpus_path(name: str) -> Path:
    """A corpus file from a path, a catalog name, or an added corpus's name; a model card names its
    corpus by file (``--corpus vimmanual.txt``), so a file name is looked up in the catalog and corpora/."""
    from tinygpt_tui.engine.corpora import catalog, corpora_dir, list_corpora, resolve_corpus

    try:
        return resolve_corpus(name)
    except CorpusError as e:
        if not str(e).startswith("corpus not found"):
            raise
    stem = name[:-4] if name.endswith(".txt") else name
    for entry in catalog().values():
        if name in (entry.file, Path(entry.file).stem):
            return resolve_corpus(entry.name)
    added = corpora_dir() / f"{stem}.txt"
    if stem and "/" not in stem and added.is_file():
        return added
    known = [c.name for c in list_corpora()]
    raise CorpusError(f"corpus not found: {name} (not a file; the corpora here: {', '.join(known) or 'none'})")
