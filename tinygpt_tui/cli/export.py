"""`tinygpt export` (to transformers or GGUF) and `tinygpt import` (a small Hugging Face GPT-2)."""

from __future__ import annotations

import json
import os
import shlex
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from tinygpt_tui.cli.common import HELP, Command, ModelsDir, console, friendly, given_path, model_folder, new_model_folder, not_a_folder, one_line, prose, save_new_model, shell_word, try_prompt

O = typer.Option


class Target(str, Enum):
    hf = "hf"
    gguf = "gguf"


def out_path(text: str) -> Path:
    """OUT as a path, '' refused: as a Path it is '.', and "CWD already exists; add --force" said nothing useful."""
    if not text:
        raise typer.BadParameter("is empty; name the folder (--to hf) or .gguf file (--to gguf) to write")
    return Path(text)


@friendly
def export(
    model: str = typer.Argument(..., help="Model name (in the models folder) or path to a model folder."),
    out: Path = typer.Argument(..., parser=out_path, help="The folder (--to hf) or .gguf file (--to gguf) to write."),
    to: Optional[str] = O(None, "--to", metavar="<hf|gguf>", show_default=False,
                          help="Required. hf: a transformers folder (safetensors); gguf: one file for llama.cpp (whose GELU is its tanh form)."),
    force: bool = O(False, "--force", help="Replace OUT if it exists."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Export a model: learned, sinusoidal or no positions with gelu/layernorm as GPT-2, rope/gelu/layernorm
    (the shipped models) as GPT-NeoX, rope/swiglu/rmsnorm as Llama; nothing approximated."""
    from tinygpt_tui.engine import export as ex
    from tinygpt_tui.engine import folder as ckpt
    from tinygpt_tui.errors import SettingsError, not_one_of

    if to is None:  # (click's own "Missing option '--to'" would not say what it takes)
        raise SettingsError(f"missing option --to: one of {', '.join(t.value for t in Target)}")
    if to not in {t.value for t in Target}:  # (typer's own refusal of a choice: "Invalid value for '--to': Value error, ...")
        raise not_one_of("to", to, [t.value for t in Target])
    to = Target(to)
    ex.require(*(("transformers", "tokenizers") if to is Target.hf else ("gguf",)))
    path = model_folder(model, models_dir)
    _, cfg = ckpt.check_folder(path)
    arch = ex.architecture(cfg)  # refused before the weights are read
    out = Path(out).expanduser()
    loaded = ckpt.load_model(path)
    eos = ex.gguf_end_of_text(loaded.model, loaded.tokenizer) if to is Target.gguf else None
    write = ex.to_hf if to is Target.hf else lambda *a: ex.to_gguf(*a, eos=eos)
    ex.write_whole(out, force, lambda dest: write(loaded.model, loaded.tokenizer, dest))
    prose(console(), one_line(f"wrote {out} ({ex.ARCH_NAMES[arch]}, {cfg.param_count():,} parameters, fp32)"))
    if to is Target.hf and out.suffix.lower() == ".gguf":  # (written as asked; a folder so named misleads later)
        prose(console(), one_line(f"note: {out.name} is a folder (--to hf writes one), though its name looks like a GGUF file's (--to gguf)"))
    if to is Target.gguf and out.suffix.lower() != ".gguf":  # (written as asked; llama.cpp reads it, a file browser won't know it)
        prose(console(), one_line(f"note: {out.name} is a GGUF file, though its name does not end in .gguf"))
    eot = loaded.tokenizer.chars[eos] if eos is not None else None
    if eot is not None:  # (a generation that stops at a character looks broken; the why said first)
        prose(console(), one_line(f"note: llama.cpp stops at an end-of-text token, which a character model lacks; the file "
                                  f"names the one it writes least, {eot!r} (id {eos}): --ignore-eos bans it"))
    prompt, n = hint_prompt(loaded.tokenizer, cfg.block_size)
    if to is Target.hf:  # (JSON's escapes are Python's: a newline or an ESC in the path stays inside the string)
        code = (f"from transformers import pipeline; print(pipeline({json.dumps('text-generation')}, "
                f"{json.dumps(str(out), ensure_ascii=False)})({json.dumps(prompt, ensure_ascii=False)}, "
                f"max_new_tokens={n}, do_sample=True)[0][{json.dumps('generated_text')}])")
        hint = f"python -c {shlex.quote(code)}"
    else:  # (llama.cpp's plain completion: its llama-cli became a chat, and these models have no chat template;
        # it reads escapes in a prompt: \\n is a newline)
        escaped = prompt.replace("\\", "\\\\").replace("\n", "\\n")
        hint = f"llama-completion -m {shell_word(out)} -p {shlex.quote(escaped)} -n {n}{' --ignore-eos' if eot is not None else ''}"
    typer.echo(one_line(f"try it: {hint}"))


def hint_prompt(tokenizer, block_size: int) -> tuple[str, int]:
    """The prompt and the number of new tokens a "try it" line gives: "ROMEO:" where the model knows it,
    else a newline (a Chinese model's; llama-completion refuses an empty prompt: "input is empty"), else a
    character it has; prompt and text inside the model's window (llama.cpp's GPT-2 aborts on a position
    past it, and neither tool slides the window as tinygpt does: its RoPE text would go on unlike tinygpt's)."""
    chars = tokenizer.chars if tokenizer.kind == "char" else ["\n"]  # (a BPE encodes any text)
    letter = next((c for c in chars if c.isalnum()), chars[0])
    for prompt in (try_prompt(tokenizer), "\n" if "\n" in chars else "", letter):
        used = len(tokenizer.encode(prompt).ids)
        if prompt and used < block_size:
            break
    return prompt, max(1, min(200, block_size - used))


@friendly
def import_cmd(
    folder: Path = typer.Argument(..., parser=given_path, help="A Hugging Face GPT-2 folder: config.json, model.safetensors, tokenizer.json."),
    name: str = O(..., "--name", "-n", help="Name of the new model folder."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Import a small GPT-2 from a Hugging Face folder: character-level or byte-level BPE (safetensors only; no code runs)."""
    from tinygpt_tui.engine.hf_import import read_hf_gpt2
    from tinygpt_tui.errors import CheckpointError

    if said := not_a_folder(folder, "a Hugging Face GPT-2 folder"):  # (read_hf_gpt2 said only "not a folder")
        raise CheckpointError(said)
    dest, src = new_model_folder(name, models_dir), Path(folder).expanduser()
    model, tokenizer, cfg = read_hf_gpt2(src)
    named = Path(os.path.abspath(src)).name  # (`tinygpt import .` is the folder's own name, not '')
    doc = {"name": name, "model": cfg.to_dict(), "corpus": {"name": "unknown"},
           "figures": {"step": 0, "val_loss": None, "params": cfg.param_count()},
           "imported_from": {"format": "Hugging Face GPT-2", "folder": named, "tokenizer": tokenizer.kind},
           # (the command that made it, runnable as printed from anywhere here: the folders by their whole paths)
           "command": f"tinygpt import {shell_word(os.path.abspath(src))} --name {shell_word(name)} --models-dir {shell_word(os.path.abspath(dest.parent))}"}
    save_new_model(dest, model, tokenizer, doc, f"{cfg.param_count():,} parameters, vocabulary {cfg.vocab_size}, bias {cfg.bias}")


def register(app: typer.Typer) -> None:
    app.command("export", cls=Command, context_settings=HELP)(export)
    app.command("import", cls=Command, context_settings=HELP)(import_cmd)
