"""`tinygpt generate` and `tinygpt eval`."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from tinygpt_tui.cli.common import ModelsDir, console, friendly, model_folder, one_line, prose, waiting
from tinygpt_tui.errors import SettingsError

O = typer.Option
DEVICE_HELP = "auto (on a CPU the compiled decoder; at batch 1 it outruns a GPU), cpu, cuda, mps."


@friendly
def generate(
    model: str = typer.Argument(..., help="Model name (under the models directory) or a folder path."),
    prompt: str = O("", "--prompt", "-p", help="Text to continue."),
    max_new: int = O(500, "--max-new", "-n", min=0, max=10**6, help="Characters to generate (tokens, for a BPE model: a token is a few characters, or part of one)."),
    temperature: float = O(0.8, "--temperature", "-t", help="0 means greedy."),
    top_k: Optional[int] = O(None, "--top-k", "-k", help="Sample from the k most likely characters (tokens, for a BPE model)."),
    top_p: Optional[float] = O(None, "--top-p", help="Nucleus sampling: the smallest set with this much probability."),
    seed: Optional[int] = O(None, "--seed", help="Same seed, same text."),
    corpus: Optional[str] = O(None, "--corpus", help="Take the prompt from a random window of this corpus instead."),
    split: str = O("val", "--split", help="Corpus split for --corpus: train or val."),
    num_samples: int = O(1, "--num-samples", max=1000, help="Examples to generate (with --corpus, each from its own window)."),
    prompt_chars: Optional[int] = O(None, "--prompt-chars", help="Length of a --corpus prompt (default: the context length)."),
    device: str = O("auto", "--device", help=DEVICE_HELP),
    precision: str = O("auto", "--precision", help="CPU decoding weights: auto (int8), int8, or fp32 (exact, slower)."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Stream generated text to stdout as it is sampled."""
    from rich.text import Text

    from tinygpt_tui.engine.folder import load_for_sampling
    from tinygpt_tui import sampler
    from tinygpt_tui.sampler import Generation, SamplingSettings
    from tinygpt_tui.tokenizer import printable

    settings = SamplingSettings(max_new_tokens=max_new, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, precision=precision).validate()
    if num_samples < 1:
        raise SettingsError(f"--num-samples must be at least 1, got {num_samples}")
    if prompt_chars is not None and prompt_chars < 1:
        raise SettingsError(f"--prompt-chars must be at least 1, got {prompt_chars}")
    if split not in ("train", "val"):
        raise SettingsError(f"--split must be train or val, got {split!r}")
    loaded = load_for_sampling(model_folder(model, models_dir), device)  # on a CPU: the compiled decoder, no torch
    err = console(stderr=True)
    out = sys.stdout
    prompts = [prompt] * num_samples
    if corpus is not None:
        prompts = corpus_prompts(corpus, split, num_samples, prompt_chars or loaded.model.cfg.block_size, seed)
    said = set()  # the notes of characters left out, once each (one prompt for every sample: one note)
    for i, p in enumerate(prompts):
        if num_samples > 1:
            err.print(Text(f"--- sample {i + 1} of {num_samples} ---", style="bold"))
        s = SamplingSettings(**{**settings.__dict__, "seed": None if seed is None else seed + i})
        gen = Generation(loaded.model, loaded.tokenizer, p, s)
        if gen.dropped and tuple(gen.dropped) not in said:
            said.add(tuple(gen.dropped))
            prose(err, Text(f"note: the model does not know {len(gen.dropped):,} character(s) of the prompt, left out: "
                            + printable(" ".join(gen.dropped[:20])), style="yellow"))
        if corpus is not None:
            err.print(Text(printable(p), style="dim"), end="")
        else:
            out.write(printable(p))
        out.flush()
        for ch in gen:
            out.write(printable(ch))
            out.flush()
        out.write("\n")
        out.flush()
    # numpy decoded all of it: loading what an earlier run compiled takes a second or two (nothing to say);
    # compiling for the first time about 30 s, in a process of its own that goes on after this one ends
    if gen.compiling and not gen.run.ready.wait(sampler.COMPILE_QUIET_S):
        compile_note(err)


