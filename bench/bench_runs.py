"""`python -m bench.bench_runs`: how long comparing many runs takes (docs/experiments.md).

Makes RUNS model folders in a temporary directory, each with a metrics.jsonl of STEPS logged steps
(an evaluation with a 200-character sample every 250 steps, as `tinygpt train` writes them), then
times, with interleaved repetitions and medians:

  summaries   list_runs(): every run's table row (config.json and the tail of its log)
  curves      Curves() of every run: the whole log parsed, then thinned to the chart's points
  follow      Curves.update() after a live run appended ten records (what the app does each tick)
  compare     `tinygpt compare` of all the runs as a new process, to an SVG file and to the terminal,
              beside `tinygpt --version` (the interpreter's own start) in the same loop

Each is reported as wall time and as CPU time (this process's and its children's, from getrusage):
on a shared machine the wall time counts the waits for a core, the CPU time does not.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer


def make_runs(root: Path, runs: int, steps: int) -> list[Path]:
    import torch

    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.engine import folder as ckpt
    from tinygpt_tui.model import GPT
    from tinygpt_tui.tokenizer import CharTokenizer

    tok = CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz \n")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=32))
    folders = []
    for i in range(runs):
        f = root / f"r{i:02d}"
        doc = {"name": f.name, "model": model.cfg.to_dict(), "corpus": {"name": "tinyshakespeare", "sha256": "0" * 64},
               "figures": {"step": steps, "val_loss": 1.6, "params": model.num_params(), "val_loss_is": "full validation split"}}
        ckpt.save_model(f, model, tok, doc)
        lines = [json.dumps({"event": "start", "step": 0, "params": 1000, "tokens_per_step": 2048, "corpus": "tinyshakespeare",
                             "model": model.cfg.to_dict()})]
        for s in range(1, steps + 1):
            loss = 1.5 + 2.5 * 0.999 ** s + 0.01 * (i % 7)
            lines.append(json.dumps({"event": "step", "step": s, "loss": loss, "lr": 1e-3, "tokens_per_s": 4000.123, "elapsed_s": s * 0.5,
                                     "progress": s / steps, "eta_s": 10.0, "tokens_seen": s * 2048, "time": 1.8e9 + s}))
            if s % 250 == 0:
                lines.append(json.dumps({"event": "eval", "step": s, "train_loss": loss - 0.02, "val_loss": loss + 0.05,
                                         "best_val_loss": loss + 0.05, "elapsed_s": s * 0.5, "sample": "To be, or not to be " * 10}))
        lines.append(json.dumps({"event": "finish", "step": steps, "reason": "done", "val_loss": 1.6, "best_val_loss": 1.6,
                                 "elapsed_s": steps * 0.5, "path": str(f)}))
        (f / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        folders.append(f)
    return folders


def timed(fn) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of this process and its children (what a busy machine does not inflate)."""
    import resource

    def cpu():
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    t, c = time.perf_counter(), cpu()
    fn()
    return time.perf_counter() - t, cpu() - c


def main(runs: int = typer.Option(20), steps: int = typer.Option(5000), reps: int = typer.Option(5)):
    from tinygpt_tui.cli import chart
    from tinygpt_tui.engine.runs import Curves, list_runs

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders = make_runs(root, runs, steps)
        size = sum((f / "metrics.jsonl").stat().st_size for f in folders)
        live = Curves(folders[0])
        env = {**os.environ, "TINYGPT_MODELS_DIR": str(root), "COLUMNS": "120"}
        cli = [sys.executable, "-m", "tinygpt_tui.cli.main"]
        names = [f.name for f in folders]
        cases = {
            "summaries (list_runs)": lambda: list_runs(root),
            "curves (parse + thin to 400 points)": lambda: chart.lines_of([(f.name, Curves(f)) for f in folders], "steps"),
            "follow (update after 10 new records)": lambda: (_append(folders[0], steps), live.update()),
            "tinygpt --version (process start)": lambda: subprocess.run([*cli, "--version"], env=env, capture_output=True, check=True),
            "tinygpt compare (20 runs, to .svg)": lambda: subprocess.run([*cli, "compare", *names, "--out", str(root / "c.svg")], env=env,
                                                                          capture_output=True, check=True),
            "tinygpt compare (20 runs, terminal)": lambda: subprocess.run([*cli, "compare", *names], env=env, capture_output=True, check=True),
        }
        times = {k: [] for k in cases}
        for _ in range(reps):  # interleaved: a busy moment slows every case alike
            for k, fn in cases.items():
                times[k].append(timed(fn))
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"{runs} runs x {steps:,} logged steps ({size / 1e6:.1f} MB of metrics.jsonl), {reps} repetitions, CPU: {cpu}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"  {'':<42} {'wall ms':>9} {'CPU ms':>9}   (medians)")
    for k, v in times.items():
        print(f"  {k:<42} {statistics.median(w for w, _ in v) * 1000:9.1f} {statistics.median(c for _, c in v) * 1000:9.1f}")


_counter = [0]


def _append(folder: Path, steps: int) -> None:
    with open(folder / "metrics.jsonl", "a") as f:
        for _ in range(10):
            _counter[0] += 1
            s = steps + _counter[0]
            f.write(json.dumps({"event": "step", "step": s, "loss": 1.5, "lr": 1e-3, "tokens_per_s": 4000.0, "elapsed_s": s * 0.5,
                                "progress": 1.0, "eta_s": 0.0, "tokens_seen": s * 2048}) + "\n")


if __name__ == "__main__":
    typer.run(main)
