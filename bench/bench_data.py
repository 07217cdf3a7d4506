"""`python -m bench.bench_data`: the data layer's figures (docs/data.md), side by side in one run.

1. Generates a corpus of --gb gigabytes on disk from the shipped books (Tiny Shakespeare and Dream of
   the Red Chamber, alternated and repeated, split into --files files of a folder), and a 1 MB
   corpus cut from it; checks the free disk space first (the corpus and about twice its characters
   of token files must fit) and deletes everything at the end unless --keep.
2. Prepares both with `tinygpt corpus prepare` in fresh processes: MB of text a second, per CPU
   second (the preparation runs on one core), and the peak RSS.
3. Trains --steps steps of the shipped shape (the small preset) on each with `tinygpt train` in a
   fresh process and reports each one's peak RSS (the corpus was prepared before, as a second run
   finds it).
4. Steps a second of the same model on batches drawn from the memory-mapped big corpus and from
   today's in-memory path (the whole 1 MB corpus as one int64 tensor), interleaved A, B, A, B.

    python -m bench.bench_data --gb 5 --workdir /tmp/tinygpt-data-bench
    python -m bench.bench_data --gb 0.05 --steps 20      # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def books() -> bytes:
    from tests.conftest import hongloumeng_path, shakespeare_path

    return shakespeare_path().read_bytes() + b"\n\n" + hongloumeng_path().read_bytes() + b"\n\n"


def generate(folder: Path, total: int, files: int) -> None:
    """``files`` files of total/files bytes each: the books repeated (cut at a line's end)."""
    folder.mkdir(parents=True)
    text, per = books(), total // files  # (written a book at a time: this process stays small, and so does the
    block = text  # peak RSS its children inherit at fork, which os.wait4 reports with theirs)
    for i in range(files):
        with open(folder / f"book{i:02d}.txt", "wb") as f:
            left = per
            while left > 0:
                piece = block[:left]
                if len(piece) < len(block):
                    piece = piece[: piece.rfind(b"\n") + 1] or piece
                f.write(piece)
                left -= len(piece) if len(piece) else left


def run_measured(cmd: list[str], env: dict) -> dict:
    """Run a command; its wall time, CPU time and peak RSS (that process's own, from os.wait4)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err.decode()[-2000:]}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024, "stdout": out.decode()}


def tinygpt(*args) -> list[str]:
    return [sys.executable, "-m", "tinygpt_tui.cli.main", *map(str, args)]


def steps_per_second(big: Path, small: Path, env: dict, reps: int, steps: int, threads: int) -> dict:
    """The shipped shape's training step on batches from the memory map vs from today's int64 tensor."""
    os.environ.update(env)
    import torch

    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.data import Dataset
    from tinygpt_tui.engine.device import autocast, pick_dtype
    from tinygpt_tui.engine.prepare import prepare, run_to_end
    from tinygpt_tui.engine.presets import PRESETS
    from tinygpt_tui.model import GPT
    from tinygpt_tui.tokenizer import CharTokenizer

    torch.set_num_threads(threads)
    p = PRESETS["small"]
    mapped = run_to_end(prepare(str(big), lambda s: CharTokenizer(s.charset)))
    tok = mapped.tokenizer
    T, B = 128, p["batch_size"]
    memmap_data = Dataset(mapped, tok, T)
    text = small.read_text(encoding="utf-8")
    in_memory = torch.from_numpy(tok.encode_array(text[: int(len(text) * 0.9)])[0].astype("int64"))  # today's: one int64 tensor

    def today(gen):  # main's Dataset.batch, as it was
        ix = torch.randint(len(in_memory) - T - 1, (B,), generator=gen)
        xy = in_memory[ix[:, None] + torch.arange(T + 1)]
        return xy[:, :-1], xy[:, 1:]

    def mapped_batch(gen):
        return memmap_data.batch("train", B, gen, torch.device("cpu"))

    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=T, n_layer=p["n_layer"], n_head=p["n_head"], n_embd=p["n_embd"],
                    dropout=0.15, bias=False, pos_encoding="alibi", tie_weights=True)
    torch.manual_seed(0)
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dtype = pick_dtype(torch.device("cpu"), "auto", cfg.n_embd)
    gen = torch.Generator().manual_seed(0)

    def run(draw):
        t0 = time.perf_counter()
        for _ in range(steps):
            x, y = draw(gen)
            with autocast(torch.device("cpu"), dtype):
                _, loss = model(x, y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return steps / (time.perf_counter() - t0)

    run(today)  # warm-up
    out = {"in-memory": [], "memory-mapped": []}
    for r in range(reps):
        order = [("in-memory", today), ("memory-mapped", mapped_batch)]
        for name, draw in order if r % 2 == 0 else order[::-1]:
            out[name].append(run(draw))
    return {k: statistics.median(v) for k, v in out.items()} | {"dtype": dtype, "reps": reps, "steps": steps}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=5.0, help="size of the generated corpus in GB (10**9 bytes)")
    ap.add_argument("--files", type=int, default=5, help="files of the generated corpus")
    ap.add_argument("--steps", type=int, default=200, help="training steps on each corpus")
    ap.add_argument("--preset", default="small", help="the preset of those runs (the steps/s comparison is always small's shape)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--speed-steps", type=int, default=20, help="steps per timed repetition of the steps/s comparison")
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/tinygpt-data-bench"))
    ap.add_argument("--keep", action="store_true", help="keep the generated corpus and its token files")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)

    total = int(a.gb * 1e9)
    a.workdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(a.workdir).free
    need = total * 3 + (1 << 30)  # the text, its token files (2 bytes a character at most), a margin
    print(f"CPU: {cpu_name()}; free disk at {a.workdir}: {free / 1e9:.1f} GB; this run needs about {need / 1e9:.1f} GB", flush=True)
    if free < need:
        print(f"not enough disk for {a.gb} GB: use a smaller --gb", file=sys.stderr)
        return 2
    env = {**os.environ, "TINYGPT_PREPARED_DIR": str(a.workdir / "prepared")}
    big, small, models = a.workdir / "books", a.workdir / "one_mb.txt", a.workdir / "models"
    result = {"cpu": cpu_name(), "gb": a.gb, "files": a.files, "threads": a.threads, "preset": a.preset, "steps": a.steps}
    try:
        t0 = time.perf_counter()
        generate(big, total, a.files)
        result["generate_s"] = time.perf_counter() - t0
        with open(big / "book00.txt", "rb") as f:
            small.write_bytes(f.read(1_000_000).rsplit(b"\n", 1)[0] + b"\n")
        size = sum(f.stat().st_size for f in big.iterdir())
        print(f"generated {size / 1e9:.2f} GB in {a.files} files in {result['generate_s']:.0f} s", flush=True)

        for name, corpus in (("1 MB", small), (f"{a.gb:g} GB", big)):
            prep = run_measured(tinygpt("corpus", "prepare", corpus), env)
            nbytes = corpus.stat().st_size if corpus.is_file() else size
            result[f"prepare {name}"] = {"bytes": nbytes, "wall_s": prep["wall_s"], "cpu_s": prep["cpu_s"],
                                         "mb_per_s": nbytes / 1e6 / prep["wall_s"], "mb_per_cpu_s": nbytes / 1e6 / prep["cpu_s"],
                                         "peak_rss_mb": prep["peak_rss_mb"]}
            print(name, "prepare:", {k: round(v, 1) for k, v in result[f"prepare {name}"].items()}, flush=True)
        for name, corpus in (("1 MB", small), (f"{a.gb:g} GB", big)):
            tr = run_measured(tinygpt("train", corpus, "--name", f"m{len(name)}", "--models-dir", models, "--preset", a.preset,
                                      "--max-steps", a.steps, "--sample-chars", "0", "--threads", a.threads, "--jsonl"), env)
            fin = json.loads(tr["stdout"].strip().splitlines()[-1])
            result[f"train {name}"] = {"wall_s": tr["wall_s"], "peak_rss_mb": tr["peak_rss_mb"], "val_loss": fin.get("val_loss"),
                                       "bpc": fin.get("bpc")}
            print(name, "train:", result[f"train {name}"], flush=True)
        r1, r5 = result["train 1 MB"]["peak_rss_mb"], result[f"train {a.gb:g} GB"]["peak_rss_mb"]
        result["rss_ratio"] = r5 / r1
        print(f"peak RSS of training: {r5:.0f} MB on {a.gb:g} GB vs {r1:.0f} MB on 1 MB ({r5 / r1 - 1:+.1%})", flush=True)
        result["steps_per_s"] = steps_per_second(big, small, env, a.reps, a.speed_steps, a.threads)
        s = result["steps_per_s"]
        print(f"steps/s: memory-mapped {s['memory-mapped']:.2f}, in-memory {s['in-memory']:.2f} "
              f"(ratio {s['memory-mapped'] / s['in-memory']:.3f})", flush=True)
    finally:
        if not a.keep:
            shutil.rmtree(a.workdir, ignore_errors=True)
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