@friendly
def eval_cmd(
    model: str = typer.Argument(..., help="Model name or folder."),
    corpus: Optional[str] = O(None, "--corpus", help="Corpus file or name (default: the one it was trained on)."),
    split: str = O("val", "--split", help="val (the last 10%), train (the first 90%) or all."),
    device: str = O("auto", "--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Loss, bits per character and per byte, and perplexity on a corpus split. The split is read whole: the model card's figure."""
    import glob

    from rich.table import Table
    from rich.text import Text

    from tinygpt_tui.cli.common import PrepareBar
    from tinygpt_tui.data import Dataset
    from tinygpt_tui.engine.corpora import catalog, is_fetched, local_path, resolve_corpus
    from tinygpt_tui.engine.device import pick_device
    from tinygpt_tui.engine.evaluate import MAX_EVAL_TOKENS, evaluate_split
    from tinygpt_tui.engine.folder import check_folder, load_model
    from tinygpt_tui.engine.prepare import prepare, run_to_end
    from tinygpt_tui.errors import CorpusError

    if split not in ("val", "train", "all"):
        raise SettingsError(f"--split must be val, train or all, got {split!r}")
    folder = model_folder(model, models_dir)
    check_folder(folder)  # a broken folder is refused before torch is imported (pick_device imports it)
    loaded = load_model(folder, device=pick_device(device))
    recorded = loaded.doc.get("corpus", {}) if isinstance(loaded.doc.get("corpus"), dict) else {}
    own = str(recorded.get("path") or "")
    if corpus and not os.path.exists(os.path.expanduser(corpus)) and Path(corpus).name == Path(own).name and os.path.isfile(own):
        corpus = own  # the model card's `--corpus NAME.txt`: the file this model was trained on
    if corpus is None:
        corpus = own
        if not corpus or not (os.path.isfile(corpus) or os.path.isdir(corpus) or glob.glob(corpus)):  # trained elsewhere: the catalog's text of the same sha256
            same = [e for e in catalog().values() if e.sha256 == recorded.get("sha256")]
            if same and is_fetched(same[0]):
                corpus = str(local_path(same[0]))
            elif same:
                raise CorpusError(f"this model was trained on {same[0].title}: run `tinygpt corpus fetch {same[0].name}` first")
            else:
                raise CorpusError("this model's corpus is not on this machine; give one with --corpus")
    with PrepareBar() as bar:  # encoded once with this model's vocabulary (engine/prepare.py), then memory-mapped
        c = run_to_end(prepare(str(resolve_corpus(corpus)), loaded.tokenizer), bar)
    data = Dataset(c, loaded.tokenizer, loaded.model.cfg.block_size)
    out = console()
    if data.dropped:
        prose(console(stderr=True), Text(f"note: {len(data.dropped):,} character(s) of the corpus are not in the model's vocabulary and are skipped", style="yellow"))
    splits = ["train", "val"] if split == "all" else [split]
    # no outer edges: at 80 columns, with them, the headers were cut ("characte…", "perplexi…")
    table = Table(title=Text(f"{one_line(loaded.name)} on {one_line(c.name)}"), title_justify="left", show_edge=False, pad_edge=False)
    for col in ("split", "characters", "tokens", "nats/token", "bits/char", "bits/byte", "perplexity"):
        table.add_column(col, justify="right")
    for s in splits:  # (seconds on a laptop, a minute for a big split: a terminal is told what it waits on; a log is not)
        words = f"measuring the {dict(val='validation', train='training')[s]} split ({min(len(data.split(s)), MAX_EVAL_TOKENS):,} tokens) …"
        with waiting(Text(words, style="dim")):
            loss = evaluate_split(loaded.model, data, s)
        bits = data.bits(loss, s)  # of the text, whatever the tokenizer: comparable across models (not with characters skipped)
        bpc, bpb = ("-", "-") if data.dropped else (f"{b:.4f}" for b in bits)
        table.add_row(s, f"{c.split_size(s)[0]:,}", f"{len(data.split(s)):,}", f"{loss:.4f}", bpc, bpb, f"{math.exp(loss):.3f}")
    out.print(table)
    if any(len(data.split(s)) > MAX_EVAL_TOKENS for s in splits):
        prose(out, Text(f"a split of more than {MAX_EVAL_TOKENS:,} tokens is measured on {MAX_EVAL_TOKENS:,} of them, evenly spread", style="dim"))
    recorded = loaded.doc.get("figures", {}).get("val_loss")
    if "val" in splits and isinstance(recorded, (int, float)) and c.sha256 == loaded.doc.get("corpus", {}).get("sha256"):
        out.print(f"model card: validation loss {recorded:.4f}")


def compile_note(err) -> None:
    """Why the process lingers after its text: said each time it does, which is once per install and numba
    version (the compiled step is cached beside the package). A marker per machine kept it silent in a
    second checkout or a new virtual environment, which compiles again."""
    from rich.text import Text

    prose(err, Text("the compiled decoder is still being built (about 30 s, once per install where numba can cache it)",
                    style="yellow"))


def corpus_prompts(corpus, split, n, length, seed):
    import random

    from tinygpt_tui.data import split_text
    from tinygpt_tui.engine.corpora import read_corpus, resolve_corpus

    text = read_corpus(resolve_corpus(corpus)).text
    part = split_text(text)[0 if split == "train" else 1]
    if len(part) <= length:
        raise SettingsError(f"the {split} split of {one_line(corpus)} has {len(part):,} characters, fewer than the prompt length {length:,}")
    rng = random.Random(seed)
    return [part[s : s + length] for s in (rng.randrange(len(part) - length) for _ in range(n))]

