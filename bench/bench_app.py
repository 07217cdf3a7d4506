"""Benchmark the app: first paint, streaming speed against the bare sampler, latency, key presses.

    python -m bench.bench_app                      # the shipped shakespeare model, if present
    python -m bench.bench_app --model NAME --models-dir DIR --chars 2000 --json out.json

Figures (all wall-clock, this machine):
  first paint     process start -> the first frame on a terminal: `tinygpt` runs on a
                  pseudo-terminal (120x40, Textual's real driver), timed to the moment its
                  output holds the whole first screen (the models box listing the model, the
                  prompt, the key bar): the launch screen (launch_screen.py), and the first
                  live frame (Textual's, keys answered); taking turns with the app without the
                  launch screen and with a bare one-widget Textual app, the floor (Python,
                  importing Textual, one frame); medians, best, CPU time, and how much of the
                  CPUs the virtual machine's host took back meanwhile
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
BARE_APP = r"""
from textual.app import App
from textual.widgets import Static

class Bare(App):
    def compose(self):
        yield Static(MARKERS)

Bare().run()
"""


def _steal_ticks() -> int | None:
    """The machine's stolen CPU time so far (a virtual machine's host running others), in ticks."""
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8])
    except (OSError, IndexError, ValueError):
        return None


def _cpu_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


DRIVER_STARTED = b"\x1b[?1004h"  # Textual's driver turns on focus events as it starts


def _wait_for_group(pgid: int, timeout: float = 10.0) -> float:
    """Wait until every process of this group has exited (the app's sampler process, say, which
    quits after the app): one still running would slow whatever is timed next. Returns the wait."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
        except PermissionError:
            break
        time.sleep(0.01)
    else:
        try:
            os.killpg(pgid, 9)
        except OSError:
            pass
    return time.perf_counter() - t0


def first_frame(cmd: list[str], markers: list[str], size=(120, 40), timeout: float = 60.0, env: dict | None = None) -> dict:
    """Run cmd on a pseudo-terminal of this size and time, from the start of the process, the first
    byte it writes, the first frame (the moment every marker has appeared in its output) and the
    first live frame (every marker written again once Textual's driver has started, so keys reach
    the app: later than the first frame where a launch screen was shown, the same otherwise).

    A pseudo-terminal is a terminal as far as the app can tell (Textual's real driver, escape
    sequences and all), so this is what a user sees, less the terminal's own drawing. Ctrl+Q
    then quits it. Also returned: the process's CPU time at the live frame (in the kernel's 10 ms
    ticks), what it wrote up to the live frame, and where in that the first frame was complete.
    """
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    cols, rows = size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ if env is None else env, TERM="xterm-256color", COLORTERM="truecolor")
    want = [m.encode() for m in markers]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    seen, first_byte, frame, live, cpu, frame_end = b"", None, None, None, None, 0
    try:
        while live is None and time.perf_counter() - t0 < timeout:
            if not select.select([master], [], [], 0.05)[0]:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:
                break
            now = time.perf_counter() - t0
            first_byte = first_byte if first_byte is not None else now
            seen += chunk
            if frame is None and all(m in seen for m in want):
                frame, frame_end = now, max(seen.find(m) + len(m) for m in want)  # where the frame was complete
            started = seen.find(DRIVER_STARTED)
            if frame is not None and started >= 0 and all(m in seen[started:] for m in want):
                live, cpu = now, _cpu_ticks(proc.pid)
        os.write(master, b"\x11")  # Ctrl+Q
        deadline = time.perf_counter() + 10
        while proc.poll() is None and time.perf_counter() < deadline:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    os.read(master, 1 << 16)
                except OSError:
                    break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
        _wait_for_group(proc.pid)
    if frame is None or live is None:
        raise RuntimeError(f"no first frame from {' '.join(cmd)} within {timeout:.0f} s: {seen[-300:]!r}")
    return {"first_byte_s": first_byte, "first_frame_s": frame, "live_frame_s": live,
            "cpu_s": cpu / os.sysconf("SC_CLK_TCK") if cpu is not None else float("nan"),
            "output": seen, "first_frame_end": frame_end}


def app_command(models_dir: str) -> list[str]:
    """`tinygpt --models-dir DIR` as installed beside this Python, else the same entry point by module."""
    script = Path(sys.executable).with_name("tinygpt")
    if script.is_file():
        return [str(script), "--models-dir", models_dir]
    return [sys.executable, "-m", "tinygpt_tui.app.launch", "--models-dir", models_dir]


