"""`tinygpt train` / `python train.py`: the training loop with a rich progress bar, signals and torchrun."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import typer

from tinygpt_tui.cli.common import HELP, Command, ModelsDir, console as new_console, fail, friendly, leave_to_rank_0, model_folder, not_a_folder, one_line, prose, shell_word, waiting
from tinygpt_tui.errors import CheckpointError, TinyGPTError

O = typer.Option


@friendly
def train(
    ctx: typer.Context,
    corpus: Optional[str] = typer.Argument(None, help="A text file, or a corpus name from `tinygpt corpus list`. Optional with --resume."),
    name: str = O(..., "--name", "-n", help="Model name: the folder under the models directory."),
    preset: str = O("auto", help="Size preset: auto (sized for --minutes; small without it), 1min, 5min, tiny, small, medium, large, nanogpt."),
    minutes: Optional[float] = O(None, "--minutes", "-m", help="Wall-clock budget in minutes; the learning-rate schedule fits it."),
    max_steps: Optional[int] = O(None, "--max-steps", help="Optimizer steps (default 2000 when no --minutes)."),
    block_size: Optional[int] = O(None, "--block-size", help="Context length in tokens (default: 128)."),
    tokenizer: Optional[str] = O(None, "--tokenizer", help="char (one token per character, the default) or bpe (byte-level BPE learned from the corpus)."),
    vocab_size: Optional[int] = O(None, "--vocab-size", help="With --tokenizer bpe: how many tokens (default 512)."),
    init_from: Optional[str] = O(None, "--from", help="Start from this model's weights (its architecture but dropout, and its tokenizer; new characters get fresh rows)."),
    n_layer: Optional[int] = O(None, "--n-layer", help="Transformer layers."),
    n_head: Optional[int] = O(None, "--n-head", help="Attention heads per layer."),
    n_embd: Optional[int] = O(None, "--n-embd", help="Embedding size (divisible by --n-head)."),
    dropout: Optional[float] = O(None, "--dropout"),
    bias: Optional[bool] = O(None, "--bias/--no-bias", help="Biases in linear layers and layer norms."),
    pos_encoding: Optional[str] = O(None, "--pos", help="Positions: learned, sinusoidal, rope, alibi, none."),
    ffn: Optional[str] = O(None, "--ffn", help="Feed-forward: gelu or swiglu."),
    norm: Optional[str] = O(None, "--norm", help="Normalization: layernorm or rmsnorm."),
    tie_weights: Optional[bool] = O(None, "--tie/--no-tie", help="Share the embedding with the output layer."),
    mlp_ratio: Optional[float] = O(None, "--mlp-ratio", help="Feed-forward width as a multiple of --n-embd."),
    batch_size: Optional[int] = O(None, "--batch-size", "-b"),
    grad_accum: int = O(1, "--grad-accum", help="Micro-batches per step (the global batch is batch-size x grad-accum)."),
    lr: Optional[float] = O(None, "--lr", help="Peak learning rate."),
    optimizer: Optional[str] = O(None, "--optimizer", help="muon (default: Muon for the hidden matrices, AdamW for the rest) or adamw."),
    muon_lr: Optional[float] = O(None, "--muon-lr", help="Muon's peak learning rate (default 0.02)."),
    muon_weight_decay: Optional[float] = O(None, "--muon-weight-decay", help="Muon's weight decay: its matrices shrink by its learning rate x this each step (default 0)."),
    min_lr_ratio: Optional[float] = O(None, "--min-lr-ratio", help="Final learning rate as a fraction of the peak (default 0.1; 0 in the 5min preset)."),
    schedule: Optional[str] = O(None, "--schedule", help="After warmup: cosine (the default) down to the final rate, or wsd (the peak held, then a straight fall over the last --cooldown of the run)."),
    cooldown: Optional[float] = O(None, "--cooldown", help="With --schedule wsd: the fraction of the run spent falling (default 0.4)."),
    warmup_steps: Optional[int] = O(None, "--warmup-steps"),
    weight_decay: float = O(0.1, "--weight-decay"),
    beta1: float = O(0.9, "--beta1"),
    beta2: float = O(0.99, "--beta2"),
    grad_clip: float = O(1.0, "--grad-clip", help="Clip the gradient norm (0: off)."),
    checkpoint_activations: bool = O(False, "--checkpoint-activations", help="Recompute activations in the backward pass: much less memory, about 1.6x the time per step."),
    memory_budget: Optional[float] = O(None, "--memory-budget", help="GB of activations per forward pass; a bigger batch is split into micro-batches (same step). Default: 1 on a CPU, no split on a GPU; 0: never split."),
    eval_interval: Optional[int] = O(None, "--eval-interval", help="Steps between evaluations (and checkpoints)."),
    eval_iters: Optional[int] = O(None, "--eval-iters", help="Batches per loss estimate."),
    sample_chars: int = O(200, "--sample-chars", help="Characters sampled at each evaluation (0: none)."),
    seed: int = O(1337, "--seed"),
    device: str = O("auto", "--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps."),
    dtype: str = O("auto", "--dtype", help="auto (measured on this machine's CPU; bf16 on a GPU), fp32, bf16, fp16 (GPUs)."),
    threads: Optional[int] = O(None, "--threads", help="CPU threads for torch (default: measured on this machine, see `tinygpt bench`)."),
    resume: bool = O(False, "--resume", help="Continue the model's last checkpoint."),
    jsonl: bool = O(False, "--jsonl", help="Print events as JSON lines instead of a progress bar (the corpus's preparation too: \"prepare\" records)."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Train a model on a corpus. Ctrl+C saves a checkpoint and exits; --resume continues it."""
    options = dict(locals())  # taken first: the options above, each named as its TrainConfig field
    del options["ctx"]
    from tinygpt_tui.engine.corpora import resolve_corpus
    from tinygpt_tui.engine.presets import TrainConfig

    if corpus is None and not resume:
        fail("give a corpus: a text file or a name from `tinygpt corpus list`")
    if resume:
        refuse_changes(ctx, options)
    if init_from == "":  # (else left out as if not given: the run trained from scratch, saying nothing)
        fail("--from is empty: give the model to start from, by name or folder")
    if init_from and not_a_folder(init_from):  # a file is there: a GGUF, a checkpoint ("model not found", said engine/lineage.py)
        try:
            model_folder(init_from, models_dir)  # (a model of that name under --models-dir is still the one meant)
        except CheckpointError as e:
            fail(f"--from {e}")
    if minutes is not None and (minutes != minutes or minutes <= 0):
        fail(f"--minutes must be above 0, got {minutes}")
    del options["minutes"], options["jsonl"]  # (as time_budget below; and how to print, not a setting)
    options.update(corpus=str(resolve_corpus(corpus)) if corpus is not None else "", time_budget=minutes * 60 if minutes else None,
                   models_dir=str(models_dir) if models_dir else None, command=command_line())
    if corpus is not None:
        from tinygpt_tui.engine.sources import look_first

        look_first(options["corpus"])  # before the probe (10 s, once per machine)
    from tinygpt_tui.engine.presets import unused_settings
    from tinygpt_tui.engine.probe import settle

    if not resume:
        for k, why in unused_settings(TrainConfig(**options)).items():
            fail(f"--{k.replace('_', '-')} {why.replace('lr and weight_decay', '--lr and --weight-decay')}")
    with waiting("starting: loading PyTorch …"):
        tokenizer = check_run(TrainConfig(**options))  # before the probe too (seconds, once per machine); kept for the preparation
        if corpus is not None and int(os.environ.get("RANK", "0") or 0) == 0:  # (once it is known to be a corpus: an error is one line)
            from tinygpt_tui.engine.corpora import corpus_notes

            for line in corpus_notes(options["corpus"]):
                note(line)  # (a folder's or a glob's files were never named; a licence was trained on without a word)
        # on a CPU: the precision, threads and --minutes preset measured on this machine (engine/probe.py); why: said
        why: dict = {}
        cfg = settle(TrainConfig(**options), note=note, why=why)
    run_training(cfg, jsonl=jsonl, why=why, tokenizer=tokenizer)


