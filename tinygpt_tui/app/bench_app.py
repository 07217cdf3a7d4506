"""Benchmark the app: first paint, streaming speed against the bare sampler, latency, key presses.

    python -m tinygpt_tui.app.bench_app                      # the shipped shakespeare model, if present
    python -m tinygpt_tui.app.bench_app --model NAME --models-dir DIR --chars 2000 --json out.json

Figures (all wall-clock, this machine):
  first paint     process start -> the first frame is drawn (headless driver; a fresh
                  Python process, so interpreter start and imports are included), its CPU
                  time, and process start -> the model list filled in (the folder is read
                  in a worker right after the first frame); through the launcher (what
                  `tinygpt` with no command runs) and through the full CLI, taking turns
  streaming       side by side, in rounds: `tinygpt generate` for the same model and settings
                  (its own process, timed on its stdout from the first character to the last),
                  then the app streaming the same into its output pane (from the first
                  character in the pane to the last); medians and the app/bare ratio. Done for
                  the app's sampler process (the default) and for its in-process thread (the
                  fallback), so one run shows both
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
import importlib
importlib.import_module(sys.argv[3])  # the entry point's module: what `tinygpt` imports first
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

ENTRIES = {"launcher": "tinygpt_tui.app.launch", "cli": "tinygpt_tui.cli"}  # the fast path, and the full CLI


def first_paint(models_dir: str, runs: int = 5, entries=("launcher", "cli")) -> dict:
    """Process start -> first frame, and -> the model list filled in (read right after the first frame).

    Each entry point's runs take turns (a fresh process each): `launcher` is what `tinygpt` runs when
    the console script points at tinygpt_tui.app.launch, `cli` the full command line (typer) first.
    """
    figures: dict = {}
    raw = {e: {"import": [], "paint": [], "listed": [], "cpu": [], "torch": []} for e in entries}
    for _ in range(runs):
        for entry in entries:
            t0 = time.time()
            out = subprocess.run([sys.executable, "-c", FIRST_PAINT_CHILD, repr(t0), models_dir, ENTRIES[entry]],
                                 capture_output=True, text=True, timeout=120)
            line = (out.stdout.strip().splitlines() or [""])[-1].split()
            if len(line) != 5:
                raise RuntimeError(f"first-paint child failed: {out.stderr[-500:]}")
            r = raw[entry]
            r["import"].append(float(line[0]))
            r["paint"].append(float(line[1]))
            r["listed"].append(float(line[2]))
            r["cpu"].append(float(line[3]))
            r["torch"].append(line[4] == "True")
    for entry, r in raw.items():
        figures[entry] = {"import_s": statistics.median(r["import"]), "first_paint_s": statistics.median(r["paint"]),
                          "first_paint_min_s": min(r["paint"]), "first_paint_cpu_s": statistics.median(r["cpu"]),
                          "models_listed_s": statistics.median(r["listed"]),
                          "torch_imported_before_paint": any(r["torch"]), "runs": runs}
    return figures


# ---------------------------------------------------------------- the bare sampler: `tinygpt generate`
def bare_sampler(models_dir: Path, name: str, settings, threads: int | None = None) -> dict:
    """`tinygpt generate` for the same model and settings, in its own process, timed on its stdout.

    The rate is taken from the first character printed to the last (start-up and the prompt's
    forward pass left out, as for the app), reading the pipe as the command writes it.
    """
    cmd = [sys.executable, "-m", "tinygpt_tui.cli", "generate", name, "--models-dir", str(models_dir),
           "--prompt", "ROMEO:", "--max-new", str(settings.max_new_tokens), "--temperature", str(settings.temperature)]
    if settings.seed is not None:
        cmd += ["--seed", str(settings.seed)]
    import codecs

    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)  # torch's intra-op threads (`tinygpt generate` has no --threads)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    fd = p.stdout.fileno()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    chars, stamps = 0, []  # (time read, characters so far)
    while True:
        b = os.read(fd, 65536)
        if not b:
            break
        chars += len(decoder.decode(b))
        stamps.append((time.perf_counter(), chars))
    p.wait()
    prompt = len("ROMEO:")
    total = chars - prompt - 1  # the prompt is echoed first; a newline ends the output
    gen = [(t, n - prompt) for t, n in stamps if n > prompt]
    (t0, n0), (t1, _) = gen[0], gen[-1]
    return {"chars": total, "seconds": t1 - t0, "chars_per_s": (total - n0) / max(t1 - t0, 1e-9), "returncode": p.returncode}


# ---------------------------------------------------------------- the app
async def in_app(models_dir: Path, name: str, settings, sampler_process: bool = True, rounds: int = 3,
                 bare=None, key_presses: int = 30, train_corpus: str | None = None) -> dict:
    """Stream `rounds` generations into the pane; between two, run `bare()` (the bare sampler) if given."""
    from textual import events

    from .app import TinyGPTApp
    from .output import OutputView

    app = TinyGPTApp(models_dir=models_dir, watch_models=False, warm_torch=False, sampler_process=sampler_process)
    result: dict = {"where": "process" if sampler_process else "thread", "rounds": [], "bare": []}
    async with app.run_test(size=(120, 40)) as pilot:
        gen = app.generate_screen
        while not app.models_listed:  # read in a worker right after the first paint
            await pilot.pause(0.05)
        info = next(i for i in app.model_infos if i.name == name)
        gen.pick(info)
        while gen.loaded is None:
            await pilot.pause(0.05)
        if sampler_process:
            while app.sampler is not None and not app.sampler.ready_for(gen.loaded.path) and not app.sampler.dead:
                await pilot.pause(0.05)
        panel = gen.query_one("#sampling")
        panel.set_value("temperature", settings.temperature)
        panel.set_value("top_k", settings.top_k)
        panel.set_value("top_p", settings.top_p)
        panel.set_value("seed", settings.seed)

        # a warm-up generation, then the measured ones
        panel.set_value("length", 50)
        gen.start("\n", fresh=True)
        while gen.generating:
            await asyncio.sleep(0.02)
        panel.set_value("length", settings.max_new_tokens)

        out = gen.query_one("#output", OutputView)
        orig_append = out.append
        for r in range(rounds):
            if bare is not None:
                result["bare"].append(await asyncio.to_thread(bare))
            painted: list[float] = []
            drained: list[tuple[float, int]] = []  # (time in the pane, characters so far)

            def append(text, kind="generated"):
                orig_append(text, kind)
                if kind == "generated":
                    s = gen.stream
                    now = time.perf_counter()
                    drained.append((now, s.generated if s else 0))
                    sampled = s.chunks[s.drained - 1][1] if s and s.drained else now
                    app.call_after_refresh(lambda: painted.append(time.perf_counter() - sampled))

            out.append = append
            t = time.perf_counter()
            gen.start("ROMEO:", fresh=True)
            s = gen.stream
            # asyncio.sleep, not pilot.pause: each pause queues a callback on every widget (~40),
            # which at 100 polls a second was real work for the UI thread the app itself never does
            while not s.finished or s.drained < len(s.chunks):
                await asyncio.sleep(0.01)
            shown_at = time.perf_counter()
            await asyncio.sleep(0.1)
            out.append = orig_append
            (t0, n0), (t1, n1) = drained[0], drained[-1]
            result["rounds"].append({
                "where": s.where,
                "chars": s.generated,
                # first character in the pane -> last, as for the bare sampler's stdout
                "chars_per_s": (n1 - n0) / max(t1 - t0, 1e-9),
                "chars_per_s_sampled": s.generated / (s.finished_at - s.started),
                "chars_per_s_to_screen_from_enter": s.generated / (shown_at - t),
                "latencies": list(s.latencies),
                "painted": painted,
                "flushes": len(s.latencies),
            })
        rs = result["rounds"]
        lat = [x for r in rs for x in r["latencies"]]
        painted = [x for r in rs for x in r["painted"]]
        result["chars"] = rs[-1]["chars"]
        result["chars_per_s"] = statistics.median(r["chars_per_s"] for r in rs)
        result["chars_per_s_sampled"] = statistics.median(r["chars_per_s_sampled"] for r in rs)
        result["flushes_per_s"] = statistics.median(r["flushes"] * r["chars_per_s_sampled"] / max(r["chars"], 1) for r in rs)
        result["latency_to_pane_median_s"] = statistics.median(lat)
        result["latency_to_pane_p95_s"] = pct(lat, 0.95)
        result["latency_to_frame_median_s"] = statistics.median(painted) if painted else float("nan")
        result["latency_to_frame_p95_s"] = pct(painted, 0.95)
        if result["bare"]:
            result["bare_chars_per_s"] = statistics.median(b["chars_per_s"] for b in result["bare"])
            result["ratio"] = result["chars_per_s"] / result["bare_chars_per_s"]
            result["ratio_per_round"] = [r["chars_per_s"] / b["chars_per_s"] for r, b in zip(rs, result["bare"])]
        for r in rs:
            del r["latencies"], r["painted"]

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
        await asyncio.sleep(0.3)
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
                await asyncio.sleep(0.1)
            await key_latency("while_training")
            gen.start("ROMEO:", fresh=True)
            await asyncio.sleep(0.3)
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
    ap.add_argument("--rounds", type=int, default=3, help="streaming rounds, each the bare sampler then the app")
    ap.add_argument("--where", default="process,thread", help="where the app samples: process (the default), thread (the fallback), or both")
    ap.add_argument("--bare", choices=("both", "one", "default"), default="both",
                    help="which bare sampler runs each round: torch's default threads (as `tinygpt generate` runs), one thread, or both")
    ap.add_argument("--no-keys-while-training", dest="keys_while_training", action="store_false",
                    help="skip the key-latency figures while a training run goes")
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
    if args.paint_runs:
        fps = first_paint(str(scratch), args.paint_runs)
        figures["first_paint"] = fps
        for entry, fp in fps.items():
            print(f"first paint ({entry}): {fp['first_paint_s'] * 1000:.0f} ms median of {fp['runs']} (best {fp['first_paint_min_s'] * 1000:.0f} ms; "
                  f"{fp['first_paint_cpu_s'] * 1000:.0f} ms of CPU; imports {fp['import_s'] * 1000:.0f} ms; "
                  f"torch imported before paint: {fp['torch_imported_before_paint']}); "
                  f"model list filled in at {fp['models_listed_s'] * 1000:.0f} ms", flush=True)
    def bare() -> dict:
        """`tinygpt generate` as it runs (torch's threads), and with one thread as the sampler process
        uses; the app is compared with the faster of the two."""
        nan = {"chars_per_s": float("nan")}
        default = bare_sampler(scratch, name, settings) if args.bare in ("both", "default") else nan
        one = bare_sampler(scratch, name, settings, threads=1) if args.bare in ("both", "one") else nan
        best = max((b for b in (default, one) if b is not nan), key=lambda b: b["chars_per_s"])
        return {**best, "default_threads_chars_per_s": default["chars_per_s"], "one_thread_chars_per_s": one["chars_per_s"]}

    for where in args.where.split(","):
        app = asyncio.run(in_app(scratch, name, settings, sampler_process=where == "process", rounds=args.rounds,
                                 bare=bare, train_corpus=corpus if args.keys_while_training else None))
        figures[f"app_{where}"] = app
        print(f"\nsampling in the app's {'sampler process' if where == 'process' else 'own process (thread)'}"
              f" (rounds: bare sampler, then the app; ran in: {', '.join(r['where'] for r in app['rounds'])}):")
        for n, (r, b) in enumerate(zip(app["rounds"], app["bare"])):
            print(f"  round {n + 1}: tinygpt generate {b['default_threads_chars_per_s']:,.0f} chars/s "
                  f"({b['one_thread_chars_per_s']:,.0f} with one thread) | app pane {r['chars_per_s']:,.0f} chars/s "
                  f"= {r['chars_per_s'] / b['chars_per_s']:.2f}x")
        print(f"  median: tinygpt generate (the faster) {app['bare_chars_per_s']:,.0f} chars/s, app pane {app['chars_per_s']:,.0f} chars/s: "
              f"{app['ratio']:.2f}x; {app['flushes_per_s']:.0f} flushes/s")
        print(f"  latency sample -> pane:  median {app['latency_to_pane_median_s'] * 1000:.1f} ms, p95 {app['latency_to_pane_p95_s'] * 1000:.1f} ms")
        print(f"  latency sample -> frame: median {app['latency_to_frame_median_s'] * 1000:.1f} ms, p95 {app['latency_to_frame_p95_s'] * 1000:.1f} ms")
        for label in ("while_generating", "while_training", "while_training_and_generating"):
            if f"key_{label}_median_s" in app:
                print(f"  key press -> action {label.replace('_', ' ')}: median {app[f'key_{label}_median_s'] * 1000:.1f} ms, "
                      f"p95 {app[f'key_{label}_p95_s'] * 1000:.1f} ms, max {app[f'key_{label}_max_s'] * 1000:.1f} ms", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
