"""`tinygpt corpus list | fetch | add` and `tinygpt models`: what there is to train on, and what was trained."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tinygpt_tui.cli.common import HELP, Command, Group, ModelsDir, console, friendly, given_path, models_folder, one_line, prose, shell_word

corpus_app = typer.Typer(cls=Group, context_settings=HELP, no_args_is_help=True, rich_markup_mode=None,
                         help="List, fetch or add the texts to train on.")


@corpus_app.command("list", cls=Command, context_settings=HELP)
@friendly
def corpus_list():
    """The catalog, and what is fetched or added here."""
    from rich.table import Table
    from rich.text import Text

    from tinygpt_tui.engine.corpora import corpora_dir, list_corpora

    table = Table(title=Text(f"corpora ({one_line(corpora_dir())})"), title_justify="left")
    for col in ("name", "title", "source", "status", "size"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for c in list_corpora():
        status = Text("ready", style="green") if c.present else Text("not fetched: tinygpt corpus fetch " + c.name, style="yellow")
        table.add_row(Text(one_line(c.name)), Text(one_line(c.title)), c.source, status, f"{c.size / 1e6:,.2f} MB")
    console().print(table)


@corpus_app.command("fetch", cls=Command, context_settings=HELP)
@friendly
def corpus_fetch(
    name: str = typer.Argument(..., help="A catalog name (see `tinygpt corpus list`)."),
    from_file: Optional[Path] = typer.Option(None, "--from", parser=given_path, help="Import this local copy instead of downloading (checked against the sha256)."),
):
    """Download a catalog corpus, or import a copy. Either is checked against its sha256."""
    from tinygpt_tui.engine.corpora import fetch

    dest = fetch(name, str(from_file) if from_file else None)
    typer.echo(f"{one_line(name)}: {one_line(dest)} (sha256 verified)")


@corpus_app.command("add", cls=Command, context_settings=HELP)
@friendly
def corpus_add(
    file: Path = typer.Argument(..., parser=given_path, help="A UTF-8 text file of your own."),
    name: Optional[str] = typer.Option(None, "--name", help="Name to list it under (default: the file's name)."),
    force: bool = typer.Option(False, "--force", help="Replace a corpus added before under that name."),
    whole: bool = typer.Option(False, "--whole", help="Keep a Project Gutenberg book's header and licence (left out by default)."),
):
    """Add a text file of your own, to train on by name. It is copied into corpora/ (git-ignored); a Project
    Gutenberg book without the project's header and licence."""
    from tinygpt_tui.engine.corpora import add

    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.data import min_corpus_chars

    dest, chars, left_out = add(str(file), name, force, whole)
    arg = shell_word(dest.stem)  # ("-draft" after --, where no option is looked for)
    command = f"tinygpt train --name NAME -- {arg}" if dest.stem.startswith("-") else f"tinygpt train {arg} --name NAME"
    block, need = GPTConfig.block_size, min_corpus_chars(GPTConfig.block_size)
    short = (f"; too short for the default context of {block} characters, which needs {need:,}: add text, or train it "
             "with a smaller --block-size") if chars < need else ""
    typer.echo(f"added {one_line(dest)} ({chars:,} characters): train on it with `{one_line(command)}`{short}")
    if left_out:  # (else the model learns the licence's legal English along with the book)
        typer.echo(f"left out Project Gutenberg's header and licence ({left_out:,} characters; --whole keeps them)")
    from tinygpt_tui.engine.corpora import file_note

    if html := file_note(str(file), gutenberg=False):  # (its text is a corpus; its tags are probably not meant)
        typer.echo(f"note: {html}")


