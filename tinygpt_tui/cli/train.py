"""`tinygpt train` / `python train.py`: the training loop with a rich progress bar, signals and torchrun."""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time

from tinygpt_tui.errors import TinyGPTError
from tinygpt_tui.engine.train import DistInfo, Eval, Finished, Saved, Started, Step, TrainConfig, dist_device, dumps, train


def _fmt_time(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "--:--"
    s = int(s)
    h, m = divmod(s, 3600)
    m, sec = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


# Under torchrun one Ctrl+C arrives twice: from the terminal, and again from torchrun, which passes
# SIGINT/SIGTERM on to its workers (a Slurm scancel likewise signals every task and its launcher).
# Repeats within this many seconds are the same request, not the impatient second Ctrl+C.
REPEAT_WINDOW_S = 3.0


def install_stop_handlers(stop: threading.Event, quiet: bool, distributed: bool = False) -> None:
    """Ctrl+C or SIGTERM: finish the step, save a checkpoint, exit. A second Ctrl+C exits at once."""
    first = []

    def handler(signum, frame):
        now = time.monotonic()
        if stop.is_set():
            if distributed and first and now - first[0] < REPEAT_WINDOW_S:
                return
            os._exit(130)
        first.append(now)
        stop.set()
        if not quiet:
            print("\nstopping: saving a checkpoint (Ctrl+C again to quit without saving)", file=sys.stderr, flush=True)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def init_distributed(device: str = "auto") -> DistInfo:
    """Under torchrun (WORLD_SIZE > 1): join the process group, NCCL for GPUs, gloo for the CPU.

    The backend follows the device this rank will train on (``dist_device``),
    so ``--device cpu`` uses gloo even on a machine with GPUs.
    """
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


def run_training(cfg: TrainConfig, jsonl: bool = False) -> None:
    stop = threading.Event()
    dist = init_distributed(cfg.device)
    quiet = not dist.is_main  # only rank 0 prints; the others train silently
    install_stop_handlers(stop, quiet, distributed=dist.world_size > 1)
    try:
        if jsonl or quiet:
            for ev in train(cfg, stop, dist):
                if not quiet:
                    print(dumps(ev), flush=True)
            return
        _run_with_progress(cfg, stop, dist)
    except TinyGPTError as e:
        if quiet:
            # every rank raises the same error (the ranks agree on failures) and rank 0 prints it; leaving
            # last lets it: torchrun stops the other ranks as soon as one fails
            time.sleep(3)
            sys.exit(e.exit_code)
        raise
    finally:
        if dist.world_size > 1:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()


def _run_with_progress(cfg: TrainConfig, stop: threading.Event, dist: DistInfo) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
    from rich.text import Text

    from tinygpt_tui.tokenizer import printable

    console = Console(highlight=False)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=False,
    )
    task = None
    with progress:
        for ev in train(cfg, stop, dist):
            if isinstance(ev, Started):
                what = "resuming" if ev.resumed else "training"
                budget = []
                if ev.max_steps:
                    budget.append(f"{ev.max_steps:,} steps")
                if ev.time_budget:
                    budget.append(f"{ev.time_budget / 60:.1f} min")
                console.print(
                    Text(f"{what} {cfg.name}: {ev.params / 1e6:.2f}M parameters on {ev.device}, {ev.dtype}, "
                         f"{ev.tokens_per_step:,} tokens/step, {' or '.join(budget)}"
                         + (f", {ev.world_size} processes" if ev.world_size > 1 else ""))
                )
                if ev.accum > max(cfg.grad_accum // ev.world_size, 1) and ev.activation_mb is not None:
                    console.print(Text(f"each step runs as {ev.accum} micro-batches of {ev.micro_batch} sequences "
                                       f"({ev.activation_mb:,.0f} MB of activations each; --memory-budget to change)", style="dim"))
                if ev.dropped_chars:
                    console.print(Text(f"note: {len(ev.dropped_chars)} corpus characters are not in the vocabulary and are skipped: "
                                       + printable("".join(ev.dropped_chars[:20])), style="yellow"))
                task = progress.add_task(cfg.name, total=1000, info="starting…")
                progress.update(task, completed=0)
                last_eval = ""
            elif isinstance(ev, Step):
                info = f"step {ev.step:,}  loss {ev.loss:.4f}  {ev.tokens_per_s:,.0f} tok/s  ETA {_fmt_time(ev.eta_s)}{last_eval}"
                progress.update(task, completed=int(ev.progress * 1000), info=info)
            elif isinstance(ev, Eval):
                last_eval = f"  val {ev.val_loss:.4f}"
                progress.console.print(Text(f"step {ev.step:>6,}  train {ev.train_loss:.4f}  val {ev.val_loss:.4f}  "
                                            f"(best {ev.best_val_loss:.4f})  {_fmt_time(ev.elapsed_s)}"))
                if ev.sample:
                    sample = printable(ev.sample.strip().splitlines()[0] if ev.sample.strip() else "")[:100]
                    progress.console.print(Text(f"  » {sample}", style="dim"))
            elif isinstance(ev, Saved):
                pass
            elif isinstance(ev, Finished):
                if ev.reason != "stopped":
                    progress.update(task, completed=1000)
                verdict = {"done": "finished", "budget": "time budget reached", "stopped": "stopped"}[ev.reason]
                vl = f"{ev.val_loss:.4f}" if ev.val_loss is not None else "n/a"
                console.print(Text(f"{verdict} at step {ev.step:,} after {_fmt_time(ev.elapsed_s)}: validation loss {vl} "
                                   f"(whole validation split); saved to {printable(ev.path)}", style="bold green"))
                if ev.reason == "stopped":
                    console.print(Text(f"continue with: {resume_hint(cfg, dist)}"))


def resume_hint(cfg: TrainConfig, dist: DistInfo) -> str:
    """The command that continues this run (any number of processes can resume it)."""
    import shlex

    from tinygpt_tui.tokenizer import printable

    cmd = f"tinygpt train --name {shlex.quote(cfg.name)} --resume"
    if cfg.models_dir:
        cmd += f" --models-dir {shlex.quote(str(cfg.models_dir))}"
    if dist.world_size > 1:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size))
        if local == dist.world_size:
            cmd = f"torchrun --standalone --nproc_per_node={local} --no-python {cmd}   (or without torchrun, in one process)"
        else:
            cmd = f"{cmd}, started by torchrun on every machine as before (or alone, in one process)"
    return printable(cmd)


def main(argv=None) -> None:
    """`python train.py ...`: the same as `tinygpt train ...`."""
    from tinygpt_tui.cli.main import app

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(["train", *args], prog_name="train.py")
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["run_training", "main", "TinyGPTError"]
