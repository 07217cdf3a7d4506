"""The `tinygpt` command line: `tinygpt` alone opens the app; subcommands work headless.

Only typer and the standard library are imported at start: torch loads inside
the commands that need it, so `tinygpt --help` and the app's first paint stay fast.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import typer

from tinygpt_tui.errors import TinyGPTError

app = typer.Typer(
    name="tinygpt",
    help="Train and play with tiny character-level GPT models. Run with no command to open the app.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=False,
    rich_markup_mode="rich",
)
corpus_app = typer.Typer(help="The corpus catalog: list, fetch (download or import with a sha256 check), add your own file.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")

ModelsDir = typer.Option(None, "--models-dir", envvar="TINYGPT_MODELS_DIR", help="Folder of model folders (default: ./models).")


def fail(message: str, code: int = 2):
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, highlight=False, soft_wrap=True).print(Text("error: ", style="bold red") + Text(safe(message)))
    raise typer.Exit(code)


def safe(text: str) -> str:
    from tinygpt_tui.tokenizer import printable

    return printable(str(text))


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


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    models_dir: Optional[Path] = ModelsDir,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
):
    """Train and play with tiny character-level GPT models. With no command, opens the app."""
    if version:
        from tinygpt_tui import __version__

        typer.echo(f"tinygpt {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        from tinygpt_tui.app.app import run_app

        run_app(models_dir=models_dir)


# ------------------------------------------------------------------ train
@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@friendly
def train(
    corpus: Optional[str] = typer.Argument(None, help="A text file, or a corpus name from `tinygpt corpus list`. Optional with --resume."),
    name: str = typer.Option(..., "--name", "-n", help="Model name: the folder under the models directory."),
    preset: str = typer.Option("auto", help="Size preset: auto (sized for --minutes; small without it), 1min, 5min, tiny, small, medium, large, nanogpt."),
    minutes: Optional[float] = typer.Option(None, "--minutes", "-m", help="Wall-clock budget in minutes; the learning-rate schedule fits it."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps (default 2000 when no --minutes)."),
    block_size: Optional[int] = typer.Option(None, "--block-size", help="Context length in characters (default: 128)."),
    n_layer: Optional[int] = typer.Option(None, "--n-layer", help="Transformer layers."),
    n_head: Optional[int] = typer.Option(None, "--n-head", help="Attention heads per layer."),
    n_embd: Optional[int] = typer.Option(None, "--n-embd", help="Embedding size (divisible by --n-head)."),
    dropout: Optional[float] = typer.Option(None, "--dropout"),
    bias: Optional[bool] = typer.Option(None, "--bias/--no-bias", help="Biases in linear layers and layer norms."),
    pos_encoding: Optional[str] = typer.Option(None, "--pos", help="Positions: learned, sinusoidal, rope, alibi, none."),
    ffn: Optional[str] = typer.Option(None, "--ffn", help="Feed-forward: gelu or swiglu."),
    norm: Optional[str] = typer.Option(None, "--norm", help="Normalization: layernorm or rmsnorm."),
    tie_weights: Optional[bool] = typer.Option(None, "--tie/--no-tie", help="Share the embedding with the output layer."),
    mlp_ratio: Optional[float] = typer.Option(None, "--mlp-ratio", help="Feed-forward width as a multiple of --n-embd."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b"),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Micro-batches per step (the global batch is batch-size x grad-accum)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="muon (default: Muon for the hidden matrices, AdamW for the rest) or adamw."),
    muon_lr: Optional[float] = typer.Option(None, "--muon-lr", help="Muon's peak learning rate (default 0.02)."),
    min_lr_ratio: float = typer.Option(0.1, "--min-lr-ratio", help="Final learning rate as a fraction of the peak."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps"),
    weight_decay: float = typer.Option(0.1, "--weight-decay"),
    beta1: float = typer.Option(0.9, "--beta1"),
    beta2: float = typer.Option(0.99, "--beta2"),
    grad_clip: float = typer.Option(1.0, "--grad-clip", help="Clip the gradient norm (0: off)."),
    checkpoint_activations: bool = typer.Option(False, "--checkpoint-activations", help="Recompute activations in the backward pass: much less memory, about 1.6x the time per step."),
    memory_budget: Optional[float] = typer.Option(None, "--memory-budget", help="GB of activations per forward pass; a bigger batch is split into micro-batches (same step). Default: 1 on a CPU, no split on a GPU; 0: never split."),
    eval_interval: Optional[int] = typer.Option(None, "--eval-interval", help="Steps between evaluations (and checkpoints)."),
    eval_iters: Optional[int] = typer.Option(None, "--eval-iters", help="Batches per loss estimate."),
    sample_chars: int = typer.Option(200, "--sample-chars", help="Characters sampled at each evaluation (0: none)."),
    seed: int = typer.Option(1337, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, mps."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, fp32, bf16, fp16."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch."),
    resume: bool = typer.Option(False, "--resume", help="Continue the model's last checkpoint."),
    jsonl: bool = typer.Option(False, "--jsonl", help="Print events as JSON lines instead of a progress bar."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Train a model on a corpus. Ctrl+C saves a checkpoint and exits; --resume continues it."""
    from tinygpt_tui.engine.train import TrainConfig

    if corpus is None and not resume:
        fail("give a corpus: a text file or a name from `tinygpt corpus list`")
    if minutes is not None and (minutes != minutes or minutes <= 0):
        fail(f"--minutes must be above 0, got {minutes}")
    corpus_path = ""
    if corpus is not None:
        from tinygpt_tui.engine.corpora import resolve_corpus

        corpus_path = str(resolve_corpus(corpus))
    cfg = TrainConfig(
        corpus=corpus_path, name=name, models_dir=str(models_dir) if models_dir else None, preset=preset,
        block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd, dropout=dropout, bias=bias,
        pos_encoding=pos_encoding, ffn=ffn, norm=norm, tie_weights=tie_weights, mlp_ratio=mlp_ratio,
        batch_size=batch_size, grad_accum=grad_accum, max_steps=max_steps, time_budget=minutes * 60 if minutes else None,
        lr=lr, optimizer=optimizer, muon_lr=muon_lr, min_lr_ratio=min_lr_ratio, warmup_steps=warmup_steps, weight_decay=weight_decay, beta1=beta1, beta2=beta2,
        grad_clip=grad_clip, checkpoint_activations=checkpoint_activations, memory_budget=memory_budget, eval_interval=eval_interval, eval_iters=eval_iters, sample_chars=sample_chars, seed=seed,
        device=device, dtype=dtype, threads=threads, resume=resume, command=command_line(),
    )
    from tinygpt_tui.cli.train import run_training

    run_training(cfg, jsonl=jsonl)