# what --resume takes from the command line; every other setting is the saved run's
RESUME_TAKES = {"corpus", "name", "max_steps", "minutes", "jsonl", "models_dir", "resume", "device", "threads", "dtype",
                "eval_interval", "eval_iters", "sample_chars", "checkpoint_activations", "memory_budget", "init_from"}


def refuse_changes(ctx: typer.Context, options: dict) -> None:
    """--resume goes on with the run's saved settings: one typed that differs from them (--lr 0.5, --n-layer 6)
    was ignored without a word. The same command again with --resume (a job resubmitted) still runs."""
    from tinygpt_tui.engine.folder import default_models_dir
    from tinygpt_tui.engine.presets import resume_changes

    typed = {k: v for k, v in options.items() if k not in RESUME_TAKES and getattr(ctx.get_parameter_source(k), "name", "") == "COMMANDLINE"}
    flags = {p.name: p.opts[0] for p in ctx.command.params}
    changed = [flags.get(k, k) for k in resume_changes(Path(options["models_dir"] or default_models_dir()) / options["name"], typed)]
    if changed:
        fail(f"--resume goes on with {one_line(options['name'])}'s saved settings; {', '.join(changed)} cannot change "
             "(it takes the length, --device, --threads, --dtype and the evaluation options; or train a new run with another --name)")