@corpus_app.command("prepare", cls=Command, context_settings=HELP)
@friendly
def corpus_prepare(
    corpus: str = typer.Argument(..., help="A text file, a folder of .txt files, a quoted glob ('books/*.txt') or a corpus name."),
    force: bool = typer.Option(False, "--force", help="Prepare it again even if it is prepared (e.g. after a checksum error)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="As `tinygpt train` will use: char (one token per character, the default) or bpe (byte-level BPE learned from the corpus)."),
    vocab_size: Optional[int] = typer.Option(None, "--vocab-size", help="With --tokenizer bpe: how many tokens (default 512)."),
):
    """Encode a corpus once into token files for training (a run does this itself when it must): docs/data.md."""
    import time

    from tinygpt_tui.cli.common import PrepareBar
    from tinygpt_tui.engine.corpora import resolve_corpus
    from tinygpt_tui.engine.lineage import learning_bpe
    from tinygpt_tui.engine.prepare import Prepared, prepare
    from tinygpt_tui.engine.presets import tokenizer_choice
    from tinygpt_tui.tokenizer import CharTokenizer

    kind, vocab = tokenizer_choice(tokenizer, vocab_size)  # (checked as `tinygpt train` checks them, before anything is read)
    make = (lambda source: learning_bpe(source, vocab)) if kind == "bpe" else (lambda source: CharTokenizer(source.charset))
    t0 = time.perf_counter()
    with PrepareBar() as bar:
        for ev in prepare(str(resolve_corpus(corpus)), make, force=force):
            if isinstance(ev, Prepared):
                c, secs = ev.corpus, time.perf_counter() - t0
                files = len(c.meta["source"]["files"])
                size = sum(f["size"] for f in c.meta["source"]["files"])
                how = "already prepared, checked" if ev.reused else f"prepared at {size / 1e6 / max(secs, 1e-9):,.0f} MB/s"
                tokens = sum(s["tokens"] for s in c.meta["splits"].values())
                vocabulary = f"{c.tokenizer.vocab_size:,} distinct" if kind == "char" else f"{tokens:,} tokens ({c.tokenizer.describe()})"
                prose(console(), one_line(f"{c.name}: {files:,} file(s), {size / 1e6:,.1f} MB, {c.chars:,} characters, "
                                          f"{vocabulary}; {how} in {secs:.1f} s: {c.folder}"))
            else:
                bar(ev)


@friendly
def models(models_dir: Optional[Path] = ModelsDir):
    """A table of the model folders found."""
    from rich.table import Table
    from rich.text import Text

    from tinygpt_tui.engine.folder import list_models

    d = models_folder(models_dir)
    infos = list_models(d)
    if not infos:
        prose(console(), Text(f"no models in {one_line(d)}; train one with `tinygpt train`"))
        return
    broken = any(i.status == "broken" for i in infos)
    con = console()
    narrow = con.width < 100  # (as `tinygpt runs`: no padding, or eight columns overflowed 80 and every row wrapped)
    table = Table(title=Text(f"models in {one_line(d)}"), title_justify="left", padding=(0, 0) if narrow else (0, 1),
                  caption="a broken model's whole reason: tinygpt eval NAME" if broken else None, caption_justify="left")
    for col, just in (("name", "left"), ("params", "right"), ("context", "right"), ("tokens", "left"), ("corpus", "left"), ("val loss", "right"),
                      ("steps", "right"), ("size", "right")):  # (a narrow terminal shortens the corpus before the name)
        width = min(max(len(i.name) for i in infos), 16) if col == "name" else 16 if col == "corpus" and not all(i.ok for i in infos) else None
        table.add_column(col, justify=just, min_width=width,  # (a run's status, in the corpus column, stays readable)
                         overflow="fold" if col == "name" else "ellipsis")  # a long name wraps whole: it tells runs apart
    for i in infos:
        size = f"{i.size_bytes / 1e6:,.1f} MB"
        if not i.ok:  # a run's own status ("training…", "no checkpoint yet"), or why it is broken, on one line
            why = Text(("broken: " if i.status == "broken" else "") + one_line(i.error), style="red" if i.status == "broken" else "yellow",
                       no_wrap=True, overflow="ellipsis")
            table.add_row(Text(one_line(i.name)), "", "", "", why, "", "", size)
            continue
        vl = f"{i.val_loss:.4f}" if i.val_loss is not None else "-"
        table.add_row(Text(one_line(i.name)), f"{i.params / 1e6:,.2f}M", f"{i.block_size:,}", i.tokenizer, Text(one_line(i.corpus)), vl,
                      f"{i.step:,}", size)
    con.print(table)
