"""Benchmark the app: first paint, streaming speed against the bare sampler, latency, key presses.

    python -m tinygpt_tui.app.bench_app                      # the shipped shakespeare model, if present
    python -m tinygpt_tui.app.bench_app --model NAME --models-dir DIR --chars 2000 --json out.json

Figures (all wall-clock, this machine):
  first paint     process start -> the first frame is drawn (headless driver; a fresh
                  Python process, so interpreter start and imports are included), its CPU
                  time, and process start -> the model list filled in (the folder is read
                  in a worker right after the first frame)
  sampler alone   chars/s of core.sampler.Generation in a loop (what `tinygpt generate` runs)
  in the app      chars/s of the same model and settings streamed into the output pane
  latency         seconds from a character being sampled to it being in the pane, and to
                  the frame that shows it being drawn (median and 95th percentile)
  keys            seconds from a key press being posted to its action running, while
                  generating and while training (median, 95th percentile, worst)

This is a benchmark, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


# ---------------------------------------------------------------- first paint
FIRST_PAINT_CHILD = r"""
import sys, time
t_start = float(sys.argv[1])
from tinygpt_tui.app.app import TinyGPTApp
t_import = time.time()

class Bench(TinyGPTApp):
    def _painted(self):
        super()._painted()
        self.paint = (time.time() - t_start, time.process_time(), 'torch' in sys.modules)

    def _models_listed(self, infos):
        super()._models_listed(infos)
        paint, cpu, torch = self.paint
        print(f"{t_import - t_start:.4f} {paint:.4f} {time.time() - t_start:.4f} {cpu:.4f} {torch}", flush=True)
        self.exit()