def note(line: str) -> None:
    """One dim line on stderr (stdout stays the run's, JSON lines with --jsonl)."""
    from rich.text import Text

    prose(new_console(stderr=True), Text(one_line(line), style="dim"))


def command_line() -> str:
    """The command as typed, for the model card (`python train.py ...` or `tinygpt train ...`): each word as a shell
    reads it back, inert on one line (a corpus path holding a newline or an escape: $'...'; the card's commands are
    one a line, and `cat README.md` would have run the escape)."""
    args = sys.argv[1:]
    if Path(sys.argv[0]).name == "train.py":
        return " ".join(["python train.py", *map(shell_word, args)])
    i = 0  # past the options typed before the command (`tinygpt --models-dir DIR train ...`): kept where they were
    while args[i:i + 1] and args[i].startswith("--models-dir"):
        i += 1 if "=" in args[i] else 2
    if args[i:i + 1] == ["train"]:
        return " ".join(["tinygpt", *map(shell_word, args)])
    return " ".join(["tinygpt train", *map(shell_word, args)])


def fmt_time(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "--:--"
    h, rest = divmod(int(s), 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


# Under torchrun one Ctrl+C arrives twice: from the terminal, and again from torchrun, which passes
# SIGINT/SIGTERM on to its workers (a Slurm scancel likewise signals every task and its launcher).
# Repeats within this many seconds are the same request, not the impatient second Ctrl+C.
REPEAT_WINDOW_S = 3.0


def install_stop_handlers(stop: threading.Event, quiet: bool, distributed: bool = False, saying=None) -> None:
    """Ctrl+C, SIGTERM or SIGHUP (the terminal closed): finish the step, save a checkpoint, exit. A second Ctrl+C
    exits at once. An ignored SIGHUP (nohup) stays ignored. ``saying()``: the line the first says, when not that."""
    first = []
    ttys = [fd for fd in (1, 2) if os.isatty(fd)]  # (asked now: a terminal hung up answers no)
    hangup = getattr(signal, "SIGHUP", None)

    def handler(signum, frame):
        if signum == hangup:  # the terminal is gone: what is still printed goes nowhere instead of failing the save
            null = os.open(os.devnull, os.O_WRONLY)
            for fd in ttys:
                os.dup2(null, fd)
            os.close(null)
        now = time.monotonic()
        if stop.is_set():
            if signum == hangup or distributed and first and now - first[0] < REPEAT_WINDOW_S:
                return
            os._exit(130)
        first.append(now)
        stop.set()
        if not quiet:
            said = (saying() if saying else None) or "stopping: saving a checkpoint (Ctrl+C again to quit without saving)"
            print(f"\n{said}", file=sys.stderr, flush=True)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
        if hangup is not None and signal.getsignal(hangup) is not signal.SIG_IGN:
            signal.signal(hangup, handler)


def restore_interrupt() -> None:
    """Training is over: Ctrl+C quits what is left (results, samples) at once, exit 130, as elsewhere."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if getattr(signal, "SIGHUP", None) is not None and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            signal.signal(signal.SIGHUP, signal.SIG_DFL)


def init_distributed(device: str = "auto"):
    """Under torchrun (WORLD_SIZE > 1): join the process group, NCCL for GPUs, gloo for the CPU.

    The backend follows the device this rank will train on (``dist_device``),
    so ``--device cpu`` uses gloo even on a machine with GPUs.
    """
    from tinygpt_tui.engine.distributed import DistInfo, dist_device

    dist = DistInfo.from_env()
    if dist.world_size > 1:
        import torch.distributed as td

        if not td.is_initialized():
            try:
                where = dist_device(device, dist)
            except TinyGPTError as e:
                raise type(e)(f"rank {dist.rank}: {e}") from None  # no process group yet to agree through
            if where.type == "cuda":
                td.init_process_group(backend="nccl", device_id=where)
            else:
                td.init_process_group(backend="gloo")
    return dist


def run_training(cfg, jsonl: bool = False, why: dict | None = None, tokenizer=None) -> None:
    """Train cfg, printing its events; ``why``: why the machine probe chose its precision and threads (probe.settle's),
    said in the header (and in the start record's "probe" with --jsonl)."""
    import json

    from tinygpt_tui.engine.train import Started, train as train_events

    stop = threading.Event()
    dist = init_distributed(cfg.device)
    quiet = not dist.is_main  # only rank 0 prints; the others train silently
    try:
        prepare_corpus(cfg, quiet=quiet, jsonl=jsonl, tokenizer=tokenizer)  # (before the handlers: Ctrl+C stops a preparation, as nothing is trained yet)
        install_stop_handlers(stop, quiet, distributed=dist.world_size > 1)
        started = False
        if jsonl or quiet:
            for ev in train_events(cfg, stop, dist):
                started = started or isinstance(ev, Started)
                if not quiet:
                    rec = ev.record()
                    if isinstance(ev, Started) and why:  # {"dtype": {"chose": "bf16", "why": "measured faster here"}, ...}
                        rec["probe"] = {k: {"chose": getattr(cfg, k), "why": v} for k, v in why.items()}
                    print(json.dumps(rec, ensure_ascii=False), flush=True)
        else:
            started = _run_with_progress(cfg, stop, dist, why or {})
        if not started and stop.is_set():  # Ctrl+C after the corpus was ready, before the first step: the engine saved nothing
            if not quiet:
                print("stopped before training began: nothing trained, nothing saved", file=sys.stderr, flush=True)
            sys.exit(130)
    except TinyGPTError as e:  # (the ranks agree on failures: each raises the same, and rank 0 says it)
        leave_to_rank_0(e)
        raise
    finally:
        if dist.world_size > 1:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()


def prepare_corpus(cfg, quiet: bool, jsonl: bool = False, tokenizer=None) -> None:
    """Encode the corpus into token files first, with a progress bar, or with ``jsonl`` its "prepare" records (the run
    then finds it prepared; under torchrun the ranks take turns). Whatever is wrong with the run's folder is left for
    the run to say. ``tokenizer``: check_run's, when it has run already (--from A: A read and checked once)."""
    from tinygpt_tui.cli.common import PrepareBar
    from tinygpt_tui.engine import folder as ckpt
    from tinygpt_tui.engine.prepare import prepare, run_to_end

    corpus = cfg.corpus
    if not cfg.resume:
        tokenizer = tokenizer if tokenizer is not None else check_run(cfg)
    else:
        try:
            folder = (Path(cfg.models_dir) if cfg.models_dir else ckpt.default_models_dir()) / cfg.name
            doc, _ = ckpt.check_folder(folder)
            corpus, tokenizer = corpus or str(doc.get("corpus", {}).get("path") or ""), ckpt.read_vocab(folder)
        except TinyGPTError:
            return
    if corpus:
        try:
            with PrepareBar(quiet or jsonl) as bar:
                run_to_end(prepare(corpus, tokenizer), json_lines() if jsonl and not quiet else bar)
        except KeyboardInterrupt:
            if not quiet:
                prose(new_console(stderr=True), "stopped while preparing the corpus: nothing trained, nothing saved "
                                                "(the next run goes on with the encoding from where it stopped)")
            raise


def check_run(cfg):
    """What the run would refuse, said before a long preparation (and before the probe): a new run's name taken, a bad
    --from model, bad settings (its tokenizer returned, as the run makes it); a resumed run's folder with nothing to resume."""
    from tinygpt_tui.engine import folder as ckpt
    from tinygpt_tui.engine.lineage import child_config, read_parent, run_tokenizer
    from tinygpt_tui.engine.presets import NameTaken, check_name

    check_name(cfg.name, new=not cfg.resume)
    models_dir = Path(cfg.models_dir) if cfg.models_dir else ckpt.default_models_dir()
    if cfg.resume:
        if why := ckpt.nothing_to_resume(models_dir / cfg.name):
            raise CheckpointError(why)
        return None
    if (models_dir / cfg.name / ckpt.CONFIG).exists():  # (said by the run too, but only after a long preparation)
        raise NameTaken(cfg.name, models_dir)
    parent = read_parent(cfg) if cfg.init_from else None  # --from A: with A's tokenizer, once A is checked
    return run_tokenizer((child_config(cfg, parent) if parent else cfg).resolved(), parent)[0]


def json_lines():
    """--jsonl's printer of a preparation's Progress: a "prepare" record a line, as the run's events are printed; of
    each stage its first and last, and one a second between (a BPE's learning says how far it got 4 times a second)."""
    import json

    said = {"stage": None, "at": 0.0}

    def say(ev) -> None:
        now = time.monotonic()
        if ev.stage != said["stage"] or 0 < ev.total <= ev.done or now - said["at"] >= 1.0:
            print(json.dumps(ev.record(), ensure_ascii=False), flush=True)
            said.update(stage=ev.stage, at=now)

    return say


def _run_with_progress(cfg, stop: threading.Event, dist, why: dict) -> bool:
    """The run's events as a progress bar and lines; whether it started (its first step was on its way). ``why``:
    why the probe chose the precision and threads, said beside them in the header."""
    from rich.cells import cell_len
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
    from rich.text import Text

    from tinygpt_tui.chart import Part, fit_line
    from tinygpt_tui.engine.events import measuring_words
    from tinygpt_tui.engine.runs import Curves, overfitting
    from tinygpt_tui.engine.train import Eval, Finished, Measuring, Overfitting, Started, Step, train as train_events
    from tinygpt_tui.tokenizer import printable

    console = new_console()
    # started at the first event, so that a run refused before it (a bad corpus, say) prints nothing to stdout
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[info]}"),
                        console=console, transient=False)
    task, last_eval, measured, best_shown = None, [], None, None
    room = console.width - cell_len(one_line(cfg.name)) - 4 - 3 - 12  # the name, "100%", the gaps and a bar worth reading

    def figures(pairs: list[tuple[str, int]]) -> str:  # (at 80 columns they took the bar's line, its name cut to "m…")
        return fit_line([Part(text, rank) for text, rank in pairs], room, sep="  ").plain
    curves = Curves()  # the evaluations so far: validation rising while training falls is kept in the line
    building = contextlib.ExitStack()
    building.enter_context(waiting("starting: building the model and its optimizer …"))  # (until the run's first event)
    try:
        for ev in train_events(cfg, stop, dist):
            building.close()
            curves.apply(ev.record())
            if isinstance(ev, Started):
                what = "resuming" if ev.resumed else "training"
                budget = [f"{ev.max_steps:,} steps"] if ev.max_steps else []
                budget += [f"{ev.time_budget / 60:.1f} min"] if ev.time_budget else []
                source = f" from {one_line(cfg.init_from)}" if cfg.init_from and not ev.resumed else ""
                device, dtype = ev.device, ev.dtype + (f" ({why['dtype']})" if why.get("dtype") else "")
                if why.get("threads") and device.endswith(")"):  # "CPU (1 thread: 1 of 2 cores free)"
                    device = f"{device[:-1]}: {why['threads']})"
                prose(console, Text(f"{what} {one_line(cfg.name)}{source}: {ev.params / 1e6:.2f}M parameters, {ev.tokenizer or 'char'} tokens, on {device}, {dtype}, "
                                    f"{ev.tokens_per_step:,} tokens/step, {' or '.join(budget)}"
                                    + (f", {ev.world_size} processes" if ev.world_size > 1 else "")))
                if ev.accum > max(cfg.grad_accum // ev.world_size, 1) and ev.activation_mb is not None:
                    prose(console, Text(f"each step runs as {ev.accum} micro-batches of {ev.micro_batch} sequences "
                                        f"({ev.activation_mb:,.0f} MB of activations each; --memory-budget to change)", style="dim"))
                if ev.dropped_chars:
                    prose(console, Text(f"note: {len(ev.dropped_chars):,} corpus characters are not in the vocabulary and are skipped: "
                                        + printable("".join(ev.dropped_chars[:20])), style="yellow"))
                progress.start()
                task = progress.add_task(one_line(cfg.name), total=1000, info="starting…")
            elif isinstance(ev, Step):
                info = figures([(f"step {ev.step:,}", 0), (f"loss {ev.loss:.4f}", 1), (f"{ev.tokens_per_s:,.0f} tok/s", 5),
                                (f"ETA {fmt_time(ev.eta_s)}", 2), *last_eval])
                progress.update(task, completed=int(ev.progress * 1000), info=info)
            elif isinstance(ev, Eval):
                last_eval = [(f"val {ev.val_loss:.4f}", 3), (f"({ev.bpc:.3f} bits/char)", 6), *([("overfitting", 2)] if overfitting(curves) else [])]
                best_shown = ev.best_val_loss  # (the end names this best, not the estimate of the weights the whole split kept)
                progress.console.print(Text(f"step {ev.step:>6,}  train {ev.train_loss:.4f}  val {ev.val_loss:.4f}  "
                                            f"{ev.bpc:.3f} bits/char  (best {ev.best_val_loss:.4f})  {fmt_time(ev.elapsed_s)}"))
                if ev.sample.strip():
                    prose(progress.console, Text(f"  » {printable(ev.sample.strip().splitlines()[0])[:100]}", style="dim"))
            elif isinstance(ev, Overfitting):  # (said once, when it starts; the line above keeps saying it)
                prose(progress.console, Text(ev.message, style="yellow"))
            elif isinstance(ev, Measuring):  # the steps are done; the whole split takes seconds (a minute for a big corpus)
                measured = ev
                progress.update(task, completed=1000, info=fit_line([Part(measuring_words(ev.scope, ev.tokens), 0, short="measuring the validation split …")], room).plain,
                                refresh=True)  # (shown now)
            elif isinstance(ev, Finished):
                vl = (f"{ev.val_loss:.4f}" if ev.val_loss is not None
                      else f"≈{ev.best_val_loss:.4f}" if ev.best_val_loss is not None else "n/a")
                bits = [(f"({ev.bpc:.3f} bits/char, {ev.bpb:.3f} bits/byte)", 3)] if ev.val_loss is not None else []
                # the bar's last line is the run's end, not the last step record before it (the line under it says it all)
                progress.update(task, completed=1000 if ev.reason != "stopped" else None,
                                info=figures([(f"step {ev.step:,}", 0), (f"val {vl}", 1), *bits, (fmt_time(ev.elapsed_s), 2)]))
                progress.stop()
                kept = curves.final.step if curves.final is not None else None  # (an overfit run keeps an earlier evaluation)
                prose(console, Text(finish_line(ev, kept), style="bold green"))
                if (which := estimate_line(ev, measured, best_shown)) is not None:
                    prose(console, Text(which, style="dim"))
                if ev.reason == "stopped":
                    console.print(Text(f"continue with: {resume_hint(cfg, dist)}"))
                else:  # (what a newcomer does next: the README's tour goes on with it)
                    console.print(Text(one_line(f"try it: tinygpt generate {shell_word(cfg.name)}"
                                                + (f" --models-dir {shell_word(cfg.models_dir)}" if cfg.models_dir else ""))))
        if task is None and stop.is_set():  # (stopped as the corpus was handed over: the run ended before it started)
            prose(console, Text("stopped while preparing the corpus: nothing trained, nothing saved", style="bold green"))
    finally:
        building.close()
        if task is not None:  # (stopping a progress never started still prints a blank line)
            progress.stop()
    return task is not None


def finish_line(ev, kept_step: int | None = None) -> str:
    """What a run's end says: its loss over the whole validation split, or (stopped: that pass is skipped) its
    best evaluation's estimate, not 'validation loss n/a (whole validation split)'; kept_step: the evaluation
    whose weights the folder keeps, named when it is not the last step's (the loss is theirs, not the last's)."""
    verdict = {"done": "finished", "budget": "time budget reached", "stopped": "stopped"}[ev.reason]
    if ev.val_loss is not None:
        loss = f"validation loss {ev.val_loss:.4f} ({ev.bpc:.3f} bits/char, {ev.bpb:.3f} bits/byte) ({ev.val_scope})"
        if kept_step is not None and kept_step != ev.step:
            loss += f"; the weights kept are step {kept_step:,}'s, its best evaluation"
    elif ev.best_val_loss is not None:
        loss = f"best evaluation {ev.best_val_loss:.4f} (an estimate: a stopped run skips the pass over the whole validation split)"
    else:
        loss = "not evaluated yet"
    return f"{verdict} at step {ev.step:,} after {fmt_time(ev.elapsed_s)}: {loss}; saved to {one_line(ev.path)}"


def estimate_line(ev, measured=None, best_shown: float | None = None) -> str | None:
    """Why the end's validation loss differs from the evaluations' above it, in a learner's words (None: a run
    stopped, whose end gives the estimate itself). ``measured``: the run's Measuring event (its token count);
    ``best_shown``: the best the evaluation lines printed (the run's best_val_loss is the kept weights' estimate,
    the last step's where the whole split preferred them: "(best 1.6626)" under lines that said 1.6115)."""
    best = best_shown if best_shown is not None else ev.best_val_loss
    if ev.val_loss is None or best is None:
        return None
    tokens = f" ({measured.tokens:,} tokens)" if measured is not None else ""
    where = f"every window of the validation split{tokens}" if ev.val_scope == "whole validation split" else ev.val_scope
    return (f"{ev.val_loss:.4f} is the loss over {where}; the val figures above (best {best:.4f}) were "
            "estimates from a few random batches, taken during training to be quick")


def resume_hint(cfg, dist) -> str:
    """The command that continues this run (any number of processes can resume it), inert on one line as pasted
    into a shell (a name or a folder with a newline or an escape: $'...')."""
    cmd = f"tinygpt train --name {shell_word(cfg.name)} --resume"
    if cfg.models_dir:
        cmd += f" --models-dir {shell_word(cfg.models_dir)}"
    if dist.world_size > 1:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size))
        if local == dist.world_size:
            cmd = f"torchrun --standalone --nproc_per_node={local} --no-python {cmd}   (or without torchrun, in one process)"
        else:
            cmd = f"{cmd}, started by torchrun on every machine as before (or alone, in one process)"
    return one_line(cmd)


def main(argv=None) -> None:
    """`python train.py ...`: the same as `tinygpt train ...`, with its own usage line."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    app.command(cls=Command, context_settings=HELP)(train)
    try:
        app(list(sys.argv[1:] if argv is None else argv), prog_name="train.py")
    except KeyboardInterrupt:
        sys.exit(130)

