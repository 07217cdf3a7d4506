"""Benchmark the app beside its floors, side by side in one run: the first screen against a bare
one-widget Textual app, and streaming into the pane against `tinygpt generate`.

    python -m bench.bench_app                      # the shipped shakespeare model
    python -m bench.bench_app --model NAME --models-dir DIR --chars 2000 --runs 5 --json out.json
    python -m bench.bench_app --skip streaming --baseline ../main   # the first screen, beside main's

  first screen   `tinygpt --models-dir DIR` on a pseudo-terminal (120x40, Textual's real driver),
                 from process start to the moment its output holds the whole first screen (the
                 models box listing the model, the prompt, the footer), taking turns with a bare
                 one-widget Textual app (Python, importing Textual, one frame): medians, ratio
  streaming      in rounds: `tinygpt generate` (its own process, timed on its stdout from the
                 first character to the last), then the app streaming the same model and
                 settings into its output pane (Pilot, from the first character in the pane to
                 the last): medians and the app/bare ratio; and the seconds from a chunk's first
                 character being sampled to it being in the pane

This is a benchmark, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
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


def first_frame(cmd: list[str], markers: list[str], size=(120, 40), timeout: float = 60.0, env: dict | None = None,
                then: tuple[bytes, bytes] | None = None) -> dict:
    """Run cmd on a pseudo-terminal of this size and time, from the start of the process, the first
    byte it writes, the first frame (the moment every marker has appeared in its output) and the
    first live frame (every marker written again once Textual's driver has started, so keys reach
    the app: later than the first frame where a launch screen was shown, the same otherwise).

    A pseudo-terminal is a terminal as far as the app can tell (Textual's real driver, escape
    sequences and all), so this is what a user sees, less the terminal's own drawing. Ctrl+Q
    then quits it. Also returned: the process's CPU time at the live frame (in the kernel's 10 ms
    ticks), what it wrote up to the live frame, where in that the first frame was complete, and
    quit_s: from Ctrl+Q to the process's end. ``then`` (keys, marker): keys typed once the frame is
    live, and the marker waited for before Ctrl+Q (a model loaded, say).
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
    t0 = quit_at = time.perf_counter()
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
        if then is not None and live is not None:
            os.write(master, then[0])
            start = len(seen)
            while then[1] not in seen[start:] and time.perf_counter() - t0 < timeout:
                if select.select([master], [], [], 0.05)[0]:
                    seen += os.read(master, 1 << 16)
        quit_at = time.perf_counter()
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
        quit_s = time.perf_counter() - quit_at
        os.close(master)
        _wait_for_group(proc.pid)
    if frame is None or live is None:
        raise RuntimeError(f"no first frame from {' '.join(cmd)} within {timeout:.0f} s: {seen[-300:]!r}")
    return {"first_byte_s": first_byte, "first_frame_s": frame, "live_frame_s": live,
            "cpu_s": cpu / os.sysconf("SC_CLK_TCK") if cpu is not None else float("nan"),
            "output": seen, "first_frame_end": frame_end, "quit_s": quit_s}


def app_command(models_dir: str) -> list[str]:
    """`tinygpt --models-dir DIR`: the installed script beside this Python, else the same entry by module."""
    script = Path(sys.executable).with_name("tinygpt")
    if script.is_file():
        return [str(script), "--models-dir", models_dir]
    return [sys.executable, "-m", "tinygpt_tui", "--models-dir", models_dir]


def tree_command(tree: str, models_dir: str) -> list[str]:
    """`tinygpt --models-dir DIR` from another checkout's tinygpt_tui (a baseline: main, say), with this Python."""
    code = (f"import sys; sys.path.insert(0, {str(Path(tree).resolve())!r}); sys.argv = ['tinygpt', '--models-dir', {models_dir!r}]; "
            "from tinygpt_tui.__main__ import main; main()")
    return [sys.executable, "-c", code]


def first_screen(models_dir: str, model: str, runs: int = 5, baseline: str | None = None) -> dict:
    """The app's first screen and a bare Textual app's (and a baseline checkout's app, if given), on
    a pty, taking turns in a shuffled order (a run is often slower right after another one)."""
    markers = ["Models", model, "Write a prompt", "palette"]
    cmds = {"app": app_command(models_dir), "bare": [sys.executable, "-c", BARE_APP.replace("MARKERS", repr(" ".join(markers)))]}
    if baseline:
        cmds["baseline"] = tree_command(baseline, models_dir)
    # as installed: pip compiles a package's modules as it installs it (Textual's are), and Python
    # caches an editable install's on its first run; where PYTHONDONTWRITEBYTECODE is set (this
    # machine's sessions) ours would be compiled from source at every start, and Textual's not
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for cmd in cmds.values():  # once unmeasured: files into the page cache, modules compiled
        first_frame(cmd, markers, env=env)
    raw: dict = {who: [] for who in cmds}
    order = list(cmds)
    steal0, t0 = _steal_ticks(), time.time()
    for _ in range(runs):
        random.Random(len(raw["app"])).shuffle(order)
        for who in order:
            r = first_frame(cmds[who], markers, env=env)
            raw[who].append((r["live_frame_s"], r["cpu_s"]))
    steal1, wall = _steal_ticks(), time.time() - t0
    figures: dict = {"runs": runs, "command": " ".join(cmds["app"])}
    for who, runs_of in raw.items():
        xs = [wall for wall, _ in runs_of]
        figures[who] = {"median_s": statistics.median(xs), "min_s": min(xs), "all_s": xs,
                        "cpu_median_s": statistics.median(cpu for _, cpu in runs_of)}  # (the process's CPU time at that frame)
    figures["ratio"] = figures["app"]["median_s"] / figures["bare"]["median_s"]
    if baseline:
        figures["baseline_ratio"] = figures["baseline"]["median_s"] / figures["bare"]["median_s"]
    if steal0 is not None and steal1 is not None:  # the share of the CPUs' time the host took back meanwhile
        figures["steal_share"] = (steal1 - steal0) / os.sysconf("SC_CLK_TCK") / wall / (os.cpu_count() or 1)
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