def first_paint(models_dir: str, model: str, runs: int = 5) -> dict:
    """Process start -> the first frame on a terminal: `tinygpt` (the frame must show the models
    box with this model listed, the prompt and the key bar) with its launch screen (kept by a
    start before the runs), the same without it, and a bare one-widget Textual app (the floor:
    Python, importing Textual, one frame), taking turns in a shuffled order."""
    markers = ["Models", model, "Write a prompt", "palette"]
    bare_cmd = [sys.executable, "-c", BARE_APP.replace("MARKERS", repr(" ".join(markers)))]
    cache = tempfile.mkdtemp(prefix="tinygpt-bench-cache-")
    env = dict(os.environ, XDG_CACHE_HOME=cache, TINYGPT_LAUNCH_SCREEN="1")
    cmds = {"app": (app_command(models_dir), env), "no_launch_screen": (app_command(models_dir), dict(env, TINYGPT_LAUNCH_SCREEN="0")),
            "bare": (bare_cmd, env)}
    first_frame(*cmds["app"][:1], markers, env=env)  # keeps the launch screen
    raw: dict = {who: [] for who in cmds}
    steal0, t0 = _steal_ticks(), time.time()
    import random

    order, shuffle = list(cmds), random.Random(0).shuffle
    for _ in range(runs):
        shuffle(order)  # each round in another order: a run is often slower right after another one
        for who in order:
            cmd, who_env = cmds[who]
            raw[who].append(first_frame(cmd, markers, env=who_env))
    steal1, wall = _steal_ticks(), time.time() - t0
    figures: dict = {"runs": runs, "command": " ".join(app_command(models_dir)),
                     "launch_screens": sum(DRIVER_STARTED not in r["output"][:r["first_frame_end"]] for r in raw["app"])}
    for who, rs in raw.items():
        frames, lives = [r["first_frame_s"] for r in rs], [r["live_frame_s"] for r in rs]
        figures[who] = {"first_frame_s": statistics.median(frames), "first_frame_min_s": min(frames),
                        "live_frame_s": statistics.median(lives), "live_frame_min_s": min(lives),
                        "first_byte_s": statistics.median(r["first_byte_s"] for r in rs),
                        "cpu_s": statistics.median(r["cpu_s"] for r in rs), "all_s": frames, "all_live_s": lives}
    figures["ratio"] = figures["app"]["first_frame_s"] / figures["bare"]["first_frame_s"]
    figures["live_ratio"] = figures["app"]["live_frame_s"] / figures["bare"]["live_frame_s"]
    if steal0 is not None and steal1 is not None:  # the share of the CPUs' time the host took back meanwhile
        figures["steal_share"] = (steal1 - steal0) / os.sysconf("SC_CLK_TCK") / wall / (os.cpu_count() or 1)
    import shutil

    shutil.rmtree(cache, ignore_errors=True)
    return figures


# ---------------------------------------------------------------- the bare sampler: `tinygpt generate`
def bare_sampler(models_dir: Path, name: str, settings, threads: int | None = None) -> dict:
    """`tinygpt generate` for the same model and settings, in its own process, timed on its stdout.

    The rate is taken from the first character printed to the last (start-up and the prompt's
    forward pass left out, as for the app), reading the pipe as the command writes it.
    """
    cmd = [sys.executable, "-m", "tinygpt_tui.cli.main", "generate", name, "--models-dir", str(models_dir),
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

    from tinygpt_tui.app.app import TinyGPTApp
    from tinygpt_tui.app.output import OutputView

    app = TinyGPTApp(models_dir=models_dir, watch_models=False, warm_torch=False, sampler_process=sampler_process)
    result: dict = {"where": "process" if sampler_process else "thread", "rounds": [], "bare": []}
    async with app.run_test(size=(120, 40)) as pilot:
        gen = app.generate_screen
        while not app.models_listed:  # (read before the first frame, or in a worker for a big folder)
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
            from tinygpt_tui.engine.train import TrainConfig

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
    ap.add_argument("--paint-runs", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=3, help="streaming rounds, each the bare sampler then the app")
    ap.add_argument("--where", default="process,thread", help="where the app samples: process (the default), thread (the fallback), both, or none (first paint only)")
    ap.add_argument("--bare", choices=("both", "one", "default"), default="both",
                    help="which bare sampler runs each round: torch's default threads (as `tinygpt generate` runs), one thread, or both")
    ap.add_argument("--no-keys-while-training", dest="keys_while_training", action="store_false",
                    help="skip the key-latency figures while a training run goes")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)

    from tinygpt_tui.engine.folder import default_models_dir
    from tinygpt_tui.sampler import SamplingSettings

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
        fp = first_paint(str(scratch), name, args.paint_runs)
        figures["first_paint"] = fp
        app, cold, bare = fp["app"], fp["no_launch_screen"], fp["bare"]

        def ms(f: dict, what: str) -> str:
            return f"{f[what + '_s'] * 1000:.0f} ms median (best {f[what + '_min_s'] * 1000:.0f} ms)"

        print(f"first frame on a {120}x{40} terminal (`{fp['command']}`, {fp['runs']} runs each, taking turns):\n"
              f"  tinygpt, first frame:      {ms(app, 'first_frame')}: the launch screen in {fp['launch_screens']} of {fp['runs']} runs\n"
              f"  tinygpt, first live frame: {ms(app, 'live_frame')}; {app['cpu_s'] * 1000:.0f} ms of CPU\n"
              f"  without the launch screen: {ms(cold, 'live_frame')}\n"
              f"  bare Textual app:          {ms(bare, 'live_frame')}; {bare['cpu_s'] * 1000:.0f} ms of CPU\n"
              f"  first frame {fp['ratio']:.2f}x the bare app's, first live frame {fp['live_ratio']:.2f}x"
              + (f"; the host took back {fp['steal_share']:.0%} of the CPUs meanwhile" if "steal_share" in fp else ""),
              flush=True)
    def bare() -> dict:
        """`tinygpt generate` as it runs (torch's threads), and with one thread as the sampler process
        uses; the app is compared with the faster of the two."""
        nan = {"chars_per_s": float("nan")}
        default = bare_sampler(scratch, name, settings) if args.bare in ("both", "default") else nan
        one = bare_sampler(scratch, name, settings, threads=1) if args.bare in ("both", "one") else nan
        best = max((b for b in (default, one) if b is not nan), key=lambda b: b["chars_per_s"])
        return {**best, "default_threads_chars_per_s": default["chars_per_s"], "one_thread_chars_per_s": one["chars_per_s"]}

    for where in [w for w in args.where.split(",") if w in ("process", "thread")]:  # "none": first paint only
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
