"""Benchmark the app's runs screen (F3): 20 runs of 5,000 logged steps each, opened and followed while an
experiment trains in the same app. Side by side in one run:

    python -m bench.bench_runs_app                         # 20 runs x 5,000 steps, 30 key presses
    python -m bench.bench_runs_app --runs 20 --steps 5000 --keys 30 --opens 5 --corpus FILE --json out.json

  open          F3, then `a` (check all): seconds until all 40 curves are on the chart (Pilot, 120x40), in a
                fresh app each time (--opens of them, after one to import everything): the median and the
                least, wall-clock and the process's CPU time (CPU time is what a loaded machine disturbs least);
                then `a` pressed a second after the list (a person reading it first) to all 40 drawn
  keys          `x` (switch the x axis, redrawing 40 curves) pressed again and again: seconds from the
                press to the key handled, and to the next frame drawn; first with nothing else running,
                then while a 2-member experiment trains in the app's thread worker

This is a benchmark, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path


READ_S = 1.0  # a person's pause to read the list before pressing `a`


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def make_runs(d: Path, runs: int, steps: int) -> None:
    """Model folders (tiny random weights) with a metrics.jsonl of `steps` step records and an eval every 250."""
    import torch

    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.engine.folder import save_model
    from tinygpt_tui.model import GPT
    from tinygpt_tui.tokenizer import CharTokenizer

    tok = CharTokenizer(sorted(set("abcdefghijklmnopqrstuvwxyz \n.,")))
    for i in range(runs):
        torch.manual_seed(i)
        cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=32).validate()
        model = GPT(cfg)
        doc = {"name": f"run{i:02d}", "model": cfg.to_dict(), "training": {}, "corpus": {"name": "bench", "sha256": "0" * 64},
               "figures": {"step": steps, "val_loss": 2.0 + i / 100, "params": model.num_params()}}
        save_model(d / f"run{i:02d}", model, tok, doc)
        recs = [{"event": "start", "step": 0, "max_steps": steps, "params": model.num_params(), "corpus": "bench", "tokens_per_step": 4096}]
        for s in range(1, steps + 1):
            loss = 4.0 - 2.0 * s / steps + i / 100
            recs.append({"event": "step", "step": s, "loss": loss, "lr": 1e-3, "tokens_per_s": 40000.0, "elapsed_s": s * 0.1,
                         "progress": s / steps, "eta_s": (steps - s) * 0.1, "tokens_seen": s * 4096})
            if s % 250 == 0:
                recs.append({"event": "eval", "step": s, "train_loss": loss, "val_loss": loss + 0.05, "best_val_loss": loss + 0.05,
                             "elapsed_s": s * 0.1, "sample": "the sample " * 10})
        recs.append({"event": "finish", "step": steps, "reason": "done", "val_loss": 2.0 + i / 100, "elapsed_s": steps * 0.1})
        (d / f"run{i:02d}" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")


async def runs_listed(pilot):
    """F3, then the runs screen once it has read the models folder (what both timings start with). The key is posted
    as the terminal's driver posts it and the wait polls: Pilot's press and pause wait for the screen to go idle,
    which counted the runs read ahead after the list as part of it."""
    from textual import events

    pilot.app.post_message(events.Key("f3", None))
    while pilot.app.showing() != "runs" or not pilot.app.get_screen("runs").listed:
        await asyncio.sleep(0.002)
    return pilot.app.get_screen("runs")


async def empty_screen(d: Path) -> float:
    """The floor of opening: F3 to the runs screen listed with no runs at all."""
    from tinygpt_tui.app.app import TinyGPTApp

    app = TinyGPTApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        t = time.perf_counter()
        await runs_listed(pilot)
        return time.perf_counter() - t


async def opened(d: Path, runs: int, read_s: float = 0.0) -> dict:
    """Wall-clock and CPU seconds from F3 to the runs listed, and (runs > 0) to all their curves drawn after `a`;
    with read_s, from an `a` pressed that long after the list (a person reading it) to all drawn."""
    from tinygpt_tui.app.app import TinyGPTApp

    app = TinyGPTApp(models_dir=d, watch_models=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        t, c = time.perf_counter(), time.process_time()
        screen = await runs_listed(pilot)
        out = {"list_s": time.perf_counter() - t, "list_cpu_s": time.process_time() - c}
        if runs and read_s:  # a person reads the list, then checks all: `a` to all drawn
            await asyncio.sleep(read_s)
            t, c = time.perf_counter(), time.process_time()
        if runs:
            from textual import events

            pilot.app.post_message(events.Key("a", "a"))
            while len(screen.chart.lines) < 2 * runs:
                await asyncio.sleep(0.002)
            await pilot.pause()  # (its frame: nothing is left to read ahead once all are checked)
            out.update(open_s=time.perf_counter() - t, open_cpu_s=time.process_time() - c)
        return out


async def in_app(d: Path, corpus: str, keys: int, runs: int, threads: int | None) -> dict:
    from tinygpt_tui.app.app import TinyGPTApp
    from tinygpt_tui.engine import experiment as E

    app = TinyGPTApp(models_dir=d, watch_models=False)
    out: dict = {}
    async with app.run_test(size=(120, 40)) as pilot:
        t = time.perf_counter()
        screen = await runs_listed(pilot)
        listed = time.perf_counter() - t
        from textual import events

        app.post_message(events.Key("a", "a"))
        while len(screen.chart.lines) < 2 * runs:
            await asyncio.sleep(0.002)
        await pilot.pause()
        out["open_s"], out["list_s"] = time.perf_counter() - t, listed

        renders = [0]
        plain_render_line = screen.chart.render_line

        def counted(y):
            renders[0] += y == 0  # (a frame paints the chart's lines from the first)
            return plain_render_line(y)

        screen.chart.render_line = counted  # (the bench counts the chart's frames)

        async def press_keys(n: int) -> tuple[list, list]:
            """The key posted as the terminal's driver posts it (Pilot's press waits for the app to go idle,
            which a training run's messages never let it): until handled, and until the chart is drawn again."""
            from textual import events

            handled, drawn = [], []
            for _ in range(n):
                axis, frames = screen.chart.xlabel, renders[0]
                t = time.perf_counter()
                app.post_message(events.Key("x", "x"))
                while screen.chart.xlabel == axis:
                    await asyncio.sleep(0.0005)
                handled.append(time.perf_counter() - t)
                while renders[0] == frames:
                    await asyncio.sleep(0.0005)
                drawn.append(time.perf_counter() - t)
                await asyncio.sleep(0.2)  # a person's pace
            return handled, drawn

        out["idle"] = await press_keys(keys)
        builds = []
        for _ in range(5):  # the floor of a frame: drawing the same 40 curves, nothing else
            t = time.perf_counter()
            screen.chart.draw(screen.chart.size.width, screen.chart.size.height)
            builds.append(time.perf_counter() - t)
        out["chart_build_s"] = statistics.median(builds)
        spec = E.Spec(name="bench-exp", corpus=corpus, max_steps=100_000, vary={"n_layer": [1, 2]},
                      settings={"n_embd": 64, "block_size": 64, "batch_size": 16, "eval_interval": 200, "eval_iters": 5}, threads=threads)
        job = app.start_experiment(E.make_plan(spec, d), False)
        while not (job.running and job.curves.get(job.running) and job.curves[job.running].steps):
            await pilot.pause(0.05)
        out["training"] = await press_keys(keys)
        out["experiment_steps_meanwhile"] = job.curves[job.running].steps[-1]
        job.stop()
        while job.active:
            await pilot.pause(0.05)
    return out