def command_line() -> str:
    import shlex

    prog = "python train.py" if Path(sys.argv[0]).name == "train.py" else "tinygpt"
    args = sys.argv[1:]
    if prog == "tinygpt" and args[:1] == ["train"]:
        args = args[1:]
    return " ".join([prog if prog != "tinygpt" else "tinygpt train", *(shlex.quote(a) for a in args)])


# ------------------------------------------------------------------ generate
@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@friendly
def generate(
    model: str = typer.Argument(..., help="Model name (under the models directory) or a folder path."),
    prompt: str = typer.Option("", "--prompt", "-p", help="Text to continue."),
    max_new: int = typer.Option(500, "--max-new", "-n", help="Characters to generate."),
    temperature: float = typer.Option(0.8, "--temperature", "-t", help="0 means greedy."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Sample from the k most likely characters."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Nucleus sampling: the smallest set with this much probability."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Same seed, same text."),
    corpus: Optional[str] = typer.Option(None, "--corpus", help="Take the prompt from a random window of this corpus instead."),
    split: str = typer.Option("val", "--split", help="Corpus split for --corpus: train or val."),
    num_samples: int = typer.Option(1, "--num-samples", "-k", help="Examples to generate (with --corpus, each from its own window)."),
    prompt_chars: Optional[int] = typer.Option(None, "--prompt-chars", help="Length of a --corpus prompt (default: the context length)."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu, cuda, mps."),
    precision: str = typer.Option("auto", "--precision", help="CPU decoding weights: auto (int8), int8, or fp32 (exact, slower)."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Stream generated text to stdout as it is sampled."""
    from tinygpt_tui.cli.generate import run_generate

    run_generate(model, prompt, max_new, temperature, top_k, top_p, seed, corpus, split, num_samples, prompt_chars, device, models_dir,
                 precision)


# ------------------------------------------------------------------ eval
@app.command(name="eval", context_settings={"help_option_names": ["-h", "--help"]})
@friendly
def eval_cmd(
    model: str = typer.Argument(..., help="Model name or folder."),
    corpus: Optional[str] = typer.Option(None, "--corpus", help="Corpus file or catalog name (default: the one it was trained on)."),
    split: str = typer.Option("val", "--split", help="val (the last 10%), train (the first 90%) or all."),
    device: str = typer.Option("auto", "--device"),
    models_dir: Optional[Path] = ModelsDir,
):
    """Loss, bits per character and perplexity over a whole corpus split."""
    from tinygpt_tui.cli.generate import run_eval

    run_eval(model, corpus, split, device, models_dir)


# ------------------------------------------------------------------ convert
@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@friendly
def convert(
    checkpoint: Path = typer.Argument(..., help="A nanoGPT ckpt.pt (read with torch.load(weights_only=True): no code runs)."),
    name: str = typer.Option(..., "--name", "-n", help="Name of the new model folder."),
    meta: Optional[Path] = typer.Option(None, "--meta", help="The dataset's meta.pkl with the vocabulary (read as plain data only)."),
    corpus: Optional[str] = typer.Option(None, "--corpus", help="Or the training text: its sorted distinct characters are the vocabulary."),
    n_head: Optional[int] = typer.Option(None, "--n-head", help="Heads, for a bare state dict without model_args."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Convert a character-level nanoGPT checkpoint into a tinygpt model folder (safetensors + JSON)."""
    from tinygpt_tui.cli.convert import run_convert

    run_convert(checkpoint, name, models_dir, meta, corpus, n_head, echo=lambda m: typer.echo(safe(m)))


# ------------------------------------------------------------------ inspect
@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@friendly
def inspect(
    model: str = typer.Argument(..., help="Model name or folder."),
    prompt: str = typer.Option(..., "--prompt", "-p", help="The context (its last block_size characters are used)."),
    top_k: int = typer.Option(10, "--top-k", "-k", help="How many next-character candidates to show."),
    layer: Optional[int] = typer.Option(None, "--layer", "-l", help="Show only this layer's heatmap (0-based) (default: every layer)."),
    position: int = typer.Option(-1, "--position", help="Query position in the context, 0-based; negative counts from the end."),
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="Probabilities are softmax(logits / temperature)."),
    rank_of: Optional[str] = typer.Option(None, "--rank-of", help="Also show where this character ranks."),
    json_out: bool = typer.Option(False, "--json", help="Print the numbers as JSON (top-k, attention per layer and head)."),
    device: str = typer.Option("cpu", "--device", help="auto, cpu, cuda, mps."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Next-character probabilities and attention heatmaps for a prompt."""
    from tinygpt_tui.cli.inspect import run_inspect

    run_inspect(model, prompt, top_k, layer, position, temperature, json_out, device, models_dir, rank_of)


# ------------------------------------------------------------------ bench
@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@friendly
def bench(
    quick: bool = typer.Option(False, "--quick", help="Smoke run (under a minute); asserts nothing about speed."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, mps."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's choice)."),
    json_path: Optional[str] = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    model: Optional[str] = typer.Option(None, "--model", help="Model folder for the generation figures (default: models/shakespeare if it loads)."),
    corpus: Optional[str] = typer.Option(None, "--corpus", help="Corpus for --quality-seconds."),
    quality_seconds: float = typer.Option(0.0, "--quality-seconds", help="Train this long with `tinygpt train --minutes` and report the val loss (full mode)."),
    clock: str = typer.Option("wall", "--clock", help="wall, or cpu (this process's CPU time: a shared machine, with --threads 1)."),
    memory: bool = typer.Option(True, "--memory/--no-memory", help="Measure peak memory in fresh processes."),
    training: bool = typer.Option(True, "--training/--no-training", help="Measure training (off: generation and start-up only)."),
):
    """Training and generation speed against their baselines, side by side (see docs/performance.md)."""
    from bench.bench import cli_main

    code = cli_main(quick=quick, device=device, threads=threads, json_path=json_path, model=model, corpus=corpus,
                    quality_seconds=quality_seconds, memory=memory, clock=clock, training=training)
    if code:
        raise typer.Exit(code)


# ------------------------------------------------------------------ models
@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@friendly
def models(models_dir: Optional[Path] = ModelsDir):
    """A table of the model folders found."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from tinygpt_tui.engine.folder import default_models_dir, list_models

    d = models_dir or default_models_dir()
    infos = list_models(d)
    console = Console(highlight=False)
    if not infos:
        console.print(f"no models in {safe(d)}; train one with `tinygpt train`")
        return
    table = Table(title=Text(f"models in {safe(d)}"), title_justify="left")
    for col, just in (("name", "left"), ("params", "right"), ("context", "right"), ("corpus", "left"), ("val loss", "right"), ("steps", "right"), ("size", "right")):
        table.add_column(col, justify=just)
    for i in infos:
        size = f"{i.size_bytes / 1e6:.1f} MB"
        if not i.ok:
            table.add_row(Text(safe(i.name)), "", "", Text("broken: " + safe(i.error), style="red"), "", "", size)
            continue
        vl = f"{i.val_loss:.4f}" if i.val_loss is not None else "-"
        table.add_row(Text(safe(i.name)), f"{i.params / 1e6:.2f}M", str(i.block_size), Text(safe(i.corpus)), vl, f"{i.step:,}", size)
    console.print(table)


# ------------------------------------------------------------------ corpus
@corpus_app.command("list")
@friendly
def corpus_list():
    """The catalog, and what is fetched or added here."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from tinygpt_tui.engine.corpora import corpora_dir, list_corpora

    table = Table(title=Text(f"corpora ({safe(corpora_dir())})"), title_justify="left")
    for col in ("name", "title", "source", "status", "size"):
        table.add_column(col)
    for c in list_corpora():
        status = Text("ready", style="green") if c.present else Text("not fetched: tinygpt corpus fetch " + c.name, style="yellow")
        table.add_row(Text(safe(c.name)), Text(safe(c.title)), c.source, status, f"{c.size / 1e6:.2f} MB")
    Console(highlight=False).print(table)


@corpus_app.command("fetch")
@friendly
def corpus_fetch(
    name: str = typer.Argument(..., help="A catalog name (see `tinygpt corpus list`)."),
    from_file: Optional[Path] = typer.Option(None, "--from", help="Import this local copy instead of downloading (checked against the sha256)."),
):
    """Download a catalog corpus and verify its sha256 (or import a local copy)."""
    from tinygpt_tui.engine.corpora import fetch

    dest = fetch(name, str(from_file) if from_file else None)
    typer.echo(f"{name}: {dest} (sha256 verified)")


@corpus_app.command("add")
@friendly
def corpus_add(
    file: Path = typer.Argument(..., help="A UTF-8 text file of your own."),
    name: Optional[str] = typer.Option(None, "--name", help="Name to list it under (default: the file's name)."),
):
    """Copy a text file of your own into corpora/ (git-ignored) so it can be named like a catalog corpus."""
    from tinygpt_tui.engine.corpora import add

    dest = add(str(file), name)
    typer.echo(f"added {safe(dest)}")


def run():
    """Entry point: turns Ctrl+C outside of training into a quiet exit."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    run()