Bench(models_dir=sys.argv[2], watch_models=False, warm_torch=False).run(headless=True, size=(120, 40))
"""


def first_paint(models_dir: str, runs: int = 5) -> dict:
    """Process start -> first frame, and -> the model list filled in (read right after the first frame)."""
    imports, paints, listed, cpus, torch_loaded = [], [], [], [], []
    for _ in range(runs):
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", FIRST_PAINT_CHILD, repr(t0), models_dir], capture_output=True, text=True, timeout=120)
        line = (out.stdout.strip().splitlines() or [""])[-1].split()
        if len(line) != 5:
            raise RuntimeError(f"first-paint child failed: {out.stderr[-500:]}")
        imports.append(float(line[0]))
        paints.append(float(line[1]))
        listed.append(float(line[2]))
        cpus.append(float(line[3]))
        torch_loaded.append(line[4] == "True")
    return {"import_s": statistics.median(imports), "first_paint_s": statistics.median(paints),
            "first_paint_min_s": min(paints), "first_paint_cpu_s": statistics.median(cpus),
            "models_listed_s": statistics.median(listed),
            "torch_imported_before_paint": any(torch_loaded), "runs": runs}


# ---------------------------------------------------------------- the sampler alone
def sampler_alone(folder: Path, settings) -> dict:
    from ..core.checkpoint import load_model
    from ..core.sampler import Generation

    loaded = load_model(folder, "cpu")
    list(Generation(loaded.model, loaded.tokenizer, "\n", type(settings)(**{**settings.__dict__, "max_new_tokens": 50})))  # warm up
    t = time.perf_counter()
    n = sum(1 for _ in Generation(loaded.model, loaded.tokenizer, "ROMEO:", settings))
    dt = time.perf_counter() - t
    return {"chars": n, "seconds": dt, "chars_per_s": n / dt}


# ---------------------------------------------------------------- the app
async def in_app(models_dir: Path, name: str, settings, key_presses: int = 30, train_corpus: str | None = None) -> dict:
    from textual import events

    from .app import TinyGPTApp
    from .output import OutputView

    app = TinyGPTApp(models_dir=models_dir, watch_models=False, warm_torch=False)
    result: dict = {}
    async with app.run_test(size=(120, 40)) as pilot:
        gen = app.generate_screen
        while not app.models_listed:  # read in a worker right after the first paint
            await pilot.pause(0.05)
        info = next(i for i in app.model_infos if i.name == name)
        gen.pick(info)
        while gen.loaded is None:
            await pilot.pause(0.05)
        panel = gen.query_one("#sampling")
        panel.set_value("temperature", settings.temperature)
        panel.set_value("top_k", settings.top_k)
        panel.set_value("top_p", settings.top_p)
        panel.set_value("seed", settings.seed)

        # a warm-up generation, then the measured one
        panel.set_value("length", 50)
        gen.start("\n", fresh=True)
        while gen.generating:
            await pilot.pause(0.02)
        panel.set_value("length", settings.max_new_tokens)

        out = gen.query_one("#output", OutputView)
        painted: list[float] = []
        orig_append = out.append

        def append(text, kind="generated"):
            orig_append(text, kind)
            if kind == "generated":
                s = gen.stream
                sampled = s.chunks[s.drained - 1][1] if s and s.drained else time.perf_counter()
                app.call_after_refresh(lambda: painted.append(time.perf_counter() - sampled))

        out.append = append
        t = time.perf_counter()
        gen.start("ROMEO:", fresh=True)
        s = gen.stream
        while not s.finished or s.drained < len(s.chunks):
            await pilot.pause(0.01)
        shown_at = time.perf_counter()
        await pilot.pause(0.1)
        result["chars"] = s.generated
        result["chars_per_s"] = s.generated / (s.finished_at - s.started)
        result["chars_per_s_to_screen"] = s.generated / (shown_at - t)
        result["latency_to_pane_median_s"] = statistics.median(s.latencies)
        result["latency_to_pane_p95_s"] = pct(s.latencies, 0.95)
        result["latency_to_frame_median_s"] = statistics.median(painted) if painted else float("nan")
        result["latency_to_frame_p95_s"] = pct(painted, 0.95)
        result["flushes"] = len(s.latencies)
        out.append = orig_append

        async def key_latency(label: str) -> None:
            lat: list[float] = []
            orig = gen.action_toggle_sidebar

            def timed():
                lat.append(time.perf_counter() - posted[0])
                orig()

            gen.action_toggle_sidebar = timed
            posted = [0.0]
            for _ in range(key_presses):
                await asyncio.sleep(0.05)
                posted[0] = time.perf_counter()
                app.post_message(events.Key("ctrl+b", None))
                t_wait = time.perf_counter()
                n = len(lat)
                while len(lat) == n and time.perf_counter() - t_wait < 5:
                    await asyncio.sleep(0.002)
            gen.action_toggle_sidebar = orig
            result[f"key_{label}_median_s"] = statistics.median(lat) if lat else float("nan")
            result[f"key_{label}_p95_s"] = pct(lat, 0.95)
            result[f"key_{label}_max_s"] = max(lat) if lat else float("nan")

        # key presses while generating
        panel.set_value("length", 1_000_000)
        gen.start("ROMEO:", fresh=True)
        await pilot.pause(0.3)
        await key_latency("while_generating")
        gen.action_stop()
        await pilot.pause(0.2)

        # key presses while training (and generating: the worst case)
        if train_corpus:
            from ..core.trainer import TrainConfig

            cfg = TrainConfig(corpus=train_corpus, name="bench-run", models_dir=str(models_dir), preset="tiny",
                              max_steps=100_000, eval_interval=100, device="cpu")
            job = app.start_training(cfg)
            while job.state == "starting":
                await pilot.pause(0.1)
            await key_latency("while_training")
            gen.start("ROMEO:", fresh=True)
            await pilot.pause(0.3)
            await key_latency("while_training_and_generating")
            gen.action_stop()
            job.stop()
            while job.active:
                await pilot.pause(0.1)
            result["training_steps_during_bench"] = job.run.step
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--model", default=None, help="model name (default: shakespeare if present, else a tiny fixture)")
    ap.add_argument("--chars", type=int, default=2000)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", default=None, help="a text file to train on for the key-latency-while-training figure")
    ap.add_argument("--paint-runs", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)

    from ..core.checkpoint import default_models_dir
    from ..core.sampler import SamplingSettings

    models_dir = Path(args.models_dir) if args.models_dir else default_models_dir()
    name = args.model or ("shakespeare" if (models_dir / "shakespeare" / "config.json").exists() else None)
    work = Path(tempfile.mkdtemp(prefix="tinygpt-bench-"))
    # the app and the training run write into a scratch copy, never into the real models folder
    scratch = work / "models"
    scratch.mkdir()
    if name is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
        from app_fixtures import make_model  # noqa: E402

        make_model(scratch, "fixture", n_layer=2, n_embd=64, block_size=64)
        name = "fixture"
    else:
        import shutil

        src = models_dir / name
        (scratch / name).mkdir()
        for f in ("config.json", "model.safetensors", "vocab.json"):
            shutil.copy2(src / f, scratch / name / f)
    corpus = args.corpus
    if corpus is None:
        shared = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "tinyshakespeare.txt"
        if shared.is_file():
            corpus = str(work / "corpus.txt")
            Path(corpus).write_text(shared.read_text(encoding="utf-8")[:200_000], encoding="utf-8")

    settings = SamplingSettings(max_new_tokens=args.chars, temperature=args.temperature, seed=args.seed)
    figures = {"model": name, "chars": args.chars, "temperature": args.temperature, "cpu_count": os.cpu_count()}
    print(f"model {name}; {args.chars} chars at temperature {args.temperature}", flush=True)
    fp = first_paint(str(scratch), args.paint_runs)
    figures["first_paint"] = fp
    print(f"first paint: {fp['first_paint_s'] * 1000:.0f} ms median of {fp['runs']} (best {fp['first_paint_min_s'] * 1000:.0f} ms; "
          f"{fp['first_paint_cpu_s'] * 1000:.0f} ms of CPU; imports {fp['import_s'] * 1000:.0f} ms; "
          f"torch imported before paint: {fp['torch_imported_before_paint']}); "
          f"model list filled in at {fp['models_listed_s'] * 1000:.0f} ms", flush=True)
    alone = sampler_alone(scratch / name, settings)
    figures["sampler_alone"] = alone
    print(f"sampler alone: {alone['chars_per_s']:,.0f} chars/s", flush=True)
    app = asyncio.run(in_app(scratch, name, settings, train_corpus=corpus))
    figures["app"] = app
    ratio = app["chars_per_s"] / alone["chars_per_s"]
    figures["app_vs_sampler"] = ratio
    print(f"in the app:    {app['chars_per_s']:,.0f} chars/s sampled ({ratio:.0%} of the sampler alone), "
          f"{app['chars_per_s_to_screen']:,.0f} chars/s on screen, {app['flushes']} flushes")
    print(f"latency sample -> pane:  median {app['latency_to_pane_median_s'] * 1000:.1f} ms, p95 {app['latency_to_pane_p95_s'] * 1000:.1f} ms")
    print(f"latency sample -> frame: median {app['latency_to_frame_median_s'] * 1000:.1f} ms, p95 {app['latency_to_frame_p95_s'] * 1000:.1f} ms")
    for label in ("while_generating", "while_training", "while_training_and_generating"):
        if f"key_{label}_median_s" in app:
            print(f"key press -> action {label.replace('_', ' ')}: median {app[f'key_{label}_median_s'] * 1000:.1f} ms, "
                  f"p95 {app[f'key_{label}_p95_s'] * 1000:.1f} ms, max {app[f'key_{label}_max_s'] * 1000:.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