def summary(xs: list) -> str:
    xs = sorted(xs)
    return f"median {statistics.median(xs) * 1000:.0f} ms, p90 {xs[int(0.9 * (len(xs) - 1))] * 1000:.0f} ms, max {xs[-1] * 1000:.0f} ms"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--keys", type=int, default=30)
    ap.add_argument("--opens", type=int, default=5, help="fresh apps timed opening the screen (median and least)")
    here = Path(__file__).resolve().parents[1]
    found = [p for p in (here.parent / "shared", here.parents[1] / "shared") if (p / "corpora" / "tinyshakespeare.txt").is_file()]
    ap.add_argument("--corpus", default=str((found[0] if found else here.parent / "shared") / "corpora" / "tinyshakespeare.txt"))
    ap.add_argument("--threads", type=int, help="the experiment's torch threads (default: torch's own)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    import torch

    d = Path(tempfile.mkdtemp()) / "models"
    d.mkdir()
    make_runs(d, a.runs, a.steps)
    import os

    res = {"cpu": cpu_name(), "threads": a.threads or torch.get_num_threads(), "runs": a.runs, "steps": a.steps, "load_before": os.getloadavg()[0]}
    empty = Path(tempfile.mkdtemp()) / "models"
    empty.mkdir()
    res["empty_open_s"] = asyncio.run(empty_screen(empty))  # (the first F3 of the process: it imports the screen's modules)
    opens: list[dict] = []
    for _ in range(a.opens):
        opens.append({("empty_" + k): v for k, v in asyncio.run(opened(empty, 0)).items()})
        opens[-1].update(asyncio.run(opened(d, a.runs)))
        opens[-1].update({("read_" + k): v for k, v in asyncio.run(opened(d, a.runs, READ_S)).items()})
    res["opens"] = opens
    res.update(asyncio.run(in_app(d, a.corpus, a.keys, a.runs, a.threads)))
    res["load_after"] = os.getloadavg()[0]
    print(f"CPU: {res['cpu']} ({os.cpu_count()} cores, torch threads {res['threads']}; load average {res['load_before']:.1f} "
          f"before, {res['load_after']:.1f} after); {a.runs} runs x {a.steps:,} logged steps")
    print(f"open: F3 to the list {res['list_s']:.2f} s (no runs at all: {res['empty_open_s']:.2f} s, the first F3); "
          f"F3, a, to all {2 * a.runs} curves drawn {res['open_s']:.2f} s")
    if opens:
        def fig(k: str) -> str:
            xs = [o[k] for o in opens]
            return f"{statistics.median(xs):.2f} s (least {min(xs):.2f})"
        print(f"open, {len(opens)} fresh apps, median: F3 to the list {fig('list_s')}, CPU {fig('list_cpu_s')}; "
              f"F3 to an empty list {fig('empty_list_s')}, CPU {fig('empty_list_cpu_s')}; "
              f"F3, a, to all curves {fig('open_s')}, CPU {fig('open_cpu_s')}; "
              f"a, {READ_S:g} s after the list, to all curves {fig('read_open_s')}, CPU {fig('read_open_cpu_s')}")
    print(f"drawing the chart of {2 * a.runs} curves alone: {res['chart_build_s'] * 1000:.0f} ms")
    for k in ("idle", "training"):
        h, dr = res[k]
        print(f"x key, {k:8}: handled {summary(h)}; frame drawn {summary(dr)}")
    print(f"(the experiment trained to step {res['experiment_steps_meanwhile']:,} meanwhile)")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
