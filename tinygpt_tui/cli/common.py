"""What every command shares: the command classes, one-line errors, inert text, saving a new model.
Only typer and the standard library at import: `tinygpt --help` must not wait for torch."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import time
from pathlib import Path

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import OptionInfo

from tinygpt_tui.errors import SettingsError, TinyGPTError
from tinygpt_tui.engine.card import models_dir_words  # noqa: F401 (what a printed command needs to find a models folder)
from tinygpt_tui.tokenizer import one_line, shell_word  # noqa: F401 (the CLI's words for a name: inert, pasteable)

HELP = {"help_option_names": ["-h", "--help"]}


def given_path(text: str) -> Path:
    """A path argument, '' refused: as a Path it is '.', and `corpus add ""` said "not a folder: ." of a folder no one named."""
    if not text:
        raise typer.BadParameter("is empty; name a file or folder")
    return Path(text)


class WholeLine(typer.BadParameter):
    """A refused value whose message is the whole error line: click's "Invalid value for '--models-dir' (env var:
    'TINYGPT_MODELS_DIR'):" and the --help hint added nothing but length to it. It starts with what was given: the
    option, or the variable where the value came from it (a user who typed no --models-dir was told of one)."""

    def format_message(self) -> str:
        ctx, param = self.ctx, self.param
        source = ctx.get_parameter_source(param.name) if ctx is not None and param is not None else None
        if getattr(source, "name", "") == "ENVIRONMENT" and getattr(param, "envvar", None):
            return self.message.replace(ModelsDir.param_decls[0], f"${param.envvar}", 1)
        return self.message


def given_corpus(text: str) -> str:
    """A --corpus, '' refused: it was read as not given (inspect --heads read the model's own corpus, a lesson its own
    book) or as missing (an experiment "needs a corpus")."""
    if not text:
        from tinygpt_tui.engine.corpora import EMPTY_CORPUS

        raise WholeLine(EMPTY_CORPUS)
    return text


MODEL_FILES = ("config.json", "model.safetensors", "vocab.json", "tokenizer.json", "metrics.jsonl", "README.md", "train_state.safetensors")


def not_a_folder(path, want: str = "a model folder") -> str | None:
    """What a file given where ``want`` goes is, and what to do with it; None where no file is there. A GGUF file was
    "model not found" to generate and eval (a file that exists) and "not a folder" to import, and neither said why."""
    import stat

    p = Path(os.path.expanduser(str(path)))
    try:
        kind = os.stat(p).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(kind):
        return None
    head = b""
    if stat.S_ISREG(kind):  # (a FIFO's read would wait for a writer)
        with contextlib.suppress(OSError), open(p, "rb") as f:
            head = f.read(4)
    shown, word = one_line(str(path)), shell_word(str(path))
    model = want == "a model folder"
    if head == b"GGUF" or p.suffix.lower() == ".gguf":
        return (f"{shown} is a GGUF file (llama.cpp's format), not {want}: tinygpt writes GGUF (export --to gguf) but reads "
                + ("model folders (`tinygpt models` lists them); llama.cpp runs this file: "
                   f"llama-completion -m {word}" if model else
                   "none: import takes the folder a Hugging Face GPT-2 is saved in (config.json, model.safetensors, tokenizer.json)"))
    if p.name in MODEL_FILES + ("tokenizer_config.json", "generation_config.json") and (p.parent / "config.json").is_file():
        return f"{shown} is a file in the folder {one_line(str(Path(str(path)).parent))}: give the folder itself"
    if p.suffix.lower() in (".pt", ".pth", ".ckpt") or head[:2] == b"PK" or head[:1] == b"\x80":  # (torch.save's zip, a pickle)
        return f"{shown} is a PyTorch checkpoint, not {want}: `tinygpt convert {word} --name NAME` makes a model of a nanoGPT one"
    return f"{shown} is a file, not {want}: " + (
        "a model is a folder (config.json, model.safetensors, ...; `tinygpt models` lists them); `tinygpt import` makes one "
        "of a Hugging Face GPT-2 folder, `tinygpt convert` of a nanoGPT ckpt.pt" if model else
        "give the folder holding its config.json, model.safetensors and tokenizer.json")


def model_folder(name, models_dir=None, resolve=None):
    """The model folder ``name`` names (engine.folder.resolve_model, or ``resolve``: compare's expand_run), a file given
    instead said for what it is."""
    from tinygpt_tui.engine.folder import resolve_model
    from tinygpt_tui.errors import CheckpointError

    try:
        return (resolve or resolve_model)(name, models_dir)
    except CheckpointError:
        said = not_a_folder(name) if str(name) else None
        if said:
            raise CheckpointError(said) from None
        raise


def models_dir_path(text: str) -> Path:
    """--models-dir (or $TINYGPT_MODELS_DIR) as a path, refused here for every command where no model folder can be
    read or made in it: empty (a Path of '' is '.', the current folder), a file or a path under one, a link that loops
    (a traceback where a printed command resolved it) or leads nowhere (a run's mkdir said "File exists"). A missing
    folder passes: a run makes it, a listing says it is missing; a folder without permissions is said where it is read."""
    import errno
    import stat

    if not text:
        raise WholeLine("--models-dir is empty: name a folder of model folders (or leave it out for ./models)")
    path = os.path.expanduser(text)
    try:
        kind = os.stat(path).st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise WholeLine(f"--models-dir {text}: a symbolic link that loops (too many levels of links)") from None
        if e.errno == errno.ENOTDIR:
            from tinygpt_tui.__main__ import file_in_the_way

            raise WholeLine(f"--models-dir {text}: not a folder ({file_in_the_way(path) or 'a part of it'} is a file)") from None
        link = next((p for p in [path, *map(str, Path(os.path.abspath(path)).parents)] if os.path.islink(p) and not os.path.exists(p)), None)
        if e.errno == errno.ENOENT and link is not None:
            raise WholeLine(f"--models-dir {text}: {link} is a link to {os.readlink(link)}, which does not exist") from None
    else:
        if not stat.S_ISDIR(kind):
            raise WholeLine(f"--models-dir {text}: not a folder")
    return Path(text)


def checked_models_dir(ctx: typer.Context, param: typer.CallbackParam, text: str | None) -> Path | None:
    """--models-dir checked (models_dir_path), but for $TINYGPT_MODELS_DIR read by `tinygpt` itself before its
    command: the command checks it where it reads it, and a --models-dir given after the command wins over it
    (`tinygpt models --models-dir good` was refused for the variable's stale folder)."""
    from_variable = getattr(ctx.get_parameter_source(param.name), "name", "") == "ENVIRONMENT"
    if text is None or (from_variable and ctx.parent is None and isinstance(ctx.command, TyperGroup)):
        return None if text is None else Path(text)
    return models_dir_path(text)


ModelsDir = typer.Option(None, "--models-dir", envvar="TINYGPT_MODELS_DIR", parser=str, callback=checked_models_dir,
                         help="Folder of model folders (default: ./models).")


def console(stderr: bool = False):
    """A rich console that never hard-wraps a line: a pipe or a file gets each line whole, a terminal wraps it
    (a command printed to be copied stays one line). Prose goes through ``prose``."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=console_width())


@contextlib.contextmanager
def waiting(what, con=None):
    """A spinner saying ``what`` (a str or Rich Text) on ``con`` (stderr's console by default) while a command has nothing
    to say yet (torch's import, a model's first build: seconds of a blank terminal after a newcomer's first Enter); gone
    when done. Not in a pipe, nor under torchrun."""
    con = con or console(stderr=True)
    if not con.is_terminal or int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        yield
        return
    with con.status(what):  # (transient: the line is erased when it stops)
        yield


def console_width() -> int | None:
    """The console's width: rich's own (COLUMNS, else the terminal's), but COLUMNS=0 (a container's shell may set it)
    is taken as unset, as shutil takes it: rich printed nothing at width 0, not even an error line."""
    import shutil

    columns = os.environ.get("COLUMNS", "")
    return shutil.get_terminal_size().columns or 80 if columns.isdigit() and int(columns) == 0 else None


def prose(con, text, style: str = "") -> None:
    """A sentence to read, not a command to copy: in a terminal, wrapped between words at its width (its own
    wrap cut words in two at 80 columns); in a pipe or a file, whole. A word wider than the terminal (a long
    path) keeps a line to itself, whole (rich would fold it, a newline in the middle of a path)."""
    import re

    from rich.cells import cell_len
    from rich.text import Text

    text = Text(text, style=style) if isinstance(text, str) else text
    if not con.is_terminal:
        con.print(text, soft_wrap=True)
        return
    breaks, start = [], 0  # where each line starts: before the word that would pass the width
    for word in re.finditer(r"\S+|\n", text.plain):
        if word.group() == "\n":
            start = word.end()
        elif text.plain[start:word.start()].strip() and cell_len(text.plain[start:word.end()]) > con.width:
            breaks.append(start := word.start())  # (never after a line's indent alone: an empty line, the word unindented)
    lines = text.divide(breaks)
    for line in lines:
        line.rstrip()
    con.print(Text("\n").join(lines), soft_wrap=True)  # (one print: a progress bar below redraws once)


def error_line(message: str) -> None:
    from rich.text import Text

    console(stderr=True).print(Text("error: ", style="bold red") + Text(one_line(message)))


def fail(message: str, code: int = 2):
    error_line(message)
    raise typer.Exit(code)


class _OneLineErrors:
    """Flags show no `<bool>` value in --help, and a mistyped option is one `error:` line with exit
    code 2 (typer's own is a boxed usage text): every mistake on the command line is one line."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_flag", False):
                p.metavar = ""
        return params

    def parse_args(self, ctx, args):
        """`tinygpt corpus` alone: what it offers, as --help shows it, exit 0 (click's own is an error whose
        message is the whole help, and squashed on one line it was unreadable)."""
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            typer.echo(ctx.get_help())
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as e:  # typer's usage errors (click's, vendored)
            ctx = getattr(e, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None and not isinstance(e, WholeLine) else ""
            folder = option_like_model(getattr(e, "option_name", None), sys.argv[1:] if args is None else list(args))
            if folder and ctx is not None:  # (a model folder named before names could not start with -)
                way = shell_word(f"./{folder}")  # (quoted as the shell needs it: the command runs as printed)
                error_line(f"{folder} is read as an option; to name the model folder {folder}, write {way}: "
                           f"{ctx.command_path} {way}")
            else:
                error_line(" ".join(e.format_message().split()) + hint)  # (click lists choices one a line)
            code = e.exit_code
        except typer.Abort:
            code = 130
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def option_like_model(option: str | None, args: list[str]) -> str | None:
    """The argument that click refused as the unknown `option` ("-o" of "-old", a cluster of short options)
    where a model folder has that name, else None: names start with - no longer, old folders may."""
    if not option:
        return None
    from tinygpt_tui.engine.folder import default_models_dir

    args = args[:args.index("--")] if "--" in args else args
    given = [a.split("=", 1)[1] for a in args if a.startswith("--models-dir=")]
    given += [b for a, b in zip(args, args[1:]) if a == "--models-dir"]
    d = Path(given[-1] if given else os.environ.get(ModelsDir.envvar) or default_models_dir())
    for a in args:
        if (a == option or (len(option) == 2 and not option.startswith("--") and a.startswith(option))) and (d / a).is_dir():
            return a
    return None


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


def leave_to_rank_0(e: TinyGPTError) -> None:
    """Under torchrun every rank meets the same mistake and rank 0 says it: another rank exits quietly, last
    (torchrun stops the others as soon as one fails, and names the first to fail the root cause)."""
    from tinygpt_tui.engine.distributed import DistInfo

    if not DistInfo.from_env().is_main:
        time.sleep(3)
        raise typer.Exit(e.exit_code)


def as_typed(message: str, command) -> str:
    """A setting's error in the words the user typed: "pos_encoding must be one of ..." from the settings' checks
    names the ``command``'s own option for that setting (--pos) where it has one (its typer.Option's names)."""
    import inspect

    said = re.match(r"([\w-]+) (must be .*)", message, re.S)  # (the sampler's "top-k must be ...": top_k)
    if not said or (key := said[1].replace("-", "_")) not in inspect.signature(command).parameters:
        return message
    default = inspect.signature(command).parameters[key].default
    names = getattr(default, "param_decls", None) or ()
    flag = next((n for n in names if isinstance(n, str) and n.startswith("--")), None)
    if flag is None and not names and isinstance(default, OptionInfo):  # (an option named by typer: preset is --preset)
        flag = "--" + key.replace("_", "-")
    return f"{flag} {said[2]}" if flag else message


def friendly(fn):
    """Turn the user's mistakes into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TinyGPTError as e:
            leave_to_rank_0(e)
            fail(as_typed(str(e), fn), e.exit_code)
        except KeyboardInterrupt:
            raise typer.Exit(130)
        except BrokenPipeError:
            sys.stderr.close()
            raise typer.Exit(0)
        except OSError as e:  # what no check foresaw: a path under a folder without permission (Path.exists raises)
            fail(f"{one_line(e.filename) + ': ' if e.filename else ''}{e.strerror or e}")
        except MemoryError:
            fail("out of memory: try a smaller model, batch or prompt")

    return wrapper


def models_folder(models_dir) -> Path:
    """The folder of model folders a listing reads; one given (--models-dir, $TINYGPT_MODELS_DIR) that is
    missing or a file is a mistake to say, not an empty list."""
    from tinygpt_tui.engine.folder import default_models_dir

    d = Path(models_dir) if models_dir else default_models_dir()
    if models_dir and not d.is_dir():
        raise SettingsError(f"--models-dir {d}: {'not a folder' if d.exists() else 'no such folder'}")
    return d


def new_model_folder(name: str, models_dir) -> Path:
    """Where a new model named ``name`` goes; a bad name or an existing model is refused."""
    from tinygpt_tui.engine.folder import CONFIG, default_models_dir
    from tinygpt_tui.engine.presets import check_name

    check_name(name)
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    if (models_dir / name / CONFIG).exists():
        raise SettingsError(f"a model named {name!r} already exists in {models_dir}; pick another --name")
    return models_dir / name


def try_prompt(tokenizer) -> str:
    """The prompt a "try it" line suggests: "ROMEO:" where the model knows it: a character vocabulary has its
    characters (a Chinese model would drop every one), a BPE learned it (any text encodes, byte by byte): it
    encodes it in fewer tokens than bytes, or its learned tokens hold each letter. Else a BPE's earliest learned
    word (its merges come most frequent first), one after a space first (" the", not "he"; 宝玉 in a text
    without spaces), or none ("")."""
    if tokenizer.kind != "bpe":
        return "" if tokenizer.encode("ROMEO:").dropped else "ROMEO:"
    learned = [tokenizer.token_bytes[i] for i in (tokenizer.vocab.get(a + b) for a, b in tokenizer.merges) if i is not None]
    if len(tokenizer.encode("ROMEO:").ids) < len(b"ROMEO:") or set(b"ROMEO") <= {b for t in learned for b in t}:
        return "ROMEO:"
    words = []  # the words it learned, as text, most frequent first
    for t in learned:
        try:
            text = t.decode("utf-8")
        except UnicodeDecodeError:  # (part of a character)
            continue
        if len(text.strip()) > 1 and text.strip().isalpha():
            words.append(text)
    return next((w for w in words if w[:1].isspace()), words[0] if words else "").strip()


def save_new_model(dest: Path, model, tokenizer, doc: dict, wrote: str) -> None:
    """Write a new model folder under its lock (no run or other command writes it meanwhile); say so."""
    from tinygpt_tui.engine import folder as ckpt

    lock = ckpt.FolderLock(dest)
    try:
        new_model_folder(dest.name, dest.parent)  # (one may have appeared since)
        ckpt.save_model(dest, model, tokenizer, doc, card=ckpt.render_card(doc, dest))
    finally:
        lock.release()
    prose(console(), one_line(f"wrote {dest} ({wrote})"))
    prompt = f' --prompt "{try_prompt(tokenizer)}"' if try_prompt(tokenizer) else ""
    typer.echo(one_line(f"try it: tinygpt generate {shell_word(dest.name)}{models_dir_words(dest.parent)}{prompt}"))



class PrepareBar:
    """A rich progress bar for engine/prepare.py's Progress events, on stderr (started at the first,
    so a corpus already prepared prints nothing); ``with PrepareBar() as bar: ... bar(event)``."""

    def __init__(self, quiet: bool = False, out=None):
        self.quiet, self.progress, self.task, self.stage = quiet, None, None, None
        self.out = out or console(stderr=True)

    def __call__(self, ev) -> None:
        if self.quiet:
            return
        if self.progress is None:
            if not self.out.is_terminal:  # (a bar is for a person watching; a log gets the result)
                self.quiet = True
                return
            from rich.progress import BarColumn, Progress, TextColumn

            bar = BarColumn(bar_width=max(8, min(40, self.out.width - 64)))  # (the figures kept whole on one line at 80 columns)
            self.progress = Progress(TextColumn("{task.description}"), bar, stage_figures(), console=self.out, transient=True)
            self.progress.start()
        measured = ev.total > 0  # (the BPE's merges: nothing measures how far they got)
        if ev.stage != self.stage:
            from tinygpt_tui.engine.sources import STAGE_WORDS

            if self.task is not None:  # a stage ends as the next one starts (one nothing measured: its bar full)
                self.progress.stop_task(self.task)
                if self.progress.tasks[-1].total is None:
                    self.progress.update(self.task, total=1, completed=1)
            self.stage = ev.stage
            self.task = self.progress.add_task(STAGE_WORDS.get(ev.stage, ev.stage), total=ev.total if measured else None, measured=measured)
        if measured:
            self.progress.update(self.task, completed=ev.done, total=ev.total)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()


def stage_figures():
    """The figures of a preparation's stage on its bar: bytes, speed and time left; for a stage nothing measures
    (the BPE's merges: a bar with no share done), the time it has taken and that the time left is unknown."""
    from datetime import timedelta

    from rich.progress import DownloadColumn, ProgressColumn, TimeRemainingColumn, TransferSpeedColumn
    from rich.text import Text

    class StageFigures(ProgressColumn):
        measured = (DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())

        def render(self, task):
            if task.fields.get("measured", True):
                return Text(" ", no_wrap=True).join(c.render(task) for c in self.measured)
            took = timedelta(seconds=int(task.elapsed or 0))
            return Text(f"took {took}" if task.finished else f"{took}, time left unknown", style="progress.elapsed", no_wrap=True)

    return StageFigures()