# ---------------------------------------------------------------- streaming into the pane
async def in_app(models_dir: Path, name: str, settings, rounds: int, bare) -> dict:
    """Stream `rounds` generations into the pane, running `bare()` (`tinygpt generate`) before each."""
    import sys

    from tinygpt_tui.app.app import SWITCH_INTERVAL_S, TinyGPTApp
    from tinygpt_tui.app.output import GENERATED

    sys.setswitchinterval(SWITCH_INTERVAL_S)  # as run_app sets it for the app's process
    app = TinyGPTApp(models_dir=models_dir, watch_models=False)
    rows = []
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        screen.action_pick_named(name)
        while screen.loaded is None:
            await pilot.pause(0.05)
        out = screen.query_one("#output")
        stamps: list = []
        append = out.append

        def timed_append(text, kind=GENERATED):  # when each chunk reaches the pane
            append(text, kind)
            if kind == GENERATED:
                stamps.append((time.perf_counter(), len(text)))

        out.append = timed_append
        for key, value in (("length", settings.max_new_tokens), ("temperature", settings.temperature), ("seed", settings.seed)):
            screen.query_one("#sampling").set_value(key, value)
        for _ in range(rounds):
            b = bare()
            stamps.clear()
            cpu0, wall0 = time.thread_time(), time.perf_counter()  # this thread is Textual's: the UI thread's CPU
            screen.start("ROMEO:", fresh=True)
            stream = screen.stream
            while not stream.finished:  # (not pilot.pause: it wakes every widget and forces a repaint)
                await asyncio.sleep(0.05)
            ui_cpu = (time.thread_time() - cpu0) / (time.perf_counter() - wall0)
            (t0, n0), (t1, _) = stamps[0], stamps[-1]
            total = sum(n for _, n in stamps)
            rows.append({"bare_chars_per_s": b["chars_per_s"], "app_chars_per_s": (total - n0) / max(t1 - t0, 1e-9),
                         "chars": total, "ui_thread_cpu": ui_cpu, "latency_median_s": statistics.median(stream.latencies),
                         "latency_p95_s": pct(stream.latencies, 0.95)})
    bare_cps = statistics.median(r["bare_chars_per_s"] for r in rows)
    app_cps = statistics.median(r["app_chars_per_s"] for r in rows)
    return {"rounds": rows, "bare_chars_per_s": bare_cps, "app_chars_per_s": app_cps, "ratio": app_cps / bare_cps,
            "latency_median_s": statistics.median(r["latency_median_s"] for r in rows),
            "ui_thread_cpu": statistics.median(r["ui_thread_cpu"] for r in rows)}


def main(argv=None) -> None:
    from tinygpt_tui.sampler import SamplingSettings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="shakespeare")
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parents[1] / "models"))
    ap.add_argument("--chars", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5, help="first-screen runs of each command")
    ap.add_argument("--skip", choices=["first-screen", "streaming"], action="append", default=[])
    ap.add_argument("--baseline", metavar="TREE", help="also time the first screen of another checkout's app (main's, say)")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    report: dict = {"cpu": cpu, "cores": os.cpu_count()}
    print(f"CPU: {cpu} ({os.cpu_count()} cores)")
    if "first-screen" not in a.skip:
        f = report["first_screen"] = first_screen(a.models_dir, a.model, a.runs, a.baseline)
        print(f"first screen: app {f['app']['median_s'] * 1000:.0f} ms, bare Textual app {f['bare']['median_s'] * 1000:.0f} ms "
              f"(medians of {a.runs}), ratio {f['ratio']:.2f}; CPU time {f['app']['cpu_median_s'] * 1000:.0f} ms and "
              f"{f['bare']['cpu_median_s'] * 1000:.0f} ms, ratio {f['app']['cpu_median_s'] / f['bare']['cpu_median_s']:.2f}")
        if a.baseline:
            b = f["baseline"]
            print(f"  baseline {a.baseline}: {b['median_s'] * 1000:.0f} ms, ratio {f['baseline_ratio']:.2f}; "
                  f"CPU time {b['cpu_median_s'] * 1000:.0f} ms, ratio {b['cpu_median_s'] / f['bare']['cpu_median_s']:.2f}")
    if "streaming" not in a.skip:
        settings = SamplingSettings(max_new_tokens=a.chars, temperature=0.8, seed=1)
        s = report["streaming"] = asyncio.run(in_app(Path(a.models_dir), a.model, settings, a.rounds,
                                                     lambda: bare_sampler(Path(a.models_dir), a.model, settings)))
        print(f"streaming: tinygpt generate {s['bare_chars_per_s']:,.0f} chars/s, app {s['app_chars_per_s']:,.0f} chars/s "
              f"(medians of {a.rounds}), ratio {s['ratio']:.2f}; sampled -> pane {s['latency_median_s'] * 1000:.0f} ms median; "
              f"UI thread {s['ui_thread_cpu']:.2f} of a core")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
