"""`tinygpt convert`: a nanoGPT checkpoint (ckpt.pt) as a tinygpt model folder (engine/nanogpt.py reads it)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

import typer

from tinygpt_tui.cli.common import ModelsDir, console, friendly, given_path, new_model_folder, one_line, prose, save_new_model, shell_word
from tinygpt_tui.errors import CheckpointError, SettingsError

O = typer.Option


def say(message: str) -> None:
    prose(console(), one_line(message))


@friendly
def convert(
    checkpoint: Path = typer.Argument(..., parser=given_path, help="A nanoGPT ckpt.pt (read with torch.load(weights_only=True): no code runs)."),
    name: str = O(..., "--name", "-n", help="Name of the new model folder."),
    meta: Optional[Path] = O(None, "--meta", parser=given_path, help="The dataset's meta.pkl with the vocabulary (read as plain data only)."),
    corpus: Optional[str] = O(None, "--corpus", help="Or the training text: its sorted distinct characters are the vocabulary."),
    n_head: Optional[int] = O(None, "--n-head", help="Heads, for a bare state dict without model_args."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Turn a nanoGPT ckpt.pt into a tinygpt model folder. Character-level models only; nothing is unpickled."""
    from tinygpt_tui.data import normalize_text
    from tinygpt_tui.engine.corpora import read_corpus, resolve_corpus
    from tinygpt_tui.engine.nanogpt import MAX_PT_BYTES, load_pt, map_nanogpt, read_meta, state_and_args
    from tinygpt_tui.engine.files import open_regular
    from tinygpt_tui.engine.folder import build_model
    from tinygpt_tui.tokenizer import CharTokenizer

    src = Path(checkpoint).expanduser()
    if not src.exists():
        raise CheckpointError(f"no such checkpoint file: {src}")
    os.close(open_regular(src, src.name))  # a FIFO, a device or a folder is refused by its kind, at once
    if src.stat().st_size > MAX_PT_BYTES:
        raise CheckpointError(f"{src.name} is larger than {MAX_PT_BYTES // 1024**3} GB; not a tiny model")
    if meta is None and corpus is None:
        raise SettingsError("a character model needs its vocabulary: give --meta data/<dataset>/meta.pkl or --corpus <its input.txt>")
    dest = new_model_folder(name, models_dir)

    say(f"reading {src} with torch.load(weights_only=True): only tensors and plain data are rebuilt, no code in the file can run")
    obj = load_pt(src)
    sd, args, extra = state_and_args(obj)
    cfg, state = map_nanogpt(sd, args, n_head)
    say(f"nanoGPT model: {cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} dims, context {cfg.block_size:,}, "
         f"vocabulary {cfg.vocab_size:,}, bias {cfg.bias}, {'tied' if cfg.tie_weights else 'untied'} output "
         f"-> tinygpt learned positions, gelu, layernorm")

    corpus_doc = {"name": "unknown"}
    if meta is not None:
        chars = read_meta(Path(meta).expanduser())
        how = f"{Path(meta).name} (read as plain data: no classes, no functions)"
        vocab = f"--meta {shell_word(os.path.abspath(Path(meta).expanduser()))}"
    else:
        c = read_corpus(resolve_corpus(corpus))
        raw = Path(c.path).read_bytes().decode("utf-8")
        chars = sorted(set(raw))  # exactly what nanoGPT's prepare.py builds, before any newline clean-up
        if sorted(set(normalize_text(raw))) != chars:
            say("note: the text has \\r or a byte-order mark; the vocabulary keeps them as nanoGPT did")
        how = f"the distinct characters of {Path(c.path).name}, sorted, as nanoGPT's prepare.py builds them"
        corpus_doc = {"name": c.name, "path": c.path, "sha256": c.sha256, "chars": len(c.text)}
        vocab = f"--corpus {shell_word(os.path.abspath(c.path))}"
    if len(chars) != cfg.vocab_size:
        raise CheckpointError(f"the vocabulary has {len(chars):,} characters but the model's embedding has {cfg.vocab_size:,} rows; "
                              "is this the checkpoint's own dataset?")
    tokenizer = CharTokenizer(chars)
    say(f"vocabulary: {len(chars):,} characters from {how}")

    model = build_model(cfg, state, "the checkpoint")

    step = extra.get("iter_num") if isinstance(extra.get("iter_num"), int) else 0
    best = extra.get("best_val_loss")
    best = float(best) if isinstance(best, (int, float)) or (hasattr(best, "item") and getattr(best, "numel", lambda: 0)() == 1) else None
    doc = {
        "name": name,
        "model": cfg.to_dict(),
        "corpus": corpus_doc,
        "figures": {"step": step, "best_val_loss": best, "val_loss": None, "params": cfg.param_count()},
        "converted_from": {"format": "nanoGPT ckpt.pt", "file": src.name, "sha256": hashlib.sha256(src.read_bytes()).hexdigest()},
        # (the command that made it, runnable as printed from anywhere here: its files by their whole paths)
        "command": f"tinygpt convert {shell_word(os.path.abspath(src))} --name {shell_word(name)} {vocab}"
                   f"{f' --n-head {n_head}' if n_head else ''} --models-dir {shell_word(os.path.abspath(dest.parent))}",
    }
    save_new_model(dest, model, tokenizer, doc, f"{cfg.param_count():,} parameters, step {step:,}; the optimizer state "
                   "is not carried over, so it can't be resumed")


